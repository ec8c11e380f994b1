"""The sweep machinery against a stand-in training program (fast; the real loop is in sweep_test)."""

from __future__ import annotations

import csv
import os
import sys
import textwrap

import pytest

from attnlab.sweeps import results, sweep

FAKE_TRAIN = textwrap.dedent("""
    import json, os, sys
    args = sys.argv[1:]
    workdir = args[args.index("--workdir") + 1]
    over = dict(a[len("--config."):].split("=", 1) for a in args if a.startswith("--config."))
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "runs.txt"), "a") as f:
      f.write(args[args.index("--config") + 1] + "\\n")
    if over.get("model.name") == "bad":
      print("Traceback ...", file=sys.stderr)
      print("ValueError: model.name='bad'; allowed: ['good']", file=sys.stderr)
      sys.exit(1)
    seed = int(over["seed"])
    acc = 0.5 + 0.1 * seed
    json.dump({"seed": seed}, open(os.path.join(workdir, "config.json"), "w"))
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      for tps in (1.0, 100.0, 300.0, 200.0):
        f.write(json.dumps({"step": 1, "tokens_per_s": tps}) + "\\n")
    json.dump({"status": "done", "step": 10, "param_count": 100, "wall_s": 1.5,
               "final_eval": {"step": 10, "lengths": {
                   "16": {"accuracy": acc / 2, "loss": 1.0},
                   "8": {"accuracy": acc, "loss": 1 - acc}}}},
              open(os.path.join(workdir, "summary.json"), "w"))
""")

EXPERIMENT = textwrap.dedent("""
    def get_config(arg=None):
      raise AssertionError("the sweep itself never builds a config")

    def get_sweep(arg=None):
      cells = [{"model.name": "good", "task.distance": 4, "seed": s} for s in (0, 1)]
      return cells + [{"model.name": "bad", "task.distance": 4, "seed": 0}]
""")


@pytest.fixture()
def fake(tmp_path):
  train = tmp_path / "fake_train.py"
  train.write_text(FAKE_TRAIN)
  experiment = tmp_path / "exp.py"
  experiment.write_text(EXPERIMENT)
  return [sys.executable, str(train)], f"{experiment}:smoke", str(tmp_path / "sweep")


def _runs(workdir, trial):
  with open(os.path.join(workdir, trial, "runs.txt")) as f:
    return f.read().splitlines()


def test_sweep_records_failure_skips_finished_and_tabulates(fake):
  command, config, workdir = fake
  logs = []
  rows, table = sweep.run_sweep(config, workdir, workers=2, train_command=command, log=logs.append)
  by_trial = {r["trial"]: r for r in rows}
  assert set(by_trial) == {"good-distance4-seed0", "good-distance4-seed1", "bad-distance4-seed0"}
  assert by_trial["bad-distance4-seed0"]["status"] == "failed"
  assert "model.name='bad'" in by_trial["bad-distance4-seed0"]["error"]
  good = by_trial["good-distance4-seed1"]
  assert good["status"] == "done" and good["seed"] == 1
  assert good["accuracy@8"] == pytest.approx(0.6) and good["accuracy@16"] == pytest.approx(0.3)
  assert good["accuracy"] == pytest.approx(0.45)  # mean over the evaluated lengths
  assert good["tokens_per_s"] == 200.0  # median of the logged values after the first
  assert good["param_count"] == 100 and good["peak_mb"] > 0
  # The trial got the experiment's arg and the absolute file path.
  assert _runs(workdir, "good-distance4-seed0")[0].endswith("exp.py:smoke")

  with open(os.path.join(workdir, "results.csv")) as f:
    csv_rows = list(csv.DictReader(f))
  assert len(csv_rows) == 3
  assert list(csv_rows[0])[:5] == ["trial", "status", "model.name", "task.distance", "seed"]
  assert {"accuracy", "loss", "accuracy@8", "accuracy@16", "param_count", "wall_s"} <= set(csv_rows[0])
  assert results.read_csv(os.path.join(workdir, "results.csv"))[1]["accuracy@8"] == pytest.approx(0.6)

  lines = table.splitlines()
  assert "accuracy (mean ± std)" in lines[0] and "best (seed)" in lines[0]
  good_line = next(l for l in lines if "| good |" in l)
  assert "0.412 ± 0.053" in good_line and "0.450 (1)" in good_line and "2/2" in good_line
  bad_line = next(l for l in lines if "| bad |" in l)
  assert "failed" in bad_line and "bad-distance4-seed0" in bad_line
  assert table in open(os.path.join(workdir, "results.md")).read()
  assert sweep.failed(rows) == ["bad-distance4-seed0"]

  # Again: finished trials are skipped; the failed one is tried again.
  logs.clear()
  sweep.run_sweep(config, workdir, workers=2, train_command=command, log=logs.append)
  assert len(_runs(workdir, "good-distance4-seed0")) == 1
  assert len(_runs(workdir, "bad-distance4-seed0")) == 2
  assert any("good-distance4-seed0: finished (done), skipped" in l for l in logs)


def _without_timing(rows):
  return [{k: v for k, v in r.items() if k not in results.TIMING and v is not None} for r in rows]


def test_resume_from_runs_only_what_the_file_has_not_finished(fake, tmp_path):
  command, config, full = fake
  sweep.run_sweep(config, full, workers=2, train_command=command, log=lambda line: None)
  # The file of a run that stopped after its first trial, on another machine.
  rows = results.read_csv(os.path.join(full, "results.csv"))
  partial = [rows[0]] + [{k: r[k] for k in ("trial", "model.name", "task.distance", "seed")}
                         | {"status": "not run"} for r in rows[1:]]
  results.write_csv(partial, str(tmp_path / "partial.csv"))
  workdir, logs = str(tmp_path / "elsewhere"), []
  merged, _ = sweep.run_sweep(config, workdir, train_command=command, log=logs.append,
                              resume_from=str(tmp_path / "partial.csv"))
  assert "[sweep] good-distance4-seed0: recorded in recorded.csv (done), skipped" in logs
  assert not os.path.exists(os.path.join(workdir, "good-distance4-seed0"))  # not run here
  assert len(_runs(workdir, "good-distance4-seed1")) == len(_runs(workdir, "bad-distance4-seed0")) == 1
  assert _without_timing(merged) == _without_timing(rows)
  assert (_without_timing(results.read_csv(os.path.join(workdir, "results.csv")))
          == _without_timing(rows))
  # The workdir keeps what it was resumed from: a plain rerun, --status and --collect_only agree.
  sweep.run_sweep(config, workdir, train_command=command, log=lambda line: None)
  assert not os.path.exists(os.path.join(workdir, "good-distance4-seed0"))
  states, table = sweep.status(workdir)
  assert [(s.trial, s.state) for s in states] == [
      ("good-distance4-seed0", "done"), ("good-distance4-seed1", "done"),
      ("bad-distance4-seed0", "failed")]
  assert "2/2" in table
  again, _ = sweep.run_sweep(config, workdir, train_command=command, collect_only=True)
  assert _without_timing(again) == _without_timing(rows)


def test_workers_must_be_positive(fake):
  command, config, workdir = fake
  with pytest.raises(ValueError, match="workers=0"):
    sweep.run_sweep(config, workdir, workers=0, train_command=command)


SLOW_TRAIN = textwrap.dedent("""
    import os, signal, sys, time
    workdir = sys.argv[sys.argv.index("--workdir") + 1]
    def stop(signum, frame):
      open(os.path.join(workdir, "stopped.txt"), "w").write(str(signum))
      sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    open(os.path.join(workdir, "started.txt"), "w").close()
    time.sleep(60)
""")


def test_sigterm_to_the_sweep_reaches_the_trials(fake, tmp_path):
  import signal
  import subprocess
  import time
  _, config, workdir = fake
  slow = tmp_path / "slow_train.py"
  slow.write_text(SLOW_TRAIN)
  code = ("import sys; from attnlab.sweeps import sweep; "
          f"sweep.run_sweep({config!r}, {workdir!r}, workers=2, "
          f"train_command=[sys.executable, {str(slow)!r}])")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
  started = [os.path.join(workdir, t, "started.txt")
             for t in ("good-distance4-seed0", "good-distance4-seed1")]
  deadline = time.time() + 60
  while not all(map(os.path.exists, started)) and time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)  # to the sweep alone, not its process group
  proc.wait(timeout=60)
  assert proc.returncode != 0
  for path in started:
    with open(path.replace("started", "stopped")) as f:
      assert f.read() == str(int(signal.SIGTERM))
