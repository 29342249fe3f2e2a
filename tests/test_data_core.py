"""Dataset registry, MNIST-1D regeneration, the resumable loader and augmentations."""

import numpy as np
import pytest
import torch

from archlab.data import Batch, BatchLoader, dataset_info, list_datasets, load_dataset, split_train_val
from archlab.data.core import ArrayDataset
from archlab.data.transforms import build_transform, hflip, random_crop, random_shift
from archlab.utils.errors import ConfigError, UnknownDatasetError


def test_registry_metadata():
    assert {"mnist1d", "mnist1d-shuffled", "digits", "diabetes", "fashion_mnist", "mnist", "cifar10"} <= set(
        list_datasets()
    )
    info = dataset_info("mnist1d")
    assert info.input_shape == (1, 40) and info.num_classes == 10 and info.splits == {"train": 4000, "test": 1000}
    assert info.reference["CNN"] == "94%" and info.licence
    with pytest.raises(UnknownDatasetError, match="did you mean: digits"):
        dataset_info("digit")


def test_mnist1d_is_the_published_split():
    tr, te = load_dataset("mnist1d", "train"), load_dataset("mnist1d", "test")
    assert tr.x.shape == (4000, 1, 40) and te.x.shape == (1000, 1, 40)
    counts = torch.bincount(torch.cat([tr.y, te.y]), minlength=10)
    assert counts.tolist() == [500] * 10  # 5000 examples, 500 per class
    # the published generator standardises the whole set (train + test) to mean 0, std 1
    allx = torch.cat([tr.x, te.x])
    assert abs(float(allx.mean())) < 1e-5 and abs(float(allx.std()) - 1) < 1e-3
    # first labels of the published split (seed 42)
    assert tr.y[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]


def test_mnist1d_generation_leaves_global_rng_alone():
    from archlab.data import signals

    signals._generate.cache_clear()
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    load_dataset("mnist1d-shuffled", "test")
    assert np.random.rand() == expected


def test_shuffled_variant_is_a_fixed_permutation_of_the_same_examples():
    a, b = load_dataset("mnist1d", "train"), load_dataset("mnist1d-shuffled", "train")
    assert torch.equal(a.y, b.y)
    # same multiset of values per example, different order
    assert torch.allclose(a.x.sort(-1).values, b.x.sort(-1).values, atol=1e-5)
    assert not torch.allclose(a.x, b.x)


def test_split_train_val_is_seeded_and_disjoint():
    ds = ArrayDataset(torch.arange(100).float()[:, None], torch.arange(100))
    tr, va = split_train_val(ds, 0.2, seed=3)
    tr2, va2 = split_train_val(ds, 0.2, seed=3)
    assert len(tr) == 80 and len(va) == 20 and torch.equal(va.y, va2.y) and torch.equal(tr.y, tr2.y)
    assert not set(tr.y.tolist()) & set(va.y.tolist())
    sub, _ = split_train_val(ds, 0.0, seed=0, subset=10)
    assert len(sub) == 10
    with pytest.raises(ConfigError, match="train_subset"):
        split_train_val(ds, 0.0, seed=0, subset=1000)


def test_loader_resumes_from_any_position():
    ds = ArrayDataset(torch.arange(50).float()[:, None], torch.arange(50))
    ref = BatchLoader(ds, 8, seed=1)
    seq = [ref.next().y.tolist() for _ in range(20)]  # crosses epoch boundaries (6 batches/epoch)
    assert len(ref) == 6 and all(len(b) == 8 for b in seq)
    epoch0 = sum(seq[:6], [])
    assert len(set(epoch0)) == 48  # drop_last: no repeats within an epoch
    assert seq[:6] != seq[6:12]  # reshuffled each epoch
    for k in (0, 5, 6, 13):
        probe = BatchLoader(ds, 8, seed=1)
        for _ in range(k):
            probe.next()
        state = probe.state_dict()
        resumed = BatchLoader(ds, 8, seed=1)
        resumed.load_state_dict(state)
        assert [resumed.next().y.tolist() for _ in range(20 - k)] == seq[k:]


def test_eval_iteration_covers_everything_once():
    ds = ArrayDataset(torch.arange(10).float()[:, None], torch.arange(10))
    got = torch.cat([b.y for b in BatchLoader(ds, 4, shuffle=False, drop_last=False)])
    assert got.tolist() == list(range(10))
    with pytest.raises(ConfigError, match="batch_size"):
        BatchLoader(ds, 64)


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4).float().view(2, 1, 4, 4)
    flipped = hflip(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.equal(flipped, x.flip(-1))
    crop = random_crop(x, g, padding=2)
    assert crop.shape == x.shape
    # every crop is a window of the zero-padded image
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert any(torch.equal(crop[i], padded[i, :, dy : dy + 4, dx : dx + 4]) for dy in range(5) for dx in range(5))
    sig = torch.arange(1, 11).float().view(1, 1, 10).repeat(3, 1, 1)
    shifted = random_shift(sig, torch.Generator().manual_seed(1), 3)
    for row in shifted[:, 0]:
        nz = row[row != 0]
        assert torch.equal(nz, torch.arange(int(nz[0]), int(nz[0]) + len(nz)).float())  # a contiguous run
    t = build_transform(["crop:2", "hflip"])
    a, b = (t(Batch(x=x, y=torch.arange(2)), torch.Generator().manual_seed(5)).x for _ in range(2))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="did you mean: shift"):
        build_transform(["shfit:2"])


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    from archlab.data.transforms import random_erase

    x = torch.full((400, 1, 28, 28), 2.0)
    x[:, :, 0, 0] = -1.0  # the batch range is [-1, 2]
    out = random_erase(x, torch.Generator().manual_seed(0), p=0.5)
    diff = (out != x)[:, 0]
    hit = diff.flatten(1).any(1)
    assert 0.4 < hit.float().mean() < 0.6  # about p of the images
    for d in diff[hit][:50]:
        rows, cols = d.any(1).nonzero().flatten(), d.any(0).nonzero().flatten()
        box = d[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        # one rectangle: every changed pixel inside its bounding box (noise may equal 2.0 only by chance)
        assert box.float().mean() > 0.95 and d.sum() <= 0.4 * 28 * 28 + 28
    assert out.min() >= -1.0 and out.max() <= 2.0
    assert torch.equal(out, random_erase(x, torch.Generator().manual_seed(0), p=0.5))  # reproducible
    assert torch.equal(random_erase(x, torch.Generator().manual_seed(0), p=0.0), x)
    with pytest.raises(ConfigError, match="probability"):
        build_transform(["erase:2"])


# ---------------------------------------------------------------------------------------------
# the named batch


def test_batch_moves_counts_and_hands_models_the_fields_they_declare():
    from torch import nn

    from archlab.data import model_inputs

    x = torch.randn(3, 2, 4, 4)
    b = Batch(x=x, y=torch.tensor([0, 1, 2]), lengths=torch.tensor([4, 3, 1]), attention_mask=torch.ones(3, 4))
    assert len(b) == 3 and set(b.fields()) == {"x", "y", "lengths", "attention_mask"}
    moved = b.to("cpu", channels_last=True)
    assert moved.x.is_contiguous(memory_format=torch.channels_last) and torch.equal(moved.x, x)
    assert moved.lengths.is_contiguous() and torch.equal(moved.y, b.y)  # only 4-D floats change layout

    class Masked(nn.Module):
        def forward(self, x, attention_mask=None, lengths=None):
            return x

    class Plain(nn.Module):
        def forward(self, x):
            return x

    assert set(model_inputs(Masked(), b)) == {"attention_mask", "lengths"}
    assert model_inputs(Plain(), b) == {}
    assert model_inputs(Masked(), Batch(x=x)) == {}  # absent fields are not passed as None
    # a graph batch counts graphs, not nodes; views count examples
    g = Batch(x=torch.randn(7, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), batch=torch.tensor([0, 0, 0, 1, 1, 2, 2]))
    assert len(g) == 3
    assert len(Batch(views=(torch.zeros(5, 2), torch.zeros(5, 2)))) == 5
    two = Batch(x=x, views=(x, x + 1)).to("cpu", channels_last=True)
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in two.views)


def test_a_dataset_index_is_a_batch_and_the_probe_slice_works():
    ds = ArrayDataset(torch.arange(10).float()[:, None], torch.arange(10), lengths=torch.arange(1, 11))
    b = ds[:2]
    assert isinstance(b, Batch) and b.y.tolist() == [0, 1] and b.lengths.tolist() == [1, 2]
    assert ArrayDataset(torch.zeros(3, 1), torch.zeros(3))[torch.tensor([0, 2])].lengths is None


# ---------------------------------------------------------------------------------------------
# batch transforms


def _hashes(ds, augment, n=7):
    import hashlib

    loader = BatchLoader(ds, 8, seed=7, transform=build_transform(augment))
    return [hashlib.sha256(loader.next().x.contiguous().numpy().tobytes()).hexdigest()[:16] for _ in range(n)]


def test_x_only_augmentations_produce_the_same_bytes_as_before_batch_transforms():
    """Pinned from the loader of before (transforms on x alone), on integer-exact inputs."""
    img = ArrayDataset((torch.arange(40 * 3 * 8 * 8) % 97).float().view(40, 3, 8, 8) / 97, torch.arange(40) % 10)
    sig = ArrayDataset((torch.arange(40 * 2 * 16) % 89).float().view(40, 2, 16) / 89, torch.arange(40) % 10)
    assert _hashes(img, ["crop:2", "hflip", "erase:0.5"]) == [
        "3ca0a9a690297956", "9a99f886c4ee4b81", "9edea0b7bc019ca5", "6b143ad94ddc85b0",
        "62c48791dd58a739", "9fe487859e5b8b2d", "ce82dbe7cb4fc56d",
    ]  # fmt: skip
    assert _hashes(sig, ["shift:3", "noise:0.1"]) == [
        "8cf42633656ab31e", "0c1014527e6a3673", "bda5a34a30e205f8", "872cac8b40879dc9",
        "62404e72c983a820", "96b74a363fd1b687", "8121406dc8d1c558",
    ]  # fmt: skip


def test_mixup_mixes_inputs_and_pairs_targets_with_one_lambda():
    from archlab.data.transforms import mixup

    x = torch.eye(6)  # one-hot rows: a mixed row shows its two weights
    y = torch.arange(6)
    out = mixup(Batch(x=x, y=y), torch.Generator().manual_seed(0), alpha=0.4)
    ya, yb = out.y
    lam = float(out.mixing[0])
    assert 0 < lam < 1 and torch.equal(out.mixing, torch.full((6,), lam)) and torch.equal(ya, y)
    assert sorted(yb.tolist()) == list(range(6))  # a permutation of the batch
    want = lam * x + (1 - lam) * x[yb]
    torch.testing.assert_close(out.x, want)
    assert torch.equal(out.x, mixup(Batch(x=x, y=y), torch.Generator().manual_seed(0), alpha=0.4).x)  # seeded
    lams = [float(mixup(Batch(x=x, y=y), torch.Generator().manual_seed(s), 0.4).mixing[0]) for s in range(400)]
    assert abs(sum(lams) / 400 - 0.5) < 0.05 and min(lams) < 0.05 and max(lams) > 0.95  # Beta(0.4, 0.4): U-shaped
    # the classification loss of a mixed batch is λ·CE(y_a) + (1 − λ)·CE(y_b)
    from archlab.config import TaskSpec
    from archlab.tasks import build_task

    task = build_task(TaskSpec(name="classification"), dataset_info("digits"))
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    loss, _ = task._scored(logits, out)
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, lam * ce(logits, ya) + (1 - lam) * ce(logits, yb))
    with pytest.raises(ConfigError, match="mixup:0.2"):
        build_transform(["mixup:0"])


def test_two_views_draw_the_augmentation_twice_and_keep_x():
    x = torch.arange(4 * 1 * 6 * 6).float().view(4, 1, 6, 6)
    t = build_transform(["crop:2", "hflip", "views:2"])
    out = t(Batch(x=x, y=torch.arange(4)), torch.Generator().manual_seed(3))
    assert torch.equal(out.x, x) and len(out.views) == 2 and not torch.equal(out.views[0], out.views[1])
    g = torch.Generator().manual_seed(3)  # the reference: the same generator drawn through twice in order
    ref = [hflip(random_crop(x, g, 2), g) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(out.views, ref, strict=True))
    with pytest.raises(ConfigError, match="do not combine"):
        build_transform(["views:2", "mixup:0.2"])
    with pytest.raises(ConfigError, match="at least 2 views"):
        build_transform(["views:1"])


def test_mixup_trains_a_classifier_and_is_refused_for_regression(tmp_path):
    from archlab.config import load_recipe
    from archlab.engine import Trainer
    from conftest import tiny_recipe

    s = Trainer(load_recipe(tiny_recipe(**{"budget.steps": 3, "data.augment": ["mixup:0.2"]})),
                runs_dir=tmp_path / "a", quiet=True).fit()  # fmt: skip
    assert s["steps"] == 3 and 0 <= s["test"]["accuracy"] <= 1
    with pytest.raises(ConfigError, match="data.augment: mixup needs a task that scores mixed targets"):
        Trainer(load_recipe("diabetes/mlp", {"data.augment": ["mixup:0.2"]}), runs_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()
