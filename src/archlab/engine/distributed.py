"""Data-parallel training under ``torchrun``, on PyTorch's own collectives (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node=N -m archlab train RECIPE`` starts N processes with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and a rendezvous in the environment; :func:`init` joins the process
group. The contract every rank keeps:

* ``data.batch_size`` is the **global** batch. Every rank builds the same global batch (same
  permutation, same augmentation draws) and keeps its contiguous shard of ``batch_size / N``
  examples, so an N-process run is the 1-process run with the work split — equal weights up to
  the order of floating-point sums.
* Gradients are averaged over ranks with one all-reduce of a flattened buffer after the backward
  pass (:func:`average_gradients`), for the default step and for a task's own step alike. (The
  ``DistributedDataParallel`` wrapper syncs only inside the wrapped module's ``forward``; a task
  may call ``model.encoder`` or a GAN's two networks directly, so archlab all-reduces after
  backward instead. The price is no overlap of communication with the backward pass.)
* Only rank 0 writes: the run directory, logs, checkpoints, ``summary.json``. Every rank's RNG
  state goes into the checkpoint, so a resumed N-process run continues bit-identically.

Outside ``torchrun`` every function here is a no-op for one process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from archlab.utils.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} in the environment is not an integer; launch with torchrun") from None


def env_info() -> DistInfo:
    """What torchrun put in the environment (``WORLD_SIZE`` unset: one process)."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    return DistInfo(rank=_env_int("RANK", 0), world_size=world, local_rank=_env_int("LOCAL_RANK", 0))


def init(device: torch.device) -> DistInfo:
    """Join the process group if torchrun started this process (idempotent); return its place.

    The backend follows the device: NCCL for CUDA, gloo otherwise.
    """
    info = env_info()
    if not info.enabled:
        return info
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info


def device_for(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    if info.enabled and device.type == "cuda" and device.index is None:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def all_reduce_(tensor: torch.Tensor, info: DistInfo, op: str = "sum") -> torch.Tensor:
    """In-place sum (or ``max``) over ranks; returns the tensor. A no-op for one process."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Replace every gradient by its mean over ranks: one all-reduce of a flattened buffer.

    A parameter without a gradient on this rank contributes zeros, so ranks agree on the set of
    tensors reduced (a parameter unused on every rank keeps ``grad is None``).
    """
    if not info.enabled:
        return
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8)
    if len(params):
        dist.all_reduce(has, op=dist.ReduceOp.MAX)  # the union: any rank's gradient makes it present
    chosen = [p for p, h in zip(params, has.tolist()) if h]
    if not chosen:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in chosen]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(info.world_size)
    offset = 0
    for p, g in zip(chosen, grads):
        n = g.numel()
        value = flat[offset : offset + n].view_as(g)
        if p.grad is None:
            p.grad = value.clone()
        else:
            p.grad.copy_(value)
        offset += n


def broadcast_module_(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers into every rank's module (the start of a job)."""
    if not info.enabled:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def _encode(obj: Any) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)


def _decode(t: torch.Tensor) -> Any:
    return json.loads(bytes(t.tolist()).decode())


def broadcast_json(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s JSON-able ``obj`` on every rank (sent as UTF-8 JSON bytes: no pickle)."""
    if not info.enabled:
        return obj
    data = _encode(obj) if info.rank == src else torch.empty(0, dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64)
    dist.broadcast(size, src=src)
    if info.rank != src:
        data = torch.empty(int(size), dtype=torch.uint8)
    dist.broadcast(data, src=src)
    return _decode(data)


def gather_json(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's JSON-able ``obj``, in rank order, on every rank (no pickle)."""
    if not info.enabled:
        return [obj]
    data = _encode(obj)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(info.world_size)]
    dist.all_gather(sizes, torch.tensor([data.numel()], dtype=torch.int64))
    longest = max(int(s) for s in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: data.numel()] = data
    bufs = [torch.empty(longest, dtype=torch.uint8) for _ in range(info.world_size)]
    dist.all_gather(bufs, padded)
    return [_decode(b[: int(s)]) for b, s in zip(bufs, sizes)]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
