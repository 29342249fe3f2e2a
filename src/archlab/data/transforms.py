"""Batch augmentations as tensor ops (there is no CPU torchvision), driven by a generator so that
every augmented batch is reproducible from the loader position.

Names accepted in ``data.augment``: ``hflip`` (p = 0.5), ``crop:P`` (pad P pixels with zeros,
random crop back to size, as in He et al. 2016 §4.2 for CIFAR), ``shift:K`` (translate along the
last axis by up to K positions, zero-filled: for 1D signals), ``noise:S`` (Gaussian noise of std S),
``erase:P`` (random erasing, Zhong et al. 2020 (AAAI), arXiv:1708.04896: with probability P a random
rectangle of 2–40% of the image, aspect ratio 0.3–3.3, is filled with uniform random values in the
batch's range).

Transforms see and return the whole :class:`~archlab.data.batch.Batch` (``BatchTransform``). The
augmentations above change ``x`` only and are lifted by :func:`on_inputs`, drawing from the
position-seeded generator exactly as before, so an augmented batch is the same bytes as it was
when transforms saw ``x`` alone. Two more change what a batch *is*:

* ``mixup:A`` (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", ICLR, eq. 1):
  λ ~ Beta(A, A) once per batch, a random pairing π of the batch, x̃ = λ·x + (1 − λ)·x_π; the
  targets become the pair ``(y, y_π)`` and ``mixing`` the per-example λ, and the classification
  loss is λ·ℓ(ŷ, y) + (1 − λ)·ℓ(ŷ, y_π). Applied after the augmentations.
* ``views:K`` (K ≥ 2; SimCLR, Chen et al. 2020 §2.1): the augmentations are drawn K times
  independently into ``batch.views`` and ``x`` is left as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from archlab.data.batch import Batch
from archlab.utils.errors import ConfigError, did_you_mean

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # on x alone
BatchTransform = Callable[[Batch, torch.Generator], Batch]


def hflip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g) < p  # (B,)
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def random_crop(x: torch.Tensor, g: torch.Generator, padding: int) -> torch.Tensor:
    """Zero-pad the last two dims by ``padding`` and crop a random window of the original size."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    xp = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=g)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=g)
    rows = dy.view(b, 1) + torch.arange(h).view(1, h)  # (B, H)
    cols = dx.view(b, 1) + torch.arange(w).view(1, w)  # (B, W)
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


def random_erase(
    x: torch.Tensor,
    g: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> torch.Tensor:
    """Random erasing on (B, C, H, W): per example, with probability ``p``, one rectangle of area
    s·H·W (s ~ U(area)) and aspect ratio r (log r ~ U(log ratio)) at a uniform position is
    replaced by uniform noise in [min(x), max(x)] (the paper's "random values")."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    s = area[0] + (area[1] - area[0]) * torch.rand(b, generator=g)  # (B,)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(b, generator=g)
    r = log_r.exp()
    eh = (s * h * w * r).sqrt().round().clamp(1, h).long()  # (B,) rectangle heights
    ew = (s * h * w / r).sqrt().round().clamp(1, w).long()  # (B,) widths
    top = (torch.rand(b, generator=g) * (h - eh + 1)).floor().long()  # uniform in [0, H − eh]
    left = (torch.rand(b, generator=g) * (w - ew + 1)).floor().long()
    on = torch.rand(b, generator=g) < p  # (B,)
    rows = torch.arange(h).view(1, h)
    cols = torch.arange(w).view(1, w)
    in_rows = (rows >= top.view(b, 1)) & (rows < (top + eh).view(b, 1))  # (B, H)
    in_cols = (cols >= left.view(b, 1)) & (cols < (left + ew).view(b, 1))  # (B, W)
    mask = (in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)) & on.view(b, 1, 1, 1)  # (B, 1, H, W)
    lo, hi = float(x.min()), float(x.max())
    noise = lo + (hi - lo) * torch.rand(x.shape, generator=g, dtype=x.dtype)
    return torch.where(mask, noise, x)


def gaussian_noise(x: torch.Tensor, g: torch.Generator, std: float) -> torch.Tensor:
    return x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)


def on_inputs(t: Transform) -> BatchTransform:
    """The batch transform that applies ``t`` to ``x`` and keeps every other field."""

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        return batch.replace(x=t(batch.x, g))

    return apply


def _beta(g: torch.Generator, alpha: float) -> float:
    """One draw of Beta(α, α) from ``g`` (torch's Beta sampler takes no generator)."""
    import numpy as np

    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
    return float(rng.beta(alpha, alpha))


def mixup(batch: Batch, g: torch.Generator, alpha: float = 0.2) -> Batch:
    """Mixup (Zhang et al. 2018, eq. 1) with one λ ~ Beta(α, α) per batch and a random pairing.

    ``x`` (B, ...) float → λ·x + (1 − λ)·x[π]; ``y`` → ``(y, y[π])``; ``mixing`` (B,) = λ.
    Raises ``ValueError`` for α ≤ 0 or a batch without ``y``.
    """
    if alpha <= 0 or batch.y is None or isinstance(batch.y, tuple):
        raise ValueError("mixup needs alpha > 0 and a batch with one target tensor")
    lam = _beta(g, alpha)
    perm = torch.randperm(len(batch.x), generator=g)
    x = lam * batch.x + (1.0 - lam) * batch.x[perm]
    mixing = torch.full((len(batch.x),), lam, dtype=batch.x.dtype)
    return batch.replace(x=x, y=(batch.y, batch.y[perm]), mixing=mixing)


def multi_view(t: Transform, k: int = 2) -> BatchTransform:
    """``k`` independent draws of ``t`` on ``x`` into ``batch.views`` (x unchanged): the positive
    pairs of contrastive learning (SimCLR, Chen et al. 2020 §2.1)."""

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        return batch.replace(views=tuple(t(batch.x, g) for _ in range(k)))

    return apply


def uses_mixup(names: list[str]) -> bool:
    return any(item.partition(":")[0] == "mixup" for item in names)


def build_transform(names: list[str]) -> BatchTransform | None:
    """The batch transform for ``data.augment`` (None for an empty list). Raises ConfigError
    naming the item for an unknown name or a bad argument."""
    if not names:
        return None
    steps: list[Transform] = []
    mix_alpha: float | None = None
    views = 0
    for item in names:
        name, _, arg = item.partition(":")
        if name == "hflip":
            steps.append(hflip)
        elif name in ("crop", "shift", "views") and arg and not arg.isdigit():
            what, eg = ("views", 2) if name == "views" else ("positions", 4)
            raise ConfigError(f"data.augment: '{item}' needs a whole number of {what}, e.g. {name}:{eg}")
        elif name == "crop":
            pad = int(arg or 4)
            steps.append(lambda x, g, pad=pad: random_crop(x, g, pad))
        elif name == "shift":
            k = int(arg or 2)
            steps.append(lambda x, g, k=k: random_shift(x, g, k))
        elif name == "erase":
            try:
                prob = float(arg or 0.5)
            except ValueError:
                prob = -1.0
            if not 0.0 <= prob <= 1.0:
                raise ConfigError(f"data.augment: '{item}' needs a probability in [0, 1], e.g. erase:0.5")
            steps.append(lambda x, g, prob=prob: random_erase(x, g, prob))
        elif name == "noise":
            std = float(arg or 0.1)
            steps.append(lambda x, g, std=std: gaussian_noise(x, g, std))
        elif name == "mixup":
            mix_alpha = float(arg or 0.2)
            if not mix_alpha > 0:
                raise ConfigError(f"data.augment: '{item}' needs alpha > 0, e.g. mixup:0.2")
        elif name == "views":
            views = int(arg or 2)
            if views < 2:
                raise ConfigError(f"data.augment: '{item}' needs at least 2 views, e.g. views:2")
        else:
            known = ["hflip", "crop", "shift", "noise", "erase", "mixup", "views"]
            raise ConfigError(f"data.augment: unknown augmentation '{item}'{did_you_mean(name, known)}")
    if views and mix_alpha is not None:
        raise ConfigError("data.augment: mixup and views do not combine (mixup mixes x; views leaves it as it is)")

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in steps:
            x = t(x, g)
        return x

    first = multi_view(augment, views) if views else on_inputs(augment) if steps else None
    if mix_alpha is None:
        return first

    def apply(batch: Batch, g: torch.Generator) -> Batch:
        return mixup(batch if first is None else first(batch, g), g, mix_alpha)

    return apply


# ---------------------------------------------------------------------------------------------
# masked language modelling (BERT)

IGNORE_INDEX = -100  # a label position that is not scored (torch's cross_entropy default)


class MLMMasking:
    """BERT's masked-LM corruption (Devlin et al. 2019, "BERT", NAACL, arXiv:1810.04805, §3.1
    "Task #1: Masked LM" and App. A.1) as a whole-batch transform.

    Each position of ``batch.x`` (B, T) that holds a real token — not padding, not a special token
    such as ``[CLS]``/``[SEP]`` (``special_ids``) — is chosen with probability ``p`` (15%); a chosen
    token is replaced by ``[MASK]`` with probability 0.8, by a uniformly random ordinary token
    (ids ``≥ first_ordinary_id``) with probability 0.1, and left unchanged with probability 0.1.
    The MLM targets are the original ids at the chosen positions and :data:`IGNORE_INDEX`
    elsewhere. With ``batch.y`` a tuple ``(mlm, nsp)``, the transform fills its first element and
    keeps the rest (the next-sentence labels); otherwise ``y`` becomes the MLM targets.

    Every draw comes from the generator the loader seeds with the batch position, so a masked batch
    is reproducible (and a resumed run sees the same masks).
    """

    def __init__(
        self,
        mask_id: int,
        vocab_size: int,
        special_ids: tuple[int, ...],
        p: float = 0.15,
        replace: tuple[float, float, float] = (0.8, 0.1, 0.1),
        first_ordinary_id: int | None = None,
    ):
        if not 0.0 < p < 1.0 or abs(sum(replace) - 1.0) > 1e-9 or min(replace) < 0:
            raise ValueError("MLM masking needs 0 < p < 1 and mask/random/keep probabilities that sum to 1")
        self.mask_id, self.vocab_size, self.p, self.replace = mask_id, vocab_size, p, replace
        self.special_ids = torch.as_tensor(sorted(set(special_ids)), dtype=torch.long)
        self.first_ordinary_id = max(special_ids) + 1 if first_ordinary_id is None else first_ordinary_id

    def __call__(self, batch: Batch, g: torch.Generator) -> Batch:
        ids = batch.x  # (B, T) token ids
        can = ~torch.isin(ids, self.special_ids)  # (B, T): real tokens only
        if batch.attention_mask is not None:
            can &= batch.attention_mask.bool()
        chosen = (torch.rand(ids.shape, generator=g) < self.p) & can  # (B, T)
        u = torch.rand(ids.shape, generator=g)  # one draw picks [MASK] / random / keep
        to_mask = chosen & (u < self.replace[0])
        to_random = chosen & (u >= self.replace[0]) & (u < self.replace[0] + self.replace[1])
        random_ids = torch.randint(self.first_ordinary_id, self.vocab_size, ids.shape, generator=g)
        x = torch.where(to_mask, torch.full_like(ids, self.mask_id), ids)
        x = torch.where(to_random, random_ids, x)
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))  # (B, T)
        y = (labels, *batch.y[1:]) if isinstance(batch.y, tuple) else labels
        return batch.replace(x=x, y=y)
