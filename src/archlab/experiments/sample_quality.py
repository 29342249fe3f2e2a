"""Sample quality of a generative model against real test data: what ``archlab eval --samples N``
prints and what the generative experiments tabulate.

One function, :func:`score_samples`, draws n samples through the sampling contract
(``model.sample(n, generator=…, **sampler)``, data units) and scores them against n real test
examples with the metrics of :mod:`archlab.tasks.sample_metrics`:

- images (1×28×28): feature-space FID, KID, precision / recall / density / coverage and diversity on
  the **penultimate features of the in-project Fashion-MNIST classifier**
  (:mod:`.feature_classifier`; 84 dimensions) — not Inception features, so the values never compare
  with published FID/KID numbers — plus sharpness (variance of the Laplacian, in pixel units² of
  [0, 1] images) of the samples beside that of the real images; with Inception features
  (:mod:`archlab.tasks.inception`, the user's weights) also ``fid_inception`` and ``kid_inception``;
- 2-D points and 1-D values: the same FID/KID/PRDC/diversity on the coordinates themselves, and on the
  Gaussian-mixture sets (ring8, grid25, gaussian1d) the mode coverage of ``data.mixtures``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archlab.experiments.feature_classifier import FeatureClassifier
from archlab.tasks.sample_metrics import KID_SUBSET_SIZE, PRDC_K, feature_metrics, laplacian_variance
from archlab.utils.progress import SamplingProgress

CLASSIFIER_SHAPE = (1, 28, 28)  # the in-project classifier's input: Fashion-MNIST images
FEATURE_NOTE = "features of the in-project Fashion-MNIST classifier (not Inception)"


def draw_samples(
    model: nn.Module, n: int, seed: int = 0, progress: Callable[[str], None] | None = None, **sampler: Any
) -> torch.Tensor:
    """n samples (n, ...) float32 on the CPU from ``model.sample`` with a generator seeded ``seed``
    (``sampler``: a diffusion model's steps / sampler / eta); ``progress`` receives
    :class:`~archlab.utils.progress.SamplingProgress` lines through a diffusion chain."""
    from archlab.report.generative import sampling_generator

    model.eval()
    g = sampling_generator(model, seed)
    extra = SamplingProgress(progress, "for the metrics", n).options(model.sample, 0, n) if progress else {}
    with torch.no_grad():
        return model.sample(n, generator=g, **sampler, **extra).float().cpu()


def score_samples(
    samples: torch.Tensor,
    real: torch.Tensor,
    *,
    classifier: FeatureClassifier | None = None,
    inception: Any = None,
    mixture: Any = None,
    k: int = PRDC_K,
    kid_subsets: int = 100,
) -> dict[str, float]:
    """Metrics of ``samples`` (n, ...) against ``real`` (N, ...) examples of the same shape (see the
    module docstring). Images need ``classifier`` (1×28×28 only); ``inception`` is an
    :class:`archlab.tasks.inception.InceptionFeatures`; ``mixture`` a ``data.mixtures.Mixture``.

    KID uses subsets of min(n, N, 1000) examples; when that is all of n = N, every subset is the same and
    the ``kid_std`` keys are left out.

    Raises ValueError for mismatched shapes, images without a classifier, images the classifier
    does not take, or fewer than k + 2 examples on either side."""
    if tuple(samples.shape[1:]) != tuple(real.shape[1:]):
        shapes = f"{tuple(samples.shape[1:])} vs {tuple(real.shape[1:])}"
        raise ValueError(f"samples and real examples differ in shape: {shapes}")
    if min(len(samples), len(real)) < k + 2:
        raise ValueError(f"sample metrics need at least {k + 2} samples and real examples, got {len(samples)}")
    kid_size = min(len(samples), len(real), KID_SUBSET_SIZE)
    image = samples.ndim == 4
    out: dict[str, float] = {}
    if image:
        if classifier is None:
            raise ValueError("image samples are scored in a classifier's features: pass classifier=")
        if tuple(samples.shape[1:]) != CLASSIFIER_SHAPE:
            shape = "×".join(map(str, samples.shape[1:]))
            raise ValueError(f"the in-project classifier takes 1×28×28 images (Fashion-MNIST), not {shape}")
        f_real, f_fake = classifier.features(real), classifier.features(samples)
        out.update(feature_metrics(f_real, f_fake, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_size))
        out["sharpness"] = float(laplacian_variance(samples).mean())
        out["sharpness_real"] = float(laplacian_variance(real).mean())
        if inception is not None:
            i_real, i_fake = inception(real), inception(samples)
            incep = feature_metrics(i_real, i_fake, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_size)
            out["fid_inception"], out["kid_inception"] = incep["fid"], incep["kid"]
            out["kid_inception_std"] = incep["kid_std"]
    else:
        flat_real, flat_fake = real.reshape(len(real), -1), samples.reshape(len(samples), -1)
        out.update(feature_metrics(flat_real, flat_fake, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_size))
        if mixture is not None:
            from archlab.data.mixtures import mode_coverage

            out.update(mode_coverage(flat_fake, mixture).as_metrics())
    if kid_size == min(len(samples), len(real)) and len(samples) == len(real):
        # every subset holds every example: one value, no spread to report (torch-fidelity would print ± 0)
        out = {key: v for key, v in out.items() if not key.startswith("kid") or not key.endswith("_std")}
    return {key: float(v) for key, v in out.items()}
