"""What changes over a run: the learning rate, the ramps of gamma and lambda_u (Eq. 9), and the
mixing coefficients drawn for an epoch. Pure functions of the config and the epoch."""
from __future__ import annotations

import math

import numpy as np

from . import augment
from .config import TrainConfig


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
