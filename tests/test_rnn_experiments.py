"""The adding problem (generator, options, recipes), the gradient probe on a hand-made recurrence,
and the recurrent family's experiments from the CLI (quick versions)."""

import json

import pytest
import torch

from archlab.cli import main
from archlab.config import load_recipe
from archlab.data import dataset_info, load_dataset
from archlab.data.synthetic import (
    ADDING_BASELINE_ACCURACY,
    ADDING_BASELINE_MSE,
    SEEDS,
    adding_accuracy,
    make_adding,
)
from archlab.experiments.recurrent_probes import hidden_state_gradients, loglog_slope, unrolled_states
from archlab.registry import create_model
from archlab.utils.errors import ConfigError


# -- the generator --------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [2, 7, 10, 101])
def test_adding_has_one_marker_per_half_and_the_target_is_their_sum(length):
    x, y = make_adding(500, length, seed=3)
    assert x.shape == (500, 2, length) and y.shape == (500, 1) and x.dtype == y.dtype == torch.float32
    values, markers = x[:, 0], x[:, 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(y[:, 0], (values * markers).sum(1))


def test_adding_is_deterministic_by_seed_and_the_splits_differ():
    a, b = make_adding(64, 20, seed=5), make_adding(64, 20, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(make_adding(64, 20, seed=6)[0], a[0])
    train = load_dataset("adding", "train", options={"length": 20, "n_train": 300, "n_test": 200})
    test = load_dataset("adding", "test", options={"length": 20, "n_train": 300, "n_test": 200})
    assert len(train) == 300 and len(test) == 200 and SEEDS["train"] != SEEDS["test"]
    assert torch.equal(train.x, make_adding(300, 20, SEEDS["train"])[0])
    assert torch.equal(test.x, make_adding(200, 20, SEEDS["test"])[0])
    assert not torch.equal(train.x[:200], test.x)
    again = load_dataset("adding", "train", options={"length": 20, "n_train": 300, "n_test": 200})
    assert torch.equal(train.x, again.x) and train.name == "adding" and train.split == "train"


def test_the_constant_baseline_matches_the_stated_numbers():
    _, y = make_adding(200_000, 10, seed=0)
    ones = torch.ones_like(y)
    assert abs(float(((ones - y) ** 2).mean()) - ADDING_BASELINE_MSE) < 2e-3  # 1/6
    assert abs(adding_accuracy(ones, y) - ADDING_BASELINE_ACCURACY) < 3e-3  # 0.0784
    assert "0.167" in next(iter(dataset_info("adding").reference.values()))


def test_info_follows_the_options():
    default = dataset_info("adding")
    assert default.input_shape == (2, 50) and default.task == "regression" and default.out_features == 1
    info = dataset_info("adding", {"length": 123, "n_train": 10, "n_test": 5})
    assert info.input_shape == (2, 123) and info.splits == {"train": 10, "test": 5}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lenght": 10}, "data.options.lenght: dataset 'adding' has no option 'lenght' (did you mean: length?)"),
        ({"length": "ten"}, "data.options.length: expected int"),
        ({"length": 1}, "data.options.length: the adding problem needs length ≥ 2"),
        ({"n_test": 0}, "data.options.n_test: needs at least 1 example"),
    ],
)
def test_a_bad_option_is_one_config_error(options, message):
    with pytest.raises(ConfigError) as e:
        load_dataset("adding", "train", options=options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_bad_option_from_the_cli_is_one_line(tmp_path, capsys):
    argv = ["train", "adding/lstm", "data.options.lenght=10", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data.options.lenght" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


# -- recipes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_adding_recipes_share_one_setup(model):
    r = load_recipe(f"adding/{model}")
    assert r.model.name == model and r.data.options == {"length": 100}
    extra = r.model.overrides()
    assert extra["hidden_size"] == 64 and extra["readout"] == "last" and extra.get("bidirectional", False) is False
    assert (r.optim.name, r.optim.lr, r.optim.grad_clip_norm) == ("adam", 3e-3, 1.0)


def test_data_options_flow_through_a_recipe(tmp_path):
    argv = [
        "train",
        "adding/lstm",
        "budget.steps=2",
        "data.options.length=10",
        "data.options.n_train=256",
        "data.options.n_test=64",
        "log.progress=false",
        "log.tensorboard=false",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    run = next(tmp_path.iterdir())
    s = json.loads((run / "summary.json").read_text())
    assert s["steps"] == 2 and s["dataset"] == "adding" and s["task"] == "regression"
    assert s["train_examples"] == 256 and s["test_examples"] == 64
    assert s["params"] == 4 * (64 * 2 + 64 * 64 + 2 * 64) + 64 + 1  # the LSTM reads 2 features per step
    assert {"mse", "rmse", "r2"} <= set(s["test"])
    assert load_recipe(run / "recipe.yaml").data.options == {"length": 10, "n_train": 256, "n_test": 64}


# -- the gradient probe ---------------------------------------------------------------------------
def _scaled_identity_rnn(a: float, hidden: int, length: int, nonlinearity: str, bias: float):
    """An RNN with W_ih = 0, W_hh = a·I, b_ih = bias, b_hh = 0 and a head w = 1, b = 0."""
    model = create_model(
        "rnn",
        in_shape=(2, length),
        num_classes=1,
        hidden_size=hidden,
        readout="last",
        nonlinearity=nonlinearity,
    )
    with torch.no_grad():
        layer = model.layer
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.copy_(a * torch.eye(hidden))
        layer.bias_ih_l0.fill_(bias)
        layer.bias_hh_l0.zero_()
        model.head.weight.fill_(1.0)
        model.head.bias.zero_()
    return model


@pytest.mark.parametrize(("nonlinearity", "bias"), [("tanh", 0.0), ("relu", 0.3)])
@pytest.mark.parametrize(("a", "length"), [(0.5, 30), (0.9, 30), (1.1, 30), (0.5, 200)])
def test_gradient_norm_decays_as_a_power_of_the_distance(nonlinearity, bias, a, length):
    # tanh at 0 (the state stays 0, tanh' = 1) and ReLU on positive states (ReLU' = 1) are both the
    # linear recurrence h_t = a h_{t-1} + b: ∂h_t/∂h_{t-1} = a·I, so ‖∂ℓ/∂h_t‖ = a^{T-t} ‖∂ℓ/∂h_T‖
    hidden = 4
    model = _scaled_identity_rnn(a, hidden, length, nonlinearity, bias)
    x, _ = make_adding(8, length, seed=0)
    y = torch.full((8, 1), 2.0)
    norms = hidden_state_gradients(model, x, y)
    assert norms.dtype == torch.float64
    # h_T = b (1 + a + … + a^{T-1}) per unit; ℓ = (Σ h_T − y)², so ‖∂ℓ/∂h_T‖ = 2 |ŷ − y| · ‖1‖
    h_last = torch.tensor(bias * sum(a**k for k in range(length)), dtype=torch.float32).double()  # b is float32
    last = 2 * abs(hidden * h_last - 2.0) * hidden**0.5
    expected = torch.tensor([a ** (length - 1 - t) for t in range(length)], dtype=torch.float64) * last
    torch.testing.assert_close(norms, expected, rtol=1e-5, atol=0)  # down to 0.5^199 ≈ 1e-60, far below float32
    assert all(p.grad is None for p in model.parameters())  # the probe works on a copy


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_the_unrolled_cells_reproduce_the_fused_model(name):
    torch.manual_seed(0)
    model = create_model(name, in_shape=(2, 25), num_classes=1, hidden_size=16, readout="last", bidirectional=False)
    x, y = make_adding(16, 25, seed=1)
    hs, pred = unrolled_states(model, x)
    assert len(hs) == 25 and hs[0].shape == (16, 16)
    with torch.no_grad():
        torch.testing.assert_close(pred, model(x), rtol=1e-5, atol=1e-6)
        out, _ = model.layer(x.transpose(1, 2))  # (B, T, H): every h_t of the fused kernel
    torch.testing.assert_close(torch.stack(hs, 1).detach(), out, rtol=1e-5, atol=1e-6)
    norms = hidden_state_gradients(model, x, y)
    assert norms.shape == (25,) and torch.isfinite(norms).all() and (norms > 0).all()


def test_the_probe_rejects_what_it_cannot_unroll():
    model = create_model("gru", in_shape=(2, 5), num_classes=1, hidden_size=4)  # bidirectional, flatten read-out
    x, y = make_adding(2, 5, seed=0)
    with pytest.raises(ValueError, match="readout='last'"):
        hidden_state_gradients(model, x, y)


def test_loglog_slope():
    xs = [16, 32, 64, 128]
    assert abs(loglog_slope(xs, [3 * t**1.5 for t in xs]) - 1.5) < 1e-9


# -- the experiments from the CLI (quick) ---------------------------------------------------------
def test_vanishing_gradients_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("vanishing-gradients")
    rows = rec["table"]["rows"]
    assert rows[0][0] == "constant 1.0 (baseline)" and rows[0][3] == "0.1667"
    assert [(r[0], r[2]) for r in rows[1:]] == [(m, t) for m in ("RNN (tanh)", "LSTM", "GRU") for t in (10, 20)]
    params = {r[0]: r[1] for r in rows[1:]}
    assert params == {"RNN (tanh)": 4417, "LSTM": 17473, "GRU": 13121}  # H = 64, 2 inputs, 1 output
    assert all(r[6] for r in rows[1:] if r[2] == 20) and not any(r[6] for r in rows[1:] if r[2] == 10)
    assert rec["figures"] == [
        "figures/accuracy_vs_length.png",
        "figures/grad_norm_init.png",
        "figures/grad_norm_trained.png",
    ]
    assert set(rec["grad_norms"]) == {"rnn", "lstm", "gru"} and len(rec["grad_norms"]["lstm"]["init"]) == 20
    s = json.loads((exp / "lstm-T20-s0" / "summary.json").read_text())
    assert s["steps"] == 30 and s["train_examples"] == 512


def test_gru_vs_lstm_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("gru-vs-lstm", "--set", "steps=5", "--set", "mnist1d_steps=5")
    rows = rec["table"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [
        (task, model) for task in ("adding T=20", "MNIST-1D") for model in ("LSTM", "GRU", "GRU (≈ LSTM params)")
    ]
    for task in ("adding T=20", "MNIST-1D"):
        lstm, gru, gru_eq = (r for r in rows if r[0] == task)
        assert gru[4] * 4 == lstm[4] * 3  # the recurrent layer: 3 gate blocks instead of 4
        assert abs(gru_eq[3] - lstm[3]) / lstm[3] < 0.02 and gru_eq[2] > gru[2]
    assert rows[3][7] == "—" and float(rows[0][7]) > 0  # MSE only on the adding problem
    assert rec["figures"] == ["figures/accuracy.png", "figures/time_per_step.png"]
    assert "0.75×" in rec["verdict"]  # the measured recurrent-parameter ratio, 13,056 / 17,408


def test_sequential_bottleneck_quick(tmp_path, capsys, quick_experiment):
    exp, rec = quick_experiment("sequential-bottleneck")
    rows = rec["table"]["rows"]
    assert [r[0] for r in rows] == [16, 64] and [r[1] for r in rows] == [16, 64] and [r[2] for r in rows] == [1, 1]
    assert all(r[3] > 0 and r[4] > 0 for r in rows)
    assert rec["torch_threads"] == 1 and "Transformer encoder layer of layers.transformer" in rec["note"]
    assert rec["figures"] == ["figures/memory_vs_length.png", "figures/time_vs_length.png"]
    lstm_kib, fused_kib, written_kib = zip(*(r[7:10] for r in rows))  # at T = 16, 64
    assert written_kib[1] > fused_kib[1] > 0 and lstm_kib[1] > lstm_kib[0] > 0
    # the written-out weights (B, H, T, T) = 32·4·T² floats are kept: at least that much more at T = 64
    assert (written_kib[1] - fused_kib[1]) * 1024 >= 32 * 4 * 64 * 64 * 4


def test_experiment_options_are_checked(tmp_path, capsys):
    argv = ["experiment", "vanishing-gradients", "--set", "probe_length=30", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "probe_length: 30 is not one of the lengths" in capsys.readouterr().err
    argv = ["experiment", "vanishing-gradients", "--set", "models=[lstm, transformer]", "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "models.1: Input should be 'rnn', 'lstm' or 'gru' (got 'transformer')" in capsys.readouterr().err
    # option values that used to crash inside run(): one line naming the key, exit 2, nothing written
    for name, setting, message in [
        ("sequential-bottleneck", "heads=0", "heads: Input should be greater than or equal to 1 (got 0)"),
        ("sequential-bottleneck", "heads=3", "width: 64 is not divisible by heads=3"),
        ("gru-vs-lstm", "bench_repeats=0", "bench_repeats: Input should be greater than or equal to 1 (got 0)"),
        ("vanishing-gradients", "seeds=[]", "seeds: List should have at least 1 item"),
        ("vanishing-gradients", "lr=.inf", "lr: Input should be a finite number"),
        ("attention-bottleneck", "data=mnist1d", "data: 'mnist1d' has no shipped recipe mnist1d/seq2seq_context"),
    ]:
        assert main(["experiment", name, "--set", setting, "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())
