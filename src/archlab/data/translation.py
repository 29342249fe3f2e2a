"""Two-domain image sets for unpaired translation whose true pairing is known (issue 12 §3).

Domain A is an image set's own images; domain B is a fixed transform T of them — the colour
inversion ``1 − x`` or the Sobel edge map — so the right answer of a translation is known for
every image, and a translation learnt *without* pairs (CycleGAN, Zhu et al. 2017) can be scored
against it. The unpaired set serves task ``cyclegan``; with ``data.options.paired: true`` it serves
task ``translation_paired`` only (the supervised upper bound: the same generators trained with an L1
loss on true pairs, Isola et al. 2017's L1 term).

Splits, from the base set's training split of N images and a permutation seeded with
``TRANSLATION_SEED`` (the same for every run, so every recipe sees the same halves):

* ``val``: the first ⌊N/30⌋ images, **paired**: x = a, y = T(a);
* ``train``: of the remaining images, the first half is domain A and the second half domain B:
  x = a_i (half A), y = T(b_i) with b_i from half B — **unpaired**: no image of half A has its
  own T(a) anywhere in the split (the halves are disjoint), so no pair is ever seen. The i-th A
  and the i-th B image are unrelated; the loader's shuffle forms new batches every epoch.
  With ``data.options.paired: true`` (the supervised bound) y = T(a_i) instead: the same A images,
  with their true targets;
* ``test``: the base set's test split, **paired**: x = a, y = T(a).

Because the set ships a paired validation split, ``data.val_fraction`` must stay 0 (a fraction
held out of the unpaired train split would score translations against unrelated images).

Transforms (``data.options.transform``), on images x ∈ [0, 1] of shape (B, 1, H, W):
    invert   T(x) = 1 − x                                          an involution: T⁻¹ = T
    edges    T(x) = √((S_h ∗ x)² + (S_v ∗ x)²) / √2,  S_h = [1 2 1]ᵀ[1 0 −1]/4, S_v = S_hᵀ
             — skimage.filters.sobel exactly (its 'reflect' border, which for a 3×3 kernel is
             edge replication), values in [0, √(20/32) ≈ 0.79]; not invertible: many images
             share one edge map (a flat region of any grey level has none)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from archlab.data.core import DATASETS, ArrayDataset, DatasetInfo, register_dataset
from archlab.data.images import FASHION_MNIST_INFO, fashion_mnist
from archlab.data.tabular import digits
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

TRANSFORMS = ("invert", "edges")
TRANSLATION_SEED = 0x7A1F  # fixes the val / A / B partition of the training split for every run
VAL_DIVISOR = 30  # ⌊N/30⌋ training images (2,000 of Fashion-MNIST's 60,000) form the paired validation split


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """skimage.filters.sobel of each image: (B, 1, H, W) → (B, 1, H, W), in [0, 0.79] for x ∈ [0, 1].

    S_h responds to horizontal edges (a change along H), S_v to vertical ones; the magnitude is
    their root mean square, √((h² + v²)/2), skimage's normalisation (Sobel & Feldman 1968)."""
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype) / 4
    diff = torch.tensor([1.0, 0.0, -1.0], dtype=x.dtype)
    s_h = torch.outer(diff, smooth)  # (3, 3): d/dH of the W-smoothed image
    kernels = torch.stack([s_h, s_h.T]).unsqueeze(1).to(x.device)  # (2, 1, 3, 3)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # scipy's 'reflect' = edge replication for pad 1
    g = F.conv2d(padded, kernels)  # (B, 2, H, W); conv2d is a correlation: the sign does not matter squared
    return g.square().mean(1, keepdim=True).sqrt()


def apply_transform(x: torch.Tensor, transform: str) -> torch.Tensor:
    """T(x) for images x (B, 1, H, W) in [0, 1]: ``invert`` (1 − x) or ``edges`` (:func:`sobel_magnitude`)."""
    if transform == "invert":
        return 1.0 - x
    if transform == "edges":
        return sobel_magnitude(x)
    raise ConfigError(f"data.options.transform: '{transform}' is not one of {', '.join(TRANSFORMS)}")


def partition(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(val, half A, half B): disjoint index sets covering ``range(n)``, from a fixed seeded permutation;
    ⌊n/30⌋ validation images, the rest split into two halves of equal size (one image left out when odd)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(TRANSLATION_SEED, n)))
    n_val = n // VAL_DIVISOR
    half = (n - n_val) // 2
    return perm[:n_val], perm[n_val : n_val + half], perm[n_val + half : n_val + 2 * half]


def two_domain(base: str, split: str, data_dir: str | None, transform: str, paired: bool) -> ArrayDataset:
    """The split of ``<base>_translation`` (see the module docstring): x domain A, y domain B."""
    if transform not in TRANSFORMS:
        raise ConfigError(f"data.options.transform: '{transform}' is not one of {', '.join(TRANSFORMS)}")
    x = _BASES[base](split if split == "test" else "train", data_dir=data_dir).x.float()
    if split == "test":
        return ArrayDataset(x, apply_transform(x, transform))
    val, half_a, half_b = partition(len(x))
    if split == "val":
        a = x[val]
        return ArrayDataset(a, apply_transform(a, transform))
    a = x[half_a]
    return ArrayDataset(a, apply_transform(a if paired else x[half_b], transform))


def _info(base: DatasetInfo, name: str, n_train: int, transform: str = "invert", paired: bool = False) -> DatasetInfo:
    if transform not in TRANSFORMS:
        raise ConfigError(f"data.options.transform: '{transform}' is not one of {', '.join(TRANSFORMS)}")
    n_val = n_train // VAL_DIVISOR
    half = (n_train - n_val) // 2
    what = {"invert": "1 − x (colour inversion)", "edges": "the Sobel edge magnitude (skimage.filters.sobel)"}
    return DatasetInfo(
        name=name,
        kind="image",
        task="translation_paired" if paired else "cyclegan",  # pairs are for the supervised bound only
        input_shape=base.input_shape,
        num_classes=None,
        splits={"train": half, "val": n_val, "test": base.splits["test"]},
        source=f"{base.name} ({base.source}); domain B = T(domain A) computed here",
        licence=base.licence,
        citation=(
            f"{base.citation}; the two-domain set after Zhu, Park, Isola & Efros, Unpaired Image-to-Image "
            "Translation using Cycle-Consistent Adversarial Networks, ICCV 2017 (arXiv:1703.10593)"
        ),
        notes=(
            f"x = domain A (the {base.name} image in [0, 1]), y = domain B, T(x) = {what[transform]}; train: "
            f"{half} A images and {half} B images from disjoint halves of the training split "
            f"({'paired: y = T(x), the supervised bound' if paired else 'unpaired: y is T of another image'}); "
            f"val ({n_val}, from the training split) and test are paired, y = T(x). "
            "data.options: transform (invert | edges), paired (false | true)"
        ),
    )


_BASES: dict[str, Callable[..., ArrayDataset]] = {}  # base set name → its loader
_OPTIONS = {"transform": "invert", "paired": False}


def _register(base: str, loader: Callable[..., ArrayDataset], info: DatasetInfo) -> None:
    """Register ``<base>_translation`` over the base set's loader (its train split of N images)."""
    _BASES[base] = loader
    name, n_train = f"{base}_translation", info.splits["train"]

    def load(split: str, data_dir: str | None = None, transform: str = "invert", paired: bool = False) -> ArrayDataset:
        return two_domain(base, split, data_dir, transform, paired)

    def info_for(transform: str = "invert", paired: bool = False) -> DatasetInfo:
        return _info(info, name, n_train, transform, paired)

    register_dataset(info_for(), options=dict(_OPTIONS), info_for=info_for)(load)


_register("fashion_mnist", fashion_mnist, FASHION_MNIST_INFO)
_register("digits", digits, DATASETS.get("digits").info)  # 8×8 images: the tests' tiny two-domain set
