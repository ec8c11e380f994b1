"""The products benchmark: it times the LSTM step's products, computed right (no timing asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import products

SIZES = dict(batch=2, length=3, features=4, hidden=5)


def test_shapes_are_the_lstm_steps_products_and_their_flops_add_up():
  b, l, d, h = SIZES.values()
  table = products.shapes(**SIZES)
  assert table["step"] == (l, (b, d + h), (d + h, 4 * h), False)
  assert table["dw_hh"] == (1, (l * b, h), (l * b, 4 * h), True)
  # The LSTM step: forward [x, h] W per step, dh = dg W_hh^T per step, then x^T dg and h^T dg.
  lstm = 2 * (l * b * (d + h) * 4 * h + l * b * 4 * h * h + h * l * b * 4 * h + d * l * b * 4 * h)
  assert sum(products.flops(*shape) for shape in table.values()) == lstm


@pytest.mark.parametrize("case", products.CASES)
def test_jax_and_torch_compute_the_same_product(case):
  torch = pytest.importorskip("torch")
  count, lhs, rhs, transposed = products.shapes(**SIZES)[case]
  a, w = products.operands(count, lhs, rhs)
  want = products.reference(a, w, transposed)
  m = lhs[1] if transposed else lhs[0]
  assert want.shape == (m, rhs[1])
  np.testing.assert_allclose(products.jax_product(a, w, transposed)(), want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(products.torch_product(torch, a, w, transposed)().numpy(), want,
                             rtol=1e-5, atol=1e-5)


def test_main_writes_a_record_per_case_and_impl_and_the_sum(tmp_path, capsys):
  torch = pytest.importorskip("torch")
  path = tmp_path / "p.json"
  threads = torch.get_num_threads()
  try:
    products.main(["--batch=2", "--length=3", "--features=4", "--hidden=5", "--repeats=1",
                   "--torch_threads=1"], str(path))
  finally:
    torch.set_num_threads(threads)
  records = json.loads(path.read_text())
  keys = {(r["case"], r["impl"]) for r in records}
  assert keys == {(c, i) for c in products.CASES + ("lstm_products", "lstm_step")
                  for i in ("jax", "torch")}
  jax_rows = [r for r in records if r["impl"] == "jax" and r["case"] in products.CASES]
  total = next(r for r in records if r["case"] == "lstm_products" and r["impl"] == "jax")
  step = next(r for r in records if r["case"] == "lstm_step" and r["impl"] == "jax")
  assert total["median_s"] == pytest.approx(sum(r["median_s"] for r in jax_rows))
  assert step["rest_s"] == pytest.approx(step["median_s"] - total["median_s"])
  assert all(r["x_torch"] > 0 and r["gflop_per_s"] > 0 for r in records)
  assert "lstm_products" in capsys.readouterr().out


def test_bad_sizes_are_refused_by_name(capsys):
  with pytest.raises(SystemExit):
    products.main(["--hidden=0"], None)
  assert "--hidden must be a positive integer, got 0" in capsys.readouterr().err
