"""Metric accumulators: every evaluation number is built from sufficient statistics.

A :class:`Metric` keeps sums (``state``: name → float), so it can be fed batch by batch
(``update``), read at any time (``compute``) and combined with another accumulator of the same
metric over other examples (``merge``: the state sums add). ``merge(a, b).compute()`` equals the
metric over the union of a's and b's examples, which is what a data-parallel evaluation needs: each
rank accumulates its shard, ``as_tensor``/``load_tensor`` carry the state through one
``all_reduce(SUM)``, and every rank computes the same value. Each metric class declares whether
higher is better; :func:`higher_is_better` reads the declarations the tasks register.

Corpus BLEU and chrF keep sacrebleu's own sufficient statistics (hypothesis and reference
lengths, matching and total n-grams per order; character and word n-gram counts for chrF),
so the corpus score over merged shards is exactly ``sacrebleu.corpus_bleu`` over all sentences
(Papineni et al. 2002; Popović 2015; Post 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

# metric name → higher is better, filled by register_task from each task's declared metrics
DIRECTIONS: dict[str, bool] = {}


def declare_direction(name: str, higher: bool) -> None:
    """Record ``name``'s direction; the same name declared both ways is a programming error."""
    if DIRECTIONS.setdefault(name, higher) != higher:
        raise ValueError(f"metric '{name}' is declared both higher- and lower-is-better")


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` (``"accuracy"``, ``"val/loss"``…) are better, as its
    task declares; a name no task declares counts as higher-is-better."""
    return DIRECTIONS.get(metric.split("/")[-1], True)


class Metric:
    """An accumulator of sums. Subclasses name their ``fields`` and implement ``update`` and ``value``."""

    higher_is_better: ClassVar[bool] = True
    fields: ClassVar[tuple[str, ...]] = ("total", "count")

    def __init__(self) -> None:
        self.state: dict[str, float] = dict.fromkeys(self.fields, 0.0)

    def _add(self, **sums: Any) -> None:
        for k, v in sums.items():
            self.state[k] += float(v)

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def merge(self, other: Metric) -> Metric:
        """Add ``other``'s sums into this accumulator (in place) and return it."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for k in self.fields:
            self.state[k] += other.state[k]
        return self

    def as_tensor(self) -> torch.Tensor:
        """The state as a float64 vector (for ``torch.distributed.all_reduce``)."""
        return torch.tensor([self.state[k] for k in self.fields], dtype=torch.float64)

    def load_tensor(self, t: torch.Tensor) -> None:
        self.state = {k: float(v) for k, v in zip(self.fields, t.tolist(), strict=True)}


class Mean(Metric):
    """Σ values / Σ counts: ``update(total, count)`` with ``total`` the sum over ``count`` items."""

    def update(self, total: float | torch.Tensor, count: float | int) -> None:
        self._add(total=total, count=count)

    def mean(self) -> float:
        return self.state["total"] / max(self.state["count"], 1.0)

    def compute(self) -> float:
        return self.mean()


class Loss(Mean):
    """Mean loss per item (nats per example or per token)."""

    higher_is_better = False


class Accuracy(Mean):
    """Fraction correct: ``update(correct, count)``."""


class Perplexity(Mean):
    """e^(mean NLL in nats): ``update(nll_sum, tokens)``."""

    higher_is_better = False

    def compute(self) -> float:
        return math.exp(self.mean())


class BitsPerToken(Mean):
    """Mean NLL / ln 2: ``update(nll_sum, n)``, bits per character (n characters) or per byte (n bytes)."""

    higher_is_better = False

    def compute(self) -> float:
        return self.mean() / math.log(2)


class MeanSquaredError(Mean):
    """``update(Σ (ŷ − y)², elements)``."""

    higher_is_better = False


class RootMeanSquaredError(MeanSquaredError):
    def compute(self) -> float:
        return math.sqrt(self.mean())


class MeanAbsoluteError(Mean):
    """``update(Σ |ŷ − y|, elements)``."""

    higher_is_better = False


class ErrorRate(Mean):
    """Edit distance over reference length (WER, CER, PER): ``update(edits, reference tokens)``."""

    higher_is_better = False


class MeanAbsoluteScaledError(MeanAbsoluteError):
    """MAE / ``scale`` (Hyndman & Koehler 2006: ``scale`` = the in-sample seasonal naive MAE)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def compute(self) -> float:
        return self.mean() / self.scale


class R2Score(Metric):
    """Coefficient of determination 1 − SSE / SST over every element; ``update(pred, target)``."""

    fields = ("n", "sum_y", "sum_y2", "sse")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        y = target.double()
        self._add(n=y.numel(), sum_y=y.sum(), sum_y2=(y * y).sum(), sse=((pred.double() - y) ** 2).sum())

    def compute(self) -> float:
        s = self.state
        sst = s["sum_y2"] - s["sum_y"] ** 2 / s["n"] if s["n"] else 0.0
        return 1.0 - s["sse"] / sst if sst > 0 else float("nan")


class Skill(Metric):
    """1 − MAE(model) / MAE(baseline) on the same items (> 0: the model beats the baseline);
    ``update(Σ |model error|, Σ |baseline error|)``."""

    fields = ("model", "baseline")

    def update(self, model_abs_err: float | torch.Tensor, baseline_abs_err: float | torch.Tensor) -> None:
        self._add(model=model_abs_err, baseline=baseline_abs_err)

    def compute(self) -> float:
        b = self.state["baseline"]
        return 1.0 - self.state["model"] / b if b > 0 else float("nan")


class CorpusBLEU(Metric):
    """Corpus BLEU-4 (Papineni et al. 2002) with sacrebleu's defaults (exp smoothing) and
    ``tokenize`` ("none": the strings are already space-separated tokens); ``update(hyps, refs)``
    with one reference per hypothesis. State: sacrebleu's statistics [hyp length, ref length,
    matching n-grams ×4, hypothesis n-grams ×4], summed over sentences."""

    fields = ("sys_len", "ref_len", *(f"correct{n}" for n in range(1, 5)), *(f"total{n}" for n in range(1, 5)))

    def __init__(self, tokenize: str = "none") -> None:
        super().__init__()
        from sacrebleu.metrics import BLEU

        self._bleu = BLEU(tokenize=tokenize)

    def update(self, hyps: Sequence[str], refs: Sequence[str]) -> None:
        if hyps:
            # sacrebleu 2.x computes per-sentence sufficient statistics here and sums them in corpus_score
            for row in self._bleu._extract_corpus_statistics(list(hyps), [list(refs)]):
                self._add(**dict(zip(self.fields, row, strict=True)))

    def compute(self) -> float:
        stats = [int(self.state[k]) for k in self.fields]
        return float(self._bleu._compute_score_from_stats(stats).score) if stats[0] else 0.0


class CorpusChrF(Metric):
    """Corpus chrF (Popović 2015) with sacrebleu's defaults (character 6-grams, β = 2);
    ``update(hyps, refs)``. State: sacrebleu's per-order n-gram counts, summed over sentences."""

    fields = tuple(f"s{i}" for i in range(18))  # 6 orders × (hypothesis, reference, matching)

    def __init__(self) -> None:
        super().__init__()
        from sacrebleu.metrics import CHRF

        self._chrf = CHRF()
        if len(self.fields) != 3 * (self._chrf.char_order + self._chrf.word_order):
            raise RuntimeError("sacrebleu's chrF statistics changed layout")

    def update(self, hyps: Sequence[str], refs: Sequence[str]) -> None:
        if hyps:
            for row in self._chrf._extract_corpus_statistics(list(hyps), [list(refs)]):
                self._add(**dict(zip(self.fields, row, strict=True)))

    def compute(self) -> float:
        return float(self._chrf._compute_score_from_stats([int(self.state[k]) for k in self.fields]).score)


class MetricSet(dict[str, Metric]):
    """Named accumulators of one evaluation: ``compute()`` → {name: value}; ``merge`` adds another
    set's sums name by name."""

    def compute(self) -> dict[str, float]:
        return {k: m.compute() for k, m in self.items()}

    def merge(self, other: MetricSet) -> MetricSet:
        for k, m in self.items():
            m.merge(other[k])
        return self
