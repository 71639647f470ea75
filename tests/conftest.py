"""Shared test fixtures: where the offline data lies that CI provides beside the checkout
($PROMIX_OFFLINE_DATA_DIR)."""
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROMIX_OFFLINE_DATA_DIR", REPO.parent / "shared"))


def cifar_n_candidates() -> list[Path]:
    """Where the tests look for the CIFAR-N label files, in order: $PROMIX_CIFARN_DIR (what
    README tells users to set), the repository's data/cifar-n (the package's default), then
    ../shared/data/cifar-n (what CI provides)."""
    env = os.environ.get("PROMIX_CIFARN_DIR")
    found = [Path(env).expanduser()] if env else []
    return found + [REPO / "data" / "cifar-n", SHARED / "data" / "cifar-n"]


def find_cifar_n_dir() -> tuple[Path | None, str]:
    """(the first candidate folder holding CIFAR-10_human.pt, "") or (None, why not)."""
    tried = cifar_n_candidates()
    for d in tried:
        if (d / "CIFAR-10_human.pt").is_file():
            return d, ""
    return None, ("CIFAR-N label file CIFAR-10_human.pt not found in "
                  + ", ".join(str(d) for d in tried)
                  + "; set PROMIX_CIFARN_DIR to the folder that holds it")


@pytest.fixture(scope="session")
def cifar_n_dir() -> Path:
    """Folder with the real CIFAR-N label files (`find_cifar_n_dir`)."""
    d, why = find_cifar_n_dir()
    if d is None:
        pytest.skip(why)
    return d


@pytest.fixture(scope="session")
def cifar10_train_labels() -> np.ndarray:
    """The 50,000 clean CIFAR-10 training labels in the original order: ../shared's labels
    file, else the y_train of $PROMIX_CIFAR10_NPZ."""
    p = SHARED / "data" / "cifar10-train-order-labels.npy"
    if p.is_file():
        return np.load(p).astype(np.int64)
    npz = os.environ.get("PROMIX_CIFAR10_NPZ")
    if npz and Path(npz).is_file():
        with np.load(npz) as z:
            return z["y_train"].astype(np.int64)
    pytest.skip(f"the CIFAR-10 training labels: neither {p} nor PROMIX_CIFAR10_NPZ "
                "(set it to an arrays file written by `promix data`)")


@pytest.fixture(scope="session")
def cifar10_npz() -> Path:
    """The offline CIFAR-10 arrays file that .ci/run builds and exports as PROMIX_CIFAR10_NPZ."""
    p = os.environ.get("PROMIX_CIFAR10_NPZ")
    if not p or not Path(p).is_file():
        pytest.skip("PROMIX_CIFAR10_NPZ is not set to an arrays file")
    return Path(p)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")
