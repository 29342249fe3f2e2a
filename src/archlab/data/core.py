"""In-memory datasets, the dataset registry, and a deterministic, resumable batch loader.

Every data set we ship fits in memory as tensors, so a dataset is an :class:`ArrayDataset`
(``x``, ``y``) and the loader is index arithmetic: the order of epoch ``e`` is a permutation
drawn from a generator seeded with ``(seed, e)``. A position ``(epoch, batch)`` therefore
fully determines what comes next, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from archlab.registry import Registry
from archlab.utils.errors import ConfigError, UnknownDatasetError
from archlab.utils.options import check_options
from archlab.utils.seed import derive_seed


@dataclass
class ArrayDataset:
    """Inputs ``x`` (N, ...) and targets ``y`` (N, ...) held as tensors.

    Variable-length sequences are padded at the end to a common length; ``lengths`` (N,) then holds
    each example's true length (``None`` when every example is full length).
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str = ""
    split: str = ""
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, ...]:
        """``(x, y)``, or ``(x, y, lengths)`` for a set of variable-length sequences."""
        if self.lengths is None:
            return self.x[idx], self.y[idx]
        return self.x[idx], self.y[idx], self.lengths[idx]

    def subset(self, idx: torch.Tensor, split: str | None = None) -> ArrayDataset:
        lengths = None if self.lengths is None else self.lengths[idx]
        return ArrayDataset(self.x[idx], self.y[idx], self.name, split or self.split, lengths)


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, for ``archlab data info`` and for building a matching model."""

    name: str
    kind: str  # "image", "signal", "tabular"
    task: str  # "classification" | "regression"
    input_shape: tuple[int, ...]  # one example, no batch: (C, H, W), (C, L) or (F,)
    num_classes: int | None  # None for regression
    splits: dict[str, int]  # split → examples
    source: str
    licence: str
    citation: str = ""
    classes: tuple[str, ...] = ()
    reference: dict[str, str] = field(default_factory=dict)  # published results, model → figure
    notes: str = ""

    @property
    def out_features(self) -> int:
        return self.num_classes if self.num_classes is not None else 1


@dataclass(frozen=True)
class DatasetEntry:
    info: DatasetInfo
    loader: Callable[..., ArrayDataset]  # loader(split, data_dir=None, **options) -> ArrayDataset
    options: dict[str, Any] = field(default_factory=dict)  # a generated set's parameters and their defaults
    info_for: Callable[..., DatasetInfo] | None = None  # info_for(**options) when the options change the info


DATASETS: Registry[DatasetEntry] = Registry("dataset", error=lambda n, c: UnknownDatasetError(n, c))


def register_dataset(
    info: DatasetInfo,
    *,
    options: dict[str, Any] | None = None,
    info_for: Callable[..., DatasetInfo] | None = None,
) -> Callable[[Callable[..., ArrayDataset]], Callable[..., ArrayDataset]]:
    """Register ``loader(split, data_dir=None, **options)`` under ``info.name``.

    A parametric set (a generated task of length T, say) declares its ``options`` with defaults; a
    recipe sets them as ``data.options``. ``info`` describes the defaults; ``info_for(**options)``
    gives the info of any other setting.
    """

    def deco(fn: Callable[..., ArrayDataset]) -> Callable[..., ArrayDataset]:
        DATASETS.add(info.name, DatasetEntry(info=info, loader=fn, options=dict(options or {}), info_for=info_for))
        return fn

    return deco


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of ``name``'s options updated by ``options``, checked key by key and typed like the default."""
    return check_options(options, DATASETS.get(name).options, "data.options", f"dataset '{name}'")


def dataset_info(name: str, options: dict[str, Any] | None = None) -> DatasetInfo:
    entry = DATASETS.get(name)
    if entry.info_for is None or not entry.options:
        dataset_options(name, options)  # still reject unknown options
        return entry.info
    return entry.info_for(**dataset_options(name, options))


def load_dataset(
    name: str, split: str = "train", data_dir: str | None = None, options: dict[str, Any] | None = None
) -> ArrayDataset:
    """``load_dataset("mnist1d", split="test")`` → :class:`ArrayDataset`; ``options`` for a parametric set."""
    entry = DATASETS.get(name)
    info = dataset_info(name, options)
    if split not in info.splits:
        raise ConfigError(f"data.split: dataset '{name}' has splits {sorted(info.splits)}, not '{split}'")
    ds = entry.loader(split, data_dir=data_dir, **dataset_options(name, options))
    ds.name, ds.split = name, split
    return ds


def split_train_val(
    train: ArrayDataset, val_fraction: float, seed: int, subset: int | None = None
) -> tuple[ArrayDataset, ArrayDataset | None]:
    """A seeded, fixed hold-out of ``val_fraction`` of train; ``subset`` keeps the first N of the rest."""
    n = len(train)
    g = torch.Generator().manual_seed(derive_seed(seed, 0x5E1))
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction))
    val = train.subset(perm[:n_val], "val") if n_val else None
    rest = perm[n_val:]
    if subset is not None:
        if subset > len(rest):
            raise ConfigError(f"data.train_subset: {subset} exceeds the {len(rest)} training examples")
        rest = rest[:subset]
    if subset is None and n_val == 0:
        return train, None
    return train.subset(torch.sort(rest).values, "train"), val


class BatchLoader:
    """Shuffled mini-batches over an :class:`ArrayDataset`, resumable from ``(epoch, batch)``.

    ``drop_last`` is on for training so every step sees ``batch_size`` examples.
    ``transform(x, generator)`` (augmentation) receives a generator seeded by the position, so
    augmented batches are reproducible too.

    Data-parallel (``world_size`` > 1): ``batch_size`` is the global batch; every rank builds the
    same global batch (order and augmentation) and returns its contiguous shard of
    ``batch_size / world_size`` rows, so N processes see exactly what one process would.
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if drop_last and len(dataset) < batch_size:
            raise ConfigError(f"data.batch_size: {batch_size} is larger than the {len(dataset)} training examples")
        if batch_size % world_size:
            raise ConfigError(
                f"data.batch_size: the global batch {batch_size} is not divisible by the {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.seed, self.transform = shuffle, drop_last, seed, transform
        self.rank, self.world_size = rank, world_size
        self.epoch, self.batch = 0, 0  # position of the *next* batch
        self._perm: torch.Tensor | None = None
        self._perm_epoch = -1

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return len(self)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    def _order(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            n = len(self.dataset)
            if self.shuffle:
                g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
                self._perm = torch.randperm(n, generator=g)
            else:
                self._perm = torch.arange(n)
            self._perm_epoch = self.epoch
        assert self._perm is not None
        return self._perm

    def next(self) -> tuple[torch.Tensor, ...]:
        """The batch at the current position, ``(x, y)`` or ``(x, y, lengths)``; advances the position
        (wrapping to the next epoch)."""
        if self.batch >= len(self):
            self.epoch, self.batch = self.epoch + 1, 0
        idx = self._order()[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
        x, *rest = self.dataset[idx]
        if self.transform is not None:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, self.batch, 0xA06))
            x = self.transform(x, g)
        self.batch += 1
        if self.world_size > 1:
            n = len(x) // self.world_size
            part = slice(self.rank * n, (self.rank + 1) * n)
            return (x[part], *(t[part] for t in rest))
        return (x, *rest)

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.batch / max(len(self), 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """One pass in order from the current position to the end of this epoch (for evaluation)."""
        while self.batch < len(self):
            yield self.next()
