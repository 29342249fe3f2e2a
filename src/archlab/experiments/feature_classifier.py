"""The in-project Fashion-MNIST classifier whose features score generated images.

Generative models (autoencoders, VAEs, GANs) are scored with a classifier trained here, from the
shipped recipe ``fashion_mnist/frechet_classifier`` (LeNet-5, modern variant): its softmax gives the
class confidence and entropy of a decoded image, and the input of its output layer (84 units) the
features of the Fréchet distance (:mod:`archlab.tasks.frechet`). This is **not** Inception-FID:
values compare only with values computed by the same classifier recipe.

The classifier is trained once per distinct recipe (its hash names the directory) into
``<cache>/feature-classifiers/<hash>/`` (``$ARCHLAB_CACHE_DIR``, else ``~/.cache/archlab``) and
loaded from there afterwards; the training run is an ordinary run dir (``archlab eval`` reads it).
A run is trained into a temporary sibling and renamed into place, so a killed training never leaves
a half-written classifier that a later call would load.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.config import Recipe, load_recipe, recipe_hash
from archlab.engine import Trainer, load_run
from archlab.registry.catalog import cache_dir
from archlab.tasks.frechet import FeatureStatistics, frechet_distance_of, penultimate_features

RECIPE = "fashion_mnist/frechet_classifier"


@dataclass
class FeatureClassifier:
    """A trained classifier (eval mode) and the run dir it was loaded from."""

    model: torch.nn.Module
    run_dir: Path
    test_accuracy: float

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Softmax class probabilities, (N, K), of images x (N, 1, 28, 28) in [0, 1]."""
        self.model.eval()
        return torch.cat([self.model(x[i : i + batch_size]).softmax(-1) for i in range(0, len(x), batch_size)])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, D) of images x."""
        return penultimate_features(self.model, x)

    def statistics(self, x: torch.Tensor) -> FeatureStatistics:
        f = self.features(x)
        return FeatureStatistics(f.shape[1]).update(f)

    def frechet(self, x: torch.Tensor, reference: torch.Tensor | FeatureStatistics) -> float:
        """Fréchet distance between the features of images ``x`` and of ``reference`` (images or statistics)."""
        ref = reference if isinstance(reference, FeatureStatistics) else self.statistics(reference)
        return frechet_distance_of(self.statistics(x), ref)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of each row of class probabilities p (N, K) → (N,)."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def classifier_recipe(overrides: dict[str, Any] | None = None) -> Recipe:
    """The classifier's recipe with ``overrides`` (tests: a tiny one)."""
    recipe = load_recipe(RECIPE, overrides or {})
    recipe.log.tensorboard = False
    recipe.log.progress = False
    return recipe


def feature_classifier(
    overrides: dict[str, Any] | None = None,
    root: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> FeatureClassifier:
    """The classifier of ``classifier_recipe(overrides)``: loaded from the cache when it was trained
    before, trained (and cached) otherwise, saying so first through ``progress`` (the shipped recipe
    takes about 3 min of one core). ``root`` replaces ``<cache>/feature-classifiers``."""
    recipe = classifier_recipe(overrides)
    root = Path(root) if root is not None else cache_dir() / "feature-classifiers"
    run_dir = root / recipe_hash(recipe)
    if not (run_dir / "summary.json").is_file():
        if progress:
            progress(
                f"training the in-project feature classifier once ({recipe.budget.steps:,} steps; the shipped "
                f"recipe takes about 3 min of one core), cached in {run_dir}"
            )
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}-", dir=root))
        try:
            Trainer(recipe, run_dir=tmp / "run", quiet=True).fit()
            try:
                os.replace(tmp / "run", run_dir)
            except OSError:
                if not (run_dir / "summary.json").is_file():  # another process did not win the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    run = load_run(run_dir, checkpoint="last")
    from archlab.utils.io import read_json

    acc = float(read_json(run_dir / "summary.json").get("test", {}).get("accuracy", float("nan")))
    return FeatureClassifier(run.model.float().eval(), run_dir, acc)


def path_scores(clf: FeatureClassifier, frames: torch.Tensor) -> dict[str, np.ndarray]:
    """Confidence (max softmax) and class entropy (nats) of each frame of a path, (T, 1, H, W)."""
    p = clf.probabilities(frames)
    return {"confidence": p.max(-1).values.numpy(), "entropy": entropy(p).numpy(), "label": p.argmax(-1).numpy()}
