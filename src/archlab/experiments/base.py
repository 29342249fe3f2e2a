"""The experiment framework: a claim from the literature, a sweep of recipes, a verdict in words.

An experiment is a registered class with a ``name``, the ``claim`` it tests, typed ``Options``
(a pydantic model: what ``archlab experiment NAME --set KEY=VALUE`` may change) and three steps:
``settings`` (the options resolved, with the quick or full defaults), ``runs`` (the ordinary
training runs it needs, one run dir each inside the experiment's directory) and ``analyse``
(measurements on the trained runs, figures, the table and the verdict). :func:`run_experiment`
checks the options, then builds and probes every run's recipe before the directory exists, trains
the runs (:func:`~archlab.experiments.runs.train_runs`) and writes ``experiment.json`` and
``report.html``; ``archlab report`` gathers them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archlab.engine.rundir import new_run_dir
from archlab.experiments.runs import RunSpec, adopt, check_runs, default_jobs, match_finished, train_runs
from archlab.registry import Registry
from archlab.report import write_experiment_report
from archlab.utils.errors import ConfigError, did_you_mean
from archlab.utils.io import atomic_write_json

RUN_FIELDS = ("recipe_hash", "seed", "steps", "status", "wall_time_s")  # of each run's summary, in experiment.json


@dataclass
class ExperimentResult:
    title: str
    verdict: str  # the claim's fate in words, with the numbers that decide it
    columns: list[str]
    rows: list[list[Any]]
    figures: list[str] = field(default_factory=list)  # paths relative to the experiment dir
    extra: dict[str, Any] = field(default_factory=dict)
    supported: bool | None = None  # did the measurement support the claim (None: mixed)


@dataclass
class Trained:
    """What training the runs produced, handed to ``Experiment.analyse``."""

    summaries: dict[tuple[str, int], dict[str, Any]]  # summary.json of each run, by (key, seed)
    wall_time_s: float  # training wall time of all runs together
    workers: int  # parallel training processes used


class ExperimentOptions(BaseModel):
    """``--set KEY=VALUE`` options; ``None`` means the experiment's default (quick or full)."""

    model_config = ConfigDict(extra="forbid")

    jobs: int | None = Field(None, ge=1)  # parallel training processes (also ``--jobs``)


class Experiment:
    name: ClassVar[str]
    title: ClassVar[str]
    claim: ClassVar[str]
    Options: ClassVar[type[ExperimentOptions]] = ExperimentOptions

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """What ``--set KEY=VALUE`` may set (besides ``jobs``)."""
        return tuple(k for k in cls.Options.model_fields if k != "jobs")

    def settings(self, options: Any, quick: bool) -> Any:
        """The options with every default resolved (quick or full)."""
        return options

    def check(self, s: Any) -> None:
        """Checks across options that their types cannot express (raise ConfigError)."""

    def runs(self, s: Any) -> list[RunSpec]:
        """The training runs the experiment needs (their recipes are checked before anything runs)."""
        return []

    def analyse(self, out_dir: Path, s: Any, trained: Trained) -> ExperimentResult:
        raise NotImplementedError

    def progress(self, line: str) -> None:
        """A progress line from ``analyse`` (a long sampling pass, say): :func:`run_experiment` hands it to
        its caller's ``progress``; silent otherwise."""


EXPERIMENTS: Registry[type[Experiment]] = Registry("experiment")


def register_experiment(cls: type[Experiment]) -> type[Experiment]:
    EXPERIMENTS.add(cls.name, cls)
    return cls


def list_experiments() -> list[str]:
    return EXPERIMENTS.names()


def figure_paths(out_dir: Path) -> list[str]:
    """The PNGs an experiment wrote under ``out_dir/figures``, relative to ``out_dir``, sorted."""
    return sorted(str(p.relative_to(out_dir)) for p in (out_dir / "figures").glob("*.png"))


def pm(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    """``mean ± std`` of ``values`` × ``scale`` (just the mean for one value)."""
    mean = statistics.fmean(values) * scale
    return (
        f"{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"
        if len(values) > 1
        else f"{mean:.{digits}f}"
    )


def parse_options(name: str, options: dict[str, Any] | None) -> ExperimentOptions:
    """Validate ``options`` against experiment ``name``'s ``Options``: one ConfigError line naming
    the key (an unknown key gets a did-you-mean)."""
    cls = EXPERIMENTS.get(name)
    try:
        return cls.Options.model_validate(options or {})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            valid = cls.option_names()
            raise ConfigError(
                f"experiment {name}: unknown option '{loc}'{did_you_mean(loc, valid)}; "
                f"valid: {', '.join(valid) or '(none)'}"
            ) from None
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        got_s = "" if isinstance(got, dict) or not loc else f" (got {got!r})"
        raise ConfigError(f"experiment {name}: bad option value ({loc + ': ' if loc else ''}{msg}{got_s})") from None


def run_experiment(
    name: str,
    *,
    runs_dir: str | Path = "runs",
    quick: bool = False,
    options: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    jobs: int | None = None,
    on_start: Callable[[Path], None] | None = None,
    progress: Callable[[str], None] | None = None,
    reuse: Sequence[str | Path] = (),
) -> tuple[Path, ExperimentResult]:
    """Run experiment ``name`` in a new directory under ``runs_dir`` (or ``out_dir``): options,
    then every run's recipe (data, task, model, start-up probe) are checked first, so bad input
    fails with one ConfigError line and no directory. ``progress`` receives progress lines.
    ``reuse``: directories of finished runs (run dirs, experiment or compare dirs, runs dirs); a run
    whose recipe one of them trained exactly (name and description aside) and whose checkpoints are
    all there and intact is copied in, not trained again (:func:`~archlab.experiments.runs.match_finished`),
    and ``experiment.json`` names its source (an absolute path)."""
    cls = EXPERIMENTS.get(name)
    opts = parse_options(name, options)
    exp = cls()
    s = exp.settings(opts, quick)
    exp.check(s)
    runs = exp.runs(s)
    reused = match_finished(runs, reuse, notice=progress)
    costs: dict[str, float] = {}
    steps = check_runs(runs, costs)
    out = out_dir or new_run_dir(runs_dir, f"{name}{'-quick' if quick else ''}")
    if on_start:
        on_start(out)
    t0 = time.perf_counter()
    summaries = {}
    for run in runs:
        if run.name in reused:
            summaries[run.key, run.seed] = adopt(reused[run.name], out / run.name)
            if progress:
                progress(f"{run.name}: reused {reused[run.name]} (the same recipe, trained before)")
    todo = [run for run in runs if run.name not in reused]
    workers = max(1, min(opts.jobs or jobs or default_jobs(), len(todo) or 1))
    if todo:
        summaries |= train_runs(out, todo, steps=steps, jobs=workers, progress=progress, checked=True, costs=costs)
    trained = Trained(summaries, time.perf_counter() - t0, workers)
    if progress:
        exp.progress = progress  # type: ignore[method-assign]
        progress("analysing the trained runs")
    result = exp.analyse(out, s, trained)
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
        "runs": {  # what each arm trained, so two invocations can be told apart by more than recipe names
            run.name: {k: summaries[run.key, run.seed].get(k) for k in RUN_FIELDS} for run in runs
        },
        **({"reused_runs": {k: str(v) for k, v in reused.items()}} if reused else {}),
        **result.extra,
    }
    atomic_write_json(out / "experiment.json", record)
    write_experiment_report(out)
    return out, result
