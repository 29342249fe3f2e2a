"""Architectures, one file each, grouped by family. Importing this package registers them all."""

from archlab.models import cnn, feedforward, gnn, rnn  # noqa: F401  (registration side effects)
