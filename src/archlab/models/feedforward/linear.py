"""Linear classifiers: Rosenblatt's perceptron and (multinomial) logistic regression.

Both are one affine map of the flattened input; they differ in how they are trained and read.
The perceptron (Rosenblatt 1958) predicts ``argmax_k s_k`` and is trained with the perceptron
criterion (``task.loss: perceptron``), whose SGD step with learning rate 1 is the classic
update ``w_y += x, w_ŷ −= x`` on a mistake. Logistic regression (Cox 1958; multinomial form)
reads the scores as log-odds through a softmax and is trained with cross-entropy.

Letters: B batch, D = prod(in_shape) input features, K classes.

Equations:
    s = W x + b                      scores, W ∈ R^{K×D}
    perceptron:  ŷ = argmax_k s_k,   L = max_k s_k − s_y
    logistic:    p = softmax(s),     L = −log p_y
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ModelConfig, PositiveInt, Shape
from archlab.utils.shapes import check_shape


@dataclass
class LinearConfig(ModelConfig):
    in_shape: Shape = (40,)  # one example without the batch; flattened to D
    num_classes: PositiveInt = 10  # K
    bias: bool = True


class LinearClassifier(nn.Module):
    """``s = W·flatten(x) + b``.

    Shapes: x (B, *in_shape) → scores (B, K).
    """

    def __init__(self, config: LinearConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = self.input_shape  # flattened into the first weight matrix: every size fixed
        self.fc = nn.Linear(math.prod(config.in_shape), config.num_classes, bias=config.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        return x.flatten(1)  # (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    family="feedforward",
    config=LinearConfig,
    paper="Rosenblatt, The Perceptron: a probabilistic model for information storage (1958)",
    meta={"num_params": 410, "macs": 400},
)
def perceptron(**overrides) -> LinearClassifier:
    """Multiclass perceptron: a linear map trained with the perceptron criterion."""
    return LinearClassifier(LinearConfig(**overrides))


@register_model(
    family="feedforward",
    config=LinearConfig,
    paper="Cox, The regression analysis of binary sequences (1958); multinomial logistic regression",
    meta={"num_params": 410, "macs": 400, "source": "Greydanus & Kobak 2024 (params)"},
)
def logistic_regression(**overrides) -> LinearClassifier:
    """Multinomial logistic regression: a linear map read through a softmax."""
    return LinearClassifier(LinearConfig(**overrides))
