"""The GAN of Goodfellow et al. with multilayer perceptrons for G and D (``gan_mlp``): for 1-D and
2-D toy distributions and for flattened images.

Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio, *Generative
Adversarial Nets*, NeurIPS 2014, arXiv:1406.2661 (§3, Eq. 1; §5 "a mixture of rectifier linear
activations and sigmoid activations" in G, maxout activations and dropout in D). The default
variant is their MNIST model as configured in the paper's code (github.com/goodfeli/adversarial,
mnist.yaml): z of 100 values, G two ReLU layers of 1200 units and a sigmoid output of 784, D two
maxout layers of 240 units × 5 pieces and a sigmoid unit (here a logit: the sigmoid lives in the
loss), dropout keeping 80 % of D's inputs and 50 % of its hidden units. Two deviations: z ~ N(0, I)
instead of U(−1, 1) (the family's one latent distribution), and PyTorch's default initialisation.

Letters: B batch, K latent_dim, D_x = prod(in_shape), h a hidden layer, P maxout pieces.

Equations:
    G: h₁ = φ(W₁ z + b₁), …, u = out(W_L h + b_L)           (B, K) → (B, D_x) → (B, *in_shape)
    D: a₀ = dropout_in(flatten(u)); h_l = maxout(W_l a + b_l) = max_p (W_l a + b_l)_{·,p}  (P pieces)
       a_l = dropout(h_l); score = w · a_L + c                (B, *in_shape) → (B, 1)
    spectral_norm=True: every linear layer of D uses W / σ(W) (Miyato et al. 2018, Eq. 8)

Parameter arithmetic (the default, 1×28×28, K = 100): G 100·1200+1200 + 1200·1200+1200 +
1200·784+784 = 2,503,984; D (maxout) 784·1200+1200 + 240·1200+1200 + 240+1 = 1,231,441; total
3,735,425 (a maxout layer of 240 units × 5 pieces is a Linear to 1200 outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from archlab.layers.activations import get_activation
from archlab.models.gan.base import GANBase, GANConfig, Output, flat_size
from archlab.registry import register_model
from archlab.registry.config import PositiveInt, Probability


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013, arXiv:1302.4389, Eq. 1): a Linear to units × pieces
    outputs, then the max over each unit's pieces. Shapes: (B, d_in) → (B, units)."""

    def __init__(self, d_in: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(len(x), self.units, self.pieces).amax(-1)  # (B, units)


@dataclass
class MLPGANConfig(GANConfig):
    """Goodfellow et al.'s MNIST model by default (module docstring)."""

    output: Output = "sigmoid"  # G's output: Goodfellow et al.'s sigmoid for [0, 1] data; "linear" for points
    g_hidden: tuple[PositiveInt, ...] = (1200, 1200)  # widths of G's hidden layers
    g_activation: str = "relu"  # G's hidden activation (archlab.layers.activations)
    d_hidden: tuple[PositiveInt, ...] = (240, 240)  # units of D's hidden layers
    d_activation: str = "maxout"  # "maxout" (pieces below) or an activation name (relu, leaky_relu …)
    maxout_pieces: PositiveInt = 5  # P, pieces per maxout unit
    d_input_dropout: Probability = 0.2  # dropout on D's input (mnist.yaml keeps 80 %)
    d_dropout: Probability = 0.5  # dropout after each hidden layer of D
    spectral_norm: bool = False  # D's linear layers spectrally normalised (for the hinge loss, Miyato et al.)


class MLPGAN(GANBase):
    """Shapes: z (B, K) → G → u (B, *in_shape); u → D → (B, 1)."""

    def __init__(self, config: MLPGANConfig):
        super().__init__()
        self._init_common(config)
        d_x = flat_size(self.input_shape)
        g: list[nn.Module] = []
        d_in = config.latent_dim
        for w in config.g_hidden:
            g += [nn.Linear(d_in, w), get_activation(config.g_activation)]
            d_in = w
        g.append(nn.Linear(d_in, d_x))
        if config.output != "linear":
            g.append(nn.Tanh() if config.output == "tanh" else nn.Sigmoid())
        g.append(nn.Unflatten(1, self.input_shape))
        self.generator = nn.Sequential(*g)

        sn = _spectral_norm if config.spectral_norm else (lambda m: m)
        d: list[nn.Module] = [nn.Flatten()]
        if config.d_input_dropout:
            d.append(nn.Dropout(config.d_input_dropout))
        d_in = d_x
        for w in config.d_hidden:
            if config.d_activation == "maxout":
                unit = Maxout(d_in, w, config.maxout_pieces)
                unit.linear = sn(unit.linear)
                d.append(unit)
            else:
                d += [sn(nn.Linear(d_in, w)), get_activation(config.d_activation)]
            if config.d_dropout:
                d.append(nn.Dropout(config.d_dropout))
            d_in = w
        d.append(sn(nn.Linear(d_in, 1)))
        self.discriminator = nn.Sequential(*d)


_TEST = {"in_shape": (2,), "g_hidden": (8,), "d_hidden": (8,), "latent_dim": 4, "output": "linear"}


@register_model(
    family="gan",
    config=MLPGANConfig,
    paper="Goodfellow et al., Generative Adversarial Nets (NeurIPS 2014)",
    tasks=("gan",),
    test_overrides=_TEST,
    meta={"num_params": 3_735_425, "macs": 3_729_840, "source": "goodfeli/adversarial mnist.yaml (arithmetic)"},
)
def gan_mlp(**overrides) -> MLPGAN:
    """GAN with MLPs: Goodfellow et al.'s MNIST generator (1200-1200 ReLU) and maxout discriminator (240×5 ×2)."""
    return MLPGAN(MLPGANConfig(**overrides))
