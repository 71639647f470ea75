"""Figures of the tutorial (matplotlib + seaborn). Each returns the matplotlib Axes/Figure it
drew so notebooks and tests can inspect it; nothing here computes results, it only draws them.

Legends sit outside the axes (`legend_outside`: right of them; one figure legend for
`plot_training_curves`), so they cannot cover bars or lines whatever the data. The bar charts
the sliders redraw (`plot_class_counts`, `plot_scores`) have an ``update_*`` twin that changes
only bar heights and texts of an existing Axes (see widgets.py)."""
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


def legend_outside(ax, handles=None, **kw):
    """The legend of ``ax`` to the right of the axes, where it cannot cover data however tall
    the bars or lines get (``fig.tight_layout()`` and Jupyter's tight bounding box make room
    for it). Returns the Legend."""
    if handles is not None:
        kw["handles"] = handles
    kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0,
          "fontsize": 8, **kw}
    return ax.legend(**kw)


def _fit(ax, own: bool):
    """Shrink the axes of a figure the function made itself so its outside legend fits in it
    (a figure passed in through ``ax`` is the caller's to lay out)."""
    if own:
        ax.figure.tight_layout()


SELECTOR_NAMES = {"css": "CSS", "mhcs": "MHCS", "union": "CSS + MHCS"}


def _count_ylim(ax, counts: dict, reference, ylim):
    if ylim is None:
        tops = [np.max(v, initial=0) for v in counts.values()]
        if reference is not None:
            tops.append(np.max(reference, initial=0))
        ylim = 1.08 * max(max(tops), 1)
    ax.set_ylim(0, ylim)


def set_class_ticks(ax, x, names: list[str]) -> None:
    """Class names under the bars, slanted when they are words ("airplane", "automobile") so
    that neighbours cannot overlap; digits and short names stay upright."""
    slant = max(len(n) for n in names) > 3 and len(names) > 4
    ax.set_xticks(x, names, rotation=30 if slant else 0, ha="right" if slant else "center",
                  rotation_mode="anchor" if slant else "default")


def plot_class_counts(counts: dict, class_names, ax=None, title: str | None = None,
                      reference=None, *, xlabel: str = "class", ylim: float | None = None,
                      reference_label: str = "truly clean"):
    """Grouped bars of per-class counts, one group per class and one bar per entry of
    ``counts`` (label -> (C,) array). ``reference`` (C,) draws a dashed line per class (e.g. the
    number of truly clean samples), labelled ``reference_label``. ``ylim`` fixes the top of the
    y-axis (default: a little above the tallest bar). The legend sits right of the axes.
    `update_class_counts` redraws the same axes for new counts. Returns the Axes."""
    names = list(class_names)
    C, k = len(names), len(counts)
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(min(max(6, 0.7 * C), 14) + 2, 3.6))
    x, width = np.arange(C), 0.8 / k
    for j, (label, v) in enumerate(counts.items()):
        ax.bar(x + (j - (k - 1) / 2) * width, np.asarray(v), width, label=label)
    handles = list(ax.containers)
    if reference is not None:
        handles.append(ax.hlines(np.asarray(reference), x - 0.4, x + 0.4, colors="black",
                                 linestyles="dashed", linewidth=1, label=reference_label,
                                 gid="reference"))
    if C <= 30:
        set_class_ticks(ax, x, names)
    else:  # CIFAR-100: every tenth class
        ax.set_xticks(x[::10], names[::10], rotation=45, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, C - 0.4)
    _count_ylim(ax, counts, reference, ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title or "selected samples per class")
    legend_outside(ax, handles=handles)
    _fit(ax, own)
    return ax


def update_class_counts(ax, counts: dict, reference=None, title: str | None = None,
                        ylim: float | None = None):
    """Redraw an Axes of `plot_class_counts` for new counts (same labels, same classes): only
    the bar heights, the dashes, the title and the y-range change, which is what makes a slider
    step fast. Returns the Axes."""
    for bars, v in zip(ax.containers, counts.values()):
        for bar, h in zip(bars, np.asarray(v)):
            bar.set_height(h)
    if reference is not None:
        dashes = next(c for c in ax.collections if c.get_gid() == "reference")
        dashes.set_segments([[(i - 0.4, r), (i + 0.4, r)] for i, r in enumerate(reference)])
    if title is not None:
        ax.set_title(title)
    _count_ylim(ax, counts, reference, ylim)
    return ax


_METRICS = {"precision": "precision", "recall": "recall", "f1": "F1"}


def plot_scores(scores: dict, ax=None, title: str | None = None):
    """Bars of precision / recall / F1 per selector (``{name: {"precision", "recall", "f1"}}``;
    css / mhcs / union are shown as CSS / MHCS / CSS + MHCS). The legend sits right of the
    axes; `update_scores` redraws it for new scores. Returns the Axes."""
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    names = list(scores)
    x, width = np.arange(len(names)), 0.8 / len(_METRICS)
    for j, (m, label) in enumerate(_METRICS.items()):
        ax.bar(x + (j - 1) * width, [scores[k][m] for k in names], width, label=label)
    ax.set_xticks(x, [SELECTOR_NAMES.get(k, k) for k in names])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("selection")
    ax.set_ylabel("score (vs the true labels)")
    ax.set_title(title or "selection quality vs the injected noise")
    legend_outside(ax)
    _fit(ax, own)
    return ax


def update_scores(ax, scores: dict, title: str | None = None):
    """Redraw an Axes of `plot_scores` for new scores of the same selectors. Returns the Axes."""
    for bars, m in zip(ax.containers, _METRICS):
        for bar, k in zip(bars, scores):
            bar.set_height(scores[k][m])
    if title is not None:
        ax.set_title(title)
    return ax


COINCIDE_F1 = 0.02  # two F1 lines closer than this everywhere are drawn on top of each other


def coincide(a, b, atol: float = COINCIDE_F1) -> bool:
    """Whether two series would be drawn as one line: defined at the same points and nowhere
    further apart than ``atol``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return False
    both = np.isfinite(a)
    return bool(both.any()) and float(np.abs(a[both] - b[both]).max()) <= atol


def plot_selection_f1(run, ax=None, baseline_run=None, title: str | None = None,
                      rule_runs: dict | None = None):
    """The paper's Fig. 3 at this run's scale: selection F1 per epoch of ProMix (CSS + MHCS of
    network 1) against DivideMix's GMM and small-loss selection, each tuned two ways: ONCE for
    the whole run (one threshold / forget rate with the best mean F1, as the paper tuned them;
    `metrics.once_tuned`; solid) and, thinner, for the best F1 of every epoch (an oracle no
    method has; dashed / dotted), and cleanlab's confident learning where the run recorded it
    (`metrics.confident_learning`, nothing to tune). The baselines are applied to
    ``baseline_run``'s network when given (e.g. a CE run), else to this run's own network.
    ``rule_runs`` (``{"gmm" | "small_loss": RunHistory}``): runs that each trained with that
    rule as their selection (`TrainConfig.selection`), drawn thick with their own labeled set's
    F1, as the paper's Fig. 3 compares methods.

    The two baselines often give the same F1 (the GMM's clean probability orders the samples as
    their losses do), so their lines lie on top of each other. Every line is still drawn, GMM's
    with crosses and small-loss's with open circles at alternating epochs so both stay visible,
    and when two lines coincide (`coincide`) the small-loss entry of the legend says so. The
    legend sits right of the axes. Returns the Axes."""
    from .metrics import once_tuned
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(10, 4))
    ep = _epochs(run)
    ax.plot(ep, run.series("selection.union.f1"), marker=".", color="C0", lw=2,
            label="ProMix (CSS + MHCS)")
    base = baseline_run or run
    src = "" if baseline_run is None else ", CE network"
    bep = _epochs(base)
    every = max(1, len(bep) // 15)
    marks = {"gmm": dict(color="C1", marker="x", markevery=(0, every)),
             "small_loss": dict(color="C2", marker="o", mfc="none", markevery=(every // 2, every))}
    name = {"gmm": "DivideMix GMM", "small_loss": "small-loss"}
    what = {"gmm": "threshold", "small_loss": "forget rate"}
    once = {k: once_tuned(base.records, k) for k in marks}
    tunings = [  # ({baseline: (label, F1 per epoch)}, line style per baseline, width, marker size)
        ({k: (f"{name[k]}, {what[k]} {v:.2f} tuned once{src}", f1)
          for k, (v, f1) in once.items() if v is not None},
         {"gmm": "-", "small_loss": "-"}, 1.5, 5),
        ({k: (f"{name[k]}, tuned every epoch{src}", base.series(f"baselines.{k}.f1"))
          for k in marks},
         {"gmm": "--", "small_loss": ":"}, 1, 4)]
    for lines, ls, lw, ms in tunings:
        same = len(lines) == 2 and coincide(lines["gmm"][1], lines["small_loss"][1])
        for k, (label, f1) in lines.items():
            if same and k == "small_loss":
                label += " (coincides with the GMM line)"
            ax.plot(bep, f1, ls=ls[k], lw=lw, ms=ms, label=label, **marks[k])
    for k, rr in (rule_runs or {}).items():
        setting = (f"threshold {rr.config['gmm_threshold']:g}" if k == "gmm" else
                   f"forget rate {rr.config['forget_rate']:g}")
        ax.plot(_epochs(rr), rr.series("selection.union.f1"), color=marks[k]["color"], lw=3,
                alpha=0.6, label=f"{name[k]} rule, its own run ({setting})")
    cl = base.series("baselines.cleanlab.f1")
    if np.isfinite(cl).any():  # confident learning: nothing to tune
        ax.plot(bep, cl, color="C3", marker="d", ms=4, lw=1, label=f"cleanlab (confident "
                f"learning){src}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("selection F1")
    ax.set_ylim(0, 1.02)
    ax.set_yticks(np.linspace(0, 1, 6))
    legend_outside(ax)
    ax.set_title(title or f"clean-sample selection, {run.config['noise']}")
    _fit(ax, own)
    return ax


def plot_first_selection_vs_noise(points: dict, ax=None, title: str | None = None):
    """The warm-up obstacle: the precision of the first selection (CSS's clean set for the first
    ProMix epoch, Eq. 1-2) against the noise rate, one line per start (``points``: a label, e.g.
    ``"scratch"`` or ``"e040"``, -> records with ``actual_noise_rate`` and ``first_selection``),
    beside the share of right labels (a selection that picks at random). Returns the Axes."""
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(6, 4))
    rates = set()
    for i, (label, recs) in enumerate(points.items()):
        recs = sorted(recs, key=lambda r: r["actual_noise_rate"])
        x = [100 * r["actual_noise_rate"] for r in recs]
        rates |= set(x)
        ax.plot(x, [r["first_selection"]["precision"] for r in recs], marker="o",
                color=f"C{i}", label=f"{label}: first selection precision")
    x = sorted(rates)
    ax.plot(x, [1 - v / 100 for v in x], ls="--", color="grey",
            label="share of right labels (a random pick)")
    ax.set_xlabel("wrong labels (%)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "the warm-up obstacle: the first selection against the noise", fontsize=9)
    _fit(ax, own)
    return ax


def plot_pseudo_label_accuracy(runs: dict, ax=None, title: str | None = None):
    """Fig. 4: accuracy of the pseudo-labels on the unlabeled set per epoch. ``runs`` maps a label
    to a `RunHistory`; for each run both the debiased (solid) and the plain (dashed) pseudo-label
    accuracy are drawn, in the run's colour (the debiased one is what a debiased run trains on).
    The legend names each run once and the two line styles once, right of the axes. Returns the
    Axes."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(8.5, 3.8))
    handles = []
    for label, run in runs.items():
        ep = _epochs(run)
        line, = ax.plot(ep, run.series("pseudo_acc_debiased"), label=f"{label}, debiased")
        ax.plot(ep, run.series("pseudo_acc"), linestyle="--", color=line.get_color(),
                label=f"{label}, plain")
        handles.append(Patch(color=line.get_color(), label=label))
    handles += [Line2D([], [], color="dimgray", label="debiased pseudo-labels"),
                Line2D([], [], color="dimgray", ls="--", label="plain pseudo-labels")]
    ax.set_xlabel("epoch")
    ax.set_ylabel("pseudo-label accuracy\n(unlabeled set)")
    legend_outside(ax, handles=handles)
    ax.set_title(title or "pseudo-label accuracy")
    _fit(ax, own)
    return ax


def plot_training_curves(runs: dict, title: str | None = None):
    """Three titled panels per set of runs (label -> `RunHistory`): test accuracy, selection F1
    and labeled-set size per epoch, with one legend for all right of the panels. Runs without
    selection (CE) appear in the first panel only. Returns the Figure."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    for label, run in runs.items():
        ep = _epochs(run)
        axes[0].plot(ep, run.series("test_acc") * 100, label=label)
        if "selection" in (run.records[-1] if run.records else {}):
            axes[1].plot(ep, run.series("selection.union.f1"), label=label)
            axes[2].plot(ep, run.series("selection.labeled.count"), label=label)
    for ax, name, yl in zip(axes, ("test accuracy", "clean-sample selection", "labeled set"),
                            ("test accuracy (%)", "selection F1 (CSS + MHCS)",
                             "labeled samples (network 1)")):
        ax.set_title(name, fontsize=13)
        ax.set_xlabel("epoch", fontsize=12)
        ax.set_ylabel(yl, fontsize=12)
        ax.tick_params(labelsize=11)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=14)
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
    ax.set_xticks(x, names, rotation=25, ha="right", rotation_mode="anchor")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 118)  # room above the bars for the legend
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.set_title(title or "ablations (Table 5)")
    return ax
