"""`archlab sample` figures of GAN and diffusion models (report/generative.py) through the shared
sampling contract, the two players' curves in a run's report, and the CLI on generative runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from archlab.report.generative import (
    data_kind,
    is_diffusion,
    is_gan,
    is_generative,
    latent_paths,
    write_generative_figures,
)
from archlab.report.latent import slerp, tool_figures


# -- tiny models keeping the contract ----------------------------------------------------------------
class _TinyGAN(nn.Module):
    """The GAN contract: ``latent_dim``, ``generate(z)`` in data units, ``sample(n, generator)``,
    ``generator`` and ``discriminator``; ``shape`` the data's example shape."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int = 3):
        super().__init__()
        self.latent_dim, self.shape = latent_dim, shape
        size = int(np.prod(shape))
        self.generator, self.discriminator = nn.Linear(latent_dim, size), nn.Linear(size, 1)

    def generate(self, z):
        out = self.generator(z).view(-1, *self.shape)
        return torch.sigmoid(out) if len(self.shape) == 3 else out

    @torch.no_grad()
    def sample(self, n, generator=None, **kw):
        return self.generate(torch.randn(n, self.latent_dim, generator=generator))


class _TinyDiffusion(nn.Module):
    """The diffusion contract: ``sample(n, generator, steps, sampler, eta, return_chain)``; records calls.
    x_t = (1 − t) noise + t · 0.5 in data units, at 10 times t = 0 … 1."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape, self.calls = shape, []
        self.w = nn.Parameter(torch.zeros(1))

    @torch.no_grad()
    def sample(self, n, generator=None, steps=None, sampler="ddpm", eta=0.0, return_chain=False):
        self.calls.append({"n": n, "steps": steps, "sampler": sampler, "eta": eta, "chain": return_chain})
        if steps is not None and steps > 50:
            raise ValueError(f"steps must be in [1, 50], got {steps}")
        noise = torch.randn(n, *self.shape, generator=generator)
        chain = [(1 - t) * noise + t * 0.5 for t in torch.linspace(0, 1, 10)]
        return (chain[-1], chain) if return_chain else chain[-1]


def test_the_contract_is_recognised():
    assert is_gan(_TinyGAN((2,))) and not is_diffusion(_TinyGAN((2,)))
    assert is_diffusion(_TinyDiffusion((2,))) and not is_gan(_TinyDiffusion((2,)))
    assert not is_generative(nn.Linear(2, 2))
    assert [data_kind(torch.zeros(s)) for s in [(5, 1, 8, 8), (5, 2), (5, 1), (5,), (5, 3, 7)]] == [
        "image", "points", "values", "values", "other"
    ]  # fmt: skip


def test_gan_interpolations_are_generate_along_slerp_paths():
    torch.manual_seed(0)
    model = _TinyGAN((1, 4, 4))
    g = torch.Generator().manual_seed(5)
    strips = latent_paths(model, pairs=2, steps=5, mode="spherical", generator=g)
    ends = torch.randn(2, 2, 3, generator=torch.Generator().manual_seed(5))  # the same draws
    for strip, (z0, z1) in zip(strips, ends):
        assert strip.shape == (5, 1, 4, 4)
        torch.testing.assert_close(strip, model.generate(slerp(z0, z1, torch.linspace(0, 1, 5))))
        torch.testing.assert_close(strip[0], model.generate(z0[None])[0])  # the path starts at G(z₀) …
        torch.testing.assert_close(strip[-1], model.generate(z1[None])[0])  # … and ends at G(z₁)


@pytest.mark.parametrize("shape", [(1, 8, 8), (2,), (1,)])
def test_gan_figures_are_written_and_listed_for_the_report(tmp_path, shape):
    torch.manual_seed(0)
    data = torch.rand(50, *shape)
    written = write_generative_figures(_TinyGAN(shape), data, tmp_path, n=16, steps=4, pairs=2, name="tiny")
    expected = ["gen-samples.png", "gen-interpolation-linear.png", "gen-interpolation-spherical.png"]
    assert [p.name for p, _ in written] == expected
    assert [p.name for p, _ in tool_figures(tmp_path)] == expected
    for p, caption in written:
        assert p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 1000 and caption.startswith("tiny: ")
    assert "16 samples G(z), z ~ N(0, I) (seed 0)" in written[0][1]


@pytest.mark.parametrize("shape", [(1, 8, 8), (2,)])
def test_diffusion_figures_pass_the_sampler_options_and_draw_the_chain(tmp_path, shape):
    model = _TinyDiffusion(shape)
    written = write_generative_figures(
        model, torch.rand(30, *shape), tmp_path, n=12, sampler="ddim", sample_steps=20, eta=0.5, name="d"
    )
    assert [p.name for p, _ in written] == ["gen-samples.png", "gen-chain.png"]
    assert [(c["sampler"], c["steps"], c["eta"], c["chain"]) for c in model.calls] == [
        ("ddim", 20, 0.5, False), ("ddim", 20, 0.5, True)
    ]  # fmt: skip
    assert model.calls[1]["n"] == (8 if len(shape) == 3 else 12)  # the chain of 8 images, or every point
    assert "DDIM, 20 steps, η = 0.5" in written[0][1] and "10 times from x_T" in written[1][1]
    assert all(p.stat().st_size > 1000 for p, _ in written)
    with pytest.raises(ValueError, match="steps must be in"):  # the model's own check reaches the caller
        write_generative_figures(model, torch.rand(30, *shape), tmp_path, n=4, sampler="ddim", sample_steps=99)
    with pytest.raises(ValueError, match="neither the GAN nor the diffusion"):
        write_generative_figures(nn.Linear(2, 2), torch.rand(30, 2), tmp_path)


# -- the report: both players' curves ----------------------------------------------------------------
def test_an_adversarial_runs_report_draws_both_players(tmp_path):
    from archlab.report.sections import run_figures

    records = [{"step": s, "split": "train", "loss": 1.0, "d_loss": 1.4 - s / 100, "g_loss": 0.7 + s / 100}
               for s in range(1, 11)]  # fmt: skip
    records.append({"step": 10, "split": "test", "loss": 1.2, "d_loss": 1.2, "g_loss": 0.9})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shown = run_figures(tmp_path, {"name": "gan"})
    assert [p.name for p, _ in shown] == ["curves-loss.png", "curves-players.png"]
    assert "the two players' losses" in shown[1][1] and shown[1][0].stat().st_size > 1000
    # a run without both players draws no such figure
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "train", "loss": 1.0, "d_loss": 2}) + "\n")
    assert [p.name for p, _ in run_figures(tmp_path, {"name": "x"})] == ["curves-loss.png"]


# -- sample metrics of a model's samples (experiments/sample_quality.py) -------------------------------
def _untrained_classifier():
    from pathlib import Path

    from archlab.experiments.feature_classifier import FeatureClassifier
    from archlab.registry import create_model

    torch.manual_seed(0)
    model = create_model("lenet5_modern", small_input=True, in_shape=(1, 28, 28)).eval()
    return FeatureClassifier(model, Path("."), float("nan"))


def test_scores_of_images_use_the_classifier_features_and_the_laplacian():
    from archlab.experiments.sample_quality import score_samples

    clf = _untrained_classifier()
    real = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    same = score_samples(real, real, classifier=clf, kid_subsets=3)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert (same["precision"], same["recall"], same["coverage"]) == (1.0, 1.0, 1.0)
    assert same["sharpness"] == same["sharpness_real"] and same["diversity"] == same["diversity_real"]
    flat = torch.full((40, 1, 28, 28), 0.5)
    blurred = score_samples(flat + 0.01 * real, real, classifier=clf, kid_subsets=3)
    assert blurred["sharpness"] == pytest.approx(1e-4 * same["sharpness_real"])  # ∇² is linear: 0.01² × Var
    assert blurred["fid"] > 0 and blurred["kid"] > 0 and blurred["diversity"] < same["diversity"]
    assert "kid_std" not in same  # subsets of all 40 examples are all alike: no spread to report
    assert score_samples(real[:30], real, classifier=clf, kid_subsets=3)["kid_std"] > 0  # 30 of 40 real: it varies
    with pytest.raises(ValueError, match="1×28×28"):
        score_samples(torch.rand(20, 1, 8, 8), torch.rand(20, 1, 8, 8), classifier=clf)
    with pytest.raises(ValueError, match="differ in shape"):
        score_samples(torch.rand(20, 1, 28, 28), torch.rand(20, 1, 8, 8), classifier=clf)


def test_scores_of_points_include_the_mode_coverage_of_a_mixture():
    from archlab.data import load_dataset
    from archlab.data.mixtures import mixture_of
    from archlab.experiments.sample_quality import score_samples

    ring = load_dataset("ring8", "test").x
    real, fake = ring[:500], ring[500:1000]
    got = score_samples(fake, real, mixture=mixture_of("ring8"), kid_subsets=5)
    assert got["modes_covered"] == 8 and got["high_quality"] > 0.99
    assert got["precision"] > 0.9 and got["coverage"] > 0.9
    one_mode = ring[ring[:, 0] > 0.9][:50]  # the points of the mode at (1, 0) only: mode collapse
    collapsed = score_samples(one_mode, real, mixture=mixture_of("ring8"), kid_subsets=5)
    assert collapsed["modes_covered"] == 1 and collapsed["coverage"] < 0.2 and collapsed["recall"] < 0.2


# -- Inception features through torch-fidelity (tasks/inception.py) -----------------------------------
_STUB = '''
import torch
from torch import nn

class FeatureExtractorInceptionV3(nn.Module):
    """A stand-in with torch-fidelity's constructor and call signature (a 1-layer net, 2048 outputs);
    records the batches it is fed."""
    seen = []

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kw):
        super().__init__()
        self.features_list = features_list
        self.fc = nn.Linear(3, 2048)
        self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=False))

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        FeatureExtractorInceptionV3.seen.append(x)
        return (self.fc(x.float().mean((2, 3))),)
'''


@pytest.fixture
def stub_fidelity(tmp_path, monkeypatch):
    """A fake ``torch_fidelity`` package on sys.path (the real one cannot import here: its torchvision
    is the CUDA build); removed from sys.modules afterwards."""
    import sys

    pkg = tmp_path / "stub" / "torch_fidelity"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "feature_extractor_inceptionv3.py").write_text(_STUB)
    monkeypatch.syspath_prepend(str(tmp_path / "stub"))
    yield
    for name in [m for m in sys.modules if m.startswith("torch_fidelity")]:
        del sys.modules[name]


class _Pickled:  # a class instance in a weights file: torch.load(weights_only=True) refuses it
    pass


def test_inception_features_without_torch_fidelity_or_weights_are_one_line(tmp_path, monkeypatch):
    import sys

    from archlab.tasks.inception import InceptionFeatures
    from archlab.utils.errors import ConfigError

    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as on a machine without it
    with pytest.raises(ConfigError, match=r"needs torch-fidelity, which could not be imported .*archlab\[inception\]"):
        InceptionFeatures(tmp_path / "w.pth")


def test_inception_features_check_the_weights_and_feed_uint8_rgb(tmp_path, stub_fidelity):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as Stub

    from archlab.tasks.inception import InceptionFeatures
    from archlab.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        InceptionFeatures(tmp_path / "missing.pth")
    torch.save({"obj": _Pickled()}, tmp_path / "code.pth")
    with pytest.raises(ConfigError, match="not a PyTorch weights file loadable without running pickled code"):
        InceptionFeatures(tmp_path / "code.pth")
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="not torch-fidelity's Inception-v3 weights"):
        InceptionFeatures(tmp_path / "other.pth")
    torch.manual_seed(0)
    weights = {"fc.weight": torch.randn(2048, 3), "fc.bias": torch.randn(2048)}
    torch.save(weights, tmp_path / "good.pth")
    features = InceptionFeatures(tmp_path / "good.pth", batch_size=3)
    grey = torch.rand(5, 1, 6, 6)
    f = features(grey)
    assert f.shape == (5, 2048) and f.dtype == torch.float64 and len(Stub.seen) == 2  # batches of 3
    rgb = torch.cat(Stub.seen)
    assert torch.equal(rgb, (grey * 255).round().to(torch.uint8).expand(-1, 3, -1, -1))  # grey → RGB uint8
    expected = rgb.float().mean((2, 3)) @ weights["fc.weight"].T + weights["fc.bias"]
    torch.testing.assert_close(f, expected.double())
    with pytest.raises(ValueError, match="1 or 3"):
        features(torch.rand(2, 2, 6, 6))


# -- the CLI: bad input before any sampling -----------------------------------------------------------
@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    import yaml

    from archlab.cli import main
    from conftest import tiny_recipe

    d = tmp_path_factory.mktemp("clf")
    (d / "r.yaml").write_text(yaml.safe_dump(tiny_recipe(**{"budget.steps": 2, "checkpoint.every": 2})))
    assert main(["train", str(d / "r.yaml"), "--runs-dir", str(d / "runs")]) == 0
    return next((d / "runs").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "{run}", "--ddim-steps", "10"], "--ddim-steps: {run} is a classification run (mlp); these options"),
        (["sample", "{run}", "--ddim-steps", "0"], "--ddim-steps must be in [1, 100,000]"),
        (["sample", "{run}", "--eta", "2"], "--eta must lie in [0, 1]"),
        (["sample", "{run}", "--eta", "0.5"], "--eta applies to the ddim sampler only"),
        (["sample", "{run}", "--sampler", "ddpm", "--ddim-steps", "5"], "--ddim-steps: the ddpm sampler takes every"),
        (["sample", "{run}"], "draws figures of an autoencoder, GAN or diffusion run"),
        (["eval", "{run}", "--inception-weights", "w.pth"], "--inception-weights: these options score samples; add"),
        (["eval", "{run}", "--samples", "5"], "--samples must be in [10, 50,000]"),
        (["eval", "{run}", "--samples", "20"], "--samples: {run} is a classification run of mlp; sample metrics score"),
    ],
)
def test_bad_sampling_input_is_one_line(classifier_run, args, message, capsys):
    from archlab.cli import main

    assert main([a.replace("{run}", str(classifier_run)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archlab: error: ") and "\n" not in err
    assert message.replace("{run}", str(classifier_run)) in err


@pytest.mark.parametrize("task", ["cyclegan", "translation_paired"])
def test_sample_and_eval_a_translation_run(tmp_path, capsys, task):
    import yaml
    from safetensors.torch import load_file

    from archlab.cli import main
    from archlab.report.latent import tool_figures
    from test_cyclegan import tiny_cyclegan

    changes = {"budget.steps": 2, "checkpoint.every": 2, "eval.every": 2, "task": {"name": task}}
    if task == "translation_paired":
        changes["data.options"] = {"paired": True}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny_cyclegan(**changes)))
    assert main(["train", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = next((tmp_path / "runs").iterdir())
    # the checkpoint holds what the task trains: the paired bound has no discriminators to save
    saved = load_file(run / "checkpoints" / "step-00000002" / "model.safetensors")
    assert any(k.startswith("discriminator.") for k in saved) == (task == "cyclegan")
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    summary = json.loads((run / "summary.json").read_text())["test"]
    evaluated = json.loads(capsys.readouterr().out)
    assert {k: evaluated[k] for k in summary} == summary
    assert main(["sample", str(run), "--n", "4"]) == 0
    shown = tool_figures(run / "figures")
    assert [p.name for p, _ in shown] == ["gen-translation.png"] and "the first 4 test images" in shown[0][1]
    assert shown[0][0].stat().st_size > 1000 and "gen-translation.png" in capsys.readouterr().out
    assert main(["sample", str(run), "--pairs", "2"]) == 2
    err = capsys.readouterr().err
    assert "--pairs: " in err and "is a translation run, which has no latent paths; its options are --n, --out" in err


# -- the CLI on real GAN and diffusion runs (tiny versions of the shipped ring8 recipes) ----------------
def _train_tiny(tmp_path_factory, recipe: str, *extra: str):
    from archlab.cli import main

    runs = tmp_path_factory.mktemp("runs")
    argv = ["train", recipe, "budget.steps=2", "checkpoint.every=2", "eval.every=2", "log.progress=false"]
    argv += ["data.batch_size=32", "data.test_subset=300", *extra, "--runs-dir", str(runs)]
    assert main(argv) == 0
    return next(runs.iterdir())


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return _train_tiny(tmp_path_factory, "ring8/gan_mlp", "model.g_hidden=[16]", "model.d_hidden=[16]")


@pytest.fixture(scope="module")
def diffusion_run(tmp_path_factory):
    return _train_tiny(
        tmp_path_factory, "ring8/ddpm_mlp", "task.options.eval_samples=50", "task.options.sample_steps=5"
    )


def test_sample_and_eval_a_gan_run(gan_run, capsys):
    from archlab.cli import main

    capsys.readouterr()
    assert main(["sample", str(gan_run), "--n", "200", "--steps", "5", "--pairs", "2"]) == 0
    names = ["gen-samples.png", "gen-interpolation-linear.png", "gen-interpolation-spherical.png"]
    assert [p.name for p, _ in tool_figures(gan_run / "figures")] == names
    capsys.readouterr()
    assert main(["eval", str(gan_run), "--samples", "100", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["samples"]
    assert (s["count"], s["real"], s["features"]) == (100, 100, "the coordinates themselves")
    assert {"fid", "kid", "precision", "recall", "density", "coverage", "modes_covered", "high_quality"} <= set(
        s["metrics"]
    )
    assert 0 <= s["metrics"]["modes_covered"] <= 8 and 0 <= s["metrics"]["coverage"] <= 1
    assert main(["eval", str(gan_run), "--samples", "100"]) == 0  # the same numbers as one more line
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("samples (100 vs 100 test examples; the coordinates themselves): fid ")
    assert f"modes_covered {s['metrics']['modes_covered']:.4g}" in last
    assert main(["sample", str(gan_run), "--ddim-steps", "5"]) == 2
    assert "is a GAN run (gan_mlp); these options choose a diffusion model's sampler" in capsys.readouterr().err
    assert main(["eval", str(gan_run), "--samples", "100", "--inception-weights", "w.pth"]) == 2
    assert "generates (2,) data, not images" in capsys.readouterr().err  # --inception-weights on 2-D points


def test_sample_and_eval_a_diffusion_run(diffusion_run, capsys):
    from archlab.cli import main

    capsys.readouterr()
    assert main(["sample", str(diffusion_run), "--n", "100", "--ddim-steps", "5"]) == 0
    shown = tool_figures(diffusion_run / "figures")
    assert [p.name for p, _ in shown] == ["gen-samples.png", "gen-chain.png"]
    assert "DDIM, 5 steps, η = 0" in shown[0][1]
    capsys.readouterr()
    assert main(["eval", str(diffusion_run), "--samples", "50", "--ddim-steps", "5", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["samples"]
    assert (s["sampler"], s["steps"], s["eta"], s["count"]) == ("ddim", 5, 0.0, 50)
    assert main(["sample", str(diffusion_run), "--pairs", "2"]) == 2
    assert "is a diffusion run, which has no latent paths" in capsys.readouterr().err


def test_a_diffusion_models_chains_report_progress_for_figures_and_metrics(tmp_path, monkeypatch):
    from archlab import create_model
    from archlab.experiments.sample_quality import draw_samples
    from archlab.utils import progress

    torch.manual_seed(0)
    model = create_model("ddpm_mlp", width=8, depth=1, timesteps=4)
    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)  # every step is a line
    lines: list[str] = []
    write_generative_figures(model, torch.randn(30, 2), tmp_path, n=10, progress=lines.append)
    assert [line.split(",")[0] for line in lines] == [
        *(f"sampling samples: {p} % of 10" for p in (25, 50, 75, 100)),
        *(f"sampling chain: {p} % of 10" for p in (25, 50, 75, 100)),  # points: the chain of every sample
    ]
    lines.clear()
    quiet = draw_samples(model, 6, seed=2, sampler="ddim", steps=2)
    assert torch.equal(draw_samples(model, 6, seed=2, progress=lines.append, sampler="ddim", steps=2), quiet)
    assert lines == [f"sampling for the metrics: {p} % of 6, ETA 0m00s" for p in (50, 100)]
