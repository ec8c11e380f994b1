import numpy as np
import pytest

from attnlab.tasks import metrics


def _np_log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_per_token_matches_numpy_reference():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 4)).astype(np.float32)
  targets = rng.integers(0, 4, size=(3, 5))
  targets[2] = logits[2].argmax(-1)  # example 2 entirely right
  mask = np.array([[0, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]], np.float32)
  loss, m = metrics.loss_and_metrics("per_token", logits, targets, mask)

  ce, right, count = 0.0, 0, 0
  seq_right = []
  for b in range(3):
    all_right = True
    for t in range(5):
      if mask[b, t]:
        ce -= _np_log_softmax(logits[b, t])[targets[b, t]]
        ok = logits[b, t].argmax() == targets[b, t]
        right += ok
        count += 1
        all_right &= bool(ok)
    seq_right.append(all_right)
  np.testing.assert_allclose(loss, ce / count, rtol=1e-5)
  np.testing.assert_allclose(m["loss"], ce / count, rtol=1e-5)
  np.testing.assert_allclose(m["accuracy"], right / count, rtol=1e-6)
  np.testing.assert_allclose(m["sequence_accuracy"], np.mean(seq_right), rtol=1e-6)
  assert set(m) == {"loss", "accuracy", "sequence_accuracy"}


def test_sequence_and_regression():
  logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]], np.float32)
  targets = np.array([0, 0, 1])
  mask = np.array([1.0, 1.0, 0.0], np.float32)
  loss, m = metrics.loss_and_metrics("sequence", logits, targets, mask)
  want = -(_np_log_softmax(logits[0])[0] + _np_log_softmax(logits[1])[0]) / 2
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(m["accuracy"], 0.5)
  assert set(m) == {"loss", "accuracy"}

  preds = np.array([[1.0], [2.0], [0.0]], np.float32)  # [B, 1] is accepted as [B]
  loss, m = metrics.loss_and_metrics("regression", preds, np.array([1.5, 2.0, 9.0]), mask)
  np.testing.assert_allclose(loss, 0.125)
  np.testing.assert_allclose(m["mse"], 0.125)
  assert set(m) == {"loss", "mse"}


def test_empty_mask_gives_zero_not_nan():
  loss, m = metrics.loss_and_metrics("per_token", np.zeros((2, 3, 4), np.float32),
                                     np.zeros((2, 3), np.int32), np.zeros((2, 3), np.float32))
  assert float(loss) == 0.0 and float(m["sequence_accuracy"]) == 0.0


def test_bad_kind_and_shapes():
  with pytest.raises(ValueError, match="output_kind"):
    metrics.loss_and_metrics("tokens", np.zeros((2, 3)), np.zeros(2, np.int32), np.ones(2))
  with pytest.raises(ValueError, match="targets shape"):
    metrics.loss_and_metrics("per_token", np.zeros((2, 3)), np.zeros((2, 3), np.int32), np.ones((2, 3)))
