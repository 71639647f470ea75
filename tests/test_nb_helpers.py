"""Tests of promix_tutorial.transition: noise sampled from a transition matrix (notebook 06)."""
import numpy as np
import pytest

from promix_tutorial.noise import NOISE_KINDS, NoiseSpec, inject_noise
from promix_tutorial.transition import (SampledNoiseSpec, check_transition_matrix,
                                        expected_noise_rate, sample_from_transition)

C = 10
CLEAN = np.repeat(np.arange(C), 20_000)


def _random_T(seed=0, C=C):
    rng = np.random.default_rng(seed)
    T = rng.random((C, C)) + np.eye(C) * 3
    T[rng.random((C, C)) < 0.3] = 0.0  # some impossible transitions
    np.fill_diagonal(T, 3.0)
    return T / T.sum(1, keepdims=True)


def test_empirical_matrix_matches_T():
    T = _random_T()
    out = sample_from_transition(CLEAN, T, seed=1)
    np.testing.assert_allclose(out.transition_matrix, T, atol=0.012)
    assert np.all(out.transition_matrix[T == 0] == 0)  # zero-probability moves never happen
    np.testing.assert_array_equal(out.clean, CLEAN)
    assert out.actual_rate == pytest.approx(expected_noise_rate(CLEAN, T), abs=0.005)
    assert out.spec.rate == pytest.approx(expected_noise_rate(CLEAN, T))


def test_deterministic_and_leaves_global_rng_alone():
    T = _random_T()
    state = np.random.get_state()
    a = sample_from_transition(CLEAN[:5000], T, seed=3)
    b = sample_from_transition(CLEAN[:5000], T, seed=3)
    c = sample_from_transition(CLEAN[:5000], T, seed=4)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    np.testing.assert_array_equal(a.noisy, b.noisy)
    assert not np.array_equal(a.noisy, c.noisy)
    assert a.noisy.dtype == np.int64


def test_identity_and_permutation():
    clean = np.arange(C).repeat(7)
    same = sample_from_transition(clean, np.eye(C), seed=0)
    np.testing.assert_array_equal(same.noisy, clean)
    assert same.actual_rate == 0.0 and same.spec.rate == 0.0
    perm = np.roll(np.arange(C), 1)
    moved = sample_from_transition(clean, np.eye(C)[perm], seed=0)
    np.testing.assert_array_equal(moved.noisy, perm[clean])
    assert moved.actual_rate == 1.0


def test_roundtrip_from_measured_noise_and_spec():
    measured = inject_noise(CLEAN, "sym:0.5", C, seed=0).transition_matrix
    out = sample_from_transition(CLEAN, measured, seed=0, source="CIFAR-10N worst")
    np.testing.assert_allclose(out.transition_matrix, measured, atol=0.012)
    assert isinstance(out.spec, SampledNoiseSpec) and isinstance(out.spec, NoiseSpec)
    assert out.spec.kind in NOISE_KINDS and out.spec.human_kind is None
    assert str(out.spec) == "sampled from the CIFAR-10N worst transition matrix"
    assert "sampled from the CIFAR-10N worst" in out.report()
    assert "requested" not in out.report().splitlines()[0]


def test_absent_class_may_have_zero_row():
    T = np.eye(C)
    T[3] = 0.0  # class 3 never observed where T was measured
    clean = np.array([0, 1, 2, 4, 9])
    np.testing.assert_array_equal(sample_from_transition(clean, T).noisy, clean)
    with pytest.raises(ValueError, match="class 3 occurs"):
        sample_from_transition(np.array([3]), T)


def test_rows_are_renormalised_within_tolerance():
    T = np.full((2, 2), 0.5)
    T[0, 0] += 1e-9
    np.testing.assert_allclose(check_transition_matrix(T).sum(1), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("T, clean, match", [
    (np.ones((2, 3)) / 3, [0, 1], "square"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), [0, 1], "sum to 1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), [0, 1], "non-negative"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), [0, 1], "finite"),
    (np.eye(2), [0, 2], r"\[0, 2\)"),
    (np.eye(2), [[0, 1]], "1-D"),
    (np.eye(2), [0.0, 1.0], "integer"),
])
def test_bad_input_raises(T, clean, match):
    with pytest.raises(ValueError, match=match):
        sample_from_transition(np.asarray(clean), T)


def test_bad_kind_and_size_mismatch():
    with pytest.raises(ValueError, match="kind"):
        sample_from_transition(np.array([0, 1]), np.eye(2), kind="made-up")
    with pytest.raises(ValueError, match="2 classes"):
        check_transition_matrix(np.eye(3), num_classes=2)
    assert expected_noise_rate(np.array([], np.int64), np.eye(2)) == 0.0
