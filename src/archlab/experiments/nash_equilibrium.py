"""The GAN game's equilibrium on a 1-D Gaussian (Goodfellow et al., *Generative Adversarial Nets*,
NeurIPS 2014, §4: Proposition 1 and Theorem 1, drawn in their Fig. 1).

For a fixed generator the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Prop. 1);
the game's global optimum is p_g = p_data, where D*(x) = ½ everywhere (Thm. 1). A GAN with MLPs
(``gaussian1d/gan_mlp``: data N(4, 0.5²)) is trained with the cross-entropy losses, and at
``snapshots`` evenly spaced checkpoints the experiment measures, from each run's own weights:

- D(x) = σ(s(x)) on a grid of x over μ ± 6σ — a heatmap over training and a curve at the end;
- p_g, the generator's density, by a Gaussian kernel density estimate (scipy's ``gaussian_kde``,
  Scott's bandwidth) of ``samples`` draws, and with it D*(x) for the current generator;
- E_{x∼p_data} |D(x) − ½| over the test split's points (how far D is from the equilibrium's ½
  where the data's mass is), E_{x∼p_data} |D(x) − D*(x)| (how close D is to the best response to the
  current G), and the Wasserstein-1 distance between G's samples and the test points, in units of the
  data's σ (scipy's ``wasserstein_distance``).

Verdict, on the final checkpoints across seeds: D ≈ ½ holds when mean + 2 SE of E|D − ½| is below
``d_tolerance`` (0.05) and fails when mean − 2 SE is above it; p_g ≈ p_data likewise with W1/σ against
``w1_tolerance`` (0.1). The claim holds when both hold, fails when either fails, and is undecided
otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.gen_common import draw, mean_std, pm, seed_list, supported_by, trained_model
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.report.figures import lines
from archlab.report.mode_figures import curves_and_densities, heatmap
from archlab.utils.errors import ConfigError

RECIPE = "gaussian1d/gan_mlp"
GRID_POINTS = 241
MAX_SNAPSHOTS = 100
MAX_SAMPLES = 1_000_000


class NashOptions(ExperimentOptions):
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick, [0, 1, 2] full
    steps: int | None = Field(None, ge=2)  # optimiser steps per run (default 20 quick, the recipe's own full)
    snapshots: int | None = Field(None, ge=1, le=MAX_SNAPSHOTS)  # checkpoints measured (2 quick, 20 full)
    samples: int | None = Field(None, ge=10, le=MAX_SAMPLES)  # G samples per snapshot for p_g (500 / 20,000)
    loss: Literal["non_saturating", "minimax"] | None = None  # the recipe's own when None
    d_tolerance: float = Field(0.05, gt=0, lt=0.5)  # |D − ½| below which D counts as ½
    w1_tolerance: float = Field(0.1, gt=0)  # W1/σ below which p_g counts as p_data
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


def _threshold(values: list[float], tolerance: float) -> int:
    """+1 when the seeds' mean + 2 SE is below ``tolerance`` (holds), −1 when mean − 2 SE is above it
    (fails), 0 otherwise."""
    m, s = mean_std(values)
    se = s / math.sqrt(len(values))
    if m + 2 * se < tolerance:
        return 1
    if m - 2 * se > tolerance:
        return -1
    return 0


@register_experiment
class NashEquilibrium(Experiment):
    name = "nash-equilibrium"
    title = "The GAN game's equilibrium on a 1-D Gaussian: D(x) → ½ where p_g = p_data"
    claim = (
        "Trained to the game's equilibrium, the generator's density matches the data's and the discriminator "
        "cannot tell them apart: D(x) = p_data/(p_data + p_g) = ½ (Goodfellow et al. 2014, Prop. 1 and Thm. 1)."
    )
    Options = NashOptions

    def settings(self, o: NashOptions, quick: bool) -> dict[str, Any]:
        return {
            "seeds": seed_list(o.seeds, quick),
            "steps": o.steps if o.steps is not None else (20 if quick else None),
            "snapshots": o.snapshots or (2 if quick else 20),
            "samples": o.samples or (500 if quick else 20_000),
            "loss": o.loss,
            "d_tolerance": o.d_tolerance,
            "w1_tolerance": o.w1_tolerance,
            "quick": quick,
            "overrides": dict(o.overrides),
        }

    def _recipe(self, s: dict[str, Any]) -> Any:
        over: dict[str, Any] = {**({"task.loss": s["loss"]} if s["loss"] else {}), **s["overrides"]}
        base = build_recipe(RECIPE, None, over)
        steps = s["steps"] if s["steps"] is not None else base.budget.steps
        if steps is None:
            raise ConfigError(f"experiment nash-equilibrium: {RECIPE} has no step budget; set steps")
        if s["snapshots"] > steps:
            raise ConfigError(f"experiment nash-equilibrium: snapshots ({s['snapshots']}) must be ≤ steps ({steps})")
        every = steps // s["snapshots"]
        over = {
            **budget(steps),
            "checkpoint.every": every,
            "checkpoint.keep_last": s["snapshots"] + 1,
            "checkpoint.best": False,
            **({"data.options.n_test": 500} if s["quick"] else {}),
            **over,
        }
        recipe = build_recipe(RECIPE, None, over)
        if recipe.task.loss not in ("non_saturating", "minimax"):
            raise ConfigError(
                f"experiment nash-equilibrium: task.loss '{recipe.task.loss}' has no probability D(x); "
                "use non_saturating or minimax (Goodfellow et al.'s cross-entropy game)"
            )
        return recipe

    def check(self, s: dict[str, Any]) -> None:
        self._recipe(s)

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        recipe = self._recipe(s)
        return [spec("gan", seed, recipe, f"gaussian1d-gan-s{seed}") for seed in s["seeds"]]

    def _snapshot_steps(self, s: dict[str, Any]) -> list[int]:
        recipe = self._recipe(s)
        steps, every = recipe.budget.steps, recipe.checkpoint.every
        marks = list(range(every, steps + 1, every))
        return marks if marks and marks[-1] == steps else [*marks, steps]

    @torch.no_grad()
    def _measure(self, model: Any, mixture: Any, test: torch.Tensor, grid: np.ndarray, n: int, seed: int) -> dict:
        from scipy.stats import gaussian_kde, norm, wasserstein_distance

        mu, sigma = float(mixture.means[0, 0]), float(mixture.std)
        d_grid = torch.sigmoid(model.discriminate(torch.tensor(grid, dtype=torch.float32).view(-1, 1))).view(-1)
        d_test = torch.sigmoid(model.discriminate(test.float().view(-1, 1))).view(-1).double().numpy()
        g = draw(model, n, seed).view(-1).double().numpy()
        finite = bool(np.isfinite(g).all())
        p_data_grid = norm.pdf(grid, mu, sigma)
        t = test.view(-1).double().numpy()
        if finite and g.std() > 0:
            kde = gaussian_kde(g)
            p_g_grid, p_g_test = kde(grid), kde(t)
        else:  # a collapsed (or broken) generator: all its mass in one point, density 0 elsewhere
            p_g_grid, p_g_test = np.zeros_like(grid), np.zeros_like(t)
        p_data_test = norm.pdf(t, mu, sigma)
        d_star_test = p_data_test / (p_data_test + p_g_test)
        return {
            "d_grid": d_grid.double().numpy(),
            "p_g_grid": p_g_grid,
            "p_data_grid": p_data_grid,
            # D* where either density has mass (elsewhere 0/0: left undrawn)
            "d_star_grid": np.where(
                p_data_grid + p_g_grid > 1e-3 * (p_data_grid.max() + p_g_grid.max()),
                p_data_grid / np.maximum(p_data_grid + p_g_grid, 1e-300),
                np.nan,
            ),
            "dev_half": float(np.abs(d_test - 0.5).mean()),
            "dev_opt": float(np.abs(d_test - d_star_test).mean()),
            "w1_sigma": float(wasserstein_distance(g, t)) / sigma if finite else math.inf,
            "g_mean": float(g.mean()),
            "g_std": float(g.std()),
        }

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        from archlab.data import load_dataset
        from archlab.data.mixtures import mixture_of

        recipe = self._recipe(s)
        options = recipe.data.options or {}
        mixture = mixture_of("gaussian1d", options)
        mu, sigma = float(mixture.means[0, 0]), float(mixture.std)
        test = load_dataset("gaussian1d", "test", options=options).x
        grid = np.linspace(mu - 6 * sigma, mu + 6 * sigma, GRID_POINTS)
        steps = self._snapshot_steps(s)
        runs = {r.seed: r for r in self.runs(s)}
        per_seed: dict[int, list[dict[str, Any]]] = {}
        for seed in s["seeds"]:
            per_seed[seed] = []
            for step in steps:
                model = trained_model(out_dir, runs[seed], checkpoint=f"step-{step}")
                per_seed[seed].append({"step": step, **self._measure(model, mixture, test, grid, s["samples"], seed)})

        first = s["seeds"][0]
        fig_dir = out_dir / "figures"
        heatmap(
            np.stack([m["d_grid"] for m in per_seed[first]]),
            grid,
            steps,
            fig_dir / "d-over-training.png",
            xlabel="x",
            ylabel="training step",
            colorbar="D(x)",
            vmin=0.0,
            vmax=1.0,
            title=f"D(x) over training (seed {first}); the data: N({mu:g}, {sigma:g}²)",
        )
        last = per_seed[first][-1]
        curves_and_densities(
            grid,
            {"D(x), trained": last["d_grid"], "D*(x) = p_data/(p_data + p_g)": last["d_star_grid"]},
            {"p_data": last["p_data_grid"], "p_g (KDE of G's samples)": last["p_g_grid"]},
            fig_dir / "final-d-and-densities.png",
            xlabel="x",
            ylabel="D(x)",
            hline=0.5,
            title=f"after {steps[-1]:,} steps (seed {first}): D, the optimal D* for this G, and the densities",
        )
        series = {}
        for key, label in (("dev_half", "E|D(x) − ½| over p_data"), ("dev_opt", "E|D(x) − D*(x)| over p_data")):
            series[label] = [
                (float(step), *mean_std([per_seed[sd][i][key] for sd in s["seeds"]])) for i, step in enumerate(steps)
            ]
        series["W1(p_g, p_data) / σ"] = [
            (float(step), *mean_std([min(per_seed[sd][i]["w1_sigma"], 10.0) for sd in s["seeds"]]))
            for i, step in enumerate(steps)
        ]
        lines(
            series,
            "training step",
            "distance (dimensionless)",
            fig_dir / "equilibrium-over-training.png",
            logx=False,
            title=f"towards the equilibrium, mean ± std over {len(s['seeds'])} seed(s)",
        )

        rows = []
        for i, step in enumerate(steps):
            at = [per_seed[sd][i] for sd in s["seeds"]]
            rows.append(
                [
                    step,
                    pm([m["dev_half"] for m in at], 3),
                    pm([m["dev_opt"] for m in at], 3),
                    pm([m["w1_sigma"] for m in at], 3),
                    pm([m["g_mean"] for m in at], 3),
                    pm([m["g_std"] for m in at], 3),
                ]
            )
        final = [per_seed[sd][-1] for sd in s["seeds"]]
        d_rule = _threshold([m["dev_half"] for m in final], s["d_tolerance"])
        w_rule = _threshold([m["w1_sigma"] for m in final], s["w1_tolerance"])
        word = {1: "holds", -1: "does NOT hold", 0: "is undecided (within two standard errors of the tolerance)"}
        supported = supported_by([d_rule, w_rule])
        start = [per_seed[sd][0] for sd in s["seeds"]]
        verdict = (
            f"After {steps[-1]:,} steps ({len(s['seeds'])} seed(s)), over the data's mass E|D(x) − ½| = "
            f"{pm([m['dev_half'] for m in final], 3)} (at step {steps[0]:,}: {pm([m['dev_half'] for m in start], 3)}); "
            f"D ≈ ½ (below {s['d_tolerance']:g}) {word[d_rule]}. The generator's samples have mean "
            f"{pm([m['g_mean'] for m in final], 3)} and std {pm([m['g_std'] for m in final], 3)} against the data's "
            f"{mu:g} and {sigma:g}; W1(p_g, p_data)/σ = {pm([m['w1_sigma'] for m in final], 3)}, so p_g ≈ p_data "
            f"(below {s['w1_tolerance']:g}) {word[w_rule]}. D's distance from the best response to its generator "
            f"(Prop. 1's D*, with p_g by KDE): E|D − D*| = {pm([m['dev_opt'] for m in final], 3)}. "
            + (
                "Both hold: the run ends at the game's equilibrium, as Goodfellow et al.'s Prop. 1 and Thm. 1 predict."
                if supported
                else "The run does NOT end at the predicted equilibrium."
                if supported is False
                else "Not decided by these seeds."
            )
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=["step", "E|D − ½| (p_data)", "E|D − D*| (p_data)", "W1 / σ", "mean of G", "std of G"],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "data": {"mean": mu, "std": sigma},
                "snapshots": {
                    str(sd): [{k: v for k, v in m.items() if not isinstance(v, np.ndarray)} for m in per_seed[sd]]
                    for sd in s["seeds"]
                },
                "rules": {"d_half": d_rule, "w1": w_rule},
            },
            supported=supported,
        )
