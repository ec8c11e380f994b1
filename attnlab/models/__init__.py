"""Sequence models as Flax Linen modules.

Shape legend, used as name suffixes throughout (``x_BLD``, ``q_BLNK``):

  B  batch                      L  sequence length (queries / time steps)
  S  key / source length        D  input or model features
  H  recurrent hidden size      N  attention heads (query heads)
  G  key/value heads (GQA/MQA)  K  per-head features
  V  vocabulary size            C  output classes
  E  experts                    F  feed-forward hidden size
  P  LRU state size
"""
