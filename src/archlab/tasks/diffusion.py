"""The diffusion task: train a denoising diffusion model on Ho et al.'s simple ε-prediction loss, keep an
optional exponential moving average of its weights, and measure the loss on held-out data at fixed,
seeded noise (and, for mixtures of Gaussians, how many modes the samples cover).

Ho, Jain & Abbeel, NeurIPS 2020, arXiv:2006.11239: Algorithm 1 and Eq. 14 (L_simple, t uniform on
{1, …, T}), §4 and App. B (an EMA of the weights with decay 0.9999 for sampling and evaluation).

Training (Algorithm 1): per example t ~ U{1 … T} and ε ~ N(0, I), drawn from a generator seeded by
(run seed, step, micro-batch) — the same draws after a resume, different per seed; the loss is
    L_simple = mean over the batch of mean_elements (ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t))²
(Ho et al.'s released code averages over elements, so the value is per element, not a sum).

Options (``task.options``):
    ema_decay      0 (off) or the decay β of θ̄ ← β θ̄ + (1 − β) θ after every optimiser step, θ̄_0 = θ_0 (Ho:
                   0.9999; short CPU runs want ~0.99–0.999); kept as task state (``task.safetensors``) and
                   attached to the model (``attach_sampling_network``), so ``model.sample`` — the evaluation's
                   samples, ``archlab sample`` — draws with θ̄; evaluation also reports ``ema_loss``
    eval_samples   samples drawn at each evaluation for the sample statistics (0: none); on a data set with
                   Gaussian modes (ring8, grid25): ``modes_covered``, ``high_quality`` (the fraction of samples
                   within 3σ of a mode) and ``reverse_kl`` (nats), :func:`archlab.data.mixtures.mode_coverage`
    sampler, sample_steps, eta   how those samples are drawn (``model.sample``)

Metrics (every evaluation draws the same t and ε for the same example, from a generator seeded by the
run's seed, so two evaluations of the same weights agree exactly):
    loss        L_simple on the split (mean squared error of ε̂ per element), one t per example
    ema_loss    the same with the EMA weights (ema_decay > 0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from archlab.config import ModelSpec
from archlab.data import DatasetInfo
from archlab.registry import get_model_entry
from archlab.tasks.averaging import AveragedWeightsState, WeightAverage
from archlab.tasks.base import Batch, StepContext, Task, register_task
from archlab.tasks.metrics import Loss, Mean, MetricSet
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

MAX_EVAL_SAMPLES = 100_000
_EVAL_SALT = 0xD1FF  # the evaluation generator: derive_seed(seed, _EVAL_SALT)
_SAMPLE_SALT = 0x5A3E  # the evaluation samples' generator


class Count(Mean):
    """A count or a fraction of samples (higher is better): modes covered, high-quality samples."""


def _unwrap(model: nn.Module) -> nn.Module:
    """The model itself, not a ``torch.compile`` wrapper."""
    return getattr(model, "_orig_mod", model)


def coverage_metrics(samples: torch.Tensor, info: DatasetInfo) -> dict[str, float] | None:
    """``modes_covered``, ``high_quality`` (the fraction of samples within 3σ of their nearest mode) and
    ``reverse_kl`` (nats) of samples (N, D) on a Gaussian-mixture data set — the mixture the run's
    ``data.options`` built (:func:`archlab.data.mixtures.mixture_for`) — or None for any other set."""
    from archlab.data.mixtures import mixture_for, mode_coverage

    mixture = mixture_for(info)
    return None if mixture is None else mode_coverage(samples, mixture).as_metrics()


@register_task
class DiffusionTask(AveragedWeightsState, Task):
    name = "diffusion"
    losses = ("mse",)
    default_loss = "mse"
    metrics = {"loss": Loss, "ema_loss": Loss, "modes_covered": Count, "high_quality": Count, "reverse_kl": Loss}
    default_metric = "loss"
    default_options = {"ema_decay": 0.0, "eval_samples": 0, "sampler": "ddim", "sample_steps": 100, "eta": 0.0}

    def __init__(self, spec: Any, info: Any, seed: int = 0):
        super().__init__(spec, info, seed)
        o = self.options
        if not 0.0 <= o["ema_decay"] < 1.0:
            raise ConfigError(
                f"task.options.ema_decay: {o['ema_decay']} is outside [0, 1); 0 switches the EMA off "
                "(Ho et al. use 0.9999)"
            )
        if not 0 <= o["eval_samples"] <= MAX_EVAL_SAMPLES:
            raise ConfigError(f"task.options.eval_samples: {o['eval_samples']} is outside 0 … {MAX_EVAL_SAMPLES:,}")
        if o["sampler"] not in ("ddpm", "ddim"):
            raise ConfigError(f"task.options.sampler: '{o['sampler']}' is not a diffusion sampler; use ddpm or ddim")
        if not 0.0 <= o["eta"] <= 1.0:
            raise ConfigError(
                f"task.options.eta: {o['eta']} is outside [0, 1]; DDIM's η is 0 (deterministic) … 1 (DDPM's variance)"
            )
        if o["sampler"] == "ddpm" and o["eta"] != 0.0:
            raise ConfigError("task.options.eta: applies to sampler ddim only; set task.options.sampler=ddim")
        self.average: WeightAverage | None = None  # θ̄ of the ε-network (ema_decay > 0), built with the model
        self._draws = 0  # training_loss calls within the current step (micro-batches)

    # -- model -----------------------------------------------------------------------------------------------
    def build_model(self, spec: ModelSpec) -> nn.Module:
        entry = get_model_entry(spec.name)
        if entry.family != "diffusion":
            raise ConfigError(
                f"model.name: '{spec.name}' is not a diffusion model (a {entry.family} model); task 'diffusion' "
                "trains a noise-prediction network (archlab list --family diffusion: ddpm_unet, ddpm_mlp)"
            )
        model = super().build_model(spec)
        steps, T = self.options["sample_steps"], model.num_timesteps
        if self.options["eval_samples"] and not 1 <= steps <= T:
            raise ConfigError(
                f"task.options.sample_steps: {steps} is outside 1 … T = {T}, the model's diffusion steps "
                f"(model.timesteps); use at most {T}"
            )
        if self.options["ema_decay"]:
            self.average = WeightAverage(model.eps_model, self.options["ema_decay"])  # θ̄_0 = θ_0
            model.attach_sampling_network(self.average.module)  # sample() draws with it (also in `archlab sample`)
        return model

    # -- training --------------------------------------------------------------------------------------------
    def set_progress(self, step: int, total_steps: int | None) -> None:
        super().set_progress(step, total_steps)
        self._draws = 0

    def _generator(self, device: torch.device, *parts: int) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(derive_seed(self.seed, *parts))

    def draw(self, model: nn.Module, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, ε) for a batch x: t ~ U{0 … T − 1} (B,) int64 (the paper's t − 1) and ε ~ N(0, I) like x."""
        t = torch.randint(0, model.num_timesteps, (len(x),), generator=g, device=x.device)
        noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        return t, noise

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch.x
        g = self._generator(x.device, self.step, self._draws)  # (seed, step, micro-batch): resumable
        self._draws += 1
        t, noise = self.draw(model, x, g)
        loss = model.loss_simple(x, t, noise).mean()
        return loss, {"loss": loss.detach()}

    def probe(self, model: nn.Module, ctx: StepContext) -> None:
        """One training loss and backward (the default), then the sampler the evaluation will use, on two
        examples and two steps, so a sampling setting the model cannot take fails before the run starts."""
        super().probe(model, ctx)
        if self.options["eval_samples"]:
            model.sample(
                2, steps=min(2, self.options["sample_steps"]), sampler=self.options["sampler"], eta=self.options["eta"]
            )

    # -- the EMA of the weights --------------------------------------------------------------------------------
    def after_optimizer_step(self, group: str, model: nn.Module, ctx: StepContext) -> None:
        """θ̄ ← β θ̄ + (1 − β) θ over the ε-network's parameters and buffers (Ho et al. §4); θ̄_0 = θ_0."""
        if self.average is not None:
            self.average.update(_unwrap(model).eps_model)

    # -- evaluation ------------------------------------------------------------------------------------------
    def new_metrics(self) -> MetricSet:
        m = super().new_metrics()
        if not self.options["ema_decay"]:
            del m["ema_loss"]
        if not self.options["eval_samples"]:
            del m["modes_covered"], m["high_quality"], m["reverse_kl"]
        return m

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        g = None
        for batch in batches:
            x = batch.x
            g = g or self._generator(x.device, _EVAL_SALT)
            t, noise = self.draw(model, x, g)
            m["loss"].update(model.loss_simple(x, t, noise).sum(), len(x))
            if "ema_loss" in m:
                m["ema_loss"].update(model.loss_simple(x, t, noise, self.ema).sum(), len(x))
        if self.options["eval_samples"]:
            device = next(model.parameters()).device
            samples = model.sample(  # with the EMA network when there is one
                self.options["eval_samples"],
                generator=self._generator(device, _SAMPLE_SALT),
                steps=self.options["sample_steps"],
                sampler=self.options["sampler"],
                eta=self.options["eta"],
            )
            cov = coverage_metrics(samples, self.info) or {}
            for key in ("modes_covered", "high_quality", "reverse_kl"):
                if math.isfinite(cov.get(key, math.nan)):  # reverse KL is NaN without a high-quality sample
                    m[key].update(cov[key], 1)
                else:
                    del m[key]
        return m
