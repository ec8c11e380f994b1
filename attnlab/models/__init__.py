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
  blocks.py     the residual and stacked blocks every mixer sits in (the model section's ``block``)
  hybrid.py     a residual stack of different mixers, one per block (``model=hybrid``)
  initializers.py  the ``init`` schemes (torch, flax) of every embedding and dense projection
  masks.py      the valid-position mask of per-sequence lengths
  registry.py   registered model names -> config, blocks, backbone
  task_model.py embedding -> backbone -> task head; parameter counts and width sizing

Mixers. Every sequence-mixing layer (the classic cells, the scans, attention, the linear-attention
family, Mamba, Mamba-2, Hawk, the sLSTM and mLSTM layers) is a Linen module called as

  y_BLD, state = mixer(x_BLD, lengths_B=None, state=None, *, deterministic=True)

- y has the width the block gives the mixer (d_model), in the compute dtype.
- lengths_B (int [B], optional) is each sequence's valid prefix: outputs at valid positions equal
  those of the unpadded sequence and never depend on padded inputs; padded outputs are unspecified.
- state is None (nothing seen yet) or what a previous call returned; the returned state is the
  decoding state after each sequence's last valid position, a pytree of arrays, batch first. Calling
  on x[:, :k] and then on x[:, k:] with the first call's state equals one call on x (decoding); a
  bidirectional mixer returns None.
- Every mixer has the fields ``impl`` ("fast", or "reference": the step-by-step form the fast one
  is tested against; attention names its kernels in ``attention_impl`` instead), ``init_scheme``
  (initializers.py; ``init`` is a Linen method, so the module field has the longer name), ``dtype``
  and ``param_dtype``, and a method ``state_size(d_model, length)``: the floats per sequence its
  state holds after ``length`` tokens (None when it cannot decode).
tests/models/mixers_test.py holds every mixer the registry builds to this contract. Adding a mixer
is its module, its config (``module(d_model, *, dtype, init, name)``) and one registry line.

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
