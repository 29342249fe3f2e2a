"""ResNet (ImageNet and CIFAR), the plain CIFAR twins and DenseNet: exact sizes, costs, options, shapes."""

import pytest
import torch

from archlab import count_params, create_model
from archlab.models.cnn.densenet import DenseNet
from archlab.models.cnn.resnet import BasicBlock, Bottleneck, ResNet
from archlab.models.cnn.resnet_cifar import CifarBasicBlock, ShortcutA
from archlab.registry import get_model_entry
from archlab.utils.counting import count_flops
from archlab.utils.errors import ConfigError


def published(name: str) -> int:
    """The variant's published parameter count (``register_model(meta=...)``; measured for every model in
    tests/test_registry_models.py)."""
    return get_model_entry(name).meta["num_params"]


def meta_model(name, **overrides):
    with torch.device("meta"):
        return create_model(name, **overrides)


def gmacs(model, shape=(3, 224, 224)):
    return count_flops(model, torch.zeros(1, *shape, device="meta")) / 2 / 1e9


def output_shapes(model, x, names):
    """Output shape of each named submodule in one forward pass."""
    shapes = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in names
    ]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


# ---------------------------------------------------------------- hand arithmetic


def conv(c_in, c_out, k):
    return c_in * c_out * k * k  # no bias (BN follows)


def bn(c):
    return 2 * c  # γ and β


def linear(d, k):
    return d * k + k


def cifar_resnet_params(n, shortcut="A", widths=(16, 32, 64), classes=10, c=3):
    """He et al. §4.2: 3×3 stem, 3 stages of n two-conv blocks, option A free / option B 1×1 + BN."""
    total = conv(c, widths[0], 3) + bn(widths[0])
    c_in = widths[0]
    for p in widths:
        for _ in range(n):
            total += conv(c_in, p, 3) + bn(p) + conv(p, p, 3) + bn(p)
            if shortcut == "B" and c_in != p:
                total += conv(c_in, p, 1) + bn(p)
            c_in = p
    return total + linear(c_in, classes)


def densenet_params(k, blocks, c0, classes, small_input=False, bn_size=4, theta=0.5, c=3):
    """Huang et al.: stem, dense layers BN-1×1(bn_size·k)-BN-3×3(k), transitions BN-1×1(⌊θC⌋), final BN, FC."""
    total = conv(c, c0, 3) if small_input else conv(c, c0, 7) + bn(c0)
    ch = c0
    for i, n_layers in enumerate(blocks):
        for _ in range(n_layers):
            total += bn(ch) + conv(ch, bn_size * k, 1) + bn(bn_size * k) + conv(bn_size * k, k, 3)
            ch += k
        if i < len(blocks) - 1:
            total += bn(ch) + conv(ch, int(theta * ch), 1)
            ch = int(theta * ch)
    return total + bn(ch) + linear(ch, classes)


# ---------------------------------------------------------------- ImageNet variants


def test_densenet_imagenet_counts_follow_from_the_layer_arithmetic():
    assert densenet_params(32, (6, 12, 24, 16), 64, 1000) == published("densenet121") == 7_978_856
    assert densenet_params(48, (6, 12, 36, 24), 96, 1000) == published("densenet161")
    assert densenet_params(32, (6, 12, 32, 32), 64, 1000) == published("densenet169")
    assert densenet_params(32, (6, 12, 48, 32), 64, 1000) == published("densenet201")


def test_resnet50_stage_shapes_at_224():
    model = meta_model("resnet50")
    x = torch.zeros(2, 3, 224, 224, device="meta")
    shapes = output_shapes(model, x, ["maxpool", "layer1", "layer2", "layer3", "layer4"])
    assert shapes == {
        "maxpool": (2, 64, 56, 56),
        "layer1": (2, 256, 56, 56),
        "layer2": (2, 512, 28, 28),
        "layer3": (2, 1024, 14, 14),
        "layer4": (2, 2048, 7, 7),
    }
    assert model.forward_features(x).shape == (2, 2048)
    assert [len(model.stage(i)) for i in range(1, 5)] == [3, 4, 6, 3]


def test_resnet18_small_input_keeps_cifar_resolution():
    model = meta_model("resnet18", in_shape=(3, 32, 32), small_input=True, num_classes=10)
    x = torch.zeros(2, 3, 32, 32, device="meta")
    shapes = output_shapes(model, x, ["layer1", "layer4"])
    assert shapes == {"layer1": (2, 64, 32, 32), "layer4": (2, 512, 4, 4)}
    assert isinstance(model.maxpool, torch.nn.Identity) and model.conv1.kernel_size == (3, 3)
    # the usual CIFAR ResNet-18: 7×7 stem → 3×3 stem, 1000 → 10 classes
    expected = published("resnet18") - conv(3, 64, 7) + conv(3, 64, 3) - linear(512, 1000) + linear(512, 10)
    assert count_params(model) == expected == 11_173_962


def test_resnet_module_names_match_torchvision_state_dicts():
    keys = meta_model("resnet50").state_dict().keys()
    assert {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer4.2.bn3.weight", "fc.bias"} <= keys
    assert "layer1.1.downsample.0.weight" not in keys  # identity shortcut where the shape is kept
    keys = meta_model("densenet121").state_dict().keys()
    assert {
        "features.conv0.weight",
        "features.norm0.weight",
        "features.denseblock1.denselayer1.conv1.weight",
        "features.denseblock4.denselayer16.conv2.weight",
        "features.transition3.conv.weight",
        "features.norm5.bias",
        "classifier.weight",
    } <= keys


def test_bottleneck_stride_placement_v1_and_v1_5():
    v15 = meta_model("resnet50")
    v1 = meta_model("resnet50", stride_in_1x1=True)
    first = v15.layer2[0]
    assert (first.conv1.stride, first.conv2.stride) == ((1, 1), (2, 2))
    first = v1.layer2[0]
    assert (first.conv1.stride, first.conv2.stride) == ((2, 2), (1, 1))
    assert count_params(v1) == count_params(v15)
    # v1 runs the first 1×1 of stages 2–4 at full resolution and the 3×3 at half: cheaper (paper: 3.8 GFLOPs)
    assert gmacs(v1) == pytest.approx(3.86, rel=0.02)
    x = torch.zeros(1, 3, 224, 224, device="meta")
    assert output_shapes(v1, x, ["layer4"]) == {"layer4": (1, 2048, 7, 7)}


def test_resnet_width_scales_every_stage():
    model = meta_model("resnet50", width=32)
    x = torch.zeros(1, 3, 224, 224, device="meta")
    shapes = output_shapes(model, x, ["layer1", "layer4"])
    assert shapes == {"layer1": (1, 128, 56, 56), "layer4": (1, 1024, 7, 7)}
    assert model.conv1.out_channels == 32 and model.fc.in_features == 1024


@pytest.mark.parametrize(
    ("name", "block", "last_bn"), [("resnet18", BasicBlock, "bn2"), ("resnet50", Bottleneck, "bn3")]
)
def test_zero_init_residual_zeros_the_last_bn_of_every_block(name, block, last_bn):
    small = {"in_shape": (3, 32, 32), "small_input": True, "num_classes": 10, "width": 8}
    default = create_model(name, **small)
    model = create_model(name, zero_init_residual=True, **small)
    blocks = [m for m in model.modules() if isinstance(m, block)]
    assert len(blocks) == sum(get_model_entry(name).defaults["layers"])
    for b in blocks:
        assert torch.count_nonzero(getattr(b, last_bn).weight) == 0
        assert torch.all(b.bn1.weight == 1)
    assert all(torch.all(getattr(b, last_bn).weight == 1) for b in default.modules() if isinstance(b, block))
    # a zero-initialised block with an identity shortcut is the identity on its (non-negative) input
    b = model.layer1[1].train()
    x = torch.rand(2, b.conv1.in_channels, 8, 8)
    torch.testing.assert_close(b(x), x)


def test_resnet_too_small_input_says_how_to_fix_it():
    with pytest.raises(ConfigError, match=r"input 28×28 is too small .*stride 32.*small_input=true"):
        create_model("resnet18", in_shape=(1, 28, 28), num_classes=10)


# ---------------------------------------------------------------- CIFAR ResNets and plain nets

CIFAR_N = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
# Table 6 rounds the exact counts (10 classes, option A: parameter-free shortcuts) to these
TABLE6_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


@pytest.mark.parametrize("depth", list(CIFAR_N))
def test_cifar_resnet_and_plain_param_counts(depth):
    n = CIFAR_N[depth]
    assert 6 * n + 2 == depth
    exact = cifar_resnet_params(n)
    assert exact == published(f"resnet{depth}") == published(f"plain{depth}")
    assert round(exact / 1e6, 2 if depth < 100 else 1) == TABLE6_M[depth]
    resnet = meta_model(f"resnet{depth}")
    plain = meta_model(f"plain{depth}")
    assert count_params(resnet) == count_params(plain) == exact
    # option B adds the two projections (16→32 and 32→64, 1×1 conv + BN), whatever the depth
    resnet_b = meta_model(f"resnet{depth}", shortcut="B")
    assert count_params(resnet_b) == cifar_resnet_params(n, shortcut="B")
    assert count_params(resnet_b) - count_params(resnet) == conv(16, 32, 1) + bn(32) + conv(32, 64, 1) + bn(64) == 2752


def test_cifar_resnet_stage_shapes():
    model = meta_model("resnet56")
    x = torch.zeros(2, 3, 32, 32, device="meta")
    shapes = output_shapes(model, x, ["conv1", "stages.0", "stages.1", "stages.2"])
    assert shapes == {
        "conv1": (2, 16, 32, 32),
        "stages.0": (2, 16, 32, 32),
        "stages.1": (2, 32, 16, 16),
        "stages.2": (2, 64, 8, 8),
    }
    assert [len(s) for s in model.stages] == [9, 9, 9]


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 7, 7)
    y = ShortcutA(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)  # the grid of a 3×3 stride-2 conv with padding 1
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    blocks = [m for m in create_model("resnet20").modules() if isinstance(m, CifarBasicBlock)]
    assert [type(b.shortcut).__name__ for b in blocks if b.shortcut is not None] == ["ShortcutA", "ShortcutA"]


def test_plain_blocks_have_no_identity_path():
    """Silence the residual branch (last BN γ = β = 0): a residual block passes its input through,
    a plain block outputs zeros; silencing every block makes the plain net's logits input-independent."""
    torch.manual_seed(0)
    x = torch.rand(4, 16, 8, 8)  # post-ReLU activations are non-negative
    outs = {}
    for name in ("resnet20", "plain20"):
        model = create_model(name)
        for m in model.modules():
            if isinstance(m, CifarBasicBlock):
                torch.nn.init.zeros_(m.bn2.weight)
                torch.nn.init.zeros_(m.bn2.bias)
        block = model.stages[0][1]
        outs[name] = block(x)
        assert all(b.shortcut is None for b in model.modules() if isinstance(b, CifarBasicBlock)) == (name == "plain20")
        logits = model.eval()(torch.randn(4, 3, 32, 32))
        varies = not torch.allclose(logits, logits[:1].expand_as(logits))
        assert varies == (name == "resnet20")
    torch.testing.assert_close(outs["resnet20"], x)
    assert torch.count_nonzero(outs["plain20"]) == 0


def test_cifar_zero_init_residual():
    model = create_model("resnet20", zero_init_residual=True)
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in model.modules() if isinstance(b, CifarBasicBlock))


def test_cifar_depth_must_be_6n_plus_2():
    with pytest.raises(ConfigError, match=r"depth must be 6n \+ 2"):
        create_model("resnet20", depth=21)


# ---------------------------------------------------------------- DenseNet


def test_densenet_bc_100_counts():
    # Huang et al. Table 2: DenseNet-BC (L=100, k=12) has 0.8M parameters
    expected = densenet_params(12, (16, 16, 16), 24, 10, small_input=True)
    assert expected == 769_162 and round(expected / 1e6, 1) == 0.8
    model = meta_model("densenet_bc_100")
    assert count_params(model) == expected
    assert model.input_shape == (3, 32, 32) and model.config.num_classes == 10
    assert gmacs(model, (3, 32, 32)) * 1e3 == pytest.approx(287.9, rel=0.01)


def test_densenet_block_and_transition_shapes():
    model = meta_model("densenet121")
    x = torch.zeros(1, 3, 224, 224, device="meta")
    names = [f"features.{n}" for n in ("pool0", "denseblock1", "transition1", "denseblock2", "transition2")]
    names += [f"features.{n}" for n in ("denseblock3", "transition3", "denseblock4")]
    shapes = output_shapes(model, x, names)
    assert list(shapes.values()) == [
        (1, 64, 56, 56),
        (1, 64 + 6 * 32, 56, 56),
        (1, 128, 28, 28),
        (1, 128 + 12 * 32, 28, 28),
        (1, 256, 14, 14),
        (1, 256 + 24 * 32, 14, 14),
        (1, 512, 7, 7),
        (1, 512 + 16 * 32, 7, 7),
    ]
    model = meta_model("densenet_bc_100")
    x = torch.zeros(1, 3, 32, 32, device="meta")
    names = [f"features.{n}" for n in ("conv0", "denseblock1", "transition1", "denseblock2", "transition2")]
    shapes = output_shapes(model, x, [*names, "features.denseblock3"])
    assert list(shapes.values()) == [
        (1, 24, 32, 32),
        (1, 216, 32, 32),
        (1, 108, 16, 16),
        (1, 300, 16, 16),
        (1, 150, 8, 8),
        (1, 342, 8, 8),
    ]


def test_densenet_options():
    small = {"in_shape": (3, 32, 32), "num_classes": 10, "small_input": True}
    # no bottleneck (DenseNet, not -B): dense layers are BN-ReLU-3×3 only
    plain = meta_model("densenet_bc_100", bn_size=0)
    assert not any(
        isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in plain.features.denseblock1.modules()
    )
    assert count_params(plain) == (
        conv(3, 24, 3)
        + sum(bn(c) + conv(c, 12, 3) for b in (24, 108, 150) for c in range(b, b + 16 * 12, 12))
        + bn(216) + conv(216, 108, 1) + bn(300) + conv(300, 150, 1) + bn(342) + linear(342, 10)
    )  # fmt: skip
    # no compression: transitions keep the channels
    model = meta_model("densenet_bc_100", compression=1.0)
    assert model.features.transition1.conv.out_channels == 216 and model.num_features == 24 + 3 * 16 * 12
    # growth rate and stem width
    model = meta_model("densenet121", growth_rate=16, num_init_features=32, **small)
    assert model.features.conv0.out_channels == 32
    assert model.features.transition1.conv.in_channels == 32 + 6 * 16
    # small_input: the paper's CIFAR stem, one 3×3 stride-1 convolution
    assert [n for n, _ in model.features.named_children()][:2] == ["conv0", "denseblock1"]
    assert model.features.conv0.stride == (1, 1)
    # dropout on the new features: stochastic in training, off in eval
    torch.manual_seed(0)
    model = create_model("densenet_bc_100", drop_rate=0.5, block_config=(2, 2, 2))
    x = torch.randn(2, 3, 32, 32)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_densenet_too_small_input_says_how_to_fix_it():
    with pytest.raises(ConfigError, match=r"input 28×28 is too small for this DenseNet.*small_input=true"):
        create_model("densenet121", in_shape=(1, 28, 28), num_classes=10)
    assert isinstance(meta_model("densenet121", in_shape=(3, 32, 32)), DenseNet)  # 32 → 8 → 4 → 2 → 1


# ---------------------------------------------------------------- small inputs, docs


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("resnet18", {"small_input": True, "width": 8}),
        ("resnet50", {"small_input": True, "width": 8}),
        ("resnet20", {}),
        ("plain20", {}),
        ("resnet20", {"shortcut": "B"}),
        ("densenet121", {"small_input": True, "growth_rate": 8, "num_init_features": 16}),
        ("densenet_bc_100", {"block_config": (4, 4, 4)}),
    ],
)
def test_small_input_forward_on_28x28(name, overrides):
    torch.manual_seed(0)
    model = create_model(name, in_shape=(1, 28, 28), num_classes=10, **overrides)
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_small_input_shapes_on_28x28():
    model = create_model("resnet20", in_shape=(1, 28, 28))
    shapes = output_shapes(model, torch.randn(2, 1, 28, 28), ["stages.0", "stages.1", "stages.2"])
    assert shapes == {"stages.0": (2, 16, 28, 28), "stages.1": (2, 32, 14, 14), "stages.2": (2, 64, 7, 7)}
    model = meta_model("resnet18", in_shape=(1, 28, 28), small_input=True, num_classes=10)
    shapes = output_shapes(model, torch.zeros(2, 1, 28, 28, device="meta"), ["layer4"])
    assert shapes == {"layer4": (2, 512, 4, 4)}


def test_equations_and_descriptions():
    assert "bottleneck: y = ReLU(S(x) + BN(W_3 *" in get_model_entry("resnet50").equations()
    assert "pad_C(x[:, :, ::s, ::s])" in get_model_entry("plain20").equations()
    assert "x_ℓ = H_ℓ([x_0, x_1, …, x_{ℓ−1}])" in get_model_entry("densenet_bc_100").equations()
    assert get_model_entry("resnet50").description.startswith("ResNet-50: bottleneck blocks [3, 4, 6, 3]")
    assert isinstance(meta_model("resnet152"), ResNet)
