from __future__ import annotations

import jax
import matplotlib.image
import numpy as np
import pytest

from attnlab.analysis import attention_maps
from attnlab.tasks import registry
from attnlab.models import task_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODEL = dict(name="transformer", d_model=8, num_layers=2, num_heads=2, max_len=16)


def assert_png(path):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def test_capture_and_draw(tmp_path):
  task = registry.get_task("distant_dependency", distance=3)
  model = task_model.build(MODEL, task, capture_attention=True)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), task_model.dummy_inputs(task))["params"]
  inputs = np.asarray(task.sample(jax.random.PRNGKey(1), 3, 6)["inputs"])
  weights = attention_maps.capture(model, params, inputs)
  assert len(weights) == 2  # one entry per layer
  for w_BNLS in weights.values():
    assert w_BNLS.shape == (3, 2, 6, 6)
    np.testing.assert_allclose(w_BNLS.sum(-1), 1.0, rtol=1e-5)
  paths = attention_maps.write_maps(weights, inputs, str(tmp_path), num_examples=2)
  assert len(paths) == 4  # 2 examples x 2 layers, each with a panel per head
  for path in paths:
    assert_png(path)


def test_models_without_attention_are_refused():
  with pytest.raises(ValueError, match="'lstm' has no attention layers"):
    attention_maps.check_model("lstm")
  with pytest.raises(ValueError, match="sowed no attention weights"):
    attention_maps.write_maps({}, np.zeros((1, 4)), "/tmp", 1)
