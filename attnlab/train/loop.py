"""``train_and_evaluate(config, workdir)``: the one training loop every comparison goes through.

Straight-line: build, restore, then per step dispatch the compiled step and do the periodic work
(log, evaluate, checkpoint). Between those the host only dispatches; metrics of a log step are read
one step late (after the next step is dispatched), so the host never stalls the device. NaN/Inf is
tracked on the device (``state.nonfinite_step``, the first bad step) and checked at log steps, and
synchronously before an evaluation or a checkpoint, so a non-finite state is never saved.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import jax

from attnlab.tasks import lengths as lengths_lib
from attnlab.train import checkpoint as checkpoint_lib
from attnlab.train import config as config_lib
from attnlab.train import compilation
from attnlab.train import evaluate as evaluate_lib
from attnlab.train import optim, parallel
from attnlab.models import task_model
from attnlab.train import state as state_lib
from attnlab.train import writer as writer_lib

log = logging.getLogger(__name__)

_MIN_METRICS = ("loss", "mse")  # best_metric names ranked lower-is-better


class NonFiniteLossError(FloatingPointError):
  """The loss, gradients or parameters became NaN/Inf; the run stopped without saving them."""


class _StopRequest:
  """Set by SIGTERM/SIGINT: the loop finishes the current step, saves and returns."""

  def __init__(self):
    self.signal = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def best_mode(metric: str) -> str:
  """How checkpoints rank by ``metric``: "min" for losses and errors, else "max"."""
  return "min" if metric.split("/")[-1] in _MIN_METRICS else "max"


def _write_summary(workdir: str, summary: dict) -> None:
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=1)


def train_and_evaluate(config, workdir: str, *, overwrite: bool = False,
                       allow_mismatch: bool = False) -> dict:
  """Trains ``config`` in ``workdir`` (resuming from its checkpoints); returns summary.json, which
  also counts the run's compilations and their seconds (``compilation.Compilations``)."""
  with compilation.Compilations() as compiles:
    return _train_and_evaluate(config, workdir, compiles, overwrite=overwrite,
                               allow_mismatch=allow_mismatch)


def _train_and_evaluate(config, workdir: str, compiles, *, overwrite: bool,
                        allow_mismatch: bool) -> dict:
  start_time = time.time()
  setup = config_lib.build(config)  # every config error is raised here, before compiling
  task, model = setup.task, setup.model
  log.info("task %s (%s, min length %d); model %s, %s parameters %s; resolved model "
           "fields %s; length buckets %s", task.name, task.output_kind, task.min_length,
           setup.model_fields["name"], setup.param_counts["total"], setup.param_counts,
           setup.model_fields, setup.buckets or "off (exact lengths)")
  checkpoint_lib.check_config(workdir, config.to_dict(), overwrite=overwrite,
                              allow_mismatch=allow_mismatch)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  mesh = parallel.make_mesh()
  # A missing or small evaluation set raises here, before compiling.
  evaluation = evaluate_lib.from_config(config, task, mesh if config.parallelism == "jit" else None,
                                        setup.eval_lengths, setup.buckets)
  lead = jax.process_index() == 0

  def create():
    return state_lib.create(model, tx, schedule, task.output_kind,
                            jax.random.PRNGKey(config.seed), task_model.dummy_inputs(task))

  best_metric = config.best_metric or None
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                     keep=config.keep_checkpoints, best_metric=best_metric,
                                     best_mode=best_mode(best_metric) if best_metric else "max")
  restored = ckpt.restore_latest(parallel.abstract_state(create, mesh))
  if restored is None:
    state = parallel.init_state(create, config.parallelism, mesh)
  else:
    state = parallel.from_saveable(restored[0], config.parallelism)
    log.info("resumed from checkpoint step %d", restored[1])
  start = restored[1] if restored else 0

  per_example = config.train_length_draw == "example" and setup.buckets is not None
  train_fn = parallel.make_train_fn(
      task, parallelism=config.parallelism, mesh=mesh, batch_size=config.batch_size,
      data_seed=config.data_seed, seed=config.seed,
      accum_steps=config.optimizer.grad_accum_steps, buckets=setup.buckets,
      example_lengths=((config.train_min_length, config.train_max_length) if per_example
                       else None))
  saveable = lambda s: parallel.to_saveable(s, config.parallelism)  # noqa: E731
  programs = evaluation.compile(saveable(state), setup.eval_lengths)
  log.info("evaluation: %d lengths in %d compiled programs", len(setup.eval_lengths), programs)

  writer = writer_lib.MetricWriter(workdir, enabled=lead, total_steps=config.num_steps,
                                   initial_step=start)
  summary = {"status": "failed", "step": start, "param_count": setup.param_counts["total"],
             "d_model": setup.model_fields["d_model"], "init": setup.model_fields["init"],
             "block": setup.model_fields["block"],
             "state_size": setup.model_config.state_size(setup.eval_lengths[-1]),
             "final_eval": None, "eval_s": 0.0,
             "buckets": list(setup.buckets) if setup.buckets else None}
  last_eval = None
  pending = None  # (step, metrics, length) of a log step, read after the next dispatch
  tick = (start, time.time())  # throughput window start: (step, time)
  step = start
  try:
    with _StopRequest() as stop:
      while step < config.num_steps:
        length = lengths_lib.train_length(config.data_seed, step, config.train_min_length,
                                          config.train_max_length)
        state, metrics = train_fn(state, length)
        step += 1
        writer.advance()
        if pending is not None:  # read the previous log step while this one runs
          tick = _report(writer, pending, tick, config)
          pending = None
        is_last = step == config.num_steps
        if step % config.log_every == 0 or is_last:
          pending = (step, metrics, length)
        if step % config.eval_every == 0 or is_last:
          _check_finite(metrics)
          t0 = time.time()
          last_eval = evaluate_lib.evaluate(evaluation, saveable(state), setup.eval_lengths, step)
          writer.eval(last_eval)
          summary["eval_s"] += time.time() - t0
          log.debug("evaluation at step %d took %.3f s", step, time.time() - t0)
        if step % config.checkpoint_every == 0 or is_last or stop.signal:
          _check_finite(metrics)
          t0 = time.time()
          ckpt.save(step, saveable(state), _ckpt_metrics(last_eval, step), force=True)
          log.debug("checkpoint save of step %d blocked the loop %.3f s", step, time.time() - t0)
        if stop.signal:
          log.warning("%s received: saved step %d, stopping.", stop.signal, step)
          summary["status"] = "preempted"
          break
      if pending is not None:
        _report(writer, pending, tick, config)
      if summary["status"] != "preempted":
        summary["status"] = "done"
        if last_eval is None:  # resumed a finished run: evaluate what it ended with
          last_eval = evaluate_lib.evaluate(evaluation, saveable(state), setup.eval_lengths, step)
  except NonFiniteLossError as e:
    summary["status"] = "nan"
    summary["error"] = str(e)
    log.error("%s", e)
    raise
  finally:
    ckpt.wait()
    ckpt.close()
    writer.close()
    summary.update(step=step, wall_s=time.time() - start_time, final_eval=last_eval,
                   **compiles.summary())
    _write_summary(workdir, summary)
    log.info("%s at step %d in %.1f s: %d programs compiled in %.1f s, %d loaded from the "
             "compilation cache", summary["status"], step, summary["wall_s"], compiles.compiled,
             compiles.seconds, compiles.cache_hits)
  return summary


def _ckpt_metrics(record, step):
  # Best-checkpoint ranking uses the evaluation of this very step only.
  if record is None or record["step"] != step:
    return None
  return {**evaluate_lib.mean_over_lengths(record), "lengths": record["lengths"]}


def _check_finite(metrics):
  """Blocks until ``metrics``' step is done; raises naming the first non-finite step."""
  _raise_if_nonfinite(parallel.host_scalars({"n": metrics["nonfinite_step"]})["n"])


def _raise_if_nonfinite(nonfinite_step):
  if nonfinite_step >= 0:
    raise NonFiniteLossError(f"non-finite loss, gradients or parameters at step "
                             f"{int(nonfinite_step)}; stopped without saving this state")


def _report(writer, pending, tick, config):
  """Writes the metrics of a finished log step; raises if a step so far was non-finite."""
  step, metrics, length = pending
  scalars = parallel.host_scalars(metrics)
  _raise_if_nonfinite(scalars.pop("nonfinite_step"))
  now = time.time()
  steps_per_s = (step - tick[0]) / max(now - tick[1], 1e-9)
  scalars.update(steps_per_s=steps_per_s, tokens_per_s=steps_per_s * config.batch_size * length,
                 length=length)
  writer.train(step, scalars)
  return (step, now)
