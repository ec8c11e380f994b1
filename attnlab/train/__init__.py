"""Training: model assembly, optimizers, the pure train/eval steps, parallelism and the loop."""
