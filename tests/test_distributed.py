"""Data-parallel training under torchrun: 2 CPU processes (gloo) against 1 process, and resume.

The runs are real ``python -m torch.distributed.run --nproc_per_node=2`` launches of ``archlab
train`` (several runs per launch: tests/torchrun_jobs.py); the global batch is the recipe's
``data.batch_size`` (32), 16 examples per rank.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from archlab.cli import main
from archlab.config import load_recipe
from archlab.data import BatchLoader, load_dataset
from archlab.engine import Trainer
from archlab.engine import checkpoint as ckpt
from archlab.utils.errors import ConfigError
from conftest import tiny_recipe

TESTS = Path(__file__).resolve().parent


def torchrun(*jobs: dict, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 tests/torchrun_jobs.py`` running ``jobs`` (each
    ``{"argv": [...], "env": {...}}``) one after another in the same processes: one launch for
    several runs (each launch starts three Python processes that import torch)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("ARCHLAB_FAULT", None)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])
    spec = Path(tempfile.mkdtemp()) / "jobs.json"
    spec.write_text(json.dumps(list(jobs)))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone"]
    return subprocess.run([*cmd, str(TESTS / "torchrun_jobs.py"), str(spec)], capture_output=True, text=True,
                          env=env, timeout=900)  # fmt: skip


def job(*argv: str, fault: str | None = None) -> dict:
    return {"argv": list(argv), "env": {"ARCHLAB_FAULT": fault} if fault else {}}


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


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The runs of the three tests below in three torchrun launches (seven before): the uninterrupted
    ones, then the killed ones (a kill ends its launch), then both resumes."""
    from test_task_contract import gan_recipe

    root = tmp_path_factory.mktemp("dist")
    # no dropout: the only randomness is the data order, which every rank draws identically
    nodrop = _write(root, "nodrop", **{"model.dropout": 0.0})
    # dropout draws from each rank's own RNG stream: resume must restore every rank's state
    drop = _write(root, "drop")
    gan = root / "gan.yaml"
    gan.write_text(yaml.safe_dump(gan_recipe(**{"checkpoint.every": 4, "budget.steps": 12})))
    first = torchrun(
        job("train", str(nodrop), "--runs-dir", str(root / "two")),
        job("train", str(drop), "--runs-dir", str(root / "ref")),
        job("train", str(gan), "--runs-dir", str(root / "gan-ref")),
        job("train", str(drop), "--runs-dir", str(root / "killed"), fault="step:15"),
    )
    killed_gan = torchrun(job("train", str(gan), "--runs-dir", str(root / "gan-k"), fault="step:7"))
    runs = {"root": root, "nodrop": nodrop, "first": first, "killed_gan": killed_gan}
    if (root / "killed").is_dir() and (root / "gan-k").is_dir():
        killed = _only_run(root / "killed")
        runs["killed_state"] = (
            (killed / "summary.json").exists(),
            ckpt.step_dirs(killed / "checkpoints")[0].name if ckpt.step_dirs(killed / "checkpoints") else None,
        )
        # the 2-process checkpoint cannot be resumed by one process (in-process: WORLD_SIZE is unset here)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            runs["one_process"] = (main(["train", "--resume", str(killed)]), err.getvalue())
        runs["resumed"] = torchrun(
            job("train", "--resume", str(killed)), job("train", "--resume", str(_only_run(root / "gan-k")))
        )
    return runs


def test_two_processes_match_one_process_with_the_same_global_batch(launched):
    root = launched["root"]
    assert launched["first"].returncode != 0 and (root / "two").is_dir(), launched["first"].stderr[-3000:]
    one = Trainer(load_recipe(launched["nodrop"]), runs_dir=root / "one", quiet=True)
    one.fit()
    a, b = _weights(one.run_dir), _weights(_only_run(root / "two"))
    assert a.keys() == b.keys()
    for k in a:  # equal up to the order of floating-point sums (1 × 32 vs 2 × 16 examples)
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    # only rank 0 wrote: one run dir, one summary, every checkpoint once
    run = _only_run(root / "two")
    # evaluation is sharded over the ranks and its accumulators all-reduced: the 1-process numbers
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one.run_dir, run))
    assert s1["test"].keys() == s2["test"].keys() == {"loss", "accuracy"}
    assert s2["test"]["accuracy"] == s1["test"]["accuracy"]
    assert s2["test"]["loss"] == pytest.approx(s1["test"]["loss"], rel=1e-5)
    assert s2["val"]["accuracy"] == s1["val"]["accuracy"]
    assert (run / "summary.json").exists() and len(ckpt.step_dirs(run / "checkpoints")) == 2


def test_killed_two_process_run_resumes_to_the_uninterrupted_weights(launched):
    root = launched["root"]
    # the first launch trained the reference, then the same recipe until the kill at step 15
    assert launched["first"].returncode != 0
    assert (root / "ref").is_dir() and (_only_run(root / "ref") / "summary.json").exists()
    run = _only_run(root / "killed")
    finished, newest = launched["killed_state"]
    assert not finished and newest.endswith("10")
    # the 2-process checkpoint cannot be resumed by one process: one line, exit 2
    code, err = launched["one_process"]
    assert code == 2
    assert err.strip().splitlines() == [  # the refusal alone: no banner printed before it
        f"archlab: error: {run} was trained by 2 process(es), this job has 1; resume with the same number "
        "(torchrun --nproc_per_node=2)"
    ]
    resumed = launched["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(_only_run(root / "ref")), _weights(run)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (run / "metrics.jsonl").read_bytes() == (_only_run(root / "ref") / "metrics.jsonl").read_bytes()


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


def test_a_task_that_owns_its_step_trains_on_two_processes_and_resumes_exactly(launched):
    """The toy GAN of the task-contract tests (two networks, two optimisers, ``custom_step``):
    ``ctx.clip_and_step`` averages each group's gradients over the ranks; killed and resumed, it
    ends on the uninterrupted run's weights and metrics."""
    root = launched["root"]
    assert (_only_run(root / "gan-ref") / "summary.json").exists(), launched["first"].stderr[-3000:]
    assert launched["killed_gan"].returncode != 0
    run = _only_run(root / "gan-k")
    assert launched["resumed"].returncode == 0, launched["resumed"].stderr[-3000:]
    ref_run = _only_run(root / "gan-ref")
    a, b = _weights(ref_run, 12), _weights(run, 12)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (ref_run / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    earlier = _weights(ref_run, 8)
    for player in ("generator.", "discriminator."):  # both players trained between steps 8 and 12
        assert any(not torch.equal(earlier[k], a[k]) for k in a if k.startswith(player)), player
