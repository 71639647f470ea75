"""Debiased semi-supervised training of ProMix: class prior, debiased margin loss, debiased
pseudo-labels (the paper's "Distribution Bias Removal", DBR).

One small pure function per equation (tensors in, tensors out; inputs are never modified and
outputs live on the inputs' device):

- :func:`update_class_prior`     Eq. 7: EMA of the mean predicted distribution, pi.
- :func:`debias_logits`          Eq. 6: ``f - alpha * log(pi)``, the debiased prediction.
- :func:`debiased_margin_loss`   Eq. 5: cross-entropy on ``f + alpha * log(pi)`` (DML).
- :func:`sharpen`                MixMatch sharpening of the pseudo-labels (T = 0.5).
- :func:`debiased_pseudo_labels` the auxiliary head's soft targets: sharpen(softmax(Eq. 6)).

Note the signs: the LOSS adds ``alpha * log(pi)`` (a larger margin for rare classes, a logit
adjustment), the PREDICTION subtracts it (suppresses the easy, over-predicted classes).
With ``alpha = 0`` every function here is exactly its plain counterpart.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "uniform_prior",
    "update_class_prior",
    "debias_logits",
    "debiased_margin_loss",
    "sharpen",
    "debiased_pseudo_labels",
]


def uniform_prior(num_classes: int, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The starting value of the class prior of Eq. 7 of the ProMix paper: ``pi = 1/C``.

    Returns:
        float ``(C,)`` tensor filled with ``1 / num_classes`` on ``device``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return torch.full((num_classes,), 1.0 / num_classes, dtype=dtype, device=device)


def update_class_prior(prior: torch.Tensor, probs: torch.Tensor, momentum: float = 0.9999,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """One step of the class-prior EMA, Eq. 7 of the ProMix paper:
    ``pi <- m * pi + (1 - m) * mean_i p_i``.

    ``mask`` (bool ``(B,)``) restricts the mean to some rows, e.g. the labeled or the unlabeled
    samples of a batch; it is applied arithmetically (no boolean indexing), so on a GPU the host
    never waits for it. An EMPTY set (``B == 0`` or no True in ``mask``) returns the prior
    unchanged. The authors' released code averages over the empty set there and the prior
    becomes NaN (their issues #12 and #18); this function never does.

    Args:
        prior: float ``(C,)``, the current prior pi (sums to 1).
        probs: float ``(B, C)``, softmax of the primary head on the weak view of the batch.
        momentum: m (0.9999 in the recipe).
        mask: optional bool ``(B,)``: average only the rows where it is True.

    Returns:
        a NEW float ``(C,)`` tensor with ``prior``'s dtype and device, detached from any graph.
    """
    if prior.dim() != 1 or probs.dim() != 2 or probs.shape[1] != prior.shape[0]:
        raise ValueError(f"prior must be (C,) and probs (B, C); got {tuple(prior.shape)} and "
                         f"{tuple(probs.shape)}")
    prior = prior.detach()
    if probs.shape[0] == 0:
        return prior.clone()
    probs = probs.detach().to(device=prior.device, dtype=prior.dtype)
    if mask is None:
        return momentum * prior + (1.0 - momentum) * probs.mean(dim=0)
    if mask.shape != probs.shape[:1]:
        raise ValueError(f"mask must have shape ({probs.shape[0]},), got {tuple(mask.shape)}")
    w = mask.to(device=prior.device, dtype=prior.dtype)
    count = w.sum()
    mean = (probs * w[:, None]).sum(dim=0) / count.clamp_min(1)
    return torch.where(count > 0, momentum * prior + (1.0 - momentum) * mean, prior)


def _log_prior(prior: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``log(prior)`` in ``like``'s dtype and device; a zero entry is clamped to the dtype's
    smallest normal number so the result stays finite (and ``0 * log(pi)`` is exactly 0)."""
    p = prior.detach().to(device=like.device, dtype=like.dtype)
    return torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))


def debias_logits(logits: torch.Tensor, prior: torch.Tensor, alpha: float) -> torch.Tensor:
    """The debiased prediction, Eq. 6 of the ProMix paper: ``f~ = f - alpha * log(pi)``.

    Its softmax / argmax is the debiased pseudo-label (and LGA's guessed label). The prior is
    treated as a constant (no gradient flows into it). ``alpha = 0`` returns values equal to
    ``logits`` bit for bit.

    Args:
        logits: float ``(B, C)``, the raw logits f(x).
        prior: float ``(C,)``, the class prior pi of Eq. 7 (entries > 0; zeros are clamped).
        alpha: debiasing strength (0.8 for CIFAR-10, 0.5 for CIFAR-100).

    Returns:
        float ``(B, C)``, ``logits``' dtype and device; differentiable w.r.t. ``logits``.
    """
    if logits.shape[-1] != prior.shape[-1] or prior.dim() != 1:
        raise ValueError(f"logits (B, C) and prior (C,) disagree: {tuple(logits.shape)} vs "
                         f"{tuple(prior.shape)}")
    return logits - alpha * _log_prior(prior, logits)


def debiased_margin_loss(logits: torch.Tensor, targets: torch.Tensor, prior: torch.Tensor,
                         alpha: float, reduction: str = "mean") -> torch.Tensor:
    """Debiased margin-based loss (DML), Eq. 5 of the ProMix paper:
    ``l_i = -sum_j y_ij * log softmax(f(x_i) + alpha * log(pi))_j``.

    Hard targets (class indices) or soft targets (a probability vector per row) are both taken
    by ``torch.nn.functional.cross_entropy``. ``alpha = 0`` is exactly the plain cross-entropy.
    An empty batch gives 0.0 (``reduction`` "mean" or "sum"; still connected to the graph, so
    ``backward`` works) instead of the NaN of an empty mean; with "none" an empty ``(0,)``.

    Args:
        logits: float ``(B, C)``, the raw logits f(x).
        targets: long ``(B,)`` class indices, or float ``(B, C)`` soft targets (rows sum to 1).
        prior: float ``(C,)``, the class prior pi (a constant here).
        alpha: debiasing strength.
        reduction: "mean" (over the batch), "sum" or "none".

    Returns:
        float scalar tensor, or float ``(B,)`` for ``reduction="none"``; on ``logits.device``.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    adjusted = debias_logits(logits, prior, -alpha)  # f + alpha * log(pi)
    if logits.shape[0] == 0 and reduction != "none":
        return logits.sum() * 0.0
    if targets.is_floating_point():
        targets = targets.to(logits.dtype)
    return F.cross_entropy(adjusted, targets, reduction=reduction)


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """MixMatch sharpening, applied to the debiased prediction of Eq. 6 of the ProMix paper:
    ``p_ij^(1/T) / sum_k p_ik^(1/T)``.

    Computed in the log domain, ``softmax(log(p) / T)``, which is the same thing but cannot
    underflow to 0/0 for small T. ``T = 1`` leaves (normalised) probabilities as they are;
    ``T -> 0`` tends to one-hot.

    Args:
        probs: float ``(B, C)``, probabilities (non-negative rows, each with a positive entry).
        temperature: T > 0 (0.5 in the recipe).

    Returns:
        float ``(B, C)``, rows sum to 1; ``probs``' dtype and device.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(torch.log(probs) / temperature, dim=-1)


def debiased_pseudo_labels(logits: torch.Tensor, prior: torch.Tensor, alpha: float,
                           temperature: float = 0.5) -> torch.Tensor:
    """Soft pseudo-labels for the unlabeled set: ``sharpen(softmax(f - alpha * log(pi)), T)``,
    the debiased prediction of Eq. 6 of the ProMix paper, sharpened.

    The primary head h produces them and the auxiliary pseudo head h_AP learns from them
    (docs/method.md#debiased-training, the paper's Confirmation Bias Removal); no gradient flows
    back. ``alpha = 0`` gives exactly ``sharpen(softmax(logits), T)``.

    Args:
        logits: float ``(B, C)``, primary-head logits on the weak view.
        prior: float ``(C,)``, the unlabeled class prior pi_u of Eq. 7.
        alpha: debiasing strength.
        temperature: sharpening temperature T (0.5).

    Returns:
        float ``(B, C)`` soft targets (rows sum to 1), no gradient; ``logits``' dtype and device.
    """
    with torch.no_grad():
        return sharpen(torch.softmax(debias_logits(logits.detach(), prior, alpha), dim=-1),
                       temperature)
