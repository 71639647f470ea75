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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
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
