"""Checkpoints: safetensors for tensors, JSON for the rest, a sha256 manifest written last.

Layout of ``checkpoints/step-00000120/``::

    model.safetensors       the unwrapped model (tied weights handled by safetensors)
    optimizer.safetensors   every optimiser's tensor state, keys ``<opt>/<param#>/<name>``
    state.json              step, data position, RNG states, optimiser hyper-parameters,
                            best metric, versions, recipe hash
    task.safetensors        the task's own tensors (an EMA of the weights …), only if it has any;
                            the rest of the task's state is in state.json under "task"
    MANIFEST.json           sha256 and size of the files above — written last

A checkpoint is written to a hidden temporary directory and renamed into place, so a kill at
any moment leaves either the previous checkpoint set or the new one, never a half-written one
under a real name; :func:`prune` puts back or removes what such a kill leaves (``.tmp-*``,
``.old-*``). Non-finite weights or optimiser state are never written, and a checkpoint whose
tensors are non-finite or do not fit the model is refused on load with one line naming the first
bad tensor. Nothing is ever loaded with pickle.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from archlab.utils.errors import CheckpointError
from archlab.utils.io import atomic_write_json, fsync_dir, read_json, sha256_file

FILES = ("model.safetensors", "optimizer.safetensors", "state.json")
TASK_FILE = "task.safetensors"  # optional: present (and in the manifest) when the task has tensor state
MANIFEST = "MANIFEST.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")
# what a killed write or replace leaves behind: .tmp-<name>-<pid> (new), .old-<name>-<pid> (previous)
_LEFTOVER = re.compile(r"^\.(tmp|old)-(.+)-(\d+)$")

log = logging.getLogger("archlab")


class NonFiniteStateError(CheckpointError):
    """Weights or optimiser state holding NaN/inf: never written as a checkpoint, refused on load."""

    def __init__(self, message: str, tensor: str):
        super().__init__(message)
        self.tensor = tensor


def first_non_finite(tensors: dict[str, torch.Tensor]) -> tuple[str, str] | None:
    """``(name, "NaN" | "inf")`` of the first floating tensor in ``tensors`` with a non-finite entry,
    in iteration order; ``None`` when every entry is finite."""
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            return name, "NaN" if bool(torch.isnan(t).any()) else "inf"
    return None


def fault_point(where: str, step: int) -> None:
    """Test hook: ``ARCHLAB_FAULT=where:step`` SIGKILLs this process at that point.

    Used by the resume tests to kill a run at exact places (mid-epoch, inside a checkpoint
    write) instead of racing a timer. Does nothing unless the variable is set.
    """
    spec = os.environ.get("ARCHLAB_FAULT")
    if spec and spec == f"{where}:{step}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# -- optimiser state <-> (tensors, json) -------------------------------------------------------
def _optimizer_to_flat(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"{name}/{pid}/{k}"] = v.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(pid), {})[k] = v
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, m in meta.items():
        state: dict[int, dict[str, Any]] = {}
        for pid, sc in m["scalars"].items():
            state.setdefault(int(pid), {}).update(sc)
        out[name] = {"state": state, "param_groups": m["param_groups"]}
    for key, t in tensors.items():
        name, pid, k = key.split("/", 2)
        out[name]["state"].setdefault(int(pid), {})[k] = t
    return out


def encode_bytes_tensor(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def decode_bytes_tensor(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


# -- write ---------------------------------------------------------------------------------------
def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; a kill between the two renames leaves ``final`` missing and
    both ``.old-*`` and ``.tmp-*`` complete, a kill before the ``rmtree`` a stale ``.old-*``:
    :func:`prune` repairs both."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def save_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
    step: int,
    task_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint atomically to ``directory`` (e.g. ``checkpoints/step-00000120``);
    ``task_tensors`` (the task's own tensor state) go to ``task.safetensors``.

    Raises :class:`NonFiniteStateError` (naming the first bad tensor) before anything is written if
    a weight, buffer or optimiser tensor holds NaN/inf: such a checkpoint is never "good".
    """
    directory = Path(directory)
    weights = model.state_dict()
    opt_tensors, opt_meta = _optimizer_to_flat(optimizers)
    for kind, tensors in (("weights", weights), ("optimiser state", opt_tensors), ("task state", task_tensors or {})):
        bad = first_non_finite(tensors)
        if bad:
            raise NonFiniteStateError(
                f"refusing to write {directory}: the {kind} hold {bad[1]} (first: '{bad[0]}')", bad[0]
            )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".tmp-{directory.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))
        fault_point("checkpoint", step)  # killed here: only a hidden .tmp dir exists
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"), metadata={"format": "archlab-optimizer-v1"})
        atomic_write_json(tmp / "state.json", {**state, "optimizers": opt_meta})
        files = FILES
        if task_tensors:
            save_file(task_tensors, str(tmp / TASK_FILE), metadata={"format": "archlab-task-state-v1"})
            files = (*FILES, TASK_FILE)
        manifest = {f: {"sha256": sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files}
        for f in files:
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
        atomic_write_json(tmp / MANIFEST, {"format": "archlab-checkpoint-v1", "step": step, "files": manifest})
        fsync_dir(tmp)
        fault_point("replace", step)  # killed here: a complete .tmp dir, not yet renamed
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


# -- read ----------------------------------------------------------------------------------------
def verify_checkpoint(directory: Path) -> dict[str, Any]:
    """Check every file against the manifest; raise :class:`CheckpointError` naming the bad file."""
    directory = Path(directory)
    mpath = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory} does not exist")
    if not mpath.exists():
        raise CheckpointError(f"{mpath} is missing: the checkpoint was not completely written")
    try:
        manifest = read_json(mpath)
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{mpath} is corrupt (not a valid manifest)") from None
    for name in (*FILES, TASK_FILE) if TASK_FILE in files else FILES:
        path = directory / name
        if name not in files:
            raise CheckpointError(f"{mpath} does not list {name}")
        if not path.exists():
            raise CheckpointError(f"{path} is missing")
        size = path.stat().st_size
        if size != files[name]["bytes"]:
            raise CheckpointError(
                f"{path} is truncated or altered ({size} bytes, manifest says {files[name]['bytes']})"
            )
        if sha256_file(path) != files[name]["sha256"]:
            raise CheckpointError(f"{path} is altered (sha256 does not match {mpath.name})")
    return manifest


def _shape(shape: Any) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _check_fits(path: Path, model: nn.Module) -> None:
    """Compare the file's tensor names and shapes (read from its header only) with ``model``'s;
    raise :class:`CheckpointError` naming the first tensor whose shape differs and both shapes."""
    try:
        with safe_open(str(path), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read: {e}") from None
    for name, t in model.state_dict().items():
        if name in saved and saved[name] != tuple(t.shape):
            raise CheckpointError(
                f"{path} does not fit this model: '{name}' has shape {_shape(saved[name])} in the checkpoint "
                f"but {_shape(t.shape)} in the model built from the recipe — was recipe.yaml changed after the run?"
            )


def read_recipe_hash(root: Path) -> tuple[Path, str, int] | None:
    """``(checkpoint, recipe hash, world size)`` from the newest checkpoint under ``root`` whose
    state.json reads; every checkpoint of a run is written by the same recipe and process count."""
    for d in step_dirs(root):
        try:
            state = read_json(d / "state.json")
            return d, str(state["recipe_hash"]), int(state.get("world_size", 1))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    map_location: str | torch.device = "cpu",
    retired: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Verify, then load weights (and optimiser state) in place; return ``state.json``.

    ``retired``: tensor-name prefixes of weights an older version of the run's task saved and
    ``model`` no longer has (the task's ``retired_weights``); saved tensors under them that the
    model lacks are dropped with a one-line notice. Raises :class:`CheckpointError` (one line) when
    a file fails the manifest, when a tensor's shape or name does not fit ``model`` (naming the
    first such tensor and both shapes), and :class:`NonFiniteStateError` when a loaded weight or
    optimiser tensor holds NaN/inf.
    """
    directory = Path(directory)
    verify_checkpoint(directory)
    weights = directory / "model.safetensors"
    _check_fits(weights, model)
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(map_location))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{weights} cannot be loaded into this model: {str(e).splitlines()[0]}") from None
    dropped = [k for k in unexpected if k.startswith(tuple(retired))]
    unexpected = [k for k in unexpected if not k.startswith(tuple(retired))]
    if missing or unexpected:
        raise CheckpointError(
            f"{weights} does not fit this model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}): was the recipe changed?"
        )
    if dropped:
        under = [p for p in retired if any(k.startswith(p) for k in dropped)]
        log.warning(
            "%s: dropped %d tensors under %s, which an older version of this run's task saved and its model no "
            "longer has",
            weights,
            len(dropped),
            ", ".join(under),
        )
    bad = first_non_finite(model.state_dict())
    if bad:
        raise NonFiniteStateError(
            f"{weights} holds non-finite weights ({bad[1]} in '{bad[0]}'); it is not a good checkpoint — "
            "use an earlier one (--checkpoint step-N)",
            bad[0],
        )
    state = read_json(directory / "state.json")
    if optimizers:
        tensors = load_file(str(directory / "optimizer.safetensors"), device=str(map_location))
        bad = first_non_finite(tensors)
        if bad:
            raise NonFiniteStateError(
                f"{directory / 'optimizer.safetensors'} holds non-finite optimiser state ({bad[1]} in "
                f"'{bad[0]}'); it is not a good checkpoint",
                bad[0],
            )
        restored = _optimizer_from_flat(tensors, state["optimizers"])
        for name, opt in optimizers.items():
            if name not in restored:
                raise CheckpointError(f"{directory / 'state.json'} has no state for optimiser '{name}'")
            try:
                opt.load_state_dict(restored[name])
            except (ValueError, KeyError, RuntimeError) as e:
                raise CheckpointError(
                    f"{directory / 'optimizer.safetensors'}: the state of optimiser '{name}' does not fit "
                    f"({str(e).splitlines()[0]})"
                ) from None
    return state


def load_matching_weights(directory: Path, model: nn.Module) -> tuple[list[str], list[str]]:
    """Verify the checkpoint ``directory``, then copy each of its weights whose name and shape match
    a tensor of ``model`` into it (fine-tuning from another run: the encoder of a pre-trained model
    into a classifier). Returns (names copied, names of ``model`` left as they were). Raises
    :class:`CheckpointError` for a bad checkpoint or one that shares no tensor with ``model``."""
    directory = Path(directory)
    verify_checkpoint(directory)
    weights = directory / "model.safetensors"
    try:
        saved = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights} cannot be read: {str(e).splitlines()[0]}") from None
    bad = first_non_finite(saved)
    if bad:
        raise NonFiniteStateError(f"{weights} holds non-finite weights ({bad[1]} in '{bad[0]}')", bad[0])
    own = model.state_dict()
    copied = [k for k, t in own.items() if k in saved and saved[k].shape == t.shape]
    if not copied:
        raise CheckpointError(f"{weights} shares no tensor (name and shape) with this model; is it the same family?")
    with torch.no_grad():
        for k in copied:
            own[k].copy_(saved[k])
    return copied, [k for k in own if k not in set(copied)]


def load_task_tensors(directory: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The task's tensor state saved beside a (verified) checkpoint; ``{}`` when it has none."""
    path = Path(directory) / TASK_FILE
    if TASK_FILE not in verify_checkpoint(directory)["files"]:  # only what the manifest vouches for
        return {}
    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read: {e}") from None


def step_dirs(root: Path) -> list[Path]:
    """Checkpoint directories under ``root``, newest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def find_resumable(root: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies, and one line for each newer one that did not."""
    skipped: list[str] = []
    for d in step_dirs(root):
        try:
            verify_checkpoint(d)
            return d, skipped
        except CheckpointError as e:
            skipped.append(str(e))
    return None, skipped


def _repair_leftovers(root: Path) -> None:
    """Finish or undo what a killed :func:`save_checkpoint` left under ``root``.

    A checkpoint whose real name is missing gets back its complete previous copy (``.old-*``,
    the state the run's newest step checkpoint knows), else its complete new copy (``.tmp-*``);
    every other leftover — incomplete copies and stale ``.old-*`` next to a finished replace — is removed.
    """
    left: dict[str, list[tuple[int, Path]]] = {}
    for p in Path(root).iterdir():
        m = _LEFTOVER.match(p.name)
        if m and p.is_dir():
            left.setdefault(m.group(2), []).append((0 if m.group(1) == "old" else 1, p))
    for name, copies in left.items():
        final = Path(root) / name
        for _, p in sorted(copies):
            if not final.exists():
                try:
                    verify_checkpoint(p)
                except CheckpointError:
                    pass
                else:
                    os.replace(p, final)
                    continue
            shutil.rmtree(p, ignore_errors=True)
    fsync_dir(root)


def prune(root: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` step checkpoints and repair leftovers of killed writes."""
    root = Path(root)
    if not root.is_dir():
        return
    _repair_leftovers(root)
    for d in step_dirs(root)[keep_last:]:
        shutil.rmtree(d, ignore_errors=True)
