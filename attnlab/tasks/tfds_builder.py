"""Fixed, versioned evaluation sets of any task config, as tensorflow-datasets in array_record format.

  info = build(data_dir, "distant_dependency", {"distance": 64}, lengths=[128, 256],
               examples=1000, seed=0)
  for batch in eval_batches(data_dir, get_task("distant_dependency", distance=64), 256, batch_size=50):
    ...  # batch: {"inputs", "targets", "mask"} numpy arrays with a leading batch axis

Layout: ``data_dir/attnlab_task/<config name>/<VERSION>/``, one split ``length_<L>`` per length, each
with ``examples`` examples of features ``inputs``, ``targets``, ``mask`` (shapes as in ``base.py``,
per example). The config name is derived from everything that fixes the data:
``<task>-<hash of the task fields>-s<seed>-n<examples>-L<l1>_<l2>..``; the task fields, seed,
lengths and sampler rule are also recorded in the builder's metadata. Building again with the same
arguments reuses the data on disk (tfds' "Subsequent calls will reuse this data").

Examples are exactly those of the on-device sampler: chunk c of split L is
``task.sample(fold_in(fold_in(key(seed), L), c), CHUNK, L)`` (see ``sample_split``), so a set with
fewer examples is a prefix of one with more. Use seeds other than the training ``data_seed``.
Bump ``VERSION`` whenever a sampler changes what a seed produces.

Only ``tfds.data_source`` reads the sets (no TensorFlow needed). tensorflow_datasets is imported
inside the functions here, so importing attnlab.tasks never pays for it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from typing import Any, Iterator, Mapping, Sequence

import jax
import numpy as np

from attnlab.tasks import base
from attnlab.tasks import lengths as lengths_lib
from attnlab.tasks import registry

DATASET = "attnlab_task"  # tfds dataset (builder) name
VERSION = "1.1.0"  # the sampled data's version: bump when a sampler's output for a seed changes
# 1.1.0: the Chomsky-hierarchy tasks draw their symbols time-major (padded sampling).
CHUNK = 256  # examples per on-device sampling call; part of the definition of the data


def split_name(length: int) -> str:
  return f"length_{int(length)}"


def config_name(task_name: str, fields: Mapping[str, Any], seed: int, lengths: Sequence[int],
                examples: int) -> str:
  """Readable, unique tfds config name for one evaluation set."""
  digest = hashlib.sha1(json.dumps([task_name, dict(fields)], sort_keys=True).encode()).hexdigest()[:8]
  lengths_part = "_".join(str(n) for n in lengths_lib.check_eval_lengths(lengths))
  return f"{task_name}-{digest}-s{int(seed)}-n{int(examples)}-L{lengths_part}"


def sample_split(task: base.Task, seed: int, length: int, examples: int) -> dict[str, np.ndarray]:
  """The ``examples`` examples of split ``length`` as numpy arrays (the builder writes these)."""
  split_rng = jax.random.fold_in(jax.random.key(int(seed)), int(length))
  sampler = jax.jit(task.sample, static_argnums=(1, 2))
  chunks = []
  for c in range(-(-examples // CHUNK)):
    batch = sampler(jax.random.fold_in(split_rng, c), CHUNK, int(length))
    chunks.append(jax.tree_util.tree_map(np.asarray, batch))
  return {k: np.concatenate([ch[k] for ch in chunks])[:examples] for k in chunks[0]}


def _features(tfds, task: base.Task):
  if task.input_kind == base.FEATURES:
    inputs = tfds.features.Tensor(shape=(None, task.input_features), dtype=np.float32)
  else:
    inputs = tfds.features.Tensor(shape=(None,), dtype=np.int32)
  per_token = task.output_kind == base.PER_TOKEN
  target_dtype = np.float32 if task.output_kind == base.REGRESSION else np.int32
  shape = (None,) if per_token else ()
  return tfds.features.FeaturesDict({
      "inputs": inputs,
      "targets": tfds.features.Tensor(shape=shape, dtype=target_dtype),
      "mask": tfds.features.Tensor(shape=shape, dtype=np.float32),
  })


@functools.cache
def builder_class():
  """The tfds builder class (made on first use: tfds is imported here, and registers it once)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  @dataclasses.dataclass(eq=False)
  class AttnlabTaskConfig(tfds.core.BuilderConfig):
    task_name: str = ""  # registry key
    task_fields: dict = dataclasses.field(default_factory=dict)  # the task config's fields
    seed: int = 0  # evaluation-set seed
    lengths: tuple = ()  # one split per input length
    examples: int = 0  # examples per split

  class AttnlabTask(tfds.core.GeneratorBasedBuilder):
    """Evaluation splits of one attnlab task config (see attnlab/tasks/tfds_builder.py)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {"1.0.0": "First release."}

    # No source-tree resources (checksums, metadata files): tfds' lookup of them needs the
    # importlib_resources backport, which is not installed.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
      return None

    def _task(self) -> base.Task:
      return registry.get_task(self.builder_config.task_name, **self.builder_config.task_fields)

    def _info(self):
      cfg, task = self.builder_config, self._task()
      return tfds.core.DatasetInfo(
          builder=self,
          description=f"attnlab task {cfg.task_name} {cfg.task_fields}, seed {cfg.seed}",
          features=_features(tfds, task),
          disable_shuffling=True,  # keep the sampler's order: example i of a split is sample i
          metadata=tfds.core.MetadataDict(
              task=cfg.task_name, task_fields=dict(cfg.task_fields), seed=int(cfg.seed),
              lengths=[int(n) for n in cfg.lengths], examples=int(cfg.examples),
              vocab_size=task.vocab_size, output_size=task.output_size,
              output_kind=task.output_kind, input_kind=task.input_kind, chunk=CHUNK,
              sampler="task.sample(fold_in(fold_in(key(seed), length), chunk), CHUNK, length)"))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split_name(n): self._generate_examples(n) for n in self.builder_config.lengths}

    def _generate_examples(self, length):
      arrays = sample_split(self._task(), self.builder_config.seed, length, self.builder_config.examples)
      for i in range(self.builder_config.examples):
        yield i, {k: v[i] for k, v in arrays.items()}

  return AttnlabTaskConfig, AttnlabTask


@dataclasses.dataclass(frozen=True)
class EvalSet:
  """What ``build`` made: the tfds name and the split sizes."""
  name: str  # "attnlab_task/<config>:<version>"
  config_name: str  # tfds config name
  path: str  # directory holding the array_record files
  splits: dict  # split name -> number of examples


def _make_builder(data_dir: str, task_name: str, fields: Mapping[str, Any], lengths: Sequence[int],
                  examples: int, seed: int):
  config_cls, builder_cls = builder_class()
  task = registry.get_task(task_name, **fields)  # validates the name and fields
  lengths = lengths_lib.check_eval_lengths(lengths)
  if examples < 1:
    raise ValueError(f"examples={examples}; must be >= 1")
  too_short = [n for n in lengths if n < task.min_length]
  if too_short:
    raise ValueError(f"lengths {too_short} are below this {task_name} config's min_length="
                     f"{task.min_length}")
  fields = registry.task_fields(task)
  name = config_name(task_name, fields, seed, lengths, examples)
  config = config_cls(name=name, version=VERSION, description=f"{task_name} {fields} seed {seed}",
                      task_name=task_name, task_fields=fields, seed=int(seed),
                      lengths=tuple(lengths), examples=int(examples))
  return builder_cls(config=config, data_dir=os.fspath(data_dir), file_format="array_record")


def build(data_dir: str, task_name: str, fields: Mapping[str, Any] | None = None, *,
          lengths: Sequence[int], examples: int, seed: int = 0) -> EvalSet:
  """Builds (or reuses) the evaluation set of a task config; returns its name and split sizes."""
  builder = _make_builder(data_dir, task_name, dict(fields or {}), lengths, examples, seed)
  builder.download_and_prepare()
  splits = {name: info.num_examples for name, info in builder.info.splits.items()}
  return EvalSet(name=f"{DATASET}/{builder.builder_config.name}:{VERSION}",
                 config_name=builder.builder_config.name, path=os.fspath(builder.data_dir),
                 splits=dict(sorted(splits.items(), key=lambda kv: int(kv[0].split("_")[1]))))


def find_config(data_dir: str, task: base.Task, length: int, *, seed: int = 0) -> str:
  """The built config name for (task config, seed) that has split ``length`` (most examples wins)."""
  prefix = config_name(task.name, registry.task_fields(task), seed, [1], 1).rsplit("-n", 1)[0] + "-n"
  root = os.path.join(os.fspath(data_dir), DATASET)
  found = []
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    built = os.path.isfile(os.path.join(root, name, VERSION, "dataset_info.json"))
    if built and name.startswith(prefix):
      examples, lengths_part = name[len(prefix):].split("-L", 1)
      if str(int(length)) in lengths_part.split("_"):
        found.append((int(examples), name))
  if not found:
    raise ValueError(f"no evaluation set for task {task.name} {registry.task_fields(task)}, "
                     f"seed={seed}, "
                     f"length={length} under {root} (version {VERSION}); build it with "
                     f"scripts/build_data.py --task {task.name} --lengths {length} ...")
  return max(found)[1]


def eval_batches(data_dir: str, task: base.Task, length: int, batch_size: int, *, seed: int = 0,
                 num_batches: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Yields batches {"inputs", "targets", "mask"} (numpy, leading axis batch_size) of split ``length``.

  Reads the set built by ``build`` for this task config and seed (``find_config``), in order;
  drops a last partial batch so every batch has the same static shape. ``num_batches`` caps the
  count (None = all full batches).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder_class()  # registers the builder so tfds can open the set by name
  name = find_config(data_dir, task, length, seed=seed)
  source = tfds.data_source(f"{DATASET}/{name}:{VERSION}", split=split_name(length),
                            data_dir=os.fspath(data_dir), download=False)
  dtypes = {"inputs": np.float32 if task.input_kind == base.FEATURES else np.int32,
            "targets": np.float32 if task.output_kind == base.REGRESSION else np.int32,
            "mask": np.float32}
  total = len(source) // batch_size
  if num_batches is not None:
    total = min(total, num_batches)
  for b in range(total):
    rows = source.__getitems__(range(b * batch_size, (b + 1) * batch_size))
    yield {k: np.stack([np.asarray(r[k]) for r in rows]).astype(dtypes[k]) for k in dtypes}
