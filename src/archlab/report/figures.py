"""Static PNG figures for reports: learning curves, scatter plots, bar charts.

Everything renders headless through Agg. Figures are built with the object API
(:class:`matplotlib.figure.Figure`), never registered with pyplot, so a report can be written from
a notebook or a worker thread without touching the user's interactive backend, and nothing is
left open after saving.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # never switch a backend someone already uses
    matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

DPI = 110
SIZE = (6.4, 4.0)

Records = list[dict[str, Any]]


def _new_figure(size: tuple[float, float] = SIZE) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, alpha=0.3)
    return fig, ax


def fit_titles(fig: Figure) -> None:
    """Wraps every title of ``fig`` onto as many lines as it needs to fit: the figure's title
    (``suptitle``) within the figure's width, each axes' title within its axes. Matplotlib never
    wraps a title, and a figure laid out with ``tight_layout`` cuts off what sticks out on both sides
    (a translation's or a run's name in a title is the user's text, of any length). Widths are
    measured with the figure's own renderer and font, not guessed from the number of characters."""
    renderer = fig.canvas.get_renderer()
    texts = [(ax.title, ax.bbox.width) for ax in fig.axes]
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None:
        texts.append((suptitle, fig.bbox.width))
    for text, room in texts:
        limit = 0.96 * room
        for _ in range(8):  # each pass re-wraps at the measured ratio; a few passes always fit
            s = text.get_text()
            width = text.get_window_extent(renderer).width if s else 0.0
            if width <= limit:
                break
            longest = max(len(line) for line in s.splitlines())
            chars = max(1, int(longest * limit / width))
            text.set_text("\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in s.splitlines()))


def _save(fig: Figure, path: str | Path, ax: Any = None, title: str | None = None) -> Path:
    """Writes ``fig`` as a PNG at ``path`` (folders made), ``title`` set on ``ax`` first and every title
    wrapped to fit (:func:`fit_titles`); returns the path."""
    if title:
        ax.set_title(title, fontsize=10)
    fit_titles(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    fig.clear()
    return path


def _human(v: float, _pos: Any = None) -> str:
    """Tick label for a count: ``500``, ``5K``, ``1.2M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _human_minor(v: float, _pos: Any = None) -> str:
    """Minor log ticks: label only 2, 3 and 5 times a power of ten, so labels never collide."""
    if v <= 0:
        return ""
    lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
    return _human(v) if lead in (2.0, 3.0, 5.0) else ""


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def _log_x(ax: Any, xs: Sequence[float], *, fit_short: bool = False) -> None:
    """A log x axis with :func:`_human` labels; ``fit_short``: a range of less than a decade is padded
    so that labels fit, and its minor ticks are labelled."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_human))
    if fit_short and max(xs) / min(xs) < 10:  # less than a decade: pad it so labels fit, label the minor ticks
        ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
        ax.xaxis.set_minor_formatter(FuncFormatter(_human_minor))
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _step_axis(ax: Any) -> None:
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _plot_curve(ax: Any, steps: Sequence[int], values: Sequence[float], label: str) -> Any:
    """One metric against step; points marked while there are fewer than 12. Returns the line."""
    (line,) = ax.plot(steps, values, marker="o" if len(steps) < 12 else None, ms=3, lw=1.5, label=label)
    return line


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def curve(records: Iterable[dict[str, Any]], metric: str, split: str | None) -> dict[int, float]:
    """``{step: value}`` of ``metric`` on ``split`` (the last record wins for a repeated step)."""
    out: dict[int, float] = {}
    for rec in records:
        if split is not None and rec.get("split") != split:
            continue
        v, step = rec.get(metric), rec.get("step")
        if _finite(v) and isinstance(step, int | float):
            out[int(step)] = float(v)
    return out


def mean_std_curve(runs: Sequence[Records], metric: str, split: str | None) -> tuple[list, list, list]:
    """Mean and std over seeds on the steps every seed logged.

    Seeds that logged on different step grids (no common step) fall back to the union of steps,
    each averaged over the seeds that have it. Returns ``(steps, means, stds)``.
    """
    curves = [c for c in (curve(r, metric, split) for r in runs) if c]
    if not curves:
        return [], [], []
    common = set(curves[0]).intersection(*curves[1:])
    steps = sorted(common) if common else sorted(set().union(*curves))
    means, stds = [], []
    for s in steps:
        vals = [c[s] for c in curves if s in c]
        m = sum(vals) / len(vals)
        means.append(m)
        stds.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)) if len(vals) > 1 else 0.0)
    return steps, means, stds


def learning_curves(
    series: dict[str, list[Records]],
    metric: str,
    split: str,
    path: str | Path,
    *,
    scale: float = 1.0,
    ylabel: str | None = None,
    title: str | None = None,
) -> Path:
    """Mean over seeds vs step with a shaded ±std band, one line per label.

    ``series`` maps a label to one list of ``metrics.jsonl`` records per seed; ``scale``
    multiplies values (100 shows accuracy as percent).
    """
    fig, ax = _new_figure()
    plotted = 0
    for label, runs in series.items():
        steps, means, stds = mean_std_curve(runs, metric, split)
        if not steps:
            continue
        m = [v * scale for v in means]
        s = [v * scale for v in stds]
        n = len([r for r in runs if curve(r, metric, split)])
        line = _plot_curve(ax, steps, m, f"{label} (n={n})" if n > 1 else str(label))
        if any(s):
            ax.fill_between(
                steps,
                [a - b for a, b in zip(m, s)],
                [a + b for a, b in zip(m, s)],
                color=line.get_color(),
                alpha=0.2,
                lw=0,
            )
        plotted += 1
    if not plotted:
        _no_data(ax)
    elif plotted > 1 or any(len(r) > 1 for r in series.values()):
        ax.legend(fontsize=8)
    _step_axis(ax)
    ax.set_ylabel(ylabel or f"{split} {metric}")
    return _save(fig, path, ax, title)


def split_curves(
    records: Records,
    metric: str,
    splits: Sequence[str],
    path: str | Path,
    *,
    scale: float = 1.0,
    ylabel: str | None = None,
    title: str | None = None,
) -> Path:
    """One run's ``metric`` on several splits (train / val / test) in one figure."""
    fig, ax = _new_figure()
    plotted = 0
    for split in splits:
        c = curve(records, metric, split)
        if not c:
            continue
        steps = sorted(c)
        _plot_curve(ax, steps, [c[s] * scale for s in steps], split)
        plotted += 1
    if plotted:
        ax.legend(fontsize=8)
    else:
        _no_data(ax)
    _step_axis(ax)
    ax.set_ylabel(ylabel or metric)
    return _save(fig, path, ax, title)


def metric_curves(
    records: Records,
    series: Sequence[tuple[str, str]],
    path: str | Path,
    *,
    ylabel: str = "loss",
    title: str | None = None,
) -> Path:
    """Several ``(metric, split)`` curves of one run in one figure, each labelled ``split metric``
    (a GAN's two players: train d_loss and g_loss, and their test values)."""
    fig, ax = _new_figure()
    plotted = 0
    for metric, split in series:
        c = curve(records, metric, split)
        if not c:
            continue
        steps = sorted(c)
        _plot_curve(ax, steps, [c[s] for s in steps], f"{split} {metric}")
        plotted += 1
    if plotted:
        ax.legend(fontsize=8)
    else:
        _no_data(ax)
    _step_axis(ax)
    ax.set_ylabel(ylabel)
    return _save(fig, path, ax, title)


def scatter(
    points: list[dict[str, Any]],
    xlabel: str,
    ylabel: str,
    path: str | Path,
    logx: bool = True,
    *,
    title: str | None = None,
) -> Path:
    """Labelled points (``label``, ``x``, ``y``, optional ``yerr`` / ``xerr``), e.g. accuracy vs params."""
    fig, ax = _new_figure()
    pts = [p for p in points if _finite(p.get("x")) and _finite(p.get("y"))]
    for p in pts:
        yerr = p.get("yerr") if _finite(p.get("yerr")) else None
        xerr = p.get("xerr") if _finite(p.get("xerr")) else None
        ax.errorbar(
            [p["x"]],
            [p["y"]],
            yerr=None if yerr is None else [yerr],
            xerr=None if xerr is None else [xerr],
            fmt="o",
            ms=6,
            capsize=3,
        )
        ax.annotate(str(p.get("label", "")), (p["x"], p["y"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if not pts:
        _no_data(ax)
    elif logx and all(p["x"] > 0 for p in pts):
        _log_x(ax, [p["x"] for p in pts], fit_short=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path, ax, title)


def bar(
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    path: str | Path,
    *,
    errors: Sequence[float] | None = None,
    title: str | None = None,
) -> Path:
    """A bar per label (optional error bars), e.g. a metric per model."""
    fig, ax = _new_figure()
    xs = list(range(len(labels)))
    vals = [v if _finite(v) else 0.0 for v in values]
    errs = None if errors is None else [e if _finite(e) else 0.0 for e in errors]
    ax.bar(xs, vals, yerr=errs, capsize=3 if errs else 0, color="#4c72b0")
    ax.set_xticks(xs)
    ax.set_xticklabels(
        [str(lbl) for lbl in labels],
        rotation=30 if len(labels) > 4 else 0,
        ha="right" if len(labels) > 4 else "center",
        fontsize=8,
    )
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.grid(False, axis="x")
    return _save(fig, path, ax, title)


def lines(
    series: dict[str, list[tuple[float, float, float]]],
    xlabel: str,
    ylabel: str,
    path: str | Path,
    *,
    logx: bool = True,
    annotate: dict[str, list[str]] | None = None,
    title: str | None = None,
) -> Path:
    """One line per label through ``(x, y, yerr)`` points, e.g. accuracy vs training-set size or vs MACs;
    ``annotate`` labels each point of a series (e.g. its width multiplier)."""
    fig, ax = _new_figure()
    plotted = 0
    for label, pts in series.items():
        texts = (annotate or {}).get(label) or [""] * len(pts)
        both = sorted((p, t) for p, t in zip(pts, texts) if _finite(p[0]) and _finite(p[1]))
        if not both:
            continue
        pts, texts = [b[0] for b in both], [b[1] for b in both]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        errs = [p[2] if _finite(p[2]) else 0.0 for p in pts]
        ax.errorbar(xs, ys, yerr=errs if any(errs) else None, marker="o", ms=4, lw=1.5, capsize=3, label=label)
        for (x, y, _), text in zip(pts, texts):
            if text:
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        plotted += 1
    if not plotted:
        _no_data(ax)
    else:
        ax.legend(fontsize=8)
        if logx and all(p[0] > 0 for pts in series.values() for p in pts):
            _log_x(ax, [p[0] for pts in series.values() for p in pts])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path, ax, title)


def attention_heatmap(
    source: Sequence[str],
    output: Sequence[str],
    weights: Any,
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """The attention of each output token (rows) over the source tokens (columns), weights in [0, 1]."""
    rows, cols = len(output), len(source)
    fig, ax = _new_figure((max(4.0, 0.45 * cols + 1.8), max(3.0, 0.38 * rows + 1.4)))
    im = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(cols), list(source), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), list(output), fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return _save(fig, path, ax, title)


def attention_grid(
    maps: Sequence[Any],
    columns: Sequence[str],
    rows: Sequence[str],
    titles: Sequence[str],
    path: str | Path,
    *,
    title: str | None = None,
    ncols: int = 2,
) -> Path:
    """Several attention maps side by side (one per head or layer): each (len(rows), len(columns)),
    weights in [0, 1]; queries down, keys across."""
    n = len(maps)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    cell = max(2.2, 0.07 * len(columns) + 1.2)  # inches per panel
    ratio = min(1.5, max(0.4, len(rows) / max(len(columns), 1)))
    fig = Figure(figsize=(cell * ncols + 0.8, cell * ratio * nrows + 0.8), dpi=DPI)
    FigureCanvasAgg(fig)
    im = None
    for i, (weights, name) in enumerate(zip(maps, titles)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        im = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks(range(len(columns)), list(columns), rotation=90, fontsize=6)
        ax.set_yticks(range(len(rows)), list(rows), fontsize=6)
    if im is not None:
        fig.colorbar(im, ax=fig.axes, fraction=0.02, pad=0.02, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=10)
    fit_titles(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", bbox_inches="tight")
    fig.clear()
    return path
