"""The ``promix`` command line. ``promix noise ...`` prints a noise report; ``promix train``
trains one run, ``promix sweep`` a grid of them (sweep.py). Expected errors (bad input, missing
data) print one clear line and exit 2; a sweep with a failed cell exits 1."""
from __future__ import annotations

import argparse
import sys

from .data import DataUnavailableError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10",
                   help="cifar10, cifar100, digits or an .npz arrays file (default cifar10; "
                        "cifar10 reads $PROMIX_CIFAR10_NPZ when set)")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default $PROMIX_DATA_DIR or ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default $PROMIX_CIFARN_DIR, data/cifar-n, "
                        "else downloaded)")


def cmd_noise(args) -> int:
    from .data import load_dataset
    from .noise import NoiseSpec, noisy_labels_for

    spec = NoiseSpec.parse(args.noise)  # fail on a typo before loading anything
    ds = load_dataset(args.dataset, root=args.data_dir)
    noisy = noisy_labels_for(ds, spec, seed=args.seed, cifar_n_path=args.cifar_n)
    print(f"dataset {ds.name}: {len(ds.y_train)} train / {len(ds.y_test)} test images "
          f"{ds.image_shape}, {ds.num_classes} classes; seed {args.seed}")
    print(noisy.report(ds.classes))
    return 0


def _parse_set(pairs: list[str]) -> dict:
    """``--set field=value`` pairs -> typed overrides (int, float, bool, None, tuples)."""
    import dataclasses
    from .config import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in types:
            raise ValueError(f"--set {pair!r}: write FIELD=VALUE with FIELD one of "
                             f"{', '.join(sorted(types))}.")
        t = str(types[key])
        if raw.lower() == "none":
            out[key] = None
        elif t.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {pair!r}: {key} takes true or false.")
            out[key] = raw.lower() in ("true", "1")
        elif t.startswith("tuple"):
            out[key] = tuple(int(v) for v in raw.split(",") if v)
        elif t.startswith("int"):
            out[key] = int(raw)
        elif t.startswith("float"):
            out[key] = float(raw)
        else:
            out[key] = raw
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
                       "subset, ~13 min on 2 idle cores; --preset tiny runs in a minute)")
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
            f"`from promix_tutorial.history import RunHistory; run = RunHistory({str(out)!r})`, "
            f"or open notebooks/{notebook}" +
            ("; a notebook asking for this config loads this run instead of training it"
             if found else f"; the notebooks look for finished runs in {root}, not here"))


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
    from .train import train

    preset, note = resolve_preset(args.preset)
    check_out_folder(args.out, args.resume)
    _export_data_locations(args)
    overrides = _parse_set(args.set or [])
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device is not None:
        overrides["device"] = args.device
    if args.baseline:
        overrides["method"] = args.baseline
    if args.ablation:
        overrides["ablation"] = args.ablation
    cfg = make_config(preset, args.dataset, args.noise, **overrides)  # validated here
    if note:
        print(f"promix train: {note}")
    print(f"promix train: {cfg.method} preset={preset} dataset={cfg.dataset} "
          f"noise={cfg.noise} model={cfg.model} epochs={cfg.epochs} -> {args.out}")
    # per-batch bars only on a terminal: written to a file or a pipe every frame would stay
    bars = not (args.quiet or args.no_bars) and sys.stderr.isatty()
    hist = train(cfg, args.out, resume=args.resume, progress=bars, epoch_lines=not args.quiet)
    print(f"done: final test accuracy {hist.final_accuracy():.2%}, best "
          f"{hist.best_accuracy():.2%}; run folder {args.out}")
    print(next_steps(cfg, args.out))
    return 0


def cmd_sweep(args) -> int:
    """Run a grid of cells (promix_tutorial/sweep.py), or with --table only rebuild its tables."""
    from pathlib import Path
    from . import sweep as sw

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
                     overrides=_parse_set(args.set or []))
    sweep.validate()
    out = Path(args.out)
    cells = sw.sweep_cells(sweep, out)  # every config is built, so validated, here
    sw.check_sweep_folder(sweep, out)
    launcher = sw.launcher_from_args(args, cells, out / "logs",
                                     gpus=int(bool({"fast", "paper"} & set(sweep.presets))))
    if args.list:
        for cell in cells:
            print(f"{'done' if cell.finished else '    '}  {cell}")
        return 0
    _export_data_locations(args)
    sw.write_sweep_file(sweep, cells, out)
    todo = sum(not c.finished for c in cells)
    print(f"promix sweep: {len(cells)} cells, {todo} to run"
          + (f", on {sw.describe(launcher)}" if todo else "") + f" -> {out}", flush=True)
    bars = not args.no_bars and sys.stderr.isatty()
    report = sw.run_cells(cells, launcher, bars=bars,
                          on_done=lambda cell, record: sw.rebuild_tables(sweep, cells, out))
    print("\n\n".join(sw.rebuild_tables(sweep, cells, out)))
    print(f"promix sweep: {len(report.trained)} trained, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed; tables in {out}" + "".join(
              f"\n  failed: {label}: {why}" for label, why in report.failed.items()))
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="promix", description="ProMix for learning with noisy labels")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("noise", help="inject label noise and print the noise report")
    _add_data_args(p)
    p.add_argument("--noise", default="sym:0.5",
                   help="sym:R, asym:R, pairflip:R, human:SET (aggre, worst, random1-3, noisy) "
                        "or none (default sym:0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_noise)

    p = sub.add_parser("data", help="write an arrays file (.npz) from a CIFAR download, for "
                                    "machines without internet")
    p.add_argument("--source", required=True,
                   help="cifar-10-python.tar.gz / cifar-100-python.tar.gz as torchvision "
                        "downloads it, or its extracted folder")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.set_defaults(func=cmd_data)

    from .config import ABLATIONS, METHODS, PRESETS
    p = sub.add_parser("train", help="train ProMix (or the CE baseline) and write a run folder")
    _add_data_args(p)
    p.add_argument("--noise", default="sym:0.5", help="noise setting, as for `promix noise`")
    p.add_argument("--preset", default=None, metavar="{" + ",".join(PRESETS) + "}",
                   help="paper (the authors' recipe), fast (GPU minutes), cpu (~13 min on a "
                        "2-core CPU), tiny (digits, about a minute); default: fast with a CUDA "
                        "GPU, else cpu. The notebooks' profile names gpu and ci are accepted.")
    p.add_argument("--out", required=True, help="run folder (checkpoint, history, per-sample arrays)")
    p.add_argument("--ablation", choices=list(ABLATIONS), default=None,
                   help="a Table 5 row: " + ", ".join(ABLATIONS))
    p.add_argument("--baseline", choices=[m for m in METHODS if m != "promix"], default=None,
                   help="train a baseline instead of ProMix (ce: cross-entropy, one network)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override any TrainConfig field, e.g. --set rho=0.3 (repeatable)")
    p.add_argument("--no-bars", action="store_true",
                   help="no progress bars, only the one-line epoch summaries (for log files)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    p.set_defaults(func=cmd_train)

    from .sweep import add_arguments
    p = sub.add_parser("sweep", help="train a grid of cells (presets, datasets, noises, seeds, "
                                     "methods, ablations) locally or on SLURM, and their table")
    add_arguments(p)
    p.set_defaults(func=cmd_sweep)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .train import NonFiniteLossError, RunExistsError
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
