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
from archlab.layers.conv import ConvNormAct, DropPath, LayerNorm2d, SqueezeExcite, drop_path, make_divisible

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
    "ConvNormAct",
    "DropPath",
    "LayerNorm2d",
    "SqueezeExcite",
    "drop_path",
    "make_divisible",
]
