"""Networks. Each returns ``(logits, aux_logits)``: the primary head h and the auxiliary pseudo
head h_AP on one shared backbone (docs/method.md#networks; the CBR of the paper, Sec. 3.2).

- ``resnet18``: the CIFAR ResNet-18 the authors' released code trains (3x3 stem, no max-pool,
  four stages of two post-activation basic blocks, 512 features): the ``paper`` preset's.
- ``preact_resnet18``: PreAct ResNet-18, the network the paper's text names (DivideMix's version:
  3x3 stem, four stages of two pre-activation basic blocks, 512 features).
- ``fast_cnn``: a small airbench-style CNN (conv -> max-pool -> BN -> GELU blocks, global max
  pool, no residuals) for the ``cpu`` preset (and the ``fast`` preset's earlier runs).
- ``airbench94`` / ``airbench95``: airbench's network body (Jordan 2024) for the ``fast`` preset:
  a frozen 2x2 patch-whitening stem computed from the training images (`whitening_weights`),
  conv blocks of widths (64, 256, 256) / (128, 384, 384) with Dirac-initialised convolutions and
  BatchNorm weights frozen at 1 (docs/calibration.md#fast-preset).
- ``digits_net``: a small CNN for scikit-learn's 8 x 8 digits (the ``tiny`` preset).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_NAMES = ("resnet18", "preact_resnet18", "fast_cnn", "airbench94", "airbench95",
               "digits_net")
AIRBENCH_WIDTHS = {"airbench94": (64, 256, 256), "airbench95": (128, 384, 384)}


class TwoHeads(nn.Module):
    """Primary head and auxiliary pseudo head (two linear layers) on the same features."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.primary = nn.Linear(features, num_classes)
        self.aux = nn.Linear(features, num_classes)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.primary(z), self.aux(z)


# ----------------------------------------------------------------------------- ResNet-18

class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the (projected) input, then ReLU (He et al. 2016a)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR ResNet-18 of the authors' released code with the two heads: a 3x3 stem
    (conv-BN-ReLU, no max-pool), stages of (64, 128, 256, 512) channels with two basic blocks
    each, global average pooling."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU())
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.heads = TwoHeads(512, num_classes)

    def features(self, x):
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)

    def forward(self, x):
        return self.heads(self.features(x))


# ----------------------------------------------------------------------------- PreAct ResNet-18

class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 (He et al. 2016) with the two heads; input 32 x 32 (any size works)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(512)
        self.heads = TwoHeads(512, num_classes)

    def features(self, x):
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x):
        return self.heads(self.features(x))


# ----------------------------------------------------------------------------- fast CNN

def _conv_bn(cin: int, cout: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers + [nn.BatchNorm2d(cout), nn.GELU()]


class FastCNN(nn.Module):
    """airbench-style CNN: a stem conv, then per width w a block conv -> max-pool -> BN -> GELU
    -> conv -> BN -> GELU, then global max pooling and the two heads.

    ``widths`` = (stem, block widths...); default (64, 256, 256) -> (32, 64, 256, 256)-ish
    capacity at 32 x 32 (about 2.3 M parameters). ``logit_scale`` multiplies both heads' logits
    (airbench multiplies its logits by 1/9, which keeps them small while the learning rate is
    high; 1 = no scaling)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 widths: tuple[int, ...] = (64, 256, 256), logit_scale: float = 1.0):
        super().__init__()
        if len(widths) < 1 or any(int(w) < 1 for w in widths):
            raise ValueError(f"FastCNN widths must be positive integers, got {widths!r}")
        if not logit_scale > 0:
            raise ValueError(f"FastCNN logit_scale must be positive, got {logit_scale!r}")
        self.logit_scale = float(logit_scale)
        stem = max(8, widths[0] // 2)
        layers = _conv_bn(in_channels, stem, pool=False)
        cin = stem
        for w in widths:
            layers += _conv_bn(cin, w, pool=True) + _conv_bn(w, w, pool=False)
            cin = w
        self.body = nn.Sequential(*layers)
        self.heads = TwoHeads(cin, num_classes)

    def features(self, x):
        return F.adaptive_max_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x):
        logits, aux = self.heads(self.features(x))
        if self.logit_scale == 1.0:
            return logits, aux
        return logits * self.logit_scale, aux * self.logit_scale


# ----------------------------------------------------------------------------- airbench

def whitening_weights(x_uint8_train: torch.Tensor, mean, std, kernel_size: int = 2,
                      eps: float = 5e-4, max_images: int = 5000) -> torch.Tensor:
    """The weights of airbench's patch-whitening stem, from training images only (no labels).

    The second-moment matrix S of all ``kernel_size`` x ``kernel_size`` patches of the first
    ``max_images`` normalised images (uint8 N x C x H x W, ``(x / 255 - mean) / std``) has
    eigenvalues l and eigenvectors v; each filter is ``v / sqrt(l + eps)`` (largest l first), so
    the filters' outputs on those patches have second moment ``diag(l / (l + eps))``, about the
    identity. Returns ``(2 d, C, k, k)`` float32, d = C k^2: the filters and their negatives
    (the GELU after the stem then keeps both signs)."""
    k, c = kernel_size, x_uint8_train.shape[1]
    d = c * k * k
    m = torch.as_tensor(mean, dtype=torch.float32, device=x_uint8_train.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x_uint8_train.device).view(1, -1, 1, 1)
    second = torch.zeros(d, d, dtype=torch.float64, device=x_uint8_train.device)
    n = 0
    images = x_uint8_train[:max_images]
    for i in range(0, len(images), 500):  # chunks: all patches at once would take gigabytes
        x = (images[i:i + 500].float() / 255.0 - m) / s
        p = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, d).double()
        second += p.T @ p
        n += len(p)
    eigenvalues, eigenvectors = torch.linalg.eigh(second / max(n, 1))
    w = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).flip(0)
    w = w.reshape(d, c, k, k).float()
    return torch.cat([w, -w])


class _FrozenScaleBN(nn.BatchNorm2d):
    """BatchNorm whose weight (scale) stays 1 and only the bias trains (airbench)."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.weight.requires_grad_(False)


def _dirac_conv(cin: int, cout: int) -> nn.Conv2d:
    """A 3x3 convolution whose first ``cin`` output channels start as the identity (Dirac), an
    implicit residual at initialisation (airbench); the others keep PyTorch's initialisation."""
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    nn.init.dirac_(conv.weight.data[:cin])
    return conv


class AirbenchNet(nn.Module):
    """airbench94's body with the two heads: a 2x2 patch-whitening convolution (weights frozen,
    set from the training images by `set_whitening`; its bias trains), GELU, then per width w a
    block conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU (convolutions Dirac-initialised,
    BatchNorm weights frozen at 1), global max pooling, and both heads' logits times
    ``logit_scale`` (airbench: 1/9). For images of 16 x 16 pixels or more."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 widths: tuple[int, ...] = AIRBENCH_WIDTHS["airbench94"],
                 logit_scale: float = 1.0, whiten_kernel: int = 2):
        super().__init__()
        if len(widths) < 1 or any(int(w) < 1 for w in widths):
            raise ValueError(f"airbench widths must be positive integers, got {widths!r}")
        if not logit_scale > 0:
            raise ValueError(f"airbench logit_scale must be positive, got {logit_scale!r}")
        self.logit_scale = float(logit_scale)
        self.whiten_kernel = whiten_kernel
        cin = 2 * in_channels * whiten_kernel ** 2
        self.whiten = nn.Conv2d(in_channels, cin, whiten_kernel, bias=True)
        self.whiten.weight.requires_grad_(False)
        layers: list[nn.Module] = [nn.GELU()]
        for w in widths:
            layers += [_dirac_conv(cin, w), nn.MaxPool2d(2), _FrozenScaleBN(w), nn.GELU(),
                       _dirac_conv(w, w), _FrozenScaleBN(w), nn.GELU()]
            cin = w
        self.body = nn.Sequential(*layers)
        self.heads = TwoHeads(cin, num_classes)

    @torch.no_grad()
    def set_whitening(self, weight: torch.Tensor) -> None:
        """Set the stem's frozen filters (`whitening_weights` of the training images)."""
        self.whiten.weight.copy_(weight.to(self.whiten.weight.device))

    def features(self, x):
        return F.adaptive_max_pool2d(self.body(self.whiten(x)), 1).flatten(1)

    def forward(self, x):
        logits, aux = self.heads(self.features(x))
        if self.logit_scale == 1.0:
            return logits, aux
        return logits * self.logit_scale, aux * self.logit_scale


def bn_bias_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The biases of ``net``'s BatchNorm layers (the group airbench trains at a scaled rate)."""
    return [m.bias for m in net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None]


# ----------------------------------------------------------------------------- digits

class DigitsNet(nn.Module):
    """A small CNN for 8 x 8 single-channel digits: two conv blocks (32, 64), a max-pool to
    4 x 4, one conv (64), global average pooling and the two heads."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(in_channels, width, pool=False),
            *_conv_bn(width, 2 * width, pool=True),
            *_conv_bn(2 * width, 2 * width, pool=False))
        self.heads = TwoHeads(2 * width, num_classes)

    def features(self, x):
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x):
        return self.heads(self.features(x))


def build_model(name: str, num_classes: int, in_channels: int = 3, **kwargs) -> nn.Module:
    """A network of `MODEL_NAMES` by name; ``kwargs`` go to its constructor (e.g. ``widths``)."""
    if name == "resnet18":
        return ResNet18(num_classes, in_channels, **kwargs)
    if name == "preact_resnet18":
        return PreActResNet18(num_classes, in_channels, **kwargs)
    if name == "fast_cnn":
        return FastCNN(num_classes, in_channels, **kwargs)
    if name in AIRBENCH_WIDTHS:
        kwargs.setdefault("widths", AIRBENCH_WIDTHS[name])
        return AirbenchNet(num_classes, in_channels, **kwargs)
    if name == "digits_net":
        return DigitsNet(num_classes, in_channels, **kwargs)
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)}")


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
