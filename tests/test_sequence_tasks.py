"""The sequence tasks and the data plumbing they need: forecasting metrics against the seasonal
naive forecast, variable lengths reaching recurrent models, parametric data-set options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archlab import create_model
from archlab.config import TaskSpec
from archlab.data import BatchLoader, dataset_info, load_dataset
from archlab.data import timeseries as ts
from archlab.tasks import build_task
from archlab.tasks.base import split_batch
from archlab.tasks.forecasting import seasonal_naive_batch
from archlab.utils.errors import ConfigError

# ---------------------------------------------------------------------------- forecasting


def test_seasonal_naive_batch_matches_the_reference_function():
    x = torch.randn(5, 30, dtype=torch.float64)
    for horizon, season in [(12, 12), (11, 11), (7, 3), (1, 1), (25, 12)]:
        got = seasonal_naive_batch(x, horizon, season)
        want = np.stack([ts.seasonal_naive(row.numpy(), horizon, season) for row in x])
        np.testing.assert_array_equal(got.numpy(), want)


class _NaiveModel(nn.Module):
    """Predicts the seasonal naive forecast itself (in standardised units: the map is affine)."""

    def __init__(self, horizon: int, season: int):
        super().__init__()
        self.horizon, self.season = horizon, season

    def forward(self, x):
        return seasonal_naive_batch(x[:, 0], self.horizon, self.season)


@pytest.mark.parametrize("name", ["airline", "sunspots", "co2"])
def test_forecasting_metrics_in_units_and_against_naive(name):
    info = dataset_info(name)
    assert info.task == "forecasting"
    task = build_task(TaskSpec(name="forecasting"), info)
    test = load_dataset(name, "test")
    m = _NaiveModel(info.horizon, info.season)
    out = task.evaluate(m, BatchLoader(test, 7, shuffle=False, drop_last=False))
    # the model *is* the baseline: identical errors, zero skill
    assert out["mae"] == pytest.approx(out["naive_mae"], rel=1e-6)
    assert out["mase"] == pytest.approx(out["naive_mase"], rel=1e-6)
    assert out["skill"] == pytest.approx(0.0, abs=1e-6)
    # independent path: raw series in units, the windows by index, numpy's seasonal naive and MASE
    spec, raw = ts.forecast_spec(name), ts.series(name)
    errs = []
    for s in ts.window_starts(name, "test"):
        hist, truth = raw[s : s + spec.window], raw[s + spec.window : s + spec.window + spec.horizon]
        errs.append(np.abs(truth - ts.seasonal_naive(hist, spec.horizon, spec.season)))
    mae = float(np.mean(errs))
    assert out["naive_mae"] == pytest.approx(mae, rel=1e-4)
    assert out["naive_mase"] == pytest.approx(mae / ts.mase_scale(name), rel=1e-4)
    train = raw[: spec.n_train]
    assert ts.mase_scale(name) == pytest.approx(float(np.mean(np.abs(train[spec.season :] - train[: -spec.season]))))


def test_forecaster_shapes_and_window_normalisation_is_equivariant():
    m = create_model("gru_forecaster", in_shape=(1, 24), num_classes=12).eval()
    x = torch.randn(4, 1, 24)
    y = m(x)
    assert y.shape == (4, 12)
    # norm="window": shifting and scaling the window shifts and scales the forecast alike
    torch.testing.assert_close(m(3.0 * x + 5.0), 3.0 * y + 5.0, rtol=1e-4, atol=1e-4)
    raw = create_model("lstm_forecaster", in_shape=(1, 24), num_classes=12, norm="none").eval()
    assert not torch.allclose(raw(x + 5.0), raw(x) + 5.0, atol=1e-3)


def test_forecaster_trains_past_the_seasonal_naive_on_co2(tmp_path):
    from archlab.config import load_recipe
    from archlab.engine import Trainer

    recipe = load_recipe(
        "co2/lstm", {"budget.steps": 400, "eval.every": 400, "checkpoint.every": 400, "log.tensorboard": False}
    )
    summary = Trainer(recipe, runs_dir=tmp_path, quiet=True).fit()
    test = summary["test"]
    assert test["mase"] < test["naive_mase"] and test["skill"] > 0.3, test


# ---------------------------------------------------------------------------- lengths and options


def test_batches_carry_lengths_and_only_recurrent_models_receive_them():
    ds = load_dataset("japanese_vowels", "train")
    assert ds.lengths is not None
    batch = BatchLoader(ds, 16, seed=0).next()
    assert len(batch) == 16 and batch.lengths.shape == (16,)
    c, t = dataset_info("japanese_vowels").input_shape
    lstm = create_model("lstm", in_shape=(c, t), num_classes=9)
    mlp = create_model("mlp", in_shape=(c, t), num_classes=9)
    assert set(split_batch(lstm, batch)[2]) == {"lengths"}
    assert split_batch(mlp, batch)[2] == {}
    # and the lengths change what the recurrent model computes (padding is not read)
    x, _, kw = split_batch(lstm, batch)
    assert not torch.allclose(lstm(x, **kw), lstm(x))
    # a batch of a set without lengths has none, and a recurrent model then gets x alone
    plain = BatchLoader(load_dataset("gunpoint", "train"), 10).next()
    assert plain.lengths is None and split_batch(lstm, plain)[2] == {}


def test_a_recurrent_model_trains_on_unequal_lengths(tmp_path):
    from archlab.config import load_recipe
    from archlab.engine import Trainer

    recipe = load_recipe(
        {
            "name": "jv",
            "model": {"name": "lstm", "hidden_size": 16, "readout": "last"},
            "data": {"name": "japanese_vowels", "batch_size": 30},
            "optim": {"name": "adam", "lr": 1e-2},
            "budget": {"steps": 60},
            "eval": {"every": 60},
            "checkpoint": {"every": 60},
            "log": {"every": 20, "tensorboard": False},
        }
    )
    summary = Trainer(recipe, runs_dir=tmp_path, quiet=True).fit()
    assert summary["test"]["accuracy"] > 0.7  # 9 speakers: chance is 0.11


def test_unknown_and_mistyped_data_options_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"data\.options\.lenght: dataset 'adding' has no option 'lenght'.*length"):
        dataset_info("adding", {"lenght": 10})
    with pytest.raises(ConfigError, match=r"data\.options\.length: expected int"):
        load_dataset("adding", "train", options={"length": "ten"})
    with pytest.raises(ConfigError, match=r"data\.options\.n_train: expected int"):
        dataset_info("adding", {"n_train": True})  # a bool is not a count
    with pytest.raises(
        ConfigError, match=r"data\.options\.foo: dataset 'mnist1d' has no option 'foo'; its options: none"
    ):
        dataset_info("mnist1d", {"foo": 1})
    assert dataset_info("adding", {"length": 20}).input_shape[-1] == 20


# ---------------------------------------------------------------------------- language modelling


def test_char_lm_trains_reports_bits_per_char_and_samples_from_the_cli(tmp_path, capsys):
    import math

    from archlab.cli import main
    from archlab.engine import load_run

    rc = main(
        [
            "train",
            "shakespeare_char64/lstm_lm",
            "model.hidden_size=32",
            "model.num_layers=1",
            "model.embed_dim=16",
            "budget.steps=60",
            "eval.every=60",
            "checkpoint.every=60",
            "data.test_subset=100",
            "log.tensorboard=false",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    import json

    test = json.loads((run_dir / "summary.json").read_text())["test"]
    assert test["perplexity"] == pytest.approx(math.exp(test["loss"]))
    assert test["bpc"] == pytest.approx(test["loss"] / math.log(2))
    assert test["bpc"] < math.log2(75) - 1.0  # well below a uniform guess over 75 characters
    capsys.readouterr()
    # sampling: starts with the prompt, is reproducible by seed, and temperature 0 is greedy
    args = ["sample", str(run_dir), "--prompt", "ROMEO:", "--tokens", "40", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first.rstrip("\n")) >= 40
    assert main(args) == 0 and capsys.readouterr().out == first
    assert main([*args[:-1], "4"]) == 0 and capsys.readouterr().out != first
    run = load_run(run_dir)
    greedy = run.task.sample(run.model, "ROMEO:", 30, temperature=0.0)
    assert greedy == run.task.sample(run.model, "ROMEO:", 30, temperature=0.0, seed=99)
    ids = torch.tensor([[5, 6, 7]])
    out = run.model.generate(ids, 5, temperature=0.0)
    logits = run.model(out[:, :-1])
    assert torch.equal(out[:, 3:], logits[:, 2:].argmax(-1))  # each greedy token is the argmax given the prefix
    # bad input: one line, exit 2
    assert main(["sample", str(run_dir), "--prompt", "\u00e6\u00f8", "--tokens", "5"]) == 2
    assert "not in the 'shakespeare_char64' vocabulary" in capsys.readouterr().err
    assert main(["sample", str(run_dir), "--temperature", "-1"]) == 2


# ---------------------------------------------------------------------------- seq2seq


def test_edit_distance():
    from archlab.tasks.seq2seq import edit_distance

    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2], []) == 2
    assert edit_distance(["K", "AE1", "T"], ["K", "AE1", "T"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1


class _LookupModel(nn.Module):
    """A seq2seq test double: decodes each known source to a stored output."""

    def __init__(self, table: dict[tuple[int, ...], list[int]], vocab: int):
        super().__init__()
        self.table, self.vocab = table, vocab
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x, lengths, tgt_in, teacher_forcing=1.0, generator=None):
        return torch.zeros(*tgt_in.shape, self.vocab)

    def greedy_decode(self, x, lengths, max_len=None):
        rows = [self.table[tuple(r)] + [0] * (max_len - len(self.table[tuple(r)])) for r in x.tolist()]
        return torch.tensor(rows), None


def test_seq2seq_metrics_of_perfect_and_wrong_outputs():
    info = dataset_info("num2words_fr_en")
    task = build_task(TaskSpec(name="seq2seq"), info)
    assert (
        list(task.metrics) == ["loss", "token_accuracy", "exact_match", "bleu", "chrf", "wer"]
        and build_task(TaskSpec(name="seq2seq"), dataset_info("cmudict_g2p")).error_rate == "per"
    )
    ds = load_dataset("num2words_fr_en", "test").subset(torch.arange(50))
    eos = task.eos
    perfect = {tuple(x.tolist()): [t for t in y.tolist()[1:] if t != 0] for x, y in zip(ds.x, ds.y)}
    out = task.evaluate(_LookupModel(perfect, info.num_classes), BatchLoader(ds, 16, shuffle=False, drop_last=False))
    assert out["exact_match"] == 1.0 and out["wer"] == 0.0
    assert out["bleu"] == pytest.approx(100.0) and out["chrf"] == pytest.approx(100.0)
    # drop the last word of every output: one deletion per sentence
    clipped = {k: v[:-2] + [eos] for k, v in perfect.items()}
    out = task.evaluate(_LookupModel(clipped, info.num_classes), BatchLoader(ds, 16, shuffle=False, drop_last=False))
    words = sum(int(((y != 0).sum()) - 2) for y in ds.y)  # target tokens without <sos>/<eos>
    assert out["exact_match"] == 0.0 and out["wer"] == pytest.approx(50 / words)
    assert out["bleu"] < 100.0


def test_teacher_forcing_schedule_and_seq2seq_only_keys():
    info = dataset_info("num2words_en_digits")
    spec = TaskSpec(name="seq2seq", options={"teacher_forcing": 1, "teacher_forcing_final": 0.5})
    task = build_task(spec, info)
    ratios = []
    for step in (0, 50, 100):
        task.set_progress(step, 101)
        ratios.append(task.teacher_forcing_ratio())
    assert ratios == pytest.approx([1.0, 0.75, 0.5])
    with pytest.raises(ConfigError, match=r"task\.options\.beam_size: task 'classification' has no option"):
        build_task(TaskSpec(name="classification", options={"beam_size": 4}), dataset_info("mnist1d"))
    with pytest.raises(ConfigError, match=r"task\.options\.beam_sise: .*beam_size"):
        build_task(TaskSpec(name="seq2seq", options={"beam_sise": 4}), info)
    with pytest.raises(ConfigError, match=r"task\.options\.teacher_forcing_final: a probability"):
        build_task(TaskSpec(name="seq2seq", options={"teacher_forcing_final": 1.5}), info)
    with pytest.raises(ConfigError, match=r"task\.options\.beam_size: expected int"):
        build_task(TaskSpec(name="seq2seq", options={"beam_size": 2.5}), info)


def test_seq2seq_recipe_trains_and_attention_map_from_the_cli(tmp_path, capsys):
    import json

    from archlab.cli import main
    from archlab.engine import load_run

    args = ["train", "num2words_en_digits/seq2seq_bahdanau", "model.hidden_size=64", "model.embed_dim=32"]
    args += ["budget.steps=250", "eval.every=250", "checkpoint.every=250", "data.test_subset=300"]
    assert main([*args, "log.tensorboard=false", "--runs-dir", str(tmp_path)]) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    test = json.loads((run_dir / "summary.json").read_text())["test"]
    assert test["token_accuracy"] > 0.6 and 0.0 <= test["cer"] < 0.5, test
    capsys.readouterr()
    png = tmp_path / "att.png"
    assert main(["attention", str(run_dir), "four hundred and twenty-three", "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("four hundred and twenty-three → ") and png.stat().st_size > 5000
    run = load_run(run_dir)
    src, out, w = run.task.translate(run.model, "four hundred and twenty-three")
    assert src[-1] == "<eos>" and w.shape == (len(out), len(src))
    torch.testing.assert_close(w.sum(1), torch.ones(len(out)))
    # beam search through the CLI, and one-line errors
    assert main(["attention", str(run_dir), "four hundred", "--beam", "3", "--out", str(png)]) == 0
    capsys.readouterr()
    assert main(["attention", str(run_dir), "quatre cent", "--out", str(png)]) == 2
    assert "not in the 'num2words_en_digits' source vocabulary" in capsys.readouterr().err


def test_attention_bottleneck_quick_from_the_cli(tmp_path, capsys):
    import json

    from archlab.cli import main
    from archlab.experiments.attention_bottleneck import _buckets

    assert _buckets([1, 2, 5, 9, 17], [3, 6, 9, 12]) == [(1, 3), (4, 6), (7, 9), (10, 12), (13, 17)]
    assert _buckets([4, 5], [3, 6, 9, 12]) == [(4, 6)]
    args = ["experiment", "attention-bottleneck", "--quick", "--set", "steps=4", "--jobs", "1"]
    assert main([*args, "--runs-dir", str(tmp_path)]) == 0
    (exp_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    rec = json.loads((exp_dir / "experiment.json").read_text())
    rows = rec["table"]["rows"]
    models = [r[0] for r in rows]
    assert models.count("Bahdanau attention") == models.count("context vector (Cho et al. 2014)") >= 2
    per_bucket = [r for r in rows if r[1] != "all" and r[0] == "Luong attention"]
    assert sum(r[2] for r in per_bucket) == 200  # the buckets partition the decoded test examples
    assert all(0.0 <= r[3] <= 100.0 for r in rows)
    assert rec["figures"] == ["figures/exact_match_by_length.png"] and "Exact match on the shortest" in rec["verdict"]
    assert set(rec["params"]) == {"seq2seq_context", "seq2seq_bahdanau", "seq2seq_luong"}
    assert main(["experiment", "attention-bottleneck", "--set", "data=mnist1d"]) == 2


# ---------------------------------------------------------------------------- metric accumulators


def _split_merge(make, updates):
    """compute over all updates, and merge of accumulators fed the first 2 and the rest."""
    whole, a, b = make(), make(), make()
    for i, args in enumerate(updates):
        whole.update(*args)
        (a if i < 2 else b).update(*args)
    return whole.compute(), a.merge(b).compute()


def test_every_accumulator_merges_to_the_value_over_the_union():
    import math

    import sacrebleu

    from archlab.tasks import metrics as M

    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(5, 3, generator=g) for _ in range(5)]
    ys = [torch.randn(5, 3, generator=g) for _ in range(5)]
    p, y = torch.cat(preds), torch.cat(ys)
    err = p - y
    checks = [
        (M.MeanSquaredError, [[((a - b) ** 2).sum(), b.numel()] for a, b in zip(preds, ys)], float((err**2).mean())),
        (M.RootMeanSquaredError, [[((a - b) ** 2).sum(), b.numel()] for a, b in zip(preds, ys)],
         math.sqrt(float((err**2).mean()))),
        (M.MeanAbsoluteError, [[(a - b).abs().sum(), b.numel()] for a, b in zip(preds, ys)], float(err.abs().mean())),
        (lambda: M.MeanAbsoluteScaledError(2.5), [[(a - b).abs().sum(), b.numel()] for a, b in zip(preds, ys)],
         float(err.abs().mean()) / 2.5),
        (M.R2Score, [[a, b] for a, b in zip(preds, ys)],
         1 - float((err**2).sum()) / float(((y - y.mean()) ** 2).sum())),
        (M.Skill, [[(a - b).abs().sum(), b.abs().sum()] for a, b in zip(preds, ys)],
         1 - float(err.abs().sum()) / float(y.abs().sum())),
        (M.Perplexity, [[3.0, 2], [1.0, 2], [2.0, 1], [0.5, 5]], math.exp(6.5 / 10)),
        (M.BitsPerToken, [[3.0, 2], [1.0, 2], [2.0, 1], [0.5, 5]], 6.5 / 10 / math.log(2)),
        (M.Accuracy, [[3, 4], [0, 4], [2, 2]], 5 / 10),
        (M.ErrorRate, [[1, 7], [0, 3], [4, 10]], 5 / 20),
    ]  # fmt: skip
    for make, updates, want in checks:
        whole, merged = _split_merge(make, updates)
        assert whole == pytest.approx(want, rel=1e-6) and merged == pytest.approx(whole, rel=1e-12), make
    # corpus BLEU and chrF: sufficient statistics merge to sacrebleu's corpus score over all sentences
    hyps = ["a b c d", "e f g", "h i", "j k l m n", "o p q"]
    refs = ["a b c d", "e f x", "h i", "j k l x n", "q p o"]
    chunks = [(hyps[i : i + 2], refs[i : i + 2]) for i in range(0, 5, 2)]
    for make, want in (
        (lambda: M.CorpusBLEU("none"), sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score),
        (M.CorpusChrF, sacrebleu.corpus_chrf(hyps, [refs]).score),
    ):
        whole, merged = _split_merge(make, chunks)
        assert whole == pytest.approx(want, rel=1e-12) and merged == pytest.approx(want, rel=1e-12)
        assert 0 < want < 100
    # the state crosses ranks as one float64 vector: the element-wise sum is the merge
    a, b = M.CorpusBLEU(), M.CorpusBLEU()
    a.update(hyps[:2], refs[:2])
    b.update(hyps[2:], refs[2:])
    reduced = M.CorpusBLEU()
    reduced.load_tensor(a.as_tensor() + b.as_tensor())
    assert reduced.compute() == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score, rel=1e-12)
    with pytest.raises(TypeError):
        M.Accuracy().merge(M.Loss())


def test_metric_directions_come_from_the_metrics_the_tasks_declare():
    import archlab.tasks as tasks
    from archlab.tasks import higher_is_better

    assert not hasattr(tasks, "LOWER_IS_BETTER")
    for name in ("accuracy", "val/accuracy", "bleu", "chrf", "exact_match", "r2", "skill", "token_accuracy"):
        assert higher_is_better(name), name
    for name in ("loss", "test/mase", "naive_rmse", "perplexity", "bpc", "wer", "cer", "per", "mse", "mae"):
        assert not higher_is_better(name), name
    for task in tasks.TASKS.names():
        cls = tasks.TASKS.get(task)
        assert all(higher_is_better(k) == m.higher_is_better for k, m in cls.metrics.items())


# ---------------------------------------------------------------------------- plain NLL in reports


def test_reported_loss_is_the_plain_nll_and_the_smoothed_objective_is_logged_apart():
    from torch.nn import functional as F

    from archlab.data import Batch

    info = dataset_info("digits")
    task = build_task(TaskSpec(name="classification", label_smoothing=0.2), info)
    ds = load_dataset("digits", "test")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    torch.nn.init.normal_(model[1].weight, generator=torch.Generator().manual_seed(0))
    out = task.evaluate(model, BatchLoader(ds, 100, shuffle=False, drop_last=False))
    with torch.no_grad():
        logits = model(ds.x)
    assert out["loss"] == pytest.approx(float(F.cross_entropy(logits, ds.y)), rel=1e-5)
    assert out["loss"] != pytest.approx(float(F.cross_entropy(logits, ds.y, label_smoothing=0.2)), rel=1e-3)
    batch = Batch(x=ds.x[:50], y=ds.y[:50])
    objective, logs = task.training_loss(model, batch)
    torch.testing.assert_close(objective, F.cross_entropy(logits[:50], ds.y[:50], label_smoothing=0.2))
    torch.testing.assert_close(logs["objective"], objective.detach())
    torch.testing.assert_close(logs["loss"], F.cross_entropy(logits[:50], ds.y[:50]))
    assert "objective" not in build_task(TaskSpec(name="classification"), info).training_loss(model, batch)[1]
    # the language model likewise
    lm = build_task(TaskSpec(name="language_modeling", label_smoothing=0.1), dataset_info("shakespeare_char64"))
    x = torch.randint(0, 75, (2, 8), generator=torch.Generator().manual_seed(1))

    class Bigram(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(75, 75)

        def forward(self, x):
            return self.table(x)

    bigram = Bigram()
    y = x.roll(-1, 1)
    objective, logs = lm.training_loss(bigram, Batch(x=x, y=y))
    flat = bigram(x).flatten(0, 1).detach()
    torch.testing.assert_close(logs["loss"], F.cross_entropy(flat, y.flatten()))
    torch.testing.assert_close(objective, F.cross_entropy(flat, y.flatten(), label_smoothing=0.1))
    ev = lm.evaluate(bigram, [Batch(x=x, y=y)])
    assert ev["loss"] == pytest.approx(float(F.cross_entropy(flat, y.flatten())), rel=1e-5)


def test_seq2seq_training_logs_the_plain_nll_beside_the_smoothed_objective():
    from torch.nn import functional as F

    info = dataset_info("num2words_en_digits")
    task = build_task(TaskSpec(name="seq2seq", label_smoothing=0.1), info)
    ds = load_dataset("num2words_en_digits", "test")
    batch = ds[:4]

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(torch.randn(4, batch.y.shape[1] - 1, info.num_classes,
                                                   generator=torch.Generator().manual_seed(0)))  # fmt: skip

        def forward(self, x, lengths, tgt_in, teacher_forcing=1.0, generator=None):
            return self.logits

    model = Fixed().eval()
    objective, logs = task.training_loss(model, batch)
    flat, target = model.logits.detach().flatten(0, 1), batch.y[:, 1:].flatten()
    torch.testing.assert_close(logs["loss"], F.cross_entropy(flat, target, ignore_index=0))
    torch.testing.assert_close(objective, F.cross_entropy(flat, target, ignore_index=0, label_smoothing=0.1))
    torch.testing.assert_close(logs["objective"], objective.detach())
