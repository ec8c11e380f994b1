"""Training: the data path, optimizers, the pure train/eval steps, parallelism, checkpoints and the loop."""
