"""What a trained run shows after the fact, from its workdir alone: ``restore`` (the run at a
checkpoint, evaluated at any lengths), ``attention_maps`` (heat maps), ``gradient_lag`` (the
gradient norm against distance); ``workdir.evaluate_workdir`` is what ``scripts/evaluate.py`` runs."""
