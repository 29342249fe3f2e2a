"""The command line: tables, one-line errors with exit code 2, and the end-to-end commands."""

import json
import os
from pathlib import Path

import pytest

from archlab.cli import main
from conftest import run_cli


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "cnn1d" in out and "Greydanus" in out and "5.21k" in out
    assert main(["list", "--family", "rnn"]) == 0
    out = capsys.readouterr().out
    assert "gru" in out and "mlp" not in out
    assert main(["info", "cnn1d"]) == 0
    out = capsys.readouterr().out
    assert "5,210" in out  # exact parameter count
    assert "FLOPs" in out and "multiply-accumulates" in out
    assert "h_1 = ReLU(conv" in out  # the equations of the file
    assert "channels" in out  # the config table
    assert main(["info", "mlp", "--set", "in_shape=[1, 8, 8]", "--set", "depth=1", "--set", "width=10"]) == 0
    out = capsys.readouterr().out
    assert f"{64 * 10 + 10 + 10 * 10 + 10:,}" in out and "at input (1, 1, 8, 8)" in out


def test_data_and_recipes_listing(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist1d", "mnist1d-shuffled", "digits", "fashion_mnist", "cifar10", "mnist"):
        assert name in out
    assert main(["data", "info", "mnist1d"]) == 0
    out = capsys.readouterr().out
    assert "Greydanus" in out and "94%" in out
    assert main(["recipes"]) == 0
    assert "mnist1d/cnn1d" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "resnet5"], "unknown model 'resnet5'"),
        (["info", "mpl"], "did you mean: mlp"),
        (["info", "mlp", "--set", "widht=3"], "model.widht: unknown option for model 'mlp' (did you mean: width?)"),
        (["list", "--family", "cnnn"], "unknown family 'cnnn' (did you mean: cnn"),
        (["data", "info", "mnist1"], "unknown dataset 'mnist1' (did you mean: mnist1d"),
        (["train", "mnist1d/cnn"], "did you mean: mnist1d/cnn1d"),
        (["train", "mnist1d/cnn1d", "optim.lrr=1"], "optim.lrr: unknown key (did you mean: lr?)"),
        (["train", "mnist1d/cnn1d", "model.chanels=3"],
         "model.chanels: unknown option for model 'cnn1d' (did you mean: channels?)"),
        (["train", "mnist1d/cnn1d", "data.batch_size=zero"], "data.batch_size: Input should be a valid integer"),
        (["train", "mnist1d/cnn1d", "data.name=mnist2d"], "unknown dataset 'mnist2d'"),
        (["train", "mnist1d/cnn1d", "model.in_shape=[1,30]"], "expected shape (B, 1, 30), got (2, 1, 40)"),
        (["train", "mnist1d/cnn1d", "device=foo"], "device: 'foo' is not a device"),
        (["train", "mnist1d/cnn1d", "data.augment=[shift:x]"], "data.augment: 'shift:x': 'x' is not a number"),
        (["train", "mnist1d/cnn1d", "data.augment=[shift:-2]"], "the argument must be a finite number ≥ 0"),
        (["train", "mnist1d/cnn1d", "data.augment=[shift:1.5]"], "needs a whole number of positions"),
        (["train", "mnist1d/cnn1d", "eval.metric=acc"], "eval.metric: 'acc' is not reported by task 'classification' "
                                                        "(did you mean: accuracy?)"),
        (["train", "diabetes/mlp", "model.num_classes=3"], "model output (2, 3) does not match the target (2, 1)"),
        (["train", "digits/perceptron", "task.label_smoothing=0.1"], "task.label_smoothing: applies to the "
                                                                     "cross_entropy loss only"),
        (["train", "--resume", "runs/x", "budget.steps=9"], "--resume continues a run with the recipe"),
        (["compare", "mlp", "--seeds", "0"], "must be at least 1"),
        (["compare", "cnn1d", "--data", "diabetes"], "no recipe 'diabetes/cnn1d' or"),
        (["compare", "mlp", "lstmm", "--data", "mnist1d"], "unknown model 'lstmm'"),
        (["experiment", "vanishing"], "unknown experiment 'vanishing'"),
        (["eval", "/nonexistent/run"], "is not an archlab run"),
        (["train"], "train needs a RECIPE"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    err = _err(capsys)
    assert code == 2, err
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "a failed run left a run dir"


def test_missing_data_file_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHLAB_DOWNLOAD", raising=False)
    monkeypatch.delenv("ARCHLAB_DATA_DIR", raising=False)
    code = main(["train", "digits/mlp", "data.name=mnist", f"data.data_dir={tmp_path}", "model.in_shape=[1,28,28]",
                 "--runs-dir", str(tmp_path / "runs")])
    err = _err(capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "mnist" in err and "ARCHLAB_DOWNLOAD=1" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_runs_dir_nonroot(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert main(["train", "digits/mlp", "--runs-dir", str(ro / "runs")]) == 2
    assert "cannot create a run directory" in _err(capsys)


def test_unwritable_runs_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "digits/mlp", "--runs-dir", str(blocker / "runs")]) == 2
    err = _err(capsys)
    assert "cannot create a run directory" in err and "--runs-dir" in err and len(err.splitlines()) == 1


def test_train_eval_report_end_to_end(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "digits/mlp", "budget.epochs=3", "log.tensorboard=true", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "done mlp on digits" in out
    run = next(runs.iterdir())
    for name in ("recipe.yaml", "metrics.jsonl", "summary.json", "checkpoints", "tb"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] > 0.8
    assert summary["params"] == 26122 and summary["flops_per_example"] > 0
    assert summary["versions"]["torch"] and summary["hardware"]["cpu_count"]
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "test" and 0.8 < res["accuracy"] <= 1.0
    assert main(["report", str(runs)]) == 0
    html = (runs / "report.html").read_text()
    assert "mlp" in html and "data:image/png;base64," in html


def test_regression_recipe_trains(tmp_path):
    from archlab import train

    s = train("diabetes/mlp", runs_dir=tmp_path)
    assert s["task"] == "regression" and set(s["test"]) >= {"mse", "mae", "rmse", "r2"}
    assert s["test"]["r2"] > 0.4  # least squares reaches 0.44 on this split; the recipe gives 0.44


def test_cli_subprocess_has_no_traceback(tmp_path):
    r = run_cli("train", "mnist1d/cnn1d", "optim.momentum=-1", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("archlab: error: optim.momentum:")
    assert "Traceback" not in r.stderr


def test_compare_quick_writes_table_json_and_report(tmp_path, capsys):
    code = main(["compare", "logistic_regression", "mlp", "--data", "mnist1d", "--budget", "steps=40",
                 "--seeds", "2", "--runs-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "logistic regression" in out and "MLP" in out and "±" in out
    cdir = next(p for p in Path(tmp_path).iterdir() if p.name.startswith("compare-mnist1d"))
    rec = json.loads((cdir / "compare.json").read_text())
    assert [m["model"] for m in rec["models"]] == ["logistic_regression", "mlp"]
    assert rec["seeds"] == [0, 1] and rec["budget"]["steps"] == 40
    for m in rec["models"]:
        assert len(m["test"]["accuracy"]["values"]) == 2
        for sub in m["runs"]:
            assert (cdir / sub / "summary.json").exists()
    assert (cdir / "report.html").exists()


def test_experiment_list_and_quick_run(tmp_path, capsys):
    assert main(["experiment"]) == 0
    assert "inductive-bias" in capsys.readouterr().out
    assert main(["experiment", "inductive-bias", "--quick", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "verdict" in out and "Measured" in out
    exp = next(Path(tmp_path).iterdir())
    rec = json.loads((exp / "experiment.json").read_text())
    assert rec["name"] == "inductive-bias" and rec["quick"] is True
    assert [row[0] for row in rec["table"]["rows"]] == ["logistic regression", "MLP", "CNN", "GRU", "LSTM"]
    assert isinstance(rec["supported"], bool)
    html = (exp / "report.html").read_text()
    assert "Greydanus" in html and "data:image/png;base64," in html


def test_shuffled_compare_uses_its_own_recipe(tmp_path):
    from archlab.experiments import recipe_for

    r = recipe_for("cnn1d", "mnist1d-shuffled")
    assert r.data.name == "mnist1d-shuffled" and r.data.augment == [] and r.model.name == "cnn1d"
    assert recipe_for("cnn1d", "mnist1d").data.augment == ["shift:3"]
