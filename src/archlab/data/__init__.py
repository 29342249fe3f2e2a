"""Data layer: datasets (bundled, generated, real-format loaders with checksums), the dataset
registry, the named :class:`Batch` and a resumable batch loader. Never imports models."""

from archlab.data import (  # noqa: E402,F401  (register the datasets)
    anomaly,
    bert,
    graph,
    images,
    mixtures,
    seq2seq,
    signals,
    synthetic,
    tabular,
    text,
    timeseries,
    translation,
)
from archlab.data.batch import Batch, model_inputs
from archlab.data.core import (
    DATASETS,
    ArrayDataset,
    BatchLoader,
    Dataset,
    DatasetInfo,
    TokenStream,
    dataset_info,
    dataset_options,
    list_datasets,
    load_dataset,
    load_train_val,
    num_examples,
    register_dataset,
    shared_points,
    split_train_val,
)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "Batch",
    "BatchLoader",
    "Dataset",
    "DatasetInfo",
    "TokenStream",
    "dataset_info",
    "dataset_options",
    "list_datasets",
    "load_dataset",
    "load_train_val",
    "model_inputs",
    "num_examples",
    "register_dataset",
    "shared_points",
    "split_train_val",
]
