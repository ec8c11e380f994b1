import json

from attnlab.train import writer as writer_lib


def _steps(path):
  with open(path) as f:
    return [json.loads(line)["step"] for line in f]


def test_resume_drops_records_after_the_restored_step(tmp_path):
  w = writer_lib.MetricWriter(str(tmp_path), enabled=True, total_steps=10, initial_step=0)
  for step in range(1, 6):
    w.train(step, {"loss": 1.0 / step})
    w.eval({"step": step, "lengths": {"8": {"accuracy": 0.5}}})
  w.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 6, "lo')  # a kill mid-write

  w = writer_lib.MetricWriter(str(tmp_path), enabled=True, total_steps=10, initial_step=3)
  w.train(4, {"loss": 0.2})
  w.close()
  assert _steps(tmp_path / "metrics.jsonl") == [1, 2, 3, 4]
  assert _steps(tmp_path / "eval.jsonl") == [1, 2, 3]


def test_fresh_run_keeps_nothing_it_did_not_write(tmp_path):
  w = writer_lib.MetricWriter(str(tmp_path), enabled=True, total_steps=4, initial_step=0)
  w.train(1, {"loss": 1.0})
  w.close()
  assert _steps(tmp_path / "metrics.jsonl") == [1]
