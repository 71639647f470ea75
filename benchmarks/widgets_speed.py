"""How long one slider move takes: `selection_at` (R, tau) and `pseudo_labels_at` (alpha)
recomputed from cached arrays of 50,000 samples, as the notebooks' widgets do.

Usage: python benchmarks/widgets_speed.py [--n 50000] [--classes 10 100] [--repeat 20]
Prints the median and worst time per call. Target (issue 4): well under a second.
"""
import argparse
import platform
import statistics
import time

import numpy as np
import torch

from promix_tutorial.widgets import pseudo_labels_at, selection_at


def synthetic(n: int, C: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, C, n)
    noisy = np.where(rng.random(n) < 0.5, rng.integers(0, C, n), clean)
    logits = rng.normal(0, 1, (n, C)).astype(np.float32)
    logits[np.arange(n), clean] += 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return dict(losses=rng.exponential(1, (2, n)).astype(np.float32),
                probs=np.stack([probs, probs]).astype(np.float16), noisy=noisy, clean=clean,
                labeled=rng.random((2, n)) < 0.4, prior_u=np.full((2, C), 1 / C, np.float32))


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, N={args.n}")
    for C in args.classes:
        s = synthetic(args.n, C)
        for name, fn in (("selection_at(R, tau)", lambda: selection_at(s, 0.5, 0.99)),
                         ("pseudo_labels_at(alpha)", lambda: pseudo_labels_at(s, 0.8))):
            t = timed(fn, args.repeat)
            print(f"C={C:>3}  {name:<24} median {statistics.median(t) * 1e3:7.1f} ms   "
                  f"worst {max(t) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
