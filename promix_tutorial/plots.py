"""Figures of the tutorial (matplotlib + seaborn). Each returns the matplotlib Axes/Figure it
drew so notebooks and tests can inspect it; nothing here computes results, it only draws them."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def plot_transition_matrix(noisy, class_names=None, ax=None, annot: bool | None = None,
                           title: str | None = None):
    """Heatmap of the empirical noise transition matrix T[true, given] of a `NoisyLabels`.

    Annotates the cells with percentages when there are at most 12 classes (``annot``
    overrides). Returns the Axes.
    """
    T = noisy.transition_matrix
    C = T.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    if ax is None:
        size = min(4 + 0.45 * C, 12)
        _, ax = plt.subplots(figsize=(size, size * 0.85))
    annot = C <= 12 if annot is None else annot
    sns.heatmap(T * 100, ax=ax, cmap="viridis", vmin=0, vmax=100, square=True,
                annot=annot, fmt=".0f", cbar_kws={"label": "% of true class"},
                xticklabels=names if C <= 20 else False, yticklabels=names if C <= 20 else False)
    ax.set_xlabel("given (noisy) label")
    ax.set_ylabel("true label")
    ax.set_title(title or f"{noisy.spec}: actual noise {noisy.actual_rate:.1%}")
    return ax


def plot_noisy_examples(images: np.ndarray, noisy, class_names, n: int = 16, seed: int = 0,
                        only_noisy: bool = False, ncols: int = 8):
    """A grid of training images titled ``true -> given``; wrong labels in red.

    ``images`` uint8 (N, H, W, C) aligned with the `NoisyLabels`. Samples are drawn with a
    seeded generator (half noisy, half clean unless ``only_noisy``). Returns the Figure.
    """
    rng = np.random.default_rng(seed)
    bad, good = np.flatnonzero(noisy.is_noisy), np.flatnonzero(~noisy.is_noisy)
    n_bad = n if only_noisy else min(len(bad), n // 2)
    idx = np.concatenate([rng.choice(bad, min(n_bad, len(bad)), replace=False),
                          rng.choice(good, min(n - min(n_bad, len(bad)), len(good)),
                                     replace=False)])
    idx = rng.permutation(idx)
    nrows = int(np.ceil(len(idx) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 2.3 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx):
        img = images[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        t, g = class_names[noisy.clean[i]], class_names[noisy.noisy[i]]
        wrong = noisy.clean[i] != noisy.noisy[i]
        ax.set_title(f"{t}\n-> {g}" if wrong else f"{t}", fontsize=8,
                     color="crimson" if wrong else "black")
    fig.suptitle("true label (-> given label when noisy)", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- runs

def _epochs(run):
    return run.epochs + 1  # 1-based on the axis


def plot_class_counts(counts: dict, class_names, ax=None, title: str | None = None,
                      reference=None):
    """Grouped bars of per-class counts, one group per class and one bar per entry of
    ``counts`` (label -> (C,) array). ``reference`` (C,) draws a dashed line per class (e.g. the
    number of truly clean samples). Returns the Axes."""
    import pandas as pd

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.7 * len(class_names)), 3.5))
    df = pd.DataFrame({k: np.asarray(v) for k, v in counts.items()}, index=list(class_names))
    df.plot.bar(ax=ax, width=0.8, rot=45 if len(class_names) > 10 else 0)
    if reference is not None:
        for i, r in enumerate(np.asarray(reference)):
            ax.hlines(r, i - 0.4, i + 0.4, colors="black", linestyles="dashed", linewidth=1)
    ax.set_ylabel("samples")
    ax.set_title(title or "selected samples per class")
    return ax


def plot_scores(scores: dict, ax=None, title: str | None = None):
    """Bars of precision / recall / F1 per selector (``{name: {"precision", "recall", "f1"}}``)."""
    import pandas as pd

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    df = pd.DataFrame({k: {m: v[m] for m in ("precision", "recall", "f1")}
                       for k, v in scores.items()}).T
    df.plot.bar(ax=ax, rot=0, ylim=(0, 1.05))
    ax.set_title(title or "selection quality vs the injected noise")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_selection_f1(run, ax=None, baseline_run=None, title: str | None = None):
    """The paper's Fig. 3 at this run's scale: selection F1 per epoch of ProMix (CSS + MHCS of
    network 1) against DivideMix's GMM and small-loss selection, each tuned two ways: ONCE for
    the whole run (one threshold / forget rate with the best mean F1, as the paper tuned them;
    `metrics.once_tuned`) and, thinner, for the best F1 of every epoch (an oracle no method
    has). The baselines are applied to ``baseline_run``'s network losses when given (e.g. a CE
    run), else to this run's own network. The per-epoch oracles of the two baselines coincide
    whenever the GMM's clean probability orders the samples as their losses do; the legend then
    says so and one line is drawn. Returns the Axes."""
    from .metrics import once_tuned
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    ep = _epochs(run)
    ax.plot(ep, run.series("selection.union.f1"), marker=".", color="C0", lw=2,
            label="ProMix (CSS + MHCS)")
    base = baseline_run or run
    src = "" if baseline_run is None else ", CE network"
    bep = _epochs(base)
    for key, name, color in (("gmm", "DivideMix GMM", "C1"), ("small_loss", "small-loss", "C2")):
        value, series = once_tuned(base.records, key)
        if value is not None:
            what = "threshold" if key == "gmm" else "forget rate"
            ax.plot(bep, series, color=color, marker="x", ms=4,
                    label=f"{name}, {what} {value:.2f} tuned once{src}")
    gmm, small = base.series("baselines.gmm.f1"), base.series("baselines.small_loss.f1")
    same = np.allclose(gmm, small, atol=1e-4, equal_nan=True)
    ax.plot(bep, gmm, color="C1", ls="--", lw=1,
            label=("GMM = small-loss" if same else "DivideMix GMM") + f", tuned every epoch{src}"
            + (" (identical: same ranking)" if same else ""))
    if not same:
        ax.plot(bep, small, color="C2", ls=":", lw=1, label=f"small-loss, tuned every epoch{src}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("selection F1")
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax.set_title(title or f"clean-sample selection, {run.config['noise']}")
    return ax


def plot_pseudo_label_accuracy(runs: dict, ax=None, title: str | None = None):
    """Fig. 4: accuracy of the pseudo-labels on the unlabeled set per epoch. ``runs`` maps a label
    to a `RunHistory`; for each run both the plain and the debiased pseudo-label accuracy are
    drawn (the debiased one is what a debiased run trains on). Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, run in runs.items():
        ep = _epochs(run)
        line, = ax.plot(ep, run.series("pseudo_acc_debiased"), label=f"{label}: debiased")
        ax.plot(ep, run.series("pseudo_acc"), linestyle="--", color=line.get_color(),
                label=f"{label}: without debiasing")
    ax.set_xlabel("epoch")
    ax.set_ylabel("pseudo-label accuracy (unlabeled set)")
    ax.legend(fontsize=8)
    ax.set_title(title or "pseudo-label accuracy")
    return ax


def plot_training_curves(runs: dict, title: str | None = None):
    """Three panels per set of runs (label -> `RunHistory`): test accuracy, selection F1 and
    labeled-set size per epoch. Runs without selection (CE) appear in the first panel only.
    Returns the Figure."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for label, run in runs.items():
        ep = _epochs(run)
        axes[0].plot(ep, run.series("test_acc") * 100, label=label)
        if "selection" in (run.records[-1] if run.records else {}):
            axes[1].plot(ep, run.series("selection.union.f1"), label=label)
            axes[2].plot(ep, run.series("selection.labeled.count"), label=label)
    for ax, yl in zip(axes, ("test accuracy (%)", "selection F1 (CSS + MHCS)",
                             "labeled samples (network 1)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(yl)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_ablation_bars(rows: list[dict], ax=None, value: str = "accuracy",
                       reference: str | None = "paper", title: str | None = None,
                       reference_label: str = "paper (CIFAR-10 sym 80%, reference)"):
    """Table 5 as bars: one bar per ablation row (``rows`` = dicts with "ablation" and
    ``value``), and the paper's number beside it when a ``reference`` column is present (drawn
    hatched and labelled as the paper's). Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    names = [r["ablation"] for r in rows]
    x = np.arange(len(rows))
    ours = [r[value] * 100 if r[value] is not None else np.nan for r in rows]
    has_ref = reference is not None and any(r.get(reference) is not None for r in rows)
    w = 0.4 if has_ref else 0.7
    ax.bar(x - (w / 2 if has_ref else 0), ours, width=w, label="this run")
    if has_ref:
        ref = [r.get(reference) if r.get(reference) is not None else np.nan for r in rows]
        ax.bar(x + w / 2, ref, width=w, hatch="//", alpha=0.6,
               label=reference_label)
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 118)  # room above the bars for the legend
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.set_title(title or "ablations (Table 5)")
    return ax
