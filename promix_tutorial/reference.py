"""Reference runs: full-scale runs made on a GPU, shipped with the repository in a reduced form,
so that notebooks 02, 03 and 05 draw full-scale figures and sliders on any CPU in seconds
(``PROMIX_PROFILE=reference``; nothing is trained).

Layout of the reference folder (`reference_dir`: ``$PROMIX_REFERENCE_DIR``, else the checkout's
``benchmarks/results/reference``)::

    manifest.json               what is there, and how it was made (below)
    promix__sym0.8__seed0/      one folder per run, named like the benchmark cells (cell_name)
        config.json             copied from the run folder
        history.json            copied: every per-epoch record the figures read
        samples_e007.npz        reduced per-sample arrays of each recorded epoch (below)
        samples_e059.npz

A reduced ``samples_eNNN.npz`` keeps only what the notebooks and the widgets read, for the
networks in ``nets`` (default: network 1 only; the K axis stays): ``noisy``/``clean`` uint8,
``losses`` and ``probs`` float16, ``labeled``/``css``/``mhcs``/``lga`` bool, ``prior_l``/
``prior_u`` float32, ``epoch``. `RunHistory.samples` upcasts losses and labels on read. The
checkpoint is not shipped.

``manifest.json`` = ``{"about": ..., "runs": {name: entry}}``; an entry holds ``files`` (path
relative to the run's folder, bytes, sha256), ``bytes`` (their total), ``command`` (what made the
run), ``note``, ``data``, ``preset`` (the closest preset and what differs), ``config`` (the
fields that define it), ``n_train``, ``n_test``, ``device_name``, ``torch``, ``finished`` (when
history.json was last written, UTC), ``exported``, ``final_acc``, ``best_acc``, ``nets`` and
``sample_epochs``. `load_reference` checks every file against its sha256 and the run's config
against the one asked for before it returns anything.

Make and ship one: ``python -m promix_tutorial.reference RUN_DIR NAME --command "..."`` (or
`export_reference`), then commit the folder and manifest.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

# config_differences and IGNORED_FIELDS live in config.py (train.py reuses finished runs with
# them too); they stay importable from here
from .config import (IGNORED_FIELDS, PRESETS, TrainConfig,  # noqa: F401
                     config_differences, make_config)
from .runs import RunHistory, atomic_write, save_json, save_npz, sha256_file
from .results import config_cell_name
from .engine import train_or_load

# makes the named cells on a GPU (`make_command`); `python -m promix_tutorial.reference` ships them
MAKE_COMMAND = "python benchmarks/accuracy_gpu.py --cells"
REFERENCE_TAG = "[shipped reference run, not trained here]"
SUMMARY_FIELDS = ("dataset", "noise", "seed", "method", "ablation", "model", "epochs", "n_train")
# what the data was, by dataset name (the GPU runs read the offline CIFAR-10 copy)
DATA_TEXT = {"cifar10": "CIFAR-10 (offline JPEG-75 copy)", "cifar100": "CIFAR-100",
             "digits": "8x8 digits"}
MASKS = ("labeled", "css", "mhcs", "lga")


class ReferenceRunError(RuntimeError):
    """A reference run is corrupted or does not match the config asked for."""


class MissingReferenceError(ReferenceRunError, FileNotFoundError):
    """The reference folder, its manifest or the asked-for run is not there."""


def reference_dir() -> Path:
    """``$PROMIX_REFERENCE_DIR`` if set, else ``benchmarks/results/reference`` of the checkout."""
    if os.environ.get("PROMIX_REFERENCE_DIR"):
        return Path(os.environ["PROMIX_REFERENCE_DIR"]).expanduser()
    return Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reference"


def _manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.is_file():
        return {"about": "reference runs of promix-tutorial, see promix_tutorial/reference.py",
                "runs": {}}
    return json.loads(path.read_text())


def available_references(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the runs in the manifest (sorted; empty when there is none)."""
    return sorted(_manifest(Path(root) if root else reference_dir())["runs"])


def _closest_preset(config: dict) -> str:
    """The preset a config is ("fast preset"), or the closest one and what differs
    ("tiny preset with epochs=4")."""
    best = None
    for preset in PRESETS:
        try:
            ref = make_config(preset, config["dataset"], config["noise"], seed=config["seed"],
                              method=config["method"], ablation=config["ablation"])
        except ValueError:
            continue
        diff = config_differences(config, ref)
        if best is None or len(diff) < len(best[1]):
            best = (preset, diff)
    if best is None or len(best[1]) > 8:
        return f"custom config ({config['model']})"
    preset, diff = best
    changed = ", ".join(f"{k}={v[0]!r}" for k, v in diff.items())
    return f"{preset} preset" + (f" with {changed}" if changed else "")


# ------------------------------------------------------------------------------ export

def _reduce(arrays: dict, nets: tuple[int, ...]) -> dict:
    K, C = arrays["probs"].shape[0], arrays["probs"].shape[-1]
    if not nets or any(not 0 <= k < K for k in nets):
        raise ValueError(f"nets={nets!r}: the run has {K} network(s), numbered 0 to {K - 1}")
    idx = list(nets)
    labels = np.uint8 if C <= 256 else arrays["noisy"].dtype
    out = {"epoch": np.int64(arrays["epoch"]),
           "noisy": arrays["noisy"].astype(labels), "clean": arrays["clean"].astype(labels),
           "losses": arrays["losses"][idx].astype(np.float16),
           "probs": arrays["probs"][idx].astype(np.float16)}
    out.update({m: arrays[m][idx].astype(bool) for m in MASKS})
    out.update({p: arrays[p][idx].astype(np.float32) for p in ("prior_l", "prior_u")})
    return out


def export_reference(run_dir: str | os.PathLike, name: str, *,
                     dest: str | os.PathLike | None = None, nets: tuple[int, ...] = (0,),
                     command: str, note: str = "", data: str | None = None,
                     epochs: tuple[int, ...] | None = None) -> dict:
    """Copy the finished run in ``run_dir`` into ``dest/name/`` in reduced form (module
    docstring) and add or replace its entry in ``dest/manifest.json``; returns the entry.

    ``command``: what made the run (recorded); ``data``: what the data was (default
    `DATA_TEXT` of the run's dataset); ``epochs``: the recorded epochs whose per-sample arrays
    are shipped (default all; ``()`` for a run only drawn from its history). Everything is
    written into a temporary folder first and swapped in at the end, so an interrupted or
    failed export leaves the previous state of ``dest`` (files and manifest) as it was.
    """
    src, root = Path(run_dir), Path(dest) if dest is not None else reference_dir()
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"name={name!r} must be a plain folder name, e.g. promix__sym0.8__seed0")
    hist = RunHistory(src)
    if len(hist) < hist.config["epochs"]:
        raise ValueError(f"{src} holds an unfinished run ({len(hist)} of "
                         f"{hist.config['epochs']} epochs); only finished runs can be exported.")
    recorded = hist.sample_epochs()
    epochs = recorded if epochs is None else sorted(set(epochs))
    if not set(epochs) <= set(recorded):
        raise ValueError(f"epochs={epochs}: {src} holds per-sample arrays of epochs {recorded}")
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.export-"))
    final, old = root / name, None
    try:
        for fname in ("config.json", "history.json"):
            content = (src / fname).read_bytes()
            atomic_write(stage / fname, lambda f: f.write(content))
        for epoch in epochs:
            with np.load(src / f"samples_e{epoch:03d}.npz") as f:
                save_npz(stage / f"samples_e{epoch:03d}.npz", **_reduce(dict(f), tuple(nets)))
        files = [{"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(stage.iterdir())]
        finished = os.path.getmtime(src / "history.json")
        entry = {
            "name": name, "command": command, "note": note,
            "data": data or DATA_TEXT.get(hist.config["dataset"], hist.config["dataset"]),
            "preset": _closest_preset(hist.config),
            "config": {k: hist.config.get(k) for k in SUMMARY_FIELDS},
            "n_train": hist.info.get("n_train"), "n_test": hist.info.get("n_test"),
            "device_name": hist.info.get("device_name"), "torch": hist.info.get("torch"),
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(finished)),
            "exported": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "final_acc": hist.final_accuracy(), "best_acc": hist.best_accuracy(),
            "nets": list(nets), "sample_epochs": epochs,
            "files": files, "bytes": sum(f["bytes"] for f in files),
        }
        manifest = _manifest(root)
        manifest["runs"] = {**manifest["runs"], name: entry}
        manifest["runs"] = dict(sorted(manifest["runs"].items()))
        # commit: swap the folder in, then write the manifest; undo the swap if either fails
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.old-")) / name
            os.replace(final, old)
        swapped = False
        try:
            os.replace(stage, final)
            swapped = True
            save_json(root / "manifest.json", manifest)
        except BaseException:
            if swapped:
                os.replace(final, stage)
            if old is not None:
                os.replace(old, final)
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
    return entry


# ------------------------------------------------------------------------------ loading

class ReferenceRun(RunHistory):
    """A `RunHistory` read from the reference folder; ``entry`` is its manifest entry."""

    def __init__(self, out_dir, entry: dict):
        super().__init__(out_dir)
        self.entry = entry


def load_reference(name: str, cfg: TrainConfig | None = None, *, verify: bool = True,
                   root: str | os.PathLike | None = None) -> ReferenceRun:
    """The reference run ``name``, after checking (each a clear error, before anything is read):
    it is in the manifest and on disk; every file matches its sha256 (``verify``); ``cfg``,
    when given, equals the run's config except for `IGNORED_FIELDS`."""
    root = Path(root) if root else reference_dir()
    runs = _manifest(root)["runs"]
    folder = root / name
    if name not in runs or not folder.is_dir():
        why = ("no manifest.json there" if not (root / "manifest.json").is_file() else
               "not in manifest.json" if name not in runs else "its folder is missing")
        raise MissingReferenceError(
            f"no reference run {name!r} in {root} ({why}); runs there: "
            f"{', '.join(sorted(runs)) or 'none'}. It is made on a GPU by "
            f"`{make_command([name])}` and exported with `python -m promix_tutorial.reference`; "
            "set PROMIX_REFERENCE_DIR to read runs from another folder, or use another "
            "PROMIX_PROFILE to train the run yourself.")
    entry = runs[name]
    if verify:
        listed = {f["path"] for f in entry["files"]}
        extra = sorted(p.name for p in folder.glob("samples_e*.npz") if p.name not in listed)
        if extra:
            raise ReferenceRunError(f"{folder} holds files its manifest entry does not list: "
                                    f"{', '.join(extra)}; export the run again.")
        for f in entry["files"]:
            path = folder / f["path"]
            if not path.is_file():
                raise ReferenceRunError(f"{path} is missing; export the run again or restore "
                                        "the file (e.g. git checkout).")
            if sha256_file(path) != f["sha256"]:
                raise ReferenceRunError(
                    f"{path} does not match the sha256 in {root / 'manifest.json'}: the file "
                    "was corrupted or edited. Restore it (e.g. git checkout) or export the run "
                    "again.")
    if cfg is not None:
        saved = json.loads((folder / "config.json").read_text())
        diff = config_differences(saved, cfg)
        if diff:
            raise ReferenceRunError(
                f"the reference run {name!r} was made with another config: "
                + ", ".join(f"{k} (run {a!r}, asked {b!r})" for k, (a, b) in diff.items())
                + ". Ask for its config (profile_config('reference', ...)) or train your own "
                "run with another PROMIX_PROFILE.")
    return ReferenceRun(folder, entry)


def notebook_run(profile: str, cfg: TrainConfig, runs_dir: str | os.PathLike,
                 folder: str | os.PathLike, *, load: bool = False, data=None) -> RunHistory:
    """What notebooks call: in the ``reference`` profile the shipped run of ``cfg``'s cell
    (`load_reference`, config checked); otherwise `engine.train_or_load` in
    ``runs_dir / folder`` (which loads a finished run of the same config from elsewhere in the
    shared runs folder, `runs.runs_root`, instead of training it)."""
    if profile == "reference":
        if data is not None:
            raise ValueError("a reference run has its own data; data= cannot be used with "
                             "the reference profile")
        return load_reference(config_cell_name(cfg), cfg)
    return train_or_load(cfg, Path(runs_dir) / folder, load=load, data=data)


def make_command(names: list[str]) -> str:
    """The command that makes the reference runs ``names`` (cell names) on a GPU."""
    return f"{MAKE_COMMAND} {' '.join(names)}"


def shipped_configs(configs: dict[str, TrainConfig],
                    root: str | os.PathLike | None = None) -> dict[str, TrainConfig]:
    """The entries of ``configs`` (label -> config) that have a reference run. The others are
    named on one printed line, with the command that makes them, so that a notebook goes on
    with the runs that exist."""
    names = set(available_references(root))
    cells = {k: config_cell_name(c) for k, c in configs.items()}
    have = {k: c for k, c in configs.items() if cells[k] in names}
    missing = [k for k in configs if k not in have]
    if missing:
        print(f"no reference run yet for: {', '.join(f'{k} ({cells[k]})' for k in missing)}; "
              f"make them on a GPU with `{make_command([cells[k] for k in missing])}` "
              "(then `python -m promix_tutorial.reference`).")
    return have


def available_configs(configs: dict[str, TrainConfig],
                      root: str | os.PathLike | None = None) -> dict[str, TrainConfig]:
    """`shipped_configs`, and `MissingReferenceError` if none of ``configs`` has a reference
    run."""
    have = shipped_configs(configs, root)
    if not have:
        cells = [config_cell_name(c) for c in configs.values()]
        raise MissingReferenceError(
            f"no reference run for any of {', '.join(configs)} in "
            f"{Path(root) if root else reference_dir()}; they are made on a GPU by "
            f"`{make_command(cells)}`.")
    return have


# ------------------------------------------------------------------------------ labels

def describe(run: RunHistory) -> str:
    """One line saying where a run comes from; for a reference run e.g. ``[shipped reference
    run, not trained here] full-scale GPU run made by this package: fast preset, CIFAR-10
    (offline JPEG-75 copy), 50,000 images, 60 epochs, NVIDIA H100 80GB HBM3, <day it
    finished>``;
    "full-scale" when it trained on all of CIFAR-10/100 (``n_train`` None)."""
    entry = getattr(run, "entry", None)
    if entry is None:
        return f"run trained here: {run.out_dir}, {len(run)} epochs"
    device = entry.get("device_name") or "unknown device"
    gpu = device.lower() != "cpu"
    config = entry.get("config", {})
    scale = ("full-scale " if str(config.get("dataset", "")).startswith("cifar")
             and config.get("n_train", 0) is None else "")
    n = entry.get("n_train")
    images = f"{n:,} images" if isinstance(n, int) else "? images"
    return (f"{REFERENCE_TAG} {scale}{'GPU' if gpu else 'CPU'} run made by this package: "
            f"{entry['preset']}, {entry['data']}, {images}, {len(run)} epochs, "
            f"{device if gpu else 'CPU'}, {entry['finished'][:10]}")


def show_source(*runs) -> None:
    """Print `describe` of each reference run among ``runs`` (runs or dicts of runs), each
    distinct line once; print nothing for runs trained here. Notebooks call it under every
    figure so that no reader takes a shipped run for their own."""
    flat = [r for x in runs for r in (x.values() if isinstance(x, dict) else [x])]
    for line in dict.fromkeys(describe(r) for r in flat if isinstance(r, ReferenceRun)):
        print(line)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Export a finished run as a reference run "
                                 "(see promix_tutorial/reference.py).")
    ap.add_argument("run_dir", type=Path, help="the finished run's folder")
    ap.add_argument("name", help="the reference run's name, e.g. promix__sym0.8__seed0")
    ap.add_argument("--command", required=True, help="the command that made the run")
    ap.add_argument("--dest", type=Path, default=None, help=f"default: {reference_dir()}")
    ap.add_argument("--nets", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, nargs="*", default=None,
                    help="recorded epochs whose per-sample arrays are shipped (default all)")
    ap.add_argument("--note", default="")
    ap.add_argument("--data", default=None, help="what the data was (default from the dataset)")
    args = ap.parse_args(argv)
    entry = export_reference(args.run_dir, args.name, dest=args.dest, nets=tuple(args.nets),
                             command=args.command, note=args.note, data=args.data,
                             epochs=args.epochs)
    print(f"{args.name}: {len(entry['files'])} files, {entry['bytes'] / 1e6:.1f} MB -> "
          f"{(args.dest or reference_dir()) / args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
