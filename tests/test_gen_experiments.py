"""The GAN and diffusion experiments from the CLI (quick versions: a few optimiser steps, 2-D or 1-D
data, tiny networks and short chains): each writes its table, figures and a verdict in words; bad
options are one line; and the rules that decide the verdicts are checked on known inputs."""

import math

import numpy as np
import pytest
import torch

from archlab import create_model
from archlab.cli import main
from archlab.experiments.gen_common import (
    all_hold,
    draw,
    f_critical,
    mean_std,
    mixture_scores,
    pm,
    points_frechet,
    seed_list,
    separated,
    supported_by,
    variance_ratio,
)
from archlab.utils import progress as progress_module


def test_mode_collapse_quick(quick_experiment):
    exp, rec = quick_experiment("mode-collapse", "--set", "models=[gan, sngan, ddpm]", "--set", "samples=100")
    rows = rec["table"]["rows"]
    ours = [r for r in rows if r[-1].startswith("ours")]
    assert [r[1] for r in ours] == ["GAN (non-saturating)", "SN + hinge", "DDPM (MLP)"]
    # the published rows, as the papers print them (PacGAN: mean ± standard error over 10 trials)
    published = {(r[1], r[-1]): r[2:5] for r in rows if r[-1].startswith("published")}
    assert published["GAN", "published, PacGAN Table 1"] == ["6.3 ± 0.5 / 8", "98.2 ± 0.2", "0.45 ± 0.09"]
    assert published["VEEGAN", "published, VEEGAN Table 1"] == ["8 / 8", "52.9", "—"]
    for per_seed in rec["scores"]["ring8"].values():
        (s,) = per_seed
        assert 0 <= s["modes_covered"] <= 8 and 0 <= s["high_quality"] <= 1 and sum(s["counts"]) <= 100
    assert set(rec["comparisons"]["ring8"]) == {"sngan", "ddpm"}
    assert rec["figures"] == ["figures/modes-covered.png", "figures/samples-over-modes.png"]
    assert "plain GAN covers" in rec["verdict"] and rec["supported"] in (True, False, None)


def test_nash_equilibrium_quick(quick_experiment):
    exp, rec = quick_experiment("nash-equilibrium", "--set", "steps=6", "--set", "samples=200")
    assert [r[0] for r in rec["table"]["rows"]] == [3, 6]  # two snapshots
    (snaps,) = rec["snapshots"].values()
    for m in snaps:
        assert 0 <= m["dev_half"] <= 0.5 and 0 <= m["dev_opt"] <= 1 and m["w1_sigma"] >= 0
    assert len(rec["figures"]) == 3 and "E|D(x) − ½|" in rec["verdict"]


def test_diffusion_stability_quick_on_the_ring(quick_experiment):
    exp, rec = quick_experiment("diffusion-stability", "--set", "data=ring8", "--set", "samples=50")
    rows = [r[0] for r in rec["table"]["rows"]]
    assert rows == ["GAN", "DDPM 20", "DDIM 2", "DDIM 5", "data (another 50 examples)"]  # quick: T = 20
    assert rec["floor"]["modes_covered"] == 8  # 50 points of the ring itself
    ddpm = rec["results"]["ddpm"]
    assert all(r["s_per_sample"] > 0 and r["frechet"] >= 0 for v in ddpm.values() for r in v)
    assert rec["rules"]["stability"] == 0  # one seed: undecided
    assert "One seed" in rec["verdict"] and len(rec["figures"]) == 2


def test_gan_vs_vae_quick(quick_experiment, tmp_path_factory, monkeypatch):
    from archlab.data import load_dataset
    from archlab.utils.errors import DataError

    monkeypatch.setenv("ARCHLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))  # the classifier's
    try:
        load_dataset("fashion_mnist", "test")
    except DataError as e:
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")
    # the DDPM's sampling path is the one diffusion-stability tests on the ring; its U-Net costs seconds here
    exp, rec = quick_experiment("gan-vs-vae", "--set", "models=[vae, dcgan]")
    assert [r[0] for r in rec["table"]["rows"]] == ["VAE", "DCGAN", "real (another set of test images)"]
    real = rec["reference"]["real (another set of test images)"]
    assert real["sharpness"] > 0 and real["fid"] >= 0 and 0 <= real["precision"] <= 1
    assert set(rec["clauses"]) == {"gans_sharp", "vae_blurry", "gans_unstable", "diffusion_stable"}
    assert rec["clauses"]["gans_unstable"] == 0  # one seed: undecided
    assert "not Inception" in rec["verdict"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mode-collapse", "--set", "models=[vae]"], "models"),
        (["mode-collapse", "--set", "data=[mnist]"], "data"),
        (["nash-equilibrium", "--set", "loss=hinge"], "loss"),
        (["nash-equilibrium", "--set", "steps=4", "--set", "snapshots=5"], "snapshots (5) must be ≤ steps (4)"),
        (["diffusion-stability", "--set", "data=ring8", "--set", "ddim_steps=[0]"], "ddim_steps must be ≥ 1"),
        (["diffusion-stability", "--set", "data=ring8", "--set", "ddim_steps=[50]"], "≤ the DDPM's T = 20"),
        (["gan-vs-vae", "--set", "samples=3"], "samples"),
    ],
)
def test_bad_options_are_one_line_and_leave_no_directory(argv, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["experiment", *argv, "--quick", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not runs.exists() or not any(runs.iterdir())


# -- the rules the verdicts rest on ----------------------------------------------------------------------
def test_f_critical_matches_the_closed_form():
    # F(2, 2) has CDF x / (1 + x): the 95 % point is 19 exactly
    assert f_critical(2, 2) == pytest.approx(19.0, rel=1e-9)
    assert f_critical(4, 4) == pytest.approx(6.388, abs=1e-3)  # tables of the F distribution


def test_variance_ratio_and_separation_rules():
    wide, narrow = [0.0, 1.0, 2.0], [0.0, 0.1, 0.2]  # variances 1 and 0.01: ratio 100 > 19
    sign, ratio, crit = variance_ratio(wide, narrow)
    assert (sign, crit) == (1, pytest.approx(19.0)) and ratio == pytest.approx(100.0)
    assert variance_ratio(narrow, wide)[0] == -1
    assert variance_ratio([0.0, 1.0, 2.0], [0.0, 0.5, 1.5])[0] == 0  # ratio 1.7: undecided
    assert variance_ratio([1.0], wide)[0] == 0  # one seed: no spread
    # means 1 and 0, SE of the difference √(0.01/3 + 0.01/3) = 0.0816: 12 SE apart
    assert separated([0.9, 1.0, 1.1], [-0.1, 0.0, 0.1]) == 1
    assert separated([-0.1, 0.0, 0.1], [0.9, 1.0, 1.1]) == -1
    assert separated([0.0, 1.0, 2.0], [0.5, 1.0, 1.5]) == 0
    assert separated([3.0], [3.0]) == 0 and separated([3.0], [2.0]) == 1  # one seed each: the raw values
    # a reverse KL without any high-quality sample is nan: the mean and spread are nan, the cell "—"
    assert all(math.isnan(v) for v in mean_std([0.5, math.nan, 0.7])) and pm([0.5, math.nan]) == "—"
    # clauses: all hold → +1 / True, any fails → −1 / False, else 0 / None (no signs: undecided)
    assert [all_hold(x) for x in ([1, 1], [1, -1, 0], [1, 0], [])] == [1, -1, 0, 0]
    assert [supported_by(x) for x in ([1, 1], [0, -1], [1, 0])] == [True, False, None]
    assert (seed_list(None, True), seed_list(None, False), seed_list(None, False, (0, 1, 2, 3, 4))) == (
        [0],
        [0, 1, 2],
        [0, 1, 2, 3, 4],
    )
    assert seed_list([3, 1, 3], False) == [3, 1]  # given: repeats dropped, order kept


def test_points_frechet_and_mixture_scores_on_exact_samples():
    from archlab.data.mixtures import mixture_of

    x = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0))
    assert points_frechet(x, x + torch.tensor([3.0, 4.0])) == pytest.approx(25.0, abs=1e-6)  # ‖Δμ‖², same Σ
    points, _ = mixture_of("ring8").sample(20_000, seed=5)
    sc = mixture_scores(points, "ring8")
    # within 3σ of an isotropic 2-D Gaussian's mean: P(χ²₂ < 9) = 1 − e^{−4.5}
    assert sc["modes_covered"] == 8 and sc["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    assert sc["reverse_kl"] == pytest.approx(0.0, abs=2e-3) and sc["frechet_points"] < 1e-3
    assert np.isclose(sum(sc["counts"]), sc["high_quality"] * 20_000)
    broken = mixture_scores(torch.full((10, 2), math.nan), "ring8")  # a diverged generator scores, not raises
    assert broken["modes_covered"] == 0 and broken["frechet_points"] == math.inf


def test_draw_reports_progress_through_a_diffusion_chain_and_between_batches(monkeypatch):
    torch.manual_seed(0)
    ddpm = create_model("ddpm_mlp", width=8, depth=1, timesteps=4)
    quiet = draw(ddpm, 6, seed=5, batch_size=4)
    monkeypatch.setattr(progress_module, "PROGRESS_EVERY_S", 0.0)  # every update is a line
    lines: list[str] = []
    loud = draw(ddpm, 6, seed=5, batch_size=4, progress=lines.append, label="DDPM seed 0")
    assert torch.equal(loud, quiet)  # reporting changes no sample
    percents = [float(line.split(": ")[1].split(" %")[0]) for line in lines]
    # batch 1: 4 samples over 4 steps (1, 2, 3, 4 samples), then its end; batch 2: 2 samples over 4 steps
    assert percents == pytest.approx([100 * d / 6 for d in (1, 2, 3, 4, 4, 4.5, 5, 5.5, 6, 6)], abs=0.5)
    assert all(line.startswith("sampling DDPM seed 0: ") and "of 6, ETA " in line for line in lines)
    gan = create_model("gan_mlp")
    lines.clear()
    draw(gan, 5, seed=1, batch_size=2, progress=lines.append)  # no stepwise callback: one line per batch
    assert [line.split(": ")[1].split(" %")[0] for line in lines] == ["40", "80", "100"]
    assert lines[0].startswith("sampling ")
