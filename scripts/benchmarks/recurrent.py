"""Training-step speed of the recurrent layers: ``scripts/bench.py recurrent [--json FILE] [--quick]``.

One step is jitted ``value_and_grad`` of mean(y^2) with respect to the parameters, at batch 32,
length 256, input 64, hidden 256, for attnlab's rnn/lstm/gru (``RNN``) and mingru/minlstm/lru, side by
side with Flax's ``nn.RNN`` over its built-in cells and PyTorch's ``nn.RNN``/``LSTM``/``GRU`` (when
torch is importable). The parallel-scan layers are also timed at length 4096 against the attnlab LSTM.

The machine may be shared, so all cases of one length are timed in interleaved rounds (one call of
each per round) and the table shows medians of wall time and ratios from the same run (``cpu_s``,
the process CPU seconds per step, is steadier than wall time when other jobs compete for the cores;
PyTorch's spinning OpenMP threads inflate it):
``x_torch``/``x_flax`` = that reference's median over this one (>1: faster than the reference; x_flax
against the fastest Flax cell for the case), ``x_lstm`` = attnlab LSTM's median over this one.
"""

from __future__ import annotations

import argparse
import importlib
import resource

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks import timing, torch_reference
from attnlab.models.rnn.layer import RNN

# case -> (module, class) of the parallel-scan layers (issue 2, item 4); imported lazily.
SCAN_LAYERS = {"mingru": ("attnlab.models.scan.mingru", "MinGRU"),
               "minlstm": ("attnlab.models.scan.minlstm", "MinLSTM"),
               "lru": ("attnlab.models.scan.lru", "LRU")}
# case -> attnlab RNN cell name.
CLASSIC = {"rnn": "rnn_tanh", "lstm": "lstm", "gru": "gru"}
# case -> Flax built-in cells to compare with.
FLAX_CELLS = {"rnn": ("SimpleCell",), "lstm": ("LSTMCell", "OptimizedLSTMCell"), "gru": ("GRUCell",)}
TORCH_MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


class _FlaxRNN(nn.Module):
  """Flax's own ``nn.RNN`` over one of its cells, for comparison."""
  cell: str  # a flax.linen cell class name
  hidden_size: int  # H

  @nn.compact
  def __call__(self, x_BLD):
    return nn.RNN(getattr(nn, self.cell)(features=self.hidden_size))(x_BLD), None


def jax_step(model, batch, length, features):
  """A zero-argument callable running one jitted training step of ``model`` (value_and_grad of
  mean(y^2) with respect to the parameters) on a fixed random batch."""
  x_BLD = jax.random.normal(jax.random.PRNGKey(0), (batch, length, features))
  params = model.init(jax.random.PRNGKey(1), x_BLD)

  def loss(params, x_BLD):
    y_BLH, _ = model.apply(params, x_BLD)
    return jnp.mean(jnp.square(y_BLH.astype(jnp.float32)))

  step = jax.jit(jax.value_and_grad(loss))
  return lambda: timing.block(step(params, x_BLD))


def torch_step(torch, name, batch, length, features, hidden):
  """The same step for PyTorch's ``torch.nn.<name>`` (RNN, LSTM or GRU), batch first."""
  module = getattr(torch.nn, name)(features, hidden, batch_first=True)
  x_BLD = torch.randn(batch, length, features)

  def run():
    module.zero_grad(set_to_none=True)
    y_BLH, _ = module(x_BLD)
    y_BLH.square().mean().backward()
    return None

  return run


def _scan_layer(case):
  """The parallel-scan layer class, or a note saying why it is missing."""
  module_name, class_name = SCAN_LAYERS[case]
  try:
    return getattr(importlib.import_module(module_name), class_name), None
  except (ImportError, AttributeError) as e:
    return None, f"{case}: skipped ({type(e).__name__}: {e})"


def _cases_at(length, args, torch, notes):
  """(case, impl, variant) -> step callable for one sequence length."""
  b, d, h = (args.batch if length == args.length else args.long_batch), args.features, args.hidden
  runs = {}
  if length == args.length:
    for case, cell in CLASSIC.items():
      runs[(case, "attnlab", "RNN")] = jax_step(RNN(cell=cell, hidden_size=h), b, length, d)
      for flax_cell in FLAX_CELLS[case]:
        runs[(case, "flax", flax_cell)] = jax_step(_FlaxRNN(flax_cell, h), b, length, d)
      if torch is not None:
        runs[(case, "torch", f"nn.{TORCH_MODULES[case]}")] = torch_step(
            torch, TORCH_MODULES[case], b, length, d, h)
  else:
    runs[("lstm", "attnlab", "RNN")] = jax_step(RNN(cell="lstm", hidden_size=h), b, length, d)
  for case in SCAN_LAYERS:
    layer, note = _scan_layer(case)
    if layer is None:
      if note not in notes:
        notes.append(note)
      continue
    kwargs = {"hidden_size": h, **({"d_state": args.lru_state} if case == "lru" else {})}
    try:  # another part's layer: a failure there is reported, not fatal to the suite
      runs[(case, "attnlab", layer.__name__)] = jax_step(layer(**kwargs), b, length, d)
    except Exception as e:  # pylint: disable=broad-except
      notes.append(f"{case} at length {length}: failed ({type(e).__name__}: {e})")
  return runs, b


def _records(medians, length, batch):
  records = []
  wall = {key: w for key, (w, _) in medians.items()}
  for (case, impl, variant), (sec, cpu) in medians.items():
    rec = {"case": case, "impl": impl, "variant": variant, "batch": batch, "length": length,
           "median_s": sec, "tokens_per_s": batch * length / sec, "cpu_s": cpu}
    torch_s = [s for (c, i, _), s in wall.items() if c == case and i == "torch"]
    flax_s = [s for (c, i, _), s in wall.items() if c == case and i == "flax"]
    lstm_s = wall.get(("lstm", "attnlab", "RNN"))
    if torch_s:
      rec["x_torch"] = torch_s[0] / sec
    if flax_s:
      rec["x_flax"] = min(flax_s) / sec
    if lstm_s and case in SCAN_LAYERS:
      rec["x_lstm"] = lstm_s / sec
    records.append(rec)
  return records


def main(argv: list[str], json_path: str | None) -> list[dict]:
  parser = argparse.ArgumentParser(prog="bench.py recurrent", description=__doc__)
  parser.add_argument("--quick", action="store_true", help="3 rounds, length 64 / 512, batch 8")
  parser.add_argument("--repeats", type=int, default=15,
                      help="timed rounds (7 rounds swung the LSTM vs torch ratio 0.96-1.07x)")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--length", type=int, default=256)
  parser.add_argument("--long_length", type=int, default=4096, help="0 skips the long-sequence part")
  parser.add_argument("--long_batch", type=int, default=32)
  parser.add_argument("--long_repeats", type=int, default=5, help="timed rounds at long_length")
  parser.add_argument("--features", type=int, default=64)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--lru_state", type=int, default=256, help="LRU d_state (complex state dimensions)")
  torch_reference.add_flags(parser)
  args = parser.parse_args(argv)
  if args.quick:
    args.repeats, args.batch, args.length, args.long_length, args.long_batch = 3, 8, 64, 512, 8
    args.long_repeats = 3
  torch = torch_reference.load(args)
  notes = [] if torch is not None else [torch_reference.SKIPPED]
  records = []
  for length in [args.length] + ([args.long_length] if args.long_length else []):
    runs, batch = _cases_at(length, args, torch, notes)
    repeats = args.repeats if length == args.length else args.long_repeats
    medians = timing.time_interleaved(runs, repeats, warmup=1 if length == args.long_length else 2)
    records += _records(medians, length, batch)
  columns = ["case", "impl", "variant", "batch", "length", "median_s", "tokens_per_s", "cpu_s", "x_torch",
             "x_flax", "x_lstm"]
  long = f" ({args.long_repeats} at length {args.long_length})" if args.long_length else ""
  peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  print(f"devices: {jax.devices()}; torch threads: {torch_reference.threads(torch)}; "
        f"rounds: {args.repeats}{long}; peak RSS {peak_gib:.2f} GiB")
  print(timing.format_table(records, columns))
  for note in notes:
    print("note:", note)
  timing.write_json(json_path, records)
  return records
