"""End-to-end tests of the training engine on the digits (`tiny` preset) and a short run through
the real CIFAR-10 data path. Seeds are fixed; assertions have slack, never exact floats, except
where exactness is the point (resume)."""
import json

import numpy as np
import pytest
import torch

from promix_tutorial import train as T
from promix_tutorial.config import ABLATIONS, make_config
from promix_tutorial.history import RunHistory


def tiny(**kw):
    """A short tiny-preset config (seconds on a CPU)."""
    noise = kw.pop("noise", "sym:0.5")
    base = dict(epochs=8, warmup_epochs=2, lga_start=5, gamma_ramp_epochs=2,
                unlabeled_ramp_epochs=3)
    base.update(kw)
    base.setdefault("record_epochs", (min(3, base["epochs"] - 1),))
    return make_config("tiny", "digits", noise, **base)


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    """ProMix and the CE baseline, tiny preset (30 epochs), digits with 50% symmetric noise."""
    root = tmp_path_factory.mktemp("runs")
    promix = T.train(make_config("tiny", "digits", "sym:0.5"), root / "promix", progress=False)
    ce = T.train(make_config("tiny", "digits", "sym:0.5", method="ce"), root / "ce",
                 progress=False)
    return promix, ce


def test_promix_beats_ce_on_noisy_digits(full_runs):
    promix, ce = full_runs
    assert promix.final_accuracy() > ce.final_accuracy() + 0.08, \
        (promix.final_accuracy(), ce.final_accuracy())
    assert promix.final_accuracy() > 0.85
    union = promix.records[-1]["selection"]["union"]
    assert union["f1"] > 0.85 and union["precision"] > 0.85


def test_history_records_everything_the_notebooks_plot(full_runs):
    promix, _ = full_runs
    last = promix.records[-1]
    for key in ("test_acc", "test_acc_nets", "selection", "lga_label_acc", "pseudo_acc",
                "pseudo_acc_debiased", "selected_per_class", "prior_l", "prior_u", "losses",
                "seconds", "images_per_s", "baselines"):
        assert key in last, key
    assert set(last["selection"]) == {"css", "mhcs", "lga", "union", "labeled"}
    assert last["selection"]["labeled"]["count"] >= last["selection"]["union"]["count"]
    assert last["selection"]["lga"]["count"] > 0 and last["selection"]["labeled"]["target_acc"] > 0.8
    assert {"cls", "cr", "mix", "aux_cls", "aux_cr", "aux_mix", "unl", "total"} <= set(last["losses"])
    assert abs(sum(last["prior_u"]) - 1) < 1e-3 and len(last["selected_per_class"]) == 10
    assert promix.records[0]["phase"] == "warmup" and "selection" not in promix.records[0]
    assert 0 < last["baselines"]["gmm"]["f1"] <= 1 and 0 <= last["baselines"]["small_loss"]["forget_rate"] < 1
    s = promix.samples()
    n = promix.info["n_train"]
    assert s["probs"].dtype == np.float16 and s["probs"].shape == (2, n, 10)
    assert s["losses"].shape == (2, n) and s["labeled"].dtype == bool
    assert np.array_equal(s["noisy"] != s["clean"], ~(s["noisy"] == s["clean"]))


@pytest.mark.parametrize("ablation", [a for a in ABLATIONS if a != "none"])
def test_each_ablation_runs(tmp_path, ablation):
    hist = T.train(tiny(ablation=ablation, epochs=6), tmp_path / ablation, progress=False)
    last = hist.records[-1]
    assert np.isfinite(last["losses"]["total"]) and 0 <= last["test_acc"] <= 1
    if ablation == "no_mhcs":
        assert last["selection"]["mhcs"]["count"] == 0
    if ablation == "no_base_selection":
        assert last["selection"]["css"]["count"] == 0
    if ablation == "no_cbr":
        assert "aux_cls" not in last["losses"]
    if ablation == "only_clean":
        assert "unl" not in last["losses"]


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = tiny(epochs=7, lga_start=4)
    full = T.train(cfg, tmp_path / "full", progress=False)
    original = T.Trainer.run_epoch

    def interrupted(self, epoch):
        if epoch == 4:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(T.Trainer, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, tmp_path / "cut", progress=False)
    assert len(RunHistory(tmp_path / "cut")) == 4  # lost at most the epoch in progress
    monkeypatch.setattr(T.Trainer, "run_epoch", original)
    resumed = T.train(cfg, tmp_path / "cut", resume=True, progress=False)

    def strip(recs):
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in recs]

    assert strip(resumed.records) == strip(full.records)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["nets"][0]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["nets"][0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_is_not_overwritten(tmp_path):
    T.train(tiny(epochs=3), tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(T.RunExistsError, match="--resume"):
        T.Trainer(tiny(epochs=3), tmp_path)
    with pytest.raises(ValueError, match="rho"):
        T.Trainer(tiny(epochs=3, rho=0.3), tmp_path, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = T.promix_losses

    def poisoned(*args, **kwargs):
        terms = original(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    cfg = tiny(epochs=5, warmup_epochs=2)
    trainer = T.Trainer(cfg, tmp_path, progress=False)
    monkeypatch.setattr(T, "promix_losses", poisoned)
    with pytest.raises(T.NonFiniteLossError, match="last good checkpoint"):
        trainer.fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1  # the two warm-up epochs are kept
    assert all(torch.isfinite(v).all() for v in state["nets"][0].values() if v.is_floating_point())
    assert len(json.loads((tmp_path / "history.json").read_text())["epochs"]) == 2


@pytest.mark.parametrize("overrides", [
    dict(noise="none"),                               # clean data
    dict(rho=1.0),                                    # every sample selected by CSS
    dict(use_css=False, tau=1.0),                     # (almost) nothing selected
    dict(noise="sym:0.9", rho=0.05),                  # tiny selections under heavy noise
])
def test_degenerate_selections_never_nan(tmp_path, overrides):
    noise = overrides.pop("noise", "sym:0.5")
    cfg = make_config("tiny", "digits", noise, epochs=5, warmup_epochs=1, lga_start=3,
                      gamma_ramp_epochs=1, unlabeled_ramp_epochs=1, **overrides)
    hist = T.train(cfg, tmp_path, progress=False)
    for rec in hist.records:
        assert all(np.isfinite(v) for v in rec["losses"].values()), rec["losses"]
    assert np.all(np.isfinite(np.asarray(hist.records[-1]["prior_u"])))


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="TrainConfig.tau"):
        make_config("tiny", "digits", "sym:0.5", tau=1.5)
    with pytest.raises(ValueError, match="TrainConfig.warmup_epochs"):
        make_config("tiny", "digits", "sym:0.5", epochs=3, warmup_epochs=5)
    with pytest.raises(ValueError, match="unknown config field"):
        make_config("tiny", "digits", "sym:0.5", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown ablation"):
        make_config("tiny", "digits", "sym:0.5", ablation="no_everything")
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")


def test_cifar10_real_data_path(tmp_path, cifar10_npz, monkeypatch):
    monkeypatch.setenv("PROMIX_CIFAR10_NPZ", str(cifar10_npz))
    cfg = make_config("cpu", "cifar10", "sym:0.5", n_train=400, n_test=200, epochs=2,
                      warmup_epochs=1, batch_size=64, lga_start=1)
    hist = T.train(cfg, tmp_path, progress=False)
    assert hist.info["n_train"] == 400 and hist.records[-1]["phase"] == "promix"
    assert hist.samples()["probs"].shape == (2, 400, 10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tiny_run_on_cuda(tmp_path):
    hist = T.train(tiny(device="cuda", epochs=4, warmup_epochs=1, lga_start=2), tmp_path,
                   progress=False)
    assert hist.info["device"].startswith("cuda") and np.isfinite(hist.records[-1]["losses"]["total"])


def test_figures_draw_from_real_runs(full_runs):
    """Fig. 3, Fig. 4 and the training curves from a real ProMix run and its CE baseline."""
    from promix_tutorial import plots
    promix, ce = full_runs
    ax = plots.plot_selection_f1(promix, baseline_run=ce)
    promix_f1 = ax.lines[0].get_ydata()
    assert np.isnan(promix_f1[0]) and np.nanmin(promix_f1) > 0.5  # no selection in warm-up
    assert np.nanmax(ax.lines[1].get_ydata()) <= 1
    ax = plots.plot_pseudo_label_accuracy({"ProMix": promix})
    assert np.nanmax(ax.lines[0].get_ydata()) > 0.5
    fig = plots.plot_training_curves({"ProMix": promix, "CE": ce})
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[2].lines) == 1


def test_progress_modes(tmp_path, capsys):
    """'epochs' (the notebooks' default) draws one bar over the epochs and no batch bars or
    epoch lines; True draws a bar per epoch over its batches; anything else is refused."""
    T.train(tiny(epochs=3, warmup_epochs=2), tmp_path / "epochs", progress="epochs")
    err = capsys.readouterr().err
    assert "3/3" in err and "test acc" in err and "sel. F1" in err
    assert "epoch 1/3" not in err  # neither batch bars nor epoch lines
    T.train(tiny(epochs=3, warmup_epochs=2), tmp_path / "batches", progress=True)
    out = capsys.readouterr()
    assert "epoch 1/3" in out.err + out.out
    with pytest.raises(ValueError, match="progress="):
        T.Trainer(tiny(epochs=3, warmup_epochs=2), tmp_path / "bad", progress="batches")
    assert not (tmp_path / "bad").exists()
