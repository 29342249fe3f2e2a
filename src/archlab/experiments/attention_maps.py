"""What trained attention heads look at: heat maps of a character GPT's and a BERT's heads on real
sentences and of an encoder–decoder's cross-attention on a translation.

Vaswani et al. 2017 (arXiv:1706.03762, §4 and Fig. 3–5): "individual attention heads clearly learn to
perform different tasks"; Clark et al. 2019 (arXiv:1906.04341, §3–4) found BERT heads that attend
to the previous or the next token, and heads that put most of their weight on [CLS] and [SEP].
Three ordinary training runs from the shipped recipes — ``shakespeare_char64/gpt_char`` (nanoGPT's
small configuration), ``bert_pretrain/bert_mini`` (MLM + NSP) and
``num2words_fr_en/transformer_small`` — then, with their final weights, the attention weights of
every head are recorded (:func:`archlab.layers.attention.record_attention`) on a sentence of Romeo
and Juliet, on a Rotten Tomatoes snippet as a BERT sentence pair, and on the translation of a French
number. Measured, per GPT head: the mean weight on the previous character; per BERT head: the mean
weight on the previous token, on the next token, on itself and on [CLS] + [SEP]; for the
translation: how monotonically the last decoder layer's cross-attention walks along the source
(Spearman's ρ between output position and the source position of each output token's largest
weight), on a few test numbers.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from archlab.data import load_dataset
from archlab.data.bert import CLS_ID, SEP_ID, sentence_pair
from archlab.data.text import vocab as text_vocab
from archlab.engine import load_run
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.layers.attention import record_attention
from archlab.report.figures import attention_grid, attention_heatmap
from archlab.utils.errors import ConfigError

GPT_RECIPE = "shakespeare_char64/gpt_char"
BERT_RECIPE = "bert_pretrain/bert_mini"
SEQ2SEQ_RECIPE = "num2words_fr_en/transformer_small"
TEXT = "ROMEO:\nBut, soft! what light through yonder window breaks?"  # Romeo and Juliet, II.2
# the first snippet of rotten_tomatoes' test split (never seen in pre-training), as BERT's sentence pair
PAIR = ("This is just lazy writing.", "Even kids deserve better.")
SOURCE = "quatre cent vingt-trois"
# the quick version's BERT: 2 layers, 2 heads, 32 wide (BERT-Mini is 4, 4, 256)
BERT_QUICK = {
    "model.hidden_size": 32,
    "model.num_hidden_layers": 2,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
}


class AttentionMapsOptions(ExperimentOptions):
    gpt_steps: int | None = Field(None, ge=1)  # GPT training steps (default 5 quick, the recipe's 2000 full)
    bert_steps: int | None = Field(None, ge=1)  # BERT pre-training steps (default 5 quick, the recipe's 1500)
    seq2seq_steps: int | None = Field(None, ge=1)  # encoder–decoder steps (default 5 quick, the recipe's 1500)
    text: str = Field(TEXT, min_length=2)  # the sentence the GPT reads (≤ its 64-character context)
    pair: list[str] = Field(default_factory=lambda: list(PAIR), min_length=2, max_length=2)  # BERT's sentences A, B
    source: str = Field(SOURCE, min_length=1)  # the French number the encoder–decoder translates
    alignment_examples: int = Field(50, ge=2)  # test numbers for the alignment statistic
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for both runs


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant."""

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    if len(set(ra)) < 2 or len(set(rb)) < 2:
        return 0.0
    return statistics.correlation(ra, rb)


@register_experiment
class AttentionMaps(Experiment):
    name = "attention-maps"
    title = "Attention maps: a character GPT's and a BERT's heads, and an encoder–decoder's cross-attention"
    claim = (
        "Trained attention heads specialise and can be read: some heads of a character-level GPT attend "
        "mostly to the previous character, some heads of BERT mostly to the previous or the next token, and "
        "the cross-attention of an encoder–decoder aligns each output word with the source words it "
        "translates, in order (Vaswani et al. 2017 §4; Clark et al. 2019 §3–4)."
    )
    Options = AttentionMapsOptions

    def settings(self, options: AttentionMapsOptions, quick: bool) -> dict[str, Any]:
        return {
            "gpt_steps": options.gpt_steps or (5 if quick else None),
            "bert_steps": options.bert_steps or (5 if quick else None),
            "seq2seq_steps": options.seq2seq_steps or (5 if quick else None),
            "text": options.text,
            "pair": list(options.pair),
            "source": options.source,
            "alignment_examples": min(options.alignment_examples, 8) if quick else options.alignment_examples,
            "overrides": dict(options.overrides),
            "quick": quick,
        }

    def check(self, s: dict[str, Any]) -> None:
        chars = text_vocab("shakespeare_char64")
        unknown = sorted({c for c in s["text"] if c not in chars.stoi})
        if unknown:
            raise ConfigError(
                f"experiment attention-maps: text: characters {unknown!r} are not in the GPT's vocabulary"
            )
        if len(s["text"]) > 64:
            raise ConfigError(f"experiment attention-maps: text: {len(s['text'])} characters exceed the GPT's 64")
        if not all(p.strip() for p in s["pair"]):
            raise ConfigError("experiment attention-maps: pair: both sentences must have text")

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        out = []
        for key, base, steps in (
            ("gpt", GPT_RECIPE, s["gpt_steps"]),
            ("bert", BERT_RECIPE, s["bert_steps"]),
            ("seq2seq", SEQ2SEQ_RECIPE, s["seq2seq_steps"]),
        ):
            # quick: no validation split, 64 test examples (a smoke run of the analysis); BERT's 5,655
            # shipped validation pairs are always evaluated, so its quick network is a tiny one
            smoke = {"data.test_subset": 64, "data.val_fraction": 0.0} if s["quick"] else {}
            if s["quick"] and key == "bert":
                smoke.update(BERT_QUICK)
            overrides = {**(budget(steps) if steps else {}), **smoke, **s["overrides"]}
            recipe = build_recipe(base, overrides=overrides)
            s.setdefault("run_names", {})[key] = f"{recipe.model.name}-s0"
            out.append(spec(key, 0, recipe, s["run_names"][key]))
        return out

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        figures = out_dir / "figures"
        gpt = self._gpt_maps(out_dir / s["run_names"]["gpt"], s["text"], figures)
        bert = self._bert_maps(out_dir / s["run_names"]["bert"], s["pair"], figures)
        s2s = self._cross_attention(out_dir / s["run_names"]["seq2seq"], s, figures)
        rows = [
            [f"GPT layer {layer}, head {head}", round(prev, 3), "—", round(self_w, 3), "—", "—"]
            for (layer, head), (prev, self_w) in gpt["heads"].items()
        ]
        rows += [
            [f"BERT layer {layer}, head {head}", *(round(v, 3) for v in w), "—"]
            for (layer, head), w in bert["heads"].items()
        ]
        rows.append(["enc–dec cross-attention, last layer (mean of heads)", "—", "—", "—", "—", round(s2s["rho"], 3)])
        (bl, bh), (bprev, _) = max(gpt["heads"].items(), key=lambda kv: kv[1][0])
        (pl, ph), pw = max(bert["heads"].items(), key=lambda kv: kv[1][0])
        (nl, nh), nw = max(bert["heads"].items(), key=lambda kv: kv[1][1])
        (sl, sh), sw = max(bert["heads"].items(), key=lambda kv: kv[1][3])
        causal = gpt["above_diagonal"] == 0.0
        prev_head = bprev >= 0.5
        bert_positional = max(pw[0], nw[1]) >= 0.5
        aligned = s2s["rho"] >= 0.5
        n_bert = sum(max(w[0], w[1]) >= 0.5 for w in bert["heads"].values())
        verdict = (
            f"GPT ({gpt['steps']:,} steps, held-out loss {gpt['val_loss']:.2f}) on {s['text']!r}: the most "
            f"previous-character head is layer {bl} head {bh}, with {100 * bprev:.0f}% of its weight on the "
            f"previous character on average (a uniform causal head would give {100 * gpt['uniform_prev']:.0f}%); "
            f"{sum(p >= 0.5 for p, _ in gpt['heads'].values())} of {len(gpt['heads'])} heads put at least half "
            f"their weight there. No weight falls on a later character ({'none' if causal else 'SOME'} above the "
            f"diagonal). BERT ({bert['steps']:,} steps, held-out MLM accuracy {100 * bert['mlm_accuracy']:.1f}%, "
            f"NSP accuracy {100 * bert['nsp_accuracy']:.1f}%) on {' '.join(bert['tokens'])!r}: the most "
            f"previous-token head is layer {pl} head {ph} ({100 * pw[0]:.0f}% of its weight), the most next-token "
            f"head layer {nl} head {nh} ({100 * nw[1]:.0f}%; a uniform head would give {100 / bert['length']:.0f}%); "
            f"{n_bert} of {len(bert['heads'])} heads put at least half their weight on the previous or the next "
            f"token; layer {sl} head {sh} puts {100 * sw[3]:.0f}% on [CLS] and [SEP] (3 of {bert['length']} tokens). "
            f"Encoder–decoder ({s2s['steps']:,} steps): {s['source']!r} → {' '.join(s2s['output'])!r}; "
            f"its last layer's cross-attention has Spearman ρ = {s2s['rho']:.2f} between output position and "
            f"attended source position (median over {s2s['examples']} test numbers; 1 = strictly in order). "
            + (
                "All three specialisations are visible: the claim holds."
                if prev_head and bert_positional and aligned and causal
                else "The claim is not (fully) visible after this much training: "
                + ", ".join(
                    t
                    for t, ok in (
                        ("no previous-character GPT head", prev_head),
                        ("GPT weight on a later character", causal),
                        ("no previous- or next-token BERT head", bert_positional),
                        ("no monotone alignment", aligned),
                    )
                    if not ok
                )
                + "."
            )
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "attention",
                "mean weight on the previous token",
                "on the next token",
                "on itself",
                "on [CLS] + [SEP]",
                "alignment ρ",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "gpt": {k: v for k, v in gpt.items() if k != "heads"},
                "bert": {k: v for k, v in bert.items() if k != "heads"},
                "seq2seq": s2s,
                "settings": s,
            },
            supported=(prev_head and bert_positional and aligned and causal) if not s["quick"] else None,
        )

    @staticmethod
    @torch.no_grad()
    def _bert_maps(run_dir: Path, pair: list[str], figures: Path) -> dict[str, Any]:
        """Every head's weights on ``[CLS] A [SEP] B [SEP]`` (the pre-training input), per head (prev,
        next, self, [CLS]+[SEP]) mean weights, figures of the first and last layer."""
        run = load_run(run_dir)
        tok = run.task.tokenizer
        ids, segments = sentence_pair(
            tok.encode(pair[0]), tok.encode(pair[1]), run.model.config.max_position_embeddings
        )
        x = torch.tensor([ids], device=run.device)
        with record_attention(run.model) as maps:
            run.model(x, token_type_ids=torch.tensor([segments], device=run.device))
        names = sorted(maps, key=_layer_order)  # one self-attention module per layer
        alpha = torch.stack([maps[n][0][0] for n in names]).float().cpu()  # (L, H, T, T)
        n_layers, n_heads, t, _ = alpha.shape
        special = torch.tensor([i in (CLS_ID, SEP_ID) for i in ids])
        heads = {}
        for layer in range(n_layers):
            for head in range(n_heads):
                a = alpha[layer, head]
                heads[layer, head] = (
                    a.diagonal(-1).mean().item(),  # token i on token i − 1, i ≥ 1
                    a.diagonal(1).mean().item(),  # token i on token i + 1, i < T − 1
                    a.diagonal().mean().item(),
                    a[:, special].sum(-1).mean().item(),  # on [CLS] and both [SEP]
                )
        special_names = {CLS_ID: "[CLS]", SEP_ID: "[SEP]"}
        tokens = [special_names.get(i) or tok.decode([i]).strip() or "␣" for i in ids]
        _first_and_last_layers(alpha, tokens, figures, "bert", "each token (row) over the whole pair")
        summary = _summary(run_dir)
        held_out = summary.get("val") or summary.get("test", {})
        return {
            "heads": heads,
            "tokens": tokens,
            "length": t,
            "steps": summary.get("steps", 0),
            "mlm_accuracy": held_out.get("mlm_accuracy", float("nan")),
            "nsp_accuracy": held_out.get("nsp_accuracy", float("nan")),
        }

    @staticmethod
    @torch.no_grad()
    def _gpt_maps(run_dir: Path, text: str, figures: Path) -> dict[str, Any]:
        run = load_run(run_dir)
        chars = text_vocab(run.recipe.data.name)
        ids = torch.tensor([chars.encode(text)], device=run.device)
        with record_attention(run.model) as maps:
            run.model(ids)
        names = sorted(maps, key=_layer_order)  # one self-attention module per layer
        alpha = torch.stack([maps[n][0][0] for n in names]).float().cpu()  # (L, H, T, T)
        n_layers, n_heads, t, _ = alpha.shape
        labels = [{"\n": "↵", " ": "␣"}.get(c, c) for c in text]
        heads = {}
        for layer in range(n_layers):
            for head in range(n_heads):
                a = alpha[layer, head]
                prev = a.diagonal(-1).mean().item()  # weight of token i on token i − 1, i ≥ 1
                heads[layer, head] = (prev, a.diagonal().mean().item())
        _first_and_last_layers(alpha, labels, figures, "gpt", "each character (row) over the characters before it")
        summary = _summary(run_dir)
        return {
            "heads": heads,
            "above_diagonal": alpha.triu(1).abs().max().item(),
            "uniform_prev": statistics.fmean(1 / (i + 1) for i in range(1, t)),
            "steps": summary.get("steps", 0),
            "val_loss": (summary.get("val") or summary.get("test", {})).get("loss", float("nan")),
        }

    @staticmethod
    @torch.no_grad()
    def _cross_attention(run_dir: Path, s: dict[str, Any], figures: Path) -> dict[str, Any]:
        run = load_run(run_dir)
        task, model = run.task, run.model
        src_tokens, out_tokens, _ = task.translate(model, s["source"])
        alpha = _cross_maps(model, task.src_vocab.encode(src_tokens[:-1], eos=True), out_tokens, task, run.device)
        last = alpha[-1]  # (H, T, S)
        attention_heatmap(
            src_tokens,
            out_tokens,
            last.mean(0).numpy(),
            figures / "cross_attention.png",
            title=f"cross-attention, last decoder layer (mean of heads): {s['source']} → {' '.join(out_tokens)}",
        )
        attention_grid(
            [last[h].numpy() for h in range(last.shape[0])],
            src_tokens,
            out_tokens,
            [f"head {h}" for h in range(last.shape[0])],
            figures / "cross_attention_heads.png",
            title="cross-attention, last decoder layer, each head",
        )
        ds = load_dataset(run.recipe.data.name, "test")
        rhos = []
        for i in range(min(s["alignment_examples"], len(ds))):
            n = int(ds.lengths[i]) if getattr(ds, "lengths", None) is not None else int((ds.x[i] != 0).sum())
            src_ids = ds.x[i, :n].tolist()
            text = " ".join(task.src_vocab.itos[t] for t in src_ids[:-1])  # without <eos>
            _, out, _ = task.translate(model, text)
            words = [w for w in out if w != "<eos>"]
            if len(words) < 2:
                continue
            a = _cross_maps(model, src_ids, out, task, run.device)[-1].mean(0)  # (T, S)
            focus = a[: len(words), : n - 1].argmax(-1).tolist()  # source word each output word reads most
            rhos.append(spearman(list(range(len(words))), [float(f) for f in focus]))
        summary = _summary(run_dir)
        return {
            "output": out_tokens,
            "rho": statistics.median(rhos) if rhos else 0.0,
            "examples": len(rhos),
            "steps": summary.get("steps", 0),
        }


def _cross_maps(model: Any, src_ids: list[int], out_tokens: list[str], task: Any, device: Any) -> torch.Tensor:
    """Cross-attention α of every decoder layer when the model reads its own output teacher-forced:
    (L, H, T, S), T output tokens (each row predicts that token), S source tokens incl. <eos>."""
    sos = task.tgt_vocab.stoi["<sos>"]
    out_ids = [task.tgt_vocab.stoi[t] for t in out_tokens]
    src = torch.tensor([src_ids], device=device)
    lengths = torch.tensor([len(src_ids)], device=device)
    tgt_in = torch.tensor([[sos, *out_ids[:-1]]], device=device)
    with record_attention(model) as maps:
        model(src, lengths, tgt_in)
    names = sorted((n for n in maps if n.endswith("cross_attn")), key=_layer_order)
    return torch.stack([maps[n][0][0] for n in names]).float().cpu()


def _layer_order(name: str) -> list[int]:
    """``decoder.layers.10.cross_attn`` → [10]: module names in layer order, not string order."""
    return [int(p) for p in name.split(".") if p.isdigit()]


def _summary(run_dir: Path) -> dict[str, Any]:
    import json

    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _first_and_last_layers(alpha: torch.Tensor, labels: list[str], figures: Path, model: str, what: str) -> None:
    """Every head's map of the first and last layer of a self-attention stack, alpha (L, H, T, T),
    as ``<model>_layer<l>.png`` (rows and columns labelled by the T tokens)."""
    n_layers, n_heads = alpha.shape[:2]
    for layer in (0, n_layers - 1):
        attention_grid(
            [alpha[layer, h].numpy() for h in range(n_heads)],
            labels,
            labels,
            [f"head {h}" for h in range(n_heads)],
            figures / f"{model}_layer{layer}.png",
            title=f"{model.upper()} layer {layer}: {what}",
        )
