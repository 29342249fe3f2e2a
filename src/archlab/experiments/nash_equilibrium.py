"""The GAN game at its equilibrium: on a 1-D Gaussian, does the discriminator's output go to ½ and the
generator's density to the data's? (Goodfellow et al., *Generative Adversarial Nets*, NeurIPS 2014,
Prop. 1 and Thm. 1, Fig. 1.)

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Prop. 1); the game's
global optimum is p_g = p_data, where D*(x) = ½ everywhere (Thm. 1). The experiment trains
``gaussian1d/gan_mlp`` (N(4, 0.5²), the non-saturating loss, one D step per G step) for several seeds
and measures:

* D over training: the mean of D(x) = σ(s(x)) over the test points and over as many fakes, at every
  evaluation (the task's ``d_real``/``d_fake``);
* at the end: E_data |D(x) − ½| over the test points; D(x) on a grid of μ ± 4σ;
* the generator's density against the data's: the total variation distance ½ Σ_b |p_g(b) − p_data(b)|
  over 40 equal bins of μ ± 4σ (p_g from 20,000 samples, p_data from the Gaussian's CDF; mass outside
  the range counted as one more bin), and the samples' mean and standard deviation.

The verdict calls the claim supported when, averaged over seeds, E_data |D − ½| < 0.05 and the total
variation < 0.1 (thresholds ours: a histogram of 20,000 samples of the data itself sits at TV ≈ 0.02).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

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
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec

RECIPE = "gaussian1d/gan_mlp"
BINS, SAMPLES = 40, 20_000
MAX_D_GAP, MAX_TV = 0.05, 0.1  # the verdict's thresholds (module docstring)


class NashOptions(ExperimentOptions):
    seeds: int | None = Field(None, ge=1, le=20)  # training runs (1 quick, 3 full)
    steps: int | None = Field(None, ge=1, le=1_000_000)  # optimiser steps per run (40 quick; 3000 full, the recipe's)
    evals: int = Field(10, ge=1, le=100)  # evaluations over training (D over training)
    overrides: dict[str, Any] = Field(default_factory=dict)


def total_variation(samples: torch.Tensor, mean: float, std: float, bins: int = BINS) -> float:
    """½ Σ_b |p̂(b) − p(b)| of samples (N,) against N(mean, std²) over ``bins`` equal bins of mean ± 4·std,
    the mass outside that range one more bin."""
    edges = torch.linspace(mean - 4 * std, mean + 4 * std, bins + 1, dtype=torch.float64)
    x = samples.double().flatten()
    counts = torch.histc(x, bins=bins, min=float(edges[0]), max=float(edges[-1]))
    inside = ((x >= edges[0]) & (x <= edges[-1])).sum()
    p_hat = torch.cat([counts, (len(x) - inside).reshape(1).double()]) / len(x)
    cdf = 0.5 * (1 + torch.erf((edges - mean) / (std * math.sqrt(2))))
    p = torch.cat([cdf.diff(), (1 - (cdf[-1] - cdf[0])).reshape(1)])
    return float(0.5 * (p_hat - p).abs().sum())


@register_experiment
class NashEquilibrium(Experiment):
    name = "nash-equilibrium"
    title = "The GAN game on a 1-D Gaussian: D(x) → ½ where p_g = p_data"
    claim = (
        "At the equilibrium of the GAN game the generator's density equals the data's and the discriminator "
        "outputs ½ everywhere (Goodfellow et al. 2014, Prop. 1 and Thm. 1): trained on a 1-D Gaussian, D(x) "
        "goes to ½ on the data and p_g to p_data."
    )
    Options = NashOptions

    def settings(self, o: NashOptions, quick: bool) -> dict[str, Any]:
        steps = o.steps or (40 if quick else 3000)
        return {
            "seeds": o.seeds or (1 if quick else 3),
            "steps": steps,
            "eval_every": max(1, steps // o.evals),
            "overrides": dict(o.overrides),
        }

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        over = {**budget(s["steps"]), "eval.every": s["eval_every"], **s["overrides"]}
        recipe = build_recipe(RECIPE, None, over)
        return [spec("gan", seed, recipe, f"gan-s{seed}") for seed in range(s["seeds"])]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        from archlab.data import load_dataset
        from archlab.data.mixtures import mixture_of
        from archlab.engine import load_run
        from archlab.report.figures import lines

        rows, results, curves = [], [], {}
        density_fig: dict[str, Any] = {}
        for run in self.runs(s):
            loaded = load_run(out_dir / run.name, checkpoint="last")
            opts = loaded.recipe.data.options
            mix = mixture_of("gaussian1d", opts)
            mu, sd = float(mix.means[0, 0]), mix.std
            model = loaded.model.float().cpu().eval()
            test = load_dataset("gaussian1d", "test", options=opts).x.float()
            with torch.no_grad():
                d_test = torch.sigmoid(model.discriminate(test)).flatten()
                fakes = model.sample(SAMPLES, generator=torch.Generator().manual_seed(run.seed)).flatten()
                grid = torch.linspace(mu - 4 * sd, mu + 4 * sd, 201)
                d_grid = torch.sigmoid(model.discriminate(grid[:, None])).flatten()
            evals = [
                r
                for r in map(json.loads, (out_dir / run.name / "metrics.jsonl").read_text().splitlines())
                if r.get("split") == "test" and "d_real" in r
            ]
            curves[f"D(real), seed {run.seed}"] = [(r["step"], r["d_real"], 0.0) for r in evals]
            curves[f"D(fake), seed {run.seed}"] = [(r["step"], r["d_fake"], 0.0) for r in evals]
            res = {
                "seed": run.seed,
                "d_gap": float((d_test - 0.5).abs().mean()),
                "d_real": float(d_test.mean()),
                "tv": total_variation(fakes, mu, sd),
                "mean": float(fakes.mean()),
                "std": float(fakes.std()),
            }
            results.append(res)
            rows.append(
                [
                    run.seed,
                    f"{res['d_real']:.3f}",
                    f"{res['d_gap']:.3f}",
                    f"{res['tv']:.3f}",
                    f"{res['mean']:.3f} ({mu:g})",
                    f"{res['std']:.3f} ({sd:g})",
                ]
            )
            if not density_fig:
                density_fig = {"grid": grid, "d": d_grid, "fakes": fakes, "mu": mu, "sd": sd}
        fig_dir = out_dir / "figures"
        curves["½ (the equilibrium)"] = [(p[0], 0.5, 0.0) for p in next(iter(curves.values()))]
        lines(curves, "step", "mean D(x) on the test data / on fakes", fig_dir / "discriminator-over-training.png",
              logx=False, title="D over training (gaussian1d/gan_mlp)")  # fmt: skip
        _density_figure(density_fig, fig_dir / "final-densities.png")
        gap = statistics.fmean(r["d_gap"] for r in results)
        tv = statistics.fmean(r["tv"] for r in results)
        supported = gap < MAX_D_GAP and tv < MAX_TV
        verdict = (
            f"After {s['steps']} steps ({len(results)} seed(s)), E_data |D(x) − ½| = {gap:.3f} and the total variation "
            f"between p_g and p_data is {tv:.3f} (means over seeds; per seed in the table). "
            + (
                f"Both are below the thresholds ({MAX_D_GAP}, {MAX_TV}): the game sits near its equilibrium, "
                "D ≈ ½ where p_g ≈ p_data — the claim holds."
                if supported
                else f"At least one is above its threshold ({MAX_D_GAP} for D, {MAX_TV} for TV): the game has NOT "
                "reached the equilibrium at this budget — the claim is not shown."
            )
            + " (D ≈ ½ alone proves nothing: a discriminator that has not learnt is ½ too; the density is the test.)"
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "seed",
                "mean D on test data",
                "E_data |D − ½|",
                "TV(p_g, p_data)",
                "G mean (data)",
                "G std (data)",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k != "overrides"}, "results": results},
            supported=supported,
        )


def _density_figure(f: dict[str, Any], path: Path) -> None:
    """The data's density, a histogram of G's samples and D(x) on a twin axis, over μ ± 4σ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mu, sd, grid = f["mu"], f["sd"], f["grid"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    pdf = torch.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    ax.plot(grid, pdf, color="black", lw=1.5, label="p_data")
    ax.hist(f["fakes"].numpy(), bins=BINS, range=(mu - 4 * sd, mu + 4 * sd), density=True, alpha=0.4, label="p_g")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    twin = ax.twinx()
    twin.plot(grid, f["d"], color="tab:red", lw=1.5, label="D(x)")
    twin.axhline(0.5, color="tab:red", ls=":", lw=1)
    twin.set_ylim(0, 1)
    twin.set_ylabel("D(x)", color="tab:red")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("final generator density and discriminator (first seed)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
