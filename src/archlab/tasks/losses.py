"""Loss functions; each returns the mean over the batch, with two paths (the pattern of layers/recurrent.py):

* ``impl="fused"`` (default): torch's own kernel (``F.cross_entropy``, ``F.mse_loss`` …), what
  the tasks train with: one kernel forward and backward.
* ``impl="reference"``: the formula written out in elementwise torch ops, for reading.

The tests check both paths against values computed by hand and against each other to 1e-6 in values
and gradients (including label smoothing with ``ignore_index``). The perceptron criterion has no
torch kernel; its one path is the formula. Targets whose shape does not match raise
:class:`ShapeError` instead of silently broadcasting ((B, 1) against (B,) would give a (B, B)
error matrix and a plausible-looking but wrong loss).

Letter legend: B batch (or any leading dims, flattened into the mean), K classes; z logits /
scores s, y target, ŷ prediction, q the smoothed target distribution, ε label smoothing,
σ logistic sigmoid.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch.nn import functional as F

from archlab.utils.errors import ConfigError, ShapeError, did_you_mean

__all__ = [
    "IMPLS",
    "LOSSES",
    "bce_with_logits",
    "cross_entropy",
    "get_loss",
    "mae",
    "mse",
    "perceptron_criterion",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Impl = Literal["fused", "reference"]
IMPLS: tuple[str, ...] = get_args(Impl)


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ConfigError(f"loss impl: must be one of {', '.join(IMPLS)}, got '{impl}'")


def _check_class_target(logits: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if logits.dim() < 1 or tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ShapeError(
            f"{what}: expected logits (B, K) and target (B,), got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ShapeError(f"{what}: target must hold class indices (an integer dtype), got {target.dtype}")


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if pred.shape != target.shape:
        raise ShapeError(
            f"{what}: prediction and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


# -- classification --------------------------------------------------------------------------
def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    impl: Impl = "fused",
) -> torch.Tensor:
    r"""Softmax cross-entropy with optional label smoothing.

    L = (1/N) Σ_b −Σ_k q_{b,k} log softmax(z_b)_k, with q = (1 − ε)·onehot(y) + ε/K
    (label smoothing: Szegedy et al., CVPR 2016, "Rethinking the Inception Architecture",
    arXiv:1512.00567, §7). log softmax(z)_k = z_k − logsumexp(z), which never overflows.
    With ε = 0 this is −log p_y, the negative log-likelihood of a categorical model.
    Positions whose target is ``ignore_index`` (e.g. <pad>) contribute nothing, and N counts the
    others (as ``F.cross_entropy``; NaN when every target is ignored).

    Shapes: logits (B, K) (class dim last; extra leading dims are averaged over too),
    target (B,) long → scalar.
    """
    _check_class_target(logits, target, "cross_entropy")
    _check_impl(impl)
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"task.label_smoothing: must be in [0, 1), got {label_smoothing}")
    K = logits.shape[-1]
    if impl == "fused":
        ignore = -100 if ignore_index is None else ignore_index  # F.cross_entropy's "none ignored"
        return F.cross_entropy(
            logits.reshape(-1, K), target.reshape(-1), ignore_index=ignore, label_smoothing=label_smoothing
        )
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    y = target.masked_fill(~valid, 0)  # any class id where ignored: the term is masked out below
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # log softmax(z), (B, K)
    nll = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # −log p_y, (B,)
    if label_smoothing:
        uniform = -log_p.sum(dim=-1) / K  # −(1/K) Σ_k log p_k, (B,)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    return (nll * valid).sum() / valid.sum()  # mean over the positions not ignored


def bce_with_logits(logits: torch.Tensor, target: torch.Tensor, impl: Impl = "fused") -> torch.Tensor:
    r"""Binary cross-entropy on logits, in the stable form.

    −[y log σ(z) + (1 − y) log(1 − σ(z))] = max(z, 0) − z·y + log(1 + e^{−|z|}),
    averaged over all elements. e^{−|z|} ≤ 1, so nothing overflows (z = ±100 is fine), and
    ∂L/∂z = σ(z) − y everywhere, including z = 0 (max and |·| are taken with ``where`` so their
    one-sided gradients at 0 cancel correctly: 1 − ½ = σ(0)).

    Shapes: logits (B, *), target (B, *) float in {0, 1} or probabilities in [0, 1] → scalar.
    """
    _check_same_shape(logits, target, "bce_with_logits")
    _check_impl(impl)
    y = target.to(logits.dtype)
    if impl == "fused":
        return F.binary_cross_entropy_with_logits(logits, y)
    pos = logits >= 0
    relu_z = torch.where(pos, logits, torch.zeros_like(logits))  # max(z, 0)
    abs_z = torch.where(pos, logits, -logits)  # |z|
    return (relu_z - logits * y + torch.log1p(torch.exp(-abs_z))).mean()


def perceptron_criterion(scores: torch.Tensor, target: torch.Tensor, impl: Impl = "fused") -> torch.Tensor:
    r"""Rosenblatt's perceptron criterion, multiclass form.

    L = (1/B) Σ_b [max_j s_{b,j} − s_{b,y_b}] = (1/B) Σ_b max(0, max_{j≠y} s_{b,j} − s_{b,y}),
    zero when the target has the highest score (Rosenblatt, Psychological Review 1958; the
    criterion as in Duda & Hart, "Pattern Classification", §5.5; multiclass: Collins, EMNLP 2002).

    For a linear model s = Wx, ∂L/∂w_y = −x and ∂L/∂w_ŷ = +x on a mistake (ŷ the top wrong
    class), so one SGD step with lr = 1 is exactly the perceptron update
    w_y ← w_y + x, w_ŷ ← w_ŷ − x, and nothing changes on a correct example.
    A tie between s_y and the best wrong score counts as a mistake (the subgradient of
    max(0, ·) at 0 is taken as 1), as Rosenblatt's rule updates when w·x ≤ 0; so a perceptron
    initialised at zero, where all scores tie, still learns.

    No torch kernel computes it: both ``impl`` values run this formula.

    Shapes: scores (B, K), target (B,) long → scalar.
    """
    _check_class_target(scores, target, "perceptron_criterion")
    _check_impl(impl)
    is_y = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, target.unsqueeze(-1), True)
    s_y = scores.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # s_y, (B,)
    s_wrong = scores.masked_fill(is_y, float("-inf")).max(dim=-1).values  # max_{j≠y} s_j, (B,)
    margin = s_wrong - s_y  # (B,)
    return torch.where(margin >= 0, margin, torch.zeros_like(margin)).mean()  # max(0, ·)


# -- regression ------------------------------------------------------------------------------
def mse(pred: torch.Tensor, target: torch.Tensor, impl: Impl = "fused") -> torch.Tensor:
    r"""Mean squared error L = mean (ŷ − y)² over all elements (the Gaussian negative
    log-likelihood up to constants; Gauss/Legendre least squares).

    Shapes: pred (B, *), target the same shape → scalar.
    """
    _check_same_shape(pred, target, "mse")
    _check_impl(impl)
    if impl == "fused":
        return F.mse_loss(pred, target)
    return ((pred - target) ** 2).mean()


def mae(pred: torch.Tensor, target: torch.Tensor, impl: Impl = "fused") -> torch.Tensor:
    r"""Mean absolute error L = mean |ŷ − y| over all elements (the Laplace negative
    log-likelihood up to constants; least absolute deviations).

    Shapes: pred (B, *), target the same shape → scalar.
    """
    _check_same_shape(pred, target, "mae")
    _check_impl(impl)
    if impl == "fused":
        return F.l1_loss(pred, target)
    return (pred - target).abs().mean()


# -- lookup by name --------------------------------------------------------------------------
LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "mse": mse,
    "mae": mae,
    "bce": bce_with_logits,
    "perceptron": perceptron_criterion,
}

# Which losses fit which task's targets, and the default; mirrors the ``losses`` / ``default_loss``
# class attributes of the tasks in archlab.tasks (a test keeps the two in step).
TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy", "perceptron", "bce"),
    "regression": ("mse", "mae"),
}
DEFAULT_LOSS: dict[str, str] = {"classification": "cross_entropy", "regression": "mse"}


def get_loss(name: str | None, task: str | None = None, label_smoothing: float = 0.0, impl: Impl = "fused") -> LossFn:
    """The loss function ``name`` (``None``: the default for ``task``), checked against ``task``;
    ``impl="reference"`` binds the formula path instead of torch's kernel.

    ``label_smoothing`` is bound into ``cross_entropy`` and rejected for any other loss.
    Raises :class:`ConfigError` naming the recipe key: ``task.loss: unknown loss 'mce' (did you
    mean: mse?); valid: ...``.
    """
    if task is not None and task not in TASK_LOSSES:
        raise ConfigError(
            f"task.name: unknown task '{task}'{did_you_mean(task, TASK_LOSSES)}; "
            f"valid: {', '.join(sorted(TASK_LOSSES))}"
        )
    if name is None:
        if task is None:
            raise ConfigError("task.loss: no loss given and no task to take the default from")
        name = DEFAULT_LOSS[task]
    if name not in LOSSES:
        valid = sorted(LOSSES) if task is None else list(TASK_LOSSES[task])
        raise ConfigError(f"task.loss: unknown loss '{name}'{did_you_mean(name, LOSSES)}; valid: {', '.join(valid)}")
    if task is not None and name not in TASK_LOSSES[task]:
        raise ConfigError(f"task.loss: '{name}' is not a {task} loss; valid: {', '.join(TASK_LOSSES[task])}")
    _check_impl(impl)
    bound: dict[str, object] = {} if impl == "fused" else {"impl": impl}
    if label_smoothing:
        if name != "cross_entropy":
            raise ConfigError(f"task.label_smoothing: only cross_entropy smooths labels, not '{name}'")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing: must be in [0, 1), got {label_smoothing}")
        bound["label_smoothing"] = label_smoothing
    return functools.partial(LOSSES[name], **bound) if bound else LOSSES[name]
