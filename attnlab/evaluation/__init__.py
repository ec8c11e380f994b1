"""Checkpoint evaluation: restore a run from its workdir (``run``), evaluate it at any lengths,
attention heat maps (``attention_maps``), gradient lag (``gradient_lag``); ``report`` ties them up."""
