"""What the notebooks call around the method: the setup line of every notebook, their runs with
one line each (and one line for all of their warnings), and tables rounded for reading.

Every notebook starts with the same two cells: a Colab install cell (it must run before this
package can be imported, so it is plain text; tests/test_colab_install.py keeps the copies
equal) and ``PROFILE, RUNS = setup()``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .config import RULE_SETTING, TrainConfig
from .profiles import PROFILE_PRESET, current_profile, notebook_runs_dir, profile_config
from .devices import choose_threads, set_threads

DATA_TEXT = {"digits": "8x8 digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
WHOLE_DATA_TEXT = {"digits": "the 8x8 digits", "cifar10": "all of CIFAR-10",
                   "cifar100": "all of CIFAR-100"}


class Setup(NamedTuple):
    profile: str
    runs: Path | None


def describe_profile(profile: str) -> str:
    """What ``profile`` trains on, from its preset: e.g. ``"cpu preset, 5,000 CIFAR-10
    training images"``, ``"tiny preset, the 8x8 digits"``; for ``reference`` that nothing is
    trained."""
    if profile == "reference":
        return "full-scale GPU runs shipped with the repository, read, never trained here"
    cfg = profile_config(profile)
    data = (f"{cfg.n_train:,} {DATA_TEXT.get(cfg.dataset, cfg.dataset)} training images"
            if cfg.n_train else WHOLE_DATA_TEXT.get(cfg.dataset, cfg.dataset))
    return f"{PROFILE_PRESET[profile]} preset, {data}"


def setup(runs: bool = True) -> Setup:
    """The profile (``$PROMIX_PROFILE``, `profiles.current_profile`) and the folder this
    notebook's runs go to (`profiles.notebook_runs_dir`; None with ``runs=False``); sets PyTorch's
    CPU threads as ``promix train`` chooses them for the profile's preset
    (`devices.choose_threads`); prints all three on one line (neither folder nor threads in the
    ``reference`` profile, which trains nothing)."""
    profile = current_profile()
    folder = notebook_runs_dir(profile) if runs else None
    where = ""
    if folder is not None and profile != "reference":
        where = f" | runs in {folder}" + (" (removed when the kernel exits)"
                                          if profile == "ci" else "")
        # as `promix train` does: threads fighting over a shared CPU slow a run many times
        threads, _ = choose_threads(PROFILE_PRESET[profile])
        set_threads(threads)
        where += f" | {threads} CPU thread{'s' if threads > 1 else ''}"
    print(f"profile: {profile} ({describe_profile(profile)}){where}")
    return Setup(profile, folder)


def notebook_runs(profile: str, configs: dict[str, TrainConfig], runs_dir: str | os.PathLike | None,
                  folders: dict[str, str] | None = None, *, load: bool = False,
                  data=None) -> dict:
    """The runs of ``configs`` (label -> config), each trained or loaded in
    ``runs_dir / folders[label]`` (default: the config's cell name, e.g. ``no_dbr__sym0.8__seed0``;
    `reference.notebook_run`); in the ``reference`` profile only the shipped ones, with one line
    naming the others and the command that makes them (`reference.shipped_configs`). Prints one
    line per run (last and best test accuracy) and at most one line for all their warnings
    (`warnings_summary`). Returns label -> `RunHistory`."""
    from .reference import notebook_run, shipped_configs
    from .results import config_cell_name

    width = max((len(k) for k in configs), default=0)
    if profile == "reference":
        configs = shipped_configs(configs)
    runs = {}
    for label, cfg in configs.items():
        folder = (folders or {}).get(label) or config_cell_name(cfg)
        runs[label] = notebook_run(profile, cfg, runs_dir, folder, load=load, data=data)
        print(f"{label:>{width}}: last {runs[label].final_accuracy():.2%}, "
              f"best {runs[label].best_accuracy():.2%}")
    line = warnings_summary(runs)
    if line:
        print(line)
    return runs


def rule_run_configs(profile: str, run, noise: str, **overrides) -> dict[str, TrainConfig]:
    """Fig. 3 as the paper drew it: label -> the config of each baseline rule's own run
    (`TrainConfig.selection` = ``"gmm"`` | ``"small_loss"``), its threshold or forget rate tuned
    once per setting with the true noise, as the paper re-tuned the baselines: where ``profile``
    has committed seeds (`results.RULE_TUNING_RESULTS`; cpu: the benchmark's), their median
    (`results.rule_tuning`, so the notebook trains, or loads, the benchmark's rule cells); else
    ProMix ``run``'s own recorded grids (`metrics.once_tuned`). The rest as
    ``profile_config(profile, noise, **overrides)``. Empty for a run recorded before the grids
    existed."""
    from .metrics import once_tuned
    from .results import RULE_LABELS, RULE_TUNING_RESULTS, committed_cells, rule_tuning

    seeds = committed_cells(RULE_TUNING_RESULTS[profile]) if profile in RULE_TUNING_RESULTS \
        else None
    configs = {}
    for rule, label in RULE_LABELS.items():
        value = rule_tuning(seeds or [], noise, rule)
        if value is None:
            value, _ = once_tuned(run.records, rule)
        if value is not None:
            configs[label] = profile_config(profile, noise, selection=rule,
                                            **{RULE_SETTING[rule]: value}, **overrides)
    return configs


def warnings_summary(runs: dict) -> str | None:
    """One line for every warning the runs recorded (each epoch record's ``warnings``, e.g. an
    empty labeled set): how many per run, in which epochs, and the first one's text; None when
    there is none. The training loop records them and leaves printing them to its caller."""
    per_run, example = [], None
    for label, run in runs.items():
        epochs = [r["epoch"] + 1 for r in run.records for _ in r.get("warnings") or ()]
        if epochs:
            span = f"epoch {epochs[0]}" if epochs[0] == epochs[-1] else \
                f"epochs {epochs[0]}-{epochs[-1]}"
            per_run.append(f"{label} {len(epochs)} ({span})")
            example = example or next(w for r in run.records for w in r.get("warnings") or ())
    if not per_run:
        return None
    text = example.split(": ", 1)[1] if example.startswith("epoch ") else example
    return (f"warnings: {', '.join(per_run)}; e.g. {text} "
            "(all in each epoch's record: run.records[epoch]['warnings'])")


def runs_table(runs: dict, index: str = "run", *, paper: dict | None = None,
               paper_column: str = "paper"):
    """A pandas table of ``runs`` (label -> `RunHistory`), one row each, rounded for reading:
    last and best test accuracy (%, one decimal), the final selection's F1 (two decimals; "-"
    for a run without selection, e.g. CE), network 1's labeled set in the last epoch, training
    minutes and images per second. ``paper``: label -> the paper's number, as a last column."""
    import pandas as pd

    rows = []
    for label, run in runs.items():
        last = run.records[-1]
        sel = last.get("selection") or {}
        row = {index: label,
               "last acc (%)": f"{100 * run.final_accuracy():.1f}",
               "best acc (%)": f"{100 * run.best_accuracy():.1f}",
               "selection F1": f"{sel['union']['f1']:.2f}" if sel else "-",
               "labeled (last epoch)": f"{sel['labeled']['count']:,}" if sel else "-",
               "train minutes": f"{sum(r.get('seconds', 0.0) for r in run.records) / 60:.1f}",
               "images/s": f"{last['images_per_s']:,.0f}" if last.get("images_per_s") else "-"}
        if paper is not None:
            value = paper.get(label)
            row[paper_column] = "-" if value is None else f"{value:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index(index)
