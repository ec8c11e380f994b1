"""The results report: every claim of the article, and the published findings, measured by attnlab.

  data.py    what a committed experiment holds (``docs/results/<name>/``: the sweep's results.csv,
             its protocol, and the analyses' JSON) and the tables built from it
  collect.py copies a finished sweep (and its analyses) into ``docs/results/<name>/``
  claims.py  the claims, read from the experiment files (``experiments/*.py`` ``CLAIMS``: the
             article's claim, the check with its thresholds, and the render function)
  kit.py     what a render function uses: figure links, plot series and the verdict rules
  build.py   ``docs/results.md`` from ``docs/results/`` and nothing else; ``check`` rebuilds it and
             says whether the committed report differs

``scripts/report.py`` runs them.
"""
