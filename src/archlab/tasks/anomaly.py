"""Anomaly detection by reconstruction error: an autoencoder trained on (mostly) normal data
reconstructs anomalies worse, so the per-example error is the anomaly score.

Japkowicz, Myers & Gluck, *A Novelty Detection Approach to Classification*, IJCAI 1995; Sakurada &
Yairi, *Anomaly Detection Using Autoencoders with Nonlinear Dimensionality Reduction*, MLSDA 2014.
Scores are ranked with scikit-learn: ROC-AUC (``roc_auc_score``) and PR-AUC as average precision
(``average_precision_score``, anomalies the positive class). Labels: y = 1 anomaly, 0 normal.

Equations:
    s(x) = Σ_d (decode(encode(x))_d − x_d)²          the anomaly score: deterministic reconstruction error
    ROC-AUC = P(s(x_anomaly) > s(x_normal))           (ties count ½)
    PR-AUC  = Σ_n (R_n − R_{n−1}) P_n                 average precision over the score thresholds

Training is the reconstruction task's (the labels are not used). The areas need every score of
the split at once, so this task evaluates whole splits (``evaluate``) rather than accumulating sums.
:func:`isolation_forest_roc_auc` is the classical baseline run on the same split.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from archlab.tasks.base import Batch, register_task
from archlab.tasks.metrics import Mean
from archlab.tasks.reconstruction import ReconstructionTask


class AreaUnderCurve(Mean):
    """ROC-AUC or PR-AUC of a whole split (higher is better)."""


def anomaly_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """s(x) per example, (B, ...) → (B,): the squared error of the deterministic reconstruction."""
    return (model.decode(model.encode(x)).float() - x.float()).square().flatten(1).sum(1)


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """{"roc_auc", "pr_auc"} of anomaly scores against labels (1 = anomaly), scikit-learn."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if labels.min() == labels.max():
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    return {"roc_auc": float(roc_auc_score(labels, scores)), "pr_auc": float(average_precision_score(labels, scores))}


def isolation_forest_roc_auc(
    train_x: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """scikit-learn's IsolationForest (Liu, Ting & Zhou, ICDM 2008; 100 trees, 256 samples per tree) fit
    on ``train_x`` without labels, scored on the test split: {"roc_auc", "pr_auc"}."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=100, random_state=seed).fit(train_x.reshape(len(train_x), -1))
    return ranking_metrics(-forest.score_samples(test_x.reshape(len(test_x), -1)), test_y)


@register_task
class AnomalyTask(ReconstructionTask):
    name = "anomaly"
    metrics = {**ReconstructionTask.metrics, "roc_auc": AreaUnderCurve, "pr_auc": AreaUnderCurve}
    default_metric = "roc_auc"

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        m = self.new_metrics()
        g = None
        scores, labels = [], []
        for batch in batches:
            g = g or self._generator(batch.x.device, 0xAE)
            self._score_batch(model, batch.x, m, g)
            scores.append(anomaly_scores(model, batch.x).cpu())
            labels.append(batch.y.cpu())
        del m["roc_auc"], m["pr_auc"]
        out = m.compute()
        out.update(ranking_metrics(torch.cat(scores).numpy(), torch.cat(labels).numpy()))
        return out
