"""Epoch-level measurements of a run: selection quality against the injected-noise ground truth,
the tuned baselines of the paper's Fig. 3, and pseudo-label accuracy (Fig. 4).

Everything takes tensors on any device and returns plain Python numbers (JSON-ready).
"""
from __future__ import annotations

import torch

from .debias import debias_logits
from .selection import gmm_clean_probability, precision_recall_f1


def selection_scores(selected: torch.Tensor, is_clean: torch.Tensor) -> dict:
    """``{"precision", "recall", "f1", "count"}`` of a bool selection mask vs the clean mask."""
    p, r, f = precision_recall_f1(selected, is_clean)
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f, 5),
            "count": int(selected.sum())}


def _best_f1_of_ranking(order: torch.Tensor, is_clean: torch.Tensor) -> tuple[float, int]:
    """Best F1 over all "keep the first k of ``order``" selections, and that k (k >= 1).

    With TP(k) = clean among the first k, F1(k) = 2 TP(k) / (k + #clean): one cumsum, O(N).
    """
    tp = torch.cumsum(is_clean[order].float(), 0)
    k = torch.arange(1, len(order) + 1, device=order.device, dtype=tp.dtype)
    f1 = 2 * tp / (k + is_clean.sum())
    best = int(torch.argmax(f1))
    return float(f1[best]), best + 1


def tuned_small_loss(losses: torch.Tensor, is_clean: torch.Tensor) -> dict:
    """Small-loss selection (Co-teaching/JoCoR) with its forget rate tuned for the best F1, as
    the paper re-tunes it for Fig. 3. Returns ``{"f1", "forget_rate"}``."""
    f1, k = _best_f1_of_ranking(torch.argsort(losses, stable=True), is_clean)
    return {"f1": round(f1, 5), "forget_rate": round(1 - k / len(losses), 5)}


def tuned_gmm(losses: torch.Tensor, is_clean: torch.Tensor, seed: int = 0) -> dict:
    """DivideMix's GMM selection with its clean-probability threshold tuned for the best F1
    (Fig. 3). Returns ``{"f1", "threshold", "f1_at_0.5"}``."""
    prob = gmm_clean_probability(losses, seed=seed)
    order = torch.argsort(prob, descending=True, stable=True)
    f1, k = _best_f1_of_ranking(order, is_clean)
    f1_half = precision_recall_f1(prob > 0.5, is_clean)[2]  # DivideMix: prob > threshold
    return {"f1": round(f1, 5), "threshold": round(float(prob[order[k - 1]]), 5),
            "f1_at_0.5": round(f1_half, 5)}


def pseudo_label_hits(logits: torch.Tensor, prior: torch.Tensor, alpha: float,
                      clean: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Correct-count tensor ``[plain, debiased]`` of argmax pseudo-labels vs the true labels;
    debiased = argmax of Eq. 6, ``logits - alpha * log(prior)``. ``mask`` (bool ``(B,)``)
    counts only some rows (the unlabeled ones). A device tensor (no host sync), so the training
    loop sums batches into an epoch figure."""
    plain = logits.argmax(1) == clean
    debiased = debias_logits(logits, prior, alpha).argmax(1) == clean
    if mask is not None:
        plain, debiased = plain & mask, debiased & mask
    return torch.stack([plain.sum(), debiased.sum()])
