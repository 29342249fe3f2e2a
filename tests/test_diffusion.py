"""Diffusion models (DDPM, DDIM): the schedules against their closed forms, the forward process and
its posterior against the equations written out by hand, both samplers step by step, the ε-loss, the
U-Net's time conditioning, the task (resume, bad input) and a quick learning check on ring8."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from archlab import create_model
from archlab.models.diffusion.ddpm import DDPM, DDPMConfig
from archlab.models.diffusion.schedules import (
    alpha_bar,
    check_betas,
    cosine_alpha_bar,
    cosine_beta_schedule,
    linear_beta_schedule,
)
from archlab.models.diffusion.unet import AttentionBlock, timestep_embedding
from archlab.utils.errors import ConfigError


# -- schedules ---------------------------------------------------------------------------------------------
def test_linear_schedule_is_ho_et_al_and_alpha_bar_is_the_product():
    betas = linear_beta_schedule(1000)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert float(betas[0]) == 1e-4 and float(betas[-1]) == pytest.approx(0.02, abs=1e-15)
    steps = (betas[1:] - betas[:-1]).tolist()
    assert all(d == pytest.approx(0.0199 / 999, rel=1e-9) for d in steps)  # evenly spaced
    ab = alpha_bar(betas).tolist()
    for t in (1, 2, 10, 500, 1000):
        assert ab[t - 1] == pytest.approx(
            math.prod(1 - (1e-4 + (s - 1) * 0.0199 / 999) for s in range(1, t + 1)), rel=1e-12
        )
    assert ab[-1] == pytest.approx(4.0358e-5, rel=1e-4)  # x_T is N(0, I) to within √ᾱ_T ≈ 0.0064


def test_cosine_schedule_matches_eq_17_and_its_endpoints():
    T, s = 1000, 0.008
    betas = cosine_beta_schedule(T)
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    ab = alpha_bar(betas).tolist()
    assert float(cosine_alpha_bar(T)[0]) == 1.0
    assert float(betas[0]) == pytest.approx(1 - f[1] / f[0], rel=1e-10)  # β_1
    assert float(betas[-1]) == 0.999  # ᾱ_T = cos²(π/2) ≈ 0 would give β_T = 1: clipped (Nichol & Dhariwal §3.2)
    unclipped = [t for t in range(1, T + 1) if 1 - f[t] / f[t - 1] < 0.999]
    assert unclipped == list(range(1, T))  # only the last step is clipped at T = 1000
    for t in (1, 250, 500, 999):
        assert ab[t - 1] == pytest.approx(f[t] / f[0], rel=1e-9)  # ᾱ_t = f(t)/f(0) where nothing was clipped
    assert 0 < ab[-1] < 1e-6


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -1e-3, float("nan")])
def test_a_beta_outside_the_open_unit_interval_is_one_line(bad):
    betas = torch.tensor([1e-4, bad, 0.02], dtype=torch.float64)
    with pytest.raises(ConfigError) as e:
        check_betas(betas)
    assert "β_2 = " in str(e.value) and "outside (0, 1)" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"linear schedule: β_1 = 0 is outside \(0, 1\)"):
        linear_beta_schedule(10, 0.0, 0.02)
    with pytest.raises(ConfigError, match=r"cosine schedule: β_10 = 1 is outside"):
        cosine_beta_schedule(10, max_beta=1.0)  # the unclipped last step destroys the signal


# -- the forward process and its posterior ------------------------------------------------------------------
def _tiny(**kw) -> DDPM:
    torch.manual_seed(0)
    return create_model("ddpm_mlp", **{"width": 16, "depth": 1, "timesteps": 50, **kw})


def test_q_sample_has_the_moments_of_eq_4():
    m = _tiny()
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.7, -1.3]]).expand(200_000, 2)
    t = torch.full((200_000,), 29)
    xt = m.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    ab = float(m.alphas_cumprod[29])
    assert xt.mean(0).tolist() == pytest.approx([math.sqrt(ab) * 0.7, -math.sqrt(ab) * 1.3], abs=4 * math.sqrt(1 / 2e5))
    assert xt.var(0).tolist() == pytest.approx([1 - ab, 1 - ab], rel=0.015)


def test_posterior_mean_and_variance_are_eq_6_and_7_written_out():
    m = _tiny(schedule="cosine")
    betas = m.betas.tolist()
    x0, xt = torch.tensor([[0.5, -0.25]]), torch.tensor([[1.5, 2.0]])
    for t in (0, 1, 17, 49):  # indices: the paper's t = 1, 2, 18, 50
        ab_t = math.prod(1 - b for b in betas[: t + 1])
        ab_prev = math.prod(1 - b for b in betas[:t])  # ᾱ_0 = 1 (the empty product)
        c0 = math.sqrt(ab_prev) * betas[t] / (1 - ab_t)
        ct = math.sqrt(1 - betas[t]) * (1 - ab_prev) / (1 - ab_t)
        mean, var = m.q_posterior(x0, xt, torch.tensor([t]))
        assert mean.flatten().tolist() == pytest.approx([c0 * 0.5 + ct * 1.5, c0 * -0.25 + ct * 2.0], rel=1e-6)
        assert float(var) == pytest.approx((1 - ab_prev) / (1 - ab_t) * betas[t], rel=1e-6)
    mean, var = m.q_posterior(x0, xt, torch.tensor([0]))
    assert torch.allclose(mean, x0) and float(var) == 0.0  # at t = 1 the posterior is x_0 itself


# -- the samplers, step by step ----------------------------------------------------------------------------------
class _Affine(nn.Module):
    """A known ε-network: ε(x, t) = 0.3 x + 0.01 (t + 1), so the samplers can be followed by hand."""

    def forward(self, x, t):
        return 0.3 * x + 0.01 * (t.float() + 1).view(-1, *([1] * (x.dim() - 1)))


def _affine_model(**kw) -> DDPM:
    m = _tiny(timesteps=6, **kw)
    m.eps_model = _Affine()
    return m


def test_ddpm_sampling_is_algorithm_2():
    m = _affine_model(sigma="beta")
    n = 4
    out = m.sample(n, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    betas = m.betas.tolist()
    x = torch.randn(n, 2, generator=g)
    for t in range(6, 0, -1):  # Algorithm 2, t = T … 1
        ab = math.prod(1 - b for b in betas[:t])
        eps = 0.3 * x + 0.01 * t
        z = torch.randn(n, 2, generator=g) if t > 1 else torch.zeros(n, 2)
        x = (x - betas[t - 1] / math.sqrt(1 - ab) * eps) / math.sqrt(1 - betas[t - 1]) + math.sqrt(betas[t - 1]) * z
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)


def test_sample_reports_each_denoising_step_and_the_callback_changes_nothing():
    m = _affine_model(sigma="beta")
    calls: list[tuple[int, int]] = []
    with_cb = m.sample(3, generator=torch.Generator().manual_seed(3), callback=lambda i, k: calls.append((i, k)))
    assert calls == [(i, 6) for i in range(1, 7)]  # T = 6 ancestral steps
    assert torch.equal(with_cb, m.sample(3, generator=torch.Generator().manual_seed(3)))
    calls.clear()
    m.sample(3, steps=2, sampler="ddim", callback=lambda *a: calls.append(a))
    assert calls == [(1, 2), (2, 2)]


def test_ddim_eta_zero_is_deterministic_and_is_eq_12():
    m = _affine_model()
    g = torch.Generator().manual_seed(5)
    out = m.sample(3, generator=g, sampler="ddim", steps=3, eta=0.0)
    used = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, generator=used)  # x_T: the only draw of a deterministic sampler
    assert torch.equal(g.get_state(), used.get_state())
    ab = alpha_bar(m.betas).tolist()
    seq = m.timestep_sequence(3)
    assert seq == [0, 2, 5]  # both ends of [0, T − 1]
    for t, s in zip(reversed(seq), [2, 0, -1], strict=True):
        eps = 0.3 * x + 0.01 * (t + 1)
        x0 = (x - math.sqrt(1 - ab[t]) * eps) / math.sqrt(ab[t])
        ab_s = ab[s] if s >= 0 else 1.0
        x = math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps  # Song Eq. 12, σ = 0
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)
    again = m.sample(3, generator=torch.Generator().manual_seed(5), sampler="ddim", steps=3)
    assert torch.equal(out, again)


def test_ddim_with_eta_one_and_every_step_is_ddpm_with_the_posterior_variance():
    """Song et al. §4.1: σ_t(η = 1) = √β̃_t makes the generative process Ho et al.'s DDPM."""
    m = _affine_model(sigma="posterior")
    ddpm = m.sample(5, generator=torch.Generator().manual_seed(9))
    ddim = m.sample(5, generator=torch.Generator().manual_seed(9), sampler="ddim", eta=1.0)
    torch.testing.assert_close(ddim, ddpm, rtol=1e-5, atol=1e-5)
    beta_sampler = _affine_model(sigma="beta").sample(5, generator=torch.Generator().manual_seed(9))
    assert not torch.allclose(beta_sampler, ddpm, atol=1e-3)  # σ² = β_t is another sampler


def test_sample_contract_data_units_chain_and_bad_arguments():
    m = create_model("ddpm_unet", in_shape=(1, 8, 8), channels=8, channel_mult=(1, 2), norm_groups=4, timesteps=20)
    m.train()
    x, chain = m.sample(3, generator=torch.Generator().manual_seed(0), steps=12, sampler="ddim", return_chain=True)
    assert x.shape == (3, 1, 8, 8) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0  # [0, 1] images
    assert len(chain) == 10 and all(c.shape == (3, 1, 8, 8) for c in chain) and torch.equal(chain[-1], x)
    assert m.training and not x.requires_grad  # eval mode inside, restored after; no graph
    for kwargs, message in [
        ({"steps": 21}, r"steps: 21 is not a number of sampling steps in 1 … T = 20"),
        ({"steps": 0}, r"steps: 0 is not"),
        ({"sampler": "ddim", "eta": -0.1}, r"eta: -0.1 is outside \[0, 1\]"),
        ({"sampler": "euler"}, r"sampler: 'euler' is not a diffusion sampler"),
    ]:
        with pytest.raises(ConfigError, match=message):
            m.sample(2, **kwargs)


# -- the objective ------------------------------------------------------------------------------------------------
def test_loss_simple_on_a_hand_case():
    """ε_θ(x_t, t) = x_t: L = mean((ε − √ᾱ_t x_0 − √(1 − ᾱ_t) ε)²) per example, x_0 = 2x − 1 for images."""
    m = create_model("ddpm_unet", in_shape=(1, 2, 2), channels=4, channel_mult=(1, 2), norm_groups=2, timesteps=10)
    m.eps_model = type("Identity", (nn.Module,), {"forward": lambda self, x, t: x})()
    x = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    noise = torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]]])
    t = torch.tensor([4])
    ab = math.prod(1 - b for b in m.betas.tolist()[:5])
    x0 = [-1.0, 1.0, 0.0, -0.5]
    eps = [1.0, -1.0, 0.0, 2.0]
    want = sum((e - math.sqrt(ab) * a - math.sqrt(1 - ab) * e) ** 2 for a, e in zip(x0, eps, strict=True)) / 4
    assert m.loss_simple(x, t, noise).tolist() == pytest.approx([want], rel=1e-6)


# -- the U-Net ---------------------------------------------------------------------------------------------------
def test_timestep_embedding_is_the_sinusoid():
    e = timestep_embedding(torch.tensor([0, 3]), 8)
    assert e[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    freqs = [10_000 ** (-i / 3) for i in range(4)]
    assert e[1].tolist() == pytest.approx([math.sin(3 * f) for f in freqs] + [math.cos(3 * f) for f in freqs], abs=1e-6)


def test_unet_shapes_and_time_conditioning():
    torch.manual_seed(0)
    m = create_model("ddpm_unet", in_shape=(1, 8, 8), channels=8, channel_mult=(1, 2), norm_groups=4, timesteps=20)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 3])
    assert torch.equal(m(x, t), torch.zeros(2, 1, 8, 8))  # zero-initialised output convolution (Ho et al.'s code)
    for p in m.parameters():  # any trained weights: every layer live
        nn.init.normal_(p, std=0.2)
    m.eval()
    with torch.no_grad():
        base = m(x, t)
        other_t = m(x, torch.tensor([3, 17]))
    assert base.shape == (2, 1, 8, 8)
    assert torch.equal(other_t[0], base[0])  # examples do not mix (GroupNorm is per example)
    assert (other_t[1] - base[1]).abs().max() > 1e-3  # t enters every residual block
    with pytest.raises(Exception, match=r"multiples of 2"):
        m(torch.randn(1, 1, 7, 8), torch.tensor([0]))
    with pytest.raises(ConfigError, match="norm_groups=3 must divide"):
        create_model("ddpm_unet", channels=8, norm_groups=3)


def test_unet_attention_is_softmax_attention_over_positions_written_out():
    torch.manual_seed(0)
    block = AttentionBlock(8, groups=4)
    nn.init.normal_(block.proj.weight, std=0.3)  # the zero-initialised output projection, made live
    x = torch.randn(2, 8, 3, 5)
    q, k, v = (w.reshape(2, 8, 15) for w in block.qkv(block.norm(x)).chunk(3, dim=1))  # (B, C, N) each
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(8), dim=-1)  # query i over keys j
    h = torch.einsum("bij,bcj->bci", w, v).reshape(2, 8, 3, 5)
    expected = x + block.proj(h)
    with torch.no_grad():
        got = block(x)
    assert (got - x).abs().max() > 0.1  # the attention branch is live
    assert torch.allclose(got, expected, atol=1e-5)
    x2 = x.clone()
    x2[1, :, 0, 0] += 1.0  # one position of example 1: every position of example 1 moves, example 0 does not
    with torch.no_grad():
        moved = block(x2)
    assert torch.equal(moved[0], got[0])
    assert ((moved[1] - got[1]).abs().amax(dim=0) > 1e-4).all()


def test_ddpm_config_ranges():
    with pytest.raises(ConfigError, match=r"^model\.beta_end: Input should be less than 1 \(got 1\.5\)$"):
        DDPMConfig(beta_end=1.5)
    with pytest.raises(ConfigError, match=r"^model\.timesteps: Input should be greater than or equal to 1"):
        DDPMConfig(timesteps=0)


# -- the task ------------------------------------------------------------------------------------------------------
def _ring_recipe(**changes) -> dict:
    """ring8/ddpm_mlp made tiny: a few seconds through the CLI, EMA and sample statistics on."""
    import yaml

    from archlab.config import shipped_recipes

    r = yaml.safe_load(shipped_recipes()["ring8/ddpm_mlp"].read_text())
    r["model"].update({"width": 16, "depth": 1, "timesteps": 50})
    r["data"].update({"batch_size": 32, "options": {"n_train": 512, "n_test": 64}})
    r["task"]["options"].update({"ema_decay": 0.9, "eval_samples": 64, "sample_steps": 5})
    r.update(
        budget={"steps": 12},
        eval={"every": 6},
        checkpoint={"every": 4, "keep_last": 2},
        log={"every": 1, "tensorboard": False, "progress": False},
        schedule={"name": "constant", "warmup_steps": 0},
    )
    for dotted, value in changes.items():
        cur = r
        *parents, last = dotted.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return r


def test_training_loss_is_l_simple_on_draws_from_the_run_seed():
    from archlab.config import load_recipe
    from archlab.data import Batch, dataset_info
    from archlab.tasks import build_task
    from archlab.utils.seed import derive_seed

    r = load_recipe(_ring_recipe())
    task = build_task(r.task, dataset_info(r.data.name, r.data.options), seed=7)
    model = task.build_model(r.model)
    x = torch.randn(16, 2)
    task.set_progress(3, 12)
    first, _ = task.training_loss(model, Batch(x=x))
    second, _ = task.training_loss(model, Batch(x=x))  # the next micro-batch
    g = torch.Generator().manual_seed(derive_seed(7, 3, 0))
    t = torch.randint(0, 50, (16,), generator=g)
    noise = torch.randn(16, 2, generator=g)
    want = (noise - model(model.q_sample(model.to_network(x), t, noise), t)).square().mean()
    assert float(first.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    assert float(second.detach()) != float(first.detach())  # each micro-batch draws its own t and ε
    task.set_progress(3, 12)
    assert torch.equal(task.training_loss(model, Batch(x=x))[0], first)  # resumable


def test_ema_is_the_formula_sampling_uses_it_and_the_evaluation_is_deterministic(tmp_path):
    from archlab.config import load_recipe
    from archlab.engine import Trainer
    from archlab.engine.trainer import evaluate_run, load_run

    trainer = Trainer(load_recipe(_ring_recipe(**{"budget.steps": 3})), runs_dir=tmp_path)
    task, model = trainer.task, trainer.model
    history = [{k: p.detach().clone() for k, p in model.eps_model.named_parameters()}]  # θ_0
    original = task.after_optimizer_step

    def spy(group, model, ctx):
        history.append({k: p.detach().clone() for k, p in model.eps_model.named_parameters()})
        original(group, model, ctx)

    task.after_optimizer_step = spy
    s = trainer.fit()
    w0, w1, w2, w3 = history
    ema = dict(task.ema.named_parameters())
    for k in w0:  # θ̄_0 = θ_0, θ̄_n = 0.9 θ̄_{n−1} + 0.1 θ_n
        torch.testing.assert_close(ema[k], 0.9 * (0.9 * (0.9 * w0[k] + 0.1 * w1[k]) + 0.1 * w2[k]) + 0.1 * w3[k])
    assert task.ema_updates == 3 and {"loss", "ema_loss", "modes_covered", "high_quality"} <= s["test"].keys()
    assert model.sampling_network() is task.ema and not task.ema.training
    again = evaluate_run(s["run_dir"])  # `archlab eval`: a new process's view, the same draws of t, ε and samples
    assert {k: again[k] for k in s["test"]} == s["test"]
    run = load_run(s["run_dir"])  # what `archlab sample` loads: the model samples with the run's EMA
    loaded = run.model.sampling_network()
    assert loaded is run.task.ema and all(torch.equal(p, ema[k]) for k, p in loaded.named_parameters())


def test_resume_from_a_checkpoint_is_bit_identical_with_the_ema(tmp_path):
    """A run cut back to its step-4 checkpoint (what a kill leaves: later checkpoints and the summary gone,
    metrics.jsonl longer than the checkpoint) resumes to the uninterrupted run's bytes: metrics, weights,
    optimiser and the EMA. In-process (a new Trainer, task and model built from the run dir) to keep it
    fast; the SIGKILL-in-a-subprocess path is tests/test_task_contract.py's."""
    import shutil

    from safetensors.torch import load_file

    from archlab.config import load_recipe
    from archlab.engine import Trainer

    ref = Path(
        Trainer(load_recipe(_ring_recipe(**{"checkpoint.keep_last": 5})), runs_dir=tmp_path / "ref").fit()["run_dir"]
    )
    cut = tmp_path / "cut"
    shutil.copytree(ref, cut)
    for d in ("step-00000008", "step-00000012", "best"):
        shutil.rmtree(cut / "checkpoints" / d, ignore_errors=True)
    (cut / "summary.json").unlink()
    Trainer.resume(cut).fit()
    assert (ref / "metrics.jsonl").read_bytes() == (cut / "metrics.jsonl").read_bytes()
    last = "checkpoints/step-00000012"
    for name in ("model.safetensors", "optimizer.safetensors", "task.safetensors"):
        a, b = load_file(ref / last / name), load_file(cut / last / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert any(k.startswith("ema/") for k in load_file(cut / last / "task.safetensors"))


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        ("ring8/ddpm_mlp", ["model.beta_end=1.5"], "model.beta_end: Input should be less than 1 (got 1.5)"),
        ("ring8/ddpm_mlp", ["model.beta_start=0"], "model.beta_start: Input should be greater than 0 (got 0)"),
        (
            "ring8/ddpm_mlp",
            ["task.options.sample_steps=5000"],
            "task.options.sample_steps: 5000 is outside 1 … T = 1000, the model's diffusion steps",
        ),
        ("ring8/ddpm_mlp", ["task.options.eta=-0.5"], "task.options.eta: -0.5 is outside [0, 1]"),
        ("ring8/ddpm_mlp", ["task.options.ema_decay=1"], "task.options.ema_decay: 1.0 is outside [0, 1)"),
        ("ring8/ddpm_mlp", ["model.name=mlp"], "model.name: 'mlp' is not a diffusion model (a feedforward model)"),
        (
            "digits",
            ["model.name=ddpm_mlp"],
            "model.name: 'ddpm_mlp' is a generative model (family diffusion) trained by task diffusion, not "
            "classification; set task.name=diffusion",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_before_the_run_dir(tmp_path, capsys, recipe, overrides, message):
    import yaml

    from archlab.cli import main
    from conftest import tiny_recipe

    if recipe == "digits":  # a classification recipe with a diffusion model
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({**tiny_recipe(), "model": {"name": "mlp"}}))
        recipe = str(path)
    rc = main(["train", recipe, *overrides, "budget.steps=2", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and message in err, err
    assert not (tmp_path / "runs").exists()


# -- learning ---------------------------------------------------------------------------------------------------
def test_ddpm_mlp_learns_the_ring_in_a_few_hundred_steps():
    """The task's loss and the model's sampler, in a bare loop (no run dir): after 500 Adam steps (~3.5 s of
    CPU) DDIM samples fall within 3σ of (nearly) all 8 modes, where the untrained model's fall near none. (The
    recipe's 3,000 steps reach ~90 % high-quality samples: docs/generative.md.)"""
    from archlab.config import load_recipe
    from archlab.data import Batch, dataset_info
    from archlab.data.mixtures import mixture_of, mode_coverage
    from archlab.tasks import build_task

    torch.manual_seed(0)
    r = load_recipe("ring8/ddpm_mlp")
    task = build_task(r.task, dataset_info("ring8"), seed=0)
    model = task.build_model(r.model)
    ring = mixture_of("ring8")

    def coverage():
        return mode_coverage(model.sample(2000, torch.Generator().manual_seed(1), steps=50, sampler="ddim"), ring)

    before = coverage()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_all, _ = ring.sample(500 * 256, seed=0)
    for step in range(500):
        task.set_progress(step, 500)
        loss, _ = task.training_loss(model, Batch(x=x_all[step * 256 : (step + 1) * 256]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = coverage()
    assert before.modes_covered == 0 and before.high_quality == 0.0
    assert after.modes_covered >= 7 and after.high_quality > 0.05, after  # seeds 0–3: 8 modes, 11–35 %


def test_sampling_noise_comes_from_the_generators_own_device():
    """``randn_on`` draws where the generator lives and moves the noise: a seeded CPU generator gives the
    numbers of ``torch.randn(generator=...)`` for a model on any device (the contract both families'
    ``sample`` keep, so ``archlab sample --seed`` is device-independent)."""
    from archlab.utils.seed import randn_on

    expect = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    got = randn_on((3, 4), torch.Generator().manual_seed(5), "cpu")
    assert torch.equal(got, expect) and got.device.type == "cpu"
    assert randn_on((2,), None, "cpu", torch.float64).dtype == torch.float64
    ring = create_model("ddpm_mlp", in_shape=(2,), width=16, depth=1, timesteps=10)
    a = ring.sample(4, generator=torch.Generator().manual_seed(1), steps=5, sampler="ddim")
    b = ring.sample(4, generator=torch.Generator().manual_seed(1), steps=5, sampler="ddim")
    assert torch.equal(a, b)
