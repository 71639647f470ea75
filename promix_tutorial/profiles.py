"""Notebook profiles: which preset a notebook runs on the machine at hand, and at which scale
its figures are drawn.

``$PROMIX_PROFILE`` = ``gpu`` (the ``fast`` preset) | ``cpu`` (``cpu``) | ``ci`` (``tiny``, what CI
runs) | ``reference`` (the shipped full-scale GPU runs, read, never trained; reference.py); unset:
``gpu`` when CUDA is available, else ``cpu``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import ABLATION_LABELS, ARCHIVED_FAST, TrainConfig, make_config
from .runs import runs_root

PROFILES = ("gpu", "cpu", "ci", "reference")


def current_profile() -> str:
    """The notebook profile from ``$PROMIX_PROFILE`` (see the module docstring)."""
    value = os.environ.get("PROMIX_PROFILE", "").strip().lower()
    if not value:
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"PROMIX_PROFILE={value!r} is not a profile: use one of "
                         f"{', '.join(PROFILES)} (or leave it unset to pick gpu/cpu automatically).")
    return value


def notebook_runs_dir(profile: str) -> Path:
    """Where a notebook in ``profile`` keeps its runs: ``runs_root() / profile``; for ``ci`` a
    fresh temporary folder (``promix-ci-*``) that is removed when the kernel exits, so CI runs
    are self-contained and leave nothing behind."""
    if profile != "ci":
        return runs_root() / profile
    import atexit, shutil, tempfile  # noqa: E401
    folder = Path(tempfile.mkdtemp(prefix="promix-ci-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


PROFILE_PRESET = {"gpu": "fast", "cpu": "cpu", "ci": "tiny", "reference": "fast"}

# The shipped reference runs were made with the fast preset before its redesign, logits unscaled:
# the reference profile asks for that config so the notebooks load them. Set REFERENCE_FAST = {}
# when runs of today's preset replace them (docs/gpu.md#reference-runs).
REFERENCE_FAST = dict(ARCHIVED_FAST, logit_scale=1.0)



def profile_config(profile: str, noise: str = "sym:0.5", dataset: str = "cifar10",
                   **overrides) -> TrainConfig:
    """The config a notebook runs in ``profile``: ``gpu`` -> `fast` preset on full CIFAR,
    ``cpu`` -> `cpu` preset (CIFAR subset), ``ci`` -> `tiny` preset (digits), ``reference`` ->
    the `fast` preset's config of the shipped full-scale runs (read, not trained), i.e. with
    `REFERENCE_FAST`."""
    if profile not in PROFILE_PRESET:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    if profile == "reference":
        overrides = {**REFERENCE_FAST, **overrides}
    return make_config(PROFILE_PRESET[profile], dataset, noise, **overrides)


# The start the figure notebooks (02, 03, 05) train from per profile: at the cpu scale ProMix
# reaches the paper's 80% symmetric noise only from the shipped self-supervised start
# (docs/calibration.md#notebook-noise).
FIGURE_START = {"cpu": "cpu-simclr"}


def figure_start(profile: str) -> dict:
    """``{"init": START}`` where ``profile``'s figure runs start from a pretrained start
    (`FIGURE_START`), else ``{}``: overrides for `profile_config`."""
    return {"init": FIGURE_START[profile]} if profile in FIGURE_START else {}


# Notebook 05's ablation study (Table 5) per profile: (noise, overrides of the profile's preset).
# The cpu rows are seed-0 cells of `benchmarks/accuracy_cpu.py --start cpu-simclr`.
ABLATION_STUDY = {
    "gpu": ("sym:0.8", {}),
    "cpu": ("sym:0.8", figure_start("cpu")),
    "ci": ("sym:0.8", dict(epochs=9, warmup_epochs=3, lga_start=6, gamma_ramp_epochs=2,
                           unlabeled_ramp_epochs=3)),
}
ABLATION_STUDY["reference"] = ABLATION_STUDY["gpu"]  # the shipped runs are the gpu profile's


# The noise of Fig. 3 (notebook 02) and Fig. 4 (notebook 03) per profile where it is not the
# paper's 80% symmetric: every profile uses it now (the cpu runs from `FIGURE_START`).
FIGURE_NOISE = {"fig3": {}, "fig4": {}}
PAPER_FIGURE_NOISE = "sym:0.8"


def figure_noise(figure: str, profile: str) -> str:
    """The noise at which ``profile`` draws ``figure`` ("fig3": notebook 02, "fig4": notebook
    03): `FIGURE_NOISE`, else the paper's 80% symmetric."""
    if figure not in FIGURE_NOISE:
        raise ValueError(f"unknown figure {figure!r}: use one of {', '.join(FIGURE_NOISE)}")
    if profile not in PROFILE_PRESET:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    return FIGURE_NOISE[figure].get(profile, PAPER_FIGURE_NOISE)


def ablation_study_configs(profile: str, noise: str | None = None) -> dict[str, TrainConfig]:
    """ProMix and its six Table 5 ablations (label -> config) at ``profile``'s ablation-study
    scale (`ABLATION_STUDY`); ``noise`` replaces the profile's default noise."""
    default_noise, overrides = ABLATION_STUDY.get(profile, (None, {}))  # bad profile: see below
    return {label: profile_config(profile, noise or default_noise, ablation=key, **overrides)
            for key, label in ABLATION_LABELS.items()}
