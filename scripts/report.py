#!/usr/bin/env python3
"""``scripts/report.py``: see attnlab/cli/report.py (``--help`` lists the flags)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attnlab.cli import report  # noqa: E402

if __name__ == "__main__":
  report.run()
