"""Run folders: what a run leaves on disk, how it is written, found and read back.

A run folder holds
- ``config.json``      the `TrainConfig` of the run,
- ``history.json``     one record per finished epoch (test accuracy, selection precision/recall/F1,
                       pseudo-label accuracy, priors, losses, timing; see `evaluation`),
- ``checkpoint.pt``    weights, optimizer, priors and selection state of the last finished epoch,
- ``samples_eNNN.npz`` per-sample arrays of chosen epochs (losses, float16 probabilities, masks),
                       what the notebooks' widgets recompute from.
Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted run never leaves a half-written file and loses at most the epoch in progress. Files get
the permissions the user's umask gives (0644 with the usual 022), so an instructor can share runs.
This module imports nothing else of the package: every other layer may use it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .config import TrainConfig


def runs_root() -> Path:
    """The folder where the notebooks (and ``promix train --out runs/...`` run from the
    repository root) keep their runs, so a run made one way is found by the other:
    ``$PROMIX_RUNS_DIR`` if set (``~`` expanded, made absolute); else, when the package is
    imported from a source checkout (the package folder's parent holds ``pyproject.toml`` and
    ``promix_tutorial/``, e.g. ``pip install -e .``), that checkout's ``runs/``, whatever the
    working directory (a notebook's kernel runs in ``notebooks/``); else (installed from a
    wheel or git, e.g. on Colab) ``runs/`` in the current working directory."""
    if os.environ.get("PROMIX_RUNS_DIR"):
        return Path(os.environ["PROMIX_RUNS_DIR"]).expanduser().absolute()
    checkout = source_checkout()
    return (checkout or Path.cwd()) / "runs"


def source_checkout() -> Path | None:
    """The repository the package is imported from (the package folder's parent holds
    ``pyproject.toml`` and ``promix_tutorial/``, e.g. after ``pip install -e .``), or None when it
    was installed from a wheel or git (e.g. on Colab)."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "promix_tutorial").is_dir():
        return checkout
    return None


class RunExistsError(RuntimeError):
    """The output folder already holds a run and neither resume nor a new folder was asked for."""


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the run stopped and the last good checkpoint was kept."""


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it over
    ``path`` (atomic on POSIX and Windows). The old file survives any failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep the user's umask instead
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_json(path, obj) -> Path:
    return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def save_npz(path, **arrays) -> Path:
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def samples_path(out_dir, epoch: int) -> Path:
    return Path(out_dir) / f"samples_e{epoch:03d}.npz"


class RunHistory:
    """A finished or running run read from its folder.

    ``records`` is the list of per-epoch dicts; `series` pulls one (possibly nested, dotted) key
    out of every record as a float array (NaN where absent), e.g.
    ``run.series("selection.union.f1")``.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        hist = self.out_dir / "history.json"
        if not hist.is_file():
            raise FileNotFoundError(f"{hist} not found: is {self.out_dir} a run folder written "
                                    "by `promix train`?")
        data = json.loads(hist.read_text())
        self.config: dict = data["config"]
        self.info: dict = data.get("info", {})
        self.records: list[dict] = data["epochs"]

    def __len__(self) -> int:
        return len(self.records)

    def series(self, key: str) -> np.ndarray:
        out = []
        for rec in self.records:
            v = rec
            for part in key.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            out.append(np.nan if v is None else float(v))
        return np.asarray(out)

    @property
    def epochs(self) -> np.ndarray:
        return self.series("epoch").astype(int)

    def final_accuracy(self) -> float:
        """Test accuracy of the last epoch (ensemble of both networks for ProMix)."""
        return float(self.records[-1]["test_acc"])

    def best_accuracy(self) -> float:
        return float(np.nanmax(self.series("test_acc")))

    def sample_epochs(self) -> list[int]:
        """Epochs whose per-sample arrays were saved."""
        return sorted(int(p.stem[-3:]) for p in self.out_dir.glob("samples_e*.npz"))

    def samples(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        """Per-sample arrays of ``epoch`` (default: the last saved one). Reduced copies
        (promix_tutorial/reference.py) store losses as float16 and labels as uint8; they are
        upcast here, so callers always get float32 losses and int64 labels."""
        saved = self.sample_epochs()
        if not saved:
            raise FileNotFoundError(f"no per-sample arrays in {self.out_dir}")
        epoch = saved[-1] if epoch is None else epoch
        if epoch not in saved:
            raise ValueError(f"no per-sample arrays for epoch {epoch}; saved epochs: {saved}")
        with np.load(samples_path(self.out_dir, epoch)) as f:
            out = {k: f[k] for k in f.files}
        for key, dtype in (("losses", np.float32), ("noisy", np.int64), ("clean", np.int64)):
            if key in out:
                out[key] = out[key].astype(dtype, copy=False)
        return out


def resume_point(out: str, epochs: int) -> str | None:
    """``"resuming at epoch 13 of 35 from OUT"`` for a run folder with finished epochs."""
    hist = Path(out) / "history.json"
    if not hist.is_file():
        return None
    done = len(json.loads(hist.read_text()).get("epochs", []))
    if done >= epochs:
        return f"the run in {out} has finished all {epochs} epochs; nothing to resume"
    return f"resuming at epoch {done + 1} of {epochs} from {out}"


# how far find_finished_run looks: runs/cpu/ablations/no_lga is 3 levels below runs/
SEARCH_DEPTH = 5
SEARCH_MAX_FOLDERS = 5000


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds (part of) a run: a checkpoint, history or config."""
    return any((folder / f).is_file() for f in ("checkpoint.pt", "history.json", "config.json"))


def _run_folders(root: Path, depth: int = SEARCH_DEPTH, limit: int = SEARCH_MAX_FOLDERS):
    """Folders holding a ``config.json`` under ``root``, breadth first, at most ``depth`` levels
    down and ``limit`` folders looked into; hidden folders are skipped and a run folder is not
    descended into (so a large or deep tree costs a bounded number of directory listings)."""
    level, seen = [root], 0
    for _ in range(depth + 1):
        below = []
        for folder in level:
            seen += 1
            if seen > limit:
                return
            if (folder / "config.json").is_file():
                yield folder
                continue
            try:
                below += sorted(Path(e.path) for e in os.scandir(folder)
                                if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
        level = below


def find_finished_run(cfg: TrainConfig, root: str | os.PathLike) -> Path | None:
    """A finished run of ``cfg`` under ``root``, or None.

    A folder qualifies when its ``config.json`` equals ``cfg`` as `TrainConfig.differences`
    compares them (the comparison used for reference runs: fields added later are read at their
    earlier behaviour, and `config.IGNORED_FIELDS` -- device, record_epochs, eval_batch_size --
    are ignored), its history holds ``cfg.epochs`` epochs, and it saved the per-sample arrays of
    every epoch ``cfg.record_epochs`` asks for (and of the last one). The search goes at most
    `SEARCH_DEPTH` folders down and looks into at most `SEARCH_MAX_FOLDERS` folders; hidden
    folders are skipped. Several matches: the most recently finished one (``history.json``
    written last), then the first by path."""
    want = set(cfg.record_epochs) | {cfg.epochs - 1}
    found = []
    for folder in _run_folders(Path(root)):
        try:
            if cfg.differences(json.loads((folder / "config.json").read_text())):
                continue
            hist = RunHistory(folder)
            finished = (folder / "history.json").stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):  # unreadable or half-copied: skip
            continue
        if len(hist) >= cfg.epochs and want <= set(hist.sample_epochs()):
            found.append((-finished, str(folder), folder))
    return min(found)[2] if found else None
