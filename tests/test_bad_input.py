"""Bad input of every kind is one line, exit code 2, no traceback, and no run directory (issue 14 §1, §2).

Kinds: numbers the schema used to let through (non-finite floats, integers beyond int64, out-of-range
betas and seeds), OS errors on paths the user gave, resuming a finished or locked run, and inputs
that used to hang or explode (YAML alias bombs, huge or deeply nested files and overrides).
"""

import fcntl
import os
import re
import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from archlab.cli import main
from archlab.config import Recipe, load_recipe, parse_overrides, validate_recipe
from archlab.config.recipe import MAX_OVERRIDE_CHARS, MAX_RECIPE_BYTES, MAX_YAML_NODES
from archlab.engine.rundir import MAX_NAME_BYTES, new_run_dir, run_dir_name
from archlab.utils.errors import ConfigError, did_you_mean, os_error_message, preview
from archlab.utils.options import check_options
from conftest import tiny_recipe

BIG = 99999999999999999999999  # > 2**63 - 1


def _cli(argv, capsys, tmp_path, monkeypatch) -> tuple[int, str]:
    """Run ``archlab ARGV`` in ``tmp_path``; returns (exit code, stderr) after checking the promise:
    exactly one line, no traceback, no run directory left behind."""
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err[:3000]
    assert "Traceback" not in err
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a failed command left a run dir"
    return code, err


# -- §1: values the schema let through ------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        (f"seed={BIG}", f"seed: Input should be less than or equal to {2**63 - 1} (got {BIG})"),
        ("seed=-1", "seed: Input should be greater than or equal to 0 (got -1)"),
        ("optim.betas=[2,3]", "optim.betas.0: Input should be less than 1 (got 2)"),
        ("optim.betas=[0.9,1]", "optim.betas.1: Input should be less than 1 (got 1)"),
        ("optim.betas=[-0.1,0.9]", "optim.betas.0: Input should be greater than or equal to 0 (got -0.1)"),
        ("optim.lr=.inf", "optim.lr: Input should be a finite number (got inf)"),
        ("optim.lr=.nan", "optim.lr: Input should be a finite number (got nan)"),
        ("optim.eps=.inf", "optim.eps: Input should be a finite number (got inf)"),
        ("optim.weight_decay=.inf", "optim.weight_decay: Input should be a finite number (got inf)"),
        ("optim.grad_clip_norm=.inf", "optim.grad_clip_norm: Input should be a finite number (got inf)"),
        ("schedule.gamma=.inf", "schedule.gamma: Input should be a finite number (got inf)"),
        ("budget.epochs=.inf", "budget.epochs: Input should be a finite number (got inf)"),
        ("budget.seconds=.inf", "budget.seconds: Input should be a finite number (got inf)"),
        ("eval.early_stopping.min_delta=.inf", "eval.early_stopping.min_delta: Input should be a finite number"),
        (f"budget.steps={BIG}", f"budget.steps: must fit in 64 bits, |x| ≤ 2**63 − 1 (got {BIG})"),
        (f"optim.accum_steps={BIG}", "optim.accum_steps: must fit in 64 bits"),
        ("data.augment=[noise:nan]", "data.augment: 'noise:nan': the argument must be a finite number ≥ 0"),
        ("data.augment=[noise:inf]", "data.augment: 'noise:inf': the argument must be a finite number ≥ 0"),
        ("data.options={length: .inf}", "data.options.length: must be a finite number (got inf)"),
        ("task.options={beam_size: .nan}", "task.options.beam_size: must be a finite number (got nan)"),
        ("model.width=.inf", "model.width: must be a finite number (got inf)"),
        (f"model.width={BIG}", f"model.width: must fit in 64 bits, |x| ≤ 2**63 − 1 (got {BIG})"),
        ("model.in_shape=[1, .nan]", "model.in_shape.1: must be a finite number (got nan)"),
    ],
)
def test_out_of_range_value_is_one_line_before_the_run_dir(override, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(["train", "digits/mlp", "budget.steps=2", override], capsys, tmp_path, monkeypatch)
    assert code == 2
    assert err.startswith(f"archlab: error: {message}"), err


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type]]:
    """Every int/float field of the recipe schema, nested specs included, as (dotted path, type)."""
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        kinds = set(typing.get_args(ann)) or {ann}
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _numeric_fields(ann, f"{prefix}{name}.")
        elif float in kinds:
            out.append((f"{prefix}{name}", float))
        elif int in kinds and bool not in kinds:
            out.append((f"{prefix}{name}", int))
    return out


def test_every_numeric_field_of_the_schema_refuses_non_finite_and_overflowing_values():
    fields = _numeric_fields(Recipe)
    assert {"optim.lr", "optim.eps", "schedule.gamma", "budget.epochs", "seed", "data.batch_size"} <= {
        p for p, _ in fields
    }
    for path, kind in fields:
        bad = [float("inf"), float("-inf"), float("nan")] if kind is float else [2**63, -(2**63) - 1]
        for value in bad:
            with pytest.raises(ConfigError, match="^" + re.escape(path) + ": ") as e:
                load_recipe(tiny_recipe(**{path: value}))
            assert len(str(e.value).splitlines()) == 1
    # betas: a pair of floats, each in [0, 1)
    for betas in ([float("nan"), 0.9], [0.9, float("inf")], [1.0, 0.9]):
        with pytest.raises(ConfigError, match=r"^optim\.betas\.[01]: "):
            load_recipe(tiny_recipe(**{"optim.betas": betas}))


def test_options_checks_refuse_non_finite_and_bound_the_value():
    with pytest.raises(ConfigError, match=r"^data\.options\.noise: expected a finite number .* got inf$"):
        check_options({"noise": float("inf")}, {"noise": 0.1}, "data.options", "dataset 'x'")
    with pytest.raises(ConfigError, match=r"^data\.options\.noise: expected a finite number"):
        check_options({"noise": 10**400}, {"noise": 0.1}, "data.options", "dataset 'x'")  # float() would raise
    with pytest.raises(ConfigError) as e:
        check_options({"length": ["x" * 10_000]}, {"length": 100}, "data.options", "dataset 'x'")
    assert len(str(e.value)) < 200
    assert check_options({"noise": 1}, {"noise": 0.1}, "data.options", "d") == {"noise": 1.0}


# -- §1: OS errors on paths the user gave ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "a" * 5000], "recipe 'aaaaa"),
        (["train", "digits/mlp", "--runs-dir", "r" * 5000], "cannot create a run directory under 'rrrr"),
        (["train", "--resume", "r" * 5000], "recipe.yaml': File name too long"),
        (["eval", "r" * 5000], "recipe.yaml': File name too long"),
        (["report", "r" * 5000], "': File name too long"),
        (
            ["train", "digits/mlp", "data.name=mnist", "model.in_shape=[1,28,28]", "--data-dir", "d" * 5000],
            "': File name too long",
        ),
        (
            ["compare", "mlp", "--data", "digits", "--seeds", "1", "--runs-dir", "c" * 5000],
            "cannot create a run directory under 'cccc",
        ),
    ],
)
def test_os_error_on_a_user_path_is_one_short_line(argv, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err
    assert len(err) < 400, "the path is previewed, not printed whole"


def test_os_error_message_names_the_path_and_the_reason():
    e = OSError(36, "File name too long", "x" * 5000)
    assert os_error_message(e) == f"'{'x' * 59}…{'x' * 20}': File name too long"
    assert os_error_message(FileNotFoundError(2, "No such file or directory", "a.yaml")) == (
        "'a.yaml': No such file or directory"
    )
    assert os_error_message(OSError(28, "No space left on device")) == "No space left on device"


def test_long_recipe_names_give_bounded_run_dir_names(tmp_path):
    assert run_dir_name("n" * 5000) == "n" * MAX_NAME_BYTES
    assert len(run_dir_name("é" * 5000).encode()) <= MAX_NAME_BYTES
    assert run_dir_name("a b/../c") == "a-b-..-c" and run_dir_name("..") == "run"
    path = new_run_dir(tmp_path, "n" * 5000)
    assert path.is_dir() and path.name.startswith("n" * MAX_NAME_BYTES + "-")
    # and through the command line: the run trains, in a folder named by the cut name
    runs = tmp_path / "runs"
    assert main(["train", "digits/mlp", "name=" + "n" * 5000, "budget.steps=1", "--runs-dir", str(runs)]) == 0
    (run,) = runs.iterdir()
    assert run.name.startswith("n" * MAX_NAME_BYTES + "-2") and (run / "summary.json").exists()


# -- §1: resume of a finished or locked run: check first, print after -----------------------------
@pytest.fixture
def short_run(tmp_path):
    assert (
        main(["train", "digits/mlp", "budget.steps=2", "log.tensorboard=false", "--runs-dir", str(tmp_path / "done")])
        == 0
    )
    return next((tmp_path / "done").iterdir())


def test_resume_of_a_finished_run_is_exactly_one_line(short_run, capsys, tmp_path, monkeypatch):
    capsys.readouterr()
    code, err = _cli(["train", "--resume", str(short_run)], capsys, tmp_path, monkeypatch)
    assert code == 2
    assert err == (
        f"archlab: error: run {short_run} has already finished (summary.json exists); start a new run to train more"
    )


def test_resume_of_a_locked_run_is_exactly_one_line(short_run, capsys, tmp_path, monkeypatch):
    (short_run / "summary.json").unlink()  # as if it had been killed: resumable
    fd = os.open(short_run / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process trains in it
        capsys.readouterr()
        code, err = _cli(["train", "--resume", str(short_run)], capsys, tmp_path, monkeypatch)
        assert code == 2 and err == f"archlab: error: run {short_run} is in use by another archlab process"
    finally:
        os.close(fd)
    # once free, the same command resumes (and the refused attempt did not keep the lock)
    assert main(["train", "--resume", str(short_run)]) == 0
    assert (short_run / "summary.json").exists()


# -- §2: inputs that hung or exploded -------------------------------------------------------------
def _billion_laughs(path: Path) -> Path:
    lines = [
        "name: laughs",
        "model: {name: mlp}",
        "data: {name: digits}",
        "budget: {steps: 1}",
        "description:",
        "  - &a0 [x, x, x, x, x, x, x, x, x]",
    ]
    lines += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path.write_text("\n".join(lines) + "\n")
    return path


# The bounds below are on this process's CPU time (time.process_time), not the wall clock: an
# expansion that explodes burns CPU here, while a machine busy with other jobs only stretches the
# wall time (1.6 s for a refusal that takes ~0.1 s of CPU, at load average 17 on 2 cores).


def test_billion_laughs_recipe_is_refused_at_once(capsys, tmp_path, monkeypatch):
    path = _billion_laughs(tmp_path / "laughs.yaml")
    assert path.stat().st_size < 1024
    t = time.process_time()
    code, err = _cli(["train", str(path)], capsys, tmp_path, monkeypatch)
    seconds = time.process_time() - t
    assert code == 2 and seconds < 0.5, seconds
    assert err == (
        f"archlab: error: {path}: expands to more than {MAX_YAML_NODES:,} values through YAML "
        "aliases (*name); write the values out or remove the aliases"
    )


def test_shared_references_from_python_are_previewed_not_expanded():
    bomb: list = ["x"] * 9
    for _ in range(8):
        bomb = [bomb] * 9  # 9**9 leaves, 9 distinct lists
    t = time.process_time()
    with pytest.raises(ConfigError) as e:  # a wrong type: the message shows a preview of the value
        validate_recipe({**tiny_recipe(), "description": bomb})
    assert str(e.value).startswith("description: Input should be a valid string (got [[[[")
    assert len(str(e.value)) < 200
    with pytest.raises(ConfigError, match=rf"^model\.w\.0\.0\.0.*: more than {MAX_YAML_NODES:,} values"):
        validate_recipe({**tiny_recipe(), "model": {"name": "mlp", "w": bomb}})  # numbers are walked, bounded
    assert time.process_time() - t < 2.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: x\n#" + b"x" * (MAX_RECIPE_BYTES + 10), "larger than 1 MB; a recipe is a few lines of settings"),
        (b"model: {name: mlp, width: " + b"[" * 20_000 + b"]" * 20_000 + b"}\n", "nested deeper than 64 levels"),
        (b"model: {name: mlp, width: " + b"9" * 5000 + b"}\n", "a value cannot be read (Exceeds the limit"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text (byte 0); is it a recipe?"),
        (b"a: [unclosed\n", "not valid YAML"),
        (b"a: !!python/object:os.system x\n", "not valid YAML (could not determine a constructor"),
    ],
)
def test_hostile_recipe_files_fail_fast_in_one_line(content, message, capsys, tmp_path, monkeypatch):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    t = time.process_time()
    code, err = _cli(["train", str(path)], capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err
    assert time.process_time() - t < 1.0


def test_recipe_from_an_endless_device_is_refused(capsys, tmp_path, monkeypatch):
    code, err = _cli(["train", "/dev/zero"], capsys, tmp_path, monkeypatch)
    assert code == 2 and err == "archlab: error: /dev/zero: larger than 1 MB; a recipe is a few lines of settings"


def test_override_values_are_bounded_like_recipe_files():
    assert parse_overrides(["a=[unclosed", "b=!!python/object:os.system", "c="]) == {
        "a": "[unclosed",
        "b": "!!python/object:os.system",
        "c": None,  # not YAML: kept as a string
    }
    with pytest.raises(ConfigError, match=r"^override 'model\.width': nested deeper than 64 levels"):
        parse_overrides(["model.width=" + "[" * 3000])
    with pytest.raises(ConfigError, match=r"^override 'model\.width': a value cannot be read"):
        parse_overrides(["model.width=" + "9" * 5000])
    with pytest.raises(
        ConfigError,
        match=rf"^override 'model\.width': 10,000,012 characters, more than "
        rf"{MAX_OVERRIDE_CHARS:,}",
    ):
        parse_overrides(["model.width=" + "9" * 10_000_000])
    anchors = ["&a0 [x, x, x, x, x, x, x, x, x]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match=rf"^override 'x': expands to more than {MAX_YAML_NODES:,} values"):
        parse_overrides(["x=[" + ", ".join(anchors) + "]"])


def test_preview_and_did_you_mean_are_bounded():
    assert preview("short") == "short"
    long = preview("a" * 10_000 + "TAIL")
    assert len(long) == 80 and long.endswith("a" * 16 + "TAIL") and "…" in long
    assert preview("line\nbreak") == "line\\nbreak"  # one line, always
    assert preview(10**5000).startswith("<int")  # repr() itself would raise
    t = time.process_time()
    assert did_you_mean("x" * 10_000_000, ["mlp", "cnn1d"]) == ""
    assert time.process_time() - t < 0.1


# -- §1/5: command-line flags -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "/nonexistent", "--temperature", "nan"], "--temperature must be a finite number ≥ 0"),
        (["sample", "/nonexistent", "--temperature", "inf"], "--temperature must be a finite number ≥ 0"),
        (["sample", "/nonexistent", "--tokens", str(BIG)], "--tokens must be in [1, 1,000,000]"),
        (["sample", "/nonexistent", "--seed", str(BIG)], "--seed must be in [0, 2**63 − 1]"),
        (["sample", "/nonexistent", "--seed", "-1"], "--seed must be in [0, 2**63 − 1]"),
        (["compare", "mlp", "--data", "digits", "--seeds", "1000000000"], "--seeds: at most 1000 seeds"),
        (["attention", "/nonexistent", "un", "--beam", str(BIG)], "--beam: at most 1000 hypotheses"),
        (
            ["train", "digits/mlp", "budget.steps=2", "model.width=!!python/object/apply:os.system [ls]"],
            "model.width: Input should be a valid integer",
        ),
        (["train", "digits/mlp", "name=" + "n" * 200, "optim.lr=.inf"], "optim.lr: Input should be a finite number"),
    ],
)
def test_bad_flags_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err


def test_recipes_built_or_changed_in_code_fail_in_one_line_too():
    r = load_recipe(tiny_recipe())
    with pytest.raises(ConfigError, match=r"^seed: Input should be less than or equal to 9223372036854775807"):
        r.seed = 10**30  # what compare does for each seed
    with pytest.raises(ConfigError, match=r"^lr: Input should be a finite number \(got nan\)$"):
        r.optim.lr = float("nan")
    with pytest.raises(ConfigError, match=r"^optim\.betas\.0: Input should be less than 1"):
        Recipe.model_validate({**tiny_recipe(), "optim": {"betas": [2, 3]}})
    r.seed, r.optim.lr = 5, 0.1
    assert (r.seed, r.optim.lr) == (5, 0.1)


def test_a_model_too_large_for_memory_is_one_line(capsys, tmp_path, monkeypatch):
    code, err = _cli(["train", "digits/mlp", "model.width=1000000000000"], capsys, tmp_path, monkeypatch)
    assert code == 2 and err.startswith("archlab: error: out of memory (it asked for ") and "bytes): make" in err
    code, err = _cli(["info", "mlp", "--set", "width=1000000000000"], capsys, tmp_path, monkeypatch)  # meta device
    assert code == 2 and err == (
        "archlab: error: out of memory: make the model (its width, depth) or the batch smaller"
    )


@pytest.mark.parametrize(
    ("model", "setting", "field"),
    [
        ("mlp", "depth=1000000", "model.depth"),
        ("resnet20", "depth=1000000", "model.depth"),
        ("gcn", "num_layers=1000000", "model.num_layers"),
        ("gpt_char", "n_layer=1000000", "model.n_layer"),
        ("bert_mini", "num_hidden_layers=1000000", "model.num_hidden_layers"),
        ("lstm", "num_layers=1000000", "model.num_layers"),
        ("resnet18", "layers=[2, 2, 2, 1000000]", "model.layers.3"),
        ("convnext_atto", "depths=[2, 2, 1000000, 2]", "model.depths.2"),
    ],
)
def test_a_layer_count_that_would_build_for_minutes_is_one_line(model, setting, field, capsys, tmp_path, monkeypatch):
    """A million layers used to build for minutes before anything could fail: every layer or block
    count is bounded by MAX_LAYERS (2048, above ResNet-1202) and refused before anything is built."""
    from archlab.registry.config import MAX_LAYERS

    code, err = _cli(["info", model, "--set", setting], capsys, tmp_path, monkeypatch)
    assert code == 2 and err.startswith(f"archlab: error: {field}: Input should be less than or equal to {MAX_LAYERS}")


def test_corrupt_json_and_metrics_files_raise_the_caught_error(tmp_path):
    import json

    from archlab.engine.rundir import read_metrics
    from archlab.utils.io import read_json

    for content in (b"[" * 100_000, b"\xff\xfe{}", b"{"):
        (tmp_path / "state.json").write_bytes(content)
        with pytest.raises(json.JSONDecodeError):
            read_json(tmp_path / "state.json")
    lines = ['{"step": 1, "loss": 0.5}', "[" * 100_000, "[1, 2]", '{"step": "x"}', '{"step": 2', '{"step": 3}']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 3]


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_decaying_schedule_without_a_horizon_fails_before_the_run_dir_also_with_warmup(
    schedule, capsys, tmp_path, monkeypatch
):
    """digits/mlp warms up for 20 steps; a time-only budget used to pass the step-0 check inside the
    warm-up and fail at step 20, with a run dir left behind."""
    code, err = _cli(
        ["train", "digits/mlp", "budget.epochs=null", "budget.seconds=5", f"schedule.name={schedule}"],
        capsys,
        tmp_path,
        monkeypatch,
    )
    assert code == 2
    assert err == f"archlab: error: schedule.name: '{schedule}' needs budget.steps or budget.epochs to know its length"
