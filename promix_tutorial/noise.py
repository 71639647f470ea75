"""Label-noise injection and noise reports.

Noise kinds (the convention of DivideMix and ProMix, docs/method.md#label-noise):

- ``sym:r``   a random ``int(r*N)`` subset gets a label drawn uniformly from ALL C classes, the
  true class included, so the real flip rate is about ``r * (1 - 1/C)``.
- ``asym:r``  a random ``int(r*N)`` subset is relabelled by a fixed class map: for CIFAR-10
  truck->automobile, bird->airplane, deer->horse, cat<->dog (other classes keep their label, so
  the real flip rate is about r/2); for CIFAR-100 each class goes to the next class of its
  superclass, circularly (classes sorted by index inside the superclass).
- ``pairflip:r`` a random ``int(r*N)`` subset is relabelled j -> (j+1) mod C.
- ``human:KIND`` CIFAR-N human labels (aggre, worst, random1-3; noisy for CIFAR-100N).
- ``none`` (or any kind at rate 0): clean labels.

Injection is deterministic for a seed and never touches global RNG state
(``numpy.random.default_rng(seed)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_KINDS = ("sym", "asym", "pairflip", "human", "none")

# CIFAR-10 asymmetric map (docs/method.md#label-noise) (source class -> noisy class).
CIFAR10_ASYM = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}

# CIFAR-100 fine label -> superclass (coarse label), from the dataset's own meta data.
CIFAR100_COARSE = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13])


def asym_class_map(dataset: str, num_classes: int) -> np.ndarray:
    """The asymmetric noise map as an array ``m`` with ``m[clean] = noisy`` (identity where a
    class is not flipped). Raises ValueError for a dataset without a defined mapping."""
    if dataset == "cifar10" and num_classes == 10:
        m = np.arange(10)
        for src, dst in CIFAR10_ASYM.items():
            m[src] = dst
        return m
    if dataset == "cifar100" and num_classes == 100:
        m = np.empty(100, np.int64)
        for sc in range(20):
            members = np.flatnonzero(CIFAR100_COARSE == sc)
            m[members] = np.roll(members, -1)
        return m
    raise ValueError(f"asymmetric noise has a class mapping only for cifar10 and cifar100, not "
                     f"{dataset!r} with {num_classes} classes; use sym:R or pairflip:R instead.")


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise request: ``kind`` in NOISE_KINDS and ``rate`` in [0, 1] (or the CIFAR-N
    label set name in ``human_kind``)."""

    kind: str
    rate: float = 0.0
    human_kind: str | None = None

    @classmethod
    def parse(cls, text: str) -> "NoiseSpec":
        """Parse ``sym:0.5``, ``asym:0.4``, ``pairflip:0.45``, ``human:worst`` or ``none``."""
        text = text.strip()
        if text in ("none", "clean"):
            return cls("none", 0.0)
        kind, sep, arg = text.partition(":")
        if not sep or kind not in NOISE_KINDS:
            raise ValueError(f"cannot read noise {text!r}: write KIND:RATE with KIND one of "
                             "sym, asym, pairflip (e.g. sym:0.5), human:SET (e.g. human:worst) "
                             "or none.")
        if kind == "human":
            from .data import CIFAR_N_KINDS
            if arg not in CIFAR_N_KINDS:
                raise ValueError(f"unknown CIFAR-N label set {arg!r} in {text!r}: choose one of "
                                 f"{', '.join(CIFAR_N_KINDS)}.")
            return cls("human", float("nan"), arg)
        try:
            rate = float(arg)
        except ValueError:
            raise ValueError(f"noise rate {arg!r} in {text!r} is not a number; "
                             "write e.g. sym:0.5") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"noise rate must lie in [0, 1], got {rate} in {text!r}.")
        return cls(kind, rate)

    def __str__(self) -> str:
        if self.kind == "human":
            return f"human:{self.human_kind}"
        return "none" if self.kind == "none" else f"{self.kind}:{self.rate:g}"


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy and clean training labels (int64 (N,)) with what one reports about them."""

    noisy: np.ndarray
    clean: np.ndarray
    num_classes: int
    spec: NoiseSpec

    @property
    def is_noisy(self) -> np.ndarray:
        """bool (N,): the given label differs from the true one."""
        return self.noisy != self.clean

    @property
    def actual_rate(self) -> float:
        """Fraction of samples whose label was changed."""
        return float(self.is_noisy.mean())

    @property
    def transition_matrix(self) -> np.ndarray:
        """Empirical T (C, C): ``T[i, j]`` = fraction of true-class-i samples labelled j.
        Rows of classes absent from the data are all zero."""
        return transition_matrix(self.clean, self.noisy, self.num_classes)

    @property
    def per_class_rate(self) -> np.ndarray:
        """float (C,): noise rate among the samples of each TRUE class."""
        return 1.0 - np.diag(self.transition_matrix)

    def report(self, class_names=None, max_matrix_classes: int = 20) -> str:
        """Plain-text noise report: requested vs actual rate, per-class rates, the transition
        matrix (as a table up to ``max_matrix_classes`` classes, else the largest confusions)."""
        C = self.num_classes
        names = [str(c) for c in (class_names or range(C))]
        lines = [f"noise {self.spec}: {len(self.noisy)} labels, {int(self.is_noisy.sum())} "
                 f"changed, actual noise rate {self.actual_rate:.2%}"]
        if self.spec.kind not in ("human", "none"):
            lines[0] += f" (requested {self.spec.rate:.0%} of samples relabelled)"
        rate = self.per_class_rate
        w = max(len(n) for n in names)
        lines.append("per-class noise rate (by true class):")
        lines += [f"  {n:<{w}}  {r:6.2%}" for n, r in zip(names, rate)]
        T = self.transition_matrix
        if C <= max_matrix_classes:
            lines.append("transition matrix T[true, given] (rows sum to 1):")
            short = [n[:5] for n in names]
            lines.append(" " * (w + 2) + " ".join(f"{s:>5}" for s in short))
            for n, row in zip(names, T):
                lines.append(f"  {n:<{w}}" + " ".join(f"{v:5.2f}" for v in row))
        else:
            off = T.copy()
            np.fill_diagonal(off, 0)
            top = np.argsort(off, axis=None)[::-1][:10]
            lines.append("largest off-diagonal transitions T[true -> given]:")
            for k in top:
                i, j = divmod(int(k), C)
                if off[i, j] > 0:
                    lines.append(f"  {names[i]} -> {names[j]}: {off[i, j]:.2%}")
        return "\n".join(lines)


def transition_matrix(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix of noisy vs clean labels, (C, C) float64."""
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (clean, noisy), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def inject_noise(labels: np.ndarray, noise: str | NoiseSpec, num_classes: int, *,
                 seed: int = 0, dataset: str | None = None,
                 human_labels: np.ndarray | None = None) -> NoisyLabels:
    """Make noisy labels from clean ``labels`` (int (N,)).

    ``noise`` is a `NoiseSpec` or its text (``sym:0.5``). ``dataset`` names the class map for
    asym. ``human`` noise needs ``human_labels`` (the aligned CIFAR-N labels; see
    `noisy_labels_for`, which loads them). Deterministic for ``seed``; global RNG untouched.
    """
    spec = noise if isinstance(noise, NoiseSpec) else NoiseSpec.parse(noise)
    clean = np.asarray(labels, np.int64)
    if clean.ndim != 1 or (len(clean) and (clean.min() < 0 or clean.max() >= num_classes)):
        raise ValueError(f"labels must be a 1-D array of class indices in [0, {num_classes}).")
    if spec.kind == "human":
        if human_labels is None or len(human_labels) != len(clean):
            raise ValueError("human noise needs the CIFAR-N labels aligned with the training "
                             "set: call noisy_labels_for(dataset, 'human:KIND') or pass "
                             "human_labels.")
        return NoisyLabels(np.asarray(human_labels, np.int64), clean, num_classes, spec)
    if spec.kind == "asym":  # validate the mapping exists before doing anything
        class_map = asym_class_map(dataset or "", num_classes)
    rng = np.random.default_rng(seed)
    n_noisy = int(spec.rate * len(clean))
    chosen = rng.permutation(len(clean))[:n_noisy]
    noisy = clean.copy()
    if spec.kind == "sym":
        noisy[chosen] = rng.integers(0, num_classes, size=n_noisy)
    elif spec.kind == "asym":
        noisy[chosen] = class_map[clean[chosen]]
    elif spec.kind == "pairflip":
        noisy[chosen] = (clean[chosen] + 1) % num_classes
    return NoisyLabels(noisy, clean, num_classes, spec)


def noisy_labels_for(dataset, noise: str | NoiseSpec, *, seed: int = 0,
                     cifar_n_path=None) -> NoisyLabels:
    """`inject_noise` for an `ImageDataset`'s training labels; loads CIFAR-N for ``human``."""
    spec = noise if isinstance(noise, NoiseSpec) else NoiseSpec.parse(noise)
    human = None
    if spec.kind == "human":
        from .data import CIFAR_N_DATASET, CIFAR_N_KINDS, load_cifar_n
        want = CIFAR_N_DATASET[CIFAR_N_KINDS[spec.human_kind][0]]
        if dataset.name != want:
            raise ValueError(f"human:{spec.human_kind} labels belong to {want}, not "
                             f"{dataset.name!r}; pick --dataset {want}.")
        human = load_cifar_n(spec.human_kind, dataset.y_train, dataset.train_index,
                             path=cifar_n_path).noisy
    return inject_noise(dataset.y_train, spec, dataset.num_classes, seed=seed,
                        dataset=dataset.name, human_labels=human)


def noise_rate_table(dataset, noises, *, seed: int = 0, cifar_n_path=None) -> list[dict]:
    """One row per noise setting: requested rate, actual rate, smallest and largest per-class
    rate. A setting that cannot be made here (no asym map for this dataset, CIFAR-N file
    missing or belonging to another dataset) becomes a row whose ``note`` says why."""
    from .data import DataUnavailableError

    rows = []
    for noise in noises:
        spec = noise if isinstance(noise, NoiseSpec) else NoiseSpec.parse(noise)
        row = {"noise": str(spec),
               "requested": None if spec.kind == "human" else spec.rate}
        try:
            out = noisy_labels_for(dataset, spec, seed=seed, cifar_n_path=cifar_n_path)
        except (ValueError, DataUnavailableError) as e:
            rows.append({**row, "actual": None, "min class": None, "max class": None,
                         "note": str(e)})
            continue
        present = np.bincount(out.clean, minlength=out.num_classes) > 0
        rows.append({**row, "actual": round(out.actual_rate, 4),
                     "min class": round(float(out.per_class_rate[present].min()), 4),
                     "max class": round(float(out.per_class_rate[present].max()), 4), "note": ""})
    return rows
