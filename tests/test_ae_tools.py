"""Autoencoder tools: the Fréchet distance (closed forms on Gaussians, the sqrtm route, sampled
estimates), the in-project feature classifier (trained once, then loaded from its cache), latent
paths (lerp/slerp), the figure writers, and `archlab sample` / `archlab embed` on autoencoder runs."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from archlab.report.latent import (
    is_autoencoder,
    is_vae,
    lerp,
    path,
    pick_pairs,
    project_2d,
    slerp,
    tool_figures,
    traversal_codes,
    write_embedding,
    write_sample_figures,
)
from archlab.tasks.frechet import (
    FeatureStatistics,
    frechet_distance,
    frechet_distance_of,
    last_linear,
    penultimate_features,
)


@pytest.fixture(scope="module")
def fashion():
    """Fashion-MNIST test images (N, 1, 28, 28) in [0, 1], or a skip where the set is not installed."""
    from archlab.data import load_dataset
    from archlab.utils.errors import DataError

    try:
        return load_dataset("fashion_mnist", "test").x
    except DataError as e:  # only "not found": a loader bug must fail, not skip
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")


def _random_psd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# -- the Fréchet distance ---------------------------------------------------------------------------
def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    """Commuting (diagonal) covariances: d² = ‖μ₁ − μ₂‖² + Σᵢ (σ₁ᵢ − σ₂ᵢ)²."""
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    got = frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_frechet_distance_in_one_dimension_and_of_equal_gaussians():
    # N(1, 2²) vs N(4, 0.5²): (1 − 4)² + (2 − 0.5)² = 11.25
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([4.0]), np.array([[0.25]])) == pytest.approx(
        11.25
    )
    rng = np.random.default_rng(1)
    mu, s = rng.normal(size=5), _random_psd(5, rng)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_agrees_with_the_sqrtm_route_on_full_covariances():
    """pytorch-fid's formula: Tr(Σ₁ + Σ₂ − 2 sqrtm(Σ₁Σ₂)) with scipy.linalg.sqrtm on the product."""
    rng = np.random.default_rng(2)
    for d in (2, 7, 20):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_psd(d, rng), _random_psd(d, rng)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean))
        ours = frechet_distance(mu1, s1, mu2, s2)
        assert ours == pytest.approx(reference, rel=1e-8)
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-8)  # symmetric


def test_frechet_distance_between_sampled_gaussians_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    d, n = 4, 200_000
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = np.diag([1.0, 2.0, 0.5, 1.0]), np.diag([1.0, 1.0, 1.0, 4.0])
    a = rng.multivariate_normal(mu1, s1, size=n)
    b = rng.multivariate_normal(mu2, s2, size=n)
    exact = 4 * 0.25 + (1 - 1) ** 2 + (2**0.5 - 1) ** 2 + (0.5**0.5 - 1) ** 2 + (1 - 2) ** 2
    est = frechet_distance_of(FeatureStatistics(d).update(a), FeatureStatistics(d).update(torch.from_numpy(b)))
    assert est == pytest.approx(exact, abs=0.03)


def test_feature_statistics_merge_equals_the_whole_and_match_numpy():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(300, 5)) * [1, 2, 3, 4, 5] + 7
    whole = FeatureStatistics(5).update(f)
    parts = FeatureStatistics(5).update(f[:100]).merge(FeatureStatistics(5).update(f[100:]))
    np.testing.assert_allclose(parts.mean, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(parts.covariance, np.cov(f, rowvar=False), rtol=1e-9)
    np.testing.assert_allclose(whole.covariance, parts.covariance, rtol=1e-9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: FeatureStatistics(3).update(np.zeros((4, 2))), "features must be (N, 3)"),
        (lambda: FeatureStatistics(2).update(np.array([[np.nan, 0.0]])), "NaN or inf"),
        (lambda: FeatureStatistics(2).update(np.zeros((1, 2))).covariance, "at least 2 feature vectors"),
        (lambda: frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), "of one D"),
        (lambda: last_linear(nn.Conv2d(1, 1, 1)), "no nn.Linear"),
    ],
)
def test_frechet_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=None) as e:
        call()
    assert message in str(e.value)


def test_penultimate_features_are_the_input_of_the_output_layer():
    from archlab.registry import create_model

    torch.manual_seed(0)
    model = create_model("lenet5_modern", small_input=True, in_shape=(1, 28, 28), num_classes=10)
    model.train()
    x = torch.rand(5, 1, 28, 28)
    f = penultimate_features(model, x, batch_size=2)
    assert f.shape == (5, 84) and model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        expected = model.act6(model.f6(model.forward_features(x)))
        torch.testing.assert_close(model.head(f), model(x))
    torch.testing.assert_close(f, expected)


def test_the_feature_classifier_is_trained_once_then_loaded_from_its_cache(tmp_path, fashion):
    from archlab.config import recipe_hash
    from archlab.experiments.feature_classifier import classifier_recipe, entropy, feature_classifier

    tiny = {"budget.steps": 2, "data.train_subset": 128, "data.test_subset": 32, "eval.every": 2}
    tiny["checkpoint.every"] = 2
    said: list[str] = []
    clf = feature_classifier(tiny, root=tmp_path, progress=said.append)
    assert clf.run_dir.parent == tmp_path and (clf.run_dir / "summary.json").is_file()
    assert said == [f"training the in-project feature classifier once (2 steps; the shipped recipe takes about 3 min "
                    f"of one core), cached in {clf.run_dir}"]  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary dir is gone
    stamp = (clf.run_dir / "summary.json").stat().st_mtime_ns
    again = feature_classifier(tiny, root=tmp_path, progress=said.append)
    assert len(said) == 1  # loaded from the cache: nothing to say
    assert again.run_dir == clf.run_dir and (clf.run_dir / "summary.json").stat().st_mtime_ns == stamp
    x = fashion[:64]
    for a, b in zip(clf.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    p = clf.probabilities(x)
    assert p.shape == (64, 10) and torch.allclose(p.sum(-1), torch.ones(64))
    h = entropy(p)
    assert ((h >= 0) & (h <= np.log(10) + 1e-6)).all()
    assert clf.frechet(x[:32], x[:32]) == pytest.approx(0.0, abs=1e-6)
    assert clf.frechet(x[:32], torch.rand(32, 1, 28, 28)) > clf.frechet(x[:32], x[32:])
    other = classifier_recipe({**tiny, "seed": 1})  # another recipe, another dir
    assert recipe_hash(other) != clf.run_dir.name == recipe_hash(classifier_recipe(tiny))


# -- latent paths ------------------------------------------------------------------------------------
def test_lerp_and_slerp_end_at_the_codes_and_slerp_keeps_the_norm():
    torch.manual_seed(0)
    z0, z1 = torch.randn(16), torch.randn(16)
    z1 = z1 / z1.norm() * z0.norm()  # equal norms: slerp stays on the sphere
    t = torch.linspace(0, 1, 9)
    for f in (lerp, slerp):
        p = f(z0, z1, t)
        assert p.shape == (9, 16)
        torch.testing.assert_close(p[0], z0)
        torch.testing.assert_close(p[-1], z1)
    norms = slerp(z0, z1, t).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((9,), float(z0.norm())))
    assert lerp(z0, z1, t).norm(dim=1)[4] < 0.99 * z0.norm()  # the chord cuts inside the sphere
    # the angle between consecutive points is constant along slerp (uniform angular speed)
    p = slerp(z0, z1, t)
    cos = torch.nn.functional.cosine_similarity(p[:-1], p[1:])
    torch.testing.assert_close(cos, cos[:1].expand(8))
    torch.testing.assert_close(slerp(z0, 2 * z0, t), lerp(z0, 2 * z0, t))  # parallel codes: lerp
    with pytest.raises(ValueError, match="at least 2 points"):
        path(z0, z1, 1)
    with pytest.raises(ValueError, match="'linear' or 'spherical'"):
        path(z0, z1, 3, "cubic")


def test_traversals_sweep_one_dimension_at_a_time():
    base, mean, std = torch.zeros(4), torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([1.0, 2.0, 1.0, 1.0])
    z = traversal_codes(base, mean, std, [1, 3], steps=5)
    assert z.shape == (10, 4)
    torch.testing.assert_close(z[:5, 1], torch.tensor([-5.0, -2.0, 1.0, 4.0, 7.0]))  # 1 + 2·(−3 … 3)
    assert (z[:5, [0, 2, 3]] == 0).all() and (z[5:, [0, 1, 2]] == 0).all()
    torch.testing.assert_close(z[5:, 3], torch.linspace(-3, 3, 5))


def test_pairs_join_examples_of_different_classes():
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    pairs = pick_pairs(len(y), y, 4, torch.Generator().manual_seed(0))
    assert len(pairs) == 4 and all(y[i] != y[j] for i, j in pairs)
    assert len({j for _, j in pairs}) == 4


def test_projections():
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(50, 2)).astype(np.float32)
    xy, how = project_2d(z2)
    assert np.array_equal(xy, z2) and "themselves" in how
    z = rng.normal(size=(50, 6)) * [10, 5, 0.1, 0.1, 0.1, 0.1]
    xy, how = project_2d(z, "pca")
    assert xy.shape == (50, 2) and "PCA" in how and ("99%" in how or "100%" in how)
    with pytest.raises(ValueError, match="one of auto, pca, umap"):
        project_2d(z, "tsne")


# -- the figure writers (on a tiny autoencoder with the family's interface) ---------------------------
class _TinyAE(nn.Module):
    """A linear autoencoder with the family's interface; ``vae=True`` adds a prior to sample."""

    def __init__(self, latent_dim: int = 3, vae: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        self.enc, self.dec = nn.Linear(16, latent_dim), nn.Linear(latent_dim, 16)
        if vae:
            self.sample_prior = lambda n, generator=None: self.decode(torch.randn(n, latent_dim, generator=generator))

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 4, 4)


@pytest.mark.parametrize("vae", [False, True])
def test_sample_figures_are_written_and_listed_for_the_report(tmp_path, vae):
    from archlab.report.sections import run_figures

    torch.manual_seed(0)
    model = _TinyAE(vae=vae)
    assert is_autoencoder(model) and is_vae(model) == vae and not is_autoencoder(nn.Linear(2, 2))
    x, y = torch.rand(40, 1, 4, 4), torch.arange(40) % 4
    written = write_sample_figures(model, x, y, tmp_path / "figures", n=8, steps=4, pairs=2, name="tiny")
    names = [p.name for p, _ in written]
    expected = ["ae-reconstructions.png", "ae-interpolation-linear.png", "ae-traversals.png"]
    if vae:
        expected = ["ae-prior-samples.png", *expected[:2], "ae-interpolation-spherical.png", expected[2]]
    assert names == expected
    for p, caption in written:
        assert p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 1000 and caption.startswith("tiny: ")
    assert [p.name for p, _ in tool_figures(tmp_path / "figures")] == expected
    emb = write_embedding(model, x, y, tmp_path / "latents", tmp_path / "figures", method="pca", classes="abcd")
    z = np.load(emb["latents"])
    assert z.shape == (40, 3) and z.dtype == np.float32 and np.array_equal(np.load(emb["labels"]), y.numpy())
    np.testing.assert_allclose(z, model.encode(x).detach().numpy(), rtol=1e-6)
    assert "PCA of the 3-dimensional codes" in emb["projection"]
    # the run's report shows them after its learning curves (a run with metrics)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "train", "loss": 1.0}) + "\n")
    shown = [p.name for p, _ in run_figures(tmp_path, {"name": "tiny"})]
    assert shown == ["curves-loss.png", *expected, "ae-embedding.png"]
    (tmp_path / "figures" / "tools.json").write_text("{damaged")
    assert [p.name for p, _ in run_figures(tmp_path, {"name": "tiny"})] == ["curves-loss.png"]


# -- the CLI on autoencoder runs -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, fashion):
    """A VAE run (2 steps, latent 4, 64 test images) trained from the shipped recipe."""
    from archlab.cli import main

    runs = tmp_path_factory.mktemp("runs")
    argv = ["train", "fashion_mnist/vae_mlp", "budget.steps=2", "data.train_subset=128", "data.test_subset=64"]
    argv += ["model.latent_dim=4", "checkpoint.every=2", "eval.every=2", "log.progress=false", "--runs-dir", str(runs)]
    assert main(argv) == 0
    return next(runs.iterdir())


def test_sample_and_embed_an_autoencoder_run_and_show_them_in_its_report(vae_run, capsys):
    from archlab.cli import main

    assert main(["sample", str(vae_run), "--n", "16", "--steps", "5", "--pairs", "2"]) == 0
    out = capsys.readouterr().out
    figs = vae_run / "figures"
    for name in ("prior-samples", "reconstructions", "interpolation-linear", "interpolation-spherical", "traversals"):
        assert f"ae-{name}.png" in out and (figs / f"ae-{name}.png").stat().st_size > 1000
    assert main(["embed", str(vae_run), "--projection", "pca"]) == 0
    z, y = np.load(vae_run / "latents" / "latents.npy"), np.load(vae_run / "latents" / "labels.npy")
    assert z.shape == (64, 4) and y.shape == (64,) and set(y.tolist()) <= set(range(10))
    assert "64 codes of 4 dimensions" in capsys.readouterr().out
    assert main(["report", str(vae_run.parent)]) == 0
    html = (vae_run.parent / "report.html").read_text()
    assert "prior z ~ N(0, I)" in html and "spherical interpolation" in html and "latent codes of 64 test" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "{run}", "--n", "0"], "--n must be in [1, 1,024] examples"),
        (["sample", "{run}", "--steps", "1"], "--steps must be in [2, 64]"),
        (["sample", "{run}", "--pairs", "100"], "--pairs must be in [1, 32]"),
        (["embed", "{run}", "--limit", "1"], "--limit must be at least 2"),
        (["embed", "{run}", "--projection", "tsne"], "invalid choice: 'tsne'"),
        (["embed", "/nonexistent/run"], "/nonexistent/run is not an archlab run"),
        (["sample", "{run}", "--prompt", "hi", "--top-p", "0.9"], "--prompt, --top-p: {run} is an autoencoder run"),
    ],
)
def test_bad_input_to_sample_and_embed_is_one_line(vae_run, args, message, capsys):
    from archlab.cli import main

    code = None
    try:
        code = main([a.replace("{run}", str(vae_run)) for a in args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    message = message.replace("{run}", str(vae_run))  # a text option to an autoencoder was ignored silently
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_embed_refuses_a_classifier_run(tmp_path, capsys, fashion):
    from archlab.cli import main

    argv = ["train", "fashion_mnist/mlp", "budget.steps=1", "data.train_subset=128", "data.test_subset=32"]
    assert main([*argv, "log.progress=false", "checkpoint.every=1", "--runs-dir", str(tmp_path)]) == 0
    run = next(tmp_path.iterdir())
    capsys.readouterr()
    assert main(["embed", str(run)]) == 2
    err = capsys.readouterr().err
    assert "`archlab embed` needs an autoencoder run" in err and err.count("\n") == 1
    assert main(["sample", str(run)]) == 2
    assert "draws figures of an autoencoder, GAN or diffusion run" in capsys.readouterr().err


def test_sample_and_embed_take_the_whole_test_set_of_a_run_without_a_test_subset(fashion):
    # a shipped recipe sets no data.test_subset: `archlab sample`/`embed` on its run once raised a TypeError
    from types import SimpleNamespace

    from archlab.cli import _test_examples

    data = SimpleNamespace(name="fashion_mnist", data_dir=None, options={}, test_subset=None)
    run = SimpleNamespace(recipe=SimpleNamespace(data=data))
    x, y = _test_examples(run)
    assert x.shape == fashion.shape and len(y) == len(fashion)
    assert _test_examples(run, 5)[0].shape == (5, 1, 28, 28)
    data.test_subset = 3
    assert len(_test_examples(run, 5)[1]) == 3
