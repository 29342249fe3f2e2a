"""Decode the data in a pickle file without unpickling it: the Planetoid raw files.

Unpickling runs whatever callables a file names, so archlab never unpickles a file (Python's own
deserialiser is not used at all). Planetoid's raw files (``ind.<name>.{x,tx,allx,y,ty,ally,graph}``) are
Python 2 pickles of numpy arrays, scipy CSR matrices and a ``defaultdict(list)``; this module walks
their opcodes with :func:`pickletools.genops` (a parser: it executes nothing) on a small stack
machine of our own that knows only data opcodes and a fixed table of constructors, each rebuilt
here from plain values:

* ``numpy.core.multiarray._reconstruct`` + its ``BUILD`` state (version, shape, dtype, Fortran
  order, raw bytes) → ``np.frombuffer`` of the raw bytes (object arrays refused);
* ``numpy.dtype(name, …)`` + its state (byte order) → a numpy dtype;
* a scipy ``csr_matrix`` (``copyreg._reconstructor`` or ``NEWOBJ``) + its ``__dict__`` state
  (``data``, ``indices``, ``indptr``, ``_shape``) → ``scipy.sparse.csr_matrix((data, indices,
  indptr), shape)``;
* ``collections.defaultdict(list)`` → a dict; ``_codecs.encode(text, "latin1")`` → bytes (how
  Python 3 writes bytes at protocol 2).

Any other global — ``os.system``, ``builtins.eval`` … — is refused in one line before anything is
built, as is any opcode outside the data set (``INST``, ``OBJ``, ``EXT*``, persistent ids …).
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archlab.utils.errors import DataError

# (module, name) as a file writes it → what it stands for here; nothing else is accepted
_GLOBALS: dict[tuple[str, str], str] = {
    **{(m, "_reconstruct"): "ndarray_reconstruct" for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): "scalar" for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "csr_matrix"): "csr_matrix" for m in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse")},
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("copy_reg", "_reconstructor"): "reconstructor",
    ("copyreg", "_reconstructor"): "reconstructor",
    ("__builtin__", "object"): "object",
    ("builtins", "object"): "object",
    ("__builtin__", "list"): "list",
    ("builtins", "list"): "list",
    ("collections", "defaultdict"): "defaultdict",
    ("_codecs", "encode"): "encode",
}


@dataclass(frozen=True)
class _Global:
    name: str  # a value of _GLOBALS


@dataclass
class _Pending:
    """An object whose ``BUILD`` state has not come yet (an array, a dtype, a CSR matrix)."""

    kind: str
    args: tuple = ()
    value: Any = field(default=None)


_MARK = object()


def decode_pickle_data(data: bytes, where: str) -> Any:
    """The numpy arrays, CSR matrices, dicts, lists and scalars pickled in ``data``.

    Raises DataError (one line, naming ``where``) for a global outside the table above, an opcode
    that is not plain data, or a malformed stream."""
    try:
        return _run(data, where)
    except DataError:
        raise
    except Exception as e:  # truncated stream, a state of the wrong shape
        raise DataError(f"{where}: not a readable Planetoid file ({type(e).__name__}: {str(e)[:100]})") from e


def _run(data: bytes, where: str) -> Any:
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    marks: list[int] = []

    def pop_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            return _resolved(stack.pop())
        if name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            stack.pop()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"):
            stack.append(arg)
        elif name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):  # Python 2 str: raw bytes
            stack.append(arg.encode("latin-1") if isinstance(arg, str) else bytes(arg))
        elif name in ("UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
            stack.append(arg)
        elif name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
            stack.append(bytes(arg))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = pop_mark()
            stack[-1].extend(items)
        elif name == "LIST":
            stack.append(pop_mark())
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "DICT":
            items = pop_mark()
            stack.append({_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][_key(key)] = value
        elif name == "SETITEMS":
            items = pop_mark()
            for i in range(0, len(items), 2):
                stack[-1][_key(items[i])] = items[i + 1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[int(arg)])
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, attr = arg.split(" ", 1)
            else:
                attr, module = stack.pop(), stack.pop()
            target = _GLOBALS.get((str(module), str(attr)))
            if target is None:
                raise DataError(
                    f"{where}: refusing to unpickle '{str(module)[:60]}.{str(attr)[:60]}' — a Planetoid file holds "
                    "only numpy arrays, scipy CSR matrices and adjacency lists; this one is not a Planetoid file"
                )
            stack.append(_Global(target))
        elif name == "REDUCE":
            args = stack.pop()
            stack.append(_call(stack.pop(), _resolved(args), where))
        elif name == "NEWOBJ":
            args = stack.pop()
            cls = stack.pop()
            if cls != _Global("csr_matrix"):
                raise DataError(f"{where}: NEWOBJ of {cls!r} — not a Planetoid file")
            stack.append(_Pending("csr"))
        elif name == "BUILD":
            state = _resolved(stack.pop())
            _build(stack[-1], state, where)
        else:
            raise DataError(f"{where}: pickle opcode {name} is not plain data — not a Planetoid file")
    raise DataError(f"{where}: the pickle stream ends without STOP (truncated)")


def _key(k: Any) -> Any:
    return k.decode("latin-1") if isinstance(k, bytes) else k


def _call(fn: Any, args: tuple, where: str) -> Any:
    """REDUCE: the constructors of the table, on plain values."""
    g = fn.name if isinstance(fn, _Global) else None
    if g == "ndarray_reconstruct" and args and args[0] == _Global("ndarray"):
        return _Pending("array")
    if g == "dtype" and args and isinstance(args[0], (str, bytes)):
        return _Pending("dtype", (_key(args[0]),))
    if g == "reconstructor" and args and args[0] == _Global("csr_matrix"):
        return _Pending("csr")
    if g == "defaultdict" and args in ((_Global("list"),), ()):
        return {}
    if g == "encode" and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return args[0].encode("latin-1")
    if g == "scalar" and len(args) == 2 and isinstance(args[0], np.dtype) and isinstance(args[1], bytes):
        _no_objects(args[0], where)
        return np.frombuffer(args[1], dtype=args[0], count=1)[0]
    raise DataError(f"{where}: call of {fn!r} with {str(args)[:80]} is not how a Planetoid file builds its data")


def _build(obj: Any, state: Any, where: str) -> None:
    """BUILD: finish a pending array / dtype / CSR matrix from its state."""
    if isinstance(obj, dict) and state is None:  # a defaultdict's empty state
        return
    if not isinstance(obj, _Pending):
        raise DataError(f"{where}: BUILD on {type(obj).__name__} — not a Planetoid file")
    if obj.kind == "dtype":
        dtype = np.dtype(obj.args[0])
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else "|"
        obj.value = dtype.newbyteorder(order) if order in ("<", ">") and dtype.itemsize > 1 else dtype
    elif obj.kind == "array":
        _version, shape, dtype, fortran, raw = state
        _no_objects(dtype, where)
        raw = raw.encode("latin-1") if isinstance(raw, str) else raw
        count = int(np.prod(shape, dtype=np.int64))
        if count * dtype.itemsize != len(raw):
            raise DataError(
                f"{where}: an array of shape {tuple(shape)} needs {count * dtype.itemsize} bytes, got {len(raw)}"
            )
        obj.value = np.frombuffer(raw, dtype=dtype).reshape(tuple(shape), order="F" if fortran else "C").copy()
    elif obj.kind == "csr":
        import scipy.sparse

        if not isinstance(state, dict):
            raise DataError(f"{where}: a CSR matrix's state must be a dict, got {type(state).__name__}")
        state = {_key(k): v for k, v in state.items()}
        fmt = state.get("format", "csr")
        if _key(fmt) != "csr":
            raise DataError(f"{where}: a sparse matrix in format {fmt!r}; Planetoid files hold CSR")
        shape = tuple(int(n) for n in state.get("_shape", state.get("shape", ())))
        obj.value = scipy.sparse.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=shape)


def _no_objects(dtype: Any, where: str) -> None:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise DataError(f"{where}: an array of Python objects ({dtype!r}); Planetoid arrays hold numbers")


def _resolved(v: Any) -> Any:
    """``v`` with every finished pending object replaced by its value (inside containers too)."""
    if isinstance(v, _Pending):
        if v.value is None:
            raise DataError(f"an unfinished {v.kind} (no BUILD state) — not a Planetoid file")
        return v.value
    if isinstance(v, tuple):
        return tuple(_resolved(x) for x in v)
    if isinstance(v, list):
        v[:] = [_resolved(x) for x in v]
        return v
    if isinstance(v, dict):
        for k in list(v):
            v[k] = _resolved(v[k])
        return v
    return v
