"""Engine: the one training loop (checkpoint/resume, precision, logging) for every family."""

from archlab.engine.trainer import LoadedRun, Trainer, evaluate_run, load_run, load_summary

__all__ = ["LoadedRun", "Trainer", "evaluate_run", "load_run", "load_summary"]
