"""The benchmark harness: measurements are well-formed (no timing assertions beyond sanity).

Every test here uses tiny workloads, so the file runs in seconds on any CPU kind; the CPU without
native bf16 (an AVX2-only AMD EPYC, where bf16 matmul is ~14× slower than fp32) is simulated by
replacing the flag reader.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

import pytest
import torch

from archlab.bench import bench_train_step, list_workloads, matmul_peak, measuring, results, write_results
from archlab.bench.runner import run_benchmarks, run_workload
from archlab.bench.workloads import (
    BENCH_IMAGES,
    WORKLOADS,
    Workload,
    bench_recipe,
    get_workload,
    import_timm,
    lstm_forward_flops,
    prepare,
)
from archlab.config import load_recipe
from archlab.engine.trainer import Trainer
from archlab.registry import create_model
from archlab.tasks.losses import cross_entropy
from archlab.utils import env
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
    out = bench_train_step(model, batch, cross_entropy, steps=2, warmup=1, precision="bf16", peak_gflops=100.0)
    assert out["precision"] == "bf16" and out["samples_per_s"] > 0


def test_workloads_registered_and_valid():
    assert {"mlp-fashion", "cnn1d-mnist1d", "gru-mnist1d", "lstm-torch", "timm-resnet18-32"} <= set(list_workloads())
    for w in WORKLOADS.values():
        assert w.peer is None or w.peer in WORKLOADS  # a peer is a registered workload
        if w.through_trainer:  # every archlab workload is a valid recipe
            recipe = load_recipe(w.recipe)
            assert recipe.optim.name == "adamw" and recipe.checkpoint.every is None
    assert get_workload("resnet18-32").peer == "timm-resnet18-32"
    assert load_recipe(get_workload("resnet18-32-cl").recipe).channels_last is True
    model, (x, y), loss_fn = get_workload("lstm-torch").build()
    assert x.shape == (64, 100, 256) and y.shape == (64,)
    with pytest.raises(ValueError, match="exactly one of recipe and build"):
        Workload("both", "", recipe={}, build=lambda: None)


# a tiny archlab workload: the digits MLP (8×8 images) through the trainer
DIGITS = Workload("digits-mlp", "tiny", recipe=bench_recipe({"name": "mlp", "depth": 1, "width": 16}, "digits", 32))


def _tiny_plain():
    model, batch = _tiny_mlp()
    return model, batch, cross_entropy


TINY_PEER = Workload("tiny-peer", "tiny peer", build=_tiny_plain)
TINY_OURS = Workload("tiny-ours", "tiny", build=_tiny_plain, peer="tiny-peer")


def test_archlab_workload_times_the_trainers_own_step(monkeypatch):
    calls: list[int] = []
    original = Trainer._train_step

    def counting(self):
        calls.append(self.step)
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", counting)
    out = run_workload(DIGITS, steps=3, warmup=2, peak_gflops=100.0)
    assert calls == [0, 1, 2, 3, 4]  # warm-up + timed steps, each the trainer's step, counted as fit counts
    assert out["through_trainer"] is True and out["batch"] == 32 and out["steps"] == 3
    model = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, depth=1, width=16)
    assert out["params"] == sum(p.numel() for p in model.parameters())
    assert out["forward_flops"] == 32 * count_flops(model, torch.zeros(1, 1, 8, 8)) > 0
    assert out["flops_per_step"] == 3 * out["forward_flops"]
    assert math.isfinite(out["final_loss"]) and out["samples_per_s"] > 0


def test_bench_images_workload_builds_through_the_trainer():
    w = Workload("tiny-resnet", "tiny", recipe=bench_recipe({"name": "resnet18", "width": 8}, BENCH_IMAGES, 16))
    prepared = prepare(w)
    try:
        assert prepared.batch == 16 and prepared.model.input_shape == (3, 32, 32)
        assert math.isfinite(prepared.step()) and math.isfinite(prepared.step())
    finally:
        prepared.cleanup()


def test_timm_peer_is_timms_resnet18():
    if not get_workload("timm-resnet18-32").available():
        pytest.skip("timm is not installed (the bench extra: make bench)")
    timm = import_timm()  # imports without torchvision
    peer = timm.create_model("resnet18", num_classes=10)
    ours = create_model("resnet18", in_shape=(3, 32, 32), num_classes=10)
    n = sum(p.numel() for p in peer.parameters())
    assert n == sum(p.numel() for p in ours.parameters()) == 11_181_642
    assert type(peer).__module__.startswith("timm.")
    assert peer(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_lstm_flops_match_six_n_per_token():
    lstm = torch.nn.LSTM(256, 256, num_layers=2, batch_first=True)
    n_weights = sum(p.numel() for name, p in lstm.named_parameters() if name.startswith("weight"))
    assert lstm_forward_flops(lstm, batch=4, seq_len=10) == 2 * n_weights * 4 * 10


def test_runner_interleaves_and_write_results_markdown(tmp_path):
    order: list[str] = []
    workloads = [TINY_PEER, TINY_OURS, DIGITS]
    rows, peaks = run_benchmarks(
        workloads,
        repeats=2,
        processes=False,
        steps=1,
        warmup=0,
        peak_n=128,
        log=lambda msg: order.append(msg.split(": ")[1]),
    )
    names = [w.name for w in workloads]
    assert order == ["matmul-peak", *names] * 2  # round-robin, not one workload's repeats in a row
    assert [r["workload"] for r in rows] == names and all(len(r["runs_step_ms"]) == 2 for r in rows)
    assert peaks["fp32"] > 0 and all(0 < r["mfu"] < 1.5 for r in rows)
    ours = rows[1]
    assert ours["vs_peer"] == pytest.approx(rows[0]["step_ms"] / ours["step_ms"])
    assert ours["vs_peer_cpu"] == pytest.approx(rows[0]["cpu_ms"] / ours["cpu_ms"])
    assert rows[0]["vs_peer"] is None and len(ours["vs_peer_rounds"]) == 2 and len(ours["runs_cpu_ms"]) == 2
    fake = dict(rows[0], workload="lstm-torch", mfu=float("nan"))
    path = write_results([*rows, fake], peaks, tmp_path / "RESULTS.md", echo=False)
    text = path.read_text()
    assert path == tmp_path / "RESULTS.md"
    assert "| workload |" in text and "| lstm-torch |" in text
    assert all(f"| {n} |" in text for n in names)
    assert f"{ours['vs_peer']:.3f}× tiny-peer" in text
    assert "GFLOP/s" in text and "MFU" in text and "median" in text and "trainer's own step" in text
    assert "Load average" in text


def test_runner_refuses_workload_objects_in_workers_and_missing_extras():
    with pytest.raises(ValueError, match="processes=False"):
        run_benchmarks([TINY_PEER], repeats=1, processes=True)
    needs = Workload("needs-x", "", build=_tiny_plain, requires=("no_such_module_xyz",))
    with pytest.raises(ValueError, match=r"needs-x \(needs no_such_module_xyz\)"):
        run_benchmarks([needs], repeats=1, processes=False)


def test_worker_subprocess_prints_json():
    proc = subprocess.run(
        [sys.executable, "-m", "archlab.bench.worker", "lstm-torch", "--quick", "--json", "--peak", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["workload"] == "lstm-torch" and out["steps"] == 3 and out["through_trainer"] is False
    assert out["samples_per_s"] > 0 and out["mfu"] is None


# -- the CPU kind ----------------------------------------------------------------------------
AMD_AVX2 = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})  # an AMD EPYC (Rome/Milan): no bf16
INTEL_AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})  # Sapphire Rapids


@pytest.fixture
def cpu_kind(monkeypatch):
    """Pretend to run on a CPU with the given flags (and forget earlier bf16 warnings)."""

    def use(flags: frozenset[str]) -> None:
        monkeypatch.setattr(env, "cpu_flags", lambda: flags)
        monkeypatch.setattr(env, "_warned_emulated", set())

    return use


def test_native_bf16_follows_the_cpu_flags(cpu_kind):
    cpu_kind(AMD_AVX2)
    assert env.native_bf16("cpu") is False
    assert env.native_bf16("cuda") is True and env.native_bf16("mps") is True  # GPUs count as native
    cpu_kind(frozenset({"avx2", "avx512f", "avx512bw"}))  # AVX-512 without BF16 (Skylake): emulated
    assert env.native_bf16("cpu") is False
    cpu_kind(INTEL_AMX)
    assert env.native_bf16("cpu") is True
    cpu_kind(frozenset({"fp", "asimd", "bf16"}))  # ARMv8.6 Features line
    assert env.native_bf16("cpu") is True


def test_cpu_flags_reads_this_machine():
    flags = env.cpu_flags()
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):  # an x86 CPU: the flags line was read
        assert "avx2" in flags
    assert env.native_bf16("cpu") == bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def test_hardware_info_records_bf16_and_flags(cpu_kind):
    cpu_kind(AMD_AVX2)
    hw = env.hardware("cpu")
    assert hw["native_bf16"] is False and hw["cpu_flags"] == ["avx", "avx2", "fma"]
    info = measuring.machine_info()
    assert info["native_bf16"] is False and info["cpu_flags"] == ["avx", "avx2", "fma"]
    cpu_kind(INTEL_AMX)
    assert env.hardware("cpu")["native_bf16"] is True
    assert "amx_bf16" in env.hardware("cpu")["cpu_flags"]


def test_bf16_peak_measured_only_where_native(cpu_kind, monkeypatch):
    dtypes: list[torch.dtype] = []

    def fake_peak(n=2048, dtype=torch.float32, repeats=5):
        dtypes.append(dtype)
        return 100.0 if dtype == torch.float32 else 250.0

    monkeypatch.setattr(measuring, "matmul_peak", fake_peak)
    cpu_kind(AMD_AVX2)
    rows, peaks = run_benchmarks([TINY_PEER], repeats=2, processes=False, steps=1, warmup=0)
    assert peaks == {"fp32": 100.0} and dtypes == [torch.float32, torch.float32]
    text = results.results_markdown(rows, peaks, measuring.machine_info())
    assert "native bf16: no (bf16 is emulated here: not measured)" in text and "peak, bf16" not in text
    assert "CPU flags (SIMD): avx avx2 fma" in text
    with pytest.raises(ValueError, match="no native bf16"):
        run_benchmarks([TINY_PEER], repeats=1, processes=False, steps=1, warmup=0, precision="bf16")

    dtypes.clear()
    cpu_kind(INTEL_AMX)
    _, peaks = run_benchmarks([TINY_PEER], repeats=1, processes=False, steps=1, warmup=0)
    assert peaks == {"fp32": 100.0, "bf16": 250.0} and dtypes == [torch.float32, torch.bfloat16]


def _bf16_recipe():
    return load_recipe("digits/mlp", {"precision": "bf16", "budget.steps": 1})


def test_trainer_warns_once_that_bf16_is_emulated(cpu_kind, caplog, tmp_path):
    cpu_kind(AMD_AVX2)
    with caplog.at_level(logging.WARNING, logger="archlab"):
        Trainer(_bf16_recipe(), runs_dir=tmp_path, quiet=True)
        Trainer(_bf16_recipe(), runs_dir=tmp_path, quiet=True)
    warnings = [r.getMessage() for r in caplog.records if "emulated" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not once per run
    assert "no native bf16" in warnings[0] and "precision=fp32" in warnings[0]


def test_trainer_silent_about_bf16_on_a_native_cpu(cpu_kind, caplog, tmp_path):
    cpu_kind(INTEL_AMX)
    with caplog.at_level(logging.WARNING, logger="archlab"):
        Trainer(_bf16_recipe(), runs_dir=tmp_path, quiet=True)
        Trainer(load_recipe("digits/mlp", {"budget.steps": 1}), runs_dir=tmp_path, quiet=True)
    assert not [r for r in caplog.records if "emulated" in r.getMessage()]


# -- the speed choices behind the ResNet-18 figure (benchmarks/RESULTS.md) ---------------------
@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers_use_torchs_fused_step_with_the_same_result(name):
    from archlab.config import OptimSpec
    from archlab.engine.optim import build_optimizer, param_groups_with_decay

    torch.manual_seed(0)
    ours, ref = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    ref.load_state_dict(ours.state_dict())
    spec = OptimSpec(name=name, weight_decay=0.1)
    opt = build_optimizer(list(ours.parameters()), spec)
    assert opt.defaults["fused"] is True  # one kernel per step: ~4× faster than the loop for a ResNet-18
    groups = param_groups_with_decay(list(ref.parameters()), 0.1)
    if name == "sgd":
        loop = torch.optim.SGD(groups, lr=spec.lr, momentum=0.9, foreach=False)  # archlab's SGD default
    else:
        loop = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name](groups, lr=spec.lr, foreach=False)
    for _ in range(5):
        x = torch.randn(4, 5)
        for model, o in ((ours, opt), (ref, loop)):
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_resnet_block_in_place_residual_equals_the_formula():
    from archlab.models.cnn.resnet import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(4, 8, stride=2)
    x = torch.randn(3, 4, 8, 8, requires_grad=True)
    out = block(x)
    out.sum().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in block.parameters()]
    x.grad = None
    block.zero_grad()
    torch.manual_seed(0)
    ref_block = BasicBlock(4, 8, stride=2)
    ref_block.load_state_dict(block.state_dict())  # running stats too: same state before the formula
    b = ref_block
    ref = torch.relu(b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x))))) + b.downsample(x))  # He et al. 2016, eq. 1
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, [x.grad] + [p.grad for p in ref_block.parameters()]):
        torch.testing.assert_close(g, r)


def test_time_steps_separates_cpu_time_from_wall_time():
    import time

    out = measuring.time_steps(lambda: (time.sleep(0.02), 1.5)[1], steps=3, warmup=1)
    assert out["step_ms"] >= 20 and out["cpu_ms"] < 10  # sleeping costs wall time, not CPU time
    assert out["steps"] == 3 and out["final_loss"] == 1.5


def test_bench_script_refuses_bf16_on_a_cpu_without_it(cpu_kind, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("archlab_bench_run", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cpu_kind(AMD_AVX2)
    assert script.main(["--precision", "bf16", "--only", "lstm-torch"]) == 2  # before any worker starts
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: precision bf16: this CPU has no native bf16")
