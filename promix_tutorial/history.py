"""What a run leaves on disk, and how to read it back.

A run folder holds
- ``config.json``      the `TrainConfig` of the run,
- ``history.json``     one record per finished epoch (test accuracy, selection precision/recall/F1,
                       pseudo-label accuracy, priors, losses, timing; see `train.py`),
- ``checkpoint.pt``    weights, optimizer, priors and selection state of the last finished epoch,
- ``samples_eNNN.npz`` per-sample arrays of chosen epochs (losses, float16 probabilities, masks),
                       what the notebooks' widgets recompute from.
Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted run never leaves a half-written file and loses at most the epoch in progress. Files get
the permissions the user's umask gives (0644 with the usual 022), so an instructor can share runs.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


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
