#!/usr/bin/env bash
# The checks only a GPU can make, as one command for a lent device machine (issue 5, item 3):
#   1. the CUDA tests (pytest -m cuda),
#   2. benchmarks/throughput.py for the fast and paper networks on CUDA,
#   3. benchmarks/accuracy_gpu.py --paper-epoch-time (per-epoch time, projected 600-epoch total),
#   4. accuracy_gpu.py cells (fast preset, full CIFAR-10) until CELL_MINUTES have passed.
# Everything lands in $OUT (the device tool brings it back; at most 8 files): log.txt,
# throughput_gpu.json, paper_epoch_time.json and accuracy_gpu/CELL.json for each new cell. Cells
# already in benchmarks/results/accuracy_gpu/ (committed by an earlier session) are skipped.
#
# The device machine gets the repository but not ../shared, so first, here:
#   bash benchmarks/device_check.sh --prepare     # copies the offline data into .device_data/
# then call the device tool's run with
#   command: bash benchmarks/device_check.sh   carry: [".device_data"]   timeout_s: 590
# and copy what comes back into benchmarks/results/ (cells into benchmarks/results/accuracy_gpu/),
# then `python benchmarks/accuracy_gpu.py --table`.
# Settings (environment): CELL_MINUTES (7): no cell starts after this many minutes of the script;
# SKIP_CHECKS=1 skips steps 1-3 (a second call for more cells); CELLS ("all"); PRESET (fast);
# THROUGHPUT_PRESETS ("fast paper"); THROUGHPUT_N (8192); THROUGHPUT_WORKERS (8); DEVICE (cuda); RESULTS_DIR
# (benchmarks/results/accuracy_gpu); DEVICE_DATA (.device_data). tests/test_benchmarks.py runs the
# whole script on a CPU with the tiny preset to check it before device time is spent on it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEV="${DEVICE_DATA:-$ROOT/.device_data}"
RESULTS_DIR="${RESULTS_DIR:-benchmarks/results/accuracy_gpu}"
PRESET="${PRESET:-fast}"

if [ "${1:-}" = "--prepare" ]; then
  SHARED="${PROMIX_SHARED_DIR:-$(dirname "$ROOT")/shared}"
  for f in tools/make_offline_cifar10.py data/cifar10-jpeg75.tar.gz \
           data/cifar10-train-order-labels.npy data/cifar-n/CIFAR-10_human.pt; do
    if [ ! -f "$SHARED/$f" ]; then
      echo "device_check.sh: $SHARED/$f is missing; set PROMIX_SHARED_DIR to the folder that" \
           "holds tools/ and data/ (see ../shared/README.md)" >&2
      exit 2
    fi
    mkdir -p "$DEV/$(dirname "$f")"
    cp "$SHARED/$f" "$DEV/$f"
  done
  echo "prepared $DEV ($(du -sh "$DEV" | cut -f1)); now run this script on the device with carry [\".device_data\"]"
  exit 0
fi
if [ ! -f "$DEV/data/cifar10-jpeg75.tar.gz" ]; then
  echo "device_check.sh: $DEV has no data: run 'bash benchmarks/device_check.sh --prepare' here" \
       "first and carry .device_data" >&2
  exit 2
fi

OUT="${OUT:-$ROOT/device_out}"
WORK="$(mktemp -d)"  # arrays file, run folders: not brought back
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
LOG="$OUT/log.txt"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }

say "device check $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi -L 2>&1 | tee -a "$LOG"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
          'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" \
  2>&1 | tee -a "$LOG"

if [ ! -f "${PROMIX_CIFAR10_NPZ:-}" ]; then
  "$PY" "$DEV/tools/make_offline_cifar10.py" "$WORK/cifar10_jpeg75.npz" 2>&1 | tee -a "$LOG"
  export PROMIX_CIFAR10_NPZ="$WORK/cifar10_jpeg75.npz"
fi
export PROMIX_CIFARN_DIR="$DEV/data/cifar-n"
export PROMIX_SHARED_DIR="$DEV"

if [ "${SKIP_CHECKS:-0}" != "1" ]; then
  say "1. CUDA tests"
  # only the files with CUDA tests: others import packages the device image may lack (ipywidgets)
  "$PY" -m pytest -q -m cuda -p no:cacheprovider $(grep -l "mark.cuda" tests/test_*.py) 2>&1 \
    | tail -n 15 | tee -a "$LOG"
  say "2. throughput"
  "$PY" benchmarks/throughput.py --presets ${THROUGHPUT_PRESETS:-fast paper} \
    --n "${THROUGHPUT_N:-8192}" --workers "${THROUGHPUT_WORKERS:-8}" --device "${DEVICE:-cuda}" \
    --out "$OUT/throughput_gpu.json" 2>&1 | tail -n 8 | tee -a "$LOG"
  say "3. paper-preset epoch time"
  "$PY" benchmarks/accuracy_gpu.py --paper-epoch-time --preset "$PRESET" --results "$OUT" 2>&1 \
    | tail -n 5 | tee -a "$LOG"
fi
ELAPSED_MIN=$(( ($(date +%s) - T0) / 60 ))
LEFT=$(( ${CELL_MINUTES:-7} - ELAPSED_MIN ))
if [ "$LEFT" -gt 0 ]; then
  say "4. accuracy cells (no cell starts after $LEFT more minutes)"
  touch "$WORK/cells_start"
  "$PY" benchmarks/accuracy_gpu.py --cells ${CELLS:-all} --max-minutes "$LEFT" --preset "$PRESET" \
    --results "$RESULTS_DIR" --runs "$WORK/runs" 2>&1 | grep -v "^|" | tee -a "$LOG"
  mkdir -p "$OUT/accuracy_gpu"
  find "$RESULTS_DIR" -name "*.json" -newer "$WORK/cells_start" \
    -exec cp {} "$OUT/accuracy_gpu/" \;
else
  say "4. no time left for accuracy cells (CELL_MINUTES=${CELL_MINUTES:-7})"
fi
say "done"
