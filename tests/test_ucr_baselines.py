"""Wang et al.'s FCN and ResNet time-series baselines (fcn1d, resnet1d) and their UCR recipes."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml

from archlab import count_params, create_model
from archlab.cli import main
from archlab.config import load_recipe, shipped_recipes
from archlab.data.timeseries import UCR_BUNDLED
from archlab.layers.conv1d import SameConv1d, same_padding
from archlab.utils.errors import ConfigError, ShapeError

MODELS = ("fcn1d", "resnet1d")
UCR_RECIPES = [f"{d}/{m}" for d in ("gunpoint", "italy_power_demand") for m in ("fcn1d", "resnet1d", "lstm")]


# ---- parameter counts from the layer sizes ------------------------------------------------------


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k + c_out  # Keras Conv1D: kernel + bias


def bn(c: int) -> int:
    return 2 * c  # trainable γ, β (Keras also shows the moving mean and variance as non-trainable)


def fcn_params(c: int, k: int) -> int:
    return conv(c, 128, 8) + bn(128) + conv(128, 256, 5) + bn(256) + conv(256, 128, 3) + bn(128) + 128 * k + k


def resnet_params(c: int, k: int) -> int:
    def block(c_in: int, f: int, project: bool) -> int:
        body = conv(c_in, f, 8) + bn(f) + conv(f, f, 5) + bn(f) + conv(f, f, 3) + bn(f)
        return body + (conv(c_in, f, 1) if project else 0) + bn(f)

    return block(c, 64, True) + block(64, 128, True) + block(128, 128, False) + 128 * k + k


def bn_channels(model: torch.nn.Module) -> int:
    return sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))


def test_fcn_parameter_count_univariate_binary():
    m = create_model("fcn1d", in_shape=(1, 150), num_classes=2)
    assert fcn_params(1, 2) == 1_152 + 256 + 164_096 + 512 + 98_432 + 256 + 258 == 264_962
    assert count_params(m) == 264_962
    # Keras' model.summary() total: + moving mean and variance of 512 BN channels (non-trainable)
    assert count_params(m) + 2 * bn_channels(m) == 265_986


def test_resnet_parameter_count_univariate_binary():
    m = create_model("resnet1d", in_shape=(1, 150), num_classes=2)
    assert resnet_params(1, 2) == 34_112 + 206_336 + 263_552 + 258 == 504_258
    assert count_params(m) == 504_258
    assert count_params(m) + 2 * bn_channels(m) == 506_818  # Keras' total, 1,280 BN channels


@pytest.mark.parametrize(("c", "k"), [(1, 2), (1, 3), (6, 4), (12, 9), (64, 5)])
def test_parameter_counts_follow_the_layer_sizes(c, k):
    assert count_params(create_model("fcn1d", in_shape=(c, 29), num_classes=k)) == fcn_params(c, k)
    assert count_params(create_model("resnet1d", in_shape=(c, 29), num_classes=k)) == resnet_params(c, k)


def test_resnet_shortcuts_follow_dl4tsc():
    """1×1 conv + BN in blocks 1 and 2, BN only in block 3; block 1 projects even when C = 64."""
    for c in (1, 64):
        m = create_model("resnet1d", in_shape=(c, 16))
        kinds = [[type(layer).__name__ for layer in b.shortcut] for b in m.blocks]
        assert kinds == [["SameConv1d", "BatchNorm1d"], ["SameConv1d", "BatchNorm1d"], ["BatchNorm1d"]]
    relu_after = [[type(cb.act).__name__ for cb in b.convs] for b in m.blocks]
    assert relu_after == [["ReLU", "ReLU", "Identity"]] * 3


def test_keras_defaults():
    m = create_model("fcn1d")
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm1d)]
    assert all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)  # Keras ε 1e-3, momentum 0.99
    assert all(b.conv.bias is not None for b in m.blocks)
    w = m.blocks[1].conv.weight  # Glorot uniform: |w| ≤ √(6 / (fan_in + fan_out))
    assert w.abs().max() <= (6 / (128 * 5 + 256 * 5)) ** 0.5
    assert torch.count_nonzero(m.blocks[1].conv.bias) == 0


# ---- shapes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("c", "t", "k"), [(1, 150, 2), (1, 24, 2), (3, 37, 5), (12, 29, 9), (2, 1, 3), (1, 101, 7)])
def test_shape_law(name, c, t, k):
    m = create_model(name, in_shape=(c, t), num_classes=k).eval()
    x = torch.randn(4, c, t)
    assert m.forward_features(x).shape == (4, 128)
    assert m(x).shape == (4, k)
    assert torch.isfinite(m(x)).all()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("t", [1, 2, 7, 150])
def test_same_padding_keeps_t_in_every_layer(name, t):
    m = create_model(name, in_shape=(2, t)).eval()
    lengths = []
    layers = [x for x in m.modules() if isinstance(x, (SameConv1d, torch.nn.BatchNorm1d))]
    hooks = [x.register_forward_hook(lambda mod, i, o: lengths.append(o.shape[-1])) for x in layers]
    m(torch.randn(2, 2, t))
    for h in hooks:
        h.remove()
    assert len(lengths) == len(layers) and set(lengths) == {t}


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 9])
def test_same_conv_pads_like_keras(k):
    """Keras/TF 'same', stride 1: ⌊(k−1)/2⌋ zeros before and ⌈(k−1)/2⌉ after (k = 8: 3 and 4), as torch's."""
    assert same_padding(k) == ((k - 1) // 2, k - 1 - (k - 1) // 2)
    assert same_padding(8) == (3, 4)
    conv = SameConv1d(3, 4, k)
    x = torch.randn(2, 3, 11)
    lo, hi = same_padding(k)
    ref = F.conv1d(F.pad(x, (lo, hi)), conv.weight, conv.bias)
    torch.testing.assert_close(conv(x), ref, rtol=0, atol=0)
    assert conv(x).shape == (2, 4, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that an even kernel needs a padded copy
        torch.testing.assert_close(F.conv1d(x, conv.weight, conv.bias, padding="same"), ref)


# ---- unequal lengths ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_padded_batch_with_lengths_equals_each_series_alone(name):
    """Eval mode: zero padding + lengths gives exactly the output of the unpadded series at T = length,
    because each layer's output is masked before the next 'same' convolution, which then reads the
    same zeros the unpadded series gets from its padding."""
    torch.manual_seed(0)
    c, t, k = 3, 29, 4
    m = create_model(name, in_shape=(c, t), num_classes=k).double()
    m.train()
    for _ in range(3):  # move the BN running statistics away from (0, 1)
        m(torch.randn(8, c, t, dtype=torch.float64))
    m.eval()
    lengths = torch.tensor([29, 7, 1, 16, 28])
    x = torch.randn(len(lengths), c, t, dtype=torch.float64)
    for i, n in enumerate(lengths):
        x[i, :, n:] = 0.0
    out = m(x, lengths)
    garbage = x.clone()
    for i, n in enumerate(lengths):
        garbage[i, :, n:] = 5.0  # whatever is beyond the length is ignored
    torch.testing.assert_close(m(garbage, lengths), out, rtol=0, atol=1e-12)
    for i, n in enumerate(lengths.tolist()):
        alone = create_model(name, in_shape=(c, n), num_classes=k).double().eval()
        alone.load_state_dict(m.state_dict())
        torch.testing.assert_close(out[i : i + 1], alone(x[i : i + 1, :, :n]), rtol=0, atol=1e-10)
    # without lengths the padding is read as data: the short series come out differently
    assert not torch.allclose(m(x)[1], out[1])
    # full lengths are the same as no lengths
    torch.testing.assert_close(m(x[:1], lengths[:1]), m(x[:1]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_bad_inputs_say_expected_vs_got(name):
    m = create_model(name, in_shape=(1, 24))
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, T\), got \(8, 24\)"):
        m(torch.zeros(8, 24))
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, T\), got \(2, 3, 24\)"):
        m(torch.zeros(2, 3, 24))
    # convolutions and global pooling only: any series length is accepted (Wang et al. 2017)
    assert m(torch.zeros(2, 1, 25)).shape == (2, m.config.num_classes)
    with pytest.raises(ShapeError, match=r"lengths: expected shape \(2\), got \(3,\)"):
        m(torch.zeros(2, 1, 24), torch.tensor([3, 4, 5]))
    with pytest.raises(ValueError, match=r"every length must be in 1\.\.24"):
        m(torch.zeros(2, 1, 24), torch.tensor([0, 24]))
    with pytest.raises(TypeError, match="integer"):
        m(torch.zeros(2, 1, 24), torch.tensor([3.0, 4.0]))


def test_bad_configs():
    with pytest.raises(ConfigError, match="model 'fcn1d': filters .* must be equally long"):
        create_model("fcn1d", filters=(128, 256), kernel_sizes=(8, 5, 3))
    with pytest.raises(ConfigError, match=r"model\.in_shape\.1: Input should be greater than or equal to 1"):
        create_model("resnet1d", in_shape=(1, 0))


# ---- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_reduce_the_loss(name):
    """Two classes (a sine and a square wave with noise, random phase) separate within 15 Adam steps."""
    torch.manual_seed(0)
    n, t = 32, 40
    y = torch.arange(n) % 2
    phase = torch.rand(n, 1) * 6.28
    s = torch.sin(torch.linspace(0, 12.56, t)[None, :] + phase)
    x = torch.where(y[:, None] == 1, s.sign(), s) + 0.1 * torch.randn(n, t)
    m = create_model(name, in_shape=(1, t), num_classes=2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(m(x[:, None, :]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- recipes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", UCR_RECIPES)
def test_ucr_recipe_follows_fawaz_setup(recipe):
    r = load_recipe(recipe)
    n_train = {"gunpoint": 50, "italy_power_demand": 67}[r.data.name]
    assert r.data.batch_size == int(min(n_train / 10, 16))
    assert (r.optim.name, r.optim.lr, r.optim.eps, r.optim.weight_decay) == ("adam", 1e-3, 1e-7, 0.0)
    assert r.budget.epochs == {"fcn1d": 2000, "resnet1d": 1500, "lstm": 2000}[r.model.name]
    assert r.data.augment == [] and r.description
    # ReduceLROnPlateau(monitor='loss', factor=0.5, patience=50, min_lr=1e-4) once an epoch, Keras' min_delta 1e-4
    s = r.schedule
    assert (s.name, s.factor, s.patience, s.min_lr, s.threshold, s.interval) == ("plateau", 0.5, 50, 1e-4, 1e-4, None)
    # ModelCheckpoint(monitor='loss', save_best_only=True), then the test on those weights
    assert (r.eval.select, r.eval.restore_best, r.checkpoint.best) == ("train_loss", True, True)
    assert "lack" not in r.description and "constant learning rate" not in r.description


@pytest.mark.parametrize("recipe", UCR_RECIPES)
def test_ucr_recipe_trains_from_the_cli(recipe, tmp_path):
    assert recipe in shipped_recipes()
    argv = ["train", recipe, "budget.steps=2", "data.test_subset=32", "log.progress=false", "--runs-dir", str(tmp_path)]
    assert main(argv) == 0
    run = next(tmp_path.iterdir())
    assert yaml.safe_load((run / "recipe.yaml").read_text())["model"]["name"] == recipe.split("/")[1]


# ---- the default recipe for any bundled UCR/UEA classification set -------------------------------

UCR_SETS = sorted(k for k, u in UCR_BUNDLED.items() if u.classes)  # the regression problems aside


@pytest.mark.parametrize(
    ("n_train", "cap", "want"),
    [(36, 16, 3), (50, 16, 5), (67, 64, 6), (270, 16, 16), (270, 64, 27), (537, 64, 53), (1000, None, 100),
     (19, 16, 2), (5, 16, 2), (1, 16, 1)],
)  # fmt: skip
def test_auto_batch_size_is_fawaz_rule(n_train, cap, want):
    """int(min(n_train / 10, cap)) as in dl-4-tsc, at least 2 for batch norm, at most n_train."""
    from archlab.config import DataSpec

    assert DataSpec(name="x", batch_size="auto", max_batch_size=cap).batch_size_for(n_train) == want
    assert DataSpec(name="x", batch_size=7).batch_size_for(n_train) == 7  # a whole number stays as it is


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=big", "data.batch_size: must be an integer ≥ 1 or 'auto' (got 'big')"),
        ("data.batch_size=0", "data.batch_size: must be an integer ≥ 1 or 'auto' (got 0)"),
        ("data.batch_size=true", "data.batch_size: must be an integer ≥ 1 or 'auto' (got True)"),
        ("data.max_batch_size=0", "data.max_batch_size: Input should be greater than or equal to 1 (got 0)"),
    ],
)
def test_auto_batch_size_bad_input(override, message):
    from archlab.config import apply_overrides, parse_overrides, validate_recipe

    raw = yaml.safe_load(shipped_recipes()["ucr/fcn1d"].read_text())
    with pytest.raises(ConfigError) as e:
        validate_recipe(apply_overrides(raw, parse_overrides([override])))
    assert str(e.value) == message


def test_a_cap_without_auto_is_refused(capsys, tmp_path):
    argv = ["train", "gunpoint/fcn1d", "data.max_batch_size=16", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data.max_batch_size: caps batch_size: auto only; with batch_size 5 remove it" in err
    assert "Traceback" not in err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("model", MODELS)
def test_the_ucr_default_on_gunpoint_is_the_gunpoint_recipe(model):
    """ucr/<model> is gunpoint/<model> with the batch size computed instead of written down."""
    a, b = load_recipe(f"ucr/{model}").model_dump(), load_recipe(f"gunpoint/{model}").model_dump()
    for r in (a, b):
        del r["name"], r["description"], r["data"]["batch_size"], r["data"]["max_batch_size"]
    assert a == b


@pytest.mark.parametrize(
    ("model", "data"),
    [
        # ResNet on PLAID trains on batches of 53 series of 1,344 steps: a minute on a busy core
        pytest.param(m, d, marks=pytest.mark.slow) if (m, d) == ("resnet1d", "plaid") else (m, d)
        for m in MODELS
        for d in UCR_SETS
    ],
)
def test_the_ucr_default_builds_and_probes_on_every_bundled_set(model, data, tmp_path):
    """Every bundled set with ``ucr/<model>``: both splits load, the batch size follows from the
    training-set size, and the trainer's start-up probe takes one real training step (train mode,
    forward and backward on a batch of that size). Training and evaluating end to end from the CLI
    is covered once per model (test_ucr_recipe_trains_from_the_cli, the UCR compare test): no
    part of a run but the data and the shapes depends on the set."""
    from archlab.data import load_dataset
    from archlab.engine import Trainer

    recipe = load_recipe(f"ucr/{model}", {"data.name": data, "budget.steps": 2, "log.progress": False})
    trainer = Trainer(recipe, runs_dir=tmp_path, quiet=True)  # builds everything and runs the probe
    u, n = UCR_BUNDLED[data], UCR_BUNDLED[data].train
    assert trainer.recipe.data.name == data and len(trainer.train_set) == n and trainer.total_steps == 2
    assert trainer.batch_size == max(2, int(min(n / 10, {"fcn1d": 16, "resnet1d": 64}[model])))
    test = load_dataset(data, "test")
    assert len(test) == u.test and tuple(test[0].x.shape) == tuple(trainer.train_set[0].x.shape)


# ---- compare on any UCR set: the ucr/* recipes stand in for <set>/<model> -------------------------


def test_compare_recipes_on_a_ucr_set_fall_back_to_the_ucr_recipes():
    from archlab.experiments import recipe_for
    from archlab.experiments.runs import base_recipe

    assert base_recipe("arrow_head", "fcn1d") == "ucr/fcn1d"
    assert base_recipe("arrow_head", "gru") == "ucr/default"
    assert base_recipe("gunpoint", "fcn1d") == "gunpoint/fcn1d"  # a set's own recipe first
    assert base_recipe("gunpoint", "gru") == "ucr/default"
    for model in ("fcn1d", "resnet1d", "gru"):
        r = recipe_for(model, "arrow_head")
        assert (r.model.name, r.data.name, r.data.batch_size) == (model, "arrow_head", "auto")
        assert (r.optim.name, r.optim.lr, r.schedule.name, r.eval.select) == ("adam", 1e-3, "plateau", "train_loss")
    assert recipe_for("resnet1d", "arrow_head").data.max_batch_size == 64
    assert recipe_for("gru", "arrow_head").budget.epochs == 2000
    with pytest.raises(ConfigError, match="no recipe 'sunspots/fcn1d' or 'sunspots/default' ships"):
        recipe_for("fcn1d", "sunspots")  # a forecasting set is not a UCR classification set


def test_default_compare_on_a_ucr_set_trains_every_model(tmp_path, capsys):
    """`archlab compare --data arrow_head`: the inductive-bias models on ArrowHead (failed before:
    no 'arrow_head/default' recipe)."""
    argv = ["compare", "--data", "arrow_head", "--budget", "steps=2", "--seeds", "1", "--jobs", "1"]
    argv += ["--runs-dir", str(tmp_path)]
    assert main(argv) == 0
    exp = next(tmp_path.iterdir())
    record = json.loads((exp / "compare.json").read_text())
    assert record["dataset"] == "arrow_head" and record["budget"]["steps"] == 2
    assert [m["model"] for m in record["models"]] == [
        "logistic_regression",
        "mlp",
        "cnn1d",
        "gru",
        "lstm",
        "signal_transformer",
    ]
    for m in record["models"]:
        run = json.loads((exp / m["runs"][0] / "summary.json").read_text())
        assert (run["dataset"], run["steps"], run["batch_size"]) == ("arrow_head", 2, 3)  # int(36 / 10)
