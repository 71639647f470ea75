"""Widgets and run figures: set slider values, check the recomputed results; draw each figure
from a small synthetic run folder."""
import numpy as np
import pytest
import torch

from promix_tutorial import plots, widgets
from promix_tutorial.history import RunHistory, save_json, save_npz, samples_path
from promix_tutorial.selection import class_wise_small_loss


def synthetic_samples(n=2000, C=5, seed=0):
    """Cached arrays as a run writes them: clean samples have small loss / confident probs."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, C, n)
    noisy = clean.copy()
    flip = rng.random(n) < 0.4
    noisy[flip] = rng.integers(0, C, flip.sum())
    is_clean = noisy == clean
    losses = np.where(is_clean, rng.exponential(0.3, n), rng.exponential(0.3, n) + 1.5)
    logits = rng.normal(0, 1, (n, C))
    logits[np.arange(n), clean] += 4.0
    logits[:, 0] += 1.0  # a bias towards class 0 that debiasing should undo
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    prior = probs.mean(0)
    return dict(losses=np.stack([losses, losses]).astype(np.float32),
                probs=np.stack([probs, probs]).astype(np.float16),
                noisy=noisy, clean=clean, labeled=np.stack([is_clean, is_clean]),
                prior_u=np.stack([prior, prior]).astype(np.float32))


def test_selection_at_matches_the_equations():
    s = synthetic_samples()
    res = widgets.selection_at(s, R=0.4, tau=0.9)
    css = class_wise_small_loss(torch.from_numpy(s["losses"][0]), torch.from_numpy(s["noisy"]), 5, 0.4)
    assert res["scores"]["css"]["count"] == int(css.sum())
    assert res["per_class"]["css"].sum() == int(css.sum())
    assert res["scores"]["union"]["count"] >= max(res["scores"]["css"]["count"],
                                                  res["scores"]["mhcs"]["count"])
    assert res["scores"]["css"]["precision"] > 0.9  # small losses are the clean ones here
    looser = widgets.selection_at(s, R=0.9, tau=0.9)
    assert looser["scores"]["css"]["count"] > res["scores"]["css"]["count"]
    assert looser["scores"]["css"]["precision"] < res["scores"]["css"]["precision"]


def test_pseudo_labels_at_debiasing_undoes_the_bias():
    s = synthetic_samples()
    s["labeled"][:] = False
    plain = widgets.pseudo_labels_at(s, alpha=0.0)
    deb = widgets.pseudo_labels_at(s, alpha=1.0)
    assert plain["accuracy"] == pytest.approx(plain["accuracy_plain"])
    assert deb["per_class"][0] < plain["per_class"][0]  # fewer class-0 pseudo-labels
    assert deb["accuracy"] > plain["accuracy"]
    assert deb["count"] == len(s["clean"]) and deb["true_per_class"].sum() == deb["count"]


def test_selection_explorer_sliders_recompute():
    s = synthetic_samples()
    ex = widgets.SelectionExplorer(s, R=0.5, tau=0.99)
    first = ex.result["scores"]["css"]["count"]
    ex.sliders["R"].value = 0.2
    assert ex.result["scores"]["css"]["count"] < first
    assert ex.result["scores"] == widgets.selection_at(s, 0.2, 0.99)["scores"]
    ex.sliders["tau"].value = 0.6
    assert ex.result["scores"]["mhcs"]["count"] == widgets.selection_at(s, 0.2, 0.6)["scores"]["mhcs"]["count"]


def test_pseudo_label_explorer_slider_recomputes():
    s = synthetic_samples()
    s["labeled"][:] = False
    ex = widgets.PseudoLabelExplorer(s, alpha=0.0)
    before = ex.result["accuracy"]
    ex.sliders["alpha"].value = 1.0
    assert ex.result["accuracy"] == pytest.approx(widgets.pseudo_labels_at(s, 1.0)["accuracy"])
    assert ex.result["accuracy"] > before


@pytest.fixture
def fake_run(tmp_path):
    """A run folder with 4 epochs of records and one per-sample file."""
    recs = []
    for e in range(4):
        sel = {k: {"precision": 0.9, "recall": 0.5 + 0.1 * e, "f1": 0.6 + 0.05 * e, "count": 100 + e}
               for k in ("css", "mhcs", "union")}
        sel["labeled"] = {"count": 100 + e, "target_acc": 0.9}
        recs.append({"epoch": e, "phase": "promix", "test_acc": 0.5 + 0.1 * e, "selection": sel,
                     "baselines": {"gmm": {"f1": 0.5}, "small_loss": {"f1": 0.55 - 0.01 * e}},
                     "pseudo_acc": 0.4 + 0.02 * e, "pseudo_acc_debiased": 0.45 + 0.03 * e})
    save_json(tmp_path / "history.json", {"config": {"noise": "sym:0.8"}, "epochs": recs})
    save_npz(samples_path(tmp_path, 3), **synthetic_samples())
    return RunHistory(tmp_path)


def test_run_history_series_and_samples(fake_run):
    np.testing.assert_allclose(fake_run.series("selection.union.f1"), [0.6, 0.65, 0.7, 0.75])
    assert np.isnan(fake_run.series("missing.key")).all()
    assert fake_run.best_accuracy() == pytest.approx(0.8) and fake_run.sample_epochs() == [3]
    assert fake_run.samples()["probs"].dtype == np.float16
    with pytest.raises(ValueError, match="saved epochs"):
        fake_run.samples(1)


def test_run_figures_draw_the_series(fake_run):
    ax = plots.plot_selection_f1(fake_run)
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.6, 0.65, 0.7, 0.75])
    ax = plots.plot_pseudo_label_accuracy({"ProMix": fake_run})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.45, 0.48, 0.51, 0.54])
    fig = plots.plot_training_curves({"ProMix": fake_run})
    np.testing.assert_allclose(fig.axes[2].lines[0].get_ydata(), [100, 101, 102, 103])
    rows = [{"ablation": "ProMix", "accuracy": 0.9, "paper": 95.05},
            {"ablation": "w/o LGA", "accuracy": 0.85, "paper": 94.32}]
    ax = plots.plot_ablation_bars(rows)
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == pytest.approx([90, 85]) and heights[2:] == pytest.approx([95.05, 94.32])
    ax = plots.plot_ablation_bars(rows, reference_label="paper (CIFAR-10N worst)")
    assert [t.get_text() for t in ax.get_legend().texts] == ["this run", "paper (CIFAR-10N worst)"]
    res, fig = widgets.show_selection(fake_run.samples(), 0.5, 0.9)
    assert len(fig.axes) == 2 and res["scores"]["union"]["count"] > 0


def test_pseudo_label_histogram_figure():
    """Notebook 03's per-class histogram: plain, debiased and true counts of the unlabeled set."""
    s = synthetic_samples()
    res, fig = widgets.show_pseudo_labels(s, alpha=1.0)
    ax = fig.axes[0]
    C = len(res["true_per_class"])
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 3 * C
    assert heights[:C] == pytest.approx(res["per_class_plain"].tolist())
    assert heights[C:2 * C] == pytest.approx(res["per_class"].tolist())
    assert heights[2 * C:] == pytest.approx(res["true_per_class"].tolist())
    assert sum(res["per_class"]) == res["count"]


def test_run_files_follow_the_umask(tmp_path):
    """Atomic writes keep the user's umask (mkstemp alone makes 0600 files an instructor cannot
    share); an old file survives a failed write."""
    import os
    from promix_tutorial.history import atomic_write, save_json
    old = os.umask(0o022)
    try:
        p = save_json(tmp_path / "history.json", {"a": 1})
        assert (p.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        assert (save_json(tmp_path / "private.json", {}).stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == '{\n "a": 1\n}' and [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []
