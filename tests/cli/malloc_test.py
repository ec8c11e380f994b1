"""attnlab.cli.malloc: the settings are recognised, and reexec restarts the process once with them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attnlab.cli import malloc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env_without_settings():
  return {k: v for k, v in os.environ.items() if k not in malloc.SETTINGS}


def test_active_and_describe():
  assert malloc.describe({}) == "default"
  assert malloc.describe(dict(malloc.SETTINGS)) == "reuse"
  partial = dict(malloc.SETTINGS, MALLOC_ARENA_MAX="2")
  assert not malloc.active(partial)


def test_reexec_restarts_once_with_the_settings(tmp_path):
  """The script restarts itself once (each start appends a line), then runs with the settings."""
  starts = tmp_path / "starts"
  script = tmp_path / "script.py"
  script.write_text(
      "import os, sys\n"
      f"sys.path.insert(0, {ROOT!r})\n"
      "from attnlab.cli import malloc\n"
      f"open({str(starts)!r}, 'a').write('start\\n')\n"
      "malloc.reexec([__file__, *sys.argv[1:]])\n"
      "print(malloc.describe(), sys.argv[1:])\n")
  out = subprocess.run([sys.executable, str(script), "--flag", "x"], env=_env_without_settings(),
                       capture_output=True, text=True, check=True, timeout=60)
  assert out.stdout.strip() == "reuse ['--flag', 'x']"
  assert starts.read_text().count("start") == 2


def test_reexec_refuses_other_platforms(monkeypatch):
  for key in malloc.SETTINGS:
    monkeypatch.delenv(key, raising=False)
  monkeypatch.setattr(malloc.platform, "system", lambda: "Darwin")
  with pytest.raises(ValueError, match="glibc.*use malloc 'default'"):
    malloc.reexec(["x.py"])


def _script(name, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name), *args],
                        env=_env_without_settings(), capture_output=True, text=True, timeout=120)


def test_train_and_sweep_restart_with_malloc_reuse(tmp_path):
  """--malloc reuse restarts the entry point with the settings before it does anything else (here
  a config that fails validation, so nothing compiles)."""
  default = os.path.join(ROOT, "experiments", "base.py")
  train = _script("train.py", "--malloc=reuse", f"--config={default}:model=lstm,task=copy,smoke",
                  f"--workdir={tmp_path / 'run'}", "--config.num_steps=0")
  assert train.returncode != 0
  assert "malloc: reuse" in train.stderr and "num_steps=0" in train.stderr
  sweep = _script("sweep.py", "--malloc=reuse", f"--config={tmp_path / 'missing.py'}",
                  f"--workdir={tmp_path / 'sweep'}")
  assert sweep.returncode == 2
  assert sweep.stdout.startswith("malloc: reuse")
