"""Checksum sidecar of a checkpoint step: size and CRC-32 of every 16 MB chunk of every file.

Why: orbax/tensorstore detect a missing or truncated file, but a flipped bit inside array data
restores silently with a wrong value; the sidecar makes it an error. CRC-32, not sha256: it guards
against storage damage, not tampering (whoever can rewrite the data can rewrite the sidecar), and is
cheaper. It is written inside orbax's temporary folder just before the atomic rename, so a committed
step always has one; a step without one (another tool's, or multi-host) is restored unverified.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import zlib
from typing import Mapping

SIDECAR = "attnlab_checksums.json"
# Rewritten by orbax after the sidecar (commit markers, commit timestamp); not array data, and
# orbax restores fine without them.
_UNHASHED = ("commit_success.txt", "_CHECKPOINT_METADATA", SIDECAR)
_CHUNK = 16 << 20  # bytes per checksum: chunks of a file are checked in parallel threads


def _crc32_range(path: str, offset: int, length: int) -> str:
  crc = 0
  with open(path, "rb") as f:
    f.seek(offset)
    while length > 0 and (block := f.read(min(length, 4 << 20))):
      crc = zlib.crc32(block, crc)  # releases the GIL on large blocks: threads run in parallel
      length -= len(block)
  return f"{crc:08x}"


def _digest_files(root: str, sizes: Mapping[str, int]) -> dict[str, list]:
  """{relative path: [size, [crc32 of each _CHUNK]]} for the given files."""
  jobs = [(rel, off, min(_CHUNK, size - off))
          for rel, size in sizes.items() for off in range(0, max(size, 1), _CHUNK)]
  with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
    hexes = pool.map(lambda j: _crc32_range(os.path.join(root, j[0]), j[1], j[2]), jobs)
    out = {rel: [size, []] for rel, size in sizes.items()}
    for (rel, _, _), digest in zip(jobs, hexes):
      out[rel][1].append(digest)
  return out


def verify_step_dir(step_dir: str) -> bool:
  """True if the folder matches its sidecar, False without one, else ValueError naming the file."""
  sidecar = os.path.join(step_dir, SIDECAR)
  if not os.path.exists(sidecar):
    return False
  try:
    with open(sidecar) as f:
      expected = json.load(f)["files"]
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f"unreadable checksum file {SIDECAR}: {e}") from e
  for rel, (size, _) in sorted(expected.items()):
    path = os.path.join(step_dir, rel)
    if not os.path.exists(path):
      raise ValueError(f"missing file {rel}")
    if os.path.getsize(path) != size:
      raise ValueError(f"truncated or resized file {rel}: {os.path.getsize(path)} bytes, "
                       f"expected {size}")
  actual = _digest_files(step_dir, {rel: size for rel, (size, _) in expected.items()})
  for rel in sorted(expected):
    if actual[rel] != expected[rel]:
      raise ValueError(f"checksum mismatch in {rel} (corrupted data)")
  return True


def write_sidecar(step_dir: str, step: int) -> None:
  """Writes the sidecar of every file under ``step_dir`` but the markers, atomically."""
  paths = [os.path.join(folder, name) for folder, _, names in os.walk(step_dir) for name in names
           if name not in _UNHASHED]
  sizes = {os.path.relpath(path, step_dir): os.path.getsize(path) for path in paths}
  digests = {"algorithm": "crc32", "chunk_bytes": _CHUNK, "step": step,
             "files": _digest_files(step_dir, sizes)}
  with open(os.path.join(step_dir, SIDECAR + ".tmp"), "w") as f:
    json.dump(digests, f, indent=0, sort_keys=True)
  os.replace(os.path.join(step_dir, SIDECAR + ".tmp"), os.path.join(step_dir, SIDECAR))
