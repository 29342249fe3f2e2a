"""BERT pre-training: masked language modelling plus next-sentence prediction (Devlin et al. 2019,
"BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding", NAACL,
arXiv:1810.04805, §3.1 and App. A.2).

The model takes ``x`` (B, T) masked token ids with the batch's ``token_type_ids`` and
``attention_mask`` and returns ``(mlm_logits (B, T, V), nsp_logits (B, 2))``; the batch's targets
are ``y = (mlm_labels (B, T), nsp_labels (B,))`` with ``mlm_labels`` −100 at the positions that were
not chosen for masking (archlab.data.bert).

    loss = −mean_{masked i} log p(x_i | x̃)  +  −mean_{pairs} log p(IsNext | x̃)      (App. A.2: "the sum
                                                        of the mean masked LM likelihood and the mean
                                                        next sentence prediction likelihood")

Metrics over a split: ``mlm_loss`` (the plain NLL per masked token, nats), ``nsp_loss`` (NLL per
pair), ``loss`` = their sum (the objective), ``mlm_accuracy`` (the most likely token at a masked
position is the original one) and ``nsp_accuracy``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from archlab.config import TaskSpec
from archlab.data import DatasetInfo
from archlab.data.text import text_tokenizer
from archlab.data.tokenizers import Tokenizer
from archlab.data.transforms import IGNORE_INDEX
from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.metrics import Accuracy, Loss, Metric, MetricSet
from archlab.utils.errors import ConfigError, ShapeError


class SumOfMeans(Metric):
    """mean_mlm + mean_nsp, each over its own items (masked tokens, pairs), mergeable across ranks."""

    higher_is_better: ClassVar[bool] = False
    fields = ("mlm_total", "mlm_count", "nsp_total", "nsp_count")

    def update(self, mlm_total, mlm_count, nsp_total, nsp_count) -> None:
        self._add(mlm_total=mlm_total, mlm_count=mlm_count, nsp_total=nsp_total, nsp_count=nsp_count)

    def compute(self) -> float:
        s = self.state
        return s["mlm_total"] / max(s["mlm_count"], 1.0) + s["nsp_total"] / max(s["nsp_count"], 1.0)


@register_task
class MaskedLMTask(Task):
    name = "masked_lm"
    losses = ("cross_entropy",)
    default_loss = "cross_entropy"
    metrics = {
        "loss": SumOfMeans,
        "mlm_loss": Loss,
        "nsp_loss": Loss,
        "mlm_accuracy": Accuracy,
        "nsp_accuracy": Accuracy,
    }
    default_metric = "loss"

    def __init__(self, spec: TaskSpec, info: DatasetInfo, seed: int = 0):
        super().__init__(spec, info, seed=seed)
        if spec.label_smoothing:
            raise ConfigError("task.label_smoothing: BERT pre-training (masked_lm) has none; remove it")
        self._tokenizer: Tokenizer | None = None

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The data's tokenizer, trained on first use (when the run saves it): building the task
        alone, as ``archlab recipes`` checks do, trains nothing."""
        if self._tokenizer is None:
            self._tokenizer = text_tokenizer(self.info)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Tokenizer | None) -> None:  # load_artifacts puts the run's own back
        self._tokenizer = value

    def _outputs(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mlm_logits (M, V), nsp_logits (B, 2), mlm_targets (M,), nsp_labels (B,)) over the M masked
        positions. A model whose forward takes ``mlm_positions`` (archlab's BERT) computes its MLM
        output there only, as the original BERT does; for any other the (B, T, V) logits are gathered."""
        x, (labels, nsp_labels), kw = batch.x, batch.y, split_batch(model, batch)[2]
        chosen = labels != IGNORE_INDEX  # (B, T)
        if _takes_positions(type(model)):
            kw = {**kw, "mlm_positions": chosen}
        out = model(x, **kw)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ShapeError(
                "a masked_lm model returns (mlm_logits (B, T, V), nsp_logits (B, 2)); "
                "build it with model.head=pretraining"
            )
        mlm_logits, nsp_logits = out[0].float(), out[1].float()
        if mlm_logits.dim() == 3 and mlm_logits.shape[:2] == labels.shape:
            mlm_logits = mlm_logits[chosen]  # (M, V)
        m = int(chosen.sum())
        if mlm_logits.dim() != 2 or len(mlm_logits) != m or nsp_logits.shape != (len(x), 2):
            raise ShapeError(
                f"masked_lm: expected (B, T, V) or ({m}, V) MLM logits and (B, 2) NSP logits for x "
                f"{tuple(x.shape)}, got {tuple(out[0].shape)} and {tuple(out[1].shape)}"
            )
        return mlm_logits, nsp_logits, labels[chosen], nsp_labels

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mlm_logits, nsp_logits, targets, nsp_labels = self._outputs(model, batch)
        n = max(len(targets), 1)
        mlm = F.cross_entropy(mlm_logits, targets, reduction="sum") / n  # mean over the masked tokens (0 if none)
        nsp = F.cross_entropy(nsp_logits, nsp_labels)
        with torch.no_grad():
            mlm_acc = (mlm_logits.argmax(-1) == targets).sum() / n
            nsp_acc = (nsp_logits.argmax(-1) == nsp_labels).float().mean()
        logs = {"loss": (mlm + nsp).detach(), "mlm_loss": mlm.detach(), "nsp_loss": nsp.detach()}
        return mlm + nsp, {**logs, "mlm_accuracy": mlm_acc, "nsp_accuracy": nsp_acc}

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        for batch in batches:
            mlm_logits, nsp_logits, targets, nsp_labels = self._outputs(model, batch)
            n_mlm, n_nsp = len(targets), len(nsp_labels)
            mlm_nll = F.cross_entropy(mlm_logits, targets, reduction="sum")
            nsp_nll = F.cross_entropy(nsp_logits, nsp_labels, reduction="sum")
            m["loss"].update(mlm_nll, n_mlm, nsp_nll, n_nsp)
            m["mlm_loss"].update(mlm_nll, n_mlm)
            m["nsp_loss"].update(nsp_nll, n_nsp)
            m["mlm_accuracy"].update((mlm_logits.argmax(-1) == targets).sum(), n_mlm)
            m["nsp_accuracy"].update((nsp_logits.argmax(-1) == nsp_labels).sum(), n_nsp)
        return m


@functools.cache
def _takes_positions(cls: type) -> bool:
    """Whether ``cls.forward`` declares ``mlm_positions`` (computes its MLM output at chosen positions)."""
    return "mlm_positions" in inspect.signature(cls.forward).parameters
