"""The model registry: each registered name, its config and the blocks it may sit in.

Mixer names (the recurrences, the scans, the linear-attention family with Gated DeltaNet, Mamba,
Mamba-2, Hawk, the sLSTM and mLSTM layers, the hybrid) put one mixer config per layer into either
block of ``blocks.py``; their model section holds the block's fields (``blocks.BlockConfig``: block,
d_model, num_layers, d_ff, dropout_rate, init) and the mixer's own. Model names with blocks of their
own (the Transformers; xLSTM[a:b], ``xlstm``) hold their config's fields and ``block`` =
"residual", what they already are.

A run's ``config.model`` section is ``section(name)`` (``name``, ``target_params`` and the fields,
from the dataclasses' defaults, placeholders 0/"" meaning "derived"); ``make_config`` turns it into
a ``Model`` (placeholders resolved once, every field checked: ValueError naming it), whose
``backbone()`` maps ``(x_BLD, lengths_B=None, *, deterministic) -> y_BLD``. Adding a mixer is its
module, its config and one line here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Mapping

from attnlab.models import blocks
from attnlab.models.attention.config import AttentionConfig
from attnlab.models.hawk.config import HawkConfig
from attnlab.models.hybrid import HybridConfig
from attnlab.models.linear_attention.config import (DeltaNetConfig, GatedDeltaNetConfig,
                                                  GatedLinearConfig, LinearAttentionConfig)
from attnlab.models.mamba.config import MambaConfig
from attnlab.models.mamba2.config import Mamba2Config
from attnlab.models.rnn.config import RecurrentConfig
from attnlab.models.scan.config import GatedScanConfig, LRUConfig
from attnlab.models.transformer import backbone as transformer
from attnlab.models.transformer.config import SlidingWindowConfig, TransformerConfig
from attnlab.models.xlstm import config as xlstm

STACKABLE = ("stacked", "residual")  # the classic cells' blocks (stacked by default) ...
SCANS = ("residual", "stacked")  # ... and the scans'


@dataclasses.dataclass(frozen=True)
class Entry:
  config: type  # the mixer's config dataclass, or the model's own (own_blocks)
  fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # fields the name sets
  blocks: tuple = ("residual",)  # the blocks the name may sit in; the first is its default
  # Models with blocks of their own: (config) -> backbone and (config, length) -> state size.
  backbone: Callable | None = None
  state_size: Callable | None = None
  # Mixer names whose layers differ: (config, block config) -> ((prefix, mixer config), ...).
  layers: Callable | None = None


def hybrid_layers(hybrid: HybridConfig, block: blocks.BlockConfig) -> tuple:
  """A hybrid's ((prefix, mixer config), ...): each named mixer with its defaults, the hybrid's
  num_heads, window and impl where it has them; ValueError for a name that is not a mixer."""
  allowed = sorted(MIXERS)
  unknown = [n for n in hybrid.names if n not in MIXERS]
  if unknown:
    raise ValueError(f"layers={hybrid.layers!r}: {unknown} not a mixer name; allowed: {allowed}")
  if block.num_layers != len(hybrid.names):
    raise ValueError(f"num_layers={block.num_layers}; layers={hybrid.layers!r} lists "
                     f"{len(hybrid.names)} mixers (num_layers 0 counts them)")
  shared = {"num_heads": hybrid.num_heads, "window": hybrid.window, "impl": hybrid.impl}
  out = []
  for name in hybrid.names:
    config, fixed = MIXERS[name]
    own = {f.name for f in dataclasses.fields(config)}
    mixer = config(**fixed, **{k: v for k, v in shared.items() if k in own})
    if hasattr(mixer, "resolved"):
      mixer = mixer.resolved(block.d_model)
    out.append((mixer.module_name, mixer))
  return tuple(out)


def _own(config, kind: str) -> Entry:
  return Entry(config, backbone=functools.partial(transformer.TransformerBackbone, kind=kind),
               state_size=functools.partial(transformer.state_size, kind=kind))


MODELS = {
    "rnn": Entry(RecurrentConfig, {"cell": "rnn_tanh"}, STACKABLE),
    "rnn_relu": Entry(RecurrentConfig, {"cell": "rnn_relu"}, STACKABLE),
    "lstm": Entry(RecurrentConfig, {"cell": "lstm"}, STACKABLE),
    "gru": Entry(RecurrentConfig, {"cell": "gru"}, STACKABLE),
    "mingru": Entry(GatedScanConfig, {"layer": "mingru"}, SCANS),
    "minlstm": Entry(GatedScanConfig, {"layer": "minlstm"}, SCANS),
    "lru": Entry(LRUConfig, blocks=SCANS),
    "linear_attention": Entry(LinearAttentionConfig),
    "retnet": Entry(GatedLinearConfig, {"decay": "fixed"}),
    "gla": Entry(GatedLinearConfig, {"decay": "data"}),
    "deltanet": Entry(DeltaNetConfig),
    "gated_deltanet": Entry(GatedDeltaNetConfig),
    "mamba": Entry(MambaConfig),
    "mamba2": Entry(Mamba2Config),
    "hawk": Entry(HawkConfig),
    "slstm": Entry(xlstm.SLSTMConfig),
    "mlstm": Entry(xlstm.MLSTMConfig),
    "hybrid": Entry(HybridConfig, layers=hybrid_layers),
    "transformer": _own(TransformerConfig, "encoder"),
    "decoder": _own(TransformerConfig, "decoder"),
    "swa": _own(SlidingWindowConfig, "decoder"),
    "encoder_decoder": _own(TransformerConfig, "encoder_decoder"),
    "xlstm": Entry(xlstm.XLSTMConfig, backbone=xlstm.backbone, state_size=xlstm.state_size),
}

# The mixers a hybrid's layers may name: every mixer name above, and causal softmax attention.
MIXERS = {**{n: (e.config, e.fixed) for n, e in MODELS.items() if e.backbone is None
             and e.layers is None}, "attention": (AttentionConfig, {})}

# Dataclass fields the run sets (compute dtype, attention capture), never a config file.
RUNTIME = ("dtype", "param_dtype", "capture_attention")
# Fields of every model section that are not the model's: target_params > 0 sizes d_model to
# that many parameters (within 10%); embed_std > 0 draws the token embedding N(0, embed_std^2)
# instead of the init scheme's (0.02: the LM wrappers of Mamba's, Zoology's and
# flash-linear-attention's reference code, where the scheme's N(0, 1) keeps Mamba off MQAR).
COMMON = {"target_params": 0, "embed_std": 0.0}
# Section defaults that differ from the dataclass's: placeholders filled by the run (max_len: the
# longest train/eval length) or meaning the default (attention_impl "": the backend's;
# num_kv_heads 0: num_heads).
PLACEHOLDERS = {"max_len": 0, "attention_impl": "", "num_kv_heads": 0}
_BLOCK_FIELDS = tuple(f.name for f in dataclasses.fields(blocks.BlockConfig) if f.name not in RUNTIME)


def entry(name: str) -> Entry:
  if name not in MODELS:
    raise ValueError(f"model.name={name!r}; allowed: {sorted(MODELS)}")
  return MODELS[name]


def _dataclass_fields(cls, e: Entry) -> list[str]:
  return [f.name for f in dataclasses.fields(cls) if f.name not in e.fixed and f.name not in RUNTIME]


def own_fields(name: str) -> list[str]:
  """The model section's fields of ``name`` besides ``name`` and COMMON."""
  e = entry(name)
  mine = _dataclass_fields(e.config, e)
  if e.backbone is not None:
    return ["block"] + mine
  return list(_BLOCK_FIELDS) + mine


def section(name: str) -> dict[str, Any]:
  """The default ``config.model`` section of model ``name``: name, COMMON and its own fields."""
  e = entry(name)
  defaults = {f.name: f.default for f in dataclasses.fields(e.config)}
  defaults.update({f.name: f.default for f in dataclasses.fields(blocks.BlockConfig)})
  defaults["block"] = e.blocks[0]
  if e.layers:
    defaults["num_layers"] = 0  # the number of mixers the layers list
  own = {k: PLACEHOLDERS.get(k, defaults[k]) for k in own_fields(name)}
  return {"name": name, **COMMON, **own}


def has_field(name: str, field: str) -> bool:
  e = entry(name)
  return field in {f.name for f in dataclasses.fields(e.config)}


def _in_section(message: str, names) -> str:
  """A dataclass's message with its field names as the config names them (``model.d_model=8``)."""
  return re.sub(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")=", r"model.\1=",
                message)


@dataclasses.dataclass(frozen=True)
class Model:
  """A resolved model section: the registered name and the config its backbone is built from
  (``blocks.MixerStack`` for a mixer name, the model's own config otherwise); ``given``, a mixer
  name's own config as the section gave it, before the width resolved its placeholders."""
  name: str
  config: Any
  given: Any = None

  def backbone(self):
    """The backbone module: ``(x_BLD, lengths_B=None, *, deterministic) -> y_BLD``."""
    e = entry(self.name)
    return e.backbone(self.config) if e.backbone else blocks.build(self.config)

  def state_size(self, length: int) -> int | None:
    """Floats per sequence of the decoding state after ``length`` tokens (None: cannot decode)."""
    e = entry(self.name)
    return e.state_size(self.config, length) if e.state_size else blocks.state_size(
        self.config, length)

  def with_width(self, d_model: int) -> "Model":
    """The same model at width ``d_model``, every placeholder derived again from it."""
    if entry(self.name).backbone is not None:
      return Model(self.name, dataclasses.replace(self.config, d_model=d_model))
    return _mixer_model(self.name, self.given,
                        dataclasses.replace(self.config.block, d_model=d_model))

  def fields(self) -> dict[str, Any]:
    """The model section as resolved: ``name`` and its own fields, placeholders filled in."""
    e = entry(self.name)
    if e.backbone is not None:
      own = (self.config.resolved_fields() if hasattr(self.config, "resolved_fields")
             else dataclasses.asdict(self.config))
      values = {**own, "block": "residual"}
    else:
      block = self.config.block
      values = {**dataclasses.asdict(block), "d_ff": block.ff_width,
                **dataclasses.asdict(self.config.config)}
    return {"name": self.name, **{k: values[k] for k in own_fields(self.name)}}


def _mixer_model(name: str, given, block_cfg: blocks.BlockConfig) -> Model:
  """A mixer name's Model: its config ``given`` resolved at the block's width, and its layers."""
  e = entry(name)
  mixer = given.resolved(block_cfg.d_model) if hasattr(given, "resolved") else given
  layers = (e.layers(mixer, block_cfg) if e.layers else
            ((mixer.module_name, mixer),) * block_cfg.num_layers)
  return Model(name, blocks.MixerStack(block_cfg, mixer, layers), given)


def make_config(fields: Mapping[str, Any], *, dtype=None, max_length: int = 0,
                capture_attention: bool = False) -> Model:
  """The ``Model`` of a model section; ValueError naming the field for a bad one."""
  fields = dict(fields)
  name = fields.pop("name", None)
  e = entry(name)
  own = own_fields(name)
  unknown = sorted(set(fields) - set(own) - set(COMMON))
  if unknown:
    raise ValueError(f"model.name={name!r} has no field(s) {unknown}; its fields: "
                     f"{sorted(own + list(COMMON))}")
  embed_std = fields.get("embed_std", 0.0)
  if isinstance(embed_std, bool) or not isinstance(embed_std, (int, float)) or not embed_std >= 0:
    raise ValueError(f"model.embed_std={embed_std!r}; allowed: a number >= 0 (0: the init "
                     "scheme's embedding)")
  block = fields.get("block", e.blocks[0])
  if block not in e.blocks:
    raise ValueError(f"model.block={block!r}; allowed for {name!r}: {e.blocks}")
  runtime = {"dtype": dtype, "capture_attention": capture_attention}
  try:
    if e.backbone is not None:
      kwargs = {k: fields[k] for k in own if k in fields and k != "block"}
      if "max_len" in kwargs and not kwargs["max_len"]:
        kwargs["max_len"] = max_length
      kwargs.update({k: v for k, v in runtime.items() if has_field(name, k) and v is not None})
      return Model(name, e.config(**e.fixed, **kwargs))
    mine = {k: fields[k] for k in _dataclass_fields(e.config, e) if k in fields}
    mixer = e.config(**e.fixed, **mine)
    block_fields = {**{k: fields[k] for k in _BLOCK_FIELDS if k in fields}, "block": block}
    if e.layers and not block_fields.get("num_layers"):
      block_fields["num_layers"] = len(mixer.names)
    if dtype is not None:
      block_fields["dtype"] = dtype
    return _mixer_model(name, mixer, blocks.BlockConfig(**block_fields))
  except ValueError as err:
    raise ValueError(_in_section(str(err), own)) from None


def backbone(fields: Mapping[str, Any], **kwargs):
  """The backbone module of a model section (``make_config``'s keyword arguments apply)."""
  return make_config(fields, **kwargs).backbone()
