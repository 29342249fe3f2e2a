"""GPT: a decoder-only Transformer language model (GPT-2 layout), with tied embeddings and a KV cache.

Radford, Narasimhan, Salimans & Sutskever 2018, *Improving Language Understanding by Generative
Pre-Training* (GPT, §3.1 Eq. 2); Radford, Wu, Child, Luan, Amodei & Sutskever 2019, *Language Models
are Unsupervised Multitask Learners* (GPT-2, §2.3: LayerNorm moved to the input of each sub-block,
a final LayerNorm, residual projections scaled at init by 1/√N). Layout and names as nanoGPT
(Karpathy) and HF ``GPT2LMHeadModel``, which it equals with copied weights (tests/test_transformer_models.py).

Variants:
    gpt2            GPT-2 small: 12 layers, 12 heads, 768 wide, context 1024, vocabulary 50,257
                    (124,439,808 parameters, HF's count; the output layer is the tied embedding).
    gpt_char        nanoGPT's small CPU configuration for character-level Shakespeare: 4 layers,
                    4 heads, 128 wide, context 64, no dropout; vocabulary from the data.

Letters: B batch, T positions (≤ block_size), V vocabulary, D n_embd, H n_head, N n_layer, W_e the
token embedding (V, D), W_p the position embedding (block_size, D).

Equations:
    h_0 = Dropout(W_e[x_t] + W_p[t])                                       token + learned position
    a_l = h_{l−1} + Dropout(MultiHead(LN(h_{l−1}), causal))              pre-LN block (GPT-2 §2.3)
    h_l = a_l + Dropout(W_2 GELU_tanh(W_1 LN(a_l) + b_1) + b_2)           FFN, F = 4D
    p(x_{t+1} | x_≤t) = softmax(LN_f(h_N) W_eᵀ)                            tied output layer (Press & Wolf 2017)
    MultiHead: α = softmax(QKᵀ/√(D/H) + causal mask), head = α V            (Vaswani et al. 2017, Eq. 1)

Generation (:meth:`GPT.generate`) runs the prompt once in parallel to fill the per-layer KV cache,
then one token per step through :meth:`GPT.step` and the shared decoders of
:mod:`archlab.layers.decoding`. A context longer than ``block_size`` is cropped as nanoGPT does:
the model conditions on the last ``block_size`` tokens only; once the cache is full, each new token
re-reads the last ``block_size`` tokens (a fresh prefill), so the logits are exactly nanoGPT's
``model(idx[:, -block_size:])`` at every step. ``forward`` itself refuses a window longer than the
context (one-line ShapeError): a learned position table has no vector past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from archlab.layers import decoding
from archlab.layers.positional import LearnedPositionalEmbedding
from archlab.layers.transformer import BlockCache, TransformerStack, cache_length
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, PositiveFloat, PositiveInt, Probability
from archlab.utils.errors import ShapeError
from archlab.utils.shapes import check_shape

__all__ = ["GPT", "GPTConfig", "GPTState", "gpt2", "gpt_char", "hf_gpt2_key_map"]


@dataclass
class GPTConfig(ModelConfig):
    """GPT-2 small by default (HF ``GPT2Config()``)."""

    in_shape: tuple[PositiveInt] = (1024,)  # (T,): the training window of the data (≤ block_size)
    num_classes: PositiveInt = 50_257  # V outputs (= vocab_size: the output layer is W_eᵀ)
    vocab_size: PositiveInt = 50_257  # V inputs (GPT-2's byte-level BPE; filled from the data)
    block_size: PositiveInt = 1024  # context length n_ctx: positions with a learned vector
    n_layer: LayerCount = 12  # N blocks
    n_head: PositiveInt = 12  # H heads; n_embd must be divisible by it
    n_embd: PositiveInt = 768  # D
    dropout: Probability = 0.1  # embedding, residual and attention dropout (GPT-2: 0.1 each)
    layer_norm_eps: PositiveFloat = 1e-5
    bias: bool = True  # biases in the projections and LayerNorms (GPT-2: yes)


class GPTState(NamedTuple):
    """The decoding state of :meth:`GPT.step`: the last ≤ block_size tokens and the per-layer KV cache
    of the tokens before the newest one (None: no cache, every step re-reads ``tokens``)."""

    tokens: Tensor  # (B, t) long
    cache: list[BlockCache] | None


class GPT(nn.Module):
    """Shapes: idx (B, T) token ids, T ≤ block_size → logits (B, T, V)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        c = self.config = config
        if c.num_classes != c.vocab_size:
            raise ValueError(
                f"num_classes ({c.num_classes}) must equal vocab_size ({c.vocab_size}): the output layer is the "
                f"tied token embedding"
            )
        if c.in_shape[0] > c.block_size:
            raise ValueError(
                f"the data's windows of {c.in_shape[0]} tokens exceed the context block_size={c.block_size}; "
                f"set model.block_size ≥ {c.in_shape[0]}"
            )
        self.input_shape = tuple(c.in_shape)
        self.input_spec = ("T",)
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)  # W_e
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd)  # W_p
        self.drop = nn.Dropout(c.dropout)
        self.transformer = TransformerStack(
            c.n_layer,
            final_norm=True,  # LN_f
            d_model=c.n_embd,
            num_heads=c.n_head,
            d_ff=4 * c.n_embd,
            norm_first=True,
            activation="gelu_tanh",
            dropout=c.dropout,
            layer_norm_eps=c.layer_norm_eps,
            bias=c.bias,
        )
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: p = softmax(h W_eᵀ)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 §2.3: residual projections scaled by 1/√(2N)
            if name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """GPT-2 / nanoGPT: N(0, 0.02²) weights, zero biases; LayerNorm 1 and 0 (torch's default)."""
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def example_inputs(self, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.randint(0, self.config.vocab_size, (batch, *self.input_shape)),)

    def _check(self, idx: Tensor, offset: int = 0) -> None:
        check_shape(idx, (None, "T"), "idx")
        if idx.dtype != torch.long:
            raise TypeError(f"a language model takes token ids (torch.long), got {idx.dtype}")
        if offset + idx.shape[1] > self.config.block_size:
            raise ShapeError(
                f"idx: {offset + idx.shape[1]} tokens exceed the model's context of block_size="
                f"{self.config.block_size}; give at most {self.config.block_size} (generate crops longer prompts)"
            )
        if not idx.is_meta and idx.numel() and (int(idx.max()) >= self.config.vocab_size or int(idx.min()) < 0):
            raise ValueError(
                f"token ids must be in [0, {self.config.vocab_size}), got {int(idx.min())}..{int(idx.max())}"
            )

    def forward(
        self, idx: Tensor, past: list[BlockCache] | None = None, use_cache: bool = False
    ) -> Tensor | tuple[Tensor, list[BlockCache] | None]:
        """Logits (B, T, V) of the next token at every position; with ``use_cache`` (B, T, V) and the
        per-layer caches, ``past`` holding the caches of the tokens before ``idx``."""
        offset = cache_length(past)
        self._check(idx, offset)
        t = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(t, offset))  # h_0: (B, T, D)
        x, caches = self.transformer(x, is_causal=True, past=past, use_cache=use_cache)  # LN_f(h_N)
        logits = self.lm_head(x)  # (B, T, V)
        return (logits, caches) if use_cache else logits

    # -- decoding (archlab.layers.decoding) ---------------------------------------------------
    def start_decoding(self, idx: Tensor, use_cache: bool = True) -> tuple[Tensor, GPTState]:
        """(the last prompt token (B,), the state holding the rest of the prompt, its cache filled)."""
        bs = self.config.block_size
        idx = idx[:, -bs:]  # nanoGPT's crop: condition on the last block_size tokens
        prefix = idx[:, :-1]
        cache = None
        if use_cache:
            cache = self(prefix, use_cache=True)[1] if prefix.shape[1] else []
        return idx[:, -1], GPTState(prefix, cache)

    def step(self, tokens: Tensor, state: GPTState) -> tuple[Tensor, GPTState]:
        """The decoding protocol: x_t (B,) → (logits of x_{t+1} (B, V), the next state). With a cache,
        one token through every layer; once the context is full, a fresh prefill of the last
        block_size − 1 tokens first (nanoGPT's crop, exactly). Without a cache, the whole window."""
        bs = self.config.block_size
        window = torch.cat([state.tokens, tokens[:, None]], dim=1)[:, -bs:]  # (B, ≤ bs)
        if state.cache is None:
            return self(window)[:, -1], GPTState(window, None)
        cache = state.cache
        if cache_length(cache) >= bs:  # the context is full: restart the cache from the cropped window
            cache = self(window[:, :-1], use_cache=True)[1]
        logits, cache = self(tokens[:, None], past=cache or None, use_cache=True)
        return logits[:, -1], GPTState(window, cache)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` sampled tokens → (B, T0 + n).

        ``temperature`` 0 is greedy; ``top_k`` / ``top_p`` truncate (archlab.layers.decoding).
        ``use_cache=False`` re-reads the whole (cropped) window at every step: the same tokens, O(T)
        more work per token. Prompts longer than block_size are cropped (module docstring).
        Raises ValueError for bad sampling settings or an empty prompt."""
        return decoding.continue_prompt(
            self, idx, max_new_tokens, lambda prompt: self.start_decoding(prompt, use_cache),
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip


def hf_gpt2_key_map(n_layer: int) -> dict[str, tuple[str, bool]]:
    """Our parameter name → (HF ``GPT2LMHeadModel`` name, transpose?). HF's Conv1D stores (in, out)."""
    keys = {"wte.weight": ("transformer.wte.weight", False), "wpe.weight": ("transformer.wpe.weight", False)}
    for i in range(n_layer):
        ours, hf = f"transformer.layers.{i}.", f"transformer.h.{i}."
        for a, b, t in (
            ("self_attn_norm", "ln_1", False),
            ("self_attn.qkv_proj", "attn.c_attn", True),
            ("self_attn.out_proj", "attn.c_proj", True),
            ("ffn_norm", "ln_2", False),
            ("ffn.linear1", "mlp.c_fc", True),
            ("ffn.linear2", "mlp.c_proj", True),
        ):
            keys[f"{ours}{a}.weight"] = (f"{hf}{b}.weight", t)
            keys[f"{ours}{a}.bias"] = (f"{hf}{b}.bias", False)
    keys["transformer.norm.weight"] = ("transformer.ln_f.weight", False)
    keys["transformer.norm.bias"] = ("transformer.ln_f.bias", False)
    return keys


_GPT2 = "Radford et al., Language Models are Unsupervised Multitask Learners (GPT-2, 2019)"
_TEST = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 16,
    "vocab_size": 50,
    "num_classes": 50,
    "block_size": 16,
    "in_shape": (8,),
}
_CHAR: dict = {
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 64,
    "in_shape": (64,),
    "dropout": 0.0,
    "vocab_size": 65,
    "num_classes": 65,
}


@register_model(
    family="transformer",
    config=GPTConfig,
    paper=_GPT2,
    tasks=("language_modeling",),
    test_overrides=_TEST,
    meta={"num_params": 124_439_808, "macs": 145_824_153_600, "source": "HF transformers GPT2LMHeadModel (gpt2)"},
)
def gpt2(**overrides) -> GPT:
    """GPT-2 small (124M): 12 layers, 12 heads, 768 wide, context 1024, tied embeddings."""
    return GPT(GPTConfig(**overrides))


@register_model(
    family="transformer",
    config=GPTConfig,
    paper=f"{_GPT2}; nanoGPT's shakespeare_char CPU configuration (Karpathy)",
    tasks=("language_modeling",),
    defaults=_CHAR,
    test_overrides=_TEST,
    meta={"num_params": 809_856, "macs": 55_058_432},
)
def gpt_char(**overrides) -> GPT:
    """nanoGPT's small CPU GPT for characters: 4 layers, 4 heads, 128 wide, context 64, no dropout."""
    return GPT(GPTConfig(**{**_CHAR, **overrides}))
