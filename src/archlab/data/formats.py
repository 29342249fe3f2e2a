"""Readers for the standard on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 python batches.

Both raise :class:`DataError` with a one-line message naming the file for every way a file can be
wrong (missing, bad magic, truncated, corrupt gzip, wrong contents).

CIFAR-10 batches are python pickles. They are never read with the unrestricted unpickler:
:class:`RestrictedUnpickler` resolves exactly the globals a numpy array needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and refuses every
other one, so a doctored file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
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


def _numpy_reconstruct() -> Any:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The only globals a CIFAR batch may name: what a pickled numpy array needs, nothing else.
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),  # the numpy 2 spelling
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that names a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy array reconstruction globals and refuses the rest."""

    def find_class(self, module: str, name: str) -> Any:
        obj = _SAFE_GLOBALS.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"global '{module}.{name}' is not allowed")
        return obj


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` with :class:`RestrictedUnpickler` and ``encoding="bytes"`` (python-2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


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
