"""Inception-v3 pool features for the published FID and KID, through torch-fidelity (an option).

The FID of Heusel et al. (NeurIPS 2017) and the KID of Bińkowski et al. (ICLR 2018) are defined on the
2048 pool features of the TensorFlow Inception-v3 graph of 2015-12-05; torch-fidelity's
``FeatureExtractorInceptionV3`` reproduces that graph in PyTorch (its bilinear resize to 299×299 is
TF1's, its input uint8 RGB), and its weights are the converted TF weights
(``weights-inception-2015-12-05-6726825d.pth``). archlab never downloads them: the user points to the
file (``archlab eval RUN --samples N --inception-weights PATH``), and this module wraps the extractor.

Why an option and not a dependency: torch-fidelity (and pytorch-fid) require torchvision, and on the
CPU machines archlab is developed on the only torchvision wheel matching torch 2.13 is the CUDA build,
whose import fails against the CPU torch ("operator torchvision::nms does not exist"), which breaks
``import torch_fidelity`` as a whole. The extra ``archlab[inception]`` is for machines where a
matching torchvision loads (a CUDA torch from PyPI). Everything that can go wrong is one line
(:class:`ConfigError`): the library missing or failing to import, the weights file missing, not
loadable without executing pickled code (``torch.load(weights_only=True)`` is tried first; only a file
that passes is handed to torch-fidelity, whose own loader unpickles it), or not holding the
extractor's tensors.

Images: (N, C ∈ {1, 3}, H, W) floats in [0, 1]; grey images are repeated to three channels, then
rounded to uint8 (x · 255), the input torch-fidelity expects. Features: (N, 2048) float64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from archlab.utils.errors import ConfigError, one_line


def _reason(e: BaseException, limit: int) -> str:
    """An exception's text as one line: whitespace runs (torch's multi-line messages) become one space."""
    return one_line(" ".join(str(e).split()), limit)


EXTRA = "pip install 'archlab[inception]' (torch-fidelity; it needs a torchvision build that loads with your torch)"
FEATURES = "2048"  # the pool features of the FID/KID


def _extractor_class() -> Any:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as e:  # ModuleNotFoundError, or a torchvision that fails on import (RuntimeError, OSError)
        raise ConfigError(
            f"Inception-FID needs torch-fidelity, which could not be imported ({type(e).__name__}: "
            f"{_reason(e, 160)}); {EXTRA}"
        ) from None
    return FeatureExtractorInceptionV3


def _check_weights(path: Path) -> None:
    """The file exists and loads without executing pickled code (tensors and plain containers only)."""
    if not path.is_file():
        raise ConfigError(
            f"--inception-weights '{path}': no such file (torch-fidelity's converted TF Inception-v3 weights, "
            "weights-inception-2015-12-05-6726825d.pth; archlab does not download them)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(
            f"--inception-weights '{path}': not a PyTorch weights file loadable without running pickled code "
            f"({type(e).__name__}: {_reason(e, 120)})"
        ) from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"--inception-weights '{path}': not a state dict of tensors")


class InceptionFeatures:
    """torch-fidelity's Inception-v3 feature extractor with the user's weights: call it on images
    (N, C ∈ {1, 3}, H, W) in [0, 1] to get (N, 2048) float64 pool features.

    Raises :class:`ConfigError` (one line) when torch-fidelity cannot be imported or the weights file
    is missing, unsafe to load, or not the extractor's weights; ValueError for images of another shape."""

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        path = Path(weights).expanduser()
        cls = _extractor_class()
        _check_weights(path)
        try:
            self.net = cls("inception-v3-compat", [FEATURES], feature_extractor_weights_path=str(path))
        except RuntimeError as e:  # load_state_dict: missing/unexpected keys, shape mismatches
            raise ConfigError(
                f"--inception-weights '{path}': not torch-fidelity's Inception-v3 weights ({_reason(e, 160)})"
            ) from None
        self.device, self.batch_size = torch.device(device), batch_size
        self.net = self.net.to(self.device).eval()

    @staticmethod
    def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) in [0, 1] → (N, 3, H, W) uint8, grey repeated to RGB, x · 255 rounded."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"Inception features need images (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
        x = images.detach().float().clamp(0.0, 1.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x * 255.0).round().to(torch.uint8)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = self.to_uint8_rgb(images)
        out = [
            self.net(x[i : i + self.batch_size].to(self.device))[0].double().cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, int(FEATURES), dtype=torch.float64)
