"""GAN family: one architecture per module; importing this package registers them all (family ``"gan"``).

Every model has ``latent_dim``, ``generator`` and ``discriminator`` submodules, ``generate(z)`` (latents
(B, K) → examples in the data's own shape and units) and ``sample(n, generator=None)``.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
