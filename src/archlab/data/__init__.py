"""Data layer: datasets (bundled, generated, real-format loaders with checksums), the dataset
registry and a resumable batch loader. Never imports models."""

from archlab.data.core import (
    DATASETS,
    ArrayDataset,
    BatchLoader,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
    split_train_val,
)
from archlab.data import tabular, signals, images  # noqa: E402,F401  (register the datasets)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "BatchLoader",
    "DatasetInfo",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "split_train_val",
]
