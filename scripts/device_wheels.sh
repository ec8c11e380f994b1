#!/usr/bin/env bash
# Downloads here, for a lent GPU machine (Python 3.12, x86-64, nothing fetchable there), the wheels
# of what attnlab needs and the machine's image lacks, into .whl/ (ignored by git). A device call
# carries it (carry: [".whl"]) and scripts/device_check.sh installs it with --no-deps.
#
#   bash scripts/device_wheels.sh        (PYTHON: an interpreter with pip; default python3)
#
# The list: setup.cfg's install_requires and their requirements, less the image's packages (the
# device tool's KINDS.md, read 2026-11-17: JAX 0.11.2, flax, optax, orbax-checkpoint, absl-py,
# numpy, protobuf, etils, pyarrow, ... are there). Versions: those a fresh Python 3.12 install of
# attnlab resolved here. About 10 MB; a call carries 64 MiB with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=.whl
WHEELS=(
  ml-collections==1.1.0 tensorboardX==2.6.5  # imported by training
  # tensorflow-datasets (fixed evaluation sets, scripts/build_data.py) and what it needs
  tensorflow-datasets==4.9.10 array-record==0.8.6 dm-tree==0.1.10 immutabledict==4.3.1
  simple-parsing==0.1.9 docstring-parser==0.18.0 tensorflow-metadata==1.21.0
  googleapis-common-protos==1.76.0 termcolor==3.3.0 toml==0.10.2
)
SDISTS=(promise==2.3)  # tensorflow-datasets needs it; PyPI has no wheel: built here (pure Python)

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
rm -rf "$DEST"  # one version of each: two would stop the install there
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none "${PLATFORMS[@]}" -d "$DEST" "${WHEELS[@]}"
"$PY" -m pip wheel -q --no-deps -w "$DEST" "${SDISTS[@]}"
ls "$DEST"
du -sh "$DEST"
