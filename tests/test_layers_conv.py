"""archlab.layers.conv: each block against its formula."""

import pytest
import torch
from torch import nn

from archlab.layers import ConvNormAct, DropPath, LayerNorm2d, SqueezeExcite, drop_path, make_divisible


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        (32, 32),  # already a multiple
        (32 * 0.75, 24),
        (40 * 1.1, 48),  # 44: halfway rounds up
        (35.9, 40),  # nearest is 32 < 0.9 · 35.9 = 32.31 → one more step
        (19, 24),  # nearest is 16 < 0.9 · 19 = 17.1 → one more step
        (3, 8),  # never below the divisor
        (1280 * 1.4, 1792),
    ],
)
def test_make_divisible(v, expected):
    assert make_divisible(v, 8) == expected


def test_make_divisible_min_value_and_divisor():
    assert make_divisible(3, 8, min_value=4) == 4  # rounds to 0, floored at 4, and 4 ≥ 0.9 · 3
    assert make_divisible(100, 16) == 96  # ⌊108/16⌋·16 = 96 ≥ 90
    assert make_divisible(10, 1) == 10


def test_conv_norm_act_structure_and_formula():
    torch.manual_seed(0)
    m = ConvNormAct(4, 6, kernel_size=3, stride=2, act_layer=nn.ReLU6, bn_eps=1e-3, bn_momentum=0.01)
    assert [name for name, _ in m.named_children()] == ["conv", "bn", "act"]
    assert m.conv.bias is None and m.conv.padding == (1, 1) and m.conv.stride == (2, 2)
    assert m.bn.eps == 1e-3 and m.bn.momentum == 0.01 and isinstance(m.act, nn.ReLU6)
    m.bn.running_mean.normal_()
    m.bn.running_var.uniform_(0.5, 2.0)
    m.bn.weight.data.normal_()
    m.bn.bias.data.normal_()
    m.eval()
    x = torch.randn(2, 4, 9, 9)
    y = m(x)
    assert y.shape == (2, 6, 5, 5)  # ⌈9/2⌉
    z = torch.nn.functional.conv2d(x, m.conv.weight, stride=2, padding=1)
    bn = (z - m.bn.running_mean[:, None, None]) / torch.sqrt(m.bn.running_var[:, None, None] + 1e-3)
    bn = bn * m.bn.weight[:, None, None] + m.bn.bias[:, None, None]
    torch.testing.assert_close(y, bn.clamp(0, 6))


def test_conv_norm_act_depthwise_and_linear():
    m = ConvNormAct(8, 8, kernel_size=5, groups=8, act_layer=None)
    assert m.conv.weight.shape == (8, 1, 5, 5) and m.conv.padding == (2, 2)
    assert isinstance(m.act, nn.Identity)
    assert sum(p.numel() for p in m.parameters()) == 8 * 25 + 2 * 8  # depthwise weights + BN γ, β
    assert m(torch.randn(1, 8, 7, 7)).shape == (1, 8, 7, 7)


def test_squeeze_excite_shape_params_and_formula():
    torch.manual_seed(0)
    se = SqueezeExcite(16, 4, act_layer=nn.SiLU)
    assert sum(p.numel() for p in se.parameters()) == 16 * 4 + 4 + 4 * 16 + 16
    x = torch.randn(3, 16, 5, 7)
    y = se(x)
    assert y.shape == x.shape
    s = x.mean((2, 3))  # (B, C)
    h = torch.nn.functional.silu(s @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias)
    gate = torch.sigmoid(h @ se.fc2.weight[:, :, 0, 0].T + se.fc2.bias)  # (B, C)
    torch.testing.assert_close(y, x * gate[:, :, None, None])
    g = se.scale(x)
    assert g.shape == (3, 16, 1, 1) and bool(((g > 0) & (g < 1)).all())


def test_squeeze_excite_gating_extremes():
    se = SqueezeExcite(6, 2)
    nn.init.zeros_(se.fc2.weight)
    x = torch.randn(2, 6, 4, 4)
    nn.init.zeros_(se.fc2.bias)
    torch.testing.assert_close(se(x), x / 2)  # σ(0) = ½ on every channel
    with torch.no_grad():
        se.fc2.bias.copy_(torch.tensor([50.0, -50.0, 50.0, -50.0, 50.0, -50.0]))
    y = se(x)
    torch.testing.assert_close(y[:, 0::2], x[:, 0::2])  # gate open
    torch.testing.assert_close(y[:, 1::2], torch.zeros_like(y[:, 1::2]))  # gate shut


def test_drop_path_is_identity_in_eval_and_at_zero():
    x = torch.randn(5, 3, 4, 4)
    m = DropPath(0.5).eval()
    assert m(x) is x
    assert DropPath(0.0).train()(x) is x
    assert drop_path(x, 0.9, training=False) is x


def test_drop_path_statistics_in_training():
    """Each example is kept whole with probability 1 − p and then scaled by 1/(1 − p): E[y] = x."""
    torch.manual_seed(0)
    p, n = 0.3, 40_000
    m = DropPath(p).train()
    y = m(torch.ones(n, 2, 3))
    per_example = y.flatten(1)
    assert bool((per_example == per_example[:, :1]).all())  # the whole example is dropped or kept
    kept = per_example[:, 0] != 0
    torch.testing.assert_close(per_example[kept], torch.full_like(per_example[kept], 1 / (1 - p)))
    frac_dropped = 1 - kept.float().mean().item()
    assert abs(frac_dropped - p) < 4 * (p * (1 - p) / n) ** 0.5  # 4σ of a binomial proportion
    assert abs(y.mean().item() - 1.0) < 0.02  # unbiased


def test_drop_path_one_drops_everything_and_validates():
    x = torch.randn(4, 3)
    assert torch.equal(DropPath(1.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DropPath(1.5)
    assert "p=0.2" in repr(DropPath(0.2))


def test_drop_path_gradient_flows_through_kept_examples():
    torch.manual_seed(1)
    x = torch.ones(64, 2, requires_grad=True)
    y = DropPath(0.5).train()(x)
    y.sum().backward()
    kept = y[:, 0] != 0
    assert torch.equal(x.grad[kept], torch.full_like(x.grad[kept], 2.0))
    assert torch.equal(x.grad[~kept], torch.zeros_like(x.grad[~kept]))


def test_layernorm2d_normalises_channels_per_pixel():
    torch.manual_seed(0)
    ln = LayerNorm2d(8)
    assert ln.eps == 1e-6
    x = torch.randn(2, 8, 5, 3) * 3 + 1
    y = ln(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 5, 3), atol=1e-4, rtol=0)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    ref = nn.LayerNorm(8, eps=1e-6)
    ref.load_state_dict(ln.state_dict())
    torch.testing.assert_close(ln(x), ref(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
    mu = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    manual = (x - mu) / torch.sqrt(var + 1e-6) * ln.weight[:, None, None] + ln.bias[:, None, None]
    torch.testing.assert_close(ln(x), manual, atol=1e-5, rtol=1e-5)
