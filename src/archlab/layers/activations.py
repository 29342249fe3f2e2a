"""Activation functions from the literature, each with two paths (the pattern of layers/recurrent.py):

* ``impl="fused"`` (default): torch's own kernel (``torch.sigmoid``, ``F.gelu``, ``F.elu`` …). Train
  with this: one kernel forward and backward instead of a chain of elementwise ops.
* ``impl="reference"``: the paper's formula in elementwise torch ops (``exp``, ``expm1``, ``erf``,
  ``where``), never a call to the ``torch.nn.functional`` version of the same activation. Read this.

The tests check both paths against the closed form in float64, and against each other to 1e-6 in
values and gradients.

Numerical care, kept visible:

* σ and tanh are evaluated on e^{-|x|} ∈ (0, 1], which never overflows, so σ(±100) is exactly
  0/1 and its gradient is finite.
* ``torch.where`` back-propagates into *both* branches (zero times the unused branch's local
  gradient), so a branch that overflows (e^{x} for large x) would turn the gradient into NaN.
  Every branch below is finite on the whole real line.
* At a kink (x = 0) the derivative is the one ``torch.nn`` uses: ReLU'(0) = 0,
  LeakyReLU'(0) = PReLU'(0) = a, ELU'(0) = α.

Letter legend: B batch, C channels, * any further dims; x input, a negative slope, α ELU
saturation, β Swish temperature, σ logistic sigmoid, Φ standard normal CDF.
Shapes: every activation maps (B, *) → (B, *) elementwise; PReLU with ``num_parameters = C``
reads the channel from dim 1, i.e. (B, C, *) (or dim 0 for a 1-D input, as ``nn.PReLU``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from archlab.utils.errors import ConfigError, ShapeError, did_you_mean

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "IMPLS",
    "LeakyReLU",
    "PReLU",
    "ReLU",
    "Sigmoid",
    "Swish",
    "Tanh",
    "get_activation",
    "sigmoid",
    "tanh",
]


Impl = Literal["fused", "reference"]
IMPLS: tuple[str, ...] = get_args(Impl)


# -- helpers ---------------------------------------------------------------------------------
def _check_impl(impl: str) -> Impl:
    if impl not in IMPLS:
        raise ConfigError(f"activation impl: must be one of {', '.join(IMPLS)}, got '{impl}'")
    return impl  # type: ignore[return-value]


class _Activation(nn.Module):
    """What the activations share: the ``impl`` switch between torch's kernel and the formula."""

    def __init__(self, impl: Impl = "fused"):
        super().__init__()
        self.impl = _check_impl(impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused(x) if self.impl == "fused" else self.reference(x)

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _extra(self) -> str:
        return ""

    def extra_repr(self) -> str:
        extra = self._extra()
        impl = f"impl='{self.impl}'" if self.impl != "fused" else ""
        return ", ".join(part for part in (extra, impl) if part)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    r"""Logistic sigmoid σ(x) = 1 / (1 + e^{-x}), stable for every x.

    With e = e^{-|x|}: σ(x) = 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0 (the same value,
    multiplied through by e^{x}). ``|x|`` is taken with ``where`` rather than ``abs`` so that its
    gradient at 0 is 1, not 0, and σ'(0) comes out as 1/4.
    """
    pos = x >= 0
    e = torch.exp(-torch.where(pos, x, -x))  # e^{-|x|} ∈ (0, 1]
    return torch.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: torch.Tensor) -> torch.Tensor:
    r"""tanh(x) = (e^{x} − e^{-x}) / (e^{x} + e^{-x}), stable for every x.

    With e = e^{-2|x|}: tanh(|x|) = (1 − e)/(1 + e), and tanh is odd. ``1 − e`` is computed as
    ``-expm1(-2|x|)`` so small x keep full relative precision (tanh(1e-8) = 1e-8, not 0).
    """
    pos = x >= 0
    a = torch.where(pos, x, -x)  # |x|, with d|x|/dx = 1 at 0 so tanh'(0) = 1
    t = -torch.expm1(-2.0 * a) / (1.0 + torch.exp(-2.0 * a))  # tanh(|x|)
    return torch.where(pos, t, -t)


# -- saturating ------------------------------------------------------------------------------
class Sigmoid(_Activation):
    r"""Logistic sigmoid σ(x) = 1 / (1 + e^{-x}).

    The squashing unit of early back-propagation networks (Rumelhart, Hinton & Williams, Nature
    1986, "Learning representations by back-propagating errors"). σ'(x) = σ(x)(1 − σ(x)) ≤ 1/4,
    which is why deep sigmoid stacks suffer vanishing gradients.

    Shapes: (B, *) → (B, *).
    """

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid(x)


class Tanh(_Activation):
    r"""Hyperbolic tangent tanh(x) = (e^{x} − e^{-x}) / (e^{x} + e^{-x}) = 2σ(2x) − 1.

    Zero-centred, which LeCun et al. recommend over σ ("Efficient BackProp", 1998, §4.4).
    tanh'(x) = 1 − tanh²(x).

    Shapes: (B, *) → (B, *).
    """

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


# -- rectifiers ------------------------------------------------------------------------------
class ReLU(_Activation):
    r"""Rectified linear unit f(x) = max(0, x) (Nair & Hinton, ICML 2010, "Rectified Linear Units
    Improve Restricted Boltzmann Machines").

    f'(x) = 1[x > 0] (0 at the kink, as in ``nn.ReLU``).

    Shapes: (B, *) → (B, *).
    """

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, torch.zeros_like(x))  # max(0, x)


class LeakyReLU(_Activation):
    r"""Leaky ReLU f(x) = x for x > 0, a·x otherwise (Maas, Hannun & Ng, ICML 2013 workshop,
    "Rectifier Nonlinearities Improve Neural Network Acoustic Models"; the paper uses a = 0.01).

    Args:
        negative_slope: a, the fixed slope for x ≤ 0.

    Shapes: (B, *) → (B, *).
    """

    def __init__(self, negative_slope: float = 0.01, impl: Impl = "fused"):
        super().__init__(impl)
        self.negative_slope = float(negative_slope)

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.negative_slope * x)

    def _extra(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(_Activation):
    r"""Parametric ReLU f(x_c) = max(0, x_c) + a_c·min(0, x_c) with a learnable slope a_c
    (He, Zhang, Ren & Sun, ICCV 2015, "Delving Deep into Rectifiers", arXiv:1502.01852, Eq. 1).

    The paper initialises a_c = 0.25 (§2.1) and uses no weight decay on it. ∂f/∂a_c = min(0, x_c).

    Args:
        num_parameters: 1 (one a shared by all channels, "channel-shared") or C (one per channel,
            "channel-wise").
        init: initial value of every a_c.

    Shapes: (B, C, *) → (B, C, *); a has shape (num_parameters,).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, impl: Impl = "fused"):
        super().__init__(impl)
        if num_parameters < 1:
            raise ConfigError(f"prelu.num_parameters: must be ≥ 1, got {num_parameters}")
        self.num_parameters = int(num_parameters)
        self.weight = nn.Parameter(torch.full((self.num_parameters,), float(init)))  # a, (C,)

    def _slope(self, x: torch.Tensor) -> torch.Tensor:
        """a shaped to broadcast against x: (1, C, 1, …) per channel (dim 1, or dim 0 of a 1-D x)."""
        a = self.weight
        if self.num_parameters > 1:
            c_dim = 1 if x.dim() >= 2 else 0
            if x.dim() == 0 or x.shape[c_dim] != self.num_parameters:
                raise ShapeError(
                    f"PReLU: expected {self.num_parameters} channels in dim {c_dim}, got shape {tuple(x.shape)}"
                )
            shape = [1] * x.dim()
            shape[c_dim] = self.num_parameters
            a = a.view(shape)  # (1, C, 1, …): broadcast over batch and space
        return a

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        a = self._slope(x)
        return F.prelu(x, a.reshape(-1)) if x.dim() >= 2 or self.num_parameters == 1 else torch.where(x > 0, x, a * x)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self._slope(x) * x)  # max(0, x) + a·min(0, x)

    def _extra(self) -> str:
        return f"num_parameters={self.num_parameters}"


class ELU(_Activation):
    r"""Exponential linear unit f(x) = x for x > 0, α(e^{x} − 1) otherwise (Clevert, Unterthiner &
    Hochreiter, ICLR 2016, "Fast and Accurate Deep Network Learning by Exponential Linear Units",
    arXiv:1511.07289, §3).

    Saturates to −α for x → −∞, pushing mean activations towards zero. f'(x) = f(x) + α for x ≤ 0.

    Args:
        alpha: α, the negative saturation value.

    Shapes: (B, *) → (B, *).
    """

    def __init__(self, alpha: float = 1.0, impl: Impl = "fused"):
        super().__init__(impl)
        self.alpha = float(alpha)

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        # expm1 on min(x, 0): exact near 0, and e^{x} cannot overflow in the unused branch
        neg = self.alpha * torch.expm1(torch.clamp(x, max=0.0))
        return torch.where(x > 0, x, neg)

    def _extra(self) -> str:
        return f"alpha={self.alpha}"


# -- smooth, self-gated ----------------------------------------------------------------------
class Swish(_Activation):
    r"""Swish f(x) = x·σ(βx) (Ramachandran, Zoph & Le, 2017, "Searching for Activation
    Functions", arXiv:1710.05941).

    β = 1 is the SiLU (Elfwing, Uchibe & Doya, 2017, arXiv:1702.03118); β → ∞ tends to ReLU and
    β = 0 gives x/2. f'(x) = σ(βx) + βx·σ(βx)(1 − σ(βx)).

    Args:
        beta: β, the initial (or fixed) temperature.
        learnable_beta: make β a trainable scalar parameter (the paper's "Swish" as opposed to
            "Swish-1"); when False β is a plain float and the module has no parameters.

    Shapes: (B, *) → (B, *).
    """

    def __init__(self, beta: float = 1.0, learnable_beta: bool = False, impl: Impl = "fused"):
        super().__init__(impl)
        self.learnable_beta = bool(learnable_beta)
        if self.learnable_beta:
            self.beta = nn.Parameter(torch.tensor(float(beta)))
        else:
            self.beta = float(beta)

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        if not self.learnable_beta and self.beta == 1.0:
            return F.silu(x)  # SiLU, x·σ(x), one kernel
        return x * torch.sigmoid(self.beta * x)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return x * sigmoid(self.beta * x)

    def _extra(self) -> str:
        beta = float(self.beta.detach()) if self.learnable_beta else self.beta
        return f"beta={beta}, learnable_beta={self.learnable_beta}"


class GELU(_Activation):
    r"""Gaussian error linear unit f(x) = x·Φ(x) = ½x(1 + erf(x/√2)) (Hendrycks & Gimpel, 2016,
    "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, §2).

    ``approximate="tanh"`` is the paper's approximation
    f(x) ≈ ½x(1 + tanh(√(2/π)(x + 0.044715x³))), used by BERT and GPT-2.
    f'(x) = Φ(x) + x·φ(x) for the exact form, φ the standard normal density.

    Args:
        approximate: ``"none"`` (exact, with erf) or ``"tanh"``.

    Shapes: (B, *) → (B, *).
    """

    def __init__(self, approximate: str = "none", impl: Impl = "fused"):
        super().__init__(impl)
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"gelu.approximate: must be 'none' or 'tanh', got '{approximate}'")
        self.approximate = approximate

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=self.approximate)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        if self.approximate == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)  # √(2/π)(x + 0.044715x³)
            return 0.5 * x * (1.0 + torch.tanh(inner))
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # x·Φ(x)

    def _extra(self) -> str:
        return f"approximate='{self.approximate}'"


# -- lookup by name --------------------------------------------------------------------------
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "elu": ELU,
    "swish": functools.partial(Swish, beta=1.0, learnable_beta=True),
    "silu": functools.partial(Swish, beta=1.0, learnable_beta=False),
    "gelu": GELU,
    "gelu_tanh": functools.partial(GELU, approximate="tanh"),
    "identity": nn.Identity,
}


def get_activation(name: str, impl: Impl = "fused") -> nn.Module:
    """A fresh activation module by name: ``get_activation("gelu_tanh")``; ``impl="reference"`` for
    the formula instead of torch's kernel.

    Raises :class:`ConfigError` for an unknown name, with close matches and the valid names.
    """
    try:
        ctor = ACTIVATIONS[name]
    except KeyError:
        valid = sorted(ACTIVATIONS)
        raise ConfigError(
            f"activation '{name}': unknown{did_you_mean(name, valid)}; valid: {', '.join(valid)}"
        ) from None
    return ctor(impl=_check_impl(impl))
