"""The Fréchet distance between two sets of features, each summarised by a Gaussian.

Heusel et al., *GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium*
(NeurIPS 2017), Eq. 6, after Dowson & Landau (1982) for the Fréchet (2-Wasserstein) distance
between two Gaussians:

Equations:
    d²((μ₁, Σ₁), (μ₂, Σ₂)) = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2})
    Tr (Σ₁ Σ₂)^{1/2} = Σᵢ √λᵢ(Σ₁^{1/2} Σ₂ Σ₁^{1/2})      (the matrices are similar; the right one is symmetric PSD)

This is the statistic of the FID, but archlab computes it on the **penultimate features of a
Fashion-MNIST classifier trained in-project** (``experiments.feature_classifier``), not on the
Inception-v3 pool features of the FID: its values are comparable only with other values computed
with the same classifier, never with published FID numbers.

Letters: N examples, D feature dimensions.

- :class:`FeatureStatistics` accumulates Σ f and Σ f fᵀ (float64) batch by batch and merges like the
  metric accumulators, so the mean and the (unbiased, N − 1) covariance come from sums.
- :func:`frechet_distance` evaluates the equation above by the symmetric eigen-route (NumPy's
  ``eigh``, float64), which has no complex round-off, unlike ``scipy.linalg.sqrtm(Σ₁ Σ₂)``
  (pytorch-fid's route; the tests check both agree).
- :func:`penultimate_features` reads the input of a classifier's last linear layer (a forward hook),
  so any registered classifier serves without a special method.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FeatureStatistics:
    """Running Σ f and Σ f fᵀ over feature vectors (float64), for the mean and covariance.

    ``update(f)`` takes f of shape (N, D); ``merge(other)`` adds another accumulator's sums (the
    statistics of the union); ``mean`` is (D,), ``covariance`` (D, D) with the N − 1 divisor.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"feature dimension must be ≥ 1, got {dim}")
        self.dim = dim
        self.count = 0
        self.total = np.zeros(dim, dtype=np.float64)  # Σ f
        self.outer = np.zeros((dim, dim), dtype=np.float64)  # Σ f fᵀ

    def update(self, features: torch.Tensor | np.ndarray) -> FeatureStatistics:
        f = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
        f = f.astype(np.float64, copy=False)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got {tuple(f.shape)}")
        if not np.isfinite(f).all():
            raise ValueError("features hold NaN or inf")
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.outer += f.T @ f
        return self

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of {other.dim} features into {self.dim}")
        self.count += other.count
        self.total += other.total
        self.outer += other.outer
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.count < 1:
            raise ValueError("no features accumulated")
        return self.total / self.count

    @property
    def covariance(self) -> np.ndarray:
        """Σ = (Σ f fᵀ − N μ μᵀ) / (N − 1), symmetrised against round-off."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mu = self.mean
        cov = (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return (cov + cov.T) / 2


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """A^{1/2} of a symmetric positive semi-definite matrix (negative round-off eigenvalues → 0)."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Heusel et al. 2017, Eq. 6): a squared distance in the
    features' units², ≥ 0 and 0 only for equal Gaussians.

    Shapes: μ (D,), Σ (D, D) symmetric PSD. Raises ValueError on mismatched shapes or non-finite input.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"expected means (D,) and covariances (D, D) of one D, got {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise ValueError("means and covariances must be finite")
    r1 = _sqrt_psd((s1 + s1.T) / 2)  # Σ₁^{1/2}
    m = r1 @ ((s2 + s2.T) / 2) @ r1  # Σ₁^{1/2} Σ₂ Σ₁^{1/2}: similar to Σ₁Σ₂, symmetric PSD
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())  # Tr (Σ₁Σ₂)^{1/2}
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)  # round-off can leave −1e-12 for equal inputs


def frechet_distance_of(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """:func:`frechet_distance` between two accumulated feature sets."""
    return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)


def last_linear(model: nn.Module) -> nn.Linear:
    """The classifier's output layer: the last ``nn.Linear`` registered in ``model``."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer to read features before")
    return linears[-1]


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The input of ``model``'s last linear layer for each example, in eval mode.

    Shapes: x (N, ...) the model's input → (N, D) with D the output layer's ``in_features``
    (LeNet-5: the 84 units of F6). Runs in batches of ``batch_size``; restores the model's mode.
    """
    head = last_linear(model)
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].flatten(1).float()))
    was_training = model.training
    model.eval()
    try:
        device = head.weight.device
        for i in range(0, x.shape[0], batch_size):
            model(x[i : i + batch_size].to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(captured).cpu() if captured else torch.zeros(0, head.in_features)


def feature_statistics(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> FeatureStatistics:
    """:class:`FeatureStatistics` of ``model``'s penultimate features over images ``x`` (N, C, H, W)."""
    f = penultimate_features(model, x, batch_size)
    return FeatureStatistics(f.shape[1]).update(f)
