"""The results report: every claim of the article, and the published findings, measured by attnlab.

  data.py    what a committed experiment holds (``docs/results/<name>/``: the sweep's results.csv,
             its protocol, and the analyses' JSON) and the tables built from it
  collect.py copies a finished sweep (and its analyses) into ``docs/results/<name>/``
  claims.py  the claims: what the article says and the check, thresholds written before the runs
  sections.py  per claim, its table and figure from the committed results and the checks' outcome
  build.py   ``docs/results.md`` from ``docs/results/`` and nothing else; ``check`` rebuilds it and
             says whether the committed report differs

``scripts/report.py`` runs them.
"""
