"""The sample grid of a translation run (tasks ``cyclegan`` and ``translation_paired``): test images
of domain A, their translations G(A), the true T(A), and the way back F(T(A)), one row each.

``archlab sample RUN_DIR`` draws it (``gen-translation.png``, :func:`write_translation_figure`) for a
run whose model has ``translate`` (a CycleGAN has no prior to sample from: its "samples" are
translations of test images); docs/generative.md shows it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from archlab.report.latent import image_rows

ROW_LABELS = ("A (real)", "G(A)", "T(A) (true)", "F(T(A))")


def is_translator(model: torch.nn.Module) -> bool:
    """Whether ``model`` translates between two domains (``translate(x, direction)``: a CycleGAN)."""
    return callable(getattr(model, "translate", None))


@torch.no_grad()
def translation_rows(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """[a, G(a), b, F(b)] for a (n, C, H, W) domain-A images and b = T(a) their true partners, in
    [0, 1], on the CPU (the model runs on its own device)."""
    return [a.cpu(), model.translate(a, "a2b").cpu(), b.cpu(), model.translate(b, "b2a").cpu()]


def translation_figure(
    model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, path: str | Path, *, title: str
) -> Path:
    """:func:`translation_rows` of the pairs (a, b = T(a)) as one PNG at ``path``, rows labelled
    :data:`ROW_LABELS`."""
    return image_rows(translation_rows(model, a, b), path, row_labels=ROW_LABELS, title=title)


def write_translation_figure(
    run_dir: str | Path, path: str | Path, *, n: int = 10, split: str = "test", checkpoint: str = "auto"
) -> Path:
    """The first ``n`` images of ``split`` (a paired split) of a finished run through its G and F, as
    :func:`translation_figure` at ``path``. Raises CheckpointError (one line) for a run that cannot be
    loaded, ConfigError for a run whose model does not translate."""
    from archlab.data import load_dataset
    from archlab.engine import load_run
    from archlab.utils.errors import ConfigError

    run = load_run(run_dir, checkpoint)
    if not is_translator(run.model):
        raise ConfigError(f"{run_dir}: model '{run.recipe.model.name}' does not translate (no translate(x, direction))")
    data = run.recipe.data
    ds = load_dataset(data.name, split, data_dir=data.data_dir, options=data.options)
    a, b = ds.x[:n].to(run.device), ds.y[:n].to(run.device)
    return translation_figure(run.model, a, b, path, title=f"{run.recipe.name}, step {run.step}: {split} images")
