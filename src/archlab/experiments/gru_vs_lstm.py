"""GRU vs LSTM (Cho et al. 2014, Chung et al. 2014, Jozefowicz et al. 2015): parameters, time per
step and accuracy at equal hidden size, and with a GRU widened to the LSTM's parameter count, on the
adding problem (shipped ``adding/<model>`` recipes) and MNIST-1D (``mnist1d/default`` with the model
swapped in)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field
from torch import nn

from archlab.data import load_dataset
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.recurrent_probes import adding_scores, load_trained, median_step_ms, recurrent_params
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.registry import create_model
from archlab.report.figures import bar
from archlab.utils.counting import count_params


def matched_hidden_size(target_params: int, make: Callable[[int], nn.Module], start: int) -> int:
    """The hidden size H in [start/2, 2·start] for which ``make(H)`` has the parameter count closest to
    ``target_params``."""
    best, best_gap = start, None
    for h in range(max(1, start // 2), 2 * start + 1):
        gap = abs(count_params(make(h)) - target_params)
        if best_gap is None or gap < best_gap:
            best, best_gap = h, gap
    return best


class GruVsLstmOptions(ExperimentOptions):
    lengths: list[int] | None = Field(None, min_length=1)  # adding-problem T (default [20] quick, [50, 100] full)
    hidden_size: int = Field(64, ge=1)  # H of both cells
    steps: int | None = Field(None, ge=1)  # adding-problem steps (default 20 quick, 3000 full)
    mnist1d_steps: int | None = Field(None, ge=1)  # MNIST-1D steps (default 20 quick, 3000 full)
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick, [0, 1] full
    equal_params: bool = True  # also train a GRU widened to the LSTM's parameter count
    bench_repeats: int | None = Field(None, ge=1)  # steps timed by the benchmark (default 3 quick, 15 full)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class GruVsLstm(Experiment):
    """LSTM and GRU at the same hidden size (and a GRU widened to the LSTM's parameter count) on the
    adding problem and MNIST-1D. Time per step comes from the runs (wall time / steps) and from a
    one-thread benchmark (median of ``bench_repeats`` steps on one training batch). On CPU, torch runs
    the LSTM as one oneDNN kernel per layer (``mkldnn_rnn_layer``) but the GRU as a loop of per-step
    ATen ops (profiled), so the GRU's fewer FLOPs need not make it faster there."""

    name = "gru-vs-lstm"
    title = "GRU vs LSTM: parameters, time per step and accuracy at equal hidden size (and equal parameters)"
    claim = (
        "The GRU matches the LSTM's accuracy with three gate blocks instead of four, i.e. 3/4 of its recurrent "
        "parameters at the same hidden size — Cho et al. 2014, Chung et al. 2014, Jozefowicz et al. 2015."
    )
    Options = GruVsLstmOptions

    def settings(self, options: GruVsLstmOptions, quick: bool) -> dict[str, Any]:
        steps = options.steps if options.steps is not None else (20 if quick else 3000)
        mnist_steps = options.mnist1d_steps if options.mnist1d_steps is not None else (20 if quick else 3000)
        return {
            "lengths": options.lengths if options.lengths is not None else ([20] if quick else [50, 100]),
            "hidden_size": options.hidden_size,
            "steps": steps,
            "mnist1d_steps": mnist_steps,
            "seeds": options.seeds if options.seeds is not None else ([0] if quick else [0, 1]),
            "equal_params": options.equal_params,
            "bench_repeats": options.bench_repeats if options.bench_repeats is not None else (3 if quick else 15),
            "adding": {
                **budget(steps),
                "optim.lr": 3e-3,
                **({"data.options.n_train": 512, "data.options.n_test": 256} if quick else {}),
                **options.overrides,
            },
            "mnist1d": {
                **budget(mnist_steps),
                "optim.grad_clip_norm": 1.0,
                **({"data.train_subset": 512, "data.test_subset": 256} if quick else {}),
                **options.overrides,
            },
        }

    def _tasks(self, s: dict[str, Any]) -> list[tuple[str, Callable[[dict[str, Any]], Any]]]:
        """(task label, model spec → recipe) for each adding length, then MNIST-1D."""
        out: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
            (
                f"adding T={t}",
                lambda model, t=t: build_recipe(
                    f"adding/{model['name']}", model, {"data.options.length": t, **s["adding"]}
                ),
            )
            for t in s["lengths"]
        ]
        out.append(("MNIST-1D", lambda model: build_recipe("mnist1d/default", model, s["mnist1d"])))
        return out

    def _plan(self, s: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], dict[int, str], Any]]:
        """(key, task, label, model spec, run name per seed, recipe) of every variant on every task."""
        plan = []
        for ti, (task, make) in enumerate(self._tasks(s)):
            slug = "adding-T" + task.split("=")[1] if task.startswith("adding") else "mnist1d"
            for vi, (label, model) in enumerate(self._variants(s, task)):
                names = {seed: f"{slug}-{model['name']}{model['hidden_size']}-s{seed}" for seed in s["seeds"]}
                plan.append((f"{ti}:{vi}", task, label, model, names, make(model)))
        return plan

    def _variants(self, s: dict[str, Any], task: str) -> list[tuple[str, dict[str, Any]]]:
        h = s["hidden_size"]
        base = {"readout": "last", "bidirectional": False}
        variants = [
            ("LSTM", {"name": "lstm", "hidden_size": h, **base}),
            ("GRU", {"name": "gru", "hidden_size": h, **base}),
        ]
        if s["equal_params"]:
            shape = ((2, 10), 1) if task.startswith("adding") else ((1, 40), 10)
            lstm = count_params(create_model("lstm", in_shape=shape[0], num_classes=shape[1], hidden_size=h, **base))
            h_gru = matched_hidden_size(
                lstm,
                lambda k: create_model("gru", in_shape=shape[0], num_classes=shape[1], hidden_size=k, **base),
                h,
            )
            variants.append(("GRU (≈ LSTM params)", {"name": "gru", "hidden_size": h_gru, **base}))
        return variants

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        return [
            spec(key, seed, recipe, names[seed]) for key, _, _, _, names, recipe in self._plan(s) for seed in s["seeds"]
        ]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        summaries, seeds = trained.summaries, s["seeds"]
        plan = [p[:5] for p in self._plan(s)]
        results = []
        for key, task, label, model, names in plan:
            ss = [summaries[key, seed] for seed in seeds]
            if task.startswith("adding"):
                sc = [adding_scores(out_dir / names[seed]) for seed in seeds]
                mse: float | None = statistics.fmean(x["mse"] for x in sc)
                accs = [x["accuracy"] for x in sc]
            else:
                mse = None
                accs = [x["test"]["accuracy"] for x in ss]
            trained, recipe = load_trained(out_dir / names[seeds[0]])
            batch = load_dataset(recipe.data.name, "train", options=recipe.data.options).x[: recipe.data.batch_size]
            results.append(
                {
                    "task": task,
                    "label": label,
                    "hidden_size": model["hidden_size"],
                    "params": ss[0]["params"],
                    "recurrent_params": recurrent_params(trained),
                    "ms_run": statistics.fmean(1000 * x["wall_time_s"] / x["steps"] for x in ss),
                    "ms_bench": median_step_ms(trained, batch, s["bench_repeats"]),
                    "mse": mse,
                    "acc": statistics.fmean(accs),
                    "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                }
            )
        rows = [
            [
                r["task"],
                r["label"],
                r["hidden_size"],
                r["params"],
                r["recurrent_params"],
                round(r["ms_run"], 2),
                round(r["ms_bench"], 2),
                "—" if r["mse"] is None else f"{r['mse']:.4f}",
                f"{100 * r['acc']:.1f}" + (f" ± {100 * r['acc_std']:.1f}" if len(seeds) > 1 else ""),
            ]
            for r in results
        ]
        labels = [f"{r['task']} · {r['label']}" for r in results]
        bar(
            labels,
            [100 * r["acc"] for r in results],
            "test accuracy % (adding: |error| < 0.04)",
            out_dir / "figures" / "accuracy.png",
            errors=[100 * r["acc_std"] for r in results],
            title=f"GRU vs LSTM, mean of {len(seeds)} seed(s)",
        )
        bar(
            labels,
            [r["ms_bench"] for r in results],
            "ms per training step (1 thread, median)",
            out_dir / "figures" / "time_per_step.png",
            title="Time per training step (forward, backward, Adam)",
        )
        verdict, supported = self._verdict(s, results)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "task",
                "model",
                "hidden",
                "params",
                "recurrent params",
                "ms/step (in run)",
                "ms/step (bench, 1 thread)",
                "test MSE",
                "test accuracy %",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k not in ("adding", "mnist1d")}, "results": results},
            supported=supported,
        )

    @staticmethod
    def _verdict(s: dict[str, Any], results: list[dict[str, Any]]) -> tuple[str, bool | None]:
        by = {(r["task"], r["label"]): r for r in results}
        tasks = list(dict.fromkeys(r["task"] for r in results))
        first = tasks[0]
        lstm, gru = by[first, "LSTM"], by[first, "GRU"]
        frac = gru["recurrent_params"] / lstm["recurrent_params"]
        gaps = {t: by[t, "GRU"]["acc"] - by[t, "LSTM"]["acc"] for t in tasks}
        speed = {t: by[t, "GRU"]["ms_bench"] / by[t, "LSTM"]["ms_bench"] for t in tasks}
        verdict = (
            f"At H={s['hidden_size']} the GRU's recurrent layer has {gru['recurrent_params']:,} parameters vs the "
            f"LSTM's {lstm['recurrent_params']:,} ({frac:.2f}×, on {first}). Accuracy GRU − LSTM: "
            + ", ".join(f"{t} {100 * g:+.1f} points" for t, g in gaps.items())
            + ". Time per step GRU/LSTM (1 thread, median): "
            + ", ".join(f"{t} {r:.2f}×" for t, r in speed.items())
            + ". "
        )
        eq = "GRU (≈ LSTM params)"
        if s["equal_params"]:
            verdict += (
                "A GRU widened to the LSTM's parameter count, accuracy minus the LSTM's: "
                + ", ".join(
                    f"{t} {100 * (by[t, eq]['acc'] - by[t, 'LSTM']['acc']):+.1f} points (H={by[t, eq]['hidden_size']})"
                    for t in tasks
                )
                + ". "
            )
        # comparable: within 5 points, or within twice the seeds' spread of the difference
        noise = {t: 2 * math.hypot(by[t, "GRU"]["acc_std"], by[t, "LSTM"]["acc_std"]) for t in tasks}
        comparable = all(abs(g) <= max(0.05, noise[t]) for t, g in gaps.items())
        verdict += (
            (
                "Accuracy is comparable on every task (each gap within 5 points or within twice the seeds' spread) "
                if comparable
                else "Accuracy is NOT comparable on every task (a gap beyond 5 points and the seeds' spread), "
            )
            + f"with {frac:.2f}× the recurrent parameters: "
            + ("the claim holds." if comparable else "the claim is not reproduced.")
        )
        slower = [r for r in speed.values() if r >= 1]
        if slower:
            verdict += (
                f" Fewer parameters do not make the GRU faster here: on {len(slower)} of {len(speed)} tasks its "
                f"step takes {min(slower):.2f}–{max(slower):.2f}× the LSTM's (the kernels, not the FLOPs, decide "
                "on this CPU)."
            )
        return verdict, comparable
