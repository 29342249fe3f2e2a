"""Is the VAE's latent space smooth and the plain AE's full of holes? (Kingma & Welling 2014 motivate
the VAE's prior term by it; the comparison is the usual one, e.g. Goodfellow et al., *Deep
Learning* §20.10.3.) An AE and a VAE of the same architecture and latent size are trained; their
decoders are scored by the in-project Fashion-MNIST classifier (:mod:`.feature_classifier`):

- prior samples: decode z ~ N(0, I) — the VAE's prior; for the AE, whose codes were never pushed
  towards it, also z ~ N(μ̂, Σ̂), a Gaussian fitted to its test codes (the fairest prior it has);
- interpolations: decode the linear path between the codes of two test images of different classes
  and score each point — class confidence (max softmax) and class entropy (nats) along the path;
- the feature-space Fréchet distance (:mod:`archlab.tasks.frechet`, on the classifier's penultimate
  features — not Inception-FID) between each set of decoded images and real test images, beside the
  reconstructions' own distance (what the decoder reaches on real codes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from archlab.experiments.ae_common import (
    MAX_PATH_POINTS,
    PIXELS,
    TEST_IMAGES,
    ae_run,
    fashion,
    reconstruct,
    trained_model,
)
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.feature_classifier import entropy, feature_classifier
from archlab.experiments.runs import RunSpec
from archlab.report.figures import lines
from archlab.report.latent import decode_all, encode_all, image_rows, path, pick_pairs

MODELS = {"AE": "ae_mlp", "VAE": "vae_mlp"}
# a tiny classifier for the quick version (the full one is the shipped recipe, trained once and cached)
QUICK_CLASSIFIER = {
    "budget.steps": 20,
    "schedule.warmup_steps": 0,
    "data.train_subset": 2000,
    "data.test_subset": 200,
    "eval.every": 20,
    "checkpoint.every": 20,
}


class LatentSmoothnessOptions(ExperimentOptions):
    latent_dim: int = Field(16, ge=1, le=PIXELS)
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (4 quick; 3000 full, the recipes’ budget)
    samples: int | None = Field(None, ge=2, le=TEST_IMAGES)  # prior samples and real images compared (200 / 2,000)
    pairs: int | None = Field(None, ge=1, le=TEST_IMAGES // 2)  # interpolation paths (4 / 100)
    points: int = Field(11, ge=3, le=MAX_PATH_POINTS)  # points per path, ends included
    classifier: dict[str, Any] | None = None  # overrides of the classifier recipe (default: tiny quick, shipped full)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for the AE/VAE runs


@register_experiment
class LatentSmoothness(Experiment):
    name = "latent-smoothness"
    title = "Latent smoothness: decoded prior samples and interpolations of an AE and a VAE"
    claim = (
        "The VAE's latent space is smooth: decoded prior samples and points along interpolations look like "
        "real images (confident classifier, small Fréchet distance); the plain AE's latent space has holes "
        "where the decoder produces no recognisable image (Kingma & Welling 2014)."
    )
    Options = LatentSmoothnessOptions

    def settings(self, o: LatentSmoothnessOptions, quick: bool) -> dict[str, Any]:
        return {
            "latent_dim": o.latent_dim,
            "steps": o.steps or (4 if quick else 3000),
            "samples": o.samples or (200 if quick else 2000),
            "pairs": o.pairs or (4 if quick else 100),
            "points": o.points,
            "classifier": o.classifier if o.classifier is not None else (QUICK_CLASSIFIER if quick else {}),
            "quick": quick,
            "overrides": dict(o.overrides),
        }

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        return [
            ae_run(label.lower(), model, s["latent_dim"], s["steps"], s["quick"], s["overrides"])
            for label, model in MODELS.items()
        ]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        clf = feature_classifier(s["classifier"], progress=self.progress)
        n = s["samples"]
        x_test, y_test = fashion("test", n, seed=2)
        real = clf.statistics(x_test)
        g = torch.Generator().manual_seed(0)
        pairs = pick_pairs(len(x_test), y_test, s["pairs"], g)
        runs = {r.key: r for r in self.runs(s)}
        results: dict[str, dict[str, float]] = {}
        curves: dict[str, np.ndarray] = {}
        shown: list[torch.Tensor] = []
        labels: list[str] = []

        def score(name: str, images: torch.Tensor) -> None:
            p = clf.probabilities(images)
            results[name] = {
                "frechet": clf.frechet(images, real),
                "confidence": float(p.max(-1).values.mean()),
                "entropy": float(entropy(p).mean()),
            }

        for label in MODELS:
            model = trained_model(out_dir, runs[label.lower()])
            d = model.latent_dim
            codes = encode_all(model, x_test)
            score(f"{label} reconstructions", reconstruct(model, x_test))
            prior = decode_all(model, torch.randn(n, d, generator=g))
            score(f"{label} z ~ N(0, I)", prior)
            shown.append(prior[:12])
            labels.append(f"{label} N(0,I)")
            if label == "AE":
                mu, cov = codes.double().mean(0), torch.cov(codes.double().T).reshape(d, d)
                cov = cov + 1e-6 * torch.eye(d, dtype=torch.float64)
                fitted = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov)
                torch.manual_seed(1)
                fitted_images = decode_all(model, fitted.sample((n,)).float())
                score("AE z ~ N(μ̂, Σ̂) of its codes", fitted_images)
                shown.append(fitted_images[:12])
                labels.append("AE N(μ̂,Σ̂)")
            # interpolations: entropy and confidence at each point of each path
            frames = torch.cat([decode_all(model, path(codes[i], codes[j], s["points"], "linear")) for i, j in pairs])
            p = clf.probabilities(frames).view(len(pairs), s["points"], -1)
            ent = entropy(p.flatten(0, 1)).view(len(pairs), s["points"]).numpy()
            conf = p.max(-1).values.numpy()
            curves[label] = ent
            inner = slice(1, s["points"] - 1)
            results[f"{label} interpolation"] = {
                "frechet": clf.frechet(frames, real) if len(frames) > 1 else float("nan"),
                "confidence": float(conf[:, inner].mean()),
                "entropy": float(ent[:, inner].mean()),
                "min_confidence": float(conf.min(1).mean()),
            }
            i, j = pairs[0]
            shown.append(torch.cat([x_test[i : i + 1], frames[: s["points"]], x_test[j : j + 1]]))
            labels.append(f"{label} path")

        fig_dir = out_dir / "figures"
        image_rows(
            shown, fig_dir / "samples-and-paths.png", row_labels=labels, title="decoded prior samples and a linear path"
        )
        t = np.linspace(0, 1, s["points"])
        lines(
            {
                k: [(float(t[i]), float(v[:, i].mean()), float(v[:, i].std())) for i in range(len(t))]
                for k, v in curves.items()
            },
            "position along the path (0 and 1: reconstructions of the two test images)",
            "class entropy (nats)",
            fig_dir / "entropy-along-paths.png",
            logx=False,
            title=f"classifier entropy along {len(pairs)} linear interpolations",
        )
        rows = [
            [
                name,
                f"{r['frechet']:.2f}",
                f"{100 * r['confidence']:.1f}",
                f"{r['entropy']:.3f}",
                f"{100 * r['min_confidence']:.1f}" if "min_confidence" in r else "—",
            ]
            for name, r in results.items()
        ]
        vae, ae, fitted = results["VAE z ~ N(0, I)"], results["AE z ~ N(0, I)"], results["AE z ~ N(μ̂, Σ̂) of its codes"]
        supported = vae["frechet"] < ae["frechet"] and vae["frechet"] < fitted["frechet"]
        verdict = (
            f"Fréchet distance to real test images (classifier features, lower is closer): VAE prior samples "
            f"{vae['frechet']:.2f}, AE decoding N(0, I) {ae['frechet']:.2f}, "
            f"AE decoding a Gaussian fitted to its codes "
            f"{fitted['frechet']:.2f}; classifier confidence {100 * vae['confidence']:.1f}% vs "
            f"{100 * ae['confidence']:.1f}% / {100 * fitted['confidence']:.1f}%. Along interpolations the mean class "
            f"entropy is {results['VAE interpolation']['entropy']:.3f} nats (VAE) vs "
            f"{results['AE interpolation']['entropy']:.3f} (AE). "
            + (
                "The VAE's samples are the closest to real images: its latent space is the smoother one — "
                "the claim holds."
                if supported
                else (
                    "The VAE's prior samples are closer to real images than the AE's decoded from N(0, I), but NOT "
                    "closer than the AE's decoded from a Gaussian fitted to its codes: where that Gaussian puts its "
                    "mass the AE's latent space decodes to images at least as real — the claim does not hold here."
                    if vae["frechet"] < ae["frechet"]
                    else "The VAE's prior samples are NOT closer to real images than the AE's, even the AE's decoded "
                    "from N(0, I) — the claim does not hold here."
                )
            )
            + f" (Classifier: {clf.run_dir.name}, test accuracy {100 * clf.test_accuracy:.1f}%.)"
        )
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "decoded images",
                "Fréchet distance",
                "confidence %",
                "entropy (nats)",
                "min confidence on path %",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "results": results,
                "classifier": {"run_dir": str(clf.run_dir), "test_accuracy": clf.test_accuracy},
            },
            supported=supported,
        )
