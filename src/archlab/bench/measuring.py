"""Measuring one process: the machine (CPU model, flags, matmul peak), a timed step loop, peak memory.

FLOPs per training step are 3 × the forward FLOPs counted by ``count_flops`` (backward ≈ 2 ×
forward), which for dense layers is the usual 6·N per sample (per token for sequences). MFU is
achieved FLOP/s over the machine's measured fp32 matmul peak, also for bf16 runs.

Memory is the process's peak resident set size (``VmHWM``), reset through ``/proc/self/clear_refs``
just before the timed loop where the kernel allows it; ``peak_rss_delta_mb`` is that peak minus
the RSS before the loop (model and batch already built). RSS counts every page the process
touched (torch's allocator caches, thread stacks, the interpreter), so it is an upper bound of
the memory the step needs, not a tensor-level measurement.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from archlab.utils.counting import count_flops, count_params
from archlab.utils.env import hardware, native_bf16

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

PRECISIONS = ("fp32", "bf16")


# -- machine -----------------------------------------------------------------------------------
def matmul_peak(
    n: int = 2048, dtype: torch.dtype = torch.float32, repeats: int = 5, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Measured matmul throughput in GFLOP/s: median of ``repeats`` timed ``n×n @ n×n`` products.

    One untimed product warms up the kernels first; each product is 2·n³ FLOPs. ``clock`` times
    them: wall time by default; ``time.process_time`` gives the peak per CPU-second, the one to set
    against CPU-time measurements on a shared machine (wall time there counts other processes' turns).
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        t0 = clock()
        torch.mm(a, b, out=out)
        times.append(clock() - t0)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def measure_peaks(n: int = 2048) -> dict[str, float]:
    """fp32 matmul peak, and the bf16 one only where the CPU has native bf16 (GFLOP/s).

    Emulated bf16 runs ~14× slower than fp32 (an AVX2-only AMD EPYC): measuring it there costs
    minutes and says nothing a bf16 run should be compared against.
    """
    peaks = {"fp32": matmul_peak(n)}
    if native_bf16("cpu"):
        peaks["bf16"] = matmul_peak(n, dtype=torch.bfloat16)
    return peaks


def machine_info() -> dict[str, Any]:
    """The CPU model, its SIMD flags, whether it has native bf16, core and thread counts, versions."""
    hw = hardware("cpu")
    return {
        "cpu": hw.get("cpu") or platform.processor() or platform.machine(),
        "cpu_flags": list(hw.get("cpu_flags", [])),
        "native_bf16": bool(hw["native_bf16"]),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def load_average() -> tuple[float, float, float] | None:
    """The 1-, 5- and 15-minute load averages (how busy the shared machine was), None where unknown."""
    try:
        return os.getloadavg()
    except OSError:
        return None


# -- memory ------------------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- the timed loop ----------------------------------------------------------------------------
def time_steps(step: Callable[[], float], *, steps: int = 30, warmup: int = 5) -> dict[str, Any]:
    """Call ``step()`` ``warmup`` times untimed, then ``steps`` times timed.

    ``step`` returns the step's loss (a float). Returns step_ms (median wall time), step_ms_min/max,
    cpu_ms (median CPU time of the process per step, all threads: on a shared, oversubscribed
    machine it moves far less than wall time, which counts the time other processes ran), peak_rss_mb,
    peak_rss_delta_mb, peak_rss_reset and final_loss.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps ≥ 1 and warmup ≥ 0, got steps={steps} warmup={warmup}")
    rss_before_kb = _status_kb("VmRSS") or 0
    for _ in range(warmup):
        step()
    reset_ok = _reset_peak_rss()
    times, cpu = [], []
    loss = math.nan
    for _ in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak_kb = _peak_rss_kb()
    return {
        "steps": steps,
        "warmup": warmup,
        "step_ms": 1e3 * statistics.median(times),
        "step_ms_min": 1e3 * min(times),
        "step_ms_max": 1e3 * max(times),
        "cpu_ms": 1e3 * statistics.median(cpu),
        "peak_rss_mb": peak_kb / 1024,
        "peak_rss_delta_mb": max(0.0, (peak_kb - rss_before_kb) / 1024),
        "peak_rss_reset": reset_ok,  # False: the peak may predate the timed loop
        "final_loss": float(loss),
    }


def throughput(timed: dict[str, Any], *, batch: int, forward_flops: int, peak_gflops: float) -> dict[str, Any]:
    """samples_per_s, flops_per_step (3 × forward), gflops and mfu from a :func:`time_steps` result."""
    step_s = timed["step_ms"] / 1e3
    flops_per_step = 3 * int(forward_flops)
    gflops = flops_per_step / step_s / 1e9
    return {
        "batch": batch,
        "samples_per_s": batch / step_s,
        "forward_flops": int(forward_flops),
        "flops_per_step": flops_per_step,
        "gflops": gflops,
        "peak_gflops": peak_gflops,
        "mfu": gflops / peak_gflops if peak_gflops > 0 else math.nan,
    }


def make_optimizer(name: str, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW/Adam (lr 1e-3) or SGD (lr 1e-2, momentum 0.9) with torch's default implementation."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-2, momentum=0.9)
    raise ValueError(f"optimizer must be one of adamw, adam, sgd; got {name!r}")


def plain_step(
    model: nn.Module, batch: Batch, loss_fn: LossFn, *, optimizer: str = "adamw", precision: str = "fp32"
) -> Callable[[], float]:
    """The training step as a plain PyTorch loop writes it: zero_grad(set_to_none), forward (under
    bf16 autocast for ``precision="bf16"``), loss, backward, optimizer step — on one fixed batch.

    This is how the peers (timm, ``torch.nn.LSTM``) are timed; archlab's own models are timed
    through the trainer's step instead (``archlab.bench.workloads``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    x, y = batch
    model.train()
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def bench_train_step(
    model: nn.Module,
    example_batch: Batch,
    loss_fn: LossFn,
    *,
    steps: int = 30,
    warmup: int = 5,
    optimizer: str = "adamw",
    precision: str = "fp32",
    peak_gflops: float | None = None,
    forward_flops: int | None = None,
) -> dict[str, Any]:
    """Time ``steps`` plain training steps (:func:`plain_step`) of ``model`` on one batch.

    ``forward_flops`` overrides ``count_flops(model, x)`` where torch's counter misses ops (the
    fused CPU LSTM kernel counts as 0). ``peak_gflops`` defaults to a quick ``matmul_peak()``.
    Returns samples_per_s (batch / median step time), step_ms (median), step_ms_min/max,
    peak_rss_mb, peak_rss_delta_mb, params, batch, flops_per_step (3 × forward FLOPs), gflops
    (achieved) and mfu (achieved / peak).
    """
    x, _ = example_batch
    fwd = count_flops(model, x) if forward_flops is None else int(forward_flops)
    step = plain_step(model, example_batch, loss_fn, optimizer=optimizer, precision=precision)
    if peak_gflops is None:
        peak_gflops = matmul_peak()
    timed = time_steps(step, steps=steps, warmup=warmup)
    return {
        "params": count_params(model),
        "optimizer": optimizer,
        "precision": precision,
        **timed,
        **throughput(timed, batch=int(x.shape[0]), forward_flops=fwd, peak_gflops=peak_gflops),
        "threads": torch.get_num_threads(),
    }
