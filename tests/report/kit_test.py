"""kit.controls: an experiment's committed controls.csv as a Markdown table, nothing without one;
kit.overruled: a control naming a cell takes the verdict off it."""

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


def _cell(mean):
  return data.Cell(mean=mean, std=0.0, best=mean, best_seed=0, seeds=3, learning_rate=1e-3,
                   converged=True)


def test_a_control_that_overrules_a_converged_cell_makes_the_verdict_undetermined(tmp_path):
  (tmp_path / "controls.csv").write_text(
      "implementation,model,T,steps,test_mse,overrules,command\n"
      "PyTorch (nn.LSTM),lstm,400,5000,0.169,,python a.py\n"
      "attnlab (4x the budget),lstm,400,20000,0.001,lstm at T=400,python b.py\n",
      encoding="utf-8")
  rests_on = {"lstm at T=400": _cell(0.169), "gru at T=400": _cell(0.001)}
  assert kit.verdict([(False, "lstm fails")], rests_on)[0] == "no"
  out = kit.overruled(_experiment(tmp_path), rests_on)
  assert out["gru at T=400"] == rests_on["gru at T=400"]
  assert out["lstm at T=400 (overruled by a control)"].converged is False
  outcome, reason = kit.verdict([(False, "lstm fails")], out)
  assert outcome == kit.UNDETERMINED
  assert reason.startswith("still improving: lstm at T=400 (overruled by a control)")


def test_controls_without_an_overrules_column_change_nothing(tmp_path):
  (tmp_path / "controls.csv").write_text("implementation,model\nPyTorch,gru\n", encoding="utf-8")
  rests_on = {"gru at width 64": _cell(0.17)}
  assert kit.overruled(_experiment(tmp_path), rests_on) == rests_on
  assert kit.overruled(_experiment(tmp_path / "none"), rests_on) == rests_on
