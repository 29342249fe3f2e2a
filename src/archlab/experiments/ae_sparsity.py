"""Sparse codes: how many code units a sparse autoencoder uses per image, against an autoencoder of
the same architecture without the penalty, at equal reconstruction error (Ng, *Sparse
autoencoder*, CS294A notes 2011; Lee et al. 2006 for the L1 penalty).

Both are ``sparse_ae`` with sigmoid code units (so "active" means the same thing for both): the plain
AE is λ = 0, the sparse ones use the KL penalty KL(ρ ‖ ρ̂_j) at several weights λ. A unit is active on
an image when its activation exceeds ``threshold`` (default 0.1, twice Ng's target ρ = 0.05); the
measure is the mean fraction of active units per test image, beside the mean activation ρ̂ and the
units never active on any test image ("dead"). "At equal reconstruction error": the sparse model
compared is the one whose test MSE is closest to the plain AE's, and the verdict says how far apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from archlab.experiments.ae_common import PIXELS, TEST_IMAGES, ae_run, fashion, mse, reconstruct, trained_model
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.runs import RunSpec
from archlab.report.figures import scatter
from archlab.report.latent import encode_all, image_rows


class SparsityOptions(ExperimentOptions):
    latent_dim: int = Field(64, ge=1, le=PIXELS)
    weights: list[float] = Field(default_factory=lambda: [0.3, 1.0, 3.0], min_length=1)  # λ of the sparse AEs (> 0)
    target: float = Field(0.05, gt=0.0, lt=1.0)  # ρ
    threshold: float = Field(0.1, gt=0.0, lt=1.0)  # a unit is active above this activation
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (4 quick; 3000 full, the recipes’ budget)
    n_eval: int | None = Field(None, ge=2, le=TEST_IMAGES)  # test images measured (200 quick, all 10,000 full)
    overrides: dict[str, Any] = Field(default_factory=dict)


@register_experiment
class Sparsity(Experiment):
    name = "sparsity"
    title = "Sparse autoencoder vs autoencoder: active code units at equal reconstruction error"
    claim = (
        "A sparsity penalty (KL(ρ ‖ ρ̂_j), Ng 2011) makes each image use a small fraction of the code units "
        "at little cost in reconstruction: at equal reconstruction error the sparse AE has far fewer active "
        "units than an AE of the same architecture without the penalty."
    )
    Options = SparsityOptions

    def settings(self, o: SparsityOptions, quick: bool) -> dict[str, Any]:
        if any(w <= 0 for w in o.weights):
            from archlab.utils.errors import ConfigError

            raise ConfigError(f"experiment {self.name}: weights (λ of the sparse AEs) must be > 0, got {o.weights}")
        return {
            "latent_dim": o.latent_dim,
            "weights": [0.0, *sorted(o.weights)],
            "target": o.target,
            "threshold": o.threshold,
            "steps": o.steps or (4 if quick else 3000),
            "n_eval": o.n_eval or (200 if quick else 10000),
            "quick": quick,
            "overrides": dict(o.overrides),
        }

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        fields = {"penalty": "kl", "code_activation": "sigmoid", "sparsity_target": s["target"]}
        return [
            ae_run(
                f"lambda{w:g}",
                "sparse_ae",
                s["latent_dim"],
                s["steps"],
                s["quick"],
                s["overrides"],
                sparsity_weight=w,
                **fields,
            )
            for w in s["weights"]
        ]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        x, _ = fashion("test", s["n_eval"], seed=2)
        results: dict[float, dict[str, float]] = {}
        codes_shown: list[torch.Tensor] = []
        for w, run in zip(s["weights"], self.runs(s), strict=True):
            model = trained_model(out_dir, run)
            z = encode_all(model, x)  # (N, K) in (0, 1)
            active = z > s["threshold"]
            results[w] = {
                "mse": mse(reconstruct(model, x), x),
                "active": float(active.float().mean()),  # mean over images of the active fraction
                "mean_activation": float(z.mean()),
                "dead": float((~active.any(0)).float().mean()),
            }
            codes_shown.append(z[:16][None, None])  # (1, 1, 16, K): one picture, a code per row
        ae = results[0.0]
        sparse = {w: r for w, r in results.items() if w > 0}
        match = min(sparse, key=lambda w: abs(sparse[w]["mse"] - ae["mse"]))
        m = sparse[match]
        rel = (m["mse"] - ae["mse"]) / ae["mse"]
        # "equal reconstruction error": the sparse AE may not be worse than the AE by more than 25%
        # (one that reconstructs better with fewer units supports the claim all the more)
        supported = m["active"] < 0.5 * ae["active"] and rel <= 0.25
        rows = [
            [
                "AE (λ = 0)" if w == 0 else f"sparse AE (λ = {w:g})",
                f"{r['mse']:.4f}",
                f"{100 * r['active']:.1f}",
                f"{r['mean_activation']:.3f}",
                f"{100 * r['dead']:.1f}",
            ]
            for w, r in results.items()
        ]
        fig_dir = out_dir / "figures"
        scatter(
            [
                {"label": "AE" if w == 0 else f"λ={w:g}", "x": r["mse"], "y": 100 * r["active"]}
                for w, r in results.items()
            ],
            "test reconstruction MSE per pixel",
            f"active code units % (activation > {s['threshold']:g})",
            fig_dir / "active-units-vs-error.png",
            logx=False,
            title=f"{s['latent_dim']} sigmoid code units, target ρ = {s['target']:g}",
        )
        image_rows(
            codes_shown,
            fig_dir / "codes.png",
            row_labels=["AE" if w == 0 else f"λ={w:g}" for w in s["weights"]],
            title="codes of 16 test images (rows: images, columns: units; white = 1)",
        )
        verdict = (
            f"The AE without penalty uses {100 * ae['active']:.1f}% of its {s['latent_dim']} units per image "
            f"(test MSE {ae['mse']:.4f}); the sparse AE closest in reconstruction error (λ = {match:g}, MSE "
            f"{m['mse']:.4f}, {100 * rel:+.1f}%) uses {100 * m['active']:.1f}% (mean activation "
            f"{m['mean_activation']:.3f} against the target ρ = {s['target']:g}). "
            + (
                "At a reconstruction error no more than 25% above the AE's the sparse code uses less than half as "
                "many units — the claim holds."
                if supported
                else "The sparse AE does NOT use less than half the units at a reconstruction error at most 25% above "
                "the AE's — the claim does not hold at this budget."
            )
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=["model", "test MSE/pixel", "active units %", "mean activation", "dead units %"],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "results": {f"{w:g}": r for w, r in results.items()},
                "matched_weight": match,
            },
            supported=supported,
        )
