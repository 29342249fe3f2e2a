"""The benchmark harness: measurements are well-formed (no timing assertions beyond sanity)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import torch

from archlab.bench import bench_train_step, list_workloads, matmul_peak, write_results
from archlab.bench.core import get_workload, lstm_forward_flops, run_benchmarks
from archlab.registry import create_model
from archlab.tasks.losses import cross_entropy
from archlab.utils.counting import count_flops


def _tiny_mlp():
    torch.manual_seed(0)
    model = create_model("mlp", in_shape=(8,), num_classes=3, depth=1, width=16)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    return model, (x, y)


def test_matmul_peak_is_positive_and_finite():
    peak = matmul_peak(n=128, repeats=2)
    assert math.isfinite(peak) and peak > 0


def test_bench_train_step_tiny_mlp():
    model, (x, y) = _tiny_mlp()
    fwd = count_flops(model, x)
    out = bench_train_step(model, (x, y), cross_entropy, steps=3, warmup=1, peak_gflops=matmul_peak(n=256))
    assert out["samples_per_s"] > 0 and out["step_ms"] > 0
    assert out["flops_per_step"] == 3 * fwd > 0
    assert 0 < out["mfu"] < 1.5
    assert out["batch"] == 32 and out["params"] == sum(p.numel() for p in model.parameters())
    assert out["peak_rss_mb"] > 0 and out["peak_rss_delta_mb"] >= 0
    assert math.isfinite(out["final_loss"])


def test_bench_train_step_bf16_runs():
    model, batch = _tiny_mlp()
    out = bench_train_step(model, batch, cross_entropy, steps=2, warmup=1, precision="bf16",
                           peak_gflops=100.0)
    assert out["precision"] == "bf16" and out["samples_per_s"] > 0


def test_workloads_registered_and_build():
    assert {"mlp-fashion", "cnn1d-mnist1d", "gru-mnist1d", "lstm-torch"} <= set(list_workloads())
    model, (x, y), loss_fn = get_workload("cnn1d-mnist1d").build()
    assert x.shape == (100, 1, 40) and y.shape == (100,)
    assert torch.isfinite(loss_fn(model(x), y))


def test_lstm_flops_match_six_n_per_token():
    lstm = torch.nn.LSTM(256, 256, num_layers=2, batch_first=True)
    n_weights = sum(p.numel() for name, p in lstm.named_parameters() if name.startswith("weight"))
    assert lstm_forward_flops(lstm, batch=4, seq_len=10) == 2 * n_weights * 4 * 10


def test_runner_interleaves_and_write_results_markdown(tmp_path):
    order: list[str] = []
    names = ["cnn1d-mnist1d", "gru-mnist1d"]
    rows, peaks = run_benchmarks(names, repeats=2, processes=False, steps=1, warmup=0,
                                 log=lambda msg: order.append(msg.split(": ")[1]))
    assert order == ["matmul-peak", *names] * 2  # round-robin, not one workload's repeats in a row
    assert [r["workload"] for r in rows] == names and all(len(r["runs_step_ms"]) == 2 for r in rows)
    assert peaks["fp32"] > 0 and all(0 < r["mfu"] < 1.5 for r in rows)
    fake = dict(rows[0], workload="lstm-torch", mfu=float("nan"))
    path = write_results([*rows, fake], peaks, tmp_path / "RESULTS.md", echo=False)
    text = path.read_text()
    assert path == tmp_path / "RESULTS.md"
    assert "| workload |" in text and "| lstm-torch |" in text
    assert all(f"| {n} |" in text for n in names)
    assert "GFLOP/s" in text and "MFU" in text and "median" in text


def test_worker_subprocess_prints_json():
    proc = subprocess.run(
        [sys.executable, "-m", "archlab.bench.worker", "cnn1d-mnist1d", "--quick", "--json", "--peak", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["workload"] == "cnn1d-mnist1d" and out["steps"] == 3
    assert out["samples_per_s"] > 0 and out["mfu"] is None
