"""The VAE task: train on the (β-weighted, optionally warmed-up) negative ELBO and report its terms
separately, with the test log-likelihood bounded by importance sampling.

Kingma & Welling, ICLR 2014 (Eq. 3); Burda, Grosse & Salakhutdinov, *Importance Weighted
Autoencoders*, ICLR 2016, arXiv:1509.00519 (Eq. 8; their MNIST test log-likelihoods use k = 5000).

Metrics beside the reconstruction task's (nats per example):
    reconstruction   −log p(x | z) with one z ~ q(z | x) per example (a seeded generator)
    kl               KL(q(z | x) ‖ N(0, I)), closed form
    elbo             −(reconstruction + kl), the evidence lower bound (β = 1, whatever β trains)
    log_likelihood   L_k = log (1/k) Σ_i p(x, z_i) / q(z_i | x), the IWAE bound with
                     k = ``task.options.iwae_samples`` (0: not computed); L_k ≤ log p(x), rising with k
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archlab.config import ModelSpec
from archlab.tasks.base import register_task
from archlab.tasks.metrics import Mean, MetricSet
from archlab.tasks.reconstruction import Nats, ReconstructionTask
from archlab.utils.errors import ConfigError

MAX_IWAE_SAMPLES = 5000  # Burda et al. 2016 evaluate their MNIST log-likelihoods with k = 5000


class LogLikelihood(Mean):
    """A mean log-likelihood (or a lower bound on it) per example, nats: higher is better."""


@register_task
class VAETask(ReconstructionTask):
    name = "vae"
    metrics = {**ReconstructionTask.metrics, "kl": Nats, "elbo": LogLikelihood, "log_likelihood": LogLikelihood}
    default_options = {"iwae_samples": 50}  # k of the IWAE bound at each evaluation (0: skip it)

    def __init__(self, spec: Any, info: Any, seed: int = 0):
        super().__init__(spec, info, seed)
        k = self.options["iwae_samples"]
        if k < 0:
            raise ConfigError(f"task.options.iwae_samples: {k} < 0; use k ≥ 1, or 0 to skip")
        if k > MAX_IWAE_SAMPLES:  # k decoder passes per test batch at every evaluation
            raise ConfigError(
                f"task.options.iwae_samples: {k} is more than {MAX_IWAE_SAMPLES:,} (Burda et al.'s evaluation k), each "
                "a decoder pass over the test set at every evaluation; use at most that"
            )

    def build_model(self, spec: ModelSpec) -> nn.Module:
        model = super().build_model(spec)
        if not hasattr(model, "posterior"):
            raise ConfigError(
                f"model.name: '{spec.name}' is not a VAE; task 'vae' needs vae_mlp or vae_conv "
                "(a deterministic autoencoder trains with task.name=reconstruction)"
            )
        return model

    def new_metrics(self) -> MetricSet:
        m = super().new_metrics()
        if not self.options["iwae_samples"]:
            del m["log_likelihood"]
        return m

    def training_loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, logs = super().training_loss(model, batch)
        logs["elbo"] = -(logs["reconstruction"] + logs["kl"])
        logs["kl_weight"] = model.term_weights(self.step)["kl"]
        return loss, logs

    def _model_out(self, model: nn.Module, x: torch.Tensor, g: torch.Generator) -> Any:
        return model(x, sample=True, generator=g)  # the ELBO's z ~ q(z | x), reproducibly

    def _score_batch(
        self, model: nn.Module, x: torch.Tensor, m: MetricSet, g: torch.Generator
    ) -> dict[str, torch.Tensor]:
        terms = super()._score_batch(model, x, m, g)  # reconstruction and kl with one z ~ q(z | x)
        m["elbo"].update(-(terms["reconstruction"] + terms["kl"]) * len(x), len(x))
        if "log_likelihood" in m:
            m["log_likelihood"].update(model.iwae_bound(x, self.options["iwae_samples"], g).sum(), len(x))
        return terms
