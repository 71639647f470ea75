"""Tests of promix_tutorial.selection: CSS (Eq. 1-2), MHCS (Eq. 3), LGA (Eq. 8), the Fig. 3
baselines (small-loss, DivideMix GMM) and precision/recall/F1. Expected values are worked out
by hand in the comments."""
import math

import numpy as np
import pytest
import torch

from promix_tutorial.selection import (class_wise_small_loss, gmm_clean_probability, gmm_selection,
                                       label_guessing_by_agreement, matched_high_confidence,
                                       precision_recall_f1, small_loss_selection)


def mask(*idx, n):
    m = torch.zeros(n, dtype=torch.bool)
    m[list(idx)] = True
    return m


# ----------------------------------------------------------------------------- CSS, Eq. 1-2

# 10 samples, 3 classes: class 0 has 7 samples, class 1 has 3, class 2 is EMPTY.
CSS_LABELS = torch.tensor([0, 1, 0, 0, 1, 0, 0, 1, 0, 0])
CSS_LOSSES = torch.tensor([0.5, 0.9, 0.1, 0.7, 0.2, 0.3, 0.3, 0.4, 0.8, 0.05])
# class 0 by loss: 9 (0.05), 2 (0.1), 5 (0.3), 6 (0.3, tie with 5: higher index), 0, 3, 8
# class 1 by loss: 4 (0.2), 7 (0.4), 1 (0.9)


@pytest.mark.parametrize("ratio, expected", [
    # k = ceil(1.0 * 10 / 3) = ceil(3.33) = 4 (floor would give 3): class 0 keeps 4,
    # class 1 has only 3 < k samples and keeps all of them, class 2 is empty. 7 in all.
    (1.0, [9, 2, 5, 6, 4, 7, 1]),
    # k = ceil(0.9 * 10 / 3) = 3: the 0.3-tie between samples 5 and 6 goes to the lower index 5
    (0.9, [9, 2, 5, 4, 7, 1]),
    # k = ceil(0.5 * 10 / 3) = ceil(1.67) = 2
    (0.5, [9, 2, 4, 7]),
    # k = ceil(0) = 0 -> at least one per non-empty class
    (0.0, [9, 4]),
])
def test_css_hand_example(ratio, expected):
    out = class_wise_small_loss(CSS_LOSSES, CSS_LABELS, 3, ratio)
    assert out.dtype == torch.bool and out.shape == (10,)
    assert torch.equal(out, mask(*expected, n=10))


def test_css_ceil_ignores_float_noise():
    # 0.07 * 100 = 7.000000000000001 in floating point; Eq. 2 means k = 7, not 8
    losses = torch.arange(100, dtype=torch.float32)
    out = class_wise_small_loss(losses, torch.zeros(100, dtype=torch.long), 1, 0.07)
    assert torch.equal(out, torch.arange(100) < 7)


def test_css_does_not_mutate_and_empty_input():
    losses, labels = CSS_LOSSES.clone(), CSS_LABELS.clone()
    class_wise_small_loss(losses, labels, 3, 0.5)
    assert torch.equal(losses, CSS_LOSSES) and torch.equal(labels, CSS_LABELS)
    out = class_wise_small_loss(torch.zeros(0), torch.zeros(0, dtype=torch.long), 3, 0.5)
    assert out.shape == (0,) and out.dtype == torch.bool


def test_css_rejects_bad_labels():
    with pytest.raises(ValueError):
        class_wise_small_loss(CSS_LOSSES, CSS_LABELS + 1, 2, 0.5)  # label 2 with C = 2
    with pytest.raises(ValueError):
        class_wise_small_loss(CSS_LOSSES, CSS_LABELS[:5], 3, 0.5)  # length mismatch


def _css_reference(losses, labels, c, ratio):
    """Plain loop over classes: the direct reading of Eq. 1-2."""
    n = len(losses)
    k = max(math.ceil(round(ratio * n / c, 9)), 1)
    out = np.zeros(n, bool)
    for j in range(c):
        s = np.flatnonzero(labels == j)
        keep = s[np.argsort(losses[s], kind="stable")][:min(k, len(s))]
        out[keep] = True
    return out


@pytest.mark.parametrize("seed", range(8))
def test_css_property_random(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 400)), int(rng.integers(1, 12))
    ratio = float(rng.uniform(0, 1.2))
    # a skewed label distribution with some classes missing, and many tied losses
    labels = rng.choice(c, size=n, p=rng.dirichlet(np.full(c, 0.4)))
    losses = np.round(rng.exponential(size=n), 1).astype(np.float32)
    out = class_wise_small_loss(torch.from_numpy(losses), torch.from_numpy(labels), c, ratio)
    k = max(math.ceil(round(ratio * n / c, 9)), 1)
    counts = np.bincount(labels, minlength=c)
    assert int(out.sum()) == int(np.minimum(k, counts).sum())      # exactly sum_j k_j
    sel = out.numpy()
    for j in range(c):
        in_j = labels == j
        assert sel[in_j].sum() == min(k, counts[j])
        if sel[in_j].any() and (~sel & in_j).any():                 # the smallest within class j
            assert losses[sel & in_j].max() <= losses[~sel & in_j].min()
    assert np.array_equal(sel, _css_reference(losses, labels, c, ratio))


# ----------------------------------------------------------------------------- MHCS, Eq. 3

def test_mhcs_hand_example():
    probs = torch.tensor([[0.75, 0.25, 0.00],   # conf exactly tau, matches label 0 -> True
                          [0.25, 0.75, 0.00],   # conf tau but argmax 1 != label 0 -> False
                          [0.70, 0.30, 0.00],   # matches, conf below tau -> False
                          [0.10, 0.10, 0.80],   # matches label 2, conf above tau -> True
                          [0.00, 1.00, 0.00]])  # label 2, argmax 1 -> False
    labels = torch.tensor([0, 0, 0, 2, 2])
    out = matched_high_confidence(probs, labels, tau=0.75)
    assert out.dtype == torch.bool
    assert out.tolist() == [True, False, False, True, False]


def test_mhcs_empty_batch():
    out = matched_high_confidence(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 0.9)
    assert out.shape == (0,)


# ----------------------------------------------------------------------------- LGA, Eq. 8

def row(conf, cls, c=3):
    """A probability row with max ``conf`` at class ``cls``, the rest spread evenly."""
    r = torch.full((c,), (1 - conf) / (c - 1))
    r[cls] = conf
    return r


def stack(rows):
    return torch.stack([row(*r) for r in rows])


def test_lga_cap_and_order_by_mean_confidence():
    # B = 10; 6 labeled (fraction 0.6 < 0.9); cap floor(0.9 * 10) = 9 -> room for 3.
    # Unlabeled 6..9 are all candidates; mean confidences 0.93, 0.98, 0.96, 0.99.
    p1 = stack([(0.99, 0)] * 6 + [(0.92, 1), (0.98, 2), (0.95, 0), (0.99, 1)])
    p2 = stack([(0.99, 0)] * 6 + [(0.94, 1), (0.98, 2), (0.97, 0), (0.99, 1)])
    labeled = torch.arange(10) < 6
    added, guessed = label_guessing_by_agreement(p1, p2, labeled, tau=0.9)
    # highest mean confidence first: 9 (0.99), 7 (0.98), 8 (0.96); 6 (0.93) misses the cap
    assert added.tolist() == [False] * 6 + [False, True, True, True]
    assert guessed[added].tolist() == [2, 0, 1]   # the agreed argmax
    assert int((labeled | added).sum()) == 9
    assert guessed.dtype == torch.long and ((guessed >= 0) & (guessed < 3)).all()


def test_lga_candidate_rules():
    # B = 6, nothing labeled but sample 0; cap 5 -> room for all candidates.
    p1 = stack([(0.99, 0), (0.99, 1), (0.85, 2), (0.99, 2), (0.95, 0), (0.91, 1)])
    p2 = stack([(0.99, 0), (0.99, 1), (0.99, 2), (0.99, 0), (0.90, 0), (0.95, 1)])
    labeled = mask(0, n=6)
    added, _ = label_guessing_by_agreement(p1, p2, labeled, tau=0.9)
    # 0: already labeled; 1: both confident, agree -> added; 2: net 1 below tau;
    # 3: disagree (2 vs 0); 4: net 2 exactly at tau and agree -> added; 5: added
    assert added.tolist() == [False, True, False, False, True, True]


def test_lga_labeled_fraction_gate():
    p = stack([(0.99, 1)] * 10)
    # 9 of 10 labeled: fraction 0.9 is not below 0.9 -> LGA does nothing
    added, _ = label_guessing_by_agreement(p, p, torch.arange(10) < 9, tau=0.9)
    assert not added.any()
    # 8 of 10 labeled: fraction 0.8 < 0.9 -> one more, up to floor(0.9 * 10) = 9
    added, _ = label_guessing_by_agreement(p, p, torch.arange(10) < 8, tau=0.9)
    assert added.tolist() == [False] * 8 + [True, False]  # equal confidence: lower index first
    # a lower cap: 3 of 10 labeled, max_labeled_frac 0.5 -> 2 more
    added, _ = label_guessing_by_agreement(p, p, torch.arange(10) < 3, tau=0.9,
                                           max_labeled_frac=0.5)
    assert added.tolist() == [False] * 3 + [True, True] + [False] * 5
    # 4 of 7 labeled, frac 0.57 >= 0.5 -> nothing
    added, _ = label_guessing_by_agreement(p[:7], p[:7], torch.arange(7) < 4, tau=0.9,
                                           max_labeled_frac=0.5)
    assert not added.any()


def test_lga_guess_logits_give_the_label():
    p1 = stack([(0.99, 0), (0.99, 1), (0.5, 2)])
    guess = torch.tensor([[0.0, 0.0, 5.0], [0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    added, guessed = label_guessing_by_agreement(p1, p1, torch.zeros(3, dtype=torch.bool),
                                                 tau=0.9, guess_logits=guess)
    assert added.tolist() == [True, True, False]
    assert guessed.tolist() == [2, 1, 0]  # argmax of the (debiased) guess, not the agreed class


def test_lga_no_mutation_and_empty_batch():
    p1 = stack([(0.99, 0), (0.99, 1)])
    labeled = torch.tensor([False, False])
    before = (p1.clone(), labeled.clone())
    label_guessing_by_agreement(p1, p1, labeled, 0.9)
    assert torch.equal(p1, before[0]) and torch.equal(labeled, before[1])
    added, guessed = label_guessing_by_agreement(torch.zeros(0, 3), torch.zeros(0, 3),
                                                 torch.zeros(0, dtype=torch.bool), 0.9)
    assert added.shape == (0,) and guessed.shape == (0,)


@pytest.mark.parametrize("seed", range(8))
def test_lga_property_random(seed):
    # seeds 0-7 cover: cap not reached (0, 1, 2, 5, 7), cap binding (3, 6), gate closed (4)
    g = torch.Generator().manual_seed(seed)
    b, c, frac = 64, 5, 0.9
    tau = [0.3, 0.6][seed % 2]
    p1 = torch.softmax(3 * torch.randn(b, c, generator=g), 1)
    p2 = torch.softmax(3 * torch.randn(b, c, generator=g), 1)
    p2 = torch.where(torch.rand(b, 1, generator=g) < 0.5, p1, p2)   # many agreements
    labeled = torch.rand(b, generator=g) < torch.rand(1, generator=g)
    added, _ = label_guessing_by_agreement(p1, p2, labeled, tau, frac)
    c1, a1 = p1.max(1)
    c2, a2 = p2.max(1)
    cand = ~labeled & (c1 >= tau) & (c2 >= tau) & (a1 == a2)
    assert not (added & ~cand).any()                                    # only candidates
    if labeled.float().mean() >= frac:
        assert not added.any()
        return
    budget = max(math.floor(frac * b) - int(labeled.sum()), 0)
    assert int(added.sum()) == min(budget, int(cand.sum()))
    conf = (c1 + c2) / 2
    if added.any() and (cand & ~added).any():                         # most confident first
        assert conf[added].min() >= conf[cand & ~added].max()


# ----------------------------------------------------------------------------- baselines

def test_small_loss_selection_hand_example():
    losses = torch.tensor([0.3, 0.1, 0.4, 0.1, 0.5])
    # num_remember = int(0.6 * 5) = 3: samples 1 and 3 (0.1), then 0 (0.3)
    assert small_loss_selection(losses, 0.4).tolist() == [True, True, False, True, False]
    # int(0.7 * 5) = int(3.5) = 3, JoCoR truncates
    assert int(small_loss_selection(losses, 0.3).sum()) == 3
    assert small_loss_selection(losses, 0.0).all()
    assert not small_loss_selection(losses, 1.0).any()
    # (1 - 0.9) * 10 = 0.9999999999999998 in floating point: one sample, not zero
    assert int(small_loss_selection(torch.arange(10.0), 0.9).sum()) == 1
    with pytest.raises(ValueError):
        small_loss_selection(losses, 1.5)


def _bimodal(n_clean=400, n_noisy=300, seed=0):
    rng = np.random.default_rng(seed)
    losses = np.concatenate([rng.normal(0.1, 0.03, n_clean), rng.normal(2.5, 0.2, n_noisy)])
    perm = rng.permutation(len(losses))
    is_clean = np.r_[np.ones(n_clean, bool), np.zeros(n_noisy, bool)][perm]
    return torch.tensor(losses[perm], dtype=torch.float32), torch.from_numpy(is_clean)


def test_gmm_bimodal_low_mode_is_clean():
    losses, is_clean = _bimodal()
    prob = gmm_clean_probability(losses)
    assert prob.dtype == torch.float32 and prob.device == losses.device and prob.shape == (700,)
    assert torch.isfinite(prob).all() and ((prob >= 0) & (prob <= 1)).all()
    assert prob[is_clean].min() > 0.99 and prob[~is_clean].max() < 0.01
    assert torch.equal(gmm_selection(losses), is_clean)
    assert torch.equal(gmm_clean_probability(losses, seed=0), prob)  # deterministic


def test_gmm_matches_dividemix_code():
    from sklearn.mixture import GaussianMixture
    losses, _ = _bimodal(seed=3)
    x = losses.double().numpy()
    x = ((x - x.min()) / (x.max() - x.min())).reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=7)
    gmm.fit(x)
    expected = gmm.predict_proba(x)[:, gmm.means_.argmin()]
    np.testing.assert_allclose(gmm_clean_probability(losses, seed=7).numpy(), expected,
                               rtol=1e-6, atol=1e-7)


def test_gmm_degenerate_inputs():
    assert torch.equal(gmm_clean_probability(torch.full((50,), 0.7)), torch.ones(50))
    assert torch.equal(gmm_clean_probability(torch.tensor([3.0])), torch.ones(1))
    assert gmm_clean_probability(torch.zeros(0)).shape == (0,)
    assert gmm_selection(torch.full((5,), 2.0)).all()
    p = gmm_clean_probability(torch.tensor([0.0, 1.0]))             # two points: finite
    assert torch.isfinite(p).all()
    assert gmm_clean_probability(torch.tensor([1, 1, 5, 5])).dtype == torch.float32  # int input
    with pytest.raises(ValueError):
        gmm_clean_probability(torch.tensor([0.1, float("nan"), 0.3]))


def test_gmm_selection_threshold():
    losses, is_clean = _bimodal()
    assert not gmm_selection(losses, threshold=1.0).any()       # strict >, as DivideMix
    assert gmm_selection(losses, threshold=-1.0).all()


# ----------------------------------------------------------------------------- P / R / F1

def test_prf_hand_example():
    sel = torch.tensor([1, 1, 1, 0, 0, 1], dtype=torch.bool)
    clean = torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.bool)
    # TP = 2 (samples 0, 2), |selected| = 4, |clean| = 3
    p, r, f = precision_recall_f1(sel, clean)
    assert (p, r) == (0.5, pytest.approx(2 / 3))
    assert f == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) == pytest.approx(4 / 7)
    assert all(isinstance(v, float) for v in (p, r, f))
    # numpy arrays and lists give the same
    assert precision_recall_f1(sel.numpy(), clean.numpy()) == (p, r, f)
    assert precision_recall_f1([1, 1, 1, 0, 0, 1], [1, 0, 1, 1, 0, 0]) == (p, r, f)


def test_prf_zero_denominators():
    clean = torch.tensor([True, False, True])
    none = torch.zeros(3, dtype=torch.bool)
    assert precision_recall_f1(none, clean) == (0.0, 0.0, 0.0)          # nothing selected
    assert precision_recall_f1(clean, none) == (0.0, 0.0, 0.0)          # no clean sample
    assert precision_recall_f1(none, none) == (0.0, 0.0, 0.0)           # both
    assert precision_recall_f1(torch.zeros(0, dtype=torch.bool),
                               torch.zeros(0, dtype=torch.bool)) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(clean, clean) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        precision_recall_f1(clean, clean[:2])


@pytest.mark.parametrize("seed", range(4))
def test_prf_equals_sklearn(seed):
    from sklearn.metrics import precision_recall_fscore_support
    rng = np.random.default_rng(seed)
    n = 1000
    sel = rng.random(n) < rng.random()
    clean = rng.random(n) < rng.random()
    p, r, f, _ = precision_recall_fscore_support(clean, sel, average="binary", zero_division=0)
    assert precision_recall_f1(torch.from_numpy(sel), clean) == pytest.approx((p, r, f), abs=1e-12)


# ----------------------------------------------------------------------------- CUDA

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_selection_on_cuda():
    dev = torch.device("cuda")
    losses, labels = CSS_LOSSES.to(dev), CSS_LABELS.to(dev)
    out = class_wise_small_loss(losses, labels, 3, 1.0)
    assert out.is_cuda and torch.equal(out.cpu(), mask(9, 2, 5, 6, 4, 7, 1, n=10))
    probs = torch.softmax(torch.randn(8, 3, device=dev) * 5, 1)
    y = torch.randint(0, 3, (8,), device=dev)
    assert matched_high_confidence(probs, y, 0.9).is_cuda
    added, guessed = label_guessing_by_agreement(probs, probs, torch.zeros(8, dtype=torch.bool,
                                                 device=dev), 0.5, guess_logits=probs)
    assert added.is_cuda and guessed.is_cuda
    assert small_loss_selection(losses, 0.5).is_cuda
    bl, is_clean = _bimodal()
    prob = gmm_clean_probability(bl.to(dev))
    assert prob.is_cuda and torch.equal(gmm_selection(bl.to(dev)).cpu(), is_clean)
    assert gmm_clean_probability(torch.full((4,), 1.0, device=dev)).is_cuda
    assert precision_recall_f1(out, out) == (1.0, 1.0, 1.0)
    assert precision_recall_f1(out, out.cpu().numpy()) == (1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- Fig. 3 baselines

def _noisy_losses(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, generator=g) < 0.4
    losses = torch.where(clean, torch.rand(n, generator=g), 0.6 + torch.rand(n, generator=g))
    return losses, clean


def test_baseline_f1_grids_match_the_selectors():
    """Every grid entry is the F1 of the selector run at that forget rate / threshold."""
    from promix_tutorial.metrics import FORGET_RATES, GMM_THRESHOLDS, tuned_gmm, tuned_small_loss
    losses, clean = _noisy_losses()
    sl = tuned_small_loss(losses, clean)
    for i in (0, 17, 60, 99):
        want = precision_recall_f1(small_loss_selection(losses, FORGET_RATES[i]), clean)[2]
        assert sl["f1_grid"][i] == pytest.approx(want, abs=1e-4)
    assert max(sl["f1_grid"]) <= sl["f1"] + 1e-4  # the per-epoch oracle is at least as good
    gm = tuned_gmm(losses, clean)
    for i in (0, 49, 98):
        want = precision_recall_f1(gmm_selection(losses, GMM_THRESHOLDS[i]), clean)[2]
        assert gm["f1_grid"][i] == pytest.approx(want, abs=1e-4)
    assert gm["f1_grid"][GMM_THRESHOLDS.index(0.5)] == pytest.approx(gm["f1_at_0.5"], abs=1e-4)


def test_once_tuned_picks_one_value_for_the_run():
    from promix_tutorial.metrics import FORGET_RATES, once_tuned
    grid_a = [0.1] * 100
    grid_a[30] = 0.9                     # best in epoch 1 only
    grid_b = [0.5] * 100
    grid_b[70] = 0.8                     # best mean over the selecting epochs: 70
    records = [{"baselines": {"small_loss": {"f1_grid": grid_a}}},   # warm-up: not counted
               {"selection": {}, "baselines": {"small_loss": {"f1_grid": grid_b}}},
               {"selection": {}, "baselines": {"small_loss": {"f1_grid": grid_b}}}]
    value, series = once_tuned(records, "small_loss")
    assert value == FORGET_RATES[70] and series.tolist() == [0.1, 0.8, 0.8]
    assert once_tuned([{"baselines": {}}], "gmm")[0] is None


def test_css_budget_f1_is_css_at_each_budget():
    """Each row is CSS (Eq. 1-2) at that R, scored against the clean mask; with class-balanced
    labels CSS's best budget is as good as the per-epoch small-loss oracle on the same losses
    up to the class split (here the losses do not depend on the class)."""
    from promix_tutorial.metrics import css_budget_f1, tuned_small_loss
    losses, clean = _noisy_losses()
    labels = torch.arange(len(losses)) % 4
    rows = css_budget_f1(losses, labels, clean, 4, [0.1, 0.4, 0.7])
    assert [r["rho"] for r in rows] == [0.1, 0.4, 0.7]
    for r in rows:
        sel = class_wise_small_loss(losses, labels, 4, r["rho"])
        p, rec, f1 = precision_recall_f1(sel, clean)
        assert r["count"] == int(sel.sum()) == 4 * math.ceil(r["rho"] * len(losses) / 4)
        assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((p, rec, f1), abs=1e-5)
    # 40% clean, clean losses all below noisy ones: R = 0.4 separates them exactly
    assert rows[1]["f1"] == pytest.approx(tuned_small_loss(losses, clean)["f1"], abs=0.02)
    assert rows[0]["precision"] == 1.0 and rows[0]["recall"] < 0.3


def test_confident_learning_keeps_the_samples_whose_prediction_agrees():
    """cleanlab flags samples predicted confidently as another class: with predictions equal
    to the true labels, the kept set is exactly the clean one."""
    from promix_tutorial.metrics import confident_learning
    gen = torch.Generator().manual_seed(0)
    clean = torch.arange(600) % 3
    noisy = clean.clone()
    flip = torch.rand(600, generator=gen) < 0.3
    noisy[flip] = (clean[flip] + 1) % 3
    probs = torch.full((600, 3), 0.05)
    probs[torch.arange(600), clean] = 0.9
    s = confident_learning(probs, noisy, noisy == clean)
    assert s["precision"] == 1.0 and s["recall"] == 1.0 and s["count"] == int((~flip).sum())
    wrong = confident_learning(probs.roll(1, dims=1), noisy, noisy == clean)
    assert wrong["f1"] < 0.5   # predictions of another class flag the right labels instead


def test_select_clean_dispatches_each_rule_by_name():
    from promix_tutorial.selection import (class_wise_small_loss, gmm_selection, select_clean,
                                           small_loss_selection)
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    losses = torch.cat([torch.rand(200, generator=gen) * 0.2, 1 + torch.rand(100, generator=gen)])
    assert torch.equal(select_clean("promix", losses, labels, 3, rho=0.4),
                       class_wise_small_loss(losses, labels, 3, 0.4))
    assert torch.equal(select_clean("gmm", losses, labels, 3, threshold=0.7, seed=1),
                       gmm_selection(losses, 0.7, seed=1))
    assert torch.equal(select_clean("small_loss", losses, labels, 3, forget_rate=0.25),
                       small_loss_selection(losses, 0.25))
    assert int(select_clean("small_loss", losses, labels, 3, forget_rate=0.25).sum()) == 225
    with pytest.raises(ValueError, match="unknown selection rule 'jocor'"):
        select_clean("jocor", losses, labels, 3)


def test_confident_learning_starts_no_process_pool(monkeypatch):
    """cleanlab's default forks a process pool, which deadlocked a training under PyTorch's
    threads; the baseline runs in the calling process."""
    import multiprocessing
    from promix_tutorial.metrics import confident_learning

    def refuse(*args, **kwargs):
        raise AssertionError("a process pool was started")
    monkeypatch.setattr(multiprocessing, "Pool", refuse)
    monkeypatch.setattr(multiprocessing.pool, "Pool", refuse, raising=False)
    probs = torch.softmax(torch.randn(5000, 10, generator=torch.Generator().manual_seed(0)), 1)
    labels = torch.randint(0, 10, (5000,), generator=torch.Generator().manual_seed(1))
    assert 0 <= confident_learning(probs, labels, labels == 0)["count"] <= 5000
