"""bench.py long_context at a tiny size: the layers' training steps run in child processes and the
records carry the ratios against softmax attention (no timing assertions); every layer builds."""

from __future__ import annotations

from benchmarks import long_context


def test_every_layer_maps_d_to_d_and_trains_every_parameter():
  import jax
  import jax.numpy as jnp
  x = jax.random.normal(jax.random.key(0), (2, 5, 16))
  for name in long_context.LAYERS:
    layer = long_context.make_layer(name, 2, 8)
    params = jax.jit(layer.init)(jax.random.key(1), x)
    y, _ = jax.jit(layer.apply)(params, x)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(layer.apply(p, x)[0] ** 2)))(params)
    assert y.shape == x.shape and bool(jnp.all(jnp.isfinite(y))), name
    unchanged = [jax.tree_util.keystr(k) for k, g in jax.tree_util.tree_leaves_with_path(grads)
                 if not float(jnp.abs(g).sum()) > 0]
    assert not unchanged, (name, unchanged)


def test_projection_bounds_map_d_to_d_and_train_every_matrix():
  import jax
  import jax.numpy as jnp
  x = jax.random.normal(jax.random.key(0), (2, 5, 32))
  for name in ("gla_proj", "mamba_proj"):
    layer = long_context.make_layer(name, 2, 8)
    params = layer.init(jax.random.key(1), x)
    grads = jax.grad(lambda p: jnp.sum(layer.apply(p, x)[0] ** 2))(params)
    assert layer.apply(params, x)[0].shape == x.shape
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads)), name


def test_layers_run_and_are_compared_with_softmax(tmp_path):
  path = str(tmp_path / "records.json")
  records = long_context.main(["--lengths", "16", "32", "--layers", "softmax", "mamba", "--batch",
                               "2", "--heads", "2", "--head_dim", "8", "--window", "8",
                               "--repeats", "1"], path)
  assert {r["impl"] for r in records} == {"softmax", "mamba"}
  assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"]
  for r in records:
    assert r["vs_softmax"] > 0 and r["peak_mb"] is not None
    if r["length"] == 32:
      assert r["growth"] > 0
