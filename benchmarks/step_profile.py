"""Where one ProMix training step's time goes, per network and per part.

A trainer of the chosen preset on ``--n`` CIFAR-10 images (sym:0.5, LGA on, a random half of the
samples marked CSS-selected so every loss term runs, as benchmarks/throughput.py) runs:
1. one untimed epoch (allocations, cuDNN autotuning);
2. ``--epochs`` timed epochs of the real loop (`Trainer._train_epoch`, no profiler): images/s,
   i.e. batch images through the whole ProMix step of both networks per second, and per network;
3. the augmentation alone over the same batches (`Trainer.make_batch`, weak + strong view): its
   share of the step time;
4. one epoch under torch.profiler: host (CPU) and GPU time of the step's named parts
   (``promix/augment``, ``promix/forward+losses``, ``promix/backward``, ``promix/optimizer``)
   and the ten most expensive device kernels;
5. host synchronisations in one epoch: on CUDA the warnings of
   ``torch.cuda.set_sync_debug_mode("warn")`` with the Python line of each, on a CPU the
   profiler's count of the calls that would synchronise (nonzero, item/_local_scalar_dense,
   masked_select).
Writes JSON with ``--out``; prints a short table.

Usage: python benchmarks/step_profile.py [--preset fast] [--n 12288] [--device auto]
           [--compile] [--set FIELD=VALUE ...] [--out step_profile.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

from promix_tutorial.commands import parse_set
from promix_tutorial.devices import epoch_generator
from throughput import make_trainer

PARTS = ("promix/augment", "promix/forward+losses", "promix/backward", "promix/optimizer")
SYNC_OPS = ("aten::nonzero", "aten::_local_scalar_dense", "aten::item", "aten::masked_select")


def timed(trainer, fn) -> float:
    trainer._sync()
    t0 = time.perf_counter()
    fn()
    trainer._sync()
    return time.perf_counter() - t0


def epoch(trainer, e: int):
    """One ProMix epoch of the real loop; its `evaluation.EpochTally` (``.images``)."""
    plan = trainer.plan(e)._replace(phase="promix")
    return trainer._train_epoch(plan, epoch_generator(trainer.cfg, e, trainer.device))


def augment_only(trainer, e: int) -> None:
    plan = trainer.plan(e)._replace(phase="promix")
    gen = epoch_generator(trainer.cfg, e, trainer.device)
    for idx in trainer.batch_indices(gen):
        trainer.make_batch(idx, plan, gen)


def _device_us(evt) -> float:
    for name in ("device_time_total", "cuda_time_total"):
        if hasattr(evt, name):
            return float(getattr(evt, name))
    return 0.0


def profile_parts(trainer) -> tuple[dict, list]:
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda"
                                     else [])
    with profile(activities=acts) as prof:
        epoch(trainer, 3)
        trainer._sync()
    avg = prof.key_averages()
    # from the raw events, not key_averages: with CUDA activity each range appears twice (its
    # host side and its device-side annotation), and the average of the two hid the host time
    # (seen on an H100 with torch 2.11). Kernels of the backward pass run on autograd's thread
    # and are not attributed to the promix/backward range.
    parts = {}
    for e in prof.events():
        if e.name in PARTS:
            p = parts.setdefault(e.name, {"host_ms": 0.0, "device_ms": 0.0, "calls": 0})
            if e.device_type.name == "CPU":
                p["host_ms"] += e.cpu_time_total / 1e3
                p["device_ms"] += _device_us(e) / 1e3
                p["calls"] += 1
    parts = {k: {**v, "host_ms": round(v["host_ms"], 1), "device_ms": round(v["device_ms"], 1)}
             for k, v in parts.items()}
    kernels = sorted((e for e in avg if getattr(e, "self_device_time_total", 0) > 0),
                     key=lambda e: -e.self_device_time_total)[:10]
    top = [{"kernel": e.key[:90], "device_ms": round(e.self_device_time_total / 1e3, 1),
            "calls": e.count} for e in kernels]
    syncs = {e.key: e.count for e in avg if e.key in SYNC_OPS}
    return {"parts": parts, "sync_ops_cpu_profile": syncs}, top


def cuda_sync_warnings(trainer) -> dict:
    """Run one epoch with CUDA's sync debug mode on "warn"; return how many synchronising calls
    it saw and where (the Python line that made each, with its count)."""
    trainer._sync()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            epoch(trainer, 4)
            trainer._sync()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    sites: dict[str, int] = {}
    for w in caught:
        if "synchroniz" in str(w.message):
            where = f"{w.filename.split('site-packages/')[-1]}:{w.lineno}"
            sites[where] = sites.get(where, 0) + 1
    return {"count": sum(sites.values()), "sites": sites}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--n", type=int, default=12288, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="TrainConfig.compile=True")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a TrainConfig field, as promix train --set (repeatable)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    try:
        overrides = parse_set(args.set)
    except ValueError as e:
        ap.error(str(e))
    with tempfile.TemporaryDirectory() as tmp:
        tr = make_trainer(args.preset, args.n, args.device, tmp, compile=args.compile,
                          **overrides)
        t_first = timed(tr, lambda: epoch(tr, 0))  # untimed in the figures: warm-up
        secs = [timed(tr, lambda e=e: epoch(tr, e)) for e in (1, 2)[:args.epochs]]
        aug = timed(tr, lambda: augment_only(tr, 1))
        n_img = len(tr.batch_indices(epoch_generator(tr.cfg, 1, tr.device))) \
            * tr.cfg.batch_size
        step_s = min(secs)
        prof, top = profile_parts(tr)
        sync = cuda_sync_warnings(tr) if tr.device.type == "cuda" else None
        rec = {
            "preset": args.preset, "overrides": args.set, "model": tr.cfg.model,
            "batch_size": tr.cfg.batch_size,
            "n_images": n_img, "networks": len(tr.nets), "compile": args.compile,
            "first_epoch_s": round(t_first, 3), "epoch_s": [round(s, 3) for s in secs],
            "images_per_s": round(n_img / step_s, 1),
            "images_per_s_per_network": round(n_img / step_s / len(tr.nets), 1),
            "augment_s": round(aug, 3), "augment_share": round(aug / step_s, 3),
            **prof, "top_kernels": top, "cuda_sync_warnings": sync,
            "device": str(tr.device),
            "device_name": (torch.cuda.get_device_name(tr.device) if tr.device.type == "cuda"
                            else "cpu"),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python benchmarks/step_profile.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
        }
    print(f"{args.preset} ({tr.cfg.model}, batch {tr.cfg.batch_size}, {len(tr.nets)} networks"
          f"{', compiled' if args.compile else ''}) on {rec['device_name']}: "
          f"{rec['images_per_s']:.0f} img/s through the ProMix step "
          f"({rec['images_per_s_per_network']:.0f} per network), augmentation "
          f"{100 * rec['augment_share']:.0f}% of the step time")
    for name, p in rec["parts"].items():
        print(f"  {name:<24} host {p['host_ms']:>8.1f} ms  device {p['device_ms']:>8.1f} ms"
              f"  ({p['calls']} calls)")
    print(f"  host syncs in one epoch: "
          f"{sync if sync is not None else rec['sync_ops_cpu_profile']}")
    if args.out:
        from promix_tutorial.runs import save_json
        save_json(args.out, rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
