"""The ``promix`` command line: every argparse parser of the package lives here.

``promix noise`` prints a noise report, ``promix data`` writes an arrays file for machines
without internet, ``promix train`` trains one run, ``promix sweep`` a grid of them (sweep.py).
Expected errors (bad input, missing data) print one clear line and exit 2, before any work
starts; a sweep with a failed cell exits 1; a run stopped by a non-finite loss exits 3.
"""
from __future__ import annotations

import argparse
import sys

from .data import DataUnavailableError

NOISE_GRAMMAR = """noise settings (--noise):
  sym:R       a random fraction R of the labels redrawn uniformly over all classes, the
              true class included (the actual rate is R(1 - 1/C)), e.g. sym:0.5
  asym:R      a fraction R flipped to a similar class (CIFAR-10: truck->automobile,
              bird->airplane, deer->horse, cat<->dog; CIFAR-100: the next class of the
              superclass), e.g. asym:0.4
  pairflip:R  a fraction R flipped to the next class, e.g. pairflip:0.45
  human:SET   CIFAR-N human labels: aggre, worst, random1, random2, random3 (CIFAR-10N) or
              noisy (CIFAR-100N), e.g. human:worst
  none        the clean labels"""

COMMANDS = {  # name -> the one line `promix` and `promix --help` print for it
    "noise": "inject label noise into a dataset and print the noise report",
    "data": "write an arrays file (.npz) from a CIFAR download, for machines without internet",
    "train": "train ProMix (or the CE baseline) and write a run folder",
    "sweep": "train a grid of runs (noises x seeds x methods x ablations) and its tables",
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help, unless it has none worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS) \
                and action.option_strings and action.nargs != 0 \
                and not isinstance(action.default, list):
            text += " (default: %(default)s)"
        return text


def _parser(sub, name: str, description: str, epilog: str | None = None):
    return sub.add_parser(name, help=COMMANDS[name], description=description, epilog=epilog,
                          formatter_class=_Formatter)


# ----------------------------------------------------------------------------- helpers

def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10",
                   help="cifar10, cifar100, digits (scikit-learn's 8x8 digits, offline) or an "
                        ".npz arrays file; cifar10 reads $PROMIX_CIFAR10_NPZ when it is set")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default: $PROMIX_DATA_DIR, else ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default: $PROMIX_CIFARN_DIR, "
                        "data/cifar-n, else downloaded)")


def _field_type(annotation) -> str:
    """The readable type of a TrainConfig field: int, float, bool, str or a tuple of ints."""
    t = str(annotation)
    for name in ("bool", "tuple", "int", "float"):
        if t.startswith(name):
            return "comma-separated integers" if name == "tuple" else name
    return "str"


def parse_set(pairs: list[str]) -> dict:
    """``--set FIELD=VALUE`` pairs -> typed overrides (int, float, bool, None, tuples of ints).
    An unknown field or a value of the wrong type raises ValueError naming the field and the
    type it takes."""
    import dataclasses
    from .config import TrainConfig

    types = {f.name: _field_type(f.type) for f in dataclasses.fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in types:
            raise ValueError(f"--set {pair!r}: write FIELD=VALUE with FIELD one of "
                             f"{', '.join(sorted(types))}.")
        kind = types[key]
        try:
            if raw.lower() == "none":
                out[key] = None
            elif kind == "bool":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                out[key] = raw.lower() in ("true", "1")
            elif kind.startswith("comma"):
                out[key] = tuple(int(v) for v in raw.split(",") if v)
            else:
                out[key] = {"int": int, "float": float, "str": str}[kind](raw)
        except ValueError:
            expected = {"bool": "true or false", "int": "an integer", "float": "a number"}
            raise ValueError(f"--set {pair!r}: {key} takes {expected.get(kind, kind)}, not "
                             f"{raw!r}.") from None
    return out


def _export_data_locations(args) -> None:
    """--data-dir / --cifar-n for the loaders that read their locations from the environment."""
    import os
    from pathlib import Path

    if args.data_dir:
        os.environ["PROMIX_DATA_DIR"] = args.data_dir
    if args.cifar_n:
        p = Path(args.cifar_n).expanduser()
        os.environ["PROMIX_CIFARN_DIR"] = str(p if p.is_dir() else p.parent)


PROFILE_NAMES = {"gpu": "fast", "ci": "tiny"}  # the notebooks' profile names -> presets


def resolve_preset(name: str | None) -> tuple[str, str | None]:
    """The preset to train and a line to print about the choice (None when nothing to say):
    no --preset -> ``fast`` with a CUDA GPU, else ``cpu``; a notebook profile name (gpu, ci) ->
    its preset. An unknown name raises ValueError naming the choices."""
    from .config import PRESETS
    if name is None:
        import torch
        if torch.cuda.is_available():
            return "fast", "no --preset given: using fast (full CIFAR-10, minutes on this GPU)"
        return "cpu", ("no --preset given and no CUDA GPU: using cpu (a 5,000-image CIFAR-10 "
                       "subset; --preset tiny runs in about a minute)")
    if name in PRESETS:
        return name, None
    if name in PROFILE_NAMES:
        return PROFILE_NAMES[name], (f"--preset {name} is a notebook profile name; it runs the "
                                     f"{PROFILE_NAMES[name]} preset")
    raise ValueError(f"--preset {name!r} is not a preset: choose one of {', '.join(PRESETS)} "
                     f"(or a profile name: {', '.join(PROFILE_NAMES)}).")


def check_out_folder(out: str, resume: bool) -> None:
    """Refuse, before any work, to resume a run that is not there or to write a run into a
    non-empty folder that holds no run (raises ValueError with what to do)."""
    from pathlib import Path
    folder = Path(out)
    has_run = (folder / "checkpoint.pt").is_file()
    if resume and not has_run:
        raise ValueError(f"--resume: {folder} holds no run to continue (no checkpoint.pt); "
                         "leave out --resume to start one there.")
    if not resume and not has_run and folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"{folder} is a non-empty folder that holds no run; choose a new or "
                         "empty --out so nothing in it is overwritten.")


def next_steps(cfg, out: str) -> str:
    """Where a finished run is and what to do with it next (and whether the notebooks, which
    reuse finished runs of the config they ask for from `config.runs_root`, will find it)."""
    from pathlib import Path
    from .config import runs_root
    notebook = {"sym:0.8": "02_progressive_selection.ipynb (selection), "
                           "04_full_promix_run.ipynb"}.get(cfg.noise, "04_full_promix_run.ipynb")
    if cfg.noise.startswith("human:"):
        notebook = "06_real_world_noise.ipynb"
    root = runs_root()
    found = Path(out).resolve().is_relative_to(root.resolve())
    return (f"results: {out}/history.json (every epoch), {out}/samples_e*.npz (per-sample "
            f"arrays), {out}/checkpoint.pt\nnext: load it in Python with "
            f"`from promix_tutorial import RunHistory; run = RunHistory({str(out)!r})`, "
            f"or open notebooks/{notebook}" +
            ("; a notebook asking for this config loads this run instead of training it"
             if found else f"; the notebooks look for finished runs in {root}, not here"))


# ----------------------------------------------------------------------------- commands

def cmd_noise(args) -> int:
    from .data import load_dataset
    from .noise import NoiseSpec, noisy_labels_for

    spec = NoiseSpec.parse(args.noise)  # fail on a typo before loading anything
    _export_data_locations(args)
    ds = load_dataset(args.dataset, root=args.data_dir)
    noisy = noisy_labels_for(ds, spec, seed=args.seed, cifar_n_path=args.cifar_n)
    print(f"dataset {ds.name}: {len(ds.y_train)} train / {len(ds.y_test)} test images "
          f"{ds.image_shape}, {ds.num_classes} classes; seed {args.seed}")
    print(noisy.report(ds.classes))
    return 0


def cmd_data(args) -> int:
    """Write an arrays file from the CIFAR archive (or folder) torchvision downloads, so that a
    machine without internet trains from one file."""
    from .data import read_cifar_python, write_arrays_file
    ds = read_cifar_python(args.source)
    out = write_arrays_file(ds, args.out)
    var = "PROMIX_CIFAR10_NPZ" if ds.name == "cifar10" else None
    use = (f"export {var}={out} (then --dataset cifar10)" if var else f"--dataset {out}")
    print(f"promix data: wrote {out}: {ds.name}, {len(ds.y_train)} train / {len(ds.y_test)} test "
          f"images, {ds.num_classes} classes, original order; use it with {use}")
    return 0


def cmd_train(args) -> int:
    from .config import make_config

    preset, note = resolve_preset(args.preset)
    check_out_folder(args.out, args.resume)
    _export_data_locations(args)
    overrides = parse_set(args.set or [])
    for name in ("epochs", "seed", "device"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.baseline:
        overrides["method"] = args.baseline
    if args.ablation:
        overrides["ablation"] = args.ablation
    cfg = make_config(preset, args.dataset, args.noise, **overrides)  # validated here
    from .devices import choose_threads, prepare_data, set_threads
    from .engine import train
    from .runs import resume_point
    threads, why = choose_threads(preset, args.threads)
    set_threads(threads)
    data = prepare_data(cfg)  # a data error stops here, before the header
    if note:
        print(f"promix train: {note}")
    where = resume_point(args.out, cfg.epochs) if args.resume else None
    print(f"promix train: {cfg.method} preset={preset} dataset={cfg.dataset} noise={cfg.noise} "
          f"model={cfg.model} epochs={cfg.epochs} seed={cfg.seed} threads={threads} ({why}) -> "
          f"{args.out}" + (f"\npromix train: {where}" if where else ""))
    # per-batch bars only on a terminal: written to a file or a pipe every frame would stay
    bars = not (args.quiet or args.no_bars) and sys.stderr.isatty()
    hist = train(cfg, args.out, resume=args.resume, progress=bars, epoch_lines=not args.quiet,
                 data=data)
    print(f"done: final test accuracy {hist.final_accuracy():.2%}, best "
          f"{hist.best_accuracy():.2%}; run folder {args.out}")
    print(next_steps(cfg, args.out))
    return 0


def cmd_sweep(args) -> int:
    """Run a grid of cells (promix_tutorial/sweep.py), or with --table only rebuild its tables."""
    from pathlib import Path
    from . import cells as cl, sweep as sw

    if args.table:
        out = Path(args.table)
        saved = sw.read_sweep_file(out)
        if saved is None:
            raise ValueError(f"{out} holds no {sw.SWEEP_FILE}: it is not a sweep folder.")
        print("\n\n".join(sw.rebuild_tables(saved, sw.sweep_cells(saved, out), out)))
        return 0
    if not args.preset or not args.out:
        raise ValueError("give --preset (one or more presets) and --out (the sweep folder), or "
                         "--table DIR to rebuild a sweep's tables.")
    presets = []
    for name in args.preset:
        preset, note = resolve_preset(name)
        if note:
            print(f"promix sweep: {note}")
        presets.append(preset)

    def unique(values) -> tuple:
        return tuple(dict.fromkeys(values))

    sweep = sw.Sweep(presets=unique(presets), datasets=unique(args.dataset),
                     noises=unique(args.noise), seeds=unique(args.seeds),
                     methods=unique(args.methods), ablations=unique(args.ablations),
                     overrides=parse_set(args.set or []))
    sweep.validate()
    out = Path(args.out)
    cells = sw.sweep_cells(sweep, out)  # every config is built, so validated, here
    sw.check_sweep_folder(sweep, out)
    launcher = cl.launcher_from_args(args, cells, out / "logs",
                                     gpus=int(bool({"fast", "paper"} & set(sweep.presets))))
    if args.list:
        for cell in cells:
            print(f"{'done' if cell.finished else '    '}  {cell}")
        return 0
    _export_data_locations(args)
    sw.write_sweep_file(sweep, cells, out)
    todo = sum(not c.finished for c in cells)
    print(f"promix sweep: {len(cells)} cells, {todo} to run"
          + (f", on {cl.describe(launcher)}" if todo else "") + f" -> {out}", flush=True)
    bars = not args.no_bars and sys.stderr.isatty()
    report = cl.run_cells(cells, launcher, bars=bars,
                          on_done=lambda cell, record: sw.rebuild_tables(sweep, cells, out))
    print("\n\n".join(sw.rebuild_tables(sweep, cells, out)))
    print(f"promix sweep: {len(report.trained)} trained, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed; tables in {out}" + "".join(
              f"\n  failed: {label}: {why}" for label, why in report.failed.items()))
    return 1 if report.failed else 0


# ----------------------------------------------------------------------------- parsers

def add_launcher_args(p: argparse.ArgumentParser, default: str = "local") -> None:
    """--launcher, --jobs, --threads-per-job and the SLURM options (promix sweep and the
    benchmark scripts); `sweep.launcher_from_args` reads them."""
    from .cells import LAUNCHERS, SLURM_THREADS, SLURM_TIME_MIN
    g = p.add_argument_group("where the cells run (submitit)")
    g.add_argument("--launcher", default=default, metavar="{" + ",".join(LAUNCHERS) + "}",
                   help="local: parallel jobs on this machine; slurm: a SLURM job array; "
                        "inline: one cell after another in this process")
    g.add_argument("--jobs", type=int, default=None,
                   help="local: parallel jobs (default: the cores / --threads-per-job, one "
                        "with a CUDA GPU, at most one per cell)")
    g.add_argument("--threads-per-job", type=int, default=None,
                   help=f"threads (OMP_NUM_THREADS, torch) per job; slurm: its cpus-per-task "
                        f"(default: local: the cores / --jobs; slurm: {SLURM_THREADS})")
    g.add_argument("--partition", default=None,
                   help="slurm: the partition (default: the cluster's)")
    g.add_argument("--gpus-per-job", type=int, default=None,
                   help="slurm: GPUs per cell (default: 1 for the fast and paper presets, else 0)")
    g.add_argument("--time-min", type=int, default=None,
                   help=f"slurm: time limit per cell in minutes (default: {SLURM_TIME_MIN}; a "
                        "cell cut off is requeued and resumes from its checkpoint); local: "
                        "none unless given")
    g.add_argument("--array-parallelism", type=int, default=None,
                   help="slurm: at most this many cells at once (default: submitit's, 256)")


def _add_sweep_args(p: argparse.ArgumentParser) -> None:
    from .config import ABLATIONS
    p.add_argument("--preset", nargs="+", default=None, metavar="PRESET",
                   help="one or more of paper, fast, cpu, tiny (profile names gpu, ci accepted)")
    p.add_argument("--dataset", nargs="+", default=["cifar10"], metavar="DATASET",
                   help="cifar10, cifar100, digits or .npz arrays files (default: cifar10)")
    p.add_argument("--noise", nargs="+", default=["sym:0.5"], metavar="NOISE",
                   help="noise settings (see below; default: sym:0.5)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                   help="seeds (noise, initialisation, order; default: 0)")
    p.add_argument("--methods", nargs="+", default=["promix"], metavar="METHOD",
                   help="promix and/or ce (default: promix)")
    p.add_argument("--ablations", nargs="+", default=["none"], metavar="ABLATION",
                   help="ProMix rows: none (ProMix itself), " + ", ".join(
                       a for a in ABLATIONS if a != "none") + " (default: none)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a TrainConfig field in every cell (repeatable)")
    p.add_argument("--out", default=None, help="the sweep folder (sweep.json, run folders, "
                                               "results, table.md, logs)")
    p.add_argument("--table", default=None, metavar="DIR",
                   help="only rebuild and print the tables of the sweep in DIR (no training)")
    p.add_argument("--list", action="store_true", help="list the cells and which are done")
    p.add_argument("--no-bars", action="store_true", help="no progress bar over the cells")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default: $PROMIX_DATA_DIR, else ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default: $PROMIX_CIFARN_DIR)")
    add_launcher_args(p, default="local")


def build_parser() -> argparse.ArgumentParser:
    from .config import ABLATIONS, METHODS, PRESETS
    ap = argparse.ArgumentParser(
        prog="promix", formatter_class=_Formatter,
        description="ProMix (IJCAI 2023) for learning with noisy labels: inject noise, train "
                    "ProMix and its baselines, run the paper's ablations.",
        epilog="first run: promix train --dataset digits --noise sym:0.5 --preset tiny "
               "--out runs/tiny_sym50\nmore: promix COMMAND --help")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    p = _parser(sub, "noise", "Inject label noise into a dataset's training labels and print "
                "what it did: the actual noise rate, per class, and the transition matrix.",
                NOISE_GRAMMAR)
    _add_data_args(p)
    p.add_argument("--noise", default="sym:0.5", help="the noise setting (see below)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draw")
    p.set_defaults(func=cmd_noise)

    p = _parser(sub, "data", "Write an arrays file (.npz: x_train, y_train, x_test, y_test, "
                "uint8, the original training order) from the CIFAR archive torchvision "
                "downloads, so a machine without internet trains from one file.")
    p.add_argument("--source", required=True,
                   help="cifar-10-python.tar.gz / cifar-100-python.tar.gz as torchvision "
                        "downloads it, or its extracted folder")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.set_defaults(func=cmd_data)

    p = _parser(sub, "train", "Train ProMix (two peer networks) or the cross-entropy baseline "
                "on noisy labels and write a run folder: config.json, history.json (every "
                "epoch), checkpoint.pt (resumable) and per-sample arrays for the notebooks.",
                NOISE_GRAMMAR + "\n\nexample: promix train --dataset cifar10 --noise sym:0.8 "
                "--preset cpu --out runs/cpu_sym80")
    _add_data_args(p)
    p.add_argument("--noise", default="sym:0.5", help="the noise setting (see below)")
    p.add_argument("--preset", default=None, metavar="{" + ",".join(PRESETS) + "}",
                   help="paper (the authors' recipe), fast (minutes on one GPU), cpu (a "
                        "5,000-image CIFAR-10 subset for a laptop), tiny (digits, about a "
                        "minute); default: fast with a CUDA GPU, else cpu. The notebooks' "
                        "profile names gpu and ci are accepted.")
    p.add_argument("--out", required=True,
                   help="run folder (a new or empty folder, or the run to --resume)")
    p.add_argument("--ablation", choices=list(ABLATIONS), default=None,
                   help="a Table 5 row: " + ", ".join(ABLATIONS))
    p.add_argument("--baseline", choices=[m for m in METHODS if m != "promix"], default=None,
                   help="train a baseline instead of ProMix (ce: cross-entropy, one network)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the noise, initialisation, order and augmentation (default: 0)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: "
                                                  "auto, a CUDA GPU when there is one)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (default: $OMP_NUM_THREADS if set, 1 for the "
                        "tiny preset, else the cores that are free)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any TrainConfig field, e.g. --set rho=0.3 (repeatable)")
    p.add_argument("--no-bars", action="store_true",
                   help="no progress bars, only the one-line epoch summaries (for log files)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    p.set_defaults(func=cmd_train)

    p = _parser(sub, "sweep", "Train a grid of cells (presets x datasets x noises x seeds x "
                "methods and ablations) on this machine or as a SLURM job array, and build "
                "its results tables. Rerunning the same command skips finished cells and "
                "resumes interrupted ones.", NOISE_GRAMMAR)
    _add_sweep_args(p)
    p.set_defaults(func=cmd_sweep)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .runs import NonFiniteLossError, RunExistsError
    try:
        return args.func(args)
    except (ValueError, DataUnavailableError, RunExistsError, FileNotFoundError) as e:
        print(f"promix {args.command}: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"promix {args.command}: stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        how = ("rerun the same command: finished cells are skipped, the others resume; SLURM "
               "jobs keep running" if args.command == "sweep" else "resume with --resume")
        print(f"\npromix {args.command}: interrupted; finished epochs are saved ({how}).",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
