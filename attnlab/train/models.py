"""Model assembly: registry name -> backbone, wrapped with an input embedding and a task head.

Every backbone maps ``x_BLD -> y_BLD`` with ``D = model.d_model``:
  rnn, lstm, gru          stacked recurrent layers (``models.recurrent.RNN``), hidden size d_model;
  mingru, minlstm, lru    pre-norm residual blocks: x + layer(norm(x)), x + mlp(norm(x)), final norm;
  transformer             bidirectional encoder;  decoder: causal decoder-only;
  encoder_decoder         the encoder reads the inputs; the decoder reads the same embedded inputs
                          shifted right by one (a zero vector first) with causal self-attention and
                          cross-attention to the encoder, and its position i predicts target i.
Sequence and regression heads read the last position; per-token heads read every position.
Token inputs use an ``nn.Embed``; feature inputs (``input_kind == "features"``) a ``Dense``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnlab.models import lru, mingru, minlstm, recurrent, transformer
from attnlab.tasks import base

MODEL_FIELDS = ("name", "d_model", "num_layers", "num_heads", "num_kv_heads", "d_ff",
                "dropout_rate", "attention_dropout_rate", "position", "max_len", "state_size",
                "moe_experts", "moe_top_k", "moe_capacity_factor", "moe_aux_weight",
                "attention_impl", "target_params")


class RecurrentBackbone(nn.Module):
  """Stacked classic RNN layers; returns the top layer's outputs."""
  cell: str  # a models.cells.CELLS key
  d_model: int  # hidden size (= embedding size)
  num_layers: int  # stacked layers
  dropout_rate: float  # between layers
  dtype: Any  # compute dtype

  @nn.compact
  def __call__(self, x_BLD, *, deterministic=True):
    y_BLD, _ = recurrent.RNN(cell=self.cell, hidden_size=self.d_model, num_layers=self.num_layers,
                             dropout_rate=self.dropout_rate, dtype=self.dtype, name="rnn")(
                                 x_BLD, deterministic=deterministic)
    return y_BLD


# Residual-stack layers: name -> (module class, whether it takes a state_size).
STACK_LAYERS = {"mingru": (lambda **kw: mingru.MinGRU(**kw), False),
                "minlstm": (lambda **kw: minlstm.MinLSTM(**kw), False),
                "lru": (lambda **kw: lru.LRU(**kw), True)}


class ResidualStack(nn.Module):
  """Pre-norm residual blocks around a parallel-scan recurrent layer plus an MLP."""
  layer: str  # a STACK_LAYERS key
  d_model: int  # residual width and layer hidden size
  num_layers: int  # blocks
  d_ff: int  # MLP hidden size
  state_size: int  # LRU state size (ignored by the others)
  dropout_rate: float  # on each block's residual branch
  dtype: Any  # compute dtype

  @nn.compact
  def __call__(self, x_BLD, *, deterministic=True):
    make, takes_state = STACK_LAYERS[self.layer]
    extra = {"state_size": self.state_size} if takes_state else {}
    drop = nn.Dropout(self.dropout_rate, deterministic=deterministic)
    for i in range(self.num_layers):
      h_BLD = nn.LayerNorm(dtype=self.dtype, name=f"norm_seq_{i}")(x_BLD)
      h_BLD, _ = make(hidden_size=self.d_model, dtype=self.dtype, name=f"{self.layer}_{i}",
                      **extra)(h_BLD)
      x_BLD = x_BLD + drop(h_BLD)
      h_BLD = nn.LayerNorm(dtype=self.dtype, name=f"norm_mlp_{i}")(x_BLD)
      h_BLF = nn.gelu(nn.Dense(self.d_ff, dtype=self.dtype, name=f"mlp_in_{i}")(h_BLD))
      x_BLD = x_BLD + drop(nn.Dense(self.d_model, dtype=self.dtype, name=f"mlp_out_{i}")(h_BLF))
    return nn.LayerNorm(dtype=self.dtype, name="norm_final")(x_BLD)


class ShiftedEncoderDecoder(nn.Module):
  """Encoder over the inputs; decoder over the inputs shifted right (see module docstring)."""
  config: Any  # transformer.TransformerConfig

  @nn.compact
  def __call__(self, x_BLD, *, deterministic=True):
    tgt_BLD = jnp.pad(x_BLD, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    return transformer.EncoderDecoder(self.config, name="encdec")(
        x_BLD, tgt_BLD, deterministic=deterministic)


def _recurrent(cell: str) -> Callable:
  return lambda m, dtype: RecurrentBackbone(cell, m["d_model"], m["num_layers"],
                                            m["dropout_rate"], dtype)


def _stack(layer: str) -> Callable:
  return lambda m, dtype: ResidualStack(layer, m["d_model"], m["num_layers"], _d_ff(m),
                                        m["state_size"] or m["d_model"], m["dropout_rate"], dtype)


def _d_ff(m) -> int:
  return m["d_ff"] or 4 * m["d_model"]


def transformer_config(m, dtype, capture_attention: bool = False) -> transformer.TransformerConfig:
  return transformer.TransformerConfig(
      num_layers=m["num_layers"], d_model=m["d_model"], num_heads=m["num_heads"],
      num_kv_heads=m["num_kv_heads"] or m["num_heads"], d_ff=_d_ff(m),
      dropout_rate=m["dropout_rate"], attention_dropout_rate=m["attention_dropout_rate"],
      position=m["position"], max_len=m["max_len"], moe_experts=m["moe_experts"],
      moe_top_k=m["moe_top_k"], moe_capacity_factor=m["moe_capacity_factor"],
      moe_aux_weight=m["moe_aux_weight"], attention_impl=m["attention_impl"] or None,
      capture_attention=capture_attention, dtype=dtype, param_dtype=jnp.float32)


def _transformer(kind: str) -> Callable:
  def build(m, dtype, capture_attention=False):
    cfg = transformer_config(m, dtype, capture_attention)
    if kind == "encoder_decoder":
      return ShiftedEncoderDecoder(cfg)
    module = transformer.Encoder if kind == "transformer" else transformer.Decoder
    return _MaskFree(module(cfg))
  return build


class _MaskFree(nn.Module):
  """Calls an Encoder/Decoder without a padding mask (every batch here has one length)."""
  inner: nn.Module  # transformer.Encoder or transformer.Decoder

  def __call__(self, x_BLD, *, deterministic=True):
    return self.inner(x_BLD, deterministic=deterministic)


# Registry: model.name -> builder(model_fields: dict, compute dtype) -> backbone module.
MODELS = {
    "rnn": _recurrent("rnn_tanh"),
    "rnn_relu": _recurrent("rnn_relu"),
    "lstm": _recurrent("lstm"),
    "gru": _recurrent("gru"),
    "mingru": _stack("mingru"),
    "minlstm": _stack("minlstm"),
    "lru": _stack("lru"),
    "transformer": _transformer("transformer"),
    "decoder": _transformer("decoder"),
    "encoder_decoder": _transformer("encoder_decoder"),
}
ATTENTION_MODELS = ("transformer", "decoder", "encoder_decoder")


class SequenceModel(nn.Module):
  """Embedding -> backbone -> task head. Outputs float32 logits/predictions."""
  backbone: nn.Module  # x_BLD -> y_BLD
  d_model: int  # embedding size D
  vocab_size: int  # token vocabulary (token inputs)
  input_kind: str  # base.INPUT_KINDS
  output_size: int  # classes C (1 for regression)
  output_kind: str  # base.OUTPUT_KINDS
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, inputs, *, deterministic=True):
    if self.input_kind == base.TOKENS:
      x_BLD = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype, name="embed")(inputs)
    else:
      x_BLD = nn.Dense(self.d_model, dtype=self.dtype, name="input_proj")(inputs)
    y_BLD = self.backbone(x_BLD, deterministic=deterministic)
    if self.output_kind != base.PER_TOKEN:
      y_BLD = y_BLD[:, -1]  # sequence/regression tasks predict at the last position
    out = nn.Dense(self.output_size, dtype=self.dtype, name="head")(y_BLD).astype(jnp.float32)
    return out[..., 0] if self.output_kind == base.REGRESSION else out


def model_fields(model_cfg) -> dict:
  """The model section as a plain dict (ConfigDict or dict in)."""
  m = dict(model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else model_cfg)
  return m


def validate(m: dict) -> None:
  """ValueError naming the field for an unknown model or inconsistent sizes (no tracing)."""
  if m["name"] not in MODELS:
    raise ValueError(f"model.name={m['name']!r}; allowed: {sorted(MODELS)}")
  for field in ("d_model", "num_layers"):
    if int(m[field]) < 1:
      raise ValueError(f"model.{field}={m[field]!r}; must be >= 1")
  if m["name"] in ATTENTION_MODELS:
    if m["num_heads"] < 1 or m["d_model"] % m["num_heads"]:
      raise ValueError(f"model.d_model={m['d_model']} is not divisible by "
                       f"model.num_heads={m['num_heads']}")
    kv = m["num_kv_heads"] or m["num_heads"]
    if m["num_heads"] % kv:
      raise ValueError(f"model.num_heads={m['num_heads']} is not divisible by "
                       f"model.num_kv_heads={kv}")
  if not 0 <= m["dropout_rate"] < 1:
    raise ValueError(f"model.dropout_rate={m['dropout_rate']!r}; must be in [0, 1)")


def build(m: dict, task: base.Task, dtype=jnp.float32,
          capture_attention: bool = False) -> SequenceModel:
  """The full model for ``task`` from resolved model fields ``m``."""
  validate(m)
  builder = MODELS[m["name"]]
  backbone = (builder(m, dtype, capture_attention) if m["name"] in ATTENTION_MODELS
              else builder(m, dtype))
  return SequenceModel(backbone=backbone, d_model=m["d_model"], vocab_size=task.vocab_size,
                       input_kind=task.input_kind, output_size=task.output_size,
                       output_kind=task.output_kind, dtype=dtype)


def dummy_inputs(task: base.Task, batch_size: int = 1, length: int = 4):
  if task.input_kind == base.TOKENS:
    return jnp.zeros((batch_size, length), jnp.int32)
  return jnp.zeros((batch_size, length, task.input_features), jnp.float32)


def abstract_params(model: SequenceModel, task: base.Task):
  """Parameter shapes without allocating or compiling anything."""
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), dummy_inputs(task)))
  return variables["params"]


def param_counts(params) -> dict[str, int]:
  """Total and per top-level module (embed/input_proj, backbone, head) parameter counts."""
  counts = {k: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(v))
            for k, v in params.items()}
  return {"total": sum(counts.values()), **counts}


def _width_multiple(m: dict) -> int:
  # Attention needs d_model divisible by the heads, and RoPE an even head size.
  return 2 * m["num_heads"] if m["name"] in ATTENTION_MODELS else 1


def size_to_target(m: dict, task: base.Task, target: int, *, max_width: int = 8192) -> dict:
  """A copy of ``m`` whose d_model gives the parameter count nearest ``target`` (within 10%)."""
  step = _width_multiple(m)

  def count(width):
    return param_counts(abstract_params(build({**m, "d_model": width}, task), task))["total"]

  # In units of `step`; the count grows with the width. Double to bracket, then bisect.
  hi = 1
  while hi * step < max_width and count(hi * step) < target:
    hi *= 2
  lo, hi = max(hi // 2, 1), min(hi, max_width // step)
  while lo < hi:
    mid = (lo + hi) // 2
    if count(mid * step) < target:
      lo = mid + 1
    else:
      hi = mid
  best = min({max(lo - 1, 1), lo}, key=lambda w: abs(count(w * step) - target))
  got = count(best * step)
  if abs(got - target) > 0.1 * target:
    raise ValueError(f"model.target_params={target}: the closest {m['name']} has {got} parameters "
                     f"(d_model={best * step}); adjust num_layers or target_params")
  return {**m, "d_model": best * step}
