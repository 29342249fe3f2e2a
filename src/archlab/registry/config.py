"""Model configs that validate themselves: ``ModelConfig``, the base of every architecture's config dataclass.

A field's annotation is its schema: on construction (``ResNetConfig(width=-3)``, from a builder, from
``create_model`` or from a recipe) every field is checked against it with pydantic's ``TypeAdapter``
and coerced (a YAML list becomes the annotated tuple), so a config built without the registry fails
exactly like one built through it: a :class:`ConfigError` of one line that starts with the key path,
``model.width: Input should be greater than or equal to 1 (got -3)``. Ranges are annotations too::

    @dataclass
    class ResNetConfig(ModelConfig):
        in_shape: ImageShape = (3, 224, 224)
        width: PositiveInt = 64
        dropout: Probability = 0.0

Floats must be finite everywhere (``inf``/``nan`` are refused). Checks that relate several fields
(``depth = 6n + 2``) stay in the model's ``__init__``, as ``ValueError``; builders turn them into
``ConfigError`` (see :mod:`archlab.registry.models`).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from archlab.utils.errors import ConfigError, preview

PositiveInt = Annotated[int, Field(ge=1)]  # a count or a width: ≥ 1
NonNegativeInt = Annotated[int, Field(ge=0)]  # ≥ 0 (0 usually switches a part off)
PositiveFloat = Annotated[float, Field(gt=0)]  # > 0 (a multiplier, an ε)
NonNegativeFloat = Annotated[float, Field(ge=0)]  # ≥ 0
Probability = Annotated[float, Field(ge=0, lt=1)]  # a dropout or drop-path rate: 0 ≤ p < 1
ImageShape = tuple[PositiveInt, PositiveInt, PositiveInt]  # (C, H, W)
SignalShape = tuple[PositiveInt, PositiveInt]  # (C, L)
Shape = tuple[PositiveInt, ...]  # any number of positive dimensions
# How many layers (or blocks of a stage) a network may stack: a bound on construction time — a million
# layers would build for minutes before anything could fail. The deepest network in the papers here
# is He et al.'s ResNet-1202; raise it for deeper experiments.
MAX_LAYERS = 2048
LayerCount = Annotated[int, Field(ge=1, le=MAX_LAYERS)]  # layers or blocks: 1 … MAX_LAYERS
NonNegativeLayerCount = Annotated[int, Field(ge=0, le=MAX_LAYERS)]  # 0 … MAX_LAYERS (0: none)
StageDepths = tuple[LayerCount, ...]  # blocks per stage


@functools.cache
def _adapter(cls: type, name: str) -> TypeAdapter:
    hint = typing.get_type_hints(cls, include_extras=True)[name]  # resolves string annotations, keeps ranges
    return TypeAdapter(hint, config=ConfigDict(allow_inf_nan=False))


def check_field(cls: type, name: str, value: Any, prefix: str = "model") -> Any:
    """``value`` validated and coerced against field ``name`` of config dataclass ``cls``.

    Raises :class:`ConfigError` ``{prefix}.{name}[.index]: <pydantic's message> (got <bounded preview>)``.
    """
    try:
        return _adapter(cls, name).validate_python(value)
    except ValidationError as e:
        err = e.errors()[0]
        loc = "".join(f".{part}" for part in err["loc"])
        raise ConfigError(f"{prefix}.{name}{loc}: {err['msg']} (got {preview(value)})") from None


@dataclass
class ModelConfig:
    """Base class of the architectures' config dataclasses: each field is validated on construction.

    Raises :class:`ConfigError` (see :func:`check_field`) for the first field whose value does not
    fit its annotation.
    """

    def __post_init__(self) -> None:
        cls = type(self)
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_field(cls, f.name, getattr(self, f.name)))
