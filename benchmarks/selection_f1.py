"""Fig. 3 at this machine's scale: clean-sample selection F1 per epoch of ProMix (CSS + MHCS of
network 1) vs DivideMix's GMM and small-loss selection, each tuned once for the whole run (one
threshold / forget rate, as the paper tuned them: `metrics.once_tuned`) and re-tuned for the best
F1 every epoch (an oracle), on the offline CIFAR-10 copy (JPEG quality 75).

The noise defaults to the one notebook 02 draws Fig. 3 at (`profiles.figure_noise`: the paper's
sym:0.8; these runs start from scratch, notebook 02's cpu runs from the shipped start). With
the `cpu` preset the ProMix run is the accuracy_cpu cell of that noise and seed (runs/accuracy_cpu/promix__<noise>__seed<seed>): a
finished run there is read, not retrained; otherwise it is trained (about 13 minutes on 2 idle
cores). The baselines are applied to the same network's eval-mode losses every epoch (recorded in
history.json by the trainer). It also applies CSS to network 1's last-epoch losses at budgets
R = 0.10 ... 0.90 (`css_budget_last_epoch`): whether ProMix's F1 is set by its budget or by the
ranking the baselines share.

Usage: python benchmarks/selection_f1.py [--seed 0] [--preset cpu] [--noise sym:0.8]
Writes benchmarks/results/selection_f1_<preset>_<noise>_seed<seed>.json and .png (noise as sym50).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")

from promix_tutorial.config import make_config  # noqa: E402
from promix_tutorial.profiles import figure_noise
from promix_tutorial.metrics import css_budget_f1, once_tuned  # noqa: E402
from promix_tutorial.runs import save_json  # noqa: E402
from promix_tutorial.plots import plot_selection_f1  # noqa: E402
from promix_tutorial.results import cell_name, hardware  # noqa: E402
from promix_tutorial.engine import train_or_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


BUDGETS = tuple(round(0.05 * i, 2) for i in range(2, 19))   # R = 0.10 ... 0.90


def budget_sweep(run, cfg) -> dict | None:
    """CSS of network 1 on its last epoch's eval losses at every R of `BUDGETS` and the preset's
    (`metrics.css_budget_f1`): is ProMix's F1 set by the ranking or by the budget? None when
    the run kept no per-sample arrays of its last epoch."""
    last = int(run.epochs[-1])
    if last not in run.sample_epochs():
        return None
    s = run.samples(last)
    ratios = sorted(set(BUDGETS) | {float(cfg.rho)})
    losses = torch.as_tensor(np.asarray(s["losses"])[0], dtype=torch.float32)
    noisy, clean = torch.as_tensor(s["noisy"]), torch.as_tensor(s["clean"])
    return {"epoch": last + 1, "network": 1, "preset_rho": float(cfg.rho),
            "rows": css_budget_f1(losses, noisy, noisy == clean, int(np.asarray(s["probs"]).shape[-1]),
                                  ratios)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="cpu", choices=["cpu", "fast", "tiny"])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "accuracy_cpu"),
                    help="folder of the ProMix run (reused when finished)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--noise", default=None,
                    help="default: notebook 02's (sym:0.8)")
    args = ap.parse_args(argv)
    noise = args.noise or figure_noise("fig3", "cpu" if args.preset == "cpu" else "gpu")
    kind, _, level = noise.partition(":")   # file names: sym:0.5 -> sym50, human:worst -> humanworst
    tag = kind + (str(round(100 * float(level))) if level.replace(".", "").isdigit() else level)
    dataset = "digits" if args.preset == "tiny" else "cifar10"
    extra = {} if args.epochs is None else dict(
        epochs=args.epochs, warmup_epochs=min(args.epochs - 1, 2), lga_start=args.epochs - 1)
    cfg = make_config(args.preset, dataset, noise, seed=args.seed, **extra)
    run_dir = Path(args.runs) / (cell_name("promix", "none", noise, args.seed)
                                 if args.preset == "cpu" else f"{args.preset}_{tag}_seed{args.seed}")
    run = train_or_load(cfg, run_dir, progress=False)
    series = {
        "epoch": [int(e) + 1 for e in run.epochs],
        "promix_css_mhcs": run.series("selection.union.f1").tolist(),
        "promix_precision": run.series("selection.union.precision").tolist(),
        "promix_recall": run.series("selection.union.recall").tolist(),
        "gmm_tuned": run.series("baselines.gmm.f1").tolist(),
        "gmm_threshold": run.series("baselines.gmm.threshold").tolist(),
        "small_loss_tuned": run.series("baselines.small_loss.f1").tolist(),
        "small_loss_forget_rate": run.series("baselines.small_loss.forget_rate").tolist(),
    }
    once = {}   # the paper's tuning: one threshold / forget rate for the whole run
    for k in ("gmm", "small_loss"):
        value, f1 = once_tuned(run.records, k)
        once[k] = value
        series[f"{k}_once"] = [None if v != v else float(v) for v in f1]   # NaN -> null
    budget = budget_sweep(run, cfg)
    stem = Path(args.out) / f"selection_f1_{args.preset}_{tag}_seed{args.seed}"
    ax = plot_selection_f1(run, title=f"selection F1, {cfg.dataset} {noise}, {args.preset} preset")
    ax.figure.savefig(stem.with_suffix(".png"), dpi=120, bbox_inches="tight")
    last = {k: v[-1] for k, v in series.items()}
    save_json(stem.with_suffix(".json"), {
        "series": series, "last_epoch": last, "once_tuned": {"gmm_threshold": once["gmm"],
                                                              "small_loss_forget_rate":
                                                              once["small_loss"]},
        "css_budget_last_epoch": budget,
        "run": str(run_dir.relative_to(ROOT))
        if run_dir.is_relative_to(ROOT) else str(run_dir),
        "final_test_acc": run.final_accuracy(), "config": run.config, "info": run.info,
        "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "data": "offline CIFAR-10 copy (JPEG quality 75)" if dataset == "cifar10" else dataset,
        "command": f"python benchmarks/selection_f1.py --seed {args.seed} --preset {args.preset} "
                   f"--noise {noise}"})
    f = {k: "n/a" if v is None else f"{v:.3f}" for k, v in last.items()}  # runs without grids
    print(f"last epoch F1: ProMix (CSS+MHCS) {f['promix_css_mhcs']}; GMM tuned once "
          f"{f['gmm_once']} (threshold {once['gmm']}), every epoch {f['gmm_tuned']}; "
          f"small-loss tuned once {f['small_loss_once']} (forget rate {once['small_loss']}), "
          f"every epoch {f['small_loss_tuned']}")
    if budget is not None:
        best = max(budget["rows"], key=lambda r: r["f1"])
        at_r = next(r for r in budget["rows"] if abs(r["rho"] - cfg.rho) < 1e-9)
        print(f"CSS on the same last-epoch losses at other budgets: best F1 {best['f1']:.3f} at "
              f"R = {best['rho']:.2f} ({best['count']} samples); the preset's R = {cfg.rho:.2f}: "
              f"{at_r['f1']:.3f}")
    print(f"wrote {stem}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
