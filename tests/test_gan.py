"""The GAN family and task: each loss against its closed form, the gradient penalty against a written-out
autograd computation, the R1 penalty against closed forms, weight clipping, n_critic, the EMA of G,
spectral normalisation, DCGAN against pytorch/examples' DCGAN, bad input, and bit-identical resume after
SIGKILL of a real GAN recipe."""

import json
import math
import signal
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from archlab import count_params, create_model
from archlab.cli import main
from archlab.config import load_recipe
from archlab.engine import Trainer
from archlab.tasks.gan import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from archlab.utils.errors import ConfigError
from conftest import REPO, run_cli

RING = REPO / "src/archlab/recipes/ring8/gan_mlp.yaml"


def ring_recipe(**changes) -> dict:
    """ring8/gan_mlp made tiny: widths 16, 512 training points, a few steps (about a second)."""
    r = yaml.safe_load(RING.read_text())
    r["model"].update(g_hidden=[16], d_hidden=[16], latent_dim=4)
    r["data"].update(batch_size=32, options={"n_train": 512, "n_test": 128})
    r.update(budget={"steps": 6}, eval={"every": 1000}, checkpoint={"every": None})
    r["log"] = {"every": 1, "progress": False, "tensorboard": False}
    for dotted, value in changes.items():
        cur = r
        *parents, last = dotted.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return r


# -- 1. the losses, closed forms on hand-made scores ------------------------------------------------------------
REAL = torch.tensor([[2.0], [-1.0], [0.5]])
FAKE = torch.tensor([[-3.0], [0.0], [1.5], [0.25]])


def _sig(s: float) -> float:
    return 1 / (1 + math.exp(-s))


def _mean(xs) -> float:
    return sum(xs) / len(xs)


R, Fk = REAL.flatten().tolist(), FAKE.flatten().tolist()
D_BCE = -_mean([math.log(_sig(s)) for s in R]) - _mean([math.log(1 - _sig(s)) for s in Fk])
CLOSED = {  # loss → (L_D, L_G), Goodfellow et al. Eq. 1 / §3, Arjovsky et al. Alg. 1, Miyato et al. Eq. 16–17
    "minimax": (D_BCE, _mean([math.log(1 - _sig(s)) for s in Fk])),
    "non_saturating": (D_BCE, -_mean([math.log(_sig(s)) for s in Fk])),
    "wasserstein": (_mean(Fk) - _mean(R), -_mean(Fk)),
    "wgan_gp": (_mean(Fk) - _mean(R), -_mean(Fk)),
    "hinge": (_mean([max(0, 1 - s) for s in R]) + _mean([max(0, 1 + s) for s in Fk]), -_mean(Fk)),
}


@pytest.mark.parametrize("loss", sorted(CLOSED))
def test_each_loss_equals_its_closed_form(loss):
    d, g = CLOSED[loss]
    assert float(discriminator_loss(loss, REAL.double(), FAKE.double())) == pytest.approx(d, rel=1e-12)
    assert float(generator_loss(loss, FAKE.double())) == pytest.approx(g, rel=1e-12)


def test_cross_entropy_losses_stay_finite_where_the_probability_saturates():
    s = torch.tensor([[-200.0], [200.0]], requires_grad=True)
    d = discriminator_loss("minimax", s, s)
    g = generator_loss("non_saturating", s)
    (d + g).backward()
    # each mean holds softplus(200) = 200 once and softplus(−200) ≈ 0 once: −log σ(−200) = 200, not inf
    assert float(d.detach()) == pytest.approx(200.0) and float(g.detach()) == pytest.approx(100.0)
    assert torch.isfinite(s.grad).all()


# -- 2. the gradient penalty ---------------------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic_is_its_closed_form():
    """D(x) = w·x + b: ∇D = w everywhere, so the penalty is (‖w‖ − 1)² whatever ε."""
    lin = nn.Linear(3, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # ‖w‖ = 3
    real, fake = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    assert float(gradient_penalty(lin, real, fake).detach()) == pytest.approx(4.0, rel=1e-12)


def test_gradient_penalty_equals_a_written_out_autograd_computation():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = torch.randn(4, 3, 2, 2, dtype=torch.float64), torch.randn(4, 3, 2, 2, dtype=torch.float64)
    gp = gradient_penalty(d, real, fake, torch.Generator().manual_seed(7))
    eps = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float32).double()
    terms = []
    for i in range(4):  # one example at a time: x̂ᵢ = εᵢ xᵢ + (1 − εᵢ) x̃ᵢ, (‖∂D(x̂ᵢ)/∂x̂ᵢ‖₂ − 1)²
        x_hat = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
        terms.append((grad.norm() - 1) ** 2)
    torch.testing.assert_close(gp, torch.stack(terms).mean(), rtol=1e-12, atol=0)
    gp.backward()  # differentiable in D's weights (create_graph)
    grads = {n: p.grad for n, p in d.named_parameters()}
    assert grads.pop("3.bias") is None  # the last bias does not move ∇ₓD
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


class _HalfSquaredNorm(nn.Module):
    """D(x) = c‖x‖²/2 per example: ∇ₓD = c x, so ‖∇ₓD‖² = c²‖x‖², which depends on where it is taken."""

    def __init__(self, c: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.c * x.flatten(1).square().sum(1, keepdim=True)


def test_r1_penalty_is_the_squared_input_gradient_of_d_at_the_real_data_in_closed_form():
    """Mescheder et al. 2018, Eq. 9 without γ/2: E_x ‖∇ₓD(x)‖² on the real batch. A linear D has ∇D = w
    everywhere (‖w‖² = 9); D = c‖x‖²/2 has c²‖x‖² at x (so it is taken at the real points, not elsewhere);
    both differentiable in D's parameters (∂/∂c of c² E‖x‖² = 2c E‖x‖²)."""
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 1)).double()
    with torch.no_grad():
        lin[1].weight.copy_(torch.tensor([[2.0, -1.0, 2.0] + [0.0] * 9]))  # ‖w‖² = 9
    real = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    assert float(r1_penalty(lin, real).detach()) == pytest.approx(9.0, rel=1e-12)
    quad = _HalfSquaredNorm(3.0)
    r1 = r1_penalty(quad, real)
    sq = real.flatten(1).square().sum(1)  # ‖x_b‖²
    assert float(r1.detach()) == pytest.approx(9.0 * float(sq.mean()), rel=1e-12)
    r1.backward()
    assert float(quad.c.grad) == pytest.approx(2 * 3.0 * float(sq.mean()), rel=1e-12)


def test_r1_gamma_adds_gamma_half_times_the_penalty_to_l_d_and_reports_it():
    from archlab.config import TaskSpec
    from archlab.data import dataset_info
    from archlab.tasks import build_task

    info = dataset_info("ring8")
    plain = build_task(TaskSpec(name="gan", loss="non_saturating"), info)
    r1 = build_task(TaskSpec(name="gan", loss="non_saturating", options={"r1_gamma": 10.0}), info)
    torch.manual_seed(0)
    model = create_model(
        "gan_mlp",
        in_shape=(2,),
        output="linear",
        latent_dim=4,
        g_hidden=[8],
        d_hidden=[8],
        d_input_dropout=0.0,
        d_dropout=0.0,
    )
    real, fake = torch.randn(6, 2), model.generator(torch.randn(6, 4)).detach()
    base, logs0 = plain.d_objective(model, real, fake)
    with_r1, logs = r1.d_objective(model, real, fake)
    penalty = r1_penalty(model.discriminator, real)
    assert float(penalty.detach()) > 0 and "r1_penalty" not in logs0
    torch.testing.assert_close(logs["r1_penalty"], penalty.detach())
    torch.testing.assert_close(with_r1, base + 5.0 * penalty)


def test_r1_changes_the_discriminators_gradient_and_not_the_generators(tmp_path):
    """Two runs from the same seed, γ = 0 and γ = 10, D frozen (its optimiser step skipped) so that G's step
    meets the same D in both: D's gradients differ, G's are bit for bit the same; evaluation reports
    r1_penalty only when γ > 0."""

    def grads_of_one_step(gamma: float) -> tuple[dict[str, list[torch.Tensor]], dict[str, float]]:
        trainer = Trainer(
            load_recipe(ring_recipe(**{"task.options": {"r1_gamma": gamma}})), runs_dir=tmp_path / str(gamma)
        )
        seen: dict[str, list[torch.Tensor]] = {}
        for name, opt in trainer.optimizers.items():
            step = opt.step

            def recorded(*a, _name=name, _opt=opt, _step=step, **k):
                seen[_name] = [p.grad.clone() for g in _opt.param_groups for p in g["params"]]
                return None if _name == "discriminator" else _step(*a, **k)  # D stays as built

            opt.step = recorded
        trainer._train_step()
        return seen, trainer.evaluate("test")

    (off, eval_off), (on, eval_on) = grads_of_one_step(0.0), grads_of_one_step(10.0)
    assert all(torch.equal(a, b) for a, b in zip(off["generator"], on["generator"], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(off["discriminator"], on["discriminator"], strict=True))
    assert "r1_penalty" not in eval_off and eval_on["r1_penalty"] > 0


# -- 3. the step: n_critic, clipping, EMA ----------------------------------------------------------------------
def _count_steps(trainer: Trainer) -> dict[str, int]:
    counts = {"generator": 0, "discriminator": 0}
    for name, opt in trainer.optimizers.items():
        step = opt.step

        def counted(*a, _name=name, _step=step, **k):
            counts[_name] += 1
            return _step(*a, **k)

        opt.step = counted
    return counts


@pytest.mark.parametrize(
    ("loss", "n_critic", "d_steps"), [("non_saturating", None, 1), ("wgan_gp", None, 5), ("hinge", 3, 3)]
)
def test_n_critic_discriminator_steps_per_generator_step_each_on_its_own_batch(tmp_path, loss, n_critic, d_steps):
    options = {} if n_critic is None else {"n_critic": n_critic}
    trainer = Trainer(load_recipe(ring_recipe(**{"task.loss": loss, "task.options": options})), runs_dir=tmp_path)
    counts = _count_steps(trainer)
    for _ in range(2):
        trainer._train_step()
        trainer.step += 1
    assert counts == {"generator": 2, "discriminator": 2 * d_steps}
    assert trainer.loader.state_dict()["batch"] == 2 * d_steps  # one real batch per discriminator step


def test_weight_clipping_holds_after_every_critic_step(tmp_path):
    c = 0.02
    raw = ring_recipe(**{"task.loss": "wasserstein", "task.options": {"clip_value": c, "n_critic": 2}})
    raw["optim"] = {"name": "rmsprop", "lr": 0.05}  # large steps: the clip must bind
    trainer = Trainer(load_recipe(raw), runs_dir=tmp_path)
    d = trainer.model.discriminator
    assert max(float(p.detach().abs().max()) for p in d.parameters()) > c  # PyTorch's initialisation exceeds c
    trainer._train_step()
    assert max(float(p.detach().abs().max()) for p in d.parameters()) == pytest.approx(c)  # clipped, and at the bound


def test_ema_update_is_the_formula_and_sampling_uses_the_average(tmp_path):
    trainer = Trainer(load_recipe(ring_recipe(**{"task.options": {"ema_decay": 0.9}})), runs_dir=tmp_path)
    task, model = trainer.task, trainer.model
    start = [p.detach().clone() for p in model.generator.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(task.ema.parameters(), start, strict=True))  # θ̄₀ = θ₀
    trainer._train_step()
    after = [p.detach().clone() for p in model.generator.parameters()]
    for avg, p0, p1 in zip(task.ema.parameters(), start, after, strict=True):
        torch.testing.assert_close(avg, 0.9 * p0 + 0.1 * p1, rtol=1e-6, atol=1e-7)
    assert task.ema_updates == 1
    z = torch.randn(5, model.latent_dim)
    model.eval()
    torch.testing.assert_close(model.generate(z), task.ema(z))  # eval mode: the average
    model.train()
    torch.testing.assert_close(model.generate(z), model.generator(z))  # training mode: G itself
    assert not any("ema" in k for k in model.state_dict())  # task state, not model weights


def test_latent_codes_follow_the_run_seed(tmp_path):
    a = Trainer(load_recipe(ring_recipe()), runs_dir=tmp_path / "a").fit()
    b = Trainer(load_recipe(ring_recipe(seed=1)), runs_dir=tmp_path / "b").fit()
    assert a["test"]["data_fd"] != b["test"]["data_fd"]


# -- 4. resume after SIGKILL, bit-identical (a shipped GAN recipe, made small) -------------------------------
def test_gan_recipe_resumes_bit_identically_after_sigkill(tmp_path):
    raw = ring_recipe(
        **{
            "task.loss": "wgan_gp",
            "task.options": {"n_critic": 2, "ema_decay": 0.8},
            "budget.steps": 12,
            "checkpoint.every": 4,
            "eval.every": 6,
            "optim": {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.9], "weight_decay": 0.0},
        }
    )
    recipe = tmp_path / "gan.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    Trainer(load_recipe(raw), runs_dir=tmp_path / "ref", quiet=True).fit()  # uninterrupted, in this process
    env = {"OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same kernels as this process
    killed = run_cli("train", str(recipe), "--runs-dir", str(tmp_path / "k"), env={**env, "ARCHLAB_FAULT": "step:7"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = next((tmp_path / "k").iterdir())
    trainer = Trainer.resume(run, quiet=True)
    # restored at once, before fit(): the task's EMA is the step-4 checkpoint's (sampling here would use it)
    saved = load_file(run / "checkpoints" / "step-00000004" / "task.safetensors")
    assert trainer.step == 4 and trainer.task.ema_updates == 4
    ema = trainer.task.ema.state_dict()
    assert saved.keys() == {f"ema/{k}" for k in ema} and all(torch.equal(saved[f"ema/{k}"], v) for k, v in ema.items())
    trainer.fit()
    ref_run = next((tmp_path / "ref").iterdir())
    assert (ref_run / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    last = Path("checkpoints") / "step-00000012"
    for name in ("model.safetensors", "optimizer.safetensors", "task.safetensors"):
        a, b = load_file(ref_run / last / name), load_file(run / last / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert json.loads((run / last / "state.json").read_text())["task"]["ema_updates"] == 12  # restored, then 12


# -- 5. models ----------------------------------------------------------------------------------------------
def _pytorch_examples_dcgan(nz=100, ngf=64, ndf=64, nc=3):
    """pytorch/examples dcgan/main.py's 64×64 Generator and Discriminator, layer for layer (the reference)."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )  # fmt: skip
    return g, d


def test_dcgan_equals_pytorch_examples_dcgan_with_copied_weights():
    torch.manual_seed(0)
    ours = create_model("dcgan").eval()  # 3×64×64, K = 100, width 64: pytorch/examples' sizes
    g, d = _pytorch_examples_dcgan()
    assert (count_params(ours.generator), count_params(ours.discriminator)) == (3_576_704, 2_765_568)
    g.load_state_dict(dict(zip(g.state_dict(), ours.generator.state_dict().values(), strict=True)))
    d.load_state_dict(dict(zip(d.state_dict(), ours.discriminator.state_dict().values(), strict=True)))
    g.eval(), d.eval()
    z = torch.randn(2, 100)
    with torch.no_grad():
        torch.testing.assert_close(ours.generator(z), g(z.view(2, 100, 1, 1)), rtol=0, atol=1e-6)
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        torch.testing.assert_close(torch.sigmoid(ours.discriminator(x)), d(x).view(2, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", ["dcgan", "sngan"])
def test_image_gans_take_28_and_32_pixel_images_in_data_units(name, shape):
    torch.manual_seed(0)
    model = create_model(name, in_shape=shape, width=8, **({"d_width": 4} if name == "sngan" else {}))
    x = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, *shape) and float(x.min()) >= 0 and float(x.max()) <= 1  # tanh → [0, 1]
    assert model.training  # sample() restores the mode
    assert model.discriminate(x).shape == (3, 1)
    again = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


@pytest.mark.parametrize("name", ["dcgan", "sngan"])
def test_image_gans_refuse_images_that_are_not_square_or_do_not_halve(name):
    for shape in ((1, 28, 32), (1, 7, 7), (1, 6, 6)):  # not square; odd; too small to halve to a side ≥ 4
        with pytest.raises(ConfigError, match=rf"in_shape: {name.upper()} needs square images .* got {shape[1]}×"):
            create_model(name, in_shape=shape)


def test_dcgan_init_and_batch_norm_placement_follow_radford_et_al():
    torch.manual_seed(0)
    m = create_model("dcgan", in_shape=(1, 32, 32), width=32)
    convs = [p for n, p in m.named_parameters() if p.dim() == 4]
    w = torch.cat([p.detach().flatten() for p in convs])
    assert float(w.mean()) == pytest.approx(0.0, abs=1e-3) and float(w.std()) == pytest.approx(0.02, rel=0.02)
    kinds = [type(x).__name__ for x in m.discriminator]
    assert kinds[:2] == ["Conv2d", "LeakyReLU"]  # no batch norm on D's input layer
    assert type(list(m.generator)[-2]).__name__ == "ConvTranspose2d" and type(list(m.generator)[-1]) is nn.Tanh
    critic = create_model("dcgan", in_shape=(1, 32, 32), width=32, d_norm="layer")
    assert not any(isinstance(x, nn.BatchNorm2d) for x in critic.discriminator.modules())


def test_spectral_norm_makes_each_discriminator_layer_1_lipschitz():
    torch.manual_seed(0)
    model = create_model("sngan", in_shape=(1, 8, 8), width=8, d_width=4)
    x = torch.randn(16, 1, 8, 8)
    for _ in range(100):  # one power iteration per training forward (Miyato et al., Alg. 1)
        model.discriminator(x)
    layers = [m for m in model.discriminator.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 8  # seven convolutions and the dense layer
    for layer in layers:
        w = layer.weight.detach().flatten(1)  # (C_out, C_in·k·k), W / σ(W)
        assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, abs=1e-3)


# -- 6. bad input: one line, exit 2, no run dir --------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task.options.n_critic=0"], "task.options.n_critic: 0 is not a whole number of discriminator steps"),
        (["task.options.n_critic=2.5"], "task.options.n_critic: 2.5 is not a whole number"),
        (["task.options.clip_value=-1"], "task.options.clip_value: -1 must be > 0"),
        (["task.options.ema_decay=1"], "task.options.ema_decay: 1 must be in [0, 1)"),
        (["task.options.r1_gamma=-1"], "task.options.r1_gamma: -1 must be ≥ 0 (γ of the R1 penalty"),
        (["task.options.r1_gamma=.inf"], "task.options.r1_gamma: must be a finite number (got inf)"),
        (["task.options.r1_gamma=.nan"], "task.options.r1_gamma: must be a finite number (got nan)"),
        (["task.loss=wgan"], "task.loss: 'wgan' is not a gan loss (did you mean: wgan_gp"),
    ],
)
def test_bad_gan_settings_are_one_line_exit_2_and_no_run_dir(tmp_path, capsys, args, message):
    rc = main(["train", "ring8/gan_mlp", *args, "budget.steps=2", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and message in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fashion_mnist/dcgan", "task.name=classification", "task.loss=cross_entropy"],
            "model.name: 'dcgan' is a generative model (family gan) trained by task gan, not classification",
        ),
        (["mlp"], "model.name: 'mlp' is not a GAN; task 'gan' trains a generator against a discriminator"),
        (
            ["fashion_mnist/dcgan", "task.loss=wgan_gp"],
            "model: 'dcgan''s critic uses batch norm (discriminator.3), which the gradient penalty forbids",
        ),
    ],
)
def test_a_gan_where_it_does_not_belong_is_one_line(tmp_path, capsys, args, message):
    if args == ["mlp"]:  # a classifier given to the gan task
        raw = ring_recipe()
        raw["model"] = {"name": "mlp"}
        args = [str(tmp_path / "mlp.yaml")]
        Path(args[0]).write_text(yaml.safe_dump(raw))
    rc = main(["train", *args, "budget.steps=2", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and message in err, err
    assert not (tmp_path / "runs").exists()


def test_the_task_uses_the_exact_mixture_for_default_options():
    from archlab.config import TaskSpec
    from archlab.data import dataset_info
    from archlab.data.mixtures import mixture_of
    from archlab.tasks import build_task

    task = build_task(TaskSpec(name="gan"), dataset_info("ring8"))
    assert torch.equal(task.mixture().means, mixture_of("ring8").means) and task.mixture().std == 0.01
    changed = build_task(TaskSpec(name="gan"), dataset_info("ring8", {"std": 0.05, "radius": 2.0}))
    assert changed.mixture().std == 0.05  # the run's data.options, exactly
    assert torch.allclose(changed.mixture().means.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    from archlab.tasks.diffusion import coverage_metrics

    spread = mixture_of("ring8", {"std": 0.05, "radius": 2.0}).sample(400, 3)[0]
    assert coverage_metrics(spread, dataset_info("ring8", {"std": 0.05, "radius": 2.0}))["modes_covered"] == 8
    assert coverage_metrics(spread, dataset_info("ring8"))["modes_covered"] == 0  # none within 3σ of r = 1
    assert coverage_metrics(spread, dataset_info("digits")) is None
    with pytest.raises(ConfigError):
        build_task(TaskSpec(name="gan", options={"n_critic": 0}), dataset_info("ring8"))
