#!/usr/bin/env python3
"""``scripts/evaluate.py``: see attnlab/cli/evaluate.py (``--help`` lists the flags)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attnlab.cli import evaluate  # noqa: E402

if __name__ == "__main__":
  evaluate.run()
