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
# The command it runs (default OUT_DIR runs/pretrain/cpu_simclr):
#   OMP_NUM_THREADS=1 python -m promix_tutorial.pretrain --preset cpu --dataset cifar10 \
#     --out runs/pretrain/cpu_simclr --epochs 100 --warmup-epochs 5 --batch-size 512 \
#     --lr 0.12 --temperature 0.2 --checkpoint-every 5 --knn-bank 10000 --seed 0 [--resume]
# (`promix pretrain` with the same options once the command line has it.) The folder's
# manifest.json records the data, time, hardware, kNN accuracy per kept checkpoint and the
# sha256 of each backbone file.
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/runs/pretrain/cpu_simclr}"
RESUME=()
{ [ -f "$OUT/checkpoint.pt" ] || [ -f "$OUT/manifest.json" ]; } && RESUME=(--resume)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$ROOT"
exec python -m promix_tutorial.pretrain --preset cpu --dataset cifar10 --out "$OUT" \
  --epochs 100 --warmup-epochs 5 --batch-size 512 --lr 0.12 --temperature 0.2 \
  --checkpoint-every 5 --knn-bank 10000 --seed 0 "${RESUME[@]}"
