"""GANs vs VAEs vs diffusion on Fashion-MNIST: "GANs are sharp but unstable, VAEs smooth but blurry,
diffusion stable" — each clause measured.

A convolutional VAE (``fashion_mnist/vae_conv``, Kingma & Welling 2014), DCGAN (Radford et al. 2016),
WGAN-GP (Gulrajani et al. 2017) and a DDPM (Ho et al. 2020) are trained from several seeds with their
shipped recipes. Each trained model draws ``samples`` images (the VAE: decoded prior samples, the
likelihood's mean; the DDPM: DDIM with ``diffusion_steps`` steps, η = 0, Song et al. 2021 — the
CPU's compromise, stated in every table), scored against as many real test images by:

- sharpness: the mean variance of the Laplacian per image (Pech-Pacheco et al. 2000), real images as
  the reference;
- on the in-project classifier's penultimate features (:mod:`.feature_classifier` — **not**
  Inception features): the Fréchet distance ("feature-FID"), KID, precision / recall / density /
  coverage (Naeem et al. 2020, k = 5) and diversity, the mean pairwise feature distance, beside the
  real images' own;
- the seed-to-seed spread of each of these.

The scores are :func:`archlab.experiments.sample_quality.score_samples`'s, the numbers
``archlab eval --samples N`` prints.

Verdict: four clauses, each decided across seeds by :mod:`.gen_common`'s rules —
(1) each GAN's sharpness is above the VAE's by more than two standard errors; (2) the VAE's sharpness
is below the real images'; (3) each GAN's feature-FID varies more across seeds than the VAE's (the
one-sided F-test at 5 %); (4) the DDPM's feature-FID varies less across seeds than each GAN's. A clause
holds, fails (the opposite, as decidedly) or is undecided; the claim holds when all four hold and
fails when any fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from archlab.experiments.ae_common import TEST_IMAGES, fashion
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.gen_common import (
    QUICK_CLASSIFIER,
    all_hold,
    draw,
    mean_std,
    pm,
    seed_list,
    separated,
    supported_by,
    trained_model,
    variance_ratio,
)
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.report.figures import bar
from archlab.report.latent import image_rows

Model = Literal["vae", "dcgan", "wgan_gp", "ddpm"]
MODELS: dict[str, tuple[str, str]] = {  # key → (label, shipped recipe)
    "vae": ("VAE", "fashion_mnist/vae_conv"),
    "dcgan": ("DCGAN", "fashion_mnist/dcgan"),
    "wgan_gp": ("WGAN-GP", "fashion_mnist/wgan_gp"),
    "ddpm": ("DDPM", "fashion_mnist/ddpm"),
}
GANS = ("dcgan", "wgan_gp")
# the quick version's tiny networks (the plumbing is checked, not the claim)
QUICK_MODELS: dict[str, dict[str, Any]] = {
    "ddpm": {"model.channels": 8, "model.norm_groups": 4, "model.timesteps": 20},
}
METRICS = ("sharpness", "fid", "kid", "precision", "recall", "density", "coverage", "diversity")


class GanVsVaeOptions(ExperimentOptions):
    models: list[Model] = Field(default_factory=lambda: list(MODELS), min_length=1)
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick, [0, 1, 2] full
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 1 quick, each recipe's own full)
    samples: int | None = Field(None, ge=8, le=TEST_IMAGES // 2)  # images scored per model (32 quick, 2,000 full)
    diffusion_steps: int | None = Field(None, ge=1)  # DDIM steps of the DDPM's samples (3 quick, 100 full)
    classifier: dict[str, Any] | None = None  # overrides of the feature classifier's recipe
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class GanVsVae(Experiment):
    name = "gan-vs-vae"
    title = (
        "GANs vs VAE vs diffusion on Fashion-MNIST: sharpness, feature-FID, precision/recall, diversity, seed spread"
    )
    claim = (
        "GANs give sharp samples but train unstably; VAEs train smoothly but give blurry samples; diffusion models "
        "are stable (the textbook comparison of generative model families)."
    )
    Options = GanVsVaeOptions

    def settings(self, o: GanVsVaeOptions, quick: bool) -> dict[str, Any]:
        return {
            "models": [m for m in MODELS if m in o.models],
            "seeds": seed_list(o.seeds, quick),
            "steps": o.steps if o.steps is not None else (1 if quick else None),
            "samples": o.samples or (32 if quick else 2000),
            "diffusion_steps": o.diffusion_steps or (3 if quick else 100),
            "classifier": o.classifier if o.classifier is not None else (QUICK_CLASSIFIER if quick else {}),
            "quick": quick,
            "overrides": dict(o.overrides),
        }

    def _recipe(self, s: dict[str, Any], key: str) -> Any:
        over: dict[str, Any] = {**(budget(s["steps"]) if s["steps"] is not None else {})}
        if key == "vae":
            over["task.options.iwae_samples"] = 0  # the IWAE bound at evaluation would only cost time here
        if s["quick"]:
            over.update({"data.test_subset": 32, **QUICK_MODELS.get(key, {})})
        return build_recipe(MODELS[key][1], None, {**over, **s["overrides"]})

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        return [spec(key, seed, self._recipe(s, key), f"{key}-s{seed}") for key in s["models"] for seed in s["seeds"]]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        from archlab.experiments.feature_classifier import feature_classifier
        from archlab.experiments.sample_quality import score_samples

        n = s["samples"]
        clf = feature_classifier(s["classifier"], progress=self.progress)
        real_x = fashion("test", 2 * n, seed=3)[0]
        real_a, real_b = real_x[:n], real_x[n:]

        def score(x: torch.Tensor) -> dict[str, float]:  # what `archlab eval --samples N` prints, too
            return score_samples(x, real_a, classifier=clf)

        reference = {"real (another set of test images)": score(real_b)}
        runs = {(r.key, r.seed): r for r in self.runs(s)}
        results: dict[str, list[dict[str, float]]] = {}
        shown, labels = [real_b[:12]], ["real"]
        for key in s["models"]:
            results[key] = []
            for seed in s["seeds"]:
                model = trained_model(out_dir, runs[key, seed])
                opts = {"steps": s["diffusion_steps"], "sampler": "ddim", "eta": 0.0} if key == "ddpm" else {}
                label = f"{MODELS[key][0]} seed {seed}"
                x = draw(model, n, 30_000 + seed, batch_size=500, progress=self.progress, label=label, **opts)
                x = x.clamp(0, 1)
                results[key].append({"seed": seed, **score(x)})
                if seed == s["seeds"][0]:
                    shown.append(x[:12])
                    labels.append(MODELS[key][0])

        fig_dir = out_dir / "figures"
        image_rows(shown, fig_dir / "samples.png", row_labels=labels, title=f"samples of seed {s['seeds'][0]}")
        real_sharp = reference["real (another set of test images)"]["sharpness"]
        names = [MODELS[k][0] for k in s["models"]]
        bar(
            [*names, "real"],
            [mean_std([r["sharpness"] for r in results[k]])[0] for k in s["models"]] + [real_sharp],
            "variance of the Laplacian (grey levels²)",
            fig_dir / "sharpness.png",
            errors=[mean_std([r["sharpness"] for r in results[k]])[1] for k in s["models"]] + [0.0],
            title=f"sharpness, mean ± std over {len(s['seeds'])} seed(s)",
        )
        bar(
            names,
            [mean_std([r["fid"] for r in results[k]])[0] for k in s["models"]],
            "feature Fréchet distance (classifier features, not Inception)",
            fig_dir / "feature-fid.png",
            errors=[mean_std([r["fid"] for r in results[k]])[1] for k in s["models"]],
            title=f"feature-FID, mean ± std over {len(s['seeds'])} seed(s)",
        )

        digits = {"sharpness": 4, "fid": 2, "kid": 3, "diversity": 2}
        rows = []
        for key in s["models"]:
            r = results[key]
            rows.append(
                [MODELS[key][0], len(r)]
                + [pm([x[m] for x in r], digits.get(m, 3)) for m in METRICS]
                + [f"{mean_std([x['fid'] for x in r])[1]:.3g}"]
            )
        for label, ref in reference.items():
            rows.append([label, "—"] + [f"{ref[m]:.{digits.get(m, 3)}f}" for m in METRICS] + ["—"])
        verdict, supported, clauses = self._verdict(s, results, real_sharp, clf.test_accuracy)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "model",
                "seeds",
                "sharpness",
                "feature-FID",
                "KID",
                "precision",
                "recall",
                "density",
                "coverage",
                "diversity",
                "feature-FID std over seeds",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "results": results,
                "reference": reference,
                "clauses": clauses,
                "classifier": {"run_dir": str(clf.run_dir), "test_accuracy": clf.test_accuracy},
            },
            supported=supported,
        )

    @staticmethod
    def _verdict(
        s: dict[str, Any], results: dict[str, list[dict[str, float]]], real_sharp: float, accuracy: float
    ) -> tuple[str, bool | None, dict[str, int]]:
        def vals(key: str, metric: str) -> list[float]:
            return [r[metric] for r in results[key]]

        word = {1: "holds", -1: "does NOT hold", 0: "is undecided"}
        gans = [g for g in GANS if g in results]
        parts, clauses = [], {}
        have_vae = "vae" in results
        sharp = {k: mean_std(vals(k, "sharpness"))[0] for k in results}
        fid = {k: mean_std(vals(k, "fid")) for k in results}
        parts.append(
            "Sharpness (variance of the Laplacian): "
            + ", ".join(f"{MODELS[k][0]} {v:.4f}" for k, v in sharp.items())
            + f", real images {real_sharp:.4f}."
        )
        parts.append(
            "Feature-FID (classifier features, not Inception-FID) mean ± std over seeds: "
            + ", ".join(f"{MODELS[k][0]} {m:.2f} ± {sd:.2f}" for k, (m, sd) in fid.items())
            + "."
        )
        clauses["gans_sharp"] = (
            all_hold([separated(vals(g, "sharpness"), vals("vae", "sharpness")) for g in gans])
            if have_vae and gans
            else 0
        )
        parts.append(f"(1) GANs sharper than the VAE {word[clauses['gans_sharp']]}.")
        clauses["vae_blurry"] = -separated(vals("vae", "sharpness"), [real_sharp]) if have_vae else 0
        parts.append(f"(2) VAE samples blurrier than real images {word[clauses['vae_blurry']]}.")
        n = len(s["seeds"])
        if n < 2:
            clauses["gans_unstable"] = clauses["diffusion_stable"] = 0
            parts.append("(3), (4) seed-to-seed stability: one seed, undecided.")
        else:
            clauses["gans_unstable"] = (
                all_hold([variance_ratio(vals(g, "fid"), vals("vae", "fid"))[0] for g in gans])
                if have_vae and gans
                else 0
            )
            parts.append(
                "(3) GANs' feature-FID varies more across seeds than the VAE's (F-test, 5 %) "
                + word[clauses["gans_unstable"]]
                + "."
            )
            clauses["diffusion_stable"] = (
                all_hold([-variance_ratio(vals("ddpm", "fid"), vals(g, "fid"))[0] for g in gans])
                if "ddpm" in results and gans
                else 0
            )
            parts.append(
                "(4) the DDPM's feature-FID varies less across seeds than each GAN's "
                + word[clauses["diffusion_stable"]]
                + "."
            )
        signs = list(clauses.values())
        supported = supported_by(signs)
        parts.append(
            {True: "All four clauses hold.", False: "The comparison does NOT hold as stated.", None: "Mixed."}[
                supported
            ]
            + f" (DDPM samples: DDIM, {s['diffusion_steps']} steps; classifier test accuracy {100 * accuracy:.1f}%.)"
        )
        return " ".join(parts), supported, clauses
