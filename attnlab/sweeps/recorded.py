"""Trials another run of the same sweep finished: its ``results.csv`` rows, kept in the workdir.

``scripts/sweep.py ... --resume_from FILE`` reads FILE (a ``results.csv`` of an earlier, partial run
of the same sweep, on this machine or another: the committed partial results, say), keeps the
rows of its finished trials (status ``done`` or ``nan``) as ``WORKDIR/recorded.csv`` and runs only
the other trials. Every later run, status and collection of that workdir reads them as finished
trials, so its ``results.csv`` is the whole sweep's. A row recorded there counts only when the
workdir holds no finished run of that trial itself.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

from attnlab.sweeps import results, runner, spec

FILE = "recorded.csv"


def _same(row_value: Any, override: Any) -> bool:
  """Whether a CSV cell holds the override (as results.csv writes and reads it back)."""
  return row_value == results.parse_cell(str(override))


def read(path: str, trials: Sequence[spec.Trial],
         log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
  """{trial name: row} of the finished trials in the results file ``path``.

  ValueError if the file is missing, if none of its rows is a trial of ``trials``, or if a row's
  grid values differ from its trial's (another sweep's file). Rows of other trials are left out
  (logged); empty cells are dropped, as a fresh row never holds them.
  """
  rows = results.read_csv(path)
  by_name = {t.name: t for t in trials}
  out, unknown = {}, []
  for row in rows:
    trial = by_name.get(row.get("trial"))
    if trial is None:
      unknown.append(str(row.get("trial")))
      continue
    for key, value in trial.overrides.items():
      if not _same(row.get(key), value):
        raise ValueError(f"--resume_from {path}: trial {trial.name} has {key}={row.get(key)!r} "
                         f"there but {value!r} in this sweep: not a results file of this sweep")
    if row.get("status") in runner.TERMINAL:
      out[trial.name] = {k: v for k, v in row.items() if v is not None}
  if rows and len(unknown) == len(rows):
    raise ValueError(f"--resume_from {path}: none of its {len(rows)} trials is one of this "
                     f"sweep's (its first: {unknown[0]!r}; this sweep's first: "
                     f"{trials[0].name!r})")
  if unknown:
    log(f"[sweep] --resume_from {path}: {len(unknown)} trial(s) not in this sweep left out: "
        f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
  return out


def load(workdir: str) -> dict[str, dict[str, Any]]:
  """The rows recorded in ``workdir`` (none: {})."""
  path = os.path.join(workdir, FILE)
  if not os.path.isfile(path):
    return {}
  return {r["trial"]: {k: v for k, v in r.items() if v is not None}
          for r in results.read_csv(path)}


def save(workdir: str, recorded: Mapping[str, Mapping[str, Any]]) -> None:
  if recorded:
    results.write_csv(list(recorded.values()), os.path.join(workdir, FILE))


def pending(trials: Sequence[spec.Trial], recorded: Mapping[str, Any],
            log: Callable[[str], None] | None = None) -> list[spec.Trial]:
  """The trials not recorded (each recorded one is logged as skipped, given ``log``)."""
  out = []
  for trial in trials:
    if trial.name in recorded:
      if log is not None:
          log(f"[sweep] {trial.name}: recorded in {FILE} ({recorded[trial.name].get('status')}), "
            "skipped")
    else:
      out.append(trial)
  return out


def collect(workdir: str, trials: Sequence[spec.Trial],
            recorded: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
  """One row per trial: its run in ``workdir`` if that finished, else its recorded row if any,
  else what its directory says (pending, failed)."""
  rows = []
  for trial in trials:
    finished_here = runner.is_finished(os.path.join(workdir, trial.name))
    if trial.name in recorded and not finished_here:
      rows.append(dict(recorded[trial.name]))
    else:
      rows.append(results.trial_row(workdir, trial))
  return rows
