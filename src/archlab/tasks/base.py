"""The task protocol the trainer drives. The trainer never special-cases a family: everything
family- or objective-specific lives here (Lightning's module/loop split: the task says *what* a
step computes, the trainer owns precision, clipping, the NaN guard, checkpoints and logs).

* ``build_model(spec)`` creates the model, filling ``in_shape``/``num_classes`` from the data
  when the model's config has such fields and the recipe did not set them (a recipe value that
  contradicts the data is a one-line error).
* ``param_groups(model)`` names the parameter sets that get their own optimiser (one, ``main``,
  for ordinary tasks; a GAN returns ``generator`` and ``discriminator``); the recipe's
  ``optim.groups.<name>`` gives a group its own optimiser, learning rate and schedule.
* ``training_loss(model, batch)`` returns the scalar to back-propagate and metrics to log;
  ``loss_count(batch)`` says how many items that loss is a mean over, so gradient accumulation
  (and data-parallel ranks) weight micro-batches by items, not equally.
* ``custom_step(model, ctx)`` (optional): a task that needs more than one backward/step per batch
  (GANs) sets ``has_custom_step = True`` and drives the step through a :class:`StepContext`.
* ``probe(model, ctx)``: the start-up check, one real training step without the optimiser update.
* hooks: ``after_optimizer_step(group, model, ctx)`` (EMA weights, momentum targets, pruning masks)
  and ``on_evaluate(model, split, metrics)``; ``state_dict()``/``load_state_dict()`` carry a task's
  own state through checkpoints.
* ``evaluate(model, batches)`` returns metrics over a whole split.
* ``save_artifacts(run_dir)`` / ``load_artifacts(run_dir)``: files a run needs besides its weights
  (a text task's tokenizer, ``tokenizer.json``), written when the run starts, read by eval/sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from archlab.config import ModelSpec, TaskSpec
from archlab.data import Batch, DatasetInfo, model_inputs
from archlab.data.tokenizers import TOKENIZER_FILE, Tokenizer, load_tokenizer, save_tokenizer
from archlab.registry import Registry, create_model, get_model_entry, model_config_fields
from archlab.tasks.metrics import Metric, MetricSet, declare_direction, higher_is_better  # noqa: F401
from archlab.utils.errors import ConfigError, UnknownNameError, did_you_mean
from archlab.utils.options import check_options

GENERATIVE_FAMILIES = ("gan", "diffusion")  # models trained only by their own tasks (a GAN is no classifier)


def split_batch(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(x, y, kwargs)``: ``kwargs`` holds the batch fields the model's ``forward`` declares by
    name (``lengths`` for a recurrent model, ``attention_mask`` for a Transformer …); a model that
    declares none sees ``x`` alone (zero-padded), so no family must know about lengths."""
    return batch.x, batch.y, model_inputs(model, batch)


class StepContext(Protocol):
    """What a training step may use, handed by the trainer to :meth:`Task.custom_step`,
    :meth:`Task.probe` and :meth:`Task.after_optimizer_step` (the engine implements it).

    Attributes: ``step`` (0-based optimiser step being taken), ``total_steps`` (``None`` for a
    time budget), ``seed`` (the run's seed: derive per-step generators from it with
    ``utils.seed.derive_seed(ctx.seed, ctx.step)``), ``device``, ``optimizers`` (group name →
    optimiser), ``dry_run`` (``True`` during the start-up probe: ``clip_and_step`` then checks but
    does not update).

    A task that owns its step (a GAN, ~10 lines)::

        @register_task
        class GANTask(Task):
            has_custom_step = True

            def param_groups(self, model):
                return {"generator": list(model.generator.parameters()),
                        "discriminator": list(model.discriminator.parameters())}

            def custom_step(self, model, ctx):
                x = ctx.next_batch().x                        # real examples (B, ...)
                z = torch.randn(len(x), self.latent, device=ctx.device)
                ctx.zero_grad("discriminator")
                with ctx.autocast():
                    fake = model.generator(z)
                    d_loss = bce(model.discriminator(x), 1) + bce(model.discriminator(fake.detach()), 0)
                ctx.backward(d_loss)
                ctx.clip_and_step("discriminator")          # clip per recipe, NaN guard, step, hooks
                ctx.zero_grad("generator")
                with ctx.autocast():
                    g_loss = bce(model.discriminator(fake), 1)
                ctx.backward(g_loss)
                ctx.clip_and_step("generator")
                return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}
    """

    step: int
    total_steps: int | None
    seed: int
    device: torch.device
    optimizers: dict[str, torch.optim.Optimizer]
    dry_run: bool

    def next_batch(self) -> Batch:
        """The next training batch, on the run's device (advances the data position)."""
        ...

    def autocast(self) -> AbstractContextManager:
        """The run's precision (bf16 autocast or nothing) for forward passes."""
        ...

    def backward(self, loss: torch.Tensor, weight: float | torch.Tensor = 1.0) -> None:
        """``(loss · weight).backward()``; the loss joins the finiteness check of the next
        ``clip_and_step`` (one host sync for the losses and the gradient norm together)."""
        ...

    def zero_grad(self, group: str | None = None) -> None:
        """Clear the gradients of one group's optimiser (every optimiser when ``group`` is None)."""
        ...

    def clip_and_step(self, group: str) -> torch.Tensor:
        """Gradient norm of ``group`` (before clipping) → finiteness check of it and of the losses
        passed to ``backward`` since the last step (non-finite: the run stops, :class:`NonFiniteError`,
        before this optimiser steps) → clip by the group's recipe settings → the optimiser steps →
        :meth:`Task.after_optimizer_step`. Returns the norm (a 0-dim tensor, not synced)."""
        ...

    def check_finite(self, what: str, value: torch.Tensor) -> None:
        """Stop the run (exit 3, ``nonfinite.json``) if ``value`` holds NaN or ±inf."""
        ...


class Task:
    name: ClassVar[str]
    losses: ClassVar[tuple[str, ...]]
    default_loss: ClassVar[str]
    metrics: ClassVar[dict[str, type[Metric]]]  # name → accumulator class (which declares its direction)
    default_metric: ClassVar[str] = "loss"  # eval.metric when the recipe names none
    default_options: ClassVar[dict[str, Any]] = {}  # task.options a recipe may set, with their defaults
    has_custom_step: ClassVar[bool] = False
    supports_mixup: ClassVar[bool] = False  # scores a mixup batch (y a pair of targets, batch.mixing = λ)
    tokenizer: Tokenizer | None = None  # text tasks: saved in the run dir (save_artifacts), reloaded to sample
    # tensor-name prefixes (each ending in ".") of weights that checkpoints written by an older version of
    # this task hold and that the model it builds today no longer has: loading such a run drops exactly
    # those, with a one-line notice; any other unexpected or missing tensor still fails the load
    retired_weights: ClassVar[tuple[str, ...]] = ()

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
        entry = get_model_entry(spec.name)
        if entry.family == "gnn" and self.info.kind != "graph":
            raise ConfigError(
                f"model.name: '{spec.name}' is a graph neural network (it passes messages along edges) but data set "
                f"'{self.info.name}' ({self.info.kind} data) has no graph; train it on a graph set (archlab data list: "
                "kind graph), or pick a model for the data"
            )
        if entry.family in GENERATIVE_FAMILIES and self.name not in entry.tasks:
            raise ConfigError(
                f"model.name: '{spec.name}' is a generative model (family {entry.family}) trained by task "
                f"{', '.join(entry.tasks)}, not {self.name}; set task.name={entry.tasks[0]} or pick a model for "
                f"the {self.name} task"
            )
        for key, value in self.data_hints().items():
            if key in fields and key not in overrides:
                overrides[key] = value
            elif key in fields:
                self._check_hint(key, overrides[key], value)
        return create_model(spec.name, **overrides)

    def _check_hint(self, key: str, given: Any, data: Any) -> None:
        """A recipe value for an output width must fit the data: ``num_classes`` equal to the
        data's outputs (fewer would index out of range mid-run, more would train dead logits),
        a vocabulary at least as large as the data's token ids."""
        name = self.info.name
        if key == "num_classes" and given != data:
            raise ConfigError(
                f"model.num_classes: {given} does not match data set '{name}' ({data} outputs); "
                f"drop the override or set model.num_classes={data}"
            )
        if key in ("vocab_size", "src_vocab_size") and isinstance(given, int) and given < data:
            raise ConfigError(
                f"model.{key}: {given} is smaller than data set '{name}''s {data} token ids; "
                f"drop the override or set model.{key}={data}"
            )

    def param_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """Group name → parameters; each group gets its own optimiser (``optim.groups.<name>``)."""
        return {"main": [p for p in model.parameters() if p.requires_grad]}

    # -- training --------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logs)``: the scalar to back-propagate — a mean over ``loss_count(batch)``
        items — and values to log (0-dim tensors or floats; kept as tensors until written)."""
        raise NotImplementedError

    def loss_count(self, batch: Batch) -> int | torch.Tensor:
        """How many items ``training_loss(batch)`` is a mean over (default: the examples).

        With ``accum_steps`` micro-batches the trainer back-propagates
        ``loss_i · count_i / Σ_j count_j``, which is exactly the gradient of the mean over the whole
        batch; a task whose loss is a mean over tokens (seq2seq, a padded LM) returns its token
        count. (The sum runs over every rank's micro-batches under data-parallel training.)
        """
        return len(batch)

    def custom_step(self, model: nn.Module, ctx: StepContext) -> dict[str, Any]:
        """The whole optimisation step of a task with ``has_custom_step = True`` (see
        :class:`StepContext` for an example); returns the values to log."""
        raise NotImplementedError

    def probe(self, model: nn.Module, ctx: StepContext) -> None:
        """The start-up check, run in train mode on a batch of the recipe's batch size (capped)
        before a run directory exists: what a real step does, without the optimiser update (the
        trainer restores every RNG state, buffer and gradient afterwards, and the task's state).

        Default: a task that owns its step runs ``custom_step`` with ``ctx.dry_run`` set; any other
        runs one training loss and its backward. Override to check more (raise
        :class:`~archlab.utils.errors.ConfigError` with a one-line message)."""
        if self.has_custom_step:
            self.custom_step(model, ctx)
            return
        batch = ctx.next_batch()
        with ctx.autocast():
            loss, _ = self.training_loss(model, batch)
        ctx.backward(loss)

    # -- hooks -----------------------------------------------------------------------------
    def after_optimizer_step(self, group: str, model: nn.Module, ctx: StepContext) -> None:
        """Called after optimiser ``group`` has stepped (not during the probe): update EMA
        weights, a momentum target (BYOL), re-apply pruning masks. Default: nothing."""

    def on_evaluate(self, model: nn.Module, split: str, metrics: dict[str, float]) -> dict[str, float]:
        """Called after each split's evaluation with its metrics; returns extra metrics to log
        beside them (e.g. the EMA weights' accuracy). Default: none."""
        return {}

    def save_artifacts(self, run_dir: Path) -> None:
        """Write what a run needs besides its weights to be evaluated or sampled later: the
        tokenizer (``tokenizer.json``) when the task has one. Called once, when a run starts."""
        if self.tokenizer is not None:
            save_tokenizer(self.tokenizer, Path(run_dir) / TOKENIZER_FILE)

    def load_artifacts(self, run_dir: Path) -> None:
        """Read back what :meth:`save_artifacts` wrote (``archlab eval`` / ``sample`` of a run): the
        run's own tokenizer replaces the one rebuilt from the data. Raises DataError for a bad file."""
        path = Path(run_dir) / TOKENIZER_FILE
        if path.exists():
            self.tokenizer = load_tokenizer(path)

    def state_dict(self) -> dict[str, Any]:
        """The task's own training state (an EMA of the weights, a counter …) for checkpoints:
        nested dicts with string keys whose leaves are tensors (saved in ``task.safetensors``) or
        JSON values (saved in ``state.json``). Default: nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (tensors are on the CPU)."""
        if state:
            raise NotImplementedError(f"task '{self.name}' saved state but does not define load_state_dict")

    # -- evaluation ------------------------------------------------------------------------
    def new_metrics(self) -> MetricSet:
        """Fresh accumulators for one evaluation (``evaluate`` updates them batch by batch)."""
        return MetricSet({k: cls() for k, cls in self.metrics.items()})

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        """Feed every batch of a split into fresh accumulators (:meth:`new_metrics`) and return
        them: sums a data-parallel evaluation adds over ranks before computing the values."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        """Metrics over a whole split, ``{name: value}``: ``accumulate(...).compute()``. A task may
        override this instead of ``accumulate``; data-parallel runs then evaluate it on rank 0."""
        return self.accumulate(model, batches).compute()

    @property
    def accumulates(self) -> bool:
        """Whether this task's evaluation is built from accumulators (``accumulate``)."""
        return type(self).accumulate is not Task.accumulate


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
