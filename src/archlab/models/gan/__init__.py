"""GAN family: one architecture per module; importing this package registers them all.

Registered here so far: ``cyclegan`` (:mod:`.cyclegan`: two ResNet generators, two PatchGAN
discriminators; family ``"gan"``), ``progan`` (:mod:`.progressive`: progressive growing 4×4 → 32×32)
and ``stylegan`` (:mod:`.stylegan`: the style-based generator at 32×32). A GAN model has submodules
``generator`` and ``discriminator`` (the task's parameter groups of the same names); a CycleGAN
translates rather than samples: ``translate(x, direction)`` with ``direction`` ``"a2b"`` (G) or
``"b2a"`` (F), data units in and out. A sampling GAN has ``latent_dim``, ``generate(z)`` (latents
(B, K) → examples in the data's own shape and units) and ``sample(n, generator=None)``.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
