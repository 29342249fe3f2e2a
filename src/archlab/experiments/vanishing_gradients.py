"""Vanishing gradients on the adding problem (Bengio et al. 1994, Hochreiter & Schmidhuber 1997,
Pascanu et al. 2013): RNN, LSTM and GRU at T = 10 … 200, each trained from the shipped
``adding/<model>`` recipe (one layer, 64 units, last-state read-out, Adam, gradient clipping by norm
1.0) at the length and budget of the experiment, then the gradient probe of
:mod:`archlab.experiments.recurrent_probes` at initialisation and after training."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from archlab.data import load_dataset
from archlab.data.synthetic import ADDING_BASELINE_ACCURACY, ADDING_BASELINE_MSE
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.recurrent_probes import (
    LABELS,
    adding_scores,
    hidden_state_gradients,
    load_trained,
    sci,
)
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.report.figures import lines
from archlab.utils.errors import ConfigError

LEARNED_MSE = ADDING_BASELINE_MSE / 2  # "learned": at least half the target's variance explained (R² > 0.5)


class VanishingGradientsOptions(ExperimentOptions):
    lengths: list[int] | None = Field(None, min_length=1)  # T (default [10, 20] quick, 10 … 200 full)
    models: list[Literal["rnn", "lstm", "gru"]] = Field(default_factory=lambda: list(LABELS), min_length=1)
    hidden_size: int = Field(64, ge=1)  # H
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 30 quick, 4000 full)
    lr: float = Field(3e-3, gt=0, allow_inf_nan=False)
    batch_size: int = Field(64, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    probe_length: int | None = Field(None, ge=1)  # T of the gradient probe (default 20 quick, 100 full)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class VanishingGradients(Experiment):
    name = "vanishing-gradients"
    title = "Vanishing gradients: the adding problem at T = 10 … 200 for RNN, LSTM and GRU"
    claim = (
        "A vanilla (tanh) RNN fails to learn dependencies beyond roughly 10–20 steps because ‖∂ℓ/∂h_t‖ "
        "shrinks exponentially with the distance T − t; the LSTM and the GRU carry information much "
        "further — Bengio et al. 1994, Hochreiter & Schmidhuber 1997, Pascanu et al. 2013."
    )
    Options = VanishingGradientsOptions

    def settings(self, options: VanishingGradientsOptions, quick: bool) -> dict[str, Any]:
        steps = options.steps if options.steps is not None else (30 if quick else 4000)
        overrides = {
            **budget(steps),
            "optim.lr": options.lr,
            "data.batch_size": options.batch_size,
            **({"data.options.n_train": 512, "data.options.n_test": 256} if quick else {}),
            **options.overrides,
        }
        return {
            "lengths": options.lengths
            if options.lengths is not None
            else ([10, 20] if quick else [10, 20, 50, 100, 200]),
            "models": list(options.models),
            "steps": steps,
            "hidden_size": options.hidden_size,
            "seeds": list(options.seeds),
            "probe_length": options.probe_length if options.probe_length is not None else (20 if quick else 100),
            "probe_batch": 64 if quick else 256,
            "overrides": overrides,
        }

    def check(self, s: dict[str, Any]) -> None:
        if s["probe_length"] not in s["lengths"]:
            raise ConfigError(f"probe_length: {s['probe_length']} is not one of the lengths {s['lengths']}")

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        out = []
        for t in sorted(s["lengths"], reverse=True):  # the longest (slowest) runs start first
            for m in s["models"]:
                model = {"name": m, "hidden_size": s["hidden_size"]}
                recipe = build_recipe(f"adding/{m}", model, {"data.options.length": t, **s["overrides"]})
                out += [spec(f"{m}:{t}", seed, recipe, f"{m}-T{t}-s{seed}") for seed in s["seeds"]]
        return out

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        summaries, seeds = trained.summaries, s["seeds"]
        scores = {
            (m, t): [adding_scores(out_dir / f"{m}-T{t}-s{seed}") for seed in seeds]
            for m in s["models"]
            for t in s["lengths"]
        }
        mse = {k: statistics.fmean(x["mse"] for x in v) for k, v in scores.items()}
        acc = {k: statistics.fmean(x["accuracy"] for x in v) for k, v in scores.items()}
        params = {m: summaries[f"{m}:{s['lengths'][0]}", seeds[0]]["params"] for m in s["models"]}

        # gradient probe at T = probe_length, first seed: at initialisation and after training
        probe_t = s["probe_length"]
        test = load_dataset("adding", "test", options={**self._data_options(s), "length": probe_t})
        xb, yb = test.x[: s["probe_batch"]], test.y[: s["probe_batch"]]
        grads: dict[str, dict[str, list[float]]] = {}
        for m in s["models"]:
            run_dir = out_dir / f"{m}-T{probe_t}-s{seeds[0]}"
            grads[m] = {
                when: hidden_state_gradients(load_trained(run_dir, initial=when == "init")[0], xb, yb).tolist()
                for when in ("init", "trained")
            }
        ratio = {(m, w): grads[m][w][0] / grads[m][w][-1] for m in s["models"] for w in ("init", "trained")}

        # figures
        lines(
            {
                f"{LABELS[m]} ({params[m]:,} params)": [(t, 100 * acc[m, t], 0.0) for t in s["lengths"]]
                for m in s["models"]
            }
            | {"constant 1.0 (baseline)": [(t, 100 * ADDING_BASELINE_ACCURACY, 0.0) for t in s["lengths"]]},
            "sequence length T",
            "test accuracy % (|error| < 0.04)",
            out_dir / "figures" / "accuracy_vs_length.png",
            title=f"Adding problem, H={s['hidden_size']}, {s['steps']:,} steps each",
        )
        every = max(1, probe_t // 50)  # at most ~50 markers per line
        for when, what in (("init", "at initialisation"), ("trained", "after training")):
            lines(
                {
                    LABELS[m]: [
                        (t + 1, math.log10(g), 0.0)
                        for t, g in enumerate(grads[m][when])
                        if g > 0 and (t % every == 0 or t == probe_t - 1)
                    ]
                    for m in s["models"]
                },
                "step t",
                "log₁₀ ‖∂ℓ/∂h_t‖ (mean over the batch)",
                out_dir / "figures" / f"grad_norm_{when}.png",
                logx=False,
                title=f"Adding problem T={probe_t}, loss on the last output, {what}",
            )

        # table and verdict
        rows: list[list[Any]] = [
            ["constant 1.0 (baseline)", 0, "any", f"{ADDING_BASELINE_MSE:.4f}", f"{100 * ADDING_BASELINE_ACCURACY:.1f}"]
            + ["", "", ""]
        ]
        for m in s["models"]:
            for t in s["lengths"]:
                wall = statistics.fmean(summaries[f"{m}:{t}", seed]["wall_time_s"] for seed in seeds)
                probe = f"{sci(ratio[m, 'init'])} → {sci(ratio[m, 'trained'])}" if t == probe_t else ""
                rows.append(
                    [
                        LABELS[m],
                        params[m],
                        t,
                        f"{mse[m, t]:.4f}",
                        f"{100 * acc[m, t]:.1f}",
                        "yes" if mse[m, t] < LEARNED_MSE else "no",
                        probe,
                        round(wall, 1),
                    ]
                )
        longest = {m: max([t for t in s["lengths"] if mse[m, t] < LEARNED_MSE], default=0) for m in s["models"]}
        verdict, supported = self._verdict(s, mse, acc, longest, ratio)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "model",
                "params",
                "T",
                "test MSE",
                "accuracy % (|err|<0.04)",
                "learned (MSE < 1/12)",
                f"‖∂ℓ/∂h_1‖/‖∂ℓ/∂h_T‖ at T={probe_t}: init → trained",
                "train time s",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "overrides": s["overrides"],
                "longest_learned": longest,
                "grad_norms": grads,
                "grad_ratio_first_over_last": {f"{m}/{w}": r for (m, w), r in ratio.items()},
                "learned_threshold_mse": LEARNED_MSE,
            },
            supported=supported,
        )

    @staticmethod
    def _data_options(s: dict[str, Any]) -> dict[str, Any]:
        return {k.split(".")[-1]: v for k, v in s["overrides"].items() if k.startswith("data.options.")}

    @staticmethod
    def _verdict(
        s: dict[str, Any],
        mse: dict[tuple[str, int], float],
        acc: dict[tuple[str, int], float],
        longest: dict[str, int],
        ratio: dict[tuple[str, str], float],
    ) -> tuple[str, bool | None]:
        t_max = max(s["lengths"])
        parts = []
        for m in s["models"]:
            at_max = f"at T={t_max}: MSE {mse[m, t_max]:.4f}, {100 * acc[m, t_max]:.1f}% within 0.04"
            reach = f"learns up to T={longest[m]}" if longest[m] else "learns at no length"
            parts.append(f"{LABELS[m]} {reach} ({at_max})")
        verdict = (
            f"Same budget for every run ({s['steps']:,} steps of {s['overrides']['data.batch_size']} sequences, "
            f"H={s['hidden_size']}); "
            f"'learns' = test MSE below {LEARNED_MSE:.4f}, half the constant baseline's {ADDING_BASELINE_MSE:.4f}. "
            + "; ".join(parts)
            + ". "
        )
        probe_t = s["probe_length"]
        verdict += (
            f"Gradient reaching h_1 relative to h_{probe_t} at T={probe_t}, at initialisation: "
            + ", ".join(f"{LABELS[m]} {sci(ratio[m, 'init'])}" for m in s["models"])
            + "; after training: "
            + ", ".join(f"{LABELS[m]} {sci(ratio[m, 'trained'])}" for m in s["models"])
            + ". "
        )
        supported: bool | None = None
        gated = [m for m in ("lstm", "gru") if m in s["models"]]
        if "rnn" in s["models"] and gated:
            further = all(longest[g] > longest["rnn"] for g in gated)
            early = longest["rnn"] <= 50  # "roughly 10–20 steps": fails by T=100 at the latest
            if further and early:
                supported = True
                verdict += (
                    f"The RNN stops learning beyond T={longest['rnn']} while the gated cells go further: "
                    "the claim holds."
                )
            elif further:
                verdict += (
                    f"The gated cells go further, but the RNN still learns at T={longest['rnn']}, beyond the "
                    "claimed 10–20 steps: the claim is only partly reproduced."
                )
            else:
                supported = False
                verdict += "The gated cells do NOT reach longer lengths than the RNN here: the claim is not reproduced."
        return verdict, supported
