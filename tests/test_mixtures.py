"""The Gaussian-mixture benchmarks (ring8, grid25, gaussian1d) and the mode-coverage metric."""

import math
import subprocess
import sys

import pytest
import torch

from archlab.data import dataset_info, load_dataset
from archlab.data.mixtures import Mixture, grid_means, mixture_of, mode_coverage, ring_means
from archlab.utils.errors import ConfigError


def test_ring_and_grid_means_are_the_papers():
    ring = ring_means(8, 1.0)
    assert ring.shape == (8, 2)
    assert torch.allclose(ring.norm(dim=1), torch.ones(8, dtype=torch.float64))
    assert torch.allclose(ring[2], torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-12)  # 90°
    grid = grid_means(5, 2.0)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in grid.tolist()}) == 25


def test_sets_are_deterministic_with_the_stated_moments():
    train = load_dataset("ring8", "train", options={"n_train": 20_000})
    again = load_dataset("ring8", "train", options={"n_train": 20_000})
    assert torch.equal(train.x, again.x) and train.x.dtype == torch.float32
    means = ring_means(8, 1.0).float()
    resid = train.x - means[train.y]
    assert abs(resid.std().item() - 0.01) < 0.0005  # σ = 0.01 in each coordinate
    assert torch.bincount(train.y, minlength=8).min() > 2_300  # each mode ≈ 2,500 of 20,000
    test = load_dataset("ring8", "test")
    assert len(test) == 2_500 and not torch.equal(test.x[:100], train.x[:100])  # other seed
    g = load_dataset("gaussian1d", "train", options={"n_train": 40_000})
    assert g.x.shape == (40_000, 1)
    assert abs(g.x.mean().item() - 4.0) < 0.01 and abs(g.x.std().item() - 0.5) < 0.01
    info = dataset_info("grid25")
    assert info.input_shape == (2,) and info.num_classes == 25 and info.tasks[:2] == ("gan", "diffusion")


def test_mode_coverage_counts_modes_and_high_quality_points():
    m = mixture_of("ring8")
    means = m.means.float()
    # 3 modes hit exactly, one point 2σ off mode 5 (still good), one 4σ off mode 6 (bad), one at the origin (bad)
    pts = torch.cat([means[[0, 0, 1, 3]], means[5:6] + torch.tensor([0.02, 0.0]), means[6:7] + torch.tensor([0, 0.04])])
    pts = torch.cat([pts, torch.zeros(1, 2)])
    cov = mode_coverage(pts, m)
    assert cov.counts == (2, 1, 0, 1, 0, 1, 0, 0)
    assert cov.modes_covered == 4 and cov.modes == 8
    assert cov.high_quality == pytest.approx(5 / 7)
    p = torch.tensor([2, 1, 1, 1], dtype=torch.float64) / 5
    assert cov.reverse_kl == pytest.approx(float((p * (p * 8).log()).sum()))
    assert mode_coverage(pts, m, min_count=2).modes_covered == 1
    # a collapsed generator: every point on one mode → 1 mode, all high quality, KL = log 8
    collapsed = mode_coverage(means[[4] * 50], m)
    assert (collapsed.modes_covered, collapsed.high_quality) == (1, 1.0)
    assert collapsed.reverse_kl == pytest.approx(math.log(8))
    # the data itself covers every mode, ~99 % of points within 3σ (χ² with 2 d.o.f.: 1 − e^{−4.5} = 98.9 %)
    data = mode_coverage(load_dataset("grid25", "test").x, mixture_of("grid25"))
    assert data.modes_covered == 25 and data.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    assert data.reverse_kl < 0.02
    assert math.isnan(mode_coverage(torch.full((3, 2), 9.0), m).reverse_kl)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        mode_coverage(torch.zeros(4, 3), m)


def test_log_density_of_the_mixture_is_the_closed_form():
    m = Mixture(torch.tensor([[0.0], [3.0]], dtype=torch.float64), 0.5)
    x = torch.tensor([[0.0], [1.0], [3.5]])
    n = torch.distributions.Normal(torch.tensor([0.0, 3.0], dtype=torch.float64), 0.5)
    expect = (n.log_prob(x.double()).exp().mean(dim=1)).log()
    assert torch.allclose(m.log_density(x), expect)


def test_bad_options_are_one_line_errors():
    for opts, field in (
        ({"std": 0.0}, "std"),
        ({"std": float("inf")}, "std"),
        ({"radius": -1.0}, "radius"),
        ({"n_train": 0}, "n_train"),
        ({"modes": 0}, "modes"),
    ):
        with pytest.raises(ConfigError, match=f"data.options.{field}"):
            load_dataset("ring8", "train", options=opts)
    with pytest.raises(ConfigError, match="not a Gaussian-mixture"):
        mixture_of("digits")


def test_data_info_lists_the_ring_through_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "archlab", "data", "info", "ring8"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "ring8" in out.stdout and "σ = 0.01" in out.stdout
