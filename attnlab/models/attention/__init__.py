"""Scaled dot-product attention and the multi-head layer around it.

  math     dot_product.py: ``naive_attention`` (einsum + softmax, the reference) and the
           dispatcher ``dot_product_attention(implementation=...)``
  kernel   chunked.py + chunked_blocks.py: memory-efficient attention (online softmax over key
           blocks, a FlashAttention-2 style backward pass, causal blocks skipped)
  layer    multi_head.py: ``MultiHeadAttention``, a mixer (self/cross, GQA, windows; its decoding
           state the keys/values seen)
           positions.py: sinusoidal, learned, RoPE, ALiBi

tests/models/attention/chunked_test.py checks the kernel against ``naive_attention`` (outputs and
gradients; masks, bias, dropout, GQA, causal offsets); dot_product_test.py checks the naive form
against PyTorch's ``scaled_dot_product_attention``; multi_head_test.py checks decoding with the
state against the full pass.
"""
