"""Measurements on trained recurrent models, shared by the recurrent family's experiments.

The gradient probe (:func:`hidden_state_gradients`) runs a trained model's recurrence step by step
with the equation-level cells of :mod:`archlab.layers.recurrent` — the fused kernel keeps h_t
inside — so that every h_t is a node of the graph, and measures ‖∂ℓ/∂h_t‖ for a loss ℓ on the final
output only, in float64 (the vanished gradients underflow float32). The regression task reports
MSE; the adding problem's accuracy (|error| < 0.04, Hochreiter & Schmidhuber 1997) is computed here
from the trained checkpoint's test predictions (:func:`adding_scores`).

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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archlab.config import Recipe, load_recipe
from archlab.data import dataset_info, load_dataset
from archlab.data.synthetic import adding_accuracy
from archlab.engine import load_run
from archlab.layers.recurrent import GRU, LSTM, GRUCell, LSTMCell, RecurrentBase, RNNCell
from archlab.tasks import build_task
from archlab.utils.counting import count_params
from archlab.utils.seed import seed_everything

LABELS = {"rnn": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}


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
def sci(v: float) -> str:
    return f"{v:.1e}" if v and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.3g}"


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x: the exponent s of y ∝ x^s."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def recurrent_params(model: nn.Module) -> int:
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
