"""``archlab compare``: several models, one data set, one budget, N seeds, one table.

Each (model, seed) is an ordinary training run (its own run dir inside the compare dir), built
from the shipped recipe ``<data>/<model>`` when there is one and otherwise from the data set's
default recipe with the model swapped in (on a bundled UCR/UEA set: ``ucr/<model>`` or
``ucr/default``, Fawaz et al.'s protocol for any set). Every model gets the same optimiser step budget,
batch size and data split; only the recipe's model-specific learning rate may differ.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archlab.config import Recipe
from archlab.data import dataset_info
from archlab.engine.rundir import new_run_dir
from archlab.experiments.runs import RunSpec, check_runs, default_jobs, recipe_on, spec, train_runs
from archlab.registry import get_model_entry
from archlab.report import write_compare_report
from archlab.tasks import TASKS
from archlab.utils.errors import ConfigError
from archlab.utils.io import atomic_write_json

# the MNIST-1D inductive-bias comparison (Greydanus & Kobak 2024, Table 1 and Fig. 3)
INDUCTIVE_BIAS_MODELS = ["logistic_regression", "mlp", "cnn1d", "gru", "lstm", "signal_transformer"]
LABELS = {
    "logistic_regression": "logistic regression",
    "mlp": "MLP",
    "cnn1d": "CNN",
    "gru": "GRU",
    "lstm": "LSTM",
    "signal_transformer": "Transformer",
}


def recipe_for(model: str, data: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """The shipped ``<data>/<model>`` recipe, or ``<data>/default`` with the model swapped in; on a
    bundled UCR/UEA set without either, ``ucr/<model>`` or ``ucr/default`` with ``data.name=<data>``."""
    get_model_entry(model)  # unknown model → UnknownModelError with close names
    dataset_info(data)  # unknown data → UnknownDatasetError
    return recipe_on(data, model, overrides)


def compare_runs(
    models: list[str], data: str, seeds: list[int], overrides: dict[str, Any] | None = None
) -> tuple[dict[str, Recipe], list[RunSpec]]:
    """Every model's recipe and the (model, seed) runs; refuses models whose budgets differ."""
    if not models:
        raise ConfigError("compare: name at least one model")
    if len(set(models)) != len(models):
        raise ConfigError("compare: a model is named twice")
    recipes = {m: recipe_for(m, data, overrides) for m in models}
    budgets = {m: r.budget.model_dump() for m, r in recipes.items()}
    if len({str(b) for b in budgets.values()}) > 1:
        raise ConfigError(f"compare: recipes disagree on the budget {budgets}; pass budget.steps=N to align them")
    tasks = {m: r.task.name for m, r in recipes.items()}
    if len(set(tasks.values())) > 1:  # one table scores one metric: the tasks' metrics must agree
        shown = ", ".join(f"{m}: {t}" for m, t in tasks.items())
        raise ConfigError(
            f"compare: the models' recipes train different tasks ({shown}); one table compares one task — "
            "compare models of one task, or set task.name=... for all"
        )
    return recipes, [spec(m, seed, recipes[m], f"{m}-s{seed}") for m in models for seed in seeds]


def compare_metric(task: str) -> str:
    """The metric a compare table shows for ``task``: accuracy where the task reports it
    (classification, node/graph classification), else RMSE (regression), else the task's own
    default (``loss`` for language models and autoencoders)."""
    metrics = TASKS.get(task).metrics
    for name in ("accuracy", "rmse"):
        if name in metrics:
            return name
    return TASKS.get(task).default_metric


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def compare_record(
    out: Path,
    data: str,
    recipes: dict[str, Recipe],
    seeds: list[int],
    summaries: dict[tuple[str, int], dict[str, Any]],
    *,
    title: str | None,
    published: dict[str, str] | None,
    wall_time_s: float,
    workers: int,
) -> dict[str, Any]:
    """The compare table from the runs' summaries; writes ``compare.json`` and ``report.html``."""
    models = list(recipes)
    metric = compare_metric(recipes[models[0]].task.name)
    rows = []
    for m in models:
        ss = [summaries[m, seed] for seed in seeds]
        test_keys = ss[0]["test"].keys()
        rows.append(
            {
                "model": m,
                "label": LABELS.get(m, m),
                "family": ss[0]["family"],
                "params": ss[0]["params"],
                "flops_per_example": ss[0]["flops_per_example"],
                "runs": [f"{m}-s{seed}" for seed in seeds],
                "test": {k: _stats([s["test"][k] for s in ss]) for k in test_keys},
                "wall_time_s": _stats([s["wall_time_s"] for s in ss]),
                "published": (published or {}).get(LABELS.get(m, m)) or (published or {}).get(m),
            }
        )
    record = {
        "kind": "compare",
        "title": title or f"{', '.join(models)} on {data}",
        "dataset": data,
        "metric": metric,
        "budget": recipes[models[0]].budget.model_dump(),
        "batch_size": recipes[models[0]].data.batch_size,
        "augment": sorted({a for r in recipes.values() for a in r.data.augment}),
        "seeds": list(seeds),
        "wall_time_s": round(wall_time_s, 2),
        "workers": workers,
        "models": rows,
    }
    atomic_write_json(out / "compare.json", record)
    write_compare_report(out)
    return record


def run_compare(
    models: list[str],
    data: str,
    *,
    seeds: list[int],
    overrides: dict[str, Any] | None = None,
    runs_dir: str | Path = "runs",
    out_dir: Path | None = None,
    title: str | None = None,
    published: dict[str, str] | None = None,
    jobs: int | None = None,
    on_start: Callable[[Path], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every model × seed with the same budget; write compare.json and report.html.

    Every model's recipe is built and probed (data, task, model, one loss) before the compare dir
    is created, so a bad model/data pair fails with one line and leaves nothing behind."""
    recipes, runs = compare_runs(models, data, seeds, overrides)
    costs: dict[str, float] = {}
    steps = check_runs(runs, costs)  # loads the data too: a download happens before the workers start
    out = out_dir or new_run_dir(runs_dir, f"compare-{data}")
    if on_start:
        on_start(out)
    workers = max(1, min(jobs or default_jobs(), len(runs)))
    t0 = time.perf_counter()
    summaries = train_runs(out, runs, steps=steps, jobs=workers, progress=progress, checked=True, costs=costs)
    record = compare_record(
        out,
        data,
        recipes,
        seeds,
        summaries,
        title=title,
        published=published,
        wall_time_s=time.perf_counter() - t0,
        workers=workers,
    )
    record["dir"] = str(out)
    return record
