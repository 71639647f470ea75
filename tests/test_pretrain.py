"""Self-supervised pretraining (promix_tutorial/pretrain.py) on scikit-learn's digits: the run
folder, resume, the manifest, feature quality, and using its start in a network."""
import json
import shutil

import pytest
import torch

from promix_tutorial import cli
from promix_tutorial import pretrain as P
from promix_tutorial.metrics import knn_accuracy
from promix_tutorial.models import build_model
from promix_tutorial.runs import RunExistsError, sha256_file


def tiny(**kw) -> P.PretrainConfig:
    return P.pretrain_config_for("tiny", "digits", **{
        **dict(epochs=6, warmup_epochs=1, checkpoint_every=3), **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted tiny pretraining, made through the module's command line."""
    out = tmp_path_factory.mktemp("pre") / "run"
    assert cli.main(["pretrain", "--preset", "tiny", "--dataset", "digits", "--out", str(out),
                     "--epochs", "6", "--set", "warmup_epochs=1", "--set", "checkpoint_every=3",
                     "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest


def test_config_follows_the_preset_and_names_bad_fields():
    cfg = P.pretrain_config_for("cpu", "cifar10", epochs=120)
    assert (cfg.model, cfg.model_widths, cfg.dataset, cfg.epochs) == \
        ("fast_cnn", (32, 64, 128), "cifar10", 120)
    assert (tiny().model, tiny().dataset) == ("digits_net", "digits")
    with pytest.raises(ValueError, match="PretrainConfig.method"):
        tiny(method="moco")
    with pytest.raises(ValueError, match="PretrainConfig.warmup_epochs"):
        tiny(warmup_epochs=6)
    with pytest.raises(ValueError, match="unknown PretrainConfig field.*'epoch'"):
        P.pretrain_config_for("tiny", "digits", epoch=3)


def test_views_are_seeded_images_in_range():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a = P.simclr_views(x, torch.Generator().manual_seed(3))
    b = P.simclr_views(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    grey = P.simclr_views(x, torch.Generator().manual_seed(3), p_grey=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5)
    assert torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    one = P.simclr_views(x[:, :1], torch.Generator().manual_seed(3), flip=False)
    assert one.shape == (16, 1, 32, 32)


def test_knn_accuracy_votes_by_similarity():
    bank = torch.nn.functional.normalize(torch.tensor([[1., 0], [0.9, 0.1], [0, 1], [0.1, 1]]),
                                         dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.nn.functional.normalize(torch.tensor([[1., 0.05], [0.05, 1], [1, 0.2]]), dim=1)
    assert knn_accuracy(bank, labels, queries, torch.tensor([0, 1, 0]), 2, k=2) == 1.0
    assert knn_accuracy(bank, labels, queries, torch.tensor([1, 1, 1]), 2, k=2) == \
        pytest.approx(1 / 3)


def test_manifest_records_the_run_and_each_files_checksum(run):
    out, m = run
    assert json.loads((out / "manifest.json").read_text()) == m
    assert (m["model"], m["widths"], m["in_channels"], m["num_classes"]) == \
        ("digits_net", None, 1, 10)
    assert m["data"]["dataset"] == "digits" and m["data"]["images"] == 1347
    assert m["data"]["labels"] == "not read" and m["data"]["rule"] == "all"
    assert (m["epochs"], m["epochs_done"], m["batch_size"], m["method"]) == (6, 6, 128, "simclr")
    assert m["seconds"] > 0 and m["hardware"]["torch"] == torch.__version__
    assert m["hardware"]["threads"] >= 1 and m["hardware"]["name"]
    assert "--preset tiny" in m["calls"][0]["command"]
    assert m["knn"]["queries"]["images"] == 450 and m["knn"]["bank"]["images"] == 1347
    assert [c["epoch"] for c in m["checkpoints"]] == [0, 3, 6]
    assert sorted(m["files"]) == ["backbone.pt", "backbone_e003.pt", "backbone_e006.pt"]
    for name, digest in m["files"].items():
        assert sha256_file(out / name) == digest
    sd = torch.load(out / "backbone.pt", weights_only=True)
    assert sd and not any(k.startswith("heads.") for k in sd)


def test_pretrained_features_beat_random_ones(run):
    knn = [c["knn_acc"] for c in run[1]["checkpoints"]]
    assert knn[-1] > knn[0] + 0.01, knn


def test_resume_after_an_interruption_equals_an_uninterrupted_run(run, tmp_path, monkeypatch):
    original = P.Pretrainer.run_epoch

    def interrupted(self, epoch):
        if epoch == 4:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(P.Pretrainer, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        P.pretrain(tiny(), tmp_path, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 4
    monkeypatch.setattr(P.Pretrainer, "run_epoch", original)
    with pytest.raises(RunExistsError, match="--resume"):
        P.pretrain(tiny(), tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="lr"):
        P.pretrain(tiny(lr=0.01), tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before  # nothing was overwritten
    resumed = P.pretrain(tiny(), tmp_path, resume=True, progress=False)
    full = run[1]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert [c["knn_acc"] for c in resumed["checkpoints"]] == \
        [c["knn_acc"] for c in full["checkpoints"]]
    a = torch.load(run[0] / "backbone.pt", weights_only=True)
    b = torch.load(tmp_path / "backbone.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [c["from_epoch"] for c in resumed["calls"]] == [0, 4]


def test_a_start_of_another_network_or_data_is_refused(run):
    _, m = run
    P.check_start(m, model="digits_net", model_widths=None, dataset="digits", in_channels=1)
    for kw in (dict(model="fast_cnn", model_widths=(32, 64, 128)), dict(dataset="cifar10"),
               dict(in_channels=3)):
        args = {**dict(model="digits_net", model_widths=None, dataset="digits", in_channels=1),
                **kw}
        with pytest.raises(ValueError, match=r"^the start was pretrained for digits_net on digits "
                                             r"\(1 input channels\), but this run trains .*"
                                             r"`promix pretrain --preset tiny"):
            P.check_start(m, preset="tiny", **args)
    fast = {**m, "model": "fast_cnn", "widths": [64, 256, 256], "in_channels": 3,
            "data": {"dataset": "cifar10"}}
    P.check_start(fast, model="fast_cnn", model_widths=None, dataset="cifar10", in_channels=3)
    with pytest.raises(ValueError, match=r"widths \(64, 256, 256\).*widths \(32, 64, 128\)"):
        P.check_start(fast, model="fast_cnn", model_widths=(32, 64, 128), dataset="cifar10",
                      in_channels=3)


def test_apply_start_loads_the_backbone_and_leaves_the_heads_fresh(run):
    sd, m = P.load_start(run[0])
    assert m["loaded"] == {"file": "backbone.pt", "sha256": m["files"]["backbone.pt"],
                           "epoch": 6}
    torch.manual_seed(1)
    net = build_model("digits_net", 10, 1)
    heads = {k: v.clone() for k, v in net.state_dict().items() if k.startswith("heads.")}
    P.apply_start(net, sd)
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in heads.items())
    assert all(torch.equal(after[k], v) for k, v in sd.items())
    with pytest.raises(ValueError, match="1 backbone entries are missing"):
        P.apply_start(build_model("digits_net", 10, 1), {k: v for k, v in list(sd.items())[1:]})
    with pytest.raises(ValueError, match="another shape, e.g. .'body.0.weight'"):
        P.apply_start(build_model("digits_net", 10, 3), sd)  # 3 input channels: other shapes


def test_a_changed_backbone_file_is_refused(run, tmp_path):
    for f in ("backbone_e003.pt", "manifest.json"):
        shutil.copy(run[0] / f, tmp_path / f)
    assert P.load_start(tmp_path / "backbone_e003.pt")[1]["loaded"]["epoch"] == 3
    data = bytearray((tmp_path / "backbone_e003.pt").read_bytes())
    data[-30] ^= 1
    (tmp_path / "backbone_e003.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        P.load_start(tmp_path / "backbone_e003.pt")
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json does not exist"):
        P.load_start(tmp_path / "backbone_e003.pt")


def test_augment_speed_benchmark_writes_both_pipelines(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "pretrain_augment_speed.py"
    spec = importlib.util.spec_from_file_location("pretrain_augment_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--batch", "8", "--repeat", "2", "--out", str(tmp_path / "speed.json")])
    assert json.loads((tmp_path / "speed.json").read_text()) == out
    assert len(out["rows"]) == 2 and all(r["images_per_s_cpu"] > 0 for r in out["rows"].values())
    assert out["info"]["hardware"]["threads"] == 1 and "--batch 8" in out["info"]["command"]
    assert "own / kornia" in capsys.readouterr().out


def test_an_airbench_start_keeps_the_whitening_stem_computed_from_its_images(tmp_path):
    """airbench's frozen stem is computed from the pretraining images (as training computes
    it from the training images), stays frozen, and travels in the start."""
    import numpy as np
    from promix_tutorial.models import whitening_weights
    rng, npz = np.random.default_rng(0), tmp_path / "images.npz"
    np.savez(npz, x_train=rng.integers(0, 256, (128, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(128) % 10, x_test=rng.integers(0, 256, (32, 32, 32, 3),
                                                              dtype=np.uint8),
             y_test=np.arange(32) % 10)
    cfg = P.PretrainConfig(dataset=str(npz), model="airbench94", model_widths=None, epochs=1,
                           warmup_epochs=0, batch_size=64, knn_bank=64, device="cpu")
    run = P.Pretrainer(cfg, tmp_path / "ab", progress=False)
    expected = whitening_weights(run.x, *run.mean_std)
    assert torch.equal(run.learner["net"].whiten.weight.detach().cpu(), expected.cpu())
    run.fit()
    state, manifest = P.load_start(tmp_path / "ab")
    assert manifest["model"] == "airbench94"
    assert torch.equal(state["whiten.weight"], expected.cpu())
