"""bench.py long_context at a tiny size: the layers' training steps run in child processes and the
records carry the ratios against softmax attention (no timing assertions); every layer builds."""

from __future__ import annotations

from benchmarks import long_context


def test_every_layer_builds():
  for name in long_context.LAYERS:
    assert long_context.make_layer(name, 2, 8) is not None


def test_layers_run_and_are_compared_with_softmax(tmp_path):
  path = str(tmp_path / "records.json")
  records = long_context.main(["--lengths", "16", "32", "--layers", "softmax", "mamba", "mamba_proj",
                               "--batch",
                               "2", "--heads", "2", "--head_dim", "8", "--window", "8",
                               "--repeats", "1"], path)
  assert {r["impl"] for r in records} == {"softmax", "mamba", "mamba_proj"}
  assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"]
  for r in records:
    assert r["vs_softmax"] > 0 and r["peak_mb"] is not None
    if r["length"] == 32:
      assert r["growth"] > 0
