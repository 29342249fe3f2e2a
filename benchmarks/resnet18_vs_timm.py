"""ResNet-18 (ImageNet stem, 32×32, batch 128, AdamW) beside timm's, in one process, interleaved.

    python benchmarks/resnet18_vs_timm.py --rounds 15

One step of each variant per round, round after round, so every variant sees the same machine
state; reported: median wall and CPU time per step and their ratio to timm's (above 1: faster
than timm). CPU time (the process's, one thread) is the steadier figure on a shared machine.
Variants: timm's resnet18 in the plain PyTorch loop (the peer); archlab's through the trainer's
own step; the same with torch's per-tensor AdamW loop instead of the fused step (what the
trainer used before); archlab's network alone in the peer's plain loop. Needs timm (`make bench`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import archlab.engine.optim as optim
from archlab.bench.measuring import machine_info
from archlab.bench.workloads import get_workload, prepare


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = {"timm (peer, plain loop)": prepare(get_workload("timm-resnet18-32"))}
    variants["archlab, trainer step"] = prepare(get_workload("resnet18-32"))
    fused = optim.fused_supported
    optim.fused_supported = lambda params: None  # torch's default per-tensor loop
    try:
        variants["archlab, trainer step, loop AdamW"] = prepare(get_workload("resnet18-32"))
    finally:
        optim.fused_supported = fused
    variants["archlab network, plain loop"] = prepare(get_workload("resnet18-32-plain"))
    for v in variants.values():
        v.step(), v.step()  # warm-up
    wall: dict[str, list[float]] = {n: [] for n in variants}
    cpu: dict[str, list[float]] = {n: [] for n in variants}
    load = os.getloadavg()
    for _ in range(args.rounds):
        for n, v in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            v.step()
            wall[n].append(time.perf_counter() - t0)
            cpu[n].append(time.process_time() - c0)
    m = machine_info()
    print(
        f"{m['cpu']}, {args.threads} thread(s), torch {m['torch']}, {args.rounds} rounds; load average (1 min) "
        f"{load[0]:.2f} → {os.getloadavg()[0]:.2f}"
    )
    peer = next(iter(variants))
    print("| variant | wall ms | vs timm (wall) | CPU ms | vs timm (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for n in variants:
        w, c = statistics.median(wall[n]), statistics.median(cpu[n])
        print(
            f"| {n} | {1e3 * w:.0f} | {statistics.median(wall[peer]) / w:.3f}× | {1e3 * c:.0f} | "
            f"{statistics.median(cpu[peer]) / c:.3f}× |"
        )
    for v in variants.values():
        v.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
