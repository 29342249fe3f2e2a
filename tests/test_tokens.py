"""The special tokens are declared once (archlab.utils.tokens) and every vocabulary, data set, model
and task agrees with that declaration."""

from __future__ import annotations

import torch

from archlab import create_model
from archlab.data import load_dataset
from archlab.data.seq2seq import vocabs
from archlab.data.text import Vocab
from archlab.data.text import vocab as text_vocab
from archlab.models.rnn import seq2seq as seq2seq_model
from archlab.tasks import seq2seq as seq2seq_task
from archlab.utils import tokens


def test_ids_are_the_positions_of_the_specials():
    assert tokens.SPECIALS == ("<pad>", "<unk>", "<sos>", "<eos>")
    assert (tokens.PAD_ID, tokens.UNK_ID, tokens.SOS_ID, tokens.EOS_ID) == (0, 1, 2, 3)
    v = Vocab.build(["b a c"], "word", specials=tokens.SPECIALS)
    assert [v.stoi[t] for t in tokens.SPECIALS] == [0, 1, 2, 3] and (v.pad, v.unk, v.sos, v.eos) == (0, 1, 2, 3)


def test_data_models_and_tasks_use_the_declared_ids():
    for v in vocabs("num2words_en_digits"):  # source and target
        assert (v.pad, v.unk, v.sos, v.eos) == (tokens.PAD_ID, tokens.UNK_ID, tokens.SOS_ID, tokens.EOS_ID)
    ds = load_dataset("num2words_en_digits", "test")
    assert (ds.y[:, 0] == tokens.SOS_ID).all()
    last = ds.lengths - 1  # the source ends in <eos>, then <pad>
    assert (ds.x[torch.arange(len(ds)), last] == tokens.EOS_ID).all()
    assert (ds.x[torch.arange(ds.x.shape[1])[None] > last[:, None]] == tokens.PAD_ID).all()
    rt = text_vocab("rotten_tomatoes")  # <pad>, <unk> only: the same ids for those two
    assert (rt.pad, rt.unk, rt.sos) == (tokens.PAD_ID, tokens.UNK_ID, None)
    assert (seq2seq_model.PAD_ID, seq2seq_model.SOS_ID, seq2seq_model.EOS_ID) == (0, 2, 3)
    assert seq2seq_task.PAD == tokens.PAD_ID
    m = create_model("seq2seq", src_vocab_size=10, num_classes=10, embed_dim=4, hidden_size=4)
    assert m.src_embed.padding_idx == m.tgt_embed.padding_idx == tokens.PAD_ID
