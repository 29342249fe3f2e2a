"""Recurrent family."""

from archlab.models.rnn.gru import GRUClassifier, GRUClassifierConfig, gru
from archlab.models.rnn.lstm import LSTMClassifier, LSTMClassifierConfig, lstm
from archlab.models.rnn.rnn import RNNClassifier, RNNClassifierConfig, rnn

__all__ = [
    "GRUClassifier",
    "GRUClassifierConfig",
    "LSTMClassifier",
    "LSTMClassifierConfig",
    "RNNClassifier",
    "RNNClassifierConfig",
    "gru",
    "lstm",
    "rnn",
]
