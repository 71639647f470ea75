"""Issue 14, items 3-5: legends never cover data (checked with the renderer's window extents
after a draw), the figures' labels and titles, and coincident Fig. 3 lines stay visible."""
import numpy as np
import pytest

from promix_tutorial import plots, widgets
from promix_tutorial.runs import RunHistory, save_json
from promix_tutorial.metrics import FORGET_RATES, GMM_THRESHOLDS
from test_widgets import synthetic_samples


def make_run(path, epochs=6, gmm=None, small=None, grids=False, union_f1=None):
    """A run folder: ProMix selection F1 close to 1 (lines up where a legend used to sit), the
    baselines' per-epoch F1 ``gmm`` / ``small``, and with ``grids`` their F1 at every threshold /
    forget rate (for the once-tuned lines), equal for both baselines."""
    gmm = [0.5 + 0.05 * e for e in range(epochs)] if gmm is None else gmm
    small = [0.55 + 0.05 * e for e in range(epochs)] if small is None else small
    union_f1 = [0.7 + 0.06 * e for e in range(epochs)] if union_f1 is None else union_f1
    recs = []
    for e in range(epochs):
        sel = {k: {"precision": 0.95, "recall": 0.9, "f1": union_f1[e], "count": 100 + e}
               for k in ("css", "mhcs", "union")}
        sel["labeled"] = {"count": 100 + 10 * e, "target_acc": 0.9}
        base = {"gmm": {"f1": gmm[e]}, "small_loss": {"f1": small[e]}}
        if grids:
            peak = lambda grid: [1 - abs(g - 0.5) for g in grid]  # noqa: E731
            base["gmm"]["f1_grid"] = peak(GMM_THRESHOLDS)
            base["small_loss"]["f1_grid"] = peak(FORGET_RATES[1:]) + [0.0]  # same values
        recs.append({"epoch": e, "phase": "promix", "test_acc": 0.5 + 0.08 * e, "selection": sel,
                     "baselines": base, "pseudo_acc": 0.6 + 0.06 * e,
                     "pseudo_acc_debiased": 0.62 + 0.07 * e, "seconds": 1.0,
                     "images_per_s": 100.0})
    path.mkdir(parents=True, exist_ok=True)
    save_json(path / "history.json", {"config": {"noise": "sym:0.8"}, "epochs": recs})
    return RunHistory(path)


def _data_extents(fig, renderer):
    """Display-space boxes of every bar and dashed reference line, and the points of every data
    line sampled densely (so a segment crossing a legend counts, not only its vertices)."""
    boxes, points = [], []
    for ax in fig.axes:
        boxes += [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
        for coll in ax.collections:
            for seg in coll.get_segments():
                points.append(coll.get_transform().transform(np.asarray(seg)))
        for line in ax.lines:
            xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
            xy = xy[np.isfinite(xy).all(1)]
            if len(xy) > 1:  # 20 points per segment
                t = np.linspace(0, 1, 20)[:, None, None]
                xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)
            points.append(line.get_transform().transform(xy))
    return boxes, np.concatenate(points) if points else np.empty((0, 2))


def assert_legends_clear(fig, inside_figure=True):
    """No legend of ``fig`` (axes or figure legends) overlaps a bar or a line point; with
    ``inside_figure`` each legend also lies within the figure (nothing cut off when saved)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, "no legend drawn"
    boxes, points = _data_extents(fig, renderer)
    assert len(boxes) + len(points) > 0
    for leg in legends:
        lb = leg.get_window_extent(renderer)
        hit = [b for b in boxes if lb.overlaps(b)]
        assert not hit, f"legend {[t.get_text() for t in leg.texts]} covers {len(hit)} bars"
        inside = ((points[:, 0] > lb.x0) & (points[:, 0] < lb.x1)
                  & (points[:, 1] > lb.y0) & (points[:, 1] < lb.y1))
        assert not inside.any(), f"legend {[t.get_text() for t in leg.texts]} covers a line"
        if inside_figure:
            fb = fig.bbox
            assert fb.x0 <= lb.x0 and lb.x1 <= fb.x1 + 0.5 and fb.y0 <= lb.y0 \
                and lb.y1 <= fb.y1 + 0.5, "legend cut off by the figure edge"


def legend_texts(legend):
    return [t.get_text() for t in legend.texts]


def test_class_histogram_legend_does_not_hide_classes():
    """Notebook 03's histogram: tall bars in every class leave no free corner inside the axes
    (the legend used to hide classes 6-8)."""
    counts = np.array([900, 950, 920, 940, 910, 930, 990, 1000, 980, 960])
    ax = plots.plot_class_counts({"plain pseudo-labels": counts, "debiased": counts[::-1],
                                  "true classes": np.full(10, 950)}, [str(i) for i in range(10)],
                                 reference=np.full(10, 800))
    assert_legends_clear(ax.figure)
    assert legend_texts(ax.get_legend()) == ["plain pseudo-labels", "debiased", "true classes",
                                             "truly clean"]
    assert ax.get_xlabel() == "class" and ax.get_ylabel() == "samples"


@pytest.mark.parametrize("R", [0.3, 0.6, 1.0])
def test_selection_figure_legends_and_labels(R):
    """Notebook 02's slider figure at every budget (the legend covered the bars once R >= 0.6)
    and its P/R/F1 panel."""
    res, fig = widgets.show_selection(synthetic_samples(), R, 0.6, class_names=list("abcde"))
    assert_legends_clear(fig)
    counts, scores = fig.axes
    assert counts.get_xlabel() == "given label" and counts.get_ylabel() == "samples"
    assert f"R={R:.2f}" in counts.get_title() and "tau=0.600" in counts.get_title()
    assert legend_texts(counts.get_legend()) == ["CSS", "MHCS", "CSS + MHCS", "truly clean"]
    assert scores.get_ylabel().startswith("score") and scores.get_xlabel() == "selection"
    assert scores.get_title()
    assert legend_texts(scores.get_legend()) == ["precision", "recall", "F1"]
    assert [t.get_text() for t in scores.get_xticklabels()] == ["CSS", "MHCS", "CSS + MHCS"]


def test_scores_panel_alone():
    """Notebook 02 also draws the P/R/F1 panel on its own (after warm-up), with bars up to 1."""
    ax = plots.plot_scores({"css": dict(precision=1.0, recall=0.99, f1=0.99),
                            "mhcs": dict(precision=1.0, recall=0.2, f1=0.33),
                            "union": dict(precision=0.98, recall=1.0, f1=0.99)})
    assert_legends_clear(ax.figure)
    assert ax.get_ylabel() and ax.get_xlabel()


def test_slider_frames_keep_legends_clear():
    """The explorer's redrawn figure (bars updated in place) keeps its legends clear too."""
    ex = widgets.SelectionExplorer(synthetic_samples(), R=0.3, tau=0.6)
    ex.sliders["R"].value = 1.0
    assert_legends_clear(ex.figure)
    ex = widgets.PseudoLabelExplorer(synthetic_samples(), alpha=0.0)
    ex.sliders["alpha"].value = 2.0
    assert_legends_clear(ex.figure)
    assert ex.figure.axes[0].get_xlabel() == "class"


def test_pseudo_label_accuracy_legend_is_not_redundant(tmp_path):
    """Fig. 4 of notebook 03: each run named once (its colour), the two line styles once; no
    entry like "debiased (ProMix w/o LGA): debiased"."""
    runs = {"debiased (ProMix w/o LGA)": make_run(tmp_path / "a"),
            "w/o DBR": make_run(tmp_path / "b")}
    ax = plots.plot_pseudo_label_accuracy(runs, title="Fig. 4")
    assert_legends_clear(ax.figure)
    texts = legend_texts(ax.get_legend())
    assert texts == ["debiased (ProMix w/o LGA)", "w/o DBR", "debiased pseudo-labels",
                     "plain pseudo-labels"]
    assert all(t.count("debiased") <= 1 for t in texts)
    styles = [h.get_linestyle() for h in ax.get_legend().legend_handles[2:]]
    assert styles == ["-", "--"]
    assert ax.lines[0].get_linestyle() == "-" and ax.lines[1].get_linestyle() == "--"
    assert ax.get_xlabel() == "epoch" and "pseudo-label accuracy" in ax.get_ylabel()


def test_training_curves_titles_fonts_and_one_legend(tmp_path):
    """Notebook 04's panels: a title each, readable fonts, one legend outside the panels."""
    runs = {"ProMix": make_run(tmp_path / "p"), "CE": make_run(tmp_path / "c")}
    fig = plots.plot_training_curves(runs, title="cifar10, sym:0.8")
    assert [ax.get_title() for ax in fig.axes] == ["test accuracy", "clean-sample selection",
                                                   "labeled set"]
    for ax in fig.axes:
        assert ax.title.get_fontsize() >= 12 and ax.xaxis.label.get_fontsize() >= 11
        assert ax.yaxis.label.get_fontsize() >= 11 and ax.get_ylabel()
        assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 10
        assert ax.get_legend() is None
    assert [legend_texts(leg) for leg in fig.legends] == [["ProMix", "CE"]]
    assert_legends_clear(fig)


def test_selection_f1_legend_clear_of_lines_near_one(tmp_path):
    run = make_run(tmp_path / "r", union_f1=[0.9, 0.95, 0.99, 1.0, 1.0, 1.0])
    ax = plots.plot_selection_f1(run)
    assert_legends_clear(ax.figure)
    assert ax.get_ylim()[1] < 1.1  # no empty band above the data to park a legend in


def test_ablation_bars_legend_above_the_bars():
    rows = [{"ablation": "ProMix", "accuracy": 1.0, "paper": 95.05},
            {"ablation": "w/o LGA", "accuracy": 0.99, "paper": 100.0}]
    ax = plots.plot_ablation_bars(rows)
    assert_legends_clear(ax.figure, inside_figure=False)


def _baseline_lines(ax):
    return {line.get_label(): line for line in ax.lines[1:]}


def test_coincident_baseline_lines_stay_visible_and_are_named(tmp_path):
    """Fig. 3 when GMM and small-loss give the same F1 (per epoch and tuned once): every line
    is drawn, with different markers at alternating epochs, and the legend names the
    coincidence for each pair."""
    f1 = list(np.linspace(0.5, 0.8, 30))
    run = make_run(tmp_path / "same", epochs=30, gmm=f1, small=f1, grids=True,
                   union_f1=list(np.linspace(0.6, 0.95, 30)))
    ax = plots.plot_selection_f1(run)
    lines = _baseline_lines(ax)
    assert len(lines) == 4  # GMM and small-loss, tuned once and every epoch
    notes = [label for label in lines if "coincides with the GMM line" in label]
    assert len(notes) == 2 and all(label.startswith("small-loss") for label in notes)
    assert sum("tuned once" in n for n in notes) == 1
    assert sum("tuned every epoch" in n for n in notes) == 1
    gmm = [line for label, line in lines.items() if label.startswith("DivideMix GMM")]
    small = [line for label, line in lines.items() if label.startswith("small-loss")]
    for g, s in zip(gmm, small):
        np.testing.assert_allclose(g.get_ydata(), s.get_ydata())  # truly on top of each other
        assert g.get_marker() != s.get_marker()
        assert g.get_markevery() != s.get_markevery()  # markers at different epochs
    assert legend_texts(ax.get_legend()) == [line.get_label() for line in ax.lines]
    assert_legends_clear(ax.figure)


def test_nearly_coincident_lines_are_named_distinct_ones_not(tmp_path):
    f1 = np.array([0.5, 0.6, 0.65, 0.7, 0.72, 0.75])
    near = make_run(tmp_path / "near", gmm=list(f1), small=list(f1 + [0.015, 0, 0, 0, 0, 0]))
    assert any("coincides" in label for label in _baseline_lines(plots.plot_selection_f1(near)))
    apart = make_run(tmp_path / "apart", gmm=list(f1), small=list(f1 - 0.1))
    labels = _baseline_lines(plots.plot_selection_f1(apart))
    assert len(labels) == 2 and not any("coincides" in label for label in labels)
    assert plots.coincide([0.5, np.nan, 0.7], [0.5, np.nan, 0.71])
    assert not plots.coincide([0.5, np.nan], [0.5, 0.6])
    assert not plots.coincide([np.nan], [np.nan])


CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def assert_ticks_apart(ax):
    """No two neighbouring x tick labels of ``ax`` overlap once drawn: upright ones by their
    boxes; slanted ones (all at one angle, so their text lines are parallel) by the distance
    between those lines, tick spacing x sin(angle), against the text's height."""
    import math
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert len(labels) > 1
    angles = {t.get_rotation() % 180 for t in labels}
    assert len(angles) == 1, angles
    angle = math.radians(angles.pop())
    for a, b in zip(labels, labels[1:]):
        if angle == 0:
            apart = not a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer))
        else:
            (xa, _), (xb, _) = ax.transData.transform([(a.get_position()[0], 0),
                                                       (b.get_position()[0], 0)])
            apart = abs(xb - xa) * math.sin(angle) > a.get_fontsize() * fig.dpi / 72
        assert apart, f"tick labels {a.get_text()!r} and {b.get_text()!r} overlap"


def _ten_class_samples():
    s = synthetic_samples(n=3000, C=10)
    s["labeled"][:, ::3] = False
    return s


@pytest.mark.parametrize("draw", [
    lambda s: widgets.show_selection(s, 0.5, 0.9, class_names=CIFAR10)[1].axes[0],
    lambda s: widgets.show_pseudo_labels(s, 0.8, class_names=CIFAR10)[1].axes[0],
    lambda s: plots.plot_class_counts({"a": np.bincount(s["noisy"], minlength=10),
                                       "b": np.bincount(s["clean"], minlength=10)}, CIFAR10),
], ids=["selection sliders (02)", "pseudo-label sliders (03)", "class counts (02)"])
def test_cifar10_class_names_do_not_overlap(draw):
    """"airplane" and "automobile" under neighbouring bars: the names are slanted, not stacked
    on top of each other, at the figures' own sizes; digits stay upright."""
    ax = draw(_ten_class_samples())
    assert_ticks_apart(ax)
    assert ax.get_xticklabels()[0].get_rotation() > 0
    upright = plots.plot_class_counts({"a": np.arange(10)}, [str(i) for i in range(10)])
    assert upright.get_xticklabels()[0].get_rotation() == 0


def test_ablation_bar_labels_do_not_overlap():
    from promix_tutorial.config import ABLATION_LABELS
    rows = [{"ablation": label, "accuracy": 0.5, "paper": 90.0} for label in ABLATION_LABELS.values()]
    assert_ticks_apart(plots.plot_ablation_bars(rows))


def test_the_overlap_check_fails_on_overlapping_names():
    """The check above is not vacuous: upright CIFAR-10 names in a narrow figure overlap."""
    import matplotlib.pyplot as plt
    _, ax = plt.subplots(figsize=(4, 2))
    ax.set_xticks(np.arange(10), CIFAR10)
    with pytest.raises(AssertionError, match="overlap"):
        assert_ticks_apart(ax)
    ax.figure.set_size_inches(2.5, 2)   # slanted, but too close for the text's height
    ax.set_xticks(np.arange(10), CIFAR10, rotation=30, ha="right", rotation_mode="anchor")
    with pytest.raises(AssertionError, match="overlap"):
        assert_ticks_apart(ax)


def test_selection_f1_draws_cleanlab_where_the_run_recorded_it(tmp_path):
    run = make_run(tmp_path / "a")
    ax = plots.plot_selection_f1(run)
    assert not any("cleanlab" in line.get_label() for line in ax.lines)
    hist = tmp_path / "b"
    make_run(hist)
    import json
    data = json.loads((hist / "history.json").read_text())
    for r in data["epochs"]:
        r["baselines"]["cleanlab"] = {"f1": 0.4, "precision": 0.5, "recall": 0.3, "count": 9}
    (hist / "history.json").write_text(json.dumps(data))
    ax = plots.plot_selection_f1(RunHistory(hist))
    [line] = [ln for ln in ax.lines if "cleanlab" in ln.get_label()]
    assert list(line.get_ydata()) == [0.4] * 6
    assert_legends_clear(ax.figure, inside_figure=False)


def test_selection_f1_draws_each_rule_run_with_its_own_selection(tmp_path):
    """Fig. 3 as the paper drew it: a run that trained with the GMM or small-loss rule adds a
    line of its own labeled set's F1, labelled with its setting."""
    import json
    run = make_run(tmp_path / "promix")
    rules = {}
    for rule, f1, setting in (("gmm", 0.3, {"gmm_threshold": 0.86}),
                              ("small_loss", 0.2, {"forget_rate": 0.69})):
        path = tmp_path / rule
        make_run(path, union_f1=[f1] * 6)
        data = json.loads((path / "history.json").read_text())
        data["config"].update(selection=rule, **setting)
        (path / "history.json").write_text(json.dumps(data))
        rules[rule] = RunHistory(path)
    ax = plots.plot_selection_f1(run, rule_runs=rules)
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines["DivideMix GMM rule, its own run (threshold 0.86)"].get_ydata()) == [0.3] * 6
    assert list(lines["small-loss rule, its own run (forget rate 0.69)"].get_ydata()) == [0.2] * 6
    assert len(ax.lines) == len(plots.plot_selection_f1(run).lines) + 2
    assert_legends_clear(ax.figure, inside_figure=False)
