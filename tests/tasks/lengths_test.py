import pytest

from attnlab.tasks import lengths


def test_train_length_deterministic_and_in_range():
  drawn = [lengths.train_length(7, step, 10, 20) for step in range(400)]
  assert drawn == [lengths.train_length(7, step, 10, 20) for step in range(400)]
  assert min(drawn) == 10 and max(drawn) == 20  # both ends reachable
  assert drawn != [lengths.train_length(8, step, 10, 20) for step in range(400)]
  assert lengths.train_length(0, 5, 16, 16) == 16


def test_inverted_or_bad_range_raises():
  with pytest.raises(ValueError, match="max_length=10 < min_length=20"):
    lengths.train_length(0, 0, 20, 10)
  with pytest.raises(ValueError, match="min_length"):
    lengths.check_length_range(0, 10)
  with pytest.raises(ValueError, match="eval_lengths"):
    lengths.check_eval_lengths([])


def test_bucket_and_split():
  assert lengths.bucket(33, [32, 64, 128]) == 64
  with pytest.raises(ValueError, match="largest bucket"):
    lengths.bucket(200, [32, 64])
  assert lengths.generalisation_split([256, 64, 128, 64], 128) == {"in_range": (64, 128),
                                                                  "beyond": (256,)}
