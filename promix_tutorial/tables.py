"""Markdown tables built from benchmark cell records (`results`): the accuracy table per method
and noise (`markdown_table`), ProMix vs CE per seed (`paired_table`), the figures' claims
(`claims_table`), Fig. 3's rule runs (`rules_table`), Table 5 with its seed spread
(`ablation_table`), a start beside scratch (`start_table`), and `rebuild_table`, which writes
them into a benchmark's markdown file.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from .config import ABLATION_LABELS
from .results import (PAPER_CIFAR10, RULE_LABELS, ROW_ORDER, committed_cells, load_cells,
                      write_if_changed)


def claims_table(cells: list[dict], noises: list[str], row: str = "ProMix") -> str:
    """Fig. 3 and Fig. 4 per noise setting for ``row``'s cells with `claim_metrics`: selection F1
    of ProMix vs the once-tuned GMM and small-loss baselines, and the gain of debiasing on the
    pseudo-labels' accuracy (debiased - plain, points) per seed, at the last epoch / averaged
    over the epochs that made pseudo-labels, each with its mean and half-range over the seeds."""
    with_claims = [c for c in cells if c["row"] == row and c.get("claims")]
    seeds = sorted({c["seed"] for c in with_claims})
    lines = ["| noise | selection F1: ProMix / GMM once / small-loss once / cleanlab (mean) | "
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
        cl = [c["claims"]["cleanlab_f1"] for c in cs if c["claims"].get("cleanlab_f1") is not None]
        cl_text = f"{mean(cl):.3f}" if cl else "n/a"
        lines.append(f"| {n} | {f1:.3f} / {base['gmm']:.3f} / {base['small_loss']:.3f} / {cl_text} | "
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
