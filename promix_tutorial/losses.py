"""The loss terms of one training step, as pure functions of the networks' outputs (Eq. 3-9).

One ProMix step per network k (docs/method.md; `engine.Trainer.train_step` calls these):
- `select_labeled`: the labeled set D_l = CSS (Eq. 1-2, chosen once per epoch) | MHCS (Eq. 3)
  | in the late phase LGA (Eq. 8) with the peer; the unlabeled set D_u is the rest;
- `mix_labeled`: mixup inside D_l (and FMix with ``cfg.fmix``) for each head;
- `promix_losses`: DML (Eq. 5) on D_l for both heads, the debiased pseudo-label term (Eq. 6) on
  D_u for the auxiliary head, summed as Eq. 9.
Warm-up and the CE baseline use `warmup_losses`. Every subset is a mask used arithmetically
(`masked_mean`): shapes stay static and a GPU never makes the host wait.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import augment
from .config import TrainConfig
from .debias import debias_logits, debiased_margin_loss
from .selection import label_guessing_by_agreement, matched_high_confidence


class Heads(NamedTuple):
    """Logits of one batch of inputs on both heads: the primary head h and the auxiliary pseudo
    head h_AP (float32, ``(B, C)`` each)."""

    primary: torch.Tensor
    aux: torch.Tensor


class Views(NamedTuple):
    """One network's outputs on the weak and the strong view of the same batch."""

    weak: Heads
    strong: Heads


class Selection(NamedTuple):
    """One network's labeled set in one batch (bool / long ``(B,)`` tensors)."""

    labeled: torch.Tensor   # D_l = CSS | MHCS | LGA
    targets: torch.Tensor   # the given label, or LGA's guess where LGA added the sample
    mhcs: torch.Tensor      # added by MHCS (Eq. 3)
    lga: torch.Tensor       # added by LGA (Eq. 8)


def heads(net, x: torch.Tensor) -> Heads:
    """``net(x)`` as float32 `Heads`."""
    h, ap = net(x)
    return Heads(h.float(), ap.float())


def forward_views(net, x_w: torch.Tensor, x_s: torch.Tensor) -> Views:
    """Both views through ``net``, one forward pass each (so each has its own BatchNorm batch
    statistics, as in the released code, Train_promix.py lines 134-137 at commit 40d8378)."""
    return Views(heads(net, x_w), heads(net, x_s))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the rows where ``mask`` is True; 0 (still in the graph) when it
    is all False. Arithmetic masking, not boolean indexing: the shapes stay static and a GPU
    never makes the host wait."""
    w = mask.to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1)


def confidence_penalty(logits: torch.Tensor) -> torch.Tensor:
    """The warm-up's negative-entropy penalty for asymmetric noise (docs/method.md#warm-up;
    DivideMix's NegEntropy): ``mean_i sum_j p_ij log p_ij`` with ``p = softmax(max(logits, 1e-12))``.
    Adding it to the loss rewards less confident predictions. The logits are clamped at 1e-12
    before the softmax because the released code does (docs/method.md#corrections)."""
    p = logits.clamp_min(1e-12).softmax(1)
    return (p * p.clamp_min(1e-12).log()).sum(1).mean()


def select_labeled(css: torch.Tensor, probs: torch.Tensor, peer_probs: torch.Tensor,
                   given: torch.Tensor, guess_logits: torch.Tensor | None, cfg: TrainConfig,
                   lga_on: bool) -> Selection:
    """The labeled set of one network in one batch: CSS (Eq. 1-2; chosen once per epoch, passed
    in as ``css``), MHCS (Eq. 3) on this network's weak-view ``probs``, and in the late phase
    LGA (Eq. 8) with the peer's ``peer_probs``; LGA's samples take the argmax of
    ``guess_logits`` as their target."""
    none = torch.zeros_like(given, dtype=torch.bool)
    labeled = css if cfg.use_css else none
    mhcs = matched_high_confidence(probs, given, cfg.tau) if cfg.use_mhcs else none
    labeled = labeled | mhcs
    if not lga_on:
        return Selection(labeled, given, mhcs, none)
    lga, guessed = label_guessing_by_agreement(probs, peer_probs, labeled, cfg.tau,
                                               cfg.max_labeled_frac, guess_logits=guess_logits)
    return Selection(labeled | lga, torch.where(lga, guessed, given), mhcs, lga)


def lga_guess_logits(k: int, views: list[Views], prior_l: torch.Tensor, prior_u: torch.Tensor,
                     cfg: TrainConfig) -> torch.Tensor:
    """The scores whose argmax is LGA's guessed label for network ``k`` (Eq. 6 applied to LGA).

    ``cfg.lga_guess == "own"`` (the released code): network k's own weak-view prediction
    debiased with its LABELED prior, ``f_k - alpha log pi_l``. ``"ensemble"`` (our earlier
    reading of the paper): the sum over both networks of softmax(f_j - alpha log pi_u,j)."""
    a = cfg.effective_alpha
    if cfg.lga_guess == "own":
        return debias_logits(views[k].weak.primary.detach(), prior_l[k], a)
    return sum(debias_logits(v.weak.primary.detach(), prior_u[j], a).softmax(1)
               for j, v in enumerate(views))


class MixTerm(NamedTuple):
    """One mixing loss term's inputs: the logits of the head it trains on mixed labeled inputs,
    their soft targets, and which rows count (the pairs of unlabeled samples do not)."""

    logits: torch.Tensor    # (B, C)
    targets: torch.Tensor   # (B, C)
    weight: torch.Tensor    # bool (B,)


def mix_labeled(net, x_w: torch.Tensor, sel: Selection, num_classes: int, lam,
                cfg: TrainConfig, gen: torch.Generator,
                channels_last: bool, rows: int | None = None) -> dict[str, MixTerm]:
    """The mixing terms of one network's step: mixup inside the labeled set (docs/method.md#debiased-training:
    lambda ~ Beta(4, 4), max(lambda, 1 - lambda)) and, with ``cfg.fmix``, the released code's FMix term
    (its own pairs, lambda ~ Beta(1, 1)); ``lam`` = (mixup, FMix, aux mixup, aux FMix).

    Returns {"mix", "fmix"} for the primary head and {"aux_mix", "aux_fmix"} for the auxiliary
    head (only the names that are on). With ``cfg.mix_per_head`` (the released code) each head
    gets its own draw and its own forward pass; otherwise the auxiliary terms read the auxiliary
    head of the primary's passes (one pass per term fewer). Static shapes
    (`augment.labeled_pairs`): all B pairs go through the network, the pairs of unlabeled samples
    with zero weight, so BatchNorm's statistics of a mixed pass include those pairs too.

    ``rows`` (``cfg.mix_buckets``, `schedule.mix_bucket_rows`): only the first ``rows`` pairs go
    through the network, the labeled ones first, the rest padding of zero weight: the same loss
    on the same pairs whenever the batch has at most ``rows`` labeled samples, else mixup over
    a random ``rows`` of them. Shapes stay static (one per bucket)."""
    onehot = (sel.targets[:, None] == torch.arange(num_classes, device=x_w.device)).float()

    def mixed(kind: str, coef: float) -> tuple[Heads, torch.Tensor, torch.Tensor]:
        first, second, valid = augment.labeled_pairs(sel.labeled, gen)
        if rows is not None and rows < len(first):
            first, second, valid = first[:rows], second[:rows], valid[:rows]
        if kind == "mix":
            x, y = augment.mix_pairs(x_w, onehot, first, second, coef)
        else:
            x, y = augment.fmix_pairs(x_w, onehot, first, second, coef, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return heads(net, x), y, valid

    lam = [float(v) for v in lam]  # Python floats: a NumPy scalar would be a CPU tensor in CUDA ops
    kinds = ("mix", "fmix") if cfg.fmix else ("mix",)
    terms = {}
    for i, kind in enumerate(kinds):
        out, y, valid = mixed(kind, lam[i])
        terms[kind] = MixTerm(out.primary, y, valid)
        if cfg.use_cbr and not cfg.mix_per_head:
            terms["aux_" + kind] = MixTerm(out.aux, y, valid)
    if cfg.use_cbr and cfg.mix_per_head:
        for i, kind in enumerate(kinds):
            out, y, valid = mixed(kind, lam[2 + i])
            terms["aux_" + kind] = MixTerm(out.aux, y, valid)
    return terms


def mix_row_counts(labeled: torch.Tensor, rows: int) -> torch.Tensor:
    """``[labeled rows, labeled rows beyond rows]`` of one batch (long, on the device, no host
    sync): what a mix bucket of ``rows`` held and left out (`mix_labeled`)."""
    n = labeled.sum()
    return torch.stack([n, (n - rows).clamp_min(0)])


def promix_losses(out: Views, mixed: dict[str, MixTerm], sel: Selection, pseudo: torch.Tensor,
                  prior_l: torch.Tensor, prior_u: torch.Tensor, cfg: TrainConfig, gamma: float,
                  lam_u: float) -> dict[str, torch.Tensor]:
    """The loss terms of one network on one batch, as the released code computes them (Eq. 5
    and 9; docs/method.md#debiased-training and #corrections).

    Labeled set L (``sel.labeled``, targets ``sel.targets``), on each head:
    ``L_cls + gamma * (L_cr + L_mix [+ L_fmix])`` = DML(weak) + gamma * (DML(strong) +
    DML(mixup) [+ DML(FMix)]) (`mix_labeled`), every DML (Eq. 5) with the LABELED prior pi_l.
    The primary head uses plain CE instead when ``cfg.primary_dml`` is False (the paper's text).
    Unlabeled set U = not L, on the auxiliary head (on the primary head when CBR is off):
    ``lambda_u * (DML(weak) + gamma * DML(strong))`` against the sharpened debiased pseudo-labels
    ``pseudo`` (Eq. 6), with the UNLABELED prior pi_u. Every mean is a masked mean over the batch
    (`masked_mean`). Returns the named terms and their weighted sum ``total``.
    """
    a = cfg.effective_alpha
    L, t = sel.labeled, sel.targets

    def dml(logits, targets, prior, alpha, mask):
        return masked_mean(debiased_margin_loss(logits, targets, prior, alpha, "none"), mask)

    def head_terms(prefix: str, weak, strong, alpha) -> dict:
        terms = {prefix + "cls": dml(weak, t, prior_l, alpha, L),
                 prefix + "cr": dml(strong, t, prior_l, alpha, L)}
        for kind in ("mix", "fmix"):
            m = mixed.get(prefix + kind)
            if m is not None:
                terms[prefix + kind] = dml(m.logits, m.targets, prior_l, alpha, m.weight)
        return terms

    def head_total(terms: dict, prefix: str):
        consistency = sum(v for k, v in terms.items()
                          if k.startswith(prefix) and k[len(prefix):] in ("cr", "mix", "fmix"))
        return terms[prefix + "cls"] + gamma * consistency

    terms = head_terms("", out.weak.primary, out.strong.primary, a if cfg.primary_dml else 0.0)
    total = head_total(terms, "")
    if cfg.use_cbr:  # auxiliary pseudo head: the same labeled terms
        terms.update(head_terms("aux_", out.weak.aux, out.strong.aux, a))
        total = total + head_total(terms, "aux_")
        u_heads = Heads(out.weak.aux, out.strong.aux)
    else:  # w/o CBR: the pseudo-labels are consumed by the head that produced them
        u_heads = Heads(out.weak.primary, out.strong.primary)
    if lam_u > 0:
        U = ~L
        terms["unl"] = (dml(u_heads.primary, pseudo, prior_u, a, U)
                        + gamma * dml(u_heads.aux, pseudo, prior_u, a, U))
        total = total + lam_u * terms["unl"]
    terms["total"] = total
    return terms


def warmup_losses(models, x_w: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> dict:
    """Warm-up and the CE baseline: cross-entropy on the weak view, primary head, for every
    network; under asymmetric noise plus the weighted `confidence_penalty`
    (docs/method.md#warm-up). ProMix's warm-up smooths the labels by
    ``cfg.warmup_label_smoothing`` (the CE baseline never). Returns the named terms and their
    sum ``total``."""
    penalize = cfg.warmup_conf_penalty and cfg.method == "promix"
    smoothing = cfg.warmup_label_smoothing if cfg.method == "promix" else 0.0
    terms = {"ce": 0.0, "total": 0.0}
    for model in models:
        logits = heads(model, x_w).primary
        ce = (F.cross_entropy(logits, y, label_smoothing=smoothing) if smoothing
              else F.cross_entropy(logits, y))
        terms["ce"] = terms["ce"] + ce
        terms["total"] = terms["total"] + ce
        if penalize:
            penalty = confidence_penalty(logits)
            terms["penalty"] = terms.get("penalty", 0.0) + penalty
            terms["total"] = terms["total"] + cfg.warmup_penalty_weight * penalty
    return terms
