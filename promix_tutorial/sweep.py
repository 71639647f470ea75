"""Sweeps: the grid ``promix sweep`` runs, its folder and its tables (the cells run through
cells.py).

`Sweep` is the grid that ``promix sweep`` runs (presets x datasets x noises x seeds x methods and
ablations, with ``--set`` overrides); it is saved as ``OUT/sweep.json`` next to the results:

    OUT/sweep.json              the grid (a rerun with another grid is refused)
    OUT/CELL/                   one run folder per cell (results.cell_name)
    OUT/results/CELL.json       its record (results.summarize_run)
    OUT/table.md                the tables (tables.rebuild_table)
    OUT/logs/                   submitit's pickles and job logs (local, slurm)

With several presets or datasets, each (preset, dataset) pair gets its own folder
``OUT/PRESET__DATASET/`` holding its cells, results and table.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .cells import Cell, make_cell
from .config import ABLATIONS, METHODS, TrainConfig, make_config

SWEEP_FILE = "sweep.json"
GRID_FIELDS = ("dataset", "noise", "seed", "method", "ablation")  # not for --set


# ----------------------------------------------------------------------------- the grid

@dataclass(frozen=True)
class Sweep:
    """A grid of cells: every preset x dataset x noise x seed x row, where the rows are the
    ``methods`` in order and ProMix once per ablation of ``ablations`` (``none``: ProMix
    itself; CE has no ablations). ``overrides`` (TrainConfig fields) apply to every cell."""

    presets: tuple[str, ...]
    datasets: tuple[str, ...] = ("cifar10",)
    noises: tuple[str, ...] = ("sym:0.5",)
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = ("promix",)
    ablations: tuple[str, ...] = ("none",)
    overrides: dict = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        """(method, ablation) pairs in order."""
        return [(m, a) for m in self.methods
                for a in (self.ablations if m == "promix" else ("none",))]

    def points(self) -> list[dict]:
        """Every cell's preset, dataset, noise, seed, method and ablation, in grid order."""
        return [dict(preset=p, dataset=d, noise=n, seed=s, method=m, ablation=a)
                for p in self.presets for d in self.datasets for n in self.noises
                for s in self.seeds for m, a in self.rows()]

    def validate(self) -> None:
        """Raise ValueError naming the first bad value (before anything is written)."""
        from .config import PRESETS
        from .noise import NoiseSpec
        for name in ("presets", "datasets", "noises", "seeds", "methods", "ablations"):
            if not getattr(self, name):
                raise ValueError(f"the sweep's {name} are empty: give at least one.")
        for p in self.presets:
            if p not in PRESETS:
                raise ValueError(f"unknown preset {p!r}: choose from {', '.join(PRESETS)}.")
        for n in self.noises:
            NoiseSpec.parse(n)  # names the bad setting
        for s in self.seeds:
            if not isinstance(s, int) or s < 0:
                raise ValueError(f"seed {s!r} is not a seed: seeds are integers >= 0.")
        for m in self.methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r}: choose from {', '.join(METHODS)}.")
        for a in self.ablations:
            if a not in ABLATIONS:
                raise ValueError(f"unknown ablation {a!r}: choose from {', '.join(ABLATIONS)}.")
        if set(self.ablations) != {"none"} and "promix" not in self.methods:
            raise ValueError("ablations are ProMix rows, but the methods do not include promix.")
        for d in self.datasets:
            if d.endswith(".npz") and not Path(d).expanduser().is_file():
                raise ValueError(f"dataset {d}: no such arrays file.")
        grid = set(self.overrides) & set(GRID_FIELDS)
        if grid:
            raise ValueError(f"--set {sorted(grid)[0]}=...: that is an axis of the grid; give it "
                             "with --dataset/--noise/--seeds/--methods/--ablations instead.")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "Sweep":
        return cls(**{k: (dict(v) if k == "overrides" else tuple(v)) for k, v in d.items()})

    def command(self, out) -> str:
        """The ``promix sweep`` command line that runs (and resumes) this grid into ``out``."""
        import shlex
        words = ["promix", "sweep", "--preset", *self.presets, "--dataset", *self.datasets,
                 "--noise", *self.noises, "--seeds", *map(str, self.seeds),
                 "--methods", *self.methods, "--ablations", *self.ablations]
        for k, v in self.overrides.items():
            v = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v
            words += ["--set", f"{k}={v}"]
        return shlex.join(words + ["--out", str(out)])


def group_name(preset: str, dataset: str) -> str:
    return f"{preset}__{Path(dataset).stem if dataset.endswith('.npz') else dataset}"


def data_text(cfg: TrainConfig) -> str:
    """The ``data`` field of a sweep cell's record."""
    subset = (f", stratified {cfg.n_train} train / {cfg.n_test or 'all'} test images"
              if cfg.n_train else "")
    return cfg.dataset + subset


def sweep_cells(sweep: Sweep, out) -> list[Cell]:
    """The cells of ``sweep`` laid out under ``out`` (module docstring); builds and so validates
    every config (ValueError naming the field)."""
    out = Path(out)
    configs = [(pt["preset"], make_config(pt["preset"], pt["dataset"], pt["noise"],
                                          seed=pt["seed"], method=pt["method"],
                                          ablation=pt["ablation"], **sweep.overrides))
               for pt in sweep.points()]
    groups = list(dict.fromkeys(group_name(p, cfg.dataset) for p, cfg in configs))
    cells = []
    for preset, cfg in configs:
        folder = out if len(groups) == 1 else out / group_name(preset, cfg.dataset)
        cell = make_cell(cfg, folder, folder / "results", sweep.command(out), data_text(cfg))
        label = str((folder / cell.name).relative_to(out))
        cells.append(dataclasses.replace(cell, run_dir=folder / cell.name, label=label))
    labels = [c.label for c in cells]
    for label in labels:
        if labels.count(label) > 1:  # e.g. the tiny preset trains digits for cifar10 and cifar100
            raise ValueError(f"two cells of the grid train the same run {label}: drop the "
                             "duplicate preset or dataset.")
    return cells


def rebuild_tables(sweep: Sweep, cells: list[Cell], out) -> list[str]:
    """Each (preset, dataset) folder's table.md from its results files (`sweep_cells`'s
    ``cells``); returns the tables' text. The paper's numbers are shown for CIFAR-10 only."""
    from .tables import rebuild_table
    groups = {c.results_dir: (pt["preset"], c.config.dataset)
              for pt, c in zip(sweep.points(), cells)}
    tables = []
    for results_dir, (preset, dataset) in groups.items():
        heading = (f"sweep {out}: {preset} preset, {dataset}\n\nBuilt by `promix sweep --table "
                   f"{out}` from {results_dir}/*.json.")
        tables.append(rebuild_table(results_dir, results_dir.parent / "table.md", heading,
                                    list(sweep.noises), paper=dataset == "cifar10")["main"])
    return tables


def read_sweep_file(out) -> Sweep | None:
    path = Path(out) / SWEEP_FILE
    return Sweep.from_dict(json.loads(path.read_text())["sweep"]) if path.is_file() else None


def check_sweep_folder(sweep: Sweep, out) -> None:
    """Refuse, before any work, a folder that holds another grid's sweep, or files but no
    sweep (ValueError saying what to do). Extending a sweep is refused too: give the larger
    grid a new --out."""
    out = Path(out)
    saved = read_sweep_file(out)
    if saved is None:
        if out.is_dir() and any(out.iterdir()):
            raise ValueError(f"{out} is a non-empty folder without a {SWEEP_FILE}; choose a new "
                             "or empty --out so nothing in it is overwritten.")
        return
    if saved.to_dict() != sweep.to_dict():
        diff = [f"{k} {a!r} there, {b!r} here" for k, (a, b) in
                ((k, (saved.to_dict()[k], sweep.to_dict()[k])) for k in sweep.to_dict())
                if a != b]
        raise ValueError(f"{out / SWEEP_FILE} describes another sweep ({'; '.join(diff)}); "
                         f"rerun it with `{saved.command(out)}`, or give this grid a new --out.")


def write_sweep_file(sweep: Sweep, cells: list[Cell], out) -> None:
    """``OUT/sweep.json``: the grid, its command and its cells (written once)."""
    from .runs import save_json
    path = Path(out) / SWEEP_FILE
    if not path.is_file():
        save_json(path, {"sweep": sweep.to_dict(), "command": sweep.command(out),
                         "cells": [c.label for c in cells]})
