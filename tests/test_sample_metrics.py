"""Sample-quality metrics (tasks/sample_metrics.py): hand cases with known answers, the expectations
Naeem et al. derive for equal distributions, and KID/FID equal to torchmetrics' with a custom feature
extractor (no Inception, no torch-fidelity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from archlab.tasks import sample_metrics as sm
from archlab.tasks.frechet import FeatureStatistics, frechet_distance_of


class _Features(torch.nn.Module):
    """A custom torchmetrics feature extractor: the first D inputs, float64 (our arithmetic)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, : self.d].double()


# -- KID ---------------------------------------------------------------------------------------------
def test_mmd2_unbiased_of_a_hand_case():
    # D = 1, k(a, b) = (ab + 1)³; X = {0, 1}, Y = {1, 2}:
    # within X: 2·k(0,1)/2 = 1; within Y: 2·k(1,2)/2 = 27; across: (1 + 1 + 8 + 27)·2/4 = 18.5
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    k = sm.polynomial_kernel
    assert sm.mmd2_unbiased(k(x, x), k(x, y), k(y, y)) == pytest.approx(1 + 27 - 18.5)
    kid = sm.kernel_inception_distance(x, y, subsets=3, subset_size=2)
    assert (kid.mean, kid.std, kid.subsets, kid.subset_size) == (pytest.approx(9.5), pytest.approx(0.0), 3, 2)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_equals_torchmetrics_with_a_custom_feature_extractor():
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(60, 1, 4, 4, generator=g), torch.rand(60, 1, 4, 4, generator=g) ** 2
    # a subset of all 60 examples: torchmetrics' random permutation cannot change the estimate
    ref = KernelInceptionDistance(feature=_Features(12), subsets=1, subset_size=60)
    ref.update(real, real=True)
    ref.update(fake, real=False)
    want, _ = ref.compute()
    ours = sm.kernel_inception_distance(real.flatten(1)[:, :12], fake.flatten(1)[:, :12], subsets=1, subset_size=60)
    assert ours.mean == pytest.approx(float(want), rel=1e-10, abs=1e-12)
    assert ours.mean > 0  # a different distribution


def test_kid_subsets_follow_torch_fidelity_draws():
    # torch-fidelity draws each subset with RandomState(seed).choice(n, size, replace=False), real then fake
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(30, 5))
    r, values = np.random.RandomState(7), []
    for _ in range(4):
        a, b = x[r.choice(40, 20, replace=False)], y[r.choice(30, 20, replace=False)]
        k = sm.polynomial_kernel
        values.append(sm.mmd2_unbiased(k(a, a), k(a, b), k(b, b)))
    kid = sm.kernel_inception_distance(x, y, subsets=4, subset_size=20, seed=7)
    assert (kid.mean, kid.std) == (pytest.approx(np.mean(values)), pytest.approx(np.std(values)))
    assert sm.kernel_inception_distance(x, y, subsets=4, subset_size=None).subset_size == 30  # min(N, M, 1000)


# -- FID (tasks/frechet.py) against torchmetrics -------------------------------------------------------
def test_feature_frechet_distance_equals_torchmetrics_fid_with_a_custom_feature_extractor():
    from torchmetrics.image.fid import FrechetInceptionDistance

    g = torch.Generator().manual_seed(2)
    real, fake = torch.rand(80, 1, 4, 4, generator=g), torch.rand(70, 1, 4, 4, generator=g) ** 2
    ref = FrechetInceptionDistance(feature=_Features(6))
    ref.update(real, real=True)
    ref.update(fake, real=False)
    a, b = real.flatten(1)[:, :6], fake.flatten(1)[:, :6]
    ours = frechet_distance_of(FeatureStatistics(6).update(a), FeatureStatistics(6).update(b))
    assert ours == pytest.approx(float(ref.compute()), rel=1e-6)
    assert sm.feature_metrics(a, b, kid_subsets=2)["fid"] == pytest.approx(ours, rel=1e-12)


# -- precision / recall / density / coverage ---------------------------------------------------------
def test_prdc_of_a_hand_case():
    # real 0, 1, 2, 3 on a line: with k = 1 every ball has radius 1. Generated {0.5, 10}:
    # 0.5 lies in the balls of 0 and 1 (precision ½, density 2/(1·2) = 1); real 0 and 1 are covered (½);
    # the generated radius is 9.5, so the ball about 0.5 holds every real point (recall 1).
    real, fake = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[0.5], [10.0]])
    np.testing.assert_allclose(sm.knn_radii(real, 1), [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(sm.knn_radii(real, 2), [2.0, 1.0, 1.0, 2.0])
    got = sm.precision_recall_density_coverage(real, fake, k=1)
    assert got.as_dict() == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}


def test_prdc_balls_are_closed():
    # a generated point at exactly a real point's k-NN distance is inside its ball (Kynkäänniemi Eq. 1: ≤)
    got = sm.precision_recall_density_coverage(np.array([[0.0], [1.0]]), np.array([[2.0], [5.0]]), k=1)
    assert (got.precision, got.coverage) == (0.5, 0.5)


def test_prdc_of_equal_distributions_match_naeem_et_al_expectations():
    # Naeem et al. §3.2/§4: for equal distributions E[density] = 1 and, with M = N,
    # E[coverage] = 1 − Π_{i=1..k} (N − i)/(M + N − i) ≈ 1 − 2⁻ᵏ
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    got = sm.precision_recall_density_coverage(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)), k=k)
    expected_coverage = 1 - math.prod((n - i) / (2 * n - i) for i in range(1, k + 1))
    assert got.coverage == pytest.approx(expected_coverage, abs=0.01)
    assert got.density == pytest.approx(1.0, abs=0.06)
    assert got.precision > 0.9 and got.recall > 0.9
    # a generator that reproduces one real point x₀ only (mode collapse): precision 1, recall 1/N (its balls have
    # radius 0), coverage = the share of real balls holding x₀, density = that count · M / (kM)
    x = rng.normal(size=(200, 8))
    collapsed = sm.precision_recall_density_coverage(x, np.repeat(x[:1], 50, axis=0), k=k)
    holding = np.linalg.norm(x - x[0], axis=1) <= sm.knn_radii(x, k)
    assert (collapsed.precision, collapsed.recall) == (1.0, 1 / 200)
    assert collapsed.coverage == pytest.approx(holding.mean()) and 1 / 200 <= collapsed.coverage < 0.1
    assert collapsed.density == pytest.approx(holding.sum() / k)


# -- diversity and sharpness -------------------------------------------------------------------------
def test_mean_pairwise_distance():
    assert sm.mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])) == pytest.approx(4.0)  # 5, 3, 4
    f = np.random.default_rng(3).normal(size=(1500, 3))  # more rows than one distance block
    assert sm.mean_pairwise_distance(f) == pytest.approx(pdist(f).mean(), rel=1e-12)


def test_laplacian_variance_of_hand_images():
    dot = np.zeros((1, 1, 5, 5))
    dot[0, 0, 2, 2] = 1.0  # ∇² is −4 at the dot and 1 at its 4 neighbours: Var = (16 + 4)/25 − 0
    ramp = np.tile(np.arange(5.0), (5, 1))[None]  # I(h, w) = w: ∇² = 0 inside, ±2 at mirrored borders
    flat = np.full((2, 3, 4, 4), 0.7)
    np.testing.assert_allclose(sm.laplacian_variance(dot), [0.8])
    np.testing.assert_allclose(sm.laplacian_variance(ramp), [2 * 5 * 4 / 25])
    np.testing.assert_allclose(sm.laplacian_variance(torch.tensor(flat)), [0.0, 0.0], atol=1e-15)
    blurred = (dot + np.roll(dot, 1, 3) + np.roll(dot, -1, 3)) / 3  # the same mass, spread: less sharp
    assert sm.laplacian_variance(blurred)[0] < sm.laplacian_variance(dot)[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sm.kernel_inception_distance(np.ones((5, 2)), np.ones((5, 3))), "differ in dimension"),
        (lambda: sm.kernel_inception_distance(np.ones((5, 2)), np.ones((4, 2)), subset_size=5), "subset size"),
        (lambda: sm.precision_recall_density_coverage(np.ones((5, 2)), np.ones((5, 2)), k=5), "k must be in"),
        (lambda: sm.mean_pairwise_distance(np.ones((1, 2))), "at least 2"),
        (lambda: sm.laplacian_variance(np.ones((2, 1, 2, 8))), "H, W ≥ 3"),
        (lambda: sm.as_features(np.array([[np.nan]])), "NaN"),
        (lambda: sm.as_features(np.ones(3)), "(N, D)"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
