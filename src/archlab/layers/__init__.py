"""Building blocks shared by several families. Never imports models, data or engine."""

from archlab.layers.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    LeakyReLU,
    PReLU,
    ReLU,
    Sigmoid,
    Swish,
    Tanh,
    get_activation,
)

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "LeakyReLU",
    "PReLU",
    "ReLU",
    "Sigmoid",
    "Swish",
    "Tanh",
    "get_activation",
]
