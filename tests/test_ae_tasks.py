"""Autoencoder tasks (reconstruction, denoising, VAE, anomaly), their data (Shuttle, one class vs the
rest) and bad input: metrics against formulas and independent libraries, one-line errors."""

import math

import numpy as np
import pytest
import torch

from archlab.cli import main
from archlab.config import ModelSpec, TaskSpec
from archlab.data import ArrayDataset, Batch, dataset_info, load_dataset
from archlab.data.anomaly import one_class_vs_rest
from archlab.models.autoencoder.denoising import corrupt
from archlab.tasks import build_task
from archlab.tasks.anomaly import isolation_forest_roc_auc, ranking_metrics
from archlab.utils.errors import ConfigError
from archlab.utils.seed import derive_seed

TINY = {"hidden": [8], "latent_dim": 2}


def _task(name: str, data: str = "fashion_mnist", loss: str | None = None, options: dict | None = None, seed=0):
    return build_task(TaskSpec(name=name, loss=loss, options=options or {}), dataset_info(data), seed=seed)


def _batches(x: torch.Tensor, y: torch.Tensor | None = None, size: int = 4) -> list[Batch]:
    y = torch.zeros(len(x), dtype=torch.long) if y is None else y
    return [Batch(x=x[i : i + size], y=y[i : i + size]) for i in range(0, len(x), size)]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 28, 28, generator=g)


def test_reconstruction_metrics_are_the_formulas(images):
    from skimage.metrics import structural_similarity

    task = _task("reconstruction")
    torch.manual_seed(0)
    model = task.build_model(ModelSpec(name="ae_mlp", **TINY)).eval()
    assert model.config.likelihood == "bernoulli" and model.input_shape == (1, 28, 28)  # from task.loss and the data
    got = task.evaluate(model, _batches(images))
    with torch.no_grad():
        x_hat = model.decode(model.encode(images))
        terms = model.loss_terms(images)
    assert got["mse"] == pytest.approx((x_hat - images).square().mean().item(), rel=1e-5)
    assert got["reconstruction"] == pytest.approx(terms["reconstruction"].item(), rel=1e-5)
    psnr = [10 * math.log10(1 / (x_hat[i] - images[i]).square().mean().item()) for i in range(8)]
    assert got["psnr"] == pytest.approx(sum(psnr) / 8, rel=1e-5)
    ssim = [
        structural_similarity(
            x_hat[i, 0].numpy(), images[i, 0].numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
        for i in range(8)
    ]  # fmt: skip
    assert got["ssim"] == pytest.approx(sum(ssim) / 8, abs=0.01)  # torchmetrics crops the border, skimage pads
    halves = task.accumulate(model, _batches(images[:4])).merge(task.accumulate(model, _batches(images[4:])))
    assert halves.compute() == pytest.approx(got, rel=1e-6)  # accumulators merge (data-parallel evaluation)


def test_task_loss_picks_the_likelihood_and_refuses_a_contradiction():
    task = _task("reconstruction", "mnist1d", loss="mse")
    model = task.build_model(ModelSpec(name="ae_conv", channels=[4], latent_dim=3))
    assert model.config.likelihood == "gaussian" and model.input_shape == (1, 40)
    assert "psnr" not in task.new_metrics() and "ssim" not in task.new_metrics()  # signals: no image metrics
    with pytest.raises(ConfigError, match=r"model\.likelihood: 'gaussian' contradicts task\.loss 'bce'"):
        _task("reconstruction").build_model(ModelSpec(name="ae_mlp", likelihood="gaussian"))
    with pytest.raises(ConfigError, match=r"model\.name: 'mlp' is not an autoencoder"):
        _task("reconstruction").build_model(ModelSpec(name="mlp"))
    with pytest.raises(ConfigError, match=r"'ae_mlp' is not a VAE"):
        _task("vae").build_model(ModelSpec(name="ae_mlp"))


def test_vae_task_logs_the_elbo_terms_and_warms_up_the_kl(images):
    task = _task("vae", options={"iwae_samples": 5})
    torch.manual_seed(0)
    model = task.build_model(ModelSpec(name="vae_mlp", kl_warmup_steps=10, **TINY))
    task.set_progress(0, 100)
    loss, logs = task.training_loss(model, Batch(x=images, y=torch.zeros(8)))
    assert logs["kl_weight"] == 0.0 and loss.item() == pytest.approx(logs["reconstruction"].item())
    assert logs["elbo"].item() == pytest.approx(-(logs["reconstruction"] + logs["kl"]).item())
    model.eval()
    first, again = task.evaluate(model, _batches(images)), task.evaluate(model, _batches(images))
    assert first == again  # seeded sampling: every evaluation sees the same z
    assert first["elbo"] == pytest.approx(-(first["reconstruction"] + first["kl"]), rel=1e-5)
    assert {"log_likelihood", "kl", "psnr", "ssim"} <= set(first)
    with pytest.raises(ConfigError, match="task.options.iwae_samples: -1 < 0"):
        _task("vae", options={"iwae_samples": -1})


def test_denoising_task_scores_the_same_corrupted_images_every_time():
    task = _task("denoising", options={"corruption": "masking", "noise_level": 0.25}, seed=3)
    torch.manual_seed(0)
    model = task.build_model(ModelSpec(name="ae_mlp", **TINY)).eval()
    x = torch.full((8, 1, 28, 28), 0.5)
    got = task.evaluate(model, _batches(x, size=8))
    assert got == task.evaluate(model, _batches(x, size=8))
    g = torch.Generator().manual_seed(derive_seed(3, 0xAE))
    x_tilde = corrupt(x, "masking", 0.25, g)
    expected = np.mean([10 * math.log10(1 / (x_tilde[i] - x[i]).square().mean().item()) for i in range(8)])
    assert got["psnr_corrupted"] == pytest.approx(expected, rel=1e-5)
    assert got["psnr_corrupted"] == pytest.approx(10 * math.log10(1 / (0.25 * 0.25)), abs=0.2)  # ν·0.5² error
    with torch.no_grad():
        denoised = model.decode(model.encode(x_tilde))
    assert got["mse_denoised"] == pytest.approx((denoised - x).square().mean().item(), rel=1e-5)
    dae = _task("denoising").build_model(ModelSpec(name="denoising_ae", **TINY))  # its own corruption
    assert dae.config.corruption == "masking"
    with pytest.raises(ConfigError, match="model 'ae_mlp' has no corruption of its own"):
        _task("denoising").build_model(ModelSpec(name="ae_mlp"))
    with pytest.raises(ConfigError, match=r"task\.options\.noise_level: 1\.5 is out of range"):
        _task("denoising", options={"corruption": "salt_pepper", "noise_level": 1.5})


def test_anomaly_task_ranks_by_reconstruction_error():
    assert ranking_metrics(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])) == {"roc_auc": 1.0, "pr_auc": 1.0}
    assert ranking_metrics(np.array([0.9, 0.1, 0.2, 0.3]), np.array([0, 0, 1, 1]))["roc_auc"] == 0.5
    task = build_task(TaskSpec(name="anomaly", loss="mse"), dataset_info("shuttle"))
    torch.manual_seed(0)
    model = task.build_model(ModelSpec(name="ae_mlp", **TINY)).eval()
    g = torch.Generator().manual_seed(0)
    normal = 0.1 * torch.randn(30, 9, generator=g)
    anomalies = 10 * torch.randn(6, 9, generator=g)  # far from the normal cloud: reconstructed badly
    y = torch.cat([torch.zeros(30), torch.ones(6)]).long()
    got = task.evaluate(model, _batches(torch.cat([normal, anomalies]), y, size=10))
    assert got["roc_auc"] == 1.0 and got["pr_auc"] == 1.0 and "reconstruction" in got


def test_one_class_vs_rest():
    ds = ArrayDataset(torch.arange(10.0).view(10, 1), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]))
    train = one_class_vs_rest(ds, 2, "train", ("a", "b", "c"))
    test = one_class_vs_rest(ds, 2, "test", ("a", "b", "c"))
    assert train.x.view(-1).tolist() == [2.0, 5.0, 8.0] and train.y.tolist() == [0, 0, 0]
    assert test.y.tolist() == [1, 1, 0, 1, 1, 0, 1, 1, 0, 1] and torch.equal(test.x, ds.x)
    with pytest.raises(ConfigError, match=r"normal_class: 3 is not a class of this data set \(0 a, 1 b, 2 c\)"):
        one_class_vs_rest(ds, 3, "train", ("a", "b", "c"))
    info = dataset_info("fashion_mnist", {"normal_class": 7})
    assert info.task == "anomaly" and info.classes[0] == "normal (Sneaker)" and info.splits["train"] == 6000
    # the tasks that learn from the images alone, besides the default task: autoencoders, then GANs and DDPMs
    unsupervised = ("reconstruction", "vae", "denoising", "gan", "diffusion")
    assert info.tasks == ("anomaly", *unsupervised)
    assert dataset_info("fashion_mnist").tasks == ("classification", *unsupervised)
    assert dataset_info("mnist1d").tasks == ("classification", "reconstruction", "vae", "denoising")


def test_shuttle_split_and_isolation_forest_baseline():
    train, test = load_dataset("shuttle", "train"), load_dataset("shuttle", "test")
    assert (len(train), len(test)) == (29458, 19639) and train.x.shape[1:] == (9,)
    assert int(train.y.sum() + test.y.sum()) == 3511  # 7.15% of 49,097 (ODDS)
    assert train.y.float().mean().item() == pytest.approx(0.0715, abs=5e-4)  # stratified
    assert train.x.mean(0).abs().max() < 1e-4 and (train.x.std(0) - 1).abs().max() < 1e-3  # standardised on train
    assert dataset_info("shuttle").reference["IForest (PyOD benchmark, published)"] == "0.997"
    forest = isolation_forest_roc_auc(train.x.numpy(), test.x.numpy(), test.y.numpy(), seed=0)
    assert forest["roc_auc"] > 0.99  # measured 0.997 on this split (docs/autoencoders.md)


def _cli(argv, capsys, tmp_path, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[:2000]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "a run dir was left"
    return code, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["shuttle/ae_mlp", "model.latent_dim=0"],
            "model.latent_dim: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            ["shuttle/ae_mlp", "model.name=vae_mlp", "model.beta=-1"],
            "model.beta: Input should be greater than or equal to 0",
        ),
        (["fashion_mnist/ae_anomaly", "data.options.normal_class=10"], "data.options.normal_class: 10 is not a class"),
        (["shuttle/ae_mlp", "task.name=vae"], "model.name: 'ae_mlp' is not a VAE"),
        (["shuttle/ae_mlp", "model.name=mlp"], "model.name: 'mlp' is not an autoencoder"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_dir(argv, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(["train", *argv], capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err


def test_shuttle_autoencoder_trains_and_reports_the_areas(tmp_path, capsys, monkeypatch):
    """The shipped Shuttle recipe, shortened to 300 steps: the reconstruction loss falls and the test
    split is ranked better than chance (the full recipe: docs/autoencoders.md)."""
    import json

    monkeypatch.chdir(tmp_path)
    code = main(["train", "shuttle/ae_mlp", "budget.steps=300", "eval.every=300", "log.progress=false",
                 "log.tensorboard=false", "checkpoint.every=300", "log.every=10"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    test = json.loads((run / "summary.json").read_text())["test"]
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r["reconstruction"] for r in train if r["split"] == "train"]
    assert train[-1] < 0.8 * train[0]
    assert 0.5 < test["roc_auc"] <= 1 and 0.0715 < test["pr_auc"] <= 1  # better than chance (7.15% anomalies)
