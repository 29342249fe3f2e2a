"""Data hunger: a Vision Transformer against a CNN and an MLP of the same size as the training set grows.

Dosovitskiy et al. 2021 (arXiv:2010.11929, §4.2–4.3, Fig. 3–4): ViT lacks the CNN's inductive biases
(locality, two-dimensional neighbourhood structure, translation equivariance), so it does worse than
a ResNet of similar size when trained on little data, and the gap closes — then reverses — as the
pre-training set grows. Here the same three models as ``cnn-vs-mlp`` (61.7 k / 62.0 k / 61.9 k
parameters) on Fashion-MNIST subsets of growing size, same recipe and step budget for every run; the
verdict reads the CNN's lead over the ViT (and the ViT's over the MLP) at each size.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pydantic import Field

from archlab.experiments.base import ExperimentOptions, ExperimentResult, Trained, figure_paths, register_experiment
from archlab.experiments.cnn_vs_mlp import CNN_VS_MLP, CnnVsMlp, transformer_gap_verdict
from archlab.report.figures import lines


class DataHungerOptions(ExperimentOptions):
    sizes: list[int] | None = Field(None, min_length=2)  # training-set sizes (default [200, 400] quick)
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 10 quick, 1500 full)
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick, [0, 1] full
    # by position: the CNN, the MLP, the transformer (labels are free)
    models: dict[str, dict[str, Any]] = Field(default_factory=lambda: dict(CNN_VS_MLP), min_length=3, max_length=3)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class DataHunger(CnnVsMlp):
    name = "data-hunger"
    title = "Data hunger: ViT vs CNN vs MLP against training-set size on Fashion-MNIST"
    claim = (
        "With little data the CNN's inductive bias (locality, weight sharing) wins; a Vision Transformer of "
        "the same size, which has to learn those relations from the data, closes the gap as data grows "
        "(Dosovitskiy et al. 2021, §4.2–4.3)."
    )
    Options = DataHungerOptions

    def settings(self, options: DataHungerOptions, quick: bool) -> dict[str, Any]:
        s = super().settings(options, quick)  # steps, seeds, models and the shared recipe overrides
        if options.sizes is None:
            s["sizes"] = [200, 400] if quick else [500, 2000, 10000, 60000]
        return s

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        base = super().analyse(out_dir, s, trained)  # the table and the accuracy-vs-data figure
        cnn, mlp, vit = list(s["models"])
        sizes, seeds = s["sizes"], s["seeds"]
        acc = {
            (label, n): [trained.summaries[f"{i}:{n}", seed]["test"]["accuracy"] for seed in seeds]
            for i, label in enumerate(s["models"])
            for n in sizes
        }
        mean = {k: statistics.fmean(v) for k, v in acc.items()}
        lines(
            {
                f"{cnn} − {vit}": [(n, 100 * (mean[cnn, n] - mean[vit, n]), 0.0) for n in sizes],
                f"{mlp} − {vit}": [(n, 100 * (mean[mlp, n] - mean[vit, n]), 0.0) for n in sizes],
            },
            "training examples",
            "accuracy gap, points (mean of seeds)",
            out_dir / "figures" / "gap_vs_data.png",
            title=f"The transformer's deficit, {s['steps']:,} steps each",
        )
        text, closes = transformer_gap_verdict(acc, sizes, cnn, vit)
        over_mlp = [n for n in sizes if mean[vit, n] > mean[mlp, n]]
        verdict = (
            "Test accuracy (mean of "
            + f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}): "
            + "; ".join(
                f"{n:,} examples: {cnn} {100 * mean[cnn, n]:.2f}%, {vit} {100 * mean[vit, n]:.2f}%, "
                f"{mlp} {100 * mean[mlp, n]:.2f}%"
                for n in sizes
            )
            + ". "
            + text
            + " "
            + (
                f"The {vit} beats the {mlp} (no spatial prior either) at "
                + ("every size" if len(over_mlp) == len(sizes) else ", ".join(f"{n:,}" for n in over_mlp) + " examples")
                + "."
                if over_mlp
                else f"The {vit} does not beat the {mlp} at any size measured."
            )
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=base.columns,
            rows=base.rows,
            figures=figure_paths(out_dir),
            extra=base.extra,
            supported=closes,
        )
