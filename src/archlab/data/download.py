"""Checked downloads and safe archive extraction for the real-format loaders.

Nothing here runs unless a user opts in to downloading (``ARCHLAB_DOWNLOAD=1``): the machines this
project is built on have no internet. The rules every download follows:

* https only — ``http://`` and every other scheme are refused, with no plain-http fallback;
* the bytes stream to ``<dest>.<pid>.part``; the checksum (sha256 preferred, md5 only where the publisher
  publishes nothing else) is checked on that file, and only then is it renamed to ``<dest>``;
* on any failure the ``.part`` file is deleted, so a half-written or unverified file is never left
  where a loader would find it.

Archives are extracted only after every member has been checked: no absolute paths, no ``..``,
no links, no devices or FIFOs — only regular files and directories, at most ``max_members`` of
them and ``max_bytes`` in all — and then member by member through the standard library's
``tarfile`` ``filter="data"``, which enforces the same rules again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from archlab.utils.errors import DataError
from archlab.utils.io import fsync_dir

# The network function, module-level so tests can serve bytes from memory (monkeypatch it).
_urlopen = urllib.request.urlopen

_CHUNK = 1 << 20
_USER_AGENT = "archlab (checked dataset download)"


def _digests(path: str | os.PathLike, sha256: str | None, md5: str | None) -> dict[str, str]:
    """The digests of ``path`` for the algorithms that have an expected value."""
    hashers = {}
    if sha256:
        hashers["sha256"] = hashlib.sha256()
    if md5:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}


def _check_digests(path: str | os.PathLike, shown: str, sha256: str | None, md5: str | None) -> None:
    got = _digests(path, sha256, md5)
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected and got[algo] != expected.lower():
            raise DataError(
                f"{shown}: {algo} mismatch (expected {expected.lower()}, got {got[algo]}); the file is "
                "corrupt or not the published one — delete it and download it again"
            )


def verify_file(path: str | os.PathLike, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise :class:`DataError` unless ``path`` exists and has the given digest(s)."""
    if not sha256 and not md5:
        raise ValueError("verify_file needs sha256= or md5=")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file; download it again or pass data.data_dir=DIR to a copy")
    _check_digests(path, str(path), sha256, md5)


def _check_url(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme != "https":
        raise DataError(f"{url}: refusing to download over '{scheme or 'no scheme'}'; only https:// URLs are allowed")


def download(
    url: str,
    dest_path: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60,
) -> Path:
    """Fetch ``url`` over https to ``dest_path``, verified against ``sha256`` (or the published ``md5``).

    The data goes to ``<dest_path>.<pid>.part`` first and is renamed into place only after the
    checksum matches; on any failure the ``.part`` file is removed and :class:`DataError` raised.
    """
    if not sha256 and not md5:
        raise ValueError("download needs sha256= (or md5= where the publisher publishes only md5)")
    _check_url(url)
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a per-process name: two processes fetching the same file never write into each other's
    part = Path(f"{dest}.{os.getpid()}.part")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            with _urlopen(request, timeout=timeout) as response, open(part, "wb") as f:
                final = getattr(response, "geturl", lambda: url)()
                if final and final != url:
                    _check_url(final)  # a redirect to plain http is refused too
                while block := response.read(_CHUNK):
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", None) or e
            raise DataError(
                f"{dest.name}: download from {url} failed ({reason}); check the connection, or place the "
                f"file in {dest.parent} yourself"
            ) from e
        _check_digests(part, f"{dest.name} (downloaded from {url})", sha256, md5)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in parts:
        return "contains '..'"
    if member.issym() or member.islnk():
        return "is a link"
    if member.isdev() or member.isfifo():
        return "is a device or FIFO"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or directory"
    return None


MAX_MEMBERS = 10_000
MAX_EXTRACTED_BYTES = 1 << 30


def extract_tar(
    archive: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_EXTRACTED_BYTES,
) -> list[str]:
    """Extract ``archive`` into ``dest_dir`` after checking every member; returns the top-level names.

    Members with absolute paths, ``..``, links, devices or FIFOs, more than ``max_members`` members
    or more than ``max_bytes`` of declared contents make the whole archive refused
    (:class:`DataError`) before anything is written; the headers are read one by one and reading
    stops at the first excess, so a decompression bomb costs at most ``max_bytes`` of work.
    Each member is then extracted with ``tarfile``'s ``filter="data"`` into a temporary folder
    inside ``dest_dir``; the top-level entries are moved into place only when all of it succeeded.
    """
    archive, dest = Path(archive), Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the `with tf:` below
    except FileNotFoundError as e:
        raise DataError(f"{archive}: no such file; download it again") from e
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: not a readable tar archive ({e}); delete it and download it again") from e
    with tf:
        members: list[tarfile.TarInfo] = []
        total = 0
        try:
            while (m := tf.next()) is not None:
                problem = _member_problem(m)
                if problem:
                    raise DataError(f"{archive}: refusing to extract member '{m.name[:200]}', which {problem}")
                members.append(m)
                total += m.size
                if len(members) > max_members or total > max_bytes:
                    raise DataError(
                        f"{archive}: refusing to extract more than {max_members} members or {max_bytes} bytes; "
                        "not the expected archive — delete it and download it again"
                    )
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{archive}: truncated or corrupt tar archive ({e}); download it again") from e
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
        try:
            try:
                for m in members:  # only directories and regular files passed the member check
                    tf.extract(m, tmp, set_attrs=False, filter="data")
            except tarfile.FilterError as e:
                raise DataError(f"{archive}: refusing to extract ({e})") from e
            except (tarfile.TarError, OSError, EOFError) as e:
                raise DataError(f"{archive}: extraction failed ({e}); delete it and download it again") from e
            tops = sorted(p.name for p in tmp.iterdir())
            for name in tops:
                target = dest / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
                os.replace(tmp / name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(dest)
    return tops
