"""Exact resume after SIGKILL, checkpoint integrity, non-finite guard, determinism."""

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from archlab.config import load_recipe
from archlab.engine import Trainer
from archlab.engine import checkpoint as ckpt
from archlab.registry import create_model
from archlab.utils.errors import CheckpointError
from conftest import run_cli, tiny_recipe


def _values(run_dir: Path) -> bytes:
    """metrics.jsonl holds only values (wall-clock figures go to timing.jsonl): compare it byte for byte."""
    return (run_dir / "metrics.jsonl").read_bytes()


def _final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    last = ckpt.step_dirs(run_dir / "checkpoints")[0]
    return {**load_file(last / "model.safetensors"), **load_file(last / "optimizer.safetensors")}


def _only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_sigkill_at_several_steps_then_resume_is_bit_identical(tmp_path, write_recipe):
    recipe = write_recipe()
    ref_root, killed_root = tmp_path / "ref", tmp_path / "killed"

    done = run_cli("train", str(recipe), "--runs-dir", str(ref_root))
    assert done.returncode == 0, done.stderr
    ref = _only_run(ref_root)

    # 808 training examples / batch 32 = 25 steps per epoch; checkpoints every 4 steps.
    # Kill mid-epoch (7), exactly at an epoch boundary (25), mid-epoch of epoch 2 (38), and
    # in the middle of writing the step-48 checkpoint (after the weights, before the manifest).
    first = run_cli("train", str(recipe), "--runs-dir", str(killed_root), env={"ARCHLAB_FAULT": "step:7"})
    assert first.returncode == -signal.SIGKILL, first.stderr
    run = _only_run(killed_root)
    for fault in ("step:25", "step:38", "checkpoint:48"):
        r = run_cli("train", "--resume", str(run), env={"ARCHLAB_FAULT": fault})
        assert r.returncode == -signal.SIGKILL, (fault, r.stderr)
    # the interrupted write left only a hidden temporary directory, never a step-48 checkpoint
    assert not (run / "checkpoints" / "step-00000048").exists()
    final = run_cli("train", "--resume", str(run))
    assert final.returncode == 0, final.stderr
    assert "resumed" in final.stderr

    a, b = _final_tensors(ref), _final_tensors(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _values(ref) == _values(run)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert sa["test"] == sb["test"] and sa["steps"] == sb["steps"] == 60
    # a finished run is not resumed a second time
    again = run_cli("train", "--resume", str(run))
    assert again.returncode == 2 and "already finished" in again.stderr


def test_same_seed_gives_identical_metrics(tmp_path):
    recipe = load_recipe(tiny_recipe(**{"budget.steps": 30}))
    a = Trainer(recipe, runs_dir=tmp_path / "a").fit()
    b = Trainer(recipe, runs_dir=tmp_path / "b").fit()
    assert _values(Path(a["run_dir"])) == _values(Path(b["run_dir"]))
    assert len(_values(Path(a["run_dir"])).splitlines()) > 10
    c = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 30, "seed": 8})), runs_dir=tmp_path / "c").fit()
    assert _values(Path(a["run_dir"])) != _values(Path(c["run_dir"]))


@pytest.fixture
def finished_run(tmp_path):
    s = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 12})), runs_dir=tmp_path).fit()
    return Path(s["run_dir"])


def test_altered_checkpoint_is_refused_naming_the_file(finished_run):
    newest = ckpt.step_dirs(finished_run / "checkpoints")[0]
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    model = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, depth=2, width=32, dropout=0.2)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is altered"):
        ckpt.load_checkpoint(newest, model)


def test_truncated_checkpoint_is_refused_and_resume_falls_back(finished_run):
    dirs = ckpt.step_dirs(finished_run / "checkpoints")
    newest, previous = dirs[0], dirs[1]
    opt = newest / "optimizer.safetensors"
    opt.write_bytes(opt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors is truncated"):
        ckpt.verify_checkpoint(newest)
    good, skipped = ckpt.find_resumable(finished_run / "checkpoints")
    assert good == previous and len(skipped) == 1 and "optimizer.safetensors" in skipped[0]
    # as if the run had died before writing its summary: resuming continues from the previous
    # good checkpoint and finishes the budget
    (finished_run / "summary.json").unlink()
    s = Trainer.resume(finished_run, quiet=True).fit()
    assert s["steps"] == 12


def test_missing_manifest_means_incomplete(finished_run):
    newest = ckpt.step_dirs(finished_run / "checkpoints")[0]
    (newest / "MANIFEST.json").unlink()
    with pytest.raises(CheckpointError, match="not completely written"):
        ckpt.verify_checkpoint(newest)


def test_checkpoint_files_are_safetensors_and_json(finished_run):
    newest = ckpt.step_dirs(finished_run / "checkpoints")[0]
    assert sorted(p.name for p in newest.iterdir()) == sorted([*ckpt.FILES, ckpt.MANIFEST])
    state = json.loads((newest / "state.json").read_text())
    assert state["step"] == 12 and set(state["data"]) == {"epoch", "batch"}
    assert "torch_cpu" in state["rng"]["tensors"] and "numpy" in state["rng"]
    assert len(ckpt.step_dirs(finished_run / "checkpoints")) == 2  # keep_last
    assert (finished_run / "checkpoints" / "best" / "MANIFEST.json").exists()


def test_non_finite_loss_stops_before_the_step(tmp_path, write_recipe):
    # an absurd learning rate on SGD makes the loss overflow within a few steps
    recipe = write_recipe(**{"optim.name": "sgd", "optim.lr": 1.0e12, "checkpoint.every": 1, "model.dropout": 0.0})
    r = run_cli("train", str(recipe), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert "non-finite" in r.stderr and "stopped before the optimiser step" in r.stderr
    run = _only_run(tmp_path / "runs")
    report = json.loads((run / "nonfinite.json").read_text())
    assert report["what"] in ("loss", "gradient")
    assert {"step", "epoch", "batch"} <= report.keys()
    # the checkpoints that exist are the good ones from before the divergence
    good, skipped = ckpt.find_resumable(run / "checkpoints")
    assert good is not None and not skipped
    assert (
        ckpt.load_checkpoint(good, create_model("mlp", in_shape=(1, 8, 8), depth=2, width=32))["step"]
        <= (report["step"])
    )


@pytest.mark.parametrize("clip", [{}, {"optim.grad_clip_value": 0.5}, {"optim.grad_clip_norm": 1.0}])
def test_non_finite_gradient_is_caught_before_clipping_and_the_step(tmp_path, clip):
    """A NaN/inf gradient with a finite loss: clipping by value would turn inf into a finite number,
    so the check must come first; the weights must not move."""
    from archlab.engine import Trainer
    from archlab.utils.errors import NonFiniteError

    trainer = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 5, "model.dropout": 0.0, **clip})), runs_dir=tmp_path)
    first = next(trainer.model.parameters())
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        if calls["n"] == 3:  # during the backward of step index 2, before its optimiser step
            calls["before"] = first.detach().clone()
            return torch.full_like(grad, float("inf"))
        return grad

    first.register_hook(poison)
    with pytest.raises(NonFiniteError, match="non-finite gradient") as e:
        trainer.fit()
    assert e.value.exit_code == 3
    report = json.loads((trainer.run_dir / "nonfinite.json").read_text())
    assert report["what"] == "gradient" and report["step"] == 2 and report["batch"] == 2
    # the poisoned step did not update the weights
    assert torch.equal(first.detach(), calls["before"])
