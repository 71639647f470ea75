"""promix_tutorial: ProMix (IJCAI 2023) for learning with noisy labels.

    from promix_tutorial import make_config, train
    run = train(make_config("tiny", "digits", "sym:0.5"), "runs/tiny_sym50")
    print(run.final_accuracy())

What the code does, bottom to top (a module imports only from the layers above it in this list;
tests/test_layers.py checks it):
- runs: run folders on disk (atomic writes, checksums, RunHistory, finding finished runs);
- data, noise, transition: datasets as uint8 arrays, label-noise injection and reports;
- selection, debias, metrics: the paper's equations as pure functions (CSS, MHCS, LGA, the
  class prior, debiased margin loss and pseudo-labels) and selection scores;
- augment, models: batched augmentation on the training device; the networks with two heads;
- config, profiles: TrainConfig, presets and ablations; the notebooks' profiles;
- schedule, devices, pretrain, losses, evaluation, engine: the learning rate and ramps; data,
  device and precision; self-supervised starts; a step's loss terms; an epoch's records; the loop;
- results, tables, cells, sweep, reference: results records and their tables, running cells
  (locally, on SLURM), grids of runs, shipped reference runs;
- plots, widgets, notebook, exercises: figures, sliders and helpers for the notebooks;
- commands, cli: the ``promix`` command line (what each command does; its parsers).
"""

__version__ = "0.1.0"

# the entry points, imported on first use so `promix --help` starts without torch
_EXPORTS = {"train": "engine", "train_or_load": "engine", "make_config": "config",
            "TrainConfig": "config", "RunHistory": "runs"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'promix_tutorial' has no attribute {name!r}")
