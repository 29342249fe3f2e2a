"""``archlab report``: one page for everything under a runs directory.

A directory with ``compare.json`` or ``experiment.json`` is one entry, whatever run directories
it holds; a directory with ``summary.json`` outside those is a standalone training run. A run
directory with metrics but no summary yet (still training, or killed) is listed as incomplete.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlab.engine.rundir import read_metrics
from archlab.report.formatting import fmt_count, fmt_metrics, fmt_seconds
from archlab.report.page import Section, Table, render_page
from archlab.report.sections import compare_section, experiment_section, read_json_file, run_figures, write_html
from archlab.utils.errors import RunDirError

log = logging.getLogger("archlab")

SKIP_DIRS = {"checkpoints", "tb", "figures", "__pycache__"}


@dataclass
class Entry:
    kind: str  # "compare" | "experiment" | "run" | "incomplete"
    path: Path
    time: float


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _stamp(value: Any, fallback: Path) -> float:
    """``finished_at`` (``%Y-%m-%dT%H:%M:%S``, local time) as epoch seconds, else the file's mtime."""
    if isinstance(value, str):
        try:
            return time.mktime(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            pass
    return _mtime(fallback)


def find_entries(runs_dir: Path) -> list[Entry]:
    """Every compare, experiment and standalone run under ``runs_dir``, newest first."""
    found: list[Entry] = []
    for root, dirs, files in os.walk(runs_dir):
        here = Path(root)
        kind = None
        for name, k in (
            ("experiment.json", "experiment"),
            ("compare.json", "compare"),
            ("summary.json", "run"),
        ):
            if name in files:
                kind = k
                break
        if kind is None and "metrics.jsonl" in files and "recipe.yaml" in files:
            kind = "incomplete"
        if kind is not None:
            dirs[:] = []  # everything inside belongs to this entry
            marker = {
                "experiment": "experiment.json",
                "compare": "compare.json",
                "run": "summary.json",
                "incomplete": "metrics.jsonl",
            }[kind]
            found.append(Entry(kind, here, _mtime(here / marker)))
        else:
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
    return found


def _figures(d: Path, summary: dict[str, Any], records: list | None = None) -> list[tuple[Path, str]]:
    """A run's learning curves; a run directory we cannot write to is listed without them."""
    try:
        return run_figures(d, summary, records)
    except (RunDirError, OSError) as e:
        log.warning("report: no figures for %s: %s", d, e)
        return []


def _run_row(entry: Entry, runs_dir: Path) -> tuple[list[Any], list[tuple[Path, str]], float]:
    d = entry.path
    rel = str(d.relative_to(runs_dir)) if d != runs_dir else d.name
    if entry.kind == "incomplete":
        records = read_metrics(d)
        last = max((r.get("step", 0) for r in records), default=0)
        row = [d.name, "—", "—", "—", "—", "—", f"incomplete (no summary.json; last step {last})", rel]
        return row, _figures(d, {"name": d.name}, records), entry.time
    summary = read_json_file(d / "summary.json", "run")
    t = _stamp(summary.get("finished_at"), d / "summary.json")
    row = [
        str(summary.get("name") or d.name),
        str(summary.get("model", "—")),
        str(summary.get("dataset", "—")),
        fmt_metrics(summary.get("test")),
        fmt_count(summary.get("params")),
        fmt_seconds(summary.get("wall_time_s")),
        str(summary.get("status", "—")),
        rel,
    ]
    return row, _figures(d, summary), t


def build_report(runs_dir: str | Path) -> Path:
    """Write ``runs_dir/report.html`` covering every compare, experiment and run under it."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunDirError(
            f"no archlab runs under '{runs_dir}' (no such directory): run `archlab train` or `archlab compare` first"
        )
    entries = find_entries(runs_dir)
    if not entries:
        raise RunDirError(f"no archlab runs under '{runs_dir}': run `archlab train` or `archlab compare` first")

    dated: list[tuple[float, Section]] = []
    runs: list[tuple[float, list[Any], list[tuple[Path, str]]]] = []
    skipped: list[str] = []
    for e in entries:
        rel = str(e.path.relative_to(runs_dir)) if e.path != runs_dir else e.path.name
        try:
            if e.kind == "compare":
                s = compare_section(e.path)
                s.title = f"Compare: {s.title}"
                dated.append((e.time, s))
            elif e.kind == "experiment":
                s = experiment_section(e.path)
                s.title = f"Experiment: {s.title}"
                dated.append((e.time, s))
            else:
                row, figures, t = _run_row(e, runs_dir)
                runs.append((t, row, figures))
        except RunDirError as err:
            log.warning("report: skipping %s: %s", rel, err)
            skipped.append(f"{rel}: {err}")

    sections = [s for _, s in sorted(dated, key=lambda x: -x[0])]
    if runs:
        runs.sort(key=lambda x: -x[0])
        sections.append(
            Section(
                title=f"Training runs ({len(runs)})",
                tables=[
                    Table(
                        [
                            "Name",
                            "Model",
                            "Dataset",
                            "Test metrics",
                            "Params",
                            "Wall time",
                            "Status",
                            "Directory",
                        ],
                        [row for _, row, _ in runs],
                        caption="Standalone training runs, newest first",
                    )
                ],
                figures=[f for _, _, figures in runs for f in figures],
            )
        )
    if skipped:
        sections.append(Section(title="Skipped", text=["These directories could not be read:"] + skipped))
    if not sections:
        raise RunDirError(f"no readable archlab runs under '{runs_dir}': run `archlab train` first")
    counts = {k: sum(e.kind == k for e in entries) for k in ("compare", "experiment")}
    intro = (
        f"{counts['compare']} comparison(s), {counts['experiment']} experiment(s) and {len(runs)} "
        f"training run(s) under {runs_dir.resolve()}, newest first."
    )
    return write_html(runs_dir / "report.html", render_page("archlab report", sections, intro=intro))
