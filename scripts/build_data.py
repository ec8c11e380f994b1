#!/usr/bin/env python3
"""``scripts/build_data.py``: see attnlab/cli/build_data.py (``--help`` lists the flags)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attnlab.cli import build_data  # noqa: E402

if __name__ == "__main__":
  build_data.run()
