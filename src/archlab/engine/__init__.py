"""Engine: the one training loop (checkpoint/resume, precision, logging) for every family."""

from archlab.engine.trainer import Trainer, evaluate_run, load_summary

__all__ = ["Trainer", "evaluate_run", "load_summary"]
