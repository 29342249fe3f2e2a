"""What every autoencoder of the family shares: the output tuples, the likelihoods, the closed-form
Gaussian KL, the MLP and convolutional encoder/decoder stacks, and :class:`AutoencoderBase` with the
interface tools, tasks and experiments use (see the package docstring).

Letters: B batch, D = prod(in_shape) input elements, K latent_dim, x the input, z the code,
x̂ the decoder's output before the likelihood's link (logits for a Bernoulli, the mean for a
Gaussian).

Likelihoods (the reconstruction term is the negative log-likelihood of x, summed over its D
elements, in nats per example):
    Bernoulli  −log p(x | z) = Σ_d BCE(σ(x̂_d), x_d)                 decode(z) = σ(x̂)
    Gaussian   −log p(x | z) = Σ_d (x_d − x̂_d)² / 2s² + log s + ½ log 2π     decode(z) = x̂
               (s the fixed ``likelihood_std``)
The Bernoulli likelihood of grey levels x ∈ [0, 1] is the usual choice for MNIST-like images
(Kingma & Welling 2014, §5); it is not a normalised density for x ∉ {0, 1} (Loaiza-Ganem &
Cunningham 2019), which matters only when comparing its nats with another likelihood's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.activations import get_activation
from archlab.registry.config import ModelConfig, PositiveFloat, PositiveInt, Shape
from archlab.utils.shapes import check_shape

Likelihood = Literal["bernoulli", "gaussian"]


class AEOutput(NamedTuple):
    """``forward`` of a deterministic autoencoder: ``recon`` (B, *in_shape) the decoder output
    before the link (logits or mean, see the module docstring) and the code ``z`` (B, K)."""

    recon: torch.Tensor
    z: torch.Tensor


class VAEOutput(NamedTuple):
    """``forward`` of a VAE: ``recon`` (B, *in_shape) decoded from the sampled ``z`` (B, K), and the
    posterior's ``mu`` (B, K) and ``logvar`` = log σ² (B, K)."""

    recon: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def reconstruction_nll(recon: torch.Tensor, x: torch.Tensor, likelihood: Likelihood, std: float = 1.0) -> torch.Tensor:
    """−log p(x | z) per example in nats, summed over every element: (B, ...) → (B,)."""
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(recon, x, reduction="none")
    else:
        nll = 0.5 * ((x - recon) / std).square() + math.log(std) + 0.5 * math.log(2 * math.pi)
    return nll.flatten(1).sum(1)


def link(recon: torch.Tensor, likelihood: Likelihood) -> torch.Tensor:
    """The likelihood's mean from the decoder output: σ(x̂) (Bernoulli) or x̂ (Gaussian)."""
    return torch.sigmoid(recon) if likelihood == "bernoulli" else recon


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example in nats, (B, K) → (B,) — Kingma & Welling 2014, App. B:
    −KL = ½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)


def mlp_stack(d_in: int, widths: tuple[int, ...], d_out: int, activation: str) -> nn.Sequential:
    """Linear → φ for each width, then a last Linear to ``d_out`` (no activation after it)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d_in, w), get_activation(activation)]
        d_in = w
    layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


def _conv(dims: int, transposed: bool) -> type[nn.Module]:
    if dims == 2:
        return nn.ConvTranspose2d if transposed else nn.Conv2d
    return nn.ConvTranspose1d if transposed else nn.Conv1d


class ConvEncoder(nn.Module):
    """Strided convolutions (kernel 4, stride 2, padding 1: each halves the size), φ after each,
    then a Linear from the flattened last map to ``d_out``. 2-D for in_shape (C, H, W), 1-D for
    (C, L). Shapes: (B, C, *S) → (B, channels[-1], *S/2^n) → (B, d_out)."""

    def __init__(self, in_shape: tuple[int, ...], channels: tuple[int, ...], d_out: int, activation: str):
        super().__init__()
        conv = _conv(len(in_shape) - 1, transposed=False)
        layers: list[nn.Module] = []
        c = in_shape[0]
        for ch in channels:
            layers += [conv(c, ch, 4, stride=2, padding=1), get_activation(activation)]
            c = ch
        self.convs = nn.Sequential(*layers)
        self.map_shape = (channels[-1], *(s >> len(channels) for s in in_shape[1:]))
        self.fc = nn.Linear(math.prod(self.map_shape), d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: Linear to the last map, φ, then transposed convolutions
    (kernel 4, stride 2, padding 1: each doubles the size), φ between them and none after the last.
    Shapes: (B, K) → (B, channels[-1], *S/2^n) → (B, C, *S)."""

    def __init__(self, in_shape: tuple[int, ...], channels: tuple[int, ...], d_in: int, activation: str):
        super().__init__()
        self.map_shape = (channels[-1], *(s >> len(channels) for s in in_shape[1:]))
        self.fc = nn.Linear(d_in, math.prod(self.map_shape))
        self.act = get_activation(activation)
        convt = _conv(len(in_shape) - 1, transposed=True)
        outs = (*reversed(channels[:-1]), in_shape[0])
        layers: list[nn.Module] = []
        c = channels[-1]
        for i, ch in enumerate(outs):
            layers.append(convt(c, ch, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(get_activation(activation))
            c = ch
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(z)).view(len(z), *self.map_shape)  # (B, C_n, *S/2^n)
        return self.convs(h)


@dataclass
class AEConfig(ModelConfig):
    """Options every autoencoder shares; each architecture's config adds its own."""

    in_shape: Shape = (1, 28, 28)  # one example without the batch: (C, H, W), (C, L) or (F,)
    latent_dim: PositiveInt = 16  # K, the code size
    arch: Literal["mlp", "conv"] = "mlp"  # encoder/decoder: fully connected, or strided (transposed) convolutions
    hidden: tuple[PositiveInt, ...] = (512, 256)  # arch="mlp": encoder widths (the decoder mirrors them)
    channels: tuple[PositiveInt, ...] = (32, 64)  # arch="conv": channels of each stride-2 stage
    activation: str = "relu"  # φ between layers, a name from archlab.layers.activations
    likelihood: Likelihood = "bernoulli"  # p(x | z): "bernoulli" for data in [0, 1], "gaussian" for any real data
    likelihood_std: PositiveFloat = 1.0  # s of the Gaussian likelihood (fixed)


class AutoencoderBase(nn.Module):
    """The family's interface. Subclasses build ``self.encoder`` ((B, *in_shape) → (B, K·m)) and
    ``self.decoder`` ((B, K) → (B, *in_shape) or flat), and may override ``code``/``loss_terms``.

    * ``encode(x)`` (B, *in_shape) → z (B, K): the deterministic code (μ for a VAE);
    * ``decode(z)`` (B, K) → (B, *in_shape): the likelihood's mean, in the input's range;
    * ``forward(x)`` → :class:`AEOutput` (:class:`VAEOutput` for a VAE);
    * ``loss_terms(x, out)`` → {"reconstruction": mean NLL in nats per example, …penalties};
    * ``objective(terms, step)`` → the scalar the trainer minimises: Σ weight(step)·term.

    Raises :class:`~archlab.utils.errors.ShapeError` for an input of the wrong shape.
    """

    config: AEConfig

    def _init_common(self, config: AEConfig, encoder_out: int) -> None:
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = self.input_shape  # a flatten (MLP) or a Linear on the last map (conv): every size fixed
        self.latent_dim = config.latent_dim
        if config.arch == "conv":
            n = len(config.channels)
            if len(self.input_shape) not in (2, 3):
                raise ValueError(f"arch='conv' needs in_shape (C, H, W) or (C, L), got {self.input_shape}")
            bad = [s for s in self.input_shape[1:] if s % (1 << n)]
            if bad:
                raise ValueError(
                    f"arch='conv' halves the input {n} times (channels={tuple(config.channels)}): every size of "
                    f"in_shape[1:]={self.input_shape[1:]} must be a multiple of {1 << n}; use fewer channels "
                    "stages or arch='mlp'"
                )
            self.encoder = ConvEncoder(self.input_shape, config.channels, encoder_out, config.activation)
            self.decoder = ConvDecoder(self.input_shape, config.channels, config.latent_dim, config.activation)
        else:
            d = math.prod(self.input_shape)
            self.encoder = nn.Sequential(
                nn.Flatten(), mlp_stack(d, tuple(config.hidden), encoder_out, config.activation)
            )
            self.decoder = mlp_stack(config.latent_dim, tuple(reversed(config.hidden)), d, config.activation)

    # -- the interface ---------------------------------------------------------------------
    def code(self, a: torch.Tensor) -> torch.Tensor:
        """The code from the encoder's last pre-activation a (B, K): z = a (linear code) by default."""
        return a

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = code(encoder(x)): (B, *in_shape) → (B, K)."""
        check_shape(x, (None, *self.input_spec))
        return self.code(self.encoder(x))

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """x̂, the decoder's output before the link: (B, K) → (B, *in_shape)."""
        check_shape(z, (None, self.latent_dim), "z")
        return self.decoder(z).view(len(z), *self.input_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean E[x | z] in the input's range: (B, K) → (B, *in_shape)."""
        return link(self.decoder_output(z), self.config.likelihood)

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        return AEOutput(self.decoder_output(z), z)

    def reconstruction(self, x: torch.Tensor, out: AEOutput | VAEOutput) -> torch.Tensor:
        """−log p(x | z) per example (B,), nats."""
        return reconstruction_nll(out.recon.float(), x.float(), self.config.likelihood, self.config.likelihood_std)

    def loss_terms(self, x: torch.Tensor, out: AEOutput | VAEOutput | None = None) -> dict[str, torch.Tensor]:
        """{"reconstruction": mean over the batch of −log p(x | z), nats per example}; ``out`` is
        ``self(x)`` (computed when not given)."""
        out = self(x) if out is None else out
        return {"reconstruction": self.reconstruction(x, out).mean()}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        """Weight of each loss term at optimiser step ``step`` (None: the final weights)."""
        return {"reconstruction": 1.0}

    def objective(self, terms: dict[str, torch.Tensor], step: int | None = None) -> torch.Tensor:
        """Σ_t weight_t(step) · term_t: the training loss."""
        weights = self.term_weights(step)
        return sum(weights[k] * v for k, v in terms.items())  # type: ignore[return-value]
