"""The runner: every workload in its own process, interleaved, median of medians.

These machines are noisy (PEERS.md), so a speed figure counts only as a ratio against a peer
measured side by side in the same run. :func:`run_benchmarks` runs every workload (and the matmul
peak) in a separate worker process, round-robin across repeats (w1, w2, w3, w1, w2, w3, …), and
reports the median over repeats of each run's median step time ("median of medians").
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

from archlab.bench.measuring import load_average, matmul_peak, measure_peaks, throughput, time_steps
from archlab.bench.workloads import Workload, get_workload, list_workloads, prepare, workload_precision
from archlab.utils.env import native_bf16


def run_workload(
    workload: str | Workload,
    *,
    steps: int = 30,
    warmup: int = 5,
    optimizer: str = "adamw",
    precision: str = "fp32",
    peak_gflops: float | None = None,
) -> dict[str, Any]:
    """Build one workload and time its training step in this process (see :func:`time_steps`)."""
    w = get_workload(workload) if isinstance(workload, str) else workload
    prepared = prepare(w, optimizer=optimizer, precision=precision)
    try:
        if peak_gflops is None:
            peak_gflops = matmul_peak()
        timed = time_steps(prepared.step, steps=steps, warmup=warmup)
    finally:
        prepared.cleanup()
    return {
        "workload": w.name,
        "through_trainer": w.through_trainer,
        "params": prepared.params,
        "optimizer": optimizer,
        "precision": workload_precision(w, precision),
        **timed,
        **throughput(timed, batch=prepared.batch, forward_flops=prepared.forward_flops, peak_gflops=peak_gflops),
        "threads": torch.get_num_threads(),
    }


PEAK_JOB = "matmul-peak"


def _worker_cmd(
    job: str, steps: int, warmup: int, precision: str, optimizer: str, threads: int | None, peak_n: int = 2048
) -> list[str]:
    cmd = [sys.executable, "-m", "archlab.bench.worker"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if job == PEAK_JOB:
        return [*cmd, "--matmul-peak", "--peak-n", str(peak_n), "--json"]
    return [
        *cmd,
        job,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--precision",
        precision,
        "--optimizer",
        optimizer,
        "--peak",
        "0",
        "--json",
    ]


def _run_subprocess(cmd: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd[2:])}), exit {proc.returncode}:\n{tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"benchmark worker printed nothing ({' '.join(cmd[2:])})")
    return json.loads(lines[-1])


def run_benchmarks(
    names: Sequence[str | Workload] | None = None,
    repeats: int = 3,
    processes: bool = True,
    *,
    steps: int = 30,
    warmup: int = 5,
    precision: str = "fp32",
    optimizer: str = "adamw",
    threads: int | None = None,
    timeout: float = 600.0,
    peak_n: int = 2048,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run workloads interleaved round-robin, ``repeats`` times each; return (rows, peaks).

    ``names``: workload names (default: every workload whose optional modules are installed), or
    :class:`Workload` objects (in this process only). Every round measures the matmul peak too
    (as one more interleaved job), so the peak sees the same machine state as the workloads. Each
    row holds the median over repeats of every run's median step time (and the figures derived
    from it), the per-run medians in ``runs_step_ms``, and the 1-minute load average at the start
    and end of the run. ``peaks`` holds the median fp32 (and, on a native-bf16 CPU, bf16) matmul
    peaks in GFLOP/s. ``threads`` sets torch's intra-op threads in every worker (default: torch's
    own choice). With ``processes=False`` everything runs in this process (for tests; not for
    results). ``precision="bf16"`` needs a CPU with native bf16 (:func:`native_bf16`): elsewhere
    it is refused (ValueError), since emulated bf16 is ~14× slower than fp32 and would only
    measure the emulation.
    """
    workloads = [get_workload(n) if isinstance(n, str) else n for n in names] if names else None
    if workloads is None:
        workloads = [get_workload(n) for n in list_workloads(available_only=True)]
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    if precision == "bf16" and not native_bf16("cpu"):
        raise ValueError(
            "precision bf16: this CPU has no native bf16 (avx512_bf16/amx_bf16), so bf16 would be emulated "
            "(~14x slower than fp32); benchmark fp32 here, or bf16 on a CPU or GPU that has it"
        )
    missing = [f"{w.name} (needs {', '.join(w.requires)})" for w in workloads if not w.available()]
    if missing:
        raise ValueError(f"not installed here: {'; '.join(missing)}; pip install archlab[bench]")
    if processes and any(w.name not in list_workloads() or get_workload(w.name) is not w for w in workloads):
        raise ValueError("workload objects run only with processes=False; register them to run in workers")
    by_name = {w.name: w for w in workloads}
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in by_name}
    threads_before = torch.get_num_threads()
    if threads is not None and not processes:
        torch.set_num_threads(threads)
    peak_runs: list[dict[str, float]] = []
    load_start = load_average()

    def run_job(job: str) -> dict[str, Any]:
        if processes:
            return _run_subprocess(_worker_cmd(job, steps, warmup, precision, optimizer, threads, peak_n), timeout)
        if job == PEAK_JOB:
            return measure_peaks(peak_n)
        return run_workload(
            by_name[job], steps=steps, warmup=warmup, optimizer=optimizer, precision=precision, peak_gflops=0.0
        )

    try:
        for r in range(repeats):
            for job in [PEAK_JOB, *by_name]:  # round-robin: every job once per round
                if log:
                    log(f"round {r + 1}/{repeats}: {job}")
                result = run_job(job)
                (peak_runs if job == PEAK_JOB else runs[job]).append(result)
    finally:
        torch.set_num_threads(threads_before)
    load_end = load_average()
    peaks = {k: statistics.median(p[k] for p in peak_runs) for k in ("fp32", "bf16") if k in peak_runs[0]}
    rows = [_summarise(by_name[n], runs[n], peaks["fp32"]) for n in by_name]
    for row in rows:
        row["load_1min"] = [load_start[0] if load_start else None, load_end[0] if load_end else None]
    _add_peer_ratios(rows)
    return rows, peaks


def _summarise(w: Workload, runs: list[dict[str, Any]], peak_fp32: float) -> dict[str, Any]:
    first = runs[0]
    step_ms = statistics.median(r["step_ms"] for r in runs)
    gflops = first["flops_per_step"] / (step_ms / 1e3) / 1e9
    return {
        "workload": w.name,
        "description": w.description,
        "reference": w.reference,
        "peer": w.peer,
        "through_trainer": w.through_trainer,
        "params": first["params"],
        "batch": first["batch"],
        "steps": first["steps"],
        "precision": first["precision"],
        "optimizer": first["optimizer"],
        "repeats": len(runs),
        "step_ms": step_ms,
        "runs_step_ms": [r["step_ms"] for r in runs],
        "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
        "runs_cpu_ms": [r["cpu_ms"] for r in runs],
        "samples_per_s": first["batch"] / (step_ms / 1e3),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "peak_rss_delta_mb": statistics.median(r["peak_rss_delta_mb"] for r in runs),
        "flops_per_step": first["flops_per_step"],
        "gflops": gflops,
        "mfu": gflops / peak_fp32 if peak_fp32 > 0 else math.nan,
        "threads": first.get("threads"),
    }


def _add_peer_ratios(rows: list[dict[str, Any]]) -> None:
    """``vs_peer``: samples/s over the peer's (same run; the peer's step time ÷ ours), the per-round
    ratios, and ``vs_peer_cpu``, the same ratio of CPU times per step."""
    by_name = {r["workload"]: r for r in rows}
    for row in rows:
        peer = by_name.get(row.get("peer") or "")
        if peer is None:
            row["vs_peer"] = row["vs_peer_cpu"] = None
            continue
        row["vs_peer"] = peer["step_ms"] / row["step_ms"]
        row["vs_peer_cpu"] = peer["cpu_ms"] / row["cpu_ms"]
        pairs = zip(row["runs_step_ms"], peer["runs_step_ms"])
        row["vs_peer_rounds"] = [p / o for o, p in pairs]
