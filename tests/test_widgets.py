"""Widgets and run figures: set slider values, check the recomputed results; draw each figure
from a small synthetic run folder."""
import base64
import io
import json

import numpy as np
import pytest
import torch

from promix_tutorial import plots, widgets
from promix_tutorial.runs import RunHistory, save_json, save_npz, samples_path
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


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGBA"))


def _shown_png(explorer) -> bytes:
    """The PNG the explorer's figure output shows now (what its last display or update sent)."""
    return base64.b64decode(explorer._bundle()["image/png"])


@pytest.fixture
def ipython(tmp_path, monkeypatch):
    """A real IPython shell (no history file), so `display` publishes as in a notebook."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    cfg = Config()
    cfg.HistoryManager.enabled = False
    yield InteractiveShell.instance(config=cfg)
    InteractiveShell.clear_instance()


@pytest.mark.parametrize("make, setting", [
    (lambda s: widgets.SelectionExplorer(s, ["a", "b", "c", "d", "e"], R=0.5, tau=0.99),
     "R=0.50, tau=0.990"),
    (lambda s: widgets.PseudoLabelExplorer(s, alpha=0.8), "alpha=0.80")])
def test_widget_cell_shows_one_figure_that_follows_the_sliders(ipython, make, setting):
    """What `display(explorer)` (the notebooks' call; `display(explorer.widget)` too) puts in
    the cell: a hint line, the sliders and ONE figure, an ordinary PNG output with the
    explorer's display id. A slider step replaces that figure in place (an update of the same
    display id) rather than adding a second one; the hint and the figure are ordinary outputs,
    so they stay in a saved notebook when the slider widget cannot be shown."""
    from IPython.display import display
    from IPython.utils.capture import capture_output
    s = synthetic_samples()
    ex = make(s)
    name = next(iter(ex.sliders))
    for obj in (ex, ex.widget):
        with capture_output() as cap:
            display(obj)
        hint, sliders, figure = cap.outputs
        assert "run this cell again" in hint.data["text/plain"] and name in hint.data["text/plain"]
        assert hint.data["text/markdown"].strip("*") == hint.data["text/plain"]
        assert sliders.data["application/vnd.jupyter.widget-view+json"]["model_id"] \
            == ex.widget.model_id
        assert sliders.data["text/plain"] == f"<sliders: {setting}>"
        png = base64.b64decode(figure.data["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == ex.frame
        assert figure.data["text/plain"] == f"<figure: {setting}>"
        assert figure.transient == {"display_id": ex.display_id} and not figure.update
    first = ex.frame
    with capture_output() as cap:
        ex.sliders[name].value = ex.sliders[name].value / 2
    (step,) = cap.outputs  # the step sends only the new figure, as an update
    assert step.update and step.transient == {"display_id": ex.display_id}
    assert base64.b64decode(step.data["image/png"]) == ex.frame != first
    assert list(ex.widget.children) == list(ex.sliders.values())


def test_an_explorer_not_displayed_publishes_nothing(ipython):
    """Slider steps of an explorer that was never displayed (a test, the speed benchmark)
    update its frame without sending display messages."""
    from IPython.utils.capture import capture_output
    ex = widgets.SelectionExplorer(synthetic_samples())
    with capture_output() as cap:
        ex.sliders["R"].value = 0.3
    assert cap.outputs == [] and "R=0.30" in ex.figure.axes[0].get_title()


def test_notebook_calls_keep_working():
    """The notebooks' direct calls: a pyplot figure that ``plt.show()`` shows."""
    import matplotlib.pyplot as plt
    s = synthetic_samples()
    res, fig = widgets.show_selection(s, R=0.3, tau=0.9, class_names=list("abcde"))
    assert fig.number in plt.get_fignums() and res["scores"]["css"]["count"] > 0
    res, fig = widgets.show_pseudo_labels(s, alpha=0.8, class_names=list("abcde"))
    assert fig.number in plt.get_fignums() and res["count"] > 0
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcde")


def test_explorer_figure_stays_out_of_pyplot():
    """The explorer's figure is not a pyplot figure: the inline backend must not show it as an
    extra static image at the end of the cell."""
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    widgets.SelectionExplorer(synthetic_samples())
    assert plt.get_fignums() == before


def test_fast_slider_changes_end_on_the_last_value():
    """Several changes in a row (as the front end sends key presses, through `set_state`, and as
    code sets them): the final frame is the figure of the last values, pixel for pixel the one
    a fresh `show_selection` draws for them, and the shown image is that frame."""
    s = synthetic_samples()
    ex = widgets.SelectionExplorer(s, R=0.5, tau=0.99)
    for R in (0.55, 0.6, 0.65, 0.7):
        ex.sliders["R"].set_state({"value": R})
    for tau in (0.985, 0.98, 0.975):
        ex.sliders["tau"].value = tau
    ex.sliders["R"].set_state({"value": 0.75})
    assert ex.result["scores"] == widgets.selection_at(s, 0.75, 0.975)["scores"]
    assert "R=0.75, tau=0.975" in ex.figure.axes[0].get_title()
    _, fresh = widgets.show_selection(s, 0.75, 0.975)
    assert (_pixels(ex.frame) == _pixels(widgets.figure_png(fresh))).all()
    assert _shown_png(ex) == ex.frame
    first = widgets.SelectionExplorer(s, R=0.5, tau=0.99)
    assert not np.array_equal(_pixels(first.frame), _pixels(ex.frame))


def test_pseudo_label_explorer_frames_follow_alpha():
    s = synthetic_samples()
    s["labeled"][:] = False
    ex = widgets.PseudoLabelExplorer(s, alpha=0.0)
    for a in (0.25, 0.5, 1.0, 1.5):
        ex.sliders["alpha"].value = a
    _, fresh = widgets.show_pseudo_labels(s, 1.5)
    assert (_pixels(ex.frame) == _pixels(widgets.figure_png(fresh))).all()
    assert "alpha=1.50" in ex.figure.axes[0].get_title()


def test_widgets_speed_benchmark_writes_whole_step_times(tmp_path, capsys):
    """The benchmark runs and records whole slider steps (compute + redraw + PNG) with the
    load; no timing is asserted here (benchmarks/widgets_speed.py is where speed is read)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "widgets_speed.py"
    spec = importlib.util.spec_from_file_location("widgets_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "w.json"
    assert mod.main(["--n", "500", "--classes", "4", "--repeat", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    whole = [r for r in res["rows"] if r["whole_step"]]
    assert {r["what"] for r in whole} == {"SelectionExplorer R step", "SelectionExplorer tau step",
                                          "PseudoLabelExplorer alpha step"}
    assert all(r["wall"]["p90_s"] > 0 and r["frame_bytes"] > 1000 for r in whole)
    assert len(res["info"]["loadavg_before"]) == 3 and res["target_s"] == 0.3
    assert "load average" in capsys.readouterr().out


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
    from promix_tutorial.runs import atomic_write, save_json
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
