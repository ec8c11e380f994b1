"""Synthetic long-range tasks: each a jittable ``sample(rng, batch_size, length) -> batch``.

base.py (the Task interface and batch shapes), registry.py (``TASKS``, ``get_task``), metrics.py
(``loss_and_metrics``), lengths.py (length sampling for length generalisation), noise.py
(distractors), common.py (token layout, checks), one file per task, chomsky/ (Delétang et al. 2023),
tfds_builder.py (fixed evaluation sets; imports tensorflow_datasets only when used).
"""
