"""Notebook 05's seven ablation rows at a profile's ablation-study scale, outside Jupyter.

Why it exists: it is how the `cpu` profile's noise for notebook 05 was chosen. At 80% symmetric
noise on 2,000 images / 12 epochs every row ends near chance; at 50% "w/o Base Selection"
collapses as in the paper (results in benchmarks/results/ablation_rows_cpu_*.txt).

  python benchmarks/ablation_rows.py --profile cpu --noise sym:0.5 --out runs/ablation_rows

Prints one line per row (last and best test accuracy, final selection F1, labeled-set size, wall
seconds). Runs go to OUT/PROFILE/NOISE/ABLATION; a finished run there is loaded, not retrained.
Needs PROMIX_CIFAR10_NPZ outside the ci profile.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from promix_tutorial.config import ABLATION_LABELS, ablation_study_configs
from promix_tutorial.train import train_or_load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu", choices=["gpu", "cpu", "ci"])
    ap.add_argument("--noise", default=None, help="default: the profile's (config.ABLATION_STUDY)")
    ap.add_argument("--rows", nargs="+", default=None, choices=list(ABLATION_LABELS),
                    help="ablation keys to run (default: all seven)")
    ap.add_argument("--epochs", type=int, default=None, help="shorter runs (smoke tests)")
    ap.add_argument("--out", default="runs/ablation_rows")
    args = ap.parse_args(argv)
    configs = ablation_study_configs(args.profile, args.noise)
    for label, cfg in configs.items():
        if args.rows and cfg.ablation not in args.rows:
            continue
        if args.epochs:
            cfg = cfg.replace(epochs=args.epochs, warmup_epochs=min(cfg.warmup_epochs, args.epochs - 1),
                              lga_start=min(cfg.lga_start, args.epochs - 1))
        t0 = time.time()
        run = train_or_load(cfg, Path(args.out) / args.profile / cfg.noise.replace(":", "")
                            / cfg.ablation, progress=False)
        sel = run.records[-1]["selection"]
        print(f"{label:>20}: last {run.final_accuracy():.2%} best {run.best_accuracy():.2%} "
              f"F1 {sel['union']['f1']:.3f} labeled {sel['labeled']['count']} "
              f"({time.time() - t0:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
