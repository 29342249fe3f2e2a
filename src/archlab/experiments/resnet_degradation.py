"""The degradation problem on Fashion-MNIST (He et al. 2016, Fig. 1 and Fig. 6): plain and residual
networks of 20 and 56 layers, trained on the shipped ``fashion_mnist/default`` recipe with the model
swapped in; the final training error is measured in eval mode on the images trained on."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pydantic import Field

from archlab.engine import evaluate_run
from archlab.engine.rundir import read_metrics
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    pm,
    register_experiment,
)
from archlab.experiments.runs import QUICK_DATA, RunSpec, build_recipe, spec
from archlab.report.figures import learning_curves

DATA = "fashion_mnist"


class ResNetDegradationOptions(ExperimentOptions):
    subset: int | None = Field(None, ge=1)  # training images (default 256 quick, 5000 full)
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 12 quick, 600 full)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class ResNetDegradation(Experiment):
    name = "resnet-degradation"
    title = "The degradation problem: plain vs residual networks, 20 and 56 layers"
    claim = (
        "Stacking more layers on a plain network raises its training error (plain-56 trains worse than "
        "plain-20), while the same depth with identity shortcuts trains better (ResNet-56 below ResNet-20) "
        "— He et al. 2016, Fig. 1 and Fig. 6."
    )
    Options = ResNetDegradationOptions
    MODELS = {"plain20": "plain-20", "plain56": "plain-56", "resnet20": "ResNet-20", "resnet56": "ResNet-56"}

    def settings(self, options: ResNetDegradationOptions, quick: bool) -> dict[str, Any]:
        subset = options.subset if options.subset is not None else (256 if quick else 5000)
        steps = options.steps if options.steps is not None else (12 if quick else 600)
        overrides = {
            "data.train_subset": subset,
            "data.augment": [],  # the claim is about optimisation: training error on the images trained on
            "task.label_smoothing": 0.0,
            "optim.weight_decay": 1e-4,  # He et al. §4.2
            "budget.steps": steps,
            "log.every": max(1, steps // 40),
            "checkpoint.every": steps,
            **(QUICK_DATA if quick else {}),
            **options.overrides,
        }
        return {"subset": subset, "steps": steps, "seeds": list(options.seeds), "overrides": overrides}

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        return [
            spec(m, seed, build_recipe(f"{DATA}/default", m, s["overrides"]), f"{m}-s{seed}")
            for m in self.MODELS
            for seed in s["seeds"]
        ]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        summaries = trained.summaries
        train_err: dict[str, list[float]] = {}
        test_err: dict[str, list[float]] = {}
        curves: dict[str, list[list[dict[str, Any]]]] = {}
        for m, label in self.MODELS.items():
            for seed in s["seeds"]:
                run_dir = out_dir / f"{m}-s{seed}"
                final = evaluate_run(run_dir, split="train")  # eval mode, no augmentation, the trained subset
                train_err.setdefault(m, []).append(1 - final["accuracy"])
                test_err.setdefault(m, []).append(1 - summaries[m, seed]["test"]["accuracy"])
                recs = [{**r, "error": 1 - r["accuracy"]} for r in read_metrics(run_dir) if "accuracy" in r]
                curves.setdefault(label, []).append(recs)
        learning_curves(
            curves,
            "error",
            "train",
            out_dir / "figures" / "training_error.png",
            scale=100,
            ylabel="training error % (running mean, train mode)",
            title=f"Fashion-MNIST, {s['subset']:,} examples, {s['steps']:,} steps",
        )
        mean = {m: statistics.fmean(v) for m, v in train_err.items()}
        rows = [
            [
                label,
                summaries[m, s["seeds"][0]]["params"],
                pm(train_err[m]),
                pm(test_err[m]),
                round(statistics.fmean(summaries[m, seed]["wall_time_s"] for seed in s["seeds"]), 1),
            ]
            for m, label in self.MODELS.items()
        ]
        plain_degrades = mean["plain56"] > mean["plain20"]
        residual_improves = mean["resnet56"] <= mean["resnet20"]
        supported = plain_degrades and residual_improves
        verdict = (
            f"Final training error (eval mode, on the {s['subset']:,} training images): plain-20 "
            f"{100 * mean['plain20']:.2f}%, plain-56 {100 * mean['plain56']:.2f}%, ResNet-20 "
            f"{100 * mean['resnet20']:.2f}%, ResNet-56 {100 * mean['resnet56']:.2f}%. "
            + (
                "The deeper plain net trains worse (degradation), "
                if plain_degrades
                else "The deeper plain net does NOT train worse here, "
            )
            + (
                "and the deeper residual net trains at least as well: "
                if residual_improves
                else "and the deeper residual net does NOT train better: "
            )
            + ("the claim holds." if supported else "the claim is only partly reproduced at this budget.")
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=["model", "params", "train error %", "test error %", "train time s"],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k != "overrides"}, "overrides": s["overrides"]},
            supported=supported,
        )
