"""Tokenisers a run trains on its training split, saves in its run directory and reloads to
evaluate or sample: character level, and byte-level BPE through HF ``tokenizers``.

Letters: V vocabulary size, L tokens.

* :class:`CharTokenizer` — one token per character, the characters of the training text sorted by
  code point after the special tokens (nanoGPT's ``shakespeare_char`` layout when there are none).
  A character it has never seen cannot be encoded: :meth:`~CharTokenizer.unknown` lists them, and
  ``encode`` raises :class:`~archlab.utils.errors.DataError` naming them.
* :class:`BPETokenizer` — byte-level byte-pair encoding (Sennrich et al. 2016, "Neural Machine
  Translation of Rare Words with Subword Units", ACL, arXiv:1508.07909, Algorithm 1; over the 256
  bytes of UTF-8 as GPT-2 does, Radford et al. 2019 §2.2): start from the 256 byte symbols and
  merge the most frequent adjacent pair of the training text's pre-tokens (GPT-2's split on
  letters/digits/punctuation/spaces) until V symbols, ``min_frequency`` 2. Every string is
  encodable (no unknown token) and ``decode(encode(s)) == s`` for every string.

Both write one JSON file (``save``) that :func:`load_tokenizer` reads back as the same tokeniser:
``{"archlab_tokenizer": "char" | "bpe", ...}``. Special tokens (BERT's ``[CLS]``, ``[SEP]``,
``[MASK]`` …) come first, so ``specials[i]`` has id i.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from archlab.utils.errors import DataError, preview
from archlab.utils.io import atomic_write_text
from archlab.utils.tokens import UNK

TOKENIZER_FILE = "tokenizer.json"  # its name in a run directory


class Tokenizer(Protocol):
    """What a task needs of a tokeniser: ids in, text out, the unknown pieces of a prompt, a file."""

    kind: str
    specials: tuple[str, ...]

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, lossy: bool = False) -> list[int]: ...

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str: ...

    def unknown(self, text: str) -> list[str]: ...

    def token_id(self, token: str) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


def _ids(ids: Iterable[int] | torch.Tensor) -> list[int]:
    return ids.tolist() if isinstance(ids, torch.Tensor) else [int(i) for i in ids]


class CharTokenizer:
    """Characters ↔ ids: ``specials`` first, then ``chars`` (sorted when built by :meth:`train`)."""

    kind = "char"

    def __init__(self, chars: Sequence[str], specials: Sequence[str] = ()):
        self.specials = tuple(specials)
        self.itos: tuple[str, ...] = self.specials + tuple(chars)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a character tokenizer needs distinct characters and specials")

    @classmethod
    def train(cls, texts: Iterable[str], specials: Sequence[str] = ()) -> CharTokenizer:
        """Every character of ``texts`` (the training split only), sorted by code point."""
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(sorted(seen - set(specials)), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that have no id, sorted."""
        return sorted({c for c in text if c not in self.stoi})

    def encode(self, text: str, lossy: bool = False) -> list[int]:
        """``text`` → one id per character; :class:`DataError` naming the characters it lacks, or
        with ``lossy`` (held-out text) those characters as ``<unk>`` when the tokenizer has one."""
        unk = self.stoi.get(UNK) if lossy else None
        try:
            return [self.stoi[c] if unk is None else self.stoi.get(c, unk) for c in text]
        except KeyError:
            raise DataError(f"characters {self.unknown(text)!r} are not in the tokenizer's vocabulary") from None

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """ids → text; special tokens are dropped."""
        n = len(self.specials)
        return "".join(self.itos[i] for i in _ids(ids) if i >= n)

    def token_id(self, token: str) -> int:
        if token not in self.stoi:
            raise DataError(f"token {preview(token)!r} is not in the tokenizer's vocabulary")
        return self.stoi[token]

    def to_dict(self) -> dict[str, Any]:
        chars = list(self.itos[len(self.specials) :])
        return {"archlab_tokenizer": "char", "specials": list(self.specials), "chars": chars}

    def save(self, path: str | Path) -> None:
        save_tokenizer(self, path)


MAX_BPE_VOCAB = 2**20  # 1,048,576 symbols: above any published BPE vocabulary (GPT-2 50,257; 256k for the largest)


class BPETokenizer:
    """Byte-level BPE (HF ``tokenizers``' ``models.BPE`` with GPT-2's ``ByteLevel`` pre-tokenizer
    and decoder); built by :meth:`train` on the training text only."""

    kind = "bpe"

    def __init__(self, tokenizer: Any, specials: Sequence[str] = ()):
        self.tokenizer, self.specials = tokenizer, tuple(specials)
        self._special_ids = {tokenizer.token_to_id(s) for s in self.specials}

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, specials: Sequence[str] = (), min_frequency: int = 2
    ) -> BPETokenizer:
        """BPE merges learned from ``texts`` until ``vocab_size`` symbols (specials and the 256
        bytes included; fewer when the text runs out of pairs seen ``min_frequency`` times).
        Deterministic: the same texts give the same merges. Raises ValueError when ``vocab_size``
        cannot hold the specials and the 256 byte symbols, or exceeds ``MAX_BPE_VOCAB``."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size > MAX_BPE_VOCAB:  # the trainer allocates ~70 bytes per entry up front: 10⁹ aborted the process
            raise ValueError(
                f"vocab_size {vocab_size:,} is more than {MAX_BPE_VOCAB:,} (GPT-2 has 50,257); "
                "a text yields far fewer merges"
            )
        if vocab_size < len(alphabet) + len(specials):
            raise ValueError(
                f"a byte-level BPE vocabulary needs room for the {len(alphabet)} bytes and {len(specials)} "
                f"special tokens: vocab_size ≥ {len(alphabet) + len(specials)}, got {vocab_size}"
            )
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(specials),  # ids 0 … len(specials) − 1
            initial_alphabet=alphabet,
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        return cls(tok, specials)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def unknown(self, text: str) -> list[str]:
        return []  # every byte has a symbol

    def encode(self, text: str, lossy: bool = False) -> list[int]:
        """``text`` → ids; every string is encodable (``lossy`` is for the protocol)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """ids → text; special tokens are dropped."""
        return self.tokenizer.decode([i for i in _ids(ids) if i not in self._special_ids], skip_special_tokens=False)

    def token_bytes(self) -> list[int]:
        """UTF-8 bytes each id stands for (0 for a special token): ByteLevel writes one symbol per
        byte, so a token's length is its byte count. Bits per byte divide the NLL by their sum."""
        return [
            0 if i in self._special_ids else len(self.tokenizer.id_to_token(i) or "") for i in range(self.vocab_size)
        ]

    def token_id(self, token: str) -> int:
        i = self.tokenizer.token_to_id(token)
        if i is None:
            raise DataError(f"token {preview(token)!r} is not in the tokenizer's vocabulary")
        return i

    def to_dict(self) -> dict[str, Any]:
        return {"archlab_tokenizer": "bpe", "specials": list(self.specials), "hf": self.tokenizer.to_str()}

    def save(self, path: str | Path) -> None:
        save_tokenizer(self, path)


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write ``tokenizer`` as one JSON file (atomically: a reader never sees half a file)."""
    atomic_write_text(Path(path), json.dumps(tokenizer.to_dict(), ensure_ascii=False))


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """The tokeniser :meth:`to_dict` described; ValueError/KeyError for anything else."""
    kind = d["archlab_tokenizer"]
    if kind == "char":
        return CharTokenizer(d["chars"], d.get("specials", ()))
    if kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(d["hf"]), d.get("specials", ()))
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokeniser saved at ``path``; :class:`DataError` (one line) when it is missing or unreadable."""
    path = Path(path)
    try:
        return tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{preview(str(path))} is missing: the run saved no tokenizer") from None
    except Exception as e:  # noqa: BLE001 - a bad file raises OSError, JSON/Key errors, or HF's own exception
        raise DataError(f"{preview(str(path))} is not a tokenizer archlab wrote ({type(e).__name__}: {e})") from None
