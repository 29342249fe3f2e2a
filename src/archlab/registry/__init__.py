"""Registries for models, datasets, tasks and experiments.

Every family plugs in with a decorator at import time; lookups of unknown names raise with the
closest names. The registry knows nothing about any family.
"""

from archlab.registry.config import ModelConfig, check_field
from archlab.registry.core import Registry
from archlab.registry.models import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_families,
    list_models,
    model_config_fields,
    register_model,
)

__all__ = [
    "ModelConfig",
    "ModelEntry",
    "Registry",
    "check_field",
    "create_model",
    "get_model_entry",
    "list_families",
    "list_models",
    "model_config_fields",
    "register_model",
]
