"""scripts/report.py on a tiny fake results tree: tables, figures (valid PNGs) and verdicts, and
--check failing once a committed number is edited by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from attnlab.report import build, claims, collect, data
from attnlab.sweeps import results
from tests.analysis.attention_maps_test import assert_png

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rows(grid_key, values, models, metric, score, **extra):
  rows = []
  for model in models:
    for v in values:
      for seed in (0, 1):
        for lr in (1e-3, 3e-3):
          value = score(model, v) + 0.01 * seed + (0.02 if lr == 3e-3 else 0.0)
          rows.append({"trial": f"{model}-{v}-{lr}-{seed}", "status": "done", "arg.model": model,
                       grid_key: v, "optimizer.learning_rate": lr, "seed": seed,
                       metric: value, f"val_{metric}": value, "converged": True,
                       "solved_step": 300 if value >= 0.95 else None, "param_count": 1000,
                       **extra})
  return rows


def _write(root, name, rows, **jsons):
  d = os.path.join(root, name)
  os.makedirs(d)
  results.write_csv(rows, os.path.join(d, "results.csv"))
  protocol = {"command": f"scripts/sweep.py --config experiments/{name}.py:report",
              "fields": {"num_steps": "100", "seed": "0, 1"}}
  for file, content in {"protocol": protocol, **jsons}.items():
    with open(os.path.join(d, f"{file}.json"), "w") as f:
      json.dump(content, f)


@pytest.fixture()
def tree(tmp_path):
  root = str(tmp_path / "results")
  os.makedirs(root)
  acc = lambda m, d: 0.95 if m != "rnn" or d <= 4 else 0.12  # noqa: E731
  lag = {f"{m}-64": {"model": m, "distance": 64, "distances": [0, 32, 64],
                     "mean_grad_norm": [1.0, 1e-3 if m == "rnn" else 0.5,
                                        1e-9 if m == "rnn" else 0.1]}
         for m in ("rnn", "lstm", "gru")}
  attention = {"trial": "transformer-64", "length": 65, "distance": 64, "examples": 8,
               "uniform": 1 / 65, "mass_on_key": {"block_0": [0.8, 0.1]}, "maps": []}
  _write(root, "distance", _rows("task.distance", [4, 64], ["rnn", "lstm", "gru", "transformer"],
                                 "accuracy", acc), gradient_lag=lag, attention=attention)
  _write(root, "adding", _rows("arg.length", [100, 400], ["rnn", "lstm", "gru"], "mse",
                               lambda m, t: 0.17 if m == "rnn" else 0.01))
  cost = [{"trial": f"{m}-{n}", "status": "done", "arg.model": m, "arg.length": n, "seed": 0,
           "tokens_per_s": (1e5 if m != "transformer" else 1e5 * 256 / n), "peak_mb": 500 + n / 10,
           "param_count": 1000, "accuracy": 0.1} for m in ("lstm", "mingru", "transformer")
          for n in (256, 1024, 4096)]
  for r in cost:
    if r["arg.model"] == "mingru":
      r["tokens_per_s"] *= 3
  _write(root, "cost", cost)
  return root


def test_report_tables_figures_and_verdicts(tree, tmp_path):
  out = str(tmp_path / "results.md")
  text = build.build(tree, out)
  assert text.startswith("# Results")
  for claim in claims.load():
    assert f"## {claim.title}" in text
  assert "*Verdict: yes.*" in text.split("## Simple RNNs forget")[1].split("## ")[0]
  assert "*Verdict: yes.*" in text.split("## Gates help")[1].split("## ")[0]
  assert "*Verdict: yes.*" in text.split("## Attention maps explain")[1].split("## ")[0]
  assert "not committed yet: docs/results/mqar" in text
  assert "| rnn | 0.975 ± 0.007 (lr 0.003) | 0.145 ± 0.007 (lr 0.003) |" in text
  assert "scripts/sweep.py --config experiments/distance.py:report" in text
  for figure in ("distance/accuracy_vs_distance.png", "distance/gradient_lag.png",
                 "adding/mse_vs_length.png", "cost/cost.png"):
    assert f"(results/{figure})" in text
    assert_png(os.path.join(tree, figure))


def _report(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "report.py"), *args],
                        capture_output=True, text=True, timeout=300)


def test_check_fails_once_a_number_is_edited(tree, tmp_path):
  out = str(tmp_path / "results.md")
  built = _report(f"--results={tree}", f"--out={out}")
  assert built.returncode == 0, built.stderr  # --check passing on a fresh build: build.check below
  with open(out) as f:
    text = f.read()
  with open(out, "w") as f:
    f.write(text.replace("0.975 ± 0.007", "0.999 ± 0.007", 1))
  bad = _report(f"--results={tree}", f"--out={out}", "--check")
  assert bad.returncode == 1 and "differs from a fresh build" in bad.stderr
  assert "-| rnn | 0.999" in bad.stderr and "+| rnn | 0.975" in bad.stderr


def test_committed_report_is_a_fresh_build_of_the_committed_results():
  results_dir = os.path.join(ROOT, "docs", "results")
  assert os.path.isdir(results_dir), "docs/results/ holds the results the report is built from"
  assert build.check(results_dir, os.path.join(ROOT, "docs", "results.md")) == []


def _state_rows(scores):
  """Rows of experiments/negative_eigenvalues.py: scores[(model, negative, task)] = (inside, beyond)."""
  rows = []
  for (model, negative, task), (inside, beyond) in scores.items():
    for seed in (0, 1):
      row = {"trial": f"{task}-{model}-{negative}-{seed}", "status": "done", "arg.task": task,
             "arg.model": model, "seed": seed, "param_count": 1000,
             "accuracy@10": inside, "accuracy@40": inside + 0.01 * seed, "accuracy@80": beyond}
      if negative:
        row["model.allow_negative_eigenvalues"] = True
      rows.append(row)
  return rows


def test_negative_eigenvalues_verdict_separates_unconverged_from_failed(tmp_path):
  root = str(tmp_path / "results")
  scores = {("deltanet", False, "parity"): (0.5, 0.5), ("deltanet", True, "parity"): (1.0, 0.9),
            ("mamba2", False, "parity"): (0.5, 0.5), ("mamba2", True, "parity"): (0.6, 0.5),
            ("lstm", False, "parity"): (1.0, 1.0), ("decoder", False, "parity"): (0.7, 0.5)}
  _write(root, "negative_eigenvalues", _state_rows(scores))
  with open(os.path.join(root, "negative_eigenvalues", "protocol.json"), "w") as f:
    json.dump({"command": "c", "fields": {"train_lengths": "1..40"}}, f)
  text = build.render(root)
  section = text.split("## Negative eigenvalues unlock state tracking")[1].split("\n## ")[0]
  assert "*Verdict: partly.*" in section
  assert "holds: deltanet on parity: 1.002 with negative eigenvalues, 0.502 without" in section
  assert "not converged: mamba2 on parity: 0.603" in section
  assert "holds: the LSTM control on parity: 1.002" in section
  # Inside the training lengths (10, 40) and beyond them (80), with the published result beside.
  assert "| deltanet (negative eigenvalues) | 1.002 ± 0.004 | 0.900 ± 0.000 |  |" in section
  published = "[0, 1] fails (chance), [-1, 1] solves"
  assert f"| deltanet | 0.502 ± 0.004 | 0.500 ± 0.000 | {published} |" in section

  scores[("mamba2", False, "parity")] = (0.95, 0.5)  # solved without: the claim fails there
  scores[("mamba2", True, "parity")] = (0.95, 0.5)
  os.remove(os.path.join(root, "negative_eigenvalues", "results.csv"))
  results.write_csv(_state_rows(scores), os.path.join(root, "negative_eigenvalues", "results.csv"))
  section = build.render(root).split("## Negative eigenvalues")[1].split("\n## ")[0]
  assert "*Verdict: partly.*" in section and "fails: mamba2 on parity" in section


def test_learning_rate_is_chosen_on_validation_and_the_test_metric_reported():
  rows = [{"trial": f"t{lr}{seed}", "status": "done", "optimizer.learning_rate": lr, "seed": seed,
           "accuracy": test, "val_accuracy": val, "converged": True, "solved_step": None}
          for seed in (0, 1) for lr, val, test in ((1e-3, 0.9, 0.5), (3e-3, 0.8, 0.7))]
  chosen = data.cell(rows, "accuracy")
  assert chosen.learning_rate == 1e-3 and chosen.mean == 0.5  # best on val, not on test
  assert chosen.converged is True and chosen.steps_text() == "not solved (0/2)"
  rows[0]["converged"] = False  # one chosen trial was still improving
  assert data.cell(rows, "accuracy").converged is False
  for r in rows:
    del r["converged"], r["val_accuracy"], r["solved_step"]  # a run from before the protocol
  legacy = data.cell(rows, "accuracy")
  assert legacy.learning_rate == 3e-3 and legacy.converged is None and legacy.steps_text() == "-"


def test_a_claim_resting_on_an_unconverged_cell_is_undetermined(tree):
  path = os.path.join(tree, "distance", "results.csv")
  rows = results.read_csv(path)
  for r in rows:
    if r["arg.model"] == "transformer" and r["task.distance"] == 64:
      r["converged"] = False
  os.remove(path)
  results.write_csv(rows, path)
  section = build.render(tree).split("## Simple RNNs forget")[1].split("\n## ")[0]
  assert "*Verdict: undetermined at this budget.* still improving: transformer at 64." in section
  assert "Checks as they stand (yes)" in section
  # The steps-to-solve table beside the accuracy table.
  assert "| steps to solve \\ distance | 4 | 64 |" in section
  assert "| rnn | 300 (4/4) | not solved (0/4) |" not in section  # chosen lr only: 2 seeds
  assert "| rnn | 300 (2/2) | not solved (0/2) |" in section


def test_validation_curves_are_collected_and_plotted(tree, tmp_path):
  trial = tmp_path / "sweep" / "lstm-64"
  trial.mkdir(parents=True)
  records = [{"step": 100, "split": "val", "lengths": {"65": {"accuracy": 0.2}}},
             {"step": 200, "split": "val", "lengths": {"65": {"accuracy": 0.4}}},
             {"step": 200, "split": "val", "lengths": {"65": {"accuracy": 0.5}}},  # a resume
             {"step": 200, "lengths": {"65": {"accuracy": 0.6}}}]  # the test record
  (trial / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
  assert collect.validation_curve(str(trial)) == {"step": [100, 200], "accuracy": [0.2, 0.5]}
  curves = {r["trial"]: {"step": [100, 200, 300] if r["seed"] else [100],
                         "accuracy": [0.2, 0.6, 1.0] if r["seed"] else [1.0]}
            for r in results.read_csv(os.path.join(tree, "distance", "results.csv"))}
  with open(os.path.join(tree, "distance", "curves.json"), "w") as f:
    json.dump(curves, f)
  exp = data.load(tree, "distance")
  table = data.pivot(exp.rows, "task.distance", "accuracy")
  series = data.curve_series(exp, table, "task.distance", 64, "accuracy")
  steps, means, stds = series["lstm"]
  assert steps == [100, 200, 300]  # seed 0 stopped at 100 and keeps its value
  assert means == pytest.approx([0.6, 0.8, 1.0]) and stds == pytest.approx([0.4, 0.2, 0.0])
  text = build.render(tree)
  assert "(results/distance/curves_distance64.png)" in text
  assert_png(os.path.join(tree, "distance", "curves_distance64.png"))


def test_state_tracking_claim_needs_its_control(tmp_path):
  root = str(tmp_path / "results")
  rows = []
  scores = {("lstm", 1): {"s5": 1.0, "z60": 1.0}, ("decoder", 1): {"s5": 0.3, "z60": 0.95},
            ("mamba", 1): {"s5": 0.4, "z60": 0.5}}
  for (model, layers), by_group in scores.items():
    for group, accuracy in by_group.items():
      for length in (8, 64):
        rows.append({"trial": f"{group}-{length}-{model}-{layers}", "status": "done",
                     "arg.group": group, "arg.length": length, "arg.model": model,
                     "model.num_layers": layers, "seed": 0, "accuracy": accuracy,
                     "val_accuracy": accuracy, "converged": True,
                     "solved_step": 100 if accuracy >= 0.99 else None, "param_count": 1000})
  _write(root, "state_tracking", rows)
  section = build.render(root).split("## State tracking needs recurrence")[1].split("\n## ")[0]
  assert "*Verdict: yes.*" in section
  assert "control: the best decoder/mamba on z60 at length 64 (decoder (1 layer)): 0.950" in section
  assert "| lstm (1 layer) | 100 (1/1) | 100 (1/1) |" in section  # steps to solve
  for r in rows:
    if r["arg.group"] == "z60" and r["arg.model"] == "decoder":
      r["accuracy"] = r["val_accuracy"] = 0.5  # the control fails: the budget, not the group
  os.remove(os.path.join(root, "state_tracking", "results.csv"))
  results.write_csv(rows, os.path.join(root, "state_tracking", "results.csv"))
  section = build.render(root).split("## State tracking needs recurrence")[1].split("\n## ")[0]
  assert "*Verdict: undetermined at this budget.* the control failed (control: the best" in section
