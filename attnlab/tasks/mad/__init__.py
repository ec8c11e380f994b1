"""The six tasks of MAD (Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid
Architectures"), after the generators of mad-lab's ``mad/data/instances.py``.

recall.py: in-context recall and noisy recall (MAD's multi-query form); fuzzy_recall.py: recall of
keys and values spanning several tokens; selective_copy.py; compression.py; memorization.py (a fixed
key-value map learned from the training set). tokens.py: the vocabulary rule they share.

Each task keeps MAD's token ids and MAD's ``vocab_size`` (the difficulty knob), and adds one id,
``vocab_size`` itself, for filler outside MAD's instance (see tokens.py). Where MAD trains a
language model on every next token, these tasks put the loss and the metrics on the tokens MAD's
test set scores (its ``is_training=False`` targets): the predictable ones. MAD's training-set size
is the run's ``train_examples`` (attnlab/train/finite.py), not a task field.
"""
