"""The `fast` preset's learning-rate schedule and logit scale, compared on a GPU without whole runs.

ProMix's first selection (CSS, Eq. 1) is only as good as the two networks at the end of warm-up
(docs/calibration.md#fast-logit-scale, docs/gpu.md#archived-h100-run). For each schedule variant
and noise this trains ProMix's warm-up (both networks, CE on the weak view, the variant's
full-length schedule) and, with ``--promix-epochs K``, the first K ProMix epochs, and records per
epoch the test accuracy (and the selection of the ProMix epochs) and the precision / recall / F1
of CSS's first selection (``css_next`` of the last warm-up epoch). On one H100 a probe takes about
12 s, 30 s with K = 4.

Each probe writes benchmarks/probes/results/fast_recipe_probe/VARIANT__NOISE.json (hardware,
torch, date, seed, command, config, per-epoch records); an existing file is skipped, so probes
accumulate across calls. ``--table`` prints and writes the comparison (fast_recipe_probe.md).
``--pack-to DIR`` re-tars the results folder to DIR/probes.tar after every probe, so a call cut
short still keeps the finished ones. ``--deadline-minutes`` starts a probe only if the last one's
wall time still fits. ``--jobs N`` trains N probes at once, side by side on the one GPU
(benchmarks/gpu_sharing.py measures what that gains); with ``--promix-epochs 52`` a probe is a
whole fast run.

Usage (benchmarks/device_check.sh runs it as step 3b):
  python benchmarks/probes/fast_recipe_probe.py --list
  python benchmarks/probes/fast_recipe_probe.py --variants all --noises sym:0.8 --promix-epochs 4
  python benchmarks/probes/fast_recipe_probe.py --variants onecycle_lr0.04 onecycle_lr0.02 \\
      --noises sym:0.8 --promix-epochs 52 --jobs 2         # two whole runs side by side
  python benchmarks/probes/fast_recipe_probe.py --table
--preset / --results / --set exist for tests (e.g. --preset tiny on a CPU).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from promix_tutorial.commands import parse_set
from promix_tutorial.config import ARCHIVED_FAST_SCHEDULE, make_config
from promix_tutorial.runs import save_json
from promix_tutorial.reference import DATA_TEXT
from promix_tutorial.results import hardware
from promix_tutorial.engine import Trainer
from promix_tutorial.devices import prepare_data

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "probes" / "results" / "fast_recipe_probe"

# Variants, each stated in full (not as a change of the preset, which may move), in the order
# "all" runs them. "cosine_epoch" is the recipe's schedule (cosine from 0.1 once per epoch, no
# rise: config.ARCHIVED_FAST_SCHEDULE); "_scaled" multiplies the network's logits by 1/9 as
# airbench does (TrainConfig.logit_scale). The
# "onecycle" ones rise linearly from lr/25 over the first 10% of the run (ending before the
# 8-epoch warm-up does: docs/calibration.md#cpu-warmup) and anneal per step to 0, to peaks from
# 0.1 down to 0.01 (docs/calibration.md#fast-logit-scale has their first epochs on a CPU).
SCHEDULE = ("lr", "lr_min", "lr_per_step", "lr_warmup_frac", "nesterov", "warmup_epochs",
            "logit_scale")


def _one_cycle(lr: float, logit_scale: float) -> dict:
    return dict(lr=lr, lr_min=0.0, lr_per_step=True, lr_warmup_frac=0.1, nesterov=True,
                warmup_epochs=8, logit_scale=logit_scale)


VARIANTS: dict[str, dict] = {
    "cosine_epoch_scaled": dict(ARCHIVED_FAST_SCHEDULE, warmup_epochs=8, logit_scale=1 / 9),
    "cosine_epoch": dict(ARCHIVED_FAST_SCHEDULE, warmup_epochs=8, logit_scale=1.0),
    "onecycle_lr0.02": _one_cycle(0.02, 1.0),
    "onecycle_lr0.1_scaled": _one_cycle(0.1, 1 / 9),
    "onecycle_lr0.04_scaled": _one_cycle(0.04, 1 / 9),
    **{f"onecycle_lr{lr}": _one_cycle(lr, 1.0) for lr in (0.1, 0.04, 0.01)},
}
NOISES = ("sym:0.8", "sym:0.5")


def probe_name(variant: str, noise: str, promix_epochs: int = 0) -> str:
    return (f"{variant}__{noise.replace(':', '')}"
            + (f"__promix{promix_epochs}" if promix_epochs else ""))


def probe(variant: str, noise: str, preset: str, overrides: dict, seed: int = 0,
          data_cache: dict | None = None, promix_epochs: int = 0) -> dict:
    """Train ProMix's warm-up of ``variant`` at ``noise``, then ``promix_epochs`` ProMix
    epochs (of the variant's full-length schedule), and return its record."""
    kw = {**VARIANTS[variant], **overrides}
    cfg = make_config(preset, "cifar10", noise, seed=seed, **kw)
    key = (cfg.dataset, cfg.noise, cfg.seed, cfg.n_train, cfg.n_test)
    if data_cache is not None and key not in data_cache:
        data_cache.clear()
        data_cache[key] = prepare_data(cfg)
    data = data_cache.get(key) if data_cache is not None else None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="promix-probe-") as tmp:
        trainer = Trainer(cfg, tmp, progress=False, epoch_lines=False, data=data)
        n_epochs = min(cfg.warmup_epochs + promix_epochs, cfg.epochs)
        records = [trainer.run_epoch(e) for e in range(n_epochs)]
    wall = time.perf_counter() - t0
    last = records[cfg.warmup_epochs - 1]
    keep = ("epoch", "phase", "lr", "test_acc", "test_acc_nets", "losses", "seconds",
            "images_per_s", "selection")
    return {"probe": probe_name(variant, noise, promix_epochs), "variant": variant,
            "noise": noise, "seed": seed, "preset": preset,
            "schedule": {k: getattr(cfg, k) for k in SCHEDULE},
            "warmup_end_test_acc": last["test_acc"], "first_css": last["css_next"],
            "baselines_at_warmup_end": last.get("baselines"),
            "promix_epochs": n_epochs - cfg.warmup_epochs,
            "last_test_acc": records[-1]["test_acc"],
            "records": [{k: r[k] for k in keep if k in r} for r in records],
            "wall_seconds": round(wall, 1), "n_train": len(trainer.data.y_noisy),
            "hardware": hardware(), "device": str(trainer.device),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "data": DATA_TEXT.get(cfg.dataset, cfg.dataset),
            "command": "python benchmarks/probes/fast_recipe_probe.py --variants "
                       f"{shlex.quote(variant)} --noises {shlex.quote(noise)}"
                       f" --promix-epochs {promix_epochs}",
            "config": cfg.to_dict()}


def table(results: Path) -> str:
    """Markdown: one row per variant, per noise the warm-up's last test accuracy and CSS's
    first selection (precision / recall / F1), and the test accuracy after the ProMix epochs of
    the longest probe of that variant and noise."""
    recs = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    if not recs:
        return "(no probes yet)"
    noises = sorted({r["noise"] for r in recs}, key=lambda n: (n.split(":")[0], n))
    head = ("| variant | schedule | " + " | ".join(
        f"{n}: test acc / CSS P, R, F1" for n in noises) + " |")
    lines = [head, "|" + "---|" * (2 + len(noises))]
    fast = make_config("fast", "cifar10", "sym:0.8")
    today = {k: getattr(fast, k) for k in SCHEDULE}
    for variant in [v for v in VARIANTS if any(r["variant"] == v for r in recs)]:
        s = next(r["schedule"] for r in recs if r["variant"] == variant)
        name = variant + (" (the fast preset now)" if VARIANTS[variant] == today else "")
        scale = s.get("logit_scale", 1.0)
        sched = (f"lr {s['lr']}, {'per step' if s['lr_per_step'] else 'per epoch'}, "
                 f"rise {s['lr_warmup_frac']:.0%}, {'nesterov, ' if s['nesterov'] else ''}"
                 f"warm-up {s['warmup_epochs']} ep."
                 + (f", logits x {scale:.3g}" if scale != 1.0 else ""))
        cells = []
        for n in noises:
            mine = [r for r in recs if r["variant"] == variant and r["noise"] == n]
            r = max(mine, key=lambda r: r.get("promix_epochs", 0), default=None)
            if r is None:
                cells.append("(not run)")
                continue
            c, k = r["first_css"], r.get("promix_epochs", 0)
            cells.append(f"{r['warmup_end_test_acc']:.1%} / {c['precision']:.2f}, "
                         f"{c['recall']:.2f}, {c['f1']:.2f}"
                         + (f"; {r['last_test_acc']:.1%} after {k} ProMix ep." if k else ""))
        lines.append(f"| {name} | {sched} | " + " | ".join(cells) + " |")
    r0 = recs[0]
    hw = r0["hardware"].get("gpu") or f"CPU ({r0['hardware'].get('cpu_count')} cores)"
    return ("\n".join(lines) + "\n\nProMix warm-up (both networks; then K ProMix epochs where "
            f"stated), seed {sorted({r['seed'] for r in recs})}, {r0['n_train']:,} training "
            f"images of the "
            f"{r0['data']}, {hw}, {r0['date']}; the preset's other fields unchanged "
            "(`python benchmarks/probes/fast_recipe_probe.py --table`).")


def pack(results: Path, tar_path: Path) -> None:
    """``results`` into ``tar_path`` (as fast_recipe_probe/*.json), atomically."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(tar_path.name + ".part")
    with tarfile.open(tmp, "w") as tar:
        for p in sorted(results.glob("*.json")):
            tar.add(p, arcname=f"fast_recipe_probe/{p.name}")
    tmp.replace(tar_path)


def _worker_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def run_probes(todo: list[tuple[str, str]], args, overrides: dict) -> None:
    """Train the probes ``todo`` ((variant, noise) pairs), ``args.jobs`` at a time: side by side
    on the one GPU in spawned processes when more than 1, else here one after another (the
    data prepared once per noise). A probe starts only if the last one's wall time still fits
    before ``args.deadline_minutes`` (side by side, that wall time holds the slowdown of
    sharing). Each record is saved (with ``probes_sharing_gpu``) and packed as it arrives."""
    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    t_start, last_wall, cache, pool = time.perf_counter(), 0.0, {}, None
    if args.jobs > 1:
        pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_threads,
                                   initargs=(max(1, (os.cpu_count() or 1) // args.jobs),))

    def submit(*job) -> Future:
        if pool is not None:
            return pool.submit(probe, *job, None, args.promix_epochs)
        fut = Future()  # here and now
        fut.set_result(probe(*job, cache, args.promix_epochs))
        return fut

    running, queue = set(), list(todo)
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                v, noise = queue.pop(0)
                elapsed = (time.perf_counter() - t_start) / 60
                if args.deadline_minutes is not None and \
                        elapsed + 1.2 * last_wall / 60 > args.deadline_minutes:
                    print(f"[wait] {probe_name(v, noise, args.promix_epochs)}: "
                          f"{args.deadline_minutes - elapsed:.1f} min left before the "
                          "deadline; not started", flush=True)
                    continue
                running.add(submit(v, noise, args.preset, overrides, args.seed))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for rec in (fut.result() for fut in done):
                last_wall = rec["wall_seconds"]
                rec["probes_sharing_gpu"] = args.jobs
                save_json(args.results / f"{rec['probe']}.json", rec)
                c = rec["first_css"]
                print(f"[done] {rec['probe']}: warm-up end test acc "
                      f"{rec['warmup_end_test_acc']:.2%}, first CSS P {c['precision']:.3f} "
                      f"R {c['recall']:.3f} F1 {c['f1']:.3f}"
                      + (f", after {rec['promix_epochs']} ProMix epochs "
                         f"{rec['last_test_acc']:.2%}" if rec["promix_epochs"] else "")
                      + f" ({last_wall:.0f} s)", flush=True)
                if args.pack_to is not None:
                    pack(args.results, args.pack_to / "probes.tar")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=None, help="all, or names (see --list)")
    ap.add_argument("--noises", nargs="+", default=list(NOISES))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--deadline-minutes", type=float, default=None)
    ap.add_argument("--pack-to", type=Path, default=None)
    ap.add_argument("--preset", default="fast", help="fast (default); tiny for tests")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field of every probe (tests: epochs, n_train)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--promix-epochs", type=int, default=0, metavar="K",
                    help="also train K ProMix epochs after the warm-up (test accuracy after "
                         "them in the table)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="probes side by side on the one GPU (spawned processes); their wall "
                         "times then hold the slowdown of sharing (benchmarks/gpu_sharing.py)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.promix_epochs < 0:
        ap.error(f"--promix-epochs must be 0 or more, got {args.promix_epochs}")
    variants = list(VARIANTS) if args.variants in (None, ["all"]) else args.variants
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    try:
        overrides = parse_set(args.set)
        for n in args.noises:  # a bad noise or field stops here, before any training
            make_config(args.preset, "cifar10", n, **{**VARIANTS[variants[0]], **overrides})
    except ValueError as e:
        ap.error(str(e))
    if args.list:
        for v in VARIANTS:
            done = [n for n in args.noises
                    if (args.results / f"{probe_name(v, n, args.promix_epochs)}.json").is_file()]
            print(f"{v:<22} {json.dumps(VARIANTS[v])}  done: {', '.join(done) or '-'}")
        return 0
    if not args.table:
        todo = []
        for noise in args.noises:  # noise outermost: in one process the data is prepared once
            for v in variants:
                path = args.results / f"{probe_name(v, noise, args.promix_epochs)}.json"
                if path.is_file():
                    print(f"[skip] {path.name} exists", flush=True)
                else:
                    todo.append((v, noise))
        run_probes(todo, args, overrides)
    text = table(args.results)
    print(text)
    if args.results.is_dir() and any(args.results.glob("*.json")):
        (args.results.parent / f"{args.results.name}.md").write_text(
            "# fast_recipe_probe: the fast preset's schedule, warm-up and first ProMix epochs"
            "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
