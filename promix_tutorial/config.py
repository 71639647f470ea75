"""Configuration: notebook profiles (and, with the training engine, presets).

Profile = how big a notebook's runs are, picked by ``$PROMIX_PROFILE``:
``gpu`` (full CIFAR on a GPU), ``cpu`` (CIFAR subsets on a laptop), ``ci`` (digits, seconds,
no network). Unset: ``gpu`` when CUDA is available, else ``cpu``.
"""
from __future__ import annotations

import os

PROFILES = ("gpu", "cpu", "ci")


def current_profile() -> str:
    """The notebook profile from ``$PROMIX_PROFILE`` (see module docstring)."""
    value = os.environ.get("PROMIX_PROFILE", "").strip().lower()
    if not value:
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"PROMIX_PROFILE={value!r} is not a profile: use one of "
                         f"{', '.join(PROFILES)} (or leave it unset to pick gpu/cpu automatically).")
    return value
