"""Losses vs values computed by hand, vs torch.nn.functional, and the perceptron update rule — for both
paths (``impl="fused"``, torch's kernels, and ``impl="reference"``, the formulas), and the two paths
against each other to 1e-6 in values and gradients."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.tasks.losses import (
    DEFAULT_LOSS,
    IMPLS,
    LOSSES,
    TASK_LOSSES,
    bce_with_logits,
    cross_entropy,
    get_loss,
    mae,
    mse,
    perceptron_criterion,
)
from archlab.utils.errors import ConfigError, ShapeError

LN3, LN2 = math.log(3.0), math.log(2.0)


def _bind(impl: str):
    """(cross_entropy, mse, mae, bce_with_logits) running the ``impl`` path."""
    return (functools.partial(f, impl=impl) for f in (cross_entropy, mse, mae, bce_with_logits))


# -- hand-computed values -------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_by_hand(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    z = torch.tensor([[0.0, LN3]])  # softmax = [1, 3] / 4 = [1/4, 3/4]
    assert cross_entropy(z, torch.tensor([1])).item() == pytest.approx(math.log(4 / 3))  # −ln(3/4)
    assert cross_entropy(z, torch.tensor([0])).item() == pytest.approx(math.log(4))  # −ln(1/4)
    # batch of both: mean of ln(4/3) and ln 4
    both = cross_entropy(z.repeat(2, 1), torch.tensor([1, 0])).item()
    assert both == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)
    # ε = 0.5, K = 2, y = 1: q = 0.5·[0, 1] + 0.25 = [1/4, 3/4]
    # L = −¼ ln ¼ − ¾ ln ¾ = ¼ ln 4 + ¾ ln(4/3)
    smoothed = cross_entropy(z, torch.tensor([1]), label_smoothing=0.5).item()
    assert smoothed == pytest.approx(0.25 * math.log(4) + 0.75 * math.log(4 / 3))


@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_uniform_logits_is_log_k(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    z = torch.full((3, 10), 7.0)  # softmax = 1/10 everywhere, with or without smoothing
    for eps in (0.0, 0.3):
        assert cross_entropy(z, torch.tensor([0, 4, 9]), label_smoothing=eps).item() == pytest.approx(
            math.log(10), rel=1e-6
        )


@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_stable_for_huge_logits(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    z = torch.tensor([[1000.0, 0.0], [0.0, -1000.0]])  # naive exp(1000) overflows
    loss = cross_entropy(z, torch.tensor([1, 1]))  # −log p_y = 1000 for both rows
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1000.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_mse_mae_by_hand(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    pred, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 0.0])  # errors 0, 2, 3
    assert mse(pred, y).item() == pytest.approx((0 + 4 + 9) / 3)
    assert mae(pred, y).item() == pytest.approx((0 + 2 + 3) / 3)
    p2, y2 = torch.tensor([[1.0, -1.0], [0.5, 0.0]]), torch.zeros(2, 2)  # mean over all 4 elements
    assert mse(p2, y2).item() == pytest.approx((1 + 1 + 0.25 + 0) / 4)
    assert mae(p2, y2).item() == pytest.approx((1 + 1 + 0.5 + 0) / 4)


@pytest.mark.parametrize("impl", IMPLS)
def test_bce_by_hand(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    # z = 0: σ = ½ → −ln ½ = ln 2 for y = 1, y = 0, and y = ½ alike
    for y in (1.0, 0.0, 0.5):
        assert bce_with_logits(torch.tensor([0.0]), torch.tensor([y])).item() == pytest.approx(LN2)
    # z = ln 3: σ = 3/4 → y = 1: −ln ¾ = ln(4/3);  y = 0: −ln ¼ = ln 4
    z = torch.tensor([LN3, LN3])
    assert bce_with_logits(z, torch.tensor([1.0, 0.0])).item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_bce_finite_at_extreme_logits(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    z = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = bce_with_logits(z, y)
    # right: ≈ 0 each; wrong: 100 each → mean 50
    assert torch.isfinite(loss) and loss.item() == pytest.approx(50.0)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    torch.testing.assert_close(z.grad, torch.tensor([0.0, 0.0, 1.0, -1.0]) / 4)  # (σ(z) − y)/N


@pytest.mark.parametrize("impl", IMPLS)
def test_bce_gradient_at_zero_logit_is_sigmoid_minus_target(impl):
    cross_entropy, mse, mae, bce_with_logits = _bind(impl)
    z = torch.zeros(3, requires_grad=True)  # zero-initialised logistic regression starts here
    y = torch.tensor([1.0, 0.0, 0.25])
    bce_with_logits(z, y).backward()
    torch.testing.assert_close(z.grad, (0.5 - y) / 3)


def test_perceptron_criterion_by_hand():
    s = torch.tensor([[1.0, 3.0, 2.0]])
    assert perceptron_criterion(s, torch.tensor([1])).item() == 0.0  # target has the max
    assert perceptron_criterion(s, torch.tensor([0])).item() == pytest.approx(3 - 1)  # margin
    assert perceptron_criterion(s, torch.tensor([2])).item() == pytest.approx(3 - 2)
    batch = perceptron_criterion(s.repeat(3, 1), torch.tensor([0, 1, 2]))
    assert batch.item() == pytest.approx((2 + 0 + 1) / 3)


def test_perceptron_criterion_equals_max_minus_target_score():
    g = torch.Generator().manual_seed(0)
    s, y = torch.randn(64, 7, generator=g), torch.randint(0, 7, (64,), generator=g)
    expected = (s.max(dim=1).values - s.gather(1, y[:, None]).squeeze(1)).mean()
    torch.testing.assert_close(perceptron_criterion(s, y), expected)


def test_perceptron_no_gradient_when_correct():
    s = torch.tensor([[1.0, 3.0, 2.0]], requires_grad=True)
    perceptron_criterion(s, torch.tensor([1])).backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_sgd_lr1_on_perceptron_criterion_is_the_perceptron_update():
    W0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])  # K = 3 classes, d = 2
    x, y = torch.tensor([[2.0, 1.0]]), torch.tensor([1])  # scores [2, 1, 1.5] → ŷ = 0 ≠ y
    lin = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(W0)
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    opt.zero_grad()
    perceptron_criterion(lin(x), y).backward()
    opt.step()
    expected = W0.clone()
    expected[1] += x[0]  # w_y += x
    expected[0] -= x[0]  # w_ŷ −= x
    torch.testing.assert_close(lin.weight.detach(), expected)
    # now correct? no further change on a correctly classified example
    x2, y2 = torch.tensor([[0.0, 1.0]]), torch.tensor([1])
    before = lin.weight.detach().clone()
    opt.zero_grad()
    perceptron_criterion(lin(x2), y2).backward()
    opt.step()
    torch.testing.assert_close(lin.weight.detach(), before)


def test_perceptron_from_zero_weights_still_learns():
    lin = nn.Linear(2, 3, bias=False)
    nn.init.zeros_(lin.weight)  # every score ties at 0: counted as a mistake, as in Rosenblatt's w·x ≤ 0
    x, y = torch.tensor([[1.0, -2.0]]), torch.tensor([2])
    perceptron_criterion(lin(x), y).backward()
    assert lin.weight.grad[2].tolist() == [-1.0, 2.0]  # −x: SGD adds x to w_y
    assert lin.weight.grad.abs().sum() > 0


# -- parity with torch.nn.functional --------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_cross_entropy_matches_torch(eps, impl):
    cross_entropy, *_ = _bind(impl)
    g = torch.Generator().manual_seed(1)
    z, y = (torch.randn(32, 10, generator=g) * 3), torch.randint(0, 10, (32,), generator=g)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1, l2 = cross_entropy(z1, y, label_smoothing=eps), F.cross_entropy(z2, y, label_smoothing=eps)
    torch.testing.assert_close(l1, l2, rtol=1e-6, atol=1e-6)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_leading_dims_flatten(impl):
    cross_entropy, *_ = _bind(impl)
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(4, 5, 11, generator=g), torch.randint(0, 11, (4, 5), generator=g)  # (B, T, K)
    torch.testing.assert_close(cross_entropy(z, y), F.cross_entropy(z.reshape(-1, 11), y.reshape(-1)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("ours", "ref"), [(mse, F.mse_loss), (mae, F.l1_loss)])
def test_regression_losses_match_torch(ours, ref, impl):
    ours = functools.partial(ours, impl=impl)
    g = torch.Generator().manual_seed(3)
    p, y = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g)
    p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
    l1, l2 = ours(p1, y), ref(p2, y)
    torch.testing.assert_close(l1, l2, rtol=1e-6, atol=1e-6)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("soft", [False, True])
def test_bce_matches_torch(soft, impl):
    *_, bce_with_logits = _bind(impl)
    g = torch.Generator().manual_seed(4)
    z = torch.cat([torch.randn(64, 5, generator=g) * 5, torch.tensor([[0.0, 100.0, -100.0, 30.0, -30.0]])])
    y = torch.rand(z.shape, generator=g) if soft else torch.randint(0, 2, z.shape, generator=g).float()
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1, l2 = bce_with_logits(z1, y), F.binary_cross_entropy_with_logits(z2, y)
    torch.testing.assert_close(l1, l2, rtol=1e-6, atol=1e-6)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-6, atol=1e-6)


# -- fused = reference ----------------------------------------------------------------------
def _both(fn, *inputs, **kw):
    """(loss, input gradients) of the fused and of the reference path, float32."""
    out = []
    for impl in ("fused", "reference"):
        xs = [t.clone().requires_grad_() if t.is_floating_point() else t for t in inputs]
        loss = fn(*xs, impl=impl, **kw)
        loss.backward()
        out.append((loss, [t.grad for t in xs if t.is_floating_point()]))
    return out


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
@pytest.mark.parametrize("ignore_index", [None, 0, 3])
def test_cross_entropy_fused_equals_reference_with_smoothing_and_ignore_index(eps, ignore_index):
    g = torch.Generator().manual_seed(6)
    z = torch.randn(6, 7, 9, generator=g) * 3  # (B, T, K): a seq2seq batch of logits
    y = torch.randint(0, 9, (6, 7), generator=g)
    y[:, 5:] = 0  # trailing <pad> (id 0)
    (l1, g1), (l2, g2) = _both(cross_entropy, z, y, label_smoothing=eps, ignore_index=ignore_index)
    torch.testing.assert_close(l1, l2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g1[0], g2[0], rtol=1e-6, atol=1e-6)
    if ignore_index is not None:
        ignored = y == ignore_index
        assert ignored.any() and (g2[0][ignored] == 0).all()  # ignored positions get no gradient
        kept = _both(cross_entropy, z[~ignored], y[~ignored], label_smoothing=eps)[1][0]  # the same loss by hand
        torch.testing.assert_close(l2, kept, rtol=1e-6, atol=1e-6)


def test_cross_entropy_ignore_index_by_hand():
    z = torch.tensor([[0.0, LN3], [5.0, -5.0], [0.0, LN3]])
    y = torch.tensor([1, 0, 0])  # the middle row is <pad>: ignored
    for impl in IMPLS:
        got = cross_entropy(z, y, ignore_index=0, impl=impl)
        assert got.item() == pytest.approx(math.log(4 / 3))  # only row 1 counts: −ln ¾ (row 3's target is 0 too)
        smoothed = cross_entropy(z, torch.tensor([1, 0, 1]), label_smoothing=0.5, ignore_index=0, impl=impl)
        assert smoothed.item() == pytest.approx(0.25 * math.log(4) + 0.75 * math.log(4 / 3))


@pytest.mark.parametrize("name", ["mse", "mae", "bce"])
def test_other_losses_fused_equal_reference(name):
    g = torch.Generator().manual_seed(7)
    p = torch.cat([torch.randn(40, 3, generator=g) * 5, torch.tensor([[0.0, 100.0, -100.0]])])
    y = torch.rand(p.shape, generator=g) if name == "bce" else torch.randn(p.shape, generator=g)
    (l1, g1), (l2, g2) = _both(LOSSES[name], p, y)
    torch.testing.assert_close(l1, l2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g1[0], g2[0], rtol=1e-6, atol=1e-6)


def test_training_uses_the_fused_kernels():
    """The classification and regression tasks get torch's kernels (seen by the profiler's op names),
    and ``impl="reference"`` does not reach them."""
    from torch.profiler import ProfilerActivity, profile

    from archlab.config import TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    def ops(fn, *args, **kw) -> set[str]:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(*args, **kw)
        return {e.key for e in prof.key_averages()}

    z, y = torch.randn(4, 10), torch.randint(0, 10, (4,))
    task = build_task(TaskSpec(name="classification", label_smoothing=0.1), dataset_info("digits"))
    assert "aten::cross_entropy_loss" in ops(task.loss_fn, z, y)
    assert "aten::cross_entropy_loss" not in ops(cross_entropy, z, y, impl="reference")
    reg = build_task(TaskSpec(name="regression"), dataset_info("diabetes"))
    assert "aten::mse_loss" in ops(reg.loss_fn, z, torch.randn(4, 10))
    assert "aten::mse_loss" not in ops(mse, z, torch.randn(4, 10), impl="reference")
    assert "aten::binary_cross_entropy_with_logits" in ops(bce_with_logits, z, torch.rand(4, 10))
    fn = get_loss("cross_entropy", "classification", label_smoothing=0.2, impl="reference")
    torch.testing.assert_close(fn(z, y), F.cross_entropy(z, y, label_smoothing=0.2))
    with pytest.raises(ConfigError, match="impl: must be one of fused, reference"):
        get_loss("mse", impl="cells")


# -- bad input ------------------------------------------------------------------------------
def test_shape_mismatch_raises_instead_of_broadcasting():
    with pytest.raises(ShapeError, match="same shape"):
        mse(torch.zeros(4, 1), torch.zeros(4))  # would broadcast to (4, 4)
    with pytest.raises(ShapeError, match="same shape"):
        bce_with_logits(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ShapeError, match=r"expected logits \(B, K\)"):
        cross_entropy(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ShapeError, match="class indices"):
        cross_entropy(torch.zeros(4, 3), torch.zeros(4))


# -- lookup by name -------------------------------------------------------------------------
def test_losses_registry():
    assert set(LOSSES) == {"cross_entropy", "mse", "mae", "bce", "perceptron"}
    assert get_loss("mse", "regression") is mse
    assert get_loss(None, "classification") is cross_entropy
    assert get_loss(None, "regression") is mse
    assert get_loss("perceptron") is perceptron_criterion


def test_get_loss_binds_label_smoothing():
    g = torch.Generator().manual_seed(5)
    z, y = torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g)
    fn = get_loss("cross_entropy", "classification", label_smoothing=0.2)
    torch.testing.assert_close(fn(z, y), F.cross_entropy(z, y, label_smoothing=0.2))
    with pytest.raises(ConfigError, match="task.label_smoothing"):
        get_loss("perceptron", "classification", label_smoothing=0.2)


def test_unknown_loss_says_did_you_mean():
    with pytest.raises(ConfigError) as e:
        get_loss("mce", "regression")
    assert str(e.value).startswith("task.loss: unknown loss 'mce' (did you mean: mse")


def test_loss_task_mismatch_and_unknown_task():
    with pytest.raises(ConfigError, match="'cross_entropy' is not a regression loss"):
        get_loss("cross_entropy", "regression")
    with pytest.raises(ConfigError, match="task.name: unknown task 'regresion'"):
        get_loss("mse", "regresion")


def test_task_losses_agree_with_the_tasks():
    classification = pytest.importorskip("archlab.tasks.classification")
    regression = pytest.importorskip("archlab.tasks.regression")
    for cls in (classification.ClassificationTask, regression.RegressionTask):
        assert TASK_LOSSES[cls.name] == tuple(cls.losses)
        assert DEFAULT_LOSS[cls.name] == cls.default_loss
