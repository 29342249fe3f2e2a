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

import functools
import inspect
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from archlab.config import ModelSpec, TaskSpec
from archlab.data import DatasetInfo
from archlab.registry import Registry, create_model, model_config_fields
from archlab.utils.errors import ConfigError, UnknownNameError, did_you_mean
from archlab.utils.options import check_options

Batch = tuple[torch.Tensor, ...]  # (x, y) or, for variable-length sequences, (x, y, lengths)

# metrics where smaller is better; every other metric (accuracy, r2, bleu …) is maximised.
# The trainer (best checkpoint, early stopping) and the report (the best row) both read this.
LOWER_IS_BETTER = frozenset(
    {"loss", "mse", "mae", "rmse", "mase", "naive_mae", "naive_rmse", "naive_mase", "perplexity", "bpc"}
    | {"wer", "per", "cer", "fid"}
)


def higher_is_better(metric: str) -> bool:
    return metric.split("/")[-1] not in LOWER_IS_BETTER


@functools.cache
def _takes_lengths(cls: type) -> bool:
    return "lengths" in inspect.signature(cls.forward).parameters


def split_batch(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(x, y, kwargs)``: ``kwargs`` holds ``lengths`` when the batch has them and the model's
    ``forward`` takes them (a recurrent model); other models see the zero-padded ``x`` only."""
    x, y, *rest = batch
    base = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    if rest and _takes_lengths(type(base)):
        return x, y, {"lengths": rest[0]}
    return x, y, {}


class Task:
    name: ClassVar[str]
    losses: ClassVar[tuple[str, ...]]
    default_loss: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    default_metric: ClassVar[str] = "loss"  # eval.metric when the recipe names none
    default_options: ClassVar[dict[str, Any]] = {}  # task.options a recipe may set, with their defaults
    has_custom_step: ClassVar[bool] = False

    def __init__(self, spec: TaskSpec, info: DatasetInfo, seed: int = 0):
        if info.task != self.name:
            raise ConfigError(
                f"task.name: dataset '{info.name}' is a {info.task} data set, not {self.name}; "
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
    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        raise NotImplementedError


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    TASKS.add(cls.name, cls)
    return cls


def build_task(spec: TaskSpec, info: DatasetInfo, seed: int = 0) -> Task:
    try:
        cls = TASKS.get(spec.name)
    except UnknownNameError as e:
        raise ConfigError(f"task.name: {e}") from None
    return cls(spec, info, seed=seed)
