"""Architectures, one file each, grouped by family. Importing this package registers them all."""

from archlab.models import autoencoder, cnn, diffusion, feedforward, gan, gnn, rnn, transformer  # noqa: F401  (registration side effects)
