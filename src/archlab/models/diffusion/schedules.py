"""Noise schedules of the diffusion (forward) process: β_1 … β_T, and what follows from them.

Ho, Jain & Abbeel, *Denoising Diffusion Probabilistic Models*, NeurIPS 2020, arXiv:2006.11239 (§2,
§4: the linear schedule β_1 = 10⁻⁴ … β_T = 0.02, T = 1000); Nichol & Dhariwal, *Improved Denoising
Diffusion Probabilistic Models*, ICML 2021, arXiv:2102.09672 (§3.2, Eq. 17: the cosine schedule).

Letters: T the number of diffusion steps, t = 1 … T (tensors are indexed t − 1), β_t the variance
added at step t, α_t = 1 − β_t, ᾱ_t = Π_{s ≤ t} α_s (ᾱ_0 = 1).

Equations:
    linear   β_t = β_1 + (t − 1)/(T − 1) · (β_T − β_1)                        (Ho et al. §4)
    cosine   ᾱ_t = f(t) / f(0),  f(t) = cos²((t/T + s)/(1 + s) · π/2),  s = 0.008
             β_t = min(1 − ᾱ_t / ᾱ_{t−1}, 0.999)                              (Nichol & Dhariwal Eq. 17)
    ᾱ_t = Π_{s=1..t} (1 − β_s)                                                (Ho et al. Eq. 4)

Every β_t must lie in the open interval (0, 1): β_t = 0 adds no noise (the step cannot be inverted by
the Gaussian reverse process), β_t ≥ 1 destroys the signal in one step. The schedules are computed in
float64 on the CPU (ᾱ_T of the linear schedule is ≈ 4·10⁻⁵; float32 products lose its digits) and
returned so, also inside a ``torch.device("meta")`` block (a model built there keeps a real schedule).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from archlab.utils.errors import ConfigError

ScheduleName = Literal["linear", "cosine"]
COSINE_S = 0.008  # Nichol & Dhariwal §3.2: "a small offset s to prevent β_t from being too small near t = 0"
COSINE_MAX_BETA = 0.999  # ibid.: "we clip β_t to be no larger than 0.999 to prevent singularities at t = T"


def check_betas(betas: torch.Tensor, what: str = "the β schedule") -> torch.Tensor:
    """``betas`` itself if every β_t lies in (0, 1) and is finite; else :class:`ConfigError` naming the
    first bad step (one line)."""
    bad = ~(torch.isfinite(betas) & (betas > 0) & (betas < 1))
    if bool(bad.any()):
        t = int(bad.nonzero()[0]) + 1
        raise ConfigError(
            f"{what}: β_{t} = {float(betas[t - 1]):.6g} is outside (0, 1); every step of a diffusion must add "
            "some noise and keep some signal (Ho et al. 2020 use β from 1e-4 to 0.02)"
        )
    return betas


def linear_beta_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_1 … β_T spaced linearly from ``beta_start`` to ``beta_end`` (Ho et al. 2020 §4); (T,) float64.

    Raises :class:`ConfigError` if T < 1 or any β_t is outside (0, 1)."""
    if timesteps < 1:
        raise ConfigError(f"timesteps: {timesteps} < 1; a diffusion needs at least one step (Ho et al.: T = 1000)")
    return check_betas(
        torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64, device="cpu"), "linear schedule"
    )


def cosine_alpha_bar(timesteps: int, s: float = COSINE_S) -> torch.Tensor:
    """ᾱ_0 … ᾱ_T of the cosine schedule before clipping, f(t)/f(0) (Nichol & Dhariwal Eq. 17); (T + 1,)
    float64, ᾱ_0 = 1 and ᾱ_T = 0 exactly up to rounding (cos(π/2) = 0)."""
    t = torch.arange(timesteps + 1, dtype=torch.float64, device="cpu")
    f = torch.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


def cosine_beta_schedule(timesteps: int, s: float = COSINE_S, max_beta: float = COSINE_MAX_BETA) -> torch.Tensor:
    """β_t = min(1 − ᾱ_t/ᾱ_{t−1}, ``max_beta``) of the cosine ᾱ (Nichol & Dhariwal Eq. 17); (T,) float64.

    Raises :class:`ConfigError` if T < 1, s < 0 or any β_t is outside (0, 1) (``max_beta`` ≥ 1 lets
    the last β reach 1)."""
    if timesteps < 1:
        raise ConfigError(f"timesteps: {timesteps} < 1; a diffusion needs at least one step (Ho et al.: T = 1000)")
    if not s >= 0:
        raise ConfigError(f"cosine_s: {s} < 0; the offset is small and positive (Nichol & Dhariwal: 0.008)")
    ab = cosine_alpha_bar(timesteps, s)
    betas = (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)
    return check_betas(betas, "cosine schedule")


def beta_schedule(
    name: ScheduleName, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02, cosine_s: float = COSINE_S
) -> torch.Tensor:
    """The named schedule's β_1 … β_T, (T,) float64 (``beta_start``/``beta_end`` are the linear
    schedule's, ``cosine_s`` the cosine's). Raises :class:`ConfigError` for an unknown name or a β
    outside (0, 1)."""
    if name == "linear":
        return linear_beta_schedule(timesteps, beta_start, beta_end)
    if name == "cosine":
        return cosine_beta_schedule(timesteps, cosine_s)
    raise ConfigError(f"schedule: '{name}' is not a noise schedule; use linear or cosine")


def alpha_bar(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = Π_{s ≤ t} (1 − β_s) for t = 1 … T (Ho et al. Eq. 4); (T,) → (T,)."""
    return torch.cumprod(1 - betas, dim=0)
