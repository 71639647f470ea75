"""Notebook 05's seven ablation rows at a profile's ablation-study scale, outside Jupyter.

  python benchmarks/ablation_rows.py --profile cpu --noise sym:0.5 --out runs/ablation_rows
  python benchmarks/ablation_rows.py --profile cpu --noise sym:0.5 --launcher local --jobs 2
  python benchmarks/ablation_rows.py --profile ci --seeds 0 1 2 3 4    # Table 5 with a seed spread

Prints one line per row and seed (last and best test accuracy, final selection F1, labeled-set
size, wall seconds) and, with several seeds, Table 5 with the seed spread (`tables.ablation_table`
over every results file in OUT/PROFILE/results). Runs go to OUT/PROFILE/NOISE/ABLATION/seedN,
each row's results file to OUT/PROFILE/results/; a row whose results file exists is not retrained
(an interrupted one resumes). The rows run through the package's one runner (`cells.run_cells`):
one after another in this process by default, in parallel with --launcher local or slurm.
Needs PROMIX_CIFAR10_NPZ outside the ci profile.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from promix_tutorial.config import ABLATION_LABELS
from promix_tutorial.profiles import ablation_study_configs
from promix_tutorial.runs import RunHistory
from promix_tutorial.results import load_cells
from promix_tutorial.tables import ablation_table
from promix_tutorial.cli import add_launcher_args
from promix_tutorial.cells import launcher_from_args, make_cell, run_cells


def row_line(label: str, cell, record: dict) -> str:
    sel = RunHistory(cell.run_dir).records[-1]["selection"]
    return (f"{label:>20} seed {cell.config.seed}: last {record['final_acc']:.2%} "
            f"best {record['best_acc']:.2%} F1 {sel['union']['f1']:.3f} "
            f"labeled {sel['labeled']['count']} ({record['wall_seconds']:.0f}s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu", choices=["gpu", "cpu", "ci"])
    ap.add_argument("--noise", default=None, help="default: the profile's (profiles.ABLATION_STUDY)")
    ap.add_argument("--rows", nargs="+", default=None, choices=list(ABLATION_LABELS),
                    help="ablation keys to run (default: all seven)")
    ap.add_argument("--epochs", type=int, default=None, help="shorter runs (smoke tests)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="seeds of every row (default: 0); with more than one, a Table 5 with the "
                         "seed spread (tables.ablation_table) is printed at the end")
    ap.add_argument("--out", default="runs/ablation_rows")
    add_launcher_args(ap, default="inline")
    args = ap.parse_args(argv)
    out = Path(args.out) / args.profile
    cells, labels = [], {}
    rows = [(label, cfg.replace(seed=seed)) for seed in args.seeds
            for label, cfg in ablation_study_configs(args.profile, args.noise).items()]
    for label, cfg in rows:
        if args.rows and cfg.ablation not in args.rows:
            continue
        if args.epochs:
            cfg = cfg.replace(epochs=args.epochs, warmup_epochs=min(cfg.warmup_epochs, args.epochs - 1),
                              lga_start=min(cfg.lga_start, args.epochs - 1))
        command = (f"python benchmarks/ablation_rows.py --profile {args.profile} --noise "
                   f"{cfg.noise} --rows {cfg.ablation} --seeds {cfg.seed}"
                   + (f" --epochs {args.epochs}" if args.epochs else ""))
        cell = make_cell(cfg, out / cfg.noise.replace(":", "") / cfg.ablation / f"seed{cfg.seed}",
                         out / "results", command, cfg.dataset)
        cells.append(cell)
        labels[cell.name] = label
    try:
        launcher = launcher_from_args(args, cells, out / "logs", gpus=int(args.profile == "gpu"),
                                      name="ablation-rows")
    except ValueError as e:
        ap.error(str(e))
    for cell in cells:  # rows finished earlier
        if cell.finished:
            record = json.loads(cell.result_path.read_text())
            print(row_line(labels[cell.name], cell, record), flush=True)
    report = run_cells(cells, launcher, lines=False, on_done=lambda cell, record: print(
        row_line(labels[cell.name], cell, record), flush=True))
    if len(args.seeds) > 1 and cells:
        print()
        print(ablation_table(load_cells(out / "results"), cells[0].config.noise))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
