"""Figures of GAN and diffusion runs: what ``archlab sample`` draws for a generative model.

Everything goes through the contract every generative model keeps (``models/gan``,
``models/diffusion``): ``sample(n, generator=None, **kw)`` returns n examples in the data set's own
shape and units ((n, C, H, W) images in [0, 1], (n, 2) points), in eval mode, without gradients; a
GAN also has ``latent_dim`` and ``generate(z)`` (z (n, latent_dim) → examples); a diffusion model's
``sample`` also takes ``steps``, ``sampler`` ("ddpm" | "ddim"), ``eta`` and ``return_chain`` (→ the
final examples and a list of (n, ...) intermediate x_t at about 10 evenly spaced times). Nothing here
re-implements a model: the figures show the code the trainer trained.

Letters: n examples, D = ``latent_dim``, T points along a latent path, (C, H, W) an image.

Figures (``write_generative_figures``), by data: images — a grid of samples; GAN latent
interpolations, one strip per pair of z ~ N(0, I), linear and spherical (:func:`report.latent.lerp`,
:func:`report.latent.slerp`; White 2016 §2.1); a diffusion model's denoising chain, one row per
example from x_T (pure noise) to x_0. 2-D points — samples scattered over the data's test points; GAN
interpolation paths drawn as curves in data space; the chain as one panel per time. 1-D values —
histograms of samples against the data. Each writer records its figures and captions in
``figures/tools.json``; the run's report shows them after the learning curves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.report.figures import DPI, _save
from archlab.report.latent import image_grid, image_rows, path, record_figures
from archlab.utils.progress import SamplingProgress

SAMPLERS = ("ddpm", "ddim")


# -- the contract ----------------------------------------------------------------------------------
def is_gan(model: nn.Module) -> bool:
    """Whether ``model`` keeps the GAN contract (``latent_dim``, ``generate``, ``sample``,
    ``generator`` and ``discriminator``)."""
    return all(hasattr(model, a) for a in ("latent_dim", "generate", "sample", "generator", "discriminator"))


def is_diffusion(model: nn.Module) -> bool:
    """Whether ``model`` keeps the diffusion contract: a ``sample`` that takes ``return_chain``."""
    sample = getattr(model, "sample", None)
    if not callable(sample):
        return False
    try:
        return "return_chain" in inspect.signature(sample).parameters
    except (TypeError, ValueError):
        return False


def is_generative(model: nn.Module) -> bool:
    """A GAN or a diffusion model (an autoencoder is handled by :mod:`archlab.report.latent`)."""
    return is_gan(model) or is_diffusion(model)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def sampling_generator(model: nn.Module, seed: int) -> torch.Generator:
    """The seeded generator ``model.sample`` takes: a CPU one for every family (GAN and diffusion
    models draw on the generator's device and move the noise, ``utils.seed.randn_on``), so a seed gives
    the same samples on every device."""
    return torch.Generator().manual_seed(seed)


def data_kind(x: torch.Tensor | np.ndarray) -> str:
    """``image`` for (N, C ∈ {1, 3}, H, W), ``points`` for (N, 2), ``values`` for (N,) or (N, 1),
    else ``other`` (drawn as lines, one panel per example)."""
    shape = tuple(x.shape)
    if len(shape) == 4 and shape[1] in (1, 3) and min(shape[2:]) > 1:
        return "image"
    if len(shape) == 2 and shape[1] == 2:
        return "points"
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return "values"
    return "other"


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)


# -- drawing ----------------------------------------------------------------------------------------
def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _points_over_data(ax: Any, data: np.ndarray, samples: np.ndarray, adjustable: str = "datalim") -> None:
    ax.scatter(data[:, 0], data[:, 1], s=4, color="0.7", lw=0, label="data (test)")
    ax.scatter(samples[:, 0], samples[:, 1], s=5, color="tab:red", alpha=0.6, lw=0, label="samples")
    ax.set_aspect("equal", adjustable=adjustable)


def _values_over_data(ax: Any, data: np.ndarray, samples: np.ndarray) -> None:
    d, s = data.reshape(-1), samples.reshape(-1)
    lo, hi = float(min(d.min(), s.min())), float(max(d.max(), s.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 60)
    ax.hist(d, bins=bins, density=True, alpha=0.5, color="0.5", label="data (test)")
    ax.hist(s, bins=bins, density=True, alpha=0.5, color="tab:red", label="samples")


def samples_figure(samples: torch.Tensor, data: torch.Tensor, out: Path, *, title: str) -> Path:
    """Samples (n, ...) drawn for their kind: an image grid, a scatter over the data's points, or
    histograms against the data's values."""
    kind = data_kind(samples)
    if kind == "image" or kind == "other":
        return image_grid(samples, out, title=title)
    fig = _figure((5.6, 5.0) if kind == "points" else (6.4, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    if kind == "points":
        _points_over_data(ax, _np(data), _np(samples))
    else:
        _values_over_data(ax, _np(data), _np(samples))
    ax.legend(fontsize=7, loc="best", framealpha=0.6)
    return _save(fig, out, ax, title)


@torch.no_grad()
def latent_paths(model: nn.Module, pairs: int, steps: int, mode: str, generator: torch.Generator) -> list[torch.Tensor]:
    """GAN interpolations: ``pairs`` strips, each ``generate`` of a ``steps``-point path (``linear`` or
    ``spherical``) between two draws z₀, z₁ ~ N(0, I) of ``generator``; each strip (steps, ...)."""
    ends = torch.randn(pairs, 2, int(model.latent_dim), generator=generator)
    dev = _device(model)
    model.eval()
    return [model.generate(path(z0, z1, steps, mode).to(dev)).float().cpu() for z0, z1 in ends]


def interpolation_figure(strips: list[torch.Tensor], data: torch.Tensor, out: Path, *, title: str) -> Path:
    """Image strips as rows; for 2-D points each strip is a curve over the data (its start marked);
    for 1-D values each strip is G(z_t) against the position t along the path."""
    kind = data_kind(strips[0])
    if kind == "values":
        fig = _figure((6.4, 4.0))
        ax = fig.add_subplot(1, 1, 1)
        for k, s in enumerate(strips):
            v = _np(s).reshape(-1)
            ax.plot(np.linspace(0.0, 1.0, len(v)), v, "-o", ms=2.5, lw=1.0, label=f"path {k + 1}")
        ax.set_xlabel("t along the path z(t)", fontsize=8)
        ax.set_ylabel("G(z(t))", fontsize=8)
        ax.legend(fontsize=7, loc="best", framealpha=0.6)
        return _save(fig, out, ax, title)
    if kind != "points":
        return image_rows(strips, out, title=title)
    fig = _figure((5.6, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    d = _np(data)
    ax.scatter(d[:, 0], d[:, 1], s=4, color="0.7", lw=0, label="data (test)")
    for k, s in enumerate(strips):
        p = _np(s)
        line = ax.plot(p[:, 0], p[:, 1], "-o", ms=2.5, lw=1.0, label=f"path {k + 1}")[0]
        ax.plot(p[:1, 0], p[:1, 1], "s", ms=5, color=line.get_color())
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7, loc="best", framealpha=0.6)
    return _save(fig, out, ax, title)


def chain_figure(chain: list[torch.Tensor], data: torch.Tensor, out: Path, *, rows: int, title: str) -> Path:
    """A denoising chain (list of (n, ...) x_t, noise first): images as one row per example (the
    first ``rows``), columns in time order; 2-D points as one scatter panel per time."""
    if data_kind(chain[0]) == "image":
        per_example = [torch.stack([c[i] for c in chain]) for i in range(min(rows, len(chain[0])))]
        return image_rows(per_example, out, title=title)
    cols = len(chain)
    fig = _figure((1.9 * cols + 0.6, 2.3))
    d = _np(data)
    axes = fig.subplots(1, cols, sharex=True, sharey=True, squeeze=False)[0]  # one scale: noise shrinks to data
    for j, (ax, c) in enumerate(zip(axes, chain)):
        if data_kind(c) == "points":
            _points_over_data(ax, d, _np(c), adjustable="box")  # shared axes keep one scale
        else:
            _values_over_data(ax, d, _np(c))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{j + 1}/{cols}", fontsize=7)
    fig.suptitle(title, fontsize=8)
    return _save(fig, out)


# -- what `archlab sample` writes --------------------------------------------------------------------
def write_generative_figures(
    model: nn.Module,
    data: torch.Tensor,
    out_dir: str | Path,
    *,
    n: int = 64,
    steps: int = 10,
    pairs: int = 4,
    seed: int = 0,
    name: str = "",
    sampler: str | None = None,
    sample_steps: int | None = None,
    eta: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[Path, str]]:
    """PNG figures of a GAN or diffusion ``model`` against test examples ``data`` (N, ...): ``n``
    samples, and for a GAN ``pairs`` latent interpolations of ``steps`` points (linear and spherical),
    for a diffusion model the denoising chain of ``min(n, 8)`` examples with ``sampler``,
    ``sample_steps`` and ``eta``. Written to ``out_dir`` (created) and listed in its ``tools.json``;
    returns (path, caption) for each. Every draw comes from one generator seeded with ``seed``.
    ``progress`` receives :class:`~archlab.utils.progress.SamplingProgress` lines during a diffusion
    model's chains (minutes on a CPU for all 1,000 steps of a U-Net).

    Raises ValueError when ``model`` keeps neither contract (the model's own checks raise for bad
    ``sample_steps``/``eta``)."""
    if not is_generative(model):
        raise ValueError(f"{type(model).__name__} keeps neither the GAN nor the diffusion sampling contract")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = f"{name}: " if name else ""
    written: list[tuple[Path, str]] = []
    model.eval()
    g = sampling_generator(model, seed)
    kind = data_kind(data)
    if is_diffusion(model):
        how = {"sampler": sampler or "ddpm", "steps": sample_steps, "eta": eta}
        desc = f"{how['sampler'].upper()}" + (f", {sample_steps} steps" if sample_steps else ", all steps")
        desc += f", η = {eta:g}" if how["sampler"] == "ddim" else ""
        report = (lambda what, k: SamplingProgress(progress, what, k).options(model.sample, 0, k)) if progress else None
        with torch.no_grad():
            samples = model.sample(n, generator=g, **how, **(report("samples", n) if report else {})).float().cpu()
        cap = f"{label}{n} samples ({desc}; seed {seed})"
        written.append((samples_figure(samples, data, out / "gen-samples.png", title=f"{label}samples ({desc})"), cap))
        rows = min(n, 8)
        k = rows if kind == "image" else n
        with torch.no_grad():
            _, chain = model.sample(k, generator=g, return_chain=True, **how, **(report("chain", k) if report else {}))
        chain = [c.float().cpu() for c in chain]
        cap = f"{label}the denoising chain ({desc}): {len(chain)} times from x_T (noise, left) to x_0 (right)" + (
            f", one row per example ({rows})" if kind == "image" else f", {n} samples per panel"
        )
        written.append(
            (chain_figure(chain, data, out / "gen-chain.png", rows=rows, title=f"{label}denoising chain ({desc})"), cap)
        )
    else:
        with torch.no_grad():
            samples = model.sample(n, generator=g).float().cpu()
        cap = f"{label}{n} samples G(z), z ~ N(0, I) (seed {seed})"
        written.append((samples_figure(samples, data, out / "gen-samples.png", title=f"{label}samples"), cap))
        for mode in ("linear", "spherical"):
            strips = latent_paths(model, pairs, steps, mode, g)  # z drawn on the CPU, moved to the model
            cap = f"{label}{mode} interpolation between {pairs} pairs of z ~ N(0, I), {steps} points each, G(z) drawn"
            fig = interpolation_figure(
                strips, data, out / f"gen-interpolation-{mode}.png", title=f"{label}{mode} paths"
            )
            written.append((fig, cap))
    record_figures(out, written)
    return written
