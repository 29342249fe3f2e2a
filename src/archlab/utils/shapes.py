"""Input-shape checks that fail with *expected vs got* instead of a matmul error deep inside."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from archlab.utils.errors import ShapeError


def _fmt(shape: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("B" if d is None else str(d) for d in shape) + ")"


def check_shape(x: torch.Tensor, expected: Sequence[int | str | None], what: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x.shape`` matches ``expected``.

    ``None`` matches any size (the batch), a string names a free dimension (``"T"``).
    """
    ok = x.dim() == len(expected) and all(
        e is None or isinstance(e, str) or int(e) == s for e, s in zip(expected, x.shape)
    )
    if not ok:
        raise ShapeError(f"{what}: expected shape {_fmt(expected)}, got {tuple(x.shape)}")
