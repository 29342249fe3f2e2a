"""The variational autoencoder (``vae_mlp``, ``vae_conv``), with a β weight on the KL term (β-VAE)
and an optional linear KL warm-up.

Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014, arXiv:1312.6114 (Eq. 3, 10; the
closed-form KL in App. B); Rezende, Mohamed & Wierstra, ICML 2014, arXiv:1401.4082; β-VAE: Higgins
et al., ICLR 2017; KL warm-up: Bowman et al. 2016, arXiv:1511.06349 §3.1, and Sønderby et al. 2016,
arXiv:1602.02282 §2.2; the importance-sampled bound: Burda, Grosse & Salakhutdinov, *Importance
Weighted Autoencoders*, ICLR 2016, arXiv:1509.00519, Eq. 8.

Letters: B batch, K latent_dim, k importance samples, f the encoder, g the decoder, ε ~ N(0, I).

Equations:
    (μ, log σ²) = f(x)                                   q(z | x) = N(μ, diag σ²), each (B, K)
    z = μ + σ ⊙ ε                                        reparameterisation (Eq. 10)
    x̂ = g(z)                                             logits (Bernoulli) or mean (Gaussian)
    KL(q(z | x) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)          (App. B)
    ELBO(x) = E_q[log p(x | z)] − KL ≤ log p(x)                          (Eq. 3)
    loss = −log p(x | z) + β · w(t) · KL,   w(t) = min(1, t / kl_warmup_steps)   (β = 1, no warm-up: −ELBO)
    log p(x) ≥ L_k = E[log (1/k) Σ_i p(x | z_i) p(z_i) / q(z_i | x)],  z_i ~ q(z | x)   (IWAE, Eq. 8)

The encoder is the plain autoencoder's with 2K outputs (μ and log σ²); the decoder is the same.
Parameter arithmetic (1×28×28, K = 16): vae_mlp = ae_mlp + 256·16 + 16 = 1,079,600;
vae_conv = ae_conv + 3136·16 + 16 = 220,385.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from archlab.models.autoencoder.base import AEConfig, AutoencoderBase, VAEOutput, gaussian_kl
from archlab.registry import register_model
from archlab.registry.config import NonNegativeFloat, NonNegativeInt
from archlab.utils.shapes import check_shape

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEConfig(AEConfig):
    """The shared options (:class:`AEConfig`) and the weight of the KL term."""

    beta: NonNegativeFloat = 1.0  # β on the KL term: 1 is the ELBO, > 1 a β-VAE (Higgins et al. 2017)
    kl_warmup_steps: NonNegativeInt = 0  # the KL weight rises linearly from 0 to β over this many steps (0: none)


class VAE(AutoencoderBase):
    """Shapes: x (B, *in_shape) → μ, log σ² (B, K) → z (B, K) → x̂ (B, *in_shape)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self._init_common(config, 2 * config.latent_dim)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): (μ, log σ²), each (B, K)."""
        check_shape(x, (None, *self.input_spec))
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, K), (B, K)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code: μ (B, K)."""
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = μ + σ ⊙ ε, ε ~ N(0, I) (Kingma & Welling 2014, Eq. 10); (B, K) → (B, K)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def forward(
        self, x: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> VAEOutput:
        """z is sampled when ``sample`` (default: in training mode), else z = μ."""
        mu, logvar = self.posterior(x)
        sample = self.training if sample is None else sample
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return VAEOutput(self.decoder_output(z), z, mu, logvar)

    def loss_terms(self, x: torch.Tensor, out: VAEOutput | None = None) -> dict[str, torch.Tensor]:
        """{"reconstruction": −log p(x | z), "kl": KL(q(z | x) ‖ N(0, I))}, batch means in nats;
        their sum is −ELBO (one sample of z)."""
        out = self(x) if out is None else out
        kl = gaussian_kl(out.mu.float(), out.logvar.float())
        return {"reconstruction": self.reconstruction(x, out).mean(), "kl": kl.mean()}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        warm = self.config.kl_warmup_steps
        w = 1.0 if step is None or warm == 0 else min(1.0, step / warm)
        return {"reconstruction": 1.0, "kl": self.config.beta * w}

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples decoded from the prior z ~ N(0, I): the likelihood's mean, (n, *in_shape)."""
        p = next(self.parameters())
        z = torch.randn((n, self.latent_dim), generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(z)

    @torch.no_grad()
    def iwae_bound(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_k, the importance-weighted lower bound on log p(x) with ``k`` samples (Burda et al. 2016,
        Eq. 8), per example in nats: (B, *in_shape) → (B,). k = 1 is the ELBO; L_k rises towards
        log p(x) as k grows. Raises ValueError for k < 1."""
        if k < 1:
            raise ValueError(f"iwae_bound needs k ≥ 1 samples, got {k}")
        mu, logvar = (t.float() for t in self.posterior(x))
        log_w = []
        for _ in range(k):  # one decoder pass per sample keeps memory at one batch
            z = self.reparameterize(mu, logvar, generator)  # (B, K)
            log_px_z = -self.reconstruction(x, VAEOutput(self.decoder_output(z), z, mu, logvar))
            log_pz = -0.5 * (z.square() + _LOG_2PI).sum(-1)
            log_qz = -0.5 * ((z - mu).square() / logvar.exp() + logvar + _LOG_2PI).sum(-1)
            log_w.append(log_px_z + log_pz - log_qz)  # (B,)
        return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)


_PAPER = "Kingma & Welling, Auto-Encoding Variational Bayes (ICLR 2014), arXiv:1312.6114"
_TASKS = ("vae", "reconstruction", "anomaly")
_TEST = {"hidden": (8,), "channels": (4, 8), "latent_dim": 3}


@register_model(
    family="autoencoder",
    config=VAEConfig,
    paper=_PAPER,
    tasks=_TASKS,
    test_overrides=_TEST,
    meta={"num_params": 1_079_600, "macs": 1_077_248},
)
def vae_mlp(**overrides) -> VAE:
    """Variational autoencoder, MLP encoder and decoder (512, 256 → K = 16 Gaussian → 256, 512)."""
    return VAE(VAEConfig(**overrides))


@register_model(
    family="autoencoder",
    config=VAEConfig,
    paper=_PAPER,
    tasks=_TASKS,
    defaults={"arch": "conv"},
    test_overrides=_TEST,
    meta={"num_params": 220_385, "macs": 3_562_496},
)
def vae_conv(**overrides) -> VAE:
    """Convolutional VAE: two 4×4 stride-2 convolutions to (μ, log σ²), two transposed convolutions up."""
    return VAE(VAEConfig(**overrides))
