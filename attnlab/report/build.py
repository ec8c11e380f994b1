"""``docs/results.md`` from ``docs/results/`` and nothing else (its figures go beside each
experiment's files); ``check`` rebuilds it in a scratch copy and compares."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile

from attnlab.report import claims, data

HEADER = """# Results

Every claim of the article attnlab starts from, and the published findings it is modelled on,
measured by attnlab. Each section states its check, with thresholds fixed before the runs, the
protocol and exact command, the table and figure, and a verdict. Built by `scripts/report.py` from
the results committed under `docs/results/` and nothing else (`scripts/report.py --check` fails if
this file differs from what they give); do not edit it by hand. All runs: the project's 2-core CPU
VM, float32, `:report` sizes of the experiment files (smaller than their full sizes: fewer steps,
seeds and lengths), unless a section says otherwise.
"""


def render(results_dir: str) -> str:
  """The report's Markdown (figures are written under ``results_dir`` as a side effect)."""
  every = claims.load()
  names = {name for claim in every for name in claim.experiments}
  experiments = {name: data.load(results_dir, name) for name in sorted(names)}
  sections = [claims.evaluate(claim, experiments, results_dir) for claim in every]
  summary = data.markdown(["claim", "verdict", "why"],
                          [[f"[{s.title}](#{_anchor(s.title)})", f"**{s.verdict}**", s.reason]
                           for s in sections])
  parts = [HEADER, summary]
  for s in sections:
    parts += [f"## {s.title}", f"*Claim.* {s.claim}", f"*Check.* {s.check}",
              f"*Verdict: {s.verdict}.* {s.reason}"]
    if s.body:
      parts.append(s.body)
  return "\n\n".join(parts).rstrip() + "\n"


def _anchor(title: str) -> str:
  keep = "".join(c for c in title.lower() if c.isalnum() or c in " -")
  return keep.replace(" ", "-")


def build(results_dir: str, out_path: str) -> str:
  text = render(results_dir)
  with open(out_path, "w") as f:
    f.write(text)
  return text


def check(results_dir: str, out_path: str) -> list[str]:
  """The differences between the committed report and a fresh build (empty: they agree)."""
  with open(out_path) as f:
    committed = f.read()
  with tempfile.TemporaryDirectory() as scratch:
    copy = os.path.join(scratch, os.path.basename(os.path.normpath(results_dir)))
    shutil.copytree(results_dir, copy)
    fresh = render(copy)
  return list(difflib.unified_diff(committed.splitlines(), fresh.splitlines(), "committed",
                                   "rebuilt", lineterm="", n=1))
