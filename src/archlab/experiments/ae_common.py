"""What the autoencoder experiments share: their Fashion-MNIST runs (ordinary training runs of the
shipped ``fashion_mnist/<model>`` recipes with the latent size and budget set), the trained models
read back from the run dirs, the data as tensors, and the image metrics (from torchmetrics).

Images are Fashion-MNIST's 28×28 grey levels in [0, 1] (pixel/255); every error below is on that
scale: MSE per pixel, PSNR in dB with data range 1, SSIM (Wang et al. 2004) with torchmetrics'
default 11×11 Gaussian window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn

from archlab.experiments.runs import RunSpec, budget, build_recipe, spec

DATA = "fashion_mnist"
# bounds of the experiments' size options: Fashion-MNIST has 60,000 training and 10,000 test images of 784 pixels
TRAIN_IMAGES, TEST_IMAGES, PIXELS = 60_000, 10_000, 28 * 28
MAX_PATH_POINTS = 1_001  # points on one interpolation path
LatentSize = Annotated[int, Field(ge=1, le=PIXELS)]  # a code at most as wide as the image
TrainCount = Annotated[int, Field(ge=1, le=TRAIN_IMAGES)]  # training images used


def ae_run(
    key: str,
    model: str,
    latent_dim: int,
    steps: int,
    quick: bool,
    overrides: dict[str, Any],
    seed: int = 0,
    **fields: Any,
) -> RunSpec:
    """One training run of ``fashion_mnist/<model>`` with ``latent_dim`` and ``steps`` optimiser steps
    (the quick version evaluates on 100 test images); ``fields`` set further model options."""
    model_fields = {f"model.{k}": v for k, v in {"latent_dim": latent_dim, **fields}.items()}
    # the experiments measure the trained models themselves: the VAE task's IWAE bound (50 samples per
    # test image at every evaluation) would only cost time here
    vae = {"task.options.iwae_samples": 0} if model.startswith("vae") else {}
    recipe = build_recipe(
        f"{DATA}/{model}",
        None,
        {**budget(steps), **model_fields, **vae, **({"data.test_subset": 100} if quick else {}), **overrides},
    )
    return spec(key, seed, recipe, f"{key}-s{seed}")


def trained_model(out_dir: Path, run: RunSpec) -> nn.Module:
    """The model of a finished run (its last checkpoint), in eval mode on the CPU."""
    from archlab.engine import load_run

    return load_run(out_dir / run.name, checkpoint="last").model.float().cpu().eval()


def fashion(split: str, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images (N, 1, 28, 28) in [0, 1] and labels (N,): all of ``split``, or ``n`` of them
    drawn without replacement by a seeded permutation."""
    from archlab.data import load_dataset

    ds = load_dataset(DATA, split)
    x, y = ds.x, ds.y
    if n is not None and n < len(x):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        x, y = x[idx], y[idx]
    return x.float(), y.long()


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """Mean squared error per pixel."""
    return float(((x_hat.float() - x.float()) ** 2).mean())


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """Mean over images of the PSNR in dB (data range 1), torchmetrics."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    per_image = peak_signal_noise_ratio(
        x_hat.float().clamp(0, 1), x.float(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return float(per_image.mean())


def ssim(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004) over images, torchmetrics (11×11 Gaussian window, data range 1)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return float(structural_similarity_index_measure(x_hat.float().clamp(0, 1), x.float(), data_range=1.0))


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """decode(encode(x)) in batches."""
    from archlab.report.latent import decode_all, encode_all

    return decode_all(model, encode_all(model, x, batch_size), batch_size)


def knn_accuracy(z_train: Any, y_train: Any, z_test: Any, y_test: Any, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier (scikit-learn, Euclidean) fitted on the training codes."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(z_train, y_train).score(z_test, y_test))
