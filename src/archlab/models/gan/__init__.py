"""Generative adversarial networks: one architecture per module; importing this package registers them all.

Registered: ``gan_mlp`` (:mod:`.mlp_gan`, Goodfellow et al. 2014), ``dcgan`` (:mod:`.dcgan`, Radford et al.
2016, with a batch-norm-free critic option for WGAN-GP), ``sngan`` (:mod:`.sngan`, Miyato et al.
2018), ``progan`` (:mod:`.progressive`, Karras et al. 2018: progressive growing 4×4 → 32×32) and ``stylegan``
(:mod:`.stylegan`, Karras et al. 2019, the style-based generator at 32×32), trained by task ``gan``
(:mod:`archlab.tasks.gan`); ``cyclegan`` (:mod:`.cyclegan`: two ResNet generators, two PatchGAN
discriminators, task ``cyclegan``); family ``"gan"``.

The interface every model of the family has (:class:`~.base.GANBase`), which the GAN task, the sampling
tools and the experiments use:

* submodules ``generator`` (z (B, K) → (B, *in_shape) in the network's units) and ``discriminator``
  ((B, *in_shape) → (B, 1) raw scores): the task's parameter groups ``generator`` and ``discriminator``;
* ``latent_dim: int`` — K;
* ``generate(z) -> x`` (B, *in_shape) in the data's own units (Fashion-MNIST grey levels in [0, 1]);
* ``sample(n, generator=None) -> x`` (n, *in_shape), data units, eval mode, no gradients, on the
  model's device;
* ``to_data(u)`` / ``to_network(x)``: the affine maps between the network's units (tanh's [−1, 1]) and
  the data's;
* optional hooks for models whose shape follows training progress (progressive growing):
  ``set_progress(step, total_steps)`` (the task calls it before every step) and ``prepare_real(x)``
  (applied to each real batch, in data units, before ``to_network`` and the discriminator; ProGAN pads,
  downsamples to the current resolution and blends during a fade-in).

A CycleGAN translates rather than samples: it has ``generator`` and ``discriminator`` too (the task's
parameter groups of the same names) and ``translate(x, direction)`` with ``direction`` ``"a2b"`` (G) or
``"b2a"`` (F), data units in and out.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
