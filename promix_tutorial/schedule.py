"""What changes over a run: the learning rate (and the optimiser whose groups it sets), the ramps
of gamma and lambda_u (Eq. 9), the mixing coefficients drawn for an epoch and the size of its
mixed passes. Pure functions of the config and the epoch."""
from __future__ import annotations

import math

import numpy as np
import torch

from . import augment
from .config import TrainConfig
from .models import bn_bias_parameters


def cosine_lr(cfg: TrainConfig, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate at ``step`` of ``epoch``. The recipe (docs/method.md#optimisation):
    cosine from ``lr`` to ``lr_min``, once per epoch. Options of the short presets:
    ``lr_per_step`` evaluates the same cosine at every step, and ``lr_warmup_frac`` > 0 first
    rises linearly from ``lr / 25`` to ``lr`` over that fraction of training (one-cycle)."""
    t = epoch / cfg.epochs
    if cfg.lr_per_step:
        t = (epoch * steps_per_epoch + step) / (cfg.epochs * steps_per_epoch)
    w = cfg.lr_warmup_frac
    if t < w:
        return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * t / w
    u = (t - w) / (1 - w)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * u))


def ramp(epoch: int, length: int) -> float:
    """min(epoch / length, 1); 1 when length is 0 (gamma of Eq. 9 ramps so over 50 epochs)."""
    return 1.0 if length <= 0 else min(epoch / length, 1.0)


def unlabeled_weight(cfg: TrainConfig, epoch: int) -> float:
    """lambda_u = 0.1 * min(epoch / 100, 1), zero from ``unlabeled_stop_epoch`` on (code option)."""
    if not cfg.use_unlabeled or (cfg.unlabeled_stop_epoch is not None
                                 and epoch >= cfg.unlabeled_stop_epoch):
        return 0.0
    return cfg.unlabeled_weight * ramp(epoch, cfg.unlabeled_ramp_epochs)


def epoch_mix_lambdas(cfg: TrainConfig, epoch: int, n_batches: int, n_nets: int) -> np.ndarray:
    """(n_batches, n_nets, 4) coefficients for the epoch, drawn on the host at its start so no
    step waits for the GPU: [..., 0] and [..., 2] mixup's lambda ~ Beta(mixup_alpha,
    mixup_alpha), max(lambda, 1 - lambda), for the primary and the auxiliary head; [..., 1] and
    [..., 3] FMix's lambda ~ Beta(1, 1) (the released code's FMix) likewise
    (`losses.mix_labeled`)."""
    n = n_batches * n_nets * 2
    mix = augment.mix_lambdas(cfg.mixup_alpha, n, [cfg.seed, epoch, 0]).reshape(-1, 2)
    fm = np.random.default_rng([cfg.seed, epoch, 1]).beta(1.0, 1.0, size=n).reshape(-1, 2)
    lam = np.stack([mix[:, 0], fm[:, 0], mix[:, 1], fm[:, 1]], axis=-1)
    return lam.reshape(n_batches, n_nets, 4)


def make_optimizer(nets, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD over every network's parameters (docs/method.md#networks). With
    ``cfg.bn_bias_lr_scale`` s != 1 the BatchNorm biases form a second group at learning rate
    s * lr and weight decay / s, so a step decays them as much as the other parameters, and
    frozen parameters are left out (airbench; docs/calibration.md#fast-preset)."""
    params = [p for net in nets for p in net.parameters()]
    kw = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
              nesterov=cfg.nesterov)
    s = cfg.bn_bias_lr_scale
    if s == 1.0:
        return torch.optim.SGD(params, **kw)
    biases = {id(p) for net in nets for p in bn_bias_parameters(net)}
    rest = [p for p in params if p.requires_grad and id(p) not in biases]
    bias = [p for p in params if p.requires_grad and id(p) in biases]
    return torch.optim.SGD([dict(params=rest),
                            dict(params=bias, lr=cfg.lr * s, weight_decay=cfg.weight_decay / s,
                                 lr_scale=s)], **kw)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group's learning rate: ``lr`` times the group's ``lr_scale`` (1 if it has none)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def eval_splits(cfg: TrainConfig, epoch: int) -> dict[str, bool]:
    """What the eval pass after ``epoch`` covers (`evaluation.evaluate`): the test split (and
    the Fig. 3 baselines) every ``cfg.eval_every``-th epoch counted from the first ProMix epoch,
    at the warm-up's last epoch, every recorded epoch and the last one, with flipped copies at
    the last one if ``cfg.tta_flip``; the training split then, and before every ProMix epoch,
    whose CSS ranks its losses."""
    last = epoch == cfg.epochs - 1
    test = ((epoch - cfg.warmup_epochs) % cfg.eval_every == 0 or last
            or epoch == cfg.warmup_epochs - 1 or epoch in cfg.record_epochs)
    css = cfg.method == "promix" and epoch >= cfg.warmup_epochs - 1
    return {"train": test or css, "test": test, "tta": cfg.tta_flip and last}


def mix_bucket_rows(cfg: TrainConfig, epoch: int, previous: dict | None) -> int | None:
    """How many rows the mixed passes of ProMix epoch ``epoch`` take with ``cfg.mix_buckets``
    = n > 0: the smallest of the static sizes ceil(B i / n), i = 1..n, that holds the most
    labeled rows a batch had in the previous epoch (its record's ``mix``, ``previous``) plus 5%
    of B for the selection to grow; B when there is no such record or LGA starts now. None (all
    rows) when the buckets are off. A batch with more labeled rows mixes a random subset of
    them (`losses.mix_labeled`), which the epoch's record counts."""
    n, b = cfg.mix_buckets, cfg.batch_size
    if n == 0:
        return None
    if previous is None or (cfg.use_lga and epoch == max(cfg.lga_start, cfg.warmup_epochs)):
        return b
    need = min(previous["labeled_max"] + math.ceil(0.05 * b), b)
    return next(size for size in (math.ceil(b * i / n) for i in range(1, n + 1)) if size >= need)
