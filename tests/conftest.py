import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
