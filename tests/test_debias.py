"""Tests of promix_tutorial.debias: class prior (Eq. 7), debiased prediction (Eq. 6), debiased
margin loss (Eq. 5), sharpening and debiased pseudo-labels. Expected values are worked out by
hand in the comments."""
import math

import pytest
import torch
import torch.nn.functional as F

from promix_tutorial.debias import (debias_logits, debiased_margin_loss, debiased_pseudo_labels,
                                    sharpen, uniform_prior, update_class_prior)

PRIOR = torch.tensor([0.5, 0.25, 0.25])
LN2 = math.log(2)


# ----------------------------------------------------------------------------- prior, Eq. 7

def test_uniform_prior():
    p = uniform_prior(4)
    assert p.tolist() == [0.25] * 4 and p.dtype == torch.float32 and p.device.type == "cpu"
    assert uniform_prior(3, device="cpu", dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError):
        uniform_prior(0)


def test_prior_update_exact_numbers():
    probs = torch.tensor([[0.0, 1.0, 0.0],
                          [0.0, 0.5, 0.5]])                 # batch mean [0, 0.75, 0.25]
    prior = PRIOR.clone()
    new = update_class_prior(prior, probs, momentum=0.5)
    # 0.5 * [0.5, 0.25, 0.25] + 0.5 * [0, 0.75, 0.25] = [0.25, 0.5, 0.25]
    assert new.tolist() == [0.25, 0.5, 0.25]
    assert torch.equal(prior, PRIOR)                           # input untouched
    assert new.data_ptr() != prior.data_ptr()
    # the default momentum: 0.9999 * 0.5 + 0.0001 * 0 etc.
    d = update_class_prior(PRIOR.double(), probs.double())
    expected = [0.9999 * 0.5, 0.9999 * 0.25 + 0.0001 * 0.75, 0.9999 * 0.25 + 0.0001 * 0.25]
    assert d.tolist() == pytest.approx(expected, abs=1e-15)
    assert float(d.sum()) == pytest.approx(1.0)


def test_prior_update_has_no_gradient():
    logits = torch.randn(5, 3, requires_grad=True)
    new = update_class_prior(PRIOR, logits.softmax(1), 0.9)
    assert not new.requires_grad and new.grad_fn is None


def test_prior_empty_batch_leaves_prior_unchanged():
    new = update_class_prior(PRIOR, torch.zeros(0, 3), 0.9999)
    assert torch.equal(new, PRIOR) and not torch.isnan(new).any()
    assert new.data_ptr() != PRIOR.data_ptr()
    # the released code's update would be the NaN of an empty mean:
    assert torch.isnan(torch.zeros(0, 3).mean(0)).all()


def test_prior_rejects_bad_shapes():
    with pytest.raises(ValueError):
        update_class_prior(PRIOR, torch.zeros(2, 4))


# ----------------------------------------------------------------------------- Eq. 6

def test_debias_logits_hand_example():
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 2.0]])
    out = debias_logits(logits, PRIOR, alpha=1.0)
    # - log [0.5, 0.25, 0.25] = [ln 2, 2 ln 2, 2 ln 2]
    expected = torch.tensor([[LN2, 2 * LN2, 2 * LN2], [1 + LN2, -1 + 2 * LN2, 2 + 2 * LN2]])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(debias_logits(logits, PRIOR, 0.5), logits - 0.5 * PRIOR.log())


def test_debias_promotes_the_rare_class():
    # the plain prediction picks the common class 0; after debiasing the rare class 1 wins
    logits = torch.tensor([[1.0, 0.5, 0.0]])
    prior = torch.tensor([0.8, 0.1, 0.1])
    assert logits.argmax(1).item() == 0
    assert debias_logits(logits, prior, 0.8).argmax(1).item() == 1


# ----------------------------------------------------------------------------- DML, Eq. 5

# logits [1, 2, 0], prior [0.5, 0.25, 0.25], alpha 2: z = logits + 2 log pi
#   = [1 - 2 ln 2, 2 - 4 ln 2, -4 ln 2], exp(z) = [e/4, e^2/16, 1/16], sum = (4e + e^2 + 1)/16
E = math.e
S = 4 * E + E ** 2 + 1
L0 = math.log(S / (4 * E))        # -log((e/4) / (S/16)), target class 0
L1 = math.log(S / E ** 2)         # target class 1
L2 = math.log(S)                  # target class 2


def test_dml_hard_targets_hand_example():
    logits = torch.tensor([[1.0, 2.0, 0.0]] * 3, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2])
    prior = PRIOR.double()
    none = debiased_margin_loss(logits, targets, prior, 2.0, reduction="none")
    assert none.tolist() == pytest.approx([L0, L1, L2], rel=1e-12)
    assert debiased_margin_loss(logits, targets, prior, 2.0).item() == \
        pytest.approx((L0 + L1 + L2) / 3, rel=1e-12)
    assert debiased_margin_loss(logits, targets, prior, 2.0, "sum").item() == \
        pytest.approx(L0 + L1 + L2, rel=1e-12)
    # the same as plain CE on the shifted logits
    shifted = logits + 2.0 * prior.log()
    torch.testing.assert_close(debiased_margin_loss(logits, targets, prior, 2.0),
                               F.cross_entropy(shifted, targets))


def test_dml_soft_targets_hand_example():
    logits = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0]], dtype=torch.float64)
    soft = torch.tensor([[0.5, 0.0, 0.5], [0.25, 0.75, 0.0]], dtype=torch.float64)
    out = debiased_margin_loss(logits, soft, PRIOR.double(), 2.0, reduction="none")
    assert out.tolist() == pytest.approx([0.5 * L0 + 0.5 * L2, 0.25 * L0 + 0.75 * L1], rel=1e-12)
    # a one-hot soft target equals the hard target
    onehot = F.one_hot(torch.tensor([1, 2]), 3).double()
    torch.testing.assert_close(debiased_margin_loss(logits, onehot, PRIOR.double(), 2.0),
                               debiased_margin_loss(logits, torch.tensor([1, 2]),
                                                    PRIOR.double(), 2.0))


def test_dml_empty_batch_is_zero_and_backpropagates():
    logits = torch.zeros(0, 3, requires_grad=True)
    for targets in (torch.zeros(0, dtype=torch.long), torch.zeros(0, 3)):
        loss = debiased_margin_loss(logits, targets, PRIOR, 0.8)
        assert loss.item() == 0.0 and not torch.isnan(loss)
        assert loss.requires_grad
        loss.backward()
        assert logits.grad.shape == (0, 3)
        assert debiased_margin_loss(logits, targets, PRIOR, 0.8, "sum").item() == 0.0
        assert debiased_margin_loss(logits, targets, PRIOR, 0.8, "none").shape == (0,)


def test_dml_bad_reduction():
    with pytest.raises(ValueError):
        debiased_margin_loss(torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), PRIOR, 0.5, "max")


def test_gradients_finite_even_with_extreme_prior():
    g = torch.Generator().manual_seed(0)
    logits = (30 * torch.randn(16, 5, generator=g)).requires_grad_()
    prior = torch.tensor([1.0 - 3e-30, 1e-30, 1e-30, 1e-30, 0.0])   # one exact zero (clamped)
    soft = torch.softmax(torch.randn(16, 5, generator=g), 1)
    loss = (debiased_margin_loss(logits, torch.randint(0, 5, (16,), generator=g), prior, 0.8)
            + debiased_margin_loss(logits, soft, prior, 0.8)
            + debias_logits(logits, prior, 0.8).logsumexp(1).mean())
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert torch.isfinite(debiased_pseudo_labels(logits, prior, 0.8)).all()


# ----------------------------------------------------------------------------- sharpening

def test_sharpen_hand_example():
    p = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    # squares [0.25, 0.0625, 0.0625], sum 0.375 -> [2/3, 1/6, 1/6]; uniform stays uniform
    torch.testing.assert_close(sharpen(p, 0.5),
                               torch.tensor([[2 / 3, 1 / 6, 1 / 6], [1 / 3, 1 / 3, 1 / 3]]))
    torch.testing.assert_close(sharpen(p, 1.0), p)
    # the MixMatch formula p^(1/T) / sum
    q = torch.softmax(torch.randn(6, 4), 1)
    torch.testing.assert_close(sharpen(q, 0.3), q ** (1 / 0.3) / (q ** (1 / 0.3)).sum(1, keepdim=True))


def test_sharpen_small_temperature_is_one_hot_not_nan():
    out = sharpen(torch.tensor([[1e-6, 1e-7, 1e-8]]), 0.01)  # p^(100) would underflow to 0/0
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError):
        sharpen(torch.tensor([[0.5, 0.5]]), 0.0)


# ----------------------------------------------------------------------------- pseudo-labels

def test_debiased_pseudo_labels_hand_example():
    logits = torch.tensor([[0.0, 0.0, 0.0], [LN2, 0.0, 0.0]], requires_grad=True)
    out = debiased_pseudo_labels(logits, PRIOR, alpha=1.0, temperature=0.5)
    # row 0: debiased [ln2, 2ln2, 2ln2] -> softmax [2, 4, 4]/10 -> squared [4, 16, 16]/36
    # row 1: debiased [2ln2, 2ln2, 2ln2] -> uniform -> stays uniform
    torch.testing.assert_close(out, torch.tensor([[1 / 9, 4 / 9, 4 / 9], [1 / 3, 1 / 3, 1 / 3]]))
    assert not out.requires_grad
    torch.testing.assert_close(out.sum(1), torch.ones(2))


# ----------------------------------------------------------------------------- alpha = 0

def test_alpha_zero_is_exactly_plain():
    g = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(32, 7, generator=g)
    prior = torch.softmax(torch.randn(7, generator=g), 0)
    hard = torch.randint(0, 7, (32,), generator=g)
    soft = torch.softmax(torch.randn(32, 7, generator=g), 1)
    assert torch.equal(debias_logits(logits, prior, 0.0), logits)
    for t in (hard, soft):
        for red in ("mean", "sum", "none"):
            assert torch.equal(debiased_margin_loss(logits, t, prior, 0.0, red),
                               F.cross_entropy(logits, t, reduction=red))
    assert torch.equal(debiased_pseudo_labels(logits, prior, 0.0, 0.5),
                       sharpen(torch.softmax(logits, 1), 0.5))
    torch.testing.assert_close(debiased_pseudo_labels(logits, prior, 0.0, 1.0),
                               torch.softmax(logits, 1))


def test_inputs_not_mutated():
    logits = torch.randn(4, 3)
    prior, saved = PRIOR.clone(), logits.clone()
    debias_logits(logits, prior, 0.8)
    debiased_margin_loss(logits, torch.tensor([0, 1, 2, 0]), prior, 0.8)
    debiased_pseudo_labels(logits, prior, 0.8)
    update_class_prior(prior, logits.softmax(1))
    assert torch.equal(logits, saved) and torch.equal(prior, PRIOR)


# ----------------------------------------------------------------------------- CUDA

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_debias_on_cuda():
    dev = torch.device("cuda")
    prior = uniform_prior(3, device=dev)
    assert prior.is_cuda
    logits = torch.randn(5, 3, device=dev, requires_grad=True)
    new = update_class_prior(prior, logits.softmax(1))
    assert new.is_cuda
    assert update_class_prior(prior, torch.zeros(0, 3, device=dev)).is_cuda
    assert debias_logits(logits, PRIOR.to(dev), 0.8).is_cuda
    loss = debiased_margin_loss(logits, torch.tensor([0, 1, 2, 0, 1], device=dev), new, 0.8)
    soft = debiased_pseudo_labels(logits, new, 0.8)
    assert loss.is_cuda and soft.is_cuda and sharpen(soft, 0.5).is_cuda
    (loss + debiased_margin_loss(logits, soft, new, 0.8)).backward()
    assert torch.isfinite(logits.grad).all()
    empty = debiased_margin_loss(logits[:0], torch.zeros(0, dtype=torch.long, device=dev), new, 0.8)
    assert empty.is_cuda and empty.item() == 0.0
    torch.testing.assert_close(
        debiased_margin_loss(logits, torch.tensor([0, 1, 2, 0, 1], device=dev), PRIOR.to(dev), 2.0)
        .cpu(),
        debiased_margin_loss(logits.detach().cpu(), torch.tensor([0, 1, 2, 0, 1]), PRIOR, 2.0))
