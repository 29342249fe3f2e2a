"""Bottom layer: errors, seeding, counting, atomic file writes, environment facts."""
