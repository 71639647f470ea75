"""The paper's CIFAR-10 tables at a laptop's scale: the `cpu` preset (a stratified 5,000-image
subset of the offline CIFAR-10 copy, JPEG quality 75; a narrow CNN; 35 epochs, one-cycle lr) on
a CPU.

Cells (one results file each, benchmarks/results/accuracy_cpu/CELL.json):
- main: CE and ProMix at sym:0.5, sym:0.8, asym:0.4 and human:worst (CIFAR-10N), seeds 0, 1, 2;
- nearest: CE and ProMix at sym:0.7 and sym:0.6, seeds 0, 1, 2: the symmetric rates below 80%,
  where ProMix's lead over CE returns at this scale (docs/calibration.md#cpu-sym80);
- ablations: the six Table 5 rows at asym:0.4, seeds 0, 1, 2 (at sym:0.8 ProMix itself learns
  no more than CE at this scale, so its rows could not differ). Notebook 03's and 05's cpu runs
  are these cells' configs, so the notebooks load them instead of training again.
With ``--start START`` (a `promix pretrain` start; ``cpu-simclr`` is the one shipped) every
network starts from it, into benchmarks/results/accuracy_cpu_start/ (table
accuracy_cpu_start.md, beside the scratch cells): groups start (CE and ProMix at sym:0.8 and
sym:0.9, seeds 0, 1, 2), start_ablations (the six Table 5 rows at sym:0.8) and start_rules
(Fig. 3 as the paper drew it: ProMix's loop with DivideMix's GMM rule and with the small-loss
rule as its selection, each its own run at sym:0.8; their threshold and forget rate are tuned
once from the committed ProMix cells, `rule_setting`, so run the start group first).
A cell whose file exists is skipped; an interrupted cell resumes from its run folder
(runs/accuracy_cpu/CELL). After each cell the tables (benchmarks/results/accuracy_cpu.md) are
rebuilt from the files; `python docs/build_results.py` then rebuilds README's table and
docs/results.md. The archived cells of the preset before its calibration are in
benchmarks/results/accuracy_cpu_2026-11-26/.

Cells run through the package's one runner (`cells.run_cells`): one after another in this
process by default; `--launcher local --jobs N` runs N cells at a time (their recorded wall
times then include the sharing of the cores), `--launcher slurm` on a cluster.

Usage:
  python benchmarks/accuracy_cpu.py --list                 # cells and whether they are done
  python benchmarks/accuracy_cpu.py --cells main           # or nearest, ablations, all, or names
  python benchmarks/accuracy_cpu.py --cells all --launcher local --jobs 2
  python benchmarks/accuracy_cpu.py --table                # only rebuild the tables
  python benchmarks/accuracy_cpu.py --start cpu-simclr --cells start
  python benchmarks/accuracy_cpu.py --start cpu-simclr --cells start_rules
  python benchmarks/accuracy_cpu.py --quick                # one small cell (1,000 images, 4
                                                           # epochs) into a temp folder
Needs PROMIX_CIFAR10_NPZ (an arrays file, `promix data`) and, for human:worst,
PROMIX_CIFARN_DIR (the CIFAR-N label files).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from promix_tutorial.config import ABLATIONS, RULE_SETTING, make_config
from promix_tutorial.results import (RULE_LABELS, add_missing_claims, cell_name, load_cells,
                                     rule_tuning, select_cells, write_if_changed)
from promix_tutorial.tables import rebuild_table, start_table
from promix_tutorial.cli import add_launcher_args
from promix_tutorial.cells import Cell, launcher_from_args, make_cell, run_cells
from promix_tutorial.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "accuracy_cpu"
TABLE = ROOT / "benchmarks" / "results" / "accuracy_cpu.md"
RUNS = ROOT / "runs" / "accuracy_cpu"
NOISES = ["sym:0.5", "sym:0.8", "asym:0.4", "human:worst"]
NEAREST_NOISES = ["sym:0.7", "sym:0.6"]   # see the docstring: symmetric rates below sym:0.8
DATA = ("offline CIFAR-10 copy (JPEG quality 75, original training order), stratified 5,000 "
        "train / 2,000 test images")
# the groups of cells: CE and ProMix in every column, the nearest rate, the Table 5 rows
MAIN = Sweep(presets=("cpu",), noises=tuple(NOISES), seeds=(0, 1, 2), methods=("ce", "promix"))
NEAREST = Sweep(presets=("cpu",), noises=tuple(NEAREST_NOISES), seeds=(0, 1, 2),
                methods=("ce", "promix"))
TABLE5_NOISE = "asym:0.4"   # see the docstring
TABLE5 = Sweep(presets=("cpu",), noises=(TABLE5_NOISE,), seeds=(0, 1, 2),
               ablations=tuple(a for a in ABLATIONS if a != "none"))


GROUPS = {"main": MAIN, "nearest": NEAREST, "ablations": TABLE5}
# from a self-supervised start: the paper's high noise, where scratch ProMix trails CE
START_NOISES = ["sym:0.8", "sym:0.9"]
START_GROUPS = {
    "start": Sweep(presets=("cpu",), noises=tuple(START_NOISES), seeds=(0, 1, 2),
                   methods=("ce", "promix")),
    "start_ablations": Sweep(presets=("cpu",), noises=("sym:0.8",), seeds=(0, 1, 2),
                             ablations=tuple(a for a in ABLATIONS if a != "none")),
    "start_rules": {cell_name("promix", "none", "sym:0.8", seed, rule):
                    dict(noise="sym:0.8", seed=seed, method="promix", selection=rule)
                    for seed in (0, 1, 2) for rule in RULE_LABELS}}
START_RESULTS = ROOT / "benchmarks" / "results" / "accuracy_cpu_start"
START_TABLE = ROOT / "benchmarks" / "results" / "accuracy_cpu_start.md"
START_RUNS = ROOT / "runs" / "accuracy_cpu_start"
# the same cells while the preset trained from a start at a peak rate of 0.02, kept as measured
# (docs/calibration.md#cpu-start-lr)
START_ARCHIVE = ROOT / "benchmarks" / "results" / "accuracy_cpu_start_lr0.02"
START_ARCHIVE_TABLE = ROOT / "benchmarks" / "results" / "accuracy_cpu_start_lr0.02.md"


def group_cells(sweep: Sweep | dict) -> dict[str, dict]:
    """name -> make_config keyword arguments of ``sweep``'s cells (``ablation`` only in the
    Table 5 cells); a dict is such a mapping already."""
    if isinstance(sweep, dict):
        return dict(sweep)
    cells = {}
    for pt in sweep.points():
        kw = dict(noise=pt["noise"], seed=pt["seed"], method=pt["method"])
        if pt["ablation"] != "none":
            kw["ablation"] = pt["ablation"]
        cells[cell_name(pt["method"], pt["ablation"], pt["noise"], pt["seed"])] = kw
    return cells


def all_cells(groups: dict = GROUPS) -> dict[str, dict]:
    """Every cell of every group, in the groups' order."""
    return {name: kw for sweep in groups.values() for name, kw in group_cells(sweep).items()}


def select(names: list[str], groups: dict = GROUPS) -> list[str]:
    return select_cells(all_cells(groups), names,
                        groups={g: list(group_cells(sw)) for g, sw in groups.items()})


def rule_setting(results: Path, noise: str, rule: str) -> dict:
    """The setting a Fig. 3 rule's own runs train with: `results.rule_tuning` over the committed
    ProMix cells (the median of their seeds' once-tuned values). ValueError when there is no
    such cell yet."""
    value = rule_tuning(load_cells(results) if results.is_dir() else [], noise, rule)
    if value is None:
        raise ValueError(f"the {rule} rule's runs at {noise} are tuned from the ProMix cells "
                         f"there, and {results} has none yet: run `--cells start` first")
    return {RULE_SETTING[rule]: value}


def make_cells(names: list[str], results: Path, runs: Path, start: str | None = None,
               **overrides) -> list[Cell]:
    """The cells ``names`` (run folder runs/NAME, results file results/NAME.json); ``start``:
    every network starts from that `promix pretrain` start (`TrainConfig.init`)."""
    cells, out = all_cells(START_GROUPS if start else GROUPS), []
    if start:
        overrides["init"] = start
    for name in names:
        kw = dict(cells[name])
        if kw.get("selection", "promix") != "promix":
            kw.update(rule_setting(results, kw["noise"], kw["selection"]))
        cfg = make_config("cpu", "cifar10", kw.pop("noise"), **kw, **overrides)
        if cfg.method == "promix":  # the end of warm-up too, as notebook 02 reads it: its cpu
            # profile then loads this cell's run instead of training the same config again
            cfg = cfg.replace(record_epochs=(cfg.warmup_epochs - 1,))
        command = ("python benchmarks/accuracy_cpu.py "
                   + (f"--start {shlex.quote(start)} " if start else "")
                   + "--cells " + shlex.quote(name))
        out.append(make_cell(cfg, runs / name, results, command, DATA))
    return out


def rebuild_start_tables() -> str:
    """accuracy_cpu_start.md: the start's cells, then each beside the scratch cells."""
    add_missing_claims(START_RESULTS, START_RUNS)  # cells recorded before first_selection
    tables = rebuild_table(START_RESULTS, START_TABLE, "accuracy_cpu_start: CIFAR-10 (offline "
                           "JPEG-75 copy), cpu preset, every network from a self-supervised "
                           "start\n\nBuilt by `python benchmarks/accuracy_cpu.py --start "
                           "cpu-simclr --table` from benchmarks/results/accuracy_cpu_start/"
                           "*.json; the start: each cell's `config.init` and `init_sha256` "
                           "(docs/pretrain.md).", START_NOISES, paper=False,
                           table5_noise="sym:0.8")
    start = load_cells(START_RESULTS) if START_RESULTS.is_dir() else []
    versus = start_table(start, load_cells(RESULTS), START_NOISES)
    text = START_TABLE.read_text() + ("\nFrom the start vs from scratch (the scratch cells: "
                                       "benchmarks/results/accuracy_cpu/):\n\n" + versus + "\n")
    write_if_changed(START_TABLE, text)
    if START_ARCHIVE.is_dir():
        rebuild_table(START_ARCHIVE, START_ARCHIVE_TABLE, "accuracy_cpu_start at "
                      "a peak rate of 0.02 (archived)\n\nBuilt by `python benchmarks/"
                      "accuracy_cpu.py --start cpu-simclr --table` from benchmarks/results/"
                      "accuracy_cpu_start_lr0.02/*.json: the cells of `--start cpu-simclr` "
                      "while the cpu preset trained from a start at a peak rate of 0.02 (each "
                      "file's config; `--set lr=0.02` with its other values trains it again). "
                      "Kept as measured; docs/calibration.md#cpu-start-lr says why the rate "
                      "is now lower.", START_NOISES, paper=False, table5_noise="sym:0.8")
    return tables["main"] + "\n\n" + versus


def rebuild_tables() -> str:
    add_missing_claims(RESULTS, RUNS)  # cells measured before the claims were recorded
    return rebuild_table(RESULTS, TABLE, "accuracy_cpu: CIFAR-10 (offline JPEG-75 copy), cpu "
                         "preset\n\nBuilt by `python benchmarks/accuracy_cpu.py --table` from "
                         "benchmarks/results/accuracy_cpu/*.json.", NOISES + NEAREST_NOISES,
                         table5_noise=TABLE5_NOISE)["main"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=None,
                    help="main, nearest, ablations, all, or cell names (see --list)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true", help="only rebuild the markdown tables")
    ap.add_argument("--quick", action="store_true",
                    help="one small ProMix cell (1,000 images, 4 epochs) in a temp folder")
    ap.add_argument("--start", default=None, metavar="START",
                    help="every network from this `promix pretrain` start (cpu-simclr: the "
                         "shipped one); the groups are then start and start_ablations")
    add_launcher_args(ap, default="inline")
    args = ap.parse_args(argv)
    groups, results, runs, rebuild = ((START_GROUPS, START_RESULTS, START_RUNS,
                                       rebuild_start_tables) if args.start else
                                      (GROUPS, RESULTS, RUNS, rebuild_tables))
    if args.list:
        for name in all_cells(groups):
            done = (results / f"{name}.json").is_file()
            print(f"{'done' if done else '    '}  {name}")
        return 0
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="promix-quick-"))
        [cell] = make_cells([cell_name("promix", "none", "sym:0.5", 0)], tmp / "results",
                            tmp / "runs", n_train=1000, n_test=500, epochs=4, warmup_epochs=2,
                            lga_start=3)
        report = run_cells([cell])
        if report.failed:
            return 1
        rec = report.records[cell.name]
        print(f"quick cell {cell.name}: final {rec['final_acc']:.2%}, best {rec['best_acc']:.2%},"
              f" {rec['wall_seconds']:.0f} s; files in {tmp}")
        return 0
    failed = {}
    if args.cells:
        try:  # a start that is missing or does not fit is refused here, before any training
            cells = make_cells(select(args.cells, groups), results, runs, start=args.start)
        except ValueError as e:
            ap.error(str(e))
        try:
            launcher = launcher_from_args(args, cells, runs / "logs", name="accuracy-cpu")
        except ValueError as e:
            ap.error(str(e))
        failed = run_cells(cells, launcher, on_done=lambda cell, rec: rebuild()).failed
    print(rebuild())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
