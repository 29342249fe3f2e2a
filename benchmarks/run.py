"""Run the training-step benchmarks side by side and write benchmarks/RESULTS.md.

    python benchmarks/run.py                       # every workload, 3 interleaved repeats, 30 steps
    python benchmarks/run.py --only lstm-torch gru-mnist1d --repeats 5
    python benchmarks/run.py --quick               # smoke test: 3 steps, 1 warm-up
    python benchmarks/run.py --only timm-resnet18-32 resnet18-32 resnet18-32-plain --threads 1

archlab's models are timed through the trainer's own step; the peers (timm, torch.nn.LSTM) in
their plain loop; `vs peer` is the ratio within this run. timm is the `bench` extra
(`make bench` installs it).

Each workload runs in its own process, interleaved round-robin across repeats; figures are the
median of each run's median step time. Run it on a quiet machine for figures worth keeping.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archlab.bench import list_workloads, run_benchmarks, write_results
from archlab.bench.measuring import PRECISIONS

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list_workloads(),
        help="workloads to run (default: every one whose optional packages are installed: "
        f"{', '.join(list_workloads())})",
    )
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per workload (≥ 3 for results)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per run")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default: torch's; 1 avoids stalls on a shared machine)",
    )
    p.add_argument("--quick", action="store_true", help="3 steps, 1 warm-up: checks that everything runs")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="Markdown report path")
    args = p.parse_args(argv)

    steps, warmup = (3, 1) if args.quick else (args.steps, args.warmup)
    try:
        rows, peaks = run_benchmarks(
            args.only,
            repeats=args.repeats,
            processes=True,
            steps=steps,
            warmup=warmup,
            precision=args.precision,
            threads=args.threads,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except ValueError as e:  # bad settings (bf16 on a CPU without it): one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = write_results(rows, peaks, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
