"""``train_and_evaluate(config, workdir)``: the one training loop every comparison goes through.

Metrics of a log step are read one step late (after the next step is dispatched), so the host never
stalls the device. NaN/Inf is tracked on the device (``state.nonfinite_step``) and checked before an
evaluation or a checkpoint, so a non-finite state is never saved. The run stops once its validation
evaluations say it has solved its task (``convergence.py``); the test batches are scored once, on
the state it ends with.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import threading
import time
from typing import Callable

import jax

from attnlab.models import task_model
from attnlab.train import checkpoint as checkpoint_lib
from attnlab.train import compilation
from attnlab.train import config as config_lib
from attnlab.train import convergence
from attnlab.train import data as data_lib
from attnlab.train import evaluate as evaluate_lib
from attnlab.train import optim, parallel
from attnlab.train import state as state_lib
from attnlab.train import step as step_lib
from attnlab.train import writer as writer_lib

log = logging.getLogger(__name__)

_MIN_METRICS = ("loss", "mse")  # best_metric names ranked lower-is-better


class NonFiniteLossError(FloatingPointError):
  """The loss, gradients or parameters became NaN/Inf; the run stopped without saving them."""


@contextlib.contextmanager
def _stop_request():
  """Yields a dict whose "signal" SIGTERM/SIGINT set: the loop finishes the step, saves, returns."""
  stop, old = {"signal": None}, {}
  if threading.current_thread() is threading.main_thread():
    for sig in (signal.SIGTERM, signal.SIGINT):
      old[sig] = signal.signal(sig, lambda n, _: stop.update(signal=signal.Signals(n).name))
  try:
    yield stop
  finally:
    for sig, handler in old.items():
      signal.signal(sig, handler)


def create_fn(config, setup: config_lib.Setup) -> Callable[[], state_lib.TrainState]:
  """``() -> a fresh TrainState`` of the run (jit it, or ``jax.eval_shape`` it to restore into)."""
  tx, _ = optim.make_optimizer(config.optimizer, config.num_steps)
  key, dummy = jax.random.PRNGKey(config.seed), task_model.dummy_inputs(setup.task)
  return lambda: state_lib.create(setup.model, tx, key, dummy)


def checkpointer(config, workdir: str) -> checkpoint_lib.Checkpointer:
  """The run's checkpoints, ``workdir/checkpoints``, kept and ranked as its config says."""
  metric = config.get("best_metric") or None
  mode = "min" if metric and metric.split("/")[-1] in _MIN_METRICS else "max"
  return checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                     keep=config.keep_checkpoints, best_metric=metric,
                                     best_mode=mode)


def update_fn(config, setup: config_lib.Setup) -> Callable:
  """``update(state, batch, rng[, axis_name]) -> (state, metrics)``: the run's optimizer step."""
  return functools.partial(step_lib.train_step, loss_fn=step_lib.task_loss(setup.task.output_kind),
                           schedule=optim.make_schedule(config.optimizer, config.num_steps),
                           accum_steps=config.optimizer.grad_accum_steps)


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
  task = setup.task
  log.info("task %s (%s, min length %d); model %s, %s parameters %s; resolved model "
           "fields %s; length buckets %s", task.name, task.output_kind, task.min_length,
           setup.model_fields["name"], setup.param_counts["total"], setup.param_counts,
           setup.model_fields, setup.buckets or "off (exact lengths)")
  checkpoint_lib.check_config(workdir, config.to_dict(), overwrite=overwrite,
                              allow_mismatch=allow_mismatch)
  mesh = parallel.make_mesh()
  devices = parallel.make(config.parallelism, mesh)
  # A missing or small evaluation set raises here, before compiling.
  validation, evaluation = evaluate_lib.splits(config, task, devices.eval_mesh,
                                               setup.eval_lengths, setup.buckets)
  criterion = convergence.criterion(task.output_kind, config.solve_accuracy, config.solve_mse)
  lead = jax.process_index() == 0

  create = create_fn(config, setup)
  ckpt = checkpointer(config, workdir)
  restored = ckpt.restore_latest(parallel.abstract_state(create, mesh))
  history = []  # a convergence.Point per validation evaluation so far
  if restored is None:
    state, start = devices.init_state(create), 0
  else:
    state, start = devices.restored(restored[0]), restored[1]
    history = convergence.from_json((ckpt.metadata(start).get("extra") or {}).get("history", []))
    log.info("resumed from checkpoint step %d", start)
  stopped = convergence.should_stop(history, config.patience)

  data = data_lib.TrainData.from_config(config, task, setup.buckets)
  train = devices.train_fn(data, update_fn(config, setup), data_lib.dropout_key(config.seed))
  programs = validation.compile(devices.saved(state), setup.eval_lengths)
  test_programs = evaluation.compile(devices.saved(state), setup.eval_lengths)
  log.info("evaluation: %d lengths in %d compiled programs (validation), %d (test)",
           len(setup.eval_lengths), programs, test_programs)

  writer = writer_lib.MetricWriter(workdir, enabled=lead, total_steps=config.num_steps,
                                   initial_step=start)
  summary = {"status": "failed", "step": start, "param_count": setup.param_counts["total"],
             **{k: setup.model_fields[k] for k in ("d_model", "init", "block")},
             "state_size": setup.model_config.state_size(setup.eval_lengths[-1]),
             "final_eval": None, "eval_s": 0.0,
             "buckets": list(setup.buckets) if setup.buckets else None}
  last_val = last_test = None
  pending = None  # (step, metrics, length) of a log step, read after the next dispatch
  tick = (start, time.time())  # throughput window start: (step, time)
  step = start
  try:
    with _stop_request() as stop:
      while step < config.num_steps and not stopped:
        length = data.length(step)
        state, metrics = train(state, length)
        step += 1
        writer.advance()
        if pending is not None:  # read the previous log step while this one runs
          tick = _report(writer, pending, tick, config.batch_size)
        is_last = step == config.num_steps
        pending = (step, metrics, length) if step % config.log_every == 0 or is_last else None
        stopping = stop["signal"]  # read once: the save and the stop agree (a later one: next step)
        evaluate_now = step % config.eval_every == 0 or is_last
        save_now = step % config.checkpoint_every == 0 or is_last or stopping
        if evaluate_now or save_now:  # never evaluate or save a non-finite state
          _check_finite(metrics["nonfinite_step"])
        if evaluate_now:
          t0 = time.time()
          last_val = _validate(validation, devices.saved(state), setup.eval_lengths, step)
          writer.eval(last_val)
          history.append(convergence.point(last_val, criterion))
          stopped = convergence.should_stop(history, config.patience)
          summary["eval_s"] += time.time() - t0
        if save_now or stopped:
          ckpt.save(step, devices.saved(state), _ckpt_metrics(last_val, step), force=True,
                    extra={"history": convergence.to_json(history)})
        if stopping:
          log.warning("%s received: saved step %d, stopping.", stopping, step)
          summary["status"] = "preempted"
          break
      if pending is not None:
        _report(writer, pending, tick, config.batch_size)
      if summary["status"] != "preempted":
        summary["status"] = "done"
        if stopped:
          log.info("solved at step %d (held for %d evaluations): stopped at step %d",
                   convergence.solved_step(history, config.patience), config.patience, step)
        t0 = time.time()
        if last_val is None:  # resumed a finished run: its validation is evaluated again
          last_val = _validate(validation, devices.saved(state), setup.eval_lengths, step)
        last_test = evaluate_lib.evaluate(evaluation, devices.saved(state), setup.eval_lengths,
                                          step)
        summary["eval_s"] += time.time() - t0
        log.info("test step %d (mean over lengths): %s", step,
                 writer_lib.fmt(evaluate_lib.mean_over_lengths(last_test)))
  except NonFiniteLossError as e:
    summary["status"] = "nan"
    summary["error"] = str(e)
    log.error("%s", e)
    raise
  finally:
    ckpt.close()  # waits for the save in flight
    writer.close()
    summary.update(step=step, wall_s=time.time() - start_time, final_eval=last_test,
                   solved_step=convergence.solved_step(history, config.patience),
                   converged=summary["status"] == "done" and convergence.converged(
                       history, config.patience, config.converge_epsilon, criterion.higher),
                   **evaluate_lib.flat_metrics(last_val, "val_", [criterion.metric]),
                   **evaluate_lib.flat_metrics(last_test, "test_", [criterion.metric]),
                   **compiles.summary())
    if lead:
      with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log.info("%s at step %d in %.1f s: %d programs compiled in %.1f s, %d loaded from the "
             "compilation cache", summary["status"], step, summary["wall_s"], compiles.compiled,
             compiles.seconds, compiles.cache_hits)
  return summary


def _validate(validation, state, lengths, step) -> dict:
  """One eval.jsonl record of the validation batches: ``{"step", "split": "val", "lengths"}``."""
  return {"step": step, "split": "val", **evaluate_lib.evaluate(validation, state, lengths, step)}


def _ckpt_metrics(record, step):
  # Best-checkpoint ranking uses the validation evaluation of this very step only.
  if record is None or record["step"] != step:
    return None
  return {**evaluate_lib.mean_over_lengths(record), "lengths": record["lengths"]}


def _check_finite(nonfinite_step):
  """Raises naming the first non-finite step (a device scalar: blocks until its step is done)."""
  nonfinite_step = parallel.host_scalars({"n": nonfinite_step})["n"]
  if nonfinite_step >= 0:
    raise NonFiniteLossError(f"non-finite loss, gradients or parameters at step "
                             f"{int(nonfinite_step)}; stopped without saving this state")


def _report(writer, pending, tick, batch_size: int):
  """Writes the metrics of a finished log step; raises if a step so far was non-finite."""
  step, metrics, length = pending
  scalars = parallel.host_scalars(metrics)
  _check_finite(scalars.pop("nonfinite_step"))
  now = time.time()
  steps_per_s = (step - tick[0]) / max(now - tick[1], 1e-9)
  scalars.update(steps_per_s=steps_per_s, tokens_per_s=steps_per_s * batch_size * length,
                 length=length)
  writer.train(step, scalars)
  return (step, now)
