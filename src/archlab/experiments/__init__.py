"""The literature's claims as runnable experiments (sweeps of recipes + a verdict)."""

from archlab.experiments import (
    cnn,  # noqa: F401,E402  (registers the CNN experiments)
    rnn,  # noqa: F401,E402  (registers the recurrent experiments)
    seq2seq,  # noqa: F401,E402  (registers the seq2seq experiments)
)
from archlab.experiments.base import (
    EXPERIMENTS,
    Experiment,
    ExperimentResult,
    list_experiments,
    register_experiment,
    run_experiment,
)
from archlab.experiments.compare import INDUCTIVE_BIAS_MODELS, LABELS, recipe_for, run_compare

__all__ = [
    "EXPERIMENTS",
    "INDUCTIVE_BIAS_MODELS",
    "LABELS",
    "Experiment",
    "ExperimentResult",
    "list_experiments",
    "recipe_for",
    "register_experiment",
    "run_compare",
    "run_experiment",
]
