"""The autoencoder family: the objectives against hand-written or independent oracles (closed-form KL vs
Monte Carlo, closed-form vs autograd Jacobian, Ng's KL penalty, the IWAE bound), the interface the
tools use, the corruptions, and bad configurations."""

import math

import pytest
import torch
import torch.nn.functional as F

from archlab import create_model, list_models
from archlab.models.autoencoder.base import gaussian_kl, reconstruction_nll
from archlab.models.autoencoder.denoising import corrupt
from archlab.utils.errors import ConfigError, ShapeError

AE_MODELS = ["ae_mlp", "ae_conv", "vae_mlp", "vae_conv", "sparse_ae", "denoising_ae", "contractive_ae"]
TINY = {"hidden": (8,), "channels": (4, 8), "latent_dim": 3}


def test_every_model_is_registered_in_the_family():
    assert set(list_models("autoencoder")) == set(AE_MODELS)


@pytest.mark.parametrize("name", AE_MODELS)
def test_interface_shapes_and_ranges(name):
    torch.manual_seed(0)
    overrides = {"latent_dim": 3} if name == "contractive_ae" else dict(TINY)
    if name == "sparse_ae":
        overrides.pop("channels")
    model = create_model(name, **overrides).eval()
    x = torch.rand(5, 1, 28, 28)
    z = model.encode(x)
    assert model.latent_dim == 3 and z.shape == (5, 3)
    x_hat = model.decode(z)
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1  # Bernoulli: probabilities
    out = model(x)
    torch.testing.assert_close(out.z, z)  # eval mode: the deterministic code (μ for a VAE)
    torch.testing.assert_close(torch.sigmoid(out.recon), x_hat)
    terms = model.loss_terms(x, out)
    assert "reconstruction" in terms and all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    expected = F.binary_cross_entropy_with_logits(out.recon, x, reduction="sum") / 5  # nats per example
    torch.testing.assert_close(terms["reconstruction"], expected)
    with pytest.raises(ShapeError, match=r"expected shape \(B, 1, 28, 28\), got \(5, 1, 28, 27\)"):
        model.encode(torch.rand(5, 1, 28, 27))
    with pytest.raises(ShapeError, match=r"z: expected shape \(B, 3\)"):
        model.decode(torch.rand(5, 4))


def test_gaussian_likelihood_is_the_normal_density_and_decodes_the_mean():
    x, mean = torch.randn(4, 6), torch.randn(4, 6)
    nll = reconstruction_nll(mean, x, "gaussian", std=0.5)
    expected = -torch.distributions.Normal(mean, 0.5).log_prob(x).sum(1)
    torch.testing.assert_close(nll, expected)
    model = create_model("vae_mlp", in_shape=(6,), hidden=(8,), latent_dim=2, likelihood="gaussian").eval()
    z = torch.randn(3, 2)
    torch.testing.assert_close(model.decode(z), model.decoder_output(z))  # identity link: the mean


def test_closed_form_kl_equals_a_monte_carlo_estimate():
    """Kingma & Welling 2014, App. B: the closed form against E_q[log q(z) − log p(z)] by sampling."""
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g) * 0.5
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))  # (S, 3, 4)
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(0)
    closed = gaussian_kl(mu, logvar)
    torch.testing.assert_close(closed, mc, rtol=0.0, atol=0.03)
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(closed, ref)
    assert gaussian_kl(torch.zeros(1, 5), torch.zeros(1, 5)).item() == 0.0  # q = p


def test_vae_reparameterisation_elbo_and_iwae_bound():
    torch.manual_seed(0)
    model = create_model("vae_mlp", in_shape=(1, 8, 8), hidden=(16,), latent_dim=2)
    x = torch.rand(6, 1, 8, 8)
    mu, logvar = model.posterior(x)
    out = model(x, generator=torch.Generator().manual_seed(3))  # training mode: sampled
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.z, mu + (0.5 * logvar).exp() * eps)  # z = μ + σ ⊙ ε
    assert torch.equal(model.encode(x), mu)
    terms = model.loss_terms(x, out)
    assert set(terms) == {"reconstruction", "kl"}
    torch.testing.assert_close(terms["kl"], gaussian_kl(mu, logvar).mean())
    # L_1 is the ELBO with the same sample; L_k grows with k (Burda et al. 2016, Theorem 1)
    l1 = model.iwae_bound(x, 1, generator=torch.Generator().manual_seed(5))
    z = model.reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    elbo = -reconstruction_nll(model.decoder_output(z), x, "bernoulli") - gaussian_kl(mu, logvar)
    # one-sample ELBO and log w differ by log q(z|x) − log p(z) − KL, whose mean over z is 0: compare the means
    assert l1.shape == (6,) and abs(l1.mean().item() - elbo.mean().item()) < 1.0
    lk = [model.iwae_bound(x, k, generator=torch.Generator().manual_seed(7)).mean().item() for k in (1, 50)]
    assert lk[1] > lk[0]
    with pytest.raises(ValueError, match="k ≥ 1"):
        model.iwae_bound(x, 0)
    samples = model.sample_prior(4, generator=torch.Generator().manual_seed(0))
    again = model.sample_prior(4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 8, 8) and torch.equal(samples, again) and 0 <= samples.min() <= samples.max() <= 1


def test_beta_and_kl_warmup_weights():
    model = create_model("vae_mlp", in_shape=(4,), hidden=(4,), latent_dim=2, beta=4.0, kl_warmup_steps=100)
    assert model.term_weights(0) == {"reconstruction": 1.0, "kl": 0.0}
    assert model.term_weights(25) == {"reconstruction": 1.0, "kl": 1.0}  # β · 25/100
    assert model.term_weights(1000)["kl"] == model.term_weights(None)["kl"] == 4.0
    terms = {"reconstruction": torch.tensor(10.0), "kl": torch.tensor(2.0)}
    assert model.objective(terms, step=50).item() == 10.0 + 4.0 * 0.5 * 2.0


def test_sparse_penalties_are_ngs_kl_and_the_l1_norm():
    torch.manual_seed(0)
    model = create_model("sparse_ae", in_shape=(10,), hidden=(8,), latent_dim=4, sparsity_target=0.1)
    z = torch.rand(32, 4)
    rho, rho_hat = 0.1, z.mean(0)
    expected = sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r)) for r in rho_hat.tolist())
    assert model.sparsity(z).item() == pytest.approx(expected, rel=1e-5)
    assert model.sparsity(torch.full((8, 4), 0.1)).item() == pytest.approx(0.0, abs=1e-6)  # ρ̂ = ρ: no penalty
    l1 = create_model("sparse_ae", in_shape=(10,), hidden=(8,), latent_dim=4, penalty="l1", code_activation="relu")
    assert l1.sparsity(torch.tensor([[1.0, -2.0, 0.0, 0.5]])).item() == 3.5
    x = torch.rand(6, 10)
    assert (l1.encode(x) >= 0).all() and ((model.encode(x) > 0) & (model.encode(x) < 1)).all()
    assert set(model.loss_terms(x)) == {"reconstruction", "sparsity"}
    assert model.term_weights()["sparsity"] == 3.0  # Ng's β


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_corruptions(kind):
    x = torch.full((200, 1, 10, 10), 0.5)
    g = torch.Generator().manual_seed(0)
    xt = corrupt(x, kind, 0.3, g)
    changed = xt != x
    if kind == "gaussian":
        assert (xt - x).std().item() == pytest.approx(0.3, rel=0.02) and changed.all()
    elif kind == "masking":
        assert changed.float().mean().item() == pytest.approx(0.3, abs=0.01)
        assert (xt[changed] == 0).all()
    else:
        assert changed.float().mean().item() == pytest.approx(0.3, abs=0.01)
        values = xt[changed]
        assert ((values == 0) | (values == 1)).all() and (values == 1).float().mean().item() == pytest.approx(
            0.5, abs=0.03
        )
    assert torch.equal(xt, corrupt(x, kind, 0.3, torch.Generator().manual_seed(0)))  # reproducible


def test_denoising_ae_corrupts_in_training_only_and_scores_against_the_clean_input():
    torch.manual_seed(0)
    model = create_model("denoising_ae", in_shape=(20,), hidden=(8,), latent_dim=3, noise_level=0.5)
    x = torch.rand(4, 20)
    torch.manual_seed(1)
    out = model(x)  # training: x̃ masks half the inputs
    torch.manual_seed(1)
    x_tilde = model.corrupt(x)
    torch.testing.assert_close(out.z, model.encode(x_tilde))
    terms = model.loss_terms(x, out)
    torch.testing.assert_close(terms["reconstruction"], reconstruction_nll(out.recon, x, "bernoulli").mean())
    model.eval()
    torch.testing.assert_close(model(x).z, model.encode(x))


def test_contractive_closed_form_equals_autograd_values_and_gradients():
    """Rifai et al. 2011 §3: Σ_j (h_j(1−h_j))² Σ_i W_ji² is ‖∂h/∂x‖²_F, computed by autograd for any encoder."""
    torch.manual_seed(0)
    model = create_model("contractive_ae", in_shape=(1, 6, 6), latent_dim=5).double()
    x = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    closed = model.jacobian_norm_closed_form(model.encode(x))
    auto = model.jacobian_norm_autograd(x)
    torch.testing.assert_close(closed, auto)
    by_hand = torch.stack(
        [torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], xi).square().sum() for xi in x]
    )
    torch.testing.assert_close(auto, by_hand)
    grads = []
    for penalty in (model.jacobian_norm_closed_form, model.jacobian_norm_autograd):
        model.zero_grad()
        arg = model.encode(x) if penalty == model.jacobian_norm_closed_form else x
        penalty(arg).sum().backward()
        grads.append(model.encoder[1][0].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])  # the penalty trains the same way either way
    # tied weights: the decoder reads Wᵀ, so W is shared, not copied
    assert model.decoder.encoder_linear[0] is model.encoder[1][0]
    assert sum(p.numel() for p in model.parameters()) == 5 * 36 + 5 + 36
    deep = create_model(
        "contractive_ae", in_shape=(6,), hidden=(4,), latent_dim=2, tied_weights=False, jacobian="autograd"
    )
    assert set(deep.loss_terms(torch.rand(3, 6))) == {"reconstruction", "contractive"}


def test_conv_autoencoder_takes_signals_too():
    model = create_model("ae_conv", in_shape=(1, 40), channels=(4, 8), latent_dim=5)
    assert model.encoder.map_shape == (8, 10) and model(torch.rand(2, 1, 40)).recon.shape == (2, 1, 40)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("ae_mlp", {"latent_dim": 0}, r"^model\.latent_dim: Input should be greater than or equal to 1 \(got 0\)$"),
        ("vae_conv", {"beta": -1.0}, r"^model\.beta: Input should be greater than or equal to 0 \(got -1\.0\)$"),
        ("ae_conv", {"in_shape": (1, 30, 30)}, r"multiple of 4; use fewer channels stages or arch='mlp'"),
        ("contractive_ae", {"hidden": (8,)}, r"tied_weights=True needs the one-layer encoder"),
        ("contractive_ae", {"hidden": (8,), "tied_weights": False}, r"use jacobian='autograd'"),
        ("sparse_ae", {"code_activation": "relu"}, r"penalty='kl' .* needs code_activation='sigmoid'"),
        ("denoising_ae", {"corruption": "masking", "noise_level": 1.5}, r"must be in \[0, 1\], got 1\.5"),
        ("vae_mlp", {"likelihood": "poisson"}, r"^model\.likelihood: Input should be 'bernoulli' or 'gaussian'"),
    ],
)
def test_bad_configs_are_one_line_config_errors(name, overrides, message):
    with torch.device("meta"), pytest.raises(ConfigError, match=message) as e:
        create_model(name, **overrides)
    assert "\n" not in str(e.value)
