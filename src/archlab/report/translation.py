"""The sample grid of a translation run (tasks ``cyclegan`` and ``translation_paired``): test images
of domain A, their translations G(A), the true T(A), and the way back F(T(A)), one row each.

``archlab sample RUN_DIR`` draws it for a run whose model has ``translate`` (a CycleGAN has no prior
to sample from: its "samples" are translations of test images); docs/generative.md shows it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from archlab.report.latent import image_rows

ROW_LABELS = ("A (real)", "G(A)", "T(A) (true)", "F(T(A))")
FIGURE = "translation.png"


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
