"""Recurrent family."""

from archlab.models.rnn.gru import GRUClassifier, GRUClassifierConfig, gru

__all__ = ["GRUClassifier", "GRUClassifierConfig", "gru"]
