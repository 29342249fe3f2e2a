"""MobileNet V1/V2, EfficientNet B0–B7 and ConvNeXt: exact sizes, costs and the options' behaviour.

Counts are taken on the meta device (no memory, no arithmetic): parameters must equal the reference
figure exactly, multiply-accumulates (count_flops / 2) must be within 2 % of it.
"""

import math

import pytest
import torch

from archlab import count_params, create_model
from archlab.models.cnn.convnext import ConvNeXtBlock
from archlab.models.cnn.efficientnet import ALPHA, BETA, GAMMA, MBConv, compound_scaling
from archlab.registry import get_model_entry
from archlab.utils.counting import count_flops
from archlab.utils.errors import ConfigError


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machine's two cores are shared: intra-op threads fighting over them make these small
    convolutions ~100× slower, so the tests of this file run single-threaded."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def meta_model(name: str, **overrides):
    with torch.device("meta"):
        return create_model(name, **overrides)


def gmacs(model) -> float:
    return count_flops(model, torch.zeros(1, *model.input_shape, device="meta")) / 2 / 1e9


def published(name: str) -> int:
    """The variant's published parameter count (``register_model(meta=...)``: torchvision's
    meta["num_params"], MobileNet V1 and atto by arithmetic); every model's count and MACs are checked
    against its metadata in tests/test_registry_models.py."""
    return get_model_entry(name).meta["num_params"]


def test_efficientnet_b2_macs_at_torchvision_crop():
    """torchvision counts B2 at its 288×288 evaluation crop (1.09 GMACs); the paper's Table 2 at 260×260
    (1.0B, the registry's figure for the variant)."""
    assert gmacs(meta_model("efficientnet_b2", in_shape=(3, 288, 288))) == pytest.approx(1.09, rel=0.02)


def test_canonical_resolutions():
    res = {f"efficientnet_b{i}": r for i, r in enumerate((224, 240, 260, 300, 380, 456, 528, 600))}
    for name, r in res.items():
        assert meta_model(name).input_shape == (3, r, r)
    assert meta_model("convnext_tiny").input_shape == (3, 224, 224)


# -- small inputs ----------------------------------------------------------------------------------------
SMALL = ["mobilenet_v1", "mobilenet_v2", "efficientnet_b0", "convnext_atto"]


@pytest.mark.parametrize("name", SMALL)
def test_small_input_forward_on_28x28(name):
    torch.manual_seed(0)
    m = create_model(name, in_shape=(1, 28, 28), small_input=True, num_classes=10).eval()
    out = m(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and bool(torch.isfinite(out).all())
    assert m.forward_features(torch.randn(2, 1, 28, 28)).shape == (2, m.num_features)


def _last_map(m, x):
    """The feature map just before global pooling."""
    name = type(m).__name__
    if name.startswith("MobileNet"):
        return m.features(x)
    if name == "EfficientNet":
        return m.head_conv(m.blocks(m.stem(x)))
    x = m.stem(x)
    for s, stage in enumerate(m.stages):
        x = stage(m.downsample[s - 1](x) if s > 0 else x)
    return x


@pytest.mark.parametrize(("name", "width"), [("mobilenet_v1", 1024), ("mobilenet_v2", 1280), ("efficientnet_b0", 1280)])
def test_stem_stride_sets_the_final_map(name, width):
    """small_input changes only the stem stride: 28 → 28 → … → 2 (÷16) instead of 28 → 1 (÷32, ⌈·/2⌉
    never reaches 0, so no input is refused)."""
    x = torch.zeros(1, 1, 28, 28, device="meta")
    big = meta_model(name, in_shape=(1, 28, 28)).eval()
    small = meta_model(name, in_shape=(1, 28, 28), small_input=True).eval()
    assert _last_map(big, x).shape == (1, width, 1, 1)
    assert _last_map(small, x).shape == (1, width, 2, 2)
    assert count_params(big) == count_params(small)
    stride = {"MobileNetV1": lambda m: m.features[0].conv.stride, "MobileNetV2": lambda m: m.features[0].conv.stride}
    get = stride.get(type(big).__name__, lambda m: m.stem.conv.stride)
    assert get(big) == (2, 2) and get(small) == (1, 1)
    x224 = torch.zeros(1, 3, 224, 224, device="meta")
    assert _last_map(meta_model(name).eval(), x224).shape[-2:] == (7, 7)


# -- MobileNet V1 --------------------------------------------------------------------------------------
V1_BODY = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def v1_by_hand(alpha: float = 1.0, res: int = 224, k: int = 1000) -> tuple[int, int]:
    """Parameters and MACs from Table 1: convs without bias, BN (γ, β) after every conv, a linear head."""
    c = int(32 * alpha)
    size = res // 2
    params, macs = 3 * 9 * c + 2 * c, size * size * 27 * c
    for c_out, s in V1_BODY:
        c_out = int(c_out * alpha)
        size = math.ceil(size / s)
        params += 9 * c + 2 * c + c * c_out + 2 * c_out  # depthwise 3×3 + BN, pointwise 1×1 + BN
        macs += size * size * (9 * c + c * c_out)
        c = c_out
    return params + c * k + k, macs + c * k


def test_mobilenet_v1_by_hand():
    params, macs = v1_by_hand()
    assert params == 4_231_976
    assert macs == 568_740_352  # paper: 569M
    m = meta_model("mobilenet_v1")
    assert count_params(m) == params
    assert count_flops(m, torch.zeros(1, 3, 224, 224, device="meta")) == 2 * macs


@pytest.mark.parametrize(
    ("alpha", "params", "paper_params_m", "paper_macs_m"),
    [(0.75, 2_585_560, 2.6, 325), (0.5, 1_331_592, 1.32, 149), (0.25, 470_072, 0.5, 41)],
)
def test_mobilenet_v1_width_multiplier(alpha, params, paper_params_m, paper_macs_m):
    """Table 6 (and Table 8 for 0.5: 1.32M). Measured: 2.59M / 325.4M, 1.33M / 149.5M, 0.47M / 41.0M."""
    m = meta_model("mobilenet_v1", width_mult=alpha)
    assert count_params(m) == params == v1_by_hand(alpha)[0]
    assert params / 1e6 == pytest.approx(paper_params_m, abs=0.05)  # the paper's figure has 2 digits
    assert gmacs(m) * 1e3 == pytest.approx(paper_macs_m, rel=0.02)
    pw = [layer.pw.conv.out_channels for layer in m.features[1:]]
    assert m.features[0].conv.out_channels == int(32 * alpha)
    assert pw == [int(c * alpha) for c, _ in V1_BODY]
    assert m.classifier.in_features == int(1024 * alpha)


@pytest.mark.parametrize(("res", "paper_macs_m"), [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_multiplier(res, paper_macs_m):
    """Table 7: ρ changes only the input size (and so the cost, ≈ ρ²), never the parameters."""
    m = meta_model("mobilenet_v1", resolution_mult=res / 224)
    assert m.input_shape == (3, res, res)
    assert count_params(m) == 4_231_976
    assert gmacs(m) * 1e3 == pytest.approx(paper_macs_m, rel=0.02)
    assert gmacs(m) * 1e3 == pytest.approx(v1_by_hand(res=res)[1] / 1e6)


def test_mobilenet_v1_half_width_at_160():
    m = meta_model("mobilenet_v1", width_mult=0.5, resolution_mult=160 / 224)  # Table 8: 1.32M, 76M
    assert m.input_shape == (3, 160, 160)
    assert gmacs(m) * 1e3 == pytest.approx(76, rel=0.02)


def test_mobilenet_v1_blocks_are_depthwise_separable():
    m = meta_model("mobilenet_v1")
    layer = m.features[2]  # 64 → 128, stride 2
    assert layer.dw.conv.groups == 64 and layer.dw.conv.weight.shape == (64, 1, 3, 3)
    assert layer.dw.conv.stride == (2, 2) and layer.pw.conv.weight.shape == (128, 64, 1, 1)
    assert isinstance(layer.dw.act, torch.nn.ReLU) and isinstance(layer.pw.act, torch.nn.ReLU)


# -- MobileNet V2 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alpha", "stem", "stage_out", "last"),
    [
        (1.0, 32, [16, 24, 32, 64, 96, 160, 320], 1280),
        (0.5, 16, [8, 16, 16, 32, 48, 80, 160], 1280),  # last channel is not thinned
        (0.35, 16, [8, 8, 16, 24, 32, 56, 112], 1280),  # 11.2 → 8 would lose 29 %: 16
        (1.4, 48, [24, 32, 48, 88, 136, 224, 448], 1792),  # 1280 · 1.4
    ],
)
def test_mobilenet_v2_width_multiplier(alpha, stem, stage_out, last):
    m = meta_model("mobilenet_v2", width_mult=alpha)
    assert m.features[0].conv.out_channels == stem
    blocks = list(m.features[1:-1])
    firsts = [0, 1, 3, 6, 10, 13, 16]  # first block of each of the 7 stages (n = 1, 2, 3, 4, 3, 3, 1)
    assert [blocks[i].block[-1].conv.out_channels for i in firsts] == stage_out
    assert m.features[-1].conv.out_channels == last == m.classifier.in_features


def test_mobilenet_v2_inverted_residual_layout():
    m = meta_model("mobilenet_v2")
    blocks = list(m.features[1:-1])
    assert len(blocks) == 17 and sum(b.use_residual for b in blocks) == 10  # n − 1 per stage
    b = blocks[1]  # 16 → 24, t = 6, stride 2
    expand, dw, project = b.block
    assert expand.conv.weight.shape == (96, 16, 1, 1) and isinstance(expand.act, torch.nn.ReLU6)
    assert dw.conv.groups == 96 and dw.conv.stride == (2, 2)
    assert project.conv.weight.shape == (24, 96, 1, 1) and isinstance(project.act, torch.nn.Identity)
    assert len(blocks[0].block) == 2  # t = 1: no expansion
    assert m.dropout.p == 0.2


def test_mobilenet_v2_residual_is_added():
    torch.manual_seed(0)
    m = create_model("mobilenet_v2", in_shape=(3, 32, 32), num_classes=10).eval()
    block = m.features[3]  # 24 → 24, stride 1
    x = torch.randn(2, 24, 8, 8)
    assert block.use_residual
    torch.testing.assert_close(block(x), x + block.block(x))


# -- EfficientNet --------------------------------------------------------------------------------------
def test_compound_scaling_formula():
    assert compound_scaling(0) == (1.0, 1.0, 224)
    w, d, r = compound_scaling(1)
    assert (w, d, r) == (pytest.approx(1.1), pytest.approx(1.2), 258)
    w, d, r = compound_scaling(7)
    assert (w, d, r) == (pytest.approx(1.1**7), pytest.approx(1.2**7), 596)
    assert [compound_scaling(p)[2] for p in range(8)] == [224, 258, 296, 341, 392, 451, 518, 596]
    flops_factor = ALPHA * BETA**2 * GAMMA**2  # d · w² · r² per unit of φ
    assert flops_factor == pytest.approx(2.0, rel=0.05)  # FLOPs ≈ 2^φ (Eq. 3 constraint)


def test_phi_derives_width_depth_and_resolution():
    m = meta_model("efficientnet_b0", phi=1)
    assert m.input_shape == (3, 258, 258)
    assert (m.width_mult, m.depth_mult) == (pytest.approx(1.1), pytest.approx(1.2))
    assert count_params(m) == published("efficientnet_b2")  # B2 is w 1.1, d 1.2
    m2 = meta_model("efficientnet_b7", phi=2)  # φ replaces the variant's own coefficients
    assert m2.input_shape == (3, 296, 296)
    assert count_params(m2) == published("efficientnet_b3")  # 1.21, 1.44 round like B3's 1.2, 1.4
    ratios = [gmacs(meta_model("efficientnet_b0", phi=p)) / gmacs(meta_model("efficientnet_b0")) for p in (1, 2)]
    assert ratios == [pytest.approx(2.57, rel=0.01), pytest.approx(4.69, rel=0.01)]  # > 1.92^φ: rounding up


@pytest.mark.parametrize(
    ("name", "blocks"), [("efficientnet_b0", 16), ("efficientnet_b4", 32), ("efficientnet_b7", 55)]
)
def test_depth_multiplier_ceil(name, blocks):
    m = meta_model(name)
    d = m.config.depth_mult
    assert [len(stage) for stage in m.blocks] == [math.ceil(n * d) for n in (1, 2, 2, 3, 3, 4, 1)]
    assert sum(len(stage) for stage in m.blocks) == blocks


def test_efficientnet_width_and_se_arithmetic():
    m = meta_model("efficientnet_b0")
    first = m.blocks[0][0]  # t = 1, 32 → 16: no expansion, SE 32 → 8
    assert isinstance(first.expand, torch.nn.Identity)
    assert first.se.fc1.weight.shape == (8, 32, 1, 1) and first.se.fc2.weight.shape == (32, 8, 1, 1)
    b = m.blocks[1][0]  # 16 → 24, t = 6, k 3, stride 2: SE on 96 channels squeezed to 16 / 4 = 4
    assert b.expand.conv.weight.shape == (96, 16, 1, 1)
    assert b.dw.conv.weight.shape == (96, 1, 3, 3) and b.dw.conv.stride == (2, 2)
    assert b.se.fc1.weight.shape == (4, 96, 1, 1) and isinstance(b.se.act, torch.nn.SiLU)
    assert m.blocks[2][0].dw.conv.kernel_size == (5, 5)
    b7 = meta_model("efficientnet_b7")
    assert b7.stem.conv.out_channels == 64 and b7.head_conv.conv.out_channels == 2560
    assert [s[0].project.conv.out_channels for s in b7.blocks] == [32, 48, 80, 160, 224, 384, 640]
    b2 = meta_model("efficientnet_b2")  # w 1.1: 16·1.1 = 17.6 → 16, 40·1.1 = 44 → 48, 320·1.1 = 352
    assert [s[0].project.conv.out_channels for s in b2.blocks] == [16, 24, 48, 88, 120, 208, 352]
    assert b2.classifier.in_features == 1408


def test_drop_connect_rate_grows_linearly():
    m = meta_model("efficientnet_b0")
    blocks = [b for stage in m.blocks for b in stage]
    n = len(blocks)
    for i, b in enumerate(blocks):
        assert isinstance(b, MBConv)
        if b.use_residual:
            assert b.drop_path.p == pytest.approx(0.2 * i / n)
        else:
            assert isinstance(b.drop_path, torch.nn.Identity)  # no skip, nothing to drop
    assert blocks[-2].drop_path.p == pytest.approx(0.2 * 14 / 16)
    m = meta_model("efficientnet_b0", drop_connect_rate=0.0)
    assert all(b.drop_path.p == 0 for stage in m.blocks for b in stage if b.use_residual)


def test_drop_connect_and_dropout_only_in_training():
    torch.manual_seed(0)
    m = create_model("efficientnet_b0", in_shape=(3, 32, 32), num_classes=10, drop_connect_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    assert not torch.allclose(m(x), m(x))


def test_batchnorm_hyperparameters_follow_torchvision():
    for name, eps, momentum in (
        ("efficientnet_b0", 1e-5, 0.1),
        ("efficientnet_b4", 1e-5, 0.1),
        ("efficientnet_b5", 1e-3, 0.01),
    ):
        bns = [m for m in meta_model(name).modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert {(bn.eps, bn.momentum) for bn in bns} == {(eps, momentum)}
    assert [meta_model(f"efficientnet_b{i}").dropout.p for i in range(8)] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]


# -- ConvNeXt ------------------------------------------------------------------------------------------
def convnext_by_hand(depths, dims, c_in: int = 3, k: int = 1000) -> int:
    """Stem 4×4 conv + LN; per block 7×7 DW (+bias), LN, C→4C→C (+biases), γ: 8C² + 58C;
    downsampling LN + 2×2 conv; head LN + linear."""
    params = 16 * c_in * dims[0] + dims[0] + 2 * dims[0]
    for i, (d, c) in enumerate(zip(depths, dims)):
        if i > 0:
            params += 2 * dims[i - 1] + 4 * dims[i - 1] * c + c
        params += d * (8 * c * c + 58 * c)
    return params + 2 * dims[-1] + dims[-1] * k + k


def test_convnext_by_hand():
    assert convnext_by_hand((3, 3, 9, 3), (96, 192, 384, 768)) == published("convnext_tiny")
    assert convnext_by_hand((2, 2, 6, 2), (40, 80, 160, 320)) == published("convnext_atto")  # timm: "3.7M"
    m = meta_model("convnext_atto", in_shape=(1, 28, 28), small_input=True, num_classes=10)
    assert count_params(m) == convnext_by_hand((2, 2, 6, 2), (40, 80, 160, 320), c_in=1, k=10) - 12 * 40
    # the 2×2 stem has 4 instead of 16 weights per (input channel, output channel): 12 · 40 fewer


def test_convnext_layer_scale():
    m = meta_model("convnext_tiny")
    gammas = [b.gamma for stage in m.stages for b in stage]
    assert len(gammas) == 18
    torch.manual_seed(0)
    real = create_model("convnext_atto", in_shape=(3, 32, 32), num_classes=10)
    for stage in real.stages:
        for b in stage:
            assert torch.equal(b.gamma, torch.full_like(b.gamma, 1e-6))
    block = real.stages[1][0].eval()
    x = torch.randn(2, 80, 4, 4)
    assert (block(x) - x).abs().max() < 1e-4  # γ = 1e-6: every block starts as ≈ the identity
    without = meta_model("convnext_tiny", layer_scale_init=0.0)
    assert all(b.gamma is None for stage in without.stages for b in stage)
    assert count_params(m) - count_params(without) == 3 * 96 + 3 * 192 + 9 * 384 + 3 * 768


def test_convnext_block_formula():
    torch.manual_seed(0)
    b = ConvNeXtBlock(8, layer_scale_init=0.5).eval()
    x = torch.randn(2, 8, 6, 6)
    h = torch.nn.functional.conv2d(x, b.dwconv.weight, b.dwconv.bias, padding=3, groups=8).permute(0, 2, 3, 1)
    h = torch.nn.functional.layer_norm(h, (8,), b.norm.weight, b.norm.bias, 1e-6)
    h = torch.nn.functional.gelu(h @ b.fc1.weight.T + b.fc1.bias) @ b.fc2.weight.T + b.fc2.bias
    torch.testing.assert_close(b(x), x + (0.5 * h).permute(0, 3, 1, 2))


def test_convnext_stochastic_depth_schedule():
    for name, rate in (("convnext_tiny", 0.1), ("convnext_small", 0.4), ("convnext_base", 0.5), ("convnext_atto", 0.0)):
        m = meta_model(name)
        ps = [b.drop_path.p for stage in m.stages for b in stage]
        n = len(ps)
        assert ps == pytest.approx([rate * i / (n - 1) for i in range(n)])
        assert ps[-1] == pytest.approx(rate)


@pytest.mark.parametrize(
    ("in_shape", "small", "sizes"),
    [((3, 224, 224), False, [56, 28, 14, 7]), ((1, 28, 28), True, [14, 7, 3, 1]), ((3, 32, 32), True, [16, 8, 4, 2])],
)
def test_convnext_stage_shapes(in_shape, small, sizes):
    m = meta_model("convnext_tiny", in_shape=in_shape, small_input=small)
    x = m.stem(torch.zeros(1, *in_shape, device="meta"))
    got = []
    for s, stage in enumerate(m.stages):
        x = stage(m.downsample[s - 1](x) if s > 0 else x)
        got.append(tuple(x.shape))
    assert got == [(1, c, n, n) for c, n in zip((96, 192, 384, 768), sizes)]


def test_convnext_too_small_input_is_refused():
    with pytest.raises(ConfigError, match=r"28×28 is too small .*28 → 7 → 3 → 1 → 0.*small_input=true"):
        create_model("convnext_tiny", in_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match="too small"):
        create_model("convnext_atto", in_shape=(1, 8, 8), small_input=True)  # 8 → 4 → 2 → 1 → 0
    assert meta_model("convnext_tiny", in_shape=(3, 32, 32)).input_shape == (3, 32, 32)  # 32 → 8 → 4 → 2 → 1


def test_convnext_head_is_pool_norm_linear():
    torch.manual_seed(0)
    m = create_model("convnext_atto", in_shape=(3, 32, 32), num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = m.forward_features(x)
    fmap = _last_map(m, x)
    torch.testing.assert_close(feats, m.norm(fmap.mean((2, 3))))
    torch.testing.assert_close(m(x), m.head(feats))


def test_phi_with_small_input_resamples_inside_and_keeps_the_data_shape():
    """28×28 data cannot grow: with small_input, φ's resolution γ^φ is applied by resampling inside."""
    from archlab import create_model
    from archlab.utils.counting import count_flops

    base = create_model("efficientnet_b0", in_shape=(1, 28, 28), num_classes=10, small_input=True, phi=0.0)
    m1 = create_model("efficientnet_b0", in_shape=(1, 28, 28), num_classes=10, small_input=True, phi=1.0)
    m2 = create_model("efficientnet_b0", in_shape=(1, 28, 28), num_classes=10, small_input=True, phi=2.0)
    assert base.input_shape == m1.input_shape == m2.input_shape == (1, 28, 28)
    assert (base.resolution, m1.resolution, m2.resolution) == ((28, 28), (32, 32), (37, 37))
    x = torch.zeros(1, 1, 28, 28)
    f0, f1, f2 = (count_flops(m, x) for m in (base, m1, m2))
    assert f0 < f1 < f2
    assert m2.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)
