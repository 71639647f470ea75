"""Data sources: every source returns the same `ImageDataset` of uint8 arrays.

Sources
-------
- ``cifar10`` / ``cifar100``: torchvision downloads into the data folder (see `data_dir`).
  Setting ``PROMIX_CIFAR10_NPZ=/path/file.npz`` makes ``cifar10`` read an arrays file instead
  (for machines without network, e.g. the offline JPEG-75 copy built by
  ``make_offline_cifar10.py``, or by ``promix data`` from the archive torchvision downloads).
- ``digits``: scikit-learn's bundled 8x8 handwritten digits with a fixed, stratified
  train/test split; always offline and tiny (tests and the ``ci`` profile).
- an arrays file: any ``.npz`` holding ``x_train, y_train, x_test, y_test``.
- CIFAR-N human labels: `load_cifar_n` (CIFAR-10N aggre/worst/random1-3, CIFAR-100N noisy).

Images are ``uint8`` of shape (N, H, W, C); labels ``int64`` of shape (N,).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runs import atomic_write, sha256_file

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
DATASET_NAMES = ("cifar10", "cifar100", "digits")


class DataUnavailableError(RuntimeError):
    """The requested data is not on disk and could not be fetched; the message says what to do."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image dataset held in memory.

    Attributes:
        name: source name (``cifar10``, ``cifar100``, ``digits`` or the arrays file's stem).
        x_train, x_test: uint8 (N, H, W, C).
        y_train, y_test: int64 (N,), values in [0, num_classes).
        classes: class names, ``len(classes) == num_classes``.
        train_index: int64 (N_train,), position of each training image in the source's full
            original training order (identity unless a subset was taken). CIFAR-N labels are
            aligned through it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    train_index: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.train_index is None:
            object.__setattr__(self, "train_index", np.arange(len(self.y_train), dtype=np.int64))
        _validate_arrays(self.name, self.x_train, self.y_train, self.x_test, self.y_test,
                         len(self.classes))
        for k in ("y_train", "y_test", "train_index"):
            object.__setattr__(self, k, np.asarray(getattr(self, k), np.int64))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def subset(self, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0) -> "ImageDataset":
        """A class-stratified random subset (deterministic for ``seed``); keeps ``train_index``.

        Used by the ``cpu`` preset to train on a slice of CIFAR. ``None`` keeps a split whole.
        """
        from sklearn.model_selection import train_test_split

        def pick(y, n, what):
            if n is None or n >= len(y):
                return np.arange(len(y))
            if n < self.num_classes:
                raise ValueError(f"{what} subset of {n} is smaller than the number of classes "
                                 f"({self.num_classes}); ask for at least {self.num_classes}")
            idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y,
                                      random_state=seed)
            return np.sort(idx)

        tr, te = pick(self.y_train, n_train, "training"), pick(self.y_test, n_test, "test")
        return ImageDataset(self.name, self.x_train[tr], self.y_train[tr], self.x_test[te],
                            self.y_test[te], self.classes, self.train_index[tr])


# --------------------------------------------------------------------------- locations

def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The download/cache folder: ``root`` if given, else ``$PROMIX_DATA_DIR``, else the
    checkout's ``data/`` folder (when the package runs from a checkout), else ``./data``."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("PROMIX_DATA_DIR"):
        return Path(os.environ["PROMIX_DATA_DIR"]).expanduser()
    checkout = Path(__file__).resolve().parent.parent / "data"
    return checkout if checkout.is_dir() else Path.cwd() / "data"


# --------------------------------------------------------------------------- validation

def _validate_arrays(name, x_train, y_train, x_test, y_test, num_classes=None):
    """Raise ValueError naming the offending array when shapes, dtypes or labels are wrong."""
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            got = getattr(x, "dtype", type(x).__name__)
            raise ValueError(f"{name}: x_{split} must be a uint8 numpy array of images "
                             f"(N, H, W, C) with values 0-255, got dtype {got}. If your images "
                             "are floats in [0, 1], convert with (x * 255).round().astype(np.uint8).")
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"{name}: x_{split} must have shape (N, H, W, C) with C = 1 or 3 "
                             f"(channels last), got shape {x.shape}.")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name}: y_{split} must be a 1-D integer array of class indices, got "
                             f"{getattr(y, 'dtype', type(y).__name__)} with shape "
                             f"{getattr(y, 'shape', None)}.")
        if len(x) != len(y):
            raise ValueError(f"{name}: x_{split} has {len(x)} images but y_{split} has {len(y)} "
                             "labels; they must be the same length.")
        if len(y) == 0:
            raise ValueError(f"{name}: the {split} split is empty.")
        if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
            raise ValueError(f"{name}: y_{split} holds labels in [{y.min()}, {y.max()}] but must "
                             f"lie in [0, {num_classes}) for {num_classes} classes.")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"{name}: train images {x_train.shape[1:]} and test images "
                         f"{x_test.shape[1:]} differ in shape.")


# --------------------------------------------------------------------------- sources

def load_npz(path: str | os.PathLike, *, name: str | None = None,
             classes: tuple[str, ...] | None = None, pointed_by: str | None = None) -> ImageDataset:
    """Load an arrays file with ``x_train, y_train, x_test, y_test`` (uint8 NHWC, int labels).

    An optional ``train_index`` array gives each training image's position in the full source
    order (needed only when the file holds a shuffled subset and CIFAR-N labels are used).
    ``classes`` defaults to ``0..max_label``. ``pointed_by`` names the variable or option the
    path came from, so an error says which to fix.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        where = f" (given by {pointed_by})" if pointed_by else ""
        raise DataUnavailableError(f"arrays file {path}{where} does not exist. Build one with "
                                   "`promix data --source cifar-10-python.tar.gz --out OUT.npz` "
                                   "or point to an "
                                   "existing .npz with x_train, y_train, x_test, y_test.")
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise ValueError(f"arrays file {path} lacks {sorted(missing)}; it must hold "
                             f"x_train, y_train, x_test, y_test (it has {sorted(f.files)}).")
        arrays = {k: f[k] for k in f.files}
    name = name or path.stem
    y_all = np.concatenate([arrays["y_train"].ravel(), arrays["y_test"].ravel()])
    if classes is None and "classes" in arrays:  # written by `promix data`
        classes = tuple(str(c) for c in arrays["classes"])
    if classes is None:
        if not np.issubdtype(y_all.dtype, np.integer):
            raise ValueError(f"{name}: labels must be integers, got {y_all.dtype}.")
        classes = tuple(str(i) for i in range(int(y_all.max()) + 1))
    return ImageDataset(name, arrays["x_train"], arrays["y_train"], arrays["x_test"],
                        arrays["y_test"], tuple(classes), arrays.get("train_index"))


def load_digits() -> ImageDataset:
    """scikit-learn's 8x8 digits (1,797 images), a fixed stratified 75/25 split (seed 0).

    Pixel values 0-16 are rescaled to uint8 0-255; shape (N, 8, 8, 1).
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y,
                                      random_state=0)
    idx_tr, idx_te = np.sort(idx_tr), np.sort(idx_te)
    return ImageDataset("digits", x[idx_tr], y[idx_tr], x[idx_te], y[idx_te],
                        tuple(str(i) for i in range(10)))


def _load_torchvision_cifar(name: str, root: Path, download: bool) -> ImageDataset:
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    archive = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}[name]
    try:
        tr = cls(str(root), train=True, download=download)
        te = cls(str(root), train=False, download=download)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; torchvision raises RuntimeError
        hint = (" or set PROMIX_CIFAR10_NPZ=/path/to/arrays.npz (an .npz with x_train, y_train, "
                "x_test, y_test in the original training order, e.g. written by "
                "`promix data --source cifar-10-python.tar.gz --out cifar10.npz`)") if name == "cifar10" else ""
        raise DataUnavailableError(
            f"{name} is not in {root} and could not be downloaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no detail'}). Put {archive} (or its "
            f"extracted folder) into {root}, choose another folder with --data-dir or "
            f"PROMIX_DATA_DIR{hint}.") from None
    return ImageDataset(name, np.asarray(tr.data, np.uint8), np.asarray(tr.targets, np.int64),
                        np.asarray(te.data, np.uint8), np.asarray(te.targets, np.int64),
                        tuple(tr.classes))


# --------------------------------------------------------------------------- arrays files

CIFAR_PYTHON_FILES = {  # name -> (training files, test file, meta file, label key, names key)
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                b"labels", b"label_names"),
    "cifar100": (["train"], "test", "meta", b"fine_labels", b"fine_label_names"),
}


def read_cifar_python(source: str | os.PathLike) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 from the "python version" that torchvision downloads: the archive
    (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) or its extracted folder
    (``cifar-10-batches-py/``, ``cifar-100-python/``), or the folder that holds either. Images
    keep the original order (CIFAR-N labels line up with it)."""
    import pickle
    import tarfile

    source = Path(source).expanduser()
    if source.is_dir():
        for sub in ("cifar-10-batches-py", "cifar-100-python"):
            if (source / sub).is_dir():
                source = source / sub
        files = {p.name: p for p in source.iterdir() if p.is_file()}
        read = lambda n: files[n].read_bytes()  # noqa: E731
        tar = None
    elif tarfile.is_tarfile(source):
        tar = tarfile.open(source)
        files = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        read = lambda n: tar.extractfile(files[n]).read()  # noqa: E731
    else:
        raise DataUnavailableError(f"{source} is neither a CIFAR python-version archive "
                                   "(cifar-10-python.tar.gz / cifar-100-python.tar.gz) nor its "
                                   "folder; torchvision downloads those into its root folder.")
    try:
        name = next((n for n, (train, *_) in CIFAR_PYTHON_FILES.items()
                     if all(f in files for f in train)), None)
        if name is None:
            raise DataUnavailableError(
                f"{source} holds neither CIFAR-10's data_batch_1..5 nor CIFAR-100's train file "
                f"(found: {', '.join(sorted(files)[:8]) or 'nothing'}).")
        train, test, meta, label_key, names_key = CIFAR_PYTHON_FILES[name]

        def batch(n):
            d = pickle.loads(read(n), encoding="bytes")
            x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return np.ascontiguousarray(x), np.asarray(d[label_key], np.int64)

        parts = [batch(n) for n in train]
        x_test, y_test = batch(test)
        names = pickle.loads(read(meta), encoding="bytes")[names_key]
    finally:
        if tar is not None:
            tar.close()
    return ImageDataset(name, np.concatenate([p[0] for p in parts]),
                        np.concatenate([p[1] for p in parts]), x_test, y_test,
                        tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names))


def write_arrays_file(ds: ImageDataset, out: str | os.PathLike) -> Path:
    """Write ``ds`` as an arrays file (uncompressed .npz: x_train, y_train, x_test, y_test,
    train_index, classes) that `load_npz` and ``PROMIX_CIFAR10_NPZ`` read; written atomically."""
    arrays = dict(x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
                  train_index=ds.train_index, classes=np.asarray(ds.classes))
    return atomic_write(out, lambda f: np.savez(f, **arrays))


def load_dataset(name: str, *, root: str | os.PathLike | None = None,
                 download: bool = True) -> ImageDataset:
    """Load a dataset by name (``cifar10``, ``cifar100``, ``digits``) or an ``.npz`` path.

    ``cifar10`` reads ``$PROMIX_CIFAR10_NPZ`` when that variable is set. Raises
    `DataUnavailableError` (what to do) when offline without a local copy, ValueError on an
    unknown name or a malformed arrays file.
    """
    if name.endswith(".npz"):
        return load_npz(name, pointed_by="the dataset name (--dataset)")
    if name == "digits":
        return load_digits()
    if name == "cifar10" and os.environ.get("PROMIX_CIFAR10_NPZ"):
        return load_npz(os.environ["PROMIX_CIFAR10_NPZ"], name="cifar10", classes=CIFAR10_CLASSES,
                        pointed_by="$PROMIX_CIFAR10_NPZ")
    if name in ("cifar10", "cifar100"):
        return _load_torchvision_cifar(name, data_dir(root), download)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)} "
                     "or give the path of an .npz arrays file.")


# --------------------------------------------------------------------------- CIFAR-N

# kind -> (file name, key in the file). Files by UCSC-REAL/cifar-10-100n, CC BY-NC 4.0.
CIFAR_N_KINDS = {
    "aggre": ("CIFAR-10_human.pt", "aggre_label"),
    "worst": ("CIFAR-10_human.pt", "worse_label"),
    "random1": ("CIFAR-10_human.pt", "random_label1"),
    "random2": ("CIFAR-10_human.pt", "random_label2"),
    "random3": ("CIFAR-10_human.pt", "random_label3"),
    "noisy": ("CIFAR-100_human.pt", "noisy_label"),
}
CIFAR_N_DATASET = {"CIFAR-10_human.pt": "cifar10", "CIFAR-100_human.pt": "cifar100"}
CIFAR_N_URL = "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/{file}"
CIFAR_N_SHA256 = {
    "CIFAR-10_human.pt": "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310",
    "CIFAR-100_human.pt": "3ca5e261fcff3a50f5c19044daa342e6b5392eb0ef70c5b9761766f5f9c68192",
}


@dataclass(frozen=True, eq=False)
class CifarNLabels:
    """Human noisy labels aligned with a training set: ``noisy`` and ``clean``, int64 (N,)."""

    kind: str
    noisy: np.ndarray
    clean: np.ndarray


def _find_cifar_n_file(file: str, path, root, download) -> Path:
    if path is not None:
        p = Path(path).expanduser()
        p = p / file if p.is_dir() else p
        if not p.is_file():
            raise DataUnavailableError(f"CIFAR-N label file {p} does not exist.")
        return p
    candidates = [data_dir(root) / "cifar-n" / file]
    if os.environ.get("PROMIX_CIFARN_DIR"):
        candidates.insert(0, Path(os.environ["PROMIX_CIFARN_DIR"]).expanduser() / file)
    for p in candidates:
        if p.is_file():
            return p
    target = candidates[-1]
    if not download:
        raise DataUnavailableError(f"CIFAR-N label file {file} not found (looked in "
                                   f"{', '.join(map(str, candidates))}).")
    url = CIFAR_N_URL.format(file=file)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as r, \
                tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            shutil.copyfileobj(r, tmp)
    except OSError as e:
        raise DataUnavailableError(
            f"CIFAR-N label file {file} not found locally and the download from {url} failed "
            f"({type(e).__name__}: {e}). Download it by hand into {target.parent}, pass its "
            "path (--cifar-n PATH), or set PROMIX_CIFARN_DIR to the folder holding it.") from None
    digest = sha256_file(Path(tmp.name))
    if digest != CIFAR_N_SHA256[file]:
        os.unlink(tmp.name)
        raise DataUnavailableError(f"downloaded {file} has SHA-256 {digest}, expected "
                                   f"{CIFAR_N_SHA256[file]}; the file was discarded.")
    os.replace(tmp.name, target)  # atomic: never a half-written label file
    return target


def _safe_torch_load(path: Path) -> dict:
    """torch.load with ``weights_only=True``: only numpy arrays and dtypes may be unpickled."""
    import torch

    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"),
               (_reconstruct, "numpy._core.multiarray._reconstruct"),
               np.ndarray, np.dtype, (type(np.dtype(np.int64)), "numpy.dtypes.Int64DType")]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler refuses anything outside the allow-list
        raise ValueError(f"{path} is not a CIFAR-N label file that can be loaded safely "
                         f"(only numpy arrays are allowed): {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected a dict of label arrays.")
    return obj


def load_cifar_n(kind: str, train_labels: np.ndarray | None = None,
                 train_index: np.ndarray | None = None, *, path=None, root=None,
                 download: bool = True) -> CifarNLabels:
    """CIFAR-N human labels of ``kind`` (aggre, worst, random1-3 for CIFAR-10N; noisy for
    CIFAR-100N), checked against the training labels you loaded.

    The file is found at ``path`` (file or folder), in ``$PROMIX_CIFARN_DIR``, in
    ``data/cifar-n/``, or downloaded from the authors' repository (SHA-256 checked). It is read
    with ``torch.load(weights_only=True)`` allowing only numpy arrays. Its 50,000 labels are in
    torchvision training order; ``train_index`` (default ``arange(len(train_labels))``) picks
    the ones of your training set, and its ``clean_label`` must equal ``train_labels`` there:
    otherwise ValueError (wrong order or wrong dataset), never silently misaligned noise.
    """
    if kind not in CIFAR_N_KINDS:
        raise ValueError(f"unknown CIFAR-N label set {kind!r}: choose one of "
                         f"{', '.join(CIFAR_N_KINDS)}.")
    file, key = CIFAR_N_KINDS[kind]
    p = _find_cifar_n_file(file, path, root, download)
    d = _safe_torch_load(p)
    if key not in d or "clean_label" not in d:
        raise ValueError(f"{p} has keys {sorted(d)}, not {key!r} and 'clean_label': is it "
                         f"{file}? ({kind!r} labels live in {file}.)")
    noisy, clean = np.asarray(d[key], np.int64), np.asarray(d["clean_label"], np.int64)
    if len(noisy) != 50_000 or len(clean) != 50_000:
        raise ValueError(f"{p}: expected 50,000 labels, found {len(noisy)}.")
    if train_labels is not None:
        train_labels = np.asarray(train_labels)
        idx = np.arange(len(train_labels)) if train_index is None else np.asarray(train_index)
        if len(idx) != len(train_labels) or (len(idx) and (idx.min() < 0 or idx.max() >= 50_000)):
            raise ValueError(f"train_index must have one entry in [0, 50000) per training label; "
                             f"got {len(idx)} entries for {len(train_labels)} labels.")
        mismatch = int((clean[idx] != train_labels).sum())
        if mismatch:
            raise ValueError(
                f"CIFAR-N {kind!r} labels do not line up with your training set: {mismatch} of "
                f"{len(idx)} clean labels differ. The file is in torchvision's original "
                f"{CIFAR_N_DATASET[file]} training order; load that dataset unshuffled (an arrays "
                "file must keep the original order, as `promix data` writes it).")
        noisy, clean = noisy[idx], clean[idx]
    return CifarNLabels(kind, noisy, clean)
