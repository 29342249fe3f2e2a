"""Readers for the standard on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 python batches.

Both raise :class:`DataError` with a one-line message naming the file for every way a file can be
wrong (missing, bad magic, truncated, corrupt gzip, wrong contents).

CIFAR-10 batches are python pickles. They are never given to ``pickle``: :func:`restricted_loads`
interprets the few opcodes a batch uses (dicts, lists, strings, numbers, numeric numpy arrays),
admits only numpy's array reconstruction as a global, and refuses everything else, so a
doctored file cannot run code.
"""

from __future__ import annotations

import gzip
import os
import pickletools
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from archlab.utils.errors import DataError

_FIX = "pass --data-dir (data.data_dir=DIR) pointing at a folder with a good copy"

# ---------------------------------------------------------------------------------------------- IDX

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file; {_FIX}") from e
    except IsADirectoryError as e:
        raise DataError(f"{path}: is a directory, not a data file; {_FIX}") from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}); {_FIX}") from e
    if raw[:2] == b"\x1f\x8b":  # gzip, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip ({e}); {_FIX}") from e
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array in native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX header (expected at least 4 bytes, got {len(raw)}); {_FIX}")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(
            f"{path}: bad IDX magic {raw[:4].hex()} (expected 0000 + a type code in "
            f"{sorted(f'{k:02x}' for k in IDX_DTYPES)} + ndim); not an IDX file — {_FIX}"
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated IDX header (expected {header} bytes for {ndim} dimensions, got {len(raw)}); "
            f"{_FIX}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {what} (shape {dims} of {dtype.name} needs {expected} data bytes, got {got}); {_FIX}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def write_idx(path: str | os.PathLike, arr: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``arr`` as an IDX file (gzip when ``compress`` or the name ends in ``.gz``); for tests/tools."""
    path = Path(path)
    codes = {v.str.lstrip("<>|="): k for k, v in IDX_DTYPES.items()}
    big = np.asarray(arr).astype(np.asarray(arr).dtype.newbyteorder(">"))
    code = codes.get(big.dtype.str.lstrip("<>|="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    header = bytes([0, 0, code, big.ndim]) + np.asarray(big.shape, dtype=">u4").tobytes()
    data = header + big.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


# ------------------------------------------------------------------------------------------ pickles


class UnsafePickleError(ValueError):
    """A pickle that names a global outside the allow-list, or uses an opcode we do not interpret."""


class _Global:
    def __init__(self, name: str):
        self.name = name


_RECONSTRUCT, _NDARRAY, _DTYPE = _Global("_reconstruct"), _Global("ndarray"), _Global("dtype")
# The only globals a CIFAR batch may name: what a pickled numpy array needs, nothing else.
_SAFE_GLOBALS: dict[tuple[str, str], _Global] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # the numpy 2 spelling
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
}


class _Pending:
    """An object under construction (REDUCE made it, BUILD fills it in)."""

    def __init__(self, kind: _Global, args: tuple):
        self.kind, self.args, self.value = kind, args, None

    def build(self, state: Any) -> None:
        if self.kind is _DTYPE:  # np.dtype('u1', align, copy) with state (ver, byteorder, ...)
            dt = np.dtype(_text(self.args[0]))
            order = _text(state[1]) if isinstance(state, tuple) and len(state) > 1 else "|"
            self.value = dt.newbyteorder(order) if order in "<>" and dt.byteorder not in "|" else dt
        elif self.kind is _RECONSTRUCT:  # ndarray state: ([version,] shape, dtype, is_fortran, raw bytes)
            shape, dtype, fortran, raw = state[-4:]
            dtype = _resolve(dtype)
            if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(raw, bytes | bytearray):
                raise UnsafePickleError("only plain numeric numpy arrays are allowed")
            arr = np.frombuffer(bytes(raw), dtype=dtype)
            self.value = arr.reshape(tuple(shape), order="F" if fortran else "C").copy()
        else:
            raise UnsafePickleError(f"cannot build a '{self.kind.name}'")


def _text(x: Any) -> str:
    return x.decode("latin-1") if isinstance(x, bytes | bytearray) else str(x)


def _resolve(x: Any) -> Any:
    """Replace finished :class:`_Pending` objects by their values, recursively."""
    if isinstance(x, _Pending):
        if x.value is None:
            raise UnsafePickleError(f"incomplete '{x.kind.name}' object")
        return x.value
    if isinstance(x, dict):
        return {_resolve(k): _resolve(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_resolve(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_resolve(v) for v in x)
    return x


_PY2_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING"}  # python-2 str: kept as bytes
_LITERALS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
}


def restricted_loads(data: bytes) -> Any:
    """Decode a pickle of dicts, lists, tuples, numbers, strings and numeric numpy arrays.

    This is not ``pickle``: it walks the opcodes with :func:`pickletools.genops` (a disassembler
    that executes nothing) on a small stack machine of its own. Globals other than numpy's array
    reconstruction are refused, and so is every opcode outside that subset, so a doctored file
    cannot run code. Python-2 strings come back as ``bytes`` (as ``encoding="bytes"`` would).
    """
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    try:
        ops = list(pickletools.genops(data))
    except Exception as e:  # the disassembler raises ValueError & co. on truncated or garbled input
        raise ValueError(f"not a readable pickle ({e})") from None
    for op, arg, _pos in ops:
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            if len(stack) != 1:
                raise ValueError("malformed pickle (stack not empty at STOP)")
            return _resolve(stack[0])
        if name in _LITERALS:
            stack.append(arg)
        elif name in _PY2_STRINGS:
            stack.append(arg.encode("latin-1") if isinstance(arg, str) else bytes(arg))
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            items = pop_mark()
            stack.append(dict(zip(items[::2], items[1::2])))
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = pop_mark()  # before reading stack[-1]: the dict sits under the mark
            stack[-1].update(zip(items[::2], items[1::2]))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(pop_mark())
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = pop_mark()  # before reading stack[-1]: the list sits under the mark
            stack[-1].extend(items)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[int(arg)])
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
            else:
                attr, module = stack.pop(), stack.pop()
            found = _SAFE_GLOBALS.get((_text(module), _text(attr)))
            if found is None:
                raise UnsafePickleError(f"global '{_text(module)}.{_text(attr)}' is not allowed")
            stack.append(found)
        elif name == "REDUCE":
            args, func = stack.pop(), stack.pop()
            if func not in (_RECONSTRUCT, _DTYPE):
                raise UnsafePickleError("only numpy array and dtype construction may be called")
            stack.append(_Pending(func, args))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if not isinstance(target, _Pending):
                raise UnsafePickleError("BUILD on an object that is not a numpy array or dtype")
            target.build(state)
        else:
            raise UnsafePickleError(f"pickle opcode {name} is not allowed")
    raise ValueError("truncated pickle (no STOP)")


# ------------------------------------------------------------------------------------------ CIFAR-10

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _get(d: dict, key: str) -> Any:
    """A value by key whether the batch was decoded with bytes keys (python 2) or str keys."""
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch → ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file; {_FIX}") from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}); {_FIX}") from e
    try:
        batch = restricted_loads(raw)
    except UnsafePickleError as e:
        raise DataError(f"{path}: refusing to load this pickle: {e}; it is not a CIFAR-10 batch") from e
    except Exception as e:  # truncated/corrupt pickles raise many types (EOFError, UnpicklingError, ...)
        raise DataError(
            f"{path}: truncated or corrupt CIFAR-10 batch ({type(e).__name__}: {e}); {_FIX}"
        ) from e
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (a {type(batch).__name__}, not a dict); {_FIX}")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' is not a uint8 array of shape (N, 3072) (got {shape}); {_FIX}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: 'labels' is not a list of integers; {_FIX}") from e
    if y.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but labels of shape {y.shape}; {_FIX}")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path}: labels outside 0..9 (min {y.min()}, max {y.max()}); {_FIX}")
    return data.reshape(-1, 3, 32, 32).copy(), y


def cifar10_batches_dir(root: str | os.PathLike) -> Path:
    """``root/cifar-10-batches-py`` when present, else ``root`` itself."""
    root = Path(root)
    return root / CIFAR10_DIRNAME if (root / CIFAR10_DIRNAME).is_dir() else root


def read_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` ("train": data_batch_1..5, "test": test_batch) from ``root``.

    ``root`` may be the folder holding ``cifar-10-batches-py/`` or that folder itself. Returns
    ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"CIFAR-10 has splits {sorted(CIFAR10_BATCHES)}, not '{split}'")
    d = cifar10_batches_dir(root)
    xs, ys = zip(*(read_cifar_batch(d / name) for name in CIFAR10_BATCHES[split]), strict=True)
    return np.concatenate(xs), np.concatenate(ys)
