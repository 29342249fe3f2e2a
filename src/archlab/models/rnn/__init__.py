"""Recurrent family: one architecture per module; importing this package registers them all."""

import importlib
import pkgutil

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

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
