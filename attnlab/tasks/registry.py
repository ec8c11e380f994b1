"""The task registry: ``TASKS = {name: (ConfigClass, make_fn)}`` and ``get_task(name, **fields)``."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from attnlab.tasks import adding
from attnlab.tasks import associative_recall
from attnlab.tasks import base
from attnlab.tasks import copy
from attnlab.tasks import distant_dependency
from attnlab.tasks import flip_flop
from attnlab.tasks import induction_heads
from attnlab.tasks import listops
from attnlab.tasks import mqar
from attnlab.tasks import selective_copy
from attnlab.tasks import word_problem
from attnlab.tasks.chomsky import modular_arithmetic
from attnlab.tasks.chomsky import regular
from attnlab.tasks.chomsky import strings
from attnlab.tasks.mad import compression
from attnlab.tasks.mad import fuzzy_recall
from attnlab.tasks.mad import memorization
from attnlab.tasks.mad import recall
from attnlab.tasks.mad import selective_copy as mad_selective_copy

TASKS = {
    "copy": (copy.CopyConfig, copy.make),
    "delayed_copy": (copy.DelayedCopyConfig, copy.make),
    "selective_copy": (selective_copy.SelectiveCopyConfig, selective_copy.make),
    "adding": (adding.AddingConfig, adding.make),
    "associative_recall": (associative_recall.AssociativeRecallConfig, associative_recall.make),
    "mqar": (mqar.MQARConfig, mqar.make),
    "induction_heads": (induction_heads.InductionHeadsConfig, induction_heads.make),
    "distant_dependency": (distant_dependency.DistantDependencyConfig, distant_dependency.make),
    # Delétang et al. 2023 (attnlab/tasks/chomsky/).
    "parity": (regular.ParityConfig, regular.make_parity),
    "even_pairs": (regular.EvenPairsConfig, regular.make_even_pairs),
    "cycle_navigation": (regular.CycleNavigationConfig, regular.make_cycle_navigation),
    "modular_arithmetic": (modular_arithmetic.ModularArithmeticConfig, modular_arithmetic.make),
    "reverse_string": (strings.ReverseStringConfig, strings.make_reverse_string),
    "duplicate_string": (strings.DuplicateStringConfig, strings.make_duplicate_string),
    "bucket_sort": (strings.BucketSortConfig, strings.make_bucket_sort),
    # MAD, Poli et al. 2024 (attnlab/tasks/mad/).
    "mad_in_context_recall": (recall.RecallConfig, recall.make_in_context_recall),
    "mad_fuzzy_recall": (fuzzy_recall.FuzzyRecallConfig, fuzzy_recall.make),
    "mad_noisy_recall": (recall.NoisyRecallConfig, recall.make_noisy_recall),
    "mad_selective_copy": (mad_selective_copy.SelectiveCopyConfig, mad_selective_copy.make),
    "mad_compression": (compression.CompressionConfig, compression.make),
    "mad_memorization": (memorization.MemorizationConfig, memorization.make),
    "word_problem": (word_problem.WordProblemConfig, word_problem.make),
    "flip_flop": (flip_flop.FlipFlopConfig, flip_flop.make),
    "listops": (listops.ListOpsConfig, listops.make),
}


def config_fields(name: str) -> dict[str, dataclasses.Field]:
  """The config fields of task ``name`` (ValueError listing the tasks if unknown)."""
  if name not in TASKS:
    raise ValueError(f"unknown task name={name!r}; allowed: {sorted(TASKS)}")
  return {f.name: f for f in dataclasses.fields(TASKS[name][0])}


def get_task(name: str, **config_fields_: Any) -> base.Task:
  """Builds task ``name`` with its config fields; unknown name or field -> ValueError listing allowed."""
  fields = config_fields(name)
  unknown = sorted(set(config_fields_) - set(fields))
  if unknown:
    raise ValueError(f"task {name!r}: unknown config field(s) {unknown}; allowed: {sorted(fields)}")
  config_cls, make = TASKS[name]
  return make(config_cls(**config_fields_))


def parse_fields(name: str, raw: Mapping[str, str]) -> dict[str, Any]:
  """Converts command-line strings (``{"distance": "64"}``) to the types of task ``name``'s fields."""
  fields = config_fields(name)
  out = {}
  for key, text in raw.items():
    if key not in fields:
      raise ValueError(f"task {name!r}: unknown config field {key!r}; allowed: {sorted(fields)}")
    kind = fields[key].type if isinstance(fields[key].type, str) else fields[key].type.__name__
    if kind == "bool":
      out[key] = str(text).lower() in ("1", "true", "yes")
    elif kind in ("int", "float"):
      try:
        out[key] = int(text) if kind == "int" else float(text)
      except ValueError:
        raise ValueError(f"task {name!r}: field {key}={text!r} is not a valid {kind}") from None
    else:
      out[key] = text
  return out


def task_fields(task: base.Task) -> dict[str, Any]:
  """The task's config as a plain dict (for config names, metadata and logs)."""
  return dataclasses.asdict(task.config)
