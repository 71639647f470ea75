#!/usr/bin/env bash
# The checks only a GPU can make, as one command for a machine with a CUDA GPU:
#   0. a tiny ProMix run on CUDA; if it fails the script stops at once,
#   1. the CUDA tests (pytest -m cuda: device placement, no host sync in the step, the float16
#      + loss-scaling path of pre-Ampere GPUs such as Colab's T4 forced on this GPU),
#   2. benchmarks/step_profile.py: where a fast-preset ProMix step's time goes, images/s per
#      network, the augmentation's share, CUDA's count of host syncs,
#   3. benchmarks/throughput.py: augmentation on the GPU vs a PIL DataLoader, fast and paper
#      networks,
#   3b. benchmarks/probes/fast_recipe_probe.py: the fast preset's lr schedule variants, ProMix's
#      warm-up and PROBE_PROMIX_EPOCHS ProMix epochs, within PROBE_MINUTES; probes already
#      committed are skipped,
#   3c. benchmarks/gpu_sharing.py: how much more ProMix training the GPU does with 1, 2, 4 runs
#      side by side (skipped when a measurement of the same GPU is committed, or CELL_JOBS=1),
#   3d. with PRETRAIN_PRESETS="fast cpu": `promix pretrain` of each preset's network on the
#      50,000 training images (PretrainConfig's defaults, pretrain_cpu.sh's recipe; at most
#      PRETRAIN_EPOCHS epochs and PRETRAIN_MINUTES each; kept starts and kNN in checks.tar),
#      then START_CELLS (none) of the fast preset from the fast network's latest kept start,
#      into benchmarks/results/accuracy_gpu_start (start_cell_K.tar),
#   4. benchmarks/accuracy_gpu.py cells (fast preset, full CIFAR-10) that fit the deadline, as
#      many side by side as finish the most work in time (3c's slowdown on each time guess),
#   5. benchmarks/accuracy_gpu.py --paper-epoch-time if PAPER_RESERVE_S seconds are left,
#   6. with NOTEBOOKS="01_noise_injection 04_full_promix_run ...": benchmarks/notebook_times.sh
#      in the NOTEBOOK_PROFILE (gpu) profile from scratch, within the time left.
# Everything lands in $OUT as it is produced, so a call cut off still keeps what finished:
# log.txt, checks.tar (the results of steps 1-3, 3c, 5 and 6), probes.tar (step 3b), cell_K.tar
# per finished cell (results file + run folder without the checkpoint; K = 0-3, the fourth and
# later cells appended to cell_3.tar) and, while a cell runs, in_progress_history.json. Unpack
# them with `python benchmarks/device_results.py DIR`. Cells already in RESULTS_DIR are skipped.
#
# Usage: where the offline data is (the folder PROMIX_OFFLINE_DATA_DIR names, default the
# folder `shared` beside the checkout),
#   bash benchmarks/device_check.sh --prepare    # data and submitit -> .device_data/
# then, on the GPU machine, in a copy of the repository that includes .device_data/,
#   DEADLINE_S=540 bash benchmarks/device_check.sh
# and right after it, while the data is still cached, for more cells:
#   SKIP_TINY=1 SKIP_CHECKS=1 SKIP_PAPER=1 PAPER_RESERVE_S=0 DEADLINE_S=... \
#     bash benchmarks/device_check.sh
# or whole runs of a few schedule variants side by side: PROBE_JOBS=4 PROBE_PROMIX_EPOCHS=52
# PROBE_MINUTES=9 PROBE_VARIANTS="..." SKIP_CELLS=1 (with the SKIP_ settings above).
#   bash benchmarks/device_check.sh --dry-run    # the steps and commands these settings run
#   bash benchmarks/device_check.sh --help       # this text
# Settings (environment):
#   DEADLINE_S (450): the script's own time budget in seconds; cells, the paper timing and the
#     notebooks are scheduled to end inside it; PAPER_RESERVE_S (80);
#   SKIP_TINY=1 skips step 0, SKIP_CHECKS=1 steps 1-3, SKIP_PROBES=1 step 3b, SKIP_CELLS=1 steps
#     3c and 4, SKIP_PAPER=1 step 5;
#   CELLS ("all"); CELL_JOBS (auto: as many cells side by side as finish the most work by the
#     deadline, from step 3c's measurement; N: that many; 1: one after another, no step 3c);
#   FIRST_GUESS ("4.7 1.1": expected minutes of a ProMix and a CE cell alone when neither step 2
#     nor step 3c measured this GPU: the archived H100 cells' times, rounded up);
#   SHARING_PROCESSES ("1 2 4"), SHARING_EPOCHS (3): step 3c;
#   PRESET (fast); DEVICE (cuda); PROFILE_N (12288); THROUGHPUT_PRESETS ("fast paper");
#   THROUGHPUT_N (8192); THROUGHPUT_WORKERS (16); RESULTS_DIR (benchmarks/results/accuracy_gpu);
#   DEVICE_DATA (.device_data); DATA_CACHE (/tmp/promix-device-cache: where the arrays file is
#     made, and found by a later call on the same machine); OUT (device_out); PYTHON (python3);
#   PROBE_MINUTES (3); PROBE_VARIANTS ("all"); PROBE_NOISES ("sym:0.8"); PROBE_PROMIX_EPOCHS (4);
#     PROBE_JOBS (1: probes side by side); PROBE_SET (--set options, for tests);
#     PROBE_RESULTS (benchmarks/probes/results/fast_recipe_probe);
#   PRETRAIN_PRESETS (none: step 3d skipped), PRETRAIN_EPOCHS (100), PRETRAIN_MINUTES (3),
#     START_CELLS (none; e.g. "promix__sym0.8__seed0 ce__sym0.8__seed0");
#   NOTEBOOKS (none: step 6 skipped), NOTEBOOK_PROFILE (gpu);
#   at --prepare: NOTEBOOK_WHEELS=1 (downloads benchmarks/device_notebook_wheels.txt, ~18 MB,
#     Jupyter for step 6 where the GPU machine's Python has none).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEV="${DEVICE_DATA:-$ROOT/.device_data}"
RESULTS_DIR="${RESULTS_DIR:-benchmarks/results/accuracy_gpu}"
PRESET="${PRESET:-fast}"
DEADLINE_S="${DEADLINE_S:-450}"
PAPER_RESERVE_S="${PAPER_RESERVE_S:-80}"
DRY_RUN=0
case "${1:-}" in
  -h|--help) sed -n '2,/^set -uo/p' "$ROOT/benchmarks/device_check.sh" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  --dry-run) DRY_RUN=1 ;;
  --prepare|"") ;;
  *) echo "device_check.sh: unknown option $1 (--prepare, --dry-run or --help)" >&2; exit 2 ;;
esac
# every script a step runs: a missing one stops the call before any GPU time is spent
for f in tests/test_train.py benchmarks/step_profile.py benchmarks/throughput.py \
         benchmarks/probes/fast_recipe_probe.py benchmarks/gpu_sharing.py \
         benchmarks/accuracy_gpu.py benchmarks/notebook_times.sh; do
  [ -f "$f" ] || { echo "device_check.sh: $f is missing from this checkout" >&2; exit 2; }
done

if [ "${1:-}" = "--prepare" ]; then
  SHARED="${PROMIX_OFFLINE_DATA_DIR:-$(dirname "$ROOT")/shared}"
  for f in tools/make_offline_cifar10.py data/cifar10-jpeg75.tar.gz \
           data/cifar10-train-order-labels.npy data/cifar-n/CIFAR-10_human.pt; do
    if [ ! -f "$SHARED/$f" ]; then
      echo "device_check.sh: $SHARED/$f is missing; set PROMIX_OFFLINE_DATA_DIR to the folder" \
           "that holds the offline data's tools/ and data/" >&2
      exit 2
    fi
    mkdir -p "$DEV/$(dirname "$f")"
    cp "$SHARED/$f" "$DEV/$f"
  done
  # the cell runner's submitit (pure Python, with cloudpickle), which the GPU machine's Python
  # may lack: copied from the first Python here that has it into $DEV/pylib (on PYTHONPATH there)
  for py in ${PYTHON:-} "$ROOT/.venv/bin/python" python3; do
    if "$py" -c "import submitit, cloudpickle" 2>/dev/null; then
      "$py" - "$DEV/pylib" <<'PY'
import shutil, sys
from pathlib import Path
import cloudpickle, submitit
for module in (submitit, cloudpickle):
    src = Path(module.__file__).parent
    shutil.copytree(src, Path(sys.argv[1]) / src.name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
PY
      break
    fi
  done
  if [ ! -d "$DEV/pylib/submitit" ]; then
    echo "device_check.sh: no Python here imports submitit; pip install submitit, or set PYTHON" >&2
    exit 2
  fi
  if [ "${NOTEBOOK_WHEELS:-0}" = "1" ]; then  # Jupyter for step 6, for the GPU machine's Python
    PIP_PY="${PYTHON:-$ROOT/.venv/bin/python}"
    [ -x "$PIP_PY" ] || PIP_PY=python3
    if ! "$PIP_PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
         --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
         --platform manylinux_2_26_x86_64 --platform manylinux_2_17_x86_64 \
         --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
         -d "$DEV/wheels" -r benchmarks/device_notebook_wheels.txt; then
      echo "device_check.sh: could not download the wheels of benchmarks/device_notebook_wheels.txt" \
           "(pip needs the package index)" >&2
      exit 2
    fi
  fi
  echo "prepared $DEV ($(du -sh "$DEV" | cut -f1)); now run this script on the GPU machine in a" \
       "copy of the repository that includes .device_data/"
  exit 0
fi
UNPREPARED=""
if [ ! -f "$DEV/data/cifar10-jpeg75.tar.gz" ] || [ ! -d "$DEV/pylib/submitit" ]; then
  UNPREPARED="$DEV has no data (or no pylib/submitit): run 'bash benchmarks/device_check.sh"
  UNPREPARED+=" --prepare' where the offline data is, and copy .device_data with the repository"
  if [ "$DRY_RUN" != 1 ]; then
    echo "device_check.sh: $UNPREPARED" >&2
    exit 2
  fi
fi

WORK="$(mktemp -d)"  # arrays file, run folders: not kept
trap 'rm -rf "$WORK"' EXIT
OUT="${OUT:-$ROOT/device_out}"
[ "$DRY_RUN" = 1 ] && OUT="$WORK/out"  # a dry run writes nothing that stays
mkdir -p "$OUT" "$WORK/checks"
LOG="$OUT/log.txt"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT:$DEV/pylib${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "[$(elapsed) s] $*" | tee -a "$LOG"; }
pack_checks() { tar -cf "$OUT/checks.tar.part" -C "$WORK" checks && mv "$OUT/checks.tar.part" "$OUT/checks.tar"; }
run() {  # a step's command; in a dry run, the line saying what it would run
  if [ "$DRY_RUN" = 1 ]; then echo "[dry run] $*"; else "$@"; fi
}

say "device check $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), deadline ${DEADLINE_S} s"
if [ "$DRY_RUN" = 1 ]; then
  say "dry run: the steps and commands of a call with these settings; nothing runs"
  [ -n "$UNPREPARED" ] && say "a real call would stop here: $UNPREPARED"
else
  { nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true; } | tee -a "$LOG"
  "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda,
            'torchvision', torchvision.__version__,
            'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" \
    2>&1 | tee -a "$LOG" "$WORK/checks/versions.txt"
fi

if [ ! -f "${PROMIX_CIFAR10_NPZ:-}" ]; then
  # kept outside $WORK: a second call on the same machine reuses it
  CACHE="${DATA_CACHE:-/tmp/promix-device-cache}"
  if [ -f "$CACHE/cifar10_jpeg75.npz" ]; then
    say "the arrays file of an earlier call on this machine: $CACHE/cifar10_jpeg75.npz"
  else
    say "the arrays file, made once per machine: $CACHE/cifar10_jpeg75.npz"
    [ "$DRY_RUN" = 1 ] || mkdir -p "$CACHE"
    run "$PY" "$DEV/tools/make_offline_cifar10.py" "$CACHE/cifar10_jpeg75.part.npz" 2>&1 \
      | tee -a "$LOG" && { [ "$DRY_RUN" = 1 ] \
        || mv "$CACHE/cifar10_jpeg75.part.npz" "$CACHE/cifar10_jpeg75.npz"; }
  fi
  export PROMIX_CIFAR10_NPZ="$CACHE/cifar10_jpeg75.npz"
fi
export PROMIX_CIFARN_DIR="$DEV/data/cifar-n"
export PROMIX_OFFLINE_DATA_DIR="$DEV"

if [ "${SKIP_TINY:-0}" = "1" ]; then
  say "0. tiny CUDA run skipped (SKIP_TINY=1)"
else
say "0. a tiny ProMix run on CUDA"
run "$PY" -m pytest -q -p no:cacheprovider "tests/test_train.py::test_tiny_run_on_cuda" \
  > "$WORK/checks/tiny_cuda_run.txt" 2>&1
RC=$?
tail -n 3 "$WORK/checks/tiny_cuda_run.txt" | tee -a "$LOG"
if [ "$RC" -ne 0 ]; then
  tail -n 40 "$WORK/checks/tiny_cuda_run.txt" | tee -a "$LOG"
  pack_checks
  say "ABORT: the tiny CUDA run failed; fix it before spending GPU time on the rest"
  exit 3
fi
fi

if [ "${SKIP_CHECKS:-0}" != "1" ]; then
  say "1. CUDA tests"
  # only the files with CUDA tests: others import packages the GPU machine may lack (ipywidgets)
  run "$PY" -m pytest -q -m cuda -p no:cacheprovider -rs $(grep -l "mark.cuda" tests/test_*.py) \
    > "$WORK/checks/cuda_tests.txt" 2>&1
  tail -n 12 "$WORK/checks/cuda_tests.txt" | tee -a "$LOG"
  pack_checks
  say "2. step profile"
  run "$PY" benchmarks/step_profile.py --preset "$PRESET" --n "${PROFILE_N:-12288}" \
    --device "${DEVICE:-cuda}" --out "$WORK/checks/step_profile_$PRESET.json" 2>&1 \
    | grep -v "^USDT\|gpuGetDeviceCount" | tail -n 12 | tee -a "$LOG"
  pack_checks
  say "3. throughput"
  run "$PY" benchmarks/throughput.py --presets ${THROUGHPUT_PRESETS:-fast paper} \
    --n "${THROUGHPUT_N:-8192}" --workers "${THROUGHPUT_WORKERS:-16}" --device "${DEVICE:-cuda}" \
    --out "$WORK/checks/throughput_gpu.json" 2>&1 | grep -v "^USDT\|gpuGetDeviceCount" \
    | tail -n 6 | tee -a "$LOG"
  pack_checks
fi

if [ "${SKIP_PROBES:-0}" != "1" ]; then
  say "3b. fast-preset schedule probes (warm-up + ${PROBE_PROMIX_EPOCHS:-4} ProMix epochs, at most ${PROBE_MINUTES:-3} min)"
  run "$PY" benchmarks/probes/fast_recipe_probe.py --preset "$PRESET" --variants ${PROBE_VARIANTS:-all} \
    --noises ${PROBE_NOISES:-sym:0.8} --promix-epochs "${PROBE_PROMIX_EPOCHS:-4}" \
    --deadline-minutes "${PROBE_MINUTES:-3}" --jobs "${PROBE_JOBS:-1}" \
    --results "${PROBE_RESULTS:-benchmarks/probes/results/fast_recipe_probe}" --pack-to "$OUT" \
    ${PROBE_SET:-} 2>&1 | grep -v "^USDT\|gpuGetDeviceCount" | tee -a "$LOG"
fi

# the self-supervised starts (docs/pretrain.md): a start cut off by its time limit keeps the
# backbones and manifest of its last kept checkpoint
for preset in ${PRETRAIN_PRESETS:-}; do
  say "3d. self-supervised start of the $preset network (at most ${PRETRAIN_MINUTES:-3} min)"
  run timeout "$(( ${PRETRAIN_MINUTES:-3} * 60 ))" "$PY" -m promix_tutorial.cli pretrain \
    --preset "$preset" --dataset cifar10 --out "$WORK/checks/pretrain_$preset" \
    --epochs "${PRETRAIN_EPOCHS:-100}" --device "${DEVICE:-cuda}" --quiet 2>&1 \
    | grep -v "^USDT\|gpuGetDeviceCount" | tail -n 4 | tee -a "$LOG"
  rm -f "$WORK/checks/pretrain_$preset/checkpoint.pt"  # the starts are kept, not the optimiser
  pack_checks
done
START_FILE=$(ls -t "$WORK"/checks/pretrain_fast/backbone*.pt 2>/dev/null | head -n 1)
[ "$DRY_RUN" = 1 ] && START_FILE="$WORK/checks/pretrain_fast/backbone_eNNN.pt"
if [ -n "${START_CELLS:-}" ] && [ -n "$START_FILE" ]; then
  say "3e. fast cells from the start $(basename "$START_FILE"): $START_CELLS"
  mkdir -p "$WORK/start_pack"
  run "$PY" benchmarks/accuracy_gpu.py --start "$START_FILE" --cells $START_CELLS \
    --preset "$PRESET" --results benchmarks/results/accuracy_gpu_start --runs "$WORK/start_runs" \
    --pack-to "$WORK/start_pack" 2>&1 | grep -v "^|\|^USDT\|gpuGetDeviceCount" | tee -a "$LOG"
  for t in "$WORK"/start_pack/cell_*.tar; do [ -f "$t" ] && cp "$t" "$OUT/start_$(basename "$t")"; done
fi

# how many cells to train side by side on the one GPU: measured once per GPU model (a committed
# measurement of the same GPU is reused), unless CELL_JOBS=1 (one cell after another)
SIDE_BY_SIDE=()
if [ "${CELL_JOBS:-auto}" != "1" ] && [ "${SKIP_CELLS:-0}" != "1" ]; then
  SHARING="benchmarks/results/gpu/gpu_sharing_${PRESET}_gpu.json"
  if [ -f "$SHARING" ] && "$PY" -c "import json, sys, torch
sys.exit(json.load(open('$SHARING'))['device_name'] != (torch.cuda.get_device_name(0)
         if torch.cuda.is_available() else 'cpu'))" 2>/dev/null; then
    say "3c. runs side by side: the committed measurement of this GPU ($SHARING)"
  else
    say "3c. runs side by side: measuring ${SHARING_PROCESSES:-1 2 4} ProMix runs at once"
    SHARING="$WORK/checks/gpu_sharing_$PRESET.json"
    run "$PY" benchmarks/gpu_sharing.py --preset "$PRESET" --n "${PROFILE_N:-12288}" \
      --epochs "${SHARING_EPOCHS:-3}" --processes ${SHARING_PROCESSES:-1 2 4} \
      --device "${DEVICE:-cuda}" --out "$SHARING" 2>&1 | grep -v "^USDT\|gpuGetDeviceCount" \
      | tee -a "$LOG"
    pack_checks
  fi
  SIDE_BY_SIDE=(--launcher local --sharing "$SHARING")
  [ "${CELL_JOBS:-auto}" != "auto" ] && SIDE_BY_SIDE+=(--jobs "$CELL_JOBS")
fi

# the cells' time guesses: this GPU's measured throughput (step 2, else step 3c's one process)
GUESS_FROM="$WORK/checks/step_profile_$PRESET.json"
[ ! -f "$GUESS_FROM" ] && [ -n "${SHARING:-}" ] && [ -f "$SHARING" ] && GUESS_FROM="$SHARING"
LEFT_MIN=$(awk "BEGIN { printf \"%.2f\", ($DEADLINE_S - $(elapsed) - $PAPER_RESERVE_S) / 60 }")
if [ "${SKIP_CELLS:-0}" = "1" ]; then
  say "4. accuracy cells skipped (SKIP_CELLS=1)"
else
  say "4. accuracy cells (each starts only if expected to end within $LEFT_MIN min)"
fi
if [ "${SKIP_CELLS:-0}" != "1" ] && awk "BEGIN { exit !($LEFT_MIN > 0) }"; then
  # the history of the cell in progress, every 15 s: a call cut short still keeps its epochs
  WATCH=""
  if [ "$DRY_RUN" != 1 ]; then
    ( while sleep 15; do
        h=$(ls -t "$WORK"/runs/*/history.json 2>/dev/null | head -n 1)
        [ -n "$h" ] && cp "$h" "$OUT/in_progress_history.json.part" \
          && mv "$OUT/in_progress_history.json.part" "$OUT/in_progress_history.json"
      done ) &
    WATCH=$!
  fi
  run "$PY" benchmarks/accuracy_gpu.py --cells ${CELLS:-all} --deadline-minutes "$LEFT_MIN" \
    --guess-from "$GUESS_FROM" --first-guess-minutes ${FIRST_GUESS:-4.7 1.1} \
    --preset "$PRESET" --results "$RESULTS_DIR" --runs "$WORK/runs" --pack-to "$OUT" \
    ${SIDE_BY_SIDE[@]+"${SIDE_BY_SIDE[@]}"} 2>&1 \
    | grep -v "^|\|^USDT\|gpuGetDeviceCount" | tee -a "$LOG"
  [ -n "$WATCH" ] && kill "$WATCH" 2>/dev/null
  rm -f "$OUT/in_progress_history.json"  # every finished cell is in its cell_K.tar
  # cells side by side write their tracebacks to submitit's logs, which are not kept
  for f in "$WORK"/runs/logs/*_log.out; do
    [ -f "$f" ] && grep -q "Traceback" "$f" && { say "log of a failed cell: $f"; tail -n 30 "$f" | tee -a "$LOG"; }
  done
fi

if [ "${SKIP_PAPER:-0}" = "1" ]; then
  say "5. paper-preset epoch time skipped (SKIP_PAPER=1)"
elif [ $(( DEADLINE_S - $(elapsed) )) -ge "$PAPER_RESERVE_S" ]; then
  say "5. paper-preset epoch time"
  run "$PY" benchmarks/accuracy_gpu.py --paper-epoch-time --preset "$PRESET" \
    --results "$WORK/checks" 2>&1 | grep -v "^USDT\|gpuGetDeviceCount" | tail -n 5 | tee -a "$LOG"
  pack_checks
else
  say "5. paper-preset epoch time skipped: fewer than $PAPER_RESERVE_S s left"
fi
if [ -n "${NOTEBOOKS:-}" ]; then
  LEFT_S=$(( DEADLINE_S - $(elapsed) ))
  say "6. notebook times, PROMIX_PROFILE=${NOTEBOOK_PROFILE:-gpu}, from scratch: $NOTEBOOKS (at most $LEFT_S s)"
  if [ "$DRY_RUN" != 1 ] && ! "$PY" -c "import nbconvert, ipykernel, ipywidgets" 2>/dev/null \
      && [ -d "$DEV/wheels" ]; then
    SITE="${DATA_CACHE:-/tmp/promix-device-cache}/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$DEV"/wheels/*.whl 2>&1 | tail -n 3 | tee -a "$LOG"
    export PYTHONPATH="$PYTHONPATH:$SITE" PATH="$SITE/bin:$PATH"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    run bash benchmarks/notebook_times.sh OUT $NOTEBOOKS | tee -a "$LOG"
  elif ! "$PY" -c "import nbconvert, ipykernel, ipywidgets" 2>/dev/null; then
    say "6. skipped: no Jupyter here (NOTEBOOK_WHEELS=1 bash benchmarks/device_check.sh --prepare copies it)"
  elif [ "$LEFT_S" -le 0 ]; then
    say "6. skipped: no time left before the deadline"
  else
    # notebook_times.sh calls `jupyter`: the one beside this Python first
    export PATH="$("$PY" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"
    NB_TIMES="$WORK/checks/notebook_times.txt"
    { echo "# Wall time of each notebook, top to bottom, PROMIX_PROFILE=${NOTEBOOK_PROFILE:-gpu}, from scratch"
      echo "# (the notebooks after the first reuse the runs of those before them, as in notebook_times.sh)."
      echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
      echo "# $(head -n 2 "$WORK/checks/versions.txt" | tr '\n' ' ')"
      echo "# offline CIFAR-10 copy (JPEG quality 75), seed 0; made by benchmarks/device_check.sh step 6:"
      echo "# NOTEBOOKS=\"$NOTEBOOKS\" bash benchmarks/device_check.sh (notebook_times.sh under timeout $LEFT_S s)"
    } > "$NB_TIMES"
    JUPYTER_RUNTIME_DIR="$WORK/jupyter" PROMIX_PROFILE="${NOTEBOOK_PROFILE:-gpu}" \
      PROMIX_RUNS_DIR="$WORK/notebook_runs" timeout "$LEFT_S" \
      bash benchmarks/notebook_times.sh "$WORK/notebooks" $NOTEBOOKS > /dev/null 2>&1
    RC=$?
    [ -f "$WORK/notebooks/times.txt" ] && cat "$WORK/notebooks/times.txt" >> "$NB_TIMES"
    [ "$RC" -eq 124 ] && echo "# cut off at the deadline during the next notebook" >> "$NB_TIMES"
    tail -n +7 "$NB_TIMES" | tee -a "$LOG"
    grep -v " rc=0 " "$WORK/notebooks/times.txt" 2>/dev/null | while read -r nb _; do
      say "log of $nb, which failed:"; tail -n 20 "$WORK/notebooks/$nb.log" | tee -a "$LOG"
    done
    pack_checks
  fi
fi
say "done"
