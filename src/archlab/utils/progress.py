"""Progress lines for long work that is not a training run (a training run has its own bar): how
often to print them, durations as text, and :class:`SamplingProgress` for drawing many samples
from a generative model — a 1,000-step diffusion chain of a U-Net takes minutes on a CPU."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

PROGRESS_EVERY_S = 15.0  # seconds between progress lines


def duration_text(seconds: float) -> str:
    """``seconds`` as ``4m05s`` or ``1h02m`` (progress lines' ETAs)."""
    s = max(0, round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def takes_callback(sample: Callable[..., Any]) -> bool:
    """Whether a model's ``sample`` reports its steps through a ``callback(done, total)`` argument."""
    try:
        return "callback" in inspect.signature(sample).parameters
    except (TypeError, ValueError):
        return False


class SamplingProgress:
    """``sampling LABEL: 37 % of 2,000, ETA 4m05s`` through ``emit``, at most one line every
    ``PROGRESS_EVERY_S`` seconds (work shorter than that prints nothing). The fraction counts finished
    samples and, inside a batch, the steps of a model whose ``sample`` takes a ``callback``."""

    def __init__(self, emit: Callable[[str], None], label: str, n: int):
        self.emit, self.label, self.n = emit, label, n
        self.t0 = self.last = time.perf_counter()

    def update(self, done: float) -> None:
        """``done`` of the ``n`` samples finished (fractional inside a batch)."""
        now = time.perf_counter()
        if now - self.last < PROGRESS_EVERY_S or done <= 0:
            return
        self.last = now
        eta = (now - self.t0) / done * (self.n - done)
        self.emit(f"sampling {self.label}: {100 * done / self.n:.0f} % of {self.n:,}, ETA {duration_text(eta)}")

    def batch(self, start: int, k: int) -> Callable[[int, int], None]:
        """The ``callback(done, total)`` for a batch of ``k`` samples after the first ``start``."""
        return lambda i, total: self.update(start + k * i / total)

    def options(self, sample: Callable[..., Any], start: int, k: int) -> dict[str, Any]:
        """``{"callback": …}`` for ``sample`` when it takes one, else ``{}``: what to add to its keywords."""
        return {"callback": self.batch(start, k)} if takes_callback(sample) else {}
