"""Activations vs their closed forms (float64, evaluated independently with ``math``), vs
``torch.nn`` equivalents, and their derivatives vs the closed-form derivatives — for both paths
(``impl="fused"``, torch's kernels, and ``impl="reference"``, the formulas), and the two paths
against each other to 1e-6 in values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.layers import (
    ACTIVATIONS,
    ELU,
    GELU,
    LeakyReLU,
    PReLU,
    ReLU,
    Sigmoid,
    Swish,
    Tanh,
    get_activation,
)
from archlab.layers.activations import IMPLS
from archlab.utils.errors import ConfigError

# negatives, zero, tiny and large magnitudes (σ(±50), σ(±100) must stay finite)
GRID = sorted([s * v for v in (100.0, 50.0, 20.0, 5.0, 1.5, 1.0, 0.5, 1e-3, 1e-8) for s in (-1.0, 1.0)] + [0.0])


# -- closed forms in float64, one scalar at a time ------------------------------------------
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _phi(x: float) -> float:  # standard normal density
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:  # standard normal CDF
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


_C = math.sqrt(2.0 / math.pi)

# name → (module factory, f(x), f'(x)); at the kink x = 0 the derivative follows torch.nn
CASES = {
    "sigmoid": (Sigmoid, _sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))),
    "tanh": (Tanh, math.tanh, lambda x: 1.0 - math.tanh(x) ** 2),
    "relu": (ReLU, lambda x: max(0.0, x), lambda x: float(x > 0)),
    "leaky_relu": (LeakyReLU, lambda x: x if x > 0 else 0.01 * x, lambda x: 1.0 if x > 0 else 0.01),
    "leaky_relu_0.2": (
        lambda **kw: LeakyReLU(0.2, **kw),
        lambda x: x if x > 0 else 0.2 * x,
        lambda x: 1.0 if x > 0 else 0.2,
    ),
    "prelu": (PReLU, lambda x: x if x > 0 else 0.25 * x, lambda x: 1.0 if x > 0 else 0.25),
    "elu": (ELU, lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x)),
    "elu_0.5": (
        lambda **kw: ELU(0.5, **kw),
        lambda x: x if x > 0 else 0.5 * math.expm1(x),
        lambda x: 1.0 if x > 0 else 0.5 * math.exp(x),
    ),
    "swish": (Swish, lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) + x * _sigmoid(x) * (1 - _sigmoid(x))),
    "swish_beta2": (
        lambda **kw: Swish(beta=2.0, **kw),
        lambda x: x * _sigmoid(2 * x),
        lambda x: _sigmoid(2 * x) + 2 * x * _sigmoid(2 * x) * (1 - _sigmoid(2 * x)),
    ),
    "gelu": (GELU, lambda x: x * _Phi(x), lambda x: _Phi(x) + x * _phi(x)),
    "gelu_tanh": (
        lambda **kw: GELU(approximate="tanh", **kw),
        lambda x: 0.5 * x * (1 + math.tanh(_C * (x + 0.044715 * x**3))),
        lambda x: (
            0.5 * (1 + math.tanh(_C * (x + 0.044715 * x**3)))
            + 0.5 * x * (1 - math.tanh(_C * (x + 0.044715 * x**3)) ** 2) * _C * (1 + 3 * 0.044715 * x**2)
        ),
    ),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_closed_form_float64(name, impl):
    make, f, _ = CASES[name]
    x = torch.tensor(GRID, dtype=torch.float64)
    y = make(impl=impl).double()(x)
    ref = torch.tensor([f(v) for v in GRID], dtype=torch.float64)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_closed_form_float32_and_finite(name, impl):
    make, f, _ = CASES[name]
    x = torch.tensor(GRID, dtype=torch.float32, requires_grad=True)
    y = make(impl=impl)(x)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    ref = torch.tensor([f(v) for v in GRID], dtype=torch.float64)
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-6)
    y.sum().backward()
    assert torch.isfinite(x.grad).all(), f"{name}: non-finite gradient on {GRID}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(CASES))
def test_derivative_matches_closed_form(name, impl):
    make, _, df = CASES[name]
    x = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
    make(impl=impl).double()(x).sum().backward()
    ref = torch.tensor([df(v) for v in GRID], dtype=torch.float64)
    torch.testing.assert_close(x.grad, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_sigmoid_saturates_exactly_in_float32(impl):
    y = Sigmoid(impl=impl)(torch.tensor([-50.0, 50.0, -100.0, 100.0]))
    assert y.tolist() == [pytest.approx(0.0, abs=1e-21), 1.0, pytest.approx(0.0, abs=1e-40), 1.0]
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_tanh_keeps_relative_precision_near_zero(impl):
    x = torch.tensor([1e-8, -1e-6, 1e-4], dtype=torch.float32)
    torch.testing.assert_close(Tanh(impl=impl)(x), torch.tensor([math.tanh(v) for v in x.tolist()]), rtol=1e-6, atol=0)


# -- fused = reference (values and gradients, float32, random values plus the grid) --------------
@pytest.mark.parametrize("name", [*CASES, "prelu_per_channel", "swish_learnable"])
def test_fused_equals_reference_in_values_and_gradients(name):
    makers = {
        **{k: v[0] for k, v in CASES.items()},
        "prelu_per_channel": lambda **kw: PReLU(num_parameters=5, **kw),
        "swish_learnable": lambda **kw: Swish(beta=1.7, learnable_beta=True, **kw),
    }
    torch.manual_seed(0)
    fused, ref = makers[name](impl="fused"), makers[name](impl="reference")
    ref.load_state_dict(fused.state_dict())
    if name == "prelu_per_channel":
        with torch.no_grad():  # distinct slopes, one negative
            fused.weight.copy_(torch.tensor([0.1, 0.25, -0.5, 0.0, 2.0]))
            ref.weight.copy_(fused.weight)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 5, 30, generator=g) * 4
    x[0, 0, : len(GRID)] = torch.tensor(GRID)
    w = torch.randn(x.shape, generator=g)
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-10)):
        fused, ref = fused.to(dtype), ref.to(dtype)
        fused.zero_grad()
        ref.zero_grad()
        x1, x2 = (x.to(dtype, copy=True).requires_grad_() for _ in range(2))
        y1, y2 = fused(x1), ref(x2)
        torch.testing.assert_close(y1, y2, rtol=tol, atol=tol)
        (y1 * w).sum().backward()
        (y2 * w).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, rtol=tol, atol=tol)
        if dtype == torch.float64:  # a slope's or β's gradient sums 600 terms: compared without float32 rounding
            for p1, p2 in zip(fused.parameters(), ref.parameters(), strict=True):
                torch.testing.assert_close(p1.grad, p2.grad, rtol=tol, atol=tol)


def test_fused_is_the_default_and_reaches_torchs_kernels():
    """Models get torch's kernels: every activation built by name defaults to impl="fused", and
    the fused path dispatches to torch's own ops (seen by the profiler's op names)."""
    from torch.profiler import ProfilerActivity, profile

    for name in ACTIVATIONS:
        m = get_activation(name)
        assert getattr(m, "impl", "fused") == "fused", name
        assert get_activation(name, impl="reference").__class__ is m.__class__
    expected = {"gelu": "aten::gelu", "silu": "aten::silu", "elu": "aten::elu", "sigmoid": "aten::sigmoid"}
    for name, op in expected.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            get_activation(name)(torch.randn(8))
        assert op in {e.key for e in prof.key_averages()}, name
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            get_activation(name, impl="reference")(torch.randn(8))
        assert op not in {e.key for e in prof.key_averages()}, name
    with pytest.raises(ConfigError, match="impl: must be one of fused, reference"):
        get_activation("relu", impl="cells")
    assert "impl='reference'" in repr(ELU(impl="reference")) and "impl" not in repr(ELU())


# -- parity with torch.nn (values and gradients, float32, random values plus the grid) ----------
def _parity_pairs():
    return {
        "sigmoid": (Sigmoid(), nn.Sigmoid()),
        "tanh": (Tanh(), nn.Tanh()),
        "relu": (ReLU(), nn.ReLU()),
        "leaky_relu": (LeakyReLU(), nn.LeakyReLU()),
        "leaky_relu_0.3": (LeakyReLU(0.3), nn.LeakyReLU(0.3)),
        "elu": (ELU(), nn.ELU()),
        "elu_0.7": (ELU(0.7), nn.ELU(0.7)),
        "silu": (Swish(beta=1.0), nn.SiLU()),
        "gelu": (GELU(), nn.GELU(approximate="none")),
        "gelu_tanh": (GELU(approximate="tanh"), nn.GELU(approximate="tanh")),
        "prelu": (PReLU(), nn.PReLU()),
    }


@pytest.mark.parametrize("name", list(_parity_pairs()))
def test_parity_with_torch_nn(name):
    ours, ref = _parity_pairs()[name]
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, generator=g) * 4, torch.tensor(GRID)])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), ref(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-6, atol=1e-6)
    w = torch.randn(x.shape, generator=g)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-6)


def test_prelu_per_channel_matches_nn_prelu_and_slope_gets_gradient():
    C = 3
    ours, ref = PReLU(num_parameters=C), nn.PReLU(num_parameters=C)
    assert torch.equal(ours.weight, torch.full((C,), 0.25))
    with torch.no_grad():
        ours.weight.copy_(torch.tensor([0.1, 0.25, -0.5]))
        ref.weight.copy_(ours.weight)
    x = torch.randn(4, C, 5, 6, generator=torch.Generator().manual_seed(1))  # (B, C, H, W)
    y1, y2 = ours(x), ref(x)
    torch.testing.assert_close(y1, y2, rtol=1e-6, atol=1e-6)
    y1.square().sum().backward()
    y2.square().sum().backward()
    assert ours.weight.grad is not None and ours.weight.grad.abs().sum() > 0
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)


def test_prelu_slope_gradient_is_min_zero_x():
    m = PReLU()
    x = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    m(x).sum().backward()
    assert [p for p in m.parameters()] == [m.weight]
    assert m.weight.grad.item() == pytest.approx(-2.5)  # Σ min(0, x) = −2 − 0.5


def test_prelu_wrong_channel_count_raises():
    from archlab.utils.errors import ShapeError

    with pytest.raises(ShapeError, match="expected 3 channels"):
        PReLU(3)(torch.randn(2, 4, 5))


def test_swish_learnable_beta_gets_gradient():
    m = Swish(beta=1.5, learnable_beta=True)
    (beta,) = list(m.parameters())
    x = torch.tensor([-2.0, -0.3, 0.0, 0.7, 4.0], dtype=torch.float64)
    m.double()(x).sum().backward()
    # ∂/∂β x·σ(βx) = x²·σ(βx)(1 − σ(βx))
    expected = sum(v * v * _sigmoid(1.5 * v) * (1 - _sigmoid(1.5 * v)) for v in x.tolist())
    assert beta.grad is not None
    assert beta.grad.item() == pytest.approx(expected, rel=1e-10)


def test_swish_fixed_beta_registers_no_parameter():
    m = Swish(beta=2.0, learnable_beta=False)
    assert list(m.parameters()) == [] and list(m.state_dict()) == []
    assert list(get_activation("silu").parameters()) == []


# -- registry -------------------------------------------------------------------------------
def test_registry_names():
    names = "sigmoid tanh relu leaky_relu prelu elu swish silu gelu gelu_tanh identity"
    assert set(ACTIVATIONS) == set(names.split())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_get_activation_builds_fresh_modules(name):
    a, b = get_activation(name), get_activation(name)
    assert isinstance(a, nn.Module) and a is not b
    x = torch.randn(2, 3, 4)
    y = a(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    for p, q in zip(a.parameters(), b.parameters()):
        assert p is not q  # a learnable slope/β is never shared between layers


def test_named_variants():
    x = torch.linspace(-4, 4, 41)
    torch.testing.assert_close(get_activation("silu")(x), nn.SiLU()(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(get_activation("gelu_tanh")(x), nn.GELU(approximate="tanh")(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(get_activation("identity")(x), x)
    assert len(list(get_activation("swish").parameters())) == 1  # Swish with trainable β


def test_unknown_activation_says_did_you_mean():
    with pytest.raises(ConfigError) as e:
        get_activation("rel")
    msg = str(e.value)
    assert msg.startswith("activation 'rel': unknown (did you mean: relu")
    assert "valid: " in msg and "gelu_tanh" in msg


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ConfigError, match="approximate"):
        GELU(approximate="erf")
