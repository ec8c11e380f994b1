"""The model registry: each registered name is its family's config dataclass, the module that
builds its backbone from that config, and the config fields the name fixes.

A run's ``config.model`` section holds ``name``, ``target_params`` and the chosen model's own fields
(``section(name)``, from the dataclass's defaults). ``make_config`` turns the section into the
dataclass (which checks itself and resolves its 0 placeholders); every backbone maps
``(x_BLD, lengths_B=None, *, deterministic) -> y_BLD`` with ``D = d_model``. Adding a model is its
module and one line here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Mapping

from attnlab.models import stack
from attnlab.models.hawk.backbone import HawkStackConfig
from attnlab.models.linear_attention.backbone import (DeltaNetConfig, GatedLinearConfig,
                                                    LinearAttentionConfig)
from attnlab.models.linear_attention.gated_deltanet import GatedDeltaNetConfig
from attnlab.models.mamba.backbone import MambaStackConfig
from attnlab.models.mamba2.backbone import Mamba2Config
from attnlab.models.rnn.backbone import RecurrentBackbone, RecurrentConfig
from attnlab.models.scan.backbone import GatedStackConfig, LRUStackConfig
from attnlab.models.transformer.backbone import TransformerBackbone
from attnlab.models.transformer.config import SlidingWindowConfig, TransformerConfig
from attnlab.models.xlstm.backbone import (MLSTMStackConfig, SLSTMStackConfig, XLSTMConfig,
                                           xlstm_backbone)


@dataclasses.dataclass(frozen=True)
class Entry:
  config: type  # the family's config dataclass
  backbone: Callable[[Any], Any]  # config instance -> backbone module
  fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # fields the name sets


def _transformer(kind: str) -> Callable:
  return functools.partial(TransformerBackbone, kind=kind)


MODELS = {
    "rnn": Entry(RecurrentConfig, RecurrentBackbone, {"cell": "rnn_tanh"}),
    "rnn_relu": Entry(RecurrentConfig, RecurrentBackbone, {"cell": "rnn_relu"}),
    "lstm": Entry(RecurrentConfig, RecurrentBackbone, {"cell": "lstm"}),
    "gru": Entry(RecurrentConfig, RecurrentBackbone, {"cell": "gru"}),
    "mingru": Entry(GatedStackConfig, stack.from_config, {"layer": "mingru"}),
    "minlstm": Entry(GatedStackConfig, stack.from_config, {"layer": "minlstm"}),
    "lru": Entry(LRUStackConfig, stack.from_config),
    "linear_attention": Entry(LinearAttentionConfig, stack.from_config),
    "retnet": Entry(GatedLinearConfig, stack.from_config, {"decay": "fixed"}),
    "gla": Entry(GatedLinearConfig, stack.from_config, {"decay": "data"}),
    "deltanet": Entry(DeltaNetConfig, stack.from_config),
    "gated_deltanet": Entry(GatedDeltaNetConfig, stack.from_config),
    "mamba": Entry(MambaStackConfig, stack.from_config),
    "mamba2": Entry(Mamba2Config, stack.from_config),
    "hawk": Entry(HawkStackConfig, stack.from_config),
    "slstm": Entry(SLSTMStackConfig, stack.from_config),
    "mlstm": Entry(MLSTMStackConfig, stack.from_config),
    "xlstm": Entry(XLSTMConfig, xlstm_backbone),
    "transformer": Entry(TransformerConfig, _transformer("encoder")),
    "decoder": Entry(TransformerConfig, _transformer("decoder")),
    "swa": Entry(SlidingWindowConfig, _transformer("decoder")),
    "encoder_decoder": Entry(TransformerConfig, _transformer("encoder_decoder")),
}

# Dataclass fields the run sets (compute dtype, attention capture), never a config file.
RUNTIME = ("dtype", "param_dtype", "capture_attention")
# Fields of every model section that are not the family's: target_params > 0 sizes d_model to
# that many parameters (within 10%).
COMMON = {"target_params": 0}
# Section defaults that differ from the dataclass's: placeholders filled by the run (max_len: the
# longest train/eval length) or meaning the default (attention_impl "": the backend's;
# num_kv_heads 0: num_heads).
PLACEHOLDERS = {"max_len": 0, "attention_impl": "", "num_kv_heads": 0}


def entry(name: str) -> Entry:
  if name not in MODELS:
    raise ValueError(f"model.name={name!r}; allowed: {sorted(MODELS)}")
  return MODELS[name]


def own_fields(name: str) -> list[str]:
  """The config fields of model ``name`` (its dataclass's, less what the name or the run sets)."""
  e = entry(name)
  return [f.name for f in dataclasses.fields(e.config)
          if f.name not in e.fixed and f.name not in RUNTIME]


def section(name: str) -> dict[str, Any]:
  """The default ``config.model`` section of model ``name``: name, COMMON and its own fields."""
  defaults = {f.name: f.default for f in dataclasses.fields(entry(name).config)}
  own = {k: PLACEHOLDERS.get(k, defaults[k]) for k in own_fields(name)}
  return {"name": name, **COMMON, **own}


def has_field(name: str, field: str) -> bool:
  return field in {f.name for f in dataclasses.fields(entry(name).config)}


def _in_section(message: str, names) -> str:
  """A dataclass's message with its field names as the config names them (``model.d_model=8``)."""
  return re.sub(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")=", r"model.\1=",
                message)


def make_config(fields: Mapping[str, Any], *, dtype=None, max_length: int = 0,
                capture_attention: bool = False):
  """The family dataclass of a model section; ValueError naming the field for a bad one."""
  fields = dict(fields)
  name = fields.pop("name", None)
  e = entry(name)
  own = own_fields(name)
  unknown = sorted(set(fields) - set(own) - set(COMMON))
  if unknown:
    raise ValueError(f"model.name={name!r} has no field(s) {unknown}; its fields: "
                     f"{sorted(own + list(COMMON))}")
  kwargs = {k: fields[k] for k in own if k in fields}
  if "max_len" in kwargs and not kwargs["max_len"]:
    kwargs["max_len"] = max_length
  runtime = {"dtype": dtype, "capture_attention": capture_attention}
  kwargs.update({k: v for k, v in runtime.items() if has_field(name, k) and v is not None})
  try:
    return e.config(**e.fixed, **kwargs)
  except ValueError as err:
    raise ValueError(_in_section(str(err), own)) from None


def backbone(fields: Mapping[str, Any], **kwargs):
  """The backbone module of a model section (``make_config``'s keyword arguments apply)."""
  return entry(fields["name"]).backbone(make_config(fields, **kwargs))
