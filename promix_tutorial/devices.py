"""Where a run trains: the data on the training device, the device itself, mixed precision,
``torch.compile`` and the per-epoch random stream.

The dataset sits on the training device as uint8 NCHW tensors, so augmentation is batched tensor
ops there (augment.py) and no step copies images from the host. On CUDA the step and the
evaluation autocast to bfloat16 (float16 with loss scaling on GPUs older than compute capability
8.0, `amp_dtype`). See docs/design.md#a-training-step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

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

    if ds.name == "cifar10":
        mean, std = augment.CIFAR10_MEAN, augment.CIFAR10_STD
    elif ds.name == "cifar100":
        mean, std = augment.CIFAR100_MEAN, augment.CIFAR100_STD
    else:
        flat = ds.x_train.reshape(-1, ds.x_train.shape[-1]) / 255.0
        mean, std = tuple(flat.mean(0).tolist()), tuple(np.maximum(flat.std(0), 1e-3).tolist())
    h = ds.x_train.shape[1]
    return DeviceData(images(ds.x_train), torch.from_numpy(noisy.noisy).to(device),
                      torch.from_numpy(noisy.clean).to(device), images(ds.x_test),
                      torch.from_numpy(ds.y_test).to(device), mean, std,
                      pad=max(1, round(h * 4 / 32)), flip=ds.name != "digits",
                      num_classes=ds.num_classes)


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
    """``torch.compile`` of a network (``TrainConfig.compile``). The training step's shapes are
    static (B and 2B images), so it compiles a few graphs once per run; the compiled module
    shares the network's parameters and train/eval mode."""
    return torch.compile(net, backend=COMPILE_BACKEND)


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
