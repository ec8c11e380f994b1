"""glibc malloc settings that keep freed memory for reuse: ``--malloc reuse`` of scripts/bench.py,
train.py and sweep.py.

XLA:CPU allocates each call's temporary buffers afresh and frees them after it (77 MB for the
attnlab LSTM training step at batch 32, length 256). glibc hands an allocation that size to mmap
(always from a worker thread: a thread arena cannot hold it), so every call page-faults the whole
arena in again: ~19,000 minor faults per LSTM step, counted with getrusage. PyTorch's CPU tensors
come from the same malloc. With one arena, no mmap and no trimming, freed memory stays in the heap
and the next call reuses it: 0 faults per step.

glibc reads these settings once, when the process starts, and worker threads take their arenas
early, so ``reexec`` restarts the interpreter with them in its environment. The price: memory the
process frees is not returned to the system until it ends (its resident size stays at its peak).
"""

from __future__ import annotations

import os
import platform
import sys

SETTINGS = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}  # the largest value glibc's int takes
CHOICES = ("default", "reuse")


def active(environ=None) -> bool:
  """Whether the environment holds every one of SETTINGS."""
  environ = os.environ if environ is None else environ
  return all(environ.get(key) == value for key, value in SETTINGS.items())


def describe(environ=None) -> str:
  """"reuse" or "default", for the header of a benchmark table."""
  return "reuse" if active(environ) else "default"


def reexec(argv: list[str]) -> None:
  """Restart as ``sys.executable *argv`` with SETTINGS added to the environment; returns at once
  when they are already there (the restarted process). Call it before any computation."""
  if active():
    return
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    raise ValueError(f"malloc 'reuse' sets glibc's malloc; this is {platform.system()} with "
                     f"libc {platform.libc_ver()[0] or 'unknown'}: use malloc 'default'")
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *argv], {**os.environ, **SETTINGS})


def use(choice: str, argv: list[str]) -> str:
  """The entry points' ``--malloc CHOICE``: "reuse" restarts as ``sys.executable *argv`` with
  SETTINGS (``reexec``; returns in the restarted process); returns ``describe()`` to report."""
  if choice == "reuse":
    reexec(argv)
  return describe()
