#!/bin/bash
# Time each notebook run top to bottom, in the profile PROMIX_PROFILE names (default cpu).
#
#   PROMIX_PROFILE=cpu bash benchmarks/notebook_times.sh OUT_DIR [NOTEBOOK_NAME ...]
#
# Executes notebooks/NAME.ipynb with `jupyter nbconvert --execute` (no cell time limit) into
# OUT_DIR (executed copies and logs; the notebooks in the repo are not touched) and appends one
# line per notebook to OUT_DIR/times.txt: name, exit status, wall seconds, finish time (UTC).
# Trained runs go to runs/PROFILE/ (config.runs_root). A notebook loads a finished run of the same
# config from anywhere under runs/ instead of training it again: for a from-scratch time, point
# PROMIX_RUNS_DIR at an empty folder.
# Needs PROMIX_CIFAR10_NPZ (and PROMIX_CIFARN_DIR for notebook 06) outside the ci profile.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: bash benchmarks/notebook_times.sh OUT_DIR [NOTEBOOK_NAME ...]}"
shift
export PROMIX_PROFILE="${PROMIX_PROFILE:-cpu}"
# a relative runs folder would be read from each notebook's own folder (the kernel's cwd)
[ -n "${PROMIX_RUNS_DIR:-}" ] && export PROMIX_RUNS_DIR="$(realpath -m "$PROMIX_RUNS_DIR")"
NOTEBOOKS=("$@")
if [ ${#NOTEBOOKS[@]} -eq 0 ]; then
  NOTEBOOKS=(04_full_promix_run 03_debiased_pseudo_labels 05_ablations 06_real_world_noise
             02_progressive_selection 01_noise_injection)
fi
for nb in "${NOTEBOOKS[@]}"; do
  if [ ! -f "$ROOT/notebooks/$nb.ipynb" ]; then
    echo "no notebook notebooks/$nb.ipynb: give names without .ipynb, e.g. 04_full_promix_run" >&2
    exit 2
  fi
done
mkdir -p "$OUT"
for nb in "${NOTEBOOKS[@]}"; do
  t0=$(date +%s)
  jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
    --output-dir "$OUT" "$ROOT/notebooks/$nb.ipynb" > "$OUT/$nb.log" 2>&1
  rc=$?
  echo "$nb rc=$rc seconds=$(( $(date +%s) - t0 )) finished=$(date -u +%H:%M)" >> "$OUT/times.txt"
done
