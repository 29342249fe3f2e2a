"""Checkpoints and runs that must not lie (issue 14 §3–4): non-finite weights are never a good
checkpoint, a checkpoint that does not fit is one line, ``best`` never silently becomes ``last``,
killed replaces are repaired, CUDA RNG states keep their device order, eval reproduces summary.json."""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from archlab.cli import main
from archlab.config import load_recipe
from archlab.engine import Trainer, evaluate_run, load_run
from archlab.engine import checkpoint as ckpt
from archlab.registry import create_model
from archlab.utils import seed as seed_mod
from archlab.utils.errors import CheckpointError, NonFiniteError
from archlab.utils.io import sha256_file
from conftest import tiny_recipe


def _run(tmp_path: Path, **changes) -> tuple[Path, dict]:
    s = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 12, **changes})), runs_dir=tmp_path, quiet=True).fit()
    return Path(s["run_dir"]), s


@pytest.fixture
def finished_run(tmp_path):
    return _run(tmp_path)[0]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("archlab: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _poison_checkpoint(directory: Path, name: str, value: float) -> None:
    """Rewrite one weight of a checkpoint with ``value`` and re-sign the manifest, as a checkpoint
    written by a trainer without the finiteness check would have been."""
    from safetensors.torch import load_file

    weights = load_file(directory / "model.safetensors")
    weights[name][0, 0] = value
    save_file(weights, directory / "model.safetensors")
    manifest = json.loads((directory / ckpt.MANIFEST).read_text())
    f = directory / "model.safetensors"
    manifest["files"]["model.safetensors"] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    (directory / ckpt.MANIFEST).write_text(json.dumps(manifest))


# -- 1. non-finite weights ---------------------------------------------------------------------
def test_weights_that_become_non_finite_after_a_finite_step_are_never_saved(tmp_path):
    """What ``optim.lr=inf`` does: the loss and gradient of the step are finite, the update is not.
    The save finds it, the run stops with exit code 3, and nonfinite.json names the newest checkpoint
    that really is good."""
    trainer = Trainer(
        load_recipe(tiny_recipe(**{"budget.steps": 20, "model.dropout": 0.0, "eval.every": 100})),
        runs_dir=tmp_path,
        quiet=True,
    )
    first = trainer.model.features[0].weight
    steps = {"n": 0}

    def blow_up(optimizer, args, kwargs):
        steps["n"] += 1
        if steps["n"] == 8:  # the update of step 8 overflows; step-00000008 would be its checkpoint
            with torch.no_grad():
                first[0, 0] = float("inf")

    for opt in trainer.optimizers.values():
        opt.register_step_post_hook(blow_up)
    with pytest.raises(NonFiniteError, match=r"non-finite weights \('features\.0\.weight'\) after step 8") as e:
        trainer.fit()
    assert e.value.exit_code == 3
    report = json.loads((trainer.run_dir / "nonfinite.json").read_text())
    good = trainer.ckpt_dir / "step-00000004"
    assert report["what"] == "weights" and report["tensor"] == "features.0.weight" and report["step"] == 8
    assert report["last_good_checkpoint"] == str(good)
    assert [p.name for p in ckpt.step_dirs(trainer.ckpt_dir)] == ["step-00000004"]
    assert not any(p.name.startswith(".") for p in trainer.ckpt_dir.iterdir())
    model = create_model("mlp", in_shape=(1, 8, 8), depth=2, width=32)
    assert ckpt.load_checkpoint(good, model)["step"] == 4
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


def test_save_checkpoint_refuses_non_finite_weights_and_optimiser_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(ckpt.NonFiniteStateError, match=r"weights hold NaN \(first: 'bias'\)"):
        ckpt.save_checkpoint(tmp_path / "step-00000001", model=model, optimizers={"main": opt}, state={}, step=1)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary directory
    with torch.no_grad():
        model.bias[1] = 0.0
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    opt.state[model.weight]["exp_avg_sq"][0, 0] = float("inf")
    with pytest.raises(ckpt.NonFiniteStateError, match=r"optimiser state hold inf \(first: 'main/0/exp_avg_sq'\)"):
        ckpt.save_checkpoint(tmp_path / "step-00000001", model=model, optimizers={"main": opt}, state={}, step=1)
    assert list(tmp_path.iterdir()) == []


def test_eval_and_resume_refuse_a_checkpoint_with_non_finite_weights(finished_run, capsys):
    last = ckpt.step_dirs(finished_run / "checkpoints")[0]
    _poison_checkpoint(last, "features.3.weight", float("nan"))
    assert main(["eval", str(finished_run), "--checkpoint", "last"]) == 2
    line = _error_line(capsys)
    assert f"{last / 'model.safetensors'} holds non-finite weights (NaN in 'features.3.weight')" in line
    (finished_run / "summary.json").unlink()  # as if the run had been killed before finishing
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert "holds non-finite weights (NaN in 'features.3.weight')" in _error_line(capsys)


# -- 2. a checkpoint that does not fit -----------------------------------------------------------
def _edit_width(run_dir: Path, width: int) -> None:
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    recipe["model"]["width"] = width
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe))


def test_eval_of_a_checkpoint_that_does_not_fit_names_the_tensor_and_both_shapes(finished_run, capsys):
    _edit_width(finished_run, 48)
    assert main(["eval", str(finished_run)]) == 2
    line = _error_line(capsys)
    assert "does not fit this model: 'features.0.weight' has shape (32, 64) in the checkpoint but (48, 64)" in line
    # sample and attention load runs the same way, before they look at the task
    for argv in (["sample", str(finished_run)], ["attention", str(finished_run), "un deux"]):
        assert main(argv) == 2
        assert "'features.0.weight' has shape (32, 64) in the checkpoint but (48, 64)" in _error_line(capsys)
    with pytest.raises(CheckpointError, match=r"'features\.0\.weight' has shape \(32, 64\) .* but \(48, 64\)"):
        load_run(finished_run, checkpoint="last")


def test_resume_checks_the_recipe_hash_before_building_anything(finished_run, monkeypatch, capsys):
    (finished_run / "summary.json").unlink()
    _edit_width(finished_run, 48)

    def must_not_run(self):
        raise AssertionError("the data and model were built before the recipe hash was checked")

    monkeypatch.setattr(Trainer, "_setup", must_not_run)
    with pytest.raises(CheckpointError, match="is not the recipe that wrote .*step-00000012"):
        Trainer.resume(finished_run)
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert "recipe.yaml is not the recipe that wrote" in _error_line(capsys)


def test_optimiser_state_that_does_not_fit_is_one_line(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    ckpt.save_checkpoint(tmp_path / "step-00000001", model=model, optimizers={"main": opt}, state={}, step=1)
    other = torch.optim.Adam([{"params": [model.weight]}, {"params": [model.bias]}])
    with pytest.raises(CheckpointError, match="the state of optimiser 'main' does not fit"):
        ckpt.load_checkpoint(tmp_path / "step-00000001", model, {"main": other})


# -- 3. best, leftovers of killed replaces, CUDA RNG order ---------------------------------------
def test_eval_best_never_silently_uses_last(finished_run, capsys, caplog):
    best = finished_run / "checkpoints" / "best"
    assert best.is_dir()
    step = json.loads((best / "state.json").read_text())["step"]
    assert evaluate_run(finished_run, checkpoint="best")["step"] == step
    shutil.rmtree(best)
    assert main(["eval", str(finished_run), "--checkpoint", "best"]) == 2
    line = _error_line(capsys)
    assert "checkpoints/best is missing" in line and "--checkpoint last" in line
    assert "available: step-00000012, step-00000008" in line
    # auto means "what summary.json reports": for a run that restores best, a missing best/ is said aloud
    recipe = yaml.safe_load((finished_run / "recipe.yaml").read_text())
    recipe["eval"]["restore_best"] = True
    (finished_run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with caplog.at_level(logging.WARNING, logger="archlab"):
        assert evaluate_run(finished_run)["step"] == 12
    assert "checkpoints/best is missing: evaluating the last checkpoint, not the best one" in caplog.text
    # step-N is a name; anything else is refused with the choices
    assert evaluate_run(finished_run, checkpoint="step-8")["step"] == 8
    with pytest.raises(CheckpointError, match="'../x' is not a checkpoint name"):
        load_run(finished_run, checkpoint="../x")


def test_prune_repairs_what_a_killed_replace_leaves(finished_run):
    root = finished_run / "checkpoints"
    best = root / "best"
    best_step = json.loads((best / "state.json").read_text())["step"]
    # killed after the new copy was renamed into place, before the old one was removed
    shutil.copytree(best, root / ".old-best-4242")
    # killed between the two renames of a later replace: best/ is missing, both copies complete
    shutil.copytree(root / "step-00000008", root / ".tmp-step-00000012-77")  # new copy of an existing dir
    best.rename(root / ".old-best-99")
    shutil.copytree(root / "step-00000012", root / ".tmp-best-99")
    (root / ".tmp-best-99" / ckpt.MANIFEST).unlink()  # an incomplete new copy is never promoted
    ckpt.prune(root, keep_last=2)
    assert sorted(p.name for p in root.iterdir()) == ["best", "step-00000008", "step-00000012"]
    assert json.loads((best / "state.json").read_text())["step"] == best_step  # the previous copy came back
    ckpt.verify_checkpoint(best)
    # a complete new copy is promoted when no previous one is left
    best.rename(root / ".tmp-best-5")
    ckpt.prune(root, keep_last=2)
    assert sorted(p.name for p in root.iterdir()) == ["best", "step-00000008", "step-00000012"]


def test_cuda_rng_states_restore_by_device_number(monkeypatch):
    states = {f"torch_cuda_{i}": torch.full((4,), i, dtype=torch.uint8) for i in (0, 1, 2, 10, 11, 3, 4, 5, 6, 7, 8, 9)}
    ordered = seed_mod.cuda_states_in_order(states)
    assert [int(s[0]) for s in ordered] == list(range(12))  # as strings: 0, 1, 10, 11, 2, ...
    got = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 12)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda new: got.setdefault("states", list(new)))
    cpu = torch.get_rng_state()
    seed_mod.set_rng_state({"torch_cpu": cpu, **states}, _py_np_meta())
    assert [int(s[0]) for s in got["states"]] == list(range(12))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(CheckpointError, match="RNG states of 12 CUDA devices, this process sees 2"):
        seed_mod.set_rng_state({"torch_cpu": cpu, **states}, _py_np_meta())
    del states["torch_cuda_10"]
    with pytest.raises(CheckpointError, match=r"devices \[0, 1, .*11\], expected 0\.\.10"):
        seed_mod.cuda_states_in_order(states)


def _py_np_meta() -> dict:
    import random

    import numpy as np

    py, npst = random.getstate(), np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
    }


# -- 4. eval reproduces the run's own summary ----------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [{}, {"precision": "bf16", "eval.restore_best": True}],
    ids=["fp32-last", "bf16-best"],
)
def test_eval_reproduces_the_summary_exactly(tmp_path, changes):
    run_dir, summary = _run(tmp_path, **changes)
    res = evaluate_run(run_dir)
    assert res["precision"] == changes.get("precision", "fp32")
    assert {k: res[k] for k in summary["test"]} == summary["test"]  # exactly, not approximately
    if not changes:  # the validation split too (summary.json's val is the final weights' when best is not restored)
        val = evaluate_run(run_dir, split="val")
        assert {k: val[k] for k in summary["val"]} == summary["val"]
    if changes:  # the override is honoured, and is what made eval disagree before
        fp32 = evaluate_run(run_dir, precision="fp32")
        assert fp32["precision"] == "fp32" and fp32["loss"] != summary["test"]["loss"]


def test_a_kill_before_the_rename_leaves_nothing_behind_after_resume(tmp_path, write_recipe):
    import signal

    from conftest import run_cli

    recipe = write_recipe(**{"budget.steps": 12})
    first = run_cli("train", str(recipe), "--runs-dir", str(tmp_path / "runs"), env={"ARCHLAB_FAULT": "replace:8"})
    assert first.returncode == -signal.SIGKILL, first.stderr
    run = next((tmp_path / "runs").iterdir())
    root = run / "checkpoints"
    (left,) = [p for p in root.iterdir() if p.name.startswith(".tmp-step-00000008-")]
    ckpt.verify_checkpoint(left)  # complete, only not renamed
    assert [p.name for p in ckpt.step_dirs(root)] == ["step-00000004"]
    done = run_cli("train", "--resume", str(run))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in root.iterdir()) == ["best", "step-00000008", "step-00000012"]
