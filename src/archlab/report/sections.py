"""The sections of a report, read from run files: a compare, an experiment, a single run.

Each ``*_section`` reads one directory's JSON files (a damaged or missing file is a one-line
:class:`RunDirError`), writes its figures into the directory's ``figures/`` and returns a
:class:`~archlab.report.page.Section`; ``write_*_report`` renders it as that directory's
``report.html``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from archlab.engine.rundir import read_metrics
from archlab.report import figures as figs
from archlab.report.formatting import (
    _num,
    fmt_count,
    fmt_mean_std,
    fmt_metric,
    fmt_seconds,
    fmt_seconds_stats,
    fmt_value,
    is_percent,
)
from archlab.report.latent import tool_figures
from archlab.report.page import Section, Table, render_page
from archlab.tasks import higher_is_better
from archlab.utils.errors import RunDirError
from archlab.utils.io import atomic_write_text, read_json

RUN_METRICS = ("accuracy", "r2", "rmse", "mse", "mae")  # a run's headline metric, by preference
PLAYERS = ("d_loss", "g_loss")  # an adversarial run's two players (discriminator, generator), drawn together
DESCRIPTION_PREVIEW = 500  # characters of a recipe's description shown in a run's section


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    """A run file as a dict, or a one-line :class:`RunDirError`."""
    if not path.is_file():
        raise RunDirError(f"'{path.parent}' is not an archlab {what} directory (no {path.name})")
    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        raise RunDirError(f"cannot read '{path}' ({e}); the file is damaged — rerun to recreate it") from None
    if not isinstance(data, dict):
        raise RunDirError(f"cannot read '{path}' (not a JSON object); rerun to recreate it")
    return data


def write_html(path: Path, text: str) -> Path:
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise RunDirError(f"cannot write '{path}' ({e.strerror}); check the directory's permissions") from None
    return path


def _fig_dir(d: Path) -> Path:
    out = d / "figures"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot write figures into '{out}' ({e.strerror}); check its permissions") from None
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _best_index(values: Sequence[Any], metric: str) -> int | None:
    idx = [(v, i) for i, v in enumerate(values) if _num(v) and math.isfinite(v)]
    if len(idx) < 2:
        return None
    return (max(idx) if higher_is_better(metric) else min(idx))[1]


# ----------------------------------------------------------------------------- compare


def compare_section(compare_dir: str | Path, *, title: str | None = None) -> Section:
    """Results table and figures of a ``compare`` directory (figures go to its ``figures/``)."""
    d = Path(compare_dir)
    data = read_json_file(d / "compare.json", "compare")
    metric = str(data.get("metric") or "accuracy")
    models = [m for m in data.get("models") or [] if isinstance(m, dict)]
    scale = 100.0 if is_percent(metric) else 1.0
    unit = " (%)" if is_percent(metric) else ""

    labels: list[str] = []
    for m in models:
        label = str(m.get("label") or m.get("model") or "?")
        if label in labels:
            label = f"{label} ({m.get('model')})"
        labels.append(label)

    rows, means = [], []
    for m, label in zip(models, labels):
        test = m.get("test") or {}
        stats = test.get(metric)
        means.append(stats.get("mean") if isinstance(stats, dict) else stats)
        seeds = len((stats or {}).get("values") or []) if isinstance(stats, dict) else len(m.get("runs") or [])
        name = str(m.get("model") or "?")
        rows.append(
            [
                name if label == name else f"{label} ({name})",
                fmt_count(m.get("params")),
                fmt_count(m.get("flops_per_example")),
                fmt_mean_std(metric, stats),
                fmt_mean_std("loss", test.get("loss")) if "loss" in test and metric != "loss" else "—",
                str(m["published"]) if m.get("published") not in (None, "") else "—",
                fmt_seconds_stats(m.get("wall_time_s")),
                seeds,
            ]
        )
    best = _best_index(means, metric)
    table = Table(
        [
            "Model",
            "Params",
            "FLOPs / example",
            f"Test {metric} (mean ± std)",
            "Test loss",
            "Published",
            "Wall time / run",
            "Seeds",
        ],
        rows,
        caption=f"{data.get('dataset', '')}: test {metric} over seeds".strip(": "),
        bold={(best, 3)} if best is not None else set(),
    )

    # figures
    series: dict[str, list[list[dict[str, Any]]]] = {}
    for m, label in zip(models, labels):
        series[label] = [read_metrics(d / str(r)) for r in m.get("runs") or []]
    has = lambda key, split: any(figs.curve(r, key, split) for runs in series.values() for r in runs)
    out = _fig_dir(d)
    figures: list[tuple[Path, str]] = []
    if has(metric, "test"):
        figures.append(
            (
                figs.learning_curves(
                    series,
                    metric,
                    "test",
                    out / f"curves-test-{_safe(metric)}.png",
                    scale=scale,
                    ylabel=f"test {metric}{unit}",
                ),
                f"test {metric} vs step (mean ± std over seeds)",
            )
        )
    if has("loss", "train"):
        figures.append(
            (
                figs.learning_curves(series, "loss", "train", out / "curves-train-loss.png"),
                "train loss vs step (mean ± std over seeds)",
            )
        )
    pts_params, pts_time = [], []
    for m, label in zip(models, labels):
        stats = (m.get("test") or {}).get(metric)
        if not isinstance(stats, dict) or not _num(stats.get("mean")):
            continue
        y, yerr = stats["mean"] * scale, (stats.get("std") or 0) * scale
        pts_params.append({"label": label, "x": m.get("params"), "y": y, "yerr": yerr})
        wt = m.get("wall_time_s")
        wt_mean = wt.get("mean") if isinstance(wt, dict) else wt
        pts_time.append(
            {
                "label": label,
                "x": wt_mean,
                "y": y,
                "yerr": yerr,
                "xerr": wt.get("std") if isinstance(wt, dict) else None,
            }
        )
    if any(_num(p["x"]) for p in pts_params):
        figures.append(
            (
                figs.scatter(pts_params, "parameters", f"test {metric}{unit}", out / f"{_safe(metric)}-vs-params.png"),
                f"test {metric} vs parameters",
            )
        )
    if any(_num(p["x"]) for p in pts_time):
        figures.append(
            (
                figs.scatter(
                    pts_time,
                    "wall time per run (s)",
                    f"test {metric}{unit}",
                    out / f"{_safe(metric)}-vs-wall-time.png",
                ),
                f"test {metric} vs wall time",
            )
        )

    budget = data.get("budget")
    facts: list[tuple[str, Any]] = [("Dataset", str(data.get("dataset", "—"))), ("Metric", metric)]
    if budget:
        facts.append(("Budget", fmt_value(budget) if isinstance(budget, dict) else str(budget)))
    if data.get("seeds") is not None:
        facts.append(("Seeds", fmt_value(data["seeds"])))
    if _num(data.get("wall_time_s")):
        facts.append(("Total wall time", fmt_seconds(data["wall_time_s"])))
    facts.append(("Directory", str(d)))
    return Section(
        title=title or str(data.get("title") or d.name),
        tables=[table],
        figures=list(figures),
        facts=facts,
    )


def write_compare_report(compare_dir: str | Path) -> Path:
    """Write ``compare_dir/report.html`` (and its figures under ``compare_dir/figures/``)."""
    d = Path(compare_dir)
    section = compare_section(d)
    return write_html(d / "report.html", render_page(section.title, [section]))


# ----------------------------------------------------------------------------- experiment


def experiment_section(exp_dir: str | Path, *, title: str | None = None) -> Section:
    d = Path(exp_dir)
    data = read_json_file(d / "experiment.json", "experiment")
    tab = data.get("table") or {}
    tables = []
    if tab.get("columns") or tab.get("rows"):
        tables.append(
            Table(
                [str(c) for c in tab.get("columns") or []],
                [list(r) if isinstance(r, list | tuple) else [r] for r in tab.get("rows") or []],
            )
        )
    figures: list[Path | str | tuple[Path | str, str]] = [d / str(f) for f in data.get("figures") or []]
    facts: list[tuple[str, Any]] = [("Claim", str(data.get("claim") or "—"))]
    if data.get("name"):
        facts.insert(0, ("Experiment", str(data["name"])))
    if data.get("quick"):
        facts.append(("Mode", "quick (reduced budget: a smoke check, not the measurement)"))
    if _num(data.get("wall_time_s")):
        facts.append(("Wall time", fmt_seconds(data["wall_time_s"])))
    facts.append(("Directory", str(d)))
    supported = data.get("supported")
    return Section(
        title=title or str(data.get("title") or data.get("name") or d.name),
        tables=tables,
        figures=figures,
        facts=facts,
        verdict=str(data.get("verdict") or "(no verdict recorded)"),
        supported=supported if isinstance(supported, bool) else None,
    )


def write_experiment_report(exp_dir: str | Path) -> Path:
    """Write ``exp_dir/report.html``: claim, verdict, table and figures of an experiment."""
    d = Path(exp_dir)
    section = experiment_section(d)
    return write_html(d / "report.html", render_page(section.title, [section]))


# ----------------------------------------------------------------------------- single run


def run_metric(summary: dict[str, Any], records: list[dict[str, Any]]) -> str | None:
    """A run's headline metric: the recipe's eval metric (kept in ``best``), else by preference."""
    best = summary.get("best")
    if isinstance(best, dict):
        for k in best:
            if k != "step":
                return k
    test = summary.get("test") or {}
    for k in RUN_METRICS:
        if k in test:
            return k
    for k in RUN_METRICS:
        if any(k in r for r in records):
            return k
    return None


def run_figures(
    run_dir: str | Path, summary: dict[str, Any] | None = None, records: list[dict[str, Any]] | None = None
) -> list[tuple[Path, str]]:
    """Learning curves of one run (loss; headline metric) written into ``run_dir/figures/``, then the
    figures ``archlab sample``/``embed`` wrote there (listed in ``figures/tools.json``)."""
    d = Path(run_dir)
    records = read_metrics(d) if records is None else records
    if not records:
        return tool_figures(d / "figures")
    summary = summary or {}
    out = _fig_dir(d)
    splits = ("train", "val", "test")
    result = []
    if any(figs.curve(records, "loss", s) for s in splits):
        result.append(
            (
                figs.split_curves(records, "loss", splits, out / "curves-loss.png", ylabel="loss"),
                f"{summary.get('name', d.name)}: loss vs step",
            )
        )
    players = [(m, s) for s in splits for m in PLAYERS if figs.curve(records, m, s)]
    if {m for m, _ in players} == set(PLAYERS):  # both players logged: the adversarial game in one figure
        result.append(
            (
                figs.metric_curves(records, players, out / "curves-players.png", ylabel="loss"),
                f"{summary.get('name', d.name)}: the two players' losses vs step (d_loss: the discriminator's or "
                "critic's, g_loss: the generator's)",
            )
        )
    metric = run_metric(summary, records)
    if metric and metric != "loss" and any(figs.curve(records, metric, s) for s in splits):
        pct = is_percent(metric)
        result.append(
            (
                figs.split_curves(
                    records,
                    metric,
                    splits,
                    out / f"curves-{_safe(metric)}.png",
                    scale=100.0 if pct else 1.0,
                    ylabel=metric + (" (%)" if pct else ""),
                ),
                f"{summary.get('name', d.name)}: {metric} vs step",
            )
        )
    return result + tool_figures(out)


def recipe_description(run_dir: Path) -> str:
    """The ``description`` of the run's saved ``recipe.yaml`` (bounded), or "" where there is none."""
    try:
        raw = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return ""
    text = raw.get("description") if isinstance(raw, dict) else None
    if not isinstance(text, str):
        return ""
    return text if len(text) <= DESCRIPTION_PREVIEW else text[:DESCRIPTION_PREVIEW] + "…"


def run_section(run_dir: str | Path, *, title: str | None = None) -> Section:
    d = Path(run_dir)
    summary = read_json_file(d / "summary.json", "run")
    records = read_metrics(d)
    metrics_rows = []
    names: list[str] = []
    for split in ("val", "test"):
        for k in summary.get(split) or {}:
            if k not in names:
                names.append(k)
    names.sort(key=lambda k: (k == "loss", k))
    for split in ("val", "test"):
        vals = summary.get(split) or {}
        if vals:
            metrics_rows.append([split] + [fmt_metric(k, vals.get(k)) for k in names])
    best = summary.get("best")
    info_rows = [
        ["params", fmt_count(summary.get("params"))],
        ["FLOPs / example", fmt_count(summary.get("flops_per_example"))],
        ["steps", summary.get("steps")],
        ["epochs", summary.get("epochs")],
        ["train examples", summary.get("train_examples")],
        ["wall time", fmt_seconds(summary.get("wall_time_s"))],
        ["samples / s", summary.get("samples_per_s")],
    ]
    if isinstance(best, dict):
        info_rows.append(
            [
                "best (val)",
                ", ".join(
                    f"{k} {fmt_metric(k, v)}" if k != "step" else f"step {fmt_value(v)}" for k, v in best.items()
                ),
            ]
        )
    if summary.get("finished_at"):
        info_rows.append(["finished at", str(summary["finished_at"])])
    tables = [Table(["", "value"], info_rows, caption="Run")]
    if metrics_rows:
        tables.append(Table(["split"] + names, metrics_rows, caption="Final metrics"))
    model = str(summary.get("model", "?"))
    if summary.get("family"):
        model += f" ({summary['family']})"
    facts: list[tuple[str, Any]] = [("Model", model)]
    if summary.get("paper"):
        facts.append(("Paper", str(summary["paper"])))
    facts += [
        ("Dataset", str(summary.get("dataset", "—"))),
        ("Task", str(summary.get("task", "—"))),
        ("Seed", summary.get("seed")),
        ("Status", str(summary.get("status", "—"))),
        ("Directory", str(d)),
    ]
    return Section(
        title=title or str(summary.get("name") or d.name),
        text=recipe_description(d),
        tables=tables,
        figures=list(run_figures(d, summary, records)),
        facts=facts,
    )


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for one training run: summary tables and learning curves."""
    d = Path(run_dir)
    section = run_section(d)
    return write_html(d / "report.html", render_page(section.title, [section]))
