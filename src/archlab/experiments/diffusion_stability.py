"""Is diffusion the stable alternative to GANs, and how many sampling steps does it need? (Ho et al.
2020 and Song et al. 2021; the stability of GANs across seeds: Lucic et al., *Are GANs Created
Equal?*, NeurIPS 2018, §5, who report the FID's spread over random restarts.)

A GAN and a DDPM are trained from several seeds on the same data: Fashion-MNIST (``dcgan`` vs
``ddpm``; quality = the feature-space Fréchet distance on the in-project classifier's penultimate
features, :mod:`archlab.experiments.feature_classifier` — **not** Inception-FID) or a 2-D mixture
(``gan_mlp`` vs ``ddpm_mlp`` on ring8/grid25; quality = the Fréchet distance between Gaussians fitted
to the points themselves, beside the modes covered). Each trained DDPM then samples with the full
ancestral chain (Ho et al. Alg. 2, all T steps: the reference) and with DDIM (Song et al. Eq. 12,
η = 0) on each of ``ddim_steps`` steps, timing each (seconds per sample, this process's threads).

Verdict, two clauses (:mod:`archlab.experiments.gen_common` rules):

- stability: do the GAN's final Fréchet distances vary more across seeds than the DDPM's, by the
  one-sided F-test at 5 % (holds), less (fails), or neither (undecided)?
- DDIM: the fewest DDIM steps whose Fréchet distance is not above the full chain's by more than two
  standard errors across seeds; holds when that is at most T/10 steps (≥ 10× fewer network
  evaluations, Song et al.'s "10× to 50× faster"), fails when no tested step count gets there.

The claim holds when both hold, fails when either fails, and is mixed otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from archlab.experiments.ae_common import TEST_IMAGES
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
    mean_std,
    mixture_scores,
    pm,
    seed_list,
    separated,
    supported_by,
    timed_draw,
    trained_model,
    variance_ratio,
)
from archlab.experiments.runs import RunSpec, budget, build_recipe, spec
from archlab.report.figures import lines
from archlab.report.latent import image_rows
from archlab.report.mode_figures import mixture_panels
from archlab.utils.errors import ConfigError

MAX_SAMPLES = 100_000
RECIPES = {
    "fashion_mnist": {"gan": "fashion_mnist/dcgan", "ddpm": "fashion_mnist/ddpm"},
    "ring8": {"gan": "ring8/gan_mlp", "ddpm": "ring8/ddpm_mlp"},
    "grid25": {"gan": "grid25/gan_mlp", "ddpm": "grid25/ddpm_mlp"},
}
LABELS = {"gan": "GAN", "ddpm": "DDPM"}


class DiffusionStabilityOptions(ExperimentOptions):
    data: Literal["fashion_mnist", "ring8", "grid25"] = "fashion_mnist"
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick; [0, 1, 2] full (5 seeds on 2-D data)
    steps: int | None = Field(None, ge=1)  # optimiser steps per run (default 3 quick, each recipe's own full)
    ddim_steps: list[int] | None = Field(
        None, min_length=1
    )  # DDIM step counts (default [2, 5] quick, [10, 20, 50, 100] full)
    samples: int | None = Field(
        None, ge=2, le=MAX_SAMPLES
    )  # samples scored per model (64 quick; 2,000 images / 2,500 points)
    classifier: dict[str, Any] | None = None  # overrides of the feature classifier's recipe (Fashion-MNIST)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class DiffusionStability(Experiment):
    name = "diffusion-stability"
    title = "Diffusion vs GAN: the final quality's spread across seeds, and DDIM steps vs quality and time"
    claim = (
        "Diffusion models train stably where GANs do not — their final sample quality varies less from seed to "
        "seed — and DDIM draws samples of the same quality with 10–50× fewer steps than the 1000-step DDPM chain "
        "(Ho et al. 2020; Song et al. 2021)."
    )
    Options = DiffusionStabilityOptions

    def settings(self, o: DiffusionStabilityOptions, quick: bool) -> dict[str, Any]:
        images = o.data == "fashion_mnist"
        return {
            "data": o.data,
            "seeds": seed_list(o.seeds, quick, (0, 1, 2) if images else (0, 1, 2, 3, 4)),
            "steps": o.steps if o.steps is not None else (3 if quick else None),
            "ddim_steps": sorted(set(o.ddim_steps or ([2, 5] if quick else [10, 20, 50, 100]))),
            "samples": o.samples or (64 if quick else (2000 if images else 2500)),
            "classifier": o.classifier if o.classifier is not None else (QUICK_CLASSIFIER if quick else {}),
            "quick": quick,
            "overrides": dict(o.overrides),
        }

    def check(self, s: dict[str, Any]) -> None:
        if s["data"] == "fashion_mnist" and s["samples"] > TEST_IMAGES // 2:
            raise ConfigError(
                f"experiment diffusion-stability: samples must be ≤ {TEST_IMAGES // 2:,} on fashion_mnist (the "
                "samples are scored against as many test images, and another as many give the floor)"
            )
        if min(s["ddim_steps"]) < 1:
            raise ConfigError("experiment diffusion-stability: ddim_steps must be ≥ 1")
        t = self._recipe(s, "ddpm").model.model_dump().get("timesteps", 1000)
        if max(s["ddim_steps"]) > t:
            raise ConfigError(
                f"experiment diffusion-stability: ddim_steps must be ≤ the DDPM's T = {t} (got {max(s['ddim_steps'])})"
            )

    def _recipe(self, s: dict[str, Any], key: str) -> Any:
        over = {**(budget(s["steps"]) if s["steps"] is not None else {}), **s["overrides"]}
        if s["quick"]:  # tiny networks and chains: the plumbing is checked, not the claim
            images = s["data"] == "fashion_mnist"
            small = {"data.test_subset": 32} if images else {"data.options.n_test": 200}
            if key == "ddpm":
                small.update({"model.timesteps": 20, "task.options.eval_samples": 0})
                small.update({"model.channels": 8, "model.norm_groups": 4} if images else {})
            over = {**small, **over}
        return build_recipe(RECIPES[s["data"]][key], None, over)

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        return [
            spec(key, seed, self._recipe(s, key), f"{s['data']}-{key}-s{seed}")
            for key in ("gan", "ddpm")
            for seed in s["seeds"]
        ]

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        images = s["data"] == "fashion_mnist"
        n = s["samples"]
        runs = {(r.key, r.seed): r for r in self.runs(s)}
        if images:
            from archlab.experiments.ae_common import fashion
            from archlab.experiments.feature_classifier import feature_classifier

            clf = feature_classifier(s["classifier"], progress=self.progress)
            test = fashion("test", 2 * n, seed=2)[0]
            real, fresh = clf.statistics(test[:n]), test[n:]  # fresh: the floor, real against real

            def quality(x: torch.Tensor) -> dict[str, Any]:
                return {"frechet": clf.frechet(x, real)}
        else:
            from archlab.data.mixtures import mixture_of

            fresh = mixture_of(s["data"]).sample(n, seed=7)[0]  # the floor: data against the test points

            def quality(x: torch.Tensor) -> dict[str, Any]:
                sc = mixture_scores(x, s["data"])
                return {"frechet": sc["frechet_points"], "modes_covered": sc["modes_covered"]}

        floor = quality(fresh)

        results: dict[str, dict[str, list[dict[str, Any]]]] = {"gan": {}, "ddpm": {}}
        shown: dict[str, torch.Tensor] = {}
        first = s["seeds"][0]
        for seed in s["seeds"]:
            sample_seed = 20_000 + seed
            gan = trained_model(out_dir, runs["gan", seed])
            say = {"progress": self.progress}
            x, sec = timed_draw(gan, n, sample_seed, label=f"GAN seed {seed}", **say)
            results["gan"].setdefault("final", []).append({"seed": seed, "s_per_sample": sec, **quality(x)})
            if seed == first:
                shown["GAN"] = x
            ddpm = trained_model(out_dir, runs["ddpm", seed])
            t = int(ddpm.config.timesteps)
            x, sec = timed_draw(ddpm, n, sample_seed, label=f"DDPM {t} seed {seed}", **say)  # the reference: all T
            results["ddpm"].setdefault(f"DDPM {t}", []).append({"seed": seed, "s_per_sample": sec, **quality(x)})
            if seed == first:
                shown[f"DDPM {t}"] = x
            for k in s["ddim_steps"]:
                opts = {"steps": k, "sampler": "ddim", "eta": 0.0, "label": f"DDIM {k} seed {seed}", **say}
                x, sec = timed_draw(ddpm, n, sample_seed, **opts)
                results["ddpm"].setdefault(f"DDIM {k}", []).append({"seed": seed, "s_per_sample": sec, **quality(x)})
                if seed == first:
                    shown[f"DDIM {k}"] = x

        ref_label = next(k for k in results["ddpm"] if k.startswith("DDPM"))
        t = int(ref_label.split()[1])
        fid = {
            "gan": [r["frechet"] for r in results["gan"]["final"]],
            "ddpm": [r["frechet"] for r in results["ddpm"][ref_label]],
        }
        fig_dir = out_dir / "figures"
        metric = (
            "feature Fréchet distance (classifier features, not Inception)" if images else "Fréchet distance (points)"
        )
        lines(
            {
                "DDIM (η = 0)": [
                    (float(k), *mean_std([r["frechet"] for r in results["ddpm"][f"DDIM {k}"]])) for k in s["ddim_steps"]
                ],
                f"DDPM, all {t} steps": [(float(t), *mean_std(fid["ddpm"]))],
                "GAN (one step)": [(1.0, *mean_std(fid["gan"]))],
            },
            "sampling steps (network evaluations per sample)",
            metric,
            fig_dir / "quality-vs-steps.png",
            title=f"quality vs sampling steps on {s['data']}, mean ± std over {len(s['seeds'])} seed(s)",
        )
        if images:
            rows_img = [v[:12] for v in shown.values()]
            image_rows(rows_img, fig_dir / "samples.png", row_labels=list(shown), title=f"samples, seed {first}")
        else:
            from archlab.data.mixtures import mixture_of

            means = mixture_of(s["data"]).means.numpy()
            mixture_panels(
                [{"title": k, "samples": v.numpy(), "means": means} for k, v in shown.items()],
                fig_dir / "samples.png",
                cols=min(4, len(shown)),
                title=f"samples of seed {first} over the modes (red ×)",
            )

        rows = []
        for label, key, per in [("GAN", "gan", results["gan"]["final"])] + [
            (k, "ddpm", v) for k, v in results["ddpm"].items()
        ]:
            steps = 1 if key == "gan" else int(label.split()[1])
            rows.append(
                [
                    label,
                    steps,
                    pm([r["frechet"] for r in per], 4 if not images else 2),
                    f"{mean_std([r['frechet'] for r in per])[1]:.4g}",
                    pm([1000 * r["s_per_sample"] for r in per], 3),
                    pm([r["modes_covered"] for r in per], 1) if not images else "—",
                ]
            )
        rows.append(
            [
                f"data (another {n:,} examples)",
                "—",
                f"{floor['frechet']:.4f}" if not images else f"{floor['frechet']:.2f}",
                "—",
                "—",
                f"{floor['modes_covered']:.0f}" if not images else "—",
            ]
        )
        verdict, supported, rules = self._verdict(s, results, fid, ref_label, t, images)
        verdict += f" (The data's own floor, another {n:,} examples against the reference: {floor['frechet']:.4g}.)"
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "sampler",
                "steps",
                "Fréchet distance" + (" (classifier features)" if images else " (points)"),
                "std over seeds",
                "ms per sample",
                "modes covered",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "results": results,
                "floor": floor,
                "rules": rules,
                "torch_threads": torch.get_num_threads(),
                **({"classifier": {"run_dir": str(clf.run_dir), "test_accuracy": clf.test_accuracy}} if images else {}),
            },
            supported=supported,
        )

    @staticmethod
    def _verdict(
        s: dict[str, Any],
        results: dict[str, dict[str, list[dict[str, Any]]]],
        fid: dict[str, list[float]],
        ref_label: str,
        t: int,
        images: bool,
    ) -> tuple[str, bool | None, dict[str, Any]]:
        n = len(s["seeds"])
        sign, ratio, crit = variance_ratio(fid["gan"], fid["ddpm"])
        what = (
            "feature Fréchet distance (classifier features, not Inception-FID)"
            if images
            else "Fréchet distance of the points"
        )
        (gm, gs), (dm, ds) = mean_std(fid["gan"]), mean_std(fid["ddpm"])
        stab = f"Final {what} over {n} seed(s): GAN {gm:.4g} ± {gs:.3g}, DDPM ({t} steps) {dm:.4g} ± {ds:.3g}. " + (
            f"The GAN's variance across seeds is {ratio:.3g}× the DDPM's (one-sided F-test at 5 %: critical "
            f"{crit:.3g}): stability "
            + {1: "holds.", -1: "does NOT hold (the DDPM varies more).", 0: "is not decided by these seeds."}[sign]
            if n > 1
            else "One seed: no spread to compare; stability is not decided."
        )
        ref_time = mean_std([r["s_per_sample"] for r in results["ddpm"][ref_label]])[0]
        enough = None
        for k in s["ddim_steps"]:
            if separated([r["frechet"] for r in results["ddpm"][f"DDIM {k}"]], fid["ddpm"]) <= 0:
                enough = k
                break
        if enough is None:
            ddim_rule = -1
            ddim = (
                f"No tested DDIM step count ({', '.join(map(str, s['ddim_steps']))}) reaches the {t}-step chain's "
                "quality within two standard errors: the DDIM clause does NOT hold."
            )
        else:
            k_time = mean_std([r["s_per_sample"] for r in results["ddpm"][f"DDIM {enough}"]])[0]
            ddim_rule = 1 if enough <= t / 10 else 0
            ddim = (
                f"DDIM reaches the {t}-step chain's quality (not worse by more than two standard errors) from {enough} "
                f"steps, {t / enough:.0f}× fewer network evaluations and {ref_time / max(k_time, 1e-12):.1f}× less "
                "time per sample measured: the DDIM clause "
                + ("holds." if ddim_rule == 1 else f"is mixed (fewer than 10× fewer steps than T = {t}).")
            )
        stab_rule = sign if n > 1 else 0
        supported = supported_by([stab_rule, ddim_rule])
        end = {True: " Both clauses hold.", False: " The claim does NOT hold in full here.", None: " Mixed."}[supported]
        return stab + " " + ddim + end, supported, {"stability": stab_rule, "ddim": ddim_rule, "ddim_enough": enough}
