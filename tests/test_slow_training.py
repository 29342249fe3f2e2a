"""Longer training checks against the targets of the issues (marked slow; `make test` runs them)."""

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _fashion_mnist_or_skip() -> None:
    from archlab.data import load_dataset
    from archlab.utils.errors import DataError

    try:
        load_dataset("fashion_mnist", "test")
    except DataError as e:  # only "not found": a loader bug must fail, not skip
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")


def _summary(result: tuple[subprocess.CompletedProcess, Path]) -> dict:
    done, runs = result
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((next(runs.iterdir()) / "summary.json").read_text())


# These checks train in the background (conftest.py: one thread each, one after the other, from the
# end of collection) while the rest of the suite runs on the other core.
@pytest.mark.background_run("train", "fashion_mnist/mlp", "log.progress=false")
@pytest.mark.timeout(1800)
def test_mlp_fashion_mnist_reaches_88_percent(background_run):
    _fashion_mnist_or_skip()
    s = _summary(background_run())
    assert s["test"]["accuracy"] >= 0.88, s["test"]


# The main job trains 18 runs; its three GRU runs dominate (a step is hundreds of small ops on CPU even
# through the written-out backward pass, `impl: scan`; the LSTM is one oneDNN kernel). With torch's
# GRU each GRU run took 276–395 s on a 2-core AMD EPYC (AVX2), about 50 s on these Intel cores. It
# trains in the background too (one run at a time, one thread: `--jobs 1` changes the order of the
# runs, not what each computes). The
# suite-wide 900 s limit is there to catch hangs, not to time a compute-bound job on a slow or busy
# machine.
@pytest.mark.background_run("compare", "--jobs", "1")
@pytest.mark.timeout(3600)
def test_default_compare_is_the_inductive_bias_table(background_run):
    """`archlab compare` with no arguments: CNN ≥ 94 %, MLP ≥ 68 %. (Its wall time, 2–3 minutes on
    2 cores, is recorded in docs/RESULTS.md, not asserted: timings are not tests.)"""
    done, runs = background_run(3500)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for label in ("logistic regression", "MLP", "CNN", "GRU", "LSTM", "Transformer"):
        assert label in out
    for published in ("32%", "68%", "94%", "91%"):
        assert published in out
    exp = next(runs.iterdir())
    record = json.loads((exp / "compare.json").read_text())
    acc = {m["model"]: m["test"]["accuracy"]["mean"] for m in record["models"]}
    assert acc["cnn1d"] >= 0.94, acc
    assert acc["mlp"] >= 0.68, acc
    assert acc["gru"] >= 0.85 and acc["lstm"] >= 0.80, acc  # recurrent models learn it too (measured: see README)
    assert acc["signal_transformer"] >= 0.85, acc  # measured 88.9 ± 1.2 % (README)
    assert record["seeds"] == [0, 1, 2]
    assert (exp / "experiment.json").exists() and (exp / "report.html").exists()


@pytest.mark.background_run("train", "fashion_mnist/lenet5_modern", "log.progress=false")
@pytest.mark.timeout(1800)
def test_lenet5_fashion_mnist_reaches_90_percent(background_run):
    """The issue's LeNet-5 target: ≥ 90 % test accuracy with the shipped recipe (20 epochs; measured
    90.9 %, about 2–3 minutes on this machine), trained with one thread as the recorded run was (the
    same numbers, deterministically)."""
    _fashion_mnist_or_skip()
    s = _summary(background_run())
    assert s["params"] == 61706
    assert s["test"]["accuracy"] >= 0.90, s["test"]
