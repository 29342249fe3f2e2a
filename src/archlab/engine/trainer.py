"""One training loop for every family.

The trainer knows optimisers, schedules, budgets, precision, checkpoints and logs; the task
knows the loss, the metrics and (for GANs) the whole step. Nothing here names a family.

A step is: set each parameter group's learning rate → draw ``accum_steps`` micro-batches → for
each, forward under autocast and backward of ``loss · count_i / Σ count`` (``Task.loss_count``:
the gradient equals the whole batch's) → gradient norm → one fused finiteness check of every
micro-batch loss and the norm (one host sync; before clipping, which would hide an inf) → clip →
every optimiser steps, each followed by ``Task.after_optimizer_step``. A task with its own step
drives the same pieces through a :class:`StepContext`. Logged values stay tensors until a log
line is written. Logs, evaluation and checkpoints happen between steps. Everything a step
depends on — weights, optimiser state, RNG states, data position, logging window, best metric,
the task's own state — is in the checkpoint, so ``resume`` continues bit-identically on the same
machine.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.config import Recipe, recipe_hash, recipe_to_dict, recipe_to_yaml
from archlab.data import Batch, BatchLoader, dataset_info, load_dataset, load_train_val, num_examples
from archlab.data.text import text_tokenizer
from archlab.data.tokenizers import TOKENIZER_FILE, load_tokenizer
from archlab.data.transforms import build_transform, uses_mixup
from archlab.engine import checkpoint as ckpt
from archlab.engine import distributed
from archlab.engine.optim import (
    Plateau,
    build_optimizer,
    check_group_names,
    group_schedule,
    group_spec,
    lr_factor,
    set_lr,
)
from archlab.engine.progress import Progress
from archlab.engine.rundir import MetricsLog, check_writable, new_run_dir
from archlab.registry import get_model_entry
from archlab.tasks import Task, build_task, higher_is_better
from archlab.utils.counting import count_flops, count_params, example_inputs
from archlab.utils.env import hardware, versions, warn_if_bf16_emulated
from archlab.utils.errors import (
    ArchlabError,
    CheckpointError,
    ConfigError,
    NonFiniteError,
    RunDirError,
    did_you_mean,
    preview,
)
from archlab.utils.io import atomic_write_json, atomic_write_text, read_json
from archlab.utils.seed import derive_seed, get_rng_state, seed_everything, set_rng_state

log = logging.getLogger("archlab")

PROBE_MAX_BATCH = 64  # the start-up probe's batch: the recipe's batch size, at most this many examples


class _RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock`` while a process trains in it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> _RunLock:
        import fcntl

        if self.fd is not None:  # taken by Trainer.resume, held until fit() ends
            return self
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise RunDirError(f"run {self.path.parent} is in use by another archlab process") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: '{name}' requested but CUDA is not available; use device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: '{name}' does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: '{name}' requested but MPS is not available; use device=cpu")
    return device


def _to(batch: Batch, device: torch.device, channels_last: bool) -> Batch:
    return batch.to(device, channels_last=channels_last)


def _clip(params: list[nn.Parameter], spec: Any) -> None:
    """Clip by value, then by global norm, as ``spec`` (an ``OptimSpec``) says."""
    if spec.grad_clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, spec.grad_clip_value)
    if spec.grad_clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, spec.grad_clip_norm)


def _grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class StepContext:
    """The engine's :class:`archlab.tasks.base.StepContext`: what one optimisation step may use.

    Built by the trainer for every step (and, with ``dry_run=True``, for the start-up probe, where
    ``next_batch`` returns the probe batch and ``clip_and_step`` neither checks nor steps). See the
    protocol's docstring for a task that owns its step.
    """

    def __init__(self, trainer: Trainer, *, dry_run: bool = False, batch: Batch | None = None):
        self._trainer = trainer
        self.step: int = trainer.step
        self.total_steps: int | None = trainer.total_steps
        self.seed: int = trainer.recipe.seed
        self.device: torch.device = trainer.device
        self.optimizers: dict[str, torch.optim.Optimizer] = trainer.optimizers
        self.dry_run = dry_run
        self._probe_batch = batch
        self._drawn = 0  # micro-batches drawn this step
        self._losses: list[tuple[int, torch.Tensor]] = []  # (micro-batch, loss) awaiting the check

    def next_batch(self) -> Batch:
        self._drawn += 1
        if self.dry_run:
            assert self._probe_batch is not None
            return self._probe_batch
        t = self._trainer
        return _to(t.loader.next(), t.device, t.recipe.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        return self._trainer._autocast()

    def backward(self, loss: torch.Tensor, weight: float | torch.Tensor = 1.0) -> None:
        self._losses.append((max(self._drawn - 1, 0), loss.detach()))
        (loss if isinstance(weight, float) and weight == 1.0 else loss * weight).backward()

    def zero_grad(self, group: str | None = None) -> None:
        for name, opt in self.optimizers.items():
            if group is None or name == group:
                opt.zero_grad(set_to_none=True)

    def clip_and_step(self, group: str) -> torch.Tensor:
        t = self._trainer
        if group not in self.optimizers:
            raise KeyError(f"no optimiser '{group}'{did_you_mean(group, self.optimizers)}")
        params = t.group_params[group]
        if not self.dry_run:
            distributed.average_gradients(params, t.dist)  # data-parallel: the mean over ranks
        gnorm = _grad_norm(params)  # before clipping: clipping would turn inf into a finite value
        if not self.dry_run:
            t._check_step(self._losses, gnorm)
        self._losses = []
        _clip(params, t.group_specs[group])
        if not self.dry_run:
            self.optimizers[group].step()
            t.task.after_optimizer_step(group, t.model, self)
        return gnorm

    def check_finite(self, what: str, value: torch.Tensor) -> None:
        if not self.dry_run:
            self._trainer.check_finite(what, value, max(self._drawn - 1, 0))


class Trainer:
    """``Trainer(recipe).fit()`` → summary dict; ``Trainer.resume(run_dir).fit()`` continues a run."""

    def __init__(
        self,
        recipe: Recipe,
        *,
        runs_dir: str | Path = "runs",
        run_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = False,
        probe: bool = True,
    ):
        """A new run in ``runs_dir/<name>-<time>`` (or in ``run_dir``, which must be empty), or,
        with ``resume=True``, the continuation of the run in ``run_dir``, restored here from its newest
        good checkpoint (:meth:`_restore`: the trainer and ``self.task`` are the saved ones as soon as
        this returns, before ``fit``). ``probe=False`` skips the
        start-up probe (one training step without the update, see ``_probe``) for a recipe the caller
        has already passed through :meth:`check` — compare and the experiments check every run
        first; the probe leaves no trace on a run, so skipping it changes nothing it computes."""
        self.recipe = recipe
        self.quiet = quiet
        self._probe_on_setup = probe
        self._resuming = resume
        if resume and run_dir is None:
            raise ValueError("resume=True needs run_dir")
        if run_dir is not None and not resume and Path(run_dir).exists() and any(Path(run_dir).iterdir()):
            raise RunDirError(f"run directory '{run_dir}' is not empty; use --resume to continue it")
        # everything that can be wrong with the recipe fails here, before a run dir exists
        self._setup()
        if run_dir is None:
            # rank 0 names and creates the run dir; the other ranks of a torchrun job receive it
            made = str(new_run_dir(runs_dir, recipe.name)) if self.dist.is_main else None
            self.run_dir = Path(distributed.broadcast_json(made, self.dist))
        else:
            self.run_dir = Path(run_dir)
            if self.dist.is_main:
                try:
                    self.run_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise RunDirError(f"cannot create run directory '{run_dir}' ({e.strerror})") from None
                check_writable(self.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.timing = MetricsLog(self.run_dir / "timing.jsonl")
        self._restored = self._restore() if resume else False

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def check(cls, recipe: Recipe) -> int | None:
        """Everything construction validates (data, task, model, ``eval.metric``, device, the
        start-up probe) without creating a run dir: compare and the experiments check every run's
        recipe before their own directory exists. Returns the run's optimiser steps (None under a
        time budget only); raises what ``Trainer(recipe)`` raises."""
        return cls.checked(recipe).total_steps

    @classmethod
    def checked(cls, recipe: Recipe) -> Trainer:
        """:meth:`check`, returning the set-up trainer (no run dir; it cannot ``fit``): its
        ``total_steps`` and ``probe_seconds`` (the start-up probe's wall time, one training step's
        forward and backward on at most ``PROBE_MAX_BATCH`` examples)."""
        trainer = cls.__new__(cls)
        trainer.recipe, trainer.quiet, trainer._resuming, trainer._probe_on_setup = recipe, True, False, True
        trainer._setup()
        return trainer

    @classmethod
    def resume(cls, run_dir: str | Path, *, quiet: bool = False, recipe: Recipe | None = None) -> Trainer:
        """The continuation of ``run_dir``. A finished run or one another process trains in is refused
        here, before anything is built or printed; the run's lock is held from here until ``fit()`` ends."""
        from archlab.config import load_recipe

        run_dir = Path(run_dir)
        saved = run_dir / "recipe.yaml"
        if not saved.exists():
            raise CheckpointError(f"{run_dir} is not an archlab run (no recipe.yaml); pass a run directory")
        check_writable(run_dir)
        # rank 0 of a torchrun job holds the lock for the job (the other ranks would find it taken)
        lock = _RunLock(run_dir).__enter__() if distributed.env_info().is_main else contextlib.nullcontext()
        try:
            _check_unfinished(run_dir)
            saved_recipe = load_recipe(saved)
            if recipe is not None and recipe_hash(recipe) != recipe_hash(saved_recipe):
                a, b = recipe_to_dict(recipe), recipe_to_dict(saved_recipe)
                diff = _first_difference(a, b)
                raise ConfigError(f"{diff}: differs from the recipe saved in {saved}; a resumed run keeps its recipe")
            # before anything is built or loaded: the checkpoints must come from this very recipe
            written = ckpt.read_recipe_hash(run_dir / "checkpoints")
            if written is not None and written[1] != recipe_hash(saved_recipe):
                raise CheckpointError(
                    f"{saved} is not the recipe that wrote {written[0]} (recipe hash {recipe_hash(saved_recipe)}, "
                    f"checkpoint {written[1]}): a resumed run keeps its recipe; undo the edit or start a new run"
                )
            world = distributed.env_info().world_size
            if written is not None and written[2] != world:
                raise CheckpointError(
                    f"{run_dir} was trained by {written[2]} process(es), this job has {world}; "
                    f"resume with the same number (torchrun --nproc_per_node={written[2]})"
                )
            trainer = cls(saved_recipe, run_dir=run_dir, resume=True, quiet=quiet)
        except BaseException:
            lock.__exit__()
            raise
        trainer._lock = lock
        return trainer

    def _setup(self) -> None:
        r = self.recipe
        self.device = resolve_device(r.device)
        self.dist = distributed.init(self.device)  # one process unless torchrun started this one
        self.device = distributed.device_for(self.device, self.dist)
        if r.precision == "bf16":
            warn_if_bf16_emulated(self.device)  # once per process: emulated bf16 is ~14x slower than fp32
        if self.device.type == "cpu":
            # gradients that vanish into denormal floats (a vanilla RNN at T = 200) made steps 4–5×
            # slower here (measured); flushing only zeroes values below float32's smallest normal, 1.2e-38
            torch.set_flush_denormal(True)
        seed_everything(r.seed)
        self.info = dataset_info(r.data.name, r.data.options)
        self.task: Task = build_task(r.task, self.info, seed=r.seed)
        self.train_set, self.val_set = load_train_val(
            r.data.name,
            val_fraction=r.data.val_fraction,
            seed=r.seed,
            train_subset=r.data.train_subset,
            data_dir=r.data.data_dir,
            options=r.data.options,
        )
        self.test_set = load_dataset(r.data.name, "test", data_dir=r.data.data_dir, options=r.data.options)
        if r.data.test_subset is not None and r.data.test_subset < len(self.test_set):
            self.test_set = self.test_set.subset(torch.arange(r.data.test_subset), "test")
        if r.eval.early_stopping.patience is not None and self.val_set is None:
            raise ConfigError("eval.early_stopping.patience: needs a validation split; set data.val_fraction > 0")
        if r.eval.restore_best and self.val_set is None and r.eval.select == "val":
            raise ConfigError("eval.restore_best: needs a validation split; set data.val_fraction > 0")
        self.eval_metric = r.eval.metric or self.task.default_metric
        if self.eval_metric not in self.task.metrics:
            raise ConfigError(
                f"eval.metric: '{self.eval_metric}' is not reported by task '{r.task.name}'"
                f"{did_you_mean(self.eval_metric, self.task.metrics)}; choose from {', '.join(self.task.metrics)}"
            )
        self.eval_mode = r.eval.mode or ("max" if higher_is_better(self.eval_metric) else "min")

        self.model: nn.Module = self.task.build_model(r.model).to(self.device)
        if r.model.init_from is not None and not self._resuming:  # a resumed run has its own weights
            self._init_from(r.model.init_from)
        if r.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model_entry = get_model_entry(r.model.name)
        self.group_params = self.task.param_groups(self.model)
        check_group_names(r.optim, list(self.group_params), r.task.name)
        self.group_specs = {name: group_spec(r.optim, name) for name in self.group_params}
        self.group_schedules = {name: group_schedule(r.optim, r.schedule, name) for name in self.group_params}
        self.optimizers = {
            name: build_optimizer(params, self.group_specs[name], _where(name, r.optim.groups))
            for name, params in self.group_params.items()
        }
        if uses_mixup(r.data.augment) and not self.task.supports_mixup:
            raise ConfigError(
                f"data.augment: mixup needs a task that scores mixed targets (classification), not {r.task.name}"
            )
        self.batch_size = r.data.batch_size_for(len(self.train_set))  # `auto`: from the training-set size
        self.loader = self._train_loader(self.batch_size, shard=True)
        spe = self.loader.steps_per_epoch
        limits = []
        if r.budget.steps is not None:
            limits.append(r.budget.steps)
        if r.budget.epochs is not None:
            limits.append(math.ceil(r.budget.epochs * spe / r.optim.accum_steps))
        self.total_steps: int | None = min(limits) if limits else None
        for schedule in self.group_schedules.values():
            lr_factor(0, schedule, self.total_steps)  # fail early on a schedule without a horizon

        # the training loss watched per interval by `plateau` schedules and eval.select=train_loss
        self.plateaus = {
            name: Plateau(sched, self.group_specs[name].lr)
            for name, sched in self.group_schedules.items()
            if sched.name == "plateau"
        }
        epoch = max(1, spe // r.optim.accum_steps)  # optimiser steps per epoch
        self.plateau_every = {name: self.group_schedules[name].interval or epoch for name in self.plateaus}
        self.select_every = r.schedule.interval or epoch
        # interval length → [sum, count] of the training loss in the current interval
        intervals = set(self.plateau_every.values()) | ({self.select_every} if r.eval.select == "train_loss" else set())
        self._monitors: dict[int, list] = {n: [0.0, 0] for n in sorted(intervals)}

        self.step = 0
        self._position = self.loader.state_dict()
        self.probe_seconds = 0.0
        if self._probe_on_setup:
            self._probe()
        if self.dist.enabled:
            distributed.broadcast_module_(self.model, self.dist)  # one set of initial weights
            if self.dist.rank:  # dropout masks etc. differ between ranks, as between examples of one batch
                torch.manual_seed(derive_seed(r.seed, 0xD15, self.dist.rank))
        self.forward_model: nn.Module = torch.compile(self.model) if r.compile else self.model
        self.elapsed = 0.0  # training seconds, accumulated over resumes
        self.best: dict[str, Any] = {"value": None, "step": None, "evals_since": 0}
        self.window: dict[str, float] = {}
        self.window_n = 0
        self.n_params = count_params(self.model)
        self.last_eval: dict[str, dict[str, float]] = {}
        self.last_eval_step: int | None = None

    def _init_from(self, run_dir: str) -> None:
        """``model.init_from``: start from the weights of another run's checkpoint (the one its
        summary reports), every tensor whose name and shape match; one-line ConfigError otherwise."""
        from archlab.config import load_recipe

        path = Path(run_dir).expanduser()
        if not (path / "recipe.yaml").is_file():
            raise ConfigError(f"model.init_from: '{preview(str(path))}' is not an archlab run (no recipe.yaml)")
        try:
            self._check_same_tokenizer(path)
            chosen = _choose_checkpoint(path / "checkpoints", "auto", load_recipe(path / "recipe.yaml"))
            copied, kept = ckpt.load_matching_weights(chosen, self.model)
        except ArchlabError as e:
            raise ConfigError(f"model.init_from: {e}") from None
        self.init_report = {"from": str(chosen), "copied": len(copied), "kept": kept}
        if not self.quiet:
            log.info("initialised %d tensors from %s; %d kept their init: %s", len(copied), chosen, len(kept), kept[:6])

    def _check_same_tokenizer(self, path: Path) -> None:
        """Row i of an embedding (and of a tied output layer) stands for token i of the tokenizer it
        was trained with: a run started from another run's weights must read its text with the same
        tokenizer, or every copied row would stand for another token (the shapes can still match)."""
        theirs_path = path / TOKENIZER_FILE
        ours = self.task.tokenizer or text_tokenizer(self.info)
        if ours is None or not theirs_path.is_file():
            return
        theirs = load_tokenizer(theirs_path)
        if theirs.to_dict() != ours.to_dict():
            raise ConfigError(
                f"{preview(str(path))} read its text with another tokenizer ({theirs.kind}, {theirs.vocab_size} "
                f"tokens) than this run's data ({ours.kind}, {ours.vocab_size} tokens): its embedding rows would stand "
                "for other tokens; train both runs on the same data and tokenizer options"
            )

    def _train_loader(self, batch_size: int, shard: bool = False) -> BatchLoader:
        """The training loader; ``shard``: this rank's part of each global batch under torchrun
        (the start-up probe takes whole batches on every rank)."""
        r = self.recipe
        return BatchLoader(
            self.train_set,
            batch_size,
            seed=derive_seed(r.seed, 0xDA7A),
            transform=build_transform(r.data.augment),
            rank=self.dist.rank if shard else 0,
            world_size=self.dist.world_size if shard else 1,
        )

    def _probe(self) -> None:
        """``Task.probe``: one real training step without the optimiser update — train mode, a batch
        of the recipe's batch size (at most ``PROBE_MAX_BATCH``), backward — so a wrong input shape,
        an output width that does not fit the labels or a batch-norm layer fed one example fails
        here, in one line, before a run directory exists. Every RNG state, module buffer (batch-norm
        running statistics), gradient and the task's own state is restored afterwards, so the run
        is bit-identical to one without the probe."""
        r = self.recipe
        n = min(self.batch_size, PROBE_MAX_BATCH, len(self.train_set))
        rng = get_rng_state()
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        task_state = copy.deepcopy(self.task.state_dict())
        was = self.model.training
        self.model.train()
        try:
            # the first training batch as the loader makes it (transforms included), from a loader of its own
            batch = _to(self._train_loader(n).next(), self.device, r.channels_last)
            t0 = time.perf_counter()
            self.task.probe(self.model, StepContext(self, dry_run=True, batch=batch))
            self.probe_seconds = time.perf_counter() - t0
        except ArchlabError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the first step is a recipe/model/data mismatch
            raise ConfigError(self._probe_message(e, n)) from e
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            for p in self.model.parameters():
                p.grad = None
            set_rng_state(*rng)
            self.task.load_state_dict(task_state)
            self.model.train(was)

    def _probe_message(self, e: Exception, n: int) -> str:
        text = (str(e).strip().splitlines() or [""])[0][:300] or type(e).__name__
        r = self.recipe
        if "Expected more than 1 value per channel when training" in text:
            return (
                f"data.batch_size: {self.batch_size} is too small for batch normalisation, which needs at least 2 "
                "examples per batch in training; set data.batch_size ≥ 2 (or turn the model's batch norm off)"
            )
        return (
            f"model '{r.model.name}' fails a training step on {n} example(s) of '{r.data.name}' "
            f"({type(e).__name__}: {text}); check the recipe's model, data and task settings (ARCHLAB_DEBUG=1 shows "
            f"the traceback)"
        )

    # -- state -------------------------------------------------------------------------------
    def _state(self, task_json: Any = None) -> dict[str, Any]:
        rng_tensors, rng_meta = get_rng_state()
        own = {
            "rng": {"tensors": {k: ckpt.encode_bytes_tensor(v) for k, v in rng_tensors.items()}, **rng_meta},
            "window": {"sums": {k: float(v) for k, v in self.window.items()}, "n": self.window_n},
        }
        ranks = distributed.gather_json(own, self.dist)  # a collective: every rank calls _state
        return {
            "step": self.step,
            "data": self.loader.state_dict(),
            "rng": ranks[0]["rng"],
            "world_size": self.dist.world_size,
            "ranks": ranks[1:],  # ranks 1..N-1 of a torchrun job: their RNG and log window
            "best": self.best,
            "last_eval": {"step": self.last_eval_step, "results": self.last_eval},
            "window": ranks[0]["window"],
            "monitor": {
                "intervals": {str(n): [float(acc[0]), acc[1]] for n, acc in self._monitors.items()},
                "plateaus": {name: p.state_dict() for name, p in self.plateaus.items()},
            },
            "task": task_json,
            "elapsed_s": self.elapsed,
            "recipe_hash": recipe_hash(self.recipe),
            "versions": versions(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        if state.get("recipe_hash") != recipe_hash(self.recipe):
            raise CheckpointError(f"checkpoint in {self.ckpt_dir} was written by a different recipe")
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.dist.world_size:
            raise CheckpointError(
                f"{self.run_dir} was trained by {saved_world} process(es), this job has {self.dist.world_size}; "
                f"resume with the same number (torchrun --nproc_per_node={saved_world})"
            )
        self.step = int(state["step"])
        self.loader.load_state_dict(state["data"])
        own = state if self.dist.rank == 0 else state["ranks"][self.dist.rank - 1]
        rng = own["rng"]
        set_rng_state({k: ckpt.decode_bytes_tensor(v) for k, v in rng["tensors"].items()}, rng)
        self.best = state["best"]
        self.last_eval_step = state["last_eval"]["step"]
        self.last_eval = state["last_eval"]["results"]
        self.window, self.window_n = dict(own["window"]["sums"]), int(own["window"]["n"])
        self.elapsed = float(state["elapsed_s"])
        monitor = state.get("monitor") or {"intervals": {}, "plateaus": {}}
        for n, (total, count) in monitor["intervals"].items():
            self._monitors[int(n)] = [float(total), int(count)]
        for name, p in self.plateaus.items():
            p.load_state_dict(monitor["plateaus"][name])

    def _restore(self) -> bool:
        """``resume=True``: load the newest good checkpoint — weights, optimiser state, the trainer's
        state (step, data position, RNG states, log window, best, monitors) and the task's own state
        (EMA weights, CycleGAN's image history, counters) — all at once, so that nothing read between
        construction and ``fit`` (``self.task`` for sampling or evaluation, ``self.step``) is stale.
        Returns False when the run has no checkpoint yet (it starts from step 0); bad checkpoints
        are skipped with a warning, and none good among several is a :class:`CheckpointError`."""
        _check_unfinished(self.run_dir)
        good, skipped = ckpt.find_resumable(self.ckpt_dir)
        for line in skipped:
            log.warning("skipping bad checkpoint: %s", line)
        if good is None:
            if skipped:
                raise CheckpointError(f"no valid checkpoint to resume in {self.ckpt_dir}")
            log.warning("no checkpoint in %s yet: starting the run from step 0", self.ckpt_dir)
            return False
        state = ckpt.load_checkpoint(good, self.model, self.optimizers, self.device, self.task.retired_weights)
        self._load_state(state)
        self._load_task_state(good, state)
        if self.dist.is_main:
            log.info("resumed %s at step %d", self.run_dir, self.step)
        return True

    def _load_task_state(self, directory: Path, state: dict[str, Any]) -> None:
        tensors = ckpt.load_task_tensors(directory)
        self.task.load_state_dict(_join_tensors(state.get("task") or {}, tensors))

    def _save(self, name: str | None = None) -> Path:
        """Write the step's checkpoint (or ``best``). Weights or optimiser state that became NaN/inf
        (a finite gradient with a huge learning rate does that after the step's finite checks) are
        never saved: the run stops with :class:`NonFiniteError` and ``nonfinite.json`` names the
        newest checkpoint that is really good."""
        target = self.ckpt_dir / (name or ckpt.step_dir_name(self.step))
        task_json, task_tensors = _split_tensors(self.task.state_dict())
        state = self._state(task_json)  # every rank: it gathers the ranks' RNG states
        bad = None
        if self.dist.is_main:  # rank 0 writes; the others learn whether the weights were finite
            try:
                ckpt.save_checkpoint(
                    target,
                    model=self.model,
                    optimizers=self.optimizers,
                    state=state,
                    step=self.step,
                    task_tensors=task_tensors,
                )
            except ckpt.NonFiniteStateError as e:
                bad = e.tensor
        bad = distributed.broadcast_json(bad, self.dist)
        if bad is not None:
            good, _ = ckpt.find_resumable(self.ckpt_dir)
            report = {
                "what": "weights",
                "tensor": bad,
                "step": self.step,  # optimiser steps taken; the bad update is one of those since the last save
                "found_when": f"saving {target.name}",
                "last_good_checkpoint": str(good) if good else None,
            }
            if self.dist.is_main:
                atomic_write_json(self.run_dir / "nonfinite.json", report)
            keep = f"last good checkpoint: {good}" if good else "no good checkpoint was written"
            raise NonFiniteError(
                f"non-finite weights ('{bad}') after step {self.step}, found when saving {target.name}; "
                f"not saved ({keep}); details in {self.run_dir / 'nonfinite.json'} — try a lower optim.lr"
            )
        if name is None and self.dist.is_main:
            ckpt.prune(self.ckpt_dir, self.recipe.checkpoint.keep_last)
        return target

    # -- evaluation --------------------------------------------------------------------------
    def _eval_batches(self, ds):
        loader = BatchLoader(ds, self.recipe.data.eval_batch_size, shuffle=False, drop_last=False)
        for batch in loader:
            yield _to(batch, self.device, self.recipe.channels_last)

    @property
    def _sharded_eval(self) -> bool:
        """Data-parallel evaluation: each rank accumulates a contiguous shard of the split and the
        accumulators' sums are all-reduced (tasks built from accumulators; others: rank 0 alone)."""
        return self.dist.enabled and self.task.accumulates

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        ds = {"val": self.val_set, "test": self.test_set, "train": self.train_set}[split]
        if ds is None:
            return {}
        was = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                if not self._sharded_eval:
                    return self.task.evaluate(self.forward_model, self._eval_batches(ds))
                n, w, r = len(ds), self.dist.world_size, self.dist.rank
                shard = ds.subset(torch.arange(n * r // w, n * (r + 1) // w), ds.split)
                metrics = self.task.accumulate(self.forward_model, self._eval_batches(shard))
                sums = torch.cat([m.as_tensor() for m in metrics.values()])
                distributed.all_reduce_(sums, self.dist)  # the sums over every rank's shard
                offset = 0
                for m in metrics.values():
                    k = len(m.fields)
                    m.load_tensor(sums[offset : offset + k])
                    offset += k
                return metrics.compute()
        finally:
            self.model.train(was)

    def _autocast(self):
        if self.recipe.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- one optimisation step ---------------------------------------------------------------
    def _set_lrs(self) -> dict[str, float]:
        """Each group's learning rate for this step; logged as ``lr`` (the first group) and, with
        several groups, ``lr/<group>``."""
        lrs = {}
        for name, opt in self.optimizers.items():
            factor = lr_factor(self.step, self.group_schedules[name], self.total_steps)
            if name in self.plateaus:
                factor *= self.plateaus[name].scale
            lrs[name] = set_lr(opt, self.group_specs[name].lr, factor)
        out = {"lr": next(iter(lrs.values()))}
        if len(lrs) > 1:
            out.update({f"lr/{name}": lr for name, lr in lrs.items()})
        return out

    def _micro_weights(self, batches: list[Batch]) -> list[float | torch.Tensor]:
        """``count_i / Σ_j count_j`` per micro-batch (``Task.loss_count``): weighting each
        micro-batch's mean loss by its share of the counted items makes the accumulated gradient
        the gradient of the mean over the whole batch (a token-mean loss averaged per micro-batch
        is not). One micro-batch: exactly 1.0, so nothing is rescaled."""
        if len(batches) == 1 and not self.dist.enabled:
            return [1.0]
        counts = [self.task.loss_count(b) for b in batches]
        total = self._total_count(sum(counts))
        # data-parallel: gradients are averaged over the N ranks afterwards, hence the factor N
        return [c * self.dist.world_size / total for c in counts]

    def _total_count(self, local: int | torch.Tensor) -> int | torch.Tensor:
        """The number of counted items in the whole step: under data-parallel training the sum over
        ranks, so every rank normalises by the same global count."""
        if not self.dist.enabled:
            return local
        t = torch.as_tensor(local, dtype=torch.float64).reshape(1).cpu()
        return float(distributed.all_reduce_(t, self.dist))

    def _train_step(self) -> dict[str, Any]:
        r = self.recipe
        lrs = self._set_lrs()
        self._position = self.loader.state_dict()  # where this step's first micro-batch starts
        self.task.set_progress(self.step, self.total_steps)
        ctx = StepContext(self)
        if self.task.has_custom_step:
            out = self.task.custom_step(self.forward_model, ctx)
            return {**out, **lrs}
        ctx.zero_grad()
        batches = [ctx.next_batch() for _ in range(r.optim.accum_steps)]
        sums: dict[str, torch.Tensor | float] = {}
        for micro, (batch, weight) in enumerate(zip(batches, self._micro_weights(batches), strict=True)):
            with self._autocast():
                loss, logs = self.task.training_loss(self.forward_model, batch)
            ctx._drawn = micro + 1  # the micro-batch a non-finite loss is reported at
            ctx.backward(loss, weight)
            for k, v in logs.items():
                v = self._log_value(v)
                sums[k] = sums[k] + v * weight if k in sums else v * weight
        if self.dist.enabled:  # data-parallel: every gradient becomes its mean over the ranks
            distributed.average_gradients(list(self.model.parameters()), self.dist)
        params = [p for p in self.model.parameters() if p.grad is not None]
        gnorm = _grad_norm(params)  # before clipping: clipping would turn inf into a finite value
        self._check_step(ctx._losses, gnorm)
        own = [g for g in self.optimizers if g in r.optim.groups and self._clips(self.group_specs[g])]
        for g in own:  # a group with its own clipping settings is clipped on its own
            _clip([p for p in self.group_params[g] if p.grad is not None], self.group_specs[g])
        rest = {id(p) for g in own for p in self.group_params[g]}
        _clip([p for p in params if id(p) not in rest], r.optim)
        for name, opt in self.optimizers.items():
            opt.step()
            self.task.after_optimizer_step(name, self.model, ctx)
        return {**sums, **lrs, "grad_norm": self._log_value(gnorm)}

    @staticmethod
    def _clips(spec: Any) -> bool:
        return spec.grad_clip_norm is not None or spec.grad_clip_value is not None

    def _log_value(self, v: Any) -> torch.Tensor | float:
        """A logged tensor as a 0-dim float64 tensor on its device (no host sync until a line is
        written); a Python number as a float."""
        if isinstance(v, torch.Tensor):
            return v.detach().to(torch.float32 if v.device.type == "mps" else torch.float64)  # MPS has no float64
        return float(v)

    def _check_step(self, losses: list[tuple[int, torch.Tensor]], gnorm: torch.Tensor) -> None:
        """The step's one finiteness check: every loss back-propagated since the last optimiser step
        and the gradient norm, in one tensor and one host sync. Non-finite: stop the run."""
        values = [loss.float().reshape(-1) for _, loss in losses] + [
            gnorm.detach().float().reshape(-1).to(losses[0][1].device if losses else gnorm.device)
        ]
        if bool(torch.isfinite(torch.cat(values)).all()):
            return
        for micro, loss in losses:  # the slow path: say which value
            self.check_finite("loss", loss, micro)
        self.check_finite("gradient", gnorm, losses[-1][0] if losses else 0)

    def check_finite(self, what: str, value: torch.Tensor, micro: int = 0) -> None:
        """Stop the run (before any optimiser step) if ``value`` is NaN or ±inf.

        The standard step checks the losses and the gradient norm together (:meth:`_check_step`);
        a task with its own step gets the same through ``ctx.clip_and_step`` and may call
        ``ctx.check_finite(...)`` for anything else.
        """
        finite = bool(torch.isfinite(value).all())
        if self.dist.enabled:  # the ranks agree, so that all of them stop together
            flag = torch.tensor([0 if finite else 1])
            finite = not bool(distributed.all_reduce_(flag, self.dist, op="max"))
        if not finite:
            bad = value.detach().float().flatten()
            bad = bad[~torch.isfinite(bad)]
            self._non_finite(what, self._position, micro, float(bad[0]) if len(bad) else float("nan"))

    def _non_finite(self, what: str, position: dict[str, int], micro: int, value: float) -> None:
        bad_params = [
            n for n, p in self.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        report = {
            "what": what,
            "value": repr(value),
            "step": self.step,  # the optimiser step that would have been taken (0-based)
            "epoch": position["epoch"],
            "batch": position["batch"],  # index within the epoch of the step's first micro-batch
            "micro_batch": micro,
            "parameters_with_non_finite_grad": bad_params[:20],
        }
        good, _ = ckpt.find_resumable(self.ckpt_dir)
        report["last_good_checkpoint"] = str(good) if good else None
        if self.dist.is_main:
            atomic_write_json(self.run_dir / "nonfinite.json", report)
        where = f"step {self.step}, epoch {position['epoch']}, batch {position['batch']}"
        keep = f"last good checkpoint: {good}" if good else "no checkpoint was written yet"
        raise NonFiniteError(
            f"non-finite {what} ({value}) at {where}; stopped before the optimiser step ({keep}); "
            f"details in {self.run_dir / 'nonfinite.json'} — try a lower optim.lr or optim.grad_clip_norm"
        )

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        lock = getattr(self, "_lock", None) or (_RunLock(self.run_dir) if self.dist.is_main else None)
        with lock or contextlib.nullcontext():
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        r = self.recipe
        if self._resuming:
            _check_unfinished(self.run_dir)  # (under the lock: nothing finished it since construction)
            if self.dist.is_main:  # the records past the restored step are written again
                self.metrics.truncate_after(self.step if self._restored else -1)
                self.timing.truncate_after(self.step if self._restored else -1)
        elif self.dist.is_main:
            atomic_write_text(self.run_dir / "recipe.yaml", recipe_to_yaml(r))
            self.task.save_artifacts(self.run_dir)  # e.g. the tokenizer, for eval/sample

        tb = self._tensorboard()
        progress = Progress(
            total=self.total_steps,
            enabled=r.log.progress and not self.quiet and self.dist.is_main,
            description=f"{r.model.name} · {r.data.name}",
            start=self.step,
        )
        status = "completed"
        start = time.perf_counter() - self.elapsed
        self.model.train()
        samples_per_step = self.batch_size * r.optim.accum_steps
        t_window, steps_window = time.perf_counter(), 0
        try:
            while True:
                if self.total_steps is not None and self.step >= self.total_steps:
                    break
                if r.budget.seconds is not None and self.elapsed >= r.budget.seconds:
                    status = "time_budget"
                    break
                logs = self._train_step()
                self.step += 1
                steps_window += 1
                self.elapsed = time.perf_counter() - start
                for k, v in logs.items():  # tensors stay on the device until a line is written
                    v = self._log_value(v)
                    self.window[k] = self.window[k] + v if k in self.window else v
                self.window_n += 1
                if self._monitors:
                    self._watch_training_loss(logs)
                ckpt.fault_point("step", self.step)

                if self.step % r.log.every == 0:
                    now = time.perf_counter()
                    rate = steps_window * samples_per_step / max(now - t_window, 1e-9)
                    t_window, steps_window = now, 0
                    rec = self._mean_over_ranks({k: float(v) / self.window_n for k, v in self.window.items()})
                    rec.update({k: v for k, v in logs.items() if k == "lr" or k.startswith("lr/")})
                    self._log("train", rec, tb, samples_per_s=rate)
                    progress.update(self.step, rec)
                    self.window, self.window_n = {}, 0
                else:
                    progress.update(self.step, None)

                last = self.total_steps is not None and self.step == self.total_steps
                if self.step % r.eval.every == 0 and not last and self._evaluate_and_track(tb):
                    status = "early_stopped"
                    break
                if r.checkpoint.every and self.step % r.checkpoint.every == 0 and not last:
                    self._save()
        finally:
            progress.close()
        self.elapsed = time.perf_counter() - start

        # the final evaluation, unless this step was just evaluated (early stop, time budget, resume)
        if self.last_eval_step != self.step:
            self._evaluate_and_track(tb, final=True)
        self._save()
        best_dir = self.ckpt_dir / "best"
        final_test = self.last_eval.get("test", {})
        distributed.barrier(self.dist)  # rank 0 has written the last checkpoint (and best/)
        final_val = self.last_eval.get("val", {})
        if r.eval.restore_best and best_dir.exists():
            # the summary's val and test numbers both come from the weights it reports (the best)
            self._load_task_state(
                best_dir, ckpt.load_checkpoint(best_dir, self.model, None, self.device, self.task.retired_weights)
            )
            if self._sharded_eval or self.dist.is_main:
                final_test, final_val = self.evaluate("test"), self.evaluate("val")
            if not self._sharded_eval:
                final_test, final_val = distributed.broadcast_json(
                    [final_test, final_val] if self.dist.is_main else None, self.dist
                )
        if tb is not None:
            tb.close()
        summary = self._summary(status, final_test, final_val)
        if self.dist.is_main:
            atomic_write_json(self.run_dir / "summary.json", summary)
        distributed.barrier(self.dist)  # no rank returns before the run is complete on disk
        return summary

    def _evaluate_and_track(self, tb, final: bool = False) -> bool:
        """Evaluate val (if any) and test; track the best; return True to stop early."""
        r = self.recipe
        results = {}
        if self.dist.is_main or self._sharded_eval:  # sharded: every rank takes part, all get the sums
            for split in ("val", "test"):
                m = self.evaluate(split)
                if m:
                    results[split] = {**m, **self.task.on_evaluate(self.model, split, m)}
        if not self._sharded_eval:  # rank 0 evaluated the whole split alone: send its numbers
            results = distributed.broadcast_json(results, self.dist)
        for split, m in results.items():
            self._log(split, m, tb)
        self.last_eval, self.last_eval_step = results, self.step
        if "val" not in results:
            return False
        if r.eval.select != "val":
            return False
        value = results["val"][self.eval_metric]
        best = self.best["value"]
        delta = r.eval.early_stopping.min_delta
        improved = best is None or (value > best + delta if self.eval_mode == "max" else value < best - delta)
        if improved:
            self.best = {"value": value, "step": self.step, "evals_since": 0}
            if r.checkpoint.best:
                self._save("best")
        else:
            self.best["evals_since"] += 1
        patience = r.eval.early_stopping.patience
        return bool(patience is not None and not final and self.best["evals_since"] >= patience)

    def _watch_training_loss(self, logs: dict[str, Any]) -> None:
        """Add this step's training loss to the interval's mean; at the interval's end update the
        plateau schedules and, with ``eval.select=train_loss``, the best checkpoint."""
        if "loss" not in logs:
            raise ConfigError(
                f"schedule.name=plateau / eval.select=train_loss watch the training 'loss', which task "
                f"'{self.recipe.task.name}' does not log"
            )
        v = self._log_value(logs["loss"])
        means = {}
        for n, acc in self._monitors.items():
            acc[0], acc[1] = acc[0] + v, acc[1] + 1
            if self.step % n == 0:  # the interval's end: its mean (one host sync per interval)
                means[n] = float(acc[0]) / acc[1]
                acc[0], acc[1] = 0.0, 0
        means = self._mean_over_ranks(means)  # data-parallel: every rank decides on the global loss
        for name, plateau in self.plateaus.items():
            if self.plateau_every[name] in means:
                plateau.update(means[self.plateau_every[name]])
        value = means.get(self.select_every)
        best = self.best["value"]
        if self.recipe.eval.select == "train_loss" and value is not None and (best is None or value < best):
            self.best = {"value": value, "step": self.step, "evals_since": 0}
            if self.recipe.checkpoint.best:
                self._save("best")

    def _mean_over_ranks(self, values: dict[Any, float]) -> dict[Any, float]:
        """The mean over data-parallel ranks of each value (one all-reduce; identity for one process)."""
        if not self.dist.enabled or not values:
            return values
        keys = list(values)
        t = distributed.all_reduce_(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64), self.dist)
        return {k: float(v) / self.dist.world_size for k, v in zip(keys, t.tolist())}

    def _log(self, split: str, metrics: dict[str, float], tb, samples_per_s: float | None = None) -> None:
        """Values go to metrics.jsonl (identical for the same seed on the same machine); wall-clock
        figures go to timing.jsonl. Rank 0 writes; other ranks of a torchrun job log nothing."""
        if not self.dist.is_main:
            return
        rec = {"step": self.step, "epoch": round(self.loader.epochs_done, 6), "split": split}
        rec.update({k: float(v) for k, v in metrics.items()})
        self.metrics.write(rec)
        timing = {"step": self.step, "split": split, "time_s": round(self.elapsed, 4)}
        if samples_per_s is not None:
            timing["samples_per_s"] = round(samples_per_s, 1)
        self.timing.write(timing)
        if tb is not None:
            for k, v in metrics.items():
                tb.add_scalar(f"{split}/{k}", float(v), self.step)

    def _best_summary(self) -> dict[str, Any] | None:
        if self.recipe.eval.select == "train_loss":
            return {"step": self.best["step"], "train_loss": self.best["value"]}
        return {"step": self.best["step"], self.eval_metric: self.best["value"]} if self.val_set else None

    def _tensorboard(self):
        if not self.recipe.log.tensorboard or not self.dist.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard is not installed: skipping TensorBoard logs")
            return None
        return SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step or None)

    def _summary(self, status: str, final_test: dict[str, float], final_val: dict[str, float]) -> dict[str, Any]:
        r = self.recipe
        try:
            example = tuple(t.to(self.device) for t in example_inputs(self.model))
            flops = count_flops(self.model, example)
        except Exception:  # noqa: BLE001 - FLOP counting is informative only
            flops = None
        samples = self.step * self.batch_size * r.optim.accum_steps
        return {
            "name": r.name,
            "run_dir": str(self.run_dir),
            "status": status,
            "recipe_hash": recipe_hash(r),
            "model": r.model.name,
            "family": self.model_entry.family,
            "paper": self.model_entry.paper,
            "dataset": r.data.name,
            "task": r.task.name,
            "seed": r.seed,
            "params": self.n_params,
            "flops_per_example": flops,
            "steps": self.step,
            "epochs": round(self.loader.epochs_done, 4),
            "train_examples": num_examples(self.train_set),
            "batch_size": self.batch_size,
            "test_examples": num_examples(self.test_set),
            "wall_time_s": round(self.elapsed, 3),
            "samples_per_s": round(samples / self.elapsed, 1) if self.elapsed > 0 else None,
            "test": final_test,
            "val": final_val,
            "best": self._best_summary(),
            "versions": versions(),
            "hardware": hardware(self.device),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }


def _where(group: str, groups: dict[str, Any]) -> str:
    return f"optim.groups.{group}" if group in groups else "optim"


def _split_tensors(tree: Any, path: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """A task state tree → (JSON tree with ``{"__tensor__": key}`` in place of tensors, tensors by key)."""
    if isinstance(tree, torch.Tensor):
        return {"__tensor__": path}, {path: tree.detach().contiguous().cpu()}
    if isinstance(tree, dict):
        out, tensors = {}, {}
        for k, v in tree.items():
            if not isinstance(k, str) or "/" in k:
                raise TypeError(f"task state keys must be strings without '/', got {k!r}")
            out[k], sub = _split_tensors(v, f"{path}/{k}" if path else k)
            tensors.update(sub)
        return out, tensors
    return tree, {}


def _join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_split_tensors`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            try:
                return tensors[tree["__tensor__"]]
            except KeyError:
                key = tree["__tensor__"]
                raise CheckpointError(f"task state tensor '{key}' is missing from the checkpoint") from None
        return {k: _join_tensors(v, tensors) for k, v in tree.items()}
    return tree


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    return path or "<recipe>"


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "summary.json")


@dataclass
class LoadedRun:
    """A run's recipe, data info, task and model with the chosen checkpoint's weights, in eval mode
    (in channels-last memory format when the run trained so)."""

    recipe: Recipe
    info: Any
    task: Task
    model: nn.Module
    checkpoint: Path
    step: int
    device: torch.device


_STEP_NAME = re.compile(r"^step-(\d+)$")


def _no_best_reason(recipe: Recipe) -> str | None:
    """Why a run of ``recipe`` never saves ``best/`` (None when it does: validation or train-loss selection)."""
    if not recipe.checkpoint.best:
        return "its recipe sets checkpoint.best: false"
    if recipe.eval.select == "train_loss" or recipe.data.val_fraction > 0:
        return None
    try:
        has_val = "val" in dataset_info(recipe.data.name, recipe.data.options).splits
    except ArchlabError:  # the data set is gone or changed: no reason to give
        return None
    return None if has_val else "it had no validation split: data.val_fraction is 0 and the data set ships none"


def _check_unfinished(run_dir: Path) -> None:
    """A run with a summary.json has finished: it is not resumed (RunDirError, one line)."""
    if (run_dir / "summary.json").exists():
        raise RunDirError(f"run {run_dir} has already finished (summary.json exists); start a new run to train more")


def _choose_checkpoint(root: Path, checkpoint: str, recipe: Recipe) -> Path:
    """The checkpoint directory ``checkpoint`` names; :class:`CheckpointError` when it is missing.

    ``auto`` is what the run's summary.json reports: ``best`` when the recipe restores it, else
    ``last``. ``best`` never silently falls back to ``last``: a run killed between the two renames
    of replacing ``best/`` has none until it is resumed.
    """
    available = ", ".join([p.name for p in ckpt.step_dirs(root)] + (["best"] if (root / "best").is_dir() else []))
    available = available or "none"
    if available == "none":
        raise CheckpointError(f"{root.parent} has no checkpoint to load (the run stopped before it saved one)")
    if checkpoint == "auto":
        if recipe.eval.restore_best and (root / "best").is_dir():
            return root / "best"
        if recipe.eval.restore_best and recipe.checkpoint.best:
            log.warning("%s is missing: evaluating the last checkpoint, not the best one", root / "best")
        checkpoint = "last"
    if checkpoint == "last":
        dirs = ckpt.step_dirs(root)
        if not dirs:
            raise CheckpointError(f"{root} has no checkpoint to load")
        return dirs[0]
    if checkpoint == "best":
        if (root / "best").is_dir():
            return root / "best"
        why = _no_best_reason(recipe)
        if why:  # was "killed while replacing it; resuming repairs that": a run without validation never has one
            raise CheckpointError(
                f"--checkpoint best: {root.parent} keeps no best checkpoint ({why}); use --checkpoint last or "
                f"step-N (available: {available})"
            )
        raise CheckpointError(
            f"{root / 'best'} is missing (the run saved none, or was killed while replacing it; resuming the run "
            f"repairs that); choose another checkpoint with --checkpoint last or step-N (available: {available})"
        )
    m = _STEP_NAME.match(checkpoint)
    if m is None:
        raise CheckpointError(
            f"--checkpoint: '{checkpoint[:60]}' is not a checkpoint name; use auto, best, last or step-N "
            f"(available: {available})"
        )
    chosen = root / ckpt.step_dir_name(int(m.group(1)))
    if not chosen.is_dir():
        raise CheckpointError(f"{chosen} does not exist (available: {available})")
    return chosen


def load_run(run_dir: str | Path, checkpoint: str = "auto") -> LoadedRun:
    """Rebuild a finished (or interrupted) run's model and task state from its checkpoint:
    ``best``, ``last``, ``auto`` (the weights summary.json reports) or ``step-N``.

    Raises :class:`CheckpointError` (one line) when the run or the checkpoint is missing, when a file
    fails its manifest, when the weights do not fit the model the run's recipe.yaml builds (naming the
    first such tensor and both shapes), or when they hold NaN/inf.
    """
    from archlab.config import load_recipe

    run_dir = Path(run_dir)
    if not (run_dir / "recipe.yaml").exists():
        raise CheckpointError(f"{run_dir} is not an archlab run (no recipe.yaml)")
    recipe = load_recipe(run_dir / "recipe.yaml")
    chosen = _choose_checkpoint(run_dir / "checkpoints", checkpoint, recipe)
    seed_everything(recipe.seed)
    info = dataset_info(recipe.data.name, recipe.data.options)
    task = build_task(recipe.task, info, seed=recipe.seed)
    task.load_artifacts(run_dir)  # the run's own tokenizer, not one rebuilt from today's data
    device = resolve_device(recipe.device)
    model = task.build_model(recipe.model).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = ckpt.load_checkpoint(chosen, model, None, device, task.retired_weights)
    # the task's own state (an EMA of the weights …) belongs to the checkpoint as the weights do
    task.load_state_dict(_join_tensors(state.get("task") or {}, ckpt.load_task_tensors(chosen, device)))
    model.eval()
    return LoadedRun(recipe, info, task, model, chosen, int(state["step"]), device)


def evaluate_run(
    run_dir: str | Path, split: str = "test", checkpoint: str = "auto", precision: str | None = None
) -> dict[str, Any]:
    """Re-evaluate a finished (or interrupted) run from its checkpoint: ``archlab eval``.

    Evaluates as the run did — its ``precision`` (bf16 autocast), channels-last layout, compiled
    model and CPU denormal flushing — so the test metrics of the checkpoint summary.json reports
    come out identical to summary.json's; ``precision="fp32"`` or ``"bf16"`` overrides the precision.
    """
    if precision not in (None, "fp32", "bf16"):
        raise ConfigError(f"precision: '{precision}' is not a precision; use fp32 or bf16")
    run = load_run(run_dir, checkpoint)
    recipe, task, model, device = run.recipe, run.task, run.model, run.device
    precision = precision or recipe.precision
    d = recipe.data
    if split in ("train", "val"):  # the examples the run trained / validated on (hold-out, subset, shipped val)
        train, val = load_train_val(
            d.name, val_fraction=d.val_fraction, seed=recipe.seed, train_subset=d.train_subset,
            data_dir=d.data_dir, options=d.options,
        )  # fmt: skip
        ds = train if split == "train" else val
        if ds is None:
            raise ConfigError("split: this run has no validation split (data.val_fraction is 0)")
    else:
        ds = load_dataset(d.name, split, data_dir=d.data_dir, options=d.options)
    if split == "test" and recipe.data.test_subset is not None and recipe.data.test_subset < len(ds):
        ds = ds.subset(torch.arange(recipe.data.test_subset), "test")
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as the trainer does: denormals flushed to zero
    forward = torch.compile(model) if recipe.compile else model
    loader = BatchLoader(ds, recipe.data.eval_batch_size, shuffle=False, drop_last=False)
    batches = (_to(b, device, recipe.channels_last) for b in loader)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        metrics = task.evaluate(forward, batches)
        metrics = {**metrics, **task.on_evaluate(model, split, metrics)}  # the task's own metrics, as in training
    return {
        "run_dir": str(run_dir),
        "checkpoint": str(run.checkpoint),
        "step": run.step,
        "split": split,
        "precision": precision,
        **metrics,
    }
