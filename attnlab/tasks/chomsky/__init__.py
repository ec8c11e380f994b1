"""Tasks from Delétang et al. 2023, "Neural Networks and the Chomsky Hierarchy" (ICLR).

regular.py: parity check, even pairs, cycle navigation (regular languages; one class per sequence).
modular_arithmetic.py: modular arithmetic without brackets (regular; one class per sequence).
strings.py: reverse string (deterministic context-free), duplicate string and bucket sort
(context-sensitive); per-token answers written after the input.
"""
