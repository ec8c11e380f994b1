"""The claims the report checks: each a stated check (its thresholds written before the runs), a
table and a figure built from a committed experiment (``sections.py``), and a verdict: yes, no or
partly, with the reason. A claim whose experiment has not been committed reports "not run"."""

from __future__ import annotations

import dataclasses
from typing import Callable

from attnlab.report import sections


@dataclasses.dataclass(frozen=True)
class Section:
  title: str
  claim: str  # what the article says
  check: str  # the test, with thresholds fixed before the runs
  verdict: str  # "yes", "no", "partly" or "not run"
  reason: str
  body: str = ""  # protocol, tables, figures (Markdown)


@dataclasses.dataclass(frozen=True)
class Claim:
  title: str
  claim: str
  check: str
  experiments: tuple[str, ...]  # folders under docs/results it reads
  render: Callable  # (experiments by name, figure dir of the first) -> (verdict, reason, body)


CLAIMS = (
    Claim("Simple RNNs forget", "A simple RNN loses the context it needs beyond a short distance "
          "(vanishing gradients); gated RNNs and attention keep it.",
          "At the longest distance the simple RNN's accuracy is <= 0.25 (chance 0.125) while the "
          "better of LSTM/GRU and the Transformer reach >= 0.9; the simple RNN's gradient at the "
          "key, relative to its gradient at the query, is at least 100x smaller than the better "
          "gated RNN's.", ("distance",), sections.forget),
    Claim("Gates help", "LSTM/GRU gates carry information across long gaps.",
          "On the adding problem the LSTM's and the GRU's MSE is <= 0.05 at every T; the simple "
          "RNN's stays >= 0.10 (the mean predictor's is 0.167) at T >= 200.", ("adding",), sections.gates),
    Claim("Recurrence is sequential; attention and parallel scans are not",
          "Recurrent networks process one step after another; attention and scans process the "
          "sequence in parallel, attention at quadratic cost.",
          "The classic RNNs' time per sequence grows linearly with length (exponent <= 1.2), the "
          "Transformer's faster (>= 1.3), and each parallel-scan model trains more tokens/s than "
          "the LSTM at the longest length.", ("cost",), sections.cost),
    Claim("Attention reaches any distance and recalls",
          "Every position sees every other: associative recall needs no growing state "
          "(Zoology's MQAR).",
          "The decoder reaches >= 0.9 at every width (with a 4-tap short convolution before its "
          "attention, conv_width=4, where the sweep has it: plain attention first sits on the "
          "induction plateau for longer than this budget); each fixed-state recurrent model is "
          ">= 0.2 below attention at the smallest width and improves with width.", ("mqar",), sections.mqar),
    Claim("Attention maps explain", "Attention weights read as a heat map of what the model "
          "used.", "Some head of a Transformer trained on the distant dependency puts >= 0.5 of "
          "the query's attention on the key.", ("distance",), sections.maps),
    Claim("Quadratic cost", "Attention costs time and memory quadratic in the length.",
          "Naive attention's time and memory grow with exponent >= 1.6; chunked attention's "
          "memory with exponent <= 1.2.", ("attention_cost",), sections.quadratic),
    Claim("Noise hurts attention", "Attention is sensitive to noisy tokens.",
          "From no noise to the highest distractor rate the Transformer loses >= 0.1 accuracy, "
          "more than every gated RNN.", ("noise",), sections.noise),
    Claim("Mixture of experts", "Mixture-of-experts is the next step: more parameters at the same "
          "compute per token.", "A top-1 MoE feed-forward beats the dense one by >= 0.02 accuracy "
          "at <= 1.5x its step time.", ("moe",), sections.moe),
    Claim("Length generalisation (Delétang et al. 2023)", "Which architectures generalise to "
          "longer inputs depends on the task's place in the Chomsky hierarchy.",
          "Where the paper's model reaches >= 90% ours reaches >= 0.9 (best seed); where it "
          "fails ours is at most 0.1 above it; yes if every cell agrees, partly if half do.",
          ("length_generalization",), sections.length_generalization),
    Claim("Negative eigenvalues unlock state tracking (Grazzi et al. 2025)",
          "Linear RNNs whose state transition has eigenvalues in [0, 1] cannot track state (parity, "
          "modular arithmetic); letting them reach [-1, 1] (allow_negative_eigenvalues) lets "
          "DeltaNet and Mamba solve parity.",
          "Mean test accuracy over the test lengths inside the training range (10, 20, 30, 40; "
          "trained on 1..40), mean over seeds. For each of DeltaNet, Gated DeltaNet and Mamba-2 "
          "and each of parity and modular arithmetic: holds if the model reaches >= 0.9 with "
          "negative eigenvalues and stays below 0.9 without them; fails if it reaches 0.9 without "
          "them; a model below 0.9 with them did not converge in this budget (or cannot solve the "
          "task) and gives no verdict. The LSTM, the control, must reach >= 0.9 on parity. Yes if "
          "every cell holds; the Transformer and the longer test lengths are reported, not checked.",
          ("negative_eigenvalues",), sections.negative_eigenvalues),
)


def evaluate(claim: Claim, experiments: dict, results_dir: str) -> Section:
  missing = [name for name in claim.experiments if experiments.get(name) is None]
  if missing:
    return Section(claim.title, claim.claim, claim.check, "not run",
                   f"not committed yet: docs/results/{', '.join(missing)}")
  verdict, reason, body = claim.render({n: experiments[n] for n in claim.experiments},
                                       results_dir)
  return Section(claim.title, claim.claim, claim.check, verdict, reason, body)
