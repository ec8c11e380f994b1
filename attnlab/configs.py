"""Config files: the one loader of ``FILE[:ARG]`` and the one parser of its ``:ARG`` string.

A config file is a Python file whose ``get_config(arg)`` returns an ``ml_collections.ConfigDict``
(as ``config_flags.DEFINE_config_file`` loads it); an experiment file adds ``get_sweep(arg)``. The
argument is a comma-separated list of ``key=value`` items and bare flags: ``model=lstm,smoke``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import types
from typing import Any, Iterable, Mapping


def split(config: str) -> tuple[str, str]:
  """``"experiments/x.py:a=1,smoke"`` -> ``("experiments/x.py", "a=1,smoke")``."""
  path, _, arg = config.partition(":")
  return path, arg


def join(path: str, arg: str) -> str:
  """The inverse of ``split``: ``("experiments/x.py", "smoke")`` -> ``"experiments/x.py:smoke"``."""
  return f"{path}:{arg}" if arg else path


def load_module(path: str) -> types.ModuleType:
  """Imports a Python file by path (config files are not part of the package)."""
  if not os.path.isfile(path):
    raise ValueError(f"config file {path!r} does not exist (looked for {os.path.abspath(path)})")
  name = "attnlab_config_" + re.sub(r"\W", "_", os.path.abspath(path))
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def load_config_file(config: str):
  """``path/to/file.py[:arg]`` -> its ``get_config(arg)``."""
  path, arg = split(config)
  module = load_module(path)
  return module.get_config(arg) if arg else module.get_config()


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
