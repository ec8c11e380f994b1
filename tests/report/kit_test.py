"""kit.controls: an experiment's committed controls.csv as a Markdown table, nothing without one."""

from __future__ import annotations

from attnlab.report import data, kit


def _experiment(directory):
  return data.Experiment(name="mqar", directory=str(directory), rows=[], protocol={}, extra={})


def test_controls_render_the_committed_csv_with_its_path(tmp_path):
  exp_dir = tmp_path / "results" / "mqar"
  exp_dir.mkdir(parents=True)
  (exp_dir / "controls.csv").write_text(
      'implementation,model,test_accuracy,command\n'
      'PyTorch (nn.GRU),gru,0.160,"python x.py --lrs 1e-3, 3e-3"\n', encoding="utf-8")
  text, table = kit.controls(_experiment(exp_dir), str(tmp_path / "results"))
  assert "(results/mqar/controls.csv)" in text
  assert table.splitlines() == ["| implementation | model | test_accuracy | command |",
                                "|---|---|---|---|",
                                "| PyTorch (nn.GRU) | gru | 0.160 | python x.py --lrs 1e-3, 3e-3 |"]


def test_no_controls_file_adds_nothing(tmp_path):
  assert kit.controls(_experiment(tmp_path), str(tmp_path)) == []
