"""Hawk (De et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention"): the
Real-Gated Linear Recurrent Unit in Hawk's recurrent block.

  math     rg_lru.py: r_t, i_t = sigmoid(block-diagonal gates), log a_t = -c softplus(-Lambda) r_t,
           h_t = a_t h_{t-1} + sqrt(1 - a_t^2) (i_t x_t), and its one-step cell (``rg_lru.step``);
           block.py: the recurrent block (GeLU gate branch times linear -> causal conv -> RG-LRU,
           then a linear layer) with its decoding state; the convolution and the step-by-step
           driver are mamba/causal_conv.py's
  kernels  scan/linear_scan.py's segmented parallel scan over the whole sequence
           (``rg_lru.whole_sequence``) or, on CPU from length 512, time chunks (scan/time_chunks.py
           + scan/step_scan.py, ``rg_lru.one_chunk``)
  config   config.py: the ``hawk`` mixer's fields (the block as a mixer; in the residual block
           that block's MLP as Hawk's)

``HawkBlock(impl="reference")`` is the reference: a plain ``lax.scan`` of the convolution and the
RG-LRU one step at a time. tests/models/hawk/ compares every fast path with it and the block with
the paper's equations in float64 NumPy (recurrentgemma, the paper's JAX code, pins absl-py < 2 and
numpy < 2.4, which conflict with attnlab's own requirements).
"""
