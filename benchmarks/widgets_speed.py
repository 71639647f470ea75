"""How long one slider step of the notebooks' widgets takes on 50,000 samples: the whole step,
as in the notebook (the recomputation from cached arrays, the redraw of the explorer's figure
and its rendering to the PNG the browser shows), not only the computation, which is also
timed on its own for comparison.

Usage: python benchmarks/widgets_speed.py [--n 50000] [--classes 10 100] [--repeat 20]
           [--out benchmarks/results/widgets_speed.json]
Prints mean / p90 / worst seconds per step (wall clock, and CPU time of this process, which a
busy machine inflates less) with the load average, and writes them to --out (JSON).
Target: a whole step under 0.3 s. Not a unit test: timings depend on the machine
and on what else runs on it, so read them with the load average printed beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from promix_tutorial import widgets  # noqa: E402

TARGET_S = 0.3


def synthetic(n: int, C: int, seed: int = 0) -> dict:
    """Cached arrays as a run writes them (`RunHistory.samples()`), 50% symmetric noise."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, C, n)
    noisy = np.where(rng.random(n) < 0.5, rng.integers(0, C, n), clean)
    logits = rng.normal(0, 1, (n, C)).astype(np.float32)
    logits[np.arange(n), clean] += 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return dict(losses=rng.exponential(1, (2, n)).astype(np.float32),
                probs=np.stack([probs, probs]).astype(np.float16), noisy=noisy, clean=clean,
                labeled=rng.random((2, n)) < 0.4, prior_u=np.full((2, C), 1 / C, np.float32))


def walk(slider, repeat: int) -> list[float]:
    """``repeat`` values one slider step apart, back and forth from the slider's value, as
    arrow-key presses give them."""
    v, step, out = slider.value, slider.step, []
    for _ in range(repeat):
        if not slider.min <= v + step <= slider.max:
            step = -step
        v = round(v + step, 6)
        out.append(v)
    return out


def timed(fn, args: list) -> dict:
    """Wall-clock and CPU seconds of ``fn(a)`` for each ``a`` (after one warm-up call)."""
    fn(args[-1])
    wall, cpu = [], []
    for a in args:
        t, c = time.perf_counter(), time.process_time()
        fn(a)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)

    def stats(x):
        return {"mean_s": round(float(np.mean(x)), 4),
                "p90_s": round(float(np.percentile(x, 90)), 4), "max_s": round(float(np.max(x)), 4)}
    return {"wall": stats(wall), "cpu": stats(cpu), "steps": len(args)}


def steps(explorer, name: str, repeat: int):
    slider = explorer.sliders[name]

    def step(v):
        slider.value = v  # what a key press does in the notebook: compute, redraw, new PNG
    return step, walk(slider, repeat)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/widgets_speed.json")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    info = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python_threads": threading.active_count(), "matplotlib": matplotlib.__version__,
            "dpi": widgets.DPI, "n": args.n, "loadavg_before": [round(x, 2) for x in load_before],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python benchmarks/widgets_speed.py " + " ".join(argv or sys.argv[1:])}
    print(f"# {info['machine']}, {info['cpu_count']} CPUs, torch {torch.__version__} "
          f"({info['torch_threads']} threads), matplotlib {matplotlib.__version__}, N={args.n}, "
          f"dpi {widgets.DPI}; load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} (1/5/15 min)")
    rows = []
    for C in args.classes:
        s = synthetic(args.n, C)
        sel = widgets.SelectionExplorer(s, R=0.5, tau=0.99)
        pl = widgets.PseudoLabelExplorer(s, alpha=0.8)
        cases = [("selection_at (compute only)", lambda R: widgets.selection_at(s, R, 0.99),
                  walk(sel.sliders["R"], args.repeat)),
                 ("SelectionExplorer R step", *steps(sel, "R", args.repeat)),
                 ("SelectionExplorer tau step", *steps(sel, "tau", args.repeat)),
                 ("pseudo_labels_at (compute only)", lambda a: widgets.pseudo_labels_at(s, a),
                  walk(pl.sliders["alpha"], args.repeat)),
                 ("PseudoLabelExplorer alpha step", *steps(pl, "alpha", args.repeat))]
        for name, fn, values in cases:
            r = timed(fn, values)
            whole = "step" in name
            row = {"classes": C, "what": name, "whole_step": whole, **r}
            if whole:
                explorer = sel if name.startswith("Selection") else pl
                row["frame_bytes"] = len(explorer.frame)
                row["under_target"] = r["wall"]["p90_s"] < TARGET_S
            rows.append(row)
            w, c = r["wall"], r["cpu"]
            print(f"C={C:>3}  {name:<32} wall mean {w['mean_s']:.3f} s  p90 {w['p90_s']:.3f} s  "
                  f"max {w['max_s']:.3f} s | cpu mean {c['mean_s']:.3f} s  p90 {c['p90_s']:.3f} s")
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    whole = [r for r in rows if r["whole_step"]]
    ok = all(r["under_target"] for r in whole)
    print(f"whole steps: p90 {'under' if ok else 'NOT under'} the {TARGET_S} s target in every "
          f"case (worst p90 {max(r['wall']['p90_s'] for r in whole):.3f} s); load average after "
          f"{info['loadavg_after'][0]:.2f}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"info": info, "target_s": TARGET_S, "rows": rows},
                                  indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
