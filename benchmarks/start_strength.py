"""How strong must a self-supervised start be? The warm-up of the `cpu` preset at 80% symmetric
noise from each kept start of a pretraining, and from scratch.

For every ``backbone_eNNN.pt`` in the start's folder (and scratch as the first point) this trains
ProMix's warm-up alone (the preset's first ``warmup_epochs`` epochs, the learning-rate schedule
of the whole run) and records, beside the start's kNN accuracy from its manifest, the warm-up's
last test accuracy and the precision / recall of CSS's first selection (the clean set the first
ProMix epoch trains on):

    python benchmarks/start_strength.py runs/pretrain/cpu_simclr
    python benchmarks/start_strength.py runs/pretrain/cpu_simclr --only scratch e040 \
        --noises sym:0.5 sym:0.6 sym:0.7 sym:0.9

From a start the warm-up trains at the rate the preset sets for a start (`make_config`).
``--noises``: the same points at other symmetric rates, for the warm-up obstacle: the first
selection's precision against the noise rate, from scratch and from a start.

One results file per point in benchmarks/results/start_strength_cpu/ (``NAME__seedS.json`` at
sym:0.8, ``NAME__NOISE__seedS.json`` at the others), the table start_strength_cpu.md and the
plots start_strength_cpu.png and start_strength_noise_cpu.png (all rebuilt from the files by
``--table``). A finished point is skipped; an interrupted one resumes. The run folders go to
runs/start_strength/.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "start_strength_cpu"
RUNS = ROOT / "runs" / "start_strength"
NOISE = "sym:0.8"
DATA = "offline CIFAR-10 copy (JPEG quality 75, original training order), cpu preset subset"


def points(start_dir: Path) -> list[tuple[str, Path | None]]:
    """(name, backbone file) of every kept start, scratch first."""
    kept = sorted(start_dir.glob("backbone_e*.pt")) if start_dir else []
    return [("scratch", None)] + [(p.stem.removeprefix("backbone_"), p) for p in kept]


def knn_of(backbone: Path | None, start_dir: Path | None = None) -> float | None:
    """The kNN accuracy the pretraining's manifest records for ``backbone``; for scratch
    (``backbone`` None) that of the pretraining's initial, random weights (its epoch 0)."""
    folder = backbone.parent if backbone is not None else start_dir
    if folder is None:
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    name = backbone.name if backbone is not None else None
    return next((c["knn_acc"] for c in manifest["checkpoints"]
                 if (c["file"] == name if name else c["epoch"] == 0)), None)


def stem(name: str, seed: int, noise: str = NOISE) -> str:
    """A point's file and run-folder name (`results.strength_stem`)."""
    from promix_tutorial.results import strength_stem
    return strength_stem(name, seed, noise)


def run_point(name: str, backbone: Path | None, seed: int, command: str,
              start_dir: Path | None = None, noise: str = NOISE) -> dict:
    from promix_tutorial.config import make_config
    from promix_tutorial.engine import Trainer
    from promix_tutorial.results import hardware
    init = {} if backbone is None else {"init": str(backbone)}
    cfg = make_config("cpu", "cifar10", noise, seed=seed, **init)
    out = RUNS / stem(name, seed, noise)
    t0 = time.perf_counter()
    resume = (out / "checkpoint.pt").is_file()
    hist = Trainer(cfg, out, resume=resume, progress=False).fit(stop_after=cfg.warmup_epochs)
    last = hist.records[cfg.warmup_epochs - 1]
    record = {"point": name, "seed": seed, "noise": noise, "knn_acc": knn_of(backbone, start_dir),
              "start": None if backbone is None else str(backbone.relative_to(ROOT)
                                                        if backbone.is_relative_to(ROOT)
                                                        else backbone),
              "start_sha256": cfg.init_sha256,
              "warmup_test_acc": last["test_acc"], "first_selection": last["css_next"],
              "actual_noise_rate": hist.info["actual_noise_rate"],
              "test_acc_per_epoch": [r["test_acc"] for r in hist.records],
              "wall_seconds": round(time.perf_counter() - t0, 1), "command": command,
              "data": DATA, "hardware": hardware(), "threads": hardware()["torch_threads"],
              "load_average": list(__import__("os").getloadavg()),
              "date": time.strftime("%Y-%m-%d"), "config": cfg.to_dict()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem(name, seed, noise)}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def rate_text(recs: list[dict]) -> str:
    """The peak learning rates the records ran at, from scratch and from a start."""
    def rates(scratch: bool) -> str:
        return "/".join(f"{v:g}" for v in sorted({r["config"]["lr"] for r in recs
                                                  if (r["point"] == "scratch") == scratch}))
    return f"{rates(True) or '-'} from scratch, {rates(False) or '-'} from a start"


def table() -> str:
    every = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    recs = [r for r in every if r["noise"] == NOISE]
    recs.sort(key=lambda r: (r["point"] != "scratch", r["knn_acc"] or 0, r["seed"]))
    lines = ["| start | kNN accuracy | warm-up test acc | first selection P / R / F1 | seed |",
             "|---|---|---|---|---|"]
    for r in recs:
        s = r["first_selection"]
        knn = "" if r["knn_acc"] is None else f"{r['knn_acc']:.1%}"
        knn += " (random weights)" if r["point"] == "scratch" else ""
        lines.append(f"| {r['point']} | {knn} | {r['warmup_test_acc']:.1%} | "
                     f"{s['precision']:.3f} / {s['recall']:.3f} / {s['f1']:.3f} | {r['seed']} |")
    rates = {r.get("actual_noise_rate") for r in recs} - {None}
    right = ", ".join(f"{1 - r:.1%} of the labels right" for r in sorted(rates)) or "sym:0.8"
    text = ("# How strong must the start be? (cpu preset, sym:0.8, warm-up only)\n\n"
            "Built by `python benchmarks/start_strength.py --table` from "
            "benchmarks/results/start_strength_cpu/*.json (each with its command, hardware, "
            "load, date and config). " + DATA + ": JPEG-compressed, a little below published "
            "CIFAR-10 figures. kNN accuracy: the start's frozen features (its manifest); "
            "the first selection: CSS's clean set for the first ProMix epoch against the "
            f"injected noise ({right}). Peak learning rate: {rate_text(recs)} "
            "(the preset's; docs/calibration.md#cpu-start-lr).\n\n" + "\n".join(lines) + "\n")
    by_noise = noise_rows(every)
    if by_noise:
        text += ("\n## The warm-up obstacle: the first selection against the noise rate\n\n"
                 "The points run at more than one symmetric rate (`--noises`). A first "
                 "selection no more precise than the share of right labels picks at random.\n\n"
                 + by_noise + "\n")
    (RESULTS.parent / "start_strength_cpu.md").write_text(text)
    _plot(recs)
    _plot_noise(every)
    return text


def noise_rows(recs: list[dict]) -> str:
    """The table of `across_noises`: per noise rate, each point's warm-up and first selection."""
    from promix_tutorial.results import records_across_noises
    pts = records_across_noises(recs)
    if not pts:
        return ""
    lines = ["| noise | labels right | start | warm-up test acc | first selection P / R / F1 "
             "| seed |", "|---|---|---|---|---|---|"]
    rows = sorted((r for rs in pts.values() for r in rs),
                  key=lambda r: (r["actual_noise_rate"], r["point"] != "scratch"))
    for r in rows:
        s = r["first_selection"]
        lines.append(f"| {r['noise']} | {1 - r['actual_noise_rate']:.1%} | {r['point']} | "
                     f"{r['warmup_test_acc']:.1%} | {s['precision']:.3f} / {s['recall']:.3f} / "
                     f"{s['f1']:.3f} | {r['seed']} |")
    return "\n".join(lines)


def _plot_noise(recs: list[dict]) -> None:
    """start_strength_noise_cpu.png: the first selection's precision against the noise rate."""
    import matplotlib
    matplotlib.use("Agg")
    from promix_tutorial.plots import plot_first_selection_vs_noise
    from promix_tutorial.results import records_across_noises
    pts = records_across_noises(recs)
    if not pts:
        return
    ax = plot_first_selection_vs_noise(pts)
    ax.figure.savefig(RESULTS.parent / "start_strength_noise_cpu.png", dpi=110)
    __import__("matplotlib.pyplot").pyplot.close(ax.figure)


def _plot(recs: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not recs:
        return
    pts = [r for r in recs if r["knn_acc"] is not None and r["seed"] == recs[0]["seed"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, marker in (("precision", "first selection precision", "o"),
                               ("recall", "first selection recall", "s")):
        ax.plot([r["knn_acc"] for r in pts], [r["first_selection"][key] for r in pts],
                marker=marker, label=label)
    ax.plot([r["knn_acc"] for r in pts], [r["warmup_test_acc"] for r in pts], marker="^",
            label="warm-up test accuracy")
    for r in pts:
        ax.annotate(r["point"], (r["knn_acc"], r["first_selection"]["precision"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("kNN accuracy of the start's features (scratch: random weights)")
    ax.set_ylabel("fraction")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("cpu preset, sym:0.8: start strength vs the first selection", fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS.parent / "start_strength_cpu.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("start_dir", type=Path, nargs="?", default=None,
                    help="a pretraining folder (backbone_eNNN.pt files and manifest.json)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="+", default=None, help="only these points (e.g. scratch e005)")
    ap.add_argument("--noises", nargs="+", default=[NOISE],
                    help="symmetric noise rates to run each point at (default: sym:0.8)")
    ap.add_argument("--table", action="store_true", help="only rebuild the table and the plot")
    args = ap.parse_args(argv)
    if not args.table:
        if args.start_dir is not None and not (args.start_dir / "manifest.json").is_file():
            ap.error(f"{args.start_dir} holds no pretraining (no manifest.json)")
        command = "python benchmarks/start_strength.py " + shlex.join(argv or sys.argv[1:])
        for name, backbone in points(args.start_dir):
            if args.only and name not in args.only:
                continue
            for seed, noise in ((s, n) for n in args.noises for s in args.seeds):
                if (RESULTS / f"{stem(name, seed, noise)}.json").is_file():
                    print(f"[skip] {name} {noise} seed {seed}")
                    continue
                r = run_point(name, backbone, seed, command, args.start_dir, noise)
                s = r["first_selection"]
                print(f"[done] {name} {noise} seed {seed}: warm-up {r['warmup_test_acc']:.1%}, first "
                      f"selection P {s['precision']:.3f} R {s['recall']:.3f}", flush=True)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
