"""Run directories: ``runs/<name>-<YYYYmmdd-HHMMSS>/`` with recipe, metrics, checkpoints, figures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from archlab.utils.errors import RunDirError, preview
from archlab.utils.io import atomic_write_bytes, loads_json

MAX_NAME_BYTES = 120  # of the name part; the stamp follows, and a file name has 255 bytes on most systems


def run_dir_name(name: str) -> str:
    """``name`` made safe for a folder name: characters other than letters, digits, ``-_.`` become ``-``,
    and a long name is cut to ``MAX_NAME_BYTES`` of UTF-8 (a 5000-character recipe name gave
    ``File name too long``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name[:MAX_NAME_BYTES]).strip(".") or "run"
    while len(safe.encode("utf-8")) > MAX_NAME_BYTES:
        safe = safe[:-1]
    return safe


def new_run_dir(root: str | Path, name: str) -> Path:
    """A new, empty, writable ``root/<name>-<YYYYmmdd-HHMMSS>[-i]``; raises :class:`RunDirError` (one
    line naming ``root`` and the OS reason) when it cannot be created."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = run_dir_name(name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            path = root / (f"{safe}-{stamp}" + (f"-{i}" if i else ""))
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise RunDirError(
            f"cannot create a run directory under '{preview(str(root))}' ({e.strerror or e}); "
            "pass --runs-dir with a writable path"
        ) from None
    return path


def check_writable(path: Path) -> None:
    if not os.access(path, os.W_OK):
        raise RunDirError(
            f"run directory '{preview(str(path))}' is not writable; fix its permissions or copy it elsewhere"
        )


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed as written."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites them) — written atomically."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            rec = _record(line)
            if rec is None:
                continue  # a line cut by a kill
            if rec.get("step", 0) <= step:
                kept.append(line)
        atomic_write_bytes(self.path, ("\n".join(kept) + "\n" if kept else "").encode())

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            rec = _record(line)
            if rec is not None:
                out.append(rec)
    return out


def _record(line: str) -> dict[str, Any] | None:
    """One metrics record, or None for a line that is not one (cut by a kill, edited, corrupt)."""
    try:
        rec = loads_json(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("step", 0), int | float):
        return None
    return rec
