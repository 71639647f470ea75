"""The `fast` preset's first epochs on a CPU, per learning-rate schedule and logit scale.

Each run is CE (one network, the schedule of ProMix's warm-up) or ProMix at sym:0.8, seed 0, on
full CIFAR-10 (fast_cnn (64, 256, 256), batch 512), stopped by hand after a few epochs, made by

  OMP_NUM_THREADS=1 PROMIX_CIFAR10_NPZ=... promix train --preset fast --baseline ce \\
      --noise sym:0.8 --device cpu --no-bars --out runs/probe_fast/NAME [--set ...]

with the ``--set`` options of `RUNS` (the ProMix runs of `PROMIX_RUNS` without ``--baseline
ce``), relative to the fast preset of the time (fast_cnn (64, 256, 256), 60 epochs, logits x
1/9, the recipe's per-epoch cosine from lr 0.1); each run's history records its full config.
This script copies each run's history.json into
benchmarks/probes/results/fast_schedule_cpu/NAME.json and writes the per-epoch table (test
accuracy, mean training loss, lr at the epoch's start; for ProMix runs CSS's selection per epoch
beside the shipped GPU reference run) to fast_schedule_cpu.md next to it. What it showed:
docs/calibration.md#fast-logit-scale.

  python benchmarks/probes/fast_schedule_cpu.py runs/probe_fast   # copy + table
  python benchmarks/probes/fast_schedule_cpu.py                   # table from the committed copies
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "probes" / "results" / "fast_schedule_cpu"
# the same config's first epochs on the H100 (test accuracy only), for comparison
H100_CELL = ROOT / "benchmarks" / "results" / "accuracy_gpu_2026-11-27" / "ce__sym0.8__seed0.json"
# run name -> its `promix train --set` options beyond the fast preset of the time, i.e. what it
# changes in the base runs ce80_recipe_scaled / promix80_recipe_scaled (every history records its
# full config; tests/test_probes.py checks the options against them)
ONE_CYCLE = ("--set lr_min=0 --set lr_per_step=true --set lr_warmup_frac=0.1 "
             "--set nesterov=true")  # a linear rise over 10% of the steps, cosine to 0, per step
UNSCALED = "--set logit_scale=1"  # the network's logits without airbench's 1/9
RUNS = {
    "ce80_recipe": UNSCALED + "  (the archived fast preset of accuracy_gpu_2026-11-27)",
    "ce80_warm5": "--set lr_min=0 --set lr_per_step=true --set lr_warmup_frac=0.05 " + UNSCALED,
    "ce80_oc_lr0.04": f"--set lr=0.04 {ONE_CYCLE} {UNSCALED}",
    "ce80_oc_lr0.02": f"--set lr=0.02 {ONE_CYCLE} {UNSCALED}",
    "ce80_recipe_scaled": "(none: the fast preset of the time)",
    "ce80_oc_lr0.1_scaled": ONE_CYCLE,
}


# ProMix runs (both networks' warm-up, then ProMix epochs), stopped by hand: the command above
# without ``--baseline ce``. Their table sets each epoch's selection beside the shipped GPU
# reference run of the same noise and seed (`GPU_PROMIX`, whatever preset it was made with: its
# manifest entry says which).
PROMIX_RUNS = {
    "promix80_recipe_scaled": "(none: the fast preset of the time)",
}
GPU_PROMIX = "promix__sym0.8__seed0"
ALL_RUNS = {**RUNS, **PROMIX_RUNS}


def options(name: str) -> list[str]:
    """The ``--set`` arguments of run ``name`` (its entry without the words in brackets)."""
    return ALL_RUNS[name].split("(")[0].split()


def table(results: Path) -> str:
    hists = {name: json.loads((results / f"{name}.json").read_text())
             for name in RUNS if (results / f"{name}.json").is_file()}
    if not hists:
        return "(no runs copied yet)"
    n = max(len(h["epochs"]) for h in hists.values())
    lines = ["| run | options | " + " | ".join(f"epoch {e + 1}" for e in range(n)) + " |",
             "|" + "---|" * (n + 2)]
    for name, h in hists.items():
        cells = [f"{r['test_acc']:.1%} ({r['losses']['total']:.2f}, lr {r['lr']:.3g})"
                 for r in h["epochs"]]
        lines.append(f"| {name} | {RUNS[name]} | " + " | ".join(cells + [""] * (n - len(cells)))
                     + " |")
    h100 = json.loads(H100_CELL.read_text())["test_acc_per_epoch"][:n]
    lines.append("| H100 | the archived cell accuracy_gpu_2026-11-27/ce__sym0.8__seed0 "
                 "(bfloat16) | " + " | ".join(f"{a:.1%}" for a in h100) + " |")
    return ("\n".join(lines) + "\n\nEach entry: test accuracy on all 10,000 test images (mean "
            "training loss, lr at the epoch's start). CE, sym:0.8, seed 0, full CIFAR-10 "
            "(offline JPEG-75 copy), a 2-core x86-64 CPU, two runs side by side with "
            "one thread each (ce80_recipe_scaled's epochs 6-8 resumed alone with two threads), "
            "2026-11-28. A uniform guess has loss ln 10 = 2.30.")


def _sel(s: dict | None) -> str:
    return f"{s['precision']:.2f} / {s['recall']:.2f} / {s['f1']:.2f}" if s else ""


def _acc(r: dict) -> str:
    return f"{r['test_acc']:.1%} ({', '.join(f'{a:.1%}' for a in r['test_acc_nets'])})"


def _gpu_reference():
    """The shipped GPU run `GPU_PROMIX` (records and manifest entry), or None."""
    from promix_tutorial.reference import ReferenceRunError, load_reference
    try:
        return load_reference(GPU_PROMIX)
    except ReferenceRunError:
        return None


def promix_table(results: Path, name: str) -> str:
    """Per epoch of ProMix run ``name``: the ensemble's (and each network's) test accuracy; the
    precision / recall / F1 of CSS's selection for the next epoch (``css_next``, network 1; after
    the last warm-up epoch it is ProMix's first selection); the best F1 of the tuned small-loss
    and GMM baselines on the same losses; in ProMix epochs the labeled set (size, share of
    correct targets) and MHCS's picks (Eq. 3: count, precision); beside them the GPU run's test
    accuracy and CSS selection at the same epoch."""
    h = json.loads((results / f"{name}.json").read_text())
    gpu = _gpu_reference()
    g = {r["epoch"]: r for r in gpu.records} if gpu else {}
    lines = ["| epoch | phase | test acc (nets) | CSS next P / R / F1 | small-loss F1 | GMM F1 "
             "| labeled (target acc) | MHCS (P) | GPU test acc | GPU CSS next P / R / F1 |",
             "|" + "---|" * 10]
    for r in h["epochs"]:
        sel, gr = r.get("selection"), g.get(r["epoch"])
        lab = (f"{sel['labeled']['count']:,} ({sel['labeled']['target_acc']:.2f})"
               if sel else "")
        mhcs = f"{sel['mhcs']['count']:,} ({sel['mhcs']['precision']:.2f})" if sel else ""
        lines.append(
            f"| {r['epoch'] + 1} | {r['phase']} | {_acc(r)} | {_sel(r.get('css_next'))} "
            f"| {r['baselines']['small_loss']['f1']:.2f} | {r['baselines']['gmm']['f1']:.2f} "
            f"| {lab} | {mhcs} | {_acc(gr) if gr else ''} "
            f"| {_sel(gr.get('css_next')) if gr else ''} |")
    info, secs = h["info"], [r["seconds"] for r in h["epochs"]]
    gpu_text = (f"GPU: the shipped reference run {GPU_PROMIX} ({gpu.entry['device_name']}, "
                f"{gpu.entry['preset']}, finished {gpu.entry['finished']})" if gpu else
                f"GPU: no reference run {GPU_PROMIX} is shipped")
    return (f"### {name}: {PROMIX_RUNS[name]}\n\n" + "\n".join(lines) + "\n\n"
            f"ProMix (both networks), sym:0.8, seed 0, full CIFAR-10 (offline JPEG-75 copy, "
            f"{info['n_train']:,} training images, actual noise rate {info['actual_noise_rate']:.3f}), "
            f"test accuracy on all {info['n_test']:,} test images; device {info['device']}, torch "
            f"{info['torch']}; {len(secs)} epochs of {min(secs):.0f}-{max(secs):.0f} s of "
            f"training each (evaluation not counted), then stopped by hand. {gpu_text}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="?", type=Path, default=None,
                    help="folder holding the run folders of `RUNS` (their histories are copied "
                         "in); without it the table is rebuilt from the committed copies")
    args = ap.parse_args(argv)
    if args.runs is not None:
        src = args.runs
        for name in ALL_RUNS:
            if (src / name / "history.json").is_file():
                RESULTS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / name / "history.json", RESULTS / f"{name}.json")
    text = table(RESULTS)
    promix = [promix_table(RESULTS, n) for n in PROMIX_RUNS if (RESULTS / f"{n}.json").is_file()]
    if promix:
        text += ("\n\n## ProMix: warm-up and first ProMix epochs\n\nRun by the command above "
                 "without `--baseline ce`, alone with two threads (OMP_NUM_THREADS=2) on the "
                 "same CPU, 2026-12-03.\n\n" + "\n\n".join(promix))
    (RESULTS.parent / "fast_schedule_cpu.md").write_text(
        "# The fast preset's first epochs on a CPU, per schedule\n\n"
        "Built by `python benchmarks/probes/fast_schedule_cpu.py` (its docstring has the "
        "commands).\n\n"
        + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
