"""Versions and hardware facts stored in every checkpoint and summary."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import numpy as np
import torch


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
    }
    cpu = _cpu_model()
    if cpu:
        info["cpu"] = cpu
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
