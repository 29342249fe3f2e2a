"""Data-parallel training under torchrun: 2 CPU processes (gloo) against 1 process, and resume.

Each test launches ``python -m torch.distributed.run --nproc_per_node=2 -m archlab train …`` for
real; the global batch is the recipe's ``data.batch_size`` (32), 16 examples per rank.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from archlab.config import load_recipe
from archlab.data import BatchLoader, load_dataset
from archlab.engine import Trainer
from archlab.engine import checkpoint as ckpt
from archlab.utils.errors import ConfigError
from conftest import tiny_recipe

TESTS = Path(__file__).resolve().parent


def torchrun(*args: str, nproc: int = 2, env: dict | None = None, toys: bool = False) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m archlab ARGS`` (``toys``: through tests/toy_tasks.py,
    which registers the contract tests' tasks first)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    if not env or "ARCHLAB_FAULT" not in env:
        full_env.pop("ARCHLAB_FAULT", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone"]
    if toys:
        full_env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])
        cmd += [str(TESTS / "toy_tasks.py"), *args]
    else:
        cmd += ["-m", "archlab", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)


def _only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _weights(run_dir: Path, step: int | None = None) -> dict[str, torch.Tensor]:
    root = run_dir / "checkpoints"
    last = root / ckpt.step_dir_name(step) if step is not None else ckpt.step_dirs(root)[0]
    return {**load_file(last / "model.safetensors"), **load_file(last / "optimizer.safetensors")}


def _write(tmp_path: Path, name: str, **changes) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(**{"budget.steps": 30, "checkpoint.every": 10, **changes})))
    return path


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # no dropout: the only randomness is the data order, which every rank draws identically
    recipe = _write(tmp_path, "nodrop", **{"model.dropout": 0.0})
    one = Trainer(load_recipe(recipe), runs_dir=tmp_path / "one", quiet=True)
    one.fit()
    two = torchrun("train", str(recipe), "--runs-dir", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = _weights(one.run_dir), _weights(_only_run(tmp_path / "two"))
    assert a.keys() == b.keys()
    for k in a:  # equal up to the order of floating-point sums (1 × 32 vs 2 × 16 examples)
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    # only rank 0 wrote: one run dir, one summary, every checkpoint once
    run = _only_run(tmp_path / "two")
    # evaluation is sharded over the ranks and its accumulators all-reduced: the 1-process numbers
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one.run_dir, run))
    assert s1["test"].keys() == s2["test"].keys() == {"loss", "accuracy"}
    assert s2["test"]["accuracy"] == s1["test"]["accuracy"]
    assert s2["test"]["loss"] == pytest.approx(s1["test"]["loss"], rel=1e-5)
    assert s2["val"]["accuracy"] == s1["val"]["accuracy"]
    assert (run / "summary.json").exists() and len(ckpt.step_dirs(run / "checkpoints")) == 2


def test_killed_two_process_run_resumes_to_the_uninterrupted_weights(tmp_path):
    # dropout draws from each rank's own RNG stream: resume must restore every rank's state
    recipe = _write(tmp_path, "drop")
    ref = torchrun("train", str(recipe), "--runs-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = torchrun("train", str(recipe), "--runs-dir", str(tmp_path / "killed"), env={"ARCHLAB_FAULT": "step:15"})
    assert killed.returncode != 0
    run = _only_run(tmp_path / "killed")
    assert not (run / "summary.json").exists() and ckpt.step_dirs(run / "checkpoints")[0].name.endswith("10")
    # the 2-process checkpoint cannot be resumed by one process: one line, exit 2
    one = subprocess.run(
        [sys.executable, "-m", "archlab", "train", "--resume", str(run)], capture_output=True, text=True, timeout=300
    )
    assert one.returncode == 2
    assert one.stderr.strip().splitlines() == [  # the refusal alone: no banner printed before it
        f"archlab: error: {run} was trained by 2 process(es), this job has 1; resume with the same number "
        "(torchrun --nproc_per_node=2)"
    ]
    resumed = torchrun("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(_only_run(tmp_path / "ref")), _weights(run)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (run / "metrics.jsonl").read_bytes() == (_only_run(tmp_path / "ref") / "metrics.jsonl").read_bytes()


def test_global_batch_not_divisible_by_the_world_size_is_one_line():
    ds = load_dataset("digits", "train")
    with pytest.raises(ConfigError, match=r"data\.batch_size: the global batch 33 is not divisible by the 2 processes"):
        BatchLoader(ds, 33, world_size=2)


def test_ranks_take_contiguous_shards_of_the_same_global_batch():
    ds = load_dataset("digits", "train")
    full = BatchLoader(ds, 8, seed=3)
    parts = [BatchLoader(ds, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(5):
        whole = full.next()
        a, b = (p.next() for p in parts)
        assert len(a) == len(b) == 4
        assert torch.equal(torch.cat([a.x, b.x]), whole.x) and torch.equal(torch.cat([a.y, b.y]), whole.y)
    assert [p.state_dict() for p in parts] == [full.state_dict()] * 2


def test_a_task_that_owns_its_step_trains_on_two_processes_and_resumes_exactly(tmp_path):
    """The toy GAN of the task-contract tests (two networks, two optimisers, ``custom_step``):
    ``ctx.clip_and_step`` averages each group's gradients over the ranks; killed and resumed, it
    ends on the uninterrupted run's weights and metrics."""
    from test_task_contract import gan_recipe

    recipe = tmp_path / "gan.yaml"
    recipe.write_text(yaml.safe_dump(gan_recipe(**{"checkpoint.every": 4, "budget.steps": 12})))
    ref = torchrun("train", str(recipe), "--runs-dir", str(tmp_path / "ref"), toys=True)
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = torchrun(
        "train", str(recipe), "--runs-dir", str(tmp_path / "k"), env={"ARCHLAB_FAULT": "step:7"}, toys=True
    )
    assert killed.returncode != 0
    run = _only_run(tmp_path / "k")
    resumed = torchrun("train", "--resume", str(run), toys=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref_run = _only_run(tmp_path / "ref")
    a, b = _weights(ref_run, 12), _weights(run, 12)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (ref_run / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    earlier = _weights(ref_run, 8)
    for player in ("generator.", "discriminator."):  # both players trained between steps 8 and 12
        assert any(not torch.equal(earlier[k], a[k]) for k in a if k.startswith(player)), player
