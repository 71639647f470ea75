"""Augmentation of whole uint8 image batches on the training device (RECIPE "Data and
augmentation").

Every function takes an N x C x H x W ``uint8`` tensor on any device and a ``torch.Generator``
on that device, and draws its randomness per sample from that generator (so a run is
reproducible from its seed). There is no per-sample Python loop and no PIL: RandAugment loops
over its 14 ops (each applied to the samples that drew it, with per-sample magnitudes) and
over its 3 rounds, i.e. a fixed number of batched tensor ops per batch.

- weak view: random crop with ``pad`` pixels of zero padding + horizontal flip;
- strong view: FixMatch-style RandAugment (3 ops drawn uniformly with replacement from 14, each
  with a uniform random magnitude), then Cutout (side U[0, 0.5] * image size, grey), then the
  weak pipeline;
- mixup (Beta(4, 4), lambda = max(lambda, 1 - lambda)) and FMix (the released code's extra
  term; optional here) on float batches.

Where torchvision.transforms.v2 implements an op on batched tensors with per-batch (not
per-sample) parameters, we use it for the parameter-free part: ``equalize``, ``autocontrast``
and the blurred image of ``adjust_sharpness``. Per-sample magnitudes are blended by hand.
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
        return TF.autocontrast(x)
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
        out = _blend(TF.adjust_sharpness(x, 0.0).float(), xf, v)
    elif name in _GEOMETRIC:
        out = _affine(xf, _geometric_theta(name, v))
    else:
        raise ValueError(f"unknown RandAugment op {name!r}; ops: {', '.join(OPS)}")
    return out.round().clamp(0, 255).to(torch.uint8)


def rand_augment(x: torch.Tensor, *, num_ops: int = 3,
                 generator: torch.Generator) -> torch.Tensor:
    """RandAugment: ``num_ops`` rounds; in each, every sample draws one of the 14 `OPS`
    uniformly (with replacement across rounds) and a uniform magnitude in its range."""
    _check(x)
    N = len(x)
    for _ in range(num_ops):
        op_idx = torch.randint(0, len(OPS), (N,), generator=generator, device=x.device)
        u = _rand(N, generator, x.device)
        out = x.clone()
        for i, name in enumerate(OPS):
            sel = (op_idx == i).nonzero().flatten()
            if len(sel) == 0 or name == "Identity":
                continue
            lo, hi = OP_RANGES[name]
            out[sel] = apply_op(name, x[sel], lo + (hi - lo) * u[sel])
        x = out
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
                   cutout_frac: float = 0.5, generator: torch.Generator) -> torch.Tensor:
    """The strong view: RandAugment(``num_ops``) + Cutout, then the weak view."""
    x = rand_augment(x, num_ops=num_ops, generator=generator)
    x = cutout(x, max_frac=cutout_frac, generator=generator)
    return weak_augment(x, pad=pad, flip=flip, generator=generator)


# ----------------------------------------------------------------------------- mixing

def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator; draw a seed from ours for a NumPy Beta sample.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                             device=generator.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 4.0,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup inside a batch (RECIPE: lambda ~ Beta(alpha, alpha), lambda = max(lambda, 1-lambda)).

    x: float batch N x ...; y: soft targets N x C. Returns (mixed x, mixed y, lambda).
    """
    lam = _beta(alpha, generator)
    lam = max(lam, 1 - lam)
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm], lam


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


def fmix(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 1.0, decay_power: float = 3.0,
         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """FMix inside a batch (the released ProMix code's extra term; ``TrainConfig.fmix``).

    lambda ~ Beta(alpha, alpha); one mask for the batch; returns (mixed x, mixed y, lambda)."""
    lam = _beta(alpha, generator)
    mask = fmix_mask(x.shape[-2], x.shape[-1], lam, decay_power=decay_power,
                     generator=generator).to(x.dtype)
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    return mask * x + (1 - mask) * x[perm], lam * y + (1 - lam) * y[perm], lam
