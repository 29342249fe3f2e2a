"""The task protocol the trainer drives. The trainer never special-cases a family: everything
family- or objective-specific lives here.

* ``build_model(spec)`` creates the model, filling ``in_shape``/``num_classes`` from the data
  when the model's config has such fields and the recipe did not set them.
* ``param_groups(model)`` names the parameter sets that get their own optimiser (one, ``main``,
  for ordinary tasks; a GAN returns ``generator`` and ``discriminator``).
* ``training_loss(model, batch)`` returns the scalar to back-propagate and metrics to log.
* ``custom_step`` (optional): a task that needs more than one backward/step per batch (GANs)
  sets ``has_custom_step = True`` and implements ``custom_step(model, batch, optimizers, ctx)``.
* ``evaluate(model, batches)`` returns metrics over a whole split.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from archlab.config import ModelSpec, TaskSpec
from archlab.data import Batch, DatasetInfo, model_inputs
from archlab.registry import Registry, create_model, model_config_fields
from archlab.tasks.metrics import Metric, MetricSet, declare_direction, higher_is_better  # noqa: F401
from archlab.utils.errors import ConfigError, UnknownNameError, did_you_mean
from archlab.utils.options import check_options


def split_batch(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(x, y, kwargs)``: ``kwargs`` holds the batch fields the model's ``forward`` declares by
    name (``lengths`` for a recurrent model, ``attention_mask`` for a Transformer …); a model that
    declares none sees ``x`` alone (zero-padded), so no family must know about lengths."""
    return batch.x, batch.y, model_inputs(model, batch)


class Task:
    name: ClassVar[str]
    losses: ClassVar[tuple[str, ...]]
    default_loss: ClassVar[str]
    metrics: ClassVar[dict[str, type[Metric]]]  # name → accumulator class (which declares its direction)
    default_metric: ClassVar[str] = "loss"  # eval.metric when the recipe names none
    default_options: ClassVar[dict[str, Any]] = {}  # task.options a recipe may set, with their defaults
    has_custom_step: ClassVar[bool] = False
    supports_mixup: ClassVar[bool] = False  # scores a mixup batch (y a pair of targets, batch.mixing = λ)

    def __init__(self, spec: TaskSpec, info: DatasetInfo, seed: int = 0):
        if self.name not in info.tasks:
            raise ConfigError(
                f"task.name: dataset '{info.name}' serves {', '.join(info.tasks)}, not {self.name}; "
                f"set task.name={info.task}"
            )
        loss = spec.loss or self.default_loss
        if loss not in self.losses:
            raise ConfigError(
                f"task.loss: '{loss}' is not a {self.name} loss{did_you_mean(loss, self.losses)}; "
                f"valid: {', '.join(self.losses)}"
            )
        if spec.label_smoothing and loss != "cross_entropy":
            raise ConfigError(f"task.label_smoothing: applies to the cross_entropy loss only, not '{loss}'")
        self.spec, self.info, self.loss_name = spec, info, loss
        self.seed = seed  # the run's seed: randomness inside a task (scheduled sampling) derives from it
        self.step, self.total_steps = 0, None
        self.options = check_options(spec.options, self.default_options, "task.options", f"task '{self.name}'")

    def set_progress(self, step: int, total_steps: int | None) -> None:
        """Called by the trainer before every optimisation step (schedules inside a task read it)."""
        self.step, self.total_steps = step, total_steps

    # -- model -----------------------------------------------------------------------------
    def data_hints(self) -> dict[str, Any]:
        hints = {"in_shape": tuple(self.info.input_shape), "num_classes": self.info.out_features}
        for key in ("vocab_size", "src_vocab_size"):  # token sets size the embeddings
            if getattr(self.info, key, 0):
                hints[key] = getattr(self.info, key)
        return hints

    def build_model(self, spec: ModelSpec) -> nn.Module:
        overrides = spec.overrides()
        fields = model_config_fields(spec.name)
        for key, value in self.data_hints().items():
            if key in fields and key not in overrides:
                overrides[key] = value
        return create_model(spec.name, **overrides)

    def param_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"main": [p for p in model.parameters() if p.requires_grad]}

    # -- training --------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def custom_step(self, model: nn.Module, batch: Batch, optimizers: dict, ctx: Any) -> dict[str, float]:
        raise NotImplementedError

    # -- evaluation ------------------------------------------------------------------------
    def new_metrics(self) -> MetricSet:
        """Fresh accumulators for one evaluation (``evaluate`` updates them batch by batch)."""
        return MetricSet({k: cls() for k, cls in self.metrics.items()})

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        raise NotImplementedError


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    TASKS.add(cls.name, cls)
    for name, metric in cls.metrics.items():
        declare_direction(name, metric.higher_is_better)
    return cls


def build_task(spec: TaskSpec, info: DatasetInfo, seed: int = 0) -> Task:
    try:
        cls = TASKS.get(spec.name)
    except UnknownNameError as e:
        raise ConfigError(f"task.name: {e}") from None
    return cls(spec, info, seed=seed)
