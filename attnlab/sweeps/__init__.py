"""Sweeps: experiment-file grids (``spec``), one trial attempt and the local executor (``runner``),
the SLURM and Ray executors (``slurm_executor``, ``ray_executor``), a trial's state read from its
files (``trial_state``), results tables (``results``) and the sweep that ties them together
(``sweep``)."""
