"""scripts/train.py speaks to people: a configuration mistake is one error line and exit status 2
(no traceback, nothing written, nothing compiled); a run's log holds no third-party INFO lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
BASE = os.path.join(ROOT, "experiments", "base.py")
SMOKE = f"--config={BASE}:model=lstm,task=copy,smoke"
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}

# (arguments, what the error line must name)
MISTAKES = [
    ([f"--config={BASE}:model=lstmm"], r"model.name='lstmm'; allowed: \[.*'lstm'"),
    ([f"--config={BASE}:model=transformer", "--config.model.d_model=30"],
     r"model.d_model=30 is not divisible by model.num_heads=4"),
    ([SMOKE, "--config.optimizer.learning_rate=-0.1"], r"optimizer.learning_rate=-0.1; must be >= 0"),
    ([f"--config={ROOT}/experiments/nope.py"], r"config file '.*nope.py' does not exist"),
    ([f"--config={BASE}:modle=lstm"], r"unknown key\(s\) \['modle'\]; allowed"),
    ([SMOKE, "--config.model.dmodel=3"], r"no field 'dmodel'; closest valid names: model.d_model"),
    ([SMOKE, "--config.model.num_heads=2"], r"config.model has no field 'num_heads'"),
    ([SMOKE, "--config.batch_size=abc"], r"--config.batch_size=abc"),
    ([SMOKE, "--config.batch_size=0"], r"batch_size=0; must be >= 1"),
    ([SMOKE, "--config.model.embed_std=-0.5"], r"model.embed_std=-0.5; allowed: a number >= 0"),
    ([f"--config={BASE}:task=copyy"], r"task.name='copyy'; allowed"),
    ([SMOKE, "--config.train_min_length=9", "--config.train_max_length=5"],
     r"train_max_length=5 < train_min_length=9"),
    ([SMOKE, "--config.compute_dtype=float16"], r"compute_dtype='float16'; allowed"),
    ([SMOKE, "--config.parallelism=pjit"], r"parallelism='pjit'; allowed"),
    ([SMOKE, "--config.optimizer.name=adamax"], r"optimizer.name='adamax'; allowed"),
    ([f"--config={BASE}:model=hybrid", "--config.model.layers=gru,atention"],
     r"model.layers='gru,atention': \['atention'\] not a mixer name; allowed"),
    ([f"--config={BASE}:model=mamba", "--config.model.block=stacked"],
     r"model.block='stacked'; allowed for 'mamba': \('residual',\)"),
    ([f"--config={BASE}:task=word_problem", "--config.task.group=s6"], r"group='s6'; allowed"),
    ([f"--config={BASE}:task=mad_noisy_recall", "--config.task.frac_noise=1.5"],
     r"frac_noise=1.5; allowed: a fraction in \[0, 1\)"),
    # Checked before jax.distributed starts: the run asked for a cluster never looks for one.
    ([SMOKE, "--config.train_examples=-4", "--auto_distributed"],
     r"train_examples=-4; must be >= 0"),
    ([SMOKE, "--config.train_examples=8", "--config.train_max_length=12"],
     r"train_examples=8 needs a fixed training length"),
    ([SMOKE, "--auto_distributed"], r"--auto_distributed: JAX found no .* cluster"),
    ([SMOKE, "--num_processes=2", "--process_id=0"], r"need --coordinator_address"),
    ([SMOKE, "--config.optimizer.learning_rate=nan"],
     r"optimizer.learning_rate=nan; allowed: a finite number"),
    ([SMOKE, "--config.optimizer.clip_norm=inf"], r"optimizer.clip_norm=inf; allowed: a finite"),
    ([SMOKE, "--config.task.alphabet_size=4", "--config.model.dropout_rate=nan"],
     r"model.dropout_rate=nan; allowed: a finite number"),
    ([f"--config={BASE}:model=swa,task=copy,smoke", "--config.model.window=0"],
     r"model.window=0; the sliding-window model \(swa\) needs window >= 1"),
    ([f"--config={BASE}:model=lstm,task=distant_dependency,smoke", "--config.task.distance=100"],
     r"train_min_length: length \d+ is below task 'distant_dependency''s minimum length 101 "
     r"\(set by task.distance=100\); allowed: lengths >= 101"),
    ([SMOKE, "--config.train_min_length=0"], r"train_min_length=0; must be >= 1"),
    (["--config={tmp}/broken.py"], r"config file '.*broken.py' does not import: line 4: "
     r"SyntaxError: expected ':'"),
    (["--config={tmp}/failing.py"], r"config file '.*failing.py' does not import: line 2: "
     r"ModuleNotFoundError: No module named 'no_such_module'"),
]
# Config files that do not import ({tmp} is the test's directory).
CONFIG_FILES = {
    "broken.py": "import ml_collections\n\n\ndef get_config(arg=None)\n  return {}\n",
    "failing.py": "import ml_collections\nimport no_such_module\n",
}


def _write_config_files(directory):
  for name, text in CONFIG_FILES.items():
    (directory / name).write_text(text)


def _start(args, workdir):
  return subprocess.Popen([sys.executable, TRAIN, *args, f"--workdir={workdir}"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


# Runs scripts/train.py's entry point once per argument list, each in a child forked after the one
# import of attnlab (the children fail before JAX starts a backend): a Python start-up per mistake
# would be most of this test's time. Prints each child's exit status as JSON.
_FORKED = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from attnlab.cli import train
codes = []
for i, args in enumerate(json.loads(sys.argv[3])):
  sys.stdout.flush(); sys.stderr.flush()
  pid = os.fork()
  if pid == 0:
    for fd, name in ((1, "out"), (2, "err")):
      os.dup2(os.open(os.path.join(sys.argv[2], f"{i}.{name}"), os.O_WRONLY | os.O_CREAT), fd)
    sys.argv = [os.path.join(sys.argv[1], "scripts", "train.py"), *args]
    try:
      train.run()
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(code)
  codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(codes))
"""


def test_configuration_mistakes_are_one_error_line(tmp_path):
  logs, runs = tmp_path / "logs", tmp_path / "runs"
  logs.mkdir()
  runs.mkdir()
  _write_config_files(tmp_path)
  cases = [[*(a.format(tmp=tmp_path) for a in args), f"--workdir={runs / f'run{i}'}"]
           for i, (args, _) in enumerate(MISTAKES)]
  proc = subprocess.run([sys.executable, "-c", _FORKED, ROOT, str(logs), json.dumps(cases)],
                        capture_output=True, text=True, env=ENV, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  codes = json.loads(proc.stdout.splitlines()[-1])
  for i, ((args, want), code) in enumerate(zip(MISTAKES, codes)):
    out, err = (open(logs / f"{i}.{name}").read() for name in ("out", "err"))
    lines = [line for line in (out + err).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert code == 2, (args, out, err)
    assert len(errors) == 1 and errors[0].startswith("train: error: "), (args, lines)
    assert re.search(want, errors[0]), (args, errors[0])
    assert "Traceback" not in err and "config:" not in err, (args, err)
  assert not any(runs.iterdir())  # no workdir was created


def test_debug_shows_the_traceback(tmp_path):
  proc = _start([SMOKE, "--config.batch_size=0", "--debug"], tmp_path / "run")
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 2
  assert "Traceback" in err and "train: error: batch_size=0" in err


def test_debug_shows_the_config_file_traceback(tmp_path):
  _write_config_files(tmp_path)
  proc = _start([f"--config={tmp_path}/failing.py", "--debug"], tmp_path / "run")
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 2
  assert "Traceback" in err and "import no_such_module" in err
  assert err.strip().splitlines()[-1].startswith("train: error: flag --config=")


def test_a_run_logs_no_third_party_info(tmp_path):
  proc = _start([SMOKE, "--config.num_steps=10", "--config.checkpoint_every=5"], tmp_path / "run")
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  info = [line for line in (out + err).splitlines() if re.match(r"I\d{4} ", line)]
  sources = {re.search(r" (\S+\.py):\d+\]", line).group(1) for line in info}
  assert sources <= {"train.py", "loop.py", "writer.py", "checkpoint.py", "parallel.py"}, sources
  assert any("val step 10 length 8" in line for line in info)
  assert any("test step 10 (mean over lengths)" in line for line in info)


def test_a_second_run_loads_its_programs_from_the_cache(tmp_path):
  env = {**ENV, "ATTNLAB_COMPILATION_CACHE": str(tmp_path / "cache")}
  summaries = []
  for name in ("first", "second"):  # identical runs, fresh workdirs
    proc = subprocess.run([sys.executable, TRAIN, SMOKE, "--config.num_steps=4",
                           f"--workdir={tmp_path / name}"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / name / "summary.json") as f:
      summaries.append(json.load(f))
    assert "programs compiled" in proc.stderr
  first, second = summaries
  assert first["compilations"] > 5 and first["compile_s"] > 0
  assert second["compile_cache_hits"] >= first["compilations"] - 2
  assert second["compilations"] <= 2, second


def test_a_hybrid_and_a_block_from_the_command_line(tmp_path):
  """model=hybrid with its layers, and the LSTM in the residual block, as a user types them: the
  summary names the block and the decoding state's size."""
  runs = {"hybrid": [f"--config={BASE}:model=hybrid,task=copy,smoke",
                     "--config.model.layers=gru,attention", "--config.model.num_heads=2"],
          "lstm": [SMOKE, "--config.model.block=residual"]}
  for name, args in runs.items():
    proc = subprocess.run([sys.executable, TRAIN, *args, "--config.num_steps=2",
                           f"--workdir={tmp_path / name}"], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / name / "summary.json") as f:
      summary = json.load(f)
    assert summary["block"] == "residual", summary
    assert summary["state_size"] > 0, summary
    with open(tmp_path / name / "config.json") as f:
      model = json.load(f)["model"]
    assert model.get("layers", "gru,attention") == "gru,attention" and model["name"] == name
