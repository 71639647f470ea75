#!/bin/bash
# The self-supervised start of the `cpu` preset's network (fast_cnn, widths 32/64/128): SimCLR
# on all 50,000 CIFAR-10 training images (no labels), 100 epochs at batch 512, lr 0.12 rising
# over 5 epochs then a cosine to 0, one CPU thread; a backbone and its kNN accuracy every 5
# epochs (memory bank: 10,000 training images, a seeded random subset; queries: all 10,000 test
# images). Resumable: run the same command again after an interruption (it adds --resume once
# the folder holds a checkpoint). Days on a 2-core CPU; minutes on a GPU.
#
#   PROMIX_CIFAR10_NPZ=/path/cifar10.npz bash benchmarks/pretrain_cpu.sh [OUT_DIR]
#
# The folder's manifest.json records the data, time, hardware, kNN accuracy per kept start, the
# sha256 of each backbone file and every command that ran it (docs/pretrain.md).
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/runs/pretrain/cpu_simclr}"
RESUME=()
{ [ -f "$OUT/checkpoint.pt" ] || [ -f "$OUT/manifest.json" ]; } && RESUME=(--resume)
cd "$ROOT"
exec promix pretrain --preset cpu --dataset cifar10 --out "$OUT" --epochs 100 --batch-size 512 \
  --seed 0 --threads "${OMP_NUM_THREADS:-1}" --set warmup_epochs=5 --set lr=0.12 \
  --set temperature=0.2 --set checkpoint_every=5 --set knn_bank=10000 "${RESUME[@]}"
