"""What every command shares: one-line errors with exit status 2, and quiet third-party logs."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from typing import Callable

from absl import flags
from absl import logging as absl_logging

_DEBUG = flags.DEFINE_bool("debug", False, "on an error, show the Python traceback too")

# Errors that mean the input was wrong (a config, a flag, a path); anything else is a bug and keeps
# its traceback.
INPUT_ERRORS = (ValueError, FileNotFoundError, flags.Error)


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


def parse_flags(prog: str, argv, check: Callable | None = None):
  """absl's flag parsing; a bad flag (or what ``check(argv)`` raises first) exits 2 in one line."""
  try:
    if check is not None:
      check(argv)
    return flags.FLAGS(argv)
  except INPUT_ERRORS as e:
    sys.exit(fail(prog, e))


def quiet_logging() -> None:
  """attnlab's own INFO lines; third-party ones (orbax, absl, tfds) only with ``--verbosity``.

  Library code logs to ``logging.getLogger("attnlab...")``; third-party libraries log through absl's
  logger, whose level ``--verbosity`` sets. Unless the flag is given it is set to WARNING here.
  """
  logging.getLogger("attnlab").setLevel(logging.INFO)
  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)
