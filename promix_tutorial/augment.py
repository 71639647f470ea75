"""Augmentation of whole uint8 image batches on the training device
(docs/method.md#data-and-augmentation).

Every function takes an N x C x H x W ``uint8`` tensor on any device and a ``torch.Generator``
on that device, and draws its randomness per sample from that generator (so a run is
reproducible from its seed). There is no per-sample Python loop and no PIL: RandAugment loops
over its 14 ops and its 3 rounds, i.e. a fixed number of batched tensor ops per batch. Nothing
here waits for the GPU (no ``.item()``, no boolean-mask indexing), so on CUDA the host queues a
whole training step ahead of the device; tests/test_augment.py checks it with the profiler.

- weak view: random crop with ``pad`` pixels of zero padding + horizontal flip;
- strong view: FixMatch-style RandAugment (3 ops drawn uniformly with replacement from 14, each
  with a uniform random magnitude), then Cutout (side U[0, 0.5] * image size, grey), then the
  weak pipeline;
- mixup (Beta(4, 4), lambda = max(lambda, 1 - lambda)) and FMix (the released code's extra
  term; optional here) on float batches.

Where torchvision.transforms.v2 implements an op on batched tensors with per-batch (not
per-sample) parameters, we use it for the parameter-free ``equalize``; per-sample magnitudes are
blended by hand. ``autocontrast`` and the blurred image of the sharpness op (`smooth`) are our
own, a few lines each: torchvision's assign through a boolean mask (the profiler shows
``index_put_`` and ``item``) and copy a kernel from the host (CUDA's sync debug mode flagged it
on an H100), both of which make the host wait for the GPU.
Geometric ops (rotate, shear, translate) share one batched ``affine_grid``/``grid_sample``;
their empty area is filled with grey (128), as FixMatch's RandAugment fills shear/translate.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.247, 0.243, 0.261)
CIFAR100_MEAN = (0.507, 0.487, 0.441)
CIFAR100_STD = (0.267, 0.256, 0.276)

GREY = 128

# The 14 RandAugment ops of the recipe and their magnitude ranges (uniform in [low, high]).
OP_RANGES: dict[str, tuple[float, float]] = {
    "AutoContrast": (0, 0), "Brightness": (0.05, 0.95), "Color": (0.05, 0.95),
    "Contrast": (0.05, 0.95), "Equalize": (0, 0), "Identity": (0, 0), "Posterize": (4, 8),
    "Rotate": (-30, 30), "Sharpness": (0.05, 0.95), "ShearX": (-0.3, 0.3),
    "ShearY": (-0.3, 0.3), "Solarize": (0, 256), "TranslateX": (-0.3, 0.3),
    "TranslateY": (-0.3, 0.3),
}
OPS = tuple(OP_RANGES)
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")


def _check(x: torch.Tensor) -> None:
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"expected an N x C x H x W uint8 batch, got {x.dtype} of shape "
                         f"{tuple(x.shape)}")


def _rand(n: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 N x C x H x W -> float32 ``(x / 255 - mean) / std`` per channel."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


# ----------------------------------------------------------------------------- weak view

def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of the zero-padded batch back to H x W (torchvision's
    ``RandomCrop(size, padding=pad)``, batched with two gathers)."""
    N, C, H, W = x.shape
    if pad <= 0:
        return x
    xp = F.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (N, 2), generator=generator, device=x.device)
    rows = (torch.arange(H, device=x.device).view(1, 1, H, 1) + off[:, 0].view(N, 1, 1, 1))
    xp = xp.gather(2, rows.expand(N, C, H, W + 2 * pad))
    cols = (torch.arange(W, device=x.device).view(1, 1, 1, W) + off[:, 1].view(N, 1, 1, 1))
    return xp.gather(3, cols.expand(N, C, H, W))


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flip of each sample with probability 1/2."""
    flip = _rand(len(x), generator, x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def weak_augment(x: torch.Tensor, *, pad: int = 4, flip: bool = True,
                 generator: torch.Generator) -> torch.Tensor:
    """The weak view: pad-``pad`` random crop, then (if ``flip``) random horizontal flip."""
    _check(x)
    x = random_crop(x, pad, generator)
    return random_flip(x, generator) if flip else x


# ----------------------------------------------------------------------------- RandAugment ops

def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma (ITU-R 601-2, as PIL's convert('L')) of a float batch, N x 1 x H x W."""
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: ``degenerate + factor * (x - degenerate)`` with a per-sample factor."""
    return degenerate + factor.view(-1, 1, 1, 1) * (x - degenerate)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Per-sample affine warp (theta: N x 2 x 3 in normalised coordinates), grey fill."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    ones = torch.ones_like(x[:, :1])
    out = F.grid_sample(torch.cat([x, ones], 1), grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)
    img, inside = out[:, :-1], out[:, -1:]
    return img * inside + GREY * (1 - inside)


def _geometric_theta(name: str, v: torch.Tensor) -> torch.Tensor:
    """Inverse-map matrices (output -> input coordinates) of a geometric op, magnitude ``v``."""
    n = len(v)
    theta = torch.zeros(n, 2, 3, device=v.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    if name == "Rotate":
        a = v * math.pi / 180
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
    elif name == "ShearX":
        theta[:, 0, 1] = v
    elif name == "ShearY":
        theta[:, 1, 0] = v
    elif name == "TranslateX":
        theta[:, 0, 2] = 2 * v  # v is a fraction of the width; normalised coordinates span 2
    elif name == "TranslateY":
        theta[:, 1, 2] = 2 * v
    return theta


def apply_op(name: str, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply RandAugment op ``name`` to a uint8 batch with per-sample magnitudes ``v`` (float,
    one per sample, in the op's range of `OP_RANGES`). Returns uint8."""
    if name == "Identity":
        return x
    if name == "AutoContrast":
        return autocontrast(x)
    if name == "Equalize":
        return TF.equalize(x)
    if name == "Posterize":  # keep the top `bits` bits, bits in {4..8}
        bits = v.round().clamp(1, 8).to(torch.int64)
        mask = ((0xFF << (8 - bits)) & 0xFF).to(torch.uint8).view(-1, 1, 1, 1)
        return x & mask
    if name == "Solarize":  # invert pixels >= threshold
        t = v.view(-1, 1, 1, 1)
        return torch.where(x.float() >= t, 255 - x, x)
    xf = x.float()
    if name == "Brightness":
        out = _blend(torch.zeros_like(xf), xf, v)
    elif name == "Color":
        out = _blend(_grey(xf).expand_as(xf), xf, v)
    elif name == "Contrast":
        out = _blend(_grey(xf).mean((1, 2, 3), keepdim=True).expand_as(xf), xf, v)
    elif name == "Sharpness":
        out = _blend(smooth(x).float(), xf, v)
    elif name in _GEOMETRIC:
        out = _affine(xf, _geometric_theta(name, v))
    else:
        raise ValueError(f"unknown RandAugment op {name!r}; ops: {', '.join(OPS)}")
    return out.round().clamp(0, 255).to(torch.uint8)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.autocontrast`` per image and channel (as torchvision's
    ``autocontrast``, with which tests/test_augment.py checks it): stretch [min, max] to
    [0, 255]; a constant channel is left as it is. No boolean-mask assignment: no host sync."""
    xf = x.float()
    lo = xf.amin(dim=(-2, -1), keepdim=True)
    hi = xf.amax(dim=(-2, -1), keepdim=True)
    flat = hi == lo
    inv_scale = torch.where(flat, 1.0, (hi - lo) * (1.0 / 255))
    return ((xf - torch.where(flat, 0.0, lo)) / inv_scale).clamp(0, 255).to(torch.uint8)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter, the degenerate image of ``ImageEnhance.Sharpness`` (as torchvision's
    ``adjust_sharpness(x, 0)``, with which tests/test_augment.py checks it): the 3 x 3 kernel
    [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 inside, the border pixels kept. Our own because
    torchvision builds its kernel with ``torch.tensor(list, device=...)``, a host-to-device copy
    that CUDA's sync debug mode flags (seen on an H100, torchvision 0.26)."""
    c = x.shape[1]
    kernel = torch.full((c, 1, 3, 3), 1.0 / 13.0, device=x.device)
    kernel[:, :, 1, 1] = 5.0 / 13.0
    out = x.float()
    inner = F.conv2d(out, kernel, groups=c).round()
    return torch.cat([out[:, :, :1], torch.cat([out[:, :, 1:-1, :1], inner, out[:, :, 1:-1, -1:]],
                                               dim=3), out[:, :, -1:]], dim=2).to(x.dtype)


def _draw_ops(n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One RandAugment round's draws: an op index in [0, 14) and a uniform number per sample."""
    op_idx = torch.randint(0, len(OPS), (n,), generator=generator, device=device)
    return op_idx, _rand(n, generator, device)


def _magnitude(name: str, u: torch.Tensor) -> torch.Tensor:
    lo, hi = OP_RANGES[name]
    return lo + (hi - lo) * u


def _round_by_subsets(x: torch.Tensor, op_idx: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One round: each op runs on the samples that drew it only (gathered with ``nonzero``).
    Least arithmetic, but every ``nonzero`` makes the host wait for a GPU."""
    out = x.clone()
    for i, name in enumerate(OPS):
        sel = (op_idx == i).nonzero().flatten()
        if len(sel) == 0 or name == "Identity":
            continue
        out[sel] = apply_op(name, x[sel], _magnitude(name, u[sel]))
    return out


def _round_whole_batch(x: torch.Tensor, op_idx: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One round with static shapes: every pixel op runs on the whole batch and ``torch.where``
    keeps each sample's own; the five geometric ops share ONE warp (each sample's own matrix,
    the identity for the others). Same result as `_round_by_subsets`, no host sync."""
    out = x
    theta = torch.zeros(len(x), 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    for i, name in enumerate(OPS):
        drew = op_idx == i
        if name == "Identity":
            continue
        if name in _GEOMETRIC:
            theta = torch.where(drew.view(-1, 1, 1),
                                _geometric_theta(name, _magnitude(name, u)), theta)
            continue
        out = torch.where(drew.view(-1, 1, 1, 1), apply_op(name, x, _magnitude(name, u)), out)
    geometric = torch.zeros_like(op_idx, dtype=torch.bool)
    for name in _GEOMETRIC:
        geometric |= op_idx == OPS.index(name)
    warped = _affine(x.float(), theta).round().clamp(0, 255).to(torch.uint8)
    return torch.where(geometric.view(-1, 1, 1, 1), warped, out)


def rand_augment(x: torch.Tensor, *, num_ops: int = 3, generator: torch.Generator,
                 whole_batch: bool | None = None) -> torch.Tensor:
    """RandAugment: ``num_ops`` rounds; in each, every sample draws one of the 14 `OPS`
    uniformly (with replacement across rounds) and a uniform magnitude in its range.

    ``whole_batch`` picks one of two implementations of the same function (identical output for
    the same generator): True runs every op on the whole batch with static shapes (no host
    sync: what a GPU wants), False runs each op on its own samples (least arithmetic: what a CPU
    wants). Default: True on CUDA, else False. Measured on the 2-core CPU (batch 128): 15 ms
    per call by subsets, 89 ms on the whole batch; on CUDA the subset path waits for the GPU
    14 times per round (benchmarks/step_profile.py counts the syncs).
    """
    _check(x)
    if whole_batch is None:
        whole_batch = x.is_cuda
    one_round = _round_whole_batch if whole_batch else _round_by_subsets
    for _ in range(num_ops):
        op_idx, u = _draw_ops(len(x), generator, x.device)
        x = one_round(x, op_idx, u)
    return x


def cutout(x: torch.Tensor, *, max_frac: float = 0.5, generator: torch.Generator) -> torch.Tensor:
    """Cutout: a square of side U[0, max_frac] * H centred uniformly in the image (it may stick
    out of the border), filled with grey, one per sample."""
    _check(x)
    N, _, H, W = x.shape
    side = _rand(N, generator, x.device) * max_frac * H
    cy = _rand(N, generator, x.device) * H
    cx = _rand(N, generator, x.device) * W
    ys = torch.arange(H, device=x.device).view(1, H, 1) + 0.5
    xs = torch.arange(W, device=x.device).view(1, 1, W) + 0.5
    half = (side / 2).view(N, 1, 1)
    box = ((ys - cy.view(N, 1, 1)).abs() < half) & ((xs - cx.view(N, 1, 1)).abs() < half)
    return torch.where(box.unsqueeze(1), torch.full_like(x, GREY), x)


def strong_augment(x: torch.Tensor, *, pad: int = 4, flip: bool = True, num_ops: int = 3,
                   cutout_frac: float = 0.5, generator: torch.Generator,
                   whole_batch: bool | None = None) -> torch.Tensor:
    """The strong view: RandAugment(``num_ops``) + Cutout, then the weak view (``whole_batch``:
    see `rand_augment`)."""
    x = rand_augment(x, num_ops=num_ops, generator=generator, whole_batch=whole_batch)
    x = cutout(x, max_frac=cutout_frac, generator=generator)
    return weak_augment(x, pad=pad, flip=flip, generator=generator)


# ----------------------------------------------------------------------------- mixing

def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator; draw a seed from ours for a NumPy Beta sample.
    # (One host sync: the training loop passes lambdas drawn at the start of the epoch instead.)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                             device=generator.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix_lambdas(alpha: float, n: int, seed) -> np.ndarray:
    """``n`` mixup coefficients lambda ~ Beta(alpha, alpha), lambda = max(lambda, 1 - lambda),
    drawn on the host from ``np.random.default_rng(seed)`` (``seed`` may be a sequence of ints).
    The training loop draws an epoch's worth at once so no step waits for the GPU."""
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return np.maximum(lam, 1 - lam)


def labeled_pairs(labeled: torch.Tensor, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random mixing partners inside the labeled subset with static shapes (no host sync).

    Returns ``(first, second, valid)``: two orderings of the batch indices, each with the
    labeled samples first in an independent random order, and ``valid = labeled[first]``. For
    the positions where ``valid`` is True, ``(first, second)`` pairs every labeled sample with a
    uniformly random labeled partner, as ``x_l`` with ``x_l[randperm]`` would; the remaining
    positions pair unlabeled samples with each other and get zero loss weight.
    """
    n = len(labeled)
    last = (~labeled).float() * 2  # keys of unlabeled samples sort after every labeled one
    first = torch.argsort(_rand(n, generator, labeled.device) + last)
    second = torch.argsort(_rand(n, generator, labeled.device) + last)
    return first, second, labeled[first]


def mix_pairs(x: torch.Tensor, y: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
              lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup of the pairs ``(first[i], second[i])``: ``lam * a + (1 - lam) * b`` for inputs
    and soft targets."""
    return (lam * x[first] + (1 - lam) * x[second], lam * y[first] + (1 - lam) * y[second])


def mixup(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 4.0,
          generator: torch.Generator, lam: float | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup inside a batch (docs/method.md#debiased-training: lambda ~ Beta(alpha, alpha), lambda = max(lambda, 1-lambda)).

    x: float batch N x ...; y: soft targets N x C; ``lam``: a coefficient drawn beforehand (see
    `mix_lambdas`), else one is drawn here. Returns (mixed x, mixed y, lambda).
    """
    if lam is None:
        lam = _beta(alpha, generator)
        lam = max(lam, 1 - lam)
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    x_mix, y_mix = mix_pairs(x, y, torch.arange(len(x), device=x.device), perm, lam)
    return x_mix, y_mix, lam


def fmix_mask(h: int, w: int, lam: float, *, decay_power: float = 3.0,
              generator: torch.Generator) -> torch.Tensor:
    """FMix's binary mask (Harris et al. 2020): low-pass filtered Gaussian noise in Fourier space
    (amplitude 1 / f^decay_power), whose top ``round(lam * h * w)`` pixels are 1. Shape h x w."""
    dev = generator.device
    fy = torch.fft.fftfreq(h, device=dev).view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=dev).view(1, -1)
    freq = torch.sqrt(fy ** 2 + fx ** 2)
    scale = 1.0 / torch.clamp(freq, min=1.0 / max(h, w)) ** decay_power
    noise = torch.randn(2, *freq.shape, generator=generator, device=dev)
    spectrum = torch.complex(noise[0] * scale, noise[1] * scale)
    grey = torch.fft.irfftn(spectrum, s=(h, w)).flatten()
    mask = torch.zeros(h * w, device=dev)
    mask[grey.argsort(descending=True)[:round(lam * h * w)]] = 1
    return mask.view(h, w)


def fmix_pairs(x: torch.Tensor, y: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
               lam: float, *, decay_power: float = 3.0, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """FMix of the pairs ``(first[i], second[i])`` with one mask for the batch (`fmix_mask`)."""
    mask = fmix_mask(x.shape[-2], x.shape[-1], lam, decay_power=decay_power,
                     generator=generator).to(x.dtype)
    return mask * x[first] + (1 - mask) * x[second], lam * y[first] + (1 - lam) * y[second]


def fmix(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 1.0, decay_power: float = 3.0,
         generator: torch.Generator, lam: float | None = None
         ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """FMix inside a batch (the released ProMix code's extra term; ``TrainConfig.fmix``).

    lambda ~ Beta(alpha, alpha) unless given; one mask for the batch; returns (mixed x, mixed y,
    lambda)."""
    if lam is None:
        lam = _beta(alpha, generator)
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    x_mix, y_mix = fmix_pairs(x, y, torch.arange(len(x), device=x.device), perm, lam,
                              decay_power=decay_power, generator=generator)
    return x_mix, y_mix, lam
