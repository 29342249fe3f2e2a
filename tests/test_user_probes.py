"""Faults a new user's probe of the merged spine found (each kind fixed where it can occur):
out-of-range sequence-model sizes, a data folder that does not exist, duplicate YAML keys, the
error of every torchrun rank, summary numbers from two sets of weights, file modes, and eval of a
run without checkpoints."""

import json
import os
import stat
from pathlib import Path

import pytest

from archlab.cli import main
from archlab.engine import evaluate_run
from archlab.registry import create_model
from archlab.utils.errors import ConfigError
from archlab.utils.io import atomic_write_text
from test_bad_input import _cli


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("lstm_lm", "vocab_size", 0),
        ("gru_lm", "vocab_size", -1),
        ("seq2seq", "src_vocab_size", 0),
        ("seq2seq_luong", "hidden_size", 0),
        ("lstm_lm", "dropout", 1.5),
    ],
)
def test_sequence_model_sizes_have_ranges(name, field, value, capsys, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=rf"model\.{field}: Input should be"):
        create_model(name, **{field: value})
    code, err = _cli(["info", name, "--set", f"{field}={value}"], capsys, tmp_path, monkeypatch)
    assert code == 2 and err.startswith(f"archlab: error: model.{field}: Input should be"), err


def test_a_data_dir_that_does_not_exist_is_one_line(capsys, tmp_path, monkeypatch):
    code, err = _cli(
        ["train", "digits/mlp", "budget.steps=2", "--data-dir", str(tmp_path / "nowhere")],
        capsys,
        tmp_path,
        monkeypatch,
    )
    assert code == 2
    assert err == (
        f"archlab: error: data.data_dir: '{tmp_path / 'nowhere'}' is not a directory; pass the folder that holds "
        "the 'digits' files (or leave --data-dir out)"
    )


def test_a_key_written_twice_in_a_recipe_is_one_line(capsys, tmp_path, monkeypatch):
    recipe = tmp_path / "dup.yaml"
    recipe.write_text("model: {name: mlp}\ndata: {name: digits}\nbudget: {steps: 5}\nmodel: {name: cnn1d}\n")
    code, err = _cli(["train", str(recipe)], capsys, tmp_path, monkeypatch)
    assert code == 2 and err == f"archlab: error: {recipe}: line 4: duplicate key 'model'; write each key once"


def test_under_torchrun_only_rank_0_prints_the_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "digits/mlp", "optim.lrr=1"]) == 2
    assert capsys.readouterr().err == ""  # every rank fails alike; rank 0 says it
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "digits/mlp", "optim.lrr=1"]) == 2
    assert capsys.readouterr().err.startswith("archlab: error: optim.lrr: unknown key")


def test_summary_val_and_test_come_from_the_weights_it_reports(tmp_path):
    """With eval.restore_best the summary's test numbers are the best weights'; its val numbers
    must be too (they were the last weights'), and `archlab eval` reproduces both."""
    overrides = ["budget.steps=60", "eval.every=5", "optim.lr=0.05", "schedule.name=constant", "log.tensorboard=false"]
    assert main(["train", "digits/mlp", *overrides, "--runs-dir", str(tmp_path)]) == 0  # restore_best: true
    run = next(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["step"] < 60  # the best weights are not the last ones here
    for split in ("val", "test"):
        again = evaluate_run(run, split=split)  # auto: the weights the summary reports (best)
        assert {k: again[k] for k in summary[split]} == summary[split], split


def test_files_a_run_writes_follow_the_umask(tmp_path):
    path = tmp_path / "f.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(path, "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone made 0600: unreadable on a shared runs dir


def test_eval_of_a_run_without_checkpoints_is_one_line(capsys, tmp_path, monkeypatch):
    run = tmp_path / "runs-elsewhere" / "r"
    run.mkdir(parents=True)
    assert main(["train", "digits/mlp", "budget.steps=1", "--runs-dir", str(tmp_path / "x")]) == 0
    trained = next((tmp_path / "x").iterdir())
    (run / "recipe.yaml").write_bytes((trained / "recipe.yaml").read_bytes())  # a run stopped before any save
    capsys.readouterr()
    code, err = _cli(["eval", str(run)], capsys, tmp_path, monkeypatch)
    assert code == 2 and err == f"archlab: error: {run} has no checkpoint to load (the run stopped before it saved one)"


def test_eval_prints_one_line_when_piped(capsys, tmp_path):
    assert main(["train", "digits/mlp", "budget.steps=2", "log.tensorboard=false", "--runs-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["eval", str(next(Path(tmp_path).iterdir()))]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "accuracy" in out and "loss" in out
