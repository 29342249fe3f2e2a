"""Sequence to sequence: an encoder reads the source, a decoder writes the target token by token.

Training is teacher forcing: the decoder reads ``y[:, :-1]`` (``<sos>`` + target) and predicts
``y[:, 1:]`` (target + ``<eos>``) with cross-entropy that ignores ``<pad>`` (id 0). With
``task.options.teacher_forcing`` < 1 (optionally moving linearly to ``teacher_forcing_final`` over the
run) each decoder input is the gold token with that probability and the model's own previous
prediction otherwise (scheduled sampling, Bengio et al. 2015); the coins are drawn from a generator
seeded by the run's seed and the step (:meth:`Seq2SeqTask.coin_generator`).

Evaluation decodes without the targets — greedy, or beam search with ``task.options.beam_size`` > 1
and GNMT's length penalty ``length_penalty`` — and reports, over a split:

* ``loss``, ``token_accuracy``: teacher-forced cross-entropy and next-token accuracy on non-pad
  target positions;
* ``exact_match``: decoded output equal to the whole target;
* ``bleu``: corpus BLEU-4 over the target tokens (joined by spaces, sacrebleu with ``tokenize="none"``:
  a digit string is scored digit by digit, a phoneme string phoneme by phoneme);
* ``chrf``: corpus chrF of the detokenised outputs (sacrebleu defaults);
* ``wer`` / ``cer`` / ``per`` (named by the data set's target unit): Levenshtein distance between the
  decoded and target tokens, summed, over the number of target tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archlab.data.seq2seq import vocabs
from archlab.tasks.base import Batch, Task, register_task
from archlab.tasks.metrics import Accuracy, CorpusBLEU, CorpusChrF, ErrorRate, Loss, MetricSet
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed
from archlab.utils.tokens import EOS, PAD_ID, SOS_ID

PAD = PAD_ID  # <pad>: ignored by the loss and the metrics


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _trim(row: Sequence[int], eos: int) -> list[int]:
    """Ids up to (without) the first <eos>, pads dropped."""
    out = []
    for t in row:
        if t == eos:
            break
        if t != PAD:
            out.append(int(t))
    return out


@register_task
class Seq2SeqTask(Task):
    name = "seq2seq"
    losses = ("cross_entropy",)
    default_loss = "cross_entropy"
    default_metric = "exact_match"
    metrics = {
        "loss": Loss,
        "token_accuracy": Accuracy,
        "exact_match": Accuracy,
        "bleu": CorpusBLEU,
        "chrf": CorpusChrF,
        "wer": ErrorRate,
        "cer": ErrorRate,
        "per": ErrorRate,
    }  # one error rate per data set, named by its target unit
    default_options = {"teacher_forcing": 1.0, "teacher_forcing_final": None, "beam_size": 1, "length_penalty": 0.6}

    def __init__(self, spec, info, seed: int = 0):
        super().__init__(spec, info, seed)
        o = self.options
        for key in ("teacher_forcing", "teacher_forcing_final"):
            if o[key] is not None and not 0.0 <= o[key] <= 1.0:
                raise ConfigError(f"task.options.{key}: a probability in [0, 1], got {o[key]}")
        if o["beam_size"] < 1 or o["length_penalty"] < 0:
            raise ConfigError("task.options: beam_size must be ≥ 1 and length_penalty ≥ 0")
        self.error_rate = getattr(info, "error_rate", "wer")
        others = {"wer", "cer", "per"} - {self.error_rate}
        self.metrics = {k: v for k, v in type(self).metrics.items() if k not in others}
        self.src_vocab, self.tgt_vocab = vocabs(info.name)
        self.eos = self.tgt_vocab.stoi[EOS]

    def data_hints(self) -> dict[str, Any]:
        return {
            "in_shape": tuple(self.info.input_shape),
            "num_classes": self.info.tgt_vocab_size,
            "src_vocab_size": self.info.src_vocab_size,
        }

    def teacher_forcing_ratio(self) -> float:
        """The gold-input probability at the current step (linear schedule when a final value is set)."""
        start, final = self.options["teacher_forcing"], self.options["teacher_forcing_final"]
        if final is None or not self.total_steps:
            return start
        frac = min(1.0, self.step / max(1, self.total_steps - 1))
        return start + (final - start) * frac

    def coin_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator of this step's scheduled-sampling coins: seeded by (run seed, step), so every
        seed of a compare flips its own coins and a resumed run flips the same ones as an unbroken run."""
        return torch.Generator(device=device).manual_seed(derive_seed(self.seed, 0x7F, self.step))

    @staticmethod
    def _unpack(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if batch.lengths is None:
            raise ConfigError("a seq2seq batch needs source lengths (batch.lengths); this data set has none")
        return batch.x, batch.y, batch.lengths

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, y, lengths = self._unpack(batch)
        ratio = self.teacher_forcing_ratio() if model.training else 1.0
        g = self.coin_generator(x.device) if ratio < 1.0 else None
        logits = model(x, lengths, y[:, :-1], teacher_forcing=ratio, generator=g).float()
        target = y[:, 1:]
        loss = F.cross_entropy(
            logits.flatten(0, 1), target.flatten(), ignore_index=PAD, label_smoothing=self.spec.label_smoothing
        )
        valid = target != PAD
        acc = ((logits.argmax(-1) == target) & valid).sum() / valid.sum().clamp(min=1)
        logs = {"loss": loss.detach(), "token_accuracy": acc, "teacher_forcing": torch.tensor(ratio)}
        if self.spec.label_smoothing:  # report the plain NLL; log the smoothed objective beside it
            with torch.no_grad():
                nll = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD)
            logs.update(loss=nll, objective=loss.detach())
        return loss, logs

    def loss_count(self, batch: Batch) -> torch.Tensor:
        """The non-pad target tokens the training loss is a mean over (``y[:, 1:] != <pad>``)."""
        return (batch.y[:, 1:] != PAD).sum()

    def decode(self, model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, max_len: int):
        """(tokens (B, L), attention (B, L, S) or None) by greedy or beam search, per the task spec."""
        beam, alpha = self.options["beam_size"], self.options["length_penalty"]
        if beam > 1:
            return model.beam_search(x, lengths, beam_size=beam, length_penalty=alpha, max_len=max_len)
        return model.greedy_decode(x, lengths, max_len=max_len)

    def new_metrics(self) -> MetricSet:
        return MetricSet(
            loss=Loss(),
            token_accuracy=Accuracy(),
            exact_match=Accuracy(),
            bleu=CorpusBLEU(tokenize="none"),
            chrf=CorpusChrF(),
            **{self.error_rate: ErrorRate()},
        )

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        for batch in batches:
            x, y, lengths = self._unpack(batch)
            logits = model(x, lengths, y[:, :-1]).float()
            target = y[:, 1:]
            valid = target != PAD
            n_tok = valid.sum()
            nll = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD, reduction="sum")
            m["loss"].update(nll, n_tok)
            m["token_accuracy"].update(((logits.argmax(-1) == target) & valid).sum(), n_tok)
            tokens, _ = self.decode(model, x, lengths, max_len=target.shape[1])
            hyps, refs, hyp_toks, ref_toks = [], [], [], []
            exact = edits = ref_tokens = 0
            for out_row, ref_row in zip(tokens.tolist(), target.tolist(), strict=True):
                hyp, ref = _trim(out_row, self.eos), _trim(ref_row, self.eos)
                exact += hyp == ref
                edits += edit_distance(hyp, ref)
                ref_tokens += len(ref)
                hyps.append(self.tgt_vocab.decode(hyp))  # detokenised, for chrF
                refs.append(self.tgt_vocab.decode(ref))
                hyp_toks.append(" ".join(self.tgt_vocab.itos[t] for t in hyp))  # space-joined tokens, for BLEU
                ref_toks.append(" ".join(self.tgt_vocab.itos[t] for t in ref))
            m["exact_match"].update(exact, len(y))
            m[self.error_rate].update(edits, ref_tokens)
            m["bleu"].update(hyp_toks, ref_toks)
            m["chrf"].update(hyps, refs)
        return m

    @torch.no_grad()
    def translate(self, model: nn.Module, text: str) -> tuple[list[str], list[str], torch.Tensor | None]:
        """``text`` → (source tokens incl. <eos>, output tokens incl. <eos> if emitted, attention (L, S) or None)."""
        tokens = self.src_vocab.tokenize(text)
        if not tokens:
            raise ConfigError("the source text is empty")
        unknown = sorted({t for t in tokens if t not in self.src_vocab})
        if unknown:
            raise ConfigError(f"{unknown!r} not in the '{self.info.name}' source vocabulary")
        ids = self.src_vocab.encode(tokens, eos=True)
        device = next(model.parameters()).device
        x = torch.tensor([ids], dtype=torch.long, device=device)
        lengths = torch.tensor([len(ids)], dtype=torch.long, device=device)
        model.eval()
        out, attn = self.decode(model, x, lengths, max_len=max(self.info.target_length, 2 * len(ids)))
        row = out[0].tolist()
        n = row.index(self.eos) + 1 if self.eos in row else len([t for t in row if t != PAD])
        src_tokens = [*tokens, "<eos>"]
        out_tokens = [self.tgt_vocab.itos[t] for t in row[:n]]
        if attn is None:  # a Transformer decodes through its KV cache untraced: record its cross-attention
            attn = _cross_attention(model, x, lengths, out[:, :n])
        return src_tokens, out_tokens, None if attn is None else attn[0, :n].cpu()


def _cross_attention(
    model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, out: torch.Tensor
) -> torch.Tensor | None:
    """The last decoder layer's cross-attention α averaged over heads, (B, L, S), for the decoded
    tokens ``out`` (B, L): one teacher-forced pass over ``<sos>`` + out[:, :-1] with the attention
    modules recorded (the decoder is causal, so each row is the α that produced that token). None for
    a model without :class:`~archlab.layers.attention.MultiHeadAttention` cross-attention."""
    from archlab.layers.attention import record_attention

    tgt_in = torch.cat([torch.full_like(out[:, :1], SOS_ID), out[:, :-1]], 1)  # (B, L)
    with record_attention(model) as maps:
        model(x, lengths, tgt_in)
    cross = [name for name, calls in maps.items() if name.endswith("cross_attn") and calls]
    if not cross:
        return None
    return maps[cross[-1]][0].float().mean(1)  # (B, H, L, S) → (B, L, S), the last layer (module order)
