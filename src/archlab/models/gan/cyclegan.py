"""CycleGAN: two ResNet generators and two PatchGAN discriminators for unpaired translation.

Zhu, Park, Isola & Efros, *Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks*, ICCV 2017, arXiv:1703.10593 — §3 (the objective, Eq. 1–3), §4 (implementation: the
generator of Johnson et al. 2016, the 70×70 PatchGAN of Isola et al. 2017, instance norm, weights
N(0, 0.02)) and Appendix 7.2 (the layer notation below). The losses, the 50-image history buffer
and the optimisers live in the task (:mod:`archlab.tasks.cyclegan`).

Letters: A, B the two domains; G: A → B and F: B → A the generators; D_A, D_B the discriminators
(D_B tells real B images from G's translations); k = ``ngf`` (the paper's 64), m = ``ndf`` (64);
IN instance normalisation (no affine parameters, no running statistics: the reference code's
default); x data in [0, 1], x̃ = 2x − 1 the networks' range (the generators end in tanh).

Equations (Appendix 7.2, scaled down by the config for 28×28 one-channel images and one CPU):
    c7s1-k   ReflectPad 3 → Conv 7×7/1 (k) → IN → ReLU
    dk       Conv 3×3/2, zero pad 1 (k) → IN → ReLU                      halves H, W
    Rk       x + [ReflectPad 1 → Conv 3×3 → IN → ReLU → ReflectPad 1 → Conv 3×3 → IN](x)
    uk       ConvTranspose 3×3/½, pad 1, output pad 1 (k) → IN → ReLU   doubles H, W
    G, F     c7s1-k, d2k, d4k, R4k × n_blocks, u2k, uk, then ReflectPad 3 → Conv 7×7 (C) → tanh
             (the paper: k = 64 and 6 blocks at 128×128, 9 at 256×256; here k = 16, 3 blocks)
    Ck       Conv 4×4/2, pad 1 (k) → IN → LeakyReLU(0.2)                  (no IN on the first)
    D_A, D_B C(m), C(2m) … C(m·2^(L−1)) stride 2, then C(m·2^L) stride 1 and Conv 4×4/1 → 1 score
             per patch (channels capped at 8m); L = ``d_layers`` (the paper's C64-C128-C256-C512 is
             L = 3, a 70×70 receptive field; L = 1 here: 16×16 patches of a 28×28 image)
    translate(a, "a2b") = (G(2a − 1) + 1) / 2,   translate(b, "b2a") = (F(2b − 1) + 1) / 2

Receptive field of a patch score, L stride-2 4×4 convolutions then two stride-1 ones:
r = 7 after the two stride-1 layers, r ← 2r + 2 for each stride-2 one: r_L = 9·2^L − 2 (16, 34, 70 for
L = 1, 2, 3).

Parameter arithmetic (1×28×28, k = m = 16, 3 blocks, L = 1; every conv has a bias):
    G = c7s1-16 49·16+16 = 800 · d32 16·32·9+32 = 4,640 · d64 32·64·9+64 = 18,496 ·
        R64 ×3: 3·2·(64·64·9+64) = 221,568 · u32 64·32·9+32 = 18,464 · u16 32·16·9+16 = 4,624 ·
        c7s1-1 16·49+1 = 785: 269,377; F the same
    D = C16 16·16+16 = 272 · C32 16·32·16+32 = 8,224 · out 32·16+1 = 513: 9,009; two of each:
    2·269,377 + 2·9,009 = 556,772; without the discriminators (``discriminators=False``, what task
    ``translation_paired`` builds: it trains G and F alone) 2·269,377 = 538,754
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ImageShape, LayerCount, ModelConfig, PositiveInt
from archlab.utils.shapes import check_shape

N_DOWNSAMPLING = 2  # d2k, d4k (and u2k, uk): the paper's two stride-2 stages
INIT_STD = 0.02  # §4: "weights are initialized from a Gaussian distribution N(0, 0.02)"
Direction = Literal["a2b", "b2a"]


def patch_receptive_field(d_layers: int) -> int:
    """Side of the input patch one PatchGAN score sees: L stride-2 4×4 convolutions, then two
    stride-1 ones, r = 9·2^L − 2 (L = 3: the paper's 70×70)."""
    r = 1
    for stride in (*[2] * d_layers, 1, 1)[::-1]:  # back from the output: r ← (r − 1)·s + 4
        r = (r - 1) * stride + 4
    return r


@dataclass
class CycleGANConfig(ModelConfig):
    in_shape: ImageShape = (1, 28, 28)  # (C, H, W) of both domains; H, W multiples of 4 (two halvings)
    ngf: PositiveInt = 16  # k of c7s1-k, the generators' first width (paper: 64)
    ndf: PositiveInt = 16  # m of the first C layer of the discriminators (paper: 64)
    n_blocks: LayerCount = 3  # residual blocks R4k (paper: 6 at 128×128, 9 at 256×256)
    d_layers: LayerCount = 1  # L, stride-2 C layers of the PatchGAN (paper: 3, 70×70 patches)
    # build D_A and D_B; False: G and F only (task translation_paired trains no discriminator, so its
    # checkpoints hold no untrained ones)
    discriminators: bool = True


class CycleGANOutput(NamedTuple):
    """``forward(a)``: the A → B → A half of a training step. ``fake_b`` = translate(a, "a2b") and
    ``rec_a`` = F(G(a)) in data units (B, C, H, W); ``score_fake_b`` = D_B(G(a)) and ``score_real_a``
    = D_A(a), the patch scores (B, 1, h, w), None for a model built without discriminators."""

    fake_b: torch.Tensor
    rec_a: torch.Tensor
    score_fake_b: torch.Tensor | None
    score_real_a: torch.Tensor | None


class ResnetBlock(nn.Module):
    """Rk: x + (ReflectPad 1 → Conv 3×3 → IN → ReLU → ReflectPad 1 → Conv 3×3 → IN)(x). Shapes: (B, k, h, w) kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-k, d2k, d4k, R4k × n_blocks, u2k, uk, c7s1-C with tanh (Johnson et al. 2016 as Zhu et al.
    use it). Shapes: (B, C, H, W) in [−1, 1] → (B, C, H, W) in (−1, 1); H, W multiples of 4."""

    def __init__(self, channels: int, ngf: int, n_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(inplace=True),
        ]
        k = ngf
        for _ in range(N_DOWNSAMPLING):  # dk: (B, k, h, w) → (B, 2k, h/2, w/2)
            layers += [nn.Conv2d(k, 2 * k, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * k), nn.ReLU(inplace=True)]
            k *= 2
        layers += [ResnetBlock(k) for _ in range(n_blocks)]
        for _ in range(N_DOWNSAMPLING):  # uk: (B, k, h, w) → (B, k/2, 2h, 2w)
            layers += [
                nn.ConvTranspose2d(k, k // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(k // 2),
                nn.ReLU(inplace=True),
            ]
            k //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """The PatchGAN (Isola et al. 2017, §3.2.2; Zhu et al. Appendix 7.2): C(m) without IN, C(2m) …
    stride 2, C(m·2^L) stride 1, then a 4×4 conv to one score per overlapping patch of
    :func:`patch_receptive_field` (d_layers) pixels. Shapes: (B, C, H, W) → (B, 1, h, w), raw scores
    (the least-squares loss regresses them to 1 for real, 0 for fake)."""

    def __init__(self, channels: int, ndf: int, d_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        c = ndf
        for n in range(1, d_layers + 1):  # the last of these is the stride-1 layer
            out = ndf * min(2**n, 8)
            stride = 2 if n < d_layers else 1
            layers += [
                nn.Conv2d(c, out, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c = out
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(module: nn.Module) -> None:
    """§4 / the reference code's ``init_type='normal'``: every conv weight N(0, 0.02²), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            nn.init.zeros_(m.bias)


class CycleGAN(nn.Module):
    """G: A → B, F: B → A (``generator["G"]``, ``generator["F"]``) and D_A, D_B
    (``discriminator["D_A"]``, ``discriminator["D_B"]``), so that the parameter groups are
    ``model.generator`` and ``model.discriminator`` as for every GAN of the family. With
    ``discriminators=False`` ``model.discriminator`` is empty (G and F alone).

    Data units in, data units out: :meth:`translate` and :meth:`forward` take images in [0, 1] and
    return images in [0, 1]; the networks themselves work in [−1, 1] (:meth:`to_net` /
    :meth:`to_data`), which is what the task's losses are computed in (as in the paper's code).

    Raises :class:`~archlab.utils.errors.ShapeError` for an input other than (B, *in_shape).
    """

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        self.config = config
        c, h, w = config.in_shape
        if h % (1 << N_DOWNSAMPLING) or w % (1 << N_DOWNSAMPLING):
            raise ValueError(
                f"in_shape {tuple(config.in_shape)}: the generator halves H and W twice and doubles them back, so "
                "both must be multiples of 4"
            )
        if min(h, w) < 8:  # the 7×7 reflect-padded convolutions and the h/4 maps of instance norm need room
            raise ValueError(f"in_shape {tuple(config.in_shape)}: H and W must be at least 8")
        self.input_shape = tuple(config.in_shape)
        self.input_spec = self.input_shape  # the generators return an image of the input's size only for these
        self.generator = nn.ModuleDict(
            {"G": ResnetGenerator(c, config.ngf, config.n_blocks), "F": ResnetGenerator(c, config.ngf, config.n_blocks)}
        )
        # built even when dropped: their construction draws from the RNG, so G and F start from the same
        # weights with and without them (a paired run reproduces one of a model that still carried them)
        discriminators = nn.ModuleDict(
            {
                "D_A": PatchDiscriminator(c, config.ndf, config.d_layers),
                "D_B": PatchDiscriminator(c, config.ndf, config.d_layers),
            }
        )
        self.discriminator = discriminators if config.discriminators else nn.ModuleDict()
        self.patch_size = patch_receptive_field(config.d_layers)
        init_weights(self)

    # -- the four networks, by their paper names -------------------------------------------------
    @property
    def G(self) -> ResnetGenerator:  # noqa: N802 - the paper's name
        return self.generator["G"]

    @property
    def F(self) -> ResnetGenerator:  # noqa: N802
        return self.generator["F"]

    @property
    def D_A(self) -> PatchDiscriminator:  # noqa: N802
        return self.discriminator["D_A"]

    @property
    def D_B(self) -> PatchDiscriminator:  # noqa: N802
        return self.discriminator["D_B"]

    @staticmethod
    def to_net(x: torch.Tensor) -> torch.Tensor:
        """x̃ = 2x − 1: data in [0, 1] → the networks' [−1, 1]."""
        return x * 2 - 1

    @staticmethod
    def to_data(y: torch.Tensor) -> torch.Tensor:
        """(y + 1)/2: the networks' [−1, 1] → data units [0, 1]."""
        return (y + 1) / 2

    def forward(self, a: torch.Tensor) -> CycleGANOutput:
        """The A → B → A cycle: (B, *in_shape) in [0, 1] → :class:`CycleGANOutput`."""
        check_shape(a, (None, *self.input_spec))
        a_net = self.to_net(a)
        fake_b = self.G(a_net)
        rec_a = self.F(fake_b)
        if not self.discriminator:
            return CycleGANOutput(self.to_data(fake_b), self.to_data(rec_a), None, None)
        return CycleGANOutput(self.to_data(fake_b), self.to_data(rec_a), self.D_B(fake_b), self.D_A(a_net))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: Direction = "a2b") -> torch.Tensor:
        """G(x) (``"a2b"``) or F(x) (``"b2a"``) in eval mode without gradients: (n, *in_shape) in
        [0, 1] → (n, *in_shape) in [0, 1], on the model's device. The CycleGAN counterpart of a GAN's
        ``sample``: a translation needs an input. Raises ShapeError for another shape, ValueError
        for another direction."""
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction: '{direction}' is not 'a2b' (G: A → B) or 'b2a' (F: B → A)")
        check_shape(x, (None, *self.input_spec))
        net = self.G if direction == "a2b" else self.F
        was = self.training
        self.eval()
        try:
            return self.to_data(net(self.to_net(x.to(next(self.parameters()).device))))
        finally:
            self.train(was)


_PAPER = (
    "Zhu, Park, Isola & Efros, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks "
    "(ICCV 2017, arXiv:1703.10593)"
)


@register_model(
    family="gan",
    config=CycleGANConfig,
    paper=_PAPER,
    tasks=("cyclegan", "translation_paired"),
    test_overrides={"ngf": 4, "ndf": 4, "n_blocks": 1},
    meta={"num_params": 556_772, "macs": 34_376_704},
)
def cyclegan(**overrides) -> CycleGAN:
    """CycleGAN at 28×28: ResNet generators (k = 16, 3 blocks), 16×16 PatchGAN discriminators (m = 16)."""
    return CycleGAN(CycleGANConfig(**overrides))
