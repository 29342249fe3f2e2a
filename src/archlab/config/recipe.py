"""The recipe schema.

A recipe says everything a run needs: model, data, task, optimiser, schedule, budget, seed,
precision, compile flag, eval/checkpoint intervals. It is a YAML file read with
``yaml.safe_load`` and validated here; unknown keys and wrong types fail with the key path
(``optim.lrr: unknown key (did you mean: lr?)``). ``model`` takes the model's own config
fields beside ``name``; they are checked against that model's config when the model is built.
"""

from __future__ import annotations

import copy
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from archlab.utils.errors import ConfigError, did_you_mean


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(BaseModel):
    """``name`` plus any fields of the model's config dataclass (checked when the model is built)."""

    model_config = ConfigDict(extra="allow")
    name: str

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataSpec(_Strict):
    name: str
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(1000, ge=1)
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # held out of train for early stopping / best
    train_subset: int | None = Field(None, ge=1)  # first N (seeded shuffle) training examples
    test_subset: int | None = Field(None, ge=1)  # the first N test examples only (smoke runs; the summary says so)
    data_dir: str | None = None
    augment: list[str] = Field(default_factory=list)  # e.g. ["crop:4", "hflip"], ["shift:3"], ["noise:0.1"]
    options: dict[str, Any] = Field(default_factory=dict)  # a parametric set's options, e.g. {length: 100}

    @field_validator("augment")
    @classmethod
    def _augment_syntax(cls, items: list[str]) -> list[str]:
        for item in items:
            name, _, arg = item.partition(":")
            if not name.isidentifier():
                raise ValueError(f"'{item}' is not NAME or NAME:NUMBER")
            if arg:
                try:
                    number = float(arg)
                except ValueError:
                    raise ValueError(f"'{item}': '{arg}' is not a number") from None
                if number < 0:
                    raise ValueError(f"'{item}': the argument must be ≥ 0")
        return items


class TaskSpec(_Strict):
    name: str = "classification"  # a registered task (checked when the task is built)
    loss: str | None = None  # the task's default when None
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    options: dict[str, Any] = Field(default_factory=dict)  # the task's own settings, e.g. seq2seq {beam_size: 5}


def _betas_in_range(betas: tuple[float, float] | None) -> tuple[float, float] | None:
    if betas is not None and not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"each beta must be in [0, 1), got {list(betas)}")
    return betas


class ScheduleSpec(_Strict):
    name: Literal["constant", "step", "cosine", "linear", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)  # linear warm-up from 0 to lr
    step_size: int = Field(1000, ge=1)  # `step`: multiply by gamma every step_size steps
    gamma: float = Field(0.1, gt=0, allow_inf_nan=False)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)  # `cosine`/`linear` end at lr * min_lr_ratio
    # `plateau` (Keras' ReduceLROnPlateau on the training loss, as Fawaz et al. 2019 use it): after
    # `patience` intervals whose mean training loss is not below the best by more than `threshold`,
    # lr ← max(lr · factor, min_lr); an interval is `interval` optimiser steps (None: one epoch)
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(50, ge=1)
    threshold: float = Field(1e-4, ge=0, allow_inf_nan=False)
    min_lr: float = Field(0.0, ge=0, allow_inf_nan=False)
    interval: int | None = Field(None, ge=1)


class OptimGroupSpec(_Strict):
    """``optim.groups.<name>``: settings of one of the task's parameter groups (a GAN's
    ``generator``/``discriminator``, a ``no_decay`` group); every field left out is the top-level
    ``optim`` value (``schedule``: the top-level ``schedule``)."""

    name: str | None = None
    lr: float | None = Field(None, gt=0, allow_inf_nan=False)
    weight_decay: float | None = Field(None, ge=0, allow_inf_nan=False)
    momentum: float | None = Field(None, ge=0, lt=1)
    nesterov: bool | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = Field(None, gt=0, allow_inf_nan=False)
    alpha: float | None = Field(None, gt=0, lt=1)
    grad_clip_norm: float | None = Field(None, gt=0, allow_inf_nan=False)
    grad_clip_value: float | None = Field(None, gt=0, allow_inf_nan=False)
    schedule: ScheduleSpec | None = None

    @field_validator("betas")
    @classmethod
    def _betas_range(cls, betas: tuple[float, float] | None) -> tuple[float, float] | None:
        return _betas_in_range(betas)


class OptimSpec(_Strict):
    name: str = "adamw"  # a registered optimiser: sgd, adam, adamw, rmsprop (engine.optim.OPTIMIZERS)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    momentum: float | None = Field(None, ge=0, lt=1)  # SGD (default 0.9), RMSprop (default 0)
    nesterov: bool = False  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False)
    alpha: float = Field(0.99, gt=0, lt=1)  # RMSprop's smoothing constant
    grad_clip_norm: float | None = Field(None, gt=0, allow_inf_nan=False)
    grad_clip_value: float | None = Field(None, gt=0, allow_inf_nan=False)
    accum_steps: int = Field(1, ge=1)  # micro-batches per optimiser step
    groups: dict[str, OptimGroupSpec] = Field(default_factory=dict)  # per parameter group of the task

    @field_validator("betas")
    @classmethod
    def _betas_range(cls, betas: tuple[float, float] | None) -> tuple[float, float] | None:
        return _betas_in_range(betas)


class BudgetSpec(_Strict):
    """Training stops at whichever limit comes first."""

    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    seconds: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetSpec:
        if self.steps is None and self.epochs is None and self.seconds is None:
            raise ValueError("set at least one of steps, epochs, seconds")
        return self


class EarlyStopSpec(_Strict):
    patience: int | None = Field(None, ge=1)  # evals without improvement; None = off
    min_delta: float = Field(0.0, ge=0)


class EvalSpec(_Strict):
    every: int = Field(500, ge=1)  # optimiser steps between evaluations
    metric: str | None = None  # watched on val for the best checkpoint / early stopping; None: the task's default
    mode: Literal["max", "min"] | None = None  # None: min for loss/mse/mae/rmse, max otherwise
    early_stopping: EarlyStopSpec = Field(default_factory=EarlyStopSpec)
    restore_best: bool = False  # load the best checkpoint before the final test evaluation
    # what "best" means: `val` — eval.metric on the validation split at each evaluation; `train_loss` —
    # the lowest mean training loss over an interval (schedule.interval steps, else one epoch), Fawaz
    # et al.'s model selection (no validation split needed)
    select: Literal["val", "train_loss"] = "val"


class CheckpointSpec(_Strict):
    every: int | None = Field(1000, ge=1)  # optimiser steps; None = only at the end
    keep_last: int = Field(2, ge=1)
    best: bool = True


class LogSpec(_Strict):
    every: int = Field(50, ge=1)
    tensorboard: bool = True
    progress: bool = True


class Recipe(_Strict):
    name: str = "run"
    description: str = ""
    model: ModelSpec
    data: DataSpec
    task: TaskSpec = Field(default_factory=TaskSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    budget: BudgetSpec
    eval: EvalSpec = Field(default_factory=EvalSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    log: LogSpec = Field(default_factory=LogSpec)
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    channels_last: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps


def _fields_at(loc: tuple, model: type[BaseModel] = Recipe) -> list[str]:
    """Valid keys at the location of an error, for did-you-mean."""
    cur: Any = model
    for part in loc[:-1]:
        if typing.get_origin(cur) is dict:  # a free key (optim.groups.<name>): step into the value type
            cur = typing.get_args(cur)[1]
            continue
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            return []
        cur = cur.model_fields[part].annotation
        models = [a for a in typing.get_args(cur) if isinstance(a, type) and issubclass(a, BaseModel)]
        if models and typing.get_origin(cur) is not dict:  # Optional[Spec]
            cur = models[0]
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return list(cur.model_fields)
    return []


def _format_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    path = ".".join(loc) or "<recipe>"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key{did_you_mean(loc[-1], _fields_at(loc))}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    got = err.get("input")
    got_s = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}{got_s}"


def validate_recipe(raw: dict[str, Any]) -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"<recipe>: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "model.width=128"]`` → ``{"optim.lr": 3e-4, ...}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected key=value, e.g. optim.lr=3e-4")
        try:
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a raw recipe dict (validation happens afterwards, with key paths).

    A budget override replaces the recipe's whole budget: ``budget.epochs=200`` means 200 epochs,
    not "200 epochs or the recipe's 6000 steps, whichever comes first".
    """
    raw = copy.deepcopy(raw)
    if any(k == "budget" or k.startswith("budget.") for k in overrides):
        raw["budget"] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        cur = raw
        for i, part in enumerate(parts[:-1]):
            nxt = cur.get(part)
            if nxt is None:
                nxt = cur[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, cannot set '{dotted}'")
            cur = nxt
        cur[parts[-1]] = value
    return raw


def load_recipe(source: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a recipe from a YAML path, a shipped recipe name, or a dict, then apply overrides."""
    if isinstance(source, dict):
        raw = source
    else:
        path = _resolve_recipe_path(source)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read recipe ({e.strerror})") from None
        if raw is None:
            raise ConfigError(f"{path}: the recipe file is empty")
    return validate_recipe(apply_overrides(raw, overrides or {}))


def shipped_recipes() -> dict[str, Path]:
    """Recipes inside the package: ``{"mnist1d/cnn": path, ...}``."""
    root = Path(__file__).resolve().parent.parent / "recipes"
    return {str(p.relative_to(root).with_suffix("")): p for p in sorted(root.rglob("*.yaml"))}


def _resolve_recipe_path(source: str | Path) -> Path:
    path = Path(source)
    if path.exists():
        return path
    shipped = shipped_recipes()
    name = str(source).removesuffix(".yaml")
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"recipe '{source}' is neither a file nor a shipped recipe{did_you_mean(name, shipped)}; "
        "`archlab recipes` lists the shipped ones"
    )


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return recipe.model_dump(mode="json")


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def recipe_hash(recipe: Recipe) -> str:
    blob = json.dumps(recipe_to_dict(recipe), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
