"""The optional PyTorch reference of the benchmark suites: flags and loading."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import torch_reference


def _args(argv):
  parser = argparse.ArgumentParser()
  torch_reference.add_flags(parser)
  return parser.parse_args(argv)


def test_no_torch_gives_none():
  assert torch_reference.load(_args(["--no_torch"])) is None


def test_load_sets_the_thread_count():
  torch = pytest.importorskip("torch")
  before = torch.get_num_threads()
  try:
    assert torch_reference.load(_args(["--torch_threads=1"])) is torch
    assert torch.get_num_threads() == 1
  finally:
    torch.set_num_threads(before)
