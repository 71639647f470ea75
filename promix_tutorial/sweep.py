"""Sweeps: many table cells trained on one machine or on a SLURM cluster through submitit, and
the one runner every benchmark script uses.

A cell is one training run and its results file: a `Cell` holds its config, its run folder and
where its record goes (`results.run_cell` trains it, resuming from the run folder's checkpoint,
and writes the record). `run_cells(cells, launcher)` runs a list of cells with submitit:

- ``inline``: in this process, one cell after another (submitit's DebugExecutor); what the
  benchmarks use by default, and the only launcher that can decide before each cell whether to
  start it (benchmarks/accuracy_gpu.py's deadline calls it one cell at a time);
- ``local``: ``jobs`` processes on this machine (submitit's LocalExecutor). The LocalExecutor
  starts every submitted job at once, so the cells are dealt into ``jobs`` lanes
  (`plan_lanes`) and each job trains its lane's cells one after another; every job gets
  ``threads`` threads (OMP_NUM_THREADS and torch.set_num_threads), so parallel jobs do not
  oversubscribe the cores; on a GPU machine the jobs share its GPUs (`local_gpu_parameters`);
- ``slurm``: one task of a SLURM job array per cell (submitit's AutoExecutor; its
  ``array_parallelism`` caps how many run at once). A task that reaches its time limit or is
  preempted is requeued by submitit (`LaneJob.checkpoint`) and resumes from its checkpoint.

Both parallel launchers submit once, with ``executor.map_array``: submitit is the only scheduler.
A cell whose results file exists is skipped (``[skip]``), an interrupted one resumes from its
checkpoint, a failed one is reported (``[fail]`` with its job's log) and does not stop the
others; a lock file (``RUN_DIR/.lock``) keeps two processes from training the same run folder.

`Sweep` is the grid that ``promix sweep`` runs (presets x datasets x noises x seeds x methods and
ablations, with ``--set`` overrides); it is saved as ``OUT/sweep.json`` next to the results:

    OUT/sweep.json              the grid (a rerun with another grid is refused)
    OUT/CELL/                   one run folder per cell (results.cell_name)
    OUT/results/CELL.json       its record (results.summarize_run)
    OUT/table.md                the tables (results.rebuild_table)
    OUT/logs/                   submitit's pickles and job logs (local, slurm)

With several presets or datasets, each (preset, dataset) pair gets its own folder
``OUT/PRESET__DATASET/`` holding its cells, results and table.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .config import ABLATIONS, METHODS, TrainConfig, make_config

SWEEP_FILE = "sweep.json"
LAUNCHERS = ("local", "slurm", "inline")
LOCAL_TIMEOUT_MIN = 30 * 24 * 60  # the LocalExecutor's default limit is 2 minutes; ours: none
SLURM_TIME_MIN = 240
SLURM_THREADS = 4
POLL_SECONDS = {"inline": 0.0, "local": 1.0, "slurm": 30.0}
GRID_FIELDS = ("dataset", "noise", "seed", "method", "ablation")  # not for --set


# ----------------------------------------------------------------------------- what runs

@dataclass(frozen=True)
class Cell:
    """One table cell: train ``config`` into ``run_dir`` and write its record to
    ``results_dir/NAME.json``. ``label`` names it in progress lines (``name``, or its folder
    below a sweep's OUT); ``command``, ``data`` and the fields of ``extra`` (e.g.
    ``cells_sharing_gpu``) go into the record."""

    name: str
    config: TrainConfig
    run_dir: Path
    results_dir: Path
    command: str
    data: str
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def result_path(self) -> Path:
        return self.results_dir / f"{self.name}.json"

    @property
    def finished(self) -> bool:
        return self.result_path.is_file()

    def __str__(self) -> str:
        return self.label or self.name


def make_cell(cfg: TrainConfig, run_dir, results_dir, command: str, data: str,
              label: str = "") -> Cell:
    """A `Cell` named by `results.cell_name` (the name of its results file)."""
    from .results import cell_name
    return Cell(cell_name(cfg.method, cfg.ablation, cfg.noise, cfg.seed), cfg, Path(run_dir),
                Path(results_dir), command, data, label)


@dataclass(frozen=True)
class Launcher:
    """Where cells run (see the module docstring): ``kind`` inline | local | slurm; ``jobs``:
    local lanes; ``threads``: threads per job (None: leave them as they are); ``parameters``:
    for submitit's ``AutoExecutor.update_parameters``; ``log_dir``: submitit's folder (job
    pickles and logs; inline: a temporary folder)."""

    kind: str = "inline"
    jobs: int = 1
    threads: int | None = None
    parameters: dict = field(default_factory=dict)
    log_dir: Path | None = None


INLINE = Launcher()


def local_plan(n_cells: int, cpu_count: int, cuda_devices: int = 0, jobs: int | None = None,
               threads: int | None = None) -> tuple[int, int]:
    """(parallel jobs, threads per job) for the local launcher: what is asked; else as many
    jobs as the cores allow at ``threads`` (default 1) each, or one job with a CUDA GPU (the
    jobs would share it), never more jobs than cells; threads default to the cores divided
    among the jobs."""
    if jobs is None:
        jobs = 1 if cuda_devices else max(1, cpu_count // (threads or 1))
    jobs = max(1, min(jobs, n_cells))
    return jobs, threads or max(1, cpu_count // jobs)


def local_gpu_parameters(cuda_devices: int, visible: str | None = None) -> dict:
    """submitit parameters that let the local launcher's jobs see this process's GPUs (they
    share them; each job trains on its first). submitit's LocalExecutor sets
    CUDA_VISIBLE_DEVICES for every job, to no GPU unless told, so without these a sweep on a GPU
    machine would train on its CPU. ``visible`` (default: this process's
    ``$CUDA_VISIBLE_DEVICES``, indices or UUIDs) is passed on as it is; unset: the first
    ``cuda_devices`` GPUs."""
    if cuda_devices < 1:
        return {}
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if visible:
        return {"local_setup": (f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}",)}
    return {"gpus_per_node": cuda_devices}


def slurm_parameters(*, partition: str | None, gpus_per_job: int, time_min: int,
                     array_parallelism: int | None, threads: int, name: str) -> dict:
    """``AutoExecutor.update_parameters`` arguments of a SLURM sweep: one task per cell with
    ``gpus_per_job`` GPUs and ``threads`` CPUs for ``time_min`` minutes, at most
    ``array_parallelism`` tasks at once; stderr goes into the one log per task."""
    params = {"name": name, "timeout_min": time_min, "gpus_per_node": gpus_per_job,
              "cpus_per_task": threads, "tasks_per_node": 1, "nodes": 1,
              "stderr_to_stdout": True, "slurm_partition": partition,
              "slurm_array_parallelism": array_parallelism}
    return {k: v for k, v in params.items() if v is not None}


def plan_lanes(cells: list[Cell], launcher: Launcher) -> list[list[Cell]]:
    """The cells each submitted job trains, one after another. slurm and inline: one cell per
    job. local: ``launcher.jobs`` lanes balanced by a rough cost (epochs, a ProMix epoch
    counted as 4 CE epochs), longest first; each lane keeps the cells' order."""
    if launcher.kind != "local":
        return [[c] for c in cells]

    def cost(c: Cell) -> int:
        return c.config.epochs * (4 if c.config.method == "promix" else 1)

    lanes: list[list[tuple[int, Cell]]] = [[] for _ in range(min(launcher.jobs, len(cells)))]
    loads = [0] * len(lanes)
    for i, c in sorted(enumerate(cells), key=lambda ic: cost(ic[1]), reverse=True):
        k = loads.index(min(loads))
        lanes[k].append((i, c))
        loads[k] += cost(c)
    return [[c for _, c in sorted(lane, key=lambda ic: ic[0])] for lane in lanes]


# ----------------------------------------------------------------------------- the job

class LaneJob:
    """What each submitted job runs: train ``cells`` one after another (`results.run_cell`) and
    return one outcome per cell (``{"label", "status": done | failed | busy, "error"}``). A
    failing cell is reported (its traceback goes to the job's log) and the next one starts; it
    never raises, so submitit's DebugExecutor never stops in its post-mortem debugger.

    ``checkpoint`` makes submitit requeue a job that reached its time limit or was preempted:
    the same cells again, the finished ones skipped, the interrupted one resumed from its
    checkpoint (submitit calls any callable with a ``checkpoint`` method checkpointable)."""

    def __call__(self, cells: list[Cell], threads: int | None = None,
                 lines: bool = True) -> list[dict]:
        if threads:
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
            import torch
            torch.set_num_threads(threads)
        return [self.run_one(cell, lines) for cell in cells]

    @staticmethod
    def run_one(cell: Cell, lines: bool) -> dict:
        from .results import run_cell
        out = {"label": str(cell), "status": "done", "error": None}
        if cell.finished:  # finished by another job since this one was submitted
            return out
        with cell_lock(cell.run_dir) as held:
            if not held:
                return {**out, "status": "busy",
                        "error": f"another process is training {cell.run_dir} (it holds "
                                 f"{cell.run_dir / '.lock'}); not started here"}
            try:
                run_cell(cell.config, cell.run_dir, cell.results_dir, cell.command, cell.data,
                         lines=lines, extra=cell.extra)
            except Exception as e:  # noqa: BLE001 -- reported per cell, the others go on
                traceback.print_exc()
                sys.stderr.flush()
                return {**out, "status": "failed", "error": one_line(e)}
        return out

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission
        return DelayedSubmission(self, *args, **kwargs)


def one_line(e: BaseException, width: int = 200) -> str:
    """``Type: first line of the message``, cut to ``width`` characters."""
    text = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    return text if len(text) <= width else text[:width - 3] + "..."


@contextlib.contextmanager
def cell_lock(run_dir: Path):
    """Hold an exclusive lock on ``run_dir/.lock`` (fcntl.flock; released when the process
    ends); yields False when another process holds it."""
    import fcntl
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as f:  # closing it releases the lock
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        yield held


# ----------------------------------------------------------------------------- the runner

@dataclass
class Report:
    """What `run_cells` did: ``records`` (label -> record) of every finished cell, skipped or
    trained now; ``trained`` and ``skipped`` labels; ``failed``: label -> why."""

    records: dict = field(default_factory=dict)
    trained: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)


def stale_fields(cell: Cell, record: dict) -> str:
    """The config fields where a cell's results file differs from the cell ('' when none;
    `config.config_differences`: device and recorded epochs do not count)."""
    from .config import config_differences
    diff = config_differences(record.get("config", {}), cell.config)
    return "; ".join(f"{k} {a!r} there, {b!r} here" for k, (a, b) in diff.items())


@contextlib.contextmanager
def executor_for(launcher: Launcher):
    """submitit's executor for ``launcher`` (an AutoExecutor: cluster debug, local or slurm)."""
    import submitit
    if launcher.kind == "inline":  # its log files hold only logging records: not kept
        with tempfile.TemporaryDirectory(prefix="promix-inline-") as tmp:
            yield submitit.AutoExecutor(tmp, cluster="debug")
        return
    ex = submitit.AutoExecutor(launcher.log_dir, cluster=launcher.kind)
    ex.update_parameters(**launcher.parameters)
    yield ex


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM (``kill PID``) raises KeyboardInterrupt in this process, so a local
    sweep stopped that way cancels its jobs as Ctrl-C does. Needed because submitit's local jobs
    ignore the SIGTERM their parent gets ("Bypassing signal SIGTERM"): killed, a sweep left its
    trainings running (seen 2026-11-27; the run folders' locks kept a restarted sweep off them).
    Only in the main thread (elsewhere signal handlers cannot be set); the old handler returns
    on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_cells(cells: list[Cell], launcher: Launcher = INLINE, *, on_done=None,
              lines: bool = True, bars: bool = False) -> Report:
    """Run the ``cells`` that have no results file yet on ``launcher`` and wait for them.

    Prints ``[skip]`` for a finished cell, a ``[done]`` line when a cell's results file appears
    (inline: `results.run_cell` prints it, with the epoch lines) and ``[fail] CELL: why; log:
    PATH`` for a cell that failed; ``lines=False`` prints only the ``[fail]`` lines.
    ``on_done(cell, record)`` is called here as each cell finishes; ``bars``: a tqdm bar over
    the cells. Ctrl-C or SIGTERM stops local jobs too (SLURM jobs go on; rerun to collect
    them)."""
    from tqdm.auto import tqdm
    report = Report()
    say = tqdm.write if bars else print
    pending, stale = [], []
    for cell in cells:
        if not cell.finished:
            pending.append(cell)
            continue
        record = report.records[str(cell)] = json.loads(cell.result_path.read_text())
        report.skipped.append(str(cell))
        if lines:
            say(f"[skip] {cell}: results file exists")
        why = stale_fields(cell, record)
        if why:
            stale.append(f"{cell.result_path}: {why}")
    if stale:  # kept as they are: a results file is never overwritten
        print(f"warning: {len(stale)} results file(s) were made with another config than the "
              f"cell's now (e.g. {stale[0]}); they are kept, not retrained (move one away to "
              "retrain its cell)", file=sys.stderr)
    if not pending:
        return report
    from .results import done_line
    lanes = plan_lanes(pending, launcher)
    waiting = {str(c): c for c in pending}
    bar = tqdm(total=len(pending), unit="cell", desc="cells", disable=not bars)

    def collect():  # results files that appeared: those cells are done
        for label, cell in list(waiting.items()):
            if cell.finished:
                del waiting[label]
                record = json.loads(cell.result_path.read_text())
                report.records[label] = record
                report.trained.append(label)
                if lines and launcher.kind != "inline":
                    say(f"{done_line(record, label)} ({len(report.trained)}/{len(pending)})")
                bar.update(1)
                if on_done is not None:
                    on_done(cell, record)

    def fail(job, lane):  # a finished job: its cells without a results file failed
        why = "it wrote no results file"
        try:
            outcomes = {o["label"]: o for o in job.result()}
        except Exception as e:  # noqa: BLE001 -- the job itself died (killed, out of memory)
            outcomes = {}
            why = f"job {job.job_id} ended early: {one_line(e)}"
        log = ("traceback above" if launcher.kind == "inline"
               else f"log: {job.paths.stdout}")
        for cell in lane:
            if str(cell) in waiting:
                del waiting[str(cell)]
                error = outcomes.get(str(cell), {}).get("error") or why
                report.failed[str(cell)] = f"{error}; {log}"
                say(f"[fail] {cell}: {error}; {log}")
                bar.update(1)

    with executor_for(launcher) as ex, bar, sigterm_as_interrupt():
        n = len(lanes)
        jobs = list(zip(ex.map_array(LaneJob(), lanes, [launcher.threads] * n, [lines] * n),
                        lanes))
        try:
            while jobs:
                for job, lane in list(jobs):
                    if job.done():  # inline: runs the job here and now
                        jobs.remove((job, lane))
                        collect()
                        fail(job, lane)
                collect()
                if jobs:
                    time.sleep(POLL_SECONDS[launcher.kind])
        except KeyboardInterrupt:
            if launcher.kind == "local":
                for job, _ in jobs:
                    job.cancel(check=False)
            raise
    return report


# ----------------------------------------------------------------------------- the grid

@dataclass(frozen=True)
class Sweep:
    """A grid of cells: every preset x dataset x noise x seed x row, where the rows are the
    ``methods`` in order and ProMix once per ablation of ``ablations`` (``none``: ProMix
    itself; CE has no ablations). ``overrides`` (TrainConfig fields) apply to every cell."""

    presets: tuple[str, ...]
    datasets: tuple[str, ...] = ("cifar10",)
    noises: tuple[str, ...] = ("sym:0.5",)
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = ("promix",)
    ablations: tuple[str, ...] = ("none",)
    overrides: dict = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        """(method, ablation) pairs in order."""
        return [(m, a) for m in self.methods
                for a in (self.ablations if m == "promix" else ("none",))]

    def points(self) -> list[dict]:
        """Every cell's preset, dataset, noise, seed, method and ablation, in grid order."""
        return [dict(preset=p, dataset=d, noise=n, seed=s, method=m, ablation=a)
                for p in self.presets for d in self.datasets for n in self.noises
                for s in self.seeds for m, a in self.rows()]

    def validate(self) -> None:
        """Raise ValueError naming the first bad value (before anything is written)."""
        from .config import PRESETS
        from .noise import NoiseSpec
        for name in ("presets", "datasets", "noises", "seeds", "methods", "ablations"):
            if not getattr(self, name):
                raise ValueError(f"the sweep's {name} are empty: give at least one.")
        for p in self.presets:
            if p not in PRESETS:
                raise ValueError(f"unknown preset {p!r}: choose from {', '.join(PRESETS)}.")
        for n in self.noises:
            NoiseSpec.parse(n)  # names the bad setting
        for s in self.seeds:
            if not isinstance(s, int) or s < 0:
                raise ValueError(f"seed {s!r} is not a seed: seeds are integers >= 0.")
        for m in self.methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r}: choose from {', '.join(METHODS)}.")
        for a in self.ablations:
            if a not in ABLATIONS:
                raise ValueError(f"unknown ablation {a!r}: choose from {', '.join(ABLATIONS)}.")
        if set(self.ablations) != {"none"} and "promix" not in self.methods:
            raise ValueError("ablations are ProMix rows, but the methods do not include promix.")
        for d in self.datasets:
            if d.endswith(".npz") and not Path(d).expanduser().is_file():
                raise ValueError(f"dataset {d}: no such arrays file.")
        grid = set(self.overrides) & set(GRID_FIELDS)
        if grid:
            raise ValueError(f"--set {sorted(grid)[0]}=...: that is an axis of the grid; give it "
                             "with --dataset/--noise/--seeds/--methods/--ablations instead.")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "Sweep":
        return cls(**{k: (dict(v) if k == "overrides" else tuple(v)) for k, v in d.items()})

    def command(self, out) -> str:
        """The ``promix sweep`` command line that runs (and resumes) this grid into ``out``."""
        import shlex
        words = ["promix", "sweep", "--preset", *self.presets, "--dataset", *self.datasets,
                 "--noise", *self.noises, "--seeds", *map(str, self.seeds),
                 "--methods", *self.methods, "--ablations", *self.ablations]
        for k, v in self.overrides.items():
            v = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v
            words += ["--set", f"{k}={v}"]
        return shlex.join(words + ["--out", str(out)])


def group_name(preset: str, dataset: str) -> str:
    return f"{preset}__{Path(dataset).stem if dataset.endswith('.npz') else dataset}"


def data_text(cfg: TrainConfig) -> str:
    """The ``data`` field of a sweep cell's record."""
    subset = (f", stratified {cfg.n_train} train / {cfg.n_test or 'all'} test images"
              if cfg.n_train else "")
    return cfg.dataset + subset


def sweep_cells(sweep: Sweep, out) -> list[Cell]:
    """The cells of ``sweep`` laid out under ``out`` (module docstring); builds and so validates
    every config (ValueError naming the field)."""
    out = Path(out)
    configs = [(pt["preset"], make_config(pt["preset"], pt["dataset"], pt["noise"],
                                          seed=pt["seed"], method=pt["method"],
                                          ablation=pt["ablation"], **sweep.overrides))
               for pt in sweep.points()]
    groups = list(dict.fromkeys(group_name(p, cfg.dataset) for p, cfg in configs))
    cells = []
    for preset, cfg in configs:
        folder = out if len(groups) == 1 else out / group_name(preset, cfg.dataset)
        cell = make_cell(cfg, folder, folder / "results", sweep.command(out), data_text(cfg))
        label = str((folder / cell.name).relative_to(out))
        cells.append(dataclasses.replace(cell, run_dir=folder / cell.name, label=label))
    labels = [c.label for c in cells]
    for label in labels:
        if labels.count(label) > 1:  # e.g. the tiny preset trains digits for cifar10 and cifar100
            raise ValueError(f"two cells of the grid train the same run {label}: drop the "
                             "duplicate preset or dataset.")
    return cells


def rebuild_tables(sweep: Sweep, cells: list[Cell], out) -> list[str]:
    """Each (preset, dataset) folder's table.md from its results files (`sweep_cells`'s
    ``cells``); returns the tables' text. The paper's numbers are shown for CIFAR-10 only."""
    from .results import rebuild_table
    groups = {c.results_dir: (pt["preset"], c.config.dataset)
              for pt, c in zip(sweep.points(), cells)}
    tables = []
    for results_dir, (preset, dataset) in groups.items():
        heading = (f"sweep {out}: {preset} preset, {dataset}\n\nBuilt by `promix sweep --table "
                   f"{out}` from {results_dir}/*.json.")
        tables.append(rebuild_table(results_dir, results_dir.parent / "table.md", heading,
                                    list(sweep.noises), paper=dataset == "cifar10"))
    return tables


def read_sweep_file(out) -> Sweep | None:
    path = Path(out) / SWEEP_FILE
    return Sweep.from_dict(json.loads(path.read_text())["sweep"]) if path.is_file() else None


def check_sweep_folder(sweep: Sweep, out) -> None:
    """Refuse, before any work, a folder that holds another grid's sweep, or files but no
    sweep (ValueError saying what to do). Extending a sweep is refused too: give the larger
    grid a new --out."""
    out = Path(out)
    saved = read_sweep_file(out)
    if saved is None:
        if out.is_dir() and any(out.iterdir()):
            raise ValueError(f"{out} is a non-empty folder without a {SWEEP_FILE}; choose a new "
                             "or empty --out so nothing in it is overwritten.")
        return
    if saved.to_dict() != sweep.to_dict():
        diff = [f"{k} {a!r} there, {b!r} here" for k, (a, b) in
                ((k, (saved.to_dict()[k], sweep.to_dict()[k])) for k in sweep.to_dict())
                if a != b]
        raise ValueError(f"{out / SWEEP_FILE} describes another sweep ({'; '.join(diff)}); "
                         f"rerun it with `{saved.command(out)}`, or give this grid a new --out.")


def write_sweep_file(sweep: Sweep, cells: list[Cell], out) -> None:
    """``OUT/sweep.json``: the grid, its command and its cells (written once)."""
    from .history import save_json
    path = Path(out) / SWEEP_FILE
    if not path.is_file():
        save_json(path, {"sweep": sweep.to_dict(), "command": sweep.command(out),
                         "cells": [c.label for c in cells]})


# ----------------------------------------------------------------------------- command line

def add_launcher_args(p: argparse.ArgumentParser, default: str = "local") -> None:
    """--launcher, --jobs, --threads-per-job and the SLURM options (promix sweep and the
    benchmark scripts)."""
    g = p.add_argument_group("where the cells run (submitit)")
    g.add_argument("--launcher", default=default, metavar="{" + ",".join(LAUNCHERS) + "}",
                   help=f"local: parallel jobs on this machine; slurm: a SLURM job array; "
                        f"inline: one cell after another in this process (default {default})")
    g.add_argument("--jobs", type=int, default=None,
                   help="local: parallel jobs (default: the cores / --threads-per-job, one "
                        "with a CUDA GPU, at most one per cell)")
    g.add_argument("--threads-per-job", type=int, default=None,
                   help=f"threads (OMP_NUM_THREADS, torch) per job; slurm: its cpus-per-task "
                        f"(default: local: the cores / --jobs; slurm: {SLURM_THREADS})")
    g.add_argument("--partition", default=None, help="slurm: the partition (default: the "
                                                     "cluster's)")
    g.add_argument("--gpus-per-job", type=int, default=None,
                   help="slurm: GPUs per cell (default 1 for the fast and paper presets, else 0)")
    g.add_argument("--time-min", type=int, default=None,
                   help=f"slurm: time limit per cell in minutes (default {SLURM_TIME_MIN}; a "
                        "cell cut off is requeued and resumes from its checkpoint); local: "
                        "none unless given")
    g.add_argument("--array-parallelism", type=int, default=None,
                   help="slurm: at most this many cells at once (default: submitit's, 256)")


def launcher_from_args(args, cells: list[Cell], log_dir, gpus: int = 0,
                       name: str = "promix-sweep") -> Launcher:
    """The `Launcher` the options of `add_launcher_args` ask for (ValueError for a bad value);
    ``gpus``: GPUs per SLURM job unless --gpus-per-job says otherwise."""
    kind = args.launcher
    if kind not in LAUNCHERS:
        raise ValueError(f"--launcher {kind!r}: choose one of {', '.join(LAUNCHERS)}.")
    for opt in ("jobs", "threads_per_job", "time_min", "array_parallelism"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise ValueError(f"--{opt.replace('_', '-')} must be at least 1, got {v}.")
    if args.gpus_per_job is not None and args.gpus_per_job < 0:
        raise ValueError(f"--gpus-per-job must be 0 or more, got {args.gpus_per_job}.")
    if kind == "inline":
        return INLINE
    if kind == "local":
        import torch
        jobs, threads = local_plan(max(1, len([c for c in cells if not c.finished])),
                                   os.cpu_count() or 1, torch.cuda.device_count(),
                                   args.jobs, args.threads_per_job)
        params = {"name": name, "timeout_min": args.time_min or LOCAL_TIMEOUT_MIN,
                  "stderr_to_stdout": True, **local_gpu_parameters(torch.cuda.device_count())}
        return Launcher("local", jobs, threads, params, Path(log_dir))
    import shutil
    if shutil.which("srun") is None or shutil.which("sbatch") is None:
        raise ValueError("--launcher slurm: no srun/sbatch on this machine's PATH; run the "
                         "command on the cluster's login node.")
    gpus = gpus if args.gpus_per_job is None else args.gpus_per_job
    threads = args.threads_per_job or SLURM_THREADS
    params = slurm_parameters(partition=args.partition, gpus_per_job=gpus,
                              time_min=args.time_min or SLURM_TIME_MIN,
                              array_parallelism=args.array_parallelism, threads=threads,
                              name=name)
    return Launcher("slurm", 1, threads, params, Path(log_dir))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``promix sweep``."""
    p.add_argument("--preset", nargs="+", default=None, metavar="PRESET",
                   help="one or more of paper, fast, cpu, tiny (profile names gpu, ci accepted)")
    p.add_argument("--dataset", nargs="+", default=["cifar10"], metavar="DATASET",
                   help="cifar10 (default), cifar100, digits or .npz arrays files")
    p.add_argument("--noise", nargs="+", default=["sym:0.5"], metavar="NOISE",
                   help="noise settings, as for `promix noise` (default sym:0.5)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                   help="seeds (noise, initialisation, order; default 0)")
    p.add_argument("--methods", nargs="+", default=["promix"], metavar="METHOD",
                   help="promix and/or ce (default promix)")
    p.add_argument("--ablations", nargs="+", default=["none"], metavar="ABLATION",
                   help="ProMix rows: none (ProMix itself), " + ", ".join(
                       a for a in ABLATIONS if a != "none") + " (default none)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a TrainConfig field in every cell (repeatable)")
    p.add_argument("--out", default=None, help="the sweep folder (sweep.json, run folders, "
                                               "results, table.md, logs)")
    p.add_argument("--table", default=None, metavar="DIR",
                   help="only rebuild and print the tables of the sweep in DIR (no training)")
    p.add_argument("--list", action="store_true", help="list the cells and which are done")
    p.add_argument("--no-bars", action="store_true", help="no progress bar over the cells")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default $PROMIX_DATA_DIR or ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default $PROMIX_CIFARN_DIR)")
    add_launcher_args(p, default="local")


def describe(launcher: Launcher) -> str:
    """Where the cells run, for the line a sweep starts with."""
    if launcher.kind == "local":
        return (f"{launcher.jobs} local job(s) x {launcher.threads} thread(s), logs in "
                f"{launcher.log_dir}")
    if launcher.kind == "slurm":
        p = launcher.parameters
        return (f"a SLURM job array (partition {p.get('slurm_partition', 'default')}, "
                f"{p['gpus_per_node']} GPU(s) and {p['cpus_per_task']} CPUs per cell, "
                f"{p['timeout_min']} min), logs in {launcher.log_dir}")
    return "this process, one cell after another"
