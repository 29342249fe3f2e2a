"""Diffusion family: denoising diffusion models; importing this package registers them all.

Registered: ``ddpm_unet`` (images) and ``ddpm_mlp`` (points) in :mod:`.ddpm`; family ``"diffusion"``.
The schedules live in :mod:`.schedules`, the ε-networks (U-Net, MLP) in :mod:`.unet`.

The interface every model of the family has (the generative contract shared with the GANs):

* ``forward(x_t, t) -> ε̂``: the noise-prediction network, x_t (B, *in_shape) in network units and
  t (B,) step indices in [0, T);
* ``sample(n, generator=None, steps=None, sampler="ddpm"|"ddim", eta=0.0, return_chain=False)``:
  n examples in the data's own units and shape, (n, *in_shape), drawn in eval mode without grad on the
  model's device (``return_chain``: also ~10 intermediate states);
* ``loss_simple(x, t, noise)``: Ho et al.'s L_simple per example, x in data units;
* ``q_sample``, ``q_posterior``, ``predict_x0``, ``to_network``/``to_data``, ``num_timesteps`` and the
  schedule buffers ``betas``/``alphas_cumprod`` (float64).
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
