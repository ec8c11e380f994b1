"""Config files: the one loader of ``FILE[:ARG]`` and the one parser of its ``:ARG`` string.

A config file is a Python file whose ``get_config(arg)`` returns an ``ml_collections.ConfigDict``
(as ``config_flags.DEFINE_config_file`` loads it); an experiment file adds ``get_sweep(arg)``. The
argument is a comma-separated list of ``key=value`` items and bare flags: ``model=lstm,smoke``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import traceback
import types
from typing import Any, Iterable, Mapping


def split(config: str) -> tuple[str, str]:
  """``"experiments/x.py:a=1,smoke"`` -> ``("experiments/x.py", "a=1,smoke")``."""
  path, _, arg = config.partition(":")
  return path, arg


def join(path: str, arg: str) -> str:
  """The inverse of ``split``: ``("experiments/x.py", "smoke")`` -> ``"experiments/x.py:smoke"``."""
  return f"{path}:{arg}" if arg else path


def _where(error: BaseException, path: str) -> str:
  """``line N: Type: message``: the error and the last line of ``path`` it passed through."""
  line = None
  if isinstance(error, SyntaxError) and error.filename and os.path.abspath(error.filename) == path:
    line, message = error.lineno, error.msg
  else:
    message = " ".join(str(error).split())
    for frame in traceback.extract_tb(error.__traceback__):
      if os.path.abspath(frame.filename) == path:
        line = frame.lineno
  return f"{'' if line is None else f'line {line}: '}{type(error).__name__}: {message}"


def load_module(path: str) -> types.ModuleType:
  """Imports a Python file by path (config files are not part of the package); a file that does
  not import is one ValueError naming it, the line and the exception (the traceback chained)."""
  if not os.path.isfile(path):
    raise ValueError(f"config file {path!r} does not exist (looked for {os.path.abspath(path)})")
  name = "attnlab_config_" + re.sub(r"\W", "_", os.path.abspath(path))
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"config file {path!r} does not import: "
                     f"{_where(e, os.path.abspath(path))}") from e
  return module


def load_config_file(config: str):
  """``path/to/file.py[:arg]`` -> its ``get_config(arg)``; ValueError naming the file and the
  line if it fails (its own ValueErrors, which name the bad argument, as they are)."""
  path, arg = split(config)
  module = load_module(path)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"config file {path!r} defines no get_config(arg)")
  try:
    return module.get_config(arg) if arg else module.get_config()
  except ValueError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"config file {path!r}: get_config({arg or ''!r}) failed: "
                     f"{_where(e, os.path.abspath(path))}") from e


def parse_arg(arg: str | None, allowed: Iterable[str] = ()) -> dict[str, Any]:
  """Parses ``"model=lstm,smoke"`` into ``{"model": "lstm", "smoke": True}``.

  With ``allowed`` given, an unknown key raises ValueError listing the allowed ones.
  """
  out: dict[str, Any] = {}
  for item in (arg or "").split(","):
    item = item.strip()
    if not item:
      continue
    key, eq, value = item.partition("=")
    out[key.strip()] = value.strip() if eq else True
  allowed = tuple(allowed)
  if allowed:
    unknown = sorted(set(out) - set(allowed))
    if unknown:
      raise ValueError(f"config arg: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
  return out


def join_arg(parsed: Mapping[str, Any]) -> str:
  """Inverse of ``parse_arg``."""
  return ",".join(k if v is True else f"{k}={v}" for k, v in parsed.items() if v is not False)
