"""The sample grid of a translation run (tasks ``cyclegan`` and ``translation_paired``): test images
of domain A, their translations G(A), the true T(A), and the way back F(T(A)), one row each.

``write_translation_figure(run_dir, path)`` is what docs/generative.md shows; ``archlab sample`` can
call it for a run whose model has ``translate`` (a CycleGAN has no prior to sample from).
"""

from __future__ import annotations

from pathlib import Path

import torch

from archlab.data import load_dataset
from archlab.engine.trainer import load_run
from archlab.report.latent import image_rows

ROW_LABELS = ("A (real)", "G(A)", "T(A) (true)", "F(T(A))")


@torch.no_grad()
def translation_rows(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """[a, G(a), b, F(b)] for a (n, C, H, W) domain-A images and b = T(a) their true partners, in [0, 1]."""
    return [a, model.translate(a, "a2b").cpu(), b, model.translate(b, "b2a").cpu()]


def write_translation_figure(
    run_dir: str | Path, path: str | Path, *, n: int = 10, split: str = "test", checkpoint: str = "auto"
) -> Path:
    """The first ``n`` images of ``split`` (a paired split) through the run's G and F, as four rows
    (:data:`ROW_LABELS`) in one PNG at ``path``. Raises CheckpointError (one line) for a run that
    cannot be loaded, ConfigError for a run whose model does not translate."""
    from archlab.utils.errors import ConfigError

    run = load_run(run_dir, checkpoint)
    if not callable(getattr(run.model, "translate", None)):
        raise ConfigError(f"{run_dir}: model '{run.recipe.model.name}' does not translate (no translate(x, direction))")
    ds = load_dataset(run.recipe.data.name, split, data_dir=run.recipe.data.data_dir, options=run.recipe.data.options)
    a, b = ds.x[:n], ds.y[:n]
    rows = translation_rows(run.model, a.to(run.device), b.to(run.device))
    title = f"{run.recipe.name}, step {run.step}: {split} images"
    return image_rows([r.cpu() for r in rows], path, row_labels=ROW_LABELS, title=title)
