"""ProMix, CE and the Table 5 ablations on full CIFAR-10 with the `fast` preset on a GPU, and the
`paper` preset's per-epoch time with its projected total.

Cells (one results file each, benchmarks/results/accuracy_gpu/CELL.json, same format as
accuracy_cpu.py), in the order they run: ProMix and CE at sym:0.8 and sym:0.5, the two ablations
notebook 03 reads (w/o LGA, w/o DBR at sym:0.8), ProMix and CE at human:worst (CIFAR-10N) and
asym:0.4, then the other four Table 5 rows at sym:0.8; seed 0, all 50,000 training / 10,000 test
images of the offline CIFAR-10 copy (JPEG quality 75). Every cell also saves the per-sample
arrays of the end of warm-up (and of its last epoch), which the notebooks' ``reference`` profile
reads. A cell whose file exists is skipped, so cells accumulate across calls; the table
(benchmarks/results/accuracy_gpu.md) is rebuilt from the files after each cell, and
`python docs/build_results.py` rebuilds README's table and docs/results.md from it.

``--deadline-minutes D`` starts a cell only if it is expected to end within D minutes of the
script's start (expected: the wall time of the last finished cell of the same method in this
process, else ``--first-guess-minutes`` or ``--guess-from``). ``--pack-to DIR`` writes each
finished cell (results file + run folder without the checkpoint) to DIR/cell_K.tar right away,
so a call cut short still keeps it. Cells run through the package's one runner
(`cells.run_cells`): in this process by default; ``--launcher local --jobs N`` trains N cells at
once, side by side on the one GPU (with a deadline: the cells that N lanes finish in time,
`cells_that_fit`, each guess multiplied by the slowdown that benchmarks/gpu_sharing.py measured
for N runs sharing the GPU, ``--sharing FILE``; without a measurement, by N; with ``--sharing``
and no ``--jobs``, N is the measured one whose lanes finish the most work before the deadline,
`plan_side_by_side`). Their records say how many cells shared the GPU (``cells_sharing_gpu``).
Without a deadline, ``--launcher slurm`` (or ``local``) runs the cells as a submitit job array.

``--paper-epoch-time`` times single epochs of the `paper` preset (PreAct ResNet-18, 600 epochs)
instead of a whole run (a warm-up epoch, a ProMix epoch, a ProMix epoch with LGA; each with its
end-of-epoch evaluation, after one untimed epoch that warms up CUDA) and projects the total:
warmup_epochs x warm-up + (lga_start - warmup_epochs) x ProMix + the rest x LGA.

Usage (on a machine with CUDA; benchmarks/device_check.sh runs these):
  python benchmarks/accuracy_gpu.py --list
  python benchmarks/accuracy_gpu.py --cells promix__sym0.8__seed0 ce__sym0.8__seed0
  python benchmarks/accuracy_gpu.py --cells all --deadline-minutes 6 --pack-to OUT
  python benchmarks/accuracy_gpu.py --cells all --deadline-minutes 8 --launcher local \\
      --sharing gpu_sharing_fast.json --pack-to OUT      # N cells at once on the one GPU
  python benchmarks/accuracy_gpu.py --cells all --launcher slurm --partition gpu
  python benchmarks/accuracy_gpu.py --paper-epoch-time            # -> paper_epoch_time.json
  python benchmarks/accuracy_gpu.py --table
--preset, --results and --runs exist for tests (e.g. --preset tiny on a CPU).
Needs PROMIX_CIFAR10_NPZ and, for human:worst, PROMIX_CIFARN_DIR.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from promix_tutorial.config import make_config
from promix_tutorial.runs import save_json
from promix_tutorial.results import cell_name, hardware, select_cells
from promix_tutorial.tables import rebuild_table
from promix_tutorial.cli import add_launcher_args
from promix_tutorial.cells import (INLINE, Cell, Launcher, launcher_from_args, make_cell,
                                   plan_lanes, run_cells)
from promix_tutorial.engine import Trainer
from promix_tutorial.devices import amp_name, prepare_data
from gpu_sharing import measured_counts, slowdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "accuracy_gpu"
RUNS = ROOT / "runs" / "accuracy_gpu"
NOISES = ["sym:0.5", "sym:0.8", "asym:0.4", "human:worst"]
ABLATION_NOISE = "sym:0.8"  # the paper's Table 5 column (and notebooks 02, 03, 05)
DATA = ("offline CIFAR-10 copy (JPEG quality 75, original training order), all 50,000 train "
        "/ 10,000 test images")


def data_text(cfg) -> str:
    return DATA if cfg.dataset == "cifar10" and cfg.n_train is None else cfg.dataset


def all_cells() -> dict[str, dict]:
    """name -> make_config keyword arguments, in the order they should run (see the module
    docstring: what the notebooks' reference profile needs first)."""
    order = [("promix", "none", "sym:0.8"), ("ce", "none", "sym:0.8"),
             ("promix", "none", "sym:0.5"), ("ce", "none", "sym:0.5"),
             ("promix", "no_lga", ABLATION_NOISE), ("promix", "no_dbr", ABLATION_NOISE),
             ("promix", "none", "human:worst"), ("ce", "none", "human:worst"),
             ("promix", "none", "asym:0.4"), ("ce", "none", "asym:0.4")]
    order += [("promix", a, ABLATION_NOISE) for a in ("no_mhcs", "no_base_selection", "no_cbr",
                                                     "only_clean")]
    return {cell_name(m, a, n, 0): dict(noise=n, seed=0, method=m, ablation=a)
            for m, a, n in order}


def select(names: list[str]) -> list[str]:
    return select_cells(all_cells(), names)


def make_cells(names: list[str], preset: str, results: Path, runs: Path,
               start: str | None = None) -> list[Cell]:
    """The cells ``names`` at ``preset``, each saving the per-sample arrays of the end of
    warm-up for the notebooks (run folder runs/NAME, results file results/NAME.json);
    ``start``: every network starts from that `promix pretrain` start."""
    cells, out = all_cells(), []
    for name in names:
        kw = dict(cells[name])
        if start:
            kw["init"] = start
        cfg = make_config(preset, "cifar10", kw.pop("noise"), **kw)
        cfg = cfg.replace(record_epochs=(cfg.warmup_epochs - 1,))  # the end of warm-up
        command = ("python benchmarks/accuracy_gpu.py " + (f"--start {shlex.quote(start)} "
                   if start else "") + "--cells " + shlex.quote(name))
        out.append(make_cell(cfg, runs / name, results, command, data_text(cfg)))
    return out


def rebuild_tables(results: Path) -> str:
    table_path = results.parent / f"{results.name}.md"
    return rebuild_table(results, table_path, "accuracy_gpu: CIFAR-10 (offline JPEG-75 copy), "
                         "fast preset, full data\n\nBuilt by `python benchmarks/accuracy_gpu.py "
                         "--table` from benchmarks/results/accuracy_gpu/*.json.", NOISES)["main"]


def guess_minutes(profile: dict, cfg, n_train: int) -> dict[str, float]:
    """Expected wall minutes of a ProMix and a CE cell of ``cfg`` from the measured throughput
    of the ProMix step (benchmarks/step_profile.py, or the one-process run of
    benchmarks/gpu_sharing.py, the same loop on as many images): a ProMix epoch takes
    T = n_train / images per second. Fitted on the archived H100 cells (T = 4.49 s; the ProMix
    cell took 278 s = 62 T, the CE cells 55-62 s = 12-14 T): a warm-up epoch 0.25 T,
    a ProMix epoch T, the end-of-epoch evaluation, baselines and checkpoint 0.15 T, a CE epoch
    with its evaluation 0.22 T; 10% on top. Used only to schedule cells."""
    if "images_per_s" not in profile:  # gpu_sharing.py's record: its one-process run
        profile = next(r for r in profile["runs"] if r["processes"] == 1)
    t = n_train / profile["images_per_s"]
    promix = (cfg.warmup_epochs * 0.25 + (cfg.epochs - cfg.warmup_epochs)
              + cfg.epochs * 0.15) * t
    ce = cfg.epochs * 0.22 * t
    return {"promix": 1.1 * promix / 60, "ce": 1.1 * ce / 60}


def cells_that_fit(cells: list[Cell], minutes: dict[str, float], jobs: int,
                   budget: float) -> tuple[list[Cell], list[Cell]]:
    """(cells to run, cells left out): the cells, in order, that ``jobs`` lanes
    (`cells.plan_lanes`, as the local launcher deals them) finish within ``budget`` minutes, a
    cell expected to take ``minutes[method]``. A cell that would push a lane past the budget is
    left out, and a later, shorter one may still fit. Finished cells pass through (the runner
    skips them)."""
    chosen, left_out = [], []
    for cell in cells:
        trial = [c for c in chosen if not c.finished] + [cell]
        lanes = plan_lanes(trial, Launcher("local", jobs=jobs))
        if cell.finished or max(sum(minutes[c.config.method] for c in lane)
                                for lane in lanes) <= budget:
            chosen.append(cell)
        else:
            left_out.append(cell)
    return chosen, left_out


def plan_side_by_side(cells: list[Cell], took: dict[str, float], sharing: dict | None,
                      jobs: int | None, budget: float | None):
    """(runs at once, slowdown, cells to run, cells left out) for the local launcher.
    ``took``: expected minutes of a cell alone per method; ``sharing``: benchmarks/
    gpu_sharing.py's record (None: not measured); ``budget``: minutes left (None: no deadline,
    every cell runs). ``jobs`` None picks among the measured numbers of runs at once: with a
    budget the one whose lanes finish the most work in time (the chosen cells' minutes alone,
    ties to fewer runs), without one the record's best."""
    if jobs is None and budget is None:
        jobs = sharing["best"] if sharing else 1
    best = None
    for n in [jobs] if jobs is not None else measured_counts(sharing):
        factor = slowdown(sharing, n)
        if budget is None:
            chosen, left_out = list(cells), []
        else:
            chosen, left_out = cells_that_fit(cells, {m: t * factor for m, t in took.items()},
                                              n, budget)
        work = sum(took[c.config.method] for c in chosen if not c.finished)
        if best is None or work > best[0] + 1e-9:
            best = (work, n, factor, chosen, left_out)
    return best[1:]


def pack_cell(result_file: Path, run_dir: Path, tar_path: Path) -> Path:
    """One finished cell into a tar: ``accuracy_gpu/CELL.json`` and ``runs/CELL/`` without the
    checkpoint (config, history, per-sample arrays), appended when the tar exists. Written to a
    temporary copy first, so a cut-off call never leaves a broken tar."""
    import shutil
    import tarfile
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(tar_path.name + ".part")
    if tar_path.exists():
        shutil.copyfile(tar_path, tmp)
    with tarfile.open(tmp, "a" if tmp.exists() else "w") as tar:
        tar.add(result_file, arcname=f"accuracy_gpu/{result_file.name}")
        for f in sorted(run_dir.iterdir()):
            if f.name != "checkpoint.pt" and not f.name.startswith("."):
                tar.add(f, arcname=f"runs/{run_dir.name}/{f.name}")
    tmp.replace(tar_path)
    return tar_path


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
            "batch_size": cfg.batch_size, "amp": amp_name(trainer.amp_dtype),
            "device": str(trainer.device),
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
    ap.add_argument("--deadline-minutes", type=float, default=None,
                    help="start a cell only if it is expected to end within this many minutes "
                         "of the start")
    ap.add_argument("--first-guess-minutes", type=float, nargs=2, default=(4.7, 1.1),
                    metavar=("PROMIX", "CE"),
                    help="expected minutes of a ProMix / CE cell alone before one has finished "
                         "(default: the archived H100 cells' 4.6 and 1.0, rounded up)")
    ap.add_argument("--guess-from", type=Path, default=None, metavar="PROFILE_JSON",
                    help="first guesses from the measured throughput of the ProMix step "
                         "(benchmarks/step_profile.py's or gpu_sharing.py's JSON; "
                         "guess_minutes) instead of --first-guess-minutes")
    ap.add_argument("--sharing", type=Path, default=None, metavar="GPU_SHARING_JSON",
                    help="with --launcher local: benchmarks/gpu_sharing.py's measurement; the "
                         "time guesses are multiplied by its slowdown for --jobs runs at once "
                         "(no --jobs: the measured number of runs that finishes the most work "
                         "before --deadline-minutes, or its best without one)")
    ap.add_argument("--pack-to", type=Path, default=None,
                    help="write each finished cell to DIR/cell_K.tar (results + run folder "
                         "without the checkpoint)")
    ap.add_argument("--preset", default="fast", help="fast (default); tiny for tests")
    ap.add_argument("--start", default=None, metavar="START",
                    help="every network from this `promix pretrain` start (give --results "
                         "a folder of its own)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--runs", type=Path, default=RUNS)
    add_launcher_args(ap, default="inline")
    args = ap.parse_args(argv)
    if args.deadline_minutes is not None and args.deadline_minutes <= 0:
        ap.error(f"--deadline-minutes must be positive, got {args.deadline_minutes}")
    if args.deadline_minutes is not None and args.launcher not in ("inline", "local"):
        ap.error("--deadline-minutes decides which cells to start: use it with --launcher "
                 "inline (the default) or local")
    if args.sharing is not None and args.launcher != "local":
        ap.error("--sharing plans cells that share the GPU: use it with --launcher local")
    sharing = None
    if args.sharing is not None and args.sharing.is_file():
        sharing = json.loads(args.sharing.read_text())
    elif args.sharing is not None:
        print(f"[plan] no {args.sharing}: runs sharing the GPU are assumed to gain nothing",
              flush=True)
    if args.cells:
        try:
            select(args.cells)  # an unknown name stops here, before any work
        except ValueError as e:
            ap.error(str(e))
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
    failed = {}
    if args.cells:
        try:  # a start that is missing or does not fit stops here, before any work
            cells = make_cells(select(args.cells), args.preset, args.results, args.runs,
                               start=args.start)
        except ValueError as e:
            ap.error(str(e))
        took = {"promix": args.first_guess_minutes[0], "ce": args.first_guess_minutes[1]}
        if args.guess_from is not None and args.guess_from.is_file():
            cfg0 = make_config(args.preset, "cifar10", "sym:0.5")
            took = guess_minutes(json.loads(args.guess_from.read_text()), cfg0,
                                 len(prepare_data(cfg0)[0].y_train))
            print(f"[plan] expected minutes from {args.guess_from.name}: "
                  f"ProMix {took['promix']:.1f}, CE {took['ce']:.1f}", flush=True)
        if args.launcher == "local":  # how many at once, and which cells end in time
            budget = (None if args.deadline_minutes is None
                      else args.deadline_minutes - (time.perf_counter() - t_start) / 60)
            try:
                args.jobs, factor, cells, left_out = plan_side_by_side(cells, took, sharing,
                                                                       args.jobs, budget)
            except (KeyError, TypeError, ValueError) as e:
                ap.error(f"--jobs {args.jobs} / --sharing {args.sharing}: {e!r}")
            for cell in left_out:
                print(f"[wait] {cell}: expected {took[cell.config.method] * factor:.1f} min "
                      f"with {args.jobs} runs sharing the GPU; no lane ends it within "
                      f"{budget:.1f} min; not started", flush=True)
            pending = len([c for c in cells if not c.finished])
            shared = min(args.jobs, pending) or 1
            cells = [dataclasses.replace(c, extra={"cells_sharing_gpu": shared}) for c in cells]
            print(f"[plan] {pending} cell(s) in {shared} "
                  f"lane(s) side by side, a run expected to take {factor:.2f}x its time "
                  "alone", flush=True)
        try:
            launcher = launcher_from_args(args, cells, args.runs / "logs", gpus=1,
                                          name="accuracy-gpu")
        except ValueError as e:
            ap.error(str(e))
        packed = []

        def after(cell: Cell, rec: dict) -> None:
            took[cell.config.method] = rec["wall_seconds"] / 60
            rebuild_tables(args.results)
            if args.pack_to is not None:
                # at most 4 cell tars, so that device_check.sh's outputs stay few files
                # (log, checks, probes, the history of the cell in progress)
                pack_cell(cell.result_path, cell.run_dir,
                          args.pack_to / f"cell_{min(len(packed), 3)}.tar")
                packed.append(cell.name)

        if args.deadline_minutes is None or launcher.kind == "local":
            failed = run_cells(cells, launcher, on_done=after).failed
        else:  # one cell at a time: whether to start the next depends on the time left
            for cell in cells:
                elapsed = (time.perf_counter() - t_start) / 60
                expected = took[cell.config.method]
                if not cell.finished and elapsed + expected > args.deadline_minutes:
                    print(f"[wait] {cell}: expected {expected:.1f} min, "
                          f"{args.deadline_minutes - elapsed:.1f} min left before the deadline; "
                          "not started", flush=True)
                    continue
                failed.update(run_cells([cell], INLINE, on_done=after).failed)
    if args.table or args.cells:
        print(rebuild_tables(args.results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
