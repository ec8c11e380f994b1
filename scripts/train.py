#!/usr/bin/env python3
"""Trains one run: ``scripts/train.py --config experiments/NAME.py[:ARG] --workdir DIR``.

  python scripts/train.py --config experiments/base.py:model=lstm,task=copy,smoke --workdir /tmp/r
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from attnlab.cli import train  # noqa: E402

if __name__ == "__main__":
  train.run()
