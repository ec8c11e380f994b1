"""What compiling costs a run: JAX's persistent compilation cache and a count of compilations.

The cache (``jax_compilation_cache_dir``) keeps every compiled program on disk, keyed by the
program and the machine, so another process compiling the same shapes (a resumed run, another
seed of a sweep, an evaluation) loads it instead. ``cache_dir()`` is where the commands put it:
``$ATTNLAB_COMPILATION_CACHE`` when set ("off" or empty switches it off), else
``$XDG_CACHE_HOME/attnlab/jax`` (``~/.cache/attnlab/jax``).

``Compilations`` counts from JAX's own monitoring events: every backend compile request is one
``/jax/core/compile/backend_compile_duration`` event (its seconds included), and the requests the
persistent cache answered are also ``/jax/compilation_cache/cache_hits`` events.
"""

from __future__ import annotations

import dataclasses
import os

import jax

ENV = "ATTNLAB_COMPILATION_CACHE"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_HIT_EVENT = "/jax/compilation_cache/cache_hits"


def cache_dir(environ=None) -> str | None:
  """The cache directory the environment asks for (None: off)."""
  environ = os.environ if environ is None else environ
  value = environ.get(ENV)
  if value is None:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "attnlab", "jax")
  return None if value.strip().lower() in ("", "off") else value


def enable_cache(directory: str | None) -> str | None:
  """Points JAX's persistent compilation cache at ``directory`` (None: leaves it off); every
  program is cached, however fast it compiled. Call before the first compile."""
  if directory is None:
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

  def _duration(self, event: str, seconds: float, **kwargs) -> None:
    del kwargs
    if event == _COMPILE_EVENT:
      self.requests += 1
      self.seconds += seconds

  def _event(self, event: str, **kwargs) -> None:
    del kwargs
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
