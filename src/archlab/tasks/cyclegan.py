"""Unpaired translation with CycleGAN (task ``cyclegan``) and its supervised upper bound (task
``translation_paired``), both scored against the true pairing of a two-domain set
(:mod:`archlab.data.translation`: x a domain-A image, y a domain-B image).

Zhu, Park, Isola & Efros, ICCV 2017, arXiv:1703.10593: the least-squares adversarial loss (§4,
after Mao et al., *Least Squares Generative Adversarial Networks*, ICCV 2017, arXiv:1611.04076,
Eq. 2 with a = 0, b = c = 1), the cycle loss (Eq. 2) with λ = 10 (§4, Eq. 3), the identity loss
0.5λ (§5.2, after Taigman et al. 2017), the discriminators' objective halved (Appendix 7.1) and
trained on a history of 50 generated images (§4, after Shrivastava et al., *Learning from
Simulated and Unsupervised Images through Adversarial Training*, CVPR 2017, §2.3). The paired
bound trains the same generators with the L1 term of pix2pix alone (Isola, Zhu, Zhou & Efros,
*Image-to-Image Translation with Conditional Adversarial Networks*, CVPR 2017, Eq. 3).

Letters: a ∈ A, b ∈ B in the networks' range [−1, 1] (x̃ = 2x − 1: the losses are computed there, as
in the paper's code, so an L1 of 0.1 here is 0.05 in data units); G: A → B, F: B → A; D_A, D_B
patch scores (:mod:`archlab.models.gan.cyclegan`); E the mean over the batch and the patches.

Equations (one training step; the generators step first, then the discriminators, as the
reference code does):
    L_adv(G)  = E[(D_B(G(a)) − 1)²] + E[(D_A(F(b)) − 1)²]
    L_cyc     = E|F(G(a)) − a| + E|G(F(b)) − b|                         (Eq. 2)
    L_idt     = E|G(b) − b| + E|F(a) − a|                                (§5.2)
    L_G       = L_adv(G) + λ·L_cyc + λ_id·λ·L_idt                        λ = 10, λ_id = 0.5
    L_D_B     = ½ (E[(D_B(b) − 1)²] + E[D_B(b̂)²]),  b̂ = history_B(G(a))  (App. 7.1: ½)
    L_D_A     = ½ (E[(D_A(a) − 1)²] + E[D_A(â)²]),  â = history_A(F(b))
    paired:   L = E|G(a) − T(a)| + E|F(T(a)) − a|                        (pix2pix's L1 term alone)

The history (:class:`ImagePool`): until it holds ``pool_size`` images every generated image is
stored and passed on; after that each one is passed on with probability ½, otherwise a random
stored image is passed on and replaced by it. It is task state: saved in every checkpoint, so a
resumed run draws exactly what an uninterrupted one does (its draws come from a generator seeded
by the run's seed and the step).

Metrics, on a paired split (val, test: y = T(x)), in data units [0, 1], images averaged:
    a2b_l1, a2b_psnr           |G(a) − T(a)| per element, PSNR (dB, data range 1) per image
    b2a_l1, b2a_psnr           F(T(a)) against a
    identity_l1, identity_psnr the identity map's error: a against T(a) (the baseline to beat;
                               the same in both directions)
    cycle_a_l1, cycle_b_l1     |F(G(a)) − a| and |G(F(T(a))) − T(a)|: a low cycle error with a high
                               b2a error means the cycle is kept by something other than the true
                               inverse (Chu, Zhmoginov & Sandler 2017, arXiv:1712.02950)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.config import ModelSpec
from archlab.data import Batch, DatasetInfo
from archlab.tasks.base import StepContext, Task, register_task
from archlab.tasks.metrics import MeanAbsoluteError, MetricSet
from archlab.tasks.reconstruction import PSNR, psnr_per_image
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

MAX_POOL = 10_000  # a history of more images than this is a typo (the paper keeps 50)
_POOL_SALT = 0xB0FF


# -- losses ---------------------------------------------------------------------------------------------
def lsgan_d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """½ (E[(D(real) − 1)²] + E[D(fake)²]): Mao et al. Eq. 2 (a = 0, b = 1), halved (Zhu et al. App. 7.1)."""
    return 0.5 * (
        F.mse_loss(real_score, torch.ones_like(real_score)) + F.mse_loss(fake_score, torch.zeros_like(fake_score))
    )


def lsgan_g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """E[(D(G(x)) − 1)²]: the generator's least-squares loss (Mao et al. Eq. 2, c = 1)."""
    return F.mse_loss(fake_score, torch.ones_like(fake_score))


def l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """E|x − target| over every element: the cycle (Zhu et al. Eq. 2), identity and paired losses."""
    return (x - target).abs().mean()


# -- the history of generated images --------------------------------------------------------------------
class ImagePool:
    """The last generated images the discriminator trains on (Shrivastava et al. 2017 §2.3; Zhu et
    al. §4 keep 50). ``query(images, generator)`` → a batch of the same shape (n, ...): while fewer
    than ``size`` images are stored each image is stored and returned; once full, each image is
    returned with probability ½, otherwise a uniformly chosen stored image is returned in its place
    and the new one is stored there. ``size`` 0 returns the images unchanged.

    The stored images are ``images`` ((k, ...), k ≤ size, or None): :meth:`state_dict` /
    :meth:`load_state_dict` carry them through checkpoints."""

    def __init__(self, size: int):
        self.size = size
        self.images: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        out = []
        for img in images:
            k = len(self)
            if k < self.size:
                stored = img.unsqueeze(0).clone()
                self.images = stored if self.images is None else torch.cat([self.images.to(img.device), stored])
                out.append(img)
            elif float(torch.rand((), generator=generator)) > 0.5:  # the reference code's `p > 0.5`
                j = int(torch.randint(self.size, (), generator=generator))
                pool = self.images.to(img.device)  # type: ignore[union-attr]
                out.append(pool[j].clone())
                pool[j] = img
                self.images = pool
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.images is None else {"images": self.images.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images = state.get("images")
        self.images = None if images is None else images.clone()


def _check_cycle_model(model: nn.Module, task: str, name: str) -> None:
    gen, dis = getattr(model, "generator", None), getattr(model, "discriminator", None)
    if not (isinstance(gen, nn.ModuleDict) and {"G", "F"} <= set(gen) and callable(getattr(model, "translate", None))):
        raise ConfigError(
            f"model.name: '{name}' is not a two-generator translation model (G: A → B, F: B → A, translate); "
            f"task '{task}' trains cyclegan"
        )
    if task == "cyclegan" and not (isinstance(dis, nn.ModuleDict) and {"D_A", "D_B"} <= set(dis)):
        raise ConfigError(f"model.name: '{name}' has no discriminators D_A, D_B; task 'cyclegan' trains cyclegan")


class _TranslationTask(Task):
    """What both translation tasks share: the model check and the scores against the true pairing."""

    losses = ("l1",)
    default_loss = "l1"
    metrics = {
        "a2b_l1": MeanAbsoluteError,
        "a2b_psnr": PSNR,
        "b2a_l1": MeanAbsoluteError,
        "b2a_psnr": PSNR,
        "identity_l1": MeanAbsoluteError,
        "identity_psnr": PSNR,
        "cycle_a_l1": MeanAbsoluteError,
        "cycle_b_l1": MeanAbsoluteError,
    }
    default_metric = "a2b_l1"
    has_custom_step = True

    def build_model(self, spec: ModelSpec) -> nn.Module:
        model = super().build_model(spec)
        _check_cycle_model(model, self.name, spec.name)
        data = tuple(self.info.input_shape)
        if tuple(model.input_shape) != data:  # fully convolutional: another size would train without complaint
            raise ConfigError(
                f"model.in_shape: {tuple(model.input_shape)} does not match data set '{self.info.name}' {data}; "
                "drop the override"
            )
        return model

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        """Scores of G and F against the true pairing y = T(x) of a paired split (data units)."""
        m = self.new_metrics()
        G, Fn = model.generator["G"], model.generator["F"]  # noqa: N806 - the paper's names
        for batch in batches:
            a, b = batch.x.float(), batch.y.float()  # b = T(a): val and test are paired
            a_net, b_net = a * 2 - 1, b * 2 - 1
            fake_b = ((G(a_net) + 1) / 2).float()
            fake_a = ((Fn(b_net) + 1) / 2).float()
            rec_a = ((Fn(fake_b * 2 - 1) + 1) / 2).float()
            rec_b = ((G(fake_a * 2 - 1) + 1) / 2).float()
            n, numel = len(a), a.numel()
            for key, pred, target in (("a2b", fake_b, b), ("b2a", fake_a, a), ("identity", a, b)):
                m[f"{key}_l1"].update((pred - target).abs().sum(), numel)
                m[f"{key}_psnr"].update(psnr_per_image(pred.clamp(0, 1), target).sum(), n)
            m["cycle_a_l1"].update((rec_a - a).abs().sum(), numel)
            m["cycle_b_l1"].update((rec_b - b).abs().sum(), numel)
        return m


@register_task
class CycleGANTask(_TranslationTask):
    name = "cyclegan"
    losses = ("lsgan",)
    default_loss = "lsgan"
    # λ of the cycle loss (§4), the identity loss's weight as a fraction of λ (§5.2), the history size (§4)
    default_options = {"lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50}

    def __init__(self, spec: Any, info: DatasetInfo, seed: int = 0):
        super().__init__(spec, info, seed)
        o = self.options
        for key in ("lambda_cycle", "lambda_identity"):
            if o[key] < 0:
                raise ConfigError(f"task.options.{key}: {o[key]} < 0; a loss weight is ≥ 0 (0 switches the term off)")
        if not 0 <= o["pool_size"] <= MAX_POOL:
            raise ConfigError(
                f"task.options.pool_size: {o['pool_size']} is outside 0 … {MAX_POOL:,} (the paper keeps 50; 0: none)"
            )
        self.pools = {"fake_a": ImagePool(o["pool_size"]), "fake_b": ImagePool(o["pool_size"])}

    def param_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": list(model.generator.parameters()),
            "discriminator": list(model.discriminator.parameters()),
        }

    def generator_losses(self, model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms of L_G (module docstring) for a, b in [−1, 1], plus the translations G(a), F(b)."""
        G, Fn = model.generator["G"], model.generator["F"]  # noqa: N806
        D_A, D_B = model.discriminator["D_A"], model.discriminator["D_B"]  # noqa: N806
        fake_b, fake_a = G(a), Fn(b)
        terms = {
            "adv": lsgan_g_loss(D_B(fake_b)) + lsgan_g_loss(D_A(fake_a)),
            "cycle": l1(Fn(fake_b), a) + l1(G(fake_a), b),
            "fake_a": fake_a,
            "fake_b": fake_b,
        }
        lam, lam_id = self.options["lambda_cycle"], self.options["lambda_identity"]
        g_loss = terms["adv"] + lam * terms["cycle"]
        if lam_id:
            terms["identity"] = l1(G(b), b) + l1(Fn(a), a)
            g_loss = g_loss + lam_id * lam * terms["identity"]
        terms["g_loss"] = g_loss
        return terms

    def custom_step(self, model: nn.Module, ctx: StepContext) -> dict[str, Any]:
        batch = ctx.next_batch()
        if batch.y is None or batch.y.shape != batch.x.shape:
            raise ConfigError(
                f"data.name: task 'cyclegan' needs batches of two image domains, x (A) and y (B) of one shape; "
                f"'{self.info.name}' gives y {None if batch.y is None else tuple(batch.y.shape)}"
            )
        a, b = batch.x * 2 - 1, batch.y * 2 - 1  # data [0, 1] → the networks' [−1, 1]
        dis = list(model.discriminator.parameters())
        ctx.zero_grad("generator")
        for p in dis:  # gradients through D, not of D, for this step (the reference code's set_requires_grad)
            p.requires_grad_(False)
        try:
            with ctx.autocast():
                t = self.generator_losses(model, a, b)
            ctx.backward(t["g_loss"])
        finally:
            for p in dis:
                p.requires_grad_(True)
        ctx.clip_and_step("generator")

        g = torch.Generator().manual_seed(derive_seed(ctx.seed, ctx.step, _POOL_SALT))
        fake_b = self.pools["fake_b"].query(t["fake_b"].detach(), g)
        fake_a = self.pools["fake_a"].query(t["fake_a"].detach(), g)
        ctx.zero_grad("discriminator")
        with ctx.autocast():
            d_b = lsgan_d_loss(model.discriminator["D_B"](b), model.discriminator["D_B"](fake_b))
            d_a = lsgan_d_loss(model.discriminator["D_A"](a), model.discriminator["D_A"](fake_a))
        ctx.backward(d_a + d_b)
        ctx.clip_and_step("discriminator")
        logs = {k: t[k].detach() for k in ("g_loss", "adv", "cycle", "identity") if k in t}
        return {**logs, "d_loss": (d_a + d_b).detach(), "d_a": d_a.detach(), "d_b": d_b.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"pools": {k: pool.state_dict() for k, pool in self.pools.items() if len(pool)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("pools", {})
        for k, pool in self.pools.items():
            pool.load_state_dict(saved.get(k, {}))


@register_task
class PairedTranslationTask(_TranslationTask):
    """The upper bound of the comparison: G and F trained on the true pairs with L1 alone."""

    name = "translation_paired"
    # runs trained before commit bb1d42f built the model with D_A and D_B and saved them untrained
    retired_weights = ("discriminator.D_A.", "discriminator.D_B.")

    def __init__(self, spec: Any, info: DatasetInfo, seed: int = 0):
        if self.name not in info.tasks and "cyclegan" in info.tasks:
            raise ConfigError(
                f"task.name: task 'translation_paired' trains on true pairs, but data set '{info.name}' is unpaired "
                "here; set data.options.paired=true"
            )
        super().__init__(spec, info, seed)

    def data_hints(self) -> dict[str, Any]:
        # G and F alone: no discriminator is built, so none (untrained) is saved in a checkpoint
        return {**super().data_hints(), "discriminators": False}

    def _check_hint(self, key: str, given: Any, data: Any) -> None:
        if key == "discriminators" and given:
            raise ConfigError(
                "model.discriminators: task 'translation_paired' trains G and F alone (L1 on the true pairs), "
                "no discriminator; drop the override"
            )
        super()._check_hint(key, given, data)

    def param_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(model.generator.parameters())}

    def custom_step(self, model: nn.Module, ctx: StepContext) -> dict[str, Any]:
        batch = ctx.next_batch()
        a, b = batch.x * 2 - 1, batch.y * 2 - 1  # b = T(a): paired
        ctx.zero_grad("generator")
        with ctx.autocast():
            a2b = l1(model.generator["G"](a), b)
            b2a = l1(model.generator["F"](b), a)
        loss = a2b + b2a
        ctx.backward(loss)
        ctx.clip_and_step("generator")
        return {"loss": loss.detach(), "a2b": a2b.detach(), "b2a": b2a.detach()}
