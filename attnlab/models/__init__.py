"""Sequence models as Flax Linen modules, one sub-package per family.

  rnn/          simple RNN, LSTM, GRU (PyTorch's equations and parameters)
  scan/         parallel-scan recurrences: minGRU, minLSTM, LRU
  attention/    scaled dot-product attention, its memory-efficient kernel, multi-head, positions
  transformer/  encoder, decoder, encoder-decoder, mixture-of-experts feed-forward
  linear_attention/  linear attention (elu1, Based's taylor map), RetNet, GLA, DeltaNet, Gated
                DeltaNet
  mamba/        Mamba: the selective SSM in the Mamba block; the causal convolution
  mamba2/       Mamba-2: SSD (one scalar decay per head) in the Mamba-2 block
  xlstm/        xLSTM: the sLSTM and mLSTM layers, their blocks, xLSTM[a:b]
  hawk/         Hawk: the RG-LRU in Hawk's recurrent block
  stack.py      the residual stack (pre-norm, MLP) the non-Transformer mixers train in
  registry.py   registered model names -> family config and backbone
  task_model.py embedding -> backbone -> task head; parameter counts and width sizing

Each family's ``__init__`` says where its math is, which code computes it fast (the kernels, which
a reader does not need in order to understand the model) and which test proves they agree.

Shape legend, one meaning per letter, used as name suffixes (``x_BLD``, ``q_BLNK``):

  B  batch                           L  sequence length: time steps, queries
  S  key / source length             T  time steps of one chunk or segment
  J  number of chunks, segments or blocks
  D  model or input features         H  recurrent hidden size
  W  stacked projections side by side (the gates of a cell: gates x H)
  I  features of a fused input [x, h] (D + H)
  N  query heads; the RG-LRU gates' diagonal blocks
  G  key/value heads (GQA/MQA)
  R  query heads per key/value head (N / G)
  K  per-head features (queries, keys, values; an RG-LRU gate block's)
  U  per-head value features where they differ from K (linear attention's state [K, U])
  V  vocabulary size                 C  output classes
  E  experts                         A  experts chosen per token (top_k)
  X  expert capacity (slots)         F  feed-forward hidden size
  P  state size (LRU; Mamba's per channel, d_state)
  Q  real and imaginary parts of a P state side by side (2P)
  M  rows of a flattened product (batch x time, or choices)
  Z  past inputs a causal convolution keeps (d_conv - 1: Mamba, Hawk)

Words: a *chunk* is a span of time steps a layer processes as a unit, carrying its state to the
next (the scan layers' time chunks); a *segment* is a run of steps scanned serially inside the
parallel scan; a *block* is a tile of queries x keys of the ``chunked`` attention.
"""
