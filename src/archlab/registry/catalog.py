"""The model catalog: what ``archlab list`` prints, without importing torch when nothing changed.

Importing every architecture (and torch) takes seconds; the listing needs only each entry's name,
family, tasks, paper, published figures (``register_model(meta=...)``) and default input shape. The
catalog is built once from the registry and kept as JSON in the cache directory
(``$ARCHLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/archlab``, else ``~/.cache/archlab``) under a name
that is the SHA-256 of the registry's and the models' source files: any edit to a model makes a new
key, so a stale catalog is never read. An unwritable cache directory only costs the speed.

This module imports neither torch nor the models unless the catalog has to be (re)built.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from archlab.utils.errors import ConfigError, did_you_mean
from archlab.utils.io import atomic_write_json, read_json

_PACKAGE = Path(__file__).resolve().parents[1]  # src/archlab
_SOURCES = ("registry", "models")  # what the catalog is computed from


def cache_dir() -> Path:
    if os.environ.get("ARCHLAB_CACHE_DIR"):
        return Path(os.environ["ARCHLAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archlab"


def sources_hash() -> str:
    """SHA-256 over the path and bytes of every ``.py`` file under ``archlab/registry`` and ``archlab/models``."""
    digest = hashlib.sha256()
    for sub in _SOURCES:
        for path in sorted((_PACKAGE / sub).rglob("*.py")):
            digest.update(path.relative_to(_PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_catalog() -> list[dict[str, Any]]:
    """One row per registered model (imports every architecture; figures missing from ``meta`` are
    measured on the meta device)."""
    from archlab.registry.models import get_model_entry, list_models

    rows = []
    for name in list_models():
        e = get_model_entry(name)
        meta = dict(e.meta)
        if not {"num_params", "macs"} <= set(meta):
            meta.update(_measure(name))
        shape = e.default("in_shape")
        rows.append(
            {
                "name": name,
                "family": e.family,
                "tasks": list(e.tasks),
                "paper": e.paper,
                "num_params": int(meta["num_params"]),
                "macs": meta["macs"],
                "in_shape": list(shape) if shape else [],
            }
        )
    return rows


def _measure(name: str) -> dict[str, Any]:
    import torch

    from archlab.registry.models import create_model
    from archlab.utils.counting import count_flops, count_params, example_inputs

    with torch.device("meta"):
        model = create_model(name)
        return {"num_params": count_params(model), "macs": count_flops(model, example_inputs(model)) / 2}


def model_catalog(family: str | None = None) -> list[dict[str, Any]]:
    """The catalog rows (sorted by name), from the cache when the sources are unchanged.

    Raises :class:`ConfigError` for an unknown ``family`` (with the closest names).
    """
    path = cache_dir() / f"models-{sources_hash()[:16]}.json"
    try:
        rows = read_json(path)
    except (OSError, ValueError):  # missing, unreadable or not JSON (json.JSONDecodeError is a ValueError)
        rows = build_catalog()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, rows)
        except OSError:
            pass  # a read-only home: list still works, only slower
    families = sorted({r["family"] for r in rows})
    if family is not None and family not in families:
        raise ConfigError(f"unknown family '{family}'{did_you_mean(family, families)}")
    return [r for r in rows if family is None or r["family"] == family]
