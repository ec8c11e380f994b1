"""The control for a failing cell of any experiment: PyTorch's own model of the same shape
(``experiment.torch_model``: nn.Embedding, or nn.Linear for feature inputs; nn.LSTM/GRU/RNN or a
pre-norm nn.TransformerEncoder; nn.Linear; at PyTorch's default initialisation), trained the way
the experiment file trains attnlab's (AdamW decaying matrices only, linear warmup then cosine to
zero, global-norm clipping, the same batches from ``data.TrainData``, the same step budget, the
same loss: cross-entropy, or squared error for a regression such as the adding problem), then
scored on the run's test batches (accuracy, or MSE). If PyTorch also fails the cell, the failure
is the model's and the budget's, not attnlab's implementation. No early stopping: the control runs
its whole budget.

  python scripts/benchmarks/torch_control.py --config experiments/distance.py:report,model=lstm \
      --set task.distance=64 --lrs 1e-3 3e-3 --seeds 0
  python scripts/benchmarks/torch_control.py --config experiments/mqar.py:report,model=gru \
      --set model.d_model=64 --lrs 1e-3 3e-3 --seeds 0 1
  python scripts/benchmarks/torch_control.py --config experiments/adding.py:report,model=lstm,length=400
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from attnlab import configs  # noqa: E402
from attnlab.tasks import base  # noqa: E402
from attnlab.train import config as config_lib, data as data_lib  # noqa: E402
from benchmarks import experiment  # noqa: E402


def _lr(step, lr, warmup, total):
  if step < warmup:
    return lr * step / warmup
  return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def parse_set(text: str) -> tuple[str, object]:
  """``"model.d_model=64"`` -> ``("model.d_model", 64)``; a value that is not a Python literal
  stays a string."""
  key, sep, value = text.partition("=")
  if not sep or not key:
    raise argparse.ArgumentTypeError(f"--set takes FIELD=VALUE (model.d_model=64), got {text!r}")
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value


def load(config_arg: str, sets, lr: float, seed: int):
  """The experiment's config at ``config_arg`` with ``sets`` applied, at ``lr`` and ``seed``."""
  config = configs.load_config_file(config_arg)
  for key, value in sets:
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node[part]
    if leaf not in node:
      raise ValueError(f"--set {key}: no such config field")
    node[leaf] = value
  config.optimizer.learning_rate, config.seed = lr, seed
  return config


def run(torch, config) -> dict:
  setup = config_lib.build(config)
  opt_cfg, steps, length = config.optimizer, int(config.num_steps), int(config.train_max_length)
  data = data_lib.TrainData.from_config(config, setup.task, None)
  batch_at = jax.jit(lambda s: data.batch(s, None, length))
  torch.manual_seed(int(config.seed))
  model = experiment.torch_model(torch, setup)
  named = list(model.named_parameters())
  decayed = lambda n, p: p.dim() >= 2 and "embed" not in n  # noqa: E731
  opt = torch.optim.AdamW(
      [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": opt_cfg.weight_decay},
       {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}],
      lr=opt_cfg.learning_rate)

  regression = setup.task.output_kind == base.REGRESSION
  metric = "mse" if regression else "accuracy"

  def loss_and_metric(batch):
    """The masked-mean loss (attnlab's: squared error for a regression, cross-entropy otherwise)
    and the test metric (MSE or accuracy)."""
    out = model(experiment.torch_inputs(torch, setup.task, batch["inputs"]))
    mask = torch.from_numpy(np.array(batch["mask"], np.float32)).reshape(-1)
    if regression:
      targets = torch.from_numpy(np.array(batch["targets"], np.float32)).reshape(-1)
      loss = ((out.reshape(-1) - targets) ** 2 * mask).sum() / mask.sum()
      return loss, float(loss)
    targets = torch.from_numpy(np.asarray(batch["targets"], np.int64)).reshape(-1)
    flat = out.reshape(-1, out.shape[-1])
    per_token = torch.nn.functional.cross_entropy(flat, targets, reduction="none")
    right = (flat.argmax(-1) == targets).float()
    return (per_token * mask).sum() / mask.sum(), float((right * mask).sum() / mask.sum())

  start, losses = time.time(), []
  for step in range(steps):
    for group in opt.param_groups:
      group["lr"] = _lr(step, opt_cfg.learning_rate, opt_cfg.warmup_steps, steps)
    opt.zero_grad(set_to_none=True)
    loss, _ = loss_and_metric(jax.device_get(batch_at(step)))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg.clip_norm)
    opt.step()
    losses.append(loss.item())
  key = jax.random.PRNGKey(config.eval_seed)
  with torch.no_grad():
    score = float(np.mean([loss_and_metric(jax.device_get(data_lib.eval_batch(
        setup.task, key, config.batch_size, i, None, length)))[1]
        for i in range(config.eval_batches)]))
  return {"model": setup.model_fields["name"], "d_model": setup.model_fields["d_model"],
          "lr": opt_cfg.learning_rate, "seed": int(config.seed), "steps": steps,
          f"test_{metric}": score, "first_loss": losses[0],
          "last_loss": float(np.mean(losses[-100:])), "wall_s": time.time() - start}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True,
                      help="experiment file and argument, as scripts/train.py takes it")
  parser.add_argument("--set", type=parse_set, action="append", default=[],
                      help="FIELD=VALUE override (repeatable): model.d_model=64")
  parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3])
  parser.add_argument("--seeds", type=int, nargs="+", default=[0])
  parser.add_argument("--threads", type=int, default=1)
  args = parser.parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(args.threads)
  try:
    load(args.config, args.set, args.lrs[0], args.seeds[0])
  except (ValueError, KeyError, FileNotFoundError) as e:
    parser.error(str(e))
  for lr in args.lrs:
    for seed in args.seeds:
      config = load(args.config, args.set, lr, seed)
      print(json.dumps({**run(torch, config), "config": args.config,
                        "set": dict(args.set)}), flush=True)


if __name__ == "__main__":
  main()
