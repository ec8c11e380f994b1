from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.analysis import gradient_lag
from attnlab.tasks import registry
from attnlab.models import task_model

MODEL = dict(name="rnn", d_model=6, num_layers=1)


def test_gradients_from_jax_grad_match_finite_differences(name="rnn"):
  # (A Transformer's gradient lag runs end to end in tests/analysis/restore_test.py.)
  task = registry.get_task("distant_dependency", distance=4)
  model = task_model.build({**MODEL, "name": name}, task)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), task_model.dummy_inputs(task))["params"]
  batch = jax.tree_util.tree_map(np.asarray, task.sample(jax.random.PRNGKey(1), 3, 9))
  loss_fn, shape = gradient_lag.embedded_loss_fn(model, params, batch, task.output_kind)
  assert shape == (3, 9, 6)
  g = gradient_lag.gradients(model, params, batch, task.output_kind)
  loss = jax.jit(loss_fn)
  # The loss is a float32 sum near 5, so one rounding step moves a difference quotient at eps by
  # ~2.4e-7 / eps; at 4e-2 that is 0.06% of the key position's gradient, and curvature stays smaller.
  eps = 4e-2
  for b, l in ((1, 4), (2, 8)):  # the key position (L - 1 - d) and the query (last) position
    direction = g[b, l] / np.linalg.norm(g[b, l])
    bump = jnp.zeros(shape).at[b, l].set(eps * direction)
    slope = (loss(bump) - loss(-bump)) / (2 * eps)  # directional derivative along the gradient
    np.testing.assert_allclose(np.linalg.norm(g[b, l]), slope, rtol=5e-3)
  # Zero offset changes nothing: the intercepted model computes the plain model's loss.
  logits = model.apply({"params": params}, batch["inputs"])
  plain = -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), batch["targets"][:, None], -1))
  np.testing.assert_allclose(loss(jnp.zeros(shape)), plain, rtol=1e-5)
  assert np.all(np.linalg.norm(g, axis=-1) > 0)  # causal: every position reaches the loss


def test_target_positions():
  mask = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], np.float32)
  np.testing.assert_array_equal(gradient_lag.target_positions("per_token", mask), [2, 3, 3])
  np.testing.assert_array_equal(gradient_lag.target_positions("sequence", np.ones(2)), [-1, -1])


def test_lag_profile_by_hand():
  norms = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
  mask = np.array([[0, 0, 1, 0], [0, 0, 0, 1]], np.float32)  # targets at 2 and 3
  profile = gradient_lag.lag_profile(norms, "per_token", mask)
  assert profile["distances"] == [0, 1, 2, 3]
  # distance 0: (3 + 40) / 2; 1: (2 + 30) / 2; 2: (1 + 20) / 2; 3: only example 1's 10.
  np.testing.assert_allclose(profile["mean_grad_norm"], [21.5, 16.0, 10.5, 10.0])
  seq = gradient_lag.lag_profile(norms, "sequence", np.ones(2))
  np.testing.assert_allclose(seq["mean_grad_norm"], [22.0, 16.5, 11.0, 5.5])
