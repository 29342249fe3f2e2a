"""Image data sets in their standard formats: Fashion-MNIST, MNIST (IDX) and CIFAR-10 (binary version).

Where a loader looks, first match wins:

1. the ``data_dir`` argument (``data.data_dir=DIR`` / ``--data-dir``): ``DIR`` itself or ``DIR/<name>``;
2. ``$ARCHLAB_DATA_DIR/<name>`` (or ``$ARCHLAB_DATA_DIR`` itself);
3. the Debian package location (Fashion-MNIST only: ``apt-get install dataset-fashion-mnist`` puts
   the four ``.gz`` files in ``/usr/share/datasets/fashion-mnist``);
4. the user cache ``~/.cache/archlab/<name>`` (``$XDG_CACHE_HOME/archlab/<name>``), where an official
   download lands — downloaded only when ``ARCHLAB_DOWNLOAD=1`` is set, over https, checksum-verified.

Nothing found and no opt-in → :class:`DataError` saying where it looked and how to fix it.
Files may be ``.gz`` or raw IDX. Decoded uint8 arrays are cached per (name, split, folder), so
loading the same split again in one process costs only the uint8 → float32 conversion.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archlab.data.anomaly import check_normal_class, one_class_vs_rest
from archlab.data.core import AUTOENCODER_TASKS, GENERATIVE_TASKS, ArrayDataset, DatasetInfo, register_dataset
from archlab.data.download import download, extract_tar
from archlab.data.formats import CIFAR10_BATCHES, CIFAR10_DIRNAME, read_cifar10, read_idx
from archlab.utils.errors import DataError

DOWNLOAD_ENV = "ARCHLAB_DOWNLOAD"
DATA_DIR_ENV = "ARCHLAB_DATA_DIR"

# System-wide copies installed by a distribution package (tests monkeypatch this).
SYSTEM_DIRS: dict[str, list[str]] = {"fashion_mnist": ["/usr/share/datasets/fashion-mnist"]}

# Other folder names a copy is commonly kept under (torchvision's layout, the upstream repo's).
_ALIASES: dict[str, list[str]] = {
    "fashion_mnist": ["fashion-mnist", "FashionMNIST/raw", "fashion"],
    "mnist": ["MNIST/raw"],
    "cifar10": ["cifar-10", "CIFAR10"],
}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Remote:
    """An official file: mirrors tried in order (https only), verified with sha256 and/or md5."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None


def _idx_remotes(bases: tuple[str, ...], algo: str, digests: dict[str, str]) -> dict[str, Remote]:
    return {
        f"{stem}.gz": Remote(f"{stem}.gz", tuple(f"{b}/{stem}.gz" for b in bases), **{algo: digest})
        for stem, digest in digests.items()
    }


# Fashion-MNIST: the publisher (Zalando, README "Get the Data") publishes md5 only. The Debian package's
# .gz files are recompressed (different gzip header/bytes, md5 differs), so their sha256 is not the
# published file's and is not recorded here.
FASHION_MNIST_REMOTES = _idx_remotes(
    (
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
    ),
    "md5",
    {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
)

MNIST_REMOTES = _idx_remotes(
    ("https://ossci-datasets.s3.amazonaws.com/mnist",),
    "sha256",
    {
        "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

# The "binary version" (fixed-size records): md5 as published on https://www.cs.toronto.edu/~kriz/cifar.html;
# sha256 of the same 170,052,171-byte file.
CIFAR10_REMOTE = Remote(
    "cifar-10-binary.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
)
CIFAR10_PYTHON_DIRNAME = "cifar-10-batches-py"  # the pickled version: recognised only to say what to get instead
CIFAR10_ARCHIVE_MAX_BYTES = 200_000_000  # six 30,730,000-byte batches, a readme and the class names


# ---------------------------------------------------------------------------------------- lookup


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/archlab/<name>`` (default ``~/.cache/archlab/<name>``): where downloads land."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archlab" / name


def _download_opted_in() -> bool:
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _expand(root: str | os.PathLike, name: str) -> list[Path]:
    root = Path(root).expanduser()
    return [root, root / name, *(root / a for a in _ALIASES.get(name, []))]


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every folder searched for ``name``, in order (data_dir, $ARCHLAB_DATA_DIR, system, cache)."""
    dirs: list[Path] = []
    if data_dir:
        dirs += _expand(data_dir, name)
    if os.environ.get(DATA_DIR_ENV):
        env = Path(os.environ[DATA_DIR_ENV]).expanduser()
        dirs += [env / name, *(env / a for a in _ALIASES.get(name, [])), env]
    dirs += [Path(d) for d in SYSTEM_DIRS.get(name, [])]
    dirs.append(cache_dir(name))
    seen: set[Path] = set()
    return [d for d in dirs if not (d in seen or seen.add(d))]


def _find_idx(directory: Path, stem: str) -> Path | None:
    for fname in (f"{stem}.gz", stem):
        if (directory / fname).is_file():
            return directory / fname
    return None


def _not_found(name: str, what: str, looked: list[Path], fix: str) -> DataError:
    where = ", ".join(str(d) for d in looked)
    return DataError(
        f"{name}: {what} not found (looked in {where}); fix: {fix}pass data.data_dir=DIR (--data-dir DIR) "
        f"to a folder that has them, or set {DOWNLOAD_ENV}=1 to download the official files to "
        f"{cache_dir(name)}"
    )


def _fetch(remote: Remote, dest_dir: Path) -> Path:
    """Download ``remote`` into ``dest_dir``, trying its mirrors in order; DataError if all fail."""
    errors: list[str] = []
    for url in remote.urls:
        try:
            return download(url, dest_dir / remote.filename, sha256=remote.sha256, md5=remote.md5)
        except DataError as e:
            errors.append(str(e))
    raise DataError(" | ".join(errors))


def resolve_idx_files(
    name: str, split: str, data_dir: str | os.PathLike | None, remotes: dict[str, Remote], fix: str = ""
) -> tuple[Path, Path]:
    """The (images, labels) IDX files for ``split``: first folder that has both, else a checked download."""
    stems = _IDX_FILES[split]
    looked = candidate_dirs(name, data_dir)
    for d in looked:
        found = [_find_idx(d, s) for s in stems]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    if not _download_opted_in():
        what = f"{split} files ({' and '.join(f'{s}[.gz]' for s in stems)})"
        raise _not_found(name, what, looked, fix)
    dest = cache_dir(name)
    paths = [_find_idx(dest, s) or _fetch(remotes[f"{s}.gz"], dest) for s in stems]
    return paths[0], paths[1]


def resolve_cifar10_dir(data_dir: str | os.PathLike | None) -> Path:
    """The ``cifar-10-batches-bin`` folder: first candidate that has every batch, else a checked download."""
    needed = [b for names in CIFAR10_BATCHES.values() for b in names]
    looked = candidate_dirs("cifar10", data_dir)
    for d in looked:
        for c in (d / CIFAR10_DIRNAME, d):
            if all((c / b).is_file() for b in needed):
                return c
    if not _download_opted_in():
        python_copy = next((d for d in looked if (d / CIFAR10_PYTHON_DIRNAME).is_dir()), None)
        fix = (
            f"{python_copy / CIFAR10_PYTHON_DIRNAME} is the python (pickled) version, which archlab does not "
            f"read — get the binary version, {CIFAR10_REMOTE.urls[0]}, and extract it there; "
            if python_copy
            else ""
        )
        raise _not_found("cifar10", f"{CIFAR10_DIRNAME}/ ({', '.join(needed)})", looked, fix)
    dest = cache_dir("cifar10")
    archive = _fetch(CIFAR10_REMOTE, dest)
    extract_tar(archive, dest, max_bytes=CIFAR10_ARCHIVE_MAX_BYTES)
    archive.unlink(missing_ok=True)
    batches = dest / CIFAR10_DIRNAME
    missing = [b for b in needed if not (batches / b).is_file()]
    if missing:
        raise DataError(f"cifar10: the downloaded archive lacks {', '.join(missing)}; delete {dest} and retry")
    return batches


# ------------------------------------------------------------------------------------- decoding


@functools.lru_cache(maxsize=16)
def _idx_arrays(name: str, split: str, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{images}: expected uint8 images of shape (N, H, W), got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DataError(f"{labels}: expected uint8 labels of shape (N,), got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{labels}: {len(y)} labels for the {len(x)} images in {Path(images).name}")
    if len(y) and y.max() > 9:
        raise DataError(f"{labels}: label {int(y.max())} outside 0..9; not a {name} labels file")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=4)
def _cifar_arrays(split: str, directory: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_cifar10(directory, split)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _to_dataset(x: np.ndarray, y: np.ndarray) -> ArrayDataset:
    xf = x.astype(np.float32)  # a fresh array: the cached uint8 one is never handed out
    np.divide(xf, 255.0, out=xf)
    xt = torch.from_numpy(xf)
    if xt.ndim == 3:
        xt = xt.unsqueeze(1)  # (N, 1, H, W)
    return ArrayDataset(xt.contiguous(), torch.from_numpy(y.astype(np.int64)))


def _idx_loader(name: str, remotes: dict[str, Remote], fix: str = "") -> Callable[..., ArrayDataset]:
    def load(split: str, data_dir: str | None = None) -> ArrayDataset:
        images, labels = resolve_idx_files(name, split, data_dir, remotes, fix)
        x, y = _idx_arrays(name, split, str(images.resolve()), str(labels.resolve()))
        return _to_dataset(x, y)

    return load


# ------------------------------------------------------------------------------------- registry

_DIGITS = tuple(str(i) for i in range(10))

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_MNIST_LIKE = dict(
    kind="image",
    task="classification",
    input_shape=(1, 28, 28),
    num_classes=10,
    splits={"train": 60000, "test": 10000},
)

_fashion_mnist = _idx_loader("fashion_mnist", FASHION_MNIST_REMOTES, fix="`apt-get install dataset-fashion-mnist`, ")
_mnist = _idx_loader("mnist", MNIST_REMOTES)


# besides classification: every task that learns from the images alone (autoencoders, VAEs, GANs, DDPMs)
_UNSUPERVISED_TASKS = (*AUTOENCODER_TASKS, *GENERATIVE_TASKS)


def _fashion_mnist_info(normal_class: int = -1) -> DatasetInfo:
    """The plain 10-class set, or with ``normal_class`` = k the one-class anomaly view (class k normal,
    the rest anomalies: see :mod:`archlab.data.anomaly`)."""
    if normal_class == -1:
        return FASHION_MNIST_INFO
    check_normal_class(normal_class, FASHION_MNIST_CLASSES)
    return dataclasses.replace(
        FASHION_MNIST_INFO,
        task="anomaly",
        tasks=("anomaly", *_UNSUPERVISED_TASKS),
        num_classes=2,
        classes=(f"normal ({FASHION_MNIST_CLASSES[normal_class]})", "anomaly (any other class)"),
        splits={"train": 6000, "test": 10000},
        reference={},
        notes=f"one class vs the rest: train holds class {normal_class} only; test y = 1 for the other nine "
        "classes (90%); x is pixel/255",
    )


FASHION_MNIST_INFO = DatasetInfo(
    name="fashion_mnist",
    source=(
        "Zalando Research, IDX .gz files; Debian package dataset-fashion-mnist "
        "(/usr/share/datasets/fashion-mnist) or https://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
    ),
    licence="MIT",
    citation=(
        "Xiao, Rasul & Vollgraf, Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning "
        "Algorithms, arXiv:1708.07747, 2017"
    ),
    classes=FASHION_MNIST_CLASSES,
    reference={
        "2 conv + pooling, no preprocessing": "87.6–91.6%",
        "2 conv + 3 FC (~1.8M params), normalisation": "93.2%",
        "CNN with shortcuts, dense-like connectivity, augmentation + random erasing": "94.7%",
    },
    notes="reference figures: submitted benchmarks in the README shipped with the Debian package "
    "(not re-tested by Zalando); x is pixel/255 in [0, 1]; data.options.normal_class=k: class k "
    "as normal vs the rest (anomaly detection)",
    tasks=_UNSUPERVISED_TASKS,
    **_MNIST_LIKE,
)


@register_dataset(FASHION_MNIST_INFO, options={"normal_class": -1}, info_for=_fashion_mnist_info)
def fashion_mnist(split: str, data_dir: str | None = None, normal_class: int = -1) -> ArrayDataset:
    ds = _fashion_mnist(split, data_dir)
    return ds if normal_class == -1 else one_class_vs_rest(ds, normal_class, split, FASHION_MNIST_CLASSES)


@register_dataset(
    DatasetInfo(
        name="mnist",
        source="LeCun, Cortes & Burges, IDX .gz files; mirror https://ossci-datasets.s3.amazonaws.com/mnist",
        licence="CC BY-SA 3.0",
        citation=(
            "LeCun, Bottou, Bengio & Haffner, Gradient-Based Learning Applied to Document Recognition, Proc. IEEE, 1998"
        ),
        classes=_DIGITS,
        reference={"LeNet-5 (LeCun et al. 1998)": "99.05% (0.95% error)"},
        notes="no offline copy on these machines: use data.data_dir=DIR or ARCHLAB_DOWNLOAD=1; x is pixel/255",
        **_MNIST_LIKE,
    )
)
def mnist(split: str, data_dir: str | None = None) -> ArrayDataset:
    return _mnist(split, data_dir)


@register_dataset(
    DatasetInfo(
        name="cifar10",
        kind="image",
        task="classification",
        input_shape=(3, 32, 32),
        num_classes=10,
        splits={"train": 50000, "test": 10000},
        source="Krizhevsky, CIFAR-10 binary version, https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        licence="no licence stated; cite Krizhevsky 2009",
        citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, tech. report, 2009",
        classes=CIFAR10_CLASSES,
        reference={
            "ResNet-20 (He et al. 2016, standard augmentation)": "91.25%",
            "ResNet-56 (He et al. 2016, standard augmentation)": "93.03%",
        },
        notes="no offline copy on these machines: use data.data_dir=DIR or ARCHLAB_DOWNLOAD=1; "
        "x is pixel/255, no other normalisation",
    )
)
def cifar10(split: str, data_dir: str | None = None) -> ArrayDataset:
    batches = resolve_cifar10_dir(data_dir)
    x, y = _cifar_arrays(split, str(batches.resolve()))
    return _to_dataset(x, y)
