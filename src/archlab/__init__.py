"""archlab: classic deep-learning architectures on PyTorch — create in one line, train through one
interface, compare side by side.

    >>> import archlab
    >>> model = archlab.create_model("mlp", width=256, num_classes=10)
    >>> archlab.list_models("feedforward")
    >>> train = archlab.load_dataset("mnist1d", split="train")
    >>> summary = archlab.train("mnist1d/cnn1d", {"budget.steps": 500})

Importing the package imports nothing heavy: ``create_model``, ``list_models`` and ``count_params``
load torch and the registry on first use (PEP 562 module ``__getattr__``), so ``archlab --help``
answers without importing torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archlab.registry import create_model, list_models
    from archlab.utils.counting import count_params

__version__ = "0.1.0"

_LAZY = {
    "create_model": "archlab.registry",
    "list_models": "archlab.registry",
    "count_params": "archlab.utils.counting",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'archlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def load_dataset(name: str, split: str = "train", data_dir: str | None = None):
    """A registered dataset split as an ``ArrayDataset`` (tensors ``x``, ``y``)."""
    from archlab.data import load_dataset as _load

    return _load(name, split=split, data_dir=data_dir)


def train(recipe: Any, overrides: dict[str, Any] | None = None, runs_dir: str | Path = "runs") -> dict[str, Any]:
    """Train a recipe (a shipped name such as ``"mnist1d/cnn1d"``, a YAML path, a dict or a
    ``Recipe``) and return its summary."""
    from archlab.config import Recipe, load_recipe, recipe_to_dict
    from archlab.engine import Trainer

    recipe = load_recipe(recipe_to_dict(recipe) if isinstance(recipe, Recipe) else recipe, overrides)
    return Trainer(recipe, runs_dir=runs_dir).fit()


__all__ = ["count_params", "create_model", "list_models", "load_dataset", "train"]
