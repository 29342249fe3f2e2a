"""The recurrent family's experiments: vanishing gradients on the adding problem, GRU vs LSTM, and
the sequential bottleneck of recurrence.

Every trained model is an ordinary training run (its own run dir inside the experiment dir) built
from the shipped ``adding/<model>`` recipe (one layer, 64 units, last-state read-out, Adam, gradient
clipping by norm 1.0) with the length and budget overridden, or from ``mnist1d/default`` with the
model swapped in. The regression task reports MSE; the adding problem's accuracy (|error| < 0.04,
Hochreiter & Schmidhuber 1997) is computed here from the trained checkpoint's test predictions.

The gradient probe (:func:`hidden_state_gradients`) runs a trained model's recurrence step by step
with the equation-level cells of :mod:`archlab.layers.recurrent` — the fused kernel keeps h_t
inside — so that every h_t is a node of the graph, and measures ‖∂ℓ/∂h_t‖ for a loss ℓ on the final
output only, in float64 (the vanished gradients underflow float32).

Training runs with denormal floats flushed to zero (the trainer does it on CPU): the vanishing
gradients at T=200 are denormal, and an RNN/LSTM/GRU step there took 69/256/240 ms with denormals
against 16/47/64 ms without (measured on this CPU).

Letters: B batch, T steps, C input features per step, H hidden units, d model width.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from archlab.config import Recipe, apply_overrides, load_recipe, recipe_to_dict, shipped_recipes, validate_recipe
from archlab.data import dataset_info, load_dataset
from archlab.data.synthetic import ADDING_BASELINE_ACCURACY, ADDING_BASELINE_MSE, adding_accuracy
from archlab.engine import load_run
from archlab.experiments.base import Experiment, ExperimentResult, figure_paths, register_experiment
from archlab.experiments.compare import train_runs
from archlab.layers.recurrent import GRU, LSTM, GRUCell, LSTMCell, RecurrentBase, RNNCell
from archlab.registry import create_model
from archlab.registry.models import validate_model_overrides
from archlab.report.figures import bar, lines
from archlab.tasks import build_task
from archlab.utils.counting import count_params
from archlab.utils.errors import ConfigError
from archlab.utils.seed import seed_everything

LABELS = {"rnn": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
LEARNED_MSE = ADDING_BASELINE_MSE / 2  # "learned": at least half the target's variance explained (R² > 0.5)


# -- recipes and trained models -----------------------------------------------------------------
def adding_recipe(
    model: dict[str, Any], length: int, overrides: dict[str, Any], name: str, seed: int = 0
) -> dict[str, Any]:
    """The shipped ``adding/<model>`` recipe at length ``length`` with ``model``'s fields and
    ``overrides`` applied, as a recipe dict."""
    shipped = shipped_recipes()
    key = f"adding/{model['name']}"
    raw = yaml.safe_load(shipped[key if key in shipped else "adding/lstm"].read_text())
    raw["model"] = {**raw["model"], **model} if key in shipped else dict(model)
    raw["name"], raw["seed"] = name, seed
    recipe = validate_recipe(apply_overrides(raw, {"data.options.length": length, **overrides}))
    dataset_info(recipe.data.name, recipe.data.options)  # a bad data option fails here, before training
    recipe.log.tensorboard = False
    return recipe_to_dict(recipe)


def mnist1d_recipe(model: dict[str, Any], overrides: dict[str, Any], name: str, seed: int = 0) -> dict[str, Any]:
    """``mnist1d/default`` (Adam lr 1e-2, batch 100, 6000 steps, ±3 shift) with ``model`` swapped in."""
    raw = yaml.safe_load(shipped_recipes()["mnist1d/default"].read_text())
    raw["model"] = dict(model)
    raw["name"], raw["seed"] = name, seed
    recipe = validate_recipe(apply_overrides(raw, overrides))
    recipe.log.tensorboard = False
    return recipe_to_dict(recipe)


def _budget(steps: int) -> dict[str, Any]:
    """Overrides for ``steps`` optimiser steps with no evaluation or checkpoint before the last step
    (so the run's wall time is training time)."""
    return {"budget.steps": steps, "eval.every": steps, "checkpoint.every": steps, "log.every": max(1, steps // 40)}


def load_trained(run_dir: str | Path, *, initial: bool = False) -> tuple[nn.Module, Recipe]:
    """A run's model in eval mode with its final weights (the newest checkpoint) or, with
    ``initial=True``, the weights it started from: rebuilt from the run's seed in the trainer's order
    (seed everything, then build the model; the data sets used here draw from their own generators)."""
    if not initial:
        run = load_run(run_dir, checkpoint="last")
        return run.model, run.recipe
    recipe = load_recipe(Path(run_dir) / "recipe.yaml")
    task = build_task(recipe.task, dataset_info(recipe.data.name, recipe.data.options))
    seed_everything(recipe.seed)
    return task.build_model(recipe.model).eval(), recipe


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch: int = 1000) -> Tensor:
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def adding_scores(run_dir: str | Path) -> dict[str, float]:
    """Test MSE and accuracy (|error| < 0.04) of a finished adding-problem run."""
    model, recipe = load_trained(run_dir)
    test = load_dataset(recipe.data.name, "test", options=recipe.data.options)
    pred = predict(model, test.x).reshape(test.y.shape)
    return {"mse": float(((pred - test.y) ** 2).mean()), "accuracy": adding_accuracy(pred, test.y)}


# -- the gradient probe ---------------------------------------------------------------------------
def cell_of(layer: RecurrentBase) -> nn.Module:
    """The equation-level cell (:class:`~archlab.layers.recurrent.RNNCell`, ``LSTMCell`` or ``GRUCell``)
    holding a copy of a one-layer, one-direction recurrent layer's weights."""
    if layer.num_layers != 1 or layer.bidirectional or getattr(layer, "proj_size", 0):
        raise ValueError("the gradient probe needs a one-layer, one-direction recurrent layer without projection")
    kind = LSTMCell if isinstance(layer, LSTM) else GRUCell if isinstance(layer, GRU) else RNNCell
    extra = {} if kind is not RNNCell else {"nonlinearity": layer.nonlinearity}
    cell = kind(layer.input_size, layer.hidden_size, bias=layer.bias, dtype=layer.weight_ih_l0.dtype, **extra)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if layer.bias else ()):
            getattr(cell, name).copy_(getattr(layer, f"{name}_l0"))
    return cell


def unrolled_states(model: nn.Module, x: Tensor) -> tuple[list[Tensor], Tensor]:
    """Run a last-state recurrent classifier (``rnn``, ``lstm``, ``gru`` with ``readout="last"``)
    cell by cell: the hidden states h_1 … h_T, each (B, H) and retaining its gradient, and the
    output (B, K) computed from h_T. Shapes: x (B, C, T)."""
    if getattr(model.config, "readout", None) != "last":
        raise ValueError("the gradient probe reads the output from the last state: use readout='last'")
    cell = cell_of(model.layer)
    seq = x.transpose(1, 2)  # (B, T, C)
    lstm = isinstance(cell, LSTMCell)
    h = seq.new_zeros(seq.shape[0], cell.hidden_size)  # h_0 = 0 (B, H)
    state: Any = (h, torch.zeros_like(h)) if lstm else h
    hs = []
    for t in range(seq.shape[1]):
        state = cell(seq[:, t], state)
        h = state[0] if lstm else state
        h.retain_grad()
        hs.append(h)
    return hs, model.forward_head(h)


def hidden_state_gradients(model: nn.Module, x: Tensor, y: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """‖∂ℓ/∂h_t‖ for t = 1 … T, averaged over the batch: (T,).

    ℓ = (ŷ − y)² of each example, ŷ read out from h_T only. The batch's losses are summed, so each
    example's h_t receives its own ∂ℓ_b/∂h_t (examples never interact). For a linear recurrence
    h_t = W h_{t−1} with W = a·I this is a^{T−t} ‖∂ℓ/∂h_T‖ (the test checks it). Computed on a copy of
    the model in ``dtype`` (float64 by default: the vanished gradients underflow float32).
    Shapes: x (B, C, T), y (B, 1) → (T,).
    """
    model = copy.deepcopy(model).to(dtype)  # float64: ‖∂ℓ/∂h_1‖ at T=200 is below float32's range
    with torch.enable_grad():
        hs, pred = unrolled_states(model, x.to(dtype))
        ((pred.reshape(y.shape) - y.to(dtype)) ** 2).sum().backward()
    return torch.stack([h.grad.norm(dim=1) for h in hs], dim=1).mean(0)  # (T,)


# -- helpers --------------------------------------------------------------------------------------


def _sci(v: float) -> str:
    return f"{v:.1e}" if v and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.3g}"


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x: the exponent s of y ∝ x^s."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def _recurrent_params(model: nn.Module) -> int:
    return count_params(model.layer)


def median_step_ms(module: nn.Module, x: Tensor, repeats: int, warmup: int = 2, threads: int | None = 1) -> float:
    """Median wall time (ms) of one training step — forward, loss, backward, Adam update — of
    ``module`` on the fixed batch ``x``, on ``threads`` torch threads (restored afterwards)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        opt = torch.optim.Adam(module.parameters(), 1e-3)
        module.train()
        times = []
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            out = module(x)
            out = out[0] if isinstance(out, tuple) else out
            loss = out.float().pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)
    finally:
        torch.set_num_threads(before)


# -- vanishing gradients --------------------------------------------------------------------------
@register_experiment
class VanishingGradients(Experiment):
    name = "vanishing-gradients"
    title = "Vanishing gradients: the adding problem at T = 10 … 200 for RNN, LSTM and GRU"
    claim = (
        "A vanilla (tanh) RNN fails to learn dependencies beyond roughly 10–20 steps because ‖∂ℓ/∂h_t‖ "
        "shrinks exponentially with the distance T − t; the LSTM and the GRU carry information much "
        "further — Bengio et al. 1994, Hochreiter & Schmidhuber 1997, Pascanu et al. 2013."
    )
    options = ("lengths", "models", "hidden_size", "steps", "lr", "batch_size", "seeds", "probe_length", "overrides")

    def _settings(self, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
        lengths = [int(t) for t in options.get("lengths", [10, 20] if quick else [10, 20, 50, 100, 200])]
        models = [str(m) for m in options.get("models", list(LABELS))]
        steps = int(options.get("steps", 30 if quick else 4000))
        probe = int(options.get("probe_length", 20 if quick else 100))
        hidden = int(options.get("hidden_size", 64))
        overrides = {
            **_budget(steps),
            "optim.lr": float(options.get("lr", 3e-3)),
            "data.batch_size": int(options.get("batch_size", 64)),
            **({"data.options.n_train": 512, "data.options.n_test": 256} if quick else {}),
            **options.get("overrides", {}),
        }
        return {
            "lengths": lengths,
            "models": models,
            "steps": steps,
            "hidden_size": hidden,
            "seeds": [int(s) for s in options.get("seeds", [0])],
            "probe_length": probe,
            "probe_batch": 64 if quick else 256,
            "overrides": overrides,
        }

    def validate(self, *, quick: bool = False, options: dict[str, Any] | None = None) -> None:
        s = self._settings(quick, options or {})
        if not s["seeds"]:
            raise ConfigError("seeds: give at least one seed, e.g. --set 'seeds=[0]'")
        if s["probe_length"] not in s["lengths"]:
            raise ConfigError(f"probe_length: {s['probe_length']} is not one of the lengths {s['lengths']}")
        for m in s["models"]:
            if m not in LABELS:
                raise ConfigError(f"models: '{m}' is not one of {', '.join(LABELS)}")
            validate_model_overrides(m, {"hidden_size": s["hidden_size"]})
            for t in s["lengths"]:
                adding_recipe({"name": m, "hidden_size": s["hidden_size"]}, t, s["overrides"], m)

    def run(self, out_dir: Path, *, quick: bool = False, options: dict[str, Any] | None = None) -> ExperimentResult:
        options = options or {}
        s = self._settings(quick, options)
        seeds = s["seeds"]
        jobs_list = []
        for t in sorted(s["lengths"], reverse=True):  # the longest (slowest) runs start first
            for m in s["models"]:
                for seed in seeds:
                    name = f"{m}-T{t}-s{seed}"
                    recipe = adding_recipe({"name": m, "hidden_size": s["hidden_size"]}, t, s["overrides"], name, seed)
                    jobs_list.append((f"{m}:{t}", seed, recipe, str(out_dir / name)))
        summaries = train_runs(jobs_list, jobs=options.get("jobs"), on_run=options.get("on_run"))

        scores = {
            (m, t): [adding_scores(out_dir / f"{m}-T{t}-s{seed}") for seed in seeds]
            for m in s["models"]
            for t in s["lengths"]
        }
        mse = {k: statistics.fmean(x["mse"] for x in v) for k, v in scores.items()}
        acc = {k: statistics.fmean(x["accuracy"] for x in v) for k, v in scores.items()}
        params = {m: summaries[f"{m}:{s['lengths'][0]}", seeds[0]]["params"] for m in s["models"]}

        # gradient probe at T = probe_length, first seed: at initialisation and after training
        probe_t = s["probe_length"]
        test = load_dataset("adding", "test", options={**self._data_options(s), "length": probe_t})
        xb, yb = test.x[: s["probe_batch"]], test.y[: s["probe_batch"]]
        grads: dict[str, dict[str, list[float]]] = {}
        for m in s["models"]:
            run_dir = out_dir / f"{m}-T{probe_t}-s{seeds[0]}"
            grads[m] = {
                when: hidden_state_gradients(load_trained(run_dir, initial=when == "init")[0], xb, yb).tolist()
                for when in ("init", "trained")
            }
        ratio = {(m, w): grads[m][w][0] / grads[m][w][-1] for m in s["models"] for w in ("init", "trained")}

        # figures
        lines(
            {
                f"{LABELS[m]} ({params[m]:,} params)": [(t, 100 * acc[m, t], 0.0) for t in s["lengths"]]
                for m in s["models"]
            }
            | {"constant 1.0 (baseline)": [(t, 100 * ADDING_BASELINE_ACCURACY, 0.0) for t in s["lengths"]]},
            "sequence length T",
            "test accuracy % (|error| < 0.04)",
            out_dir / "figures" / "accuracy_vs_length.png",
            title=f"Adding problem, H={s['hidden_size']}, {s['steps']:,} steps each",
        )
        every = max(1, probe_t // 50)  # at most ~50 markers per line
        for when, what in (("init", "at initialisation"), ("trained", "after training")):
            lines(
                {
                    LABELS[m]: [
                        (t + 1, math.log10(g), 0.0)
                        for t, g in enumerate(grads[m][when])
                        if g > 0 and (t % every == 0 or t == probe_t - 1)
                    ]
                    for m in s["models"]
                },
                "step t",
                "log₁₀ ‖∂ℓ/∂h_t‖ (mean over the batch)",
                out_dir / "figures" / f"grad_norm_{when}.png",
                logx=False,
                title=f"Adding problem T={probe_t}, loss on the last output, {what}",
            )

        # table and verdict
        rows: list[list[Any]] = [
            ["constant 1.0 (baseline)", 0, "any", f"{ADDING_BASELINE_MSE:.4f}", f"{100 * ADDING_BASELINE_ACCURACY:.1f}"]
            + ["", "", ""]
        ]
        for m in s["models"]:
            for t in s["lengths"]:
                wall = statistics.fmean(summaries[f"{m}:{t}", seed]["wall_time_s"] for seed in seeds)
                probe = f"{_sci(ratio[m, 'init'])} → {_sci(ratio[m, 'trained'])}" if t == probe_t else ""
                rows.append(
                    [
                        LABELS[m],
                        params[m],
                        t,
                        f"{mse[m, t]:.4f}",
                        f"{100 * acc[m, t]:.1f}",
                        "yes" if mse[m, t] < LEARNED_MSE else "no",
                        probe,
                        round(wall, 1),
                    ]
                )
        longest = {m: max([t for t in s["lengths"] if mse[m, t] < LEARNED_MSE], default=0) for m in s["models"]}
        verdict, supported = self._verdict(s, mse, acc, longest, ratio)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "model",
                "params",
                "T",
                "test MSE",
                "accuracy % (|err|<0.04)",
                "learned (MSE < 1/12)",
                f"‖∂ℓ/∂h_1‖/‖∂ℓ/∂h_T‖ at T={probe_t}: init → trained",
                "train time s",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": {k: v for k, v in s.items() if k != "overrides"},
                "overrides": s["overrides"],
                "longest_learned": longest,
                "grad_norms": grads,
                "grad_ratio_first_over_last": {f"{m}/{w}": r for (m, w), r in ratio.items()},
                "learned_threshold_mse": LEARNED_MSE,
            },
            supported=supported,
        )

    @staticmethod
    def _data_options(s: dict[str, Any]) -> dict[str, Any]:
        return {k.split(".")[-1]: v for k, v in s["overrides"].items() if k.startswith("data.options.")}

    @staticmethod
    def _verdict(
        s: dict[str, Any],
        mse: dict[tuple[str, int], float],
        acc: dict[tuple[str, int], float],
        longest: dict[str, int],
        ratio: dict[tuple[str, str], float],
    ) -> tuple[str, bool | None]:
        t_max = max(s["lengths"])
        parts = []
        for m in s["models"]:
            at_max = f"at T={t_max}: MSE {mse[m, t_max]:.4f}, {100 * acc[m, t_max]:.1f}% within 0.04"
            reach = f"learns up to T={longest[m]}" if longest[m] else "learns at no length"
            parts.append(f"{LABELS[m]} {reach} ({at_max})")
        verdict = (
            f"Same budget for every run ({s['steps']:,} steps of {s['overrides']['data.batch_size']} sequences, "
            f"H={s['hidden_size']}); "
            f"'learns' = test MSE below {LEARNED_MSE:.4f}, half the constant baseline's {ADDING_BASELINE_MSE:.4f}. "
            + "; ".join(parts)
            + ". "
        )
        probe_t = s["probe_length"]
        verdict += (
            f"Gradient reaching h_1 relative to h_{probe_t} at T={probe_t}, at initialisation: "
            + ", ".join(f"{LABELS[m]} {_sci(ratio[m, 'init'])}" for m in s["models"])
            + "; after training: "
            + ", ".join(f"{LABELS[m]} {_sci(ratio[m, 'trained'])}" for m in s["models"])
            + ". "
        )
        supported: bool | None = None
        gated = [m for m in ("lstm", "gru") if m in s["models"]]
        if "rnn" in s["models"] and gated:
            further = all(longest[g] > longest["rnn"] for g in gated)
            early = longest["rnn"] <= 50  # "roughly 10–20 steps": fails by T=100 at the latest
            if further and early:
                supported = True
                verdict += (
                    f"The RNN stops learning beyond T={longest['rnn']} while the gated cells go further: "
                    "the claim holds."
                )
            elif further:
                verdict += (
                    f"The gated cells go further, but the RNN still learns at T={longest['rnn']}, beyond the "
                    "claimed 10–20 steps: the claim is only partly reproduced."
                )
            else:
                supported = False
                verdict += "The gated cells do NOT reach longer lengths than the RNN here: the claim is not reproduced."
        return verdict, supported


# -- GRU vs LSTM ----------------------------------------------------------------------------------
def matched_hidden_size(target_params: int, make: Callable[[int], nn.Module], start: int) -> int:
    """The hidden size H in [start/2, 2·start] for which ``make(H)`` has the parameter count closest to
    ``target_params``."""
    best, best_gap = start, None
    for h in range(max(1, start // 2), 2 * start + 1):
        gap = abs(count_params(make(h)) - target_params)
        if best_gap is None or gap < best_gap:
            best, best_gap = h, gap
    return best


@register_experiment
class GruVsLstm(Experiment):
    """LSTM and GRU at the same hidden size (and a GRU widened to the LSTM's parameter count) on the
    adding problem and MNIST-1D. Time per step comes from the runs (wall time / steps) and from a
    one-thread benchmark (median of ``bench_repeats`` steps on one training batch). On CPU, torch runs
    the LSTM as one oneDNN kernel per layer (``mkldnn_rnn_layer``) but the GRU as a loop of per-step
    ATen ops (profiled), so the GRU's fewer FLOPs need not make it faster there."""

    name = "gru-vs-lstm"
    title = "GRU vs LSTM: parameters, time per step and accuracy at equal hidden size (and equal parameters)"
    claim = (
        "The GRU matches the LSTM's accuracy with three gate blocks instead of four, i.e. 3/4 of its recurrent "
        "parameters at the same hidden size — Cho et al. 2014, Chung et al. 2014, Jozefowicz et al. 2015."
    )
    options = (
        "lengths",
        "hidden_size",
        "steps",
        "mnist1d_steps",
        "seeds",
        "equal_params",
        "bench_repeats",
        "overrides",
    )

    def _settings(self, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
        steps = int(options.get("steps", 20 if quick else 3000))
        mnist_steps = int(options.get("mnist1d_steps", 20 if quick else 3000))
        return {
            "lengths": [int(t) for t in options.get("lengths", [20] if quick else [50, 100])],
            "hidden_size": int(options.get("hidden_size", 64)),
            "steps": steps,
            "mnist1d_steps": mnist_steps,
            "seeds": [int(s) for s in options.get("seeds", [0] if quick else [0, 1])],
            "equal_params": bool(options.get("equal_params", True)),
            "bench_repeats": int(options.get("bench_repeats", 3 if quick else 15)),
            "adding": {
                **_budget(steps),
                "optim.lr": 3e-3,
                **({"data.options.n_train": 512, "data.options.n_test": 256} if quick else {}),
                **options.get("overrides", {}),
            },
            "mnist1d": {
                **_budget(mnist_steps),
                "optim.grad_clip_norm": 1.0,
                **({"data.train_subset": 512, "data.test_subset": 256} if quick else {}),
                **options.get("overrides", {}),
            },
        }

    def _tasks(self, s: dict[str, Any]) -> list[tuple[str, Callable[[dict[str, Any], str, int], dict[str, Any]]]]:
        out: list[tuple[str, Callable[[dict[str, Any], str, int], dict[str, Any]]]] = []
        for t in s["lengths"]:
            out.append(
                (f"adding T={t}", lambda model, name, seed, t=t: adding_recipe(model, t, s["adding"], name, seed))
            )
        out.append(("MNIST-1D", lambda model, name, seed: mnist1d_recipe(model, s["mnist1d"], name, seed)))
        return out

    def _variants(self, s: dict[str, Any], task: str) -> list[tuple[str, dict[str, Any]]]:
        h = s["hidden_size"]
        base = {"readout": "last", "bidirectional": False}
        variants = [
            ("LSTM", {"name": "lstm", "hidden_size": h, **base}),
            ("GRU", {"name": "gru", "hidden_size": h, **base}),
        ]
        if s["equal_params"]:
            shape = ((2, 10), 1) if task.startswith("adding") else ((1, 40), 10)
            lstm = count_params(create_model("lstm", in_shape=shape[0], num_classes=shape[1], hidden_size=h, **base))
            h_gru = matched_hidden_size(
                lstm,
                lambda k: create_model("gru", in_shape=shape[0], num_classes=shape[1], hidden_size=k, **base),
                h,
            )
            variants.append(("GRU (≈ LSTM params)", {"name": "gru", "hidden_size": h_gru, **base}))
        return variants

    def validate(self, *, quick: bool = False, options: dict[str, Any] | None = None) -> None:
        s = self._settings(quick, options or {})
        if not s["seeds"] or s["bench_repeats"] < 1:
            raise ConfigError("seeds must name at least one seed and bench_repeats must be ≥ 1")
        for task, make in self._tasks(s):
            for _, model in self._variants(s, task):
                make(model, model["name"], 0)

    def run(self, out_dir: Path, *, quick: bool = False, options: dict[str, Any] | None = None) -> ExperimentResult:
        options = options or {}
        s = self._settings(quick, options)
        seeds = s["seeds"]
        jobs_list = []
        plan = []  # (key, task, label, model, run name per seed)
        for ti, (task, make) in enumerate(self._tasks(s)):
            slug = "adding-T" + task.split("=")[1] if task.startswith("adding") else "mnist1d"
            for vi, (label, model) in enumerate(self._variants(s, task)):
                key = f"{ti}:{vi}"
                names = {seed: f"{slug}-{model['name']}{model['hidden_size']}-s{seed}" for seed in seeds}
                plan.append((key, task, label, model, names))
                for seed in seeds:
                    jobs_list.append((key, seed, make(model, names[seed], seed), str(out_dir / names[seed])))
        summaries = train_runs(jobs_list, jobs=options.get("jobs"), on_run=options.get("on_run"))

        results = []
        for key, task, label, model, names in plan:
            ss = [summaries[key, seed] for seed in seeds]
            if task.startswith("adding"):
                sc = [adding_scores(out_dir / names[seed]) for seed in seeds]
                mse: float | None = statistics.fmean(x["mse"] for x in sc)
                accs = [x["accuracy"] for x in sc]
            else:
                mse = None
                accs = [x["test"]["accuracy"] for x in ss]
            trained, recipe = load_trained(out_dir / names[seeds[0]])
            batch = load_dataset(recipe.data.name, "train", options=recipe.data.options).x[: recipe.data.batch_size]
            results.append(
                {
                    "task": task,
                    "label": label,
                    "hidden_size": model["hidden_size"],
                    "params": ss[0]["params"],
                    "recurrent_params": _recurrent_params(trained),
                    "ms_run": statistics.fmean(1000 * x["wall_time_s"] / x["steps"] for x in ss),
                    "ms_bench": median_step_ms(trained, batch, s["bench_repeats"]),
                    "mse": mse,
                    "acc": statistics.fmean(accs),
                    "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                }
            )
        rows = [
            [
                r["task"],
                r["label"],
                r["hidden_size"],
                r["params"],
                r["recurrent_params"],
                round(r["ms_run"], 2),
                round(r["ms_bench"], 2),
                "—" if r["mse"] is None else f"{r['mse']:.4f}",
                f"{100 * r['acc']:.1f}" + (f" ± {100 * r['acc_std']:.1f}" if len(seeds) > 1 else ""),
            ]
            for r in results
        ]
        labels = [f"{r['task']} · {r['label']}" for r in results]
        bar(
            labels,
            [100 * r["acc"] for r in results],
            "test accuracy % (adding: |error| < 0.04)",
            out_dir / "figures" / "accuracy.png",
            errors=[100 * r["acc_std"] for r in results],
            title=f"GRU vs LSTM, mean of {len(seeds)} seed(s)",
        )
        bar(
            labels,
            [r["ms_bench"] for r in results],
            "ms per training step (1 thread, median)",
            out_dir / "figures" / "time_per_step.png",
            title="Time per training step (forward, backward, Adam)",
        )
        verdict, supported = self._verdict(s, results)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "task",
                "model",
                "hidden",
                "params",
                "recurrent params",
                "ms/step (in run)",
                "ms/step (bench, 1 thread)",
                "test MSE",
                "test accuracy %",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={"settings": {k: v for k, v in s.items() if k not in ("adding", "mnist1d")}, "results": results},
            supported=supported,
        )

    @staticmethod
    def _verdict(s: dict[str, Any], results: list[dict[str, Any]]) -> tuple[str, bool | None]:
        by = {(r["task"], r["label"]): r for r in results}
        tasks = list(dict.fromkeys(r["task"] for r in results))
        first = tasks[0]
        lstm, gru = by[first, "LSTM"], by[first, "GRU"]
        frac = gru["recurrent_params"] / lstm["recurrent_params"]
        gaps = {t: by[t, "GRU"]["acc"] - by[t, "LSTM"]["acc"] for t in tasks}
        speed = {t: by[t, "GRU"]["ms_bench"] / by[t, "LSTM"]["ms_bench"] for t in tasks}
        verdict = (
            f"At H={s['hidden_size']} the GRU's recurrent layer has {gru['recurrent_params']:,} parameters vs the "
            f"LSTM's {lstm['recurrent_params']:,} ({frac:.2f}×, on {first}). Accuracy GRU − LSTM: "
            + ", ".join(f"{t} {100 * g:+.1f} points" for t, g in gaps.items())
            + ". Time per step GRU/LSTM (1 thread, median): "
            + ", ".join(f"{t} {r:.2f}×" for t, r in speed.items())
            + ". "
        )
        eq = "GRU (≈ LSTM params)"
        if s["equal_params"]:
            verdict += (
                "A GRU widened to the LSTM's parameter count, accuracy minus the LSTM's: "
                + ", ".join(
                    f"{t} {100 * (by[t, eq]['acc'] - by[t, 'LSTM']['acc']):+.1f} points (H={by[t, eq]['hidden_size']})"
                    for t in tasks
                )
                + ". "
            )
        # comparable: within 5 points, or within twice the seeds' spread of the difference
        noise = {t: 2 * math.hypot(by[t, "GRU"]["acc_std"], by[t, "LSTM"]["acc_std"]) for t in tasks}
        comparable = all(abs(g) <= max(0.05, noise[t]) for t, g in gaps.items())
        verdict += (
            (
                "Accuracy is comparable on every task (each gap within 5 points or within twice the seeds' spread) "
                if comparable
                else "Accuracy is NOT comparable on every task (a gap beyond 5 points and the seeds' spread), "
            )
            + f"with {frac:.2f}× the recurrent parameters: "
            + ("the claim holds." if comparable else "the claim is not reproduced.")
        )
        slower = [r for r in speed.values() if r >= 1]
        if slower:
            verdict += (
                f" Fewer parameters do not make the GRU faster here: on {len(slower)} of {len(speed)} tasks its "
                f"step takes {min(slower):.2f}–{max(slower):.2f}× the LSTM's (the kernels, not the FLOPs, decide "
                "on this CPU)."
            )
        return verdict, comparable


# -- the sequential bottleneck --------------------------------------------------------------------
class SelfAttentionStandIn(nn.Module):
    """One causal multi-head self-attention layer (Vaswani et al. 2017, Eq. 1), a stand-in for the
    transformer family's block until that family lands: Q, K, V = x W_qkv; y = softmax(QKᵀ/√d_h + M) V;
    out = y W_o. All T positions are computed at once: its sequential depth is 1.
    Shapes: x (B, T, d) → (B, T, d)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))  # (B, T, d)


@register_experiment
class SequentialBottleneck(Experiment):
    name = "sequential-bottleneck"
    title = "The sequential bottleneck: time per training step vs sequence length, LSTM vs self-attention"
    claim = (
        "A recurrent network needs T sequential steps per sequence, so its time per step grows linearly in T "
        "however parallel the hardware, while self-attention processes all positions at once (sequential depth 1) "
        "at a cost of T² scores — Vaswani et al. 2017, Table 1."
    )
    options = ("lengths", "width", "heads", "batch_size", "repeats", "threads")

    def _settings(self, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "lengths": [
                int(t) for t in options.get("lengths", [16, 64] if quick else [16, 32, 64, 128, 256, 512, 1024])
            ],
            "width": int(options.get("width", 64)),
            "heads": int(options.get("heads", 4)),
            "batch_size": int(options.get("batch_size", 32)),
            "repeats": int(options.get("repeats", 3 if quick else 7)),
            "threads": int(options.get("threads", 1)),
        }

    def validate(self, *, quick: bool = False, options: dict[str, Any] | None = None) -> None:
        s = self._settings(quick, options or {})
        if s["width"] < 1 or s["heads"] < 1:
            raise ConfigError(f"width and heads must be ≥ 1, got width={s['width']}, heads={s['heads']}")
        if s["width"] % s["heads"]:
            raise ConfigError(f"width: {s['width']} is not divisible by heads={s['heads']}")
        if min(s["lengths"]) < 1 or s["repeats"] < 1 or s["threads"] < 1 or s["batch_size"] < 1:
            raise ConfigError("lengths, repeats, threads and batch_size must be ≥ 1")

    def run(self, out_dir: Path, *, quick: bool = False, options: dict[str, Any] | None = None) -> ExperimentResult:
        s = self._settings(quick, options or {})
        d, lengths = s["width"], sorted(s["lengths"])
        torch.manual_seed(0)
        makers = {
            "LSTM": lambda: LSTM(d, d, batch_first=True),
            "self-attention (stand-in)": lambda: SelfAttentionStandIn(d, s["heads"]),
        }
        params = {k: count_params(make()) for k, make in makers.items()}
        ms: dict[str, list[float]] = {k: [] for k in makers}
        for t in lengths:
            x = torch.randn(s["batch_size"], t, d)
            for k, make in makers.items():
                ms[k].append(median_step_ms(make(), x, s["repeats"], threads=s["threads"]))
        lstm, att = ms["LSTM"], ms["self-attention (stand-in)"]
        big = [i for i, t in enumerate(lengths) if t >= 128] if sum(t >= 128 for t in lengths) >= 2 else []
        slopes = {k: loglog_slope(lengths, v) for k, v in ms.items()} if len(lengths) > 1 else {}
        slopes_big = (
            {k: loglog_slope([lengths[i] for i in big], [v[i] for i in big]) for k, v in ms.items()} if big else {}
        )
        rows = [
            [t, t, 1, round(lstm[i], 2), round(att[i], 2), round(lstm[i] / att[i], 2), round(1000 * lstm[i] / t, 1)]
            for i, t in enumerate(lengths)
        ]
        lines(
            {
                f"{k} ({params[k]:,} params)" + (f", slope {slopes[k]:.2f}" if slopes else ""): [
                    (t, math.log10(v[i]), 0.0) for i, t in enumerate(lengths)
                ]
                for k, v in ms.items()
            },
            "sequence length T",
            "log₁₀ ms per training step (median)",
            out_dir / "figures" / "time_vs_length.png",
            title=f"B={s['batch_size']}, d={d}, {s['threads']} torch thread(s), forward + backward + Adam",
        )
        verdict, supported = self._verdict(s, lengths, lstm, att, slopes, slopes_big)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "T",
                "LSTM sequential steps",
                "attention sequential steps",
                "LSTM ms/step",
                "attention ms/step",
                "LSTM / attention",
                "LSTM µs per time step",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": s,
                "params": params,
                "ms": ms,
                "slope_all": slopes,
                "slope_T_ge_128": slopes_big,
                "torch_threads": s["threads"],
                "note": "the attention side is a stand-in (one causal self-attention layer from "
                "F.scaled_dot_product_attention + linear projections) until the transformer family adds its model",
            },
            supported=supported,
        )

    @staticmethod
    def _verdict(
        s: dict[str, Any],
        lengths: list[int],
        lstm: list[float],
        att: list[float],
        slopes: dict[str, float],
        slopes_big: dict[str, float],
    ) -> tuple[str, bool | None]:
        a, b = "LSTM", "self-attention (stand-in)"
        verdict = (
            f"One training step (forward, backward, Adam) on B={s['batch_size']}, d={s['width']}, "
            f"{s['threads']} torch thread(s), median of {s['repeats']}: "
            f"T={lengths[0]}: LSTM {lstm[0]:.2f} ms vs attention {att[0]:.2f} ms; "
            f"T={lengths[-1]}: LSTM {lstm[-1]:.2f} ms ({lengths[-1]} sequential steps) vs attention "
            f"{att[-1]:.2f} ms (1). "
        )
        if not slopes:
            return verdict + "One length only: no fit.", None
        verdict += f"Log-log slopes over T={lengths[0]}…{lengths[-1]}: LSTM {slopes[a]:.2f}, attention {slopes[b]:.2f}"
        if slopes_big:
            verdict += f" (T ≥ 128: LSTM {slopes_big[a]:.2f}, attention {slopes_big[b]:.2f})"
        verdict += ". "
        linear = slopes[a] >= 0.8
        faster = all(x < y for x, y in zip(att, lstm))
        crossing = next((t for t, x, y in zip(lengths, att, lstm) if x >= y), None)
        verdict += (
            f"The LSTM's time grows {'about linearly' if linear else 'sub-linearly'} with its T sequential steps"
            + (
                " and attention is faster at every length measured"
                if faster
                else f"; attention is faster until its T² term catches up (slower from T={crossing})"
            )
            + ". "
        )
        if linear and faster:
            return verdict + "The claim holds on this hardware.", True
        if linear:
            return (
                verdict + "The recurrence does cost T sequential steps, but on this hardware the attention side has no "
                "parallel units to spread its T² work over, so the claim is only partly visible here.",
                None,
            )
        return verdict + "The LSTM's time does not grow linearly: the claim is not visible at these lengths.", False
