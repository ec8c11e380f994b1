"""xLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"): the sLSTM and the mLSTM.

  math     slstm.py: the sLSTM cell (exponential gating, normaliser and stabiliser states,
           block-diagonal recurrence across heads, ``cell_step``) and its layer (causal conv,
           per-head gate projections, per-head LayerNorm); mlstm.py: the mLSTM cell (matrix
           memory, covariance update) as ``step`` / ``recurrent_form``, the reference;
           mlstm_layer.py: the mLSTM layer of the pre-up-projection block
  fast     mlstm.chunked_form: quadratic inside chunks, the stabilised state carried by one
           ``lax.scan`` across chunks (one chunk: the parallel form); the sLSTM has no parallel
           form: its fast path batches the input projections and scans the recurrence alone
  blocks   blocks.py: the sLSTM (post-up-projection) and mLSTM (pre-up-projection) blocks and
           the network of them
  config   config.py: the ``slstm`` and ``mlstm`` mixers (each layer alone in either block of
           models/blocks.py, or a hybrid's) and the ``xlstm`` model (xLSTM[a:b], its own blocks:
           ``ratio`` and ``slstm_at`` place the sLSTM blocks)

tests/models/xlstm/ compares each layer's fast path with its reference (outputs, states,
gradients) and with the xlstm package's PyTorch layers, weight for weight (the "vanilla" sLSTM
and the parallel and recurrent mLSTM backends, on CPU), and checks the blocks' mix.
"""
