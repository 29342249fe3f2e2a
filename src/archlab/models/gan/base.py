"""What every GAN of the family shares: the config options of the data's units, the output
tuple, :class:`GANBase` (generator + discriminator + ``latent_dim`` + ``generate``/``sample``) and
the DCGAN weight initialisation.

Letters: B batch, K latent_dim, z ~ N(0, I_K) the latent code, G the generator, D the discriminator
(a critic for the Wasserstein losses), x an example in the data's own units (Fashion-MNIST: grey
levels in [0, 1]; 2-D mixtures: points in the plane), u the same example in the network's units.

Units. ``G`` and ``D`` work in the network's units u: G ends in ``output`` (tanh: u ∈ [−1, 1], the
DCGAN convention, Radford et al. 2016 §3 "scaled to the range of the tanh"; sigmoid: u ∈ [0, 1],
Goodfellow et al. 2014's MNIST generator; linear: u unbounded, points in the plane). The model maps
between the two, so a caller only ever sees data units:

    tanh      x = lo + (u + 1)/2 · (hi − lo)        u = 2 (x − lo)/(hi − lo) − 1
    sigmoid   x = lo + u · (hi − lo)                u = (x − lo)/(hi − lo)
    linear    x = u                                 u = x

with ``data_range = (lo, hi)``. The GAN task feeds D ``to_network(x)`` for real data and G's output
unchanged for fakes, so both sides of D's input are in the same units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from archlab.registry.config import ModelConfig, PositiveInt, Shape
from archlab.utils.seed import randn_on
from archlab.utils.shapes import check_shape

Output = Literal["tanh", "sigmoid", "linear"]


class GANOutput(NamedTuple):
    """``forward(z)`` of a GAN: ``fake`` (B, *in_shape) = G(z) in data units and ``logit`` (B, 1) =
    D(G(z)), the discriminator's (critic's) raw output on it."""

    fake: torch.Tensor
    logit: torch.Tensor


@dataclass
class GANConfig(ModelConfig):
    """Options every GAN shares; each architecture's config adds its own."""

    in_shape: Shape = (1, 28, 28)  # one example without the batch: (C, H, W) or (F,)
    latent_dim: PositiveInt = 100  # K, the size of z ~ N(0, I)
    output: Output = "tanh"  # G's last activation, which fixes the network's units (module docstring)
    data_range: tuple[float, float] = (0.0, 1.0)  # (lo, hi) of the data for a tanh/sigmoid output


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2016 §4: "All weights were initialized from a zero-centered Normal distribution
    with standard deviation 0.02"; batch-norm scales N(1, 0.02) and shifts 0, as in pytorch/examples'
    dcgan/main.py (``weights_init``). Apply with ``model.apply(dcgan_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GANBase(nn.Module):
    """The family's interface (the GAN task and the sampling tools use only this):

    * ``generator``: z (B, K) → u (B, *in_shape), the network's units; ``discriminator``:
      u (B, *in_shape) → (B, 1) raw scores (logits for the cross-entropy losses, critic values for
      the Wasserstein and hinge losses). They are the task's parameter groups.
    * ``latent_dim``; ``to_data(u)`` / ``to_network(x)`` (module docstring);
    * ``generate(z)`` (B, K) → x (B, *in_shape) in data units; in eval mode it uses the task's
      averaged generator when one is attached (:meth:`attach_sampling_generator`);
    * ``sample(n, generator=None)`` → (n, *in_shape): z ~ N(0, I) from ``generator`` (a CPU
      ``torch.Generator``; the global RNG when None), in eval mode, without gradients, on the
      model's device; the model's mode is restored afterwards;
    * ``forward(z)`` → :class:`GANOutput` (G(z) in data units, D's score on it): one pass through
      both networks, what FLOP counting and the registry's smoke test call.

    Raises :class:`~archlab.utils.errors.ShapeError` for a z of the wrong shape.
    """

    config: GANConfig
    generator: nn.Module
    discriminator: nn.Module

    def _init_common(self, config: GANConfig) -> None:
        lo, hi = config.data_range
        if config.output != "linear" and not hi > lo:
            raise ValueError(f"data_range: (lo, hi) needs lo < hi, got {tuple(config.data_range)}")
        self._init_interface(config)

    def _init_interface(self, config: Any) -> None:
        """The interface's attributes, for every GAN of the family (a config with ``in_shape`` and
        ``latent_dim``): ``config``, ``input_shape``/``input_spec``, ``latent_dim``, no averaged generator."""
        self.config = config
        self.input_shape = tuple(config.in_shape)  # one example of the data (what D reads, G writes)
        self.input_spec = self.input_shape
        self.latent_dim = config.latent_dim
        self.__dict__["_sampling_generator"] = None  # not a submodule: no state_dict entry, no parameters

    # -- units -------------------------------------------------------------------------------
    def to_data(self, u: torch.Tensor) -> torch.Tensor:
        """Network units → data units (module docstring)."""
        lo, hi = self.config.data_range
        if self.config.output == "tanh":
            return lo + (u + 1) * (0.5 * (hi - lo))
        if self.config.output == "sigmoid":
            return lo + u * (hi - lo)
        return u

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Data units → network units (the inverse of :meth:`to_data`)."""
        lo, hi = self.config.data_range
        if self.config.output == "tanh":
            return (x - lo) * (2.0 / (hi - lo)) - 1
        if self.config.output == "sigmoid":
            return (x - lo) / (hi - lo)
        return x

    # -- the interface -----------------------------------------------------------------------
    def attach_sampling_generator(self, module: nn.Module | None) -> None:
        """The generator that ``generate``/``sample`` use in eval mode (the GAN task's exponential
        moving average of G's weights); None: G itself. Held outside the module tree, so it is
        neither a parameter nor in ``state_dict`` (the task saves it as its own state)."""
        self.__dict__["_sampling_generator"] = module

    def _sampler(self, device: torch.device) -> nn.Module:
        ema = self.__dict__.get("_sampling_generator")
        if ema is None or self.training:
            return self.generator
        if next(ema.parameters()).device != device:
            ema.to(device)
        return ema.eval()

    def generator_output(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z) in the network's units, from the sampling generator (the averaged one when attached and
        the model is in eval mode): (B, K) → (B, *network shape). ``generator`` draws any noise G adds
        itself (StyleGAN's per-pixel noise); a model without such noise ignores it. The GAN task's
        evaluation goes through here with its own seeded generator, so its metrics are a function of
        the run's seed, never of the global RNG's state."""
        return self._sampler(z.device)(z)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """x = to_data(G(z)): (B, K) → (B, *in_shape), data units."""
        check_shape(z, (None, self.latent_dim), "z")
        return self.to_data(self._sampler(z.device)(z))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D(to_network(x)): (B, *in_shape) data units → (B, 1) raw scores."""
        check_shape(x, (None, *self.input_spec))
        return self.discriminator(self.to_network(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, **kw) -> torch.Tensor:
        """n examples in data units, (n, *in_shape), from z ~ N(0, I) drawn with ``generator`` (on any device:
        a seeded CPU generator gives the same samples on every device; ``utils.seed.randn_on``); ``kw`` go
        to :meth:`generate` (StyleGAN's ψ; a model whose ``generate`` takes none raises TypeError)."""
        if n < 1:
            raise ValueError(f"n: need at least one sample, got {n}")
        device = next(self.parameters()).device
        z = randn_on((n, self.latent_dim), generator, device)
        was = self.training
        self.eval()
        try:
            return self.generate(z, **kw)
        finally:
            self.train(was)

    def forward(self, z: torch.Tensor) -> GANOutput:
        check_shape(z, (None, self.latent_dim), "z")
        u = self.generator(z)
        return GANOutput(self.to_data(u), self.discriminator(u))

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        """z ~ N(0, I) of shape (batch, K) on the model's device: what ``forward`` takes."""
        return (torch.randn(batch, self.latent_dim, device=next(self.parameters()).device),)


def stages(side: int) -> tuple[int, int]:
    """(n, s₀): how many times a side halves down to the base s₀ (while even and ≥ 8), 28 → (2, 7)."""
    n = 0
    while side % 2 == 0 and side >= 8:
        side //= 2
        n += 1
    return n, side


def square_stages(in_shape: tuple[int, ...], model: str, sides: str) -> tuple[int, int]:
    """:func:`stages` of a square (C, H, W) image whose side halves at least once down to a base
    side s₀ ≥ 4 — the stride-2 stages of DCGAN's and SNGAN's networks; ``sides`` lists good ones for the
    message. Raises ValueError (one line, naming ``model``) for any other shape."""
    _, h, w = in_shape
    n, s0 = stages(h)
    if h != w or n < 1 or s0 < 4:
        raise ValueError(
            f"in_shape: {model} needs square images whose side halves at least once down to a base side ≥ 4 "
            f"({sides} …), got {h}×{w}"
        )
    return n, s0


def flat_size(shape: tuple[int, ...]) -> int:
    """D = prod(shape), the number of values in one example."""
    return math.prod(shape)
