"""Probe: ProMix's warm-up length and learning rate from a self-supervised start (`cpu` preset,
sym:0.8 and sym:0.9).

From the shipped start the `cpu` preset's 10-epoch warm-up memorises the noisy labels (test
accuracy peaks near its fifth epoch, then falls), and ProMix's first epochs then select worse
than from scratch (accuracy_cpu_start.md). This probe trains whole ProMix runs from the start
with a shorter warm-up or another peak learning rate and records each like an accuracy cell,
into benchmarks/probes/results/start_warmup/wW_lrLR/CELL.json, and a table start_warmup.md
beside the benchmark's cells from the start (accuracy_cpu_start/: 10 epochs at the rate the
preset sets from a start, `make_config`; accuracy_cpu_start_lr0.02/: the same at 0.02):

    python benchmarks/probes/start_warmup.py --warmup 5 --lr 0.1 --seeds 0 [--start cpu-simclr]
    python benchmarks/probes/start_warmup.py --warmup 10 --lr 0.1 --seeds 0 1 2 --method ce
    python benchmarks/probes/start_warmup.py --warmup 5 --noise sym:0.9 --seeds 0
    python benchmarks/probes/start_warmup.py --table

Needs PROMIX_CIFAR10_NPZ. One thread per run (OMP_NUM_THREADS=1 for two side by side).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from promix_tutorial.cells import make_cell, run_cells
from promix_tutorial.config import make_config
from promix_tutorial.results import write_if_changed

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "probes" / "results" / "start_warmup"
RUNS = ROOT / "runs" / "probes" / "start_warmup"
DATA = ("offline CIFAR-10 copy (JPEG quality 75, original training order), stratified 5,000 "
        "train / 2,000 test images")


def cells(warmup: int, seeds: list[int], start: str, method: str = "promix",
          lr: float | None = None, noise: str = "sym:0.8") -> list:
    out = []
    for seed in seeds:
        cfg = make_config("cpu", "cifar10", noise, method=method, seed=seed, init=start,
                          warmup_epochs=warmup, **({} if lr is None else {"lr": lr}))
        cfg = cfg.replace(record_epochs=(warmup - 1,))
        name = f"{method}__{noise.replace(':', '')}__seed{seed}"
        folder = f"w{warmup}_lr{cfg.lr:g}"
        command = (f"python benchmarks/probes/start_warmup.py --warmup {warmup} "
                   f"--lr {cfg.lr:g} --seeds {seed} "
                   + (f"--noise {noise} " if noise != "sym:0.8" else "")
                   + f"--start {shlex.quote(start)}"
                   + (f" --method {method}" if method != "promix" else ""))
        out.append(make_cell(cfg, RUNS / folder / name, RESULTS / folder, command, DATA))
    return out


def start_lr(start: str = "cpu-simclr") -> float:
    """The peak rate the `cpu` preset sets when its networks start from ``start``."""
    return make_config("cpu", "cifar10", "sym:0.8", init=start).lr


def table() -> str:
    lines = ["# ProMix and CE from the shipped start: warm-up length and learning rate (cpu preset)",
             "",
             "Built by `python benchmarks/probes/start_warmup.py --table` from "
             "benchmarks/probes/results/start_warmup/*/*.json and, for the preset's own warm-up "
             f"and the rate it sets from a start (10 epochs, {start_lr():g}), "
             "benchmarks/results/accuracy_cpu_start/ (the benchmark's cells at the earlier "
             "rate 0.02: benchmarks/results/accuracy_cpu_start_lr0.02/). JPEG-75 CIFAR-10 copy.",
             "",
             "| noise | warm-up epochs | peak lr | method | seed | warm-up peak / last test acc | "
             "first selection P | final selection P | final test acc |",
             "|---|---|---|---|---|---|---|---|---|"]
    files = sorted(RESULTS.glob("w*/*.json")) + [
        f for name in ("accuracy_cpu_start", "accuracy_cpu_start_lr0.02")
        for f in sorted((ROOT / "benchmarks" / "results" / name).glob("*.json"))]
    records = sorted((json.loads(f.read_text()) for f in files),
                     key=lambda r: r["noise"])   # stable: noise, then as above
    for r in records:
        if r.get("row") not in ("ProMix", "CE"):   # Table 5 rows and Fig. 3's rule runs
            continue
        w = r["config"]["warmup_epochs"]
        accs = r["test_acc_per_epoch"]
        first, last = r.get("first_selection") or {}, r.get("selection") or {}
        sel = " | ".join(f"{d['precision']:.3f}" if d else "" for d in (first, last))
        lines.append(f"| {r['noise']} | {w} | {r['config']['lr']:g} | {r['method']} | {r['seed']} | "
                     f"{100 * max(accs[:w]):.1f} / {100 * accs[w - 1]:.1f} | {sel} | "
                     f"{100 * r['final_acc']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the "
                                                              "preset's from a start)")
    ap.add_argument("--start", default="cpu-simclr")
    ap.add_argument("--method", default="promix", choices=("promix", "ce"))
    ap.add_argument("--noise", default="sym:0.8")
    ap.add_argument("--table", action="store_true", help="only rebuild the table")
    args = ap.parse_args(argv)
    failed = {}
    if not args.table:
        failed = run_cells(cells(args.warmup, args.seeds, args.start, args.method, args.lr,
                                 args.noise)).failed
    text = table()
    write_if_changed(RESULTS.parent / "start_warmup.md", text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
