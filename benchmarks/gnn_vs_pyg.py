"""GCN and GAT beside PyG's on a Cora-sized synthetic graph: full-batch training steps, interleaved.

    python benchmarks/gnn_vs_pyg.py --runs 3 --rounds 20
    python benchmarks/gnn_vs_pyg.py --profile        # where the time of one step goes

Each run is a separate process that builds the four models (PyG's GCN and GAT from its examples,
archlab's ``gcn`` and ``gat`` with the same math; see archlab.bench.gnn_workloads), warms each up,
then times one step of each, round after round, so every variant sees the same machine state.
A run reports each variant's median wall and CPU time per step; the table gives the median over the
runs of those medians and the ratio of steps/s to PyG's (above 1: faster than PyG), as PEERS.md asks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from archlab.bench.gnn_workloads import PEER, WORKLOADS, build, cora_sized_graph, full_batch_step
from archlab.bench.measuring import machine_info


def one_run(rounds: int) -> dict[str, dict[str, float]]:
    problem = cora_sized_graph()
    steps = {}
    for name in WORKLOADS:
        torch.manual_seed(0)
        steps[name] = full_batch_step(build(name), problem)
    for step in steps.values():
        for _ in range(3):
            step()  # warm-up (caches, allocator)
    wall: dict[str, list[float]] = {n: [] for n in steps}
    cpu: dict[str, list[float]] = {n: [] for n in steps}
    for _ in range(rounds):
        for n, step in steps.items():
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            wall[n].append(time.perf_counter() - t0)
            cpu[n].append(time.process_time() - c0)
    return {n: {"wall": statistics.median(wall[n]), "cpu": statistics.median(cpu[n])} for n in steps}


def profile(steps: int = 5) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    problem = cora_sized_graph()
    for name in WORKLOADS:
        torch.manual_seed(0)
        step = full_batch_step(build(name), problem)
        for _ in range(3):
            step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n{name}: {total / steps / 1e3:.1f} ms of operator self time per step; top operators:")
        for e in events[:8]:
            ms, share = e.self_cpu_time_total / steps / 1e3, 100 * e.self_cpu_time_total / total
            print(f"  {e.key:<40} {ms:7.2f} ms  {share:5.1f} %")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="separate processes (median of their medians)")
    p.add_argument("--rounds", type=int, default=20, help="timed steps of each variant per run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true", help="print where one step's time goes, then exit")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        profile()
        return 0
    if args.worker:
        print(json.dumps(one_run(args.rounds)))
        return 0
    load = os.getloadavg()
    runs = []
    for _ in range(args.runs):
        cmd = [sys.executable, __file__, "--worker", "--rounds", str(args.rounds), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    m = machine_info()
    print(
        f"{m['cpu']}, {args.threads} thread(s), torch {m['torch']}, {args.runs} runs × {args.rounds} rounds; "
        f"load average (1 min) {load[0]:.2f} → {os.getloadavg()[0]:.2f}"
    )
    print("| workload | steps/s | vs PyG (wall) | step ms (runs) | CPU ms | vs PyG (CPU) |")
    print("|---|---:|---:|---|---:|---:|")
    med = {n: {k: statistics.median(r[n][k] for r in runs) for k in ("wall", "cpu")} for n in WORKLOADS}
    for n in WORKLOADS:
        w, c = med[n]["wall"], med[n]["cpu"]
        per_run = ", ".join(f"{1e3 * r[n]['wall']:.1f}" for r in runs)
        peer = PEER.get(n)
        vs_w = f"{med[peer]['wall'] / w:.2f}×" if peer else ""
        vs_c = f"{med[peer]['cpu'] / c:.2f}×" if peer else ""
        print(f"| {n} | {1 / w:.1f} | {vs_w} | {1e3 * w:.1f} ({per_run}) | {1e3 * c:.1f} | {vs_c} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
