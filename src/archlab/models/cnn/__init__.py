"""Convolutional family."""

from archlab.models.cnn.cnn1d import CNN1d, CNN1dConfig, cnn1d

__all__ = ["CNN1d", "CNN1dConfig", "cnn1d"]
