"""The denoising autoencoder (``denoising_ae``): reconstruct the clean x from a corrupted x̃ —
additive Gaussian noise, masking noise (a fraction ν of the elements set to 0), or salt-and-pepper
noise (a fraction ν set to the minimum or maximum, 0 or 1, by a fair coin).

Vincent, Larochelle, Bengio & Manzagol, *Extracting and Composing Robust Features with Denoising
Autoencoders*, ICML 2008 (§2.3, the masking corruption q_D); Vincent, Larochelle, Lajoie, Bengio &
Manzagol, *Stacked Denoising Autoencoders*, JMLR 11, 2010 (§4.2: Gaussian, masking and
salt-and-pepper noise).

Letters: B batch, ν noise_level (the std of the Gaussian, or the corrupted fraction), q_D the
corruption.

Equations:
    x̃ ~ q_D(x̃ | x)
        gaussian:      x̃ = x + ε,   ε ~ N(0, ν² I)
        masking:       x̃_d = 0 with probability ν, else x_d
        salt_pepper:   x̃_d = 0 or 1 (a fair coin) with probability ν, else x_d
    z = f(x̃),  x̂ = g(z)
    loss = −log p(x | x̂)          against the clean x (JMLR 2010, Eq. 3)

The corruption is applied in training mode only (``forward``); evaluate denoising by corrupting
explicitly with :meth:`DenoisingAutoencoder.corrupt` and a seeded generator. The architecture is
the plain MLP autoencoder's (1,075,488 parameters at the defaults, see ``ae_mlp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from archlab.models.autoencoder.base import AEConfig, AEOutput, AutoencoderBase
from archlab.registry import register_model
from archlab.registry.config import NonNegativeFloat


@dataclass
class DenoisingAEConfig(AEConfig):
    """The shared options (:class:`AEConfig`) and the corruption q_D."""

    corruption: Literal["gaussian", "masking", "salt_pepper"] = "masking"  # q_D (JMLR 2010 §4.2)
    noise_level: NonNegativeFloat = 0.25  # ν: Gaussian std, or the corrupted fraction (≤ 1); JMLR 2010 used 0–0.5


def corrupt(
    x: torch.Tensor, corruption: str, noise_level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x̃ ~ q_D(x̃ | x), same shape as x (see the module docstring for the three kinds)."""
    if corruption == "gaussian":
        return x + noise_level * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    hit = torch.rand(x.shape, generator=generator, device=x.device) < noise_level
    if corruption == "masking":
        return x.masked_fill(hit, 0.0)
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


class DenoisingAutoencoder(AutoencoderBase):
    """Shapes: x (B, *in_shape) → x̃ (training) → z (B, K) → x̂ (B, *in_shape)."""

    def __init__(self, config: DenoisingAEConfig):
        super().__init__()
        if config.corruption != "gaussian" and config.noise_level > 1:
            raise ValueError(
                f"noise_level is the corrupted fraction for corruption='{config.corruption}': it must be in "
                f"[0, 1], got {config.noise_level}"
            )
        self._init_common(config, config.latent_dim)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x̃ ~ q_D(x̃ | x) with this model's corruption and ν."""
        return corrupt(x, self.config.corruption, self.config.noise_level, generator)

    def forward(self, x: torch.Tensor) -> AEOutput:
        """In training mode the encoder reads x̃ ~ q_D(x̃ | x); in eval mode x itself."""
        z = self.encode(self.corrupt(x) if self.training else x)
        return AEOutput(self.decoder_output(z), z)


@register_model(
    family="autoencoder",
    config=DenoisingAEConfig,
    paper="Vincent, Larochelle, Bengio & Manzagol, Extracting and Composing Robust Features with Denoising "
    "Autoencoders (ICML 2008); Vincent et al., Stacked Denoising Autoencoders (JMLR 2010)",
    tasks=("denoising", "reconstruction", "anomaly"),
    test_overrides={"hidden": (8,), "latent_dim": 3},
    meta={"num_params": 1_075_488, "macs": 1_073_152},
)
def denoising_ae(**overrides) -> DenoisingAutoencoder:
    """Denoising autoencoder: MLP (512, 256 → 16), masking noise ν = 0.25, loss against the clean input."""
    return DenoisingAutoencoder(DenoisingAEConfig(**overrides))
