"""Recurrent cells and layers (archlab.layers.recurrent) and the rnn-family models.

The layers are torch's ``nn.RNN/LSTM/GRU`` (same parameters) with two paths: torch's fused kernel
and our loop over the cell equations. The central checks: each cell matches its equations written
out by hand, and the two paths agree on outputs, final states and every gradient, for every kind,
depth, direction and with/without variable lengths.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from archlab import count_params, create_model
from archlab.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    AttentionPooling,
    GRUCell,
    LSTMCell,
    RNNCell,
    SequencePooling,
    detach_state,
    tbptt_chunks,
)
from archlab.utils.counting import count_flops
from archlab.utils.errors import ShapeError

I, H, B, T = 3, 4, 3, 6
LENGTHS = torch.tensor([6, 2, 4])  # a full sequence, a short one, one in between; not sorted
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def make(kind: str, **kw) -> nn.RNNBase:
    kw.setdefault("batch_first", True)
    if kind.startswith("rnn"):
        return RNN(I, H, nonlinearity=kind.split("_")[1], **kw)
    return {"lstm": LSTM, "gru": GRU}[kind](I, H, **kw)


def initial_state(m: nn.RNNBase, batch: int, dtype: torch.dtype, g: torch.Generator):
    n = m.num_layers * (2 if m.bidirectional else 1)
    h0 = torch.randn(n, batch, m.proj_size or H, generator=g, dtype=dtype)
    return (h0, torch.randn(n, batch, H, generator=g, dtype=dtype)) if isinstance(m, nn.LSTM) else h0


def flat(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def run_both(m: nn.RNNBase, x, hx=None, lengths=None):
    """(output, final state tensors, gradients of params and x) for impl fused, then cells."""
    results = []
    for impl in ("fused", "cells"):
        m.impl = impl
        m.zero_grad()
        xi = x.detach().clone().requires_grad_(True)
        out, state = m(xi, hx, lengths=lengths)
        g = torch.Generator().manual_seed(1)  # the same random projection of every output, both paths
        loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
        loss = loss + sum((s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum() for s in flat(state))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters()}
        results.append((out.detach(), [s.detach() for s in flat(state)], grads, xi.grad))
    return results


# -- cells against their equations written out by hand ---------------------------------------
def test_lstm_cell_is_its_equations():
    torch.manual_seed(0)
    cell = LSTMCell(I, H).double()
    x, h, c = torch.randn(B, I).double(), torch.randn(B, H).double(), torch.randn(B, H).double()
    w_ii, w_if, w_ig, w_io = cell.weight_ih.chunk(4)
    w_hi, w_hf, w_hg, w_ho = cell.weight_hh.chunk(4)
    b_ii, b_if, b_ig, b_io = cell.bias_ih.chunk(4)
    b_hi, b_hf, b_hg, b_ho = cell.bias_hh.chunk(4)
    i = torch.sigmoid(x @ w_ii.T + b_ii + h @ w_hi.T + b_hi)
    f = torch.sigmoid(x @ w_if.T + b_if + h @ w_hf.T + b_hf)
    g = torch.tanh(x @ w_ig.T + b_ig + h @ w_hg.T + b_hg)
    o = torch.sigmoid(x @ w_io.T + b_io + h @ w_ho.T + b_ho)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    h1, c1 = cell(x, (h, c))
    torch.testing.assert_close(h1, h_new)
    torch.testing.assert_close(c1, c_new)
    ref = nn.LSTMCell.forward(cell, x, (h, c))  # torch's own kernel, same parameters
    torch.testing.assert_close((h1, c1), ref)


def test_gru_cell_is_its_equations():
    torch.manual_seed(0)
    cell = GRUCell(I, H).double()
    x, h = torch.randn(B, I).double(), torch.randn(B, H).double()
    w_ir, w_iz, w_in = cell.weight_ih.chunk(3)
    w_hr, w_hz, w_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = torch.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))  # r multiplies W_hn h + b_hn (torch)
    torch.testing.assert_close(cell(x, h), (1 - z) * n + z * h)
    torch.testing.assert_close(cell(x, h), nn.GRUCell.forward(cell, x, h))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_is_its_equation(nonlinearity):
    torch.manual_seed(0)
    cell = RNNCell(I, H, nonlinearity=nonlinearity).double()
    x, h = torch.randn(B, I).double(), torch.randn(B, H).double()
    a = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    torch.testing.assert_close(cell(x, h), torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a))
    torch.testing.assert_close(cell(x, h), nn.RNNCell.forward(cell, x, h))
    torch.testing.assert_close(cell(x), cell(x, torch.zeros(B, H).double()))  # h defaults to 0


# -- the layers are torch's layers -------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_parameters_are_torchs(kind):
    ours = make(kind, num_layers=2, bidirectional=True)
    torch_cls = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    kw = {"nonlinearity": kind.split("_")[1]} if kind.startswith("rnn") else {}
    ref = torch_cls(I, H, num_layers=2, bidirectional=True, batch_first=True, **kw)
    assert isinstance(ours, torch_cls) and isinstance(ours, nn.RNNBase)  # count_flops' hook finds it
    assert {n: p.shape for n, p in ours.named_parameters()} == {n: p.shape for n, p in ref.named_parameters()}
    assert "weight_ih_l1_reverse" in dict(ours.named_parameters())
    ours.load_state_dict(ref.state_dict())  # a torch checkpoint loads as is
    x = torch.randn(B, T, I)
    for impl in ("fused", "cells"):
        ours.impl = impl
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    assert "impl='cells'" in repr(ours)


def test_same_seed_same_init_as_torch():
    torch.manual_seed(0)
    ours = LSTM(I, H, num_layers=2)
    torch.manual_seed(0)
    ref = nn.LSTM(I, H, num_layers=2)
    for (n, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        assert torch.equal(p, q), n


# -- parity: our cell loop vs the fused kernel -------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_fused(kind, num_layers, bidirectional, with_lengths, dtype):
    """Same outputs, final states, parameter and input gradients (1e-5), with a given initial state."""
    torch.manual_seed(0)
    m = make(kind, num_layers=num_layers, bidirectional=bidirectional).to(dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, I, generator=g, dtype=dtype)
    hx = initial_state(m, B, dtype, g)
    fused, cells = run_both(m, x, hx, LENGTHS if with_lengths else None)
    tol = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(cells[0], fused[0], **tol)  # outputs
    torch.testing.assert_close(cells[1], fused[1], **tol)  # final states
    assert cells[2].keys() == fused[2].keys() == dict(m.named_parameters()).keys()
    for name in fused[2]:
        torch.testing.assert_close(cells[2][name], fused[2][name], **tol, msg=lambda s, n=name: f"{n}: {s}")
    torch.testing.assert_close(cells[3], fused[3], **tol)  # d loss / d x


def test_lstm_projection_cells_match_fused():
    torch.manual_seed(0)
    m = LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, I, generator=g, dtype=torch.float64)
    fused, cells = run_both(m, x, initial_state(m, B, torch.float64, g), LENGTHS)
    assert fused[1][0].shape == (4, B, 2) and fused[1][1].shape == (4, B, H)
    torch.testing.assert_close(cells[:2], fused[:2])
    torch.testing.assert_close(cells[2], fused[2])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_time_first_and_unbatched_inputs(kind):
    torch.manual_seed(0)
    m = make(kind, num_layers=2, bidirectional=True, batch_first=False).double()
    x = torch.randn(T, B, I).double()
    outs = {}
    for impl in ("fused", "cells"):
        m.impl = impl
        outs[impl] = (m(x), m(x, lengths=LENGTHS), m(x[:, 0]))  # (T, B, I), with lengths, unbatched (T, I)
    torch.testing.assert_close(outs["cells"], outs["fused"])
    assert outs["cells"][0][0].shape == (T, B, 2 * H) and outs["cells"][2][0].shape == (T, 2 * H)
    assert torch.all(outs["cells"][1][0][LENGTHS[1] :, 1] == 0)  # padded steps of sequence 1, time-first


@pytest.mark.parametrize("kind", KINDS)
def test_packed_sequence_input(kind):
    """A PackedSequence in gives a PackedSequence out (same batch sizes and order) on both paths,
    equal to the padded + lengths call."""
    torch.manual_seed(0)
    m = make(kind, num_layers=2, bidirectional=True).double()
    x = torch.randn(B, T, I).double()
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    m.impl = "fused"
    ref_out, ref_state = m(packed)
    m.impl = "cells"
    out, state = m(packed)
    assert torch.equal(out.batch_sizes, ref_out.batch_sizes) and torch.equal(out.sorted_indices, ref_out.sorted_indices)
    torch.testing.assert_close(out.data, ref_out.data)
    torch.testing.assert_close(state, ref_state)
    padded_out, padded_state = m(x, lengths=LENGTHS)
    torch.testing.assert_close(padded_state, state)
    with pytest.raises(ValueError, match="not both"):
        m(packed, lengths=LENGTHS)


def test_dropout_between_layers_never_after_the_last():
    torch.manual_seed(0)
    x = torch.randn(B, T, I).double()
    # p = 1 drops every output of layer 1, deterministically: both paths then agree in training mode,
    # and the last layer's output (driven by its biases only) is not dropped
    m = make("lstm", num_layers=2, dropout=1.0).double().train()
    fused, cells = run_both(m, x)
    torch.testing.assert_close(cells[:2], fused[:2])
    assert (cells[0] != 0).all()
    m.eval()
    assert not torch.allclose(m(x)[0], cells[0])  # eval: no dropout
    # a single layer has no "between": dropout never applies (torch warns about this configuration)
    with pytest.warns(UserWarning, match="dropout"):
        one = make("gru", dropout=0.5, impl="cells").double()
    torch.testing.assert_close(one.train()(x), one.eval()(x))


# -- variable lengths: padding never matters ---------------------------------------------------
@pytest.mark.parametrize("impl", ["fused", "cells"])
@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_changes_valid_outputs(kind, impl):
    """Outputs at valid steps and final states do not depend on what fills the padding; padded
    outputs are 0; each sequence's final state is the one from running it alone, unpadded (so the
    reverse direction starts at its own last valid step)."""
    torch.manual_seed(0)
    m = make(kind, num_layers=2, bidirectional=True, impl=impl).double()
    x = torch.randn(B, T, I).double()
    valid = (torch.arange(T)[None, :] < LENGTHS[:, None])[..., None]  # (B, T, 1)
    x2 = torch.where(valid, x, 100 * torch.randn(B, T, I).double())  # other padding
    out, state = m(x, lengths=LENGTHS)
    out2, state2 = m(x2, lengths=LENGTHS)
    torch.testing.assert_close(out2, out)
    torch.testing.assert_close(state2, state)
    assert torch.all(out.masked_select(~valid) == 0)
    for b, n in enumerate(LENGTHS.tolist()):
        alone_out, alone_state = m(x[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1, :n], alone_out)
        for s, s_alone in zip(flat(state), flat(alone_state)):
            torch.testing.assert_close(s[:, b : b + 1], s_alone)


def test_bad_inputs_say_what_is_wrong():
    m = LSTM(I, H)
    with pytest.raises(ShapeError, match=r"expected shape \(B, T, 3\), got \(2, 5, 4\)"):
        m(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=5\]"):
        m(torch.zeros(2, 5, I), lengths=torch.tensor([5, 6]))
    with pytest.raises(ShapeError, match=r"lengths: expected shape \(2,\)"):
        m(torch.zeros(2, 5, I), lengths=torch.tensor([5]))
    m.impl = "cells"
    with pytest.raises(ShapeError, match=r"h_0: expected shape \(1, 2, 4\)"):
        m(torch.zeros(2, 5, I), (torch.zeros(1, 3, H), torch.zeros(1, 3, H)))
    with pytest.raises(ValueError, match="impl must be one of fused, cells"):
        LSTM(I, H, impl="loop")


# -- FLOPs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_both_impls_report_the_same_flops(kind):
    """count_flops sees the cell loop's matmuls and fills in the fused kernel from the equations:
    2·G·H·(I + H) per step, sample, layer and direction either way (G = 1, 4, 3)."""
    g = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[kind]
    m = make(kind, num_layers=2, bidirectional=True)
    x = torch.randn(5, T, I)
    expected = 2 * (2 * g * H * (I + H) + 2 * g * H * (2 * H + H)) * T * 5
    flops = {}
    for impl in ("fused", "cells"):
        m.impl = impl
        flops[impl] = count_flops(m, x)
    assert flops == {"fused": expected, "cells": expected}
    model = create_model("gru")  # inside a model too: the hook finds the layer by its torch base class
    assert count_flops(model, torch.randn(5, 1, 40)) == count_flops(
        create_model("gru", impl="cells"), torch.randn(5, 1, 40)
    )


# -- truncated BPTT ----------------------------------------------------------------------------
def test_tbptt_chunks_cut_gradients_but_carry_the_state():
    torch.manual_seed(0)
    m = GRU(I, H, impl="cells")
    stream = torch.randn(2, 10, I, requires_grad=True)
    target = torch.arange(10.0).expand(2, 10)
    windows = list(tbptt_chunks(stream, target, k=4))
    assert [w[0].shape[1] for w in windows] == [4, 4, 2] and all(w[1].shape[1] == w[0].shape[1] for w in windows)
    state, outs = None, []
    for i, (x, _) in enumerate(windows):
        out, state = m(x, state)
        outs.append(out)
        if i == 1:  # the second window's loss reaches only the second window's inputs
            (grad,) = torch.autograd.grad(out.sum(), stream, retain_graph=True)
            assert torch.all(grad[:, :4] == 0) and torch.all(grad[:, 8:] == 0) and grad[:, 4:8].abs().sum() > 0
        state = detach_state(state)
        assert not state.requires_grad
    # values do flow across windows: the chunked run equals one pass over the whole stream...
    full, _ = m(stream)
    torch.testing.assert_close(torch.cat(outs, dim=1), full)
    # ...and differs from restarting each window from a zero state
    assert not torch.allclose(m(windows[1][0])[0], outs[1])
    assert detach_state((torch.ones(1, requires_grad=True), [torch.ones(1, requires_grad=True)]))[1][0].grad_fn is None
    with pytest.raises(ValueError, match="k must be"):
        next(tbptt_chunks(stream, k=0))


# -- pooling -----------------------------------------------------------------------------------
def test_attention_pooling_weights_cover_the_valid_steps_only():
    torch.manual_seed(0)
    pool = AttentionPooling(5)
    nn.init.normal_(pool.query)
    h = torch.randn(B, T, 5)
    w = pool.weights(h, LENGTHS)
    torch.testing.assert_close(w.sum(1), torch.ones(B))
    assert torch.all(w[1, 2:] == 0) and torch.all(w[1, :2] > 0)
    torch.testing.assert_close(pool(h, LENGTHS)[1], (w[1, :2, None] * h[1, :2]).sum(0))
    zero = AttentionPooling(5)  # q = 0 starts as mean pooling
    torch.testing.assert_close(zero(h, LENGTHS), SequencePooling("mean", 5)(h, LENGTHS))


def test_mean_and_max_pooling_ignore_padding():
    h = torch.randn(B, T, 5)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(SequencePooling("mean", 5)(h, LENGTHS)[b], h[b, :n].mean(0))
        torch.testing.assert_close(SequencePooling("max", 5)(h, LENGTHS)[b], h[b, :n].amax(0))
    torch.testing.assert_close(SequencePooling("max", 5)(h), h.amax(1))
    with pytest.raises(ValueError, match="pooling mode"):
        SequencePooling("sum", 5)


# -- models ------------------------------------------------------------------------------------
READOUTS = ["last", "mean", "max", "attention"]


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", READOUTS)
def test_model_readouts_with_lengths(name, readout):
    """Every read-out: shape, both impls agree, and padding never changes the prediction."""
    torch.manual_seed(0)
    m = create_model(name, readout=readout, bidirectional=True, num_layers=2, hidden_size=5).double().eval()
    assert m.head.in_features == 10
    x = torch.randn(B, 1, 40).double()
    lengths = torch.tensor([40, 7, 23])
    valid = (torch.arange(40)[None, :] < lengths[:, None])[:, None]  # (B, 1, T)
    x2 = torch.where(valid, x, torch.randn(B, 1, 40).double())
    y = m(x, lengths)
    assert y.shape == (B, 10)
    torch.testing.assert_close(m(x2, lengths), y)
    for b, n in enumerate(lengths.tolist()):  # as if the sequence were only n steps long
        short = create_model(name, readout=readout, bidirectional=True, num_layers=2, hidden_size=5, in_shape=(1, n))
        short.double().eval().load_state_dict(m.state_dict())
        torch.testing.assert_close(short(x[b : b + 1, :, :n]), y[b : b + 1])
    layer = next(mod for mod in m.modules() if isinstance(mod, nn.RNNBase))
    layer.impl = "cells"
    torch.testing.assert_close(m(x, lengths), y)
    torch.testing.assert_close(m(x), m.forward_head(m.forward_features(x)))


def test_model_parameter_counts():
    assert count_params(create_model("gru")) == 5134  # MNIST-1D paper
    assert count_params(create_model("lstm")) == 4 * 32 * (1 + 32) + 2 * 4 * 32 + 32 * 10 + 10 == 4810
    assert count_params(create_model("rnn")) == 64 * (1 + 64) + 2 * 64 + 64 * 10 + 10 == 4938
    assert count_params(create_model("gru", readout="attention")) == 5134 - 12 * 40 * 10 + 12 + 12 * 10  # + query
    assert create_model("rnn", nonlinearity="relu").rnn.nonlinearity == "relu"


def test_gru_model_is_unchanged_by_the_new_layer():
    """The MNIST-1D GRU built on archlab's GRU has nn.GRU's state-dict keys and, from the same seed,
    the weights and outputs of the former nn.GRU-based model."""
    torch.manual_seed(0)
    m = create_model("gru")
    torch.manual_seed(0)
    ref_gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
    ref_head = nn.Linear(12 * 40, 10)
    expected = {**{f"gru.{k}": v for k, v in ref_gru.state_dict().items()}, "head.weight": ref_head.weight}
    expected["head.bias"] = ref_head.bias
    assert m.state_dict().keys() == expected.keys()
    for k, v in m.state_dict().items():
        assert torch.equal(v, expected[k]), k
    x = torch.randn(4, 1, 40)
    torch.testing.assert_close(m(x), ref_head(ref_gru(x.transpose(1, 2))[0].flatten(1)))
    cells = create_model("gru", impl="cells")
    cells.load_state_dict(m.state_dict())
    torch.testing.assert_close(cells(x), m(x), atol=1e-5, rtol=1e-5)
