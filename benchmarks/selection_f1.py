"""Fig. 3 at this machine's scale: clean-sample selection F1 per epoch of ProMix (CSS + MHCS of
network 1) vs DivideMix's GMM and small-loss selection (each re-tuned for the best F1 every epoch,
as in the paper), at 80% symmetric noise with the `cpu` preset on the offline CIFAR-10 copy
(JPEG quality 75).

The ProMix run is the accuracy_cpu cell `promix__sym0.8__seed0` (runs/accuracy_cpu/...): a
finished run there is read, not retrained; otherwise it is trained (about 11 minutes on 2 idle
cores). The baselines are applied to the same network's eval-mode losses every epoch (recorded in
history.json by the trainer).

Usage: python benchmarks/selection_f1.py [--seed 0] [--preset cpu]
Writes benchmarks/results/selection_f1_<preset>_sym80_seed<seed>.json and .png.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from promix_tutorial.config import make_config  # noqa: E402
from promix_tutorial.history import save_json  # noqa: E402
from promix_tutorial.plots import plot_selection_f1  # noqa: E402
from promix_tutorial.results import cell_name, hardware  # noqa: E402
from promix_tutorial.train import train_or_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="cpu", choices=["cpu", "fast", "tiny"])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "accuracy_cpu"),
                    help="folder of the ProMix run (reused when finished)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    args = ap.parse_args(argv)
    dataset = "digits" if args.preset == "tiny" else "cifar10"
    extra = {} if args.epochs is None else dict(
        epochs=args.epochs, warmup_epochs=min(args.epochs - 1, 2), lga_start=args.epochs - 1)
    cfg = make_config(args.preset, dataset, "sym:0.8", seed=args.seed, **extra)
    run_dir = Path(args.runs) / (cell_name("promix", "none", "sym:0.8", args.seed)
                                 if args.preset == "cpu" else f"{args.preset}_sym80_seed{args.seed}")
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
    stem = Path(args.out) / f"selection_f1_{args.preset}_sym80_seed{args.seed}"
    ax = plot_selection_f1(run, title=f"selection F1, {cfg.dataset} sym:0.8, {args.preset} preset")
    ax.figure.savefig(stem.with_suffix(".png"), dpi=120, bbox_inches="tight")
    last = {k: v[-1] for k, v in series.items()}
    save_json(stem.with_suffix(".json"), {
        "series": series, "last_epoch": last, "run": str(run_dir.relative_to(ROOT))
        if run_dir.is_relative_to(ROOT) else str(run_dir),
        "final_test_acc": run.final_accuracy(), "config": run.config, "info": run.info,
        "hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "data": "offline CIFAR-10 copy (JPEG quality 75)" if dataset == "cifar10" else dataset,
        "command": f"python benchmarks/selection_f1.py --seed {args.seed} --preset {args.preset}"})
    print(f"last epoch F1: ProMix (CSS+MHCS) {last['promix_css_mhcs']:.3f}, GMM (tuned) "
          f"{last['gmm_tuned']:.3f}, small-loss (tuned) {last['small_loss_tuned']:.3f}")
    print(f"wrote {stem}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
