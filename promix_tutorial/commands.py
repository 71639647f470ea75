"""What each ``promix`` command does once cli.py has parsed its options: the checks that come
before any work (preset, run folder, ``--set`` values, data, start) and the work itself."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _field_type(annotation) -> str:
    """The readable type of a TrainConfig field: int, float, bool, str or a tuple of ints."""
    t = str(annotation)
    for name in ("bool", "tuple", "int", "float"):
        if t.startswith(name):
            return "comma-separated integers" if name == "tuple" else name
    return "str"


def parse_set(pairs: list[str], config_class=None) -> dict:
    """``--set FIELD=VALUE`` pairs -> typed overrides (int, float, bool, None, tuples of ints)
    of ``config_class``'s fields (default `config.TrainConfig`). An unknown field or a value of
    the wrong type raises ValueError naming the field and the type it takes."""
    import dataclasses
    from .config import TrainConfig

    fields = dataclasses.fields(config_class or TrainConfig)
    types = {f.name: _field_type(f.type) for f in fields}
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
    reuse finished runs of the config they ask for from `runs.runs_root`, will find it)."""
    from pathlib import Path
    from .runs import runs_root
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
    if args.init:
        overrides["init"] = args.init
    cfg = make_config(preset, args.dataset, args.noise, **overrides)  # validated here
    from .devices import choose_threads, prepare_data, set_threads
    from .engine import train
    from .pretrain import load_init
    from .runs import resume_point
    threads, why = choose_threads(preset, args.threads)
    set_threads(threads)
    data = prepare_data(cfg)  # a data error, or a start that does not fit, stops here
    if not args.resume:
        load_init(cfg, data[0])
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


def cmd_pretrain(args) -> int:
    """Self-supervised pretraining of a preset's backbone (pretrain.py): the start that
    ``promix train --init`` reads."""
    from .pretrain import PretrainConfig, pretrain, pretrain_config_for
    from pathlib import Path
    preset, note = resolve_preset(args.preset)
    out = Path(args.out)  # a pretraining folder is checked by pretrain(); anything else here
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ValueError(f"{out} is a non-empty folder that holds no pretraining; choose a new "
                         "or empty --out so nothing in it is overwritten.")
    _export_data_locations(args)
    overrides = parse_set(args.set or [], PretrainConfig)
    for name in ("epochs", "batch_size", "seed", "device"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.images is not None:
        overrides["n_images"] = args.images
    cfg = pretrain_config_for(preset, args.dataset, **overrides)  # validated here
    from .devices import choose_threads, set_threads
    threads, why = choose_threads(preset, args.threads)
    set_threads(threads)
    if note:
        print(f"promix pretrain: {note}")
    print(f"promix pretrain: {cfg.method} preset={preset} dataset={cfg.dataset} "
          f"model={cfg.model} epochs={cfg.epochs} batch={cfg.batch_size} threads={threads} "
          f"({why}) -> {args.out}", flush=True)
    command = "promix " + portable_command(args.argv)
    manifest = pretrain(cfg, args.out, resume=args.resume, progress=not args.quiet,
                        command=command)
    knn = manifest["checkpoints"][-1]["knn_acc"] if manifest.get("checkpoints") else None
    print(f"done: {manifest['epochs_done']} epochs" + (f", kNN accuracy {knn:.2%}" if knn else "")
          + f"; start {args.out}/backbone.pt: train from it with `promix train --init {args.out} "
          f"--preset {preset} ...`")
    return 0


def portable_command(argv: list[str]) -> str:
    """``argv`` as a shell line, absolute paths inside the working folder made relative to it,
    so a manifest names no folder of the machine it was made on."""
    import shlex
    here = Path.cwd().resolve()
    out = []
    for a in argv:
        p = Path(a)
        out.append(os.path.relpath(p, here) if p.is_absolute() and p.resolve().is_relative_to(here)
                   else a)
    return shlex.join(out)
