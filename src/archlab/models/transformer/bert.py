"""BERT: a bidirectional Transformer encoder pre-trained by masked-LM and next-sentence prediction.

Devlin, Chang, Lee & Toutanova 2019, *BERT: Pre-training of Deep Bidirectional Transformers for
Language Understanding*, NAACL (arXiv:1810.04805): §3 (model, input representation, Fig. 2), §3.1
(the two pre-training tasks), App. A.2 (GELU, the pooler), §4.1 (sequence classification from the
pooled ``[CLS]``). Post-LN blocks of Vaswani et al. 2017 (arXiv:1706.03762 §3.1). Layout and names
follow the paper and HF ``BertForPreTraining`` / ``BertForSequenceClassification``, which it equals
with copied weights (tests/test_bert.py, through :func:`hf_bert_key_map`).

Variants:
    bert_base   12 layers, 12 heads, 768 wide, FFN 3072, 512 positions, WordPiece vocabulary 30,522
                (Table/§3 "BERT_BASE"); with the classification head (2 classes) 109,483,778
                parameters, HF's count; ``head=pretraining``: 110,106,428 (HF BertForPreTraining).
    bert_mini   4 layers, 4 heads, 256 wide, FFN 1024 (Turc et al. 2019, "Well-Read Students Learn
                Better", arXiv:1908.08962: BERT-Mini); the recipes here use it with our byte-level BPE.

Letters: B batch, T positions (≤ max_position_embeddings), V vocabulary, D hidden_size, H heads,
F intermediate_size, N layers, K classes; E_tok (V, D), E_pos (P, D), E_seg (2, D) the embeddings.

Equations:
    h_0 = Dropout(LN(E_tok[x_t] + E_pos[t] + E_seg[s_t]))                  input representation (§3, Fig. 2)
    a_l = LN(h_{l−1} + Dropout(MultiHead(h_{l−1}, padding masked)))        post-LN block (Vaswani §3.1)
    h_l = LN(a_l + Dropout(W_2 GELU(W_1 a_l + b_1) + b_2))                 FFN, F = 4D, GELU (App. A.2)
    pooled = tanh(W_p h_N[CLS] + b_p)                                      the pooler
    MLM:  p(x_t | x̃) = softmax(LN(GELU(W_t h_N,t + b_t)) E_tokᵀ + b_v)     tied decoder (§3.1 Task #1)
    NSP:  p(IsNext | x̃) = softmax(W_nsp pooled + b_nsp)                     (§3.1 Task #2)
    classification: p(y | x) = softmax(W_c Dropout(pooled) + b_c)           fine-tuning (§4.1)
    MultiHead: α = softmax(QKᵀ/√(D/H), padded keys masked), head = α V      (Vaswani et al. 2017, Eq. 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.layers.transformer import TransformerStack
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, NonNegativeInt, PositiveFloat, PositiveInt, Probability
from archlab.utils.errors import ShapeError
from archlab.utils.shapes import check_shape

__all__ = ["Bert", "BertConfig", "bert_base", "bert_mini", "hf_bert_key_map"]


@dataclass
class BertConfig(ModelConfig):
    """BERT_BASE by default (HF ``BertConfig()``), with the sequence-classification head."""

    in_shape: tuple[PositiveInt] = (128,)  # (T,): the data's padded length (≤ max_position_embeddings)
    num_classes: PositiveInt = 2  # K of the classification head (ignored by head=pretraining)
    vocab_size: PositiveInt = 30_522  # V (BERT's uncased WordPiece; filled from the data)
    hidden_size: PositiveInt = 768  # D
    num_hidden_layers: LayerCount = 12  # N
    num_attention_heads: PositiveInt = 12  # H; hidden_size must be divisible by it
    intermediate_size: PositiveInt = 3072  # F = 4D
    max_position_embeddings: PositiveInt = 512  # P: positions with a learned vector
    type_vocab_size: PositiveInt = 2  # segments A and B
    hidden_dropout_prob: Probability = 0.1  # embeddings, residual and classifier dropout
    attention_probs_dropout_prob: Probability = 0.1  # dropout on α
    layer_norm_eps: PositiveFloat = 1e-12
    pad_token_id: NonNegativeInt = 0  # [PAD]: its embedding row starts at 0 and gets no gradient
    head: Literal["classification", "pretraining"] = "classification"  # §4.1 fine-tuning, or MLM + NSP


class BertEmbeddings(nn.Module):
    """h_0 = Dropout(LN(E_tok[x] + E_pos[t] + E_seg[s])) (§3, Fig. 2). Shapes: (B, T) ids → (B, T, D)."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)  # E_tok
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)  # E_pos, learned
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)  # E_seg
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x: Tensor, token_type_ids: Tensor) -> Tensor:
        positions = torch.arange(x.shape[1], device=x.device)  # t = 0 … T − 1
        e = self.word_embeddings(x) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(e))  # (B, T, D)


class BertPooler(nn.Module):
    """pooled = tanh(W_p h[CLS] + b_p): the first position's final state (App. A.2)."""

    def __init__(self, d: int):
        super().__init__()
        self.dense = nn.Linear(d, d)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, D)


class BertMLMHead(nn.Module):
    """softmax(LN(GELU(W_t h + b_t)) E_tokᵀ + b_v): the masked-LM output, decoder tied to E_tok (§3.1)."""

    def __init__(self, c: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)  # W_t
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight  # tied: E_tokᵀ
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))  # b_v

    def forward(self, h: Tensor, positions: Tensor | None = None) -> Tensor:
        """h (B, T, D) → logits (B, T, V); with ``positions`` (B, T) bool, the logits (M, V) of the M
        chosen positions only, in row-major order — the original BERT's ``gather_indexes``
        (google-research/bert, run_pretraining.py), so the (D × V) decoder costs M/(B·T) of the full one."""
        if positions is not None:
            h = h[positions]  # (M, D)
        # the output bias b_v rides in the decoder's matmul (one addmm instead of a separate add)
        return F.linear(self.norm(self.act(self.dense(h))), self.decoder.weight, self.bias)


class Bert(nn.Module):
    """The BERT encoder with one head: ``pretraining`` (MLM + NSP) or ``classification``.

    ``forward(x, token_type_ids=None, attention_mask=None)``: ``x`` (B, T) token ids, T ≤
    max_position_embeddings; ``token_type_ids`` (B, T) segment ids (default 0); ``attention_mask``
    (B, T) 1 on tokens, 0 on padding (default all 1). Returns (B, K) logits (classification), or
    ``(mlm_logits (B, T, V), nsp_logits (B, 2))`` (pretraining). Raises ShapeError (one line) for a
    sequence longer than the context or masks of another shape, TypeError for non-integer ids.
    ``forward_features`` gives the final hidden states h_N (B, T, D); ``forward_head`` the head's output.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        c = self.config = config
        if c.in_shape[0] > c.max_position_embeddings:
            raise ValueError(
                f"the data's sequences of {c.in_shape[0]} tokens exceed max_position_embeddings="
                f"{c.max_position_embeddings}; set model.max_position_embeddings ≥ {c.in_shape[0]}"
            )
        if c.pad_token_id >= c.vocab_size:
            raise ValueError(f"pad_token_id={c.pad_token_id} must be below vocab_size={c.vocab_size}")
        self.input_shape = tuple(c.in_shape)
        self.input_spec = ("T",)
        self.embeddings = BertEmbeddings(c)
        self.encoder = TransformerStack(
            c.num_hidden_layers,
            d_model=c.hidden_size,
            num_heads=c.num_attention_heads,
            d_ff=c.intermediate_size,
            norm_first=False,  # post-LN
            activation="gelu",
            dropout=c.hidden_dropout_prob,
            attention_dropout=c.attention_probs_dropout_prob,
            layer_norm_eps=c.layer_norm_eps,
        )
        self.pooler = BertPooler(c.hidden_size)
        if c.head == "pretraining":
            self.mlm = BertMLMHead(c, self.embeddings.word_embeddings)
            self.nsp = nn.Linear(c.hidden_size, 2)  # W_nsp: IsNext (0) / NotNext (1)
        else:
            self.dropout = nn.Dropout(c.hidden_dropout_prob)
            self.classifier = nn.Linear(c.hidden_size, c.num_classes)  # W_c
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        """BERT's initialisation (HF ``BertPreTrainedModel``): N(0, 0.02²) weights, zero biases, the
        [PAD] row 0; LayerNorm 1 and 0."""
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def example_inputs(self, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.randint(0, self.config.vocab_size, (batch, *self.input_shape)),)

    def _check(self, x: Tensor, token_type_ids: Tensor | None, attention_mask: Tensor | None) -> None:
        check_shape(x, (None, "T"), "x")
        if x.dtype != torch.long:
            raise TypeError(f"BERT takes token ids (torch.long), got {x.dtype}")
        p = self.config.max_position_embeddings
        if x.shape[1] > p:
            raise ShapeError(
                f"x: {x.shape[1]} tokens exceed the model's context of max_position_embeddings={p}; "
                f"cut the input to {p} tokens"
            )
        for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
            if t is not None and t.shape != x.shape:
                raise ShapeError(f"{name}: expected shape {tuple(x.shape)} like x, got {tuple(t.shape)}")
        if not x.is_meta and x.numel() and (int(x.max()) >= self.config.vocab_size or int(x.min()) < 0):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), got {int(x.min())}..{int(x.max())}")

    def forward_features(
        self, x: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None
    ) -> Tensor:
        """h_N (B, T, D): the encoder's final hidden state at every position."""
        self._check(x, token_type_ids, attention_mask)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(x)
        h = self.embeddings(x, token_type_ids)  # h_0: (B, T, D)
        valid = None if attention_mask is None else attention_mask.bool()  # (B, T): True at tokens
        h, _ = self.encoder(h, key_padding_mask=valid)
        return h

    def forward_head(self, h: Tensor, mlm_positions: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        pooled = self.pooler(h)  # (B, D)
        if self.config.head == "pretraining":
            return self.mlm(h, mlm_positions), self.nsp(pooled)  # (B, T, V) or (M, V); (B, 2)
        return self.classifier(self.dropout(pooled))  # (B, K)

    def forward(
        self,
        x: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        mlm_positions: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``mlm_positions`` (B, T) bool: compute the MLM logits at these positions only, (M, V)
        (the masked_lm task passes its masked positions); ignored by the classification head."""
        if mlm_positions is not None and mlm_positions.shape != x.shape:
            raise ShapeError(f"mlm_positions: expected shape {tuple(x.shape)} like x, got {tuple(mlm_positions.shape)}")
        return self.forward_head(self.forward_features(x, token_type_ids, attention_mask), mlm_positions)


def hf_bert_key_map(num_layers: int, head: str = "pretraining") -> dict[str, str]:
    """Our parameter name → HF ``BertForPreTraining`` (or ``BertForSequenceClassification``) name.

    One entry, ``encoder.layers.{i}.self_attn.qkv_proj.*``, maps to the three HF tensors
    ``…attention.self.{query,key,value}.*`` joined by ``|``: our fused projection is their
    concatenation along the output dimension, in Q, K, V order. The tied MLM decoder is not listed
    (it is ``embeddings.word_embeddings.weight``)."""
    keys = {
        "embeddings.word_embeddings.weight": "bert.embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight": "bert.embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight": "bert.embeddings.token_type_embeddings.weight",
        "embeddings.norm.weight": "bert.embeddings.LayerNorm.weight",
        "embeddings.norm.bias": "bert.embeddings.LayerNorm.bias",
    }
    for i in range(num_layers):
        ours, hf = f"encoder.layers.{i}.", f"bert.encoder.layer.{i}."
        for p in ("weight", "bias"):
            keys[f"{ours}self_attn.qkv_proj.{p}"] = "|".join(
                f"{hf}attention.self.{n}.{p}" for n in ("query", "key", "value")
            )
            keys[f"{ours}self_attn.out_proj.{p}"] = f"{hf}attention.output.dense.{p}"
            keys[f"{ours}self_attn_norm.{p}"] = f"{hf}attention.output.LayerNorm.{p}"
            keys[f"{ours}ffn.linear1.{p}"] = f"{hf}intermediate.dense.{p}"
            keys[f"{ours}ffn.linear2.{p}"] = f"{hf}output.dense.{p}"
            keys[f"{ours}ffn_norm.{p}"] = f"{hf}output.LayerNorm.{p}"
    for p in ("weight", "bias"):
        keys[f"pooler.dense.{p}"] = f"bert.pooler.dense.{p}"
        if head == "pretraining":
            keys[f"mlm.dense.{p}"] = f"cls.predictions.transform.dense.{p}"
            keys[f"mlm.norm.{p}"] = f"cls.predictions.transform.LayerNorm.{p}"
            keys[f"nsp.{p}"] = f"cls.seq_relationship.{p}"
        else:
            keys[f"classifier.{p}"] = f"classifier.{p}"
    if head == "pretraining":
        keys["mlm.bias"] = "cls.predictions.bias"
    return keys


_BERT = "Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding (NAACL 2019)"
_TEST = {
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "hidden_size": 16,
    "intermediate_size": 32,
    "vocab_size": 50,
    "max_position_embeddings": 16,
    "in_shape": (8,),
}
_MINI = {"num_hidden_layers": 4, "num_attention_heads": 4, "hidden_size": 256, "intermediate_size": 1024}


@register_model(
    family="transformer",
    config=BertConfig,
    paper=_BERT,
    tasks=("classification", "masked_lm"),
    test_overrides=_TEST,
    meta={
        "num_params": 109_483_778,
        "macs": 11_174_217_216,
        "source": "HF transformers BertForSequenceClassification (bert-base, 2 labels)",
    },
)
def bert_base(**overrides) -> Bert:
    """BERT_BASE: 12 layers, 12 heads, 768 wide, FFN 3072 (110M); ``head=pretraining`` for MLM + NSP."""
    return Bert(BertConfig(**overrides))


@register_model(
    family="transformer",
    config=BertConfig,
    paper=f"{_BERT}; BERT-Mini of Turc et al., Well-Read Students Learn Better (2019)",
    tasks=("classification", "masked_lm"),
    defaults=_MINI,
    test_overrides=_TEST,
    meta={"num_params": 11_171_074, "macs": 436_273_664},
)
def bert_mini(**overrides) -> Bert:
    """BERT-Mini: 4 layers, 4 heads, 256 wide, FFN 1024; ``head=pretraining`` for MLM + NSP."""
    return Bert(BertConfig(**{**_MINI, **overrides}))
