"""Epoch-level measurements of a run: selection quality against the injected-noise ground truth,
the tuned baselines of the paper's Fig. 3, and pseudo-label accuracy (Fig. 4).

Everything takes tensors on any device and returns plain Python numbers (JSON-ready).
"""
from __future__ import annotations

import numpy as np
import torch

from .debias import debias_logits
from .selection import class_wise_small_loss, gmm_clean_probability, precision_recall_f1


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


# The grids on which every epoch records the baselines' F1, so that one forget rate / one
# threshold can be tuned for a whole run afterwards (`once_tuned`), as the paper tuned them.
FORGET_RATES = tuple(round(0.01 * i, 2) for i in range(100))          # 0.00 ... 0.99
GMM_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 100))     # 0.01 ... 0.99


def _f1_from_counts(tp: torch.Tensor, selected: torch.Tensor, n_clean) -> list[float]:
    f1 = 2 * tp / (selected + n_clean).clamp_min(1)
    return [round(v, 4) for v in f1.tolist()]


def tuned_small_loss(losses: torch.Tensor, is_clean: torch.Tensor) -> dict:
    """Small-loss selection (Co-teaching/JoCoR) with its forget rate tuned for the best F1 of
    this epoch (an oracle), and its F1 at every forget rate of `FORGET_RATES` (``f1_grid``, for
    `once_tuned`). Returns ``{"f1", "forget_rate", "f1_grid"}``."""
    order = torch.argsort(losses, stable=True)
    f1, k = _best_f1_of_ranking(order, is_clean)
    n = len(losses)
    tp = torch.cat([torch.zeros(1, device=losses.device),
                    torch.cumsum(is_clean[order].float(), 0)])
    keep = torch.tensor([int(round((1 - r) * n, 9)) for r in FORGET_RATES], device=losses.device)
    return {"f1": round(f1, 5), "forget_rate": round(1 - k / n, 5),
            "f1_grid": _f1_from_counts(tp[keep], keep.float(), is_clean.sum())}


def css_budget_f1(losses: torch.Tensor, labels: torch.Tensor, is_clean: torch.Tensor,
                  num_classes: int, ratios) -> list[dict]:
    """CSS (Eq. 1-2) on the same per-sample losses at other budgets R: for each ratio in
    ``ratios``, ``{"rho", "count", "precision", "recall", "f1"}`` of `class_wise_small_loss`.

    It separates the two things that set ProMix's selection F1 in Fig. 3: the ranking (the
    losses) and the budget (R). The baselines of `tuned_small_loss` / `tuned_gmm` rank the same
    losses, so if CSS at its best R only ties them, no choice of R makes ProMix's selection
    better on these losses (benchmarks/selection_f1.py prints it)."""
    return [{"rho": float(r), **selection_scores(
        class_wise_small_loss(losses, labels, num_classes, float(r)), is_clean)}
        for r in ratios]


def tuned_gmm(losses: torch.Tensor, is_clean: torch.Tensor, seed: int = 0) -> dict:
    """DivideMix's GMM selection with its clean-probability threshold tuned for the best F1 of
    this epoch (an oracle), and its F1 at every threshold of `GMM_THRESHOLDS` (``f1_grid``,
    selection ``prob > t`` as DivideMix). Returns ``{"f1", "threshold", "f1_at_0.5",
    "f1_grid"}``."""
    prob = gmm_clean_probability(losses, seed=seed)
    order = torch.argsort(prob, descending=True, stable=True)
    f1, k = _best_f1_of_ranking(order, is_clean)
    f1_half = precision_recall_f1(prob > 0.5, is_clean)[2]  # DivideMix: prob > threshold
    t = torch.tensor(GMM_THRESHOLDS, device=prob.device, dtype=prob.dtype).view(-1, 1)
    sel = prob.view(1, -1) > t
    tp = (sel & is_clean.view(1, -1)).sum(1).float()
    return {"f1": round(f1, 5), "threshold": round(float(prob[order[k - 1]]), 5),
            "f1_at_0.5": round(f1_half, 5),
            "f1_grid": _f1_from_counts(tp, sel.sum(1).float(), is_clean.sum())}


def once_tuned(records: list[dict], baseline: str) -> tuple[float | None, np.ndarray]:
    """One forget rate (``baseline="small_loss"``) or GMM threshold (``"gmm"``) for the whole
    run: the grid value with the best mean F1 over the epochs where ProMix selects (all epochs
    of a run without selection), as the paper tuned the baselines once per setting. Returns
    (that value, its F1 per record, NaN where an epoch has no grid); (None, all NaN) for runs
    recorded before the grids existed."""
    grid = FORGET_RATES if baseline == "small_loss" else GMM_THRESHOLDS
    rows = [r.get("baselines", {}).get(baseline, {}).get("f1_grid") for r in records]
    chosen = [i for i, r in enumerate(records) if "selection" in r and rows[i]] or \
             [i for i, row in enumerate(rows) if row]
    if not chosen:
        return None, np.full(len(records), np.nan)
    best = int(np.argmax(np.mean([rows[i] for i in chosen], axis=0)))
    return grid[best], np.array([row[best] if row else np.nan for row in rows])


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


def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                 query_labels: torch.Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.1) -> float:
    """Accuracy of a weighted kNN classifier on L2-normalised features (the feature quality of a
    self-supervised start): a query's k most cosine-similar bank features vote for their labels
    with weight exp(similarity / temperature), as in InstDisc's kNN monitor (Wu et al. 2018)."""
    hits = 0
    for i in range(0, len(queries), 1000):
        sim, idx = (queries[i:i + 1000] @ bank.T).topk(min(k, len(bank)), dim=1)
        votes = torch.zeros(len(sim), num_classes, device=sim.device)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        hits += int((votes.argmax(1) == query_labels[i:i + 1000]).sum())
    return hits / len(queries)


def confident_learning(probs: torch.Tensor, labels: torch.Tensor,
                       is_clean: torch.Tensor) -> dict:
    """Confident learning's selection (Northcutt et al. 2021, the ``cleanlab`` library): the
    samples ``cleanlab.filter.find_label_issues`` does not flag, from the per-sample predicted
    probabilities ``(N, C)`` and the given labels, scored like `selection_scores`. A Fig. 3
    baseline users know for finding wrong labels; it needs no threshold to tune."""
    from cleanlab.filter import find_label_issues
    p = probs.detach().float().cpu().numpy()
    p = p / p.sum(1, keepdims=True)
    # n_jobs=1: its default forks a process pool, which deadlocks under PyTorch's threads
    issues = find_label_issues(labels.cpu().numpy(), p, n_jobs=1)
    return selection_scores(torch.from_numpy(~issues).to(is_clean.device), is_clean)
