"""Benchmark results: one JSON file per table cell (a method, a noise setting, a seed), and the
markdown tables rebuilt from whatever cell files exist (benchmarks/accuracy_cpu.py and
benchmarks/accuracy_gpu.py, README).

The paper's numbers are kept here, labelled as such, to print beside ours.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from .config import ABLATION_LABELS, TrainConfig
from .runs import RunHistory, atomic_write, save_json, source_checkout
from .metrics import once_tuned

# The paper's CIFAR-10 numbers (PreAct ResNet-18, 600 epochs, full data; Tables 1 and 5).
# ProMix: average of the last 10 epochs; CE: as cited in Table 1. None: not reported.
PAPER_CIFAR10 = {
    "CE": {"sym:0.5": 79.4, "sym:0.8": 62.9, "asym:0.4": 85.0, "human:worst": None},
    "ProMix": {"sym:0.5": 97.30, "sym:0.8": 95.05, "asym:0.4": 96.51, "human:worst": 96.34},
    "w/o LGA": {"sym:0.8": 94.32, "human:worst": 95.57},
    "w/o MHCS": {"sym:0.8": 93.17, "human:worst": 95.11},
    "w/o Base Selection": {"sym:0.8": 39.59, "human:worst": 74.09},
    "w/o CBR": {"sym:0.8": 93.96, "human:worst": 95.26},
    "w/o DBR": {"sym:0.8": 94.07, "human:worst": 95.07},
    "with Only Clean": {"sym:0.8": 93.82, "human:worst": 95.18},
}
# a run of ProMix's loop whose clean set comes from a Fig. 3 baseline's rule (config.selection)
RULE_LABELS = {"gmm": "GMM rule (DivideMix)", "small_loss": "small-loss rule"}
ROW_ORDER = (["CE", "ProMix"] + [ABLATION_LABELS[a] for a in ABLATION_LABELS if a != "none"]
             + list(RULE_LABELS.values()))


def cell_name(method: str, ablation: str, noise: str, seed: int,
              selection: str = "promix") -> str:
    """File stem of a cell: ``promix__sym0.5__seed0``, ``no_lga__sym0.8__seed0``, ``ce__...``,
    and ``gmm_rule__...`` / ``small_loss_rule__...`` for a run with a Fig. 3 rule's selection."""
    what = ("ce" if method == "ce" else f"{selection}_rule" if selection != "promix" else
            "promix" if ablation == "none" else ablation)
    return f"{what}__{noise.replace(':', '')}__seed{seed}"


def config_cell_name(cfg) -> str:
    """`cell_name` of a `TrainConfig` or a saved config dict."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    return cell_name(get("method"), get("ablation"), get("noise"), get("seed"),
                     get("selection", "promix"))


def select_cells(cells: dict[str, dict], names: list[str],
                 groups: dict[str, list[str]] | None = None) -> list[str]:
    """The cell names that ``names`` ask for, in order and without repeats: cell names,
    ``all``, or the name of a group (``groups``: group name -> cell names). An unknown name
    raises ValueError saying how to list the cells."""
    groups = {"all": list(cells), **(groups or {})}
    out = []
    for n in names:
        if n in groups:
            out += groups[n]
        elif n in cells:
            out.append(n)
        else:
            raise ValueError(f"unknown cell {n!r}; run --list to see the cell names")
    return list(dict.fromkeys(out))


def row_label(method: str, ablation: str, selection: str = "promix") -> str:
    if method == "ce":
        return "CE"
    return RULE_LABELS[selection] if selection != "promix" else ABLATION_LABELS[ablation]


def hardware() -> dict:
    """What the numbers were measured on."""
    info = {"machine": platform.machine(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def summarize_run(hist: RunHistory, wall_seconds: float, command: str, data: str) -> dict:
    """The record of one finished run for its cell file."""
    cfg = hist.config
    last = hist.records[-1]
    sel = last.get("selection", {}).get("union")
    return {
        "cell": config_cell_name(cfg),
        "row": row_label(cfg["method"], cfg["ablation"], cfg.get("selection", "promix")),
        "method": cfg["method"],
        "ablation": cfg["ablation"], "noise": cfg["noise"], "seed": cfg["seed"],
        "dataset": cfg["dataset"], "n_train": hist.info["n_train"], "n_test": hist.info["n_test"],
        "epochs": len(hist), "final_acc": hist.final_accuracy(), "best_acc": hist.best_accuracy(),
        "selection": ({k: sel[k] for k in ("precision", "recall", "f1")} if sel else None),
        "first_selection": first_selection(hist),
        "claims": claim_metrics(hist),
        "test_acc_per_epoch": [round(float(a), 5) for a in hist.series("test_acc")],
        "train_seconds": round(float(sum(hist.series("seconds"))), 1),
        "wall_seconds": round(wall_seconds, 1), "actual_noise_rate": hist.info["actual_noise_rate"],
        "hardware": hardware(), "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": data,
        "command": command, "config": cfg,
    }


def first_selection(hist: RunHistory) -> dict | None:
    """Precision, recall and F1 of the first ProMix epoch's labeled set (None without one)."""
    first = next((r["selection"]["union"] for r in hist.records
                  if r.get("phase") == "promix" and r.get("selection")), None)
    return {k: first[k] for k in ("precision", "recall", "f1")} if first else None


def claim_metrics(hist: RunHistory) -> dict | None:
    """What the notebooks' figures claim, at the last epoch of a run with selection (None for
    CE): Fig. 3, ProMix's selection F1 (CSS + MHCS) beside the GMM and small-loss baselines
    tuned once over the run (`metrics.once_tuned`: their one threshold / forget rate and its
    F1) and cleanlab's confident learning (``cleanlab_f1``, None where not recorded); Fig. 4,
    the accuracy of the pseudo-labels on the unlabeled set, plain and debiased
    (Eq. 6), and ``pseudo_gain_mean``: debiased minus plain (points) averaged over every epoch
    that made pseudo-labels, i.e. the gap between Fig. 4's two curves (a single epoch's gap moves
    by about a point from epoch to epoch at the cpu scale: ~1,600 unlabeled samples). A
    benchmark's seeds then give the seed spread of each claim."""
    last = hist.records[-1]
    if "selection" not in last:
        return None
    once = {}
    for k in ("gmm", "small_loss"):
        value, f1 = once_tuned(hist.records, k)
        once[k] = None if value is None else {"value": value, "f1": round(float(f1[-1]), 5)}
    plain, debiased = last.get("pseudo_acc"), last.get("pseudo_acc_debiased")
    gaps = [100 * (r["pseudo_acc_debiased"] - r["pseudo_acc"]) for r in hist.records
            if r.get("pseudo_acc") is not None and r.get("pseudo_acc_debiased") is not None]
    cleanlab = last.get("baselines", {}).get("cleanlab", {}).get("f1")
    return {"selection_f1": last["selection"]["union"]["f1"], "once_tuned": once,
            "cleanlab_f1": None if cleanlab is None else round(float(cleanlab), 5),
            "pseudo_acc": plain, "pseudo_acc_debiased": debiased,
            "pseudo_gain_mean": round(statistics.fmean(gaps), 4) if gaps else None}


def add_missing_claims(results_dir: str | os.PathLike, runs_dir: str | os.PathLike) -> list[str]:
    """Cell files written before `claim_metrics` existed (or before it recorded
    ``pseudo_gain_mean`` or ``cleanlab_f1``), or before ``first_selection`` was recorded, gain
    them from their run
    folder (``runs_dir/CELL``, when it holds the finished run); nothing else in them changes.
    Returns the cells updated."""
    done = []
    for path in sorted(Path(results_dir).glob("*.json")):
        record = json.loads(path.read_text())
        run = Path(runs_dir) / record["cell"]
        current = ("claims" in record and (record["claims"] is None or {
            "pseudo_gain_mean", "cleanlab_f1"} <= set(record["claims"]))
                   and "first_selection" in record)
        if current or not (run / "history.json").is_file():
            continue
        hist = RunHistory(run)
        if len(hist) != record["epochs"]:
            continue
        record.setdefault("first_selection", first_selection(hist))
        record["claims"] = claim_metrics(hist)
        write_cell(results_dir, record)
        done.append(record["cell"])
    return done


def done_line(record: dict, label: str | None = None) -> str:
    """``[done] CELL: final 95.10% best 95.30% in 1.2 min`` for a cell's record."""
    return (f"[done] {label or record['cell']}: final {record['final_acc']:.2%} best "
            f"{record['best_acc']:.2%} in {record['wall_seconds'] / 60:.1f} min")


def write_cell(folder: str | os.PathLike, record: dict) -> Path:
    return save_json(Path(folder) / f"{record['cell']}.json", record)


def load_cells(folder: str | os.PathLike) -> list[dict]:
    """Every cell file in ``folder`` (sorted by name)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def committed_cells(name: str = "accuracy_cpu") -> list[dict] | None:
    """The cell files committed with the repository in ``benchmarks/results/NAME`` (e.g. the
    seeds of `benchmarks/accuracy_cpu.py` that notebook 05 shows beside its own run), or None
    when the package is not imported from a source checkout (`runs.source_checkout`) or the
    folder is not there."""
    checkout = source_checkout()
    folder = None if checkout is None else checkout / "benchmarks" / "results" / name
    return load_cells(folder) if folder is not None and folder.is_dir() else None


# Where each notebook profile's committed Table 5 seeds are (benchmarks/results/NAME): the cpu
# profile's are cells of `benchmarks/accuracy_cpu.py --start cpu-simclr` (sym:0.8), the ci
# profile's the rows of `benchmarks/ablation_rows.py --profile ci --seeds 0 1 2 3 4` (digits).
ABLATION_SEED_RESULTS = {"cpu": "accuracy_cpu_start", "ci": "ablation_rows_ci"}


# Where each profile's committed Fig. 3 seeds are (benchmarks/results/NAME): the ProMix cells
# the cpu profile's rule runs are tuned from, so notebook 02 trains the benchmark's rule cells.
RULE_TUNING_RESULTS = {"cpu": "accuracy_cpu_start"}


def rule_tuning(cells: list[dict], noise: str, rule: str) -> float | None:
    """The threshold (``rule="gmm"``) or forget rate (``"small_loss"``) a Fig. 3 rule's own runs
    train with at ``noise``, tuned once per setting as the paper re-tuned the baselines: the
    median over the seeds of the ProMix ``cells``' once-tuned value (`metrics.once_tuned`, their
    ``claims``); None when no ProMix cell at ``noise`` recorded one."""
    values = [c["claims"]["once_tuned"][rule]["value"] for c in cells
              if c.get("row") == "ProMix" and c.get("noise") == noise
              and ((c.get("claims") or {}).get("once_tuned") or {}).get(rule)]
    return statistics.median(values) if values else None


def write_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds it (its modification
    time then stays); True when written."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    atomic_write(path, lambda f: f.write(text.encode()))
    return True


def strength_stem(point: str, seed: int, noise: str = "sym:0.8") -> str:
    """The file stem of a `benchmarks/start_strength.py` point (the noise named only when it is
    not sym:0.8)."""
    return f"{point}__seed{seed}" if noise == "sym:0.8" else \
        f"{point}__{noise.replace(':', '')}__seed{seed}"


def records_across_noises(recs: list[dict]) -> dict[str, list[dict]]:
    """Warm-up-only records of `benchmarks/start_strength.py` (``point``, ``seed``, ``noise``,
    ``actual_noise_rate``, ``first_selection``): point -> its first seed's records sorted by
    noise rate, for the points run at more than one noise rate (the warm-up obstacle's plot,
    `plots.plot_first_selection_vs_noise`)."""
    out: dict[str, list[dict]] = {}
    for r in recs:
        out.setdefault(r["point"], []).append(r)
    return {p: sorted((r for r in rs if r["seed"] == rs[0]["seed"]),
                      key=lambda r: r["actual_noise_rate"])
            for p, rs in out.items() if len({r["noise"] for r in rs}) > 1}


