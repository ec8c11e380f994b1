"""Parallel-scan recurrences: minGRU, minLSTM (Feng et al. 2024) and the LRU (Orvieto et al. 2023).

  math     linear_scan.py: h_t = a_t h_{t-1} + b_t, its sequential reference (``sequential_scan``)
           and parallel forms; gated.py, mingru.py, minlstm.py, lru.py: each layer's (a, b)
  kernels  step_scan.py (a serial loop inside a chunk), time_chunks.py (long sequences in chunks,
           recomputed in the backward pass), the hand-written gate backward passes
  config   config.py: the mingru, minlstm and lru mixers' fields

Every layer has an ``impl="reference"`` form; tests/models/scan/ compares every fast path
with it (outputs and gradients, lengths, initial states, length 4096, bf16).
"""
