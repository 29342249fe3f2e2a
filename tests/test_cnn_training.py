"""The CNN family end to end: every Fashion-MNIST recipe trains from the CLI, the CNN experiments
run from the CLI (quick versions) and write their table, figure and verdict."""

import json

import pytest
import yaml

from archlab.cli import main
from archlab.config import shipped_recipes


def _family(recipe: str) -> str:
    from archlab.registry import get_model_entry

    return get_model_entry(yaml.safe_load(shipped_recipes()[recipe].read_text())["model"]["name"]).family


FASHION_RECIPES = sorted(k for k in shipped_recipes() if k.startswith("fashion_mnist/") and not k.endswith("/mlp"))
CNN_RECIPES = [k for k in FASHION_RECIPES if _family(k) == "cnn"]
OTHER_RECIPES = [k for k in FASHION_RECIPES if _family(k) != "cnn"]  # ViT, autoencoders: their own set-ups


@pytest.fixture(autouse=True)
def _fashion_or_skip():
    from archlab.data import load_dataset
    from archlab.utils.errors import DataError

    try:
        load_dataset("fashion_mnist", "test")
    except DataError as e:  # only "not found": a loader bug must fail, not skip
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")


def test_every_cnn_of_the_issue_has_a_recipe():
    models = {yaml.safe_load(shipped_recipes()[k].read_text())["model"]["name"] for k in CNN_RECIPES}
    assert {
        "lenet5",
        "resnet20",
        "resnet56",
        "vgg11_bn",
        "densenet_bc_100",
        "mobilenet_v2",
        "squeezenet1_1",
        "efficientnet_b0",
        "convnext_atto",
    } <= models


@pytest.mark.parametrize("recipe", CNN_RECIPES)
def test_fashion_recipe_trains_from_the_cli(recipe, tmp_path, capsys):
    raw = yaml.safe_load(shipped_recipes()[recipe].read_text())
    if not recipe.endswith("/default"):  # the shipped set-up: label smoothing, cosine, crop + flip
        assert raw["task"]["label_smoothing"] > 0 and raw["schedule"]["name"] == "cosine"
        assert {"hflip", "crop:2"} <= set(raw["data"]["augment"])
    argv = [
        "train",
        recipe,
        "budget.steps=2",
        "data.train_subset=256",
        "data.test_subset=64",
        "log.progress=false",
        "checkpoint.every=2",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    run = next(tmp_path.iterdir())
    s = json.loads((run / "summary.json").read_text())
    assert s["model"] == raw["model"]["name"] and s["steps"] == 2
    assert s["test_examples"] == 64 and 0.0 <= s["test"]["accuracy"] <= 1.0
    assert s["flops_per_example"] > 0
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert saved["precision"] == raw.get("precision", "fp32")
    assert saved["channels_last"] == raw.get("channels_last", False)


def test_the_recipe_families_are_what_they_seem():
    assert "fashion_mnist/lenet5" in CNN_RECIPES and "fashion_mnist/vae_mlp" in OTHER_RECIPES
    assert "fashion_mnist/vit_mini_p7" in OTHER_RECIPES


@pytest.mark.parametrize("recipe", OTHER_RECIPES)
def test_other_fashion_recipes_train_from_the_cli(recipe, tmp_path, capsys):
    """Every non-CNN Fashion-MNIST recipe (ViT, the autoencoders) trains 2 steps from the CLI and
    reports finite test metrics of its own task."""
    import math

    raw = yaml.safe_load(shipped_recipes()[recipe].read_text())
    argv = ["train", recipe, "budget.steps=2", "data.train_subset=256", "data.test_subset=64", "log.progress=false",
            "checkpoint.every=2", "--runs-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((next(tmp_path.iterdir()) / "summary.json").read_text())
    assert s["model"] == raw["model"]["name"] and s["steps"] == 2
    assert s["test"] and all(math.isfinite(v) for v in s["test"].values() if isinstance(v, float)), s["test"]


def test_resnet_degradation_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("resnet-degradation", "--set", "steps=4")
    assert [r[0] for r in rec["table"]["rows"]] == ["plain-20", "plain-56", "ResNet-20", "ResNet-56"]
    params = {r[0]: r[1] for r in rec["table"]["rows"]}
    assert params["plain-20"] == params["ResNet-20"] and params["plain-56"] == params["ResNet-56"]  # option A
    assert rec["figures"] == ["figures/training_error.png"]
    assert isinstance(rec["supported"], bool) and "plain-56" in rec["verdict"]
    for run in ("plain20-s0", "resnet56-s0"):
        s = json.loads((exp / run / "summary.json").read_text())
        assert s["steps"] == 4 and s["train_examples"] == 256


def test_cnn_vs_mlp_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("cnn-vs-mlp")
    rows = rec["table"]["rows"]
    models = ["CNN (LeNet-5)", "MLP (784-78-10)", "ViT (P7, 3×48)"]
    assert [(r[0], r[1]) for r in rows] == [(n, m) for n in ("200", "400") for m in models]
    cnn_params, mlp_params, vit_params = rows[0][2], rows[1][2], rows[2][2]
    assert cnn_params == 61706 and mlp_params == 784 * 78 + 78 + 78 * 10 + 10  # matched within 1%
    assert abs(cnn_params - mlp_params) / cnn_params < 0.01
    assert vit_params == 61_894 and abs(vit_params - cnn_params) / cnn_params < 0.01
    assert rec["figures"] == ["figures/accuracy_vs_data.png"]
    assert "leads the ViT (P7, 3×48) by" in rec["verdict"]


def test_efficient_scaling_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("efficient-scaling", "--set", "steps=2")
    rows = rec["table"]["rows"]
    assert [r[1] for r in rows] == ["α=0.35", "α=0.5", "α=0.75", "α=1.0", "φ=0.0", "φ=1.0", "φ=2.0", "20", "56"]
    macs = [r[3] for r in rows]
    assert macs[0] < macs[1] < macs[2] < macs[3]  # the width multiplier scales MACs (≈ α²)
    assert macs[4] < macs[5] < macs[6]  # so does φ
    assert macs[7] < macs[8]
    assert any(r[6] == "yes" for r in rows)  # a Pareto frontier exists
    assert rec["figures"] == ["figures/accuracy_vs_macs.png"]


def test_experiment_option_typo_is_one_line(tmp_path, capsys):
    assert main(["experiment", "cnn-vs-mlp", "--set", "sizs=[10]", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'sizs' (did you mean: sizes?)" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was created
    assert main(["experiment", "cnn-vs-mlp", "--set", "steps=abc", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "experiment cnn-vs-mlp: bad option value" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
