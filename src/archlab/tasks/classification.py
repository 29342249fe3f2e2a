"""Classification: cross-entropy (with label smoothing), the perceptron criterion, or one-vs-rest
BCE; measured by top-1 accuracy and mean loss."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.losses import bce_with_logits, cross_entropy, perceptron_criterion


@register_task
class ClassificationTask(Task):
    name = "classification"
    losses = ("cross_entropy", "perceptron", "bce")
    default_loss = "cross_entropy"
    metrics = ("loss", "accuracy")
    default_metric = "accuracy"

    def loss_fn(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            return cross_entropy(logits, y, label_smoothing=self.spec.label_smoothing)
        if self.loss_name == "perceptron":
            return perceptron_criterion(logits, y)
        onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).to(logits.dtype)
        return bce_with_logits(logits, onehot)

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, y, kw = split_batch(model, batch)
        logits = model(x, **kw)
        loss = self.loss_fn(logits.float(), y)
        return loss, {"loss": loss.detach(), "accuracy": (logits.argmax(-1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        total, correct, loss_sum = 0, 0, 0.0
        for batch in batches:
            x, y, kw = split_batch(model, batch)
            logits = model(x, **kw).float()
            loss_sum += float(self.loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            total += len(y)
        return {"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1)}
