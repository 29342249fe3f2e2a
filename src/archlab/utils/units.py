"""Human-readable numbers (no torch import: the CLI's listing uses it before any model is loaded)."""

from __future__ import annotations


def human(n: float, unit: str = "") -> str:
    """``1234567`` → ``1.23M``."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"
