"""Input-shape checks that fail with *expected vs got* instead of a matmul error deep inside.

An expected shape states the architecture's real constraint, dimension by dimension: an ``int`` is a
size a layer fixes (channels; H×W before a flatten), ``AtLeast("H", 32)`` a free size with the minimum
the network's strides need (a ResNet with global pooling takes any H, W ≥ 32), a string a free size
(``"T"``), ``None`` the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from archlab.utils.errors import ShapeError


@dataclass(frozen=True)
class AtLeast:
    """A free dimension with a minimum size: ``AtLeast("H", 32)`` matches any size ≥ 32 (shown ``H≥32``)."""

    name: str
    min: int

    def __str__(self) -> str:
        return self.name if self.min <= 1 else f"{self.name}≥{self.min}"


Dim = int | str | AtLeast | None


def _fmt(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join("B" if d is None else str(d) for d in shape) + ")"


def _fits(e: Dim, size: int) -> bool:
    if isinstance(e, AtLeast):
        return size >= e.min
    return e is None or isinstance(e, str) or int(e) == size


def check_shape(x: torch.Tensor, expected: Sequence[Dim], what: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x.shape`` matches ``expected``.

    ``None`` matches any size (the batch), a string names a free dimension (``"T"``), ``AtLeast``
    a free dimension with a minimum, an ``int`` exactly that size.
    """
    ok = x.dim() == len(expected) and all(_fits(e, s) for e, s in zip(expected, x.shape))
    if not ok:
        raise ShapeError(f"{what}: expected shape {_fmt(expected)}, got {tuple(x.shape)}")


def min_side(fits: Callable[[int], bool], limit: int = 1 << 14) -> int:
    """The smallest side n ≥ 1 for which ``fits(n)`` holds (``fits`` is monotone: a network that takes
    n takes n + 1), e.g. the least input side whose feature map survives every stride; ``limit`` if none."""
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
