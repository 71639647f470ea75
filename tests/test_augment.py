"""Batched, device-side augmentation: shapes, dtypes, per-sample randomness, determinism and
hand-checked values of each op."""
import numpy as np
import pytest
import torch

from promix_tutorial import augment as A


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch():
    return torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen(1))


def test_normalize_matches_formula():
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)  # 1 x 1 x 1 x 2
    out = A.normalize(x, (0.5,), (0.25,))
    assert torch.allclose(out, torch.tensor([[[[-2.0, 2.0]]]]))
    assert A.normalize(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), A.CIFAR10_MEAN,
                       A.CIFAR10_STD).dtype == torch.float32


def test_random_crop_is_a_shifted_window_per_sample():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    out = A.random_crop(x, 1, gen())
    padded = torch.nn.functional.pad(x[0], (1, 1, 1, 1))[0]
    windows = {tuple(padded[i:i + 4, j:j + 4].flatten().tolist()) for i in range(3) for j in range(3)}
    seen = {tuple(o[0].flatten().tolist()) for o in out}
    assert seen <= windows and len(seen) == 9  # every one of the 9 offsets, nothing else


def test_flip_flips_about_half(batch):
    out = A.random_flip(batch, gen())
    flipped = [(o == b.flip(2)).all().item() for o, b in zip(out, batch)]
    same = [(o == b).all().item() for o, b in zip(out, batch)]
    assert all(f or s for f, s in zip(flipped, same)) and 15 < sum(flipped) < 49


def test_weak_and_strong_keep_shape_dtype_and_are_deterministic(batch):
    for fn in (A.weak_augment, A.strong_augment):
        a, b = fn(batch, generator=gen(3)), fn(batch, generator=gen(3))
        assert a.shape == batch.shape and a.dtype == torch.uint8 and torch.equal(a, b)
        assert not torch.equal(a, fn(batch, generator=gen(4)))
    digits = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8, generator=gen())
    assert A.strong_augment(digits, pad=1, flip=False, generator=gen()).shape == digits.shape


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="uint8"):
        A.weak_augment(torch.zeros(2, 3, 8, 8), generator=gen())


def test_recipe_ops_and_ranges():
    assert len(A.OPS) == 14
    assert A.OP_RANGES["Posterize"] == (4, 8) and A.OP_RANGES["Rotate"] == (-30, 30)
    assert A.OP_RANGES["Solarize"] == (0, 256) and A.OP_RANGES["ShearX"] == (-0.3, 0.3)
    assert A.OP_RANGES["Brightness"] == (0.05, 0.95)


def test_pixel_ops_by_hand():
    x = torch.tensor([0, 100, 200, 255], dtype=torch.uint8).view(1, 1, 2, 2).repeat(2, 3, 1, 1)
    v = torch.tensor([0.5, 1.0])
    bright = A.apply_op("Brightness", x, v)
    assert bright[0, 0].flatten().tolist() == [0, 50, 100, 128] and torch.equal(bright[1], x[1])
    post = A.apply_op("Posterize", x, torch.tensor([4.0, 8.0]))
    assert post[0, 0].flatten().tolist() == [0, 96, 192, 240] and torch.equal(post[1], x[1])
    sol = A.apply_op("Solarize", x, torch.tensor([128.0, 256.0]))
    assert sol[0, 0].flatten().tolist() == [0, 100, 55, 0] and torch.equal(sol[1], x[1])
    contrast = A.apply_op("Contrast", x, torch.tensor([0.0, 1.0]))
    assert (contrast[0] == contrast[0, 0, 0, 0]).all() and torch.equal(contrast[1], x[1])
    grey = torch.full((1, 3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(A.apply_op("Color", grey, torch.tensor([0.3])), grey)  # already grey


def test_geometric_ops_move_pixels_and_fill_grey():
    x = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    x[:, :, :, 0] = 255  # a white left column
    t = A.apply_op("TranslateX", x, torch.tensor([0.25, 0.0]))
    assert t[1].equal(x[1])                      # zero translation is the identity
    assert (t[0, 0, :, -2:] == A.GREY).all()     # shifted in from the right: grey fill
    r = A.apply_op("Rotate", x, torch.tensor([0.0, 0.0]))
    assert torch.equal(r, x)


def test_rand_augment_draws_per_sample_ops(batch):
    same = batch[:1].repeat(64, 1, 1, 1)
    out = A.rand_augment(same, generator=gen(5))
    assert len({o.numpy().tobytes() for o in out}) > 40  # different ops per sample


def test_cutout_squares_are_grey_and_bounded():
    x = torch.zeros(500, 3, 32, 32, dtype=torch.uint8)
    out = A.cutout(x, max_frac=0.5, generator=gen())
    area = (out[:, 0] == A.GREY).sum((1, 2)).float()
    assert area.max() <= 16 * 16 and area.min() == 0 and 30 < area.mean() < 90
    assert ((out == 0) | (out == A.GREY)).all()


def test_mixup_is_convex_and_deterministic():
    x = torch.randn(10, 3, 4, 4, generator=gen())
    y = torch.eye(10)
    xm, ym, lam = A.mixup(x, y, alpha=4.0, generator=gen(2))
    assert 0.5 <= lam <= 1 and torch.allclose(ym.sum(1), torch.ones(10))
    assert (ym.max(1).values >= lam - 1e-6).all()
    xm2, _, lam2 = A.mixup(x, y, alpha=4.0, generator=gen(2))
    assert lam == lam2 and torch.equal(xm, xm2)
    lams = [A.mixup(x, y, alpha=4.0, generator=gen(s))[2] for s in range(300)]
    assert 0.6 < np.mean(lams) < 0.7  # E[max(l, 1-l)] for Beta(4, 4) is about 0.65


def test_fmix_mask_keeps_lambda_fraction():
    m = A.fmix_mask(32, 32, 0.3, generator=gen())
    assert m.shape == (32, 32) and int(m.sum()) == round(0.3 * 1024)
    x = torch.randn(6, 3, 32, 32, generator=gen())
    xm, ym, lam = A.fmix(x, torch.eye(6), generator=gen(1))
    assert xm.shape == x.shape and torch.allclose(ym.sum(1), torch.ones(6)) and 0 <= lam <= 1


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_strong_augment_on_cuda(batch):
    g = torch.Generator(device="cuda").manual_seed(0)
    out = A.strong_augment(batch.cuda(), generator=g)
    assert out.is_cuda and out.dtype == torch.uint8


# ----------------------------------------------------------------------------- no host syncs

SYNC_OPS = ("aten::nonzero", "aten::_local_scalar_dense", "aten::item", "aten::masked_select",
            "aten::index_put_")


def sync_ops_in(fn) -> dict:
    """The calls of ``fn()`` that make a host wait for a GPU (boolean-mask indexing goes through
    nonzero/index_put_, .item()/int()/bool() through _local_scalar_dense), counted on the CPU
    with the profiler: the same calls synchronise on CUDA."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key: e.count for e in prof.key_averages() if e.key in SYNC_OPS}


def test_rand_augment_two_paths_agree(batch):
    a = A.rand_augment(batch, generator=gen(7), whole_batch=False)
    b = A.rand_augment(batch, generator=gen(7), whole_batch=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, batch)


def test_whole_batch_strong_view_has_no_host_sync(batch):
    assert sync_ops_in(lambda: A.strong_augment(batch, generator=gen(), whole_batch=True)) == {}
    # the subset path does synchronise (that is why CUDA uses the other one)
    assert sync_ops_in(lambda: A.rand_augment(batch, generator=gen(), whole_batch=False))


def test_smooth_matches_torchvision(batch):
    from torchvision.transforms.v2 import functional as TF
    assert torch.equal(A.smooth(batch), TF.adjust_sharpness(batch, 0.0))
    digits = batch[:, :1, :8, :8].contiguous()
    assert torch.equal(A.smooth(digits), TF.adjust_sharpness(digits, 0.0))


def test_autocontrast_matches_torchvision(batch):
    from torchvision.transforms.v2 import functional as TF
    flat = batch.clone()
    flat[3] = 9  # a constant image: left as it is
    assert torch.equal(A.autocontrast(flat), TF.autocontrast(flat))


def test_labeled_pairs_mix_inside_the_labeled_set():
    labeled = torch.rand(50, generator=gen(1)) < 0.4
    n_l = int(labeled.sum())
    first, second, valid = A.labeled_pairs(labeled, gen(2))
    assert int(valid.sum()) == n_l and valid[:n_l].all()          # labeled positions first
    assert labeled[first[:n_l]].all() and labeled[second[:n_l]].all()
    assert sorted(first[:n_l].tolist()) == sorted(second[:n_l].tolist()) \
        == labeled.nonzero().flatten().tolist()
    assert not torch.equal(first[:n_l], second[:n_l])             # independent orders
    assert sync_ops_in(lambda: A.labeled_pairs(labeled, gen(2))) == {}


def test_mix_lambdas_are_beta_max_and_seeded():
    lam = A.mix_lambdas(4.0, 2000, [0, 3])
    assert lam.min() >= 0.5 and lam.max() <= 1 and 0.6 < lam.mean() < 0.7
    assert np.array_equal(lam, A.mix_lambdas(4.0, 2000, [0, 3]))
    xm, ym, used = A.mixup(torch.ones(4, 2), torch.eye(4)[:, :2].clone(), generator=gen(),
                           lam=0.75)
    assert used == 0.75 and torch.allclose(ym.sum(1), torch.eye(4)[:, :2].sum(1))


def _device_data(x):
    from promix_tutorial.devices import DeviceData
    y = torch.zeros(len(x), dtype=torch.long)
    return DeviceData(x, y, y, x[:2], y[:2], (0.5,) * 3, (0.25,) * 3, pad=4, flip=True,
                      num_classes=10)


def test_views_in_chunks_hand_each_batch_its_own_images(batch, monkeypatch):
    """With the augmentation replaced by the identity, every batch gets the rows of its own
    indices, from ``chunks`` calls per epoch (the last group may be smaller)."""
    from promix_tutorial.devices import views_in_chunks
    calls = []
    monkeypatch.setattr(A, "weak_augment", lambda x, **kw: calls.append(len(x)) or x)
    monkeypatch.setattr(A, "strong_augment", lambda x, **kw: x + 1)
    perm = torch.randperm(64, generator=gen(2))
    batches = [perm[i * 9:(i + 1) * 9] for i in range(7)]
    views = list(views_in_chunks(_device_data(batch), batches, 3, True, gen()))
    assert calls == [27, 27, 9] and len(views) == 7
    for idx, (w, s) in zip(batches, views):
        assert torch.equal(w, batch[idx]) and torch.equal(s, batch[idx] + 1)
    weak_only = list(views_in_chunks(_device_data(batch), batches, 2, False, gen()))
    assert all(s is None for _, s in weak_only)


def test_views_in_chunks_have_the_per_batch_distribution():
    """Views made in chunks cannot equal per-batch views for the same generator state (each op
    draws a whole chunk's numbers in one call), so the test compares their distributions: one
    image, 512 strong views each way; per view its mean pixel, its share of grey pixels (Cutout,
    geometric fill) and its mean distance from the image agree within 4 standard errors, and
    the chunked views are not a copy of the per-batch ones; no call waits for a GPU."""
    from promix_tutorial.devices import batch_views, views_in_chunks
    img = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=gen(3))
    data = _device_data(img.expand(512, -1, -1, -1).contiguous())
    batches = list(torch.arange(512).split(64))
    g = gen(5)
    per_batch = torch.cat([batch_views(data, data.x_train[i], True, g, True)[1]
                           for i in batches])
    chunked = torch.cat([s for _, s in views_in_chunks(data, batches, 2, True, gen(5), True)])
    assert not torch.equal(per_batch, chunked)

    def stats(v):
        f = v.float()
        return {"mean": f.mean((1, 2, 3)), "grey": (v == A.GREY).float().mean((1, 2, 3)),
                "distance": (f - img.float()).abs().mean((1, 2, 3))}

    for (name, a), b in zip(stats(per_batch).items(), stats(chunked).values()):
        se = (a.var() / len(a) + b.var() / len(b)).sqrt()
        assert (a.mean() - b.mean()).abs() < 4 * se, name
    assert sync_ops_in(lambda: list(views_in_chunks(data, batches, 2, True, gen(), True))) == {}
