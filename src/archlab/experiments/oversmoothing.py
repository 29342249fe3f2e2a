"""Over-smoothing: GCNs of 2 … 32 layers with and without residual connections on the stochastic
block model (the shipped ``sbm/mlp`` recipe with a GCN swapped in).

Each GCN layer multiplies by the normalised adjacency D̂^{-1/2} Â D̂^{-1/2}, a low-pass filter:
repeated, it drives every node of a connected component towards the same vector (Li, Han & Wu 2018,
arXiv:1801.07606, §4), so deep plain GCNs lose the differences between nodes that classification
needs. A residual connection h^(l+1) = h^(l) + σ(layer(h^(l))) keeps each layer's input (Kipf & Welling
2017, App. B; Li et al. 2019, DeepGCNs). Measured per depth: test accuracy, and the mean pairwise
distance of the node embeddings (the last hidden layer, eval mode, every node):

    MPD = 2 / (N (N − 1)) · Σ_{u < v} ‖h_u − h_v‖₂ / mean_v ‖h_v‖₂

(divided by the mean norm, so a layer that only shrinks or scales its output does not count as
smoothing; 0 when every node has the same embedding).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from archlab.data import load_dataset
from archlab.engine.trainer import load_run
from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    pm,
    register_experiment,
)
from archlab.experiments.runs import RunSpec, build_recipe, spec
from archlab.report.figures import lines
from archlab.utils.errors import ConfigError

BASE = "sbm/mlp"
VARIANTS = {"plain": "GCN", "residual": "GCN + residual"}


def mean_pairwise_distance(h: torch.Tensor) -> float:
    """MPD of embeddings h (N, D) relative to their mean norm (see the module docstring); 0 for N < 2."""
    n = h.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(h, h)  # (N, N)
    scale = h.norm(dim=1).mean().clamp(min=1e-12)
    return float(d.sum() / (n * (n - 1)) / scale)


@torch.no_grad()
def embedding_spread(run_dir: Path) -> float:
    """MPD of the last hidden layer of the GCN trained in ``run_dir`` over every node of its graph."""
    run = load_run(run_dir)
    d = run.recipe.data
    batch = load_dataset(d.name, "test", data_dir=d.data_dir, options=d.options)[0]
    states = run.model.node_states(batch.x, batch.edge_index)
    return mean_pairwise_distance(states[-2])


MAX_DEPTH = 128  # GCN layers; the full experiment's deepest is 32


class OversmoothingOptions(ExperimentOptions):
    depths: list[int] | None = Field(None, min_length=1)  # default [2, 8] quick, [2, 4, 8, 16, 32] full
    seeds: list[int] | None = Field(None, min_length=1)  # default [0] quick, [0, 1, 2] full
    steps: int | None = Field(None, ge=1)  # default 30 quick, 200 full
    hidden: int = Field(16, ge=1)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted recipe keys for every run


@register_experiment
class Oversmoothing(Experiment):
    name = "oversmoothing"
    title = "Over-smoothing: GCN accuracy and embedding spread against depth, with and without residuals"
    claim = (
        "Stacking GCN layers smooths the node embeddings towards one vector: past a few layers the mean pairwise "
        "distance of the embeddings and the accuracy of a plain GCN fall (Li, Han & Wu 2018), while residual "
        "connections keep both up at depth (the deepest here: 32 layers)."
    )
    Options = OversmoothingOptions

    def settings(self, o: OversmoothingOptions, quick: bool) -> dict[str, Any]:
        if any(d < 2 for d in (o.depths or [])):
            raise ConfigError("experiment oversmoothing: depths must be at least 2 (input and output layer)")
        if any(d > MAX_DEPTH for d in (o.depths or [])):  # 10⁶ layers hung while the models were built
            raise ConfigError(
                f"experiment oversmoothing: depths must be at most {MAX_DEPTH} (the claim is read by 32), "
                f"got {max(o.depths or [0]):,}"
            )
        return {
            "depths": o.depths if o.depths is not None else ([2, 8] if quick else [2, 4, 8, 16, 32]),
            "seeds": o.seeds if o.seeds is not None else ([0] if quick else [0, 1, 2]),
            "steps": o.steps if o.steps is not None else (30 if quick else 200),
            "hidden": o.hidden,
            "overrides": dict(o.overrides),
        }

    def runs(self, s: dict[str, Any]) -> list[RunSpec]:
        steps = s["steps"]
        overrides = {
            "budget.steps": steps,
            "eval.every": max(1, steps // 10),
            "log.every": max(1, steps // 10),
            "checkpoint.every": steps,
            **s["overrides"],
        }
        out = []
        for variant in VARIANTS:
            for depth in s["depths"]:
                model = {
                    "name": "gcn",
                    "hidden": s["hidden"],
                    "num_layers": depth,
                    "residual": variant == "residual",
                    "dropout": 0.5,
                }
                for seed in s["seeds"]:
                    recipe = build_recipe(BASE, model, overrides)
                    out.append(spec(f"{variant}@{depth}", seed, recipe, f"gcn-{variant}-{depth}-s{seed}"))
        return out

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        acc: dict[tuple[str, int], list[float]] = {}
        mpd: dict[tuple[str, int], list[float]] = {}
        for variant in VARIANTS:
            for depth in s["depths"]:
                for seed in s["seeds"]:
                    key = (variant, depth)
                    acc.setdefault(key, []).append(trained.summaries[f"{variant}@{depth}", seed]["test"]["accuracy"])
                    mpd.setdefault(key, []).append(embedding_spread(out_dir / f"gcn-{variant}-{depth}-s{seed}"))

        def series(values: dict[tuple[str, int], list[float]], scale: float) -> dict[str, list]:
            return {
                label: [
                    (
                        d,
                        scale * statistics.fmean(values[v, d]),
                        scale * (statistics.stdev(values[v, d]) if len(values[v, d]) > 1 else 0.0),
                    )
                    for d in s["depths"]
                ]
                for v, label in VARIANTS.items()
            }

        figures = out_dir / "figures"
        lines(series(acc, 100), "GCN layers", "test accuracy %", figures / "accuracy_vs_depth.png", logx=True)
        lines(series(mpd, 1), "GCN layers", "mean pairwise distance / mean norm", figures / "mpd_vs_depth.png")
        rows = [
            [d, *(pm(acc[v, d], digits=1) for v in VARIANTS), *(pm(mpd[v, d], scale=1, digits=3) for v in VARIANTS)]
            for d in s["depths"]
        ]
        m_acc = {k: statistics.fmean(v) for k, v in acc.items()}
        m_mpd = {k: statistics.fmean(v) for k, v in mpd.items()}
        depths = sorted(s["depths"])
        shallow, deep = depths[0], depths[-1]

        def holds_to(v: str) -> int:
            """The deepest depth up to which the accuracy stays within 10 points of the shallowest's."""
            last = shallow
            for d in depths:
                if m_acc[v, d] < m_acc[v, shallow] - 0.10:
                    break
                last = d
            return last

        plain_to, residual_to = holds_to("plain"), holds_to("residual")
        plain_drops = m_acc["plain", deep] < m_acc["plain", shallow] - 0.05 and (
            m_mpd["plain", deep] < m_mpd["plain", shallow]
        )
        verdict = (
            f"Plain GCN: accuracy {100 * m_acc['plain', shallow]:.1f}% at {shallow} layers, "
            f"{100 * m_acc['plain', deep]:.1f}% at {deep}; embedding spread (MPD) {m_mpd['plain', shallow]:.3f} → "
            f"{m_mpd['plain', deep]:.3f}. With residuals: {100 * m_acc['residual', shallow]:.1f}% → "
            f"{100 * m_acc['residual', deep]:.1f}%, MPD {m_mpd['residual', shallow]:.3f} → "
            f"{m_mpd['residual', deep]:.3f}. Accuracy within 10 points of the {shallow}-layer network's: plain up "
            f"to {plain_to} layers, residual up to {residual_to}. "
        )
        supported: bool | None
        if shallow == deep:
            verdict += "One depth cannot show a trend."
            supported = None
        elif plain_drops and residual_to == deep:
            verdict += (
                "The plain stack over-smooths (lower spread, lower accuracy) and residuals prevent it: supported."
            )
            supported = True
        elif plain_drops and residual_to > plain_to:
            verdict += (
                f"The plain stack over-smooths; residuals delay it (to {residual_to} layers) but do not prevent it "
                f"at {deep} at this budget: partly supported."
            )
            supported = None
        elif plain_drops:
            verdict += "The plain stack over-smooths, and residuals do not help here: partly supported."
            supported = None
        else:
            verdict += (
                "The plain stack does not lose both spread and accuracy at this depth and budget: not reproduced."
            )
            supported = False
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "layers",
                "GCN acc %",
                "GCN + residual acc %",
                "GCN MPD",
                "GCN + residual MPD",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k != "overrides"}},
            supported=supported,
        )
