"""Autoencoder family: one architecture per module; importing this package registers them all.

Registered: ``ae_mlp``, ``ae_conv`` (:mod:`.autoencoder`), ``vae_mlp``, ``vae_conv`` (:mod:`.vae`),
``sparse_ae`` (:mod:`.sparse`), ``denoising_ae`` (:mod:`.denoising`), ``contractive_ae``
(:mod:`.contractive`); family ``"autoencoder"``.

The interface every model of the family has (:class:`~.base.AutoencoderBase`), so that tools,
tasks and experiments use the code the trainer trains:

* ``latent_dim: int`` — K, the code size;
* ``encode(x) -> z`` (B, K): the deterministic code (μ for a VAE);
* ``decode(z) -> x_hat`` in the input's shape and range (Bernoulli likelihood: probabilities, the
  sigmoid applied; Gaussian: the mean);
* ``forward(x)`` → :class:`~.base.AEOutput` ``(recon, z)`` or, for a VAE, :class:`~.base.VAEOutput`
  ``(recon, z, mu, logvar)``; ``recon`` is the decoder output *before* the link (logits for a
  Bernoulli likelihood, the mean for a Gaussian). A VAE samples z in training mode and uses z = μ in
  eval mode unless ``forward(x, sample=True)``; the denoising AE corrupts x in training mode only;
* ``loss_terms(x, out=None) -> dict[str, Tensor]`` — 0-dim means over the batch, in nats per
  example: {"reconstruction", "kl"} (VAE), {"reconstruction", "sparsity"} (sparse),
  {"reconstruction", "contractive"} (contractive), {"reconstruction"} (plain and denoising);
* ``term_weights(step=None)`` and ``objective(terms, step=None)``: the training loss
  Σ weight·term (β and the KL warm-up of a VAE, λ of the penalties), as the task computes it;
* VAEs add ``posterior(x) -> (mu, logvar)`` and ``sample_prior(n, generator=None) -> x``
  (decoded prior samples, the likelihood's mean), and ``iwae_bound(x, k)``.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
