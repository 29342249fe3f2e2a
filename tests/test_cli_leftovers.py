"""Two faults left over from issue 14: overrides after an option, and task state on load_run/evaluate_run."""

import json
from pathlib import Path

import pytest
import torch
import yaml

import toy_tasks
from archlab.cli import main
from conftest import tiny_recipe


@pytest.fixture
def toys():
    toy_tasks.register()
    yield
    toy_tasks.unregister()


def test_overrides_after_an_option_are_overrides(tmp_path, write_recipe, capsys):
    """`archlab train R --runs-dir X key=v` (argparse takes the positionals in one run: `key=v`
    after an option was 'unrecognized' before)."""
    recipe = write_recipe()
    runs = tmp_path / "runs"
    assert main(["train", str(recipe), "--runs-dir", str(runs), "budget.steps=3", "seed=5", "log.progress=false"]) == 0
    saved = yaml.safe_load((next(runs.iterdir()) / "recipe.yaml").read_text())
    assert (saved["budget"]["steps"], saved["seed"], saved["log"]["progress"]) == (3, 5, False)
    # before and after an option together, and `--key=value` after an option
    runs2 = tmp_path / "runs2"
    assert main(["train", str(recipe), "seed=6", "--runs-dir", str(runs2), "--budget.steps=2"]) == 0
    saved = yaml.safe_load((next(runs2.iterdir()) / "recipe.yaml").read_text())
    assert (saved["budget"]["steps"], saved["seed"]) == (2, 6)
    capsys.readouterr()
    # what is neither an option nor key=value is still refused: one line, exit 2, no run dir
    runs3 = tmp_path / "runs3"
    with pytest.raises(SystemExit) as e:
        main(["train", str(recipe), "--runs-dir", str(runs3), "budget.steps=2", "stray"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "unrecognized arguments: budget.steps=2 stray" in err
    assert not runs3.exists()


def test_load_run_and_evaluate_run_restore_the_task_state(tmp_path, toys):
    """An EMA task's state (toy_tasks.EMAClassificationTask) comes back with the weights, so eval
    reports what the run reported (`ema_updates` came back 0 before)."""
    from safetensors.torch import load_file

    from archlab import train
    from archlab.engine import evaluate_run, load_run

    raw = tiny_recipe(**{"task": {"name": "classification_ema"}, "data.name": "digits_classification_ema",
                         "budget.steps": 6, "eval.every": 3, "checkpoint.every": 3})  # fmt: skip
    s = train(raw, {}, runs_dir=tmp_path)
    run_dir = Path(s["run_dir"])
    run = load_run(run_dir, "last")
    assert run.step == 6 and run.task.updates == 6
    saved = load_file(run.checkpoint / "task.safetensors")
    assert sorted(saved) == sorted(f"ema/{k}" for k in run.task.ema)
    assert all(torch.equal(run.task.ema[k], saved[f"ema/{k}"]) for k in run.task.ema)
    assert load_run(run_dir, "step-3").task.updates == 3
    ev = evaluate_run(run_dir, "test", "last")
    assert ev["ema_updates"] == 6.0 == s["test"]["ema_updates"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert ev["accuracy"] == summary["test"]["accuracy"]
