"""CycleGAN and unpaired translation (issue 12 §1, §3): the losses on hand cases, the history buffer,
the two-domain set's pairing, the networks' shapes and receptive field, resume with the buffer as task
state, paired runs saved by the older version that built discriminators, and bad input as one line."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from archlab import create_model
from archlab.cli import main
from archlab.config import load_recipe
from archlab.data import load_dataset
from archlab.data.translation import apply_transform, partition, sobel_magnitude
from archlab.engine import Trainer, load_run
from archlab.models.gan.cyclegan import PatchDiscriminator, patch_receptive_field
from archlab.tasks.cyclegan import CycleGANTask, ImagePool, l1, lsgan_d_loss, lsgan_g_loss
from archlab.utils.io import sha256_file

TINY_MODEL = {"name": "cyclegan", "ngf": 4, "ndf": 4, "n_blocks": 1}


def tiny_cyclegan(**changes) -> dict:
    recipe = {
        "name": "tiny-cyclegan",
        "model": dict(TINY_MODEL),
        "data": {"name": "digits_translation", "batch_size": 4, "eval_batch_size": 100, "test_subset": 50},
        "task": {"name": "cyclegan", "options": {"pool_size": 4}},
        "optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
        "budget": {"steps": 8},
        "eval": {"every": 8},
        "checkpoint": {"every": 4, "keep_last": 4},
        "log": {"every": 1, "tensorboard": False, "progress": False},
        "seed": 5,
    }
    for dotted, value in changes.items():
        cur = recipe
        *parents, last = dotted.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return recipe


# -- the losses on hand cases ----------------------------------------------------------------------------
def test_least_squares_losses_by_hand():
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.25])
    # ½ (mean((r − 1)²) + mean(f²)) = ½ ((0 + 0.25)/2 + (0 + 0.0625)/2)
    assert float(lsgan_d_loss(real, fake)) == pytest.approx(0.5 * (0.125 + 0.03125))
    assert float(lsgan_d_loss(torch.ones(3), torch.zeros(3))) == 0.0  # the discriminator's optimum
    assert float(lsgan_g_loss(fake)) == pytest.approx((1.0 + 0.5625) / 2)
    assert float(l1(torch.tensor([0.0, 1.0]), torch.tensor([0.5, -1.0]))) == pytest.approx(1.25)


class _Map(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _hand_model(g, f, d_a: float, d_b: float) -> nn.Module:
    m = nn.Module()
    m.generator = nn.ModuleDict({"G": _Map(g), "F": _Map(f)})
    m.discriminator = nn.ModuleDict(
        {"D_A": _Map(lambda x: torch.full_like(x, d_a)), "D_B": _Map(lambda x: torch.full_like(x, d_b))}
    )
    return m


def _task(**options) -> CycleGANTask:
    from archlab.config import TaskSpec
    from archlab.data import dataset_info

    return CycleGANTask(TaskSpec(name="cyclegan", options=options), dataset_info("digits_translation"))


def test_generator_objective_on_hand_cases():
    """L_G = L_adv + λ L_cyc + 0.5λ L_idt with λ = 10 (Zhu et al. Eq. 3, §5.2)."""
    a = torch.tensor([[-1.0, 0.5]]).view(1, 1, 1, 2)
    b = torch.tensor([[0.2, -0.6]]).view(1, 1, 1, 2)
    # the true inversion (1 − x in data units is −x̃ in [−1, 1]): cycles exact, identity |−x − x| = 2|x|
    t = _task().generator_losses(_hand_model(torch.neg, torch.neg, d_a=0.25, d_b=0.75), a, b)
    assert float(t["adv"]) == pytest.approx((0.75 - 1) ** 2 + (0.25 - 1) ** 2)
    assert float(t["cycle"]) == 0.0
    assert float(t["identity"]) == pytest.approx(2 * 0.4 + 2 * 0.75)  # E|2b| + E|2a|
    assert float(t["g_loss"]) == pytest.approx(0.625 + 0.0 + 0.5 * 10 * 2.3)
    # identity maps: no identity loss, cycle exact, adversarial terms at the scores
    t = _task(lambda_cycle=3.0, lambda_identity=0.0).generator_losses(
        _hand_model(lambda x: x, lambda x: x, 1.0, 0.0), a, b
    )
    assert "identity" not in t and float(t["g_loss"]) == pytest.approx(1.0)  # (0 − 1)² + (1 − 1)²
    # a shift G(x) = x + 0.1, F(x) = x − 0.3: every cycle is off by 0.2
    t = _task().generator_losses(_hand_model(lambda x: x + 0.1, lambda x: x - 0.3, 1.0, 1.0), a, b)
    assert float(t["cycle"]) == pytest.approx(0.4) and float(t["identity"]) == pytest.approx(0.4)
    assert float(t["g_loss"]) == pytest.approx(10 * 0.4 + 5 * 0.4)


# -- the history buffer --------------------------------------------------------------------------------------
def test_history_buffer_fills_then_returns_the_new_image_half_the_time():
    pool, g = ImagePool(5), torch.Generator().manual_seed(0)
    first = torch.arange(3.0).view(3, 1)
    assert torch.equal(pool.query(first, g), first)  # filling: every image passes and is kept
    out = pool.query(torch.tensor([[3.0], [4.0], [5.0]]), g)
    assert out[:2].flatten().tolist() == [3.0, 4.0] and len(pool) == 5  # full after image 4
    new_returned, n = 0, 4000
    for k in range(n):  # once full: p = ½ the new image, else a stored one, which the new one replaces
        before = pool.images.flatten().tolist()
        img = torch.tensor([[100.0 + k]])
        got = float(pool.query(img, g))
        after = pool.images.flatten().tolist()
        if got == 100.0 + k:
            new_returned += 1
            assert after == before
        else:
            assert got in before and sorted(after) == sorted([v for v in before if v != got] + [100.0 + k])
    assert abs(new_returned / n - 0.5) < 0.025  # 3.2 σ of a fair coin over 4000 draws
    assert torch.equal(ImagePool(0).query(first, g), first)  # size 0: no history


def test_history_buffer_state_round_trips():
    pool = ImagePool(4)
    pool.query(torch.randn(6, 1, 2, 2), torch.Generator().manual_seed(1))
    copy = ImagePool(4)
    copy.load_state_dict(pool.state_dict())
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x, torch.Generator().manual_seed(2)), copy.query(x, torch.Generator().manual_seed(2)))
    assert torch.equal(pool.images, copy.images)


# -- the two-domain set ----------------------------------------------------------------------------------------
def test_train_halves_are_disjoint_and_test_pairs_exact():
    val, half_a, half_b = partition(60000)  # Fashion-MNIST's training split: index arithmetic only
    assert (len(val), len(half_a), len(half_b)) == (2000, 29000, 29000)
    assert len(set(val.tolist()) | set(half_a.tolist()) | set(half_b.tolist())) == 60000
    base = load_dataset("digits", "train").x
    val, half_a, half_b = partition(len(base))
    assert not set(half_a.tolist()) & set(half_b.tolist()) and not set(val.tolist()) & set(half_a.tolist())
    for transform in ("invert", "edges"):
        opts = {"transform": transform}
        train = load_dataset("digits_translation", "train", options=opts)
        assert torch.equal(train.x, base[half_a]) and torch.equal(train.y, apply_transform(base[half_b], transform))
        paired = load_dataset("digits_translation", "train", options={**opts, "paired": True})
        assert torch.equal(paired.x, train.x) and torch.equal(paired.y, apply_transform(train.x, transform))
        for split in ("val", "test"):
            ds = load_dataset("digits_translation", split, options=opts)
            assert torch.equal(ds.y, apply_transform(ds.x, transform))
    test = load_dataset("digits_translation", "test")
    assert torch.equal(test.x, load_dataset("digits", "test").x) and torch.equal(test.y, 1 - test.x)


def test_edge_map_is_skimage_sobel():
    from skimage.filters import sobel

    x = load_dataset("digits", "test").x[:6].double()
    ours = sobel_magnitude(x)[:, 0].numpy()
    assert np.abs(ours - np.stack([sobel(img[0]) for img in x.numpy()])).max() < 1e-12


# -- the networks --------------------------------------------------------------------------------------------
def test_shapes_translate_and_the_patch_receptive_field():
    torch.manual_seed(0)
    model = create_model("cyclegan", **{k: v for k, v in TINY_MODEL.items() if k != "name"}, in_shape=(1, 8, 8))
    a = torch.rand(3, 1, 8, 8)
    out = model(a)
    assert out.fake_b.shape == out.rec_a.shape == a.shape and out.score_fake_b.shape == (3, 1, 2, 2)
    fake_b = model.translate(a, "a2b")
    assert torch.equal(fake_b, out.fake_b.detach()) and float(fake_b.min()) > 0 and float(fake_b.max()) < 1
    assert model.translate(a, "b2a").shape == a.shape and model.training  # the mode is restored
    with pytest.raises(ValueError, match="'a2c' is not 'a2b'"):
        model.translate(a, "a2c")
    # without the discriminators (task translation_paired): the same G and F (the same init), no scores, and
    # the module docstring's 2·269,377 parameters at the default size
    torch.manual_seed(0)  # as `model` above
    tiny = {k: v for k, v in TINY_MODEL.items() if k != "name"}
    alone = create_model("cyclegan", **tiny, in_shape=(1, 8, 8), discriminators=False)
    assert len(alone.discriminator) == 0 and alone(a)[2:] == (None, None)
    same_init = zip(alone.generator.parameters(), model.generator.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in same_init)
    assert sum(p.numel() for p in create_model("cyclegan", discriminators=False).parameters()) == 538_754
    # the paper's PatchGAN (L = 3) sees 70×70 patches and scores a 256×256 image with a 30×30 map
    assert [patch_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    assert PatchDiscriminator(1, ndf=2, d_layers=3)(torch.zeros(1, 1, 256, 256)).shape == (1, 1, 30, 30)
    # measured: through the convolutions, one score of the 28×28 model (L = 1) reads exactly a 16×16 patch
    # (instance norm's statistics are over the whole map, so with them in place every pixel counts a little)
    d = create_model("cyclegan", ndf=4).D_A
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    d(x)[0, 0, 6, 6].backward()
    assert int((x.grad != 0).sum()) == 28 * 28
    x.grad = None
    convs_only = nn.Sequential(*(nn.Identity() if isinstance(m, nn.InstanceNorm2d) else m for m in d.net))
    convs_only(x)[0, 0, 6, 6].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    assert (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1) == (16, 16)


def test_init_is_normal_002_and_instance_norm_has_no_parameters():
    model = create_model("cyclegan")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(float(w.detach().std()) - 0.02) < 0.001 and all(float(m.bias.detach().abs().max()) == 0 for m in convs)
    norms = [m for m in model.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)


# -- training, resume and bad input -------------------------------------------------------------------------
def test_resume_from_a_checkpoint_is_bit_identical_with_the_history_as_task_state(tmp_path):
    """Resume at step 4 (the 4-image history full since step 1, replacing since) reproduces the
    uninterrupted run bit for bit — weights, optimiser state, the history and every logged number."""
    recipe = load_recipe(tiny_cyclegan())
    ref = Trainer(recipe, runs_dir=tmp_path / "ref", quiet=True).fit()
    ref_dir = Path(ref["run_dir"])
    run = tmp_path / "cut" / ref_dir.name
    shutil.copytree(ref_dir, run)
    shutil.rmtree(run / "checkpoints" / "step-00000008")  # as if killed after the step-4 checkpoint
    (run / "summary.json").unlink()
    lines = (ref_dir / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:4]) + "\n")
    pools = load_file(ref_dir / "checkpoints" / "step-00000004" / "task.safetensors")
    assert {k: v.shape[0] for k, v in pools.items()} == {"pools/fake_a/images": 4, "pools/fake_b/images": 4}
    trainer = Trainer.resume(run, quiet=True)
    # restored at once, before fit(): the task's history is the step-4 checkpoint's
    assert trainer.step == 4 and all(
        torch.equal(trainer.task.pools[k].images, pools[f"pools/{k}/images"]) for k in ("fake_a", "fake_b")
    )
    trainer.fit()
    last = Path("checkpoints") / "step-00000008"
    for name in ("model.safetensors", "optimizer.safetensors", "task.safetensors"):
        a, b = load_file(ref_dir / last / name), load_file(run / last / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert (ref_dir / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    assert {"g_loss", "cycle", "identity", "d_loss"} <= set(yaml.safe_load(lines[0]))
    test_a = load_dataset("digits", "test").x[:50]
    assert ref["test"]["identity_l1"] == pytest.approx(float((1 - 2 * test_a).abs().mean()))  # |a − (1 − a)|


def _resave_weights(checkpoint: Path, add: dict[str, torch.Tensor], drop: tuple[str, ...] = ()) -> None:
    """Rewrite a checkpoint's model.safetensors with tensors ``add``ed and ``drop``ped, and its
    manifest to match (a checkpoint a version of the code that saved other tensors wrote)."""
    path = checkpoint / "model.safetensors"
    tensors = {k: v for k, v in load_file(path).items() if k not in drop}
    save_file({**tensors, **add}, str(path))
    manifest = json.loads((checkpoint / "MANIFEST.json").read_text())
    manifest["files"]["model.safetensors"] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    (checkpoint / "MANIFEST.json").write_text(json.dumps(manifest))


def test_a_paired_run_saved_with_untrained_discriminators_loads_dropping_exactly_those(tmp_path, capsys, caplog):
    """Before commit bb1d42f task translation_paired built D_A and D_B and saved them untrained. Such a
    run still evaluates, samples and resumes: the loader drops exactly the tensors under the task's
    retired prefixes (one notice) and G and F are the saved ones; any other unexpected or missing
    tensor still fails as one line, exit 2."""
    changes = {"task": {"name": "translation_paired"}, "data.options": {"paired": True}, "budget.steps": 2}
    changes |= {"checkpoint.every": 2, "eval.every": 2}
    ref = Trainer(load_recipe(tiny_cyclegan(**changes)), runs_dir=tmp_path / "runs", quiet=True).fit()
    run = Path(ref["run_dir"])
    last = run / "checkpoints" / "step-00000002"
    trained = load_file(last / "model.safetensors")
    tiny = {k: v for k, v in TINY_MODEL.items() if k != "name"}
    discriminators = create_model("cyclegan", **tiny).discriminator.state_dict()  # what the old model carried
    untrained = {f"discriminator.{k}": v.clone() for k, v in discriminators.items()}
    assert len(untrained) == 12 and {k.split(".")[1] for k in untrained} == {"D_A", "D_B"}
    for checkpoint in (run / "checkpoints").iterdir():
        _resave_weights(checkpoint, untrained)
    assert set(load_file(last / "model.safetensors")) == set(trained) | set(untrained)

    with caplog.at_level(logging.WARNING, logger="archlab"):
        loaded = load_run(run, checkpoint="last")
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "dropped 12 tensors under discriminator.D_A., discriminator.D_B., which an older version" in notices[0]
    weights = loaded.model.state_dict()
    assert weights.keys() == trained.keys() and all(torch.equal(weights[k], trained[k]) for k in trained)
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert {k: evaluated[k] for k in ref["test"]} == ref["test"]
    assert main(["sample", str(run), "--n", "4"]) == 0 and (run / "figures" / "gen-translation.png").exists()
    # resuming restores the saved G, F and their optimiser state from the old checkpoint
    cut = tmp_path / "cut" / run.name
    shutil.copytree(run, cut)
    (cut / "summary.json").unlink()
    trainer = Trainer.resume(cut, quiet=True)
    weights = trainer.model.state_dict()
    assert trainer.step == 2 and all(torch.equal(weights[k], trained[k]) for k in trained)
    assert trainer.optimizers["generator"].state_dict()["state"]  # Adam's moments, restored

    # anything else still fails: a tensor under another prefix, a tensor the model needs and lacks
    some = sorted(trained)[0]
    for add, drop, message in (
        ({"discriminator.D_C.net.0.bias": torch.zeros(4)}, (), "unexpected ['discriminator.D_C.net.0.bias']"),
        ({}, (some,), f"(missing ['{some}'], unexpected [])"),
    ):
        bad = tmp_path / "bad" / run.name
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(run, bad)
        for checkpoint in (bad / "checkpoints").iterdir():
            _resave_weights(checkpoint, add, drop)
        capsys.readouterr()
        assert main(["eval", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("archlab: error: ") and "\n" not in err and message in err, err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task.options.pool_size=-1"], "task.options.pool_size: -1 is outside 0 … 10,000"),
        (["task.options.lambda_cycle=-2"], "task.options.lambda_cycle: -2.0 < 0"),
        (["data.options.transform=blur"], "data.options.transform: 'blur' is not one of invert, edges"),
        (["data.val_fraction=0.1"], "data.val_fraction: dataset 'digits_translation' ships a validation split"),
        (["task.name=translation_paired"], "task 'translation_paired' trains on true pairs"),
        (
            ["task={name: translation_paired}", "data.options.paired=true", "model.discriminators=true"],
            "model.discriminators: task 'translation_paired' trains G and F alone",
        ),
        (["model={name: mlp}"], "model.name: 'mlp' is not a two-generator translation model"),
        (["model.in_shape=[1,6,6]"], "in_shape (1, 6, 6): the generator halves H and W twice"),
        (
            ["model.in_shape=[1,12,12]"],
            "model.in_shape: (1, 12, 12) does not match data set 'digits_translation' (1, 8, 8)",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys, overrides, message):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_cyclegan()))
    rc = main(["train", str(path), *overrides, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and message in err, err
    assert not (tmp_path / "runs").exists()
