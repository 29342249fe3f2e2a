"""Small data sets bundled with scikit-learn: digits (8×8 images) and diabetes (regression).

Neither has an official test split, so we fix one: a stratified (digits) or plain (diabetes)
50/50 split with ``random_state=0`` — the split of scikit-learn's own digits example, where an
SVC reaches ≈ 0.97.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from archlab.data.core import ArrayDataset, DatasetInfo, register_dataset


@functools.cache
def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.5, random_state=0, stratify=d.target)
    return {"train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte}


@register_dataset(
    DatasetInfo(
        name="digits",
        kind="image",
        task="classification",
        input_shape=(1, 8, 8),
        num_classes=10,
        splits={"train": 898, "test": 899},
        source="sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)",
        licence="CC BY 4.0",
        citation="Alpaydin & Kaynak 1998, UCI ML repository",
        classes=tuple(str(i) for i in range(10)),
        reference={
            "SVC (scikit-learn's digits example, its own unshuffled 50/50 split)": "≈97%",
            "SVC γ=0.001 on raw pixels, this split (scikit-learn, measured)": "98.8%",
        },
    )
)
def digits(split: str, data_dir: str | None = None) -> ArrayDataset:
    d = _digits()
    return ArrayDataset(torch.from_numpy(d[f"{split}_x"]), torch.as_tensor(d[f"{split}_y"], dtype=torch.long))


@functools.cache
def _diabetes() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    d = load_diabetes()  # features already mean-centred and scaled
    y = d.target.astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(d.data.astype(np.float32), y, test_size=0.5, random_state=0)
    mu, sd = ytr.mean(), ytr.std()  # standardise the target with train statistics
    return {"train_x": xtr, "train_y": (ytr - mu) / sd, "test_x": xte, "test_y": (yte - mu) / sd}


@register_dataset(
    DatasetInfo(
        name="diabetes",
        kind="tabular",
        task="regression",
        input_shape=(10,),
        num_classes=None,
        splits={"train": 221, "test": 221},
        source="sklearn.datasets.load_diabetes (Efron et al. 2004); target standardised on train",
        licence="BSD-3-Clause (scikit-learn)",
        citation="Efron, Hastie, Johnstone & Tibshirani, Least Angle Regression, 2004",
        reference={"least squares on this split (scikit-learn, measured)": "R² 0.44"},
    )
)
def diabetes(split: str, data_dir: str | None = None) -> ArrayDataset:
    d = _diabetes()
    return ArrayDataset(torch.from_numpy(d[f"{split}_x"]), torch.from_numpy(d[f"{split}_y"])[:, None])
