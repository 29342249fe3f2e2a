"""Benchmarks of training steps: throughput, peak memory, MFU against the measured matmul peak.

``benchmarks/run.py`` drives ``run_benchmarks`` and writes ``benchmarks/RESULTS.md``; speed is
compared only side by side with a peer in the same run, never in timed tests.
"""

from archlab.bench.core import (
    WORKLOADS,
    Workload,
    bench_train_step,
    get_workload,
    list_workloads,
    machine_info,
    matmul_peak,
    results_markdown,
    run_benchmarks,
    run_workload,
    write_results,
)

__all__ = [
    "WORKLOADS",
    "Workload",
    "bench_train_step",
    "get_workload",
    "list_workloads",
    "machine_info",
    "matmul_peak",
    "results_markdown",
    "run_benchmarks",
    "run_workload",
    "write_results",
]
