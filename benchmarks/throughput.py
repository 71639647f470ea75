"""Training throughput of one ProMix epoch for each preset's network, fed two ways:

- device: the package's path (uint8 dataset on the training device, batched weak/strong
  augmentation as tensor ops, augment.py), i.e. `Trainer._train_epoch`;
- loader: the classic pipeline, a torch DataLoader whose workers run torchvision's per-sample PIL
  transforms (RandomCrop + flip; RandAugment(3 ops) + RandomErasing as Cutout + the weak ones) and
  hand float batches to the same `Trainer.train_step`.

Both run the same ProMix step (two networks, weak + strong views, mixup, MHCS, LGA on, auxiliary
head), on a random half of the samples marked as CSS-selected, so the unlabeled terms run too.
Prints images/s side by side and their ratio; writes JSON with --out.

Usage: python benchmarks/throughput.py [--presets tiny cpu fast paper] [--n 2048] [--workers 2]
           [--device auto] [--out benchmarks/results/throughput_cpu.json]
On a CPU keep --n small for `fast`/`paper` (PreAct ResNet-18 trains at a few images/s there).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from promix_tutorial import augment
from promix_tutorial.config import make_config
from promix_tutorial.engine import Batch, Trainer
from promix_tutorial.devices import epoch_generator
from promix_tutorial.schedule import epoch_mix_lambdas


class PILPairs(Dataset):
    """(weak, strong, index) per sample through per-sample PIL transforms (the classic way)."""

    def __init__(self, x_uint8: np.ndarray, mean, std, pad: int, flip: bool):
        self.x = x_uint8
        size = x_uint8.shape[1]
        tail = [T.ToTensor(), T.Normalize(mean, std)]
        weak = [T.RandomCrop(size, padding=pad)] + ([T.RandomHorizontalFlip()] if flip else [])
        self.weak = T.Compose(weak + tail)
        self.strong = T.Compose([T.RandAugment(num_ops=3)] + weak + tail
                                + [T.RandomErasing(p=1.0, scale=(0.0, 0.25), ratio=(1, 1),
                                                   value=0.0)])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image
        img = Image.fromarray(self.x[i].squeeze(-1) if self.x.shape[-1] == 1 else self.x[i])
        return self.weak(img), self.strong(img), i


def make_trainer(preset: str, n: int, device: str, tmp: str, **overrides) -> Trainer:
    """A trainer of ``preset`` on ``n`` images, in the ProMix phase with LGA on and a random
    half of the samples marked CSS-selected (so the unlabeled terms run too)."""
    dataset = "digits" if preset == "tiny" else "cifar10"
    cfg = make_config(preset, dataset, "sym:0.5", n_train=n, n_test=min(n, 1000), epochs=8,
                      warmup_epochs=0, lga_start=0, device=device, **overrides)
    trainer = Trainer(cfg, tmp, progress=False)
    g = torch.Generator(device=trainer.device).manual_seed(0)
    trainer.css = torch.rand(trainer.css.shape, generator=g, device=trainer.device) < 0.5
    return trainer


def device_epoch(trainer: Trainer) -> float:
    gen = epoch_generator(trainer.cfg, 0, trainer.device)
    trainer._sync()
    t0 = time.perf_counter()
    tally = trainer._train_epoch(trainer.plan(1), gen)
    trainer._sync()
    return tally.images / (time.perf_counter() - t0)


def loader_epoch(trainer: Trainer, workers: int) -> float:
    """One epoch of the same ProMix steps (`Trainer.train_step`) fed by a PIL DataLoader."""
    d, cfg = trainer.data, trainer.cfg
    ds = PILPairs(trainer.ds.x_train, d.mean, d.std, d.pad, d.flip)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=trainer.device.type == "cuda",
                        persistent_workers=False)
    plan, gen = trainer.plan(1), epoch_generator(cfg, 1, trainer.device)
    tally = trainer.new_tally()
    lams = epoch_mix_lambdas(cfg, 1, len(loader), len(trainer.nets))
    trainer._sync()
    t0 = time.perf_counter()
    for b, (x_w, x_s, idx) in enumerate(loader):
        x_w, x_s, idx = (t.to(trainer.device, non_blocking=True) for t in (x_w, x_s, idx))
        if trainer.channels_last:
            x_w, x_s = (t.contiguous(memory_format=torch.channels_last) for t in (x_w, x_s))
        batch = Batch(idx, x_w, x_s, d.y_noisy[idx], plan, gen, lams[b])
        trainer.tally_step(tally, idx, trainer.train_step(batch))
    trainer._sync()
    return tally.images / (time.perf_counter() - t0)


def main(argv=None) -> int:
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "cpu", "fast", "paper"])
    ap.add_argument("--n", type=int, default=2048, help="training images per epoch")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'preset':<7} {'network':<16} {'params':>9} {'device img/s':>13} "
          f"{'loader img/s':>13} {'ratio':>6}")
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            tr = make_trainer(preset, args.n, args.device, tmp)
            device_epoch(tr)  # warm-up epoch (allocations, cuDNN autotuning)
            dev = device_epoch(tr)
            loader_epoch(tr, args.workers)  # warm-up too
            load = loader_epoch(tr, args.workers)
            params = sum(p.numel() for p in tr.nets[0].parameters())
            rows.append({"preset": preset, "model": tr.cfg.model, "params": params,
                         "device_images_per_s": round(dev, 1),
                         "loader_images_per_s": round(load, 1), "ratio": round(dev / load, 2),
                         "batch_size": tr.cfg.batch_size, "n_images": len(tr.data.y_noisy)})
            print(f"{preset:<7} {tr.cfg.model:<16} {params:>9,} {dev:>13.0f} {load:>13.0f} "
                  f"{dev / load:>6.2f}", flush=True)
    info = {"device": str(tr.device), "device_name": (torch.cuda.get_device_name(tr.device)
                                                      if tr.device.type == "cuda" else
                                                      platform.processor() or platform.machine()),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "workers": args.workers,
            "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python benchmarks/throughput.py " + " ".join(
                argv if argv is not None else sys.argv[1:])}
    print(json.dumps(info))
    if args.out:
        from promix_tutorial.runs import save_json
        save_json(args.out, {"info": info, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
