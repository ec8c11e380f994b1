"""Synthetic long-range tasks: each a jittable ``sample(rng, batch_size, length) -> batch``."""
