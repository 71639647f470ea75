"""ProMix and CE on full CIFAR-10 with the `fast` preset on a GPU, and the `paper` preset's
per-epoch time with its projected total (issue 5, item 3).

Cells (one results file each, benchmarks/results/accuracy_gpu/CELL.json, same format as
accuracy_cpu.py): ProMix and CE at sym:0.5, sym:0.8 and human:worst (CIFAR-10N), seed 0, on all
50,000 training / 10,000 test images of the offline CIFAR-10 copy (JPEG quality 75). A cell whose
file exists is skipped; the table (benchmarks/results/accuracy_gpu.md and README.md between the
accuracy-gpu markers) is rebuilt from the files after each cell.

A paper-preset run (PreAct ResNet-18, 600 epochs) does not fit a session, so --paper-epoch-time
times single epochs of it instead (a warm-up epoch, a ProMix epoch, a ProMix epoch with LGA;
each with its end-of-epoch evaluation, after one untimed epoch that warms up CUDA) and projects
the total: warmup_epochs x warm-up + (lga_start - warmup_epochs) x ProMix + the rest x LGA.

Usage (on a machine with CUDA; benchmarks/device_check.sh runs these on a lent GPU):
  python benchmarks/accuracy_gpu.py --list
  python benchmarks/accuracy_gpu.py --cells promix__sym0.8__seed0 ce__sym0.8__seed0
  python benchmarks/accuracy_gpu.py --cells all --max-minutes 8   # start no cell after 8 min
  python benchmarks/accuracy_gpu.py --paper-epoch-time            # -> paper_epoch_time.json
  python benchmarks/accuracy_gpu.py --table
--preset, --results and --runs exist for tests (e.g. --preset tiny on a CPU).
Needs PROMIX_CIFAR10_NPZ and, for human:worst, PROMIX_CIFARN_DIR.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from promix_tutorial.config import make_config
from promix_tutorial.history import save_json
from promix_tutorial.results import (cell_name, hardware, rebuild_table, run_cell,
                                     select_cells)
from promix_tutorial.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "accuracy_gpu"
RUNS = ROOT / "runs" / "accuracy_gpu"
NOISES = ["sym:0.5", "sym:0.8", "human:worst"]
DATA = ("offline CIFAR-10 copy (JPEG quality 75, ../shared/tools/make_offline_cifar10.py), "
        "all 50,000 train / 10,000 test images")


def data_text(cfg) -> str:
    return DATA if cfg.dataset == "cifar10" and cfg.n_train is None else cfg.dataset


def all_cells() -> dict[str, dict]:
    """name -> make_config keyword arguments, in the order they should run (the paper's hardest
    column first, ProMix before CE)."""
    cells = {}
    for noise in ("sym:0.8", "sym:0.5", "human:worst"):
        for method in ("promix", "ce"):
            cells[cell_name(method, "none", noise, 0)] = dict(noise=noise, seed=0, method=method)
    return cells


def select(names: list[str]) -> list[str]:
    return select_cells(all_cells(), names)


def rebuild_tables(results: Path) -> str:
    table_path = results.parent / f"{results.name}.md"
    readme = ROOT / "README.md" if results.resolve() == RESULTS else None
    return rebuild_table(results, table_path, "accuracy_gpu: CIFAR-10 (offline JPEG-75 copy), "
                         "fast preset, full data\n\nBuilt by `python benchmarks/accuracy_gpu.py "
                         "--table` from benchmarks/results/accuracy_gpu/*.json.", NOISES,
                         readme=readme, marker="accuracy-gpu")


def _timed_epoch(trainer: Trainer, epoch: int) -> float:
    """Wall seconds of one epoch including its end-of-epoch evaluation and selection."""
    trainer._sync()
    t0 = time.perf_counter()
    trainer.run_epoch(epoch)
    trainer._sync()
    return time.perf_counter() - t0


def paper_epoch_time(cfg, out_dir: Path) -> dict:
    """Time a warm-up, a ProMix and a ProMix-with-LGA epoch of ``cfg`` (after one untimed
    epoch) and project the whole run's time. Nothing is checkpointed; ``out_dir`` only receives
    the per-sample arrays a run saves at its recorded epochs."""
    trainer = Trainer(cfg, out_dir, progress=False, epoch_lines=False)
    _timed_epoch(trainer, 0)  # untimed: CUDA context, cuDNN autotuning, caches
    warm = _timed_epoch(trainer, 0)
    promix = _timed_epoch(trainer, cfg.warmup_epochs)
    lga = _timed_epoch(trainer, cfg.lga_start)
    n_promix = cfg.lga_start - cfg.warmup_epochs
    n_lga = cfg.epochs - cfg.lga_start
    total = cfg.warmup_epochs * warm + n_promix * promix + n_lga * lga
    return {"seconds_per_epoch": {"warmup": round(warm, 2), "promix": round(promix, 2),
                                  "promix_lga": round(lga, 2)},
            "epochs": {"warmup": cfg.warmup_epochs, "promix": n_promix, "promix_lga": n_lga},
            "projected_total_hours": round(total / 3600, 2),
            "n_train": len(trainer.data.y_noisy), "model": cfg.model,
            "batch_size": cfg.batch_size, "amp_bf16": cfg.amp and trainer.device.type == "cuda", "device": str(trainer.device),
            "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "data": data_text(cfg), "command": "python benchmarks/accuracy_gpu.py --paper-epoch-time",
            "config": cfg.to_dict()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=None, help="all, or cell names (see --list)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true", help="only rebuild the markdown tables")
    ap.add_argument("--paper-epoch-time", action="store_true",
                    help="time single paper-preset epochs and project the 600-epoch total")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="start no further cell once this many minutes have passed")
    ap.add_argument("--preset", default="fast", help="fast (default); tiny for tests")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--runs", type=Path, default=RUNS)
    args = ap.parse_args(argv)
    if args.max_minutes is not None and args.max_minutes <= 0:
        ap.error(f"--max-minutes must be positive, got {args.max_minutes}")
    if args.list:
        for name in all_cells():
            done = (args.results / f"{name}.json").is_file()
            print(f"{'done' if done else '    '}  {name}")
        return 0
    if args.preset == "fast" and (args.cells or args.paper_epoch_time) \
            and not torch.cuda.is_available():
        print("warning: no CUDA device; the fast/paper presets on full CIFAR-10 take hours on a "
              "CPU (use benchmarks/accuracy_cpu.py there)", file=sys.stderr)
    t_start = time.perf_counter()
    if args.paper_epoch_time:
        preset = "paper" if args.preset == "fast" else args.preset
        cfg = make_config(preset, "cifar10", "sym:0.5")
        rec = paper_epoch_time(cfg, Path(tempfile.mkdtemp(prefix="promix-epoch-time-")))
        path = save_json(args.results / f"{preset}_epoch_time.json", rec)
        print(f"{preset} preset: seconds per epoch {json.dumps(rec['seconds_per_epoch'])}; "
              f"projected {cfg.epochs} epochs: {rec['projected_total_hours']:.2f} h -> {path}",
              flush=True)
    if args.cells:
        cells = all_cells()
        for name in select(args.cells):
            if (args.results / f"{name}.json").is_file():
                print(f"[skip] {name}: results file exists")
                continue
            minutes = (time.perf_counter() - t_start) / 60
            if args.max_minutes is not None and minutes >= args.max_minutes:
                print(f"[stop] {minutes:.1f} min passed (--max-minutes {args.max_minutes}); "
                      f"{name} and later cells not started", flush=True)
                break
            kw = dict(cells[name])
            cfg = make_config(args.preset, "cifar10", kw.pop("noise"), **kw)
            command = "python benchmarks/accuracy_gpu.py --cells " + shlex.quote(name)
            run_cell(cfg, args.runs / name, args.results, command, data_text(cfg))
            rebuild_tables(args.results)
    if args.table or args.cells:
        print(rebuild_tables(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
