"""Named options with typed defaults (a parametric data set's ``data.options``, a task's
``task.options``): unknown keys, wrongly typed and non-finite values are one-line errors naming the key path."""

from __future__ import annotations

import math
from typing import Any

from archlab.utils.errors import ConfigError, did_you_mean, preview


def check_options(given: dict[str, Any] | None, defaults: dict[str, Any], path: str, owner: str) -> dict[str, Any]:
    """``defaults`` updated by ``given``; each value must have its default's type (an int passes for a
    float; a bool is not an int) and a float must be finite. A default of None accepts a number.
    ``path`` is e.g. ``data.options``. Raises :class:`ConfigError` (``data.options.length: …``)."""
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise ConfigError(
                f"{path}.{preview(key)}: {owner} has no option '{preview(key)}'{did_you_mean(key, list(defaults))}; "
                f"its options: {', '.join(defaults) or 'none'}"
            )
        default = defaults[key]
        kind = float if default is None else type(default)
        if value is None and default is None:
            out[key] = None
            continue
        is_bool = isinstance(value, bool)
        if kind is float and isinstance(value, int) and not is_bool:
            value = float(value) if abs(value) < 2**1023 else math.inf  # float() of a huge int raises
        if not isinstance(value, kind) or is_bool != (kind is bool):
            raise ConfigError(
                f"{path}.{preview(key)}: expected {kind.__name__} (like the default {default!r}), got {preview(value)}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                f"{path}.{preview(key)}: expected a finite number (like the default {default!r}), got {value}"
            )
        out[key] = value
    return out
