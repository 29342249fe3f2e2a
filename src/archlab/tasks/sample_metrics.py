"""Sample-quality metrics of generative models, as pure functions on feature arrays and images.

Every function takes NumPy or torch arrays and returns floats (float64 arithmetic), so the tasks,
``archlab eval`` and the experiments call the same code. In archlab the features are the
**penultimate features of the in-project Fashion-MNIST classifier** (``experiments.feature_classifier``,
84 dimensions), not the Inception-v3 pool features of the published FID/KID: values compare only
with values computed with the same classifier, never with published numbers. Inception features are
an option (:mod:`archlab.tasks.inception`); the functions here do not care which features they get.

Letters: N real and M generated feature vectors of D dimensions; m a KID subset size; k neighbours.

Equations:
    KID (Bińkowski et al., *Demystifying MMD GANs*, ICLR 2018, §3 and App. A, Eq. 3 of the paper's
    unbiased MMD² estimator), with the cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³:
        MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(m(m−1)) Σ_{i≠j} k(yᵢ, yⱼ) − 2/m² Σ_{i,j} k(xᵢ, yⱼ)
        KID = mean over subsets of MMD²_u (and its standard deviation over subsets, ddof 0)
    Precision / recall / density / coverage (Naeem et al., *Reliable Fidelity and Diversity Metrics
    for Generative Models*, ICML 2020, §3 Eq. 1–4; precision and recall after Kynkäänniemi et al.,
    *Improved Precision and Recall Metric for Assessing Generative Models*, NeurIPS 2019, Eq. 1–3),
    with B(x, r) the closed ball of radius r about x and NND_k(x) the distance from x to its k-th
    nearest neighbour within its own set:
        precision = 1/M Σⱼ 1[Yⱼ ∈ ∪ᵢ B(Xᵢ, NND_k(Xᵢ))]
        recall    = 1/N Σᵢ 1[Xᵢ ∈ ∪ⱼ B(Yⱼ, NND_k(Yⱼ))]
        density   = 1/(kM) Σⱼ Σᵢ 1[Yⱼ ∈ B(Xᵢ, NND_k(Xᵢ))]
        coverage  = 1/N Σᵢ 1[∃ j: Yⱼ ∈ B(Xᵢ, NND_k(Xᵢ))]
    Sharpness: the variance of the Laplacian (Pech-Pacheco et al., *Diatom autofocusing in brightfield
    microscopy: a comparative study*, ICPR 2000), per image and channel:
        ∇²I = I(h−1, w) + I(h+1, w) + I(h, w−1) + I(h, w+1) − 4 I(h, w),   sharpness = Var_{h,w}(∇²I)
    Diversity: the mean Euclidean distance between the features of distinct pairs,
        diversity = 2/(M(M−1)) Σ_{j<l} ‖Yⱼ − Yₗ‖₂

Conventions shared with the reference implementations (checked in tests/test_sample_metrics.py):
KID draws each subset without replacement with ``np.random.RandomState(seed).choice``, as
torch-fidelity does (seed 2020, 100 subsets of 1000 by default), and with a subset of all examples it
equals torchmetrics' ``KernelInceptionDistance``. The balls are closed (≤, Kynkäänniemi's Eq. 1);
the official ``prdc`` package (Naeem et al.'s code) tests with <, which differs only on exact ties
(probability zero for continuous features). Distances are exact (``scipy.spatial.distance.cdist``),
computed in row blocks of about 32 MB, so N = M = 50,000 needs no 20 GB matrix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.ndimage import correlate1d
from scipy.spatial.distance import cdist

KID_SUBSETS = 100  # torch-fidelity's kid_subsets
KID_SUBSET_SIZE = 1000  # torch-fidelity's kid_subset_size (Bińkowski et al. App. D)
KID_SEED = 2020  # torch-fidelity's rng_seed
PRDC_K = 5  # Naeem et al. §4: k = 5 with 10,000 real and fake samples
_BLOCK_VALUES = 2**22  # float64 distances per block (32 MB): rows = 2²² / columns, 16 … 1024


def _rows(columns: int) -> int:
    """Rows of a distance block against ``columns`` points: about 32 MB of float64 whatever N is."""
    return max(16, min(1024, _BLOCK_VALUES // max(1, columns)))


def as_features(a: Any, name: str = "features") -> np.ndarray:
    """``a`` (N, D) as float64 NumPy; raises ValueError unless 2-D, non-empty and finite."""
    f = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {tuple(f.shape)}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} hold NaN or inf")
    return f


def _pair(real: Any, fake: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_features(real, "real features"), as_features(fake, "generated features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and generated features differ in dimension: {x.shape[1]} vs {y.shape[1]}")
    return x, y


# -- KID ---------------------------------------------------------------------------------------------
def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """k(x, y) = (xᵀy / D + coef0)^degree for every pair: x (N, D), y (M, D) → (N, M)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The unbiased MMD² estimate from kernel matrices of m vs m examples (Bińkowski et al. 2018,
    App. A; Gretton et al. 2012, Lemma 6): the diagonals of k_xx and k_yy are left out.

    Shapes: each (m, m), m ≥ 2. Raises ValueError otherwise."""
    m = k_xx.shape[0]
    if m < 2 or not k_xx.shape == k_xy.shape == k_yy.shape == (m, m):
        raise ValueError(f"kernel matrices must all be (m, m) with m ≥ 2, got {k_xx.shape}, {k_xy.shape}, {k_yy.shape}")
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


@dataclass(frozen=True)
class KernelDistance:
    """KID: the mean and standard deviation (ddof 0) of MMD²_u over ``subsets`` random subsets of
    ``subset_size`` examples from each set. Units: the kernel's (features' units⁶ / D³ for the cubic
    kernel); 0 in expectation for equal distributions, and it can be slightly negative."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def kernel_inception_distance(
    real: Any,
    fake: Any,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int | None = KID_SUBSET_SIZE,
    seed: int = KID_SEED,
) -> KernelDistance:
    """KID of real (N, D) vs generated (M, D) features (the name is the field's; archlab's features
    are the in-project classifier's unless Inception features are passed).

    ``subset_size`` None uses min(N, M, 1000). Each subset draws ``subset_size`` rows of each set
    without replacement (torch-fidelity's protocol, ``np.random.RandomState(seed)``). Raises
    ValueError when ``subset_size`` exceeds N or M, or is below 2, or ``subsets`` < 1.
    """
    x, y = _pair(real, fake)
    n, m = len(x), len(y)
    size = min(n, m, KID_SUBSET_SIZE) if subset_size is None else subset_size
    if subsets < 1:
        raise ValueError(f"KID needs at least 1 subset, got {subsets}")
    if not 2 <= size <= min(n, m):
        raise ValueError(f"KID subset size must be in [2, min(N, M) = {min(n, m)}], got {size}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        a = x[rng.choice(n, size, replace=False)]
        b = y[rng.choice(m, size, replace=False)]
        values[s] = mmd2_unbiased(polynomial_kernel(a, a), polynomial_kernel(a, b), polynomial_kernel(b, b))
    return KernelDistance(float(values.mean()), float(values.std()), subsets, size)


# -- precision / recall / density / coverage ---------------------------------------------------------
def knn_radii(features: Any, k: int = PRDC_K) -> np.ndarray:
    """NND_k: the Euclidean distance from each row of ``features`` (N, D) to its k-th nearest other
    row, (N,). Raises ValueError unless 1 ≤ k < N."""
    f = as_features(features)
    if not 1 <= k < len(f):
        raise ValueError(f"k must be in [1, N − 1 = {len(f) - 1}] neighbours, got {k}")
    radii = np.empty(len(f))
    b = _rows(len(f))
    for i in range(0, len(f), b):
        d = cdist(f[i : i + b], f)  # (B, N), the row's own 0 included
        radii[i : i + b] = np.partition(d, k, axis=1)[:, k]  # the (k+1)-th smallest: k-th other
    return radii


@dataclass(frozen=True)
class PrecisionRecall:
    """Precision, recall and coverage are fractions in [0, 1]; density is ≥ 0 and 1 in expectation
    when the generated and real distributions are equal (Naeem et al. §3.2). ``k`` neighbours."""

    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items() if k != "k"}


def precision_recall_density_coverage(real: Any, fake: Any, k: int = PRDC_K) -> PrecisionRecall:
    """Naeem et al. (2020) Eq. 1–4 on real (N, D) and generated (M, D) features, with ``k`` nearest
    neighbours for every ball (closed balls, see the module docstring). Raises ValueError unless
    1 ≤ k < min(N, M)."""
    x, y = _pair(real, fake)
    if not 1 <= k < min(len(x), len(y)):
        raise ValueError(f"k must be in [1, min(N, M) − 1 = {min(len(x), len(y)) - 1}] neighbours, got {k}")
    r_real, r_fake = knn_radii(x, k), knn_radii(y, k)
    in_real_balls = np.zeros(len(y), dtype=np.int64)  # per generated point: real balls holding it
    covered = np.zeros(len(x), dtype=bool)  # per real point: some generated point in its ball
    recalled = np.zeros(len(x), dtype=bool)  # per real point: inside some generated ball
    b = _rows(len(y))
    for i in range(0, len(x), b):
        d = cdist(x[i : i + b], y)  # (B, M): real rows i.. vs every generated point
        inside = d <= r_real[i : i + b, None]  # Yⱼ ∈ B(Xᵢ, NND_k(Xᵢ))
        in_real_balls += inside.sum(0)
        covered[i : i + b] = inside.any(1)
        recalled[i : i + b] = (d <= r_fake[None, :]).any(1)  # Xᵢ ∈ B(Yⱼ, NND_k(Yⱼ))
    return PrecisionRecall(
        precision=float((in_real_balls > 0).mean()),
        recall=float(recalled.mean()),
        density=float(in_real_balls.sum() / (k * len(y))),
        coverage=float(covered.mean()),
        k=k,
    )


# -- diversity and sharpness -------------------------------------------------------------------------
def mean_pairwise_distance(features: Any) -> float:
    """Diversity: the mean Euclidean distance over all M(M−1)/2 distinct pairs of rows of
    ``features`` (M, D), in the features' units. Raises ValueError for M < 2."""
    f = as_features(features)
    if len(f) < 2:
        raise ValueError(f"a mean pairwise distance needs at least 2 examples, got {len(f)}")
    total = 0.0
    b = _rows(len(f))
    for i in range(0, len(f), b):
        total += float(cdist(f[i : i + b], f[i:]).sum())  # the block against itself counts twice
        block = f[i : i + b]
        total -= float(cdist(block, block).sum()) / 2.0  # … so its lower triangle is removed again
    return total / (len(f) * (len(f) - 1) / 2)


def laplacian_variance(images: Any) -> np.ndarray:
    """Sharpness of each image: the variance over pixels and channels of its 4-neighbour Laplacian
    (Pech-Pacheco et al. 2000), borders mirrored (OpenCV's BORDER_REFLECT_101, scipy's ``mirror``).

    Shapes: images (N, C, H, W) or (N, H, W) in the data's units ([0, 1] for archlab's images) →
    (N,) in those units². Higher is sharper; a constant image gives 0. Raises ValueError for other
    shapes, H or W below 3, or non-finite values."""
    a = images.detach().cpu().double().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[0] == 0 or min(a.shape[2:]) < 3:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W) with H, W ≥ 3, got shape {tuple(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError("images hold NaN or inf")
    second = np.array([1.0, -2.0, 1.0])  # ∂²/∂h² + ∂²/∂w²: the 4-neighbour kernel
    lap = correlate1d(a, second, axis=2, mode="mirror") + correlate1d(a, second, axis=3, mode="mirror")
    return lap.reshape(len(a), -1).var(axis=1)


def feature_metrics(
    real: Any,
    fake: Any,
    *,
    k: int = PRDC_K,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int | None = None,
    seed: int = KID_SEED,
) -> dict[str, float]:
    """Every feature-space metric of generated vs real features in one dict: ``fid`` (the Fréchet
    distance of :mod:`archlab.tasks.frechet`), ``kid``/``kid_std``, ``precision``, ``recall``,
    ``density``, ``coverage`` and ``diversity`` (of the generated features) beside
    ``diversity_real`` (of the real ones, the value to compare it with)."""
    from archlab.tasks.frechet import FeatureStatistics, frechet_distance_of

    x, y = _pair(real, fake)
    kid = kernel_inception_distance(x, y, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    fid = frechet_distance_of(FeatureStatistics(x.shape[1]).update(x), FeatureStatistics(y.shape[1]).update(y))
    return {
        "fid": fid,
        "kid": kid.mean,
        "kid_std": kid.std,
        **precision_recall_density_coverage(x, y, k).as_dict(),
        "diversity": mean_pairwise_distance(y),
        "diversity_real": mean_pairwise_distance(x),
    }
