"""Sweeps: experiment-file grids (``spec``), the trial runner (``runner``), results tables
(``results``) and the sweep that ties them together (``sweep``)."""
