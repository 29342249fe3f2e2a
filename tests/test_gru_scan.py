"""The GRU's written-out backward pass (``impl="scan"``) against torch's ``nn.GRU``: outputs, final
states and every gradient, in float64."""

import pytest
import torch

from archlab import create_model
from archlab.layers.recurrent import GRU, LSTM, RNN


def _pair(seed: int = 0, **kw) -> tuple[GRU, torch.nn.GRU]:
    torch.manual_seed(seed)
    ours = GRU(impl="scan", **kw).double()
    ref = torch.nn.GRU(**kw).double()
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize(
    "kw",
    [
        {"bidirectional": True},  # the MNIST-1D GRU's layer
        {"bidirectional": False},
        {"bidirectional": True, "num_layers": 2},
        {"bidirectional": False, "num_layers": 3, "bias": False},
        {"bidirectional": True, "batch_first": False},
    ],
)
@pytest.mark.parametrize("with_hx", [False, True])
def test_scan_equals_torch_gru_values_and_gradients(kw, with_hx):
    kw = {"input_size": 3, "hidden_size": 5, "batch_first": True, **kw}
    ours, ref = _pair(**kw)
    b, t = 4, 7
    x = torch.randn((b, t, 3) if kw["batch_first"] else (t, b, 3), dtype=torch.float64, requires_grad=True)
    layers = kw.get("num_layers", 1) * (2 if kw["bidirectional"] else 1)
    hx = torch.randn(layers, b, 5, dtype=torch.float64, requires_grad=True) if with_hx else None
    out, h_n = ours(x, hx)
    out_ref, h_ref = ref(x, hx)
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-10, atol=1e-12)
    w_out, w_h = torch.randn_like(out), torch.randn_like(h_n)  # a loss that reads outputs and final states
    inputs = [x, *([hx] if with_hx else [])]
    g = torch.autograd.grad((out * w_out).sum() + (h_n * w_h).sum(), [*inputs, *ours.parameters()])
    g_ref = torch.autograd.grad((out_ref * w_out).sum() + (h_ref * w_h).sum(), [*inputs, *ref.parameters()])
    names = ["x", *(["hx"] if with_hx else []), *(n for n, _ in ours.named_parameters())]
    for name, a, e in zip(names, g, g_ref, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-11, msg=name)


def test_scan_passes_gradcheck():
    torch.manual_seed(1)
    layer = GRU(2, 3, bidirectional=True, impl="scan").double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h0: layer(x, h0)[0], (x, h0))


def test_scan_with_lengths_and_unbatched_input_runs_the_cells_path():
    ours, ref = _pair(input_size=3, hidden_size=4, batch_first=True, bidirectional=True)
    cells = GRU(3, 4, bidirectional=True, impl="cells").double()
    cells.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    for a, e in zip(ours(x, lengths=lengths), cells(x, lengths=lengths), strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)
    torch.testing.assert_close(ours(x[0])[0], ref(x[0])[0], rtol=1e-10, atol=1e-12)  # (T, I)


def test_scan_is_the_gru_s_only():
    for kind in (LSTM, RNN):
        with pytest.raises(ValueError, match="impl='scan' is written for the GRU only"):
            kind(3, 4, impl="scan")


def test_the_mnist1d_gru_trains_alike_with_scan_and_fused():
    """The main job's GRU (bidirectional, 6 units, flatten read-out): one Adam step from the same
    weights lands on the same weights (float32, up to rounding)."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 40), torch.randint(0, 10, (16,))
    models = {impl: create_model("gru", impl=impl) for impl in ("fused", "scan")}
    models["scan"].load_state_dict(models["fused"].state_dict())
    for m in models.values():
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    a, b = (dict(m.named_parameters()) for m in models.values())
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6, msg=k)
