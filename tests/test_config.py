"""Recipes: validation with key paths, did-you-mean, overrides, shipped recipes."""

import pytest

from archlab.config import ScheduleSpec, load_recipe, parse_overrides, recipe_hash, recipe_to_yaml, shipped_recipes
from archlab.engine.optim import lr_factor
from archlab.utils.errors import ConfigError
from conftest import tiny_recipe


def test_unknown_key_has_path_and_suggestion():
    raw = tiny_recipe()
    raw["optim"]["lrr"] = 0.1
    with pytest.raises(ConfigError, match=r"^optim\.lrr: unknown key \(did you mean: lr\?\)$"):
        load_recipe(raw)
    raw = tiny_recipe()
    raw["budgett"] = {"steps": 3}
    with pytest.raises(ConfigError, match=r"^budgett: unknown key \(did you mean: budget\?\)"):
        load_recipe(raw)


def test_wrong_type_has_path():
    with pytest.raises(ConfigError, match=r"^data\.batch_size: .*integer.*\(got 'many'\)"):
        load_recipe(tiny_recipe(**{"data.batch_size": "many"}))
    with pytest.raises(ConfigError, match=r"^precision: .*'fp32' or 'bf16'"):
        load_recipe(tiny_recipe(**{"precision": "fp8"}))
    # optimiser names come from engine.optim.OPTIMIZERS (tests/test_task_contract.py checks unknown ones)
    assert load_recipe(tiny_recipe(**{"optim.name": "rmsprop"})).optim.name == "rmsprop"
    with pytest.raises(ConfigError, match=r"^budget: .*at least one of steps, epochs, seconds"):
        load_recipe(tiny_recipe(**{"budget": {}}))


def test_dotted_overrides_and_yaml_values():
    ov = parse_overrides(["optim.lr=3e-4", "model.width=128", "data.augment=[hflip, 'crop:4']", "compile=true"])
    r = load_recipe(tiny_recipe(), ov)
    assert r.optim.lr == pytest.approx(3e-4) and r.model.overrides()["width"] == 128
    assert r.data.augment == ["hflip", "crop:4"] and r.compile is True
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["optim.lr"])
    with pytest.raises(ConfigError, match=r"^optim\.lr: is a value"):
        load_recipe(tiny_recipe(), {"optim.lr.x": 1})


def test_recipe_roundtrip_and_hash():
    import yaml

    r = load_recipe(tiny_recipe())
    again = load_recipe(yaml.safe_load(recipe_to_yaml(r)))
    assert recipe_hash(again) == recipe_hash(r)
    assert recipe_hash(load_recipe(tiny_recipe(seed=1))) != recipe_hash(r)


def test_every_shipped_recipe_validates_and_builds_its_model():
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    shipped = shipped_recipes()
    assert {
        "mnist1d/cnn1d",
        "mnist1d/mlp",
        "mnist1d/gru",
        "mnist1d/logistic_regression",
        "fashion_mnist/mlp",
        "digits/mlp",
        "diabetes/mlp",
    } <= set(shipped)
    for name, path in shipped.items():
        if name.endswith("/default"):
            continue
        r = load_recipe(path)
        task = build_task(r.task, dataset_info(r.data.name, r.data.options))
        task.build_model(r.model)


def test_unknown_shipped_recipe_suggests():
    with pytest.raises(ConfigError, match="did you mean: mnist1d/cnn1d"):
        load_recipe("mnist1d/cnn")


def test_schedules():
    cos = ScheduleSpec(name="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cos, 110) == pytest.approx(0.1)
    assert lr_factor(9, cos, 110) == pytest.approx(1.0)
    assert lr_factor(10, cos, 110) == pytest.approx(1.0)
    assert lr_factor(60, cos, 110) == pytest.approx(0.55)
    assert lr_factor(110, cos, 110) == pytest.approx(0.1)
    step = ScheduleSpec(name="step", step_size=5, gamma=0.5)
    assert [lr_factor(s, step, None) for s in (0, 4, 5, 10)] == [1, 1, 0.5, 0.25]
    lin = ScheduleSpec(name="linear")
    assert lr_factor(50, lin, 100) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="needs budget.steps or budget.epochs"):
        lr_factor(0, ScheduleSpec(name="cosine"), None)
