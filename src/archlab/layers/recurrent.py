"""Recurrent cells and layers (vanilla RNN, LSTM, GRU), written from their equations.

Each cell is a function of one time step whose docstring gives the equations it computes, in
torch's gate order and bias convention (LSTM i, f, g, o; GRU r, z, n with r applied to
W_hn h + b_hn), so the same weights run through ``torch.nn.LSTM``'s fused kernel and through our
loop. The layers ``RNN``, ``LSTM`` and ``GRU`` *are* ``torch.nn.RNN/LSTM/GRU`` (subclasses: same
parameter names ``weight_ih_l{k}{_reverse}``…, shapes, initialisation and state dict) with one
more argument, ``impl``:

* ``"fused"`` (default): torch's fused kernel (cuDNN, oneDNN), ``pack_padded_sequence`` for
  ``lengths``. Train with this.
* ``"cells"``: our loop over the cell functions below. Read this; the tests check that both give
  the same outputs, final states and gradients.
* ``"scan"`` (GRU only): the same equations with their backward pass written out (back-propagation
  through time, ``_GRUScan``), the directions of a layer stepped together in one batched loop. On
  CPU torch runs its GRU as some 4,000 small autograd ops per training step of the MNIST-1D GRU;
  this path needs about a third of them (see docs/rnn.md for the measured speed). Sequences with
  ``lengths`` (or packed) run the cells path.

Both take ``lengths`` (B,) or a ``PackedSequence`` for sequences of unequal length: padded steps
never change the outputs at valid steps, the outputs at padded steps are zero, the final state of
a sequence is its state at its own last valid step, and the reverse direction starts there too.

Also here: truncated back-propagation through time for long streams (``tbptt_chunks``,
``detach_state``) and the pooling that reads a sequence of states out as one vector
(``SequencePooling``: mean, max or attention over the valid steps).

Letter legend: B batch, T steps, I input features, H hidden units, P LSTM projection size
(h_t has P features when P > 0, else H), G gates per cell (RNN 1, LSTM 4, GRU 3), L layers,
D directions (1 or 2); σ logistic sigmoid, ⊙ element-wise product.
Shapes (batch_first=True): x (B, T, I), lengths (B,) → output (B, T, D·H), h_n (L·D, B, H),
LSTM c_n (L·D, B, H); hx like h_n. batch_first=False swaps B and T in x and output only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from archlab.utils.errors import ShapeError

__all__ = [
    "GRU",
    "LSTM",
    "RECURRENT_LAYERS",
    "RNN",
    "AttentionPooling",
    "GRUCell",
    "LSTMCell",
    "RECURRENT_LAYERS",
    "RNNCell",
    "RecurrentBase",
    "SequencePooling",
    "detach_state",
    "last_state",
    "gru_cell",
    "lstm_cell",
    "rnn_cell",
    "tbptt_chunks",
]

Impl = Literal["fused", "cells", "scan"]
IMPLS: tuple[str, ...] = get_args(Impl)
State = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


# -- cells: one time step each ----------------------------------------------------------------
def rnn_cell(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None, nonlinearity: str = "tanh") -> Tensor:
    """One step of the vanilla (Elman 1990) RNN.

        h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh),   φ = tanh or ReLU

    ``gx`` is the input half, W_ih x_t + b_ih (B, H): a layer computes it for every step at once
    with one matmul, and only the recurrent half stays in the loop. Shapes: h (B, H) → (B, H).
    """
    a = gx + F.linear(h, w_hh, b_hh)
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)


def lstm_cell(
    gx: Tensor,
    state: tuple[Tensor, Tensor],
    w_hh: Tensor,
    b_hh: Tensor | None = None,
    w_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step (Hochreiter & Schmidhuber 1997, forget gate of Gers et al. 2000).

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)          input gate
        f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)          forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)       cell candidate
        o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)          output gate
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t                         cell state
        h_t = o_t ⊙ tanh(c_t)                                   (then h_t = W_hr h_t if P > 0)

    The weights are stacked in torch's order: W_ih = [W_ii; W_if; W_ig; W_io] (4H, I), likewise
    W_hh (4H, P or H) and both biases. ``gx`` = W_ih x_t + b_ih (B, 4H), precomputed by the layer
    for all steps. Shapes: state (h (B, P or H), c (B, H)) → the same.
    """
    h, c = state
    gates = gx + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 × (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)  # (B, P): the projection of Sak et al. 2014
    return h, c


def gru_cell(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None) -> Tensor:
    """One GRU step (Cho et al. 2014), torch's variant: r multiplies W_hn h + b_hn.

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)          reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)          update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))   candidate
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

    Weights stacked in the order r, z, n: W_ih = [W_ir; W_iz; W_in] (3H, I), likewise W_hh and
    both biases. ``gx`` = W_ih x_t + b_ih (B, 3H), precomputed by the layer for all steps.
    Shapes: h (B, H) → (B, H).
    """
    x_r, x_z, x_n = gx.chunk(3, dim=-1)  # 3 × (B, H)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


class RNNCell(nn.RNNCell):
    """``torch.nn.RNNCell`` (same parameters) computing :func:`rnn_cell`:
    h' = φ(W_ih x + b_ih + W_hh h + b_hh). Shapes: x (B, I), h (B, H) → (B, H); h defaults to 0."""

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = input.new_zeros(input.shape[0], self.hidden_size) if hx is None else hx
        gx = F.linear(input, self.weight_ih, self.bias_ih)
        return rnn_cell(gx, h, self.weight_hh, self.bias_hh, self.nonlinearity)


class LSTMCell(nn.LSTMCell):
    """``torch.nn.LSTMCell`` (same parameters) computing :func:`lstm_cell` (gates i, f, g, o).
    Shapes: x (B, I), (h, c) (B, H) each → (h', c'); the state defaults to zeros."""

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is None:
            zeros = input.new_zeros(input.shape[0], self.hidden_size)
            hx = (zeros, zeros)
        return lstm_cell(F.linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)


class GRUCell(nn.GRUCell):
    """``torch.nn.GRUCell`` (same parameters) computing :func:`gru_cell` (gates r, z, n).
    Shapes: x (B, I), h (B, H) → (B, H); h defaults to 0."""

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = input.new_zeros(input.shape[0], self.hidden_size) if hx is None else hx
        return gru_cell(F.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)


# -- layers: stacked, bidirectional, variable length ------------------------------------------
Step = Callable[[Tensor, State], State]


class RecurrentBase(nn.RNNBase):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: the ``impl`` switch, ``lengths`` and the cell loop.

    A subclass lists its torch class second (``class LSTM(RecurrentBase, nn.LSTM)``), so the
    parameters, their initialisation and the fused ``forward`` are torch's own; it supplies
    ``_step`` (one cell step with the weights of one layer and direction) and, for the LSTM, the
    sizes of its two-tensor state.

    ``forward(input, hx=None, lengths=None)`` returns ``(output, h_n)`` (LSTM: ``(output, (h_n,
    c_n))``) like torch. ``input`` is (B, T, I) (batch_first), (T, B, I), an unbatched (T, I), or a
    ``PackedSequence`` (then the output is one too); ``lengths`` (B,) holds each sequence's number
    of valid steps, 1 ≤ lengths ≤ T, on any device.
    """

    impl: Impl
    _has_scan = False  # whether the kind has a written-out backward pass (impl="scan")

    def __init__(self, *args, impl: Impl = "fused", **kwargs):
        super().__init__(*args, **kwargs)
        self.impl = _check_impl(impl)
        if self.impl == "scan" and not self._has_scan:
            raise ValueError(f"impl='scan' is written for the GRU only; use 'fused' or 'cells' for {self.mode}")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl!r}"

    # kind-specific pieces ---------------------------------------------------------------------
    def _state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,)

    def _step(self, suffix: str) -> Step:
        raise NotImplementedError

    def _weights(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(W_ih, W_hh, b_ih, b_hh) of one layer and direction, e.g. ``suffix="_l1_reverse"``."""
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")

    # forward --------------------------------------------------------------------------------
    def forward(self, input, hx=None, lengths: Tensor | None = None):
        _check_impl(self.impl)
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("give either a PackedSequence or lengths, not both")
            if self.impl == "fused":
                return super().forward(input, hx)
            x, lens = pad_packed_sequence(
                input, batch_first=True
            )  # "cells" and "scan" alike  # (B, T, I), original batch order
            out, state = self._forward_cells(x, hx, lens)
            return _repack(out, lens, input), state
        self._check_input(input, lengths)
        if self.impl == "fused":
            if lengths is None:
                return super().forward(input, hx)
            steps = input.shape[1 if self.batch_first else 0]
            packed = pack_padded_sequence(input, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=False)
            out, state = super().forward(packed, hx)  # h_n comes back in the input's batch order
            out, _ = pad_packed_sequence(out, batch_first=self.batch_first, total_length=steps)
            return out, state
        if input.dim() == 2:  # unbatched (T, I): a batch of one
            hx_b = None if hx is None else _map_state(hx, lambda t: t.unsqueeze(1))
            out, state = self._forward_cells(input.unsqueeze(0), hx_b, None)
            return out.squeeze(0), _map_state(state, lambda t: t.squeeze(1))
        x = input if self.batch_first else input.transpose(0, 1)  # (B, T, I)
        if self.impl == "scan" and lengths is None:
            out, state = self._forward_scan(x, hx)
        else:
            out, state = self._forward_cells(x, hx, lengths)
        return (out if self.batch_first else out.transpose(0, 1)), state

    def _forward_scan(self, x: Tensor, hx) -> tuple[Tensor, Tensor]:
        """The written-out path (GRU) on a batch-first x (B, T, I): per layer, the input half of
        every gate for every step and direction at once, then one loop over time for all directions."""
        b = x.shape[0]
        dirs = 2 if self.bidirectional else 1
        states = self._initial_states(hx, b, x)
        finals: list[Tensor] = []
        for layer in range(self.num_layers):
            ws = [self._weights(f"_l{layer}" + ("_reverse" if d else "")) for d in range(dirs)]
            # (T, D, B, G·H): the reverse direction reads the sequence backwards, in its own step order
            gx = torch.stack([F.linear(x.flip(1) if d else x, w[0], w[2]) for d, w in enumerate(ws)]).permute(
                2, 0, 1, 3
            )
            h0 = torch.stack([states[layer * dirs + d][0] for d in range(dirs)])  # (D, B, H)
            w_hh = torch.stack([w[1] for w in ws])  # (D, G·H, H)
            b_hh = torch.stack([w[3] for w in ws]) if self.bias else w_hh.new_zeros(dirs, w_hh.shape[1])
            hs = _GRUScan.apply(gx, h0, w_hh, b_hh)  # (T, D, B, H), each direction in its own step order
            finals += list(hs[-1])
            outs = hs.permute(1, 2, 0, 3)  # (D, B, T, H)
            x = torch.cat([outs[0], outs[1].flip(1)], dim=-1) if dirs == 2 else outs[0]  # (B, T, D·H)
            if layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
        return x, torch.stack(finals)  # (L·D, B, H)

    def _forward_cells(self, x: Tensor, hx, lengths: Tensor | None):
        """The equation-level path on a batch-first x (B, T, I)."""
        b = x.shape[0]
        dirs = 2 if self.bidirectional else 1
        states = self._initial_states(hx, b, x)  # L·D states, each (h,) or (h, c)
        mask = _valid_mask(x, lengths)  # (B, T, 1): True at valid steps
        finals: list[State] = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                w_ih, _, b_ih, _ = self._weights(suffix)
                gx = F.linear(x, w_ih, b_ih)  # (B, T, G·H): the input half of every gate, all steps at once
                out, final = _scan(self._step(suffix), gx, states[layer * dirs + d], mask, reverse=d == 1)
                outs.append(out)
                finals.append(final)
            x = torch.cat(outs, dim=-1) if dirs == 2 else outs[0]  # (B, T, D·H)
            if layer < self.num_layers - 1:  # dropout between layers, never after the last
                x = F.dropout(x, self.dropout, self.training)
        h_n = tuple(torch.stack(parts) for parts in zip(*finals))  # each (L·D, B, ·)
        return x, (h_n if len(h_n) == 2 else h_n[0])

    def _initial_states(self, hx, batch: int, x: Tensor) -> list[State]:
        n = self.num_layers * (2 if self.bidirectional else 1)
        sizes = self._state_sizes()
        if hx is None:
            hx = tuple(x.new_zeros(n, batch, s) for s in sizes)
        hx = hx if isinstance(hx, tuple | list) else (hx,)
        for name, t, s in zip(("h_0", "c_0"), hx, sizes):
            if tuple(t.shape) != (n, batch, s):
                raise ShapeError(f"{name}: expected shape ({n}, {batch}, {s}) (L·D, B, ·), got {tuple(t.shape)}")
        return list(zip(*(t.unbind(0) for t in hx)))

    def _check_input(self, x: Tensor, lengths: Tensor | None) -> None:
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            layout = ("T",) if x.dim() == 2 else ((None, "T") if self.batch_first else ("T", None))
            raise ShapeError(f"input: expected shape {_fmt((*layout, self.input_size))}, got {tuple(x.shape)}")
        if lengths is None:
            return
        if x.dim() != 3:
            raise ShapeError("lengths need a batched input (B, T, I)")
        b, t = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        if lengths.shape != (b,):
            raise ShapeError(f"lengths: expected shape ({b},), got {tuple(lengths.shape)}")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > t):
            raise ValueError(f"lengths must lie in [1, T={t}], got {lengths.tolist()}")


class RNN(RecurrentBase, nn.RNN):
    """Multi-layer Elman RNN with φ = tanh or ReLU (:func:`rnn_cell`); ``torch.nn.RNN``'s parameters.

    Args:
        input_size: I. hidden_size: H. num_layers: L.
        nonlinearity: "tanh" or "relu".
        bias: add b_ih and b_hh.
        batch_first: x is (B, T, I) (default) rather than (T, B, I).
        dropout: probability of dropping each output of every layer but the last, while training.
        bidirectional: a second chain reads each sequence backwards from its last valid step; the
            two outputs are concatenated (D = 2).
        impl: "fused" (torch's kernel) or "cells" (our loop over :func:`rnn_cell`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        impl: Impl = "fused",
        device=None,
        dtype=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            nonlinearity=nonlinearity,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            impl=impl,
            device=device,
            dtype=dtype,
        )

    def _step(self, suffix: str) -> Step:
        _, w_hh, _, b_hh = self._weights(suffix)
        return lambda gx, s: (rnn_cell(gx, s[0], w_hh, b_hh, self.nonlinearity),)


class LSTM(RecurrentBase, nn.LSTM):
    """Multi-layer LSTM (:func:`lstm_cell`, gates i, f, g, o); ``torch.nn.LSTM``'s parameters.

    Args as :class:`RNN` (no nonlinearity), plus ``proj_size``: P > 0 projects h_t to P features
    with W_hr (Sak et al. 2014), as torch. The state is the pair (h, c).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        impl: Impl = "fused",
        device=None,
        dtype=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            impl=impl,
            device=device,
            dtype=dtype,
        )

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def _step(self, suffix: str) -> Step:
        _, w_hh, _, b_hh = self._weights(suffix)
        w_hr = getattr(self, f"weight_hr{suffix}") if self.proj_size else None
        return lambda gx, s: lstm_cell(gx, (s[0], s[1]), w_hh, b_hh, w_hr)


class GRU(RecurrentBase, nn.GRU):
    """Multi-layer GRU (:func:`gru_cell`, gates r, z, n); ``torch.nn.GRU``'s parameters.

    Args as :class:`RNN` (no nonlinearity); ``impl`` also "scan" (the written-out backward pass).
    """

    _has_scan = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        impl: Impl = "fused",
        device=None,
        dtype=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            impl=impl,
            device=device,
            dtype=dtype,
        )

    def _step(self, suffix: str) -> Step:
        _, w_hh, _, b_hh = self._weights(suffix)
        return lambda gx, s: (gru_cell(gx, s[0], w_hh, b_hh),)


# the layers by the names model configs use (``cell: lstm``): the forecasters, language models and
# encoder–decoders pick their recurrence here
RECURRENT_LAYERS: dict[str, type[RecurrentBase]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class _GRUScan(torch.autograd.Function):
    """:func:`gru_cell` over T steps for D chains at once, with the backward pass written out.

    Forward, per step t (all D directions in one batched matmul, each in its own step order):
        a_t = W_hh h_{t−1} + b_hh = [a_r; a_z; a_n]
        r_t = σ(gx_r + a_r),  z_t = σ(gx_z + a_z),  n_t = tanh(gx_n + r_t ⊙ a_n)
        h_t = n_t + z_t ⊙ (h_{t−1} − n_t)                       = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
    Backward (back-propagation through time, Werbos 1990), from δh_t = ∂L/∂h_t (the output's
    gradient plus what flows back from step t + 1):
        δn̂ = δh_t ⊙ (1 − z_t) ⊙ (1 − n_t²)                      pre-tanh of n
        δr̂ = δn̂ ⊙ a_n ⊙ r_t (1 − r_t),  δẑ = δh_t ⊙ (h_{t−1} − n_t) ⊙ z_t (1 − z_t)
        ∂L/∂gx_t = [δr̂; δẑ; δn̂],  ∂L/∂a_t = [δr̂; δẑ; δn̂ ⊙ r_t]
        δh_{t−1} += δh_t ⊙ z_t + W_hhᵀ ∂L/∂a_t
    and after the loop ∂L/∂W_hh = Σ_t ∂L/∂a_t h_{t−1}ᵀ, ∂L/∂b_hh = Σ_t ∂L/∂a_t (one matmul each).
    Every step-independent factor is computed for all steps at once before the loop.

    Shapes: gx (T, D, B, 3H) = W_ih x_t + b_ih per direction; h0 (D, B, H); w_hh (D, 3H, H);
    b_hh (D, 3H) → h_1 … h_T (T, D, B, H).
    """

    @staticmethod
    def forward(ctx, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        t_max, d, b, g = gx.shape
        hid = g // 3
        w_t, bias = w_hh.transpose(1, 2), b_hh.unsqueeze(1)  # (D, H, 3H), (D, 1, 3H)
        hs = gx.new_empty(t_max + 1, d, b, hid)  # h_0 … h_T
        hs[0] = h0
        rz, n, a_n = gx.new_empty(t_max, d, b, 2 * hid), gx.new_empty(t_max, d, b, hid), gx.new_empty(t_max, d, b, hid)
        gx_rz, gx_n = gx[..., : 2 * hid].unbind(0), gx[..., 2 * hid :].unbind(0)  # views, one per step
        rz_t, n_t, a_n_t, h_t = rz.unbind(0), n.unbind(0), a_n.unbind(0), hs.unbind(0)
        h = h0
        for t in range(t_max):
            a = torch.baddbmm(bias, h, w_t)  # (D, B, 3H)
            a_rz, a_nt = a.split([2 * hid, hid], dim=-1)
            r, z = torch.sigmoid(torch.add(gx_rz[t], a_rz), out=rz_t[t]).split(hid, dim=-1)
            a_n_t[t].copy_(a_nt)
            n_now = torch.tanh(torch.addcmul(gx_n[t], r, a_nt), out=n_t[t])
            h = torch.addcmul(n_now, z, h - n_now, out=h_t[t + 1])
        ctx.save_for_backward(hs, rz, n, a_n, w_hh)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        hs, rz, n, a_n, w_hh = ctx.saved_tensors
        t_max, d, b, hid = n.shape
        r, z = rz.split(hid, dim=-1)
        k_n = (1 - z) * (1 - n * n)  # δh → δn̂
        k_r = a_n * r * (1 - r)  # δn̂ → δr̂
        k_z = (hs[:-1] - n) * z * (1 - z)  # δh → δẑ
        d_a = grad_out.new_empty(t_max, d, b, 3 * hid)  # ∂L/∂a_t
        d_gx_n = grad_out.new_empty(t_max, d, b, hid)  # ∂L/∂gx_n (the r and z parts equal ∂L/∂a's)
        d_r, d_z, d_an = (part.unbind(0) for part in d_a.split(hid, dim=-1))
        steps = [x.unbind(0) for x in (grad_out, k_n, k_r, k_z, z, r, d_gx_n, d_a)]
        g_out, k_n_t, k_r_t, k_z_t, z_t, r_t, d_n_t, d_a_t = steps
        dh = grad_out.new_zeros(d, b, hid)
        for t in reversed(range(t_max)):
            dh = dh + g_out[t]
            dn = torch.mul(dh, k_n_t[t], out=d_n_t[t])
            torch.mul(dn, k_r_t[t], out=d_r[t])
            torch.mul(dh, k_z_t[t], out=d_z[t])
            torch.mul(dn, r_t[t], out=d_an[t])
            dh = torch.baddbmm(dh * z_t[t], d_a_t[t], w_hh)  # (D, B, H)
        d_gx = torch.cat([d_a[..., : 2 * hid], d_gx_n], dim=-1)
        d_w = torch.einsum("tdbg,tdbh->dgh", d_a, hs[:-1])
        return d_gx, dh, d_w, d_a.sum(dim=(0, 2))


def _scan(step: Step, gx: Tensor, state: State, mask: Tensor | None, reverse: bool) -> tuple[Tensor, State]:
    """Run one layer and direction over time: gx (B, T, G·H) → outputs (B, T, ·), final state.

    With a mask (B, T, 1), a padded step keeps the state it had (so the final state is the one
    at the last valid step, and a reverse chain starts fresh at the last valid step) and outputs 0.
    """
    t_max = gx.shape[1]
    ys: list[Tensor] = [gx] * t_max  # placeholders, each overwritten below
    for t in reversed(range(t_max)) if reverse else range(t_max):
        new = step(gx[:, t], state)
        if mask is not None:
            valid = mask[:, t]  # (B, 1)
            new = tuple(torch.where(valid, a, b) for a, b in zip(new, state))
        state = new
        ys[t] = state[0]
    out = torch.stack(ys, dim=1)  # (B, T, ·)
    if mask is not None:
        out = out.masked_fill(~mask, 0.0)
    return out, state


def _repack(out: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack the padded (B, T, ·) output with the batch order and sizes of the input ``like``."""
    order = like.sorted_indices
    if order is not None:
        out, lengths = out[order.to(out.device)], lengths[order.cpu()]
    data = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=True).data
    return like._replace(data=data)


def _map_state(state, fn: Callable[[Tensor], Tensor]):
    return tuple(fn(t) for t in state) if isinstance(state, tuple | list) else fn(state)


def _check_impl(impl: str) -> Impl:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}; got {impl!r}")
    return cast(Impl, impl)


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("B" if d is None else str(d) for d in shape) + ")"


# -- truncated back-propagation through time --------------------------------------------------
def tbptt_chunks(*streams: Tensor, k: int, dim: int = 1) -> Iterator[tuple[Tensor, ...]]:
    """Cut aligned streams into consecutive windows of ``k`` steps along ``dim`` (the last may be
    shorter): truncated BPTT (Williams & Peng 1990, with k1 = k2 = k) trains on each window,
    carrying the state over with :func:`detach_state` so that values flow forward across windows
    but gradients stop at each window's start::

        state = None
        for x, y in tbptt_chunks(x_stream, y_stream, k=50):   # (B, T, I), (B, T)
            out, state = lstm(x, state)
            loss = loss_fn(head(out), y)
            opt.zero_grad(); loss.backward(); opt.step()
            state = detach_state(state)
    """
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if not streams:
        return
    n = streams[0].shape[dim]
    if any(s.shape[dim] != n for s in streams):
        raise ShapeError(f"streams differ in length along dim {dim}: {[s.shape[dim] for s in streams]}")
    for start in range(0, n, k):
        yield tuple(s.narrow(dim, start, min(k, n - start)) for s in streams)


def detach_state(state):
    """The recurrent state with its history cut: a tensor, or a (nested) tuple/list of them."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


# -- reading a sequence of states out as one vector -------------------------------------------
def _valid_mask(x: Tensor, lengths: Tensor | None) -> Tensor | None:
    if lengths is None:
        return None
    return (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None])[..., None]  # (B, T, 1)


class AttentionPooling(nn.Module):
    """Attention pooling with one learned query q (Raffel & Ellis 2015, Yang et al. 2016):

        e_t = qᵀ h_t / √D,   α = softmax over the valid steps of e,   y = Σ_t α_t h_t

    q starts at zero, i.e. as mean pooling. Shapes: h (B, T, D), lengths (B,) → (B, D);
    ``weights(h, lengths)`` gives α (B, T), 0 at padded steps.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(dim))  # q (D,)

    def weights(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        scores = h @ self.query / h.shape[-1] ** 0.5  # (B, T)
        mask = _valid_mask(h, lengths)
        if mask is not None:
            scores = scores.masked_fill(~mask[..., 0], float("-inf"))
        return scores.softmax(dim=1)

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return (self.weights(h, lengths)[..., None] * h).sum(1)  # (B, D)


class SequencePooling(nn.Module):
    """A (B, T, D) sequence of states → one (B, D) vector, over the valid steps only.

        mean: y = (1/n) Σ_{t<n} h_t;   max: y_d = max_{t<n} h_{t,d};   attention: AttentionPooling

    (n = the sequence's length, T without ``lengths``).
    """

    def __init__(self, mode: Literal["mean", "max", "attention"], dim: int):
        super().__init__()
        if mode not in ("mean", "max", "attention"):
            raise ValueError(f"pooling mode must be mean, max or attention; got {mode!r}")
        self.mode = mode
        self.attention = AttentionPooling(dim) if mode == "attention" else None

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.attention is not None:
            return self.attention(h, lengths)
        mask = _valid_mask(h, lengths)
        if self.mode == "max":
            return (h if mask is None else h.masked_fill(~mask, float("-inf"))).amax(1)
        if mask is None:
            return h.mean(1)
        return h.masked_fill(~mask, 0.0).sum(1) / lengths.to(h.device, h.dtype)[:, None]

    def extra_repr(self) -> str:
        return repr(self.mode)


def last_state(h_n: Tensor, bidirectional: bool) -> Tensor:
    """The last layer's final state(s) from h_n (L·D, B, H) as (B, D·H): for D = 2, the forward
    state at each sequence's last valid step and the reverse state at its first step."""
    dirs = 2 if bidirectional else 1
    return h_n[-dirs:].transpose(0, 1).flatten(1)  # (B, D·H)
