"""Anomaly-detection data: the ODDS Shuttle set (from ``river``) and the one-class-vs-rest view of a
labelled image set (Fashion-MNIST's ``data.options.normal_class``).

Labels follow the anomaly-detection convention: y = 1 for an anomaly, 0 for a normal example.

Shuttle (Statlog, UCI; ODDS version, Rayana 2016): 49,097 examples × 9 sensor readings, 3,511
(7.15%) anomalies — the majority class "Rad Flow" is normal, the rare classes are anomalies, and the
second-largest class is dropped. ``river.datasets.Shuttle`` ships it as a 1 MB csv.gz, read here
directly (offline). Split: stratified 60% train / 40% test with ``random_state=0`` (PyOD's benchmark
protocol is a random 60/40 split, Zhao, Nasrullah & Li, JMLR 20(96), 2019), features standardised
with the training split's mean and standard deviation. Training is unsupervised on the whole training
split, anomalies included, as in PyOD's benchmark.

One class vs the rest (Ruff et al., *Deep One-Class Classification*, ICML 2018, §4.2): class k is
normal; the training split keeps only class k, the test split keeps every example with y = 1 for any
other class.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from archlab.data.core import ArrayDataset, DatasetInfo, register_dataset
from archlab.utils.errors import ConfigError, DataError

SHUTTLE_PUBLISHED_ROC_AUC = {  # PyOD benchmark (mean of 10 random 60/40 splits), published, not re-run
    "IForest (PyOD benchmark, published)": "0.997",
    "PCA (PyOD benchmark, published)": "0.990",
    "LOF (PyOD benchmark, published)": "0.531",
}


def one_class_vs_rest(ds: ArrayDataset, normal_class: int, split: str, classes: tuple[str, ...]) -> ArrayDataset:
    """``ds`` as one-class anomaly data: train keeps class ``normal_class`` only (y = 0), any other split
    keeps every example with y = 1 where the class differs. Raises ConfigError for a class that does
    not exist."""
    check_normal_class(normal_class, classes)
    anomalous = ds.y != normal_class
    if split == "train":
        keep = (~anomalous).nonzero().squeeze(1)
        return ArrayDataset(ds.x[keep], torch.zeros(len(keep), dtype=torch.long))
    return ArrayDataset(ds.x, anomalous.long())


def check_normal_class(normal_class: int, classes: tuple[str, ...]) -> None:
    if not 0 <= normal_class < len(classes):
        names = ", ".join(f"{i} {c}" for i, c in enumerate(classes))
        raise ConfigError(
            f"data.options.normal_class: {normal_class} is not a class of this data set ({names}); "
            f"set 0–{len(classes) - 1}, or -1 for the plain {len(classes)}-class set"
        )


def shuttle_file() -> Path:
    """The csv.gz that ``river.datasets.Shuttle`` reads, located without importing river (slow)."""
    spec = importlib.util.find_spec("river")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("shuttle: the 'river' package is not installed; pip install river")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "shuttle.csv.gz"
    if not path.is_file():
        raise DataError(f"shuttle: {path} not found; this river version does not bundle the Shuttle set")
    return path


@functools.cache
def _shuttle() -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    table = np.loadtxt(shuttle_file(), delimiter=",", skiprows=1)  # f1..f9, anomaly
    x, y = table[:, :9], table[:, 9].astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1.0
    return {
        "train_x": ((xtr - mu) / sd).astype(np.float32),
        "train_y": ytr,
        "test_x": ((xte - mu) / sd).astype(np.float32),
        "test_y": yte,
    }


@register_dataset(
    DatasetInfo(
        name="shuttle",
        kind="tabular",
        task="anomaly",
        tasks=("anomaly", "reconstruction", "vae"),
        input_shape=(9,),
        num_classes=2,
        splits={"train": 29458, "test": 19639},
        source="ODDS Shuttle as bundled in river (river.datasets.Shuttle, shuttle.csv.gz); stratified 60/40 "
        "split, random_state=0; features standardised on train",
        licence="CC BY 4.0 (UCI Statlog Shuttle)",
        citation="Rayana, ODDS Library, Stony Brook University, 2016; UCI Statlog (Shuttle)",
        classes=("normal", "anomaly"),
        reference=SHUTTLE_PUBLISHED_ROC_AUC,
        notes="y = 1 for an anomaly (7.15%); reference figures are ROC-AUC published by the PyOD benchmark "
        "(its own random 60/40 splits), not re-run here",
    )
)
def shuttle(split: str, data_dir: str | None = None) -> ArrayDataset:
    d = _shuttle()
    return ArrayDataset(torch.from_numpy(d[f"{split}_x"]), torch.from_numpy(d[f"{split}_y"]))
