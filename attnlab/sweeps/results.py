"""Sweep results: one row per trial (``results.csv``) and a Markdown table over seeds.

A row holds the trial's grid values, its seed, its status, ``solved_step`` and ``converged``
(``train/convergence.py``), the final test evaluation per length (``accuracy@64``) and averaged
over the evaluated lengths (``accuracy``), the same again as ``test_*`` (means of every metric, the
task's solve metric per length: ``test_accuracy@64``) with the last validation evaluation beside
it (``val_*``), the model's block, initialisation and decoding state size (floats per sequence at
the longest evaluation length), the parameter count, the wall time, the training throughput and
the peak memory of the trial process. The unprefixed metric columns are the test evaluation under
the names the report and the plots read.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from typing import Any, Iterable, Mapping, Sequence

from attnlab.sweeps import runner, spec

# Metric name -> whether larger is better. The first one present is the table's default metric.
METRICS = {"accuracy": True, "sequence_accuracy": True, "mse": False, "loss": False,
           "tokens_per_s": True, "peak_mb": False}
_THROUGHPUT_KEYS = ("tokens_per_s", "tokens/s", "train/tokens_per_s")
# What the model was, from summary.json: not grid values, but what a table must state.
FACTS = ("block", "init", "state_size")
_PEAK_KEYS = ("peak_memory_mb", "peak_mb", "memory/peak_mb")
OUTCOMES = ("solved_step", "converged")  # from summary.json: how the trial ended
SPLITS = ("test_", "val_")  # prefixes of the test and validation metric columns
TIMING = ("wall_s", "tokens_per_s", "peak_mb")  # the columns that differ between identical runs


def metric_of(column: str) -> str | None:
  """The metric a column holds (``val_accuracy@64`` -> ``accuracy``); None for other columns."""
  name = column.split("@")[0]
  for prefix in SPLITS:
    if name.startswith(prefix):
      name = name[len(prefix):]
      break
  return name if name in METRICS else None


def is_result(column: str) -> bool:
  """A column that a trial's outcome fills, not one of its grid values."""
  return column in OUTCOMES or metric_of(column) is not None or "@" in column


def read_jsonl(path: str) -> list[dict]:
  records = []
  try:
    with open(path) as f:
      for line in f:
        line = line.strip()
        if line:
          try:
            records.append(json.loads(line))
          except ValueError:
            pass  # a line cut short by a kill
  except OSError:
    pass
  return records


def _median_logged(records: list[dict], keys: Sequence[str]) -> float | None:
  """Median of a logged quantity, leaving out the first record (it includes compilation)."""
  for key in keys:
    values = [r[key] for r in records[1:] or records if isinstance(r.get(key), (int, float))]
    if values:
      return float(statistics.median(values))
  return None


def trial_row(workdir: str, trial: spec.Trial) -> dict[str, Any]:
  """Everything known about one trial, read from its workdir."""
  trial_dir = os.path.join(workdir, trial.name)
  summary = runner.read_json(os.path.join(trial_dir, "summary.json")) or {}
  attempt = runner.read_json(os.path.join(trial_dir, runner.TRIAL_RECORD)) or {}
  config = runner.read_json(os.path.join(trial_dir, "config.json")) or {}
  row: dict[str, Any] = {"trial": trial.name}
  status = summary.get("status") or ("failed" if attempt else "not run")
  if attempt.get("status") == "failed":
    status = "failed"
  row["status"] = status
  row.update(trial.overrides)
  if "seed" not in row:
    row["seed"] = config.get("seed")
  row["step"] = summary.get("step")
  for key in OUTCOMES:
    row[key] = summary.get(key)
  final = summary.get("final_eval")
  if not final:  # a run from before the validation split logged its test evaluations there
    evals = [r for r in read_jsonl(os.path.join(trial_dir, "eval.jsonl")) if "split" not in r]
    final = evals[-1] if evals and status in runner.TERMINAL else None
  if final:
    by_length = sorted(final.get("lengths", {}).items(), key=lambda kv: int(kv[0]))
    names = [m for m in METRICS if any(m in metrics for _, metrics in by_length)]
    for name in names:
      values = [metrics[name] for _, metrics in by_length if name in metrics]
      row[name] = sum(values) / len(values)
    for length, metrics in by_length:
      for name in names:
        if name in metrics:
          row[f"{name}@{length}"] = metrics[name]
  row.update({k: v for k, v in summary.items() if k.startswith(SPLITS) and metric_of(k)})
  logged = read_jsonl(os.path.join(trial_dir, "metrics.jsonl"))
  row["tokens_per_s"] = _median_logged(logged, _THROUGHPUT_KEYS)
  for key in FACTS:
    row[key] = summary.get(key)
  row["param_count"] = summary.get("param_count")
  row["wall_s"] = attempt.get("total_wall_s", summary.get("wall_s"))
  device_peak = _median_logged(logged[-1:], _PEAK_KEYS)
  row["peak_mb"] = device_peak if device_peak is not None else attempt.get("peak_rss_mb")
  if status not in runner.TERMINAL:
    tail = (attempt.get("stderr_tail") or "").strip().splitlines()
    row["error"] = tail[-1] if tail else ""
  return row


def collect(workdir: str, trials: Sequence[spec.Trial]) -> list[dict[str, Any]]:
  return [trial_row(workdir, t) for t in trials]


def columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
  """Column order: identity and grid values first, then metrics, then costs and errors."""
  seen: dict[str, None] = {}
  for row in rows:
    for key in row:
      seen.setdefault(key, None)
  tail = [*FACTS, "param_count", "wall_s", "tokens_per_s", "peak_mb", "error"]
  head = [k for k in seen if k not in tail and not is_result(k)]
  outcomes = [k for k in OUTCOMES if k in seen]
  prefixes = ("", *SPLITS)
  means = [p + m for p in prefixes for m in METRICS if p + m in seen and p + m not in tail]

  def order(key):
    name, length = key.split("@")
    prefix = next((p for p in SPLITS if name.startswith(p)), "")
    metric = metric_of(name)
    return (prefixes.index(prefix), list(METRICS).index(metric) if metric else 99,
            int(length) if length.isdigit() else 0, key)

  per_length = sorted((k for k in seen if "@" in k), key=order)
  return head + outcomes + means + per_length + [k for k in tail if k in seen]


def write_csv(rows: Sequence[Mapping[str, Any]], path: str) -> None:
  """Written whole or not at all: a sweep rewrites it as trials end, and may be killed meanwhile."""
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns(rows), restval="")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
  os.replace(tmp, path)


def parse_cell(value: str) -> Any:
  """A CSV cell as written by write_csv: None, int, float, bool or str."""
  if value == "":
    return None
  for kind in (int, float):
    try:
      return kind(value)
    except ValueError:
      pass
  if value in ("True", "False"):
    return value == "True"
  return value


TEXT = ("trial", "status", "error")  # read as written: a diverged trial's status "nan" is no float


def read_csv(path: str) -> list[dict[str, Any]]:
  if not os.path.isfile(path):
    raise ValueError(f"no results file {path!r}: run scripts/sweep.py first")
  with open(path, newline="") as f:
    return [{k: (v or None) if k in TEXT else parse_cell(v) for k, v in row.items()}
            for row in csv.DictReader(f)]


def grid_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
  """The grid columns other than the seed: what identifies a cell of the table."""
  skip = {"trial", "status", "seed", "step"}
  return [k for k in columns(rows) if k not in skip and not is_result(k)
          and k not in ("param_count", "wall_s", "error", *FACTS)]


def default_metric(rows: Sequence[Mapping[str, Any]]) -> str:
  for name in METRICS:
    if any(isinstance(r.get(name), (int, float)) for r in rows):
      return name
  return "accuracy"  # nothing finished yet: the table then shows every cell as failed


def aggregate(rows: Sequence[Mapping[str, Any]], metric: str,
              keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Groups rows by grid cell (all grid keys but the seed): mean, std over seeds, best seed."""
  keys = list(grid_keys(rows) if keys is None else keys)
  higher = METRICS.get(metric.split("@")[0], True)
  groups: dict[tuple, list] = {}
  for row in rows:
    groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
  out = []
  for cell, members in groups.items():
    ok = [r for r in members if r.get("status") in runner.TERMINAL
          and isinstance(r.get(metric), (int, float)) and not math.isnan(r[metric])]
    values = [float(r[metric]) for r in ok]
    entry = dict(zip(keys, cell))
    entry.update(n=len(values), trials=len(members), metric=metric,
                 failed=[r["trial"] for r in members if r.get("status") not in runner.TERMINAL])
    if values:
      best = (max if higher else min)(ok, key=lambda r: r[metric])
      entry.update(mean=statistics.fmean(values),
                   std=statistics.stdev(values) if len(values) > 1 else 0.0,
                   best=float(best[metric]), best_seed=best.get("seed"))
    for extra in ("param_count", "wall_s", "tokens_per_s", "peak_mb"):
      xs = [float(r[extra]) for r in ok if isinstance(r.get(extra), (int, float))]
      entry[extra] = statistics.fmean(xs) if xs else None
    out.append(entry)
  return out


def _fmt(value: Any, digits: int = 3) -> str:
  if value is None:
    return "-"
  if isinstance(value, float):
    if abs(value) >= 1000 or digits == 0:
      return f"{value:,.0f}"
    return f"{value:.{digits}f}"
  return str(value)


def markdown_table(groups: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
  """A Markdown table: one row per grid cell, mean ± std over seeds and the best seed."""
  if not groups:
    return "(no trials)"
  metric = groups[0]["metric"]
  leaves = [k.rsplit(".", 1)[-1] for k in keys]
  labels = [leaf if leaves.count(leaf) == 1 and leaf != "name" else k for k, leaf in zip(keys, leaves)]
  labels = [k.split(".")[0] if k.endswith(".name") else k for k in labels]
  header = labels + [f"{metric} (mean ± std)", "best (seed)", "seeds ok", "params"]
  extras = [x for x in ("tokens_per_s", "peak_mb") if x != metric
            and any(g.get(x) is not None for g in groups)]
  header += [{"tokens_per_s": "tokens/s", "peak_mb": "peak MB"}[x] for x in extras] + ["wall s"]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  for g in groups:
    cells = [_fmt(g.get(k)) for k in keys]
    if g["n"]:
      cells += [f"{_fmt(g['mean'])} ± {_fmt(g['std'])}", f"{_fmt(g['best'])} ({g['best_seed']})"]
    else:
      cells += ["failed", "-"]
    ok = f"{g['n']}/{g['trials']}"
    if g["failed"]:
      ok += " (failed: " + ", ".join(g["failed"]) + ")"
    cells += [ok, _fmt(g.get("param_count"), 0)]
    cells += [_fmt(g.get(x), 0) for x in extras] + [_fmt(g.get("wall_s"), 0)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def table(rows: Sequence[Mapping[str, Any]], metric: str | None = None) -> str:
  """The Markdown table of ``rows`` over seeds (``metric`` defaults to the first one present)."""
  metric = metric or default_metric(rows)
  keys = grid_keys(rows)
  return markdown_table(aggregate(rows, metric, keys), keys)


def write_table(rows: Sequence[Mapping[str, Any]], path: str, metric: str | None = None) -> str:
  metric = metric or default_metric(rows)
  text = table(rows, metric)
  std_note = ("mean ± sample standard deviation over the seeds that finished; "
              "best (seed): the best value and the seed that reached it.")
  with open(path, "w") as f:
    f.write(f"{text}\n\n{metric}: final evaluation, averaged over the evaluated lengths; {std_note}\n")
  return text
