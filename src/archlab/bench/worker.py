"""Subprocess entry of the benchmark runner: one workload (or the matmul peak) per process.

    python -m archlab.bench.worker mlp-fashion --steps 30 --json
    python -m archlab.bench.worker --matmul-peak --json

With ``--json`` the last line of stdout is one JSON object (NaN written as null).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import torch

from archlab.bench.measuring import PRECISIONS, measure_peaks
from archlab.bench.runner import run_workload
from archlab.bench.workloads import list_workloads

QUICK_STEPS, QUICK_WARMUP = 3, 1


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m archlab.bench.worker", description=__doc__.splitlines()[0])
    p.add_argument("workload", nargs="?", choices=list_workloads(), help="workload to benchmark")
    p.add_argument(
        "--matmul-peak", action="store_true", help="measure the matmul peaks instead (bf16 only on a native-bf16 CPU)"
    )
    p.add_argument("--peak-n", type=int, default=2048, help="matmul size of the peak measurement")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, {QUICK_WARMUP} warm-up (smoke test)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--optimizer", choices=("adamw", "adam", "sgd"), default="adamw")
    p.add_argument(
        "--peak", type=float, default=None, help="fp32 peak GFLOP/s for MFU (default: measure it; 0: skip, MFU null)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.matmul_peak:
        out: dict[str, Any] = {**measure_peaks(args.peak_n), "threads": torch.get_num_threads()}
    elif args.workload is None:
        p.error("give a workload name or --matmul-peak")
    else:
        steps, warmup = (QUICK_STEPS, QUICK_WARMUP) if args.quick else (args.steps, args.warmup)
        out = run_workload(
            args.workload,
            steps=steps,
            warmup=warmup,
            optimizer=args.optimizer,
            precision=args.precision,
            peak_gflops=args.peak,
        )
    if args.json:
        print(json.dumps(_clean(out)))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
