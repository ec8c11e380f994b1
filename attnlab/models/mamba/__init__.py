"""Mamba (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces").

  math     ssm.py: the selective SSM (input-dependent step size delta, B and C; A = -exp(A_log);
           h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t, y_t = h_t C_t + D u_t) and its one-step
           cell (``ssm.step``); block.py: the Mamba block around it (in_proj -> causal conv -> SiLU
           -> SSM, gated by SiLU(z), out_proj) with its decoding state; causal_conv.py: the short
           causal convolution and the step-by-step driver shared with hawk/
  kernels  selective_scan.py: the recurrence as one loop over time on [B, P, H] slabs with a
           hand-written backward (a = exp(delta A) and b = delta u B never formed for more than a
           step), on CPU, in time chunks (scan/time_chunks.py, ``ssm.one_chunk``) of about 4 MB of
           state ([B, T, P, H]) from 4 chunks' length, the backward pass recomputing each chunk;
           off CPU (and with time_chunk=0) scan/linear_scan.py's segmented parallel scan over the
           whole sequence (``ssm.whole_sequence``), whose [L, B, P, H] arrays grow with L
  config   config.py: the ``mamba`` mixer's fields (the block as a mixer)

``MambaBlock(impl="reference")`` is the reference: a plain ``lax.scan`` of the convolution and the
SSM one step at a time. tests/models/mamba/ compares every fast path with it (outputs, gradients,
lengths, chunk sizes, length 4096, decoding) and the block with ``mambapy`` (PyTorch) weight for
weight.
"""
