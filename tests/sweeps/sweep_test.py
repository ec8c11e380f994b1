"""End-to-end sweeps through scripts/sweep.py and the real training loop (tiny, CI-sized)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from attnlab.sweeps import results
from tests.analysis.attention_maps_test import assert_png

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
EXPERIMENT = textwrap.dedent(f"""
    from attnlab import configs
    DISTANCE = configs.load_module({os.path.join(ROOT, "experiments", "distance.py")!r})

    def get_config(arg=None):
      # The model comes from the arg, as in distance.py: its config section has that model's fields.
      model = configs.parse_arg(arg).get("model", "lstm")
      c = DISTANCE.get_config(f"smoke,model={{model}}")
      c.model.target_params = 0  # fixed width: no sizing search
      # Many cheap checkpoints leave a wide window to kill a trial between two of them.
      c.num_steps, c.checkpoint_every, c.eval_every, c.log_every = 200, 10, 100, 20
      return c

    def get_sweep(arg=None):
      trials = [{{"arg.model": "lstm", "task.distance": 2, "seed": 0}},
                {{"arg.model": "transformer", "task.distance": 4, "seed": 0}}]
      if arg == "with_bad":
        trials.append({{"arg.model": "nope", "task.distance": 2, "seed": 0}})
      return trials
""")
COMPARED = ("status", "step", "param_count", "accuracy", "loss", "accuracy@5", "loss@5")


def _sweep(*args, **kwargs):
  return subprocess.run([sys.executable, os.path.join(SCRIPTS, "sweep.py"), *args],
                        capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  path = tmp_path_factory.mktemp("exp") / "exp.py"
  path.write_text(EXPERIMENT)
  return str(path)


@pytest.fixture(scope="module")
def finished(experiment, tmp_path_factory):
  """An uninterrupted sweep, two trials at a time, with one trial that cannot start (no pre-flight:
  preflight_test has it stop the sweep)."""
  workdir = str(tmp_path_factory.mktemp("sweep") / "full")
  result = _sweep("--config", f"{experiment}:with_bad", "--workdir", workdir, "--workers", "2",
                  "--nopreflight")
  return workdir, result


def _by_trial(workdir):
  return {r["trial"]: r for r in results.read_csv(os.path.join(workdir, "results.csv"))}


def test_smoke_sweep_writes_results_and_table(finished):
  workdir, result = finished
  assert result.returncode == 1, result.stderr[-3000:]  # one trial failed, the others finished
  rows = _by_trial(workdir)
  assert set(rows) == {"lstm-distance2-seed0", "transformer-distance4-seed0", "nope-distance2-seed0"}
  for name in ("lstm-distance2-seed0", "transformer-distance4-seed0"):
    row = rows[name]
    assert row["status"] == "done" and row["step"] == 200 and row["seed"] == 0
    assert 0.0 <= row["accuracy@5"] <= 1.0 and row["accuracy"] == row["accuracy@5"]
    assert row["param_count"] > 0 and row["wall_s"] > 0 and row["tokens_per_s"] > 0
    assert row["init"] == "torch"
  lstm, transformer = rows["lstm-distance2-seed0"], rows["transformer-distance4-seed0"]
  assert lstm["block"] == "stacked" and transformer["block"] == "residual"
  d = 16  # distance.py's smoke width (target_params 0 here); one layer: h and c
  assert lstm["state_size"] == 2 * d and transformer["state_size"] is None  # an encoder
  bad = rows["nope-distance2-seed0"]
  assert bad["status"] == "failed" and "nope" in bad["error"]
  assert "nope-distance2-seed0" in result.stderr  # named in the summary line
  table = open(os.path.join(workdir, "results.md")).read()
  assert "| model | distance | accuracy (mean ± std) | best (seed) |" in table
  assert table.split("\n\n")[0] in result.stdout
  assert "failed: nope-distance2-seed0" in table

  plot = subprocess.run([sys.executable, os.path.join(SCRIPTS, "plot.py"), "--workdir", workdir],
                        capture_output=True, text=True, timeout=300)
  assert plot.returncode == 0, plot.stderr[-2000:]
  assert plot.stdout.split() == [os.path.join(workdir, "accuracy_vs_distance.png")]
  assert_png(plot.stdout.split()[0])
  by_state = subprocess.run([sys.executable, os.path.join(SCRIPTS, "plot.py"), "--workdir", workdir,
                             "--x", "state_size"], capture_output=True, text=True, timeout=300)
  assert by_state.returncode == 0, by_state.stderr[-2000:]
  assert by_state.stdout.split() == [os.path.join(workdir, "accuracy_vs_state_size.png")]
  assert_png(by_state.stdout.split()[0])
  bad_x = subprocess.run([sys.executable, os.path.join(SCRIPTS, "plot.py"), "--workdir", workdir,
                          "--x", "width"], capture_output=True, text=True, timeout=300)
  assert bad_x.returncode == 2 and "--x='width': not a numeric column" in bad_x.stderr


def test_killed_sweep_resumes_to_the_same_results(experiment, finished, tmp_path):
  workdir = str(tmp_path / "killed")
  first, second = (os.path.join(workdir, t) for t in ("lstm-distance2-seed0",
                                                      "transformer-distance4-seed0"))
  # The first trial finished in an earlier sweep (copied from the uninterrupted one, saving a run).
  shutil.copytree(os.path.join(finished[0], "lstm-distance2-seed0"), first)
  summary_mtime = os.path.getmtime(os.path.join(first, "summary.json"))
  proc = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "sweep.py"), "--config",
                           experiment, "--workdir", workdir, "--workers", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  deadline = time.time() + 500
  try:
    # Wait until the running trial has committed a checkpoint, then kill sweep and trial.
    ckpts = os.path.join(second, "checkpoints")
    while time.time() < deadline and proc.poll() is None:
      if os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts)):
        break
      time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed"
  finally:
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep's whole process group, mid-way
    proc.wait()
  assert not os.path.exists(os.path.join(second, "summary.json"))

  result = _sweep("--config", experiment, "--workdir", workdir, "--workers", "1")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "lstm-distance2-seed0: finished (done), skipped" in result.stdout
  assert "transformer-distance4-seed0: resuming from step" in result.stdout
  assert os.path.getmtime(os.path.join(first, "summary.json")) == summary_mtime  # not re-run
  with open(os.path.join(second, "train.err")) as f:
    assert "resumed from checkpoint step" in f.read()

  resumed, uninterrupted = _by_trial(workdir), _by_trial(finished[0])
  assert set(resumed) == {"lstm-distance2-seed0", "transformer-distance4-seed0"}
  for name, row in resumed.items():
    assert {k: row[k] for k in COMPARED} == {k: uninterrupted[name][k] for k in COMPARED}


def test_file_without_grid_is_refused(tmp_path):
  path = tmp_path / "single.py"
  path.write_text("def get_config(arg=None):\n  return None\n")
  result = _sweep("--config", str(path), "--workdir", str(tmp_path / "w"))
  assert result.returncode == 2
  assert "defines no get_sweep" in result.stderr
