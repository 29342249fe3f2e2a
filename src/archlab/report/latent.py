"""Latent-space tools for autoencoder runs: what ``archlab sample`` and ``archlab embed`` draw.

Every function works through the autoencoder interface the models share (``models/autoencoder``):
``latent_dim``, ``encode(x) -> z`` (the deterministic code, μ for a VAE), ``decode(z) -> x̂`` in the
input's shape and range, and for a VAE ``sample_prior(n, generator)``. Nothing here re-implements a
model: the figures show the code the trainer trained.

Letters: N examples, D = ``latent_dim``, T points along a path, (C, H, W) an image, (C, L) a signal.

Equations:
    lerp(z₀, z₁; t) = (1 − t) z₀ + t z₁
    slerp(z₀, z₁; t) = sin((1 − t) Ω)/sin Ω · z₀ + sin(t Ω)/sin Ω · z₁,   cos Ω = z₀·z₁ / (‖z₀‖ ‖z₁‖)

slerp is Shoemake's spherical interpolation (SIGGRAPH 1985), proposed for the latents of generative
models with a Gaussian prior by White, *Sampling Generative Networks* (arXiv:1609.04468, §2.1):
a linear path between two draws of N(0, I) in high dimension passes near the origin, where the prior
puts almost no mass; slerp keeps the norm in between. For (nearly) parallel codes it is lerp.

Figures (``write_sample_figures``): prior samples (VAE), reconstructions beside their inputs, linear
(and spherical for a VAE) interpolation strips between pairs of test examples, and latent traversals
(one code dimension swept over ±3 standard deviations of the test codes, the others fixed). The
embedding (``write_embedding``) saves the test codes as ``.npy`` and scatters them coloured by class —
directly when D = 2, else after PCA (scikit-learn) or UMAP (umap-learn, McInnes et al. 2018).
Each writer records its figures and captions in ``figures/tools.json``; the run's report
(:func:`archlab.report.sections.run_figures`) shows them after the learning curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.report.figures import DPI, _save
from archlab.utils.errors import ConfigError
from archlab.utils.io import atomic_write_json, read_json

TOOLS_MANIFEST = "tools.json"  # figures/tools.json: [{file, caption}, ...]
PROJECTIONS = ("auto", "pca", "umap")
UMAP_NEIGHBOURS = 15  # umap-learn's default n_neighbors
UMAP_MIN_CODES = UMAP_NEIGHBOURS + 1
TRAVERSAL_SPAN = 3.0  # standard deviations each side of the mean code


# -- the interface ---------------------------------------------------------------------------------
def is_autoencoder(model: nn.Module) -> bool:
    """Whether ``model`` exposes the autoencoder interface (``latent_dim``, ``encode``, ``decode``)."""
    return all(hasattr(model, a) for a in ("latent_dim", "encode", "decode"))


def is_vae(model: nn.Module) -> bool:
    """Whether ``model`` also has a prior to sample (``sample_prior``)."""
    return is_autoencoder(model) and hasattr(model, "sample_prior")


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def encode_all(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Codes z (N, D) of inputs x (N, ...) in eval mode, in batches; float32 on the CPU."""
    model.eval()
    dev = _device(model)
    return torch.cat([model.encode(x[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decode_all(model: nn.Module, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Decoded x̂ (N, ...) of codes z (N, D) in eval mode, in batches; float32 on the CPU."""
    model.eval()
    dev = _device(model)
    return torch.cat([model.decode(z[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(z), batch_size)])


# -- paths in the latent space ---------------------------------------------------------------------
def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation: z0, z1 (D,), t (T,) in [0, 1] → (T, D)."""
    t = t.reshape(-1, 1).to(z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 §2.1): z0, z1 (D,), t (T,) → (T, D).

    Falls back to :func:`lerp` when the angle Ω between the codes is below ``eps`` (sin Ω → 0)."""
    t = t.reshape(-1, 1).to(z0)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < eps:
        return lerp(z0, z1, t.flatten())
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


def path(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """``steps`` ≥ 2 codes from z0 to z1 inclusive (T = steps, D): ``linear`` or ``spherical``."""
    if steps < 2:
        raise ValueError(f"a path needs at least 2 points, got {steps}")
    t = torch.linspace(0.0, 1.0, steps)
    if mode == "linear":
        return lerp(z0, z1, t)
    if mode == "spherical":
        return slerp(z0, z1, t)
    raise ValueError(f"interpolation mode must be 'linear' or 'spherical', got {mode!r}")


def traversal_codes(
    base: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dims: Sequence[int], steps: int
) -> torch.Tensor:
    """Latent traversals: for each dimension d in ``dims`` the code ``base`` with z[d] swept over
    mean[d] + s·std[d], s ∈ linspace(−3, 3, steps). Returns (len(dims) · steps, D), dimension-major."""
    s = torch.linspace(-TRAVERSAL_SPAN, TRAVERSAL_SPAN, steps)
    rows = []
    for d in dims:
        z = base.repeat(steps, 1)  # (steps, D)
        z[:, d] = mean[d] + s * std[d]
        rows.append(z)
    return torch.cat(rows)


def pick_pairs(n: int, y: torch.Tensor | None, n_pairs: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """``n_pairs`` index pairs among ``n`` test examples, of different classes where class labels y
    (n,) are given, each second index used once."""
    pairs: list[tuple[int, int]] = []
    order = torch.randperm(n, generator=generator).tolist()
    for i in order:
        if len(pairs) == n_pairs:
            break
        for j in order[::-1]:
            if j != i and (y is None or y.ndim != 1 or int(y[i]) != int(y[j])) and j not in (p[1] for p in pairs):
                pairs.append((i, j))
                break
    return pairs


# -- projections -----------------------------------------------------------------------------------
def project_2d(z: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """Codes (N, D) → (N, 2) for a scatter, and what was done. D ≤ 2 is shown as is (D = 1 against
    the example's index); ``auto`` is PCA; ``umap`` is umap-learn's UMAP (15 neighbours, seeded).
    Raises ConfigError for UMAP on fewer than 16 codes."""
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    n, d = z.shape
    if d == 2:
        return z.astype(np.float32), "the codes themselves (latent_dim = 2)"
    if d == 1:
        return np.stack([np.arange(n, dtype=np.float32), z[:, 0]], 1), "z against the example index (latent_dim = 1)"
    if method == "umap":
        if n < UMAP_MIN_CODES:  # umap-learn's spectral start fails outright on ≤ 3 points, is meaningless on a few
            raise ConfigError(
                f"--projection umap: {n} codes are too few for UMAP's {UMAP_NEIGHBOURS} neighbours (at least "
                f"{UMAP_MIN_CODES}); use --projection pca, or more test examples (--limit)"
            )
        import umap  # umap-learn; imported only here (it compiles with numba on first use)

        xy = umap.UMAP(n_components=2, n_neighbors=UMAP_NEIGHBOURS, random_state=seed, n_jobs=1).fit_transform(z)
        return np.asarray(xy, np.float32), f"UMAP of the {d}-dimensional codes (umap-learn)"
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(z)
    ev = pca.explained_variance_ratio_.sum()
    return pca.transform(z).astype(np.float32), f"PCA of the {d}-dimensional codes ({100 * ev:.0f}% of the variance)"


# -- figures ---------------------------------------------------------------------------------------
def _new(rows: int, cols: int, cell: float = 0.62) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(2.0, cols * cell + 1.2), max(1.2, rows * cell + 0.5)), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _draw(ax: Any, x: np.ndarray) -> None:
    """One example: an image (C ∈ {1, 3}, H, W) in [0, 1], else a signal/vector as lines."""
    ax.set_xticks([])
    ax.set_yticks([])
    if x.ndim == 3 and x.shape[0] in (1, 3) and min(x.shape[1:]) > 1:
        img = np.clip(x, 0.0, 1.0)
        if x.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(img.transpose(1, 2, 0), interpolation="nearest")
        for s in ax.spines.values():
            s.set_visible(False)
    else:
        for row in x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None]:
            ax.plot(row, lw=0.8)


def _is_image(a: np.ndarray) -> bool:
    return a.ndim == 4 and a.shape[1] in (1, 3) and min(a.shape[2:]) > 1


def _tile(arrays: Sequence[np.ndarray], pad: int = 2) -> np.ndarray:
    """Rows of images (each (T, C, H, W) in [0, 1]) as one (rows·(H+pad), cols·(W+pad), C) array on white."""
    c, h, w = arrays[0].shape[1:]
    cols = max(len(a) for a in arrays)
    out = np.ones(((h + pad) * len(arrays) - pad, (w + pad) * cols - pad, c), dtype=np.float32)
    for i, a in enumerate(arrays):
        for j, img in enumerate(np.clip(a, 0.0, 1.0)):
            out[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = img.transpose(1, 2, 0)
    return out


def image_rows(
    rows: Sequence[torch.Tensor | np.ndarray],
    path: str | Path,
    *,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A grid with one row per entry of ``rows`` (each (T, ...) examples, T columns): images are tiled
    into one picture (grey for one channel), signals and vectors drawn as lines, one panel each."""
    arrays = [r.detach().cpu().float().numpy() if isinstance(r, torch.Tensor) else np.asarray(r) for r in rows]
    cols = max(len(a) for a in arrays)
    if all(_is_image(a) for a in arrays) and len({a.shape[1:] for a in arrays}) == 1:
        h, w = arrays[0].shape[2:]
        fig = _new(len(arrays), cols, cell=0.62 * max(1.0, min(h, w) / 28) ** 0.5)
        ax = fig.add_subplot(1, 1, 1)
        tiled = _tile(arrays)
        ax.imshow(tiled[..., 0] if tiled.shape[-1] == 1 else tiled, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([(h + 2) * i + h / 2 for i in range(len(arrays))] if row_labels else [])
        if row_labels:
            ax.set_yticklabels(list(row_labels), fontsize=7)
        for s in ax.spines.values():
            s.set_visible(False)
    else:
        fig = _new(len(arrays), cols)
        axes = fig.subplots(len(arrays), cols, squeeze=False)
        for i, a in enumerate(arrays):
            for j in range(cols):
                if j < len(a):
                    _draw(axes[i][j], a[j])
                else:
                    axes[i][j].axis("off")
            if row_labels:
                axes[i][0].set_ylabel(row_labels[i], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def image_grid(x: torch.Tensor | np.ndarray, path: str | Path, *, cols: int = 8, title: str | None = None) -> Path:
    """Examples x (N, ...) tiled ``cols`` to a row."""
    rows = [x[i : i + cols] for i in range(0, len(x), cols)]
    return image_rows(rows, path, title=title)


def latent_scatter(
    xy: np.ndarray,
    labels: np.ndarray | None,
    path: str | Path,
    *,
    classes: Sequence[str] = (),
    title: str | None = None,
    xlabel: str = "dimension 1",
    ylabel: str = "dimension 2",
    ax: Any = None,
    legend: bool = True,
) -> Path | None:
    """Points (N, 2) coloured by integer class ``labels`` (legend from ``classes``). Draws into ``ax``
    when given (and returns None), else into a new figure saved at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    own = ax is None
    if own:
        fig = Figure(figsize=(6.4, 5.2), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    size = max(1.0, min(12.0, 4000.0 / max(1, len(xy))))
    if labels is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        from matplotlib import colormaps

        cmap = colormaps["tab10" if labels.max(initial=0) < 10 else "tab20"]
        for k in np.unique(labels):
            m = labels == k
            name = classes[k] if 0 <= k < len(classes) else str(k)
            ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(int(k) % cmap.N), label=name, alpha=0.7, lw=0)
        if legend:
            ax.legend(fontsize=7, markerscale=max(1.0, 12 / size), loc="best", framealpha=0.6)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.7, lw=0)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path) if own else None


# -- the manifest the report reads -----------------------------------------------------------------
def _manifest(fig_dir: Path) -> list[dict[str, str]]:
    try:
        known = read_json(fig_dir / TOOLS_MANIFEST)
    except (OSError, ValueError):
        return []
    if not isinstance(known, list):
        return []
    return [e for e in known if isinstance(e, dict) and isinstance(e.get("file"), str) and "/" not in e["file"]]


def record_figures(fig_dir: Path, figures: Sequence[tuple[Path, str]]) -> None:
    """Add ``figures`` (path, caption) to ``fig_dir/tools.json``, a list of {file, caption} in the
    order written; a figure written again replaces its entry (and moves to the end)."""
    names = {Path(p).name for p, _ in figures}
    known = [e for e in _manifest(fig_dir) if e["file"] not in names]
    known += [{"file": Path(p).name, "caption": caption} for p, caption in figures]
    atomic_write_json(fig_dir / TOOLS_MANIFEST, known)


def tool_figures(fig_dir: Path) -> list[tuple[Path, str]]:
    """The figures ``tools.json`` lists that exist, in the order written (a damaged manifest: none)."""
    return [
        (fig_dir / e["file"], str(e.get("caption", ""))) for e in _manifest(fig_dir) if (fig_dir / e["file"]).is_file()
    ]


# -- what `archlab sample` writes --------------------------------------------------------------------
def write_sample_figures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    out_dir: str | Path,
    *,
    n: int = 32,
    steps: int = 10,
    pairs: int = 4,
    seed: int = 0,
    name: str = "",
) -> list[tuple[Path, str]]:
    """PNG grids of an autoencoder on test examples x (N, ...) with labels y: prior samples (VAE),
    reconstructions beside inputs, interpolation strips (linear; spherical too for a VAE) and latent
    traversals. Written to ``out_dir`` (created) and listed in its ``tools.json``; returns
    (path, caption) for each. ``n`` examples (≥ 1), ``steps`` points per path (≥ 2)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    label = f"{name}: " if name else ""
    written: list[tuple[Path, str]] = []
    vae = is_vae(model)
    model.eval()

    if vae:
        with torch.no_grad():
            samples = model.sample_prior(n, generator=g).float().cpu()
        cap = f"{label}{n} samples from the prior z ~ N(0, I), decoded (seed {seed})"
        written.append((image_grid(samples, out / "ae-prior-samples.png", title=f"{label}prior samples"), cap))

    idx = torch.randperm(len(x), generator=g)[: min(n, len(x))]
    inputs = x[idx]
    recon = decode_all(model, encode_all(model, inputs))
    cols = 8
    rows, labels = [], []
    for i in range(0, len(inputs), cols):
        rows += [inputs[i : i + cols], recon[i : i + cols]]
        labels += ["input", "recon."]
    cap = f"{label}test inputs (odd rows) and their reconstructions decode(encode(x)) (even rows)"
    written.append(
        (image_rows(rows, out / "ae-reconstructions.png", row_labels=labels, title=f"{label}reconstructions"), cap)
    )

    chosen = pick_pairs(len(x), y, pairs, g)
    ends = torch.tensor([i for p in chosen for i in p], dtype=torch.long)
    z_ends = encode_all(model, x[ends])
    for mode in ("linear", "spherical") if vae else ("linear",):
        strips = []
        for k, (i, j) in enumerate(chosen):
            codes = path(z_ends[2 * k], z_ends[2 * k + 1], steps, mode)
            strips.append(torch.cat([x[i : i + 1], decode_all(model, codes), x[j : j + 1]]))
        cap = (
            f"{label}{mode} interpolation between the codes of two test examples "
            f"(first and last columns: the inputs; {steps} decoded points between)"
        )
        written.append(
            (image_rows(strips, out / f"ae-interpolation-{mode}.png", title=f"{label}{mode} interpolation"), cap)
        )

    codes = encode_all(model, x[: min(len(x), 2000)])
    mean, std = codes.mean(0), codes.std(0) if len(codes) > 1 else torch.ones(codes.shape[1])
    dims = torch.argsort(std, descending=True)[: min(8, codes.shape[1])].tolist()
    grid = decode_all(model, traversal_codes(codes[0], mean, std, dims, steps))
    strips = [grid[k * steps : (k + 1) * steps] for k in range(len(dims))]
    cap = (
        f"{label}latent traversals: one code dimension per row (the {len(dims)} most varied over the test codes) "
        f"swept over mean ± {TRAVERSAL_SPAN:g} std, the others held at the first test example's code"
    )
    written.append(
        (
            image_rows(
                strips,
                out / "ae-traversals.png",
                row_labels=[f"z[{d}]" for d in dims],
                title=f"{label}traversals, mean ± 3 std",
            ),
            cap,
        )
    )
    record_figures(out, written)
    return written


# -- what `archlab embed` writes ---------------------------------------------------------------------
def write_embedding(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    out_dir: str | Path,
    fig_dir: str | Path,
    *,
    method: str = "auto",
    classes: Sequence[str] = (),
    seed: int = 0,
    name: str = "",
) -> dict[str, Any]:
    """Encode test examples x (N, ...) and save ``latents.npy`` (N, D) float32 and ``labels.npy`` (N,)
    into ``out_dir``, and a 2-D scatter coloured by class into ``fig_dir`` (listed in its
    ``tools.json``). Returns the paths and what the projection was."""
    out, figs = Path(out_dir), Path(fig_dir)
    z = encode_all(model, x).numpy().astype(np.float32)
    xy, how = project_2d(z, method, seed)  # before anything is written: a projection that fails leaves no files
    out.mkdir(parents=True, exist_ok=True)
    figs.mkdir(parents=True, exist_ok=True)
    np.save(out / "latents.npy", z)
    labels = None
    if y is not None and y.ndim == 1:
        labels = y.cpu().numpy()
        labels = labels.astype(np.int64) if not np.issubdtype(labels.dtype, np.floating) else labels
        np.save(out / "labels.npy", labels)
    label = f"{name}: " if name else ""
    cap = f"{label}latent codes of {len(z):,} test examples, {how}, coloured by class"
    fig = latent_scatter(xy, labels, figs / "ae-embedding.png", classes=classes, title=f"{label}{how}"[:100])
    record_figures(figs, [(fig, cap)])
    return {
        "latents": out / "latents.npy",
        "labels": out / "labels.npy" if labels is not None else None,
        "figure": fig,
        "projection": how,
        "latent_dim": int(z.shape[1]),
        "count": int(z.shape[0]),
        "finite": bool(math.isfinite(float(np.abs(z).sum()))),
    }
