"""Parameter and FLOP counting (torch's own FLOP counter, no third-party tracer)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archlab.utils.units import human  # noqa: F401  (re-exported: count and print together)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; shared (tied) tensors are counted once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def example_inputs(model: nn.Module, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """The positional inputs of one forward call: the model's own ``example_inputs`` (token ids,
    source + target…) when it has one, else zeros of its ``input_shape``."""
    if hasattr(model, "example_inputs"):
        return tuple(model.example_inputs(batch))
    return (torch.zeros(batch, *tuple(getattr(model, "input_shape", ()))),)


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor | tuple) -> int:
    """Forward FLOPs of one call, as counted by ``torch.utils.flop_counter`` (a multiply-add = 2).

    Only the ops torch's counter knows (matmul, conv, attention…) are counted: element-wise
    activations and normalisations are not, which is the convention of published GFLOP/GMAC
    figures.
    """
    args = example if isinstance(example, tuple) else (example,)
    was_training = model.training
    model.eval()
    rnn_calls: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: rnn_calls.__setitem__(name, _rnn_flops(mod, inp)))
        for name, m in model.named_modules()
        if isinstance(m, nn.RNNBase)
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            model(*args)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    total = int(counter.get_total_flops())
    # fused recurrent kernels (oneDNN on CPU, cuDNN) are invisible to the counter: count them
    # from the equations when the counter saw nothing inside the module
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for name, flops in rnn_calls.items():
        key = f"{root}.{name}" if name else root
        if sum(counts.get(key, {}).values()) == 0:
            total += flops
    return total


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rnn_flops(rnn: nn.RNNBase, inputs: tuple) -> int:
    """2·G·H·(I + H) FLOPs per step, layer and direction (G gates; biases ignored); with an LSTM
    projection of P features, 2·4H·(I + P) + 2·H·P."""
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps_times_batch = int(x.data.shape[0])
    else:
        t_dim = 1 if rnn.batch_first else 0
        steps_times_batch = int(x.shape[t_dim]) * (int(x.shape[1 - t_dim]) if x.dim() == 3 else 1)
    g, h = _GATES.get(rnn.mode, 1), rnn.hidden_size
    p = getattr(rnn, "proj_size", 0) or 0  # LSTM projection: h_t = W_hr (o_t ⊙ tanh c_t) has P features
    out = p or h
    dirs = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        i = rnn.input_size if layer == 0 else out * dirs
        total += dirs * (2 * g * h * (i + out) + 2 * h * p) * steps_times_batch
    return total
