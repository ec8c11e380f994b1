import jax
import numpy as np
import pytest

from attnlab.tasks import tfds_builder
from attnlab.tasks.registry import get_task


@pytest.mark.parametrize("name,fields,lengths", [
    ("copy", {"noise_rate": 0.2}, [33, 12]),
    ("adding", {}, [12]),
    ("listops", {"max_depth": 4}, [16]),  # a while_loop sampler
])
def test_round_trip_equals_direct_sampling_and_rebuild_reuses(tmp_path, monkeypatch, name, fields,
                                                               lengths):
  info = tfds_builder.build(tmp_path, name, fields, lengths=lengths, examples=7, seed=11)
  assert info.splits == {f"length_{n}": 7 for n in sorted(lengths)}
  assert info.name.startswith(f"attnlab_task/{name}-") and info.name.endswith("-s11-n7-L" + "_".join(
      str(n) for n in sorted(lengths)) + ":" + tfds_builder.VERSION)

  task = get_task(name, **fields)
  for length in lengths:
    batches = list(tfds_builder.eval_batches(tmp_path, task, length, batch_size=3, seed=11))
    assert len(batches) == 2  # 7 examples -> two full batches of 3
    rng = jax.random.fold_in(jax.random.fold_in(jax.random.key(11), length), 0)
    direct = task.sample(rng, tfds_builder.CHUNK, length)
    for k in ("inputs", "targets", "mask"):
      got = np.concatenate([b[k] for b in batches])
      assert got.dtype == np.asarray(direct[k]).dtype
      np.testing.assert_array_equal(got, np.asarray(direct[k])[:6])

  calls = []
  monkeypatch.setattr(tfds_builder, "sample_split", lambda *a: calls.append(a))
  again = tfds_builder.build(tmp_path, name, fields, lengths=lengths, examples=7, seed=11)
  assert again == info and not calls  # reused, nothing sampled


def test_missing_set_and_bad_lengths(tmp_path):
  task = get_task("parity")
  with pytest.raises(ValueError, match="no evaluation set for task parity"):
    next(tfds_builder.eval_batches(tmp_path, task, 8, 2))
  with pytest.raises(ValueError, match="min_length=31"):
    tfds_builder.build(tmp_path, "mqar", {}, lengths=[16], examples=2)
  with pytest.raises(ValueError, match="unknown task name"):
    tfds_builder.build(tmp_path, "nope", {}, lengths=[16], examples=2)
