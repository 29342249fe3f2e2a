"""The recipe schema.

A recipe says everything a run needs: model, data, task, optimiser, schedule, budget, seed,
precision, compile flag, eval/checkpoint intervals. It is a YAML file read with a bounded
``yaml.SafeLoader`` and validated here; unknown keys and wrong types fail with the key path
(``optim.lrr: unknown key (did you mean: lr?)``). ``model`` takes the model's own config
fields beside ``name``; they are checked against that model's config when the model is built.

Every number is range-checked here, before anything runs: floats must be finite (``optim.lr=.inf``
is refused, not trained into NaN weights), integers fit in int64 (what torch and ``derive_seed``
accept), and each field has its own bounds (``optim.betas`` in [0, 1), ``seed`` in [0, 2⁶³ − 1]).
A recipe file is read with bounds too: at most ``MAX_RECIPE_BYTES``, and at most
``MAX_YAML_NODES`` values after YAML alias expansion (a 1 KB "billion laughs" file is refused at once).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from archlab.utils.errors import ConfigError, did_you_mean, preview

INT64_MAX = 2**63 - 1  # torch.manual_seed, tensor sizes and step counters are int64
MAX_RECIPE_BYTES = 1 << 20  # a real recipe is about 1 KB; a 50 MB file took a minute and 750 MB to refuse
MAX_YAML_NODES = 100_000  # values after alias expansion; a real recipe has a few hundred
MAX_YAML_DEPTH = 64  # levels of nesting; a real recipe has 4
MAX_OVERRIDE_CHARS = 1 << 16  # one key=value override (a command line allows 128 KiB per argument)


def _bad_number(value: Any, path: str = "", budget: list[int] | None = None) -> str | None:
    """The first non-finite float or out-of-int64 integer inside ``value`` (dicts and lists walked,
    at most ``MAX_YAML_NODES`` items) as ``PATH: reason (got X)``, or None when every number is fine."""
    budget = [MAX_YAML_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        return f"{path or '<value>'}: more than {MAX_YAML_NODES:,} values; settings are not data"
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: must be a finite number (got {value})"
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return f"{path}: must fit in 64 bits, |x| ≤ 2**63 − 1 (got {preview(value)})"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        bad = _bad_number(item, f"{path}.{preview(key, 40)}", budget)
        if bad:
            return bad
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def __setattr__(self, name: str, value: Any) -> None:  # ``recipe.optim.lr = x`` fails in one line too
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise ConfigError(_format_error(e)) from None

    @field_validator("*")
    @classmethod
    def _numbers_in_range(cls, value: Any) -> Any:
        bad = _bad_number(value)
        if bad:  # a leading "." continues the field's key path (see _format_error)
            raise ValueError(bad)
        return value


class ModelSpec(BaseModel):
    """``name`` plus any fields of the model's config dataclass (checked when the model is built;
    numbers must be finite and fit in int64 already here)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str
    # a finished run whose weights start this model (fine-tuning): every tensor whose name and shape
    # match is copied in (a pre-trained BERT's encoder into a classifier), the rest keep their init
    init_from: str | None = None

    @model_validator(mode="after")
    def _numbers_in_range(self) -> ModelSpec:
        bad = _bad_number(self.model_extra or {})
        if bad:
            raise ValueError(bad)
        return self

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataSpec(_Strict):
    name: str
    # a whole number, or `auto`: the training-set-size rule of Fawaz et al. 2019 (dl-4-tsc), see
    # :meth:`batch_size_for`; `max_batch_size` is its cap (their FCN 16, ResNet 64; None: no cap)
    batch_size: int | Literal["auto"] = 64
    max_batch_size: int | None = Field(None, ge=1)
    eval_batch_size: int = Field(1000, ge=1)
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # held out of train for early stopping / best
    train_subset: int | None = Field(None, ge=1)  # first N (seeded shuffle) training examples
    test_subset: int | None = Field(None, ge=1)  # the first N test examples only (smoke runs; the summary says so)
    data_dir: str | None = None
    augment: list[str] = Field(default_factory=list)  # e.g. ["crop:4", "hflip"], ["shift:3"], ["noise:0.1"]
    options: dict[str, Any] = Field(default_factory=dict)  # a parametric set's options, e.g. {length: 100}

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size_or_auto(cls, value: Any) -> Any:
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be an integer ≥ 1 or 'auto'")
        return value

    @model_validator(mode="after")
    def _cap_only_with_auto(self) -> DataSpec:
        if self.max_batch_size is not None and self.batch_size != "auto":
            raise ValueError(
                f".max_batch_size: caps batch_size: auto only; with batch_size {self.batch_size} remove it "
                "(or set batch_size: auto)"
            )
        return self

    def batch_size_for(self, n_train: int) -> int:
        """The training batch size for ``n_train`` training examples (after ``val_fraction`` and
        ``train_subset``). A whole ``batch_size`` is returned as it is; ``auto`` is Fawaz et al.'s
        (2019, dl-4-tsc ``classifiers/fcn.py``) ``int(min(n_train / 10, max_batch_size))``, raised
        to 2 — batch normalisation needs two examples, where Keras would train on single series
        below 20 — and never above ``n_train``. ArrowHead (36 series), cap 16: 3; JapaneseVowels
        (270), cap 16: 16, cap 64: 27."""
        if self.batch_size != "auto":
            return self.batch_size
        cap = n_train / 10 if self.max_batch_size is None else min(n_train / 10, self.max_batch_size)
        return max(1, min(n_train, max(2, int(cap))))

    @field_validator("augment")
    @classmethod
    def _augment_syntax(cls, items: list[str]) -> list[str]:
        for item in items:
            name, _, arg = item.partition(":")
            if not name.isidentifier():
                raise ValueError(f"'{preview(item)}' is not NAME or NAME:NUMBER")
            if arg:
                try:
                    number = float(arg)
                except ValueError:
                    raise ValueError(f"'{preview(item)}': '{preview(arg)}' is not a number") from None
                if not number >= 0 or not math.isfinite(number):  # nan fails ≥ too
                    raise ValueError(f"'{preview(item)}': the argument must be a finite number ≥ 0")
        return items


class TaskSpec(_Strict):
    name: str = "classification"  # a registered task (checked when the task is built)
    loss: str | None = None  # the task's default when None
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    options: dict[str, Any] = Field(default_factory=dict)  # the task's own settings, e.g. seq2seq {beam_size: 5}


Beta = Annotated[float, Field(ge=0.0, lt=1.0)]  # an Adam moment decay rate


class ScheduleSpec(_Strict):
    name: Literal["constant", "step", "cosine", "linear", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)  # linear warm-up from 0 to lr
    step_size: int = Field(1000, ge=1)  # `step`: multiply by gamma every step_size steps
    gamma: float = Field(0.1, gt=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)  # `cosine`/`linear` end at lr * min_lr_ratio
    # `plateau` (Keras' ReduceLROnPlateau on the training loss, as Fawaz et al. 2019 use it): after
    # `patience` intervals whose mean training loss is not below the best by more than `threshold`,
    # lr ← max(lr · factor, min_lr); an interval is `interval` optimiser steps (None: one epoch)
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(50, ge=1)
    threshold: float = Field(1e-4, ge=0)
    min_lr: float = Field(0.0, ge=0)
    interval: int | None = Field(None, ge=1)


class OptimGroupSpec(_Strict):
    """``optim.groups.<name>``: settings of one of the task's parameter groups (a GAN's
    ``generator``/``discriminator``, a ``no_decay`` group); every field left out is the top-level
    ``optim`` value (``schedule``: the top-level ``schedule``)."""

    name: str | None = None
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    momentum: float | None = Field(None, ge=0, lt=1)
    nesterov: bool | None = None
    betas: tuple[Beta, Beta] | None = None
    eps: float | None = Field(None, gt=0)
    alpha: float | None = Field(None, gt=0, lt=1)
    grad_clip_norm: float | None = Field(None, gt=0)
    grad_clip_value: float | None = Field(None, gt=0)
    schedule: ScheduleSpec | None = None


class OptimSpec(_Strict):
    name: str = "adamw"  # a registered optimiser: sgd, adam, adamw, rmsprop (engine.optim.OPTIMIZERS)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float | None = Field(None, ge=0, lt=1)  # SGD (default 0.9), RMSprop (default 0)
    nesterov: bool = False  # SGD only
    betas: tuple[Beta, Beta] = (0.9, 0.999)  # Adam/AdamW, each in [0, 1)
    eps: float = Field(1e-8, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1)  # RMSprop's smoothing constant
    grad_clip_norm: float | None = Field(None, gt=0)
    grad_clip_value: float | None = Field(None, gt=0)
    accum_steps: int = Field(1, ge=1)  # micro-batches per optimiser step
    groups: dict[str, OptimGroupSpec] = Field(default_factory=dict)  # per parameter group of the task


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
    seed: int = Field(0, ge=0, le=INT64_MAX)
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    channels_last: bool = False
    device: str = Field("auto", max_length=32)  # auto | cpu | cuda | cuda:N | mps

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, data: Any, handler: Any) -> Recipe:
        """A recipe built anywhere (``Recipe(...)``, ``model_validate``, ``recipe.seed = …``) fails with
        the same one-line :class:`ConfigError` as ``validate_recipe``, not pydantic's multi-line report."""
        try:
            return handler(data)
        except ValidationError as e:
            raise ConfigError(_format_error(e)) from None


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
    """The first error as one line, ``key.path: what is wrong (got <bounded preview>)``."""
    err = e.errors(include_url=False, include_context=False)[0]
    loc = tuple(str(p) for p in err["loc"])
    path = ".".join(preview(p, 40) for p in loc) or "<recipe>"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key{did_you_mean(loc[-1], _fields_at(loc))}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith((".", ":")):  # _bad_number: the message continues the key path and shows the value
        return f"{path}{msg}"
    got = err.get("input")
    if isinstance(got, dict):
        return f"{path}: {msg}"
    shown = repr(preview(got)) if isinstance(got, str) else preview(got)
    return f"{path}: {msg} (got {shown})"


def validate_recipe(raw: dict[str, Any]) -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"<recipe>: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document whose aliases expand to more than ``MAX_YAML_NODES``
    values (nine anchors of nine aliases each are 9⁹ ≈ 387 million values from 1 KB). It counts the
    expanded size on the composed node graph, sharing counts between aliases of one anchor, so the
    check takes time proportional to the file, not to its expansion. It also refuses nesting deeper
    than ``MAX_YAML_DEPTH`` (20,000 ``[`` took seconds to end in a RecursionError)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels; a recipe has a few")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A key written twice in one mapping is an error (PyYAML keeps the last one silently)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"line {line}: duplicate key '{preview(key)}'; write each key once")
            if isinstance(key, str | int | float | bool):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n: yaml.Node) -> int:
            if id(n) not in sizes:
                if isinstance(n, yaml.SequenceNode):
                    children = n.value
                elif isinstance(n, yaml.MappingNode):
                    children = [c for pair in n.value for c in pair]
                else:
                    children = []
                sizes[id(n)] = min(1 + sum(size(c) for c in children), MAX_YAML_NODES + 1)
            return sizes[id(n)]

        if node is not None and size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"expands to more than {MAX_YAML_NODES:,} values through YAML aliases (*name); "
                "write the values out or remove the aliases"
            )
        return node


def _load_yaml(text: str, where: str) -> Any:
    """``text`` parsed as one YAML document with the safe loader and the bounds above; every failure
    is a :class:`ConfigError` starting with ``where``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({preview(str(e).splitlines()[0], 200)})") from None
    except RecursionError:  # a bound above not reached first: still one line
        raise ConfigError(f"{where}: nested too deeply") from None
    except ValueError as e:  # int("9" * 5000): Python refuses integers of more than 4300 digits
        raise ConfigError(f"{where}: a value cannot be read ({preview(str(e).split(';')[0], 200)})") from None
    finally:
        loader.dispose()


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "model.width=128"]`` → ``{"optim.lr": 3e-4, ...}`` (values as YAML, read with
    the bounds of a recipe file; a value that is not valid YAML stays a string). Raises
    :class:`ConfigError` for an item without ``=`` or longer than ``MAX_OVERRIDE_CHARS``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ConfigError(f"override '{preview(item)}': expected key=value, e.g. optim.lr=3e-4")
        if len(item) > MAX_OVERRIDE_CHARS:
            raise ConfigError(
                f"override '{preview(key)}': {len(item):,} characters, more than {MAX_OVERRIDE_CHARS:,}; "
                "put large settings in a recipe file"
            )
        try:
            out[key] = _load_yaml(value, f"override '{preview(key)}'") if value.strip() else None
        except ConfigError as e:
            if "not valid YAML" not in str(e):
                raise
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
        raw = _load_yaml(_read_recipe_text(path), preview(str(path)))
        if raw is None:
            raise ConfigError(f"{preview(str(path))}: the recipe file is empty")
    recipe = validate_recipe(apply_overrides(raw, overrides or {}))
    # a run is named after what it trains: an override that swaps the model or the data renames it
    # (fashion_mnist/lenet5 with data.name=mnist runs as lenet5-mnist), unless it sets the name too
    before = (_get(raw, "model", "name"), _get(raw, "data", "name"))
    if overrides and "name" not in overrides and before != (recipe.model.name, recipe.data.name):
        recipe.name = f"{recipe.model.name}-{recipe.data.name}"
    return recipe


def _get(raw: Any, *keys: str) -> Any:
    for key in keys:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def _read_recipe_text(path: Path) -> str:
    """The file's text, refusing it before parsing when it is larger than ``MAX_RECIPE_BYTES`` (read
    with a bound, so ``/dev/zero`` or a pipe is refused too)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECIPE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{preview(str(path))}: cannot read recipe ({e.strerror or e})") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise ConfigError(
            f"{preview(str(path))}: larger than {MAX_RECIPE_BYTES >> 20} MB; a recipe is a few lines of settings"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{preview(str(path))}: not UTF-8 text (byte {e.start}); is it a recipe?") from None


def shipped_recipes() -> dict[str, Path]:
    """Recipes inside the package: ``{"mnist1d/cnn": path, ...}``."""
    root = Path(__file__).resolve().parent.parent / "recipes"
    return {str(p.relative_to(root).with_suffix("")): p for p in sorted(root.rglob("*.yaml"))}


def _resolve_recipe_path(source: str | Path) -> Path:
    path = Path(source)
    try:
        if path.exists():
            return path
    except OSError:  # a name too long to be a path ("File name too long") is not a file either
        pass
    shipped = shipped_recipes()
    name = str(source).removesuffix(".yaml")
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"recipe '{preview(str(source))}' is neither a file nor a shipped recipe{did_you_mean(name, shipped)}; "
        "`archlab recipes` lists the shipped ones"
    )


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return recipe.model_dump(mode="json")


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def recipe_hash(recipe: Recipe) -> str:
    blob = json.dumps(recipe_to_dict(recipe), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
