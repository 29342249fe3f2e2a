"""The model registry: ``@register_model`` on builder functions, ``create_model(name, **overrides)``.

A builder takes keyword overrides of its architecture's config dataclass and returns the module::

    @register_model(family="cnn", config=ResNetConfig, paper=PAPER, defaults={"block": "bottleneck", ...})
    def resnet50(**overrides) -> ResNet:
        return ResNet(ResNetConfig(**overrides))

``register_model`` returns the builder wrapped so that it always builds its own variant: calling
``resnet50()`` directly applies the variant's ``defaults`` exactly as ``create_model("resnet50")``
does (torchvision's ``resnet50()`` is a ResNet-50 too), and keyword overrides win over them.
Unknown keys fail with a did-you-mean before the builder runs; values are checked by the config
itself (:class:`~archlab.registry.config.ModelConfig`), so a config built without the registry fails
the same way; an error raised while building (a ``ValueError`` of the architecture's own checks)
becomes a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

from archlab.registry.config import ModelConfig, check_field
from archlab.registry.core import Registry
from archlab.utils.errors import ArchlabError, ConfigError, RegistryError, UnknownModelError, did_you_mean


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    config: type  # the architecture's Config dataclass
    paper: str
    tasks: tuple[str, ...] = ("classification",)
    defaults: dict[str, Any] = field(default_factory=dict)  # this variant's overrides of the config
    description: str = ""
    # overrides the registry-wide smoke test builds with (timm's ``test_input_size`` idea): a small
    # input for ImageNet-sized networks so that every model is checked in seconds
    test_overrides: dict[str, Any] = field(default_factory=dict)
    # published figures of this variant at its default config (torchvision's ``meta``): ``num_params``
    # (exact), ``macs`` (multiply-accumulates per example at the config's ``in_shape``; within 2 % of
    # the count) and ``source`` (who published them; absent: archlab's own count). The registry-wide
    # test measures both, so ``archlab list`` can print them without building anything.
    meta: dict[str, Any] = field(default_factory=dict)

    def default(self, key: str) -> Any:
        """This variant's default value of config field ``key`` (its ``defaults``, else the config's)."""
        if key in self.defaults:
            return self.defaults[key]
        f = {f.name: f for f in dataclasses.fields(self.config)}.get(key)
        if f is None:
            return None
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]

    @property
    def module(self) -> str:
        return self.builder.__module__

    def equations(self) -> str:
        """The ``Equations:`` section of the architecture's module docstring."""
        doc = inspect.getdoc(importlib.import_module(self.module)) or ""
        marker = "Equations:"
        if marker not in doc:
            return ""
        lines = []
        for line in doc.split(marker, 1)[1].splitlines()[1:]:
            if line.strip() and not line.startswith(" "):
                break  # the indented block has ended
            lines.append(line)
        return textwrap.dedent("\n".join(lines)).strip()


_META_KEYS = {"num_params", "macs", "source"}
MODELS: Registry[ModelEntry] = Registry("model", error=lambda n, c: UnknownModelError(n, c))


def register_model(
    *,
    family: str,
    config: type,
    paper: str,
    tasks: tuple[str, ...] | list[str] = ("classification",),
    defaults: dict[str, Any] | None = None,
    test_overrides: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its own function name (the registry name equals the builder).

    ``defaults`` are the variant's values of ``config`` (ResNet-50: bottleneck blocks, (3, 4, 6, 3));
    ``meta`` its published figures (see :class:`ModelEntry`). Returns the builder wrapped so that a
    direct call applies ``defaults`` (see the module docstring). Raises :class:`RegistryError` for a
    duplicate name, a non-dataclass config, or ``defaults``/``meta`` with unknown keys.
    """
    if not (dataclasses.is_dataclass(config) and issubclass(config, ModelConfig)):
        raise RegistryError(
            f"register_model: config must be a ModelConfig dataclass (it validates itself), got {config!r}"
        )

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        defaults_ = dict(defaults or {})
        known = {f.name for f in dataclasses.fields(config)}
        bad = (set(defaults_) | set(test_overrides or {})) - known
        if bad:
            raise RegistryError(f"{name}: defaults name unknown config fields {sorted(bad)}")
        meta_ = dict(meta or {})
        if set(meta_) - _META_KEYS or not isinstance(meta_.get("num_params", 0), int):
            raise RegistryError(f"{name}: meta takes {sorted(_META_KEYS)} (num_params an int), got {meta_}")

        @functools.wraps(fn)
        def builder(**overrides: Any) -> nn.Module:
            _check_keys(name, config, overrides)
            try:
                return fn(**{**defaults_, **overrides})  # the variant's architecture, then the caller's
            except ArchlabError:
                raise
            except (ValueError, TypeError) as e:
                raise ConfigError(f"model '{name}': {e}") from None

        doc = inspect.getdoc(fn) or ""
        MODELS.add(
            name,
            ModelEntry(
                name=name,
                builder=builder,
                family=family,
                config=config,
                paper=paper,
                tasks=tuple(tasks),
                defaults=defaults_,
                test_overrides=dict(test_overrides or {}),
                meta=meta_,
                description=doc.splitlines()[0] if doc else "",
            ),
        )
        return builder

    return deco


def _check_keys(name: str, config: type, overrides: dict[str, Any], prefix: str = "model") -> None:
    fields = {f.name for f in dataclasses.fields(config)}
    for key in overrides:
        if key not in fields:
            raise ConfigError(
                f"{prefix}.{key}: unknown option for model '{name}'{did_you_mean(key, fields)}; "
                f"valid: {', '.join(sorted(fields))}"
            )


def _ensure_models_imported() -> None:
    # the models package registers every family on import; the registry sits below it, so the
    # import is by name at call time (an upward import only of the plug-in point).
    importlib.import_module("archlab.models")


def get_model_entry(name: str) -> ModelEntry:
    _ensure_models_imported()
    return MODELS.get(name)


def list_models(family: str | None = None) -> list[str]:
    _ensure_models_imported()
    if family is not None and family not in list_families():
        raise ConfigError(f"unknown family '{family}'{did_you_mean(family, list_families())}")
    return [n for n in MODELS.names() if family is None or MODELS.get(n).family == family]


def list_families() -> list[str]:
    _ensure_models_imported()
    return sorted({MODELS.get(n).family for n in MODELS.names()})


def model_config_fields(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_model_entry(name).config)}


def validate_model_overrides(name: str, overrides: dict[str, Any], prefix: str = "model") -> dict[str, Any]:
    """Check keys and types of ``overrides`` against the model's config without building it; return the
    coerced values. The same checks as constructing the config (:func:`check_field`), for callers that
    validate a whole experiment before its first run."""
    entry = get_model_entry(name)
    _check_keys(name, entry.config, overrides, prefix)
    return {key: check_field(entry.config, key, value, prefix) for key, value in overrides.items()}


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model: ``create_model("mlp", width=256, num_classes=10)``.

    The same as calling the builder (``archlab.models.feedforward.mlp.mlp(width=256, ...)``), after
    dropping ``None`` values (timm's convention: "not given"). Raises :class:`UnknownModelError`
    for an unknown name and :class:`ConfigError` (``model.<key>: …``) for a bad override.
    """
    entry = get_model_entry(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return entry.builder(**overrides)  # the config validates the values (ModelConfig)
