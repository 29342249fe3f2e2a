import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread for the tests and every process they start: the suite's tensors are small
# (threads only add overhead), and the long training checks below run on the other core. Two
# threads here fought that background run for the cores and made the compute-heavy tests 3-5x slower
# (the quick efficient-scaling experiment: 314 s in the suite, 77 s alone with one thread).
# ARCHLAB_TEST_THREADS=N sets another count.
os.environ["OMP_NUM_THREADS"] = os.environ.get("ARCHLAB_TEST_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]


def tiny_recipe(**changes) -> dict:
    """A few-second classification recipe on scikit-learn digits (dropout consumes the RNG)."""
    recipe = {
        "name": "tiny",
        "model": {"name": "mlp", "depth": 2, "width": 32, "dropout": 0.2},
        "data": {"name": "digits", "batch_size": 32, "val_fraction": 0.1},
        "task": {"name": "classification"},
        "optim": {"name": "adamw", "lr": 3.0e-3, "weight_decay": 0.01},
        "schedule": {"name": "cosine", "warmup_steps": 5},
        "budget": {"steps": 60},
        "eval": {"every": 10},
        "checkpoint": {"every": 4, "keep_last": 2},
        "log": {"every": 3, "tensorboard": False, "progress": False},
        "seed": 7,
    }
    for dotted, value in changes.items():
        cur = recipe
        *parents, last = dotted.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return recipe


@pytest.fixture
def write_recipe(tmp_path):
    def _write(**changes) -> Path:
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(tiny_recipe(**changes)))
        return path

    return _write


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    """Run ``python -m archlab ARGS`` in a fresh process; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("ARCHLAB_FAULT", None) if not env or "ARCHLAB_FAULT" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "archlab", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture
def quick_experiment(tmp_path, capsys):
    """``quick_experiment(name, *cli_args)`` runs ``archlab experiment NAME --quick`` in ``tmp_path``
    and checks what every experiment must write; returns (experiment dir, experiment.json record)."""
    import json

    from archlab.cli import main

    def run(name: str, *extra: str):
        assert main(["experiment", name, "--quick", "--jobs", "1", "--runs-dir", str(tmp_path), *extra]) == 0
        assert "verdict" in capsys.readouterr().out
        exp = next(Path(tmp_path).iterdir())
        rec = json.loads((exp / "experiment.json").read_text())
        assert rec["name"] == name and rec["quick"] is True
        for fig in rec["figures"]:
            assert (exp / fig).stat().st_size > 1000
        assert "data:image/png;base64," in (exp / "report.html").read_text()
        return exp, rec

    return run


# -- long training checks, trained in the background while the rest of the suite runs -------------
# Most of the suite keeps one core busy (small tensors, Python); a slow check marked
# ``@pytest.mark.background_run("train", "RECIPE", "key=value", ...)`` has its `archlab ARGS
# --runs-dir DIR` started, one thread, when collection ends, and its test (fixture
# ``background_run``) waits for the result. The commands run one after another, in the order of the
# tests, on the otherwise idle core.


def pytest_configure(config):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    config.addinivalue_line(
        "markers",
        "background_run(*args): run `archlab ARGS --runs-dir DIR` with one thread in the background from the end "
        "of collection; the test reads the result through the background_run fixture",
    )


class BackgroundRuns:
    def __init__(self, jobs: dict[str, tuple[str, ...]]):
        self.root = Path(tempfile.mkdtemp(prefix="archlab-bg-"))
        self.jobs = jobs  # test node id -> archlab arguments
        self.done = {k: threading.Event() for k in jobs}
        self.results: dict[str, tuple[subprocess.CompletedProcess, Path]] = {}
        self.stop = False
        self.proc: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._run_all, daemon=True)
        self.thread.start()

    def _run_all(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("ARCHLAB_FAULT", None)
        for i, (key, args) in enumerate(self.jobs.items()):
            runs = self.root / f"run{i}"
            argv = [sys.executable, "-m", "archlab", *args, "--runs-dir", str(runs)]
            try:
                if not self.stop:
                    self.proc = subprocess.Popen(
                        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                    )
                    out, err = self.proc.communicate()
                    self.results[key] = (subprocess.CompletedProcess(argv, self.proc.returncode, out, err), runs)
            finally:
                self.done[key].set()

    def result(self, key: str, timeout: float) -> tuple[subprocess.CompletedProcess, Path]:
        assert self.done[key].wait(timeout), f"the background run of {key} did not finish in {timeout:.0f} s"
        return self.results[key]

    def close(self) -> None:
        self.stop = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


_BACKGROUND = pytest.StashKey[BackgroundRuns]()


def pytest_collection_modifyitems(config, items):
    """The tests that wait for a background run go last (in their order): the rest of the suite runs while
    they train, so the suite's wall time is max(foreground, background), not the foreground up to the
    first waiting test plus the wait plus everything collected after it."""
    waiting = [item for item in items if item.get_closest_marker("background_run") is not None]
    if waiting:
        items[:] = [item for item in items if item.get_closest_marker("background_run") is None] + waiting


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    jobs = {}
    for item in session.items:
        mark = item.get_closest_marker("background_run")
        if mark is not None:
            jobs[item.nodeid] = tuple(mark.args)
    if jobs:
        session.config.stash[_BACKGROUND] = BackgroundRuns(jobs)


def pytest_sessionfinish(session):
    runs = session.config.stash.get(_BACKGROUND, None)
    if runs is not None:
        runs.close()


@pytest.fixture
def background_run(request):
    """``background_run(timeout)`` → (CompletedProcess of the `archlab` command, its runs dir) for this
    test's ``background_run`` mark (started when collection ended)."""

    def wait(timeout: float = 1800) -> tuple[subprocess.CompletedProcess, Path]:
        return request.config.stash[_BACKGROUND].result(request.node.nodeid, timeout)

    return wait
