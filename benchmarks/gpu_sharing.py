"""How much more training one GPU does when several runs share it.

A `fast` ProMix step can leave a large GPU far from full (a small network, many short kernels:
docs/gpu.md#sharing), so runs side by side may train more in the same time. This measures it.
For each N in ``--processes``: N processes each build a trainer of ``--preset`` on ``--n``
images (benchmarks/throughput.make_trainer: the ProMix step of both networks, every loss term
on), run one untimed epoch (CUDA context, cuDNN autotuning), wait until all N are ready, then
run ``--epochs`` timed epochs together. Per N:

- ``makespan_s``: from the common start to the last process's end;
- ``images_per_s``: images through the ProMix step of all N processes per second (aggregate);
- ``gain``: that aggregate over N = 1's;
- ``slowdown``: the makespan over N = 1's, i.e. how much longer one run takes when N share the
  GPU: what benchmarks/accuracy_gpu.py --sharing multiplies its time guesses by.

``best`` is the N with the highest aggregate, or 1 unless it beats N = 1 by ``--min-gain``.
Each process gets cores / N threads. Writes JSON with ``--out`` and prints a table.

Usage: python benchmarks/gpu_sharing.py [--preset fast] [--n 12288] [--epochs 3]
           [--processes 1 2 4] [--device auto] [--out gpu_sharing.json]
(``--child`` is the mode of the processes it starts.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BARRIER_TIMEOUT_S = 600


def child(args) -> int:
    """One of the N processes: build, warm up, tell the parent it is ready, wait for the common
    start, train ``--epochs`` epochs, write its figures to DIR/result_RANK.json."""
    import torch
    sys.path.insert(0, str(HERE))
    from step_profile import epoch  # the real loop's ProMix epoch, as step_profile.py times it
    from throughput import make_trainer

    torch.set_num_threads(args.threads)
    folder = Path(args.child)
    with tempfile.TemporaryDirectory() as tmp:
        tr = make_trainer(args.preset, args.n, args.device, tmp)
        epoch(tr, 0)
        tr._sync()
        (folder / f"ready_{args.rank}").touch()
        waited = time.time()
        while not (folder / "go").exists():
            if time.time() - waited > BARRIER_TIMEOUT_S:
                raise SystemExit(f"gpu_sharing child {args.rank}: no start signal in "
                                 f"{BARRIER_TIMEOUT_S} s")
            time.sleep(0.01)
        start = time.time()
        images = 0
        for e in range(1, args.epochs + 1):
            images += epoch(tr, e).images
        tr._sync()
        end = time.time()
        cuda = tr.device.type == "cuda"
        device_name = torch.cuda.get_device_name(tr.device) if cuda else "cpu"
        memory = torch.cuda.max_memory_allocated(tr.device) / 2**30 if cuda else None
    (folder / f"result_{args.rank}.json").write_text(json.dumps(
        {"start": start, "end": end, "images": images, "device_name": device_name,
         "model": tr.cfg.model, "batch_size": tr.cfg.batch_size, "max_memory_gib": memory}))
    return 0


def run_together(n_proc: int, args) -> dict:
    """Start ``n_proc`` children, release them together once all are ready, collect them."""
    threads = max(1, (os.cpu_count() or 1) // n_proc)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent)] + (
               [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    with tempfile.TemporaryDirectory(prefix="gpu-sharing-") as tmp:
        folder = Path(tmp)
        procs = [subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", tmp, "--rank", str(k),
             "--threads", str(threads), "--preset", args.preset, "--n", str(args.n),
             "--epochs", str(args.epochs), "--device", args.device],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for k in range(n_proc)]
        t0 = time.time()
        try:
            while not all((folder / f"ready_{k}").exists() for k in range(n_proc)):
                dead = [p for p in procs if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"a gpu_sharing process ended before the start (exit "
                                       f"{dead[0].returncode}):\n{dead[0].stdout.read()[-3000:]}")
                if time.time() - t0 > BARRIER_TIMEOUT_S:
                    raise RuntimeError(f"{n_proc} processes not ready in {BARRIER_TIMEOUT_S} s")
                time.sleep(0.05)
            (folder / "go").touch()
            for p in procs:
                out = p.communicate()[0]
                if p.returncode != 0:
                    raise RuntimeError(f"a gpu_sharing process failed (exit {p.returncode}):\n"
                                       f"{out[-3000:]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        results = [json.loads((folder / f"result_{k}.json").read_text())
                   for k in range(n_proc)]
    start = min(r["start"] for r in results)
    makespan = max(r["end"] for r in results) - start
    memory = max((r["max_memory_gib"] or 0) for r in results) or None  # None on a CPU
    return {"processes": n_proc, "threads_per_process": threads,
            "makespan_s": round(makespan, 3),
            "images_per_s": round(sum(r["images"] for r in results) / makespan, 1),
            "per_process_images_per_s": [round(r["images"] / (r["end"] - r["start"]), 1)
                                         for r in results],
            "late_start_s": round(max(r["start"] for r in results) - start, 3),
            "max_memory_gib_per_process": memory,
            "device_name": results[0]["device_name"], "model": results[0]["model"],
            "batch_size": results[0]["batch_size"]}


def summarize(runs: list[dict], min_gain: float) -> dict:
    """Gain and slowdown against the one-process run, and the best N (a pure function of the
    measured runs; ``runs`` must include N = 1)."""
    solo = next((r for r in runs if r["processes"] == 1), None)
    if solo is None:
        raise ValueError("the runs must include --processes 1 (the baseline)")
    out = [{**r, "gain": round(r["images_per_s"] / solo["images_per_s"], 3),
            "slowdown": round(r["makespan_s"] / solo["makespan_s"], 3)} for r in runs]
    top = max(out, key=lambda r: r["images_per_s"])
    best = top["processes"] if top["gain"] >= min_gain else 1
    return {"runs": out, "best": best, "min_gain": min_gain}


def measured_counts(record: dict | None) -> list[int]:
    """The numbers of runs at once that ``record`` measured ([1] without a record)."""
    return sorted(r["processes"] for r in record["runs"]) if record else [1]


def slowdown(record: dict | None, n: int) -> float:
    """How much longer one run takes when ``n`` share the GPU: ``record``'s measurement, or
    ``n`` itself (no gain assumed) when ``n`` was not measured."""
    if n < 1:
        raise ValueError(f"the number of runs at once must be at least 1, got {n}")
    runs = {r["processes"]: r for r in (record or {}).get("runs", [])}
    return float(runs[n]["slowdown"]) if n in runs else float(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--n", type=int, default=12288, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--min-gain", type=float, default=1.15,
                    help="best N must train this much more than one process, else best is 1")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if 1 not in args.processes or min(args.processes) < 1:
        ap.error(f"--processes must be at least 1 and include 1 (the baseline), got "
                 f"{args.processes}")
    if args.epochs < 1 or args.n < 1:
        ap.error("--epochs and --n must be at least 1")
    runs = []
    for n_proc in sorted(set(args.processes)):
        runs.append(run_together(n_proc, args))
        r = runs[-1]
        print(f"{n_proc} process(es): {r['images_per_s']:.0f} img/s together, makespan "
              f"{r['makespan_s']:.1f} s", flush=True)
    import torch
    from promix_tutorial.results import hardware
    rec = {"preset": args.preset, "n_images_per_epoch": args.n, "epochs": args.epochs,
           **summarize(runs, args.min_gain), "device_name": runs[0]["device_name"],
           "model": runs[0]["model"], "batch_size": runs[0]["batch_size"],
           "torch": torch.__version__, "cuda": torch.version.cuda, "hardware": hardware(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": "python benchmarks/gpu_sharing.py " + " ".join(
               argv if argv is not None else sys.argv[1:])}
    print(f"{args.preset} on {rec['device_name']}, {args.n} images x {args.epochs} epochs per "
          f"process:")
    print("  processes  img/s together  gain  slowdown of one run")
    for r in rec["runs"]:
        print(f"  {r['processes']:>9}  {r['images_per_s']:>14.0f}  {r['gain']:>4.2f}  "
              f"{r['slowdown']:>8.2f}")
    print(f"  best: {rec['best']} process(es) at once")
    if args.out:
        from promix_tutorial.runs import save_json
        save_json(args.out, rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
