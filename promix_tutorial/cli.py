"""The ``promix`` command line: every argparse parser of the package lives here, what each
command does in commands.py.

``promix noise`` prints a noise report, ``promix data`` writes an arrays file for machines
without internet, ``promix train`` trains one run, ``promix sweep`` a grid of them (sweep.py),
``promix pretrain`` a self-supervised start for ``promix train --init``.
Expected errors (bad input, missing data) print one clear line and exit 2, before any work
starts; a sweep with a failed cell exits 1; a run stopped by a non-finite loss exits 3.
"""
from __future__ import annotations

import argparse
import sys

from .commands import cmd_data, cmd_noise, cmd_pretrain, cmd_sweep, cmd_train
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
    "pretrain": "pretrain a preset's network without labels: a start for `promix train --init`",
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


# ----------------------------------------------------------------------------- parsers

def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10",
                   help="cifar10, cifar100, digits (scikit-learn's 8x8 digits, offline) or an "
                        ".npz arrays file; cifar10 reads $PROMIX_CIFAR10_NPZ when it is set")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default: $PROMIX_DATA_DIR, else ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default: $PROMIX_CIFARN_DIR, "
                        "data/cifar-n, else downloaded)")


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
    p.add_argument("--init", default=None, metavar="START",
                   help="start both networks (and the CE baseline) from a `promix pretrain` "
                        "backbone (its file or folder, or cpu-simclr: the start shipped for "
                        "the cpu preset) instead of from scratch")
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

    p = _parser(sub, "pretrain", "Pretrain the backbone of a preset's network on the training "
                "images without their labels (SimCLR), keeping a start every few epochs with "
                "its kNN feature accuracy (the test labels are read only for that figure). "
                "`promix train --init OUT` starts both networks and the CE baseline from it; "
                "an addition to the paper (docs/pretrain.md).",
                "example: promix pretrain --preset cpu --out runs/pretrain/cpu")
    _add_data_args(p)
    p.add_argument("--preset", default=None, metavar="PRESET",
                   help="the training preset whose network to pretrain (default: fast with a "
                        "CUDA GPU, else cpu)")
    p.add_argument("--out", required=True, help="the start's folder (a new or empty folder, or "
                                                "the pretraining to --resume)")
    p.add_argument("--resume", action="store_true", help="continue the pretraining in --out")
    p.add_argument("--epochs", type=int, default=None, help="default: 100 (tiny: 30)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 512 (tiny: 128)")
    p.add_argument("--images", type=int, default=None,
                   help="a random subset of the training images (default: all)")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (default: as for promix train)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any PretrainConfig field, e.g. --set lr=0.1 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no epoch lines")
    p.set_defaults(func=cmd_pretrain)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded with what it makes
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
