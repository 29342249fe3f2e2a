"""Classification: cross-entropy (with label smoothing), the perceptron criterion, or one-vs-rest
BCE; measured by top-1 accuracy and mean loss.

The reported ``loss`` (training logs, validation, test) is always the plain loss — the negative
log-likelihood for cross-entropy — so it compares across runs and tasks; with
``task.label_smoothing`` > 0 the smoothed objective that is actually minimised is logged beside it
as ``objective`` (training only). A batch mixed by ``mixup`` (``batch.mixing`` = λ, ``y`` a pair)
is scored λ·ℓ(ŷ, y_a) + (1 − λ)·ℓ(ŷ, y_b) (Zhang et al. 2018).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.losses import bce_with_logits, cross_entropy, perceptron_criterion
from archlab.tasks.metrics import Accuracy, Loss, MetricSet


@register_task
class ClassificationTask(Task):
    name = "classification"
    losses = ("cross_entropy", "perceptron", "bce")
    default_loss = "cross_entropy"
    metrics = {"loss": Loss, "accuracy": Accuracy}
    default_metric = "accuracy"
    supports_mixup = True

    def loss_fn(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float | None = None) -> torch.Tensor:
        """The mean loss of (B, K) ``logits`` for (B,) targets; ``smoothing`` defaults to the recipe's."""
        if self.loss_name == "cross_entropy":
            eps = self.spec.label_smoothing if smoothing is None else smoothing
            return cross_entropy(logits, y, label_smoothing=eps)
        if self.loss_name == "perceptron":
            return perceptron_criterion(logits, y)
        onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).to(logits.dtype)
        return bce_with_logits(logits, onehot)

    def _output(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """``model``'s logits on ``batch`` (B, K) in float32 (the graph-level task checks one row per graph)."""
        x, _, kw = split_batch(model, batch)
        return model(x, **kw).float()

    def _scored(self, logits: torch.Tensor, batch: Batch, smoothing: float | None = None):
        """(loss, accuracy) of a batch, mixup pairs weighted by λ."""
        if batch.mixing is None:
            y = batch.y
            return self.loss_fn(logits, y, smoothing), (logits.argmax(-1) == y).float().mean()
        (ya, yb), lam = batch.y, batch.mixing[0]
        pred = logits.argmax(-1)
        loss = lam * self.loss_fn(logits, ya, smoothing) + (1 - lam) * self.loss_fn(logits, yb, smoothing)
        return loss, lam * (pred == ya).float().mean() + (1 - lam) * (pred == yb).float().mean()

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self._output(model, batch)
        objective, acc = self._scored(logits, batch)
        if not self.spec.label_smoothing:
            return objective, {"loss": objective.detach(), "accuracy": acc}
        with torch.no_grad():
            plain, _ = self._scored(logits, batch, smoothing=0.0)
        return objective, {"loss": plain, "objective": objective.detach(), "accuracy": acc}

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        for batch in batches:
            logits, y = self._output(model, batch), batch.y
            m["loss"].update(self.loss_fn(logits, y, smoothing=0.0) * len(y), len(y))
            m["accuracy"].update((logits.argmax(-1) == y).sum(), len(y))
        return m
