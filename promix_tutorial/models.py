"""Networks. Each returns ``(logits, aux_logits)``: the primary head h and the auxiliary pseudo
head h_AP on one shared backbone (docs/method.md#networks; the CBR of the paper, Sec. 3.2).

- ``resnet18``: the CIFAR ResNet-18 the authors' released code trains (3x3 stem, no max-pool,
  four stages of two post-activation basic blocks, 512 features): the ``paper`` preset's.
- ``preact_resnet18``: PreAct ResNet-18, the network the paper's text names (DivideMix's version:
  3x3 stem, four stages of two pre-activation basic blocks, 512 features).
- ``fast_cnn``: a small airbench-style CNN (conv -> max-pool -> BN -> GELU blocks, global max
  pool, no residuals) for the ``fast`` and ``cpu`` presets.
- ``digits_net``: a small CNN for scikit-learn's 8 x 8 digits (the ``tiny`` preset).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_NAMES = ("resnet18", "preact_resnet18", "fast_cnn", "digits_net")


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
    if name == "digits_net":
        return DigitsNet(num_classes, in_channels, **kwargs)
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)}")


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
