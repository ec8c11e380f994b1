"""Training: the data path, optimizers, the pure steps, parallelism, checkpoints and the loop."""
