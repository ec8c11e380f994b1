"""Checksum sidecar: written for every file, verified, and each kind of damage named."""

from __future__ import annotations

import json
import os

import pytest

from attnlab.train import checksums


def _step_dir(tmp_path):
  step = tmp_path / "7"
  (step / "state").mkdir(parents=True)
  (step / "state" / "data").write_bytes(os.urandom(3 * 1024 + 5))
  (step / "meta").write_text('{"step": 7}')
  (step / "commit_success.txt").write_text("ok")  # orbax marker: not hashed
  return step


def test_sidecar_round_trip_and_markers_excluded(tmp_path):
  step = _step_dir(tmp_path)
  assert checksums.verify_step_dir(str(step)) is False  # no sidecar yet: nothing verified
  checksums.write_sidecar(str(step), 7)
  side = json.loads((step / checksums.SIDECAR).read_text())
  assert side["step"] == 7 and sorted(side["files"]) == sorted([os.path.join("state", "data"), "meta"])
  assert side["files"]["meta"][0] == len('{"step": 7}')
  assert checksums.verify_step_dir(str(step)) is True
  (step / "commit_success.txt").write_text("rewritten later by orbax")
  assert checksums.verify_step_dir(str(step)) is True


@pytest.mark.parametrize("damage, message", [
    ("flip", "checksum mismatch in state/data"),
    ("truncate", "truncated or resized file state/data"),
    ("remove", "missing file state/data"),
])
def test_damage_is_named(tmp_path, damage, message):
  step = _step_dir(tmp_path)
  checksums.write_sidecar(str(step), 7)
  data = step / "state" / "data"
  raw = bytearray(data.read_bytes())
  if damage == "flip":
    raw[100] ^= 0x01
    data.write_bytes(bytes(raw))
  elif damage == "truncate":
    data.write_bytes(bytes(raw[:-1]))
  else:
    data.unlink()
  with pytest.raises(ValueError, match=message):
    checksums.verify_step_dir(str(step))
