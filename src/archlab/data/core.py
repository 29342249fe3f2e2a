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
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from archlab.data.batch import Batch
from archlab.registry import Registry
from archlab.utils.errors import ConfigError, UnknownDatasetError, preview
from archlab.utils.options import check_options
from archlab.utils.seed import derive_seed


@runtime_checkable
class Dataset(Protocol):
    """What a loader needs of a split: its size and the batch at a set of indices.

    ``len(ds)`` is the number of examples in one pass (an epoch); ``ds[idx]`` with ``idx`` a (B,)
    long tensor returns the :class:`Batch` of those examples. A set whose examples are windows
    of one sequence carries ``spans`` (N, 2): the ``[start, end)`` positions each example reads,
    inputs and targets together, so a validation split can be cut where no example overlaps it
    (:func:`split_train_val`). A set that is drawn at random rather than in epochs (a token
    stream) also has ``sample(n, generator) -> Batch``; a set whose examples do not stack (graphs)
    gives the loader a ``collate``.
    """

    name: str
    split: str
    spans: torch.Tensor | None

    def __len__(self) -> int: ...

    def __getitem__(self, idx: Any) -> Batch: ...

    def subset(self, idx: torch.Tensor, split: str | None = None) -> Dataset: ...


def num_examples(ds: Dataset) -> int:
    """The examples a split scores: ``ds.num_examples`` where a set defines it (one graph whose
    examples are its labelled nodes), else ``len(ds)``. The run summary's example counts."""
    return int(getattr(ds, "num_examples", len(ds)))


@dataclass
class ArrayDataset:
    """Inputs ``x`` (N, ...) and targets ``y`` (N, ...) held as tensors.

    Variable-length sequences are padded at the end to a common length; ``lengths`` (N,) then holds
    each example's true length (``None`` when every example is full length). ``spans`` (N, 2)
    holds the ``[start, end)`` positions of the source sequence each example covers when the
    examples are (possibly overlapping) windows of one sequence.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str = ""
    split: str = ""
    lengths: torch.Tensor | None = None
    spans: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: Any) -> Batch:
        """The :class:`Batch` of examples ``idx``: ``x``, ``y`` and, for variable-length sequences, ``lengths``."""
        return Batch(x=self.x[idx], y=self.y[idx], lengths=None if self.lengths is None else self.lengths[idx])

    def subset(self, idx: torch.Tensor, split: str | None = None) -> ArrayDataset:
        lengths = None if self.lengths is None else self.lengths[idx]
        spans = None if self.spans is None else self.spans[idx]
        return ArrayDataset(self.x[idx], self.y[idx], self.name, split or self.split, lengths, spans)


@dataclass
class TokenStream:
    """One long token sequence ``tokens`` (N,) for causal language modelling, in windows of ``block``.

    Two ways to draw from it, both giving ``x`` (B, block) and ``y`` = ``x`` shifted by one:

    * ``ds[idx]``: the fixed, non-overlapping windows ``i·block … (i+1)·block`` (``len(ds)`` of
      them), the examples an evaluation pass walks through in order;
    * ``ds.sample(n, generator)``: ``n`` windows at offsets drawn uniformly from
      ``[0, N − block − 1]`` — how nanoGPT's ``get_batch`` trains a GPT, so that every offset of
      the text is a training example rather than ``1/block`` of them.

    A :class:`BatchLoader` with ``shuffle=True`` samples (one epoch = ``len(ds) // batch_size``
    batches, about one pass over the tokens); with ``shuffle=False`` it walks the fixed windows.
    """

    tokens: torch.Tensor
    block: int
    name: str = ""
    split: str = ""

    def __post_init__(self) -> None:
        if self.tokens.dim() != 1 or len(self.tokens) <= self.block:
            raise ValueError(f"a token stream needs a 1-D sequence longer than block={self.block}")

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block

    @property
    def spans(self) -> torch.Tensor:
        start = torch.arange(len(self)) * self.block
        return torch.stack([start, start + self.block + 1], 1)  # y reaches one token past x

    def _windows(self, starts: torch.Tensor) -> Batch:
        idx = starts.view(-1, 1) + torch.arange(self.block + 1).view(1, -1)  # (B, block + 1)
        w = self.tokens[idx]
        return Batch(x=w[:, :-1], y=w[:, 1:])

    def __getitem__(self, idx: Any) -> Batch:
        return self._windows(torch.arange(len(self))[idx] * self.block)

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` windows at uniformly random offsets (nanoGPT's ``get_batch``)."""
        starts = torch.randint(len(self.tokens) - self.block, (n,), generator=generator)
        return self._windows(starts)

    def subset(self, idx: torch.Tensor, split: str | None = None) -> ArrayDataset:
        """The fixed windows ``idx`` as an in-memory set (no longer sampled at random offsets)."""
        b = self[idx]
        return ArrayDataset(b.x, b.y, self.name, split or self.split, spans=self.spans[idx])


# the task groups a data set lists in ``DatasetInfo.tasks`` besides its default task
AUTOENCODER_TASKS = ("reconstruction", "vae", "denoising")  # learn x from x: autoencoders, VAEs, denoising AEs
GENERATIVE_TASKS = ("gan", "diffusion")  # learn to draw new x: GANs, DDPMs


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, for ``archlab data info`` and for building a matching model."""

    name: str
    kind: str  # "image", "signal", "tabular", "text"
    task: str  # the default task: the first of ``tasks``
    input_shape: tuple[int, ...]  # one example, no batch: (C, H, W), (C, L) or (F,)
    num_classes: int | None  # None for regression
    splits: dict[str, int]  # split → examples
    source: str
    licence: str
    citation: str = ""
    classes: tuple[str, ...] = ()
    reference: dict[str, str] = field(default_factory=dict)  # published results, model → figure
    notes: str = ""
    tasks: tuple[str, ...] = ()  # every task this set serves; ``task`` is put first
    # a generated set's resolved options (data.options with defaults), e.g. a mixture's means and σ
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", (self.task, *(t for t in self.tasks if t != self.task)))

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
    if data_dir is not None and not Path(data_dir).is_dir():  # never fall back silently to another copy
        raise ConfigError(
            f"data.data_dir: '{preview(str(data_dir))}' is not a directory; pass the folder that holds "
            f"the '{name}' files (or leave --data-dir out)"
        )
    ds = entry.loader(split, data_dir=data_dir, **dataset_options(name, options))
    ds.name, ds.split = name, split
    return ds


def split_train_val(
    train: Dataset, val_fraction: float, seed: int, subset: int | None = None
) -> tuple[Dataset, Dataset | None]:
    """A fixed hold-out of ``val_fraction`` of train; ``subset`` keeps N of the rest (seeded choice).

    Independent examples: a seeded random hold-out. Examples that are windows of one sequence
    (``train.spans`` is set: forecasting windows, character-LM windows) overlap their neighbours,
    so a random hold-out would put validation targets inside training windows. They are held out
    chronologically instead: the last ``val_fraction`` of the windows validate, and every training
    window ends before the first validation window starts (a gap of window + horizon − 1 windows
    for stride-1 forecasting windows), so no point of a validation window is in a training window.
    """
    n = len(train)
    spans = getattr(train, "spans", None)
    n_val = int(round(n * val_fraction))
    if val_fraction and not n_val:  # asked for validation, would silently get none
        train.subset(torch.arange(0), "val")  # a set that cannot be held out at all says why (a node set: one graph)
        raise ConfigError(
            f"data.val_fraction: {val_fraction} of {n} training example{'s' if n != 1 else ''} rounds to none held "
            f"out; use at least {1.5 / n:.3g}, or 0 for no validation"
        )
    if hasattr(train, "sample") and (n_val or subset is not None):
        raise ConfigError("data.train_subset: a token stream (sampled at random offsets) cannot be subset or held out")
    g = torch.Generator().manual_seed(derive_seed(seed, 0x5E1))
    if spans is not None and n_val:
        order = torch.argsort(spans[:, 0], stable=True)  # chronological
        val_idx = order[n - n_val :]
        first_val = int(spans[val_idx, 0].min())
        rest = order[: n - n_val][spans[order[: n - n_val], 1] <= first_val]
        if len(rest) == 0:
            raise ConfigError(
                f"data.val_fraction: {val_fraction} leaves no training window before the validation period; lower it"
            )
        val = train.subset(torch.sort(val_idx).values, "val")
        if subset is not None:
            rest = rest[torch.randperm(len(rest), generator=g)]
    else:
        perm = torch.randperm(n, generator=g)
        val = train.subset(perm[:n_val], "val") if n_val else None
        rest = perm[n_val:]
    if subset is not None:
        if subset > len(rest):
            raise ConfigError(f"data.train_subset: {subset} exceeds the {len(rest)} training examples")
        rest = rest[:subset]
    if subset is None and n_val == 0:
        return train, None
    return train.subset(torch.sort(rest).values, "train"), val


def load_train_val(
    name: str,
    *,
    val_fraction: float,
    seed: int,
    train_subset: int | None = None,
    data_dir: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Dataset, Dataset | None]:
    """The training split and the validation split of a run.

    A set that ships a validation split (``"val"`` in its ``DatasetInfo.splits``: Shakespeare,
    Rotten Tomatoes, the seq2seq sets) validates on it, and ``data.val_fraction`` > 0 is then a
    one-line error; any other set holds ``val_fraction`` of train out (:func:`split_train_val`).
    """
    info = dataset_info(name, options)
    train = load_dataset(name, "train", data_dir=data_dir, options=options)
    if "val" not in info.splits:
        return split_train_val(train, val_fraction, seed, train_subset)
    if val_fraction:
        raise ConfigError(
            f"data.val_fraction: dataset '{name}' ships a validation split, which runs validate on; remove val_fraction"
        )
    train, _ = split_train_val(train, 0.0, seed, train_subset)
    return train, load_dataset(name, "val", data_dir=data_dir, options=options)


def shared_points(a: Dataset, b: Dataset) -> int:
    """How many source positions covered by ``b``'s examples also lie in ``a``'s (0 for sets without spans)."""
    sa, sb = getattr(a, "spans", None), getattr(b, "spans", None)
    if sa is None or sb is None or not len(sa) or not len(sb):
        return 0
    top = int(max(sa[:, 1].max(), sb[:, 1].max()))

    def cover(spans: torch.Tensor) -> torch.Tensor:
        d = torch.zeros(top + 1, dtype=torch.long)
        d.index_add_(0, spans[:, 0], torch.ones(len(spans), dtype=torch.long))
        d.index_add_(0, spans[:, 1], -torch.ones(len(spans), dtype=torch.long))
        return d.cumsum(0)[:top] > 0

    return int((cover(sa) & cover(sb)).sum())


Collate = Callable[[Dataset, torch.Tensor], Batch]
BatchTransform = Callable[[Batch, torch.Generator], Batch]


class BatchLoader:
    """Mini-batches over a :class:`Dataset`, resumable from ``(epoch, batch)``.

    Epoch ``e`` walks a permutation drawn from a generator seeded with ``(seed, e)``; a set with a
    ``sample`` method (a :class:`TokenStream`) is instead sampled afresh for every batch from a
    generator seeded with ``(seed, epoch, batch)``. Either way the position determines every
    future batch, which is what makes resume exact. ``drop_last`` is on for training so every
    step sees ``batch_size`` examples.

    ``collate(dataset, idx) -> Batch`` builds a batch from indices (default ``dataset[idx]``:
    stacked tensors; graphs concatenate nodes and edges instead). ``transform(batch, generator)``
    sees and returns the whole batch (augmentation, mixup, two views) and receives a generator
    seeded by the position, so transformed batches are reproducible too.

    Data-parallel (``world_size`` > 1): ``batch_size`` is the global batch; every rank builds the
    same global batch (order, sampling and transforms) and keeps its contiguous shard of
    ``batch_size / world_size`` examples, so N processes see exactly what one process would.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        transform: BatchTransform | None = None,
        collate: Collate | None = None,
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
        self.rank, self.world_size = rank, world_size
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.seed, self.transform = shuffle, drop_last, seed, transform
        self.collate = collate
        self.sampled = shuffle and hasattr(dataset, "sample")
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

    def next(self) -> Batch:
        """The batch at the current position; advances the position (wrapping to the next epoch)."""
        if self.batch >= len(self):
            self.epoch, self.batch = self.epoch + 1, 0
        if self.sampled:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, self.batch, 0x5A3))
            batch = self.dataset.sample(self.batch_size, g)  # type: ignore[attr-defined]
        else:
            idx = self._order()[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
            batch = self.dataset[idx] if self.collate is None else self.collate(self.dataset, idx)
        if self.transform is not None:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, self.batch, 0xA06))
            batch = self.transform(batch, g)
        self.batch += 1
        return self._shard(batch) if self.world_size > 1 else batch

    def _shard(self, batch: Batch) -> Batch:
        """This rank's contiguous ``1/world_size`` of the examples of a global batch."""
        if batch.edge_index is not None:
            raise ConfigError("data-parallel training of graph batches is not supported yet; run one process")
        n = len(batch) // self.world_size
        part = slice(self.rank * n, (self.rank + 1) * n)
        return batch.map(lambda t: t[part])

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.batch / max(len(self), 1)

    def __iter__(self) -> Iterator[Batch]:
        """One pass in order from the current position to the end of this epoch (for evaluation)."""
        while self.batch < len(self):
            yield self.next()
