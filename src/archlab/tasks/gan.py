"""The GAN task (``gan``): a two-player game trained with two optimisers, the discriminator (critic)
``n_critic`` times per generator step, each time on its own real batch.

Losses (``task.loss``), with s = D(u) the discriminator's raw score, σ the logistic sigmoid, x real
and G(z) fake examples (the means run over the batch):

Equations:
    minimax         L_D = −E log σ(s(x)) − E log(1 − σ(s(G(z))))        Goodfellow et al. 2014, Eq. 1
                    L_G = E log(1 − σ(s(G(z))))                          (G minimises Eq. 1's second term)
    non_saturating  L_D as minimax;  L_G = −E log σ(s(G(z)))             Goodfellow et al. 2014, §3
    wasserstein     L_D = E s(G(z)) − E s(x);  L_G = −E s(G(z))         Arjovsky et al. 2017, Alg. 1
                    after every critic step w ← clip(w, −c, c) for every critic parameter (c = clip_value)
    wgan_gp         L_D = E s(G(z)) − E s(x) + λ E (‖∇_x̂ s(x̂)‖₂ − 1)²   Gulrajani et al. 2017, Alg. 1
                    x̂ = ε x + (1 − ε) G(z), ε ~ U[0, 1] per example, λ = gp_weight
                    (either critic loss) + ε_drift E s(x)² with ε_drift = drift    Karras et al. 2018, App. A.1
    hinge           L_D = E max(0, 1 − s(x)) + E max(0, 1 + s(G(z)))     Miyato et al. 2018, Eq. 16–17
                    L_G = −E s(G(z))                                     (with spectral normalisation in D)
    R1 (any loss)   L_D + (γ/2) E_x ‖∇_x s(x)‖₂² on real x only, γ = r1_gamma   Mescheder et al. 2018, Eq. 9
    log σ(s) = −softplus(−s), log(1 − σ(s)) = −softplus(s): the cross-entropy losses never take log 0.

All of this happens in the network's units (tanh's [−1, 1] for images): real batches go through
``model.to_network``, so the gradient penalty's interpolates are where Gulrajani et al. put them.

Options (``task.options``):
    n_critic    discriminator steps per generator step, each on its own real batch (``ctx.next_batch``);
                default 5 for wasserstein and wgan_gp (Arjovsky et al., Gulrajani et al.), 1 otherwise
    clip_value  c of the weight clipping (wasserstein only), default 0.01
    gp_weight   λ of the gradient penalty (wgan_gp only), default 10
    drift       ε_drift of the drift term ε_drift · E s(x)² added to L_D (wasserstein and wgan_gp; Karras et
                al. 2018, App. A.1: 0.001, which keeps the critic's scores near 0), default 0 (off)
    r1_gamma    γ of the R1 penalty (γ/2) E ‖∇_x s(x)‖² on the real batch, added to L_D at every discriminator
                step with any loss (Mescheder, Geiger & Nowozin 2018, Eq. 9; StyleGAN's FFHQ set-up: the
                non-saturating loss with γ = 10, Karras et al. 2019 App. C, every step as in its released
                ``D_logistic_simplegp``), default 0 (off); G's step is unchanged
    ema_decay   β of an exponential moving average of G's weights (0: off), θ̄ ← β θ̄ + (1 − β) θ after
                every generator step (Yazıcı et al. 2019, Eq. 1; Karras et al. 2018 use β = 0.999),
                buffers copied. Kept as task state (``task.safetensors`` in each checkpoint); when on,
                ``model.sample``/``generate`` in eval mode and every evaluation use the averaged generator.

Randomness: the latent codes z and the interpolation weights ε of step t come from a generator
seeded with ``derive_seed(seed, t)`` (the run's seed), so a resumed run draws exactly what the
uninterrupted one drew; dropout uses the global RNG, which checkpoints carry.

Metrics (``evaluate``; the averaged generator when ``ema_decay`` > 0; one fixed set of z per run):
    d_real, d_fake  mean D over real test examples and as many fakes: σ(s) (a probability) for the
                    cross-entropy losses, the raw score s for the others
    d_loss, g_loss  the losses above on the test data (without the gradient penalties, which need
                    gradients: reported as ``gradient_penalty`` for wgan_gp and as ``r1_penalty``,
                    E ‖∇_x s(x)‖² on the real test examples without γ/2, when r1_gamma > 0)
    data_fd         Fréchet distance between Gaussians fitted to the real test examples and to as many
                    fakes, in the data's own units (pixels for images, coordinates for points): the FID's
                    statistic (Heusel et al. 2017, Eq. 6) without any feature network — a cheap check that
                    the first two moments match (blurry means or collapsed variance both raise it); not
                    comparable with FID or with archlab's feature-FID
    modes_covered, high_quality, reverse_kl   Gaussian-mixture data (ring8, grid25, gaussian1d) only:
                    :func:`archlab.data.mixtures.mode_coverage` of the fakes (3σ, a mode covered by ≥ 1
                    high-quality sample: the VEEGAN/PacGAN definitions)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.config import ModelSpec
from archlab.data import Batch
from archlab.tasks.averaging import AveragedWeightsState, WeightAverage
from archlab.tasks.base import StepContext, Task, register_task
from archlab.tasks.frechet import FeatureStatistics, frechet_distance_of
from archlab.tasks.metrics import Loss, Mean
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

CRITIC_LOSSES = ("wasserstein", "wgan_gp")  # n_critic defaults to 5 for these
BCE_LOSSES = ("minimax", "non_saturating")
MAX_N_CRITIC = 100
MIXTURES = ("ring8", "grid25", "gaussian1d")  # archlab.data.mixtures: scored by mode coverage


class Score(Mean):
    """A mean discriminator output over examples (no direction of improvement: reported, not selected on)."""


class FrechetDistance(Loss):
    """A Fréchet distance (lower is better)."""


class ModesCovered(Mean):
    """Modes covered (higher is better)."""


class HighQuality(Mean):
    """Fraction of high-quality samples (higher is better)."""


class ReverseKL(Loss):
    """KL(p̂ ‖ uniform) of the samples' mode histogram, nats (lower is better)."""


# -- the losses, on raw scores -------------------------------------------------------------------
def discriminator_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D from the scores of real (B, 1) and fake (B', 1) examples, without the gradient penalty
    (module docstring)."""
    if loss in BCE_LOSSES:  # −E log σ(s(x)) − E log(1 − σ(s(G(z))))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":  # E max(0, 1 − s(x)) + E max(0, 1 + s(G(z)))
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()  # wasserstein, wgan_gp: E s(G(z)) − E s(x)


def generator_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """L_G from the scores of fake examples (B, 1) (module docstring)."""
    if loss == "minimax":  # E log(1 − σ(s)) = −E softplus(s)
        return -F.softplus(fake).mean()
    if loss == "non_saturating":  # −E log σ(s) = E softplus(−s)
        return F.softplus(-fake).mean()
    return -fake.mean()  # wasserstein, wgan_gp, hinge


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """E (‖∇_x̂ D(x̂)‖₂ − 1)² over x̂ = ε x + (1 − ε) x̃, ε ~ U[0, 1] per example (Gulrajani et al. 2017,
    Alg. 1, lines 4–7); ``real`` and ``fake`` (B, ...) in the network's units, ε drawn with
    ``generator`` (CPU). Differentiable in D's parameters (``create_graph``)."""
    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), generator=generator).to(real.device, real.dtype)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """E_x ‖∇_x D(x)‖₂² over a real batch (B, ...) in the network's units: R1 of Mescheder et al. 2018,
    Eq. 9, without its factor γ/2. Differentiable in D's parameters (``create_graph``)."""
    x = real.detach().requires_grad_(True)
    return squared_input_gradient(discriminator(x), x)


def squared_input_gradient(scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E_b ‖∂(Σ scores)/∂x_b‖₂² for scores (B, 1) computed from x (B, ...) (which requires grad): each
    example's own gradient when D treats examples apart (the minibatch-stddev layer couples them, and the
    sum's gradient is then what StyleGAN's released code penalises too). Differentiable (``create_graph``)."""
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def _unwrap(model: nn.Module) -> nn.Module:
    """The GAN itself under a data-parallel or compiled wrapper (whose ``module``/``_orig_mod`` it is)."""
    for attr in ("module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module):
            return _unwrap(inner)
    return model


@register_task
class GANTask(AveragedWeightsState, Task):
    name = "gan"
    losses = ("non_saturating", "minimax", "wasserstein", "wgan_gp", "hinge")
    default_loss = "non_saturating"
    metrics = {
        "data_fd": FrechetDistance,
        "d_loss": Loss,
        "g_loss": Loss,
        "d_real": Score,
        "d_fake": Score,
        "gradient_penalty": Loss,
        "r1_penalty": Loss,
        "modes_covered": ModesCovered,
        "high_quality": HighQuality,
        "reverse_kl": ReverseKL,
    }
    default_metric = "data_fd"
    has_custom_step = True
    default_options = {
        "n_critic": None,
        "clip_value": 0.01,
        "gp_weight": 10.0,
        "ema_decay": 0.0,
        "drift": 0.0,
        "r1_gamma": 0.0,
    }

    def __init__(self, spec: Any, info: Any, seed: int = 0):
        super().__init__(spec, info, seed)
        o = self.options
        n = o["n_critic"]
        if n is None:
            n = 5 if self.loss_name in CRITIC_LOSSES else 1
        if n != int(n) or not 1 <= n <= MAX_N_CRITIC:
            raise ConfigError(
                f"task.options.n_critic: {o['n_critic']:g} is not a whole number of discriminator steps per "
                f"generator step in [1, {MAX_N_CRITIC}]; use 1 (Goodfellow et al.) or 5 (WGAN, WGAN-GP)"
            )
        self.n_critic = int(n)
        if not o["clip_value"] > 0:
            raise ConfigError(
                f"task.options.clip_value: {o['clip_value']:g} must be > 0 (the critic's weights are clipped to "
                "[−c, c]; Arjovsky et al. use 0.01)"
            )
        if not o["gp_weight"] >= 0:
            raise ConfigError(f"task.options.gp_weight: {o['gp_weight']:g} must be ≥ 0 (Gulrajani et al. use 10)")
        if not o["drift"] >= 0 or (o["drift"] > 0 and self.loss_name not in CRITIC_LOSSES):
            raise ConfigError(
                f"task.options.drift: {o['drift']:g} must be ≥ 0 and applies to a critic (loss wasserstein or "
                f"wgan_gp, not {self.loss_name}); Karras et al. 2018 use 0.001 with wgan_gp"
            )
        if not o["r1_gamma"] >= 0:
            raise ConfigError(
                f"task.options.r1_gamma: {o['r1_gamma']:g} must be ≥ 0 (γ of the R1 penalty on real data; 0: off, "
                "StyleGAN uses 10)"
            )
        if not 0 <= o["ema_decay"] < 1:
            raise ConfigError(
                f"task.options.ema_decay: {o['ema_decay']:g} must be in [0, 1) (0: no average; 0.999 is usual)"
            )
        self.average: WeightAverage | None = None  # θ̄ of the generator (ema_decay > 0), built with the model
        self._mixture: Any = None

    # -- model -----------------------------------------------------------------------------
    def data_hints(self) -> dict[str, Any]:
        return {"in_shape": tuple(self.info.input_shape)}  # no class outputs: a GAN models x alone

    def build_model(self, spec: ModelSpec) -> nn.Module:
        model = super().build_model(spec)
        if not all(hasattr(model, a) for a in ("generator", "discriminator", "latent_dim", "to_network")):
            raise ConfigError(
                f"model.name: '{spec.name}' is not a GAN; task 'gan' trains a generator against a discriminator "
                "(gan_mlp, dcgan, sngan: archlab list --family gan)"
            )
        if self.loss_name == "wgan_gp":
            bn = [n for n, m in model.discriminator.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            if bn:
                raise ConfigError(
                    f"model: '{spec.name}''s critic uses batch norm (discriminator.{bn[0]}), which the gradient "
                    "penalty forbids (it penalises each example's gradient; Gulrajani et al. 2017, §4); set "
                    "model.d_norm=layer (or none)"
                )
        if self.options["ema_decay"] > 0:
            self.average = WeightAverage(model.generator, self.options["ema_decay"])
            model.attach_sampling_generator(self.average.module)
        return model

    def param_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        m = _unwrap(model)
        return {"generator": list(m.generator.parameters()), "discriminator": list(m.discriminator.parameters())}

    # -- training --------------------------------------------------------------------------
    def _real(self, m: nn.Module, batch: Batch) -> torch.Tensor:
        """A real batch in the network's units, after the model's ``prepare_real`` (if any)."""
        x = batch.x
        if hasattr(m, "prepare_real"):
            x = m.prepare_real(x)
        return m.to_network(x)

    @staticmethod
    def _z(m: nn.Module, n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn(n, m.latent_dim, generator=g).to(device)

    def score(self, s: torch.Tensor) -> torch.Tensor:
        """What ``d_real``/``d_fake`` report of raw scores s: D's probability σ(s) for the cross-entropy
        losses, s itself (a critic value) for the others."""
        return torch.sigmoid(s) if self.loss_name in BCE_LOSSES else s

    def d_objective(
        self, m: nn.Module, real: torch.Tensor, fake: torch.Tensor, g: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(L_D, logs) for real and fake batches in the network's units (the penalties included)."""
        r1 = self.options["r1_gamma"] > 0
        if r1:  # ∇_x s(x) of this very forward pass: no second pass through D
            real = real.detach().requires_grad_(True)
        s_real, s_fake = m.discriminator(real), m.discriminator(fake)
        loss = discriminator_loss(self.loss_name, s_real, s_fake)
        logs = {"d_real": self.score(s_real.detach()).mean(), "d_fake": self.score(s_fake.detach()).mean()}
        if self.loss_name == "wgan_gp" and self.options["gp_weight"] > 0:
            gp = gradient_penalty(m.discriminator, real, fake, g)
            logs["gradient_penalty"] = gp.detach()
            loss = loss + self.options["gp_weight"] * gp
        if self.options["drift"] > 0:  # ε_drift E s(x)² (Karras et al. 2018, App. A.1)
            loss = loss + self.options["drift"] * s_real.square().mean()
        if r1:  # (γ/2) E ‖∇_x s(x)‖² on real data (Mescheder et al. 2018, Eq. 9)
            penalty = squared_input_gradient(s_real, real)
            logs["r1_penalty"] = penalty.detach()
            loss = loss + 0.5 * self.options["r1_gamma"] * penalty
        return loss, logs

    def custom_step(self, model: nn.Module, ctx: StepContext) -> dict[str, Any]:
        """n_critic discriminator steps, each on its own real batch and fresh z, then one generator step."""
        m = _unwrap(model)
        if hasattr(m, "set_progress"):
            m.set_progress(ctx.step, ctx.total_steps)
        g = torch.Generator().manual_seed(derive_seed(self.seed, ctx.step))  # z and ε of this step
        logs: dict[str, Any] = {}
        for _ in range(self.n_critic):
            real = self._real(m, ctx.next_batch())
            z = self._z(m, len(real), g, ctx.device)
            ctx.zero_grad("discriminator")
            with ctx.autocast():
                with torch.no_grad():
                    fake = m.generator(z)
                d_loss, logs = self.d_objective(m, real, fake, g)
            ctx.backward(d_loss)
            ctx.clip_and_step("discriminator")  # then after_optimizer_step: weight clipping (wasserstein)
        z = self._z(m, len(real), g, ctx.device)
        ctx.zero_grad("generator")
        with ctx.autocast():
            g_loss = generator_loss(self.loss_name, m.discriminator(m.generator(z)))
        ctx.backward(g_loss)
        ctx.clip_and_step("generator")  # then after_optimizer_step: the EMA update
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **logs}

    def after_optimizer_step(self, group: str, model: nn.Module, ctx: StepContext) -> None:
        m = _unwrap(model)
        if group == "discriminator" and self.loss_name == "wasserstein":
            c = self.options["clip_value"]
            with torch.no_grad():
                for p in m.discriminator.parameters():  # Arjovsky et al., Alg. 1 line 7
                    p.clamp_(-c, c)
        if group == "generator" and self.average is not None:
            self.average.update(m.generator)

    def probe(self, model: nn.Module, ctx: StepContext) -> None:
        """One real custom step in dry-run mode (every loss, the penalty and both backwards)."""
        self.custom_step(model, ctx)

    # -- evaluation ------------------------------------------------------------------------
    def mixture(self) -> Any:
        """The Gaussian mixture behind the data (ring8, grid25, gaussian1d, with the options the run
        gave them: :func:`archlab.data.mixtures.mixture_for`), else None."""
        from archlab.data.mixtures import mixture_for

        if self._mixture is None:
            self._mixture = mixture_for(self.info)
        return self._mixture

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        m = _unwrap(model)
        g = torch.Generator().manual_seed(derive_seed(self.seed, 0xE7A1))  # the same z at every evaluation
        sums = dict.fromkeys(("d_loss", "g_loss", "d_real", "d_fake", "gradient_penalty", "r1_penalty"), 0.0)
        n = 0
        real_stats: FeatureStatistics | None = None
        fake_stats: FeatureStatistics | None = None
        fakes: list[torch.Tensor] = []
        mixture = self.info.name in MIXTURES
        for batch in batches:
            real = self._real(m, batch)
            z = self._z(m, len(real), g, real.device)
            fake = m.generator_output(z, g)  # any noise G adds (StyleGAN's) from g too: seeded, not global
            s_real, s_fake = m.discriminator(real).float(), m.discriminator(fake).float()
            b = len(real)
            sums["d_loss"] += float(discriminator_loss(self.loss_name, s_real, s_fake)) * b
            sums["g_loss"] += float(generator_loss(self.loss_name, s_fake)) * b
            sums["d_real"] += float(self.score(s_real).sum())
            sums["d_fake"] += float(self.score(s_fake).sum())
            if self.loss_name == "wgan_gp":
                with torch.enable_grad():
                    sums["gradient_penalty"] += float(gradient_penalty(m.discriminator, real, fake, g).detach()) * b
            if self.options["r1_gamma"] > 0:
                with torch.enable_grad():
                    sums["r1_penalty"] += float(r1_penalty(m.discriminator, real).detach()) * b
            n += b
            x_real, x_fake = m.to_data(real).flatten(1).float(), m.to_data(fake).flatten(1).float()
            if real_stats is None:
                real_stats, fake_stats = FeatureStatistics(x_real.shape[1]), FeatureStatistics(x_real.shape[1])
            real_stats.update(x_real)
            fake_stats.update(x_fake)
            if mixture:
                fakes.append(x_fake.cpu())
        if n == 0:
            return {}
        out = {k: v / n for k, v in sums.items()}
        if self.loss_name != "wgan_gp":
            del out["gradient_penalty"]
        if not self.options["r1_gamma"] > 0:
            del out["r1_penalty"]
        assert real_stats is not None and fake_stats is not None
        out["data_fd"] = frechet_distance_of(real_stats, fake_stats) if n > 1 else math.nan
        if mixture:
            out.update(self._coverage(torch.cat(fakes)))
        return out

    def _coverage(self, fakes: torch.Tensor) -> dict[str, float]:
        from archlab.data.mixtures import mode_coverage

        mix = self.mixture()
        if mix is None:
            return {}
        if not torch.isfinite(fakes).all():
            return {"modes_covered": 0.0, "high_quality": 0.0, "reverse_kl": math.nan}
        return mode_coverage(fakes, mix).as_metrics()
