"""Optimisers (torch's own, from a registry) and learning-rate schedules as pure functions of the step.

Each of the task's parameter groups (``Task.param_groups``: ``main``; a GAN's ``generator`` and
``discriminator``) gets its own optimiser, built from the recipe's ``optim`` section overridden
field by field by ``optim.groups.<group>`` (:func:`group_spec`). The optimiser ``name`` is looked up
in :data:`OPTIMIZERS`; :func:`register_optimizer` adds one.

A schedule is ``lr(step) = base_lr · factor(step)``; keeping it a pure function means a resumed
run needs only the step to be back on schedule (no scheduler object to checkpoint). The one
exception, ``plateau``, reacts to the training loss: its few numbers (:meth:`Plateau.state_dict`)
go into the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archlab.config import OptimSpec, ScheduleSpec
from archlab.registry import Registry
from archlab.utils.errors import ConfigError, UnknownNameError, did_you_mean

OptimizerBuilder = Callable[[list[dict[str, Any]], OptimSpec, str], torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")


def register_optimizer(name: str) -> Callable[[OptimizerBuilder], OptimizerBuilder]:
    """Register ``builder(param_groups, spec, where) -> torch.optim.Optimizer`` under ``name``
    (``where`` is the recipe key path for error messages, ``optim`` or ``optim.groups.<g>``)."""

    def deco(fn: OptimizerBuilder) -> OptimizerBuilder:
        OPTIMIZERS.add(name, fn)
        return fn

    return deco


@register_optimizer("sgd")
def _sgd(groups: list[dict[str, Any]], s: OptimSpec, where: str) -> torch.optim.Optimizer:
    momentum = 0.9 if s.momentum is None else s.momentum  # archlab's default: heavy-ball SGD
    if s.nesterov and momentum == 0:
        raise ConfigError(f"{where}.nesterov: needs {where}.momentum > 0")
    return torch.optim.SGD(groups, lr=s.lr, momentum=momentum, nesterov=s.nesterov, fused=fused_supported(groups))


@register_optimizer("adam")
def _adam(groups: list[dict[str, Any]], s: OptimSpec, where: str) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=s.lr, betas=tuple(s.betas), eps=s.eps, fused=fused_supported(groups))


@register_optimizer("adamw")
def _adamw(groups: list[dict[str, Any]], s: OptimSpec, where: str) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=s.lr, betas=tuple(s.betas), eps=s.eps, fused=fused_supported(groups))


@register_optimizer("rmsprop")
def _rmsprop(groups: list[dict[str, Any]], s: OptimSpec, where: str) -> torch.optim.Optimizer:
    # Tieleman & Hinton 2012 (Coursera lecture 6.5); torch's defaults alpha 0.99, momentum 0
    return torch.optim.RMSprop(groups, lr=s.lr, alpha=s.alpha, eps=s.eps, momentum=s.momentum or 0.0)


def param_groups_with_decay(params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """Decay matrices and kernels (dim ≥ 2), not biases or norm gains (as in nanoGPT/timm)."""
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def group_spec(spec: OptimSpec, group: str) -> OptimSpec:
    """The optimiser settings of parameter group ``group``: ``optim`` with the fields that
    ``optim.groups.<group>`` sets replaced (``groups`` and ``schedule`` are not part of it)."""
    own = spec.groups.get(group)
    if own is None:
        return spec
    changed = {k: v for k, v in own.model_dump(exclude={"schedule"}).items() if v is not None}
    return spec.model_copy(update={**changed, "groups": {}})


def group_schedule(spec: OptimSpec, schedule: ScheduleSpec, group: str) -> ScheduleSpec:
    """``optim.groups.<group>.schedule`` if given, else the recipe's ``schedule``."""
    own = spec.groups.get(group)
    return own.schedule if own is not None and own.schedule is not None else schedule


def check_group_names(spec: OptimSpec, groups: list[str], task: str) -> None:
    """Every ``optim.groups.<name>`` must name one of the task's parameter groups."""
    for name in spec.groups:
        if name not in groups:
            raise ConfigError(
                f"optim.groups.{name}: task '{task}' has no parameter group '{name}'{did_you_mean(name, groups)}; "
                f"its groups: {', '.join(groups)}"
            )


def build_optimizer(params: list[nn.Parameter], spec: OptimSpec, where: str = "optim") -> torch.optim.Optimizer:
    """``spec.name``'s optimiser over ``params``, weight decay on tensors with ≥ 2 dims only."""
    if not params:
        raise ConfigError("model: has no trainable parameters")
    try:
        builder = OPTIMIZERS.get(spec.name)
    except UnknownNameError as e:
        raise ConfigError(f"{where}.name: {e}") from None
    return builder(param_groups_with_decay(params, spec.weight_decay), spec, where)


def fused_supported(groups: list[dict[str, Any]]) -> bool | None:
    """True where torch's fused (one-kernel) SGD/Adam/AdamW step applies: every parameter a
    floating-point tensor on the CPU or a CUDA device. The fused AdamW step of a ResNet-18 takes
    ~¼ of the default per-tensor loop's time on one CPU thread (32 vs 131 ms, measured), a fifth
    of the whole training step. None (torch's default loop) elsewhere, e.g. on MPS."""
    params = [p for g in groups for p in g["params"]]
    ok = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if ok else None


def lr_factor(step: int, spec: ScheduleSpec, total_steps: int | None) -> float:
    """Multiplier of the base learning rate for optimiser step ``step`` (0-based); for ``plateau``
    the warm-up only (the reductions are :class:`Plateau`'s, which depend on the losses).

    Raises ConfigError for a decaying schedule (cosine, linear) without a horizon — at any step,
    also inside the warm-up, so the trainer's step-0 check finds it before a run starts."""
    if total_steps is None and spec.name not in ("constant", "plateau", "step"):
        raise ConfigError(f"schedule.name: '{spec.name}' needs budget.steps or budget.epochs to know its length")
    if spec.warmup_steps and step < spec.warmup_steps:
        return (step + 1) / spec.warmup_steps  # linear warm-up (Goyal et al. 2017)
    if spec.name in ("constant", "plateau"):
        return 1.0
    if spec.name == "step":
        return spec.gamma ** ((step - spec.warmup_steps) // spec.step_size)
    assert total_steps is not None  # checked above
    span = max(total_steps - spec.warmup_steps, 1)
    progress = min(max(step - spec.warmup_steps, 0) / span, 1.0)
    lo = spec.min_lr_ratio
    if spec.name == "cosine":  # Loshchilov & Hutter 2017, without restarts
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress))
    return lo + (1 - lo) * (1 - progress)  # linear decay


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    lr = base_lr * factor
    for g in optimizer.param_groups:
        g["lr"] = lr
    return lr


class Plateau:
    """Reduce the learning rate when the training loss stops improving: Keras'
    ``ReduceLROnPlateau(monitor="loss", factor, patience, min_delta=threshold, min_lr)``, the
    schedule of Fawaz et al., "Deep learning for time series classification: a review" (DMKD 2019,
    §4.1: factor 0.5, patience 50 epochs, min lr 1e-4).

    ``update(mean_loss)`` once per interval: an interval is an improvement when its mean loss is
    below the best by more than ``threshold``; after ``patience`` intervals without one,
    lr ← max(lr · factor, min_lr) (only while lr > min_lr) and the count restarts.
    ``scale`` is lr / base lr.
    """

    def __init__(self, spec: ScheduleSpec, base_lr: float):
        self.spec, self.base_lr = spec, base_lr
        self.best: float | None = None
        self.bad = 0  # intervals since the last improvement
        self.scale = 1.0

    def update(self, loss: float) -> None:
        s = self.spec
        if self.best is None or loss < self.best - s.threshold:
            self.best, self.bad = loss, 0
            return
        self.bad += 1
        if self.bad >= s.patience:
            lr = self.base_lr * self.scale
            if lr > s.min_lr:
                self.scale = max(lr * s.factor, s.min_lr) / self.base_lr
            self.bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad": self.bad, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad, self.scale = state["best"], int(state["bad"]), float(state["scale"])
