"""The contractive autoencoder (``contractive_ae``): a reconstruction loss plus the squared
Frobenius norm of the encoder's Jacobian, which makes the code insensitive to small input changes.

Rifai, Vincent, Muller, Glorot & Bengio, *Contractive Auto-Encoders: Explicit Invariance During
Feature Extraction*, ICML 2011 (Eq. 7 for the objective; §3 for the closed form of ‖J_f(x)‖²_F
with a sigmoid encoder; tied weights W' = Wᵀ as in the paper's experiments).

Letters: B batch, D = prod(in_shape) inputs i, K latent_dim code units j, λ contractive_weight,
σ the logistic sigmoid.

Equations:
    h = f(x) = σ(W x + b_h)                           the paper's one-layer sigmoid encoder (hidden=())
    x̂ = W' h + b_y,  W' = Wᵀ (tied_weights)          logits (Bernoulli) or mean (Gaussian)
    J_f(x) = ∂h / ∂x                                  (K, D) per example
    ‖J_f(x)‖²_F = Σ_j (h_j (1 − h_j))² Σ_i W_ji²       (§3, sigmoid encoder: jacobian="closed_form")
    ‖J_f(x)‖²_F = Σ_{j,i} (∂h_j / ∂x_i)²               by automatic differentiation, for any encoder
                                                      (jacobian="autograd": deeper MLPs, conv)
    loss = −log p(x | x̂) + λ · ‖J_f(x)‖²_F             (Eq. 7, averaged over the batch)

Parameter arithmetic (1×28×28, K = 128, tied): W 128·784 + b_h 128 + b_y 784 = 101,264.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.autoencoder.base import AEConfig, AEOutput, AutoencoderBase
from archlab.registry import register_model
from archlab.registry.config import NonNegativeFloat, PositiveInt


@dataclass
class ContractiveAEConfig(AEConfig):
    """The shared options (:class:`AEConfig`), the paper's one-layer tied encoder by default, and λ."""

    latent_dim: PositiveInt = 128  # K sigmoid code units
    hidden: tuple[PositiveInt, ...] = ()  # arch="mlp": () is the paper's one-layer encoder
    tied_weights: bool = True  # W' = Wᵀ (needs arch="mlp" and hidden=())
    jacobian: Literal["closed_form", "autograd"] = "closed_form"  # closed_form needs the one-layer sigmoid encoder
    contractive_weight: NonNegativeFloat = 0.1  # λ


class TiedDecoder(nn.Module):
    """x̂ = Wᵀ h + b_y with W the encoder's weight (K, D): (B, K) → (B, D)."""

    def __init__(self, encoder_linear: nn.Linear):
        super().__init__()
        self.encoder_linear = [encoder_linear]  # a plain list: not a second registration of W
        self.bias = nn.Parameter(torch.zeros(encoder_linear.in_features))  # b_y

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.encoder_linear[0].weight.t(), self.bias)


class ContractiveAutoencoder(AutoencoderBase):
    """Shapes: x (B, *in_shape) → h (B, K) ∈ (0, 1) → x̂ (B, *in_shape)."""

    def __init__(self, config: ContractiveAEConfig):
        super().__init__()
        one_layer = config.arch == "mlp" and len(config.hidden) == 0
        if config.tied_weights and not one_layer:
            raise ValueError(
                "tied_weights=True needs the one-layer encoder (arch='mlp', hidden=()); set tied_weights=false"
            )
        if config.jacobian == "closed_form" and not one_layer:
            raise ValueError(
                "jacobian='closed_form' is the sigmoid one-layer encoder's (arch='mlp', hidden=()); "
                "use jacobian='autograd' for a deeper or convolutional encoder"
            )
        self._init_common(config, config.latent_dim)
        if config.tied_weights:
            self.decoder = TiedDecoder(self.encoder[1][0])

    def code(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a)  # h = σ(W x + b_h)

    def jacobian_norm_closed_form(self, h: torch.Tensor) -> torch.Tensor:
        """‖J_f(x)‖²_F per example from the code h (B, K) → (B,) (Rifai et al. 2011, §3)."""
        w = self.encoder[1][0].weight  # (K, D)
        return (h * (1 - h)).square() @ w.square().sum(1)  # Σ_j (h_j(1−h_j))² Σ_i W_ji²

    def jacobian_norm_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """‖J_f(x)‖²_F per example by automatic differentiation, for any encoder: (B, *in_shape) → (B,).
        The result is differentiable with respect to the parameters (the penalty trains)."""
        from torch.func import jacrev, vmap

        def f(xi: torch.Tensor) -> torch.Tensor:
            return self.code(self.encoder(xi.unsqueeze(0))).squeeze(0)  # (*in_shape) → (K,)

        jac = vmap(jacrev(f))(x)  # (B, K, *in_shape)
        return jac.flatten(1).square().sum(1)

    def contractive(self, x: torch.Tensor, out: AEOutput) -> torch.Tensor:
        """The batch mean of ‖J_f(x)‖²_F by the configured ``jacobian``."""
        if self.config.jacobian == "closed_form":
            return self.jacobian_norm_closed_form(out.z.float()).mean()
        return self.jacobian_norm_autograd(x).mean()

    def loss_terms(self, x: torch.Tensor, out: AEOutput | None = None) -> dict[str, torch.Tensor]:
        """{"reconstruction": −log p(x | x̂) (nats per example), "contractive": ‖J_f(x)‖²_F}."""
        out = self(x) if out is None else out
        return {"reconstruction": self.reconstruction(x, out).mean(), "contractive": self.contractive(x, out)}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        return {"reconstruction": 1.0, "contractive": self.config.contractive_weight}


@register_model(
    family="autoencoder",
    config=ContractiveAEConfig,
    paper="Rifai, Vincent, Muller, Glorot & Bengio, Contractive Auto-Encoders (ICML 2011)",
    tasks=("reconstruction", "denoising", "anomaly"),
    test_overrides={"latent_dim": 6},
    meta={"num_params": 101_264, "macs": 200_704},
)
def contractive_ae(**overrides) -> ContractiveAutoencoder:
    """Contractive autoencoder: one sigmoid layer of 128 units, tied weights, λ = 0.1."""
    return ContractiveAutoencoder(ContractiveAEConfig(**overrides))
