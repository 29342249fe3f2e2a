"""Causal language modelling: predict token t+1 from tokens ≤ t at every position of a window.

Metrics over every predicted token of a split: ``loss`` (cross-entropy, nats per token),
``perplexity`` = e^loss, ``bpc`` = loss / ln 2 (bits per character; character tokenizers only),
``bpb`` = Σ NLL / (ln 2 · Σ UTF-8 bytes of the target tokens) (bits per byte, byte-level BPE only: a
BPE token spans several characters, so its loss / ln 2 is bits per *token*, not per character) and
``accuracy`` (the most likely next token is the true one). :meth:`LanguageModelingTask.sample`
continues a prompt with a temperature, top-k and top-p, through the model's own ``generate`` (the
shared decoders of archlab.layers.decoding), encoding the prompt with the run's own tokenizer (the
``tokenizer.json`` it saved: characters, or byte-level BPE for a text file). A prompt the tokenizer
cannot encode, or longer than the model's context, is a one-line ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archlab.config import TaskSpec
from archlab.data import DatasetInfo
from archlab.data.text import text_tokenizer
from archlab.layers.decoding import check_sampling
from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.metrics import Accuracy, BitsPerToken, Loss, MetricSet, Perplexity
from archlab.utils.errors import ConfigError, ShapeError, preview


@register_task
class LanguageModelingTask(Task):
    name = "language_modeling"
    losses = ("cross_entropy",)
    default_loss = "cross_entropy"
    metrics = {"loss": Loss, "perplexity": Perplexity, "bpc": BitsPerToken, "bpb": BitsPerToken, "accuracy": Accuracy}
    default_metric = "loss"

    def __init__(self, spec: TaskSpec, info: DatasetInfo, seed: int = 0):
        super().__init__(spec, info, seed=seed)
        self.tokenizer = text_tokenizer(info)  # saved in the run dir; load_run puts the saved one back

    def data_hints(self) -> dict[str, Any]:
        """The data's hints, with the vocabulary size of the tokenizer in use: the run's saved
        ``tokenizer.json`` once :meth:`load_artifacts` has read it, so a run whose text file has
        changed since still rebuilds the model it trained."""
        hints = super().data_hints()
        if self.tokenizer is not None and "vocab_size" in hints:
            hints["vocab_size"] = hints["num_classes"] = self.tokenizer.vocab_size
        return hints

    def new_metrics(self) -> MetricSet:
        """bpc with a character tokenizer (a token is a character), bpb with byte-level BPE."""
        m = super().new_metrics()
        del m["bpb" if self._token_bytes() is None else "bpc"]
        return m

    def _token_bytes(self) -> torch.Tensor | None:
        """(V,) UTF-8 bytes per token id for a byte-level tokenizer, else None (one token, one character)."""
        table = getattr(self.tokenizer, "token_bytes", None)
        if table is None:
            return None
        if getattr(self, "_bytes_of", (None, None))[0] is not self.tokenizer:
            self._bytes_of = (self.tokenizer, torch.tensor(table(), dtype=torch.float64))
        return self._bytes_of[1]

    def _logits(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, kw = split_batch(model, batch)
        logits = model(x, **kw).float()
        if logits.shape[:2] != y.shape:
            raise ShapeError(
                f"a language model must return (B, T, V) logits for y {tuple(y.shape)}, got {tuple(logits.shape)}"
            )
        return logits, y

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits, y = self._logits(model, batch)
        eps = self.spec.label_smoothing
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=eps)
        logs = {"loss": loss.detach(), "accuracy": (logits.argmax(-1) == y).float().mean()}
        if eps:  # the reported loss is the plain NLL; the smoothed objective is logged beside it
            with torch.no_grad():
                logs = {**logs, "loss": F.cross_entropy(logits.flatten(0, 1), y.flatten()), "objective": loss.detach()}
        return loss, logs

    def loss_count(self, batch: Batch) -> int:
        """The predicted tokens the training loss is a mean over (every position of every window)."""
        return batch.y.numel()

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        for batch in batches:
            logits, y = self._logits(model, batch)
            nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
            for k in ("loss", "perplexity", "bpc"):
                if k in m:
                    m[k].update(nll, y.numel())
            if "bpb" in m:
                m["bpb"].update(nll, self._token_bytes().to(y.device)[y].sum())
            m["accuracy"].update((logits.argmax(-1) == y).sum(), y.numel())
        return m

    def sample(
        self,
        model: nn.Module,
        prompt: str,
        length: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        top_p: float | None = None,
    ) -> str:
        """``prompt`` continued by ``length`` sampled tokens, decoded to text (the prompt included).

        Temperature 0 is greedy; ``top_k`` / ``top_p`` truncate the distribution (archlab.layers.decoding);
        the same ``seed`` gives the same text. Raises ConfigError for a bad prompt or sampling setting."""
        try:
            check_sampling(temperature, top_k, top_p)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if not hasattr(model, "generate"):
            raise ConfigError(f"model {type(model).__name__} cannot generate text (it has no generate method)")
        tok = self.tokenizer
        if tok is None:
            raise ConfigError(f"prompt: data set '{self.info.name}' has no tokenizer to encode a prompt with")
        unknown = tok.unknown(prompt)
        if unknown:
            raise ConfigError(
                f"prompt: {preview(unknown)} not in the '{self.info.name}' vocabulary (the run's {tok.kind} "
                f"tokenizer, {tok.vocab_size} tokens); use only characters of its training text"
            )
        ids = torch.tensor([tok.encode(prompt)], dtype=torch.long, device=next(model.parameters()).device)
        if ids.shape[1] == 0:
            raise ConfigError("prompt: give at least one token to start from")
        context = context_length(model)
        if context is not None and ids.shape[1] > context:
            raise ConfigError(
                f"prompt: {ids.shape[1]} tokens, longer than the model's context of {context}; "
                f"give at most its last {context} tokens"
            )
        g = torch.Generator(device=ids.device).manual_seed(seed)
        out = model.generate(ids, length, temperature=temperature, top_k=top_k, top_p=top_p, generator=g)
        return tok.decode(out[0].tolist())


_CONTEXT_FIELDS = ("block_size", "context_length", "max_position_embeddings", "n_positions", "max_len")


def context_length(model: nn.Module) -> int | None:
    """The longest sequence ``model`` takes (a Transformer's learned positions), from its config;
    None for a model without a limit (a recurrent LM)."""
    config = getattr(getattr(model, "_orig_mod", model), "config", None)
    for name in _CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
