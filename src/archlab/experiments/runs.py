"""What compare and every experiment share: recipes built from the shipped ones, a check of every
run before a directory exists, the process pool that trains the runs, and the progress lines.

- :func:`build_recipe` — shipped recipe → swap the model → apply overrides → validate (one helper
  for every experiment; the runs are ordinary training runs).
- :func:`check_runs` — :meth:`Trainer.check` on every distinct recipe (data, task, model and the
  start-up probe), so a bad option fails before the compare or experiment directory is created.
- :func:`train_runs` — the runs side by side in worker processes (one torch thread each), failing
  fast at the first error, with overall progress (runs done / total, each running run's step and
  ETA) read from the run dirs' ``timing.jsonl``.
- :func:`match_finished` and :func:`adopt` — reuse finished runs that trained exactly a run's recipe
  (``archlab experiment NAME --reuse DIR``): two experiments that need the same run train it once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archlab.config import Recipe, apply_overrides, load_recipe, recipe_to_dict, shipped_recipes, validate_recipe
from archlab.data.timeseries import UCR_BUNDLED
from archlab.engine import Trainer
from archlab.engine import checkpoint as ckpt
from archlab.utils.errors import ArchlabError, CheckpointError, ConfigError
from archlab.utils.io import atomic_write_json
from archlab.utils.progress import PROGRESS_EVERY_S, duration_text

# `--quick` versions of the image experiments: small batches and a small test subset. They check the
# plumbing (every run trains, evaluates and lands in the table), not the claim.
QUICK_DATA: dict[str, Any] = {"data.batch_size": 32, "data.test_subset": 200}


@dataclass(frozen=True)
class RunSpec:
    """One training run of a compare or an experiment: results are looked up by ``(key, seed)``;
    the run dir is ``<compare or experiment dir>/<name>``."""

    key: str
    seed: int
    recipe: dict[str, Any]  # a validated recipe, as a dict (it crosses a process boundary)
    name: str


# -- recipes ---------------------------------------------------------------------------------------
def base_recipe(data: str, model: str) -> str:
    """The shipped recipe to start ``model`` on ``data`` from: ``<data>/<model>`` when it ships,
    otherwise the data set's ``<data>/default`` (its training set-up for any model); for a bundled
    UCR/UEA classification set without either, ``ucr/<model>`` or ``ucr/default`` (Fawaz et al.'s
    protocol, for any such set once ``data.name`` is set: :func:`recipe_on` does that).
    Raises ConfigError when none of them ships."""
    shipped = shipped_recipes()
    candidates = [f"{data}/{model}", f"{data}/default"]
    if is_ucr_classification(data):
        candidates += [f"ucr/{model}", "ucr/default"]
    for name in candidates:
        if name in shipped:
            return name
    have = sorted(k.split("/")[0] for k in shipped if k.endswith("/default"))
    raise ConfigError(
        f"--data: no recipe '{data}/{model}' or '{data}/default' ships; compare works on data sets with a default "
        f"recipe ({', '.join(have)}, any bundled UCR/UEA classification set), or pass models that have a recipe "
        f"for '{data}'"
    )


def is_ucr_classification(data: str) -> bool:
    """Whether ``data`` is one of the bundled UCR/UEA classification sets (the ``ucr/*`` recipes' domain)."""
    u = UCR_BUNDLED.get(data)
    return u is not None and bool(u.classes)


def recipe_on(data: str, model: str, overrides: dict[str, Any] | None = None, *, name: str | None = None) -> Recipe:
    """``model``'s recipe on ``data`` (:func:`base_recipe`), with ``data.name`` set when the recipe is
    the any-UCR-set one, then ``overrides``. Raises ConfigError."""
    base = base_recipe(data, model)
    if base.startswith("ucr/"):
        overrides = {"data.name": data, **(overrides or {})}
        name = name or f"{model}-{data}"
    return build_recipe(base, model, overrides, name=name)


def build_recipe(
    base: str,
    model: str | dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    seed: int | None = None,
) -> Recipe:
    """The shipped recipe ``base`` (e.g. ``"fashion_mnist/default"``) with ``model`` swapped in,
    ``name``/``seed`` set, then ``overrides`` applied and the result validated; TensorBoard off.

    ``model`` is a registry name or ``{"name": ..., **fields}``: when it names the base's own model
    its fields update the base's (``adding/gru`` + ``hidden_size``), otherwise it replaces it. Without
    ``name`` the run keeps the base's name, or is named ``<model>-<data>`` when the model changed.
    Raises ConfigError naming the first bad key."""
    shipped = shipped_recipes()
    if base not in shipped:
        raise ConfigError(f"no shipped recipe '{base}'")
    raw = yaml.safe_load(shipped[base].read_text(encoding="utf-8"))
    if model is not None:
        spec = {"name": model} if isinstance(model, str) else dict(model)
        same = raw["model"].get("name") == spec.get("name")
        raw["model"] = {**raw["model"], **spec} if same else spec
        if name is None and not same:
            name = f"{spec['name']}-{raw['data']['name']}"
    if name is not None:
        raw["name"] = name
    if seed is not None:
        raw["seed"] = seed
    recipe = validate_recipe(apply_overrides(raw, overrides or {}))
    recipe.log.tensorboard = False
    return recipe


def spec(key: str, seed: int, recipe: Recipe, name: str) -> RunSpec:
    """A :class:`RunSpec` for ``recipe`` with its seed and name set to the run's."""
    r = recipe.model_copy(deep=True)
    r.seed, r.name = seed, name
    return RunSpec(key, seed, recipe_to_dict(r), name)


# -- checking ----------------------------------------------------------------------------------------
def check_runs(runs: list[RunSpec], costs: dict[str, float] | None = None) -> dict[str, int | None]:
    """Build and probe every distinct recipe of ``runs`` (seeds and names aside) as the trainer
    would, before any directory exists. Returns each run's optimiser steps by run name; ``costs``,
    when given, receives each run's estimated training time (the probe's seconds × its steps: a
    rough, measured guess, used only to order the runs)."""
    steps: dict[str, int | None] = {}
    seen: dict[str, tuple[int | None, float]] = {}
    for run in runs:
        blob = json.dumps({**run.recipe, "seed": 0, "name": ""}, sort_keys=True)
        if blob not in seen:
            trainer = Trainer.checked(validate_recipe(run.recipe))
            seen[blob] = (trainer.total_steps, trainer.probe_seconds)
        steps[run.name], probe = seen[blob]
        if costs is not None:
            costs[run.name] = probe * (steps[run.name] or 1)
    return steps


def longest_first(runs: list[RunSpec], costs: dict[str, float]) -> list[RunSpec]:
    """``runs`` with the longest estimated first (stable): with several workers, a long run started
    last would keep one worker busy while the others idle (Graham's LPT rule bounds the finish
    time at 4/3 of the best order's)."""
    return sorted(runs, key=lambda run: -costs.get(run.name, 0.0))


# -- training ----------------------------------------------------------------------------------------
def default_jobs() -> int:
    """Parallel training processes: ``ARCHLAB_JOBS`` or the number of cores."""
    env = os.environ.get("ARCHLAB_JOBS")
    return int(env) if env and env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def _train_one(recipe: dict[str, Any], run_dir: str, threads: int | None, probe: bool) -> dict[str, Any]:
    """One run; a user-facing error comes back as data (it crosses a process boundary)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        return Trainer(validate_recipe(recipe), run_dir=run_dir, quiet=True, probe=probe).fit()
    except ArchlabError as e:
        return {"error": str(e), "exit_code": e.exit_code}


def _check(run: RunSpec, summary: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    if "error" in summary:
        label = run.key.split(":")[0]
        err = ArchlabError(f"{label} seed {run.seed} failed ({run_dir}): {summary['error']}")
        err.exit_code = summary["exit_code"]
        raise err
    return summary


class Progress:
    """Overall progress of a batch of runs, as plain lines: runs done / total and, for each run in
    progress, its step, total steps and ETA (from its ``timing.jsonl``: elapsed training time per
    step so far). Polls the run dirs from a thread, so it works for in-process and worker runs."""

    def __init__(self, out_dir: Path, runs: list[RunSpec], steps: dict[str, int | None], emit: Callable[[str], None]):
        self.out_dir, self.runs, self.steps, self.emit = out_dir, runs, steps, emit
        self.done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="archlab-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_EVERY_S):
            line = self.line()
            if line:
                self.emit(line)

    def finished(self, run: RunSpec, summary: dict[str, Any]) -> str:
        """Record a finished run; the line that announces it."""
        self.done.add(run.name)
        test = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
        return f"[{len(self.done)}/{len(self.runs)} runs] {run.name}: test {test} ({summary['wall_time_s']:.1f}s)"

    def line(self) -> str | None:
        """``[k/N runs] NAME step S/TOTAL, ETA 1m05s · …`` for the runs in progress (None if none)."""
        parts = []
        for run in self.runs:
            if run.name in self.done:
                continue
            last = _last_record(self.out_dir / run.name / "timing.jsonl")
            if last is None or not last.get("step"):
                continue
            step, total = int(last["step"]), self.steps.get(run.name)
            text = f"{run.name} step {step:,}" + (f"/{total:,}" if total else "")
            if total and last.get("time_s"):
                text += f", ETA {duration_text(float(last['time_s']) / step * (total - step))}"
            parts.append(text)
        if not parts:
            return None
        return f"[{len(self.done)}/{len(self.runs)} runs] " + " · ".join(parts)


def _last_record(path: Path) -> dict[str, Any] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
    return None


def train_runs(
    out_dir: Path,
    runs: list[RunSpec],
    *,
    steps: dict[str, int | None] | None = None,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    checked: bool = False,
    costs: dict[str, float] | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    """Train ``runs`` into ``out_dir/<name>``, in parallel processes when there are cores to spare;
    stop at the first failure, naming it. ``progress`` receives the progress lines. ``checked``:
    :func:`check_runs` has probed every recipe of ``runs`` already (each run then skips its own
    start-up probe). ``costs`` (from :func:`check_runs`): with several workers the runs start longest
    first; one worker keeps the given order. Returns the summaries by ``(key, seed)``."""
    workers = max(1, min(jobs or default_jobs(), len(runs)))
    summaries: dict[tuple[str, int], dict[str, Any]] = {}
    report = Progress(out_dir, runs, steps or {}, progress or (lambda line: None))

    def finish(run: RunSpec, summary: dict[str, Any]) -> None:
        summaries[run.key, run.seed] = _check(run, summary, out_dir / run.name)
        if progress:
            progress(report.finished(run, summary))

    with report:
        if workers == 1:
            for run in runs:
                finish(run, _train_one(run.recipe, str(out_dir / run.name), None, not checked))
            return summaries
        # small models do not use two cores well: run independent jobs side by side, one thread
        # each (a run's numbers depend on its thread count, which its summary records)
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        if costs:
            runs = longest_first(runs, costs)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {
                pool.submit(_train_one, run.recipe, str(out_dir / run.name), threads, not checked): run for run in runs
            }
            try:
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # fail fast: the queued runs never start
                raise
    return summaries


def budget(steps: int) -> dict[str, Any]:
    """Overrides for ``steps`` optimiser steps with no evaluation or checkpoint before the last step
    (so the run's wall time is training time)."""
    return {"budget.steps": steps, "eval.every": steps, "checkpoint.every": steps, "log.every": max(1, steps // 40)}


# -- reusing finished runs -----------------------------------------------------------------------------
REUSABLE_STATUS = ("completed", "early_stopped")  # a stop on the wall clock depends on the machine: trained again
_NOT_COPIED = shutil.ignore_patterns(".lock", ".tmp-*", ".old-*")  # a run's lock; what a killed write leaves


def training_key(recipe: dict[str, Any]) -> str:
    """What decides what a run trains, as one string: its recipe (seed included) with the name and
    the description set aside."""
    return json.dumps({**recipe, "name": "", "description": ""}, sort_keys=True)


def scan_finished(sources: Sequence[str | Path]) -> tuple[dict[str, Path], dict[str, tuple[Path, str]]]:
    """The finished runs in ``sources`` by :func:`training_key`: (reusable runs' dirs, and for a key
    with none of those, a damaged run's dir and why it cannot be reused). Each source is a run dir, or
    a directory whose children or grandchildren are (an experiment's or compare's dir, a runs dir);
    dirs are absolute. A finished run has ``recipe.yaml`` and a ``summary.json`` whose status is one
    of ``REUSABLE_STATUS``; a run whose recipe no longer validates is passed over. A finished run is
    reusable when it holds exactly the checkpoints its training kept (:func:`kept_checkpoints`) and
    each verifies against its manifest (``best`` too, when there is one): an experiment's analysis
    reads them after its directory exists. The first found wins. Raises ConfigError for a source
    that is not a directory."""
    found: dict[str, Path] = {}
    damaged: dict[str, tuple[Path, str]] = {}
    for source in sources:
        root = Path(source)
        if not root.is_dir():
            raise ConfigError(f"--reuse {source}: not a directory; give a run dir, an experiment's dir or a runs dir")
        root = root.resolve()  # experiment.json names the sources: relative to nothing later
        summaries = [root / "summary.json", *root.glob("*/summary.json"), *root.glob("*/*/summary.json")]
        for summary_path in sorted(summaries):
            run_dir = summary_path.parent
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
                if summary.get("status") not in REUSABLE_STATUS:
                    continue
                recipe = load_recipe(run_dir / "recipe.yaml")
                key = training_key(recipe_to_dict(recipe))
                steps = int(summary["steps"])
            except (OSError, ValueError, KeyError, TypeError, ArchlabError):
                continue  # not a finished archlab run, or one this version cannot read
            if key in found:
                continue
            flaw = _checkpoint_flaw(run_dir, recipe, steps)
            if flaw is None:
                found[key] = run_dir
                damaged.pop(key, None)
            else:
                damaged.setdefault(key, (run_dir, flaw))
    return found, damaged


def kept_checkpoints(recipe: Recipe, steps: int) -> list[str]:
    """The step checkpoints a run of ``recipe`` that ended after ``steps`` optimiser steps (completed
    or early-stopped) holds, newest first: the trainer saves every ``checkpoint.every`` steps before
    the last and at the last (``Trainer._fit``), and keeps the newest ``checkpoint.keep_last``."""
    every = recipe.checkpoint.every
    saved = [*(range(every, steps, every) if every else ()), steps]
    return [ckpt.step_dir_name(s) for s in reversed(saved)][: recipe.checkpoint.keep_last]


def _checkpoint_flaw(run_dir: Path, recipe: Recipe, steps: int) -> str | None:
    """Why the finished run at ``run_dir`` cannot be reused for its checkpoints, or None."""
    root = run_dir / "checkpoints"
    have, want = [p.name for p in ckpt.step_dirs(root)], kept_checkpoints(recipe, steps)
    if have != want:
        return f"it holds checkpoints [{', '.join(have)}], its training kept [{', '.join(want)}]"
    for name in [*have, *(["best"] if (root / "best").is_dir() else [])]:
        try:
            ckpt.verify_checkpoint(root / name)
        except CheckpointError as e:
            return str(e)
    return None


def match_finished(
    runs: list[RunSpec], sources: Sequence[str | Path], notice: Callable[[str], None] | None = None
) -> dict[str, Path]:
    """For each of ``runs`` whose recipe a reusable finished run in ``sources`` trained exactly (name
    and description aside), that run's dir, by run name; ``notice`` hears of each run that only a
    damaged run matched (it trains again). Raises ConfigError as :func:`scan_finished`."""
    if not sources:
        return {}
    found, damaged = scan_finished(sources)
    if notice:
        for run in runs:
            if (k := training_key(run.recipe)) in damaged:
                where, why = damaged[k]
                notice(f"{run.name}: not reusing {where} (the same recipe): {why}; it trains again")
    return {run.name: found[k] for run in runs if (k := training_key(run.recipe)) in found}


def adopt(source: Path, run_dir: Path) -> dict[str, Any]:
    """Put a copy of the finished run ``source`` at ``run_dir`` and return its summary (its ``run_dir``
    set to the copy's). Checkpoint files
    are hard links where the file system allows (they are only ever replaced whole, never written
    in place); the logs, recipe and summary are copied, so resuming one copy never changes the other."""

    def link_or_copy(src: str, dst: str) -> None:
        if "checkpoints" in Path(src).relative_to(source).parts:
            try:
                os.link(src, dst)
                return
            except OSError:
                pass  # another file system, or links not allowed: copy
        shutil.copy2(src, dst)

    shutil.copytree(source, run_dir, ignore=_NOT_COPIED, copy_function=link_or_copy)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    summary["run_dir"] = str(run_dir)  # the copy's own dir, not its source's (a new file: the source's is untouched)
    atomic_write_json(run_dir / "summary.json", summary)
    return summary
