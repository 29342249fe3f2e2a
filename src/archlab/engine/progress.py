"""The progress bar (rich): step, loss, throughput, ETA. Silent when disabled or not a terminal,
where a plain line is logged at each logging step instead."""

from __future__ import annotations

import logging
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

log = logging.getLogger("archlab")


class Progress:
    def __init__(self, total: int | None, enabled: bool, description: str, start: int = 0):
        self.total, self.description = total, description
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self._bar: RichProgress | None = None
        self._t0, self._s0 = time.perf_counter(), start
        if self.tty:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, completed=start, stats="")

    def update(self, step: int, stats: dict[str, float] | None) -> None:
        text = None
        if stats is not None:
            rate = (step - self._s0) / max(time.perf_counter() - self._t0, 1e-9)
            parts = [f"{k} {v:.4g}" for k, v in stats.items() if k in ("loss", "accuracy", "lr")]
            text = " · ".join(parts) + f" · {rate:.1f} it/s"
        if self._bar is not None:
            if text is not None:
                self._bar.update(self._task, completed=step, stats=text)
            else:
                self._bar.update(self._task, completed=step)
        elif self.enabled and text is not None:
            total = f"/{self.total}" if self.total else ""
            log.info("%s step %d%s · %s", self.description, step, total, text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
