"""Speed of the pretraining's batched augmentation on the CPU: the package's own ops
(`promix_tutorial.pretrain.simclr_views`) against the same four ops from kornia.augmentation
(random-resized crop, horizontal flip, colour jitter with p 0.8, greyscale with p 0.2), both
from a uint8 batch to floats in [0, 1].

Usage: python benchmarks/pretrain_augment_speed.py [--batch 512] [--size 32] [--repeat 30]
           [--threads 1] [--out benchmarks/results/pretrain_augment_speed.json]
Prints images/s (median over --repeat calls; wall clock and CPU time of this process, which a
busy machine inflates less) and writes them with the hardware, versions, date and command.
The ops do not depend on image content, so the batch is random pixels.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch

from promix_tutorial.pretrain import hardware, simclr_views


def kornia_views(batch: int, size: int):
    import kornia.augmentation as K
    pipe = torch.nn.Sequential(
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        K.RandomHorizontalFlip(), K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2))
    return lambda x: pipe(x.float() / 255)


def timed(fn, x, repeat: int) -> dict:
    for _ in range(3):  # warm-up
        fn(x)
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn(x)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    return {"images_per_s_wall": round(len(x) / med(wall)),
            "images_per_s_cpu": round(len(x) / med(cpu)), "median_wall_s": round(med(wall), 5)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/pretrain_augment_speed.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    import kornia
    x = torch.randint(0, 256, (a.batch, 3, a.size, a.size), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    rows = {"own (promix_tutorial.pretrain.simclr_views)":
            timed(lambda b: simclr_views(b, gen), x, a.repeat),
            f"kornia {kornia.__version__} (kornia.augmentation)":
            timed(kornia_views(a.batch, a.size), x, a.repeat)}
    own, kor = (r["images_per_s_cpu"] for r in rows.values())
    out = {"info": {"hardware": hardware(torch.device("cpu")), "kornia": kornia.__version__,
                    "batch": a.batch, "image": [3, a.size, a.size], "repeat": a.repeat,
                    "loadavg": list(os.getloadavg()),
                    "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%d %H:%M UTC"),
                    "command": " ".join(["python", "benchmarks/pretrain_augment_speed.py"]
                                        + (argv if argv is not None else sys.argv[1:]))},
           "rows": rows, "own_over_kornia_cpu": round(own / kor, 2)}
    for name, r in rows.items():
        print(f"{name:<50} {r['images_per_s_wall']:>8} img/s wall  "
              f"{r['images_per_s_cpu']:>8} img/s CPU")
    print(f"own / kornia (CPU time): {out['own_over_kornia_cpu']}x")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
