"""The fast preset's parts, each an option of TrainConfig: airbench94's network (whitening stem
from the training images, Dirac convolutions, frozen BatchNorm weights, a scaled BatchNorm-bias
rate), mixed passes over the labeled rows in static buckets, tests every k epochs with flip
test-time augmentation, label smoothing in the warm-up only, and a network and loss terms that
compile without graph breaks. The values themselves: docs/calibration.md#fast-preset."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from promix_tutorial import engine, losses, schedule
from promix_tutorial.config import ADDED_FIELDS, make_config, with_added_fields
from promix_tutorial.profiles import REFERENCE_FAST
from promix_tutorial.models import build_model, whitening_weights


@pytest.fixture()
def cifar_like(tmp_path):
    """A CIFAR-shaped arrays file: 64 training and 20 test images of smooth random patterns
    (neighbouring pixels correlate, as in photographs)."""
    g = torch.Generator().manual_seed(0)
    def images(n):
        x = F.avg_pool2d(torch.rand(n, 3, 40, 40, generator=g), 5, 1, padding=0)[..., :32, :32]
        x = (x - x.amin()) / (x.amax() - x.amin())
        return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    path = tmp_path / "cifar_like.npz"
    np.savez(path, x_train=images(64), y_train=np.arange(64) % 10, x_test=images(20),
             y_test=np.arange(20) % 10)
    return str(path)


def fast(npz, **kw):
    """The fast preset, shrunk to seconds on the CPU."""
    base = dict(epochs=4, warmup_epochs=1, lga_start=3, batch_size=16, eval_batch_size=32,
                gamma_ramp_epochs=1, unlabeled_ramp_epochs=1, device="cpu")
    return make_config("fast", npz, "sym:0.5", **{**base, **kw})


def _patches(x, k=2):
    return x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)


def test_whitening_weights_whiten_the_training_patches(cifar_like):
    """The stem's filters, applied to the training images' 2x2 patches, give outputs whose
    second moment is the identity (eps -> 0), or diag(l / (l + eps)) with airbench's eps; the
    second half are the negatives of the first. Computed from the images alone."""
    x = torch.from_numpy(np.load(cifar_like)["x_train"]).permute(0, 3, 1, 2).contiguous()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    xn = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    p = _patches(xn).double()
    assert (p.T @ p / len(p) - torch.eye(12, dtype=torch.float64)).abs().max() > 0.5  # not white
    w = whitening_weights(x, mean, std, eps=1e-9).double()
    assert w.shape == (24, 3, 2, 2) and torch.equal(w[12:], -w[:12])
    out = F.conv2d(xn.double(), w[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    assert torch.allclose(out.T @ out / len(out), torch.eye(12, dtype=torch.float64), atol=1e-4)
    second = (p.T @ p / len(p))
    lam = torch.linalg.eigvalsh(second).flip(0)
    w5 = whitening_weights(x, mean, std).double()[:12]  # airbench's eps = 5e-4
    out5 = F.conv2d(xn.double(), w5).permute(0, 2, 3, 1).reshape(-1, 12)
    assert torch.allclose(out5.T @ out5 / len(out5), torch.diag(lam / (lam + 5e-4)), atol=1e-4)


def test_airbench_network_trains_only_what_airbench_trains(cifar_like, tmp_path):
    """The trainer sets both networks' stems from the training images before training; the
    stem's filters and the BatchNorm weights stay frozen through steps while the BatchNorm
    biases move; convolutions start as the identity on their first input channels."""
    cfg = fast(cifar_like)
    tr = engine.Trainer(cfg, tmp_path, progress=False)
    w = whitening_weights(tr.data.x_train, tr.data.mean, tr.data.std)
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in tr.nets]
    for n in tr.nets:
        assert torch.equal(n.whiten.weight, w) and not n.whiten.weight.requires_grad
        conv = n.body[1]  # the first block's first convolution: 24 -> 64 channels
        z = torch.randn(2, 24, 8, 8)
        assert torch.allclose(conv(z)[:, :24], z, atol=1e-6)
    tr.run_epoch(0)
    for n, old in zip(tr.nets, before):
        new = n.state_dict()
        assert torch.equal(new["whiten.weight"], old["whiten.weight"])
        bns = [k[:-len(".running_var")] for k in new if k.endswith(".running_var")]
        assert bns and all(torch.equal(new[b + ".weight"], torch.ones_like(new[b + ".weight"]))
                           for b in bns)
        assert any(not torch.equal(new[b + ".bias"], old[b + ".bias"]) for b in bns)
    for name in ("airbench94", "airbench95"):
        h, aux = build_model(name, 7, 3, logit_scale=1 / 9)(torch.randn(2, 3, 32, 32))
        assert h.shape == aux.shape == (2, 7)


def test_batchnorm_biases_get_their_own_rate_and_the_default_one_group(cifar_like):
    """bn_bias_lr_scale s: the BatchNorm biases in a second group at s * lr with weight decay
    / s, frozen parameters left out; s = 1 keeps the single group of all parameters."""
    tr = engine.Trainer(fast(cifar_like, bn_bias_lr_scale=64.0), "unused", progress=False)
    rest, bias = tr.opt.param_groups
    biases = {id(m.bias) for n in tr.nets for m in n.modules()
              if isinstance(m, torch.nn.BatchNorm2d)}
    assert {id(p) for p in bias["params"]} == biases
    assert all(p.requires_grad for p in rest["params"]) and not biases & {id(p) for p in rest["params"]}
    schedule.set_lr(tr.opt, 0.3)
    assert rest["lr"] == 0.3 and math.isclose(bias["lr"], 0.3 * 64)
    assert math.isclose(bias["weight_decay"] * 64, rest["weight_decay"])
    one = engine.Trainer(fast(cifar_like, bn_bias_lr_scale=1.0), "unused", progress=False)
    (group,) = one.opt.param_groups
    assert len(group["params"]) == sum(len(list(n.parameters())) for n in one.nets)
    schedule.set_lr(one.opt, 0.3)
    assert group["lr"] == 0.3
    assert ADDED_FIELDS["bn_bias_lr_scale"] == 1.0


def test_mix_buckets_give_the_masked_loss_on_the_same_pairs(cifar_like):
    """A mixed pass over the first `rows` pairs (the labeled ones first) gives the same loss as
    the pass over all B pairs with the unlabeled ones masked (network in eval mode, so BatchNorm
    does not depend on the batch); with more labeled rows than the bucket, the bucket holds only
    labeled pairs and the overflow is counted."""
    tr = engine.Trainer(fast(cifar_like), "unused", progress=False)
    net = tr.nets[0].eval()
    B = 16
    x = tr.data.normalize(tr.data.x_train[:B], tr.channels_last)
    y = tr.data.y_noisy[:B]
    prior = torch.full((10,), 0.1)
    for n_labeled, rows in ((5, 8), (8, 8), (11, 12)):
        labeled = torch.zeros(B, dtype=torch.bool)
        labeled[torch.randperm(B, generator=torch.Generator().manual_seed(n_labeled))[:n_labeled]] = True
        sel = losses.Selection(labeled, y, labeled, torch.zeros_like(labeled))
        full, bucket = (losses.mix_labeled(net, x, sel, 10, (0.7, 0.4, 0.8, 0.3), tr.cfg,
                                           torch.Generator().manual_seed(3), False, r)
                        for r in (None, rows))
        for name in full:
            a, b = full[name], bucket[name]
            assert len(a.weight) == B and len(b.weight) == rows
            assert int(b.weight.sum()) == n_labeled
            la, lb = (losses.masked_mean(F.cross_entropy(m.logits + 0.8 * prior.log(), m.targets,
                                                         reduction="none"), m.weight)
                      for m in (a, b))
            assert torch.allclose(la, lb, atol=1e-6), (name, n_labeled)
        assert losses.mix_row_counts(labeled, rows).tolist() == [n_labeled, 0]
    labeled = torch.ones(B, dtype=torch.bool)
    sel = losses.Selection(labeled, y, labeled, torch.zeros_like(labeled))
    over = losses.mix_labeled(net, x, sel, 10, (0.7, 0.4, 0.8, 0.3), tr.cfg,
                              torch.Generator().manual_seed(3), False, 8)
    assert bool(over["mix"].weight.all()) and len(over["mix"].weight) == 8
    assert losses.mix_row_counts(labeled, 8).tolist() == [16, 8]


def test_mix_bucket_rows_per_epoch(cifar_like):
    """The bucket holds last epoch's most labeled rows plus 5% of B; all B rows before any
    ProMix epoch was recorded and when LGA starts; None when the buckets are off."""
    cfg = fast(cifar_like, batch_size=1024, mix_buckets=4, epochs=20, warmup_epochs=2,
               lga_start=10)
    assert schedule.mix_bucket_rows(cfg, 3, None) == 1024
    assert schedule.mix_bucket_rows(cfg, 3, {"labeled_max": 200}) == 256   # 200 + 52 <= 256
    assert schedule.mix_bucket_rows(cfg, 3, {"labeled_max": 210}) == 512
    assert schedule.mix_bucket_rows(cfg, 3, {"labeled_max": 1000}) == 1024
    assert schedule.mix_bucket_rows(cfg, 10, {"labeled_max": 100}) == 1024  # LGA starts
    assert schedule.mix_bucket_rows(cfg.replace(mix_buckets=0), 3, {"labeled_max": 9}) is None
    with pytest.raises(ValueError, match="mix_buckets"):
        cfg.replace(mix_buckets=2000)


def test_tests_every_k_epochs_and_flips_at_the_end(cifar_like, tmp_path, capsys):
    """eval_every=3: test accuracy and the Fig. 3 baselines at the warm-up's last epoch, every
    third epoch from the first ProMix one, a recorded one and the last; CSS before every ProMix
    epoch all the same; the last epoch's test accuracy averages each image's and its mirror
    image's logits (tta_flip), the plain one beside it."""
    cfg = fast(cifar_like, epochs=7, warmup_epochs=2, lga_start=5, eval_every=3,
               record_epochs=(3,), tta_flip=True, mix_buckets=0)
    hist = engine.train(cfg, tmp_path / "run", progress=False, epoch_lines=True)
    tested = [r["epoch"] for r in hist.records if r["test_acc"] is not None]
    assert tested == [1, 2, 3, 5, 6]
    assert all(("baselines" in r) == (r["epoch"] in tested) for r in hist.records)
    assert [r["epoch"] for r in hist.records if "css_next" in r] == [1, 2, 3, 4, 5, 6]
    assert "test acc -" in capsys.readouterr().out
    assert hist.sample_epochs() == [3, 6]
    last = hist.records[-1]
    assert "test_acc_plain" in last and not any("test_acc_plain" in r for r in hist.records[:-1])
    tr = engine.Trainer(cfg, tmp_path / "run", resume=True, progress=False)
    from promix_tutorial.evaluation import predict
    cl = tr.channels_last
    logits = [(predict(n, tr.data.x_test, tr.data, 32, tr.amp, cl)
               + predict(n, tr.data.x_test, tr.data, 32, tr.amp, cl, flip=True)) / 2
              for n in tr.nets]
    acc = float((torch.stack(logits).mean(0).argmax(1) == tr.data.y_test).float().mean())
    assert math.isclose(last["test_acc"], acc)
    assert np.isnan(hist.series("test_acc")[0]) and hist.best_accuracy() >= last["test_acc"]


def test_label_smoothing_in_the_warm_up_only(cifar_like):
    """warmup_label_smoothing smooths ProMix's warm-up CE; the CE baseline is never smoothed."""
    tr = engine.Trainer(fast(cifar_like, warmup_label_smoothing=0.2), "unused", progress=False)
    x = tr.data.normalize(tr.data.x_train[:16], tr.channels_last)
    y = tr.data.y_noisy[:16]
    terms = losses.warmup_losses(tr.models, x, y, tr.cfg)
    want = sum(F.cross_entropy(n(x)[0], y, label_smoothing=0.2) for n in tr.models)
    assert torch.allclose(terms["ce"], want)
    ce_cfg = tr.cfg.replace(method="ce")
    plain = losses.warmup_losses(tr.models[:1], x, y, ce_cfg)["ce"]
    assert torch.allclose(plain, F.cross_entropy(tr.models[0](x)[0], y))
    with pytest.raises(ValueError, match="warmup_label_smoothing"):
        tr.cfg.replace(warmup_label_smoothing=1.0)


def test_fast_network_and_loss_terms_compile_without_graph_breaks(cifar_like):
    """torch._dynamo.explain: the fast preset's network (training and eval mode) and one
    network's ProMix terms (selection with LGA, debiased pseudo-labels, every loss, the priors'
    update) each trace into one graph. (The mixing pairs are drawn with a torch.Generator, which
    dynamo cannot trace; that draw stays outside a compiled graph.)"""
    from promix_tutorial.debias import debiased_pseudo_labels, update_class_prior
    net = build_model("airbench94", 10, 3, logit_scale=1 / 9).to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    for mode in (True, False):
        ex = torch._dynamo.explain(net.train(mode))(x)
        assert ex.graph_break_count == 0 and ex.graph_count == 1, ex.break_reasons
    cfg = fast(cifar_like)
    g = torch.Generator().manual_seed(0)
    B, C = 16, 10

    def heads():
        return losses.Heads(torch.randn(B, C, generator=g), torch.randn(B, C, generator=g))

    views = [losses.Views(heads(), heads()) for _ in range(2)]
    mixed = {"mix": losses.MixTerm(torch.randn(B, C, generator=g), torch.softmax(
        torch.randn(B, C, generator=g), 1), torch.rand(B, generator=g) < 0.5)}
    mixed["aux_mix"] = mixed["mix"]
    css, y = torch.rand(B, generator=g) < 0.3, torch.randint(0, C, (B,), generator=g)
    pri = torch.full((2, C), 0.1)

    def terms(views, mixed, css, y, prior_l, prior_u):
        probs = [v.weak.primary.softmax(1) for v in views]
        guess = losses.lga_guess_logits(0, views, prior_l, prior_u, cfg)
        sel = losses.select_labeled(css, probs[0], probs[1], y, guess, cfg, True)
        pseudo = debiased_pseudo_labels(views[0].weak.primary, prior_u[0], 0.8, 0.5)
        t = losses.promix_losses(views[0], mixed, sel, pseudo, prior_l[0], prior_u[0], cfg,
                                 1.0, 0.1)
        return t["total"], update_class_prior(prior_l[0], probs[0], 0.99, mask=sel.labeled)

    ex = torch._dynamo.explain(terms)(views, mixed, css, y, pri, pri)
    assert ex.graph_break_count == 0, ex.break_reasons


def test_fast_preset_values_and_the_archived_one():
    """The preset's values (docs/calibration.md#fast-preset): airbench94, batch 1024, 10 + 80
    epochs, LGA from a third of the ProMix epochs, an eval batch dividing both CIFAR splits; the
    reference profile still asks for the archived run's config, and configs saved before the
    new fields read them with the old behaviour."""
    cfg = make_config("fast", "cifar10", "sym:0.8")
    assert (cfg.model, cfg.batch_size, cfg.epochs, cfg.warmup_epochs) == ("airbench94", 1024, 90, 10)
    assert cfg.lga_start - cfg.warmup_epochs == round((cfg.epochs - cfg.warmup_epochs) / 3)
    assert 50_000 % cfg.eval_batch_size == 0 and 10_000 % cfg.eval_batch_size == 0
    assert cfg.nesterov and cfg.lr_per_step and cfg.lr_warmup_frac > 0 and cfg.lr_min == 0
    steps = cfg.epochs * (50_000 // cfg.batch_size)
    assert schedule.cosine_lr(cfg, cfg.lga_start, 0, 48) > 0.6 * cfg.lr  # still high at LGA
    assert 0.08 < 1 / (1 - cfg.prior_momentum) / ((cfg.epochs - cfg.warmup_epochs) * 48) < 0.12
    assert steps == 4320
    old = make_config("fast", "cifar10", "sym:0.8", **REFERENCE_FAST)
    assert (old.model, old.batch_size, old.epochs, old.logit_scale) == ("fast_cnn", 512, 60, 1.0)
    saved = {k: v for k, v in old.to_dict().items() if k not in ADDED_FIELDS}
    assert old.differences({**saved, "primary_dml": old.primary_dml,
                            "lga_guess": old.lga_guess, "logit_scale": 1.0}) == {}
    assert with_added_fields({})["mix_buckets"] == 0 and with_added_fields({})["eval_every"] == 1


def test_fast_design_counts_passes_and_predicts_the_archived_run(tmp_path):
    """benchmarks/fast_design.py: forward passes per image of a ProMix step are 2 networks x
    (weak + strong + the bucket's share of the batch), 2 in the warm-up; its H100 model,
    applied to the preset of the one H100 run, predicts that run's measured 278 s within 5%."""
    import importlib.util
    from pathlib import Path
    from promix_tutorial.config import ARCHIVED_FAST
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fast_design.py"
    spec = importlib.util.spec_from_file_location("fast_design", path)
    fd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fd)
    tr = fd._trainer("today", fd._random_npz(tmp_path, n=32), tmp_path, batch=16)
    quarter, whole = fd.step_flops(tr, "promix", 4), fd.step_flops(tr, "promix", 16)
    assert quarter["passes_per_image"] == 4.5 and whole["passes_per_image"] == 6.0
    assert fd.step_flops(tr, "warmup", None)["passes_per_image"] == 2.0
    assert quarter["flops_per_image"] < whole["flops_per_image"]
    cfg = make_config("fast", "cifar10", "sym:0.8", **ARCHIVED_FAST)
    p = fd.predict_h100(cfg, 1.0, 1.0, 1.0)
    run_s = cfg.warmup_epochs * p["warmup_epoch_s"] + (cfg.epochs - cfg.warmup_epochs) * \
        p["promix_epoch_s"]
    assert abs(run_s - 278) < 0.05 * 278
