"""Reconstruction and denoising: train an autoencoder on its own objective and measure how well it
reconstructs.

The training loss is the model's own (``model.loss_terms`` and ``model.objective``, the code the
tools and experiments use too): the reconstruction NLL plus the model's penalty, weighted at the
current step (a VAE's KL warm-up reads it). ``task.loss`` picks the likelihood: ``bce`` is the
Bernoulli likelihood (binary cross-entropy against x ∈ [0, 1]), ``mse`` the Gaussian (½·squared
error / s² + const, any real x); the task sets ``model.likelihood`` to match (a recipe that sets a
different one is a one-line error).

Metrics (nats are per example, summed over its elements):
    loss             Σ_t weight_t · term_t, the final weights (no warm-up)
    reconstruction   −log p(x | z), and each penalty the model reports (``sparsity``, ``contractive``)
    mse              mean over elements of (decode(encode(x)) − x)², the deterministic reconstruction
    psnr, ssim       images only: per-image PSNR (dB) and SSIM of the clamped reconstruction, data
                     range 1 (torchmetrics; SSIM with an 11×11 Gaussian window, σ = 1.5, Wang et al. 2004),
                     averaged over images

Denoising (``task.name: denoising``) also scores reconstructions of corrupted inputs: each test
image is corrupted once with a generator seeded from the run's seed (the same x̃ at every
evaluation), by the denoising autoencoder's own corruption (``task.options.corruption: model``) or
by one named in the options, so that any autoencoder can be compared on the same x̃:
    psnr_corrupted   PSNR of x̃ itself against x (the baseline to beat)
    psnr_denoised, ssim_denoised, mse_denoised    of decode(encode(x̃)) against the clean x
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from archlab.config import ModelSpec
from archlab.registry import model_config_fields
from archlab.tasks.base import Batch, StepContext, Task, register_task
from archlab.tasks.metrics import Loss, Mean, MeanSquaredError, MetricSet
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

_LIKELIHOOD = {"bce": "bernoulli", "mse": "gaussian"}
SSIM_MIN_SIDE = 11  # the Gaussian window of SSIM


class Nats(Loss):
    """A mean per example in nats (lower is better)."""


class PSNR(Mean):
    """Mean per-image peak signal-to-noise ratio, dB: ``update(Σ psnr_i, images)``."""


class SSIM(Mean):
    """Mean per-image structural similarity (Wang et al. 2004): ``update(Σ ssim_i, images)``."""


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """10·log10(1 / MSE_i) per image of (B, C, H, W) tensors in [0, 1] → (B,) dB (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    dims = tuple(range(1, pred.dim()))
    return peak_signal_noise_ratio(pred.float(), target.float(), data_range=1.0, reduction="none", dim=dims)


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM per image of (B, C, H, W) tensors in [0, 1] → (B,) (torchmetrics, 11×11 window, σ = 1.5)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, reduction="none")


@register_task
class ReconstructionTask(Task):
    name = "reconstruction"
    losses = ("bce", "mse")
    default_loss = "bce"
    metrics = {
        "loss": Loss,
        "reconstruction": Nats,
        "mse": MeanSquaredError,
        "psnr": PSNR,
        "ssim": SSIM,
    }

    # -- model -----------------------------------------------------------------------------
    def build_model(self, spec: ModelSpec) -> nn.Module:
        if "likelihood" not in model_config_fields(spec.name):
            raise ConfigError(
                f"model.name: '{spec.name}' is not an autoencoder (no encode/decode/loss_terms); task "
                f"'{self.name}' trains the autoencoder family (archlab list --family autoencoder)"
            )
        likelihood = _LIKELIHOOD[self.loss_name]
        given = spec.overrides().get("likelihood")
        if given is not None and given != likelihood:
            raise ConfigError(
                f"model.likelihood: '{given}' contradicts task.loss '{self.loss_name}' (the {likelihood} "
                f"likelihood); drop model.likelihood or set task.loss={'bce' if given == 'bernoulli' else 'mse'}"
            )
        return super().build_model(ModelSpec(**{"name": spec.name, **spec.overrides(), "likelihood": likelihood}))

    @property
    def _images(self) -> bool:
        shape = tuple(self.info.input_shape)
        return self.info.kind == "image" and len(shape) == 3

    def new_metrics(self) -> MetricSet:
        m = super().new_metrics()
        shape = tuple(self.info.input_shape)
        for key in list(m):
            if ("psnr" in key and not self._images) or (
                "ssim" in key and (not self._images or min(shape[1:]) < SSIM_MIN_SIDE)
            ):
                del m[key]
        return m

    # -- training --------------------------------------------------------------------------
    def probe(self, model: nn.Module, ctx: StepContext) -> None:
        """The start-up step, after checking that the Bernoulli likelihood (``task.loss: bce``) has
        data in [0, 1] to score: BCE against a target outside it is no log-likelihood (it can even
        be negative), yet trains without complaint. Checked on the probe's batch, transforms included."""
        batch = ctx.next_batch()
        if self.loss_name == "bce":
            lo, hi = (float(v) for v in torch.aminmax(batch.x.float()))
            if lo < 0.0 or hi > 1.0:
                raise ConfigError(
                    f"task.loss: 'bce' is the Bernoulli likelihood of data in [0, 1], but data set "
                    f"'{self.info.name}' has values in [{lo:.4g}, {hi:.4g}]; set task.loss=mse (the Gaussian)"
                )
        with ctx.autocast():
            loss, _ = self.training_loss(model, batch)
        ctx.backward(loss)

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch.x
        out = model(x)
        terms = model.loss_terms(x, out)
        loss = model.objective(terms, self.step)
        return loss, {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    # -- evaluation ------------------------------------------------------------------------
    def _generator(self, device: torch.device, salt: int) -> torch.Generator:
        """A generator seeded from the run's seed: every evaluation draws the same noise."""
        return torch.Generator(device=device).manual_seed(derive_seed(self.seed, salt))

    def _model_out(self, model: nn.Module, x: torch.Tensor, g: torch.Generator) -> Any:
        """The forward pass whose terms are scored (a VAE overrides it to sample z)."""
        return model(x)

    def _score_batch(
        self, model: nn.Module, x: torch.Tensor, m: MetricSet, g: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Add one batch to the accumulators; returns the model's loss terms on it."""
        n = len(x)
        out = self._model_out(model, x, g)
        terms = model.loss_terms(x, out)
        m["loss"].update(model.objective(terms) * n, n)
        for k, v in terms.items():
            if k not in m:
                m[k] = Nats()
            m[k].update(v * n, n)
        x_hat = model.decode(model.encode(x)).float()
        m["mse"].update((x_hat - x).square().sum(), x.numel())
        self._image_scores(m, x_hat, x, "")
        return terms

    def _image_scores(self, m: MetricSet, x_hat: torch.Tensor, x: torch.Tensor, suffix: str) -> None:
        if f"psnr{suffix}" in m:
            m[f"psnr{suffix}"].update(psnr_per_image(x_hat.clamp(0, 1), x).sum(), len(x))
        if f"ssim{suffix}" in m:
            m[f"ssim{suffix}"].update(ssim_per_image(x_hat.clamp(0, 1), x).sum(), len(x))

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        g = None
        for batch in batches:
            g = g or self._generator(batch.x.device, 0xAE)
            self._score_batch(model, batch.x, m, g)
        return m


@register_task
class DenoisingTask(ReconstructionTask):
    name = "denoising"
    metrics = {
        **ReconstructionTask.metrics,
        "psnr_corrupted": PSNR,
        "psnr_denoised": PSNR,
        "ssim_denoised": SSIM,
        "mse_denoised": MeanSquaredError,
    }
    default_metric = "loss"
    # "model": the denoising autoencoder's own corruption and ν; or gaussian / masking / salt_pepper
    default_options = {"corruption": "model", "noise_level": 0.25}

    def __init__(self, spec: Any, info: Any, seed: int = 0):
        super().__init__(spec, info, seed)
        kinds = ("model", "gaussian", "masking", "salt_pepper")
        if self.options["corruption"] not in kinds:
            raise ConfigError(
                f"task.options.corruption: '{self.options['corruption']}' is not one of {', '.join(kinds)}"
            )
        if not 0 <= self.options["noise_level"] <= (1 if self.options["corruption"] in kinds[2:] else float("inf")):
            raise ConfigError(
                f"task.options.noise_level: {self.options['noise_level']} is out of range (≥ 0; a corrupted "
                "fraction for masking and salt_pepper, ≤ 1)"
            )

    def build_model(self, spec: ModelSpec) -> nn.Module:
        model = super().build_model(spec)
        if self.options["corruption"] == "model" and not hasattr(model, "corrupt"):
            raise ConfigError(
                f"task.options.corruption: model '{spec.name}' has no corruption of its own (only denoising_ae "
                "has); set task.options.corruption to gaussian, masking or salt_pepper"
            )
        return model

    def corrupt(self, model: nn.Module, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """x̃ for evaluation: the model's own q_D, or the one the options name."""
        from archlab.models.autoencoder.denoising import corrupt

        if self.options["corruption"] == "model":
            return model.corrupt(x, g)
        return corrupt(x, self.options["corruption"], self.options["noise_level"], g)

    def _score_batch(
        self, model: nn.Module, x: torch.Tensor, m: MetricSet, g: torch.Generator
    ) -> dict[str, torch.Tensor]:
        terms = super()._score_batch(model, x, m, g)
        x_tilde = self.corrupt(model, x, g)
        x_hat = model.decode(model.encode(x_tilde)).float()
        m["mse_denoised"].update((x_hat - x).square().sum(), x.numel())
        if "psnr_corrupted" in m:
            m["psnr_corrupted"].update(psnr_per_image(x_tilde.clamp(0, 1), x).sum(), len(x))
        self._image_scores(m, x_hat, x, "_denoised")
        return terms
