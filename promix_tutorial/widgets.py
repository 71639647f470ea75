"""Interactive panels (ipywidgets) that recompute from a run's cached per-sample arrays; they
never retrain.

- `selection_at` / `SelectionExplorer`: sliders for R (CSS budget) and tau (MHCS threshold) ->
  per-class selected counts and precision / recall / F1 of CSS, MHCS and their union.
- `pseudo_labels_at` / `PseudoLabelExplorer`: a slider for alpha -> debiased pseudo-labels of
  the unlabeled samples, their accuracy and per-class histogram.

The ``*_at`` functions compute (milliseconds on 50,000 samples); the ``show_*`` functions draw
their result, or redraw a figure they drew before; the explorers wire sliders to them. Each
notebook widget cell is followed by a direct call of the same function so headless runs check
it.

What a widget cell shows. Displaying an explorer (``display(explorer)``) emits three outputs:
a one-line hint, the sliders (a widget) and the figure, an ordinary PNG output that each slider
step replaces in place (``update_display`` with the explorer's display id), so the cell holds
one figure, the one of the sliders' current values (its title says which). A widget lives only
while its kernel does: after a kernel restart the sliders stop answering, and a notebook
reopened with a new kernel shows JupyterLab's "model not found" line in their place. The hint
says to run the cell again, and the figure, an ordinary output, stays in the saved .ipynb.

Speed. A slider step recomputes the result, then changes only the bar heights and texts of the
explorer's one figure (``update_*`` in plots.py; no new figure, no layout pass) and renders it
once to a PNG at `DPI` (`figure_png`, with the bounding box measured only when the y-range
changes). benchmarks/widgets_speed.py times the whole step on 50,000 samples. Fast key presses
need no skipping logic here: ipywidgets' front end keeps at most one change per slider in flight
and, while the kernel is busy drawing, merges further presses into one message carrying the
newest value; every step reads the sliders' current values, so the last frame always shows
the last value.

``samples`` is the dict of `RunHistory.samples()`: ``losses`` (K, N), ``probs`` (K, N, C)
float16 (eval mode, un-augmented images), ``noisy``, ``clean`` (N,), ``labeled`` (K, N),
``prior_u`` (K, C).
"""
from __future__ import annotations

import base64
import functools
import io
import uuid

import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
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


DPI = 80  # the slider figures: about 1,000 px wide, a notebook cell's width; fewer pixels to draw


def figure_png(fig, bbox=None) -> bytes:
    """PNG bytes of ``fig`` drawn as Jupyter's inline backend draws it (the figure's dpi, its
    tight bounding box plus the usual pad), so a slider frame has the pixels of the figure a
    cell would show for the same values (not the same bytes: a faster compression). ``bbox``
    (from `tight_bbox`) saves measuring that box again: one draw instead of two."""
    buf = io.BytesIO()
    fig.canvas.print_figure(buf, format="png", dpi=fig.dpi, facecolor=fig.get_facecolor(),
                            edgecolor=fig.get_edgecolor(), bbox_inches=bbox or "tight",
                            pil_kwargs={"compress_level": 1})  # same pixels, encoded 4x faster
    return buf.getvalue()


def tight_bbox(fig):
    """The box (inches) `figure_png` crops ``fig`` to; it changes only when the layout does."""
    fig.draw_without_rendering()
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(
        plt.rcParams["savefig.pad_inches"])


def _figure(fig, figsize):
    """``fig`` when given (to be updated), else a new pyplot figure of the slider figures' dpi."""
    return fig if fig is not None else plt.figure(figsize=figsize, dpi=DPI)


def show_selection(samples: dict, R: float, tau: float, class_names=None, net: int = 0,
                   fig=None):
    """Draw `selection_at`: per-class selected counts (dashes: truly clean; the y-axis goes up
    to the largest class, so the bars grow with R) and the precision / recall / F1 bars.
    Returns (result, Figure). ``fig``: a Figure this function returned before, redrawn in place
    for the new values (what `SelectionExplorer` does on every slider step); default a new
    pyplot figure."""
    from .plots import (SELECTOR_NAMES, plot_class_counts, plot_scores, update_class_counts,
                        update_scores)

    res = selection_at(samples, R, tau, net)
    C = len(res["clean_per_class"])
    counts = {SELECTOR_NAMES[k]: v for k, v in res["per_class"].items()}
    title = f"selected per given class, R={R:.2f}, tau={tau:.3f}"
    top = 1.05 * np.bincount(samples["noisy"], minlength=C).max()  # the same for every R
    if fig is not None and fig.axes:
        update_class_counts(fig.axes[0], counts, reference=res["clean_per_class"], title=title,
                            ylim=top)
        update_scores(fig.axes[1], res["scores"])
        return res, fig
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    fig = _figure(fig, (13, 3.6))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    plot_class_counts(counts, names, ax=axes[0], reference=res["clean_per_class"], title=title,
                      xlabel="given label", ylim=top)
    plot_scores(res["scores"], ax=axes[1])
    fig.tight_layout()
    return res, fig


def show_pseudo_labels(samples: dict, alpha: float, class_names=None, net: int = 0, fig=None):
    """Draw `pseudo_labels_at`: per-class pseudo-label histogram (plain, debiased, truth).
    Returns (result, Figure); ``fig`` as in `show_selection`."""
    from .plots import plot_class_counts, update_class_counts

    res = pseudo_labels_at(samples, alpha, net)
    counts = {"plain pseudo-labels": res["per_class_plain"],
              "debiased pseudo-labels": res["per_class"],
              "true classes": res["true_per_class"]}
    title = (f"unlabeled set, alpha={alpha:.2f}: pseudo-labels {res['accuracy_plain']:.1%} "
             f"right plain, {res['accuracy']:.1%} debiased")
    if fig is not None and fig.axes:
        update_class_counts(fig.axes[0], counts, title=title)
        return res, fig
    C = len(res["true_per_class"])
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    fig = _figure(fig, (min(max(6, 0.7 * C), 14) + 2.5, 3.6))
    plot_class_counts(counts, names, ax=fig.subplots(), title=title, xlabel="class")
    fig.tight_layout()
    return res, fig


class _Explorer:
    """Sliders over a ``show_*`` function of this module: each slider step recomputes, redraws
    the explorer's one figure in place and shows it as the cell's figure output.

    Attributes: ``sliders`` (name -> slider), ``result`` (of the last step: what tests
    inspect), ``figure``, ``frame`` (the PNG bytes shown now), ``widget`` (the sliders) and
    ``display_id`` (of the figure output, module docstring)."""

    def __init__(self, sliders: dict, show):
        self.sliders, self._show = sliders, show
        self.result, self.figure = show(**self.values())
        plt.close(self.figure)  # ours, not pyplot's: a notebook must not show it after the cell
        FigureCanvasAgg(self.figure)  # what the PNGs are drawn with
        self.figure.set_layout_engine(None)  # laid out once: no layout pass per frame
        self._bbox = self._bbox_key = None
        self.display_id = f"promix-explorer-{uuid.uuid4().hex}"
        self._displayed = False
        self.widget = _explorer_box_class()(list(sliders.values()))
        self.widget.explorer = self
        self._render()
        for s in sliders.values():
            s.observe(self._on_change, names="value")

    def values(self) -> dict:
        return {k: s.value for k, s in self.sliders.items()}

    def setting(self, values: dict | None = None) -> str:
        """``"R=0.50, tau=0.990"``: slider values as their readouts show them."""
        values = self.values() if values is None else values
        return ", ".join(f"{k}={format(v, self.sliders[k].readout_format)}"
                         for k, v in values.items())

    def hint(self) -> str:
        """The line above the sliders."""
        names = " and ".join(self.sliders)
        return (f"Move {names}: the figure below follows. After a kernel restart, or in a "
                f"reopened notebook, run this cell again to get the slider"
                f"{'s' if len(self.sliders) > 1 else ''} back.")

    def update(self):
        """Recompute for the sliders' current values, redraw the figure in place and show the
        new frame; returns the result. Every slider change calls it (module docstring: why the
        last frame always shows the last value)."""
        self.result, _ = self._show(fig=self.figure, **self.values())
        self._render()
        return self.result

    def _on_change(self, _change):
        self.update()

    def _render(self):
        key = [ax.get_ylim() for ax in self.figure.axes]
        if key != self._bbox_key:  # the y-range moved: the tick labels, so the box may too
            self._bbox, self._bbox_key = tight_bbox(self.figure), key
        self.frame = figure_png(self.figure, self._bbox)
        if self._displayed:  # one message replaces the shown image in place
            from IPython.display import update_display
            update_display(self._bundle(), display_id=self.display_id, raw=True)

    def _bundle(self) -> dict:
        return {"image/png": base64.b64encode(self.frame).decode("ascii"),
                "text/plain": f"<figure: {self.setting()}>"}

    def _ipython_display_(self):
        from IPython.display import display

        hint = self.hint()
        display({"text/markdown": f"*{hint}*", "text/plain": hint}, raw=True)
        sliders = self.widget._repr_mimebundle_()
        sliders["text/plain"] = f"<sliders: {self.setting()}>"  # where widgets cannot show
        display(sliders, raw=True)
        display(self._bundle(), display_id=self.display_id, raw=True)
        self._displayed = True


@functools.cache
def _explorer_box_class():
    """The class of an explorer's ``widget`` (made on first use: ipywidgets is imported only
    when a widget is built)."""
    import ipywidgets as w

    class ExplorerBox(w.HBox):
        """The sliders; displaying it displays its explorer (hint, sliders, figure)."""
        explorer = None

        def _ipython_display_(self):
            from IPython.display import display
            if self.explorer is not None:
                self.explorer._ipython_display_()
            else:
                display(self._repr_mimebundle_(), raw=True)

    return ExplorerBox


class SelectionExplorer(_Explorer):
    """R and tau sliders over `show_selection` (cached arrays of one run epoch)."""

    def __init__(self, samples: dict, class_names=None, R: float = 0.5, tau: float = 0.99,
                 net: int = 0):
        import ipywidgets as w

        sliders = {"R": w.FloatSlider(value=R, min=0.05, max=1.0, step=0.05, description="R"),
                   "tau": w.FloatSlider(value=tau, min=0.5, max=0.999, step=0.005,
                                        readout_format=".3f", description="tau")}
        super().__init__(sliders, lambda R, tau, fig=None: show_selection(
            samples, R, tau, class_names, net, fig=fig))


class PseudoLabelExplorer(_Explorer):
    """An alpha slider over `show_pseudo_labels` (cached arrays of one run epoch)."""

    def __init__(self, samples: dict, class_names=None, alpha: float = 0.8, net: int = 0):
        import ipywidgets as w

        sliders = {"alpha": w.FloatSlider(value=alpha, min=0.0, max=2.0, step=0.05,
                                          description="alpha")}
        super().__init__(sliders, lambda alpha, fig=None: show_pseudo_labels(
            samples, alpha, class_names, net, fig=fig))
