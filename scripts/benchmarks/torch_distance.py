"""The control for a failing distance cell: PyTorch's own model of the same shape (``experiment.
torch_model``: nn.Embedding, nn.LSTM/GRU/RNN, nn.Linear at PyTorch's default initialisation),
trained the way experiments/distance.py:report trains attnlab's (AdamW decaying matrices only,
linear warmup then cosine to zero, global-norm clipping, the same batches from ``data.TrainData``),
then scored on the run's test batches. If PyTorch also fails the cell, the failure is the model's
and the budget's, not attnlab's implementation.

  python scripts/benchmarks/torch_distance.py --model lstm --distance 64 --lrs 1e-3 3e-3 --seeds 0
"""

from __future__ import annotations

import argparse
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
from attnlab.train import config as config_lib, data as data_lib  # noqa: E402
from benchmarks import experiment  # noqa: E402


def _lr(step, lr, warmup, total):
  if step < warmup:
    return lr * step / warmup
  return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def run(torch, model_name: str, distance: int, lr: float, seed: int) -> dict:
  root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
  config = configs.load_config_file(
      os.path.join(root, "experiments", f"distance.py:report,model={model_name}"))
  config.task.distance, config.optimizer.learning_rate, config.seed = distance, lr, seed
  setup = config_lib.build(config)
  opt_cfg, steps, length = config.optimizer, int(config.num_steps), int(config.train_max_length)
  data = data_lib.TrainData.from_config(config, setup.task, None)
  batch_at = jax.jit(lambda s: data.batch(s, None, length))
  torch.manual_seed(seed)
  model = experiment.torch_model(torch, setup)
  named = list(model.named_parameters())
  decayed = lambda n, p: p.dim() >= 2 and "embed" not in n  # noqa: E731
  opt = torch.optim.AdamW(
      [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": opt_cfg.weight_decay},
       {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}], lr=lr)

  def loss_and_accuracy(batch):
    logits = model(torch.from_numpy(np.asarray(batch["inputs"], np.int64)))
    targets = torch.from_numpy(np.asarray(batch["targets"], np.int64)).reshape(-1)
    mask = torch.from_numpy(np.array(batch["mask"], np.float32)).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    per_token = torch.nn.functional.cross_entropy(flat, targets, reduction="none")
    right = (flat.argmax(-1) == targets).float()
    return (per_token * mask).sum() / mask.sum(), float((right * mask).sum() / mask.sum())

  start, losses = time.time(), []
  for step in range(steps):
    for group in opt.param_groups:
      group["lr"] = _lr(step, lr, opt_cfg.warmup_steps, steps)
    opt.zero_grad(set_to_none=True)
    loss, _ = loss_and_accuracy(jax.device_get(batch_at(step)))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg.clip_norm)
    opt.step()
    losses.append(loss.item())
  key = jax.random.PRNGKey(config.eval_seed)
  with torch.no_grad():
    accuracy = float(np.mean([loss_and_accuracy(jax.device_get(data_lib.eval_batch(
        setup.task, key, config.batch_size, i, None, length)))[1]
        for i in range(config.eval_batches)]))
  return {"model": model_name, "distance": distance, "lr": lr, "seed": seed, "steps": steps,
          "test_accuracy": accuracy, "first_loss": losses[0],
          "last_loss": float(np.mean(losses[-100:])), "wall_s": time.time() - start}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="lstm", choices=sorted(experiment.TORCH_RNNS))
  parser.add_argument("--distance", type=int, nargs="+", default=[64])
  parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3])
  parser.add_argument("--seeds", type=int, nargs="+", default=[0])
  parser.add_argument("--threads", type=int, default=1)
  args = parser.parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(args.threads)
  for d in args.distance:
    for lr in args.lrs:
      for seed in args.seeds:
        print(json.dumps(run(torch, args.model, d, lr, seed)), flush=True)


if __name__ == "__main__":
  main()
