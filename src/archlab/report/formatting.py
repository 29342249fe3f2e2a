"""Number formatting, used everywhere in reports.

* accuracy (a fraction in run files) is shown as a percent with two decimals: ``0.935`` →
  ``93.50%``; a mean ± std over seeds as ``93.50 ± 0.41%``;
* counts (params, FLOPs) as ``812``, ``5.2K``, ``11.7M``, ``1.8G``;
* other floats with four significant digits, integers with thousands separators;
* durations as ``12.3 s``, ``4m 05s``, ``1h 02m``.

Every function returns plain text; escaping is the template's job (``archlab.report.page``).
"""

from __future__ import annotations

import math
import re
from typing import Any

_NUMERIC = re.compile(r"[-+]?\d[\d.,]*[\sKMGT%smh±\d.,]*")  # "5.2K", "93.50 ± 0.41%", "4m 05s"


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def looks_numeric(v: Any) -> bool:
    """A number, or text that reads as one (``5.2K``, ``93.50 ± 0.41%``): right-aligned in tables."""
    return _num(v) or (isinstance(v, str) and _NUMERIC.fullmatch(v) is not None)


def fmt_value(v: Any) -> str:
    """A table cell: ``None`` → an em dash, ints with separators, floats to 4 significant digits."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) >= 1e4:
            return f"{v:,.0f}"
        if v == int(v) and abs(v) < 1e4:
            return f"{int(v)}"
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items())
    return str(v)


def fmt_count(v: Any) -> str:
    """Params / FLOPs: ``812``, ``5.2K``, ``11.7M``, ``1.8G``."""
    if not _num(v) or not math.isfinite(v):
        return fmt_value(v)
    a = abs(v)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if a >= scale:
            return f"{v / scale:.1f}{unit}"
    return f"{int(v)}" if v == int(v) else f"{v:.3g}"


def is_percent(metric: str) -> bool:
    return "accuracy" in metric


def fmt_metric(metric: str, v: Any) -> str:
    if not _num(v):
        return fmt_value(v)
    if is_percent(metric) and math.isfinite(v):
        return f"{100 * v:.2f}%"
    return fmt_value(float(v))


def fmt_mean_std(metric: str, stats: Any) -> str:
    """``{"mean", "std", "values"}`` → ``93.50 ± 0.41%`` (no ± for a single seed)."""
    if _num(stats):
        return fmt_metric(metric, stats)
    if not isinstance(stats, dict) or not _num(stats.get("mean")):
        return "—"
    mean, std = stats["mean"], stats.get("std")
    single = len(stats.get("values") or []) <= 1 and not std
    if is_percent(metric):
        if single or not _num(std):
            return f"{100 * mean:.2f}%"
        return f"{100 * mean:.2f} ± {100 * std:.2f}%"
    if single or not _num(std):
        return fmt_value(float(mean))
    return f"{fmt_value(float(mean))} ± {float(std):.2g}"


def fmt_seconds(v: Any) -> str:
    if not _num(v) or not math.isfinite(v):
        return fmt_value(v)
    if v < 60:
        return f"{v:.1f} s"
    if v < 3600:
        return f"{int(v // 60)}m {int(v % 60):02d}s"
    return f"{int(v // 3600)}h {int(v % 3600 // 60):02d}m"


def fmt_seconds_stats(stats: Any) -> str:
    if _num(stats):
        return fmt_seconds(stats)
    if not isinstance(stats, dict) or not _num(stats.get("mean")):
        return "—"
    std = stats.get("std")
    if _num(std) and std > 0 and len(stats.get("values") or []) > 1:
        return f"{fmt_seconds(stats['mean'])} ± {fmt_seconds(std)}"
    return fmt_seconds(stats["mean"])


def fmt_metrics(metrics: Any) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return "—"
    keys = sorted(metrics, key=lambda k: (k == "loss", k))  # headline metrics first, loss last
    return ", ".join(f"{k} {fmt_metric(k, metrics[k])}" for k in keys)
