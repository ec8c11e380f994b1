"""Training steps at the experiment files' sizes, attnlab against PyTorch eager: ``scripts/bench.py
experiment [--json FILE] [--quick] [--experiments mqar,distance] [--models decoder,lstm]``.

For each experiment (``EXPERIMENTS``: its file, the models timed) and model, the attnlab row is the
jitted ``train_step`` (attnlab/train/step.py: loss, gradients, global-norm clipping, AdamW, the
step's norms and metrics) with the state donated, on one fixed batch of the experiment's task
(sampling excluded), at the config file's batch size, training length and width (``target_params``
sizing included). The torch row is the same model written as a PyTorch user would, run eagerly:
``nn.Embedding``, a pre-norm ``nn.TransformerEncoder`` (causal mask for the decoder, tanh-GELU and
the same sinusoidal positions as attnlab's) or ``nn.LSTM``/``nn.GRU``/``nn.RNN``, a ``nn.Linear``
head, masked cross-entropy, ``clip_grad_norm_`` and ``torch.optim.AdamW`` with attnlab's
weight-decay groups. Both have the same parameters (``params``: their number), and with attnlab's parameters copied
in the torch model computes attnlab's logits (tests/benchmarks/experiment_test.py).

mqar runs at ``--mqar_d_model`` (64: the width the issue names; the file sweeps 32..256);
length_generalization at its longest training length (40; the loop draws 1..40). ``--quick`` takes
every file's ``:smoke`` sizes (seconds; tests). All rows of one experiment are timed in interleaved
rounds (timing.time_interleaved): ``median_s`` wall, ``cpu_s`` process CPU per step, ``x_torch`` =
torch's median over this row's (>1: attnlab faster).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import resource

import jax
import numpy as np

from benchmarks import timing, torch_reference
from attnlab import configs
from attnlab.models.attention import positions as pos_lib
from attnlab.tasks import base
from attnlab.train import config as config_lib
from attnlab.train import loop

_EXPERIMENTS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")

# Experiment -> (config file, its :arg besides model= and smoke, models timed). Only models with a
# PyTorch counterpart (the scan models have none in torch.nn).
EXPERIMENTS = {
    "mqar": ("mqar.py", "", ("decoder", "lstm", "gru")),
    "distance": ("distance.py", "", ("transformer", "lstm", "gru", "rnn")),
    "noise": ("noise.py", "", ("transformer", "lstm", "gru", "rnn")),
    "length_generalization": ("length_generalization.py", "task=parity",
                              ("transformer", "lstm", "gru", "rnn")),
}
# attnlab model name -> torch.nn recurrent module.
TORCH_RNNS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
TRANSFORMERS = ("transformer", "decoder")


def load_config(experiment: str, model: str, *, quick: bool = False, mqar_d_model: int = 64):
  """The experiment file's config for ``model`` (``:smoke`` when quick)."""
  path, arg, _ = EXPERIMENTS[experiment]
  arg = ",".join([a for a in (arg, f"model={model}") if a] + (["smoke"] if quick else []))
  config = configs.load_config_file(f"{os.path.join(_EXPERIMENTS_DIR, path)}:{arg}")
  if experiment == "mqar" and not quick:
    config.model.d_model = mqar_d_model
  return config


def fixed_batch(setup, config) -> dict:
  """One batch of the task at the longest training length (what every timed step reads)."""
  return setup.task.sample(jax.random.PRNGKey(0), int(config.batch_size),
                           int(config.train_max_length))


def attnlab_step(setup, config, batch):
  """A zero-argument callable running one jitted, donated ``train_step`` on ``batch``, and the
  parameters it trains."""
  state = jax.jit(loop.create_fn(config, setup))()
  params = state.params
  step = jax.jit(loop.update_fn(config, setup), donate_argnums=0)
  rng = jax.random.PRNGKey(1)
  holder = [state]

  def run():
    holder[0], metrics = step(holder[0], batch, rng)
    return timing.block(metrics)

  return run, params


def torch_model(torch, setup):
  """The PyTorch eager model of the same shape as ``setup.model`` (an ``nn.Module``)."""
  nn = torch.nn
  f, task = setup.model_fields, setup.task
  name, d = f["name"], f["d_model"]

  class Model(nn.Module):
    def __init__(self):
      super().__init__()
      if task.input_kind == base.FEATURES:  # attnlab's input_proj, decayed as a matrix
        self.input_proj = nn.Linear(task.input_features, d)
      else:
        self.embed = nn.Embedding(task.vocab_size, d)
      if name in TRANSFORMERS:
        gelu = functools.partial(torch.nn.functional.gelu, approximate="tanh")  # flax's nn.gelu
        layer = nn.TransformerEncoderLayer(d, f["num_heads"], f["d_ff"], dropout=0.0,
                                           activation=gelu, layer_norm_eps=1e-6, batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, f["num_layers"], norm=nn.LayerNorm(d, eps=1e-6),
                                          enable_nested_tensor=False)
      else:
        self.body = getattr(nn, TORCH_RNNS[name])(d, d, f["num_layers"], batch_first=True)
      self.head = nn.Linear(d, task.output_size)

    def forward(self, inputs_BL):
      x_BLD = (self.input_proj if task.input_kind == base.FEATURES else self.embed)(inputs_BL)
      length = inputs_BL.shape[1]
      if name in TRANSFORMERS:
        pe_LD = torch.from_numpy(np.array(pos_lib.sinusoidal(np.arange(length), d)))
        x_BLD = x_BLD + pe_LD
        if name == "decoder":
          mask_LL = nn.Transformer.generate_square_subsequent_mask(length)
          y_BLD = self.body(x_BLD, mask=mask_LL, is_causal=True)
        else:
          y_BLD = self.body(x_BLD)
      else:
        y_BLD, _ = self.body(x_BLD)
      if task.output_kind != base.PER_TOKEN:
        y_BLD = y_BLD[:, -1]
      out = self.head(y_BLD)
      return out[..., 0] if task.output_kind == base.REGRESSION else out  # attnlab's [B]

  if name not in TRANSFORMERS and name not in TORCH_RNNS:
    raise ValueError(f"model {name!r} has no PyTorch counterpart here; allowed: "
                     f"{TRANSFORMERS + tuple(TORCH_RNNS)}")
  if name in TRANSFORMERS and (f["position"] != "sinusoidal" or f["moe_experts"]):
    raise ValueError(f"the PyTorch Transformer here has sinusoidal positions and a dense "
                     f"feed-forward; got position={f['position']!r}, moe_experts={f['moe_experts']}")
  return Model()


def torch_inputs(torch, task, inputs):
  """A batch's inputs as the PyTorch model takes them: token ids as int64, features as float32."""
  return torch.from_numpy(np.array(inputs, np.float32 if task.input_kind == base.FEATURES
                                   else np.int64))


def torch_step(torch, setup, config, batch):
  """A zero-argument callable running one eager PyTorch training step on ``batch``, and the model."""
  model = torch_model(torch, setup)
  opt_cfg = config.optimizer
  named = list(model.named_parameters())
  decay = [p for n, p in named if p.dim() >= 2 and "embed" not in n]
  no_decay = [p for n, p in named if not (p.dim() >= 2 and "embed" not in n)]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": opt_cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=opt_cfg.learning_rate)
  inputs = torch_inputs(torch, setup.task, batch["inputs"])
  targets = torch.from_numpy(np.asarray(batch["targets"]).astype(np.int64))
  mask = torch.from_numpy(np.array(batch["mask"], np.float32))

  def run():
    opt.zero_grad(set_to_none=True)
    logits = model(inputs)
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               targets.reshape(-1), reduction="none")
    loss = (losses * mask.reshape(-1)).sum() / mask.sum().clamp(min=1.0)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg.clip_norm)
    opt.step()
    return loss

  return run, model


def param_count(params) -> int:
  """Number of parameters of a JAX pytree or a torch module."""
  if hasattr(params, "parameters"):
    return sum(p.numel() for p in params.parameters())
  return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))


def cases(experiment: str, models, torch, *, quick: bool = False, mqar_d_model: int = 64):
  """(model, impl) -> (step callable, facts for its record) for one experiment."""
  runs = {}
  for model in models:
    config = load_config(experiment, model, quick=quick, mqar_d_model=mqar_d_model)
    setup = config_lib.build(config)
    batch = fixed_batch(setup, config)
    facts = {"experiment": experiment, "model": model, "d_model": setup.model_fields["d_model"],
             "layers": setup.model_fields["num_layers"], "batch": int(config.batch_size),
             "length": int(config.train_max_length)}
    run, params = attnlab_step(setup, config, batch)
    runs[(model, "attnlab")] = (run, {**facts, "params": param_count(params)})
    if torch is not None:
      run, module = torch_step(torch, setup, config, batch)
      runs[(model, "torch")] = (run, {**facts, "params": param_count(module)})
  return runs


def _records(runs, medians) -> list[dict]:
  records = []
  for (model, impl), (_, facts) in runs.items():
    sec, cpu = medians[(model, impl)]
    rec = {**facts, "impl": impl, "median_s": sec, "steps_per_s": 1.0 / sec, "cpu_s": cpu}
    if (model, "torch") in medians:
      rec["x_torch"] = medians[(model, "torch")][0] / sec
    records.append(rec)
  return records


def _names(value: str, allowed, flag: str) -> list[str]:
  names = [v for v in value.split(",") if v]
  unknown = sorted(set(names) - set(allowed))
  if unknown or not names:
    raise SystemExit(f"bench.py experiment: --{flag}={value!r}; allowed: {sorted(allowed)}")
  return names


def main(argv: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py experiment", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="the files' :smoke sizes, 3 rounds")
  parser.add_argument("--experiments", default=",".join(EXPERIMENTS),
                      help="comma-separated EXPERIMENTS names")
  parser.add_argument("--models", default="",
                      help="comma-separated models (default: each experiment's)")
  parser.add_argument("--mqar_d_model", type=int, default=64, help="mqar's width")
  parser.add_argument("--repeats", type=int, default=15, help="timed rounds")
  torch_reference.add_flags(parser)
  args = parser.parse_args(argv)
  experiments = _names(args.experiments, EXPERIMENTS, "experiments")
  every = {m for _, _, models in EXPERIMENTS.values() for m in models}
  only = set(_names(args.models, every, "models")) if args.models else every
  if args.repeats < 1 or args.mqar_d_model < 1:
    parser.error("--repeats and --mqar_d_model must be positive integers")
  repeats = 3 if args.quick and args.repeats == 15 else args.repeats
  torch = torch_reference.load(args)
  records = []
  for experiment in experiments:
    models = [m for m in EXPERIMENTS[experiment][2] if m in only]
    if not models:
      continue
    runs = cases(experiment, models, torch, quick=args.quick, mqar_d_model=args.mqar_d_model)
    medians = timing.time_interleaved({k: run for k, (run, _) in runs.items()}, repeats,
                                      warmup=2)
    records += _records(runs, medians)
  peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  print(f"devices: {jax.devices()}; torch threads: {torch_reference.threads(torch)}; "
        f"rounds: {repeats}; peak RSS {peak_gib:.2f} GiB")
  print(timing.format_table(records, ["experiment", "model", "impl", "d_model", "layers", "batch",
                                      "length", "params", "median_s", "steps_per_s", "cpu_s",
                                      "x_torch"]))
  if torch is None:
    print("note:", torch_reference.SKIPPED)
  timing.write_json(json_path, records)
  return records
