"""Parameter and FLOP counting (torch's own FLOP counter, no third-party tracer)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; shared (tied) tensors are counted once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor | tuple) -> int:
    """Forward FLOPs of one call, as counted by ``torch.utils.flop_counter`` (a multiply-add = 2).

    Only the ops torch's counter knows (matmul, conv, attention…) are counted: element-wise
    activations and normalisations are not, which is the convention of published GFLOP/GMAC
    figures.
    """
    args = example if isinstance(example, tuple) else (example,)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(*args)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def human(n: float, unit: str = "") -> str:
    """``1234567`` → ``1.23M``."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"
