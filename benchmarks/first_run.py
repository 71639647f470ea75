"""How long README's first command takes on a CPU that one other job shares.

Runs the main command (`promix train --dataset digits --noise sym:0.5 --preset tiny`) while a
second process keeps the cores busy (a loop of float32 matrix products with PyTorch's default
threads, as an unconfigured training would), once with the thread count the CLI chooses (one
thread for ``tiny``) and once with PyTorch's default threads (``--threads`` = the cores, what the
CLI did before it chose), and writes the wall times with their provenance:

    python benchmarks/first_run.py --out benchmarks/results/first_run_cpu.json

Each mode runs ``--repeats`` times, alternating; the record keeps every time, the load
average before each run, the hardware and the command. Nothing here is a test: timings on a
shared machine are noisy, so the script prints figures and a test only checks it runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = ["promix", "train", "--dataset", "digits", "--noise", "sym:0.5", "--preset", "tiny",
        "--no-bars"]
BUSY = ("import os, torch\n"
        "a = torch.randn(1024, 1024)\n"
        "parent = os.getppid()\n"
        "while os.getppid() == parent:  # ends with the script, even if it is killed\n"
        "    a = (a @ a).tanh()\n")


def run_main(out: Path, extra: list[str], epochs: int | None) -> tuple[float, str]:
    """Wall seconds of the main command into ``out`` and its header line."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    argv = [sys.executable, "-m", "promix_tutorial.cli"] + MAIN[1:] + ["--out", str(out)] + extra
    if epochs is not None:  # the smoke test's short run: warm-up and LGA start early too
        argv += ["--epochs", str(epochs), "--set", "warmup_epochs=1", "--set", "lga_start=1"]
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the main command failed: {done.stderr.strip()[-500:]}")
    return wall, done.stdout.splitlines()[0].replace(str(out), "DIR")  # no temporary path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/first_run_cpu.json")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--other-threads", type=int, default=None,
                    help="threads of the other job (default: PyTorch's default, the cores)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="shorter runs (the smoke test); default: the preset's 30")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if args.other_threads:
        env["OMP_NUM_THREADS"] = str(args.other_threads)
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env=env)
    runs = []
    try:
        time.sleep(3)  # the other job is running before the first measurement
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for mode, extra in (("chosen", []), ("default threads", ["--threads", str(cores)])):
                    load = os.getloadavg()[0]
                    wall, header = run_main(Path(tmp) / f"{r}_{len(runs)}", extra, args.epochs)
                    runs.append({"mode": mode, "seconds": round(wall, 1), "load_before": load,
                                 "header": header})
                    print(f"{mode:>15}: {wall:6.1f} s  (load average before {load:.1f})",
                          flush=True)
    finally:
        busy.kill()
        busy.wait()
    import platform
    import torch
    from promix_tutorial.results import hardware
    summary = {m: sorted(r["seconds"] for r in runs if r["mode"] == m)
               for m in ("chosen", "default threads")}
    record = {"what": "wall seconds of README's main command with one other CPU job beside it",
              "command": "python benchmarks/first_run.py " + shlex.join(argv or sys.argv[1:]),
              "main_command": shlex.join(MAIN + ["--out", "DIR"]),
              "other_job": "a Python process multiplying 1024x1024 float32 matrices in a loop "
                           f"with {args.other_threads or 'PyTorch default'} threads",
              "epochs": args.epochs or 30, "cores": cores, "runs": runs, "seconds": summary,
              "hardware": hardware(), "python": platform.python_version(),
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
