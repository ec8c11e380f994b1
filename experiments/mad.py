"""MAD (Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid Architectures"): six synthetic
tasks, each at its baseline setting and at MAD's difficulty changes; per setting the best run of a
learning-rate x weight-decay grid; a task's score is the mean of its settings' best test
accuracies, a model's MAD score the mean of its six task scores (``mad_scores``). MAD's finding:
this score ranks architectures as their scaled-up language-model perplexity does.

  scripts/sweep.py --config experiments/mad.py:report --workdir runs/mad --workers 2
  python experiments/mad.py --workdir runs/mad     # the MAD score table from results.csv

One cell (one task setting, one model, the grid): ``:report,task=in_context_recall,setting=train800,
model=lstm``. ``:smoke`` runs every task once in seconds (CI). ``full`` (no size) is MAD's protocol
for every causal family of the model registry: 66 settings x 6 grid points x 15 families, 5,940
runs of 400 to 20,000 steps each; a cluster job (``--executor slurm``).

MAD's protocol, and where this file departs from it:
- Settings: MAD's task configs (mad-lab ``configs/tasks/*.yml``): ``BASELINES`` and ``CHANGES``,
  each change applied alone to the baseline (``settings``). The training-set size is the run's
  ``train_examples`` (a fixed set repeated in epochs, train/finite.py); the test set is 1,280 fresh
  examples (``eval_batches * batch_size``) from the evaluation seed.
- Training (full): AdamW, batch 128, 200 epochs of the training set (so 400 to 20,000 steps), cosine
  decay; the grid lr {1e-4, 5e-4, 1e-3} x weight decay {0, 0.1}; one seed; the final test accuracy.
  attnlab's schedule warms up for up to 100 steps and decays to 0 (MAD: no warm-up, down to 1e-6),
  clips gradients at norm 1, and decays matrices only (not embeddings or norms).
- Models: attnlab's registered families at equal width (d_model 128, 2 layers), each in its own
  block (the decoder with its feed-forward, the LSTM without one). MAD compares its mixers inside
  one block ([mixer, SwiGLU] x 2) and normalises state and parameter counts ("iso-state,
  iso-parameter"); this does not. The encoder Transformer is left out: it would see the answers.
- Tasks: see attnlab/tasks/mad/ (loss on the scored tokens only; compression answered in slots
  after the compression token, not by MAD's pooled MLP decoder; fuzzy recall's test keys mix sizes).
- ``:report`` (this 2-core CPU, about 3 hours for 360 runs): each task's baseline and one harder
  setting (``REPORT_HARDER``), 5 families (decoder, LSTM, Mamba, Hawk, GLA) at width 64, the
  6-point grid; but sequences a quarter of MAD's (``seq_len`` and selective copy's ``num_tokens``
  divided by 4; memorization keeps its 32), 400 steps at batch 32 instead of 200 epochs at batch
  128 (one epoch of a 12,800-example set), and 256 test examples. Its scores rank the families on
  far less training, and on shorter sequences, than MAD's; read them as such.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any, Iterable, Mapping, Sequence

if __name__ == "__main__":  # run as a script: this checkout's attnlab, and not experiments/ on the
  # path (experiments/copy.py would shadow the standard library's copy)
  sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from attnlab.models import registry as model_registry  # noqa: E402
from attnlab.sweeps import results as sweep_results  # noqa: E402
from attnlab.sweeps import spec  # noqa: E402

TASKS = ("in_context_recall", "fuzzy_recall", "noisy_recall", "selective_copy", "compression",
         "memorization")
# MAD's baseline settings (mad-lab configs/tasks/*.yml). seq_len is MAD's; the row length L is
# seq_len, or 2 * seq_len for compression (its answer slots, attnlab/tasks/mad/compression.py).
BASELINES = {
    "in_context_recall": dict(vocab_size=16, seq_len=128, train_examples=12_800),
    "fuzzy_recall": dict(vocab_size=16, seq_len=128, train_examples=12_800, k_motif_size=3,
                         v_motif_size=3),
    "noisy_recall": dict(vocab_size=32, seq_len=128, train_examples=12_800, noise_vocab_size=16,
                         frac_noise=0.2),
    "selective_copy": dict(vocab_size=16, seq_len=256, train_examples=12_800, num_tokens=16),
    "compression": dict(vocab_size=16, seq_len=32, train_examples=12_800),
    "memorization": dict(vocab_size=256, seq_len=32, train_examples=256),
}
_TRAIN = (6400, 3200, 1600, 800)
CHANGES = {
    "in_context_recall": dict(vocab_size=(32, 64, 128), seq_len=(256, 512, 1024), train_examples=_TRAIN),
    "fuzzy_recall": dict(vocab_size=(32, 64, 128), seq_len=(256, 512, 1024), train_examples=_TRAIN),
    "noisy_recall": dict(vocab_size=(48, 80, 144), seq_len=(256, 512, 1024), train_examples=_TRAIN,
                         frac_noise=(0.4, 0.6, 0.8)),
    "selective_copy": dict(vocab_size=(32, 64, 128), seq_len=(512, 1024), train_examples=_TRAIN,
                           num_tokens=(32, 64, 96)),
    "compression": dict(vocab_size=(32, 64, 128), seq_len=(64, 128, 256), train_examples=_TRAIN),
    "memorization": dict(vocab_size=(512, 1024, 2048, 4096, 8192)),
}
_SHORT = {"vocab_size": "vocab", "seq_len": "len", "train_examples": "train", "frac_noise": "noise",
          "num_tokens": "copy"}
# The harder setting of each task in :report: one that costs no more than the baseline.
REPORT_HARDER = {"in_context_recall": "train800", "fuzzy_recall": "vocab32",
                 "noisy_recall": "noise0.6", "selective_copy": "copy32", "compression": "vocab64",
                 "memorization": "vocab1024"}
LEARNING_RATES = (1e-4, 5e-4, 1e-3)
WEIGHT_DECAYS = (0.0, 0.1)
# Every causal family of the registry (the encoder Transformer would see the answers): xLSTM
# joins by itself once attnlab.models.registry has it.
FULL_MODELS = tuple(m for m in model_registry.MODELS if m not in ("transformer", "encoder_decoder"))
# The report's families. xlstm exists now; a sixth family would take the report past its
# 3-hour budget (72 more runs), so it runs at the full size only.
REPORT_MODELS = ("decoder", "lstm", "mamba", "hawk", "gla")
METRIC = "accuracy"

SIZES = {
    "full": dict(models=FULL_MODELS, width=128, batch_size=128, epochs=200, test_examples=1280,
                 harder=None, lrs=LEARNING_RATES, wds=WEIGHT_DECAYS, smoke=False),
    "report": dict(models=REPORT_MODELS, width=64, batch_size=32, steps=400, test_examples=256,
                   harder=REPORT_HARDER, lrs=LEARNING_RATES, wds=WEIGHT_DECAYS, smoke=False,
                   shorter=4),
    # Every task once, baseline shrunk to a few steps: the code paths, not the numbers.
    "smoke": dict(models=("lstm",), width=16, batch_size=8, steps=6, test_examples=8,
                  harder={}, lrs=(1e-3,), wds=(0.1,), smoke=True),
}
_SMOKE_TASK = {"seq_len": 16, "train_examples": 16, "num_tokens": 4, "vocab_size": 16}
_KEYS = ("task", "setting", "model")


def settings(task: str) -> dict[str, dict[str, Any]]:
  """Setting name -> MAD's parameters: the baseline, then each change alone ("vocab32", ...)."""
  out = {"baseline": dict(BASELINES[task])}
  for field, values in CHANGES[task].items():
    for value in values:
      out[f"{_SHORT[field]}{value:g}"] = {**BASELINES[task], field: value}
  return out


def size_settings(task: str, size: Mapping[str, Any]) -> list[str]:
  """The settings a size runs for ``task``."""
  if size["harder"] is None:
    return list(settings(task))
  return ["baseline"] + ([size["harder"][task]] if task in size["harder"] else [])


def _shorter(task: str, params: dict, factor: int) -> dict:
  """MAD's sequences ``factor`` times shorter (memorization's pairs are independent: kept)."""
  out = dict(params)
  if task != "memorization":
    out["seq_len"] //= factor
  if "num_tokens" in out:
    out["num_tokens"] //= factor
  return out


def _shrink(task: str, params: dict) -> dict:
  """Smoke: MAD's fields at toy sizes (memorization keeps its vocabulary of 256)."""
  out = dict(params)
  for field, value in _SMOKE_TASK.items():
    if field in out and not (task == "memorization" and field == "vocab_size"):
      out[field] = value
  if task == "noisy_recall":
    out["vocab_size"] = 16 + out["noise_vocab_size"]
  return out


def steps(params: Mapping[str, Any], size: Mapping[str, Any]) -> int:
  """MAD's epochs of the training set at the size's batch, or the size's fixed budget."""
  if "epochs" in size:
    return size["epochs"] * -(-params["train_examples"] // size["batch_size"])
  return size["steps"]


def get_config(arg: str | None = None):
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  task = parsed.get("task", "in_context_recall")
  if task not in TASKS:
    raise ValueError(f"mad: task={task!r}; allowed: {TASKS}")
  setting = parsed.get("setting", "baseline")
  if setting not in settings(task):
    raise ValueError(f"mad: setting={setting!r} for task {task}; allowed: {list(settings(task))}")
  params = settings(task)[setting]
  if size["smoke"]:
    params = _shrink(task, params)
  if size.get("shorter"):
    params = _shorter(task, params, size["shorter"])
  c = spec.base_config(__file__, model=parsed.get("model", "decoder"), task=f"mad_{task}",
                       smoke=size["smoke"])
  c.model.init = "torch"  # PyTorch's defaults (attnlab/models/initializers.py)
  for field, value in params.items():
    if field in c.task:
      c.task[field] = value
  length = params["seq_len"] * (2 if task == "compression" else 1)
  c.train_min_length = c.train_max_length = length
  c.eval_lengths = [length]
  c.train_examples = params["train_examples"]
  c.model.d_model = size["width"]
  c.model.num_layers = 2
  if "layers" in c.model:  # the hybrid: two blocks like the others, Griffin's recurrence then attention
    c.model.layers = "hawk,attention"
  if "num_heads" in c.model:
    c.model.num_heads = 4 if size["width"] >= 32 else 2
  spec.set_schedule(c, num_steps=steps(params, size), batch_size=size["batch_size"],
                    learning_rate=size["lrs"][-1], evals=1)  # MAD scores the final model
  c.eval_batches = max(1, size["test_examples"] // size["batch_size"])
  c.best_metric = ""  # the final model, not the best checkpoint
  return c


def get_sweep(arg: str | None = None) -> list[dict]:
  parsed, size = spec.sized(arg, SIZES, keys=_KEYS)
  tasks = [parsed["task"]] if "task" in parsed else TASKS
  models = [parsed["model"]] if "model" in parsed else size["models"]
  trials = []
  for task in tasks:
    names = [parsed["setting"]] if "setting" in parsed else size_settings(task, size)
    for setting in names:
      trials += spec.grid(arg__task=[task], arg__setting=[setting], arg__model=models,
                          optimizer__learning_rate=size["lrs"],
                          optimizer__weight_decay=size["wds"], seed=[0])
  return trials


def mad_scores(rows: Iterable[Mapping[str, Any]], metric: str = METRIC) -> dict[str, dict]:
  """MAD's score from sweep rows (``results.csv``): per model, task and setting the best ``metric``
  over the grid (finished runs only); a task's score is the mean over its settings, the model's MAD
  score the mean over the six tasks. Returns ``{model: {"tasks": {task: score}, "settings":
  {task: settings scored}, "missing": [(task, setting) with no finished run], "mad": score}}``;
  "mad" is None unless all six tasks are scored and nothing is missing.
  """
  best: dict[tuple, float | None] = {}
  for row in rows:
    cell = (row["arg.model"], row["arg.task"], row["arg.setting"])
    value = row.get(metric)
    done = row.get("status") == "done" and isinstance(value, (int, float)) and value == value
    previous = best.get(cell)
    best[cell] = (max(float(value), previous if previous is not None else float(value)) if done
                  else previous)
  by_model: dict[str, dict] = {}
  for (model, task, setting), value in sorted(best.items()):
    entry = by_model.setdefault(model, {"values": {}, "missing": []})
    if value is None:
      entry["missing"].append((task, setting))
    else:
      entry["values"].setdefault(task, []).append(value)
  out = {}
  for model, entry in by_model.items():
    tasks = {t: statistics.fmean(v) for t, v in entry["values"].items()}
    complete = set(tasks) == set(TASKS) and not entry["missing"]
    out[model] = {"tasks": tasks, "settings": {t: len(v) for t, v in entry["values"].items()},
                  "missing": entry["missing"],
                  "mad": statistics.fmean(tasks.values()) if complete else None}
  return out


def score_table(scores: Mapping[str, dict], tasks: Sequence[str] = TASKS) -> str:
  """Markdown: one row per model, its task scores and MAD score, best MAD score first."""
  order = sorted(scores, key=lambda m: -(scores[m]["mad"] if scores[m]["mad"] is not None else -1))
  lines = ["| model | " + " | ".join(tasks) + " | MAD score |",
           "|---" * (len(tasks) + 2) + "|"]
  for model in order:
    entry = scores[model]
    cells = [f"{entry['tasks'][t]:.3f}" if t in entry["tasks"] else "-" for t in tasks]
    mad = f"{entry['mad']:.3f}" if entry["mad"] is not None else "-"
    lines.append(f"| {model} | " + " | ".join(cells) + f" | {mad} |")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description="MAD scores of a finished experiments/mad.py sweep")
  parser.add_argument("--workdir", required=True, help="the sweep's workdir (holds results.csv)")
  args = parser.parse_args(argv)
  rows = sweep_results.read_csv(os.path.join(args.workdir, "results.csv"))
  print(score_table(mad_scores(rows)))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
