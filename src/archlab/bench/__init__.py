"""Benchmarks of training steps: throughput, peak memory, MFU against the measured matmul peak.

``measuring`` (the machine, the timed loop, memory), ``workloads`` (archlab's models through the
trainer's own step, and the peers in their plain loop), ``runner`` (separate, interleaved worker
processes, median of medians, ratios against the peer) and ``results`` (benchmarks/RESULTS.md).
``benchmarks/run.py`` drives them; speed is compared only side by side with a peer in the same
run, never in timed tests.
"""

from archlab.bench.measuring import bench_train_step, machine_info, matmul_peak, measure_peaks, time_steps
from archlab.bench.results import results_markdown, write_results
from archlab.bench.runner import run_benchmarks, run_workload
from archlab.bench.workloads import WORKLOADS, Workload, get_workload, list_workloads, prepare

__all__ = [
    "WORKLOADS",
    "Workload",
    "bench_train_step",
    "get_workload",
    "list_workloads",
    "machine_info",
    "matmul_peak",
    "measure_peaks",
    "prepare",
    "results_markdown",
    "run_benchmarks",
    "run_workload",
    "time_steps",
    "write_results",
]
