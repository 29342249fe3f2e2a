"""Registry behaviour and the registry-wide model checks (timm-style)."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_model, save_model

from archlab import count_params, create_model, list_models
from archlab.registry import ModelConfig, get_model_entry, list_families, register_model
from archlab.utils.errors import ConfigError, RegistryError, ShapeError, UnknownModelError
from archlab.utils.shapes import AtLeast


def test_every_family_has_models():
    assert {"feedforward", "cnn", "rnn"} <= set(list_families())
    assert set(list_models("feedforward")) == {"perceptron", "logistic_regression", "mlp"}


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError) as e:
        create_model("mpl")
    assert "unknown model 'mpl'" in str(e.value) and "mlp" in str(e.value)
    with pytest.raises(UnknownModelError, match="did you mean: gru"):
        create_model("gur")


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="did you mean: cnn"):
        list_models("cnnn")


def test_duplicate_registration_raises():
    from archlab.models.feedforward.mlp import MLPConfig

    with pytest.raises(RegistryError, match="already registered"):

        @register_model(family="feedforward", config=MLPConfig, paper="x")
        def mlp(**kw):  # noqa: ARG001
            raise AssertionError


def test_bad_override_key_and_type():
    with pytest.raises(ConfigError, match=r"model\.widht: unknown option .*did you mean: width"):
        create_model("mlp", widht=3)
    with pytest.raises(ConfigError, match=r"model\.depth: .*integer"):
        create_model("mlp", depth="deep")
    with pytest.raises(ConfigError, match="activation 'rel'"):
        create_model("mlp", activation="rel")


@pytest.mark.parametrize("name", list_models())
def test_builder_called_directly_builds_its_own_variant(name):
    """``from archlab.models.cnn.resnet import resnet50; resnet50()`` is a ResNet-50, not the config's
    default ResNet-18: a builder applies its variant's ``defaults`` itself (issue 9 §1)."""
    entry = get_model_entry(name)
    builder = getattr(importlib.import_module(entry.module), name)
    assert builder is entry.builder
    with torch.device("meta"):
        direct, registered = builder(), create_model(name)
    assert count_params(direct) == count_params(registered)
    assert direct.config == registered.config
    for key, value in entry.defaults.items():
        assert getattr(direct.config, key) == value, key


def test_direct_builder_overrides_win_and_typos_are_caught():
    from archlab.models.cnn.resnet import resnet50

    with torch.device("meta"):
        assert count_params(resnet50()) == 25_557_032
        narrow = resnet50(width=32, num_classes=10)
    assert narrow.config.block == "bottleneck" and narrow.config.layers == (3, 4, 6, 3)
    assert narrow.config.width == 32 and narrow.fc.out_features == 10
    with torch.device("meta"):
        assert count_params(resnet50(layers=(2, 2, 2, 2), block="basic")) == 11_689_512  # the caller wins
    with pytest.raises(ConfigError, match=r"model\.widht: unknown option for model 'resnet50'.*did you mean: width"):
        resnet50(widht=32)


@pytest.mark.parametrize("name", list_models())
def test_published_counts_are_the_measured_ones(name):
    """Every model publishes its parameter count and MACs once, in ``register_model(meta=...)``
    (torchvision's ``meta["num_params"]``/``_ops``); here both are measured on the meta device at the
    variant's default config: parameters exactly, MACs within 2 % (published figures are rounded)."""
    from archlab.utils.counting import count_flops, example_inputs

    meta = get_model_entry(name).meta
    assert {"num_params", "macs"} <= set(meta), f"{name}: register_model(meta=...) lacks num_params/macs"
    with torch.device("meta"):
        model = create_model(name)
        macs = count_flops(model, example_inputs(model)) / 2
    assert count_params(model) == meta["num_params"]
    assert macs == pytest.approx(meta["macs"], rel=0.02)


@pytest.mark.parametrize("name", list_models())
def test_config_built_without_the_registry_fails_like_create_model(name):
    """A config validates itself (ModelConfig): the same one-line ConfigError whether it is built
    directly, by the builder or by create_model (issue 9 §6)."""
    entry = get_model_entry(name)
    assert issubclass(entry.config, ModelConfig)
    key = _an_int_field(entry.config)
    with pytest.raises(ConfigError) as direct:
        entry.config(**{key: "ten"})
    with pytest.raises(ConfigError) as built:
        entry.builder(**{key: "ten"})
    with pytest.raises(ConfigError) as registered:
        create_model(name, **{key: "ten"})
    assert str(direct.value) == str(built.value) == str(registered.value)
    assert str(direct.value).startswith(f"model.{key}: Input should be a valid integer")
    assert str(direct.value).endswith("(got ten)")  # utils.errors.preview: a string as itself


def _an_int_field(config: type) -> str:
    """``num_classes`` where the model has class outputs, else the config's first integer field
    (an autoencoder's ``latent_dim``)."""
    import dataclasses

    fields = dataclasses.fields(config)
    names = [f.name for f in fields]
    if "num_classes" in names:
        return "num_classes"
    return next(f.name for f in fields if type(f.default) is int)


def _prediction(out):
    """The predicted tensor of a forward call: the output itself, or the first field of a NamedTuple
    output (an autoencoder's ``(recon, z, …)``)."""
    return out[0] if isinstance(out, tuple) else out


def _output_tail(model, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one example's prediction: (num_classes,) for a model with class outputs, else the
    input's own shape (a reconstruction)."""
    return (model.config.num_classes,) if hasattr(model.config, "num_classes") else tuple(input_shape)


def test_config_ranges_and_coercion():
    from archlab.models.cnn.resnet import ResNetConfig
    from archlab.models.cnn.resnet_cifar import CifarResNetConfig

    with pytest.raises(ConfigError, match=r"^model\.depth: Input should be a valid integer.*\(got x\)$"):
        CifarResNetConfig(depth="x")
    with pytest.raises(ConfigError, match=r"^model\.width: Input should be greater than or equal to 1 \(got -3\)$"):
        ResNetConfig(width=-3)
    with pytest.raises(ConfigError, match=r"^model\.in_shape\.1: Input should be greater than or equal to 1"):
        ResNetConfig(in_shape=(3, 0, 32))
    with pytest.raises(ConfigError, match=r"^model\.dropout: Input should be less than 1 \(got 1\.5\)$"):
        create_model("alexnet", dropout=1.5)
    with pytest.raises(ConfigError, match=r"^model\.drop_path_rate: Input should be a finite number"):
        create_model("convnext_atto", drop_path_rate=float("nan"))
    with pytest.raises(ConfigError, match=r"^model\.in_shape: Input should be a valid tuple \(got x{20,80}…x+\)$"):
        ResNetConfig(in_shape="x" * 10_000)  # the message shows a bounded preview
    cfg = ResNetConfig(in_shape=[3, 32, 32], layers=[1, 1])  # YAML lists become the annotated tuples
    assert cfg.in_shape == (3, 32, 32) and cfg.layers == (1, 1)


def test_published_parameter_counts_follow_from_the_arithmetic():
    # MNIST-1D paper models (Greydanus & Kobak 2024): the MLP and the linear model by hand
    published = {n: get_model_entry(n).meta["num_params"] for n in ("mlp", "logistic_regression", "perceptron")}
    assert published["mlp"] == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert published["logistic_regression"] == published["perceptron"] == 40 * 10 + 10
    assert count_params(create_model("mlp", in_shape=(1, 40))) == published["mlp"]


def _readme_model_rows() -> list[tuple[list[str], str]]:
    """(model names, params cell) of each row of the README's model table."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = []
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 4 or cells[1] not in list_families():
            continue
        names = []
        for token in re.findall(r"`([\w/]+)`", cells[0]):
            first, *rest = token.split("/")  # densenet121/161/169 and convnext_atto/tiny: shared stem
            stem = first.rsplit("_", 1)[0] + "_" if "_" in first else re.sub(r"\d+$", "", first)
            names += [first, *(stem + r for r in rest)]
        rows.append((names, cells[2]))
    return rows


def test_readme_model_table_matches_the_published_counts():
    """Every figure in the README's params column is the register_model(meta=...) count of a model named
    in its row: exact numbers exactly, "11.7M" rounded to the digits shown."""
    rows = _readme_model_rows()
    assert len(rows) >= 15
    checked = 0
    for names, cell in rows:
        published = [get_model_entry(n).meta["num_params"] for n in names]  # unknown names fail here
        for figure in re.findall(r"\d{1,3}(?:,\d{3})+|\d+\.\d+M|\b\d{3,}\b", cell):
            if figure.endswith("M"):
                digits = len(figure[:-1].split(".")[1])
                ok = any(round(p / 1e6, digits) == float(figure[:-1]) for p in published)
            else:
                ok = int(figure.replace(",", "")) in published
            assert ok, f"README: {figure} is not the published count of any of {names} ({published})"
            checked += 1
    assert checked >= 30  # 38 figures in the table today


_PROBE = """
import sys
from archlab.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # argparse's --help exits 0
    code = e.code
print("torch imported:", "torch" in sys.modules, "exit", code)
"""


def _cli_probe(tmp_path, *args: str) -> subprocess.CompletedProcess:
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "ARCHLAB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_help_does_not_import_torch(tmp_path):
    """``archlab --help`` answers before torch is imported (4.5 s on the AMD machine; issue 14 §5)."""
    out = _cli_probe(tmp_path, "--help")
    assert "usage: archlab" in out.stdout and "torch imported: False exit 0" in out.stdout, out.stderr
    out = _cli_probe(tmp_path, "list", "--help")
    assert "--family" in out.stdout and "torch imported: False exit 0" in out.stdout, out.stderr
    probe = "import sys, archlab; print('torch' in sys.modules, archlab.create_model.__module__)"
    lazy = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert lazy.stdout.split() == ["False", "archlab.registry.models"]  # PEP 562: loaded on first use


def test_list_reads_the_catalog_without_importing_torch(tmp_path):
    """``archlab list`` builds the catalog once (it imports the models), caches it under the hash of the
    model sources, and later answers from it without torch — with the exact published counts."""
    first = _cli_probe(tmp_path, "list", "--macs")
    assert "torch imported: True exit 0" in first.stdout, first.stderr
    cached = list((tmp_path / "cache").glob("models-*.json"))
    assert len(cached) == 1
    again = _cli_probe(tmp_path, "list", "--macs")
    assert "torch imported: False exit 0" in again.stdout, again.stderr
    for text in (first.stdout, again.stdout):
        assert "25,557,032" in text and "4.09G" in text and "3×224×224" in text  # resnet50
        assert "143,678,248" in text and "5,210" in text  # vgg19_bn, cnn1d: exact
    cached[0].write_text("{not json")  # a damaged catalog is rebuilt, not trusted
    assert "exit 0" in _cli_probe(tmp_path, "list", "--family", "rnn").stdout
    assert json.loads(cached[0].read_text())[0]["name"] == list_models()[0]  # rebuilt: alphabetical
    bad = _cli_probe(tmp_path, "list", "--family", "cnnn")
    assert "unknown family 'cnnn' (did you mean: cnn" in bad.stderr and "exit 2" in bad.stdout


def test_catalog_rows_are_the_registry_metadata():
    from archlab.registry.catalog import build_catalog, sources_hash

    rows = build_catalog()
    assert [r["name"] for r in rows] == list_models()
    for r in rows:
        e = get_model_entry(r["name"])
        assert (r["num_params"], r["macs"], r["family"]) == (e.meta["num_params"], e.meta["macs"], e.family)
        assert tuple(r["in_shape"]) == tuple(e.default("in_shape"))
    assert len(sources_hash()) == 64 and sources_hash() == sources_hash()


def test_meta_with_unknown_keys_is_refused():
    from archlab.models.feedforward.mlp import MLPConfig

    with pytest.raises(RegistryError, match="meta takes"):

        @register_model(family="feedforward", config=MLPConfig, paper="x", meta={"params": 3})
        def mlp_with_bad_meta(**kw):  # noqa: ARG001
            raise AssertionError


def test_wrong_input_shape_says_expected_vs_got():
    m = create_model("cnn1d")
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, 40\), got \(8, 40\)"):
        m(torch.zeros(8, 40))
    with pytest.raises(ShapeError, match=r"expected shape \(B, 40\), got \(2, 1, 41\)"):
        create_model("mlp")(torch.zeros(2, 1, 41))


# token-id, graph, GAN and diffusion models: their inputs (token ids; nodes with an edge index; x_t with the step t)
# come from example_inputs; a GAN's forward takes the latent z (its input_spec is the data's shape, what D reads
# and G writes)
_TOKEN_TASKS = {
    "language_modeling",
    "seq2seq",
    "node_classification",
    "graph_classification",
    "masked_lm",
    "gan",
    "diffusion",
}


def _with_size(shape: tuple[int, ...], dim: int, size: int) -> tuple[int, ...]:
    return (*shape[:dim], size, *shape[dim + 1 :])


@pytest.mark.parametrize("name", [n for n in list_models() if not _TOKEN_TASKS & set(get_model_entry(n).tasks)])
def test_shape_check_states_the_real_constraint(name):
    """``model.input_spec`` is the architecture's constraint, dimension by dimension (issue 14 §5): a fixed
    size (channels; H×W before a flatten) refuses any other, ``AtLeast`` accepts its minimum and refuses
    one less, a free size accepts another size. Built and run on the meta device (shapes only)."""
    with torch.device("meta"):
        model = create_model(name).eval()
    spec = model.input_spec
    assert len(spec) == len(model.input_shape)
    canonical = (2, *model.input_shape)
    accepted = list(canonical)  # every free size moved off the canonical one, to its minimum where it has one
    for dim, want in enumerate(spec, start=1):
        if isinstance(want, int):
            with pytest.raises(ShapeError, match=r"expected shape \(B, "):
                model(torch.zeros(_with_size(canonical, dim, want + 1), device="meta"))
        elif isinstance(want, AtLeast) and want.min > 1:
            accepted[dim] = want.min
            with pytest.raises(ShapeError, match=f"{want.name}≥{want.min}"):
                model(torch.zeros(_with_size(canonical, dim, want.min - 1), device="meta"))
        else:
            accepted[dim] = canonical[dim] // 2 + 3
    pred = _prediction(model(torch.zeros(accepted, device="meta")))
    assert pred.shape == (2, *_output_tail(model, accepted[1:]))


def test_resnet18_takes_cifar_sized_images():
    """timm's and torchvision's ResNet-18 take 32×32 images; so does ours (issue 14 §5)."""
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
        assert model(torch.randn(1, 3, 48, 40)).shape == (1, 1000)  # nor need H = W
    with pytest.raises(ShapeError, match=r"expected shape \(B, 3, H≥32, W≥32\), got \(2, 3, 16, 16\)"):
        model(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ShapeError, match=r"expected shape \(B, 3, H≥32, W≥32\), got \(2, 1, 32, 32\)"):
        model(torch.zeros(2, 1, 32, 32))  # channels are fixed by conv1


@pytest.mark.parametrize(
    ("name", "overrides", "spec"),
    [
        ("resnet50", {}, (3, AtLeast("H", 32), AtLeast("W", 32))),  # total stride 32
        ("resnet18", {"small_input": True}, (3, AtLeast("H", 8), AtLeast("W", 8))),
        ("resnet20", {}, (3, AtLeast("H", 4), AtLeast("W", 4))),  # two halvings
        ("vgg16", {}, (3, AtLeast("H", 32), AtLeast("W", 32))),  # five 2×2 pools, then the 7×7 adaptive pool
        ("alexnet", {}, (3, AtLeast("H", 63), AtLeast("W", 63))),  # conv1 11/4 and three 3/2 pools leave 1×1
        ("squeezenet1_0", {}, (3, AtLeast("H", 21), AtLeast("W", 21))),
        ("densenet121", {}, (3, AtLeast("H", 29), AtLeast("W", 29))),  # stem ÷4, three transitions need 2×2
        ("convnext_tiny", {}, (3, AtLeast("H", 32), AtLeast("W", 32))),
        ("efficientnet_b0", {}, (3, "H", "W")),  # padded convolutions, global pooling
        ("mobilenet_v1", {"resolution_mult": 4 / 7}, (3, "H", "W")),
        ("lenet5", {}, (1, 32, 32)),  # F6 reads the flattened C5 map
        ("lenet5", {"small_input": True, "in_shape": (1, 28, 28)}, (1, 28, 28)),
        ("cnn1d", {}, (1, 40)),
        ("fcn1d", {}, (1, "T")),
        ("mlp", {}, (40,)),
        ("gru", {}, (1, 40)),  # the flatten read-out (MNIST-1D paper) fixes T
        ("gru", {"readout": "last"}, (1, "T")),
        ("lstm", {"vocab_size": 50, "in_shape": (20,)}, ("T",)),  # token ids (B, T)
        ("lstm_forecaster", {}, (1, "L")),
    ],
)
def test_input_spec_per_family(name, overrides, spec):
    with torch.device("meta"):
        assert create_model(name, **overrides).input_spec == spec


def test_equations_come_from_the_module_docstring():
    eq = get_model_entry("gru").equations()
    assert "r_t = σ(" in eq and "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}" in eq
    assert get_model_entry("mlp").equations().startswith("h_0 = flatten(x)")


@pytest.mark.parametrize("name", list_models())
def test_model_forward_backward_and_roundtrip(name, tmp_path):
    """Every registered model: declared output shape, finite, a gradient on every parameter,
    and a safetensors round trip that reproduces the outputs."""
    torch.manual_seed(0)
    overrides = get_model_entry(name).test_overrides
    model = create_model(name, **overrides)
    x = _example(model, 3)
    outs = model(*x)
    out = _prediction(outs)
    tail = _output_tail(model, model.input_shape)
    assert out.shape[0] == 3 and out.shape[-len(tail) :] == tail
    if out.dim() > 2 and hasattr(model.config, "num_classes"):  # per-step outputs (LMs, decoders): (B, T, V)
        assert out.shape[1] == x[-1].shape[1]
    every = list(outs) if isinstance(outs, tuple) else [outs]  # an autoencoder's code, μ, log σ² too
    assert all(torch.isfinite(t).all() for t in every)
    sum(t.square().mean() for t in every).backward()
    # a growing GAN's other-resolution layers are unused at its current stage (progan: they are named)
    inactive = model.inactive_parameters() if hasattr(model, "inactive_parameters") else set()
    for pname, p in model.named_parameters():
        if pname in inactive:
            assert p.grad is None, f"{name}.{pname} is declared inactive but got a gradient"
            continue
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all()
    path = tmp_path / "m.safetensors"
    save_model(model, str(path))
    clone = create_model(name, **overrides)
    load_model(clone, str(path))
    model.eval()
    clone.eval()
    torch.testing.assert_close(clone(*x), model(*x), rtol=0, atol=0)


def _example(model, batch: int) -> tuple[torch.Tensor, ...]:
    """A model's own example input (token ids, source + target) or a random signal/image."""
    if hasattr(model, "example_inputs"):
        return model.example_inputs(batch)
    return (torch.randn(batch, *model.input_shape),)


@pytest.mark.parametrize("name", list_models())
def test_forward_features_and_head_compose(name):
    model = create_model(name, **get_model_entry(name).test_overrides).eval()
    if not all(callable(getattr(model, f, None)) for f in ("forward_features", "forward_head")):
        pytest.skip(
            f"{name} is a per-step or per-node model (language model, decoder, node-level GNN): nothing to compose"
        )
    x = _example(model, 2)
    torch.testing.assert_close(model.forward_head(model.forward_features(*x)), model(*x))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forecaster_takes_its_layer_from_the_one_recurrent_layers_map(cell):
    from archlab.layers.recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN
    from archlab.models.rnn import forecaster

    assert RECURRENT_LAYERS == {"rnn": RNN, "lstm": LSTM, "gru": GRU}
    assert not hasattr(forecaster, "_LAYERS")  # no private copy of the map (issue 9 §6)
    model = create_model("lstm_forecaster", cell=cell, hidden_size=8)
    assert type(model.rnn) is RECURRENT_LAYERS[cell] and model.rnn.hidden_size == 8
    assert type(create_model("gru_forecaster").rnn) is GRU


def test_mlp_options():
    m = create_model("mlp", in_shape=(1, 8, 8), depth=3, width=16, batch_norm=True, dropout=0.5, activation="gelu")
    kinds = [type(layer).__name__ for layer in m.features]
    assert kinds.count("Linear") == 3 and kinds.count("BatchNorm1d") == 3 and kinds.count("Dropout") == 3
    assert all(layer.bias is None for layer in m.features if isinstance(layer, torch.nn.Linear))
    assert len(create_model("mlp", depth=0).features) == 0


def test_gru_readouts():
    for readout, n_head_in in (("flatten", 12 * 40), ("last", 12), ("mean", 12)):
        m = create_model("gru", readout=readout)
        assert m.head.in_features == n_head_in
        assert m(torch.randn(2, 1, 40)).shape == (2, 10)


@pytest.mark.parametrize("batch", [1, 64])
def test_flops_of_recurrent_layers_are_counted_on_every_kernel_path(batch):
    """torch's counter cannot see the fused CPU LSTM kernel (batch > 1); count_flops fills it in from
    the equations: 2 · 4H · (I + H) per step, layer and example."""
    from archlab.utils.counting import count_flops

    lstm = torch.nn.LSTM(32, 16, num_layers=2, batch_first=True)
    expected = 2 * 4 * 16 * (32 + 16) * 10 * batch + 2 * 4 * 16 * (16 + 16) * 10 * batch
    assert count_flops(lstm, torch.zeros(batch, 10, 32)) == expected
    # with a projection (P = 8): gates read I + P, the projection costs 2·H·P, the next layer reads P
    proj = torch.nn.LSTM(32, 16, num_layers=2, batch_first=True, proj_size=8)
    expected = (2 * 4 * 16 * (32 + 8) + 2 * 16 * 8) * 10 * batch + (2 * 4 * 16 * (8 + 8) + 2 * 16 * 8) * 10 * batch
    assert count_flops(proj, torch.zeros(batch, 10, 32)) == expected
    # and our equation-level loop, which torch's counter sees matrix by matrix, agrees
    from archlab.layers.recurrent import LSTM

    cells = LSTM(32, 16, num_layers=2, batch_first=True, proj_size=8, impl="cells")
    assert count_flops(cells, torch.zeros(batch, 10, 32)) == expected
