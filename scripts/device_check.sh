#!/usr/bin/env bash
# The prepared check for a lent GPU machine (docs/benchmarks.md, "GPU"): about 7 minutes, so that
# it fits a 15-minute lease with the machine's start.
#
#   bash scripts/device_wheels.sh                  here, once: the missing packages' wheels in .whl/
#   bash scripts/device_check.sh OUT               there (the device call carries .whl)
#   bash scripts/device_check.sh --dry_run OUT     the same sections at tiny sizes on this CPU
#
# Sections, each under its own timeout and recorded as OUT/SECTION.json the moment it ends (a
# cut-off run keeps what it measured; a benchmark's progress lines are in its log_tail), with
# OUT/summary.md, a short Markdown table, rewritten after each: setup (attnlab installed with
# --no-deps over the machine's own JAX, the wheels beside it; versions and devices), tests (the
# GPU-relevant ones), attention (bench.py attention with cudnn, to 16k), long_context, mfu and
# mqar (one short run at Zoology's width 128). OUT holds 7 files: a device call brings back 8.
# Scratch (logs, the MQAR workdir) goes to a temporary folder. PYTHON picks the interpreter
# (default python3: the machine's, which holds its JAX).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
if [ "${1:-}" = "--dry_run" ]; then DRY=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: bash scripts/device_check.sh [--dry_run] OUT" >&2
  exit 2
fi
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
# This checkout's attnlab in every section, whatever else the interpreter has installed.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
REPORT=(scripts/benchmarks/device_report.py)
DRY_FLAG=()

if [ $DRY = 1 ]; then
  # Tiny grids with generous limits: a loaded 2-core CI machine runs them.
  export JAX_PLATFORMS=cpu
  DRY_FLAG=(--dry_run)
  T_SETUP=300 T_TESTS=300 T_ATTENTION=300 T_LONG=300 T_MFU=300 T_MQAR=300
  TESTS=(tests/models/attention/dot_product_test.py -k "bfloat16 and causal and xla")
  ATTENTION=(--lengths 64 --impls xla chunked cudnn --batch 2 --heads 2 --repeats 1
             --timeout 240)
  LONG=(--lengths 32 --layers softmax gla --batch 2 --heads 2 --head_dim 8 --window 8 --repeats 1
        --timeout 240)
  MFU=(--d_model 32 --num_layers 1 --num_heads 2 --length 32 --batch 4 --steps 2 --matmul 128)
  MQAR=(--config experiments/mqar.py:smoke,model=decoder)
else
  # JAX fails loudly without CUDA instead of measuring the CPU.
  export JAX_PLATFORMS=cuda
  T_SETUP=60 T_TESTS=90 T_ATTENTION=100 T_LONG=80 T_MFU=70 T_MQAR=60  # 460 s at most
  # Every attention implementation (cudnn among them), bfloat16 wherever a model has the path,
  # padded equals unpadded for the decoder (RoPE), GLA, Mamba and Hawk: 62 tests, 4 workers (the
  # image has pytest-xdist; the GPU is shared without preallocation).
  TESTS=(-n 4 tests/models/attention/dot_product_test.py tests/models/transformer/blocks_test.py
         tests/models/mamba/block_test.py tests/models/hawk/block_test.py
         tests/models/linear_attention/layers_test.py tests/models/linear_attention/chunked_test.py
         tests/models/scan/lru_test.py tests/models/scan/mingru_test.py
         tests/models/rnn/layer_test.py tests/train/step_test.py tests/train/padding_test.py
         -k "dot_product_test or bfloat16 or bf16 or (padded_batches and (decoder-parity or gla or mamba or hawk))")
  ATTENTION=(--lengths 1024 4096 16384 --impls cudnn xla chunked torch --max_gb 60
             --repeats 5 --timeout 30)
  LONG=(--lengths 4096 16384 --layers softmax gla mamba hawk --repeats 3 --timeout 30)
  MFU=()  # its defaults: d_model 2048, 4 layers, length 2048, batch 16
  # Zoology's MQAR at width 128 (length 128, 16 pairs: experiments/mqar.py's full size), the
  # decoder with its short convolution; evaluated every 500 steps.
  MQAR=(--config experiments/mqar.py:model=decoder --config.model.d_model=128
        --config.model.conv_width=4 --config.optimizer.learning_rate=3e-3
        --config.num_steps=2000 --config.eval_every=500 --config.checkpoint_every=2000
        --config.log_every=250)
fi

# run_section NAME TIMEOUT DATA COMMAND...: runs COMMAND under TIMEOUT seconds (timeout(1) ends
# its whole process group), then records it.
run_section() {
  local name=$1 limit=$2 data=$3
  shift 3
  local log="$SCRATCH/$name.log" start rc cmd="$*"
  echo "== $name (at most ${limit}s): ${cmd:0:200}"
  start=$(date +%s%N)
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local ms=$((($(date +%s%N) - start) / 1000000))
  [ $rc = 0 ] || tail -n 6 "$log" | cut -c1-300
  "$PY" "${REPORT[@]}" record --out "$OUT" --section "$name" --rc "$rc" --log "$log" \
      --seconds "$((ms / 1000)).$(printf %03d $((ms % 1000)))" --timeout "$limit" \
      --data "$data" --command "$*" "${DRY_FLAG[@]}" || echo "device_check: $name not recorded"
  grep "^| $name |" "$OUT/summary.md"  # its row: the devices, the tests' counts, ...
  return $rc
}

if [ $DRY = 1 ]; then
  SETUP=("$PY" "${REPORT[@]}" describe "$SCRATCH/setup.json")
else
  SITE=/tmp/attnlab_site
  # The wheels go to SITE, ahead of the machine's packages (the checkout still runs should the
  # editable install fail: setup.json's versions then lack attnlab).
  export PYTHONPATH="$SITE:$PYTHONPATH"
  SETUP=(bash -c '
    ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/: run scripts/device_wheels.sh here first"; exit 1; }
    "$0" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$1" .whl/*.whl || exit 1
    "$0" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
        || echo "device_check: pip install -e . failed; attnlab runs from the checkout"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    exec "$0" scripts/benchmarks/device_report.py describe "$2" --expect gpu' \
    "$PY" "$SITE" "$SCRATCH/setup.json")
fi

if ! run_section setup $T_SETUP "$SCRATCH/setup.json" "${SETUP[@]}"; then
  echo "device_check: setup failed; nothing else would measure this machine (see $OUT/setup.json)"
  exit 1
fi
if [ $DRY = 0 ]; then
  export JAX_DISABLE_MOST_OPTIMIZATIONS=0  # tests/conftest.py's CPU shortcut: not on the device
  export XLA_PYTHON_CLIENT_PREALLOCATE=false  # for the tests; each benchmark child is alone
fi
run_section tests $T_TESTS "" "$PY" -m pytest -q -rfEs -p no:cacheprovider "${TESTS[@]}"
unset XLA_PYTHON_CLIENT_PREALLOCATE
run_section attention $T_ATTENTION "$SCRATCH/attention.json" "$PY" scripts/bench.py attention \
    --json "$SCRATCH/attention.json" --causal yes --dtype bfloat16 "${ATTENTION[@]}"
run_section long_context $T_LONG "$SCRATCH/long_context.json" "$PY" scripts/bench.py \
    long_context --json "$SCRATCH/long_context.json" --dtype bfloat16 "${LONG[@]}"
run_section mfu $T_MFU "$SCRATCH/mfu.json" "$PY" scripts/bench.py mfu \
    --json "$SCRATCH/mfu.json" "${MFU[@]}"
run_section mqar $T_MQAR "$SCRATCH/mqar" "$PY" scripts/train.py --workdir "$SCRATCH/mqar" \
    "${MQAR[@]}"
echo "== device_check: $OUT"
cat "$OUT/summary.md"
rm -rf "$SCRATCH"
exit 0
