"""The experiment framework: a claim from the literature, a sweep of recipes, a verdict in words.

An experiment is a registered class with a ``name``, the ``claim`` it tests and a ``run``
method that trains whatever it needs (through the ordinary trainer, one run dir each, inside
the experiment's own directory) and returns an :class:`ExperimentResult`. The framework
writes ``experiment.json``, the figures and ``report.html``; ``archlab report`` gathers them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from archlab.engine.rundir import new_run_dir
from archlab.registry import Registry
from archlab.report import write_experiment_report
from archlab.utils.errors import ConfigError, did_you_mean
from archlab.utils.io import atomic_write_json


@dataclass
class ExperimentResult:
    title: str
    verdict: str  # the claim's fate in words, with the numbers that decide it
    columns: list[str]
    rows: list[list[Any]]
    figures: list[str] = field(default_factory=list)  # paths relative to the experiment dir
    extra: dict[str, Any] = field(default_factory=dict)
    supported: bool | None = None  # did the measurement support the claim (None: mixed)


class Experiment:
    name: ClassVar[str]
    title: ClassVar[str]
    claim: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()  # what ``--set KEY=VALUE`` may set (besides jobs)

    def validate(self, *, quick: bool = False, options: dict[str, Any] | None = None) -> None:
        """Check the options (recipes, models, data) before any directory is created."""

    def run(self, out_dir: Path, *, quick: bool = False, options: dict[str, Any] | None = None) -> ExperimentResult:
        raise NotImplementedError


EXPERIMENTS: Registry[type[Experiment]] = Registry("experiment")


def register_experiment(cls: type[Experiment]) -> type[Experiment]:
    EXPERIMENTS.add(cls.name, cls)
    return cls


def list_experiments() -> list[str]:
    return EXPERIMENTS.names()


def figure_paths(out_dir: Path) -> list[str]:
    """The PNGs an experiment wrote under ``out_dir/figures``, relative to ``out_dir``, sorted."""
    return sorted(str(p.relative_to(out_dir)) for p in (out_dir / "figures").glob("*.png"))


def run_experiment(
    name: str,
    *,
    runs_dir: str | Path = "runs",
    quick: bool = False,
    options: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> tuple[Path, ExperimentResult]:
    cls = EXPERIMENTS.get(name)
    allowed = {*cls.options, "jobs", "on_run"}
    for key in options or {}:
        if key not in allowed:
            raise ConfigError(
                f"experiment {name}: unknown option '{key}'{did_you_mean(key, cls.options)}; "
                f"valid: {', '.join(cls.options) or '(none)'}"
            )
    try:
        cls().validate(quick=quick, options=options)
    except (ValueError, TypeError) as e:  # an option of the wrong type, e.g. --set steps=abc
        raise ConfigError(f"experiment {name}: bad option value ({e})") from None
    out = out_dir or new_run_dir(runs_dir, f"{name}{'-quick' if quick else ''}")
    if on_start:
        on_start(out)
    t0 = time.perf_counter()
    result = cls().run(out, quick=quick, options=options or {})
    record = {
        "kind": "experiment",
        "name": name,
        "title": result.title,
        "claim": cls.claim,
        "verdict": result.verdict,
        "supported": result.supported,
        "quick": quick,
        "table": {"columns": result.columns, "rows": result.rows},
        "figures": result.figures,
        "wall_time_s": round(time.perf_counter() - t0, 2),
        **result.extra,
    }
    atomic_write_json(out / "experiment.json", record)
    write_experiment_report(out)
    return out, result
