"""Linear attention: causal attention as a recurrence with a matrix state [K, U] per head.

  math     recurrent.py: S_t = diag(a_t) S_{t-1} + phi(k_t) v_t^T, o_t = phi(q_t)^T S_t (optionally
           / phi(q_t) . z_t), run step by step with lax.scan (``recurrent_form``, the reference);
           feature_maps.py: phi (elu1, identity, Based's taylor)
  fast     chunked.py: ``chunked_form``, quadratic inside chunks of T steps, the state carried
           between chunks; decays in log space relative to each chunk's start (never overflows)
  delta    delta_rule.py: the delta rule S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T, its
           step-by-step ``recurrent_form`` (the reference) and Yang et al.'s ``chunked_form``;
           gated_delta_rule.py: the same with a decay per head and step (Gated DeltaNet)
  layers   linear.py: ``LinearAttention`` (Katharopoulos et al. 2020; no decay);
           gated.py: ``GatedLinearAttention``, decay none / fixed (RetNet) / data (GLA);
           deltanet.py: ``DeltaNet``; gated_deltanet.py: ``GatedDeltaNet``
  config   config.py: the linear_attention, retnet, gla, deltanet and gated_deltanet mixers' fields

tests/models/linear_attention/chunked_test.py checks ``chunked_form`` against ``recurrent_form``
(outputs, final states and gradients; chunk sizes that do and do not divide the length; lengths;
length 4096 with strong decays) and both against plain masked einsum products; delta_rule_test.py
does the same for the delta rule; gated_delta_rule_test.py checks both gated forms against a
float64 PyTorch loop, and gated_deltanet_test.py the layer against one; layers_test.py checks each
layer's fast (chunked) form against its reference (step by step), causality, padding and
step-by-step decoding.
"""
