"""A self-supervised start (TrainConfig.init): both peer networks and the CE baseline start from
the pretrained backbone with fresh heads; a start that does not fit, or changed since the config
recorded it, is refused before training; the checksum decides which finished runs are reused."""
import json

import pytest
import torch

from promix_tutorial import cli, engine
from promix_tutorial import pretrain as P
from promix_tutorial.config import make_config, start_checksum
from promix_tutorial.runs import find_finished_run


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A few epochs of SimCLR on the digits for the tiny preset's network."""
    out = tmp_path_factory.mktemp("start") / "digits"
    P.pretrain(P.pretrain_config_for("tiny", "digits", epochs=2, warmup_epochs=1,
                                     checkpoint_every=1), out, progress=False)
    return out


def tiny(**kw):
    return make_config("tiny", "digits", "sym:0.5", **{
        **dict(epochs=3, warmup_epochs=1, lga_start=2), **kw})


def _backbone(net):
    return {k: v for k, v in net.state_dict().items() if not k.startswith("heads.")}


def test_the_config_records_the_start_and_its_checksum(start):
    cfg = tiny(init=str(start))
    assert cfg.init_sha256 == start_checksum(start) == start_checksum(start / "backbone.pt")
    assert tiny().init == "scratch" and tiny().init_sha256 is None
    with pytest.raises(ValueError, match="no start at"):
        tiny(init=str(start / "missing.pt"))
    with pytest.raises(ValueError, match="init_sha256"):
        tiny().replace(init=str(start))  # a path without its checksum
    # the checksum, not the path, is what makes two configs the same
    assert not cfg.differences({**cfg.to_dict(), "init": "/elsewhere/backbone.pt"})
    assert "init_sha256" in cfg.differences(tiny().to_dict())


@pytest.mark.parametrize("method", ["promix", "ce"])
def test_every_network_starts_from_the_backbone_with_its_own_fresh_heads(start, tmp_path,
                                                                       method):
    state, _ = P.load_start(start)
    trainer = engine.Trainer(tiny(init=str(start), method=method), tmp_path, progress=False)
    scratch = engine.Trainer(tiny(method=method), tmp_path / "s", progress=False)
    for net, plain in zip(trainer.nets, scratch.nets):
        got = _backbone(net)
        assert all(torch.equal(got[k], state[k].to(got[k].dtype)) for k in state)
        # the heads are initialised as from scratch (same seed, same draws)
        assert torch.equal(net.heads.primary.weight, plain.heads.primary.weight)
    if method == "promix":  # the two peers' heads differ
        assert not torch.equal(trainer.nets[0].heads.primary.weight,
                               trainer.nets[1].heads.primary.weight)
    hist = trainer.fit()
    assert len(hist) == 3 and hist.config["init_sha256"] == start_checksum(start)


def test_a_start_for_another_network_is_refused_before_training(start, tmp_path):
    other = tmp_path / "fast_cnn"
    P.pretrain(P.pretrain_config_for("tiny", "digits", model="fast_cnn", model_widths=(8, 16),
                                     epochs=1, warmup_epochs=0), other, progress=False)
    with pytest.raises(ValueError, match="pretrained for fast_cnn widths \\(8, 16\\) on digits"):
        engine.Trainer(tiny(init=str(other)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "history.json").exists()
    # on the command line: one line, exit status 2, nothing written
    argv = ["train", "--dataset", "digits", "--preset", "tiny", "--quiet", "--epochs", "2",
            "--init", str(other), "--out", str(tmp_path / "cli")]
    assert cli.main(argv) == 2
    assert not (tmp_path / "cli").exists()


def test_a_start_changed_after_the_config_is_refused(start, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("backbone.pt", "manifest.json"):
        (copy / f).write_bytes((start / f).read_bytes())
    cfg = tiny(init=str(copy))
    manifest = json.loads((copy / "manifest.json").read_text())
    state = torch.load(copy / "backbone.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1
    torch.save(state, copy / "backbone.pt")
    from promix_tutorial.runs import sha256_file
    manifest["files"]["backbone.pt"] = sha256_file(copy / "backbone.pt")  # a consistent copy
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not the one this config recorded"):
        engine.Trainer(cfg, tmp_path / "run", progress=False)


def test_finished_runs_are_reused_only_for_the_same_start(start, tmp_path):
    root = tmp_path / "runs"
    cfg = tiny(init=str(start), epochs=2)
    engine.train(cfg, root / "from_start", progress=False)
    assert find_finished_run(cfg, root) == root / "from_start"
    assert find_finished_run(tiny(epochs=2), root) is None


def test_each_fig3_rule_trains_as_its_own_run(tmp_path):
    """TrainConfig.selection: the GMM and small-loss rules of Fig. 3 replace ProMix's base
    selection (MHCS off), everything else of the loop as it is; each names the rule's clean
    set in its records like CSS's."""
    from promix_tutorial.config import SELECTION_RULES
    from promix_tutorial.selection import select_clean
    assert tiny(selection="gmm").use_mhcs is False and tiny().use_mhcs is True
    with pytest.raises(ValueError, match="TrainConfig.selection"):
        tiny(selection="jocor")
    with pytest.raises(ValueError, match="forget_rate"):
        tiny(selection="small_loss", forget_rate=1.0)
    counts = {}
    for rule in SELECTION_RULES:
        select_clean(rule, torch.rand(30), torch.arange(30) % 3, 3)  # every rule is known there
        hist = engine.train(tiny(selection=rule, forget_rate=0.6, gmm_threshold=0.5),
                            tmp_path / rule, progress=False)
        counts[rule] = [r["css_next"]["count"] for r in hist.records]
    n = hist.info["n_train"]
    assert all(c == n - int(0.6 * n + 0.5) or c == int(0.4 * n) for c in counts["small_loss"])
    assert counts["gmm"] != counts["small_loss"] != counts["promix"]


def test_the_shipped_cpu_start_loads_offline_checksummed_and_fits_the_cpu_network():
    """`cpu-simclr` ships inside the package (at most 5 MB with its manifest): its file is the
    one its manifest lists, the cpu preset's config records that checksum, and the weights fit
    the cpu preset's network; a start that changed is refused."""
    from promix_tutorial.config import SHIPPED_STARTS, start_file
    from promix_tutorial.models import build_model
    f = start_file("cpu-simclr")
    assert set(SHIPPED_STARTS) == {"cpu-simclr"}
    assert f.stat().st_size + (f.parent / "manifest.json").stat().st_size <= 5_000_000
    state, manifest = P.load_start("cpu-simclr")
    assert manifest["loaded"]["sha256"] == manifest["files"][f.name] == start_checksum(f)
    cfg = make_config("cpu", "cifar10", "sym:0.8", init="cpu-simclr")
    assert cfg.init_sha256 == manifest["loaded"]["sha256"]
    P.check_start(manifest, model=cfg.model, model_widths=cfg.model_widths, dataset="cifar10",
                  in_channels=3)
    net = build_model(cfg.model, 10, in_channels=3, widths=cfg.model_widths)
    P.apply_start(net, state)
    assert all(torch.equal(_backbone(net)[k], v) for k, v in state.items())
    epoch = manifest["loaded"]["epoch"]
    knn = next(c["knn_acc"] for c in manifest["checkpoints"] if c["epoch"] == epoch)
    assert manifest["data"]["images"] == 50_000 and knn > manifest["checkpoints"][0]["knn_acc"]
    with pytest.raises(ValueError, match="pretrained for fast_cnn widths \\(32, 64, 128\\)"):
        P.check_start(manifest, model="fast_cnn", model_widths=(16, 32, 64), dataset="cifar10",
                      in_channels=3)


def test_the_cpu_preset_trains_at_a_lower_peak_rate_from_a_start():
    """From a start the cpu preset's peak rate is 0.01 (docs/calibration.md#cpu-start-lr), from
    scratch 0.1; an explicit lr still wins, and other presets keep theirs."""
    assert make_config("cpu", "cifar10", "sym:0.8").lr == 0.1
    assert make_config("cpu", "cifar10", "sym:0.8", init="cpu-simclr").lr == 0.01
    assert make_config("cpu", "cifar10", "sym:0.8", init="cpu-simclr", lr=0.1).lr == 0.1
    assert make_config("cpu", "cifar10", "sym:0.9", method="ce", init="cpu-simclr").lr == 0.01
    assert make_config("tiny", "digits", "sym:0.5").lr == make_config("tiny", "digits", "sym:0.5",
                                                                      lr=0.05).lr
