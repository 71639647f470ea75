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


def claims_table(cells: list[dict], noises: list[str], row: str = "ProMix") -> str:
    """Fig. 3 and Fig. 4 per noise setting for ``row``'s cells with `claim_metrics`: selection F1
    of ProMix vs the once-tuned GMM and small-loss baselines, and the gain of debiasing on the
    pseudo-labels' accuracy (debiased - plain, points) per seed, at the last epoch / averaged
    over the epochs that made pseudo-labels, each with its mean and half-range over the seeds."""
    with_claims = [c for c in cells if c["row"] == row and c.get("claims")]
    seeds = sorted({c["seed"] for c in with_claims})
    lines = ["| noise | selection F1: ProMix / GMM once / small-loss once (mean) | "
             + " | ".join(f"debiasing gain, seed {s}: last epoch / over the epochs" for s in seeds)
             + " | last epoch: mean ± half-range | over the epochs: mean ± half-range |",
             "|" + "---|" * (len(seeds) + 4)]
    mean = lambda xs: statistics.fmean(xs) if xs else float("nan")  # noqa: E731

    def summary(values: dict) -> str:
        return "{:+.2f} ± {:.2f}".format(*_mean_spread(list(values.values()))) if values else ""

    for n in noises:
        cs = [c for c in with_claims if c["noise"] == n]
        if not cs:
            continue
        f1 = mean([c["claims"]["selection_f1"] for c in cs])
        base = {k: mean([c["claims"]["once_tuned"][k]["f1"] for c in cs
                         if c["claims"]["once_tuned"].get(k)]) for k in ("gmm", "small_loss")}
        last = {c["seed"]: 100 * (c["claims"]["pseudo_acc_debiased"] - c["claims"]["pseudo_acc"])
                for c in cs if c["claims"]["pseudo_acc"] is not None}
        curve = {c["seed"]: c["claims"]["pseudo_gain_mean"] for c in cs
                 if c["claims"].get("pseudo_gain_mean") is not None}
        def entry(s: int) -> str:   # "last / curve" of seed s; blank when the seed is absent
            if s not in last and s not in curve:
                return ""
            return " / ".join(f"{g[s]:+.2f}" if s in g else "n/a" for g in (last, curve))

        per_seed = [entry(s) for s in seeds]
        lines.append(f"| {n} | {f1:.3f} / {base['gmm']:.3f} / {base['small_loss']:.3f} | "
                     + " | ".join(per_seed) + f" | {summary(last)} | {summary(curve)} |")
    return "\n".join(lines)


def rules_table(cells: list[dict], noise: str) -> str | None:
    """Fig. 3 as the paper drew it, at ``noise``: each selection rule trained as its own run
    (ProMix's CSS + MHCS, and the runs of `RULE_LABELS` with their once-tuned threshold or forget
    rate), with its labeled set's F1 at the last epoch per seed, mean ± half-range, and the
    run's test accuracy; then cleanlab's confident learning on the ProMix runs' networks
    (``cleanlab_f1`` of `claim_metrics`). None without a rule run at ``noise``."""
    at = [c for c in cells if c["noise"] == noise and c.get("selection")]
    if not any(c["row"] in RULE_LABELS.values() for c in at):
        return None
    seeds = sorted({c["seed"] for c in at})
    setting = {"ProMix": lambda cfg: f"R {cfg['rho']:g}, tau {cfg['tau']:g}",
               RULE_LABELS["gmm"]: lambda cfg: f"threshold {cfg['gmm_threshold']:g}",
               RULE_LABELS["small_loss"]: lambda cfg: f"forget rate {cfg['forget_rate']:g}"}
    lines = ["| selection (its own run) | setting | " + " | ".join(f"seed {s}" for s in seeds)
             + " | F1 mean ± half-range | test accuracy, mean (%) |",
             "|" + "---|" * (len(seeds) + 4)]

    def line(label: str, what: str, f1: dict, acc: list[float]) -> str:
        m, h = _mean_spread(list(f1.values()))
        return (f"| {label} | {what} | " + " | ".join(f"{f1[s]:.3f}" if s in f1 else ""
                                                      for s in seeds)
                + f" | {m:.3f} ± {h:.3f} | " + (f"{statistics.fmean(acc):.1f}" if acc else "")
                + " |")

    for row in ["ProMix", *RULE_LABELS.values()]:
        cs = [c for c in at if c["row"] == row]
        if cs:
            what = "; ".join(sorted({setting[row](c["config"]) for c in cs}))
            lines.append(line(row, what, {c["seed"]: c["selection"]["f1"] for c in cs},
                              [100 * c["final_acc"] for c in cs]))
    cl = {c["seed"]: c["claims"]["cleanlab_f1"] for c in at if c["row"] == "ProMix"
          and (c.get("claims") or {}).get("cleanlab_f1") is not None}
    if cl:
        lines.append(line("cleanlab (confident learning), on the ProMix runs' network 1",
                          "nothing to tune", cl, []))
    return "\n".join(lines)


def ablation_table(cells: list[dict], noise: str, row: str = "ProMix",
                   fair: str | None = "w/o LGA") -> str:
    """Table 5 at ``noise``: each ablation row's last-epoch test accuracy per seed, its mean and
    half-range, and its difference from ``row`` (mean over the seeds both have). The verdict says
    whether the row lies **below** ``row`` by more than the seed spread: its mean is lower than
    ``row``'s by more than the larger of the two half-ranges (over those shared seeds). With one
    shared seed there is no spread and no verdict ("1 seed"); a row higher than ``row`` by more
    than the spread says so ("no: *above* ..."). A column counts the shared seeds in which the
    row is below / above ``row`` (seed-matched: the same seed gives both runs the same noisy
    labels and subset), which shows a consistent sign that the half-ranges hide.

    ``fair``: the rows after it in Table 5 also have LGA switched off, so their fair reference is
    "w/o LGA", not ProMix; a last column gives their difference from it (shared seeds)."""
    acc = {(c["row"], c["seed"]): 100 * c["final_acc"] for c in cells if c["noise"] == noise}
    seeds = sorted({s for _, s in acc})

    def diff_to(r: str, ref: str) -> tuple[str, str, str]:
        both = [s for s in seeds if (r, s) in acc and (ref, s) in acc]
        if r == ref or not both:
            return "", "", ""
        a, sa = _mean_spread([acc[r, s] for s in both])
        b, sb = _mean_spread([acc[ref, s] for s in both])
        verdict = ("1 seed" if len(both) < 2 else "**yes**" if b - a > max(sa, sb) else
                   "no: *above* by more than the spread" if a - b > max(sa, sb) else "no")
        below = sum(acc[r, s] < acc[ref, s] for s in both)
        above = sum(acc[r, s] > acc[ref, s] for s in both)
        return f"{a - b:+.2f} ({len(both)})", verdict, f"{below} / {above}"

    after_fair = ROW_ORDER[ROW_ORDER.index(fair) + 1:] if fair in ROW_ORDER else ()
    lines = ["| row | " + " | ".join(f"seed {s}" for s in seeds)
             + f" | mean ± half-range | - {row} (shared seeds) | below {row} by more than "
             f"the spread? | seeds below / above {row} |"
             + (f" - {fair} (its fair reference) |" if after_fair else ""),
             "|" + "---|" * (len(seeds) + 5 + bool(after_fair))]
    for r in ROW_ORDER:
        if r not in ABLATION_LABELS.values() or not any((r, s) in acc for s in seeds):
            continue
        mean, spread = _mean_spread([acc[r, s] for s in seeds if (r, s) in acc])
        entries = [f"{acc[r, s]:.2f}" if (r, s) in acc else "" for s in seeds]
        diff, verdict, signs = diff_to(r, row)
        line = (f"| {r} | " + " | ".join(entries)
                + f" | {mean:.2f} ± {spread:.2f} | {diff} | {verdict} | {signs} |")
        if after_fair:
            line += f" {diff_to(r, fair)[0] if r in after_fair else ''} |"
        lines.append(line)
    return "\n".join(lines)


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


def committed_ablation_table(noise: str, name: str = "accuracy_cpu") -> str | None:
    """`ablation_table` at ``noise`` of the cells committed in ``benchmarks/results/NAME``
    (`committed_cells`), or None when there are none or none of them is an ablation row there."""
    cells = committed_cells(name)
    return ablation_table(cells, noise) if cells and _has_ablation_rows(cells, noise) else None


def _has_ablation_rows(cells: list[dict], noise: str) -> bool:
    return any(c["noise"] == noise and c["ablation"] != "none" for c in cells)


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (max(values) - min(values)) / 2


def aggregate(cells: list[dict]) -> dict:
    """``{(row, noise): {"final", "best", "final_spread", "best_spread", "f1", "seeds",
    "wall_minutes", "sharing_gpu"}}`` with means over seeds and the half-range as spread
    (percent)."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["row"], c["noise"]), []).append(c)
    out = {}
    for key, cs in groups.items():
        final, fs = _mean_spread([100 * c["final_acc"] for c in cs])
        best, bs = _mean_spread([100 * c["best_acc"] for c in cs])
        f1s = [c["selection"]["f1"] for c in cs if c.get("selection")]
        out[key] = {"final": final, "final_spread": fs, "best": best, "best_spread": bs,
                    "f1": statistics.fmean(f1s) if f1s else None,
                    "precision": statistics.fmean(c["selection"]["precision"] for c in cs
                                                  if c.get("selection")) if f1s else None,
                    "recall": statistics.fmean(c["selection"]["recall"] for c in cs
                                               if c.get("selection")) if f1s else None,
                    "seeds": sorted(c["seed"] for c in cs),
                    "wall_minutes": statistics.fmean(c["wall_seconds"] for c in cs) / 60,
                    "sharing_gpu": max(c.get("cells_sharing_gpu", 1) for c in cs)}
    return out


def markdown_table(cells: list[dict], noises: list[str], paper: bool = True) -> str:
    """The accuracy table: a row per method, a column per noise setting. Each entry:
    ``last / best`` (mean ± half-range over seeds, %), selection P/R/F1, minutes (with how many
    runs shared the GPU, when a cell's record says more than one: its time is then longer than
    alone), seeds; with ``paper``, the paper's CIFAR-10 number (last) after ``paper``."""
    agg = aggregate(cells)
    head = "| method | " + " | ".join(noises) + " |"
    lines = [head, "|" + "---|" * (len(noises) + 1)]
    # with no cell yet, CE and ProMix are shown as "(not run)" beside the paper's numbers
    shown = [r for r in ROW_ORDER if any((r, n) in agg for n in noises)] or ROW_ORDER[:2]
    for row in shown:
        entries = []
        for n in noises:
            a = agg.get((row, n))
            theirs = PAPER_CIFAR10.get(row, {}).get(n) if paper else None
            ptxt = f"<br>paper {theirs:.2f}" if theirs is not None else ""
            if a is None:
                entries.append(f"(not run){ptxt}")
                continue
            spread = (f" ± {a['final_spread']:.1f}" if len(a["seeds"]) > 1 else "")
            txt = f"**{a['final']:.1f}**{spread} / {a['best']:.1f}"
            if a["f1"] is not None:
                txt += f"<br>sel. P {a['precision']:.2f} R {a['recall']:.2f} F1 {a['f1']:.2f}"
            shared = (f" ({a['sharing_gpu']} runs sharing the GPU)" if a["sharing_gpu"] > 1
                      else "")
            txt += (f"<br>{a['wall_minutes']:.0f} min{shared}, seeds "
                    f"{','.join(map(str, a['seeds']))}")
            entries.append(txt + ptxt)
        lines.append(f"| {row} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def rebuild_table(results_dir: str | os.PathLike, table_path: str | os.PathLike, heading: str,
                  noises: list[str], paper: bool = True,
                  table5_noise: str | None = None) -> dict[str, str]:
    """Rebuild the markdown tables (`markdown_table`, `paired_table`, `claims_table` and, with
    ``table5_noise``, `ablation_table`) from the cell files in ``results_dir`` into
    ``table_path`` (under ``heading``), rewritten (atomically) only when its text changes.
    ``paper``: print the paper's CIFAR-10 numbers beside ours. Returns the tables by name:
    ``"main"``, ``"seeds"``, and ``"claims"`` / ``"rules NOISE"`` / ``"table5"`` where there is
    something to show."""
    results_dir, table_path = Path(results_dir), Path(table_path)
    cells = load_cells(results_dir) if results_dir.is_dir() else []
    tables = {"main": markdown_table(cells, noises, paper=paper),
              "seeds": paired_table(cells, noises)}
    text = (f"# {heading}\n\n{tables['main']}\n\nProMix vs CE per seed (last-epoch test "
            f"accuracy, %):\n\n{tables['seeds']}\n")
    if any(c.get("claims") for c in cells):
        tables["claims"] = claims_table(cells, noises)
        text += (f"\nFig. 3 and Fig. 4 at the last epoch of the ProMix cells (`claim_metrics`; "
                 f"debiasing gain = pseudo-label accuracy on the unlabeled set, debiased minus "
                 f"plain, points, at the last epoch and averaged over the epochs that made "
                 f"pseudo-labels):\n\n{tables['claims']}\n")
    for n in noises:
        rules = rules_table(cells, n)
        if rules:
            tables[f"rules {n}"] = rules
            text += (f"\nFig. 3 with each selection rule trained as its own run, {n}: the "
                     f"labeled set's F1 at the last epoch (`rules_table`):\n\n{rules}\n")
    if table5_noise and _has_ablation_rows(cells, table5_noise):
        tables["table5"] = ablation_table(cells, table5_noise)
        text += f"\nTable 5 at {table5_noise} (`ablation_table`):\n\n{tables['table5']}\n"
    write_if_changed(table_path, text)
    return tables


def write_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds it (its modification
    time then stays); True when written."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    atomic_write(path, lambda f: f.write(text.encode()))
    return True


def paired_table(cells: list[dict], noises: list[str], row: str = "ProMix",
                 baseline: str = "CE") -> str:
    """Per seed, ``row`` vs ``baseline`` (last-epoch test accuracy, %), and the mean difference
    over the seeds both have; noise settings where they share no seed are left out."""
    acc = {(c["row"], c["noise"], c["seed"]): 100 * c["final_acc"] for c in cells}
    seeds = sorted({c["seed"] for c in cells})
    lines = ["| noise | " + " | ".join(f"seed {s}" for s in seeds)
             + f" | {row} - {baseline}, mean |", "|" + "---|" * (len(seeds) + 2)]
    for n in noises:
        both = [s for s in seeds if (row, n, s) in acc and (baseline, n, s) in acc]
        if not both:
            continue
        entries = [f"{acc[row, n, s]:.2f} vs {acc[baseline, n, s]:.2f}" if s in both else ""
                   for s in seeds]
        diff = statistics.fmean(acc[row, n, s] - acc[baseline, n, s] for s in both)
        lines.append(f"| {n} | " + " | ".join(entries) + f" | {diff:+.2f} |")
    return "\n".join(lines)


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


def start_table(start: list[dict], scratch: list[dict], noises: list[str]) -> str:
    """Each method from a self-supervised start beside the same method from scratch (last-epoch
    test accuracy, mean ± half-range over each side's seeds, %) and the difference of the
    means; a noise setting without both sides is left out."""
    a, b = aggregate(start), aggregate(scratch)
    lines = ["| noise | method | from the start | from scratch | start - scratch |",
             "|---|---|---|---|---|"]
    for n in noises:
        for row in ("ProMix", "CE"):
            if (row, n) not in a or (row, n) not in b:
                continue
            s, z = a[row, n], b[row, n]
            lines.append(f"| {n} | {row} | {s['final']:.1f} ± {s['final_spread']:.1f} (seeds "
                         f"{','.join(map(str, s['seeds']))}) | {z['final']:.1f} ± "
                         f"{z['final_spread']:.1f} (seeds {','.join(map(str, z['seeds']))}) | "
                         f"{s['final'] - z['final']:+.1f} |")
    return "\n".join(lines)
