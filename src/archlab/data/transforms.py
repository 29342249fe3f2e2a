"""Batch augmentations as tensor ops (there is no CPU torchvision), driven by a generator so that
every augmented batch is reproducible from the loader position.

Names accepted in ``data.augment``: ``hflip`` (p = 0.5), ``crop:P`` (pad P pixels with zeros,
random crop back to size, as in He et al. 2016 §4.2 for CIFAR), ``shift:K`` (translate along the
last axis by up to K positions, zero-filled: for 1D signals), ``noise:S`` (Gaussian noise of std S).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from archlab.utils.errors import ConfigError, did_you_mean

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def hflip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g) < p  # (B,)
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def random_crop(x: torch.Tensor, g: torch.Generator, padding: int) -> torch.Tensor:
    """Zero-pad the last two dims by ``padding`` and crop a random window of the original size."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    xp = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=g)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=g)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h))  # (B, H)
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w))  # (B, W)
    idx_b = torch.arange(b).view(b, 1, 1)
    out = xp.movedim(-3, -1) if x.dim() == 4 else xp  # (B, Hp, Wp, C) for images
    out = out[idx_b, rows.view(b, h, 1), cols.view(b, 1, w)]  # (B, H, W, C)
    return out.movedim(-1, -3).contiguous() if x.dim() == 4 else out


def random_shift(x: torch.Tensor, g: torch.Generator, max_shift: int) -> torch.Tensor:
    """Translate each example along its last axis by an integer in [−max_shift, max_shift], zero-filled."""
    b, n = x.shape[0], x.shape[-1]
    shift = torch.randint(-max_shift, max_shift + 1, (b,), generator=g)  # (B,)
    src = torch.arange(n).view(1, n) - shift.view(b, 1)  # (B, L): where each output position reads from
    valid = (src >= 0) & (src < n)
    idx = src.clamp(0, n - 1).view(b, *([1] * (x.dim() - 2)), n).expand_as(x)
    out = torch.gather(x, -1, idx)
    return out * valid.view(b, *([1] * (x.dim() - 2)), n).to(x.dtype)


def gaussian_noise(x: torch.Tensor, g: torch.Generator, std: float) -> torch.Tensor:
    return x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)


def build_transform(names: list[str]) -> Transform | None:
    if not names:
        return None
    steps: list[Transform] = []
    for item in names:
        name, _, arg = item.partition(":")
        if name == "hflip":
            steps.append(hflip)
        elif name in ("crop", "shift") and arg and not arg.isdigit():
            raise ConfigError(f"data.augment: '{item}' needs a whole number of positions, e.g. {name}:4")
        elif name == "crop":
            pad = int(arg or 4)
            steps.append(lambda x, g, pad=pad: random_crop(x, g, pad))
        elif name == "shift":
            k = int(arg or 2)
            steps.append(lambda x, g, k=k: random_shift(x, g, k))
        elif name == "noise":
            std = float(arg or 0.1)
            steps.append(lambda x, g, std=std: gaussian_noise(x, g, std))
        else:
            raise ConfigError(
                f"data.augment: unknown augmentation '{item}'{did_you_mean(name, ['hflip', 'crop', 'shift', 'noise'])}"
            )

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in steps:
            x = t(x, g)
        return x

    return apply
