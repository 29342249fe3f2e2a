"""Readers for the standard on-disk formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10's binary version.

Both raise :class:`DataError` with a one-line message naming the file for every way a file can be
wrong (missing, bad magic, truncated, trailing bytes, corrupt gzip, wrong contents), and both bound
what they decode by what the file may hold: an IDX header's shape must agree with the data that
follows (a gzip stream is decompressed only up to that size, plus one byte to detect more) and may
not exceed ``max_bytes``; a CIFAR-10 record file must be a whole number of 3073-byte records, at
most 10 000 of them. Nothing is decoded with ``pickle``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from archlab.utils.errors import DataError

_FIX = "pass --data-dir (data.data_dir=DIR) pointing at a folder with a good copy"

# The most an IDX file may decode to (MNIST's training images are 47 MB): a header claiming more is refused.
MAX_IDX_BYTES = 1 << 30

# ---------------------------------------------------------------------------------------------- IDX

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path) -> tuple[BinaryIO, int | None]:
    """``(stream, size on disk or None when gzip-compressed)``; a gzip stream is recognised by its
    magic bytes, whatever the file is called."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file; {_FIX}") from e
    except IsADirectoryError as e:
        raise DataError(f"{path}: is a directory, not a data file; {_FIX}") from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}); {_FIX}") from e
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), None  # type: ignore[return-value]
    f.seek(0)
    return f, os.fstat(f.fileno()).st_size


def _read(stream: BinaryIO, n: int, path: Path) -> bytes:
    """At most ``n`` bytes (decompressed when gzip): never more, whatever the stream holds."""
    try:
        return stream.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip ({e}); {_FIX}") from e


def read_idx(path: str | os.PathLike, *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array in native byte order.

    The header (magic ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32 dims) fixes the data
    size; the file must hold exactly that many bytes, at most ``max_bytes``. Raises
    :class:`DataError` (one line, naming the file) otherwise.
    """
    path = Path(path)
    stream, size = _open(path)
    with stream:
        magic = _read(stream, 4, path)
        if len(magic) < 4:
            raise DataError(f"{path}: truncated IDX header (expected at least 4 bytes, got {len(magic)}); {_FIX}")
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
            raise DataError(
                f"{path}: bad IDX magic {magic.hex()} (expected 0000 + a type code in "
                f"{sorted(f'{k:02x}' for k in IDX_DTYPES)} + ndim); not an IDX file — {_FIX}"
            )
        dtype, ndim = IDX_DTYPES[magic[2]], magic[3]
        header = 4 + 4 * ndim
        raw_dims = _read(stream, 4 * ndim, path)
        if len(raw_dims) < 4 * ndim:
            raise DataError(
                f"{path}: truncated IDX header (expected {header} bytes for {ndim} dimensions, "
                f"got {4 + len(raw_dims)}); {_FIX}"
            )
        dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
        expected = dtype.itemsize
        for d in dims:
            expected *= d  # python ints: no overflow, whatever the header claims
        if expected > max_bytes:
            raise DataError(
                f"{path}: the IDX header claims shape {dims} of {dtype.name} ({expected} bytes), more than "
                f"the {max_bytes}-byte limit; not a data set file — {_FIX}"
            )
        if size is not None and size - header != expected:  # raw: the size on disk must agree first
            got = size - header
            what = "truncated" if got < expected else "has trailing bytes"
            raise DataError(
                f"{path}: {what} (shape {dims} of {dtype.name} needs {expected} data bytes, got {got}); {_FIX}"
            )
        data = _read(stream, expected + 1, path)  # one byte more than allowed shows trailing data
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        got = len(data) if len(data) < expected else f"more than {expected}"
        raise DataError(f"{path}: {what} (shape {dims} of {dtype.name} needs {expected} data bytes, got {got}); {_FIX}")
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
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


# ------------------------------------------------------------------------------------------ CIFAR-10

CIFAR10_DIRNAME = "cifar-10-batches-bin"
CIFAR10_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
CIFAR10_RECORD = 1 + 3 * 32 * 32  # a label byte, then 1024 red, 1024 green, 1024 blue bytes, row-major
CIFAR10_MAX_RECORDS = 10000  # what one official batch file holds


def read_cifar_records(
    path: str | os.PathLike, *, max_records: int = CIFAR10_MAX_RECORDS
) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch → ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    The file is ``N`` fixed-size records of :data:`CIFAR10_RECORD` bytes (Krizhevsky's "binary
    version"); a length that is not a whole number of records, more than ``max_records`` records,
    or a label outside 0..9 raises :class:`DataError` before anything is decoded.
    """
    path = Path(path)
    stream, size = _open(path)
    with stream:
        if size is None:
            raise DataError(f"{path}: gzip-compressed; CIFAR-10 batch files are raw records — {_FIX}")
        if size == 0 or size % CIFAR10_RECORD:
            raise DataError(
                f"{path}: {size} bytes is not a whole number of {CIFAR10_RECORD}-byte CIFAR-10 records "
                f"(truncated or not a CIFAR-10 batch); {_FIX}"
            )
        n = size // CIFAR10_RECORD
        if n > max_records:
            raise DataError(f"{path}: {n} records, more than a CIFAR-10 batch holds ({max_records}); {_FIX}")
        raw = _read(stream, size, path)
    if len(raw) != size:
        raise DataError(f"{path}: changed while being read ({len(raw)} of {size} bytes); {_FIX}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(n, CIFAR10_RECORD)
    y = records[:, 0].astype(np.int64)
    if y.max() > 9:
        first = int(np.argmax(y > 9))
        raise DataError(f"{path}: record {first} has label {int(y[first])}, outside 0..9; not a CIFAR-10 batch")
    return records[:, 1:].reshape(n, 3, 32, 32).copy(), y


def cifar10_batches_dir(root: str | os.PathLike) -> Path:
    """``root/cifar-10-batches-bin`` when present, else ``root`` itself."""
    root = Path(root)
    return root / CIFAR10_DIRNAME if (root / CIFAR10_DIRNAME).is_dir() else root


def read_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` ("train": data_batch_1..5.bin, "test": test_batch.bin) from ``root``.

    ``root`` may be the folder holding ``cifar-10-batches-bin/`` or that folder itself. Returns
    ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"CIFAR-10 has splits {sorted(CIFAR10_BATCHES)}, not '{split}'")
    d = cifar10_batches_dir(root)
    xs, ys = zip(*(read_cifar_records(d / name) for name in CIFAR10_BATCHES[split]), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def write_cifar_records(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write ``images`` uint8 (N, 3, 32, 32) and ``labels`` (N,) as a CIFAR-10 binary batch; for tests/tools."""
    images = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    records = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], images], axis=1)
    Path(path).write_bytes(records.tobytes())
