"""Trainer features: accumulation, early stopping, budgets, precision, optimisers, custom steps."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from archlab.config import load_recipe
from archlab.engine import Trainer
from archlab.engine import checkpoint as ckpt
from conftest import tiny_recipe


def _weights(summary) -> dict[str, torch.Tensor]:
    last = ckpt.step_dirs(Path(summary["run_dir"]) / "checkpoints")[0]
    return load_file(last / "model.safetensors")


def _fit(tmp_path, **changes):
    return Trainer(load_recipe(tiny_recipe(**changes)), runs_dir=tmp_path).fit()


def test_gradient_accumulation_matches_the_large_batch(tmp_path):
    common = {
        "model.dropout": 0.0,
        "budget.steps": 6,
        "optim.weight_decay": 0.0,
        "schedule.name": "constant",
        "schedule.warmup_steps": 0,
    }
    big = _fit(tmp_path / "a", **common, **{"data.batch_size": 32})
    acc = _fit(tmp_path / "b", **common, **{"data.batch_size": 16, "optim.accum_steps": 2})
    wa, wb = _weights(big), _weights(acc)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    assert big["steps"] == acc["steps"] == 6


def test_early_stopping_and_restore_best(tmp_path):
    # min_delta larger than any possible gain: only the first evaluation counts as an improvement
    s = _fit(
        tmp_path,
        **{
            "eval.every": 5,
            "eval.early_stopping.patience": 2,
            "eval.early_stopping.min_delta": 2.0,
            "eval.restore_best": True,
        },
    )
    assert s["status"] == "early_stopped" and s["steps"] == 15
    assert s["best"]["step"] == 5
    lines = [json.loads(x) for x in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "val"] == [5, 10, 15]


def test_early_stopping_needs_validation(tmp_path):
    from archlab.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="eval.early_stopping.patience: needs a validation split"):
        _fit(tmp_path, **{"data.val_fraction": 0.0, "eval.early_stopping.patience": 2})


def test_time_and_epoch_budgets(tmp_path):
    s = _fit(
        tmp_path / "t", **{"budget": {"steps": 10_000_000, "seconds": 0.5}, "checkpoint.every": 1000, "eval.every": 1}
    )
    assert s["status"] == "time_budget" and 0 < s["steps"] < 10_000_000
    evals = [
        json.loads(x)["step"]
        for x in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["split"] == "val"
    ]
    assert evals == list(range(1, s["steps"] + 1))  # every step evaluated once: no repeated final evaluation
    s = _fit(tmp_path / "e", **{"budget": {"epochs": 2}})
    assert s["steps"] == 50 and s["epochs"] == pytest.approx(2.0)  # 808 examples / 32 = 25 steps per epoch


@pytest.mark.parametrize(
    "optim",
    [
        {"name": "sgd", "momentum": 0.9, "nesterov": True, "lr": 0.1},
        {"name": "adam", "lr": 1e-2},
        {"name": "adamw", "lr": 1e-2},
    ],
)
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "linear"])
def test_optimisers_and_schedules_learn(tmp_path, optim, schedule):
    s = _fit(
        tmp_path,
        **{
            "optim": optim,
            "schedule.name": schedule,
            "schedule.step_size": 50,
            "schedule.gamma": 0.5,
            "budget.steps": 150,
            "checkpoint.every": None,
            "model.dropout": 0.0,
        },
    )
    assert s["test"]["accuracy"] > 0.8, (optim, schedule, s["test"])


def test_weight_decay_skips_biases():
    from archlab.config import OptimSpec
    from archlab.engine.optim import build_optimizer
    from archlab.registry import create_model

    model = create_model("mlp", batch_norm=True)
    opt = build_optimizer(list(model.parameters()), OptimSpec(weight_decay=0.1))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_lr_follows_the_schedule_in_the_log(tmp_path):
    s = _fit(tmp_path, **{"schedule": {"name": "linear", "warmup_steps": 0}, "log.every": 1, "budget.steps": 10})
    train = [json.loads(x) for x in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in train if r["split"] == "train"]
    assert lrs == pytest.approx([3e-3 * (1 - k / 10) for k in range(10)])


def test_bf16_and_channels_last_run(tmp_path):
    s = _fit(
        tmp_path,
        **{"precision": "bf16", "channels_last": True, "budget.steps": 150, "optim.lr": 1e-2, "model.dropout": 0.0},
    )
    assert s["test"]["accuracy"] > 0.8


@pytest.mark.parametrize("clip", [{"optim.grad_clip_norm": 1e-3}, {"optim.grad_clip_value": 1e-4}])
def test_gradient_clipping_bounds_each_update(tmp_path, clip):
    # plain SGD at lr 1: each step moves the weights by exactly the clipped gradient
    recipe = load_recipe(
        tiny_recipe(
            **{
                "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.0},
                "budget.steps": 5,
                "schedule": {"name": "constant"},
                "log.every": 1,
                **clip,
            }
        )
    )
    trainer = Trainer(recipe, runs_dir=tmp_path)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    s = trainer.fit()
    delta = [p.detach() - b for p, b in zip(trainer.model.parameters(), before)]
    if "optim.grad_clip_norm" in clip:
        assert torch.sqrt(sum(d.square().sum() for d in delta)) <= 5 * 1e-3 * (1 + 1e-4)
    else:
        assert max(float(d.abs().max()) for d in delta) <= 5 * 1e-4 * (1 + 1e-4)  # float32 rounding
    train = [json.loads(x) for x in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 1e-3 for r in train if r["split"] == "train")  # logged before clipping


def test_a_task_can_own_the_step(tmp_path, monkeypatch):
    """A task with its own step (as a GAN needs: several optimisers) is built and run by the same loop."""
    from archlab.tasks import TASKS, ClassificationTask

    calls = []

    class OwnStep(ClassificationTask):
        has_custom_step = True

        def custom_step(self, model, ctx):
            calls.append((ctx.step, sorted(ctx.optimizers), ctx.total_steps, ctx.seed, ctx.dry_run))
            loss, logs = self.training_loss(model, ctx.next_batch())
            ctx.zero_grad()
            ctx.backward(loss)
            ctx.clip_and_step("main")
            return {"loss": loss.detach()}

    monkeypatch.setitem(TASKS._entries, "classification", OwnStep)
    trainer = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 4})), runs_dir=tmp_path)
    assert isinstance(trainer.task, OwnStep)
    s = trainer.fit()
    # the start-up probe runs the custom step once as a dry run (no optimiser update), then four real steps
    assert [c[0] for c in calls] == [0, 0, 1, 2, 3] and calls[0][1] == ["main"]
    assert [c[4] for c in calls] == [True, False, False, False, False]
    assert all(c[2] == 4 and c[3] == 7 for c in calls)  # total_steps and the run's seed
    assert s["steps"] == 4


@pytest.mark.slow
def test_torch_compile_flag(tmp_path):
    s = _fit(tmp_path, **{"compile": True, "budget.steps": 100, "model.dropout": 0.0, "optim.lr": 1e-2})
    assert s["test"]["accuracy"] > 0.2
    # the checkpoint holds the unwrapped module's keys (no `_orig_mod.` prefix)
    assert all(not k.startswith("_orig_mod") for k in _weights(s))


def test_eval_mode_follows_the_metric(tmp_path):
    from archlab.tasks import higher_is_better

    assert higher_is_better("accuracy") and higher_is_better("r2")
    assert not higher_is_better("loss") and not higher_is_better("val/rmse")
    t = Trainer(load_recipe(tiny_recipe(**{"eval.metric": "loss"})), runs_dir=tmp_path)
    assert t.eval_mode == "min"
    assert Trainer(load_recipe(tiny_recipe()), runs_dir=tmp_path).eval_mode == "max"
    # a min-metric run keeps the checkpoint with the lowest validation loss
    s = t.fit()
    vals = [json.loads(x) for x in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    val_loss = {r["step"]: r["loss"] for r in vals if r["split"] == "val"}
    assert s["best"]["step"] == min(val_loss, key=val_loss.get)
