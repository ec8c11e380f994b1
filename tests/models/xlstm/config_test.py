"""The xLSTM names' configs: xLSTM[a:b]'s block placement, bad fields named before anything
compiles, the blocks' structure, the sections' fields (tests/cli/families_test.py trains them
through scripts/train.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from attnlab.models import registry
from attnlab.models.xlstm import config as xlstm_config


@pytest.mark.parametrize("layers, ratio, at, want", [
    (2, "7:1", "", (1,)),
    (8, "7:1", "", (4,)),
    (24, "7:1", "", (6, 12, 18)),
    (4, "1:0", "", ()),
    (4, "0:1", "", (0, 1, 2, 3)),
    (4, "1:1", "", (1, 2)),
    (1, "7:1", "", ()),  # one block: the majority kind
    (6, "7:1", "3,5", (3, 5)),
])
def test_slstm_positions(layers, ratio, at, want):
  assert xlstm_config.slstm_positions(layers, ratio, at) == want


@pytest.mark.parametrize("fields, message", [
    ({"ratio": "7-1"}, r"model.ratio='7-1'; must be 'a:b'"),
    ({"ratio": "0:0"}, r"model.ratio='0:0'"),
    ({"slstm_at": "2", "num_layers": 2}, r"model.slstm_at='2'; must be comma-separated"),
    ({"num_heads": 3}, r"model.num_heads=3; must divide model.d_model=16"),
    ({"d_conv": 0}, r"model.d_conv=0; must be an int >= 1"),
])
def test_bad_fields_name_the_field(fields, message):
  with pytest.raises(ValueError, match=message):
    registry.make_config({"name": "xlstm", "d_model": 16, **fields})


def test_blocks_follow_the_ratio():
  cfg = registry.make_config({"name": "xlstm", "d_model": 16, "num_layers": 3, "ratio": "2:1",
                              "num_heads": 2}).config
  assert cfg.positions() == (1,) and cfg.ff_width == 22  # ceil(4/3 * 16)
  model = registry.backbone({"name": "xlstm", "d_model": 16, "num_layers": 3, "ratio": "2:1",
                             "num_heads": 2})
  x = jnp.ones((2, 5, 16))
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)["params"]
  # The sLSTM block has the gated MLP; the mLSTM blocks have none (their layer projects up).
  assert {"mlstm_0", "slstm_1", "mlstm_2", "ff_1", "norm_ff_1"} <= set(params)
  assert not {"ff_0", "ff_2", "slstm_0", "mlstm_1"} & set(params)


@pytest.mark.parametrize("name", ["slstm", "mlstm", "xlstm"])
def test_sections_have_init_and_heads(name):
  section = registry.section(name)
  assert section["init"] == "torch" and section["num_heads"] == 4
