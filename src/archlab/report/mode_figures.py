"""Figures of the generative experiments: samples over a mixture's modes, a quantity over (step, x)
as a heatmap, and curves on a line with densities on a second axis. Headless (Agg), object API only,
as in :mod:`archlab.report.figures`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.report.figures import DPI, _save  # noqa: F401  (Agg is selected there)


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def mixture_panels(
    panels: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    cols: int,
    title: str | None = None,
) -> Path:
    """One scatter per panel: ``samples`` (N, 2) as small dots over the mixture's ``means`` (K, 2)
    (red crosses), with the panel's ``title``; panels fill rows of ``cols``; a panel of samples
    (N, 1) is drawn as a histogram over the means' positions instead."""
    rows = max(1, math.ceil(len(panels) / cols))
    fig = _figure(2.3 * cols, 2.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.axis("off")
            continue
        p = panels[i]
        x = np.asarray(p["samples"], dtype=np.float64)
        means = np.asarray(p["means"], dtype=np.float64)
        lo, hi = means.min(0) - p.get("margin", 1.0), means.max(0) + p.get("margin", 1.0)
        if x.shape[1] == 1:
            ax.hist(np.clip(x[:, 0], lo[0], hi[0]), bins=80, range=(lo[0], hi[0]), color="#4c72b0")
            for m in means[:, 0]:
                ax.axvline(m, color="red", lw=0.8)
        else:
            ax.scatter(np.clip(x[:, 0], lo[0], hi[0]), np.clip(x[:, 1], lo[1], hi[1]), s=1.5, alpha=0.4, lw=0)
            ax.scatter(means[:, 0], means[:, 1], marker="x", s=14, color="red", lw=0.8)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal")
        ax.set_title(p.get("title", ""), fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def heatmap(
    values: np.ndarray,
    xs: Sequence[float],
    ys: Sequence[float],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    colorbar: str,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
) -> Path:
    """``values`` (len(ys), len(xs)) as an image, x along the horizontal axis and y up (e.g. D(x) by
    training step), with a colour bar labelled ``colorbar``."""
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    im = ax.imshow(
        np.asarray(values, dtype=float),
        aspect="auto",
        origin="lower",
        extent=(xs[0], xs[-1], 0, len(ys)),
        cmap="coolwarm",
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ticks = np.linspace(0, len(ys) - 1, min(len(ys), 6)).round().astype(int)
    ax.set_yticks(ticks + 0.5)
    ax.set_yticklabels([f"{ys[t]:g}" for t in ticks], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, label=colorbar)
    return _save(fig, path, ax, title)


def curves_and_densities(
    x: np.ndarray,
    curves: dict[str, np.ndarray],
    densities: dict[str, np.ndarray],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    density_label: str = "density",
    hline: float | None = None,
    title: str | None = None,
) -> Path:
    """Curves on the left axis (e.g. D(x) and D*(x)), densities shaded on a right axis, an optional
    horizontal line (e.g. ½)."""
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, alpha=0.3)
    right = ax.twinx()
    for (label, d), colour in zip(densities.items(), ("#999999", "#e08a3c", "#55a868")):
        right.fill_between(x, d, alpha=0.25, color=colour, label=label, lw=0)
    right.set_ylabel(density_label)
    right.set_ylim(bottom=0)
    for label, y in curves.items():
        ax.plot(x, y, lw=1.6, label=label)
    if hline is not None:
        ax.axhline(hline, color="black", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zorder(right.get_zorder() + 1)
    ax.patch.set_visible(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = right.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    return _save(fig, path, ax, title)
