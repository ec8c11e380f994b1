"""The command-line programs (``scripts/*.py`` and the ``attnlab-*`` console scripts).

  train.py       attnlab-train        one training run (a config file and a workdir)
  sweep.py       attnlab-sweep        an experiment file's grid, resumable
  evaluate.py    attnlab-evaluate     a saved run at any lengths, attention maps, gradient lag
  plot.py        attnlab-plot         a sweep's figures
  build_data.py  attnlab-build-data   fixed evaluation sets (tfds)

Each reads flags, sets up logging (``common``) and calls library code. A configuration error is one
line ``error: ...`` on stderr and exit status 2, before anything is compiled (``--debug`` shows the
traceback). Logs show attnlab's own lines; third-party INFO lines come back with ``--verbosity=0``.
"""
