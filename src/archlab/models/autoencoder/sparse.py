"""The sparse autoencoder (``sparse_ae``): a reconstruction loss plus a penalty that keeps most code
units inactive — the KL divergence between a target activation ρ and each unit's mean activation
ρ̂_j over the batch (Ng's notes), or the L1 norm of the code.

Ng, *Sparse autoencoder*, CS294A lecture notes, Stanford 2011, §3 (the KL penalty, Eq. on p. 14);
the L1 penalty on the code as in Lee, Battle, Raina & Ng, *Efficient sparse coding algorithms*,
NIPS 2006, and Goodfellow, Bengio & Courville, *Deep Learning*, §14.2.1 (Eq. 14.2).

Letters: B batch, K latent_dim (code units j), ρ the target activation, λ sparsity_weight.

Equations:
    z = σ(f(x))              penalty="kl": sigmoid code units in (0, 1)      (B, K)
    z = ReLU(f(x))           penalty="l1": non-negative code units (code_activation="relu")
    ρ̂_j = (1/B) Σ_b z_bj                                                    mean activation of unit j
    KL(ρ ‖ ρ̂_j) = ρ log(ρ / ρ̂_j) + (1 − ρ) log((1 − ρ) / (1 − ρ̂_j))
    Ω_kl(z) = Σ_j KL(ρ ‖ ρ̂_j)                  Ω_l1(z) = (1/B) Σ_b Σ_j |z_bj|
    loss = −log p(x | g(z)) + λ · Ω(z)

Parameter arithmetic (1×28×28, K = 64, hidden 512, 256): the plain autoencoder's layers with a
64-unit code: 784·512+512 + 512·256+256 + 256·64+64 + 64·256+256 + 256·512+512 + 512·784+784 =
1,100,112.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from archlab.models.autoencoder.base import AEConfig, AEOutput, AutoencoderBase
from archlab.registry import register_model
from archlab.registry.config import NonNegativeFloat, PositiveInt, Probability


@dataclass
class SparseAEConfig(AEConfig):
    """The shared options (:class:`AEConfig`) and the sparsity penalty."""

    latent_dim: PositiveInt = 64  # K code units (a sparse code may be wide)
    penalty: Literal["kl", "l1"] = "kl"  # Ω: KL(ρ ‖ ρ̂_j) per unit (Ng), or the L1 norm of the code
    code_activation: Literal["sigmoid", "relu"] = "sigmoid"  # the code's non-linearity; "kl" needs sigmoid
    sparsity_target: Probability = 0.05  # ρ (Ng's notes: 0.05)
    sparsity_weight: NonNegativeFloat = 3.0  # λ (Ng's β = 3 for the KL penalty)


class SparseAutoencoder(AutoencoderBase):
    """Shapes: x (B, *in_shape) → z (B, K) ∈ (0, 1) or ≥ 0 → x̂ (B, *in_shape)."""

    def __init__(self, config: SparseAEConfig):
        super().__init__()
        if config.penalty == "kl" and config.code_activation != "sigmoid":
            raise ValueError(
                "penalty='kl' compares mean activations with ρ ∈ (0, 1): it needs code_activation='sigmoid'"
            )
        if config.penalty == "kl" and config.sparsity_target <= 0:
            raise ValueError("penalty='kl' needs sparsity_target ρ in (0, 1), got 0")
        self._init_common(config, config.latent_dim)

    def code(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a) if self.config.code_activation == "sigmoid" else torch.relu(a)

    def sparsity(self, z: torch.Tensor) -> torch.Tensor:
        """Ω(z) for a batch of codes (B, K) → 0-dim (see the module docstring)."""
        z = z.float()
        if self.config.penalty == "l1":
            return z.abs().sum(-1).mean()
        rho = self.config.sparsity_target
        rho_hat = z.mean(0).clamp(1e-6, 1 - 1e-6)  # (K,) mean activation of each unit
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum()

    def loss_terms(self, x: torch.Tensor, out: AEOutput | None = None) -> dict[str, torch.Tensor]:
        """{"reconstruction": −log p(x | z) (nats per example), "sparsity": Ω(z)}."""
        out = self(x) if out is None else out
        return {"reconstruction": self.reconstruction(x, out).mean(), "sparsity": self.sparsity(out.z)}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        return {"reconstruction": 1.0, "sparsity": self.config.sparsity_weight}


@register_model(
    family="autoencoder",
    config=SparseAEConfig,
    paper="Ng, Sparse autoencoder, CS294A lecture notes (Stanford 2011)",
    tasks=("reconstruction", "denoising", "anomaly"),
    test_overrides={"hidden": (8,), "latent_dim": 6},
    meta={"num_params": 1_100_112, "macs": 1_097_728},
)
def sparse_ae(**overrides) -> SparseAutoencoder:
    """Sparse autoencoder: sigmoid code of 64 units with the KL(ρ ‖ ρ̂_j) penalty (ρ = 0.05, λ = 3)."""
    return SparseAutoencoder(SparseAEConfig(**overrides))
