"""The claims the report checks, each declared in its experiment file (``experiments/*.py``,
``CLAIMS``): the article's claim, the check with its thresholds (fixed before the runs), the
committed experiments it reads (``docs/results/<name>/``) and a render function giving the
verdict (``kit.py``: yes, no, partly, or undetermined at this budget), its reason, and the
tables and figures. A claim whose experiment has not been committed reports "not run".
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from attnlab import configs

EXPERIMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "experiments")
# The report's order, the article's: experiment files not named here follow, by name.
ORDER = ("distance", "adding", "cost", "mqar", "noise", "moe", "length_generalization",
         "negative_eigenvalues", "state_tracking", "flip_flop", "listops", "mad")


@dataclasses.dataclass(frozen=True)
class Section:
  title: str
  claim: str  # what the article says
  check: str  # the test, with thresholds fixed before the runs
  verdict: str  # "yes", "no", "partly", "undetermined at this budget" or "not run"
  reason: str
  body: str = ""  # protocol, tables, figures (Markdown)


@dataclasses.dataclass(frozen=True)
class Claim:
  title: str
  claim: str
  check: str
  experiments: tuple[str, ...]  # folders under docs/results it reads
  render: Callable  # (experiments by name, results dir) -> (verdict, reason, body)


def load(experiments_dir: str = EXPERIMENTS_DIR) -> tuple[Claim, ...]:
  """Every claim the experiment files declare, in the report's order."""
  names = sorted((f[:-3] for f in os.listdir(experiments_dir) if f.endswith(".py")),
                 key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
  out = []
  for name in names:
    module = configs.load_module(os.path.join(experiments_dir, f"{name}.py"))
    out += [Claim(**claim) for claim in getattr(module, "CLAIMS", ())]
  return tuple(out)


def evaluate(claim: Claim, experiments: dict, results_dir: str) -> Section:
  missing = [name for name in claim.experiments if experiments.get(name) is None]
  if missing:
    return Section(claim.title, claim.claim, claim.check, "not run",
                   f"not committed yet: docs/results/{', '.join(missing)}")
  verdict, reason, body = claim.render({n: experiments[n] for n in claim.experiments},
                                       results_dir)
  return Section(claim.title, claim.claim, claim.check, verdict, reason, body)
