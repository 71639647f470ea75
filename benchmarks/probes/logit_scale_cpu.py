"""The `fast` preset's logit scale (x 1/9, airbench's) tried on the `cpu` preset, and what it
does to the confidence MHCS (Eq. 3) and LGA need.

Each run is the cpu preset at seed 0 unless its options say otherwise (5,000 / 2,000 images of
the offline CIFAR-10 copy, JPEG quality 75), made by

  OMP_NUM_THREADS=1 PROMIX_CIFAR10_NPZ=... promix train --dataset cifar10 --preset cpu \\
      --seed 0 --device cpu --no-bars --out runs/probe_scaled/NAME OPTIONS

with the OPTIONS of `RUNS`. This script reads each run folder and writes a summary per run to
benchmarks/probes/results/logit_scale_cpu/NAME.json (the per-epoch test accuracy, selection
counts, and from the saved per-sample arrays of the recorded epochs how many training samples
network 1 predicts as their given label with a confidence of at least 0.95 and 0.99, i.e. what
MHCS at either tau would see, on the unaugmented images in eval mode), and the table to
logit_scale_cpu.md next to it. What it showed: docs/calibration.md#logit-scale-on-cpu.

  python benchmarks/probes/logit_scale_cpu.py runs/probe_scaled   # summarise + table
  python benchmarks/probes/logit_scale_cpu.py                     # table from the summaries
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from promix_tutorial.runs import RunHistory
from promix_tutorial.selection import matched_high_confidence

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "probes" / "results" / "logit_scale_cpu"
ACCURACY_CPU = ROOT / "benchmarks" / "results" / "accuracy_cpu"
SCALE = "--set logit_scale=0.1111111111111111"
RECORD = "--set record_epochs=9,24"
RUNS = {  # name -> options after the common command (the accuracy_cpu cell it compares with)
    "p80_scaled": (f"--noise sym:0.8 {SCALE} {RECORD}", "promix__sym0.8__seed0"),
    "ce80_scaled": (f"--noise sym:0.8 --baseline ce {SCALE} {RECORD}", "ce__sym0.8__seed0"),
    "p80_unscaled": (f"--noise sym:0.8 {RECORD}", "promix__sym0.8__seed0"),
    "p40a_scaled": (f"--noise asym:0.4 {SCALE} --set record_epochs=10,24",
                    "promix__asym0.4__seed0"),
    "p40a_unscaled": ("--noise asym:0.4 --set record_epochs=10,24", "promix__asym0.4__seed0"),
    "ce40a_scaled": (f"--noise asym:0.4 --baseline ce {SCALE}", "ce__asym0.4__seed0"),
    # a second seed of the asym:0.4 pair (the later --seed replaces the common command's)
    "p40a_scaled_s1": (f"--noise asym:0.4 --seed 1 {SCALE} --set record_epochs=10,24",
                       "promix__asym0.4__seed1"),
    "ce40a_scaled_s1": (f"--noise asym:0.4 --seed 1 --baseline ce {SCALE}", "ce__asym0.4__seed1"),
}
TAUS = (0.95, 0.99)


def options(name: str) -> list[str]:
    """The command-line options of run ``name`` (beyond the common command above)."""
    return RUNS[name][0].split()


def confident_matches(samples: dict) -> dict:
    """What MHCS (Eq. 3, `selection.matched_high_confidence`) at each tau of `TAUS` would
    select from one saved epoch's per-sample arrays (`RunHistory.samples`), network 1: how many
    samples, and how many of those are truly clean; plus the median largest probability."""
    probs = torch.from_numpy(samples["probs"][0].astype(np.float32))
    noisy, clean = torch.from_numpy(samples["noisy"]), torch.from_numpy(samples["clean"])
    out = {"epoch": int(samples["epoch"]),
           "median_confidence": round(float(np.median(probs.max(1).values.numpy())), 4)}
    for tau in TAUS:
        hit = matched_high_confidence(probs, noisy, tau)
        out[f"matched_at_{tau}"] = int(hit.sum())
        out[f"matched_at_{tau}_clean"] = int((hit & (noisy == clean)).sum())
    return out


def summarise(run: Path, name: str) -> dict:
    """The summary of one run folder (see the module docstring)."""
    hist = RunHistory(run)
    cfg, epochs = hist.config, hist.records
    summary = {"name": name, "options": RUNS[name][0], "compares_with": RUNS[name][1],
               "config": cfg, "info": hist.info, "epochs_done": len(epochs),
               "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(
                   (run / "history.json").stat().st_mtime)),
               "final_acc": hist.final_accuracy(),
               "test_acc_per_epoch": [round(a, 4) for a in hist.series("test_acc").tolist()],
               "seconds": round(float(np.nansum(hist.series("seconds"))), 1)}
    if cfg["method"] == "promix":
        w = cfg["warmup_epochs"]
        summary["warmup_end_acc"] = epochs[w - 1]["test_acc"] if len(epochs) >= w else None
        summary["selection_per_epoch"] = [
            {"epoch": r["epoch"], "css": r["selection"]["css"]["count"],
             "mhcs": r["selection"]["mhcs"]["count"],
             "mhcs_precision": r["selection"]["mhcs"]["precision"],
             "beyond_css": r["selection"]["union"]["count"] - r["selection"]["css"]["count"],
             "lga": r["selection"]["lga"]["count"],
             "union_precision": r["selection"]["union"]["precision"]}
            for r in epochs if r["phase"] == "promix"]
    summary["confidence"] = [confident_matches(hist.samples(e)) for e in hist.sample_epochs()]
    return summary


def _cell_final(cell: str) -> float | None:
    path = ACCURACY_CPU / f"{cell}.json"
    return json.loads(path.read_text())["final_acc"] if path.is_file() else None


def table(results: Path) -> str:
    rows = {n: json.loads((results / f"{n}.json").read_text())
            for n in RUNS if (results / f"{n}.json").is_file()}
    if not rows:
        return "(no runs summarised yet)"
    lines = ["| run | options | last-epoch test acc | committed cell (unscaled) | warm-up end "
             "| MHCS count, first / last ProMix epoch (precision) | LGA, last epoch "
             "| beyond CSS, max "
             "| matched at 0.95 / 0.99 (clean), per saved epoch | median confidence |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, s in rows.items():
        cell = _cell_final(s["compares_with"])
        sel = s.get("selection_per_epoch") or []
        mh = (f"{sel[0]['mhcs']} / {sel[-1]['mhcs']} ({sel[-1]['mhcs_precision']:.2f})"
              if sel else "-")
        lga = str(sel[-1]["lga"]) if sel else "-"
        beyond = str(max(r["beyond_css"] for r in sel)) if sel else "-"
        conf = "; ".join(f"ep {c['epoch'] + 1}: {c['matched_at_0.95']} "
                         f"({c['matched_at_0.95_clean']}) / {c['matched_at_0.99']} "
                         f"({c['matched_at_0.99_clean']})" for c in s["confidence"]) or "-"
        med = "; ".join(f"{c['median_confidence']:.2f}" for c in s["confidence"]) or "-"
        warm = f"{s['warmup_end_acc']:.2%}" if s.get("warmup_end_acc") is not None else "-"
        done = "" if s["epochs_done"] == s["config"]["epochs"] else \
            f" (after {s['epochs_done']} of {s['config']['epochs']} epochs)"
        ref = f"{s['compares_with']}: {cell:.2%}" if cell is not None else "-"
        lines.append(f"| {n} | `{s['options']}` | **{s['final_acc']:.2%}**{done} | {ref} | "
                     f"{warm} | {mh} | {lga} | {beyond} | {conf} | {med} |")
    return ("\n".join(lines) + "\n\ncpu preset, seed 0 (or as the options say), 5,000 "
            "training / 2,000 test images of the offline CIFAR-10 copy (JPEG quality 75), a "
            "2-core x86-64 CPU, two runs side by side with one thread each, 2026-12-03. "
            "'matched at tau': training samples network 1 predicts as their given label with "
            "confidence >= tau, from the saved per-sample arrays (eval mode, no augmentation; "
            "MHCS itself reads the weak view during training), of 5,000; in brackets how many "
            "of them are truly clean.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="?", type=Path, default=None,
                    help="folder holding the run folders of `RUNS` (summarised); without it "
                         "the table is rebuilt from the committed summaries")
    args = ap.parse_args(argv)
    if args.runs is not None:
        src = args.runs
        for name in RUNS:
            if (src / name / "history.json").is_file():
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / f"{name}.json").write_text(
                    json.dumps(summarise(src / name, name), indent=1) + "\n")
    text = table(RESULTS)
    (RESULTS.parent / "logit_scale_cpu.md").write_text(
        "# The fast preset's logit scale on the cpu preset\n\n"
        "Built by `python benchmarks/probes/logit_scale_cpu.py` (its docstring has the "
        "commands).\n\n"
        + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
