"""End-to-end tests of the training engine on the digits (`tiny` preset) and a short run through
the real CIFAR-10 data path. Seeds are fixed; assertions have slack, never exact floats, except
where exactness is the point (resume)."""
import json
import traceback

import numpy as np
import pytest
import torch

from promix_tutorial import devices, engine, losses, schedule
from promix_tutorial.config import ABLATIONS, make_config
from promix_tutorial.runs import RunHistory


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
    promix = engine.train(make_config("tiny", "digits", "sym:0.5"), root / "promix", progress=False)
    ce = engine.train(make_config("tiny", "digits", "sym:0.5", method="ce"), root / "ce",
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
    # cleanlab's confident learning on network 1's probabilities: a real selection at 50% noise
    assert last["baselines"]["cleanlab"]["f1"] > 0.6 and last["baselines"]["cleanlab"]["count"] > 0
    s = promix.samples()
    n = promix.info["n_train"]
    assert s["probs"].dtype == np.float16 and s["probs"].shape == (2, n, 10)
    assert s["losses"].shape == (2, n) and s["labeled"].dtype == bool
    assert np.array_equal(s["noisy"] != s["clean"], ~(s["noisy"] == s["clean"]))


@pytest.mark.parametrize("ablation", [a for a in ABLATIONS if a != "none"])
def test_each_ablation_runs(tmp_path, ablation):
    hist = engine.train(tiny(ablation=ablation, epochs=6), tmp_path / ablation, progress=False)
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
    full = engine.train(cfg, tmp_path / "full", progress=False)
    original = engine.Trainer.run_epoch

    def interrupted(self, epoch):
        if epoch == 4:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(engine.Trainer, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.train(cfg, tmp_path / "cut", progress=False)
    assert len(RunHistory(tmp_path / "cut")) == 4  # lost at most the epoch in progress
    monkeypatch.setattr(engine.Trainer, "run_epoch", original)
    resumed = engine.train(cfg, tmp_path / "cut", resume=True, progress=False)

    def strip(recs):
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in recs]

    assert strip(resumed.records) == strip(full.records)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["nets"][0]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["nets"][0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_is_not_overwritten(tmp_path):
    engine.train(tiny(epochs=3), tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(engine.RunExistsError, match="--resume"):
        engine.Trainer(tiny(epochs=3), tmp_path)
    with pytest.raises(ValueError, match="rho"):
        engine.Trainer(tiny(epochs=3, rho=0.3), tmp_path, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = losses.promix_losses

    def poisoned(*args, **kwargs):
        terms = original(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    cfg = tiny(epochs=5, warmup_epochs=2)
    trainer = engine.Trainer(cfg, tmp_path, progress=False)
    monkeypatch.setattr(engine, "promix_losses", poisoned)
    with pytest.raises(engine.NonFiniteLossError, match="last good checkpoint"):
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
    hist = engine.train(cfg, tmp_path, progress=False)
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
    hist = engine.train(cfg, tmp_path, progress=False)
    assert hist.info["n_train"] == 400 and hist.records[-1]["phase"] == "promix"
    assert hist.samples()["probs"].shape == (2, 400, 10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tiny_run_on_cuda(tmp_path):
    hist = engine.train(tiny(device="cuda", epochs=4, warmup_epochs=1, lga_start=2), tmp_path,
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
    labels = [line.get_label() for line in ax.lines]
    assert any("tuned once" in t and "threshold" in t for t in labels)       # GMM, once per run
    assert any("tuned once" in t and "forget rate" in t for t in labels)     # small-loss
    assert any("tuned every epoch" in t for t in labels)                     # the oracles
    ax = plots.plot_pseudo_label_accuracy({"ProMix": promix})
    assert np.nanmax(ax.lines[0].get_ydata()) > 0.5
    fig = plots.plot_training_curves({"ProMix": promix, "CE": ce})
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[2].lines) == 1


def test_progress_modes(tmp_path, capsys):
    """'epochs' (the notebooks' default) draws one bar over the epochs and no batch bars or
    epoch lines; True draws a bar per epoch over its batches; anything else is refused."""
    engine.train(tiny(epochs=3, warmup_epochs=2), tmp_path / "epochs", progress="epochs")
    err = capsys.readouterr().err
    assert "3/3" in err and "test acc" in err and "sel. F1" in err
    assert "epoch 1/3" not in err  # neither batch bars nor epoch lines
    engine.train(tiny(epochs=3, warmup_epochs=2), tmp_path / "batches", progress=True)
    out = capsys.readouterr()
    assert "epoch 1/3" in out.err + out.out
    with pytest.raises(ValueError, match="progress="):
        engine.Trainer(tiny(epochs=3, warmup_epochs=2), tmp_path / "bad", progress="batches")
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- the ProMix step

SYNC_OPS = ("aten::nonzero", "aten::_local_scalar_dense", "aten::item", "aten::masked_select")


def step_inputs(trainer, epoch=1, n=64):
    """A batch's index, weak and strong views (strong by the whole-batch path a GPU uses)."""
    from promix_tutorial import augment
    d = trainer.data
    gen = devices.epoch_generator(trainer.cfg, epoch, trainer.device)
    idx = torch.arange(n, device=trainer.device)
    x = d.x_train[idx]
    x_w = d.normalize(augment.weak_augment(x, pad=d.pad, flip=d.flip, generator=gen),
                      trainer.channels_last)
    x_s = d.normalize(augment.strong_augment(x, pad=d.pad, flip=d.flip, generator=gen,
                                             whole_batch=True), trainer.channels_last)
    return idx, x_w, x_s, gen


def step_batch(trainer, idx, x_w, x_s, phase, gen, lam, mix_rows=None):
    """A `Batch` of the given views in ``phase`` (gamma 1, lambda_u 0.1, LGA on)."""
    plan = engine.EpochPlan(1, phase, 1.0, 0.1, True, mix_rows)
    return engine.Batch(idx, x_w, x_s if phase == "promix" else None,
                        trainer.data.y_noisy[idx], plan, gen, lam)


def cifar_like_npz(folder, n_train=64, n_test=20):
    """A small CIFAR-shaped arrays file (random images) for the GPU presets' networks."""
    rng = np.random.default_rng(0)
    npz = folder / "cifar_like.npz"
    np.savez(npz, x_train=rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(n_train) % 10, y_test=np.arange(n_test) % 10,
             x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8))
    return str(npz)


@pytest.mark.parametrize("options", ["tiny", "fast"])
def test_promix_step_has_no_host_sync(tmp_path, options):
    """No call in a ProMix step (LGA on, every loss term) that makes a host wait for a GPU:
    no boolean-mask indexing (nonzero / masked_select), no .item() / int() / bool() of a tensor
    (_local_scalar_dense). Counted with the profiler on the CPU; the same calls sync on CUDA.
    ``fast``: the fast preset's options (airbench94, the BatchNorm-bias group, a mix bucket of
    half the batch, label smoothing in the warm-up)."""
    from torch.profiler import ProfilerActivity, profile
    cfg = tiny(epochs=4, warmup_epochs=1, lga_start=1) if options == "tiny" else make_config(
        "fast", cifar_like_npz(tmp_path), "sym:0.5", epochs=4, warmup_epochs=1, lga_start=1,
        batch_size=32, eval_batch_size=32, device="cpu", warmup_label_smoothing=0.2)
    trainer = engine.Trainer(cfg, tmp_path / "run", progress=False)
    trainer.css = torch.rand(trainer.css.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    idx, x_w, x_s, gen = step_inputs(trainer)
    tally = trainer.new_tally()
    lam = schedule.epoch_mix_lambdas(trainer.cfg, 1, 1, 2)[0].tolist()
    rows = 32 if options == "fast" else None
    for phase in ("warmup", "promix"):
        batch = step_batch(trainer, idx, x_w, x_s, phase, gen, lam, rows)
        trainer.tally_step(tally, idx, trainer.train_step(batch))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.tally_step(tally, idx, trainer.train_step(batch))
        syncs = {e.key: e.count for e in prof.key_averages() if e.key in SYNC_OPS}
        assert syncs == {}, (phase, syncs)
    assert int(tally.labeled.sum()) > 0 and float(tally.loss_sums["unl"]) > 0
    if rows:  # the bucket's counts reached the tally
        assert 0 < int(tally.mix[0]) <= 64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_promix_step_has_no_host_sync_on_cuda(tmp_path):
    """The same on a GPU, checked by CUDA itself: sync debug mode "error" raises on any call
    that synchronises, for the augmentation and both phases of the step."""
    from promix_tutorial import augment
    trainer = engine.Trainer(tiny(device="cuda", epochs=4, warmup_epochs=1, lga_start=1), tmp_path,
                        progress=False)
    idx, x_w, x_s, gen = step_inputs(trainer)
    tally = trainer.new_tally()
    lam = schedule.epoch_mix_lambdas(trainer.cfg, 1, 1, 2)[0]
    batches = {phase: step_batch(trainer, idx, x_w, x_s, phase, gen, lam)
               for phase in ("warmup", "promix")}
    for batch in batches.values():  # first call: allocations, cuDNN/cuBLAS handles
        trainer.tally_step(tally, idx, trainer.train_step(batch))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        augment.strong_augment(trainer.data.x_train[idx], pad=1, flip=False, generator=gen)
        for batch in batches.values():
            trainer.tally_step(tally, idx, trainer.train_step(batch))
    finally:
        torch.cuda.set_sync_debug_mode(0)


class _NumpyInTorchOps(torch.overrides.TorchFunctionMode):
    """Records every torch function (operators and tensor methods included) that receives a
    NumPy value, with the package line that called it. On CUDA a NumPy scalar becomes a CPU
    tensor that the op reads back with ``item()``: a host sync the CPU profiler cannot see,
    because on a CPU that tensor is an ordinary operand (the mixup coefficients were such
    scalars; see losses.mix_labeled)."""

    def __init__(self):
        super().__init__()
        self.hits: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}

        def numpy_in(a):
            if isinstance(a, (list, tuple)):
                return any(numpy_in(x) for x in a)
            return isinstance(a, (np.generic, np.ndarray))

        if numpy_in(args) or numpy_in(list(kwargs.values())):
            ours = [f for f in traceback.extract_stack()[:-1] if "promix_tutorial" in f.filename]
            where = f"{ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno}" if ours else "?"
            key = f"{getattr(func, '__name__', func)} at {where}"
            self.hits[key] = self.hits.get(key, 0) + 1
        return func(*args, **kwargs)


@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_no_numpy_value_reaches_a_torch_op_in_training_epochs(tmp_path, preset):
    """Whole warm-up and ProMix epochs of the GPU presets' loop (fast: airbench94 with scaled
    logits, channels_last, mix buckets, views in chunks; paper: ResNet-18, FMix, each head mixed
    separately), on a small CIFAR-shaped arrays file: no torch op gets a NumPy scalar or array.
    With the mixup coefficients left NumPy (the loop passes Python floats, and
    losses.mix_labeled float()s them) this failed with {'mul at augment.py:337': 24}."""
    npz = cifar_like_npz(tmp_path, n_train=48)
    cfg = make_config(preset, npz, "sym:0.5", epochs=4, warmup_epochs=1, lga_start=1,
                      batch_size=16, eval_batch_size=64, device="cpu")
    trainer = engine.Trainer(cfg, tmp_path / "run", progress=False)
    trainer.css = torch.rand(trainer.css.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    with _NumpyInTorchOps() as seen:
        for phase in ("warmup", "promix"):
            plan = trainer.plan(1)._replace(phase=phase)
            tally = trainer._train_epoch(plan, devices.epoch_generator(cfg, 1, trainer.device))
    assert seen.hits == {}, seen.hits
    assert tally.n_batches == 3 and int(tally.labeled.sum()) > 0


def test_the_numpy_detector_sees_numpy_scalars():
    """The detector above is not vacuous: operators and functions given NumPy values."""
    x = torch.ones(3)
    with _NumpyInTorchOps() as seen:
        _ = x * np.float64(2.0), np.float32(0.5) * x, torch.lerp(x, x, np.float64(0.3))
        _ = x + torch.ones(3)  # no NumPy: not recorded
    assert sum(seen.hits.values()) == 3, seen.hits


def _rand_views(g, b=12, c=4):
    r = lambda: torch.randn(b, c, generator=g)  # noqa: E731
    return losses.Views(losses.Heads(r(), r()), losses.Heads(r(), r())), losses.Heads(r(), r())


@pytest.mark.parametrize("primary_dml", [True, False])
def test_promix_losses_follow_the_released_code(primary_dml):
    """Every term recomputed from its formula with boolean indexing on small random tensors:
    labeled terms DML(weak) + gamma (DML(strong) + DML(mixup) + DML(FMix)) with the labeled
    prior on both heads (plain CE on the primary head when primary_dml is False), unlabeled term
    on the auxiliary head DML(weak) + gamma DML(strong) with the unlabeled prior."""
    from promix_tutorial.debias import debiased_pseudo_labels
    g = torch.Generator().manual_seed(0)
    b, c, gamma, lam_u = 12, 4, 0.6, 0.07
    out, _ = _rand_views(g, b, c)
    labeled = torch.rand(b, generator=g) < 0.5
    targets = torch.randint(0, c, (b,), generator=g)
    sel = losses.Selection(labeled, targets, labeled, torch.zeros_like(labeled))
    mixed = {name: losses.MixTerm(torch.randn(b, c, generator=g),
                             torch.softmax(torch.randn(b, c, generator=g), 1),
                             labeled[torch.randperm(b, generator=g)])
             for name in ("mix", "fmix", "aux_mix", "aux_fmix")}
    pi_l, pi_u = torch.softmax(torch.randn(c, generator=g), 0), torch.softmax(torch.randn(c, generator=g), 0)
    pseudo = debiased_pseudo_labels(out.weak.primary, pi_u, 0.8, 0.5)
    cfg = tiny(primary_dml=primary_dml, fmix=True)
    terms = losses.promix_losses(out, mixed, sel, pseudo, pi_l, pi_u, cfg, gamma, lam_u)

    def ce(z, t, prior=None, a=0.0):  # Eq. 5 written out: CE of z + a log(prior)
        z = z if prior is None else z + a * prior.log()
        logp = z.log_softmax(1)
        return -(logp.gather(1, t[:, None]).squeeze(1) if t.dim() == 1 else (t * logp).sum(1)).mean()

    def mix_ce(name, a):
        m = mixed[name]
        return ce(m.logits[m.weight], m.targets[m.weight], pi_l, a)

    L, U, a = labeled, ~labeled, 0.8
    a_h = a if primary_dml else 0.0
    expect = {
        "cls": ce(out.weak.primary[L], targets[L], pi_l, a_h),
        "cr": ce(out.strong.primary[L], targets[L], pi_l, a_h),
        "mix": mix_ce("mix", a_h), "fmix": mix_ce("fmix", a_h),
        "aux_cls": ce(out.weak.aux[L], targets[L], pi_l, a),
        "aux_cr": ce(out.strong.aux[L], targets[L], pi_l, a),
        "aux_mix": mix_ce("aux_mix", a), "aux_fmix": mix_ce("aux_fmix", a),
        "unl": ce(out.weak.aux[U], pseudo[U], pi_u, a) + gamma * ce(out.strong.aux[U], pseudo[U], pi_u, a),
    }
    for k, v in expect.items():
        assert torch.allclose(terms[k], v, atol=1e-5), k
    total = (expect["cls"] + gamma * (expect["cr"] + expect["mix"] + expect["fmix"])
             + expect["aux_cls"] + gamma * (expect["aux_cr"] + expect["aux_mix"] + expect["aux_fmix"])
             + lam_u * expect["unl"])
    assert torch.allclose(terms["total"], total, atol=1e-5)
    # w/o CBR: the unlabeled term moves to the primary head; w/o DBR: alpha = 0 everywhere
    no_cbr = losses.promix_losses(out, mixed, sel, pseudo, pi_l, pi_u, tiny(ablation="no_cbr"),
                             gamma, lam_u)
    assert "aux_cls" not in no_cbr and torch.allclose(
        no_cbr["unl"], ce(out.weak.primary[U], pseudo[U], pi_u, a)
        + gamma * ce(out.strong.primary[U], pseudo[U], pi_u, a), atol=1e-5)
    no_dbr = losses.promix_losses(out, mixed, sel, pseudo, pi_l, pi_u, tiny(ablation="no_dbr"),
                             gamma, lam_u)
    assert torch.allclose(no_dbr["aux_cls"], ce(out.weak.aux[L], targets[L]), atol=1e-5)


@pytest.mark.parametrize("per_head", [True, False])
def test_mix_labeled_passes_and_draws(tmp_path, per_head, monkeypatch):
    """mix_per_head (the released code): each head's mixup and FMix get their own forward pass
    (4 passes with FMix); otherwise the auxiliary terms read the primary's passes (2)."""
    trainer = engine.Trainer(tiny(epochs=4, warmup_epochs=1, fmix=True, mix_per_head=per_head),
                        tmp_path, progress=False)
    idx, x_w, _, gen = step_inputs(trainer)
    y = trainer.data.y_noisy[idx]
    sel = losses.Selection(torch.rand(len(idx), generator=torch.Generator().manual_seed(1)) < 0.5, y,
                      torch.zeros_like(y, dtype=torch.bool), torch.zeros_like(y, dtype=torch.bool))
    calls = []
    net = trainer.nets[0]
    monkeypatch.setattr(net, "forward", lambda x, f=net.forward: calls.append(len(x)) or f(x))
    terms = losses.mix_labeled(net, x_w, sel, 10, (0.7, 0.4, 0.8, 0.3), trainer.cfg, gen, False)
    assert sorted(terms) == ["aux_fmix", "aux_mix", "fmix", "mix"]
    assert len(calls) == (4 if per_head else 2)
    assert all(int(m.weight.sum()) == int(sel.labeled.sum()) for m in terms.values())
    same = torch.equal(terms["mix"].targets, terms["aux_mix"].targets)
    assert same != per_head  # own draws per head, or shared


def test_lga_guess_is_the_own_prediction_debiased_with_the_labeled_prior():
    g = torch.Generator().manual_seed(1)
    views = [_rand_views(g, 16, 5)[0] for _ in range(2)]
    pi_l = torch.softmax(3 * torch.randn(2, 5, generator=g), 1)
    pi_u = torch.softmax(3 * torch.randn(2, 5, generator=g), 1)
    own = losses.lga_guess_logits(1, views, pi_l, pi_u, tiny())
    assert torch.equal(own.argmax(1), (views[1].weak.primary - 0.8 * pi_l[1].log()).argmax(1))
    ens = losses.lga_guess_logits(1, views, pi_l, pi_u, tiny(lga_guess="ensemble"))
    manual = sum((v.weak.primary - 0.8 * pi_u[j].log()).softmax(1) for j, v in enumerate(views))
    assert torch.allclose(ens, manual, atol=1e-6)
    with pytest.raises(ValueError, match="lga_guess"):
        tiny(lga_guess="peer")


def test_masked_mean_and_confidence_penalty():
    v = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    m = torch.tensor([True, False, True, False])
    assert losses.masked_mean(v, m).item() == 2.0
    empty = losses.masked_mean(v, torch.zeros(4, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    p = torch.softmax(torch.tensor([[2.0, 1e-12, 0.5]]), 1)  # logits clamped at 1e-12 first
    assert torch.allclose(losses.confidence_penalty(logits), (p * p.log()).sum(), atol=1e-6)


def test_warmup_penalty_weight_scales_the_penalty(tmp_path):
    cfg = tiny(noise="pairflip:0.3", warmup_conf_penalty=True, warmup_penalty_weight=0.25)
    trainer = engine.Trainer(cfg, tmp_path, progress=False)
    idx, x_w, _, _ = step_inputs(trainer)
    terms = losses.warmup_losses(trainer.models, x_w, trainer.data.y_noisy[idx], cfg)
    assert torch.allclose(terms["total"], terms["ce"] + 0.25 * terms["penalty"])


def test_compiled_networks_train_and_checkpoint_plainly(tmp_path, monkeypatch):
    """TrainConfig.compile wires torch.compile into the step and the evaluation (checked with
    the "eager" backend, seconds on a CPU); checkpoints keep the plain networks' keys."""
    monkeypatch.setattr(devices, "COMPILE_BACKEND", "eager")
    hist = engine.train(tiny(epochs=3, warmup_epochs=1, lga_start=2, compile=True), tmp_path,
                   progress=False)
    assert np.isfinite(hist.records[-1]["losses"]["total"])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["nets"][0])


@pytest.mark.parametrize("capability, expected", [
    ((7, 0), torch.float16), ((7, 5), torch.float16),        # V100, T4 (Colab's free GPU)
    ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)])  # A100 L4 H100
def test_amp_dtype_is_bfloat16_only_where_the_gpu_computes_it(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.version, "hip", None)
    cuda = torch.device("cuda")
    assert devices.amp_dtype(tiny(), cuda) is expected
    assert devices.amp_dtype(tiny(amp=False), cuda) is None
    assert devices.amp_dtype(tiny(), torch.device("cpu")) is None
    monkeypatch.setattr(torch.version, "hip", "6.2")  # ROCm GPUs: bfloat16
    assert devices.amp_dtype(tiny(), cuda) is torch.bfloat16
    assert [devices.amp_name(d) for d in (torch.bfloat16, torch.float16, None)] == [
        "bfloat16", "float16", "off"]


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")])])
def test_float16_autocast_trains_with_loss_scaling_and_resumes_it(tmp_path, monkeypatch, device):
    """The float16 path of GPUs before compute capability 8 (a T4), forced on the CPU (and on
    whatever CUDA GPU the device check runs on): the networks compute in float16, a GradScaler
    scales every step's loss and steps the optimiser, its state is checkpointed and a resumed
    run restores it."""
    monkeypatch.setattr(engine, "amp_dtype", lambda cfg, device: torch.float16)
    scales = []
    original_step = torch.amp.GradScaler.step

    def step(self, optimizer, *args, **kwargs):
        scales.append(self.get_scale())
        return original_step(self, optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp.GradScaler, "step", step)
    cfg = tiny(epochs=3, warmup_epochs=1, lga_start=2, n_train=400, n_test=200, batch_size=100,
               device=device)
    trainer = engine.Trainer(cfg, tmp_path, progress=False)
    dtypes = set()
    trainer.nets[0].register_forward_hook(lambda m, i, out: dtypes.add(out[0].dtype))
    hist = trainer.fit()
    assert dtypes == {torch.float16} and hist.info["amp"] == "float16"
    assert all(np.isfinite(r["losses"]["total"]) for r in hist.records)
    assert len(scales) == 3 * 4 and all(s > 1 for s in scales)  # 3 epochs x 4 batches, scaled
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["scaler"]
    assert state["scale"] == scales[-1] and state["_growth_tracker"] > 0
    resumed = engine.Trainer(cfg, tmp_path, resume=True, progress=False)
    assert resumed.scaler.is_enabled() and resumed.scaler.state_dict() == state
    # a checkpoint written before the scaler existed (or on a bfloat16 GPU: {}) still resumes,
    # with a fresh scaler
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del ckpt["scaler"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    fresh = engine.Trainer(cfg, tmp_path, resume=True, progress=False)
    assert fresh.start_epoch == 3 and fresh.scaler.get_scale() == 2.0 ** 16


def test_an_empty_labeled_set_is_warned_and_recorded(tmp_path, capsys):
    """w/o Base Selection with tau = 1: MHCS can select nothing, so each ProMix epoch records one
    warning line per network in history.json and prints it with the epoch lines."""
    hist = engine.train(tiny(ablation="no_base_selection", tau=1.0, epochs=4, warmup_epochs=2),
                        tmp_path, progress=False, epoch_lines=True)
    err = capsys.readouterr().err
    assert err.count("warning: epoch 3: network") == 2 and "empty labeled set" in err
    assert "tau = 1.0" in err and "CSS is off" in err
    assert len(hist.records[-1]["warnings"]) == 2 and hist.records[0].get("warnings") is None
    ok = engine.train(tiny(epochs=4, warmup_epochs=2), tmp_path / "ok", progress=False)
    assert ok.records[-1]["warnings"] == []


def test_learning_rate_schedules():
    """The recipe's cosine per epoch; per step; with a linear warm-up (one-cycle)."""
    import math
    cfg = tiny(epochs=10, lr=0.1, lr_min=0.0)
    assert schedule.cosine_lr(cfg, 0) == pytest.approx(0.1) and schedule.cosine_lr(cfg, 5) == pytest.approx(0.05)
    assert schedule.cosine_lr(cfg, 5, step=3, steps_per_epoch=4) == pytest.approx(0.05)  # per epoch
    step = cfg.replace(lr_per_step=True)
    assert schedule.cosine_lr(step, 5, 2, 4) == pytest.approx(0.05 * (1 + math.cos(math.pi * 22 / 40)))
    warm = cfg.replace(lr_per_step=True, lr_warmup_frac=0.2)
    assert schedule.cosine_lr(warm, 0, 0, 4) == pytest.approx(0.004)             # lr / 25
    assert schedule.cosine_lr(warm, 1, 0, 4) == pytest.approx(0.004 + 0.096 / 2)  # halfway up
    assert schedule.cosine_lr(warm, 2, 0, 4) == pytest.approx(0.1)                # the top
    assert schedule.cosine_lr(warm, 6, 0, 4) == pytest.approx(0.05)               # half-way down
    with pytest.raises(ValueError, match="lr_warmup_frac"):
        tiny(lr_warmup_frac=1.0)


def test_one_cycle_options_train(tmp_path):
    hist = engine.train(tiny(epochs=3, warmup_epochs=1, lga_start=2, lr_per_step=True,
                        lr_warmup_frac=0.3, nesterov=True), tmp_path, progress=False)
    assert np.isfinite(hist.records[-1]["losses"]["total"])
    assert hist.records[0]["lr"] < hist.records[1]["lr"]  # still rising after epoch 1
