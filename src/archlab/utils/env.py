"""Versions and hardware facts stored in every checkpoint and summary.

The CPU kind varies between machines: bf16 matmul runs at about 2× fp32 speed on a CPU with
native bf16 instructions (``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on ARMv8.6) and about
14× *slower* than fp32 where bf16 is emulated (an AVX2-only AMD EPYC, measured; PEERS.md).
:func:`native_bf16` tells the two apart, and :func:`hardware` records it beside the CPU model.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import sys
from importlib import metadata

import numpy as np
import torch

log = logging.getLogger("archlab")


def archlab_version() -> str:
    try:
        return metadata.version("archlab")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def versions() -> dict[str, str]:
    return {
        "archlab": archlab_version(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def hardware(device: str | torch.device = "cpu") -> dict[str, object]:
    info: dict[str, object] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "native_bf16": native_bf16(device),
    }
    cpu = _cpu_model()
    if cpu:
        info["cpu"] = cpu
    simd = sorted(f for f in cpu_flags() if f in SIMD_FLAGS)
    if simd:
        info["cpu_flags"] = simd
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


# bf16 instructions: x86 (AVX-512 BF16, AMX-BF16) and ARM (FEAT_BF16, "bf16" in /proc/cpuinfo Features)
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# the vector-unit flags worth recording beside a speed figure
SIMD_FLAGS = frozenset(
    {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_int8", "neon", "sve"}
    | BF16_FLAGS
)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: the ``flags`` (x86) or ``Features`` (ARM) line of ``/proc/cpuinfo``.

    Where ``/proc/cpuinfo`` cannot be read (macOS, Windows), the bf16 flags that torch's own CPU
    probe (cpuinfo) reports; an empty set when neither is available.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key in ("flags", "Features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:  # torch's cpuinfo probe: a dict of feature → bool (private API, hence the guard)
        caps = torch._C._cpu._get_cpu_capability()
        return frozenset(k for k, v in caps.items() if v is True)
    except Exception:  # noqa: BLE001 - an older torch without the probe
        return frozenset()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively (True) or emulates it, far slower than fp32 (False).

    CUDA and MPS devices count as native. A CPU is native when it has one of :data:`BF16_FLAGS`
    (see :func:`cpu_flags`); an AVX2-only x86 CPU, or an AVX-512 one without ``avx512_bf16``
    (Skylake, Ice Lake), is not.
    """
    kind = torch.device(device).type
    if kind in ("cuda", "mps"):
        return True
    return bool(cpu_flags() & BF16_FLAGS)


_warned_emulated: set[str] = set()  # device kinds already warned about in this process


def warn_if_bf16_emulated(device: str | torch.device = "cpu") -> bool:
    """Log, once per process, that bf16 on ``device`` is emulated and slow; True when it is.

    Called where a run sets up ``precision: bf16``. Nothing is logged on a native device.
    """
    if native_bf16(device):
        return False
    kind = torch.device(device).type
    if kind not in _warned_emulated:
        _warned_emulated.add(kind)
        cpu = _cpu_model() or "this CPU"
        log.warning(
            "precision bf16: %s has no native bf16 (no avx512_bf16/amx_bf16): bf16 is emulated and can be "
            "~14x slower than fp32 here; use precision=fp32 on this machine",
            cpu,
        )
    return True
