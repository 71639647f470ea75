"""Cells: table cells trained on one machine or on a SLURM cluster through submitit, the one
runner every benchmark script and `promix sweep` use.

A cell is one training run and its results file: a `Cell` holds its config, its run folder and
where its record goes (`run_cell` trains it, resuming from the run folder's checkpoint,
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
"""
from __future__ import annotations

import contextlib
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

from .config import TrainConfig

LAUNCHERS = ("local", "slurm", "inline")
LOCAL_TIMEOUT_MIN = 30 * 24 * 60  # the LocalExecutor's default limit is 2 minutes; ours: none
SLURM_TIME_MIN = 240
SLURM_THREADS = 4
POLL_SECONDS = {"inline": 0.0, "local": 1.0, "slurm": 30.0}


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
    """A `Cell` named by `results.config_cell_name` (the name of its results file)."""
    from .results import config_cell_name
    return Cell(config_cell_name(cfg), cfg, Path(run_dir),
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

def run_cell(cfg: TrainConfig, run_dir: str | os.PathLike, results_dir: str | os.PathLike,
             command: str, data: str, lines: bool = True, extra: dict | None = None) -> dict:
    """Train one table cell into ``run_dir`` (resuming an interrupted run there), then write its
    record (`summarize_run`, plus the fields of ``extra``) to ``results_dir/CELL.json`` and
    return it. With ``lines``: a ``[run ]`` line before, the epoch lines, and a ``[done]`` line
    (`done_line`) after."""
    from .engine import train  # here: `promix --help` reads this module without torch
    from .results import config_cell_name, done_line, summarize_run, write_cell
    name = config_cell_name(cfg)
    if lines:
        print(f"[run ] {name}", flush=True)
    out = Path(run_dir)
    resume = (out / "checkpoint.pt").is_file()
    t0 = time.perf_counter()
    hist = train(cfg, out, resume=resume, progress=False, epoch_lines=lines)
    wall = time.perf_counter() - t0
    if resume:  # the wall time of the earlier part is not known; count its training seconds
        wall = float(sum(hist.series("seconds")))
    record = {**summarize_run(hist, wall, command, data), **(extra or {})}
    write_cell(results_dir, record)
    if lines:
        print(done_line(record), flush=True)
    return record



class LaneJob:
    """What each submitted job runs: train ``cells`` one after another (`run_cell`) and
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
    trainings running (the run folders' locks then kept a restarted sweep off them).
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
    (inline: `run_cell` prints it, with the epoch lines) and ``[fail] CELL: why; log:
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


# ----------------------------------------------------------------------------- launchers

def launcher_from_args(args, cells: list[Cell], log_dir, gpus: int = 0,
                       name: str = "promix-sweep") -> Launcher:
    """The `Launcher` the options of `cli.add_launcher_args` ask for (ValueError for a bad value);
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
