"""Input checks of the mixers (RNN, minGRU, minLSTM, LRU, Mamba, Hawk; every mixer's ``impl``): a
ValueError naming what was wrong and what is allowed, raised before anything is compiled."""

from __future__ import annotations

import jax
import jax.numpy as jnp


IMPLS = ("fast", "reference")  # every mixer's ``impl``: its fast kernel, or the step-by-step reference


def check_impl(impl: str, name: str = "") -> None:
  """ValueError unless ``impl`` is one of IMPLS (``name``: the layer, for a module's message)."""
  if impl not in IMPLS:
    raise ValueError(f"{name + ' ' if name else ''}impl={impl!r}; allowed: {IMPLS}")


def check_inputs(name, x_BLD, lengths_B, state, sizes, state_shape, in_features, impl):
  """Raises ValueError for inputs a scan layer cannot take, before anything is compiled.

  ``sizes`` maps size fields to values (ints >= 1); ``state_shape`` is the final state's shape
  without batch; ``in_features`` is the input size the existing parameters expect (None before
  initialisation).
  """
  check_impl(impl, name)
  for field, value in sizes.items():
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name} {field} must be an int >= 1; got {value!r}")
  if jnp.ndim(x_BLD) != 3:
    raise ValueError(f"{name} input x must be rank 3 [batch, length, features]; "
                     f"got shape {jnp.shape(x_BLD)}")
  batch, steps, features = x_BLD.shape
  if in_features is not None and in_features != features:
    raise ValueError(f"{name} input feature size {features} does not match the parameters, "
                     f"which expect {in_features}")
  if lengths_B is not None:
    if jnp.ndim(lengths_B) == 1 and not jnp.issubdtype(jnp.asarray(lengths_B).dtype, jnp.integer):
      raise ValueError(f"{name} lengths must be integers; got dtype {jnp.asarray(lengths_B).dtype}")
    check_lengths(name, lengths_B, batch, steps)
  if state is not None and tuple(jnp.shape(state)) != (batch,) + tuple(state_shape):
    raise ValueError(f"{name} initial state must have shape {[batch, *state_shape]}; "
                     f"got {list(jnp.shape(state))}")


def check_lengths(name, lengths_B, batch, steps):
  """ValueError unless lengths_B has shape [batch] and (when concrete) lies in [0, steps]."""
  if jnp.ndim(lengths_B) != 1 or jnp.shape(lengths_B)[0] != batch:
    raise ValueError(f"{name} lengths must have shape [batch] = [{batch}]; "
                     f"got {jnp.shape(lengths_B)}")
  try:  # Concrete lengths are checked here; traced ones (under jit) cannot be.
    lo, hi = int(jnp.min(lengths_B)), int(jnp.max(lengths_B))
  except jax.errors.ConcretizationTypeError:
    lo, hi = 0, steps
  if lo < 0 or hi > steps:
    raise ValueError(f"{name} lengths must lie in [0, {steps}] (the sequence length); "
                     f"got min {lo}, max {hi}")
