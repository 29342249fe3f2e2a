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
under a real name. Nothing is ever loaded with pickle.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from archlab.utils.errors import CheckpointError
from archlab.utils.io import atomic_write_json, fsync_dir, read_json, sha256_file

FILES = ("model.safetensors", "optimizer.safetensors", "state.json")
TASK_FILE = "task.safetensors"  # optional: present (and in the manifest) when the task has tensor state
MANIFEST = "MANIFEST.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


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
    ``task_tensors`` (the task's own tensor state) go to ``task.safetensors``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".tmp-{directory.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))
        fault_point("checkpoint", step)  # killed here: only a hidden .tmp dir exists
        opt_tensors, opt_meta = _optimizer_to_flat(optimizers)
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


def load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Verify, then load weights (and optimiser state) in place; return ``state.json``."""
    directory = Path(directory)
    verify_checkpoint(directory)
    try:
        missing, unexpected = load_model(
            model, str(directory / "model.safetensors"), strict=False, device=str(map_location)
        )
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{directory / 'model.safetensors'} cannot be read: {e}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{directory / 'model.safetensors'} does not fit this model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}): was the recipe changed?"
        )
    state = read_json(directory / "state.json")
    if optimizers:
        tensors = load_file(str(directory / "optimizer.safetensors"), device=str(map_location))
        restored = _optimizer_from_flat(tensors, state["optimizers"])
        for name, opt in optimizers.items():
            if name not in restored:
                raise CheckpointError(f"{directory / 'state.json'} has no state for optimiser '{name}'")
            opt.load_state_dict(restored[name])
    return state


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


def prune(root: Path, keep_last: int) -> None:
    for d in step_dirs(root)[keep_last:]:
        shutil.rmtree(d, ignore_errors=True)
    for p in Path(root).glob(".tmp-*"):  # leftovers of a killed write
        shutil.rmtree(p, ignore_errors=True)
