"""Seeding and RNG state capture, so that a resumed run draws the same random numbers."""

from __future__ import annotations

import random

import numpy as np
import torch

from archlab.utils.errors import CheckpointError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (e.g. ``(seed, epoch)``) that does not collide for nearby inputs."""
    import hashlib

    h = hashlib.sha256(":".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


def get_rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors (torch CPU/CUDA generator states) and JSON-able states (python, numpy)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py_state = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def cuda_states_in_order(tensors: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The ``torch_cuda_<i>`` states ordered by device index ``i`` as a number (device 10 after 9,
    not after 1), checked to be exactly devices ``0..n-1``."""
    found = {}
    for k, v in tensors.items():
        if k.startswith("torch_cuda_"):
            index = k[len("torch_cuda_") :]
            if not index.isdigit():
                raise CheckpointError(f"RNG state '{k}' does not name a CUDA device index")
            found[int(index)] = v
    if sorted(found) != list(range(len(found))):
        raise CheckpointError(f"CUDA RNG states for devices {sorted(found)}, expected 0..{len(found) - 1}")
    return [found[i] for i in range(len(found))]


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore what :func:`get_rng_state` captured. CUDA states go back to the devices they came
    from, by index; a run saved with more CUDA devices than this process sees raises
    :class:`CheckpointError`."""
    torch.set_rng_state(tensors["torch_cpu"])
    states = cuda_states_in_order(tensors)
    if states and torch.cuda.is_available():
        if len(states) > torch.cuda.device_count():
            raise CheckpointError(
                f"the checkpoint holds RNG states of {len(states)} CUDA devices, this process sees "
                f"{torch.cuda.device_count()}"
            )
        torch.cuda.set_rng_state_all(states)
    v, internal, gauss = meta["python"]
    random.setstate((v, tuple(internal), gauss))
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))


def randn_on(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn on the generator's own device (the global
    RNG's ``device`` when ``generator`` is None) and moved: a seeded CPU generator then gives the
    same numbers whatever device the model is on, and a generator on the model's device works too."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)
