"""Every error a user can cause, each carrying a one-line message that says what to do.

The CLI turns an :class:`ArchlabError` into ``archlab: error: <message>`` and its ``exit_code``
(2 for bad input; :class:`NonFiniteError` has its own code so scripts can tell divergence apart).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean: a, b?)`` for the closest names, or ``""`` when none is close."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not close:
        # prefix/substring matches help with short names (``res`` → ``resnet18``)
        close = [c for c in choices if name.lower() in c.lower() or c.lower().startswith(name.lower())][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


class ArchlabError(Exception):
    """Base class: a user-facing error with a one-line message."""

    exit_code = 2


class UnknownNameError(ArchlabError, KeyError):
    """A name looked up in a registry that has no such entry."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = ""):
        choices = sorted(choices)
        self.kind, self.name, self.choices = kind, name, choices
        super().__init__(f"unknown {kind} '{name}'{did_you_mean(name, choices)}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownModelError(UnknownNameError):
    def __init__(self, name: str, choices: Iterable[str]):
        super().__init__("model", name, choices, hint="; `archlab list` shows them all")


class UnknownDatasetError(UnknownNameError):
    def __init__(self, name: str, choices: Iterable[str]):
        super().__init__("dataset", name, choices, hint="; `archlab data list` shows them all")


class RegistryError(ArchlabError):
    """Programming error in a registration (duplicate name, bad metadata)."""


class ConfigError(ArchlabError):
    """A recipe or override that does not validate; the message starts with the key path."""


class ShapeError(ArchlabError, ValueError):
    """An input tensor whose shape is not what the model expects."""


class DataError(ArchlabError):
    """A data file that is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(ArchlabError):
    """A checkpoint that is missing, truncated or altered (names the file)."""


class RunDirError(ArchlabError):
    """A run directory that cannot be created, written, or is not a run."""


class NonFiniteError(ArchlabError):
    """Loss or gradient became NaN/inf; training stopped before the optimizer step."""

    exit_code = 3
