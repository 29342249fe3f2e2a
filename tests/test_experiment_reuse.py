"""`archlab experiment NAME --reuse DIR`: finished runs that trained exactly a run's recipe are copied
in instead of trained again; anything else trains; bad directories are one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from archlab.cli import main
from archlab.config import validate_recipe
from archlab.experiments import EXPERIMENTS, parse_options
from archlab.experiments import base as experiment_base
from archlab.experiments.runs import kept_checkpoints, match_finished, scan_finished, training_key

NASH = ["experiment", "nash-equilibrium", "--quick", "--jobs", "1", "--set", "samples=200"]
RUN = "gaussian1d-gan-s0"


def _run(runs: Path, *extra: str) -> tuple[Path, dict]:
    before = set(runs.iterdir()) if runs.exists() else set()
    assert main([*NASH, "--runs-dir", str(runs), *extra]) == 0
    (exp,) = set(runs.iterdir()) - before
    return exp, json.loads((exp / "experiment.json").read_text())


def _nash_runs(steps: int):
    exp = EXPERIMENTS.get("nash-equilibrium")()
    return exp.runs(exp.settings(parse_options("nash-equilibrium", {"steps": steps, "samples": 200}), True))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A quick nash-equilibrium experiment trained once: (its runs dir, its dir, its record)."""
    runs = tmp_path_factory.mktemp("first")
    exp, rec = _run(runs, "--set", "steps=6")
    return runs, exp, rec


def test_a_finished_run_with_the_same_recipe_is_reused_not_trained(first, tmp_path, monkeypatch, capsys):
    runs, exp, rec1 = first
    assert "reused_runs" not in rec1

    def no_training(*args, **kwargs):
        raise AssertionError("a reused run was trained again")

    monkeypatch.setattr(experiment_base, "train_runs", no_training)
    capsys.readouterr()
    second, rec2 = _run(tmp_path, "--set", "steps=6", "--reuse", str(runs))  # a runs dir
    assert rec2["reused_runs"] == {RUN: str(exp / RUN)}
    err = capsys.readouterr().err
    assert f"{RUN}: reused" in err and "analysing the trained runs" in err
    assert rec2["table"] == rec1["table"] and rec2["verdict"] == rec1["verdict"]  # the same run, the same analysis
    summary = json.loads((exp / RUN / "summary.json").read_text())
    assert rec1["runs"] == rec2["runs"] == {RUN: {k: summary[k] for k in experiment_base.RUN_FIELDS}}
    assert rec1["runs"][RUN]["recipe_hash"] and rec1["runs"][RUN]["steps"] == 6

    src, dst = exp / RUN, second / RUN
    ckpts = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file() and "checkpoints" in p.parts)
    assert ckpts and all((dst / c).stat().st_ino == (src / c).stat().st_ino for c in ckpts)  # hard links
    for name in ("metrics.jsonl", "summary.json", "recipe.yaml"):  # copies: resuming one never changes the other
        assert (dst / name).stat().st_ino != (src / name).stat().st_ino
        if name != "summary.json":
            assert (dst / name).read_bytes() == (src / name).read_bytes()
    source, copy = (json.loads((d / "summary.json").read_text()) for d in (src, dst))
    assert source["run_dir"] == str(src) and copy["run_dir"] == str(dst)  # the copy names its own dir
    assert {**copy, "run_dir": ""} == {**source, "run_dir": ""}
    assert (src / ".lock").exists() and not (dst / ".lock").exists()


def test_only_the_same_recipe_of_a_run_that_finished_by_itself_matches(first, tmp_path):
    _, exp, _ = first
    assert [r.name for r in _nash_runs(6)] == [RUN]
    assert match_finished(_nash_runs(6), [exp]) == {RUN: exp / RUN}
    assert match_finished(_nash_runs(4), [exp]) == {}  # another budget: trained
    assert match_finished(_nash_runs(6), []) == {}
    copy = tmp_path / RUN
    shutil.copytree(exp / RUN, copy)
    summary = json.loads((copy / "summary.json").read_text())
    for status, found in [("early_stopped", True), ("time_budget", False), ("failed", False)]:
        (copy / "summary.json").write_text(json.dumps({**summary, "status": status}))
        assert match_finished(_nash_runs(6), [copy]) == ({RUN: copy} if found else {}), status
    (copy / "summary.json").write_text("{")  # a run being written, or damaged: passed over
    assert match_finished(_nash_runs(6), [copy]) == {}


def test_finished_runs_reads_run_dirs_at_three_depths_and_keys_ignore_the_name(first):
    runs, exp, _ = first
    for source in (exp / RUN, exp, runs):
        assert list(scan_finished([source])[0].values()) == [exp / RUN]
    (key,) = scan_finished([runs])[0]
    (spec,) = _nash_runs(6)
    assert training_key({**spec.recipe, "name": "other", "description": "other"}) == key
    assert training_key({**spec.recipe, "seed": 1}) != key


def test_a_reuse_path_that_is_not_a_directory_is_one_line_before_any_directory(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main([*NASH, "--runs-dir", str(runs), "--reuse", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--reuse" in err and "not a directory" in err
    assert not runs.exists()


def test_a_run_missing_or_damaging_a_checkpoint_is_not_reused_and_says_so(first, tmp_path, monkeypatch, capsys):
    """The analysis reads the checkpoints after the experiment's dir exists: a matching run without all of
    its training's checkpoints intact trains again (with a line saying why) instead of failing there."""
    _, exp, _ = first
    (spec,) = _nash_runs(6)
    recipe = validate_recipe(spec.recipe)
    assert recipe.checkpoint.every == 3 and recipe.checkpoint.keep_last >= 2
    assert kept_checkpoints(recipe, 6) == ["step-00000006", "step-00000003"]
    assert sorted(p.name for p in (exp / RUN / "checkpoints").iterdir()) == ["step-00000003", "step-00000006"]
    assert kept_checkpoints(recipe, 5) == ["step-00000005", "step-00000003"]  # early-stopped at 5
    one = validate_recipe({**spec.recipe, "checkpoint": {**spec.recipe["checkpoint"], "keep_last": 1}})
    assert kept_checkpoints(one, 6) == ["step-00000006"]
    assert kept_checkpoints(validate_recipe({**spec.recipe, "checkpoint": {"every": None}}), 6) == ["step-00000006"]

    missing, damaged = tmp_path / "missing", tmp_path / "damaged"
    for d in (missing, damaged):
        shutil.copytree(exp / RUN, d / RUN)
    shutil.rmtree(missing / RUN / "checkpoints" / "step-00000003")
    weights = damaged / RUN / "checkpoints" / "step-00000006" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    lines: list[str] = []
    assert match_finished([spec], [damaged], notice=lines.append) == {}
    (line,) = lines
    assert line.startswith(f"{RUN}: not reusing {(damaged / RUN).resolve()}") and "model.safetensors" in line
    lines.clear()
    assert match_finished([spec], [missing, damaged], notice=lines.append) == {}
    (line,) = lines  # the first damaged copy found is named
    assert line.startswith(f"{RUN}: not reusing {(missing / RUN).resolve()}") and "step-00000003" in line
    assert line.endswith("it trains again")
    lines.clear()
    assert match_finished([spec], [missing, exp], notice=lines.append) == {RUN: exp / RUN}  # an intact copy wins

    class Trains(Exception):
        pass

    def trains(out, todo, **kwargs):
        raise Trains([run.name for run in todo])

    monkeypatch.setattr(experiment_base, "train_runs", trains)
    capsys.readouterr()
    with pytest.raises(Trains) as caught:  # trained, not failed in the analysis
        main([*NASH, "--set", "steps=6", "--runs-dir", str(tmp_path / "runs"), "--reuse", str(missing)])
    assert caught.value.args == ([RUN],) and "it trains again" in capsys.readouterr().err


def test_reused_sources_are_absolute_paths(first, monkeypatch):
    runs, exp, _ = first
    monkeypatch.chdir(runs)
    (found,) = match_finished(_nash_runs(6), [exp.name]).values()  # a relative path
    assert found == exp / RUN and found.is_absolute()
