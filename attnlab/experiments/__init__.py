"""Experiments: experiment-file grids (``spec``), the subprocess trial runner (``runner``),
results tables (``results``) and the sweep that ties them together (``sweep``)."""
