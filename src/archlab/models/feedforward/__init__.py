"""Feedforward family: perceptron, logistic regression, multilayer perceptron."""

from archlab.models.feedforward.linear import LinearClassifier, LinearConfig, logistic_regression, perceptron
from archlab.models.feedforward.mlp import MLP, MLPConfig, mlp

__all__ = ["MLP", "LinearClassifier", "LinearConfig", "MLPConfig", "logistic_regression", "mlp", "perceptron"]
