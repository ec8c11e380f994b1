"""What compiling costs a run: JAX's persistent compilation cache and a count of compilations.

The cache keeps every compiled program on disk, keyed by the program and the machine, so another
process compiling the same shapes (a resumed run, another seed of a sweep, an evaluation) loads it
instead of compiling it again.
"""

from __future__ import annotations

import dataclasses
import os

import jax

ENV = "ATTNLAB_COMPILATION_CACHE"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # each backend compile request
_HIT_EVENT = "/jax/compilation_cache/cache_hits"  # each request the persistent cache answered


def enable_cache() -> str | None:
  """Points JAX's persistent compilation cache at ``$ATTNLAB_COMPILATION_CACHE`` ("off" or empty:
  no cache), else at ``$XDG_CACHE_HOME/attnlab/jax`` (``~/.cache/attnlab/jax``), and caches every
  program, however fast it compiled. Call it before the first compile (and after
  ``jax.distributed.initialize``); returns the directory, None for no cache."""
  directory = os.environ.get(ENV)
  if jax.process_count() > 1:
    # No cache: with JAX 0.12's CPU (gloo) collectives, a process that loads a step from the cache
    # while its peer compiles it deadlocks in the step's first collective.
    return None
  if directory is None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "attnlab", "jax")
  elif directory.strip().lower() in ("", "off"):
    return None
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return directory


@dataclasses.dataclass
class Compilations:
  """``with Compilations() as c:`` counts the compilations inside the block."""
  requests: int = 0  # backend compile requests (cache hits included)
  cache_hits: int = 0  # requests the persistent cache answered
  seconds: float = 0.0  # wall seconds of all requests (a hit costs its load)

  @property
  def compiled(self) -> int:
    """Programs actually compiled (requests the cache did not answer)."""
    return self.requests - self.cache_hits

  def _duration(self, event: str, seconds: float, **_) -> None:
    if event == _COMPILE_EVENT:
      self.requests += 1
      self.seconds += seconds

  def _event(self, event: str, **_) -> None:
    if event == _HIT_EVENT:
      self.cache_hits += 1

  def __enter__(self):
    jax.monitoring.register_event_duration_secs_listener(self._duration)
    jax.monitoring.register_event_listener(self._event)
    return self

  def __exit__(self, *exc):
    jax.monitoring.unregister_event_duration_listener(self._duration)
    jax.monitoring.unregister_event_listener(self._event)

  def summary(self) -> dict:
    return {"compilations": self.compiled, "compile_cache_hits": self.cache_hits,
            "compile_s": round(self.seconds, 3)}
