"""What every command shares: ``run`` (``--help`` lists the command's own flags), one-line errors
with exit status 2, and quiet third-party logs."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from typing import Callable

from absl import app
from absl import flags
from absl import logging as absl_logging

_DEBUG = flags.DEFINE_bool("debug", False, "on an error, show the Python traceback too")

# Errors that mean the input was wrong (a config, a flag, a path); anything else is a bug and keeps
# its traceback.
INPUT_ERRORS = (ValueError, FileNotFoundError, flags.Error)
# What ml_collections' config flags raise for an override path they cannot walk (--config.a.b.c).
_OVERRIDE_ERRORS = (KeyError, AttributeError)


def error_line(error: BaseException) -> str:
  """The error's message on one line."""
  text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
  return text or type(error).__name__


def fail(prog: str, error: BaseException) -> int:
  """Prints ``prog: error: ...`` (and the traceback under --debug); returns the exit status 2."""
  if _debug():
    traceback.print_exception(error)
  print(f"{prog}: error: {error_line(error)}", file=sys.stderr, flush=True)
  return 2


def _debug() -> bool:
  try:
    return bool(_DEBUG.value) or "--debug" in sys.argv
  except flags.UnparsedFlagAccessError:
    return "--debug" in sys.argv


def guard(prog: str) -> Callable:
  """Decorates a command's ``main(argv)``: input errors become ``fail(prog, e)``."""
  def wrap(main):
    @functools.wraps(main)
    def guarded(argv):
      try:
        return main(argv)
      except INPUT_ERRORS as e:
        return fail(prog, e)
    return guarded
  return wrap


def parse_flags(prog: str, argv):
  """absl's flag parsing; a bad flag exits 2 in one line."""
  try:
    return flags.FLAGS(argv)
  except INPUT_ERRORS + _OVERRIDE_ERRORS as e:
    sys.exit(fail(prog, e))


def run(prog: str, main: Callable) -> None:
  """``app.run(main)`` for a command: its flags (those of ``main``'s module, and ``--debug``) are
  the key flags ``--help`` lists; a bad flag is one line (``parse_flags``)."""
  module = sys.modules[main.__module__]
  for flag in flags.FLAGS.get_key_flags_for_module(module) + [flags.FLAGS[_DEBUG.name]]:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  main_module = sys.modules["__main__"]
  if not main_module.__doc__:  # a console script: --help shows the command's docstring
    main_module.__doc__ = module.__doc__
  app.run(main, flags_parser=lambda argv: parse_flags(prog, argv))


def quiet_logging() -> None:
  """attnlab's own INFO lines; third-party ones (orbax, absl, tfds) only with ``--verbosity``.

  Library code logs to ``logging.getLogger("attnlab...")``; third-party libraries log through absl's
  logger, whose level ``--verbosity`` sets. Unless the flag is given it is set to WARNING here.
  """
  logging.getLogger("attnlab").setLevel(logging.INFO)
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)


def key_values(items, flag: str) -> dict[str, str]:
  """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; ValueError naming ``flag`` for an item
  without ``=``."""
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"{flag} {item!r}: expected key=value")
    out[key.strip()] = value.strip()
  return out
