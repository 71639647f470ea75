"""The paper's CIFAR-10 tables at this machine's scale: the `cpu` preset (5,000-image stratified
subset of the offline CIFAR-10 copy, JPEG quality 75; narrow CNN; 25 epochs) on a CPU.

Cells (one results file each, benchmarks/results/accuracy_cpu/CELL.json):
- main: CE and ProMix at sym:0.5, sym:0.8, asym:0.4 and human:worst (CIFAR-10N), seeds 0 and 1;
- ablations: the six Table 5 rows at sym:0.8, seed 0.
A cell whose file exists is skipped, so the table fills in across sessions; an interrupted cell
resumes from its run folder (runs/accuracy_cpu/CELL). After each cell the markdown table
(benchmarks/results/accuracy_cpu.md) and README.md's Results section are rebuilt from the files.

Usage:
  python benchmarks/accuracy_cpu.py --list                 # cells and whether they are done
  python benchmarks/accuracy_cpu.py --cells main           # or ablations, all, or cell names
  python benchmarks/accuracy_cpu.py --table                # only rebuild the tables
  python benchmarks/accuracy_cpu.py --quick                # one small cell (1,000 images, 4
                                                           # epochs) into a temp folder
Needs PROMIX_CIFAR10_NPZ (from ../shared/tools/make_offline_cifar10.py) and, for human:worst,
PROMIX_CIFARN_DIR (the CIFAR-N label files).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from promix_tutorial.config import ABLATIONS, make_config
from promix_tutorial.results import cell_name, rebuild_table, run_cell, select_cells

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "accuracy_cpu"
TABLE = ROOT / "benchmarks" / "results" / "accuracy_cpu.md"
RUNS = ROOT / "runs" / "accuracy_cpu"
NOISES = ["sym:0.5", "sym:0.8", "asym:0.4", "human:worst"]
DATA = ("offline CIFAR-10 copy (JPEG quality 75, ../shared/tools/make_offline_cifar10.py), "
        "stratified 5,000 train / 2,000 test images")


def all_cells() -> dict[str, dict]:
    """name -> make_config keyword arguments."""
    cells = {}
    for noise in NOISES:
        for seed in (0, 1):
            for method in ("ce", "promix"):
                cells[cell_name(method, "none", noise, seed)] = dict(
                    noise=noise, seed=seed, method=method)
    for ablation in ABLATIONS:
        if ablation != "none":
            cells[cell_name("promix", ablation, "sym:0.8", 0)] = dict(
                noise="sym:0.8", seed=0, ablation=ablation)
    return cells


def select(names: list[str]) -> list[str]:
    cells = all_cells()
    return select_cells(cells, names, groups={
        "main": [c for c, kw in cells.items() if "ablation" not in kw],
        "ablations": [c for c, kw in cells.items() if "ablation" in kw]})


def train_cell(name: str, kw: dict, results: Path, runs: Path, **overrides) -> dict:
    kw = dict(kw)
    cfg = make_config("cpu", "cifar10", kw.pop("noise"), **kw, **overrides)
    command = "python benchmarks/accuracy_cpu.py --cells " + shlex.quote(name)
    return run_cell(cfg, runs / name, results, command, DATA)


def rebuild_tables() -> str:
    return rebuild_table(RESULTS, TABLE, "accuracy_cpu: CIFAR-10 (offline JPEG-75 copy), cpu "
                         "preset\n\nBuilt by `python benchmarks/accuracy_cpu.py --table` from "
                         "benchmarks/results/accuracy_cpu/*.json.", NOISES,
                         readme=ROOT / "README.md", marker="accuracy-cpu")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=None,
                    help="main, ablations, all, or cell names (see --list)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true", help="only rebuild the markdown tables")
    ap.add_argument("--quick", action="store_true",
                    help="one small ProMix cell (1,000 images, 4 epochs) in a temp folder")
    args = ap.parse_args(argv)
    if args.list:
        for name in all_cells():
            done = (RESULTS / f"{name}.json").is_file()
            print(f"{'done' if done else '    '}  {name}")
        return 0
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="promix-quick-"))
        name = cell_name("promix", "none", "sym:0.5", 0)
        rec = train_cell(name, all_cells()[name], tmp / "results", tmp / "runs", n_train=1000,
                       n_test=500, epochs=4, warmup_epochs=2, lga_start=3)
        print(f"quick cell {name}: final {rec['final_acc']:.2%}, best {rec['best_acc']:.2%}, "
              f"{rec['wall_seconds']:.0f} s; files in {tmp}")
        return 0
    if args.cells:
        cells = all_cells()
        for name in select(args.cells):
            if (RESULTS / f"{name}.json").is_file():
                print(f"[skip] {name}: results file exists")
                continue
            train_cell(name, cells[name], RESULTS, RUNS)
            rebuild_tables()
    print(rebuild_tables())
    return 0


if __name__ == "__main__":
    sys.exit(main())
