"""collect.protocol: the protocol fields a committed sweep states, from its trials' config.json."""

from __future__ import annotations

import json
import os

from attnlab.report import collect


def _trial(root, name, *, length, lr, seed, eval_lengths):
  os.makedirs(os.path.join(root, name))
  config = {"num_steps": 30, "batch_size": 8, "seed": seed, "optimizer": {"learning_rate": lr},
            "train_min_length": length, "train_max_length": length, "eval_lengths": eval_lengths,
            "task": {"name": "copy", "alphabet_size": 8}}
  with open(os.path.join(root, name, "config.json"), "w") as f:
    json.dump(config, f)


def test_protocol_states_each_field_once_and_lengths_in_numeric_order(tmp_path, monkeypatch):
  root = str(tmp_path / "sweep")
  os.makedirs(root)
  names = []
  for length in (1024, 256, 4096):  # grid order need not be numeric order
    for lr in (3e-3, 1e-3):
      names.append(f"l{length}-lr{lr}")
      _trial(root, names[-1], length=length, lr=lr, seed=0, eval_lengths=[length])
  names.append("generalise")
  _trial(root, "generalise", length=40, lr=1e-3, seed=1, eval_lengths=list(range(41, 501, 5)))
  with open(os.path.join(root, "sweep.json"), "w") as f:
    json.dump({"config": str(tmp_path / "experiments" / "x.py") + ":report",
               "trials": [{"name": n, "overrides": {}} for n in names]}, f)
  monkeypatch.chdir(tmp_path)
  p = collect.protocol(root, "scripts/sweep.py --config experiments/x.py:report")
  assert p["config"] == os.path.join("experiments", "x.py") + ":report"  # relative, not absolute
  assert p["trials"] == 7
  fields = p["fields"]
  assert fields["train_lengths"] == "40, 256, 1024, 4096"
  assert fields["eval_lengths"] == "256, 1024, 4096, 41..496 every 5"
  assert fields["optimizer.learning_rate"] == "0.001, 0.003"
  assert fields["seed"] == "0, 1" and fields["num_steps"] == "30"
  assert fields["task"] == "alphabet_size=8, name=copy"
