"""Reports: self-contained HTML from tiny synthetic run, compare and experiment directories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archlab.report import (
    Section,
    Table,
    build_report,
    render_page,
    write_compare_report,
    write_experiment_report,
    write_run_report,
)
from archlab.report import figures as figs
from archlab.report.formatting import fmt_count, fmt_mean_std, fmt_metric
from archlab.utils.errors import RunDirError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


# ----------------------------------------------------------------------------- synthetic runs


def _records(seed: int, acc_final: float, steps=(10, 20, 30)) -> list[dict]:
    recs = []
    for i, step in enumerate(steps, 1):
        frac = i / len(steps)
        recs.append(
            {
                "step": step,
                "epoch": frac,
                "split": "train",
                "loss": 2.0 / i + 0.01 * seed,
                "accuracy": acc_final * frac,
                "lr": 0.1,
                "grad_norm": 1.0,
                "time_s": 0.1 * i,
                "samples_per_s": 1000.0,
            }
        )
        for split in ("val", "test"):
            recs.append(
                {
                    "step": step,
                    "epoch": frac,
                    "split": split,
                    "loss": 1.5 / i,
                    "accuracy": acc_final * frac - 0.001 * seed,
                    "time_s": 0.1 * i,
                }
            )
    return recs


def make_run(
    d: Path,
    *,
    name="mnist1d-cnn1d",
    model="cnn1d",
    seed=0,
    acc=0.935,
    params=5210,
    steps=(10, 20, 30),
    finished_at="2024-05-01T10:00:00",
) -> Path:
    d.mkdir(parents=True)
    (d / "recipe.yaml").write_text(f"name: {name}\nseed: {seed}\n")
    with open(d / "metrics.jsonl", "w") as f:
        for rec in _records(seed, acc, steps):
            f.write(json.dumps(rec) + "\n")
    summary = {
        "name": name,
        "run_dir": str(d),
        "status": "completed",
        "model": model,
        "family": "cnn",
        "paper": "LeCun et al. 1998",
        "dataset": "mnist1d",
        "task": "classification",
        "seed": seed,
        "params": params,
        "flops_per_example": 41000,
        "steps": steps[-1],
        "epochs": 1.0,
        "train_examples": 4000,
        "wall_time_s": 3.25,
        "samples_per_s": 1234.5,
        "test": {"accuracy": acc, "loss": 0.2131},
        "val": {"accuracy": acc - 0.01, "loss": 0.25},
        "best": {"step": steps[-1], "accuracy": acc - 0.01},
        "versions": {},
        "hardware": {},
        "finished_at": finished_at,
    }
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def make_compare(d: Path, title="MNIST-1D: MLP vs CNN") -> Path:
    d.mkdir(parents=True)
    models = []
    for model, label, params, accs in (
        ("cnn1d", "CNN", 5210, [0.93, 0.935, 0.94]),
        ("mlp", "MLP", 51210, [0.61, 0.62, 0.63]),
    ):
        runs = []
        for seed, acc in enumerate(accs):
            # seed 2 logs on a different step grid: the curves align on the common steps
            steps = (10, 20, 30) if seed < 2 else (10, 20, 25, 30)
            make_run(
                d / f"{model}-s{seed}",
                name=f"{model}-s{seed}",
                model=model,
                seed=seed,
                acc=acc,
                params=params,
                steps=steps,
            )
            runs.append(f"{model}-s{seed}")
        mean = sum(accs) / 3
        std = (sum((a - mean) ** 2 for a in accs) / 3) ** 0.5
        models.append(
            {
                "model": model,
                "label": label,
                "params": params,
                "flops_per_example": None,
                "runs": runs,
                "test": {
                    "accuracy": {"mean": mean, "std": std, "values": accs},
                    "loss": {"mean": 0.3, "std": 0.01, "values": [0.29, 0.3, 0.31]},
                },
                "wall_time_s": {
                    "mean": 12.0 if model == "cnn1d" else 4.0,
                    "std": 0.5,
                    "values": [11.5, 12, 12.5],
                },
                "published": "94%" if model == "cnn1d" else None,
            }
        )
    compare = {
        "kind": "compare",
        "title": title,
        "dataset": "mnist1d",
        "metric": "accuracy",
        "budget": {"steps": 30},
        "seeds": [0, 1, 2],
        "wall_time_s": 48.0,
        "models": models,
    }
    (d / "compare.json").write_text(json.dumps(compare))
    return d


def make_experiment(d: Path) -> Path:
    d.mkdir(parents=True)
    figs.bar(["relu", "tanh"], [0.9, 0.8], "accuracy", d / "figures" / "bars.png", errors=[0.01, 0.02])
    make_run(d / "relu-s0", name="relu-s0")  # an experiment's own run: not a standalone run
    exp = {
        "kind": "experiment",
        "name": "relu-vs-tanh",
        "title": "ReLU trains faster than tanh",
        "claim": "Deep nets with ReLU reach a target loss in fewer steps (Krizhevsky 2012).",
        "verdict": "supported: ReLU hit loss 0.5 in 120 steps vs 410 for tanh",
        "supported": True,
        "quick": True,
        "table": {
            "columns": ["activation", "steps to loss 0.5", "final acc"],
            "rows": [["relu", 120, 0.912], ["tanh", 410, 0.887]],
        },
        "figures": ["figures/bars.png"],
        "wall_time_s": 30.5,
    }
    (d / "experiment.json").write_text(json.dumps(exp))
    return d


def _check_page(path: Path) -> str:
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    # every embedded image decodes to a PNG
    import base64

    for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text):
        assert base64.b64decode(b64).startswith(PNG_MAGIC)
    return text


def _pngs(d: Path) -> list[Path]:
    pngs = sorted((d / "figures").glob("*.png"))
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC, p
    return pngs


# ----------------------------------------------------------------------------- tests


def test_formatting():
    assert fmt_metric("accuracy", 0.935) == "93.50%"
    assert fmt_mean_std("accuracy", {"mean": 0.935, "std": 0.0041, "values": [0.93, 0.94]}) == "93.50 ± 0.41%"
    assert fmt_mean_std("accuracy", {"mean": 0.935, "std": 0.0, "values": [0.935]}) == "93.50%"
    assert fmt_count(5210) == "5.2K" and fmt_count(11_689_512) == "11.7M" and fmt_count(812) == "812"
    assert fmt_metric("rmse", 0.123456) == "0.1235"


def test_render_page_escapes_and_embeds(tmp_path):
    png = figs.scatter(
        [{"label": "a", "x": 10, "y": 1.0}, {"label": "b", "x": 1000, "y": 2.0, "yerr": 0.1}],
        "params",
        "acc",
        tmp_path / "s.png",
    )
    page = render_page(
        "<script>alert(1)</script> results",
        [
            Section(
                "Model <b>x</b>",
                text="a & b\n\nsecond <i>para</i>",
                tables=[Table(["name", "value"], [["<img src=x>", 0.5], ["n", 12345]], caption="c<>")],
                figures=[png, tmp_path / "missing.png"],
            )
        ],
    )
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Model &lt;b&gt;x&lt;/b&gt;" in page and "a &amp; b" in page and "&lt;i&gt;para" in page
    assert "&lt;img src=x&gt;" in page and "12,345" in page
    assert page.count('<img src="data:image/png;base64,') == 1
    assert "figure missing" in page
    assert not EXTERNAL.search(page)


def test_learning_curves_align_seeds(tmp_path):
    a = [{"step": s, "split": "test", "accuracy": 0.5} for s in (10, 20, 30)]
    b = [{"step": s, "split": "test", "accuracy": 0.7} for s in (10, 15, 30)]
    steps, means, stds = figs.mean_std_curve([a, b], "accuracy", "test")
    assert steps == [10, 30] and means == pytest.approx([0.6, 0.6]) and stds == pytest.approx([0.1, 0.1])
    p = figs.learning_curves({"x": [a, b], "empty": [[]]}, "accuracy", "test", tmp_path / "f" / "c.png")
    assert p.read_bytes()[:8] == PNG_MAGIC


def test_compare_report(tmp_path):
    d = make_compare(tmp_path / "cmp", title="MNIST-1D <script>x</script>")
    out = write_compare_report(d)
    assert out == d / "report.html"
    text = _check_page(out)
    for name in ("cnn1d", "mlp", "CNN", "MLP"):
        assert name in text
    assert "93.50 ± 0.41%" in text  # mean ± std of 0.93/0.935/0.94 as percent
    assert "62.00 ± 0.82%" in text
    assert "94%" in text and "5.2K" in text and "51.2K" in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "<script>" not in text
    pngs = _pngs(d)
    assert {p.name for p in pngs} >= {
        "curves-test-accuracy.png",
        "accuracy-vs-params.png",
        "accuracy-vs-wall-time.png",
    }
    assert text.count('<img src="data:image/png;base64,') == len(pngs)
    # the best mean is emphasised
    assert "<strong>93.50 ± 0.41%</strong>" in text


def test_experiment_report(tmp_path):
    d = make_experiment(tmp_path / "exp")
    text = _check_page(write_experiment_report(d))
    assert "ReLU trains faster than tanh" in text
    assert "Krizhevsky 2012" in text and "supported: ReLU hit loss 0.5" in text
    assert "0.912" in text and "410" in text and "quick" in text
    assert text.count('<img src="data:image/png;base64,') == 1


def test_run_report(tmp_path):
    d = make_run(tmp_path / "run")
    text = _check_page(write_run_report(d))
    assert "mnist1d-cnn1d" in text and "cnn1d" in text and "93.50%" in text and "5.2K" in text
    pngs = _pngs(d)
    assert {p.name for p in pngs} == {"curves-loss.png", "curves-accuracy.png"}
    assert text.count('<img src="data:image/png;base64,') == 2


def test_user_text_is_escaped_everywhere(tmp_path):
    """A run name, a recipe description and a model name are user input: never markup."""
    evil = "<script>alert('x')</script>"
    d = make_run(tmp_path / "runs" / "evil", name=f"{evil} run", model='cnn1d"><img src=x onerror=y>')
    (d / "recipe.yaml").write_text(
        json.dumps({"name": "n", "description": f"tries {evil} & <b>bold</b> " + "x" * 600, "seed": 0})
    )
    text = _check_page(write_run_report(d))  # no "<script" anywhere, no external reference
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; run" in text  # the title and the <h1>
    assert "<p>tries &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; xxx" in text
    assert "x" * 500 not in text and "x" * 400 + "…</p>" in text  # the description is a bounded preview
    assert "cnn1d&#34;&gt;&lt;img src=x onerror=y&gt;" in text and "<img src=x" not in text
    page = _check_page(build_report(tmp_path / "runs"))  # the gathered page escapes the same text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; run" in page


def test_page_template_autoescapes_and_keeps_css_intact():
    page = render_page("t", [Section("s", facts=[("k", "<v>")], verdict="<ok>", supported=True)])
    assert "<dt>k</dt><dd>&lt;v&gt;</dd>" in page
    assert '<div class="verdict yes"><strong>Verdict:</strong> &lt;ok&gt;</div>' in page
    assert 'font-family:-apple-system,"Segoe UI"' in page  # our CSS is inlined, not escaped


def test_build_report(tmp_path):
    runs = tmp_path / "runs"
    make_compare(runs / "compare-20240501")
    make_experiment(runs / "relu-vs-tanh-20240502")
    make_run(runs / "old-run", name="old-run", model="mlp", acc=0.5, finished_at="2024-01-01T00:00:00")
    make_run(
        runs / "nested" / "new-run",
        name="new-run",
        model="gru",
        acc=0.8765,
        finished_at="2024-06-01T00:00:00",
    )
    (runs / "empty-dir").mkdir()
    out = build_report(runs)
    assert out == runs / "report.html"
    text = _check_page(out)
    assert "Compare: MNIST-1D: MLP vs CNN" in text and "Experiment: ReLU trains faster than tanh" in text
    assert "Training runs (2)" in text  # compare/experiment sub-runs are not listed separately
    assert "relu-s0" not in text.split("Training runs (2)")[1]
    assert "87.65%" in text and "gru" in text
    assert text.index("new-run") < text.index("old-run")  # newest first
    # figures: 4 compare + 1 experiment + 2 per standalone run
    assert text.count('<img src="data:image/png;base64,') == 4 + 1 + 2 * 2
    assert len(_pngs(runs / "old-run")) == 2 and len(_pngs(runs / "nested" / "new-run")) == 2


def test_build_report_incomplete_and_damaged(tmp_path):
    runs = tmp_path / "runs"
    d = make_run(runs / "killed")
    (d / "summary.json").unlink()  # a run killed before it finished
    make_run(runs / "ok", name="ok-run")
    bad = runs / "bad-compare"
    bad.mkdir()
    (bad / "compare.json").write_text("{not json")
    text = _check_page(build_report(runs))
    assert "incomplete" in text and "ok-run" in text and "Skipped" in text and "bad-compare" in text


def test_errors(tmp_path):
    with pytest.raises(RunDirError, match="no archlab runs under"):
        build_report(tmp_path)
    with pytest.raises(RunDirError, match="no archlab runs under"):
        build_report(tmp_path / "nope")
    with pytest.raises(RunDirError, match="compare.json"):
        write_compare_report(tmp_path)


LONG_TITLE = (
    "cross-attention, last decoder layer (mean of heads): quatre cent vingt-trois → four hundred and twenty - "
    "three <eos>, a title written from the user's own text and far wider than any figure"
)


def _drawn_at_the_edges(png: Path) -> int:
    """Non-white pixels in the outermost 2 columns of a PNG: a title cut off by the figure's edge
    leaves its letters there; a figure laid out to fit leaves a white margin."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    edges = np.concatenate([rgb[:, :2], rgb[:, -2:]], axis=1)
    return int((edges.min(axis=-1) < 200).sum())


@pytest.mark.parametrize("kind", ["heatmap", "bar", "lines", "panels", "image_rows", "grid"])
def test_a_long_title_is_wrapped_inside_the_figure_not_cut_off(tmp_path, kind):
    import numpy as np

    from archlab.report.latent import image_rows
    from archlab.report.mode_figures import mixture_panels

    out = tmp_path / f"{kind}.png"
    if kind == "heatmap":
        figs.attention_heatmap(list("abcdef"), list("uvwxyz"), np.eye(6), out, title=LONG_TITLE)
    elif kind == "bar":
        figs.bar(["mlp", "cnn"], [0.8, 0.9], "accuracy", out, title=LONG_TITLE)
    elif kind == "lines":
        figs.lines({"cnn": [(1.0, 0.5, 0.0), (10.0, 0.9, 0.0)]}, "examples", "accuracy", out, title=LONG_TITLE)
    elif kind == "panels":
        means = np.array([[0.0, 1.0], [1.0, 0.0]])
        panel = {"samples": means, "means": means, "title": "WGAN-GP, seed 0: 8/8 modes"}
        mixture_panels([panel] * 3, out, cols=3, title=LONG_TITLE)
    elif kind == "image_rows":
        image_rows([np.zeros((3, 1, 8, 8))], out, title=LONG_TITLE)
    else:
        figs.attention_grid([np.eye(4)] * 2, list("abcd"), list("wxyz"), ["head 0", "head 1"], out, title=LONG_TITLE)
    assert _drawn_at_the_edges(out) == 0


def test_fit_titles_wraps_without_dropping_a_character_and_leaves_short_titles_alone():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=100)
    FigureCanvasAgg(fig)
    short, long_ = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    short.set_title("loss")
    long_.set_title(LONG_TITLE)
    fig.suptitle(LONG_TITLE)
    figs.fit_titles(fig)
    renderer = fig.canvas.get_renderer()
    assert short.title.get_text() == "loss"
    for text, room in ((long_.title, long_.bbox.width), (fig._suptitle, fig.bbox.width)):
        assert "\n" in text.get_text()
        assert "".join(text.get_text().split()) == "".join(LONG_TITLE.split())  # wrapped, nothing dropped
        assert text.get_window_extent(renderer).width <= 0.96 * room
