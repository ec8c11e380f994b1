"""Mamba-2 (Dao & Gu 2024, "Transformers are SSMs": state space duality).

  math     ssd.py: the SSM with one scalar decay per head, S_t = a_t S_{t-1} + B_t (dt_t x_t)^T,
           y_t = S_t^T C_t, a_t = exp(dt_t A) (or 2 exp(dt_t A) - 1 with negative eigenvalues);
           ``ssd.step`` one step and ``ssd.recurrent_form`` the reference; block.py: the Mamba-2
           block around it (in_proj -> causal conv -> SSD -> gated RMSNorm -> out_proj), its
           decoding state and its step-by-step reference (``impl="reference"``)
  fast     ssd.chunked_form: matrix products inside chunks (C B^T shared by the heads, one decay
           matrix per head), one ``lax.scan`` across chunks for the states
  config   config.py: the ``mamba2`` mixer (the block in models/blocks.py's blocks or a hybrid)

tests/models/mamba2/ssd_test.py compares the chunked form with the recurrent one and both with a
float64 PyTorch loop (outputs, states, gradients; negative decays; strong decays over many
chunks); block_test.py checks the block's mixer contract and the whole block against a float64
PyTorch loop of mamba2_simple.py's equations with its weights moved over (mambapy's mamba2.py needs
mamba_ssm's Triton kernels even to import).
"""
