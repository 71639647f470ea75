"""How long one whole run of a preset takes on this machine, ProMix and CE, from a few timed
epochs. The `cpu` preset's targets: one ProMix run <= 15 minutes and one CE run <= 4 on an idle
2-core CPU.

This script times the two kinds of epoch instead of whole runs and projects: ProMix = warm-up
epochs x (mean warm-up epoch) + ProMix epochs x (mean ProMix epoch); CE = epochs x (mean CE
epoch). It trains ProMix for the preset's warm-up plus ``--promix-epochs`` ProMix epochs and CE
for ``--ce-epochs`` epochs (sym:0.5, seed 0, into a temporary folder), with the threads torch
picks (all cores) unless OMP_NUM_THREADS says otherwise. An epoch's seconds (history.json)
include its evaluation on the test images. LGA (the last epochs) adds a little that the
projection leaves out, and so does the first epoch's start-up, which is counted. Read the
figures with the load average printed beside them; the machine should be idle.

Usage: python benchmarks/preset_time.py [--preset cpu] [--dataset cifar10] [--promix-epochs 3]
           [--ce-epochs 5] [--out benchmarks/results/preset_time_cpu.json]
Needs PROMIX_CIFAR10_NPZ for the cifar10 presets (`promix data`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from promix_tutorial.config import make_config
from promix_tutorial.runs import RunHistory
from promix_tutorial.results import hardware
from promix_tutorial.engine import train

ROOT = Path(__file__).resolve().parents[1]
LIMITS_MIN = {"cpu": {"promix": 15, "ce": 4}}  # the cpu preset's targets, idle 2-core CPU


def timed_epochs(cfg, folder: Path) -> dict[str, list[float]]:
    """Train ``cfg`` into ``folder``; its epoch seconds per phase (warmup / promix / ce)."""
    train(cfg, folder, progress=False)
    out: dict[str, list[float]] = {}
    for rec in RunHistory(folder).records:
        out.setdefault(rec["phase"], []).append(float(rec["seconds"]))
    return out


def project(full, phases: dict[str, list[float]]) -> dict:
    """Minutes of a whole run of ``full`` (the preset's config) from the timed epochs."""
    mean = {k: statistics.fmean(v) for k, v in phases.items()}
    if full.method == "ce":
        seconds = full.epochs * mean["ce"]
    else:
        seconds = full.warmup_epochs * mean["warmup"] + (full.epochs - full.warmup_epochs) * mean["promix"]
    return {"epoch_seconds": {k: [round(s, 2) for s in v] for k, v in phases.items()},
            "mean_epoch_seconds": {k: round(v, 2) for k, v in mean.items()},
            "epochs": full.epochs, "projected_minutes": round(seconds / 60, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--promix-epochs", type=int, default=3, help="ProMix epochs after warm-up")
    ap.add_argument("--ce-epochs", type=int, default=5)
    ap.add_argument("--out", default=None,
                    help="results JSON (default benchmarks/results/preset_time_PRESET.json)")
    args = ap.parse_args(argv)
    if args.promix_epochs < 1 or args.ce_epochs < 1:
        ap.error("--promix-epochs and --ce-epochs must be at least 1")
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"preset_time_{args.preset}.json")
    load_before = os.getloadavg()
    result = {"preset": args.preset, "dataset": args.dataset, "noise": "sym:0.5", "seed": 0,
              "hardware": hardware(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "load_average_before": list(load_before),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python benchmarks/preset_time.py " + " ".join(argv or sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="promix-preset-time-") as tmp:
        for method in ("promix", "ce"):
            full = make_config(args.preset, args.dataset, "sym:0.5", method=method)
            short = (full.warmup_epochs + args.promix_epochs if method == "promix"
                     else args.ce_epochs)
            cfg = full.replace(epochs=short, lga_start=max(full.lga_start, short))
            t0 = time.perf_counter()
            phases = timed_epochs(cfg, Path(tmp) / method)
            result[method] = dict(project(full, phases), timed_epochs=short,
                                  wall_seconds=round(time.perf_counter() - t0, 1))
            limit = LIMITS_MIN.get(args.preset, {}).get(method)
            result[method]["limit_minutes"] = limit
            print(f"{method:>6}: {short} epochs timed, mean epoch "
                  f"{result[method]['mean_epoch_seconds']} s -> a whole {full.epochs}-epoch run "
                  f"~{result[method]['projected_minutes']:.1f} min"
                  + (f" (limit {limit} min)" if limit else ""), flush=True)
    result["load_average_after"] = list(os.getloadavg())
    print(f"load average before {load_before[0]:.2f}, after {result['load_average_after'][0]:.2f}; "
          f"torch threads {result['hardware']['torch_threads']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
