"""Classic recurrent networks: simple RNN (tanh/relu), LSTM, GRU, with PyTorch's equations.

  math     cells.py: one step of each cell (its ``combine``), parameters in PyTorch's layout
  layer    layer.py: ``RNN``, stacked and bidirectional over time, per-sequence lengths
  kernel   kernel.py: the time loops with hand-written backward passes the layer runs
  import   torch_import.py: a torch ``nn.RNN/LSTM/GRU`` as an ``RNN`` and its parameters
  config   config.py: the rnn, rnn_relu, lstm and gru mixers' fields; their stacked block

tests/models/rnn/torch_import_test.py checks the layer (kernel included) against ``torch.nn``;
layer_test.py checks the kernel against the plain ``lax.scan`` of cells.py differentiated by JAX
(``impl="reference"``), and step by step against the cells.
"""
