"""Data layer: datasets (bundled, generated, real-format loaders with checksums), the dataset
registry and a resumable batch loader. Never imports models."""

from archlab.data import images, seq2seq, signals, synthetic, tabular, text, timeseries  # noqa: E402,F401  (register the datasets)
from archlab.data.core import (
    DATASETS,
    ArrayDataset,
    BatchLoader,
    DatasetInfo,
    dataset_info,
    dataset_options,
    list_datasets,
    load_dataset,
    register_dataset,
    split_train_val,
)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "BatchLoader",
    "DatasetInfo",
    "dataset_info",
    "dataset_options",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "split_train_val",
]
