"""Interactive panels (ipywidgets) that recompute from a run's cached per-sample arrays; they
never retrain.

- `selection_at` / `SelectionExplorer`: sliders for R (CSS budget) and tau (MHCS threshold) ->
  per-class selected counts and precision / recall / F1 of CSS, MHCS and their union.
- `pseudo_labels_at` / `PseudoLabelExplorer`: a slider for alpha -> debiased pseudo-labels of
  the unlabeled samples, their accuracy and per-class histogram.

The ``compute`` functions are plain and fast (well under a second on 50,000 samples, see
benchmarks/widgets_speed.py); the explorers only wire sliders to them and draw. Each notebook
widget cell is followed by a direct call of the same function so headless runs check it.

``samples`` is the dict of `RunHistory.samples()`: ``losses`` (K, N), ``probs`` (K, N, C)
float16 (eval mode, un-augmented images), ``noisy``, ``clean`` (N,), ``labeled`` (K, N),
``prior_u`` (K, C).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .debias import debias_logits
from .metrics import selection_scores
from .selection import class_wise_small_loss, matched_high_confidence


def selection_at(samples: dict, R: float, tau: float, net: int = 0) -> dict:
    """CSS with budget ``R`` and MHCS with threshold ``tau`` recomputed from cached arrays.

    MHCS uses the cached eval-mode probabilities of un-augmented images (training applies it to
    the weak view per batch, so counts differ slightly). Returns ``{"scores": {css, mhcs,
    union: {precision, recall, f1, count}}, "per_class": {css, mhcs, union: (C,)}, "clean_per_class":
    (C,)}``, per class by GIVEN label.
    """
    noisy = torch.from_numpy(samples["noisy"])
    clean = torch.from_numpy(samples["clean"])
    C = samples["probs"].shape[-1]
    losses = torch.from_numpy(samples["losses"][net])
    probs = torch.from_numpy(samples["probs"][net].astype(np.float32))
    is_clean = noisy == clean
    masks = {"css": class_wise_small_loss(losses, noisy, C, R),
             "mhcs": matched_high_confidence(probs, noisy, tau)}
    masks["union"] = masks["css"] | masks["mhcs"]
    return {"scores": {k: selection_scores(m, is_clean) for k, m in masks.items()},
            "per_class": {k: torch.bincount(noisy[m], minlength=C).numpy()
                          for k, m in masks.items()},
            "clean_per_class": torch.bincount(noisy[is_clean], minlength=C).numpy()}


def pseudo_labels_at(samples: dict, alpha: float, net: int = 0) -> dict:
    """Debiased pseudo-labels (Eq. 6) with strength ``alpha`` for the samples the run left
    unlabeled, from cached probabilities and the unlabeled prior.

    Uses ``log p`` as the logits (softmax is shift-invariant, so Eq. 6 is unchanged). Returns
    ``{"accuracy", "accuracy_plain", "count", "per_class": (C,), "per_class_plain": (C,),
    "true_per_class": (C,)}``.
    """
    probs = torch.from_numpy(samples["probs"][net].astype(np.float32))
    unl = ~torch.from_numpy(samples["labeled"][net])
    if not unl.any():  # e.g. a warm-up epoch's arrays: treat every sample as unlabeled
        unl = torch.ones_like(unl)
    clean = torch.from_numpy(samples["clean"])[unl]
    C = probs.shape[1]
    logp = probs[unl].clamp_min(1e-6).log()
    prior = torch.from_numpy(samples["prior_u"][net].astype(np.float32))
    plain = logp.argmax(1)
    debiased = debias_logits(logp, prior, alpha).argmax(1)
    return {"accuracy": float((debiased == clean).float().mean()),
            "accuracy_plain": float((plain == clean).float().mean()),
            "count": int(unl.sum()),
            "per_class": torch.bincount(debiased, minlength=C).numpy(),
            "per_class_plain": torch.bincount(plain, minlength=C).numpy(),
            "true_per_class": torch.bincount(clean, minlength=C).numpy()}


def show_selection(samples: dict, R: float, tau: float, class_names=None, net: int = 0):
    """Draw `selection_at`: per-class counts and the P/R/F1 bars. Returns (result, Figure)."""
    from .plots import plot_class_counts, plot_scores

    res = selection_at(samples, R, tau, net)
    C = len(res["clean_per_class"])
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    plot_class_counts({k.upper(): v for k, v in res["per_class"].items()}, names, ax=axes[0],
                      reference=res["clean_per_class"],
                      title=f"selected per given class (dashes: truly clean), R={R:.2f}, tau={tau:.3f}")
    plot_scores(res["scores"], ax=axes[1])
    fig.tight_layout()
    return res, fig


def show_pseudo_labels(samples: dict, alpha: float, class_names=None, net: int = 0):
    """Draw `pseudo_labels_at`: per-class pseudo-label histogram (plain, debiased, truth)."""
    from .plots import plot_class_counts

    res = pseudo_labels_at(samples, alpha, net)
    C = len(res["true_per_class"])
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    ax = plot_class_counts({"plain pseudo-labels": res["per_class_plain"],
                            f"debiased (alpha={alpha:.2f})": res["per_class"],
                            "true classes": res["true_per_class"]}, names,
                           title=f"unlabeled set: accuracy {res['accuracy_plain']:.1%} plain, "
                                 f"{res['accuracy']:.1%} debiased")
    return res, ax.figure


class _Explorer:
    """Sliders -> a compute-and-draw function, output in an ipywidgets.Output; ``result`` holds
    the last computed result (what tests inspect after setting slider values)."""

    def __init__(self, sliders: dict, draw):
        import ipywidgets as w

        self.sliders, self._draw, self.result = sliders, draw, None
        self.output = w.Output()
        for s in sliders.values():
            s.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox(list(sliders.values())), self.output])
        self.update()

    def update(self):
        with self.output:
            self.output.clear_output(wait=True)
            self.result, fig = self._draw(**{k: s.value for k, s in self.sliders.items()})
            from IPython import get_ipython
            if get_ipython() is not None:  # inside a notebook: show the figure in the output
                from IPython.display import display
                display(fig)
            plt.close(fig)
        return self.result

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class SelectionExplorer(_Explorer):
    """R and tau sliders over `show_selection` (cached arrays of one run epoch)."""

    def __init__(self, samples: dict, class_names=None, R: float = 0.5, tau: float = 0.99,
                 net: int = 0):
        import ipywidgets as w

        sliders = {"R": w.FloatSlider(value=R, min=0.05, max=1.0, step=0.05, description="R"),
                   "tau": w.FloatSlider(value=tau, min=0.5, max=0.999, step=0.005,
                                        readout_format=".3f", description="tau")}
        super().__init__(sliders, lambda R, tau: show_selection(samples, R, tau, class_names, net))


class PseudoLabelExplorer(_Explorer):
    """An alpha slider over `show_pseudo_labels` (cached arrays of one run epoch)."""

    def __init__(self, samples: dict, class_names=None, alpha: float = 0.8, net: int = 0):
        import ipywidgets as w

        sliders = {"alpha": w.FloatSlider(value=alpha, min=0.0, max=2.0, step=0.05,
                                          description="alpha")}
        super().__init__(sliders, lambda alpha: show_pseudo_labels(samples, alpha, class_names,
                                                                   net))
