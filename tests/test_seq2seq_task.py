"""The seq2seq task's scheduled-sampling coins follow the run's seed and step (issue 9 §1).

Before, every run drew its coins from a generator seeded by the step alone, so all seeds of a compare
fed the model's own predictions at the same positions. A recording model double captures the
generator the task hands to the model and draws from it.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.config import TaskSpec, load_recipe
from archlab.data import dataset_info, load_dataset
from archlab.tasks import build_task

DATA = "num2words_en_digits"


class _CoinRecorder(nn.Module):
    """Records 32 uniform draws of the generator it is handed (None when there is none)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.w = vocab, nn.Parameter(torch.zeros(1))
        self.coins: list[torch.Tensor | None] = []

    def forward(self, x, lengths, tgt_in, teacher_forcing=1.0, generator=None):
        self.coins.append(None if generator is None else torch.rand(32, generator=generator))
        return self.w + torch.zeros(*tgt_in.shape, self.vocab)


def _coins(seed: int, step: int, teacher_forcing: float = 0.5) -> torch.Tensor | None:
    info = dataset_info(DATA)
    task = build_task(TaskSpec(name="seq2seq", options={"teacher_forcing": teacher_forcing}), info, seed=seed)
    task.set_progress(step, 100)
    ds = load_dataset(DATA, "test")
    model = _CoinRecorder(info.num_classes).train()
    loss, _ = task.training_loss(model, ds[:4])  # a Batch with x, y and lengths
    assert torch.isfinite(loss)
    return model.coins[-1]


def test_scheduled_sampling_coins_depend_on_the_run_seed_and_the_step():
    a = _coins(seed=0, step=10)
    assert torch.equal(a, _coins(seed=0, step=10))  # reproducible, and so the same after a resume at step 10
    assert not torch.equal(a, _coins(seed=1, step=10))  # another seed of a compare flips other coins
    assert not torch.equal(a, _coins(seed=0, step=11))  # and every step its own
    assert _coins(seed=0, step=10, teacher_forcing=1.0) is None  # plain teacher forcing draws nothing


def test_trainer_and_load_run_hand_the_run_seed_to_the_task(tmp_path):
    from archlab.cli import main
    from archlab.engine import Trainer, load_run

    overrides = {"seed": 5, "model.hidden_size": 8, "model.embed_dim": 8, "budget.steps": 2}
    overrides |= {"eval.every": 2, "checkpoint.every": 2, "data.test_subset": 8, "log.tensorboard": False}
    assert Trainer(load_recipe(f"{DATA}/seq2seq_bahdanau", overrides), runs_dir=tmp_path / "t").task.seed == 5
    args = [f"{k}={v}".replace("False", "false") for k, v in overrides.items()]
    assert main(["train", f"{DATA}/seq2seq_bahdanau", *args, "--runs-dir", str(tmp_path / "r")]) == 0
    (run_dir,) = (tmp_path / "r").iterdir()
    assert load_run(run_dir).task.seed == 5
