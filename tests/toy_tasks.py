"""Two tasks written against the public task contract only, for the contract tests.

* ``toy_gan``: a two-network, two-optimiser task that owns its step (a tiny GAN on the digits):
  the discriminator and the generator each step once per batch through the ``StepContext``.
* ``classification_ema``: classification that keeps an exponential moving average of the weights
  in ``after_optimizer_step``, saves it as task state and reports the EMA weights' accuracy.

``register()`` adds both (and a data set for each, the digits under the task's name);
``unregister()`` removes them again. Run as a script, this file registers them and then runs
the ``archlab`` command line with its arguments (how the CLI tests reach tasks defined outside the
package).
"""

from __future__ import annotations

import sys
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from archlab.data import dataset_info, load_dataset
from archlab.data.core import DATASETS, register_dataset
from archlab.registry import create_model
from archlab.tasks import TASKS, ClassificationTask, Task
from archlab.tasks.base import register_task
from archlab.tasks.metrics import Loss

LATENT = 8


class ToyGANTask(Task):
    """Generator z (B, 8) → (B, 1, 8, 8); discriminator (B, 1, 8, 8) → (B, 1) logit (Goodfellow et al.
    2014, the non-saturating generator loss)."""

    name = "toy_gan"
    losses = ("bce",)
    default_loss = "bce"
    metrics = dict.fromkeys(("loss", "d_loss", "g_loss"), Loss)
    default_metric = "loss"
    has_custom_step = True

    def build_model(self, spec):
        g = create_model("mlp", in_shape=(LATENT,), num_classes=64, depth=1, width=32)
        d = create_model("mlp", in_shape=(1, 8, 8), num_classes=1, depth=1, width=32, dropout=0.2)
        return nn.ModuleDict({"generator": g, "discriminator": d})

    def param_groups(self, model):
        return {
            "generator": list(model["generator"].parameters()),
            "discriminator": list(model["discriminator"].parameters()),
        }

    @staticmethod
    def _losses(model, x, z):
        fake = model["generator"](z).view(-1, 1, 8, 8)
        real_logit, fake_logit = model["discriminator"](x), model["discriminator"](fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        return fake, d_loss

    def custom_step(self, model, ctx):
        x = ctx.next_batch().x
        z = torch.randn(len(x), LATENT, device=ctx.device)  # the global RNG: checkpointed with the run
        ctx.zero_grad("discriminator")
        with ctx.autocast():
            fake, d_loss = self._losses(model, x, z)
        ctx.backward(d_loss)
        ctx.clip_and_step("discriminator")
        ctx.zero_grad("generator")
        with ctx.autocast():
            logit = model["discriminator"](fake)
            g_loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        ctx.backward(g_loss)
        ctx.clip_and_step("generator")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @torch.no_grad()
    def evaluate(self, model, batches):
        g = torch.Generator().manual_seed(0)
        d_sum, g_sum, n = 0.0, 0.0, 0
        for batch in batches:
            x = batch.x
            z = torch.randn(len(x), LATENT, generator=g).to(x.device)
            fake, d_loss = self._losses(model, x, z)
            logit = model["discriminator"](fake)
            g_sum += float(F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))) * len(x)
            d_sum += float(d_loss) * len(x)
            n += len(x)
        return {"loss": d_sum / n, "d_loss": d_sum / n, "g_loss": g_sum / n}


class EMAClassificationTask(ClassificationTask):
    """Classification plus an EMA of the weights, θ̄ ← β θ̄ + (1 − β) θ after every optimiser step
    (Polyak & Juditsky 1992), kept as task state and evaluated beside the weights."""

    name = "classification_ema"
    decay = 0.9

    def __init__(self, spec, info, **kw):
        super().__init__(spec, info, **kw)
        self.ema: dict[str, torch.Tensor] = {}
        self.updates = 0

    def after_optimizer_step(self, group, model, ctx):
        with torch.no_grad():
            for k, p in model.named_parameters():
                if k not in self.ema:
                    self.ema[k] = p.detach().clone()
                else:
                    self.ema[k].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)
        self.updates += 1

    def on_evaluate(self, model, split, metrics):
        return {"ema_updates": float(self.updates)}

    def state_dict(self):
        return {"ema": dict(self.ema), "updates": self.updates}

    def load_state_dict(self, state):
        self.ema = {k: v.clone() for k, v in state.get("ema", {}).items()}
        self.updates = int(state.get("updates", 0))


def _digits_as(task: str):
    info = replace(dataset_info("digits"), name=f"digits_{task}", task=task)

    def loader(split, data_dir=None):
        return load_dataset("digits", split)

    return info, loader


def register() -> None:
    for cls in (ToyGANTask, EMAClassificationTask):
        if cls.name not in TASKS:
            register_task(cls)
            info, loader = _digits_as(cls.name)
            register_dataset(info)(loader)


def unregister() -> None:
    for cls in (ToyGANTask, EMAClassificationTask):
        TASKS._entries.pop(cls.name, None)
        DATASETS._entries.pop(f"digits_{cls.name}", None)


if __name__ == "__main__":
    register()
    from archlab.cli import main

    sys.exit(main(sys.argv[1:]))
