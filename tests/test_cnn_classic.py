"""LeNet-5, AlexNet, VGG and SqueezeNet: published sizes, the papers' structure, and the options."""

import pytest
import torch
from torch import nn

from archlab import count_params, create_model
from archlab.models.cnn.lenet import C3_TABLE, RBFOutput, ScaledTanh, Subsampling
from archlab.registry import get_model_entry
from archlab.utils.errors import ConfigError


def meta_model(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **overrides)


def feature_shapes(model: nn.Module, layer_type: type, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Output shapes (without the batch) of every ``layer_type`` module, in forward order."""
    shapes: list[tuple[int, ...]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[1:])))
        for m in model.modules()
        if isinstance(m, layer_type)
    ]
    model(x)
    for h in hooks:
        h.remove()
    return shapes


# ---- published sizes (the figures themselves: register_model(meta=...), checked for every model in
# tests/test_registry_models.py) ----------------------------------------------------------------


def test_lenet5_parameter_arithmetic():
    # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706 (parameter-free pooling)
    modern = 156 + 2_416 + 48_120 + 10_164 + 850
    assert count_params(create_model("lenet5_modern")) == modern == get_model_entry("lenet5_modern").meta["num_params"]
    assert count_params(create_model("lenet5", c3_table=False, pool="avg")) == 61_706
    # the paper's trainable S2 (6·2) and S4 (16·2) add 44
    assert count_params(create_model("lenet5", c3_table=False)) == 61_750
    # Table I: 60 connections of 5×5 kernels + 16 biases
    paper = create_model("lenet5")
    assert count_params(paper.c3) == 60 * 25 + 16 == 1_516
    assert count_params(create_model("lenet5", c3_table=False).c3) == 2_416
    paper_linear = 156 + 12 + 1_516 + 32 + 48_120 + 10_164 + 850
    assert count_params(paper) == paper_linear == get_model_entry("lenet5").meta["num_params"]
    # the paper's "60,000 trainable parameters": Table I and the fixed-code RBF output
    rbf = create_model("lenet5", output="rbf")
    assert count_params(rbf) == 60_000
    assert rbf.head.codes.shape == (10, 84) and count_params(rbf.head) == 0


# ---- LeNet-5 ---------------------------------------------------------------------------------


def test_lenet5_feature_map_sizes():
    m = create_model("lenet5", pool="avg")
    shapes = feature_shapes(m, nn.Conv2d, torch.zeros(1, 1, 32, 32))
    assert shapes == [(6, 28, 28)] + [(1, 10, 10)] * 16 + [(120, 1, 1)]  # C1, the 16 C3 maps, C5
    pools = feature_shapes(m, nn.AvgPool2d, torch.zeros(1, 1, 32, 32))
    assert pools == [(6, 14, 14), (16, 5, 5)]
    assert m.forward_features(torch.zeros(2, 1, 32, 32)).shape == (2, 120)


def test_lenet5_c3_connectivity_is_table_1():
    assert sum(len(t) for t in C3_TABLE) == 60 and len(C3_TABLE) == 16
    # Table I row 0 (S2 map 0 feeds C3 maps 0, 4, 5, 6, 9, 10, 11, 12, 14, 15)
    assert [j for j, t in enumerate(C3_TABLE) if 0 in t] == [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]
    c3 = create_model("lenet5").c3
    for j, inputs in enumerate(C3_TABLE):
        x = torch.randn(1, 6, 14, 14, requires_grad=True)
        c3(x)[0, j].sum().backward()
        reads = [i for i in range(6) if x.grad[0, i].abs().sum() > 0]
        assert reads == list(inputs), f"C3 map {j}"


def test_lenet5_paper_components():
    f = ScaledTanh()
    # f(±1) = ±1 (A = 1.7159 was chosen for that), asymptotes ±1.7159
    torch.testing.assert_close(f(torch.tensor([1.0, -1.0, 50.0])), torch.tensor([1.0, -1.0, 1.7159]), atol=1e-4, rtol=0)
    s = Subsampling(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([0.5, -1.0]))
        s.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    out = s(x)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0, 0, 0] == 0.5 * (0 + 1 + 4 + 5) + 1.0  # α · Σ_{2×2} + β
    assert out[0, 1, 1, 1] == -(26 + 27 + 30 + 31)
    # with the paper's init, weights lie in ±2.4 / fan-in
    m = create_model("lenet5")
    assert m.c5.weight.abs().max() <= 2.4 / 400 and m.f6.weight.abs().max() <= 2.4 / 120
    assert m.s2[0].weight.abs().max() <= 0.6


def test_lenet5_rbf_output_is_negative_squared_distance():
    rbf = RBFOutput(84, 10)
    assert set(rbf.codes.unique().tolist()) == {-1.0, 1.0}
    h = rbf.codes[3:4].clone()
    h[0, :5] = 0.0  # 5 components off by 1 from code 3
    logits = rbf(h)
    assert logits.argmax().item() == 3 and logits[0, 3].item() == -5.0
    torch.testing.assert_close(logits, -torch.cdist(h, rbf.codes).square())
    assert torch.equal(RBFOutput(84, 10).codes, rbf.codes)  # fixed (seeded) codes


def test_lenet5_options():
    modern = create_model("lenet5_modern")
    assert any(isinstance(m, nn.MaxPool2d) for m in modern.modules())
    assert any(isinstance(m, nn.ReLU) for m in modern.modules())
    assert not any(isinstance(m, ScaledTanh | Subsampling) for m in modern.modules())
    paper = create_model("lenet5")
    assert sum(isinstance(m, Subsampling) for m in paper.modules()) == 2
    assert sum(isinstance(m, ScaledTanh) for m in paper.modules()) == 6  # C1 S2 C3 S4 C5 F6
    assert isinstance(create_model("lenet5", output="rbf").head, RBFOutput)
    assert isinstance(paper.head, nn.Linear)
    # a larger input is flattened from a larger C5 map: 3×36×36 → C5 2×2
    assert create_model("lenet5", in_shape=(3, 36, 36)).f6.in_features == 120 * 2 * 2


# ---- small inputs and the too-small error -----------------------------------------------------

SMALL = {
    "lenet5": {},
    "lenet5_modern": {},
    "alexnet": {"head_width": 128},
    "vgg11": {"width": 16},
    "vgg16_bn": {"width": 16},
    "squeezenet1_0": {},
    "squeezenet1_1": {},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_input_forward_on_28x28(name):
    torch.manual_seed(0)
    m = create_model(name, in_shape=(1, 28, 28), small_input=True, num_classes=10, **SMALL[name]).eval()
    out = m(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "in_shape"),
    [("lenet5", (1, 28, 28)), ("alexnet", (1, 28, 28)), ("vgg16", (1, 28, 28)), ("squeezenet1_0", (3, 16, 16))],
)
def test_too_small_input_is_a_config_error(name, in_shape):
    with pytest.raises(ConfigError, match=r"too small .*set model\.small_input=true"):
        create_model(name, in_shape=in_shape)


def test_vgg_too_small_message():
    with pytest.raises(ConfigError, match=r"input 28×28 is too small for vgg16 \(5 halvings"):
        create_model("vgg16", in_shape=(1, 28, 28))
    assert create_model("vgg11", in_shape=(3, 32, 32), num_classes=10, head_width=16, width=4)  # 32 is enough


# ---- AlexNet ---------------------------------------------------------------------------------


def test_alexnet_feature_maps_and_options():
    m = meta_model("alexnet")
    x = torch.zeros(1, 3, 224, 224, device="meta")
    assert feature_shapes(m, nn.Conv2d, x) == [(64, 55, 55), (192, 27, 27), (384, 13, 13), (256, 13, 13), (256, 13, 13)]
    assert m.forward_features(x).shape == (1, 9216)
    assert [d.p for d in m.classifier if isinstance(d, nn.Dropout)] == [0.5, 0.5]

    lrn = meta_model("alexnet", lrn=True)
    norms = [layer for layer in lrn.features if isinstance(layer, nn.LocalResponseNorm)]
    assert len(norms) == 2 and norms[0].size == 5 and norms[0].k == 2.0 and norms[0].beta == 0.75
    assert norms[0].alpha == pytest.approx(5e-4)  # torch divides α by n: paper α = 1e−4
    assert count_params(lrn) == 61_100_840
    assert [type(layer).__name__ for layer in lrn.features[:4]] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]

    small = meta_model("alexnet", in_shape=(3, 32, 32), small_input=True)
    conv1 = small.features[0]
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.padding == (1, 1)
    assert sum(isinstance(layer, nn.MaxPool2d) for layer in small.features) == 2
    pools = feature_shapes(small, nn.MaxPool2d, torch.zeros(1, 3, 32, 32, device="meta"))
    assert pools == [(192, 15, 15), (256, 7, 7)]
    assert count_params(small) == 61_100_840 - (3 * 64 * 121) + (3 * 64 * 9)

    narrow = meta_model("alexnet", head_width=512, dropout=0.1, num_classes=10)
    linears = [layer for layer in narrow.classifier if isinstance(layer, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(9216, 512), (512, 512), (512, 10)]
    assert all(d.p == 0.1 for d in narrow.classifier if isinstance(d, nn.Dropout))


# ---- VGG -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "n_convs"), [("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)])
def test_vgg_depth_and_batch_norm(name, n_convs):
    plain, bn = meta_model(name), meta_model(f"{name}_bn")
    convs = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == n_convs and len(convs) + len(fcs) == int(name[3:])  # the weight layers of the name
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    bns = [m for m in bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == n_convs
    assert count_params(bn) - count_params(plain) == sum(2 * b.num_features for b in bns)
    assert count_params(meta_model(name, batch_norm=True)) == count_params(bn)  # the option = the _bn variant


def test_vgg16_stage_shapes_and_head():
    m = meta_model("vgg16")
    x = torch.zeros(1, 3, 224, 224, device="meta")
    stages = [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert feature_shapes(m, nn.MaxPool2d, x) == stages
    assert m.forward_features(x).shape == (1, 25088)
    assert {c.kernel_size for c in m.modules() if isinstance(c, nn.Conv2d)} == {(3, 3)}
    assert [d.p for d in m.classifier if isinstance(d, nn.Dropout)] == [0.5, 0.5]
    wide = meta_model("vgg16", head_width=1024, dropout=0.2)
    assert [fc.out_features for fc in wide.classifier if isinstance(fc, nn.Linear)] == [1024, 1024, 1000]
    assert all(d.p == 0.2 for d in wide.classifier if isinstance(d, nn.Dropout))


def test_vgg_small_input_is_the_cifar_vgg():
    m = meta_model("vgg16", in_shape=(3, 32, 32), small_input=True, num_classes=10)
    x = torch.zeros(1, 3, 32, 32, device="meta")
    assert feature_shapes(m, nn.MaxPool2d, x) == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2), (512, 1, 1)]
    assert m.forward_features(x).shape == (1, 512)
    assert [fc.out_features for fc in m.classifier if isinstance(fc, nn.Linear)] == [512, 512, 10]
    # conv stack 14,714,688 + 512·512+512 + 512·512+512 + 512·10+10
    assert count_params(m) == 14_714_688 + 2 * (512 * 512 + 512) + 5_130
    m28 = meta_model("vgg16", in_shape=(1, 28, 28), small_input=True, num_classes=10)
    pools = feature_shapes(m28, nn.MaxPool2d, torch.zeros(1, 1, 28, 28, device="meta"))
    assert [s[1] for s in pools] == [14, 7, 4, 2, 1]  # ceil mode


def test_vgg_width_and_torchvision_init():
    m = meta_model("vgg11", width=32)
    assert [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)] == [32, 64, 128, 128, 256, 256, 256, 256]
    torch.manual_seed(0)
    real = create_model("vgg11_bn", in_shape=(3, 32, 32), small_input=True, num_classes=10)
    conv = [c for c in real.modules() if isinstance(c, nn.Conv2d)][-1]  # 512 → 512, fan_out 512·9
    assert conv.weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)
    assert conv.bias.abs().max() == 0
    fc = real.classifier[0]
    assert fc.weight.std().item() == pytest.approx(0.01, rel=0.05) and fc.bias.abs().max() == 0
    bn = [b for b in real.modules() if isinstance(b, nn.BatchNorm2d)][0]
    assert bn.weight.eq(1).all() and bn.bias.eq(0).all()


# ---- SqueezeNet ------------------------------------------------------------------------------


def test_squeezenet_structure():
    from archlab.models.cnn.squeezenet import Fire

    for version, conv1 in (("squeezenet1_0", (96, 7, 2)), ("squeezenet1_1", (64, 3, 2))):
        m = meta_model(version)
        c = m.features[0]
        assert (c.out_channels, c.kernel_size[0], c.stride[0]) == conv1
        fires = [f for f in m.features if isinstance(f, Fire)]
        assert len(fires) == 8  # fire2 … fire9
        assert [2 * f.expand3x3.out_channels for f in fires] == [128, 128, 256, 256, 384, 384, 512, 512]
        assert [f.squeeze.out_channels for f in fires] == [16, 16, 32, 32, 48, 48, 64, 64]
        x = torch.zeros(1, 3, 224, 224, device="meta")
        assert m.forward_features(x).shape == (1, 512, 13, 13)  # the fire9 map (the classifier is a conv)
        assert isinstance(m.classifier[0], nn.Dropout) and m.classifier[0].p == 0.5
        assert m.classifier[1] is m.final_conv and m.final_conv.kernel_size == (1, 1)
    # where the pools sit: after conv1, fire4, fire8 (1.0) or after conv1, fire3, fire5 (1.1)
    for version, after in (("squeezenet1_0", [1, 4, 8]), ("squeezenet1_1", [1, 3, 5])):
        kinds = [type(layer).__name__ for layer in meta_model(version).features if not isinstance(layer, nn.ReLU)]
        pools = [i for i, k in enumerate(kinds) if k == "MaxPool2d"]
        assert [p - sum(q < p for q in pools) for p in pools] == after  # modules (conv1, fires) before each pool


def test_fire_module_concatenates_expands():
    from archlab.models.cnn.squeezenet import Fire

    f = Fire(32, 8, 16)
    x = torch.randn(2, 32, 5, 5)
    out = f(x)
    assert out.shape == (2, 32, 5, 5)
    s = torch.relu(f.squeeze(x))
    torch.testing.assert_close(out[:, :16], torch.relu(f.expand1x1(s)))
    torch.testing.assert_close(out[:, 16:], torch.relu(f.expand3x3(s)))


def test_squeezenet_init_small_input_and_dropout():
    torch.manual_seed(0)
    m = create_model("squeezenet1_1", in_shape=(3, 32, 32), small_input=True)
    assert m.final_conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(c.bias.abs().max() == 0 for c in m.modules() if isinstance(c, nn.Conv2d))
    # kaiming_uniform_ with a = 0: bound √6 / √fan_in
    sq = m.features[3].squeeze
    assert sq.weight.abs().max().item() <= (6 / sq.in_channels) ** 0.5
    assert sq.weight.std().item() == pytest.approx((2 / sq.in_channels) ** 0.5, rel=0.1)
    c1 = m.features[0]
    assert c1.kernel_size == (3, 3) and c1.stride == (1, 1) and c1.padding == (1, 1)
    assert m.feature_shape == (512, 4, 4)  # 32 → 16 → 8 → 4
    assert create_model("squeezenet1_0", dropout=0.2).classifier[0].p == 0.2
