"""An exponential moving average (EMA) of a network's weights, kept by a task as its own state.

θ̄ ← β θ̄ + (1 − β) θ after every update of θ, θ̄₀ = θ₀ (Polyak & Juditsky 1992; for GAN generators
Yazıcı et al. 2019, Eq. 1, and Karras et al. 2018; for diffusion models Ho et al. 2020, β = 0.9999);
buffers (batch-norm statistics) are copied, not averaged. The GAN task averages its generator, the
diffusion task its ε-network; both save it in every checkpoint (``task.safetensors``) through
:meth:`state_dict` and hand it to the model to sample with.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from archlab.utils.errors import ConfigError


class WeightAverage:
    """θ̄ of ``net``: ``module`` is a frozen copy (θ̄₀ = θ₀) that :meth:`update` moves toward ``net``'s
    current weights with decay β = ``decay`` in [0, 1); ``updates`` counts the updates."""

    def __init__(self, net: nn.Module, decay: float, what: str = "averaged weights"):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(net).requires_grad_(False)
        self.decay, self.what, self.updates = decay, what, 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """θ̄ ← θ̄ + (1 − β)(θ − θ̄) (= β θ̄ + (1 − β) θ) for every parameter; buffers copied."""
        device = next(net.parameters()).device
        if next(self.module.parameters()).device != device:
            self.module.to(device)
        for avg, p in zip(self.module.parameters(), net.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - self.decay)
        for avg, b in zip(self.module.buffers(), net.buffers(), strict=True):
            avg.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"ema": tensors, "ema_updates": n}``: the task-state layout of a checkpoint."""
        return {"ema": dict(self.module.state_dict()), "ema_updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["ema"])
        self.updates = int(state.get("ema_updates", 0))


def load_average(average: WeightAverage | None, state: dict[str, Any]) -> None:
    """Restore ``average`` from a checkpoint's task state; a checkpoint that holds an average for a run
    whose recipe has none is one line (ConfigError), never silently dropped."""
    if average is not None and "ema" in state:
        average.load_state_dict(state)
    elif state.get("ema") is not None:
        raise ConfigError("task.options.ema_decay: the checkpoint holds averaged weights; keep ema_decay > 0")


class AveragedWeightsState:
    """Mixin for a task that keeps a :class:`WeightAverage` in ``self.average`` (None when off): the
    ``ema``/``ema_updates`` views and the task-state round trip through checkpoints."""

    average: WeightAverage | None = None

    @property
    def ema(self) -> nn.Module | None:
        """The averaged network θ̄ (``task.options.ema_decay`` > 0), else None."""
        return None if self.average is None else self.average.module

    @property
    def ema_updates(self) -> int:
        return 0 if self.average is None else self.average.updates

    def state_dict(self) -> dict[str, Any]:
        return {} if self.average is None else self.average.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_average(self.average, state)
