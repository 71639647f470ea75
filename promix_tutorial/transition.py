"""Class-conditional label noise sampled from a given transition matrix.

`sample_from_transition` gives every sample of true class ``i`` a label drawn from row ``i`` of a
noise transition matrix ``T`` (``T[i, j]`` = probability that a true-``i`` sample is labelled
``j``). With ``T`` measured on real annotations (e.g. CIFAR-10N *worst*, see
``NoisyLabels.transition_matrix``) this puts noise with the same *shape* as human noise on any
dataset with the same number of classes: the 8x8 digits of the ``ci`` profile get
"CIFAR-10N-worst-shaped" noise. What it cannot copy is that real annotators err more on
ambiguous *images*: here every image of a class is equally likely to be flipped.

Sampling is deterministic for a seed and never touches global RNG state
(``numpy.random.default_rng(seed)``), like `promix_tutorial.noise.inject_noise`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import NOISE_KINDS, NoiseSpec, NoisyLabels


@dataclass(frozen=True)
class SampledNoiseSpec(NoiseSpec):
    """The `NoiseSpec` of labels sampled from a transition matrix.

    ``kind`` is ``"human"`` by default: the noise copies the class-to-class statistics of human
    labels (pass another kind when ``T`` comes from elsewhere). ``human_kind`` stays None because
    no CIFAR-N label set was used as the labels themselves, ``rate`` is the *expected* noise
    rate under ``T`` and the class frequencies of the clean labels, and ``source`` names where
    ``T`` came from; ``str()`` says "sampled from the <source> transition matrix".
    """

    source: str = "a transition matrix"

    def __str__(self) -> str:
        return f"sampled from the {self.source} transition matrix"


def check_transition_matrix(T, num_classes: int | None = None, *, atol: float = 1e-6) -> np.ndarray:
    """``T`` as a float64 (C, C) array after checking it is square, finite, non-negative and
    that every non-zero row sums to 1 (within ``atol``; rows are then renormalised exactly).
    All-zero rows (classes absent where ``T`` was measured) are allowed here. Raises ValueError."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"a transition matrix must be square (C, C), got shape {T.shape}.")
    if num_classes is not None and T.shape[0] != num_classes:
        raise ValueError(f"the transition matrix is {T.shape[0]}x{T.shape[0]} but the labels "
                         f"have {num_classes} classes.")
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("a transition matrix must hold finite, non-negative probabilities.")
    sums = T.sum(axis=1)
    bad = np.flatnonzero((sums > 0) & (np.abs(sums - 1.0) > atol))
    if len(bad):
        raise ValueError(f"rows of a transition matrix must sum to 1; row {int(bad[0])} sums "
                         f"to {sums[bad[0]]:.6g}.")
    return np.divide(T, sums[:, None], out=np.zeros_like(T), where=sums[:, None] > 0)


def expected_noise_rate(clean, T) -> float:
    """The expected fraction of changed labels when labels ``clean`` are resampled through
    ``T``: ``sum_i p_i (1 - T[i, i])`` with ``p`` the class frequencies of ``clean``."""
    T = check_transition_matrix(T)
    clean = np.asarray(clean, np.int64)
    if len(clean) == 0:
        return 0.0
    p = np.bincount(clean, minlength=T.shape[0]) / len(clean)
    return float(np.sum(p * (1.0 - np.diag(T))))


def sample_from_transition(clean, T, seed: int = 0, *, source: str = "a transition matrix",
                           kind: str = "human") -> NoisyLabels:
    """Noisy labels for ``clean`` (int (N,) in [0, C)): each sample of true class ``i`` gets
    label ``j`` with probability ``T[i, j]``, independently.

    ``T``: (C, C) row-stochastic (e.g. ``noisy_labels_for(cifar10, "human:worst")
    .transition_matrix``); a class present in ``clean`` needs a non-zero row. ``source`` names
    ``T`` in reports and plot titles; ``kind`` is the `SampledNoiseSpec`'s noise kind.
    Deterministic for ``seed``; global RNG state is untouched. Returns `NoisyLabels` whose
    ``spec.rate`` is the expected noise rate (`expected_noise_rate`).
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(NOISE_KINDS)}, got {kind!r}.")
    T = check_transition_matrix(T)
    C = T.shape[0]
    clean = np.asarray(clean)
    if clean.ndim != 1 or not np.issubdtype(clean.dtype, np.integer):
        raise ValueError("clean labels must be a 1-D integer array.")
    clean = clean.astype(np.int64)
    if len(clean) and (clean.min() < 0 or clean.max() >= C):
        raise ValueError(f"clean labels must lie in [0, {C}) for a {C}x{C} transition matrix.")
    present = np.bincount(clean, minlength=C) > 0
    empty = np.flatnonzero(present & (T.sum(axis=1) == 0))
    if len(empty):
        raise ValueError(f"class {int(empty[0])} occurs in the labels but its row of the "
                         "transition matrix is all zero.")
    rng = np.random.default_rng(seed)
    u = rng.random(len(clean))
    cdf = np.cumsum(T, axis=1)
    # the last class of each row with non-zero probability ends its row's CDF exactly (no
    # float round-off can then pick a class after it); classes of zero probability are never
    # drawn because their CDF step is empty
    last = C - 1 - np.argmax(T[:, ::-1] > 0, axis=1)
    cdf[np.arange(C)[None, :] >= last[:, None]] = np.inf
    noisy = (u[:, None] >= cdf[clean]).sum(axis=1).astype(np.int64)
    spec = SampledNoiseSpec(kind, expected_noise_rate(clean, T), None, source)
    return NoisyLabels(noisy, clean, C, spec)
