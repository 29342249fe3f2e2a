"""Self-contained HTML reports: one file, inline CSS, figures embedded as base64 PNGs.

A report opens offline from anywhere (mailed, copied off a cluster): it references no external
script, stylesheet, font or image. All text that comes from run files is escaped.

Number formatting, used everywhere in reports:

* accuracy (a fraction in run files) is shown as a percent with two decimals: ``0.935`` →
  ``93.50%``; a mean ± std over seeds as ``93.50 ± 0.41%``;
* counts (params, FLOPs) as ``812``, ``5.2K``, ``11.7M``, ``1.8G``;
* other floats with four significant digits, integers with thousands separators;
* durations as ``12.3 s``, ``4m 05s``, ``1h 02m``.
"""

from __future__ import annotations

import base64
import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlab.engine.rundir import read_metrics
from archlab.report import figures as figs
from archlab.tasks import higher_is_better
from archlab.utils.errors import RunDirError
from archlab.utils.io import atomic_write_text, read_json

_NUMERIC = re.compile(r"[-+]?\d[\d.,]*[\sKMGT%smh±\d.,]*")  # "5.2K", "93.50 ± 0.41%", "4m 05s"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_METRICS = ("accuracy", "r2", "rmse", "mse", "mae")  # a run's headline metric, by preference

# ----------------------------------------------------------------------------- formatting


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def fmt_value(v: Any) -> str:
    """A table cell: ``None`` → an em dash, ints with separators, floats to 4 significant digits."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) >= 1e4:
            return f"{v:,.0f}"
        if v == int(v) and abs(v) < 1e4:
            return f"{int(v)}"
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items())
    return str(v)


def fmt_count(v: Any) -> str:
    """Params / FLOPs: ``812``, ``5.2K``, ``11.7M``, ``1.8G``."""
    if not _num(v) or not math.isfinite(v):
        return fmt_value(v)
    a = abs(v)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if a >= scale:
            return f"{v / scale:.1f}{unit}"
    return f"{int(v)}" if v == int(v) else f"{v:.3g}"


def is_percent(metric: str) -> bool:
    return "accuracy" in metric


def fmt_metric(metric: str, v: Any) -> str:
    if not _num(v):
        return fmt_value(v)
    if is_percent(metric) and math.isfinite(v):
        return f"{100 * v:.2f}%"
    return fmt_value(float(v))


def fmt_mean_std(metric: str, stats: Any) -> str:
    """``{"mean", "std", "values"}`` → ``93.50 ± 0.41%`` (no ± for a single seed)."""
    if _num(stats):
        return fmt_metric(metric, stats)
    if not isinstance(stats, dict) or not _num(stats.get("mean")):
        return "—"
    mean, std = stats["mean"], stats.get("std")
    single = len(stats.get("values") or []) <= 1 and not std
    if is_percent(metric):
        if single or not _num(std):
            return f"{100 * mean:.2f}%"
        return f"{100 * mean:.2f} ± {100 * std:.2f}%"
    if single or not _num(std):
        return fmt_value(float(mean))
    return f"{fmt_value(float(mean))} ± {float(std):.2g}"


def fmt_seconds(v: Any) -> str:
    if not _num(v) or not math.isfinite(v):
        return fmt_value(v)
    if v < 60:
        return f"{v:.1f} s"
    if v < 3600:
        return f"{int(v // 60)}m {int(v % 60):02d}s"
    return f"{int(v // 3600)}h {int(v % 3600 // 60):02d}m"


def fmt_seconds_stats(stats: Any) -> str:
    if _num(stats):
        return fmt_seconds(stats)
    if not isinstance(stats, dict) or not _num(stats.get("mean")):
        return "—"
    std = stats.get("std")
    if _num(std) and std > 0 and len(stats.get("values") or []) > 1:
        return f"{fmt_seconds(stats['mean'])} ± {fmt_seconds(std)}"
    return fmt_seconds(stats["mean"])


# ----------------------------------------------------------------------------- page model


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise


@dataclass
class Section:
    title: str
    text: str | list[str] = ""  # paragraphs; a string is split on blank lines
    tables: list[Table] = field(default_factory=list)
    figures: list[Path | str | tuple[Path | str, str]] = field(default_factory=list)  # path or (path, caption)
    facts: list[tuple[str, Any]] = field(default_factory=list)  # a key: value list under the title
    verdict: str = ""  # shown in a highlighted box
    supported: bool | None = None  # colours the verdict box: True green, False red, None neutral


CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #eee;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th{background:#f4f4f4}
tr:nth-child(even) td{background:#fafafa}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.8em 0}
dl.facts dt{font-weight:600;color:#555}
dl.facts dd{margin:0}
.verdict{border-left:5px solid #999;background:#f6f6f6;padding:.6em 1em;margin:1em 0}
.verdict.yes{border-color:#2e7d32;background:#eef7ee}
.verdict.no{border-color:#c62828;background:#fbeeee}
figure{display:inline-block;width:calc(50% - 1.2em);min-width:320px;margin:.5em 1em .5em 0;vertical-align:top}
figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.missing{color:#a00;font-style:italic}
nav ul{columns:2}
footer{margin-top:3em;color:#888;font-size:.85em}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _paragraphs(text: str | list[str]) -> list[str]:
    if isinstance(text, str):
        text = [p.strip() for p in text.split("\n\n")]
    return [p for p in text if p]


def _table_html(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{_esc(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
    for i, row in enumerate(t.rows):
        cells = []
        for j, v in enumerate(row):
            text = _esc(v if isinstance(v, str) else fmt_value(v))
            if (i, j) in t.bold:
                text = f"<strong>{text}</strong>"
            cls = ' class="n"' if _num(v) or (isinstance(v, str) and _NUMERIC.fullmatch(v)) else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure_html(fig: Path | str | tuple[Path | str, str]) -> str:
    path, caption = fig if isinstance(fig, tuple) else (fig, "")
    path = Path(path)
    caption = caption or path.stem.replace("-", " ")
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    if not data.startswith(PNG_MAGIC):
        return f'<p class="missing">figure missing or not a PNG: {_esc(path.name)}</p>'
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _slug(i: int, title: str) -> str:
    s = "".join(c.lower() if c.isalnum() else "-" for c in title).strip("-")
    return f"s{i}-{s[:40]}"


def _section_html(i: int, s: Section) -> str:
    out = [f'<section id="{_slug(i, s.title)}"><h2>{_esc(s.title)}</h2>']
    if s.facts:
        out.append(
            '<dl class="facts">'
            + "".join(
                f"<dt>{_esc(k)}</dt><dd>{_esc(v if isinstance(v, str) else fmt_value(v))}</dd>" for k, v in s.facts
            )
            + "</dl>"
        )
    if s.verdict:
        cls = {True: " yes", False: " no"}.get(s.supported, "")
        out.append(f'<div class="verdict{cls}"><strong>Verdict:</strong> {_esc(s.verdict)}</div>')
    out.extend(f"<p>{_esc(p)}</p>" for p in _paragraphs(s.text))
    out.extend(_table_html(t) for t in s.tables)
    if s.figures:
        out.append('<div class="figures">' + "\n".join(_figure_html(f) for f in s.figures) + "</div>")
    out.append("</section>")
    return "\n".join(out)


def render_page(title: str, sections: list[Section], *, intro: str | list[str] = "") -> str:
    """One self-contained HTML page (inline CSS, embedded PNGs, no external references)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
    ]
    parts.extend(f"<p>{_esc(p)}</p>" for p in _paragraphs(intro))
    if len(sections) > 3:
        parts.append(
            "<nav><ul>"
            + "".join(f'<li><a href="#{_slug(i, s.title)}">{_esc(s.title)}</a></li>' for i, s in enumerate(sections))
            + "</ul></nav>"
        )
    parts.extend(_section_html(i, s) for i, s in enumerate(sections))
    parts.append(f"<footer>written by archlab on {_esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</footer>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- reading run files


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
    """Learning curves of one run (loss; headline metric) written into ``run_dir/figures/``."""
    d = Path(run_dir)
    records = read_metrics(d) if records is None else records
    if not records:
        return []
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
    return result


def fmt_metrics(metrics: Any) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return "—"
    keys = sorted(metrics, key=lambda k: (k == "loss", k))  # headline metrics first, loss last
    return ", ".join(f"{k} {fmt_metric(k, metrics[k])}" for k in keys)


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
        tables=tables,
        figures=list(run_figures(d, summary, records)),
        facts=facts,
    )


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for one training run: summary tables and learning curves."""
    d = Path(run_dir)
    section = run_section(d)
    return write_html(d / "report.html", render_page(section.title, [section]))
