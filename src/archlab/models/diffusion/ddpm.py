"""Denoising diffusion probabilistic models (``ddpm_unet``, ``ddpm_mlp``): the forward process, the
ε-prediction objective and two samplers — ancestral DDPM sampling and DDIM.

Ho, Jain & Abbeel, *Denoising Diffusion Probabilistic Models*, NeurIPS 2020, arXiv:2006.11239 (Eq. 4,
6–7, 11, 14; Algorithms 1–2); Song, Meng & Ermon, *Denoising Diffusion Implicit Models*, ICLR 2021,
arXiv:2010.02502 (Eq. 12, 16; §4.1–4.2); schedules: :mod:`.schedules`; networks: :mod:`.unet`.

Letters: B batch, x_0 an example in network units, t = 1 … T the step (tensors and the network take the
index t − 1), β_t, α_t = 1 − β_t, ᾱ_t = Π_{s ≤ t} α_s (ᾱ_0 = 1), ε ~ N(0, I), ε_θ the network, τ an
increasing sub-sequence of steps (τ_0 := 0, so ᾱ_{τ_0} = 1), s the step before t in τ.

Equations:
    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)                                          (Ho Eq. 4)
    q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I),
        μ̃_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t,
        β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t                                         (Ho Eq. 6–7)
    x̂_0 = (x_t − √(1 − ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t                                      (from Eq. 4)
    L_simple = E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖²                  (Ho Eq. 14)
    DDPM:  x_{t−1} = μ̃_t(x̂_0, x_t) + σ_t z,  σ_t² = β_t (or β̃_t),  z = 0 at t = 1   (Ho Eq. 11, Alg. 2)
    DDIM:  x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ_t²) ε_θ + σ_t z,
           σ_t = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s)                             (Song Eq. 12, 16)

On a sub-sequence τ the DDPM step uses the respaced β_{t|s} = 1 − ᾱ_t/ᾱ_s in place of β_t (the same
formulas with s for t − 1; Nichol & Dhariwal 2021 §4); with every step it is Ho et al.'s Algorithm 2.
DDIM with η = 1 is DDPM with σ_t² = β̃_t (Song et al. §4.1); η = 0 is deterministic given x_T.

Data units: the model works in network units x_net = (x − ``data_shift``) / ``data_scale`` (images in
[0, 1] → [−1, 1], Ho et al. §4); ``sample`` returns examples in the data's own units. With
``clip_denoised`` (images) x̂_0 is clipped to [−1, 1] at every sampling step, as in the authors' code, and
the samples land in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from archlab.models.diffusion.schedules import COSINE_S, alpha_bar, beta_schedule
from archlab.models.diffusion.unet import MLPDenoiser, UNet
from archlab.registry import register_model
from archlab.registry.config import (
    LayerCount,
    ModelConfig,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Shape,
)
from archlab.utils.errors import ConfigError, ShapeError
from archlab.utils.seed import randn_on
from archlab.utils.shapes import check_shape

MAX_TIMESTEPS = 100_000  # T bounds the schedule's size and a full DDPM sampling pass (Ho et al.: 1000)
OpenUnit = Annotated[float, Field(gt=0, lt=1)]  # a variance β: 0 < β < 1
Sampler = Literal["ddpm", "ddim"]
CHAIN_LENGTH = 10  # states kept by sample(return_chain=True)


@dataclass
class DDPMConfig(ModelConfig):
    """The diffusion (T, schedule, sampling variance, data scaling) and the ε-network (U-Net or MLP)."""

    in_shape: Shape = (1, 28, 28)  # (C, H, W) images or (d,) points; filled from the data by the task
    arch: Literal["unet", "mlp"] = "unet"  # ε_θ: the U-Net of Ho et al. App. B, or an MLP for points
    timesteps: Annotated[int, Field(ge=1, le=MAX_TIMESTEPS)] = 1000  # T (Ho et al. §4)
    schedule: Literal["linear", "cosine"] = "linear"  # Ho et al. §4, or Nichol & Dhariwal Eq. 17
    beta_start: OpenUnit = 1e-4  # β_1 of the linear schedule (Ho et al. §4)
    beta_end: OpenUnit = 0.02  # β_T of the linear schedule (Ho et al. §4)
    cosine_s: NonNegativeFloat = COSINE_S  # the cosine schedule's offset s (Nichol & Dhariwal §3.2)
    sigma: Literal["beta", "posterior"] = "beta"  # DDPM sampling σ_t²: β_t (Ho Alg. 2) or β̃_t (Eq. 7)
    clip_denoised: bool = True  # clip x̂_0 to [−1, 1] while sampling (bounded data: images)
    data_shift: float = 0.5  # x_net = (x − shift) / scale: [0, 1] images → [−1, 1]
    data_scale: PositiveFloat = 0.5
    channels: PositiveInt = 16  # U-Net base width (Ho et al.: 128 on CIFAR-10); 16 trains here on one core
    channel_mult: tuple[PositiveInt, ...] = (1, 2, 2)  # widths per level over 28 → 14 → 7 (Ho: 1, 2, 2, 2)
    num_res_blocks: LayerCount = 1  # residual blocks per level (Ho et al.: 2)
    attention_levels: tuple[NonNegativeInt, ...] = (1,)  # self-attention at 14×14 (Ho: at 16×16 of 32×32)
    dropout: Probability = 0.0  # in the residual blocks (Ho et al.: 0.1 on CIFAR-10)
    norm_groups: PositiveInt = 8  # GroupNorm groups (Ho et al.: 32, with 128+ channels)
    width: PositiveInt = 128  # MLP ε-network: hidden width
    depth: LayerCount = 3  # MLP ε-network: hidden layers


class DDPM(nn.Module):
    """A diffusion model: the schedule (buffers) and the ε-network ``eps_model``.

    ``forward(x_t, t)`` is ε_θ: x_t (B, *in_shape) in network units, t (B,) int64 step indices in
    [0, T) → ε̂ (B, *in_shape). Raises ShapeError for a wrong input shape.
    """

    def __init__(self, config: DDPMConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        betas = beta_schedule(config.schedule, config.timesteps, config.beta_start, config.beta_end, config.cosine_s)
        # float64 buffers, derived from the config (not saved: the recipe rebuilds them exactly)
        self.register_buffer("betas", betas, persistent=False)  # β_1 … β_T, (T,)
        self.register_buffer("alphas_cumprod", alpha_bar(betas), persistent=False)  # ᾱ_1 … ᾱ_T, (T,)
        if config.arch == "unet":
            if len(self.input_shape) != 3:
                raise ValueError(f"arch='unet' needs in_shape (C, H, W), got {self.input_shape}")
            self.eps_model: nn.Module = UNet(
                self.input_shape[0],
                config.channels,
                config.channel_mult,
                config.num_res_blocks,
                config.attention_levels,
                config.dropout,
                config.norm_groups,
            )
            self.input_spec: tuple = (self.input_shape[0], "H", "W")  # any H, W divisible by the halvings
            self._multiple = 1 << (len(config.channel_mult) - 1)
            bad = [s for s in self.input_shape[1:] if s % self._multiple]
            if bad:
                raise ValueError(
                    f"in_shape {self.input_shape}: H and W must be multiples of {self._multiple} for "
                    f"{len(config.channel_mult)} resolution levels; use fewer levels in channel_mult"
                )
        else:
            self.eps_model = MLPDenoiser(math.prod(self.input_shape), config.width, config.depth)
            self.input_spec = self.input_shape  # the flatten fixes every size
            self._multiple = 1

    # -- units --------------------------------------------------------------------------------------------
    @property
    def num_timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return self.config.timesteps

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Data units → network units: (x − shift) / scale ([0, 1] images → [−1, 1])."""
        return (x - self.config.data_shift) / self.config.data_scale

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """Network units → data units: x · scale + shift."""
        return x * self.config.data_scale + self.config.data_shift

    def _coef(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A per-example coefficient (B,) computed in float64, as (B, 1, …, 1) in ``like``'s dtype and device."""
        return values.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))

    # -- the network --------------------------------------------------------------------------------------
    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, t): zeros (batch, *in_shape) and step indices T/2 (batch,), for FLOP counting and tests."""
        return torch.zeros(batch, *self.input_shape), torch.full((batch,), self.num_timesteps // 2, dtype=torch.long)

    def forward(self, x: torch.Tensor, t: torch.Tensor, network: nn.Module | None = None) -> torch.Tensor:
        """ε_θ(x_t, t): (B, *in_shape) network units, (B,) int64 in [0, T) → (B, *in_shape). ``network``
        replaces ``eps_model`` (an average of its weights). Raises ShapeError for a wrong shape."""
        check_shape(x, (None, *self.input_spec), "x_t")
        if self._multiple > 1 and any(s % self._multiple for s in x.shape[2:]):
            raise ShapeError(f"x_t: H and W must be multiples of {self._multiple}, got {tuple(x.shape)}")
        return (network or self.eps_model)(x, t)

    def attach_sampling_network(self, module: nn.Module | None) -> None:
        """The ε-network ``sample`` uses (the diffusion task's exponential moving average of ``eps_model``'s
        weights, Ho et al. §4); None: ``eps_model`` itself. Held outside the module tree, so it is neither
        a parameter nor in ``state_dict`` (the task saves it as its own state)."""
        self.__dict__["_sampling_network"] = module

    def sampling_network(self) -> nn.Module:
        """The attached averaged ε-network (moved to the model's device), else ``eps_model``."""
        ema = self.__dict__.get("_sampling_network")
        if ema is None:
            return self.eps_model
        p = next(self.eps_model.parameters(), None)
        if p is not None and next(ema.parameters()).device != p.device:
            ema.to(p.device)
        return ema.eval()

    # -- the forward process and the objective ---------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, a draw of q(x_t | x_0) (Ho Eq. 4); network units, (B, …)."""
        ab = self.alphas_cumprod[t]  # float64: 1 − ᾱ_t keeps its digits near t = 1
        return self._coef(ab.sqrt(), x0) * x0 + self._coef((1 - ab).sqrt(), x0) * noise

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ̃_t(x_t, x_0), β̃_t) of q(x_{t−1} | x_t, x_0) (Ho Eq. 6–7); μ̃ (B, …), β̃ (B, 1, …, 1).
        At t = 1 (index 0) ᾱ_0 = 1: μ̃ = x_0 and β̃ = 0."""
        ab_t, beta = self.alphas_cumprod[t], self.betas[t]
        ab_prev = torch.where(t > 0, self.alphas_cumprod[(t - 1).clamp(min=0)], torch.ones_like(ab_t))  # ᾱ_{t−1}
        c0 = ab_prev.sqrt() * beta / (1 - ab_t)
        ct = (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab_t)
        mean = self._coef(c0, x0) * x0 + self._coef(ct, x_t) * x_t
        return mean, self._coef((1 - ab_prev) / (1 - ab_t) * beta, x_t)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t, the x_0 that Eq. 4 pairs with x_t and ε."""
        ab = self.alphas_cumprod[t]
        return (x_t - self._coef((1 - ab).sqrt(), x_t) * eps) / self._coef(ab.sqrt(), x_t)

    def loss_simple(
        self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, network: nn.Module | None = None
    ) -> torch.Tensor:
        """L_simple per example (Ho Eq. 14), the mean over its elements of (ε − ε_θ(x_t, t))²: x (B, …) in
        data units, t (B,) int64 in [0, T), noise ε (B, …) → (B,) float32. ``network``: see ``forward``."""
        x_t = self.q_sample(self.to_network(x), t, noise)
        return (noise - self(x_t, t, network)).float().square().flatten(1).mean(1)

    # -- sampling ---------------------------------------------------------------------------------------------
    def timestep_sequence(self, steps: int | None = None) -> list[int]:
        """τ as step indices in increasing order: ``steps`` (default T) indices spread evenly over
        [0, T − 1], both ends included (index T − 1 starts from x_T ≈ N(0, I)); all T for steps = T.
        Raises ConfigError unless 1 ≤ steps ≤ T."""
        T = self.num_timesteps
        steps = T if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= T:
            raise ConfigError(f"steps: {steps!r} is not a number of sampling steps in 1 … T = {T} for this model")
        if steps == 1:
            return [T - 1]
        return sorted({round(i * (T - 1) / (steps - 1)) for i in range(steps)})

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        sampler: Sampler = "ddpm",
        eta: float = 0.0,
        return_chain: bool = False,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``n`` examples in data units, (n, *in_shape), drawn in eval mode on the model's device.

        ``sampler="ddpm"``: ancestral sampling (Ho Alg. 2; on ``steps`` < T the respaced chain);
        ``"ddim"``: Song et al. Eq. 12 with σ_t(η) (Eq. 16) on ``steps`` steps (default all T), with the
        attached averaged ε-network when there is one (:meth:`attach_sampling_network`). ``eta`` is
        DDIM's η in [0, 1] (0: deterministic; 1: DDPM with σ² = β̃). ``return_chain`` also returns
        ``CHAIN_LENGTH`` states x_t in data units at evenly spaced points of the chain, from x_T to the
        sample. Noise comes from ``generator`` (on any device: a CPU one gives the same samples on every device)
        or the global RNG: x_T first,
        then one draw per stochastic step. ``callback(done, total)`` is called after each denoising step
        (progress of a long chain: 1000 steps of a U-Net take minutes on a CPU). Raises ConfigError for
        n < 1, steps outside 1 … T, an unknown sampler or η outside [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n: {n!r} is not a number of samples ≥ 1")
        if sampler not in ("ddpm", "ddim"):
            raise ConfigError(f"sampler: '{sampler}' is not a diffusion sampler; use ddpm or ddim")
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise ConfigError(f"eta: {eta!r} is outside [0, 1]; DDIM's η is 0 (deterministic) … 1 (DDPM)")
        if sampler == "ddpm" and eta != 0.0:
            raise ConfigError("eta: applies to sampler=ddim only; DDPM's noise is fixed by σ_t (model.sigma)")
        seq = self.timestep_sequence(steps)
        was_training = self.training
        self.eval()
        try:
            return self._sample(n, generator, seq, sampler, float(eta), return_chain, callback)
        finally:
            self.train(was_training)

    def _sample(
        self,
        n: int,
        g: torch.Generator | None,
        seq: list[int],
        sampler: str,
        eta: float,
        return_chain: bool,
        callback: Callable[[int, int], None] | None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        ref = self.alphas_cumprod.tolist()  # ᾱ in float64 Python floats: one host copy per call
        p = next(self.parameters(), None)
        device = p.device if p is not None else self.alphas_cumprod.device
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        net = self.sampling_network()
        x = randn_on((n, *self.input_shape), g, device, dtype)  # x_T ~ N(0, I)
        keep = {round(i * len(seq) / (CHAIN_LENGTH - 1)) for i in range(CHAIN_LENGTH)}  # states 0 … len(seq)
        chain = [self._data(x)] if return_chain else []
        for i in reversed(range(len(seq))):
            t, s = seq[i], seq[i - 1] if i > 0 else -1  # s = −1: ᾱ_s = ᾱ_0 = 1, the last step
            ab_t = ref[t]
            ab_s = ref[s] if s >= 0 else 1.0
            tt = torch.full((n,), t, device=device, dtype=torch.long)
            eps = self(x, tt, net)
            x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)  # x̂_0
            if self.config.clip_denoised:
                x0 = x0.clamp(-1.0, 1.0)
                eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)  # the ε that the clipped x̂_0 implies
            if sampler == "ddpm":
                beta = 1 - ab_t / ab_s  # β_t, or β_{t|s} on a sub-sequence
                mean = math.sqrt(ab_s) * beta / (1 - ab_t) * x0 + math.sqrt(1 - beta) * (1 - ab_s) / (1 - ab_t) * x
                var = beta if self.config.sigma == "beta" else (1 - ab_s) / (1 - ab_t) * beta
                x = mean + math.sqrt(var) * self._noise(x, g) if s >= 0 else mean  # z = 0 at t = 1 (Alg. 2)
            else:
                sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))  # Song Eq. 16
                x = math.sqrt(ab_s) * x0 + math.sqrt(max(1 - ab_s - sigma**2, 0.0)) * eps
                if sigma > 0:
                    x = x + sigma * self._noise(x, g)
            if return_chain and (len(seq) - i) in keep:
                chain.append(self._data(x))
            if callback is not None:
                callback(len(seq) - i, len(seq))
        out = self._data(x)
        return (out, chain) if return_chain else out

    @staticmethod
    def _noise(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return randn_on(x.shape, g, x.device, x.dtype)

    def _data(self, x: torch.Tensor) -> torch.Tensor:
        """Network → data units; clipped to the data's range [shift − scale, shift + scale] when the data
        is bounded (``clip_denoised``)."""
        if self.config.clip_denoised:
            x = x.clamp(-1.0, 1.0)
        return self.to_data(x)


_PAPER = "Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models (NeurIPS 2020), arXiv:2006.11239"


@register_model(
    family="diffusion",
    config=DDPMConfig,
    paper=_PAPER,
    tasks=("diffusion",),
    defaults={"arch": "unet"},
    test_overrides={"in_shape": (1, 8, 8), "channels": 8, "channel_mult": (1, 2), "norm_groups": 4, "timesteps": 10},
    meta={"num_params": 280_177, "macs": 56_651_328},
)
def ddpm_unet(**overrides) -> DDPM:
    """DDPM with a small U-Net ε-network (Ho et al. App. B): 16 → 32 → 32 channels over 28 → 14 → 7."""
    return DDPM(DDPMConfig(**overrides))


@register_model(
    family="diffusion",
    config=DDPMConfig,
    paper=_PAPER,
    tasks=("diffusion",),
    defaults={"arch": "mlp", "in_shape": (2,), "data_shift": 0.0, "data_scale": 1.0, "clip_denoised": False},
    test_overrides={"width": 16, "depth": 2, "timesteps": 10},
    meta={"num_params": 132_738, "macs": 131_584},
)
def ddpm_mlp(**overrides) -> DDPM:
    """DDPM with an MLP ε-network (3 × 128, time embedding added per layer) for 2-D points."""
    return DDPM(DDPMConfig(**overrides))
