"""Every error a user can cause, each carrying a one-line message that says what to do.

The CLI turns an :class:`ArchlabError` into ``archlab: error: <message>`` and its ``exit_code``
(2 for bad input; :class:`NonFiniteError` has its own code so scripts can tell divergence apart).
"""

from __future__ import annotations

import difflib
import os
import reprlib
from collections.abc import Iterable

PREVIEW_LIMIT = 80  # characters of user input an error message echoes
MESSAGE_LIMIT = 2000  # characters of a whole error line (the CLI cuts longer ones)


def _cut(text: str, limit: int) -> str:
    """``text`` itself when short, else its head and tail around ``…`` (the tail keeps a path's file name)."""
    if len(text) <= limit:
        return text
    tail = min(20, limit // 4)
    return f"{text[: limit - tail - 1]}…{text[-tail:]}"


def preview(value: object, limit: int = PREVIEW_LIMIT) -> str:
    """A bounded, one-line rendering of user input for an error message.

    A string is shown as itself, anything else as its ``repr``; either way at most about ``limit``
    characters (head ``…`` tail) with control characters escaped, so a message never spans lines. The
    repr is built by :mod:`reprlib`, which visits only the first few items of each container: a
    recipe whose YAML aliases expand to 9⁹ items (a "billion laughs") is previewed in microseconds
    instead of being expanded.
    """
    if isinstance(value, str):
        text = _cut(value, limit)
    else:
        r = reprlib.Repr()
        r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 6, 6, 6, 6
        r.maxstring = r.maxother = r.maxlong = limit
        try:
            text = _cut(r.repr(value), limit)
        except Exception:  # an int too long to print, a repr that raises
            text = f"<{type(value).__name__}>"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` with line breaks and control characters escaped, cut to ``limit`` characters."""
    return preview(message, limit)


def os_error_message(e: OSError) -> str:
    """``'PATH': REASON`` for an OS error on a path (``'runs/x…': File name too long``), else the reason."""
    reason = e.strerror or str(e) or type(e).__name__
    paths = [p for p in (e.filename, e.filename2) if p is not None]
    if not paths:
        return preview(reason, MESSAGE_LIMIT)
    shown = " → ".join(f"'{preview(os.fsdecode(p) if isinstance(p, bytes | os.PathLike) else str(p))}'" for p in paths)
    return f"{shown}: {reason}"


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean: a, b?)`` for the closest names, or ``""`` when none is close (or ``name`` is
    longer than any name could be: matching a 10 MB string would take minutes)."""
    choices = list(choices)
    if not isinstance(name, str) or len(name) > 4 * PREVIEW_LIMIT:
        return ""
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
        super().__init__(f"unknown {kind} '{preview(name)}'{did_you_mean(name, choices)}{hint}")

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
