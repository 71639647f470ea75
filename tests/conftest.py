"""Shared test fixtures: locations of the offline data that CI provides in ../shared."""
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROMIX_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def cifar_n_dir() -> Path:
    """Folder with the real CIFAR-N label files (CI has ../shared/data/cifar-n)."""
    d = SHARED / "data" / "cifar-n"
    if not (d / "CIFAR-10_human.pt").is_file():
        pytest.skip(f"CIFAR-N files not found in {d}")
    return d


@pytest.fixture(scope="session")
def cifar10_train_labels() -> np.ndarray:
    """The 50,000 clean CIFAR-10 training labels in the original order."""
    p = SHARED / "data" / "cifar10-train-order-labels.npy"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return np.load(p).astype(np.int64)


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
