"""Tests of promix_tutorial.data: every source, validation errors, CIFAR-N loading."""
import io
import os
import pickle

import numpy as np
import pytest
import torch

from promix_tutorial import data as D


def _write_npz(path, n_train=20, n_test=10, hw=8, c=3, classes=4, **override):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (n_train, hw, hw, c), dtype=np.uint8),
                  y_train=rng.integers(0, classes, n_train).astype(np.int64),
                  x_test=rng.integers(0, 256, (n_test, hw, hw, c), dtype=np.uint8),
                  y_test=rng.integers(0, classes, n_test).astype(np.int64))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_digits_shapes_and_fixed_split():
    a, b = D.load_digits(), D.load_digits()
    assert a.x_train.shape == (1347, 8, 8, 1) and a.x_test.shape == (450, 8, 8, 1)
    assert a.x_train.dtype == np.uint8 and a.y_train.dtype == np.int64
    assert a.x_train.max() == 255 and a.num_classes == 10 and a.classes[3] == "3"
    np.testing.assert_array_equal(a.y_train, b.y_train)
    # stratified: every class in both splits in about the same proportion
    assert np.all(np.bincount(a.y_test, minlength=10) >= 40)
    assert D.load_dataset("digits").name == "digits"


def test_npz_roundtrip_and_train_index(tmp_path):
    p = _write_npz(tmp_path / "toy.npz")
    ds = D.load_npz(p)
    assert ds.name == "toy" and ds.num_classes == int(ds.y_train.max()) + 1
    np.testing.assert_array_equal(ds.train_index, np.arange(20))
    p2 = _write_npz(tmp_path / "toy2.npz", train_index=np.arange(100, 120))
    assert D.load_npz(p2).train_index[0] == 100
    assert D.load_dataset(str(p)).x_train.shape == (20, 8, 8, 3)


@pytest.mark.parametrize("override, match", [
    (dict(y_test=None), "lacks"),
    (dict(x_train=np.zeros((20, 8, 8, 3), np.float32)), "uint8"),
    (dict(x_train=np.zeros((20, 8, 8), np.uint8)), r"\(N, H, W, C\)"),
    (dict(y_train=np.arange(19)), "same length"),
    (dict(x_test=np.zeros((10, 4, 4, 3), np.uint8)), "differ in shape"),
    (dict(y_train=np.full(20, -1)), r"\[0, "),
    (dict(y_train=np.zeros((20, 2), np.int64)), "1-D integer"),
])
def test_npz_validation_errors(tmp_path, override, match):
    p = _write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(ValueError, match=match):
        D.load_npz(p)


def test_npz_labels_out_of_range_for_cifar10(tmp_path, monkeypatch):
    p = _write_npz(tmp_path / "c.npz", y_train=np.full(20, 10))
    monkeypatch.setenv("PROMIX_CIFAR10_NPZ", str(p))
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        D.load_dataset("cifar10")


def test_cifar10_from_env_npz(tmp_path, monkeypatch):
    p = _write_npz(tmp_path / "c10.npz", hw=32, classes=10)
    monkeypatch.setenv("PROMIX_CIFAR10_NPZ", str(p))
    ds = D.load_dataset("cifar10")
    assert ds.name == "cifar10" and ds.classes == D.CIFAR10_CLASSES
    monkeypatch.setenv("PROMIX_CIFAR10_NPZ", str(tmp_path / "missing.npz"))
    with pytest.raises(D.DataUnavailableError, match="does not exist"):
        D.load_dataset("cifar10")


def test_cifar_offline_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMIX_CIFAR10_NPZ", raising=False)
    with pytest.raises(D.DataUnavailableError) as e:
        D.load_dataset("cifar10", root=tmp_path, download=False)
    msg = str(e.value)
    assert str(tmp_path) in msg and "PROMIX_CIFAR10_NPZ" in msg and "cifar-10-python.tar.gz" in msg
    with pytest.raises(D.DataUnavailableError, match="cifar-100-python"):
        D.load_dataset("cifar100", root=tmp_path, download=False)


def test_unknown_dataset_and_data_dir(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="cifar10, cifar100, digits"):
        D.load_dataset("mnist")
    monkeypatch.setenv("PROMIX_DATA_DIR", str(tmp_path))
    assert D.data_dir() == tmp_path
    assert D.data_dir("/x") == D.Path("/x")


def test_subset_is_stratified_and_keeps_index():
    ds = D.load_digits()
    sub = ds.subset(200, 100, seed=1)
    assert len(sub.y_train) == 200 and len(sub.y_test) == 100
    assert np.all(np.abs(np.bincount(sub.y_train, minlength=10) - 20) <= 1)
    np.testing.assert_array_equal(ds.y_train[sub.train_index], sub.y_train)
    np.testing.assert_array_equal(sub.y_train, ds.subset(200, 100, seed=1).y_train)
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        ds.subset(5)


def test_cifar_n_real_files_rates(cifar_n_dir, cifar10_train_labels):
    rates = {}
    for kind in ("aggre", "random1", "worst"):
        lab = D.load_cifar_n(kind, cifar10_train_labels, path=cifar_n_dir)
        rates[kind] = (lab.noisy != lab.clean).mean()
    # the published table says 9.03% for aggre; the distributed file gives 9.01%
    assert rates["aggre"] == pytest.approx(0.0901, abs=5e-5)
    assert rates["random1"] == pytest.approx(0.1723, abs=5e-5)
    assert rates["worst"] == pytest.approx(0.4021, abs=5e-5)
    c100 = D.load_cifar_n("noisy", path=cifar_n_dir / "CIFAR-100_human.pt")
    assert (c100.noisy != c100.clean).mean() == pytest.approx(0.4020, abs=5e-5)


def test_cifar_n_misaligned_is_an_error(cifar_n_dir, cifar10_train_labels):
    shuffled = np.random.default_rng(0).permutation(cifar10_train_labels)
    with pytest.raises(ValueError, match="do not line up"):
        D.load_cifar_n("worst", shuffled, path=cifar_n_dir)
    idx = np.arange(0, 50_000, 7)
    sub = D.load_cifar_n("worst", cifar10_train_labels[idx], idx, path=cifar_n_dir)
    assert len(sub.noisy) == len(idx)
    with pytest.raises(ValueError, match="do not line up"):  # first-N assumption checked too
        D.load_cifar_n("worst", cifar10_train_labels[idx], path=cifar_n_dir)
    with pytest.raises(ValueError, match="unknown CIFAR-N"):
        D.load_cifar_n("worse", path=cifar_n_dir)


def test_cifar_n_refuses_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "CIFAR-10_human.pt"
    with open(p, "wb") as f:
        torch.save({"clean_label": Evil()}, f)
    with pytest.raises(ValueError, match="loaded safely"):
        D.load_cifar_n("worst", path=p)
    torch.save([1, 2], p)
    with pytest.raises(ValueError, match="expected a dict"):
        D.load_cifar_n("worst", path=p)


def test_cifar_n_missing_file_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMIX_CIFARN_DIR", raising=False)
    with pytest.raises(D.DataUnavailableError, match="not found"):
        D.load_cifar_n("worst", root=tmp_path, download=False)


def test_cifar_n_download_checks_sha256(tmp_path, monkeypatch, cifar_n_dir):
    monkeypatch.delenv("PROMIX_CIFARN_DIR", raising=False)
    payload = {"bytes": b"not the label file"}

    class FakeResponse(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(D.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload["bytes"]))
    with pytest.raises(D.DataUnavailableError, match="SHA-256"):
        D.load_cifar_n("worst", root=tmp_path)
    assert not list((tmp_path / "cifar-n").iterdir())  # nothing half-written left behind
    payload["bytes"] = (cifar_n_dir / "CIFAR-10_human.pt").read_bytes()
    lab = D.load_cifar_n("worst", root=tmp_path)
    assert (tmp_path / "cifar-n" / "CIFAR-10_human.pt").is_file() and len(lab.noisy) == 50_000


def test_offline_cifar10_arrays_file(cifar10_npz):
    ds = D.load_npz(cifar10_npz, name="cifar10", classes=D.CIFAR10_CLASSES)
    assert ds.x_train.shape[1:] == (32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)


def _fake_cifar_python(folder, n=3, seed=0):
    """A small CIFAR-10 python-version folder (data_batch_1..5, test_batch, batches.meta) in the
    format torchvision downloads; returns the images and labels it holds, in order."""
    import pickle
    rng = np.random.default_rng(seed)
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        y = rng.integers(0, 10, n).tolist()
        (d / name).write_bytes(pickle.dumps({b"data": x, b"labels": y}))
        xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(y))
    names = [c.encode() for c in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                  "horse", "ship", "truck")]
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return d, np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


@pytest.mark.parametrize("as_tarball", [True, False])
def test_promix_data_round_trip(tmp_path, capsys, as_tarball):
    """`promix data` turns the archive torchvision downloads (or its folder) into an arrays file
    that load_npz / PROMIX_CIFAR10_NPZ read back unchanged, in the original order."""
    import tarfile
    from promix_tutorial import cli
    folder, x_tr, y_tr, x_te, y_te = _fake_cifar_python(tmp_path / "dl")
    source = folder
    if as_tarball:
        source = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    out = tmp_path / "c10.npz"
    assert cli.main(["data", "--source", str(source), "--out", str(out)]) == 0
    assert "PROMIX_CIFAR10_NPZ" in capsys.readouterr().out
    ds = D.load_npz(out)
    assert np.array_equal(ds.x_train, x_tr) and np.array_equal(ds.y_train, y_tr)
    assert np.array_equal(ds.x_test, x_te) and np.array_equal(ds.y_test, y_te)
    assert ds.classes[9] == "truck" and ds.x_train.shape == (15, 32, 32, 3)
    # not a CIFAR archive: one line, exit 2, nothing written
    (tmp_path / "junk").mkdir()
    assert cli.main(["data", "--source", str(tmp_path / "junk"), "--out",
                     str(tmp_path / "no.npz")]) == 2
    assert "data_batch" in capsys.readouterr().err and not (tmp_path / "no.npz").exists()


def test_cifar_n_tests_honour_promix_cifarn_dir(tmp_path, monkeypatch):
    """The CIFAR-N tests look where README tells users to put the files ($PROMIX_CIFARN_DIR)
    first, and a skip says where they looked and what to set."""
    from conftest import find_cifar_n_dir
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "CIFAR-10_human.pt").write_bytes(b"x")
    monkeypatch.setenv("PROMIX_CIFARN_DIR", str(tmp_path / "n"))
    assert find_cifar_n_dir() == (tmp_path / "n", "")
    monkeypatch.setenv("PROMIX_CIFARN_DIR", str(tmp_path / "empty"))
    import conftest
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "noshared")
    monkeypatch.setattr(conftest, "REPO", tmp_path / "norepo")
    d, why = find_cifar_n_dir()
    assert d is None
    assert str(tmp_path / "empty") in why and "set PROMIX_CIFARN_DIR" in why
