"""Progressive growing (Karras et al. 2018) and StyleGAN (Karras et al. 2019; StyleGAN2's modulated
convolution or the 2019 AdaIN): each building block against its formula written out by hand, the fade-in
against the blend of Fig. 2, the style mixing and truncation of the style-based generator with either
style operator, and the family contract."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archlab import count_params, create_model
from archlab.models.gan.progressive import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    blur,
    downsample,
    progress_to_stage,
    upsample,
)
from archlab.models.gan.stylegan import AdaIN, AdaINStyleLayer, ModulatedConv2d, NoiseInput, mix_styles
from archlab.models.gan.stylegan import upsample as style_upsample
from archlab.utils.errors import ConfigError

TINY_PROGAN = {"latent_dim": 8, "fmap_base": 32, "fmap_max": 8, "mbstd_group_size": 2}
TINY_STYLEGAN = {
    "latent_dim": 8,
    "w_dim": 6,
    "mapping_layers": 2,
    "channel_base": 64,
    "channel_max": 8,
    "d_fmap_base": 32,
    "d_fmap_max": 8,
}


@pytest.fixture
def progan():
    torch.manual_seed(0)
    return create_model("progan", **TINY_PROGAN)


@pytest.fixture(params=["modulated", "adain"])
def stylegan(request):
    torch.manual_seed(0)
    return create_model("stylegan", **TINY_STYLEGAN, style_block=request.param)


# -- the building blocks ----------------------------------------------------------------------------
def test_equalized_conv_scales_by_he_constant_at_runtime():
    """§4.1: w ~ N(0, 1) stored, ŵ = c·w used, c = √2/√fan_in (He et al. 2015); fan_in = C_in·k²."""
    torch.manual_seed(0)
    conv = EqualizedConv2d(16, 32, 3)
    assert conv.scale == pytest.approx(math.sqrt(2.0 / (16 * 9)), rel=1e-12)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.05) and not conv.bias.any()
    x = torch.randn(2, 16, 5, 5)
    ref = F.conv2d(x, conv.weight * math.sqrt(2.0 / 144), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), ref, rtol=0, atol=0)
    to_rgb = EqualizedConv2d(16, 1, 1, gain=1.0)
    assert to_rgb.scale == pytest.approx(1 / 4)  # gain 1: 1/√16


def test_equalized_linear_lr_multiplier_scales_the_first_adam_step():
    """StyleGAN App. C: the mapping network learns at λ = 0.01 of the rate. Adam's first step moves each
    stored weight by exactly lr (m̂/√v̂ = ±1), so the used weight ŵ = c·λ·w moves by c·λ·lr."""
    for lam in (1.0, 0.01):
        torch.manual_seed(0)
        fc = EqualizedLinear(4, 3, lr_multiplier=lam, bias_init=1.0).double()  # w ~ N(0, 10⁴): float64
        assert fc.scale == pytest.approx(math.sqrt(2.0) / 2.0 * lam)
        torch.testing.assert_close(fc.bias * lam, torch.ones(3, dtype=torch.float64))  # starts at bias_init
        before = fc.weight.detach() * fc.scale
        opt = torch.optim.Adam(fc.parameters(), lr=1e-3, eps=1e-12)
        fc(torch.randn(5, 4, dtype=torch.float64)).sum().backward()
        opt.step()
        step = (fc.weight.detach() * fc.scale - before).abs()
        torch.testing.assert_close(step, torch.full_like(step, math.sqrt(2.0) / 2.0 * lam * 1e-3), rtol=1e-6, atol=0)


def test_pixel_norm_gives_unit_rms_feature_vectors():
    """§4.2, Eq. 1: b_{x,y} = a_{x,y} / √(mean_j (a^j_{x,y})² + ε)."""
    a = torch.randn(3, 7, 4, 5) * 10
    b = PixelNorm()(a)
    torch.testing.assert_close(b.square().mean(dim=1), torch.ones(3, 4, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b, a / a.square().mean(1, keepdim=True).add(1e-8).sqrt())


def test_minibatch_stddev_on_a_hand_batch():
    """§3: the standard deviation over the group per feature and pixel, averaged over both; groups of G
    take every (B/G)-th example (the released code's reshape), so examples 0, 2 and 1, 3 pair up here."""
    x = torch.tensor([1.0, 2.0, 5.0, 10.0]).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    x[:, 0, 0, 0] += torch.tensor([0.0, 0.0, 2.0, 0.0])  # one pixel differs: {1, 7} → σ 3 instead of 2
    y = MinibatchStdDev(group_size=2)(x)
    assert y.shape == (4, 2, 2, 2) and torch.equal(y[:, :1], x)
    s02 = (3.0 + 3 * 2.0) / 4  # group {0, 2}: pixel σ = 3, 2, 2, 2 (|5 − 1|/2, |7 − 1|/2)
    s13 = 4.0  # group {1, 3}: |10 − 2| / 2 everywhere
    want = torch.tensor([s02, s13, s02, s13]).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    torch.testing.assert_close(y[:, 1:], want, rtol=1e-6, atol=1e-6)
    whole = MinibatchStdDev(group_size=4)(x)[:, 1]  # one group: the whole minibatch (the paper's text)
    sigma = x[:, 0].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    torch.testing.assert_close(whole, sigma.expand(4, 2, 2))
    odd = torch.arange(6.0).view(6, 1, 1, 1)  # 4 does not divide 6: groups of 3, {0, 2, 4} and {1, 3, 5}
    torch.testing.assert_close(MinibatchStdDev(4)(odd)[:, 1, 0, 0], torch.full((6,), math.sqrt(8 / 3 + 1e-8)))


# -- progressive growing ------------------------------------------------------------------------------
def test_binomial_filter_on_an_impulse_and_as_bilinear_resampling():
    """StyleGAN 2019 §2.1: the [1, 2, 1] filter k = [1, 2, 1]ᵀ[1, 2, 1]/16 per channel, zero padding. An impulse
    becomes k (a corner impulse keeps k's corner quarter, 9/16 of the mass); channels do not mix; after
    nearest ×2 upsampling an impulse becomes [1, 3, 3, 1]ᵀ[1, 3, 3, 1]/16 — bilinear interpolation's weights,
    equal to torch's bilinear away from the border; before 2×2 pooling, [0, 3, 1, 0]ᵀ[0, 3, 1, 0]/64."""
    k = torch.tensor([1.0, 2.0, 1.0])
    x = torch.zeros(1, 2, 7, 7)
    x[0, 0, 3, 3] = 1.0
    x[0, 1, 0, 0] = 1.0
    y = blur(x)
    expected = torch.zeros(2, 7, 7)
    expected[0, 2:5, 2:5] = torch.outer(k, k) / 16
    expected[1, :2, :2] = torch.outer(k[1:], k[1:]) / 16
    torch.testing.assert_close(y[0], expected, rtol=0, atol=1e-7)
    assert float(y[0, 1].sum()) == pytest.approx(9 / 16)
    up = torch.zeros(1, 1, 4, 4)
    up[0, 0, 1, 1] = 1.0
    u = blur(upsample(up))[0, 0]  # (8, 8)
    k4 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected_up = torch.zeros(8, 8)
    expected_up[1:5, 1:5] = torch.outer(k4, k4) / 16
    torch.testing.assert_close(u, expected_up, rtol=0, atol=1e-7)
    torch.testing.assert_close(style_upsample(up, filtered=True), blur(upsample(up)))
    r = torch.randn(2, 3, 6, 6)
    bilinear = F.interpolate(r, scale_factor=2.0, mode="bilinear", align_corners=False)
    torch.testing.assert_close(style_upsample(r, True)[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1])
    assert not torch.allclose(style_upsample(r, True), bilinear)  # the border: zero padding, not clamping
    down = torch.zeros(1, 1, 8, 8)
    down[0, 0, 3, 3] = 1.0
    d = downsample(blur(down))[0, 0]  # (4, 4)
    k_down = torch.tensor([0.0, 3.0, 1.0, 0.0])
    torch.testing.assert_close(d, torch.outer(k_down, k_down) / 64, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["progan", "stylegan"])
def test_blur_option_filters_after_upsampling_and_before_pooling_and_adds_no_parameters(name):
    """``blur=True``: G's stage blocks (ProGAN) or style layers (StyleGAN) upsample by nearest then the
    filter, D filters each block's features before pooling; the parameters are the same as without."""
    tiny = TINY_PROGAN if name == "progan" else {**TINY_STYLEGAN, "mbstd_group_size": 2}
    torch.manual_seed(0)
    plain = create_model(name, **tiny)
    torch.manual_seed(0)
    filtered = create_model(name, **tiny, blur=True)
    assert count_params(plain) == count_params(filtered)
    filtered.load_state_dict(plain.state_dict())
    d = filtered.discriminator
    h = torch.randn(2, d.blocks[-1][0].weight.shape[1], 8, 8)
    expected = h
    for conv in d.blocks[-1]:
        expected = F.leaky_relu(conv(expected), 0.2)
    torch.testing.assert_close(d.block(d.num_stages - 1, h), downsample(blur(expected)))
    if name == "progan":
        g = filtered.generator
        h = torch.randn(2, g.blocks[1][0].weight.shape[1], 4, 4)
        expected = blur(upsample(h))
        for conv in g.blocks[1]:
            expected = g.pixel_norm(F.leaky_relu(conv(expected), 0.2))
        torch.testing.assert_close(g.block(1, h), expected)
    else:
        layer = filtered.generator.layers[1]  # the first upsampling style layer (8×8)
        assert layer.up and layer.conv.blur
        h, w = torch.randn(2, layer.conv.weight.shape[1], 4, 4), torch.randn(2, 6)
        s = layer.conv.styles(w)
        weight = layer.conv.weight * layer.conv.scale
        y = F.conv2d(blur(upsample(h)) * s[:, :, None, None], weight, padding=1)
        y = y * torch.rsqrt(s.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)[:, :, None, None]
        torch.testing.assert_close(layer.conv(h, w), y)
        fake, score = filtered(torch.randn(4, 8))
        (fake.mean() + score.mean()).backward()
        assert all(p.grad is not None for p in filtered.parameters())


def test_schedule_stabilises_then_fades_each_stage_in_linearly():
    """2S − 1 equal phases (§2): 4×4 alone, then per stage α rising 0 → 1 and a stabilisation at α = 1."""
    total, s = 70, 4  # 7 phases of 10 steps
    steps = (0, 9, 10, 15, 19, 20, 29, 30, 45, 50, 69, 70)
    got = [progress_to_stage(t, total, s) for t in steps]
    assert [stage for stage, _ in got] == [0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3]
    assert [alpha for _, alpha in got] == pytest.approx([1, 1, 0, 0.5, 0.9, 1, 1, 0, 1, 0, 1, 1], abs=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_generator_fade_in_is_the_blend_of_fig2(progan, alpha):
    """y = (1 − α)·up(toRGB_{s−1}(h_{s−1})) + α·toRGB_s(block_s(h_{s−1})) (Fig. 2b), here at stage 2."""
    g, z = progan.generator, torch.randn(4, 8)
    progan.set_stage(2, alpha)
    h0 = g.block(0, z)
    h1 = g.block(1, h0)
    low = upsample(g.to_rgb[1](h1))  # (4, 1, 16, 16)
    high = g.to_rgb[2](g.block(2, h1))
    torch.testing.assert_close(g(z), (1 - alpha) * low + alpha * high)
    if alpha == 0.0:  # exactly the previous stage's image, upsampled
        faded_in = g(z)
        progan.set_stage(1, 1.0)
        torch.testing.assert_close(faded_in, upsample(g(z)), rtol=0, atol=0)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_discriminator_fade_in_is_the_blend_of_fig2(progan, alpha):
    """h = (1 − α)·fromRGB_{s−1}(down(x)) + α·block_s(fromRGB_s(x)), then the lower stages (Fig. 2b);
    α = 0 is the previous stage's D on the downsampled image."""
    d, x = progan.discriminator, torch.randn(4, 1, 16, 16)
    progan.set_stage(2, alpha)
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    h = (1 - alpha) * lrelu(d.from_rgb[1](downsample(x))) + alpha * d.block(2, lrelu(d.from_rgb[2](x)))
    torch.testing.assert_close(d(x), d.head(d.block(1, h)))
    if alpha == 0.0:
        got = d(x)
        progan.set_stage(1, 1.0)
        torch.testing.assert_close(got, d(downsample(x)), rtol=0, atol=0)


def test_real_images_are_padded_downsampled_and_blended(progan):
    """28 → 32 by 2 background pixels a side; pooled to r_s; during a fade-in
    x_s = (1 − α)·up(down(x_s)) + α·x_s (Fig. 2 caption)."""
    x = torch.rand(4, 1, 28, 28)
    progan.set_stage(3, 1.0)
    full = progan.prepare_real(x)
    assert full.shape == (4, 1, 32, 32) and torch.equal(full[..., 2:30, 2:30], x)
    assert full[..., :2, :].abs().sum() == 0 and full[..., :, 30:].abs().sum() == 0
    progan.set_stage(1, 0.25)
    x8 = downsample(downsample(full))
    torch.testing.assert_close(progan.prepare_real(x), 0.75 * upsample(downsample(x8)) + 0.25 * x8)
    progan.set_stage(1, 0.0)  # α = 0: the 4×4 image, upsampled — what G's α = 0 output is made of
    torch.testing.assert_close(progan.prepare_real(x), upsample(downsample(x8)))


def test_set_progress_moves_both_networks_and_the_averaged_generator(progan):
    import copy

    ema = copy.deepcopy(progan.generator)
    progan.attach_sampling_generator(ema)
    progan.set_progress(35, 70)  # phase 3 of 7 (fade in 16×16), half way
    for net in (progan, progan.generator, progan.discriminator, ema):
        assert (net.stage, net.alpha) == (2, 0.5)
    assert progan.prepare_real(torch.rand(2, 1, 28, 28)).shape == (2, 1, 16, 16)
    assert progan.generator(torch.randn(2, 8)).shape == (2, 1, 16, 16)
    with pytest.raises(ConfigError, match="set budget.steps"):
        progan.set_progress(3, None)
    fixed = create_model("progan", **TINY_PROGAN, progressive=False)
    fixed.set_progress(0, 70)
    assert (fixed.stage, fixed.alpha) == (3, 1.0)


def test_inactive_parameters_are_exactly_those_without_gradient(progan):
    for stage, alpha in ((0, 1.0), (2, 0.5), (3, 1.0)):
        progan.zero_grad(set_to_none=True)
        progan.set_stage(stage, alpha)
        fake, score = progan(torch.randn(4, 8))
        (fake.mean() + score.mean()).backward()
        none = {n for n, p in progan.named_parameters() if p.grad is None}
        assert none == progan.inactive_parameters()
    assert "generator.to_rgb.2.weight" in none  # stage 3, α = 1: the 16×16 toRGB is unused


def test_progan_contract_data_shape_and_units(progan):
    """sample: (n, 1, 28, 28) in [0, 1], eval mode and no grad, the model's mode restored; a low stage is
    shown upsampled to 32×32 before the crop."""
    progan.train()
    a = progan.sample(5, generator=torch.Generator().manual_seed(3))
    b = progan.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b) and progan.training
    assert a.min() >= 0 and a.max() <= 1 and not a.requires_grad
    progan.set_stage(0, 1.0)
    z = torch.randn(2, 8)
    low = progan.generate(z)
    want = progan.to_data(progan.generator(z)).repeat_interleave(8, -1).repeat_interleave(8, -2)[..., 2:30, 2:30]
    torch.testing.assert_close(low, want.clamp(0, 1))
    with pytest.raises(ConfigError, match="resolution 24 must be a power of 2"):
        create_model("progan", resolution=24)
    with pytest.raises(ConfigError, match="in_shape 28×28 must be square, at most resolution 16"):
        create_model("progan", resolution=16)


# -- StyleGAN ---------------------------------------------------------------------------------------
def test_modulated_convolution_equals_eq1_to_3_per_example():
    """w'_{ijk} = s_i w_{ijk} (Eq. 1), w''_{ijk} = w'_{ijk} / √(Σ_{i,k} w'²_{ijk} + ε) (Eq. 2–3): each
    example convolved with its own weights, against the layer's input/output-scaling computation."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 3, 3, w_dim=4)
    x, w = torch.randn(2, 5, 6, 6), torch.randn(2, 4)
    s = conv.affine.weight @ w.t() * conv.affine.scale + 1.0  # A(w): bias initialised to 1
    torch.testing.assert_close(conv.styles(w), s.t())
    base = conv.weight * (1 / math.sqrt(5 * 9))
    outs, outs_mod = [], []
    for b in range(2):
        w1 = base * s[:, b].view(1, 5, 1, 1)  # Eq. 1
        w2 = w1 / (w1.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()  # Eq. 2–3
        outs.append(F.conv2d(x[b : b + 1], w2, padding=1))
        outs_mod.append(F.conv2d(x[b : b + 1], w1, padding=1))
    torch.testing.assert_close(conv(x, w), torch.cat(outs), rtol=1e-5, atol=1e-5)
    conv.demodulate = False
    torch.testing.assert_close(conv(x, w), torch.cat(outs_mod), rtol=1e-5, atol=1e-5)


def test_adain_gives_each_map_mean_y_b_and_deviation_abs_y_s_whatever_the_input():
    """2019 Eq. 1: AdaIN(x_i, y) = y_{s,i} (x_i − μ(x_i)) / σ(x_i) + y_{b,i}, so each output map of each
    example has mean y_{b,i} and (population) deviation |y_{s,i}| for inputs of any offset and scale (to
    the factor σ/√(σ² + ε) of the ε = 1e-8 in σ(x_i), which is 1 − 5e-3 for the map of scale 1e-3);
    (y_s, y_b) = (1 + A_s(w), A_b(w)) with A the equalised affine layer (the released code's style_mod)."""
    torch.manual_seed(0)
    adain = AdaIN(5, w_dim=4)
    with torch.no_grad():
        adain.affine.bias.normal_()  # beyond the initial 0, so both halves of A's output are checked
    w = torch.randn(3, 4, dtype=torch.float64)
    adain = adain.double()
    offset = torch.tensor([-1e3, -1.0, 0.0, 2.0, 1e2], dtype=torch.float64).view(1, 5, 1, 1)
    scale = torch.tensor([1e-3, 0.5, 1.0, 10.0, 1e3], dtype=torch.float64).view(1, 5, 1, 1)
    x = torch.randn(3, 5, 6, 6, dtype=torch.float64) * scale + offset
    a = adain.affine.weight @ w.t() * adain.affine.scale + adain.affine.bias.unsqueeze(1)  # A(w): (2N, B)
    y_s, y_b = 1 + a[:5].t(), a[5:].t()
    torch.testing.assert_close(adain.styles(w), (y_s, y_b))
    out = adain(x, w)
    torch.testing.assert_close(out.mean(dim=(2, 3)), y_b, rtol=0, atol=1e-10)
    std = out.std(dim=(2, 3), unbiased=False)
    var = x.var(dim=(2, 3), unbiased=False)  # σ² of each input map; ε = 1e-8 only shows where σ² is tiny
    torch.testing.assert_close(std, y_s.abs() * (var / (var + 1e-8)).sqrt(), rtol=1e-9, atol=0)
    torch.testing.assert_close(std[:, 1:], y_s.abs()[:, 1:], rtol=1e-6, atol=0)  # σ ≥ 0.5: |y_s| to 1e-6
    assert (y_s < 0).any()  # a negative scale flips the map: |y_s| is the deviation


def test_adain_layer_is_conv_noise_bias_lrelu_adain_in_the_released_codes_order():
    """The released code's layer_epilogue after [up →] conv: + noise·b → + bias → leaky ReLU 0.2 → instance
    norm (biased variance, ε = 1e-8) → y_s · + y_b; the conv is equalised (He's √2/√fan_in); the first layer
    has no conv and takes the constant as it is."""
    torch.manual_seed(0)
    layer = AdaINStyleLayer(3, 4, w_dim=5, up=True)
    with torch.no_grad():
        layer.noise.strength.normal_()
        layer.bias.normal_()
    h, w, n = torch.randn(2, 3, 4, 4), torch.randn(2, 5), torch.randn(2, 1, 8, 8)
    u = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)  # (2, 3, 8, 8)
    v = F.conv2d(u, layer.weight * math.sqrt(2) / math.sqrt(3 * 9), padding=1)
    v = v + layer.noise.strength.view(1, 4, 1, 1) * n + layer.bias.view(1, 4, 1, 1)
    v = torch.where(v >= 0, v, 0.2 * v)
    mu, var = v.mean(dim=(2, 3), keepdim=True), v.var(dim=(2, 3), unbiased=False, keepdim=True)
    y_s, y_b = layer.adain.styles(w)
    expected = y_s.view(2, 4, 1, 1) * (v - mu) / torch.sqrt(var + 1e-8) + y_b.view(2, 4, 1, 1)
    torch.testing.assert_close(layer(h, w, n), expected, rtol=1e-5, atol=1e-5)
    first = AdaINStyleLayer(4, 4, w_dim=5, conv=False)
    assert first.weight is None and not first.up
    c = torch.ones(2, 4, 4, 4)  # the constant as initialised: one value per map, so AdaIN gives y_b
    torch.testing.assert_close(
        first(c, w, n[:, :, :4, :4]), first.adain.styles(w)[1].view(2, 4, 1, 1).expand(2, 4, 4, 4)
    )


def test_adain_generator_structure_and_parameter_count_by_arithmetic():
    """The default widths (512 maps, w of 512, 8 mapping layers) at 32×32 with AdaIN: per layer an affine
    A (D → 2N, bias), a noise scale and a bias (N each) and, except on the constant's layer, a 3×3 conv;
    one 1×1 toRGB at 32×32; mapping network and discriminator as for the modulated variant."""
    with torch.device("meta"):
        adain = create_model("stylegan", style_block="adain")
        modulated = create_model("stylegan")
    g = adain.generator
    assert len(g.layers) == g.num_ws == 8 and len(g.to_rgb) == 1
    n, d, c = 512, 512, 1
    per_layer = (d + 1) * 2 * n + n + n  # A, noise scale, bias
    convs = 7 * n * n * 9  # every layer but the constant's: 512 → 512 maps throughout at these widths
    synthesis = n * 16 + 8 * per_layer + convs + (n * c + c)  # constant, layers, toRGB
    shared = count_params(modulated.generator.mapping) + count_params(modulated.discriminator)
    assert count_params(adain) == synthesis + shared == 43_555_330
    with torch.device("cpu"):
        assert torch.equal(
            create_model("stylegan", style_block="adain", **TINY_STYLEGAN).generator.const, torch.ones(8, 4, 4)
        )


def test_noise_input_adds_scaled_per_pixel_noise_and_zero_scale_changes_nothing(stylegan):
    """§3.2: h + b ⊙ n with n one value per pixel shared by the channels, b per channel (initialised to 0,
    so a new generator's output does not depend on the noise at all)."""
    layer = NoiseInput(3)
    h, n = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    with torch.no_grad():
        layer.strength.copy_(torch.tensor([0.0, 1.0, -2.0]))
    torch.testing.assert_close(layer(h, n), h + torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1) * n)
    z = torch.randn(3, 8)
    stylegan.eval()  # no style mixing
    one = stylegan.generate(z, noise_generator=torch.Generator().manual_seed(1))
    two = stylegan.generate(z, noise_generator=torch.Generator().manual_seed(2))
    assert torch.equal(one, two) and torch.equal(one, stylegan.generate(z, noise="none"))
    with torch.no_grad():
        for m in stylegan.generator.modules():
            if isinstance(m, NoiseInput):
                m.strength.fill_(0.5)
    assert not torch.equal(
        stylegan.generate(z, noise_generator=torch.Generator().manual_seed(1)),
        stylegan.generate(z, noise_generator=torch.Generator().manual_seed(2)),
    )


def test_style_mixing_uses_w1_before_the_crossover_and_w2_after(stylegan):
    """§3.1: every style layer (and with modulated convs every toRGB) reads its own row of ws; with crossover
    c, rows < c are f(z₁) and rows ≥ c f(z₂). Checked by recording the w each style operator receives."""
    g = stylegan.generator.eval()
    assert g.num_ws == 8  # 32×32: modulated: one layer at 4×4, two per later resolution, the last toRGB's;
    # AdaIN: the constant's layer and a conv at 4×4, two per later resolution
    w1, w2 = g.mapping(torch.randn(2, 8)), g.mapping(torch.randn(2, 8))
    ws = mix_styles(w1.unsqueeze(1).expand(-1, 8, -1), w2.unsqueeze(1).expand(-1, 8, -1), cutoff=3)
    seen = []
    hooks = [
        m.affine.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        for m in g.modules()
        if isinstance(m, (ModulatedConv2d, AdaIN))
    ]
    g.synthesis(ws, noise="none")
    for h in hooks:
        h.remove()
    # modulated, the order of calls: layer 0, toRGB 0 (w1), layer 1, layer 2, toRGB 1 (w3), …; AdaIN: one per layer
    order = [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7] if g.style_block == "modulated" else list(range(8))
    assert len(seen) == len(order)
    for got, idx in zip(seen, order, strict=True):
        torch.testing.assert_close(got, w1 if idx < 3 else w2, rtol=0, atol=0)


def test_generate_mixed_takes_coarse_styles_from_z1_and_fine_from_z2(stylegan):
    stylegan.eval()
    z1, z2 = torch.randn(3, 8), torch.randn(3, 8)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731  (the same noise for every call)
    torch.testing.assert_close(
        stylegan.generate_mixed(z1, z2, 8, noise_generator=g()), stylegan.generate(z1, noise_generator=g())
    )
    torch.testing.assert_close(
        stylegan.generate_mixed(z1, z2, 0, noise_generator=g()), stylegan.generate(z2, noise_generator=g())
    )
    with pytest.raises(ValueError, match=r"cutoff 9 must be in \[0, 8\]"):
        stylegan.generate_mixed(z1, z2, 9)


def test_training_mixes_styles_with_probability_p(stylegan):
    """In training mode, a share ≈ style_mixing_prob (0.9) of the batches get two latents with a crossover
    c ∈ {1 … L − 1}; eval mode never mixes."""
    g = stylegan.generator.train()
    torch.manual_seed(0)
    mixed, cutoffs = 0, set()
    with torch.no_grad():
        for _ in range(200):
            ws = g.styles(torch.randn(2, 8))
            differs = (ws != ws[:, :1]).any(dim=(0, 2))  # rows unlike row 0
            if differs.any():
                c = int(differs.nonzero()[0])
                assert differs[c:].all() and not differs[:c].any()
                mixed += 1
                cutoffs.add(c)
    assert 0.85 * 200 <= mixed <= 0.95 * 200 and cutoffs == set(range(1, 8))
    g.eval()
    ws = g.styles(torch.randn(2, 8))
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_truncation_psi_zero_gives_the_mean_w_and_the_mean_is_tracked(stylegan):
    """App. B: w' = w̄ + ψ(w − w̄); ψ = 0 → w̄ whatever z. w̄ follows w̄ ← β w̄ + (1 − β) mean f(z) in training."""
    m = stylegan.generator.mapping
    m.train()
    z = torch.randn(16, 8)
    w = m(z)  # one training forward: w̄ = (1 − β)·mean w from 0
    torch.testing.assert_close(m.w_avg, (1 - 0.995) * w.detach().mean(0))
    m.eval()
    torch.testing.assert_close(m(torch.randn(5, 8), psi=0.0), m.w_avg.expand(5, -1))
    zz = torch.randn(5, 8)
    torch.testing.assert_close(m(zz, psi=0.5), m.w_avg + 0.5 * (m(zz) - m.w_avg))
    a = stylegan.sample(4, generator=torch.Generator().manual_seed(0), psi=0.0)
    assert a.shape == (4, 1, 28, 28)  # every image drawn from w̄ (only the noise differs; its scale is 0)
    assert torch.equal(a, a[:1].expand_as(a))


def test_stylegan_contract(stylegan):
    stylegan.train()
    x = stylegan.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 28, 28) and stylegan.training and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, stylegan.sample(3, generator=torch.Generator().manual_seed(0)))
    assert stylegan.prepare_real(torch.rand(2, 1, 28, 28)).shape == (2, 1, 32, 32)
    fake, score = stylegan(torch.randn(4, 8))
    assert fake.shape == (4, 1, 28, 28) and score.shape == (4, 1)
    (fake.mean() + score.mean()).backward()
    assert all(p.grad is not None for p in stylegan.parameters())  # no unused layer at a fixed 32×32


# -- training through the GAN task ------------------------------------------------------------------
@pytest.fixture
def digits_gan():
    """The digits (1×8×8 in [0, 1]) as a data set serving the gan task, for a few-step progan run."""
    from dataclasses import replace

    from archlab.data import dataset_info, load_dataset
    from archlab.data.core import DATASETS, register_dataset

    info = replace(dataset_info("digits"), name="digits_progan", task="gan", tasks=("gan",))
    register_dataset(info)(lambda split, data_dir=None: load_dataset("digits", split))
    yield info.name
    DATASETS._entries.pop(info.name, None)


def test_progan_resumes_bit_identically_across_a_resolution_change(tmp_path, digits_gan):
    """6 steps of 4×4 → 8×8 (three phases of 2: 4×4, fade-in, 8×8), WGAN-GP with the drift term and an
    averaged generator; a run resumed from its step-2 checkpoint (after the 4×4 phase) crosses both the
    fade-in and the switch to 8×8 and ends with the same weights, optimiser state and averaged generator,
    bit for bit: the stage and α are a function of the step, set again before every step."""
    import shutil

    from safetensors.torch import load_file

    from archlab.config import load_recipe
    from archlab.engine import Trainer
    from archlab.engine import checkpoint as ckpt
    from conftest import tiny_recipe

    r = tiny_recipe(
        **{
            "model": {"name": "progan", "resolution": 8, "latent_dim": 8, "fmap_base": 16, "fmap_max": 8},
            "data.name": digits_gan,
            "data.val_fraction": 0.0,
            "data.batch_size": 16,
            "data.test_subset": 64,
            "task": {"name": "gan", "loss": "wgan_gp", "options": {"n_critic": 1, "drift": 0.001, "ema_decay": 0.9}},
            "optim": {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.99], "weight_decay": 0.0},
            "schedule": {"name": "constant"},
            "budget.steps": 6,
            "eval.every": 6,
            "checkpoint": {"every": 2, "keep_last": 10},
        }
    )
    full = Trainer(load_recipe(r), runs_dir=tmp_path / "a").fit()
    ref = Path(full["run_dir"])
    resumed = tmp_path / "b" / ref.name
    shutil.copytree(ref, resumed)
    for d in ckpt.step_dirs(resumed / "checkpoints"):
        if int(d.name.split("-")[1]) > 2:
            shutil.rmtree(d)  # as if killed after the step-2 checkpoint
    (resumed / "summary.json").unlink()
    Trainer.resume(resumed, quiet=True).fit()
    names = ("model.safetensors", "optimizer.safetensors", "task.safetensors")
    a, b = (ckpt.step_dirs(run / "checkpoints")[0] for run in (ref, resumed))
    assert a.name == b.name == ckpt.step_dir_name(6)
    for f in names:
        ta, tb = load_file(a / f), load_file(b / f)
        assert ta.keys() == tb.keys() and len(ta) > 0
        for k in ta:
            assert torch.equal(ta[k], tb[k]), (f, k)
    # Adam keeps no state for a layer before its stage fades in (its gradient is None): fresh moments
    # for the 8×8 layers, as the released code's optimiser reset gives them
    early = load_file(resumed / "checkpoints" / ckpt.step_dir_name(2) / "optimizer.safetensors")
    late = load_file(a / "optimizer.safetensors")
    params = lambda t: {k.rsplit("/", 1)[0] for k in t if k.startswith("generator/")}  # noqa: E731
    assert params(early) < params(late)


def test_adain_stylegan_trains_with_the_non_saturating_loss_and_r1(tmp_path, digits_gan):
    """The 2019 FFHQ set-up at toy size (Karras et al. 2019, App. C): AdaIN generator, non-saturating loss,
    R1 with γ = 10, through the GAN task: two steps move every parameter of both networks (the noise
    scales too: they get a gradient through AdaIN) and report a finite R1 penalty."""
    from archlab.config import load_recipe
    from archlab.engine import Trainer
    from conftest import tiny_recipe

    model = {"name": "stylegan", "resolution": 8, **TINY_STYLEGAN, "style_block": "adain", "mbstd_group_size": 2}
    r = tiny_recipe(
        **{
            "model": model,
            "data.name": digits_gan,
            "data.val_fraction": 0.0,
            "data.batch_size": 8,
            "task": {"name": "gan", "loss": "non_saturating", "options": {"r1_gamma": 10.0}},
            "optim": {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.99], "weight_decay": 0.0},
            "schedule": {"name": "constant"},
        }
    )
    trainer = Trainer(load_recipe(r), runs_dir=tmp_path)
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    logs = [trainer._train_step() for _ in range(2)]
    assert all(math.isfinite(float(out["r1_penalty"])) and float(out["r1_penalty"]) > 0 for out in logs)
    assert [k for k, v in trainer.model.named_parameters() if torch.equal(v, before[k])] == []


def test_an_unknown_style_block_is_one_line_before_the_run_dir(tmp_path, capsys):
    from archlab.cli import main

    rc = main(["train", "fashion_mnist/stylegan", "model.style_block=adaIN", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0, err
    assert "model.style_block: Input should be 'modulated' or 'adain' (got adaIN)" in err
    assert not (tmp_path / "runs").exists()


def test_drift_term_adds_eps_times_mean_squared_real_score(progan):
    """ProGAN App. A.1: L_D' = L_D + ε_drift E_x[D(x)²] (task.options.drift; 0 leaves L_D unchanged);
    refused for a loss without a critic."""
    from archlab.config import TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    info = dataset_info("fashion_mnist")
    plain = build_task(TaskSpec(name="gan", loss="wgan_gp", options={"gp_weight": 0.0}), info)
    drift = build_task(TaskSpec(name="gan", loss="wgan_gp", options={"gp_weight": 0.0, "drift": 0.001}), info)
    real = progan.to_network(progan.prepare_real(torch.rand(4, 1, 28, 28)))
    fake = progan.generator(torch.randn(4, 8)).detach()
    base, _ = plain.d_objective(progan, real, fake)
    with_drift, _ = drift.d_objective(progan, real, fake)
    s_real, s_fake = progan.discriminator(real), progan.discriminator(fake)
    torch.testing.assert_close(base, s_fake.mean() - s_real.mean())
    torch.testing.assert_close(with_drift, base + 0.001 * s_real.square().mean())
    with pytest.raises(ConfigError, match="task.options.drift: 0.001 must be ≥ 0 and applies to a critic"):
        build_task(TaskSpec(name="gan", loss="non_saturating", options={"drift": 0.001}), info)


def test_progan_without_a_step_budget_is_one_line_before_the_run_dir(tmp_path, capsys, digits_gan):
    """The schedule needs budget.steps: a time budget is refused by the start-up probe, exit 2, no run dir."""
    import yaml

    from archlab.cli import main
    from conftest import tiny_recipe

    r = tiny_recipe(**{"model": {"name": "progan", "resolution": 8, "latent_dim": 8, "fmap_base": 16, "fmap_max": 8},
                       "data.name": digits_gan, "data.val_fraction": 0.0, "task": {"name": "gan", "loss": "wgan_gp"},
                       "schedule": {"name": "constant"}, "budget": {"seconds": 60}})  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(r))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "progressive growing schedules its stages over budget.steps" in err
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="model.mbstd_group_size: Input should be greater than or equal to 0"):
        create_model("progan", mbstd_group_size=-1)


def test_gan_evaluation_is_a_function_of_the_seed_not_of_the_global_rng():
    """StyleGAN's generator adds per-pixel noise: the task's evaluation draws it from its own seeded
    generator (``generator_output``), so ``archlab eval`` reproduces summary.json exactly."""
    from archlab.config import ModelSpec, TaskSpec
    from archlab.data import dataset_info
    from archlab.data.batch import Batch
    from archlab.tasks import build_task

    task = build_task(TaskSpec(name="gan"), dataset_info("fashion_mnist"), seed=0)
    torch.manual_seed(0)
    model = task.build_model(ModelSpec(name="stylegan", **TINY_STYLEGAN)).eval()
    with torch.no_grad():  # a visible noise strength (the learned scale starts at 0)
        for name, p in model.generator.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(1.0)
    batches = [Batch(x=torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)))]
    torch.manual_seed(123)
    first = task.evaluate(model, batches)
    torch.manual_seed(456)
    assert task.evaluate(model, batches) == first
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, model.latent_dim, generator=g)
    a = model.generator_output(z, torch.Generator().manual_seed(3))
    assert torch.equal(a, model.generator_output(z, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, model.generator_output(z, torch.Generator().manual_seed(4)))  # the noise is used
