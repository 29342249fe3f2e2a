"""Special tokens, declared once for the data sets, the models and the tasks.

They live here, at the bottom of the layer stack, because models must not import ``archlab.data``
yet need the ids (an embedding's ``padding_idx``, the decoder's start and stop tokens). A vocabulary
built with ``specials=SPECIALS`` (archlab.data.text.Vocab) puts them first, so ``SPECIALS[i]`` gets
id i: the ids below hold in every such vocabulary (the seq2seq sets, both sides); a set built with a
prefix of them (Rotten Tomatoes: <pad>, <unk>) keeps the same ids for those.
"""

from __future__ import annotations

__all__ = ["EOS", "EOS_ID", "PAD", "PAD_ID", "SOS", "SOS_ID", "SPECIALS", "UNK", "UNK_ID"]

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"  # padding, out of vocabulary, start, end of sequence
SPECIALS: tuple[str, ...] = (PAD, UNK, SOS, EOS)  # in id order
PAD_ID, UNK_ID, SOS_ID, EOS_ID = (SPECIALS.index(t) for t in (PAD, UNK, SOS, EOS))  # 0, 1, 2, 3
