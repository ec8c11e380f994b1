"""Whole-setup checks against PyTorch: attnlab's LSTM, GRU and causal-decoder task models start as
PyTorch's under ``init="torch"``, and trained from PyTorch's weights on attnlab's own batches they
follow PyTorch's losses step by step (AdamW decaying matrices only, linear warmup then cosine,
global-norm clipping, the task's loss mask).

The PyTorch side is written independently: the benchmark's ``torch_model``
(``scripts/benchmarks/experiment.py``), ``torch.optim.AdamW`` with the decay groups, the schedule as
a formula, ``clip_grad_norm_``. Each check has controls: a PyTorch run with a wrong schedule, decay
mask, clipping or loss mask must leave the tolerance, and the flax scheme's distributions must not
pass for PyTorch's.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest

from attnlab.models import task_model
from attnlab.train import config as config_lib
from attnlab.train import data as data_lib, loop, optim, state as state_lib
from benchmarks import experiment
from tests.benchmarks import torch_layout

torch = pytest.importorskip("torch")

STEPS = 20
MODELS = ("lstm", "gru", "decoder")
OPTIMIZER = dict(learning_rate=1e-2, warmup_steps=5, decay="cosine", weight_decay=1.0,
                 clip_norm=0.25)
# Float32 on both sides. Adam amplifies rounding differences step by step (most in the decoder:
# 1e-6 at step 3, 1.4e-4 by step 16); every wrong setup below moves the loss by 5e-3 or more.
LOSS_ATOL = 5e-4


def _config(name: str, **optimizer):
  config = experiment.load_config("mqar", name, quick=True)
  config.num_steps = STEPS
  config.model.init = "torch"
  for k, v in {**OPTIMIZER, **optimizer}.items():
    config.optimizer[k] = v
  return config


def _batches(setup, config):
  data = data_lib.TrainData.from_config(config, setup.task, None)  # the loop's batches
  return [jax.device_get(data.batch(s, None, config.train_max_length)) for s in range(STEPS)]


def _lr(step: int, lr: float, warmup: int, total: int) -> float:
  """Linear warmup from 0, then cosine to 0: the schedule written out."""
  if step < warmup:
    return lr * step / warmup
  return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _torch_losses(name, setup, batches, **wrong):
  """PyTorch's losses over the batches, from torch's own initialisation (seed 0), and the initial
  state_dict (one thread: these models are tiny, and test workers share the cores)."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  try:
    return _torch_run(name, setup, batches, **wrong)
  finally:
    torch.set_num_threads(threads)


def _torch_run(name, setup, batches, *, warmup=OPTIMIZER["warmup_steps"], decay_all=False,
               clip=True, masked=True):
  torch.manual_seed(0)
  model = experiment.torch_model(torch, setup)
  state0 = {k: v.clone() for k, v in model.state_dict().items()}
  named = list(model.named_parameters())
  decayed = lambda n, p: decay_all or (p.dim() >= 2 and "embed" not in n)  # noqa: E731
  opt = torch.optim.AdamW(
      [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": OPTIMIZER["weight_decay"]},
       {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}],
      lr=OPTIMIZER["learning_rate"])
  losses = []
  for step, batch in enumerate(batches):
    for group in opt.param_groups:
      group["lr"] = _lr(step, OPTIMIZER["learning_rate"], warmup, STEPS)
    opt.zero_grad(set_to_none=True)
    logits = model(torch.from_numpy(np.asarray(batch["inputs"], np.int64)))
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        torch.from_numpy(np.asarray(batch["targets"], np.int64)).reshape(-1), reduction="none")
    mask = torch.from_numpy(np.array(batch["mask"], np.float32)).reshape(-1)
    if not masked:
      mask = torch.ones_like(mask)
    loss = (per_token * mask).sum() / mask.sum()
    loss.backward()
    if clip:
      torch.nn.utils.clip_grad_norm_(model.parameters(), OPTIMIZER["clip_norm"])
    opt.step()
    losses.append(loss.item())
  return np.array(losses), state0


@functools.lru_cache(maxsize=None)
def _trajectories(name: str):
  """(attnlab's losses and grad norms from PyTorch's initial weights, PyTorch's losses)."""
  config = _config(name)
  setup = config_lib.build(config)
  batches = _batches(setup, config)
  want, state0 = _torch_losses(name, setup, batches)
  params = torch_layout.from_torch(state0, task_model.abstract_params(setup.model, setup.task),
                                   name)
  tx, _ = optim.make_optimizer(config.optimizer, config.num_steps)
  state = state_lib.TrainState(
      step=np.zeros((), np.int32), params=params, opt_state=tx.init(params),
      nonfinite_step=np.full((), -1, np.int32), apply_fn=setup.model.apply, tx=tx)
  train = jax.jit(functools.partial(loop.update_fn(config, setup), rng=jax.random.PRNGKey(0)))
  got, grad_norms = [], []
  for batch in batches:
    state, metrics = train(state, batch)
    got.append(float(metrics["loss"]))
    grad_norms.append(float(metrics["grad_norm"]))
  return np.array(got), np.array(grad_norms), want, (setup, batches)


@pytest.mark.parametrize("name", MODELS)
def test_training_follows_pytorch_step_by_step(name):
  got, grad_norms, want, _ = _trajectories(name)
  assert np.max(grad_norms) > OPTIMIZER["clip_norm"], "clipping never acted: the check is void"
  assert got[-1] < got[0], got
  np.testing.assert_allclose(got, want, rtol=0, atol=LOSS_ATOL)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("wrong", [dict(warmup=0), dict(decay_all=True), dict(clip=False),
                                   dict(masked=False)], ids=["schedule", "decay_mask", "clipping",
                                                             "loss_mask"])
def test_a_wrong_setup_leaves_the_tolerance(name, wrong):
  got, _, _, (setup, batches) = _trajectories(name)
  other, _ = _torch_losses(name, setup, batches, **wrong)
  assert np.max(np.abs(other - got)) > 4 * LOSS_ATOL, (wrong, other - got)


def _spread(x) -> float:
  return float(np.std(np.asarray(x, np.float64)))


def _mismatched(init: str, name: str) -> list[str]:
  """The tensors whose initial std under ``init`` differs from PyTorch's beyond the draw's noise."""
  config = experiment.load_config("mqar", name)  # width 64: enough entries per tensor
  config.model.init = init
  setup = config_lib.build(config)
  params = jax.device_get(setup.model.init(jax.random.PRNGKey(3),
                                           task_model.dummy_inputs(setup.task))["params"])
  torch.manual_seed(3)
  reference = torch_layout.torch_tensors(experiment.torch_model(torch, setup).state_dict(), params,
                                         name)
  bad = []
  for path, theirs in reference.items():
    ours = params
    for k in path:
      ours = ours[k]
    assert ours.shape == theirs.shape, path
    a, b = _spread(ours), _spread(theirs)
    # Two estimates of a std from n draws each: ~0.7/sqrt(n) relative noise apiece (normal), less
    # for uniform draws; 5/sqrt(n) keeps a false alarm out of reach.
    if (a == 0) != (b == 0) or abs(a - b) > (5 / math.sqrt(ours.size) + 0.02) * max(a, b):
      bad.append(f"{'/'.join(path)}: {a:.4f} vs torch {b:.4f}")
  return bad


@pytest.mark.parametrize("name", MODELS)
def test_torch_scheme_draws_pytorchs_distributions(name):
  assert not _mismatched("torch", name)


@pytest.mark.parametrize("name", MODELS)
def test_flax_scheme_is_not_pytorchs(name):
  bad = _mismatched("flax", name)
  assert any(b.startswith("embed/embedding") for b in bad), bad
  assert any(b.startswith("head/") for b in bad), bad
