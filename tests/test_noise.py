"""Tests of promix_tutorial.noise: rates, exact class maps, determinism, bad input."""
import numpy as np
import pytest

from promix_tutorial.data import ImageDataset, load_digits
from promix_tutorial.noise import (CIFAR100_COARSE, NoiseSpec, asym_class_map, inject_noise,
                                   noise_rate_table,
                                   noisy_labels_for, transition_matrix)

N, C = 20_000, 10
CLEAN = np.repeat(np.arange(C), N // C)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8, 0.9])
def test_sym_rate_matches_convention(rate):
    out = inject_noise(CLEAN, f"sym:{rate}", C, seed=1)
    # int(r*N) samples redrawn uniformly over all C classes: flip rate r*(1-1/C)
    assert out.actual_rate == pytest.approx(rate * (1 - 1 / C), abs=0.01)
    assert np.all(np.abs(out.per_class_rate - rate * (1 - 1 / C)) < 0.04)
    np.testing.assert_allclose(out.transition_matrix.sum(1), 1.0)


def test_asym_cifar10_exact_mapping():
    out = inject_noise(CLEAN, "asym:0.4", C, seed=0, dataset="cifar10")
    pairs = set(zip(out.clean[out.is_noisy].tolist(), out.noisy[out.is_noisy].tolist()))
    assert pairs == {(9, 1), (2, 0), (4, 7), (3, 5), (5, 3)}
    assert out.actual_rate == pytest.approx(0.4 * 5 / 10, abs=0.01)
    unchanged = [0, 1, 6, 7, 8]
    assert np.all(out.per_class_rate[unchanged] == 0)
    assert np.all(np.abs(out.per_class_rate[[2, 3, 4, 5, 9]] - 0.4) < 0.04)


def test_asym_cifar100_next_class_in_superclass():
    m = asym_class_map("cifar100", 100)
    assert np.all(np.bincount(CIFAR100_COARSE) == 5)
    assert np.all(CIFAR100_COARSE[m] == CIFAR100_COARSE)  # stays inside the superclass
    assert np.all(m != np.arange(100)) and sorted(m) == list(range(100))  # a permutation
    members = np.flatnonzero(CIFAR100_COARSE == 0)  # aquatic mammals: beaver dolphin otter seal whale
    assert members.tolist() == [4, 30, 55, 72, 95]
    assert m[members].tolist() == [30, 55, 72, 95, 4]  # circular
    labels = np.repeat(np.arange(100), 100)
    out = inject_noise(labels, "asym:0.4", 100, seed=0, dataset="cifar100")
    assert out.actual_rate == pytest.approx(0.4, abs=1e-9)
    assert np.all(out.noisy[out.is_noisy] == m[out.clean[out.is_noisy]])


def test_pairflip():
    out = inject_noise(CLEAN, "pairflip:0.45", C, seed=0)
    assert np.all(out.noisy[out.is_noisy] == (out.clean[out.is_noisy] + 1) % C)
    assert out.actual_rate == pytest.approx(0.45, abs=1e-9)


def test_deterministic_and_independent_of_global_rng():
    a = inject_noise(CLEAN, "sym:0.5", C, seed=3)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    b = inject_noise(CLEAN, "sym:0.5", C, seed=3)
    assert np.array_equal(state, np.random.get_state()[1])  # global state untouched
    np.testing.assert_array_equal(a.noisy, b.noisy)
    assert not np.array_equal(a.noisy, inject_noise(CLEAN, "sym:0.5", C, seed=4).noisy)


def test_zero_and_none_are_clean():
    for spec in ("sym:0", "none", "pairflip:0.0"):
        out = inject_noise(CLEAN, spec, C, seed=0)
        assert out.actual_rate == 0 and np.array_equal(out.noisy, CLEAN)


@pytest.mark.parametrize("text, match", [
    ("sym:1.5", r"\[0, 1\]"), ("sym:-0.1", r"\[0, 1\]"), ("gauss:0.2", "KIND:RATE"),
    ("sym", "KIND:RATE"), ("sym:abc", "not a number"), ("human:worse", "unknown CIFAR-N"),
])
def test_bad_specs(text, match):
    with pytest.raises(ValueError, match=match):
        NoiseSpec.parse(text)


def test_bad_inputs():
    with pytest.raises(ValueError, match="only for cifar10 and cifar100"):
        inject_noise(CLEAN, "asym:0.4", C, dataset="digits")
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        inject_noise(np.array([0, 11]), "sym:0.2", C)
    with pytest.raises(ValueError, match="human noise needs"):
        inject_noise(CLEAN, "human:worst", C)
    with pytest.raises(ValueError, match="belong to cifar10"):
        noisy_labels_for(load_digits(), "human:worst")


def test_transition_matrix_hand_example():
    T = transition_matrix(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 1, 1, 1]), 3)
    np.testing.assert_allclose(T, [[1 / 3, 2 / 3, 0], [0, 1, 0], [0, 0, 0]])


def test_report_text():
    out = inject_noise(CLEAN, "sym:0.5", C, seed=0)
    rep = out.report([f"c{i}" for i in range(C)])
    assert f"{out.actual_rate:.2%}" in rep and "transition matrix" in rep and "c9" in rep
    big = inject_noise(np.repeat(np.arange(100), 10), "sym:0.5", 100, seed=0).report()
    assert "largest off-diagonal" in big


def test_human_worst_through_dataset(cifar_n_dir, cifar10_train_labels):
    x = np.zeros((len(cifar10_train_labels), 1, 1, 3), np.uint8)
    ds = ImageDataset("cifar10", x, cifar10_train_labels, x[:10], cifar10_train_labels[:10],
                      tuple(str(i) for i in range(10)))
    out = noisy_labels_for(ds, "human:worst", cifar_n_path=cifar_n_dir)
    assert f"{out.actual_rate:.2%}" == "40.21%"


def test_noise_rate_table_rows_and_notes():
    rows = noise_rate_table(load_digits(), ["sym:0.5", "asym:0.4", "pairflip:0.3", "human:worst"])
    by = {r["noise"]: r for r in rows}
    assert by["pairflip:0.3"]["actual"] == pytest.approx(0.3, abs=1e-3)
    assert by["sym:0.5"]["min class"] <= by["sym:0.5"]["actual"] <= by["sym:0.5"]["max class"]
    assert by["asym:0.4"]["actual"] is None and "class mapping" in by["asym:0.4"]["note"]
    assert "belong to cifar10" in by["human:worst"]["note"]
