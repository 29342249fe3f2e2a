"""Tokenisers: character level and byte-level BPE (HF ``tokenizers``), trained on a training split,
saved to one file and read back as the same tokeniser."""

import json

import pytest
import torch

from archlab.data.tokenizers import BPETokenizer, CharTokenizer, load_tokenizer, save_tokenizer
from archlab.utils.errors import DataError
from archlab.utils.tokens import UNK

TRAIN = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40
HELD_OUT = "Speak, Citizen — ¿qué? ☃\n"


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train([TRAIN], vocab_size=300, specials=("[PAD]", "[MASK]"))


def test_char_tokenizer_is_the_sorted_training_characters():
    tok = CharTokenizer.train([TRAIN])
    assert tok.itos == tuple(sorted(set(TRAIN))) and tok.vocab_size == len(set(TRAIN))
    ids = tok.encode("Speak.")
    assert ids == [tok.itos.index(c) for c in "Speak."] and tok.decode(ids) == "Speak."
    assert tok.decode(torch.tensor(ids)) == "Speak."
    # held-out characters: listed, refused, or <unk> when asked (evaluation text)
    assert tok.unknown(HELD_OUT) == sorted({"—", "¿", "q", "é", "☃", "?"} - set(TRAIN))
    with pytest.raises(DataError, match="not in the tokenizer's vocabulary"):
        tok.encode(HELD_OUT)
    with_unk = CharTokenizer.train([TRAIN], specials=(UNK,))
    lossy = with_unk.encode("a☃", lossy=True)
    assert lossy == [with_unk.stoi["a"], 0] and with_unk.decode(lossy) == "a"  # specials are not decoded


def test_bpe_round_trips_any_string_and_compresses_its_training_text(bpe):
    assert bpe.vocab_size == 300 and bpe.token_id("[PAD]") == 0 and bpe.token_id("[MASK]") == 1
    for s in (TRAIN[:200], HELD_OUT, "", "\x00\t  ünïcödé 🙂"):
        assert bpe.decode(bpe.encode(s)) == s  # byte level: nothing is unknown
        assert bpe.unknown(s) == []
    assert len(bpe.encode(TRAIN)) < len(TRAIN.encode()) / 2.5  # 42 merges learned the repeated words
    assert len(bpe.encode(HELD_OUT)) > len(HELD_OUT) / 2  # unseen text stays near byte level
    assert bpe.decode([0, 1, *bpe.encode("Speak")]) == "Speak"  # specials are not decoded
    with pytest.raises(DataError, match="not in the tokenizer's vocabulary"):
        bpe.token_id("[CLS]")


def test_bpe_training_is_deterministic_and_sees_only_its_text(bpe):
    again = BPETokenizer.train([TRAIN], vocab_size=300, specials=("[PAD]", "[MASK]"))
    assert again.to_dict() == bpe.to_dict()
    other = BPETokenizer.train([TRAIN + " zebra" * 100], vocab_size=300, specials=("[PAD]", "[MASK]"))
    assert "Ġzebra" in other.tokenizer.get_vocab()
    assert not any("ebr" in t for t in bpe.tokenizer.get_vocab())  # merges come from the text trained on
    with pytest.raises(ValueError, match="vocab_size ≥ 258"):
        BPETokenizer.train([TRAIN], vocab_size=200, specials=("[PAD]", "[MASK]"))


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_save_and_load_give_the_same_tokenizer(kind, bpe, tmp_path):
    tok = bpe if kind == "bpe" else CharTokenizer.train([TRAIN], specials=(UNK,))
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tok, path)
    assert json.loads(path.read_text())["archlab_tokenizer"] == kind
    back = load_tokenizer(path)
    assert type(back) is type(tok) and back.to_dict() == tok.to_dict()
    text = TRAIN[:300]
    assert back.encode(text) == tok.encode(text) and back.decode(back.encode(text)) == text


def test_a_missing_or_foreign_tokenizer_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="is missing: the run saved no tokenizer"):
        load_tokenizer(tmp_path / "tokenizer.json")
    for content in ("{not json", '{"archlab_tokenizer": "wordpiece"}', '{"archlab_tokenizer": "bpe", "hf": "x"}'):
        (tmp_path / "t.json").write_text(content)
        with pytest.raises(DataError, match="is not a tokenizer archlab wrote") as e:
            load_tokenizer(tmp_path / "t.json")
        assert "\n" not in str(e.value)
