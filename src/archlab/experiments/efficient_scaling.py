"""Accuracy against multiply-accumulates on Fashion-MNIST (Howard et al. 2017, Sandler et al. 2018,
Tan & Le 2019): MobileNet V2 scaled by width, EfficientNet by φ and CIFAR ResNets by depth, trained
on the shipped ``fashion_mnist/default`` recipe with the model swapped in; the Pareto frontier."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pydantic import Field

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
from archlab.report.figures import lines

DATA = "fashion_mnist"


def _efficient_candidates() -> list[tuple[str, str, dict[str, Any]]]:
    out = [
        ("MobileNet V2", f"α={w}", {"name": "mobilenet_v2", "small_input": True, "width_mult": w})
        for w in (0.35, 0.5, 0.75, 1.0)
    ]
    out += [
        ("EfficientNet", f"φ={phi}", {"name": "efficientnet_b0", "small_input": True, "phi": phi})
        for phi in (0.0, 1.0, 2.0)
    ]
    out += [("ResNet (CIFAR)", depth, {"name": f"resnet{depth}"}) for depth in ("20", "56")]
    return out


class EfficientScalingOptions(ExperimentOptions):
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 6 quick, 500 full)
    subset: int | None = Field(None, ge=1)  # training images (default 256 quick, all full)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class EfficientScaling(Experiment):
    name = "efficient-scaling"
    title = "Accuracy vs multiply-accumulates: MobileNet width, EfficientNet φ, ResNet depth"
    claim = (
        "Depthwise-separable, inverted-residual networks scaled by a width multiplier (MobileNet) or by a "
        "compound coefficient φ (EfficientNet) reach a given accuracy with fewer multiply-accumulates than "
        "ResNets scaled by depth — Howard et al. 2017, Sandler et al. 2018, Tan & Le 2019."
    )
    Options = EfficientScalingOptions

    def settings(self, options: EfficientScalingOptions, quick: bool) -> dict[str, Any]:
        steps = options.steps if options.steps is not None else (6 if quick else 500)
        subset = options.subset if options.subset is not None else (256 if quick else None)
        overrides = {
            "budget.steps": steps,
            # one optimiser for every network: with SGD (lr 0.1) EfficientNet φ=1 stayed at 19 % after
            # 300 steps while φ=0 reached 76 % (measured); AdamW trains all three families
            "optim.name": "adamw",
            "optim.lr": 2e-3,
            "optim.weight_decay": 0.05,
            "schedule.warmup_steps": max(1, steps // 10),
            "precision": "fp32",  # bf16 slows depthwise convolutions down on CPU; one precision for all
            "log.every": max(1, steps // 30),
            "checkpoint.every": steps,
            **({"data.train_subset": int(subset)} if subset else {}),
            **(QUICK_DATA if quick else {}),
            **options.overrides,
        }
        return {"steps": steps, "subset": subset, "seeds": list(options.seeds), "overrides": overrides}

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        out = []
        for i, (_, tag, model) in enumerate(_efficient_candidates()):
            recipe = build_recipe(f"{DATA}/default", model, s["overrides"])
            slug = tag.replace("=", "").replace("α", "w").replace("φ", "phi")
            out += [spec(str(i), seed, recipe, f"{model['name']}-{slug}-s{seed}") for seed in s["seeds"]]
        return out

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        summaries = trained.summaries
        cands = _efficient_candidates()
        points = []
        for i, (family, tag, _) in enumerate(cands):
            ss = [summaries[str(i), seed] for seed in s["seeds"]]
            accs = [x["test"]["accuracy"] for x in ss]
            points.append(
                {
                    "family": family,
                    "tag": tag,
                    "params": ss[0]["params"],
                    "macs": ss[0]["flops_per_example"] // 2,
                    "acc": statistics.fmean(accs),
                    "accs": accs,
                    "time": statistics.fmean(x["wall_time_s"] for x in ss),
                }
            )
        frontier = [
            p
            for p in points
            if not any(
                q is not p
                and q["acc"] >= p["acc"]
                and q["macs"] <= p["macs"]
                and (q["acc"] > p["acc"] or q["macs"] < p["macs"])
                for q in points
            )
        ]
        series: dict[str, list[tuple[float, float, float]]] = {}
        notes: dict[str, list[str]] = {}
        for p in points:
            series.setdefault(p["family"], []).append((p["macs"], 100 * p["acc"], 0.0))
            notes.setdefault(p["family"], []).append(p["tag"])
        lines(
            series,
            "multiply-accumulates per 28×28 image",
            "test accuracy %",
            out_dir / "figures" / "accuracy_vs_macs.png",
            annotate=notes,
            title=f"Fashion-MNIST, small-input stems, {s['steps']:,} steps each",
        )
        rows = [
            [
                p["family"],
                p["tag"],
                p["params"],
                p["macs"],
                pm(p["accs"]),
                round(p["time"], 1),
                "yes" if p in frontier else "",
            ]
            for p in points
        ]
        resnets = [p for p in points if p["family"].startswith("ResNet")]
        dominated = [
            r
            for r in resnets
            if any(q["family"] != r["family"] and q["acc"] >= r["acc"] and q["macs"] <= r["macs"] for q in points)
        ]
        supported = len(dominated) == len(resnets)
        verdict = (
            "Pareto frontier (no other model is at least as accurate with fewer MACs): "
            + ", ".join(
                f"{p['family']} {p['tag']} ({p['macs'] / 1e6:.1f}M MACs, {100 * p['acc']:.2f}%)"
                for p in sorted(frontier, key=lambda p: p["macs"])
            )
            + f". {len(dominated)} of {len(resnets)} ResNets are matched or beaten by a MobileNet/EfficientNet "
            + "with no more MACs: "
            + ("the claim holds." if supported else "the claim is NOT fully reproduced at this budget.")
            + " MACs are not CPU time: the train-time column shows what depthwise convolutions cost here."
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=["family", "variant", "params", "MACs", "test accuracy %", "train time s", "on frontier"],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k != "overrides"}, "overrides": s["overrides"]},
            supported=supported,
        )
