"""Where a run trains: the data on the training device, the device itself, mixed precision,
``torch.compile`` and the per-epoch random stream.

The dataset sits on the training device as uint8 NCHW tensors, so augmentation is batched tensor
ops there (augment.py) and no step copies images from the host. On CUDA the step and the
evaluation autocast to bfloat16 (float16 with loss scaling on GPUs older than compute capability
8.0, `amp_dtype`). See docs/design.md#a-training-step.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import record_function

from . import augment
from .config import TrainConfig
from .data import ImageDataset, load_dataset
from .noise import NoisyLabels, noisy_labels_for


@dataclass
class DeviceData:
    """The training and test sets as uint8 NCHW tensors on the training device."""

    x_train: torch.Tensor
    y_noisy: torch.Tensor
    y_clean: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple
    std: tuple
    pad: int
    flip: bool
    num_classes: int

    @property
    def is_clean(self) -> torch.Tensor:
        return self.y_noisy == self.y_clean

    def normalize(self, x_uint8: torch.Tensor, channels_last: bool) -> torch.Tensor:
        x = augment.normalize(x_uint8, self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def batch_views(data: DeviceData, x: torch.Tensor, strong: bool, gen: torch.Generator,
                whole_batch: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The uint8 weak view of images ``x`` and, if ``strong``, their strong view (augment.py,
    ``whole_batch`` as `augment.rand_augment`), drawn from ``gen`` in that order."""
    weak = augment.weak_augment(x, pad=data.pad, flip=data.flip, generator=gen)
    if not strong:
        return weak, None
    return weak, augment.strong_augment(x, pad=data.pad, flip=data.flip, generator=gen,
                                        whole_batch=whole_batch)


def views_in_chunks(data: DeviceData, batches: list[torch.Tensor], chunks: int, strong: bool,
                    gen: torch.Generator, whole_batch: bool | None = None):
    """Yield every batch's uint8 views (weak, strong or None), made for ``chunks`` groups of
    consecutive batches at once (`TrainConfig.augment_chunks`): a few large augmentation calls
    per epoch instead of one per batch, each of which is hundreds of small kernels on a GPU. A
    group is made when its first batch is asked for. The views differ from per-batch ones for
    the same generator state (each op draws a whole group's random numbers in one call); every
    image's view has the same distribution (tests/test_augment.py)."""
    per = math.ceil(len(batches) / chunks)
    for start in range(0, len(batches), per):
        group = batches[start:start + per]
        with record_function("promix/augment"):
            weak, strong_views = batch_views(data, data.x_train[torch.cat(group)], strong, gen,
                                             whole_batch)
        at = 0
        for idx in group:
            rows = slice(at, at + len(idx))
            at += len(idx)
            yield weak[rows], (strong_views[rows] if strong_views is not None else None)


def prepare_data(cfg: TrainConfig) -> tuple[ImageDataset, NoisyLabels]:
    """Load the dataset (subset if asked) and inject the configured noise (seeded)."""
    ds = load_dataset(cfg.dataset)
    if cfg.n_train is not None or cfg.n_test is not None:
        ds = ds.subset(cfg.n_train, cfg.n_test, seed=cfg.seed)
    return ds, noisy_labels_for(ds, cfg.noise, seed=cfg.seed)


def to_device(ds: ImageDataset, noisy: NoisyLabels, device: torch.device) -> DeviceData:
    """``ds`` with its noisy labels as `DeviceData` on ``device``; normalisation statistics are
    CIFAR's published ones, or the training images' own for other sources."""
    def images(x):
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)

    mean, std = normalization(ds)
    h = ds.x_train.shape[1]
    return DeviceData(images(ds.x_train), torch.from_numpy(noisy.noisy).to(device),
                      torch.from_numpy(noisy.clean).to(device), images(ds.x_test),
                      torch.from_numpy(ds.y_test).to(device), mean, std,
                      pad=max(1, round(h * 4 / 32)), flip=ds.name != "digits",
                      num_classes=ds.num_classes)


def normalization(ds: ImageDataset) -> tuple[tuple, tuple]:
    """Per-channel mean and std that training normalises ``ds``'s images with: CIFAR's published
    statistics, or the training images' own for other sources."""
    if ds.name == "cifar10":
        return augment.CIFAR10_MEAN, augment.CIFAR10_STD
    if ds.name == "cifar100":
        return augment.CIFAR100_MEAN, augment.CIFAR100_STD
    flat = ds.x_train.reshape(-1, ds.x_train.shape[-1]) / 255.0
    return tuple(flat.mean(0).tolist()), tuple(np.maximum(flat.std(0), 1e-3).tolist())


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else the CPU; any other name as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device is 'cuda' but no CUDA GPU is available; use "
                         "device='auto' or 'cpu'.")
    return dev


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the step and the evaluation, or None (float32: ``cfg.amp`` off, or
    not CUDA). bfloat16 on GPUs that compute it natively (compute capability 8.0 and newer:
    A100, L4, H100; and ROCm); float16 on older ones (T4, Colab's free GPU, and V100), which only
    emulate bfloat16. float16 needs loss scaling (the `engine.Trainer` then uses a GradScaler)."""
    if not cfg.amp or device.type != "cuda":
        return None
    if torch.version.hip or torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16


def amp_name(dtype: torch.dtype | None) -> str:
    """``"bfloat16"``, ``"float16"`` or ``"off"``: what a run's history.json records as "amp"."""
    return str(dtype).removeprefix("torch.") if dtype is not None else "off"


def amp_context(dtype: torch.dtype | None, device: torch.device):
    """A factory of autocast contexts for ``dtype`` (a no-op context when None)."""
    return lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


COMPILE_BACKEND = "inductor"  # tests use "eager" to check the wiring in seconds


def compile_net(net: torch.nn.Module):
    """``torch.compile`` of a network (``TrainConfig.compile``). The shapes are static (the
    batch, each mix bucket, the eval batch), so it compiles one graph per shape once per run
    (``dynamic=False``: no shape-generic graphs); the compiled module shares the network's
    parameters and train/eval mode. The fast preset's network compiles without graph breaks
    (tests/test_fast_preset.py)."""
    return torch.compile(net, backend=COMPILE_BACKEND, dynamic=False)


def epoch_generator(cfg: TrainConfig, epoch: int, device: torch.device) -> torch.Generator:
    """The epoch's random stream (shuffling, augmentation, mixup), seeded from (seed, epoch), so
    a resumed run repeats an uninterrupted one exactly on the CPU."""
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed * 1_000_003 + epoch * 7_919 + 17)
    return g


def choose_threads(preset: str, requested: int | None = None) -> tuple[int, str]:
    """PyTorch's CPU thread count for a run of ``preset`` and why: ``requested`` (``--threads``)
    if given, else ``$OMP_NUM_THREADS`` if set, else 1 for ``tiny`` (its network is too small
    to gain from a second thread, and threads fighting over a shared core made a one-minute
    run take ten), else the cores the 1-minute load average leaves free (at least one).
    See docs/design.md#threads."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1, got {requested}.")
        return requested, "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"OMP_NUM_THREADS={env!r} is not a positive integer; unset it or "
                             "give --threads N.")
        return int(env), "OMP_NUM_THREADS"
    if preset == "tiny":
        return 1, "the tiny preset's default"
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = max(1, min(cores, int(cores - load + 0.5)))
    return free, f"{free} of {cores} cores free (load average {load:.1f})"


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in PyTorch's intra-op pool (and in OpenMP code it starts)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
