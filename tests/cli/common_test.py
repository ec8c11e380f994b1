"""Every command's ``--help`` lists that command's own flags with their help text, run as
``scripts/NAME.py`` and as its ``attnlab-*`` console script (attnlab/cli/common.py: ``run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = ("train", "sweep", "evaluate", "plot", "build_data", "report")

# Prints the flags the command's module defines (JSON), then its --help as scripts/NAME.py and as
# the console script, each in a child forked after the one import (a console script's wrapper
# calls the same run() with its own name as argv[0]).
_HELP = """
import json, os, sys
from absl import flags
from attnlab.cli import {name} as command
print(json.dumps({{f.name: f.help for f in flags.FLAGS.get_flags_for_module(command)}}))
for argv0 in (os.path.join(sys.argv[1], "scripts", "{name}.py"), "attnlab-{dashed}"):
  print("=== " + argv0, flush=True)
  pid = os.fork()
  if pid == 0:
    sys.argv = [argv0, "--help"]
    try:
      command.run()
    except SystemExit:
      pass
    sys.stdout.flush()
    os._exit(0)
  os.waitpid(pid, 0)
"""


def _squeezed(text: str) -> str:
  return "".join(text.split())  # absl wraps and indents help text


@pytest.mark.parametrize("name", COMMANDS)
def test_help_lists_the_commands_own_flags(name):
  code = _HELP.format(name=name, dashed=name.replace("_", "-"))
  proc = subprocess.run([sys.executable, "-c", code, ROOT], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  first, *rest = proc.stdout.split("=== ")
  own = json.loads(first)
  assert own and len(rest) == 2, proc.stdout
  for output in rest:
    argv0, helptext = output.split("\n", 1)
    for flag, text in {**own, "debug": "on an error, show the Python traceback too"}.items():
      assert f"--{flag}" in helptext or f"--[no]{flag}" in helptext, (argv0, flag, helptext)
      assert _squeezed(text) in _squeezed(helptext), (argv0, flag, text, helptext)
