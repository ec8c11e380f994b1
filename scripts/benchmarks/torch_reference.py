"""PyTorch as an optional benchmark reference: its flags and its import (never used by attnlab)."""

from __future__ import annotations

import argparse
import os


def add_flags(parser: argparse.ArgumentParser) -> None:
  """``--no_torch`` and ``--torch_threads`` on a suite's parser."""
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--torch_threads", type=int, default=0,
                      help="PyTorch intra-op threads; 0: all cores, as JAX uses (1 on a shared machine)")


def load(args: argparse.Namespace):
  """The ``torch`` module with ``args.torch_threads`` threads, or None (not installed, or
  ``--no_torch``)."""
  if args.no_torch:
    return None
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(args.torch_threads or os.cpu_count())
  return torch


SKIPPED = "torch: not importable or --no_torch, PyTorch rows skipped"


def threads(torch) -> str:
  """PyTorch's thread count for a table header ("-" without torch)."""
  return str(torch.get_num_threads()) if torch is not None else "-"
