"""Real-format readers, checked downloads and safe extraction, on tiny files the tests write.

No test touches the network: ``archlab.data.download._urlopen`` is replaced for every test, and the
download tests serve bytes from memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.data import dataset_info, images, load_dataset
from archlab.data import download as dl
from archlab.data.formats import read_cifar10, read_cifar_records, read_idx, write_cifar_records
from archlab.utils.errors import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------------------ helpers


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    """IDX bytes written by hand (not by the code under test): magic, big-endian dims, big-endian data."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(big).tobytes()


def write_mnist_dir(d: Path, n: int = 20, seed: int = 0, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A Fashion-MNIST/MNIST-style folder with tiny train and test files; returns the train arrays."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = None
    for prefix in ("train", "t10k"):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            raw = idx_bytes(arr, 0x08)
            if gz:
                (d / f"{stem}.gz").write_bytes(gzip.compress(raw))
            else:
                (d / stem).write_bytes(raw)
        if prefix == "train":
            out = (x, y)
    assert out is not None
    return out


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records written by hand: one label byte, then the 3072 pixel bytes (R, G, B planes)."""
    return b"".join(bytes([int(lab)]) + img.tobytes() for img, lab in zip(images, labels, strict=True))


def write_cifar_dir(root: Path, n: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    truth: dict[str, list] = {"train": [[], []], "test": [[], []]}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        data = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        (d / name).write_bytes(cifar_records(data, labels))
        split = "test" if name == "test_batch.bin" else "train"
        truth[split][0].append(data)
        truth[split][1].append(labels)
    (d / "batches.meta.txt").write_text("airplane\n")  # the real folder holds these too
    return {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in truth.items()}


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, url: str):
        super().__init__(data)
        self._url = url

    def geturl(self) -> str:
        return self._url


def serve(files: dict[str, bytes], calls: list[str] | None = None, redirect: dict[str, str] | None = None):
    """A stand-in for urllib's urlopen serving ``files`` (url → bytes) from memory."""

    def urlopen(request, timeout=None):
        url = request.full_url if hasattr(request, "full_url") else request
        if calls is not None:
            calls.append(url)
        if url not in files:
            raise urllib.error.URLError("404 not served by the test")
        return FakeResponse(files[url], (redirect or {}).get(url, url))

    return urlopen


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No test reaches the network; lookups see only what the test sets up."""

    def refuse(*a, **k):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(dl, "_urlopen", refuse)
    monkeypatch.delenv("ARCHLAB_DOWNLOAD", raising=False)
    monkeypatch.delenv("ARCHLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize(
    "code,dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trips_every_dtype(tmp_path, code, dtype, gz):
    rng = np.random.default_rng(code)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    raw = idx_bytes(arr, code)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # a writable copy


def test_read_idx_one_dimensional_labels(tmp_path):
    y = np.array([9, 0, 3], dtype=np.uint8)
    (tmp_path / "labels").write_bytes(idx_bytes(y, 0x08))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), y)


def test_read_idx_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="nope-idx3-ubyte.gz: no such file.*--data-dir"):
        read_idx(tmp_path / "nope-idx3-ubyte.gz")


def test_read_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-idx"
    p.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="bad-idx: bad IDX magic 12340801"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01" + b"\x00" * 8)  # unknown type code
    with pytest.raises(DataError, match="bad IDX magic"):
        read_idx(p)


def test_read_idx_truncated_data_says_expected_and_got(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    p = tmp_path / "short-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"short-idx3-ubyte.gz: truncated .*needs 3136 data bytes, got 3036"):
        read_idx(p)
    p.write_bytes(raw[:10])  # header cut inside the dims
    with pytest.raises(DataError, match="short-idx3-ubyte.gz: truncated IDX header"):
        read_idx(p)


def test_read_idx_trailing_bytes_refused(tmp_path):
    p = tmp_path / "long-idx"
    p.write_bytes(idx_bytes(np.zeros(3, np.uint8), 0x08) + b"xx")
    with pytest.raises(DataError, match="long-idx: has trailing bytes"):
        read_idx(p)


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7, 0x08))
    p = tmp_path / "cut-idx1-ubyte.gz"
    p.write_bytes(good[: len(good) // 2])  # a download cut short
    with pytest.raises(DataError, match="cut-idx1-ubyte.gz: corrupt or truncated gzip"):
        read_idx(p)
    p.write_bytes(good[:10] + b"\xff" * 40 + good[50:])  # garbage in the deflate stream
    with pytest.raises(DataError, match="cut-idx1-ubyte.gz: corrupt or truncated gzip"):
        read_idx(p)


def test_error_messages_are_one_line(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError) as e:
        read_idx(p)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------- CIFAR


def test_read_idx_header_that_disagrees_with_the_data_is_refused_before_decoding(tmp_path):
    p = tmp_path / "huge-idx3-ubyte"
    # a 16-byte file whose header claims 2**32-1 x 2**32-1 x 2**32-1 bytes: refused from the header alone
    p.write_bytes(bytes([0, 0, 0x08, 3]) + b"\xff\xff\xff\xff" * 3)
    with pytest.raises(DataError, match=r"huge-idx3-ubyte: the IDX header claims shape \(4294967295, .* limit"):
        read_idx(p)
    # a consistent header within the limit, but a raw file shorter than it says: the size on disk decides
    p.write_bytes(bytes([0, 0, 0x08, 2]) + struct.pack(">II", 1000, 1000) + b"\x00" * 10)
    with pytest.raises(
        DataError, match=r"truncated \(shape \(1000, 1000\) of uint8 needs 1000000 data bytes, got 10\)"
    ):
        read_idx(p)
    with pytest.raises(DataError, match="more than the 999999-byte limit"):
        read_idx(p, max_bytes=999_999)


def test_read_idx_gzip_that_decompresses_beyond_its_header_is_refused(tmp_path):
    """A gzip bomb: 3 promised data bytes, 64 MB of zeros behind them. Only 4 data bytes are decompressed."""
    p = tmp_path / "bomb-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8), 0x08) + bytes(64 << 20), compresslevel=9))
    assert p.stat().st_size < 200_000
    with pytest.raises(
        DataError, match=r"bomb-idx1-ubyte.gz: has trailing bytes .*needs 3 data bytes, got more than 3"
    ):
        read_idx(p)


def test_read_cifar10_round_trips(tmp_path):
    truth = write_cifar_dir(tmp_path, n=3)
    for split, n in (("train", 15), ("test", 3)):
        x, y = read_cifar10(tmp_path, split)
        assert x.shape == (n, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x, truth[split][0])
        np.testing.assert_array_equal(y, truth[split][1])
    x2, _ = read_cifar10(tmp_path / "cifar-10-batches-bin", "test")  # the batches folder itself works too
    np.testing.assert_array_equal(x2, truth["test"][0])
    # the writer for tools and tests writes the same bytes as the hand-written records
    write_cifar_records(tmp_path / "w.bin", truth["test"][0], truth["test"][1])
    assert (tmp_path / "w.bin").read_bytes() == (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()


def test_cifar_record_layout_is_label_then_channel_major_rows(tmp_path):
    record = bytearray(3073)
    record[0] = 7  # the label
    record[1 : 1 + 1024] = bytes([10]) * 1024  # red plane
    record[1 + 1024 : 1 + 2048] = bytes([20]) * 1024  # green plane
    record[1 + 2048 :] = bytes([30]) * 1024  # blue plane
    record[1 + 32 + 5] = 99  # red, row 1, column 5
    (tmp_path / "b.bin").write_bytes(bytes(record))
    x, y = read_cifar_records(tmp_path / "b.bin")
    assert y.tolist() == [7] and x.shape == (1, 3, 32, 32)
    assert x[0, 0, 1, 5] == 99 and x[0, 0, 0, 0] == 10 and x[0, 1].min() == x[0, 1].max() == 20
    assert x[0, 2].min() == x[0, 2].max() == 30


def test_read_cifar_truncated_or_missing_batch_names_the_file(tmp_path):
    write_cifar_dir(tmp_path, n=2)
    b3 = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    b3.write_bytes(b3.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"data_batch_3.bin: 6106 bytes is not a whole number of 3073-byte"):
        read_cifar10(tmp_path, "train")
    b3.write_bytes(b"")
    with pytest.raises(DataError, match=r"data_batch_3.bin: 0 bytes is not a whole number"):
        read_cifar10(tmp_path, "train")
    b3.unlink()
    with pytest.raises(DataError, match="data_batch_3.bin: no such file"):
        read_cifar10(tmp_path, "train")


def test_read_cifar_hostile_files(tmp_path):
    p = tmp_path / "test_batch.bin"
    p.write_bytes(bytes([3]) + bytes(3072) + bytes([12]) + bytes(3072))
    with pytest.raises(DataError, match="test_batch.bin: record 1 has label 12, outside 0..9"):
        read_cifar_records(p)
    p.write_bytes(bytes(3073 * 5))
    with pytest.raises(DataError, match=r"test_batch.bin: 5 records, more than a CIFAR-10 batch holds \(4\)"):
        read_cifar_records(p, max_records=4)
    assert read_cifar_records(p)[0].shape == (5, 3, 32, 32)
    p.write_bytes(gzip.compress(bytes(3073)))
    with pytest.raises(DataError, match="test_batch.bin: gzip-compressed; CIFAR-10 batch files are raw records"):
        read_cifar_records(p)
    with pytest.raises(DataError) as e:
        read_cifar_records(tmp_path)
    assert "is a directory" in str(e.value) and "\n" not in str(e.value)


def test_the_pickle_decoder_is_gone():
    from archlab.data import formats

    assert not hasattr(formats, "restricted_loads") and not hasattr(formats, "read_cifar_batch")


# ----------------------------------------------------------------------------------------- download

URL = "https://example.org/files/blob.bin"
PAYLOAD = b"official bytes " * 1000


def test_download_good_checksum_puts_file_in_place(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(dl, "_urlopen", serve({URL: PAYLOAD}, calls))
    dest = tmp_path / "sub" / "blob.bin"
    out = dl.download(URL, dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert out == dest and dest.read_bytes() == PAYLOAD and calls == [URL]
    assert not list(dest.parent.glob("*.part"))
    dest.unlink()
    dl.download(URL, dest, md5=hashlib.md5(PAYLOAD).hexdigest())  # publisher-published md5 accepted
    assert dest.read_bytes() == PAYLOAD
    dl.verify_file(dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(), md5=hashlib.md5(PAYLOAD).hexdigest())


def test_download_bad_checksum_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", serve({URL: PAYLOAD}))
    dest = tmp_path / "blob.bin"
    wrong = "0" * 64
    got = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(DataError, match=rf"blob\.bin.*sha256 mismatch \(expected {wrong}, got {got}\)") as e:
        dl.download(URL, dest, sha256=wrong)
    assert "\n" not in str(e.value)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="md5 mismatch"):
        dl.download(URL, dest, md5="f" * 32)
    assert list(tmp_path.iterdir()) == []


def test_download_keeps_an_existing_file_when_the_new_one_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", serve({URL: b"tampered"}))
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old good copy")
    with pytest.raises(DataError):
        dl.download(URL, dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == b"old good copy" and sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]


@pytest.mark.parametrize("url", ["http://example.org/a.gz", "ftp://example.org/a.gz", "file:///etc/passwd", "a.gz"])
def test_download_refuses_non_https(tmp_path, monkeypatch, url):
    calls: list[str] = []
    monkeypatch.setattr(dl, "_urlopen", serve({url: PAYLOAD}, calls))
    with pytest.raises(DataError, match="only https:// URLs are allowed"):
        dl.download(url, tmp_path / "a.gz", sha256="0" * 64)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_download_refuses_redirect_to_http(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", serve({URL: PAYLOAD}, redirect={URL: "http://evil.example/blob.bin"}))
    with pytest.raises(DataError, match="refusing to download over 'http'"):
        dl.download(URL, tmp_path / "blob.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert list(tmp_path.iterdir()) == []


def test_download_network_error_is_one_line_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", serve({}))
    with pytest.raises(DataError, match=r"blob\.bin: download from https://.* failed .*place the file in"):
        dl.download(URL, tmp_path / "blob.bin", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_download_and_verify_need_a_checksum(tmp_path):
    with pytest.raises(ValueError):
        dl.download(URL, tmp_path / "x")
    with pytest.raises(ValueError):
        dl.verify_file(tmp_path / "x")


def test_verify_file(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    dl.verify_file(p, sha256=hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(DataError, match=r"f\.bin: sha256 mismatch"):
        dl.verify_file(p, sha256="1" * 64)
    with pytest.raises(DataError, match=r"missing\.bin: no such file"):
        dl.verify_file(tmp_path / "missing.bin", md5="0" * 32)


# ------------------------------------------------------------------------------------------ extract


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"payload"


def test_extract_tar_good_archive(tmp_path):
    dirinfo = tarfile.TarInfo("top")
    dirinfo.type = tarfile.DIRTYPE
    arc = _tar(tmp_path / "a.tar.gz", [(dirinfo, None), _file("top/a.txt"), _file("top/sub/b.txt")])
    dest = tmp_path / "out"
    assert dl.extract_tar(arc, dest) == ["top"]
    assert (dest / "top" / "a.txt").read_bytes() == b"payload" and (dest / "top" / "sub" / "b.txt").is_file()
    assert [p.name for p in dest.iterdir()] == ["top"]  # no temporary folder left


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


@pytest.mark.parametrize(
    "bad,why",
    [
        (_file("../evil"), "contains '..'"),
        (_file("ok/../../evil"), "contains '..'"),
        (_file("/tmp/evil"), "absolute path"),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_special("hard", tarfile.LNKTYPE, "top/a.txt"), "is a link"),
        (_special("dev", tarfile.CHRTYPE), "device"),
        (_special("fifo", tarfile.FIFOTYPE), "device or FIFO"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "chardev", "fifo"],
)
def test_extract_tar_refuses_unsafe_members(tmp_path, bad, why):
    arc = _tar(tmp_path / "evil.tar.gz", [_file("top/a.txt"), bad])
    dest = tmp_path / "out"
    with pytest.raises(DataError, match=rf"evil\.tar\.gz: refusing to extract member .*{why}"):
        dl.extract_tar(arc, dest)
    assert not (tmp_path / "evil").exists()
    assert list(dest.iterdir()) == []  # nothing extracted, not even the good member


def test_extract_tar_corrupt_archive(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [_file("top/a.txt")])
    arc.write_bytes(arc.read_bytes()[:20])
    with pytest.raises(DataError, match=r"a\.tar\.gz: "):
        dl.extract_tar(arc, tmp_path / "out")


def test_extract_tar_bounds_what_it_extracts(tmp_path):
    arc = _tar(tmp_path / "big.tar.gz", [_file("top/a.txt"), (tarfile.TarInfo("top/zeros"), bytes(5000))])
    dest = tmp_path / "out"
    with pytest.raises(DataError, match=r"big\.tar\.gz: refusing to extract more than 10000 members or 4000 bytes"):
        dl.extract_tar(arc, dest, max_bytes=4000)
    assert list(dest.iterdir()) == []
    many = _tar(tmp_path / "many.tar.gz", [_file(f"top/{i}.txt") for i in range(4)])
    with pytest.raises(DataError, match="more than 3 members"):
        dl.extract_tar(many, dest, max_members=3)
    assert dl.extract_tar(arc, dest, max_bytes=5007) == ["top"]


def test_extract_tar_uses_the_data_filter_behind_its_own_check(tmp_path, monkeypatch):
    """With the member check switched off, tarfile's filter="data" still refuses what escapes."""
    monkeypatch.setattr(dl, "_member_problem", lambda member: None)
    for bad in (_file("../evil"), _special("link", tarfile.SYMTYPE, "/etc/passwd")):
        arc = _tar(tmp_path / "evil.tar.gz", [_file("top/a.txt"), bad])
        with pytest.raises(DataError, match=r"evil\.tar\.gz: refusing to extract \("):
            dl.extract_tar(arc, tmp_path / "out")
        assert not (tmp_path / "evil").exists() and list((tmp_path / "out").iterdir()) == []


# ------------------------------------------------------------------------------------ dataset lookup


@pytest.fixture
def fake_debian(tmp_path, monkeypatch):
    d = tmp_path / "usr-share-datasets-fashion-mnist"
    monkeypatch.setitem(images.SYSTEM_DIRS, "fashion_mnist", [str(d)])
    return d


def test_fashion_mnist_data_dir_beats_debian_location(tmp_path, fake_debian):
    deb_x, _ = write_mnist_dir(fake_debian, seed=1)
    mine = tmp_path / "mine"
    my_x, my_y = write_mnist_dir(mine, seed=2, gz=False)  # raw IDX files work too
    ds = load_dataset("fashion_mnist", "train", data_dir=str(mine))
    assert ds.x.shape == (20, 1, 28, 28) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.long
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(my_x).float() / 255)
    assert ds.y.tolist() == my_y.tolist()
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    ds_deb = load_dataset("fashion_mnist", "train")  # no data_dir: the Debian location
    torch.testing.assert_close(ds_deb.x[:, 0], torch.from_numpy(deb_x).float() / 255)


def test_env_data_dir_beats_debian_and_data_dir_root_with_subfolder(tmp_path, fake_debian, monkeypatch):
    write_mnist_dir(fake_debian, seed=1)
    env_x, _ = write_mnist_dir(tmp_path / "envroot" / "fashion_mnist", seed=3)
    monkeypatch.setenv("ARCHLAB_DATA_DIR", str(tmp_path / "envroot"))
    assert load_dataset("fashion_mnist", "test").x.shape == (20, 1, 28, 28)  # the test split too
    torch.testing.assert_close(load_dataset("fashion_mnist", "train").x[:, 0], torch.from_numpy(env_x).float() / 255)
    # data_dir may be a root that holds <name>/ (one data.data_dir for every dataset)
    sub_x, _ = write_mnist_dir(tmp_path / "root" / "mnist", seed=4)
    torch.testing.assert_close(
        load_dataset("mnist", "train", data_dir=str(tmp_path / "root")).x[:, 0],
        torch.from_numpy(sub_x).float() / 255,
    )


def test_missing_everywhere_says_where_and_how_to_fix(tmp_path, fake_debian):
    (tmp_path / "empty").mkdir()  # a folder without the files (a folder that does not exist is its own error)
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", "train", data_dir=str(tmp_path / "empty"))
    msg = str(e.value)
    assert "\n" not in msg
    for part in (
        "train-images-idx3-ubyte",
        str(tmp_path / "empty"),
        str(fake_debian),
        str(tmp_path / "xdg-cache" / "archlab" / "fashion_mnist"),
        "apt-get install dataset-fashion-mnist",
        "data.data_dir=",
        "ARCHLAB_DOWNLOAD=1",
    ):
        assert part in msg, part
    with pytest.raises(DataError, match="cifar10: cifar-10-batches-bin/.*ARCHLAB_DOWNLOAD=1"):
        load_dataset("cifar10", "test")
    (tmp_path / "old" / "cifar-10-batches-py").mkdir(parents=True)  # a copy of the pickled version
    with pytest.raises(
        DataError,
        match=r"cifar-10-batches-py is the python \(pickled\) version, which archlab does not read .*binary\.tar\.gz",
    ):
        load_dataset("cifar10", "test", data_dir=str(tmp_path / "old"))


def test_half_a_split_is_not_a_match(tmp_path, fake_debian):
    deb_x, _ = write_mnist_dir(fake_debian, seed=1)
    partial = tmp_path / "partial"
    write_mnist_dir(partial, seed=2)
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    ds = load_dataset("fashion_mnist", "train", data_dir=str(partial))  # falls through to a complete copy
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(deb_x).float() / 255)


def test_mismatched_images_and_labels_name_the_file(tmp_path, fake_debian):
    d = tmp_path / "d"
    write_mnist_dir(d)
    (d / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8), 0x08)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: 5 labels for the 20 images"):
        load_dataset("fashion_mnist", "train", data_dir=str(d))


def test_download_opt_in_fetches_verifies_and_caches(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    y = np.arange(6, dtype=np.uint8)
    blobs = {
        "train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(x, 0x08)),
        "train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(y, 0x08)),
    }
    base = "https://mirror.example/mnist"
    remotes = {f: images.Remote(f, (f"{base}/{f}",), sha256=hashlib.sha256(b).hexdigest()) for f, b in blobs.items()}
    monkeypatch.setattr(images, "MNIST_REMOTES", remotes)
    monkeypatch.setattr(images, "_mnist", images._idx_loader("mnist", remotes))
    calls: list[str] = []
    monkeypatch.setattr(dl, "_urlopen", serve({f"{base}/{f}": b for f, b in blobs.items()}, calls))
    with pytest.raises(DataError, match="ARCHLAB_DOWNLOAD=1"):  # no opt-in, no download
        load_dataset("mnist", "train")
    assert calls == []
    monkeypatch.setenv("ARCHLAB_DOWNLOAD", "1")
    ds = load_dataset("mnist", "train")
    assert ds.y.tolist() == list(range(6)) and len(calls) == 2
    cache = tmp_path / "xdg-cache" / "archlab" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(blobs)
    load_dataset("mnist", "train")  # now found in the cache: no second download
    assert len(calls) == 2


def test_download_opt_in_with_tampered_mirror_leaves_cache_clean(tmp_path, monkeypatch):
    base = "https://mirror.example/mnist"
    monkeypatch.setattr(dl, "_urlopen", serve({f"{base}/{f}": b"tampered" for f in images.MNIST_REMOTES}))
    remotes = {f: images.Remote(f, (f"{base}/{f}",), sha256=r.sha256) for f, r in images.MNIST_REMOTES.items()}
    monkeypatch.setattr(images, "_mnist", images._idx_loader("mnist", remotes))
    monkeypatch.setenv("ARCHLAB_DOWNLOAD", "1")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*sha256 mismatch"):
        load_dataset("mnist", "train")
    cache = tmp_path / "xdg-cache" / "archlab" / "mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_cifar10_loader_scales_to_unit_range(tmp_path):
    truth = write_cifar_dir(tmp_path / "c", n=2)
    ds = load_dataset("cifar10", "train", data_dir=str(tmp_path / "c"))
    assert ds.x.shape == (10, 3, 32, 32) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.long
    torch.testing.assert_close(ds.x, torch.from_numpy(truth["train"][0]).float() / 255)
    assert ds.y.tolist() == truth["train"][1].tolist()


def test_cifar10_download_extracts_checked_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    truth = write_cifar_dir(src, n=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    blob = buf.getvalue()
    url = "https://mirror.example/cifar-10-binary.tar.gz"
    remote = images.Remote("cifar-10-binary.tar.gz", (url,), sha256=hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(images, "CIFAR10_REMOTE", remote)
    monkeypatch.setattr(dl, "_urlopen", serve({url: blob}))
    monkeypatch.setenv("ARCHLAB_DOWNLOAD", "1")
    ds = load_dataset("cifar10", "test")
    torch.testing.assert_close(ds.x, torch.from_numpy(truth["test"][0]).float() / 255)
    cache = tmp_path / "xdg-cache" / "archlab" / "cifar10"
    assert [p.name for p in cache.iterdir()] == ["cifar-10-batches-bin"]  # archive removed after extraction


def test_repeated_loads_are_cached_and_independent(tmp_path, fake_debian):
    write_mnist_dir(fake_debian)
    a = load_dataset("fashion_mnist", "train")
    a.x.zero_()  # a caller mutating its copy ...
    b = load_dataset("fashion_mnist", "train")
    assert b.x.sum() > 0  # ... does not change what the next load returns
    info = images._idx_arrays.cache_info()
    load_dataset("fashion_mnist", "train")
    assert images._idx_arrays.cache_info().hits == info.hits + 1


def test_registered_metadata():
    fm, mn, cf = dataset_info("fashion_mnist"), dataset_info("mnist"), dataset_info("cifar10")
    assert fm.input_shape == (1, 28, 28) and fm.splits == {"train": 60000, "test": 10000} and fm.licence == "MIT"
    assert mn.licence == "CC BY-SA 3.0" and mn.kind == "image" and mn.num_classes == 10
    assert cf.input_shape == (3, 32, 32) and cf.splits == {"train": 50000, "test": 10000}
    assert "Krizhevsky 2009" in cf.licence and len(cf.classes) == 10 and fm.classes[9] == "Ankle boot"
    assert any("94.7%" in v for v in fm.reference.values())
    for r in (*images.FASHION_MNIST_REMOTES.values(), *images.MNIST_REMOTES.values(), images.CIFAR10_REMOTE):
        assert all(u.startswith("https://") for u in r.urls) and (r.sha256 or r.md5)


# ------------------------------------------------------------------------------- real Fashion-MNIST


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist")
def test_real_fashion_mnist_from_the_debian_package():
    train = load_dataset("fashion_mnist", "train")
    test = load_dataset("fashion_mnist", "test")
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.long
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert abs(float(train.x.mean()) - 0.2860) < 1e-3  # the well-known Fashion-MNIST pixel mean
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
