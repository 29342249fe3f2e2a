"""The plain autoencoder: an MLP (``ae_mlp``) or a convolutional one (``ae_conv``: strided
convolutions down, transposed convolutions up), trained to reconstruct its input through a code
of ``latent_dim`` units.

Rumelhart, Hinton & Williams 1986 (auto-association by back-propagation); Hinton & Salakhutdinov,
*Reducing the Dimensionality of Data with Neural Networks*, Science 313, 2006 (deep autoencoders);
the convolutional form after Masci et al., *Stacked Convolutional Auto-Encoders*, ICANN 2011, with
stride-2 convolutions in place of pooling (Springenberg et al. 2015, arXiv:1412.6806) and
transposed convolutions to upsample (Dumoulin & Visin 2016, arXiv:1603.07285).

Letters: B batch, D = prod(in_shape), K latent_dim, f the encoder, g the decoder, φ the activation.

Equations:
    z = f(x)                                  (B, K), no activation on the code
    x̂ = g(z)                                  logits (Bernoulli) or mean (Gaussian), (B, *in_shape)
    L(x) = −log p(x | x̂)                     Σ_d BCE(σ(x̂_d), x_d)   or   Σ_d (x_d − x̂_d)²/2s² + const
    f (mlp):  Linear(D, 512) → φ → Linear(512, 256) → φ → Linear(256, K); g mirrors it
    f (conv): [Conv 4×4/2 → φ] × 2 → Linear(64·H/4·W/4, K); g: Linear → φ → [ConvT 4×4/2] × 2

Parameter arithmetic (1×28×28, K = 16): ae_mlp encoder 784·512+512 + 512·256+256 + 256·16+16 =
537,360, decoder 16·256+256 + 256·512+512 + 512·784+784 = 538,128, total 1,075,488.
ae_conv encoder 1·32·16+32 + 32·64·16+64 + 3136·16+16 = 83,568, decoder 16·3136+3136 +
64·32·16+32 + 32·1·16+1 = 86,625, total 170,193 (3136 = 64·7·7).
"""

from __future__ import annotations

from dataclasses import dataclass

from archlab.models.autoencoder.base import AEConfig, AutoencoderBase
from archlab.registry import register_model


@dataclass
class AutoencoderConfig(AEConfig):
    """The plain autoencoder: only the shared options (see :class:`AEConfig`)."""


class Autoencoder(AutoencoderBase):
    """Shapes: x (B, *in_shape) → z (B, K) → x̂ (B, *in_shape)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self._init_common(config, config.latent_dim)


_PAPER = "Hinton & Salakhutdinov, Reducing the Dimensionality of Data with Neural Networks (Science 2006)"
_TASKS = ("reconstruction", "denoising", "anomaly")
_TEST = {"hidden": (8,), "channels": (4, 8), "latent_dim": 3}


@register_model(
    family="autoencoder",
    config=AutoencoderConfig,
    paper=_PAPER,
    tasks=_TASKS,
    test_overrides=_TEST,
    meta={"num_params": 1_075_488, "macs": 1_073_152},
)
def ae_mlp(**overrides) -> Autoencoder:
    """Autoencoder, MLP encoder and decoder (512, 256 → K = 16 → 256, 512)."""
    return Autoencoder(AutoencoderConfig(**overrides))


@register_model(
    family="autoencoder",
    config=AutoencoderConfig,
    paper="Masci, Meier, Cireşan & Schmidhuber, Stacked Convolutional Auto-Encoders (ICANN 2011)",
    tasks=_TASKS,
    defaults={"arch": "conv"},
    test_overrides=_TEST,
    meta={"num_params": 170_193, "macs": 3_512_320},
)
def ae_conv(**overrides) -> Autoencoder:
    """Convolutional autoencoder: two 4×4 stride-2 convolutions down, two transposed convolutions up."""
    return Autoencoder(AutoencoderConfig(**overrides))
