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


def test_bucket():
  assert lengths.bucket(33, [32, 64, 128]) == 64
  with pytest.raises(ValueError, match="largest bucket"):
    lengths.bucket(200, [32, 64])


def test_bucket_rules():
  lengths_ = list(range(1, 41)) + list(range(41, 501))
  assert lengths.resolve_buckets("pow2", lengths_, True) == (8, 16, 32, 64, 128, 256, 512)
  assert lengths.resolve_buckets("auto", lengths_, True) == (8, 16, 32, 64, 128, 256, 512)
  assert lengths.resolve_buckets("auto", lengths_, False) is None  # the task cannot pad
  assert lengths.resolve_buckets("auto", [64, 128], True) is None  # few lengths: exact
  assert lengths.resolve_buckets("off", lengths_, True) is None
  assert lengths.resolve_buckets("16,64", [3, 64], True) == (16, 64)
  assert lengths.resolve_buckets([16, 64], [3, 64], True) == (16, 64)
  assert [lengths.bucket_of(n, (8, 16)) for n in (1, 8, 9, 16)] == [8, 8, 16, 16]
  assert lengths.bucket_of(13, None) == 13


@pytest.mark.parametrize("spec, message", [
    ("16,32", "does not cover the longest train or eval length 40"),
    ("0,64", "non-positive"),
    ("64,16", "not strictly increasing"),
    ("32,32,64", "not strictly increasing"),
    ("fibonacci", "length_buckets='fibonacci'; allowed"),
])
def test_bad_bucket_lists_name_the_field(spec, message):
  with pytest.raises(ValueError, match=message) as e:
    lengths.resolve_buckets(spec, [1, 40], True)
  assert "length_buckets=" in str(e.value)


def test_buckets_need_a_padding_task():
  with pytest.raises(ValueError, match="samples no padded batches"):
    lengths.resolve_buckets("pow2", [8, 9], False)
