"""Configuration: the training config (a frozen dataclass), named presets, ablations and the
notebook profiles.

Presets (training recipes; docs/calibration.md explains every value of the short ones):
- ``paper``: the authors' released code exactly (docs/method.md, tests/test_paper_preset.py):
  ResNet-18 (the paper's text says PreAct ResNet-18, which is ``model="preact_resnet18"``), 600
  epochs, batch 256, SGD lr 0.05, per-dataset R, tau, alpha and warm-up, FMix, each head mixed
  separately.
- ``fast``: a whole CIFAR-10 run in minutes on one GPU: airbench94's network (logits x 1/9,
  BatchNorm biases at 64x the rate), batch 1024, 10 warm-up + 80 ProMix epochs, Nesterov SGD
  with a per-step rise then cosine over the whole run, LGA from a third of the ProMix epochs,
  mixed passes over the labeled rows only, views in large chunks, tests every 5 epochs.
- ``cpu``: a 5,000-image CIFAR subset, a narrow CNN and 35 epochs with a one-cycle learning
  rate, calibrated so that ProMix's effects show on a laptop CPU.
- ``tiny``: scikit-learn's 8x8 digits, seconds (tests and the ``ci`` notebook profile).
The short presets scale the prior momentum m of Eq. 7 so that the prior's memory 1/(1-m) is about
the same fraction of all training steps as in the paper (docs/calibration.md#prior-momentum).
Every field can be overridden: ``make_config("fast", "cifar10", "sym:0.5", epochs=30)``.

The notebooks' profiles, which pick a preset for the machine at hand, are in profiles.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .noise import NoiseSpec
from .runs import sha256_file

PRESETS = ("paper", "fast", "cpu", "tiny")
METHODS = ("promix", "ce")
SELECTION_RULES = ("promix", "gmm", "small_loss")  # selection.select_clean
# the one tuned setting of each Fig. 3 baseline rule (docs/method.md#fig3-baselines)
RULE_SETTING = {"gmm": "gmm_threshold", "small_loss": "forget_rate"}

# Table 5 rows. Every row except "no_lga" is measured with LGA off too (the LGA column of the
# table is a cross for all ablation rows), so each switches LGA off.
ABLATIONS = {
    "none": {},
    "no_lga": dict(use_lga=False),
    "no_mhcs": dict(use_lga=False, use_mhcs=False),            # CSS only
    "no_base_selection": dict(use_lga=False, use_css=False),   # MHCS only
    "no_cbr": dict(use_lga=False, use_cbr=False),              # pseudo-labels on the same head
    "no_dbr": dict(use_lga=False, use_dbr=False),              # no debiasing (alpha = 0)
    "only_clean": dict(use_lga=False, use_unlabeled=False),    # no unlabeled term
}
ABLATION_LABELS = {
    "none": "ProMix", "no_lga": "w/o LGA", "no_mhcs": "w/o MHCS",
    "no_base_selection": "w/o Base Selection", "no_cbr": "w/o CBR", "no_dbr": "w/o DBR",
    "only_clean": "with Only Clean",
}


# Fields added after runs were recorded, each at the value that reproduces the runs made before
# it existed: a saved config without it is read with it (`with_added_fields`), so resuming and
# loading older runs compare exactly (docs/changelog.md).
ADDED_FIELDS = {
    "primary_dml": False, "lga_guess": "ensemble", "warmup_penalty_weight": 1.0,
    "compile": False, "mix_per_head": False, "lr_per_step": False,
    "lr_warmup_frac": 0.0, "nesterov": False,
    "logit_scale": 1.0, "init": "scratch", "init_sha256": None,
    "selection": "promix", "gmm_threshold": 0.5, "forget_rate": 0.5,
    "bn_bias_lr_scale": 1.0, "mix_buckets": 0, "augment_chunks": 0, "eval_every": 1,
    "tta_flip": False, "warmup_label_smoothing": 0.0,
}


def with_added_fields(saved: dict) -> dict:
    """A saved config (dict) with the `ADDED_FIELDS` it lacks, at their earlier behaviour."""
    return {**ADDED_FIELDS, **saved}


# fields a config comparison ignores: where and how fast a run trains, which per-sample arrays it
# saves, where its start lies (the start's checksum, init_sha256, is compared)
IGNORED_FIELDS = ("device", "record_epochs", "eval_batch_size", "init")


def config_differences(saved: dict, cfg: "TrainConfig") -> dict:
    """``{field: (saved, asked)}`` for the fields where ``cfg`` differs from a saved config
    (a dict as read from a run's config.json, completed by `with_added_fields`), ignoring
    `IGNORED_FIELDS`. Used to load reference runs and to reuse finished runs."""
    mine = json.loads(json.dumps(cfg.to_dict()))
    saved = with_added_fields(saved)
    return {k: (saved.get(k), mine.get(k)) for k in sorted(set(saved) | set(mine))
            if k not in IGNORED_FIELDS and saved.get(k) != mine.get(k)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults = the paper's CIFAR-10 recipe."""

    # --- data
    dataset: str = "cifar10"          # cifar10 | cifar100 | digits | path.npz
    noise: str = "sym:0.5"            # see promix_tutorial.noise
    seed: int = 0                     # noise, initialisation, shuffling, augmentation
    n_train: int | None = None        # stratified training subset (None = all)
    n_test: int | None = None         # stratified test subset (None = all)
    # --- method
    method: str = "promix"            # promix | ce (cross-entropy baseline, one network)
    ablation: str = "none"            # a key of ABLATIONS (informational; switches below)
    model: str = "resnet18"           # resnet18 | preact_resnet18 | fast_cnn | airbench94 |
    #                                   airbench95 | digits_net (models.MODEL_NAMES)
    model_widths: tuple[int, ...] | None = None  # fast_cnn / airbench block widths (None: default)
    logit_scale: float = 1.0          # fast_cnn, airbench: both heads' logits times this (1/9)
    # --- optimisation (docs/method.md#networks)
    epochs: int = 600
    batch_size: int = 256
    lr: float = 0.05
    lr_min: float = 5e-5              # cosine schedule per epoch from lr to lr_min
    lr_per_step: bool = False         # evaluate the cosine at every step, not once per epoch
    lr_warmup_frac: float = 0.0       # linear rise from lr/25 over this fraction (one-cycle)
    nesterov: bool = False            # Nesterov momentum
    bn_bias_lr_scale: float = 1.0     # BatchNorm biases in their own group at lr times this
    #                                   (airbench: 64); 1 = one group for all parameters
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 10           # CE on the weak view (30 for CIFAR-100)
    warmup_conf_penalty: bool = False # negative-entropy penalty in warm-up (asymmetric noise)
    warmup_penalty_weight: float = 1.0  # its weight (train.confidence_penalty)
    warmup_label_smoothing: float = 0.0  # label smoothing of ProMix's warm-up CE only (it caps
    #                                      the confidence below tau, so never in the ProMix phase)
    # --- progressive selection (Eq. 1-3, 8)
    rho: float = 0.5                  # R of CSS: per-class budget ceil(R * N / C)
    tau: float = 0.99                 # MHCS / LGA confidence threshold
    lga_start: int = 350              # LGA in the last 250 of 600 epochs
    max_labeled_frac: float = 0.9     # LGA fills a batch up to this labeled fraction
    selection: str = "promix"         # each epoch's clean set: promix (CSS), or Fig. 3's gmm /
    #                                   small_loss rule in its own run (MHCS off; make_config)
    gmm_threshold: float = 0.5        # gmm: selected when the clean probability exceeds this
    forget_rate: float = 0.5          # small_loss: the fraction of largest losses dropped
    lga_guess: str = "own"            # LGA's label: "own" = argmax of this network's prediction
    #                                   debiased with pi_l (released code); "ensemble" = of both
    #                                   networks' summed predictions debiased with pi_u
    # --- debiased semi-supervised training (Eq. 5-7, 9)
    alpha: float = 0.8                # debiasing strength
    primary_dml: bool = True          # primary head's labeled terms: DML with pi_l (released
    #                                   code); False: plain CE (the paper's text)
    prior_momentum: float = 0.9999    # m of Eq. 7
    temperature: float = 0.5          # sharpening of the pseudo-labels
    gamma_ramp_epochs: int = 50       # gamma = min(epoch / 50, 1)
    unlabeled_weight: float = 0.1     # lambda_u = 0.1 * min(epoch / 100, 1)
    unlabeled_ramp_epochs: int = 100
    unlabeled_stop_epoch: int | None = None  # the released code stops L_u at epoch 100 (option)
    mixup_alpha: float = 4.0          # Beta(4, 4), lambda = max(lambda, 1 - lambda)
    fmix: bool = False                # the released code also adds an FMix term (paper preset)
    mix_per_head: bool = True         # each head's mixing terms get their own draw and forward
    #                                   pass (released code); False: the aux head reads the
    #                                   primary's mixed passes (one pass per term fewer)
    mix_buckets: int = 0              # >0: the mixed passes take only the labeled rows, padded
    #                                   to one of this many static sizes (B i / n); 0: all B rows
    # --- ablation switches (Table 5)
    use_css: bool = True
    use_mhcs: bool = True
    use_lga: bool = True
    use_cbr: bool = True              # auxiliary pseudo head consumes the pseudo-labels
    use_dbr: bool = True              # debiasing (alpha); False = plain CE and pseudo-labels
    use_unlabeled: bool = True
    # --- starting weights (docs/pretrain.md): an addition to the paper, off by default
    init: str = "scratch"             # "scratch" or a start of `promix pretrain` (file or folder)
    init_sha256: str | None = None    # the start's checksum (make_config records it)
    # --- system and records
    device: str = "auto"              # auto | cpu | cuda | cuda:N | mps
    amp: bool = True                  # autocast on CUDA (ignored elsewhere): bfloat16, or
    #                                   float16 + loss scaling before compute capability 8
    #                                   (T4, V100); train.amp_dtype
    channels_last: bool = True        # channels_last memory format (3-channel images)
    compile: bool = False             # torch.compile the networks (train.compile_net)
    augment_chunks: int = 0           # >0: an epoch's views made in this many large calls
    #                                   (few kernel launches); 0: per batch
    eval_batch_size: int = 1024
    eval_every: int = 1               # test accuracy and Fig. 3 baselines every k epochs from
    #                                   the first ProMix one (and at the warm-up's last, recorded
    #                                   and last epochs); CSS still before every ProMix epoch
    tta_flip: bool = False            # the last epoch's test accuracy averages the logits of
    #                                   each image and its mirror image
    record_epochs: tuple[int, ...] = ()  # epochs whose per-sample arrays are saved (.npz);
    #                                      the last epoch is always saved

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError naming the first invalid field (called on construction)."""
        def bad(name, why):
            raise ValueError(f"TrainConfig.{name} {why}, got {getattr(self, name)!r}.")

        from .models import MODEL_NAMES  # here, not at the top: `promix --help` needs no torch
        NoiseSpec.parse(self.noise)
        if self.method not in METHODS:
            bad("method", f"must be one of {', '.join(METHODS)}")
        if self.ablation not in ABLATIONS:
            bad("ablation", f"must be one of {', '.join(ABLATIONS)}")
        if self.model not in MODEL_NAMES:
            bad("model", f"must be one of {', '.join(MODEL_NAMES)}")
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "must be a positive integer")
        for name in ("warmup_epochs", "gamma_ramp_epochs", "unlabeled_ramp_epochs", "lga_start",
                     "mix_buckets", "augment_chunks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(name, "must be a non-negative integer")
        if self.warmup_epochs >= self.epochs and self.method == "promix":
            bad("warmup_epochs", f"must be smaller than epochs ({self.epochs}) for ProMix")
        for name in ("n_train", "n_test"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                bad(name, "must be None or a positive integer")
        for name in ("rho", "tau", "max_labeled_frac"):
            if not 0.0 < getattr(self, name) <= 1.0:
                bad(name, "must lie in (0, 1]")
        if not 0.0 <= self.lr_warmup_frac < 1.0:
            bad("lr_warmup_frac", "must lie in [0, 1)")
        if not 0.0 <= self.prior_momentum < 1.0:
            bad("prior_momentum", "must lie in [0, 1)")
        for name in ("lr", "temperature", "mixup_alpha", "logit_scale", "bn_bias_lr_scale"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                bad(name, "must be a finite positive number")
        if self.logit_scale != 1.0 and self.model not in ("fast_cnn", "airbench94", "airbench95"):
            bad("logit_scale", f"is a fast_cnn / airbench option (this config's model is "
                               f"{self.model})")
        if self.mix_buckets > self.batch_size:
            bad("mix_buckets", f"must not exceed batch_size ({self.batch_size})")
        if not 0.0 <= self.warmup_label_smoothing < 1.0:
            bad("warmup_label_smoothing", "must lie in [0, 1)")
        if self.selection not in SELECTION_RULES:
            bad("selection", f"must be one of {', '.join(SELECTION_RULES)}")
        if not 0.0 < self.gmm_threshold < 1.0 or not 0.0 <= self.forget_rate < 1.0:
            bad("gmm_threshold" if not 0 < self.gmm_threshold < 1 else "forget_rate",
                "must lie in (0, 1) (gmm_threshold) or [0, 1) (forget_rate)")
        if self.lga_guess not in ("own", "ensemble"):
            bad("lga_guess", "must be 'own' (the released code) or 'ensemble'")
        for name in ("lr_min", "weight_decay", "momentum", "alpha", "unlabeled_weight",
                     "warmup_penalty_weight"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                bad(name, "must be a finite non-negative number")
        if self.lr_min > self.lr:
            bad("lr_min", f"must not exceed lr ({self.lr})")
        if any(not isinstance(e, int) or not 0 <= e < self.epochs for e in self.record_epochs):
            bad("record_epochs", f"must hold epoch indices in [0, {self.epochs})")
        if not (self.use_css or self.use_mhcs):
            bad("use_css", "and use_mhcs cannot both be False (nothing would be selected)")
        if self.init == "scratch" and self.init_sha256 is not None:
            bad("init_sha256", "must be None when init is 'scratch'")
        if self.init != "scratch" and not (isinstance(self.init_sha256, str)
                                           and len(self.init_sha256) == 64):
            bad("init_sha256", "must be the start's sha256 (make_config(..., init=PATH) and "
                               "`promix train --init PATH` record it)")
        if self.device != "auto" and not self.device.split(":")[0] in ("cpu", "cuda", "mps"):
            bad("device", "must be auto, cpu, cuda, cuda:N or mps")

    # ------------------------------------------------------------------ helpers
    @property
    def noise_spec(self) -> NoiseSpec:
        return NoiseSpec.parse(self.noise)

    @property
    def effective_alpha(self) -> float:
        """alpha, or 0 when debiasing is switched off (w/o DBR)."""
        return self.alpha if self.use_dbr else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, saved: dict) -> dict:
        """``{field: (saved, this)}`` where a saved config differs (`config_differences`)."""
        return config_differences(saved, self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        d = dict(d)
        for k in ("model_widths", "record_epochs"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with fields changed (validated); unknown names raise ValueError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; valid fields: "
                             f"{', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------- per-dataset recipe

def _num_classes(dataset: str) -> int:
    return 100 if dataset == "cifar100" else 10


def recipe_rho(noise: NoiseSpec) -> float:
    """R (rho) of CSS for a noise setting (docs/method.md#progressive-selection): 0.7 for 20%
    symmetric, 0.5 for 50%,
    asymmetric and CIFAR-N (the authors' run.sh at commit 40d8378, ``--rho_range``). The authors
    give no configs for 80%/90% symmetric noise; there we use the expected clean fraction rounded
    down to a tenth (0.2 at 80%, 0.1 at 90%), our choice."""
    if noise.kind == "sym":
        if noise.rate <= 0.2:
            return 0.7
        if noise.rate <= 0.5:
            return 0.5
        return max(0.1, math.floor(10 * (1 - noise.rate * 0.9)) / 10)
    return 0.5


def make_config(preset: str = "paper", dataset: str = "cifar10", noise: str = "sym:0.5",
                **overrides) -> TrainConfig:
    """The config of a named preset for a dataset and noise setting, with ``overrides`` applied.

    ``overrides`` may include ``ablation="no_lga"`` etc. (switches of `ABLATIONS`) and
    ``method="ce"`` for the cross-entropy baseline.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    spec = NoiseSpec.parse(noise)
    c100 = _num_classes(dataset) == 100
    base = dict(dataset=dataset, noise=noise, rho=recipe_rho(spec),
                tau=0.95 if c100 else 0.99, alpha=0.5 if c100 else 0.8,
                warmup_epochs=30 if c100 else 10, warmup_conf_penalty=spec.kind == "asym",
                # the released code stops the unlabeled term at epoch 100; in the short presets
                # that would be two or three ProMix epochs in (docs/calibration.md#unlabeled-stop)
                unlabeled_stop_epoch=100 if preset == "paper" else None)
    if preset == "paper":
        # the authors' Train_promix.py (commit 40d8378): FMix is always added (lines 216-219,
        # 248; its --fmix flag is never read) and LGA runs when `epoch > num_epochs - 250`
        # (line 191), i.e. from epoch index 351 (tests/test_paper_preset.py).
        base.update(fmix=True, lga_start=351,
                    model="resnet18")  # model.py lines 13-14, 196-197: a standard ResNet-18
    elif preset == "fast":
        # minutes on one GPU: airbench94's body, the rate still high when LGA starts, the work
        # per image cut where it carried no weight (docs/calibration.md#fast-preset)
        warmup = 15 if c100 else 10
        base.update(model="airbench94", logit_scale=1 / 9, epochs=90, batch_size=1024,
                    warmup_epochs=warmup, gamma_ramp_epochs=15, unlabeled_ramp_epochs=30,
                    lga_start=warmup + round((90 - warmup) / 3), prior_momentum=0.9975,
                    lr=0.2, lr_min=0.0, lr_per_step=True, lr_warmup_frac=0.1, nesterov=True,
                    bn_bias_lr_scale=64.0, mix_buckets=4, augment_chunks=4,
                    eval_batch_size=2500, eval_every=5, tta_flip=True)
    elif preset == "cpu":
        # a 5,000-image subset, the narrow fast_cnn, a one-cycle schedule and 35 epochs, each
        # value chosen by a probe (docs/calibration.md#cpu-preset)
        base.update(model="fast_cnn", model_widths=(32, 64, 128), n_train=5000, n_test=2000,
                    batch_size=128, eval_batch_size=1000, prior_momentum=0.99, tau=0.95,
                    lr=0.1, lr_min=0.0, lr_per_step=True, lr_warmup_frac=0.2,
                    epochs=35, lga_start=25, warmup_epochs=10,
                    gamma_ramp_epochs=5, unlabeled_ramp_epochs=8)
        if overrides.get("init", "scratch") != "scratch":
            # from a pretrained start the peak rate 0.1 wipes the start's features in the first
            # ProMix epoch; 0.01 keeps them at 80% and 90% noise (docs/calibration.md#cpu-start-lr)
            base.update(lr=0.01)
        if spec.kind == "asym":
            # the recipe's warm-up penalty holds the small network near uniform, and R = 0.5
            # caps recall when 80% of the labels are right (docs/calibration.md#cpu-asymmetric)
            base.update(warmup_conf_penalty=False, rho=0.7)
    elif preset == "tiny":
        # seconds: the 8x8 digits and a small CNN (tests and the `ci` notebook profile)
        base.update(dataset="digits" if dataset in ("cifar10", "cifar100") else dataset,
                    model="digits_net", epochs=30, batch_size=64, lr=0.05, lr_min=1e-4,
                    warmup_epochs=5, gamma_ramp_epochs=5, unlabeled_ramp_epochs=8,
                    lga_start=15, tau=0.95, alpha=0.8, eval_batch_size=2048,
                    warmup_conf_penalty=False, prior_momentum=0.98)
    if preset != "paper":
        # the auxiliary head reads the primary head's mixed passes: one forward pass per network
        # and step fewer (docs/calibration.md#mix-per-head)
        base.update(mix_per_head=False)
    ablation = overrides.get("ablation", "none")
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}: choose one of {', '.join(ABLATIONS)}.")
    base.update(ABLATIONS[ablation])
    # a Fig. 3 baseline's rule replaces ProMix's whole base selection, MHCS included
    base.update({} if overrides.get("selection", "promix") == "promix" else dict(use_mhcs=False))
    base.update(overrides)
    if base.get("init", "scratch") != "scratch" and base.get("init_sha256") is None:
        base["init_sha256"] = start_checksum(base["init"])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(base) - known
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}; valid fields: "
                         f"{', '.join(sorted(known))}")
    return TrainConfig(**base)


# starts shipped inside the package, by name (docs/pretrain.md#shipped-start)
SHIPPED_STARTS = {"cpu-simclr": "starts/cpu_simclr/backbone_e040.pt"}


def start_file(path: str | os.PathLike) -> Path:
    """The backbone file of a start: a shipped start's name (`SHIPPED_STARTS`), ``path``
    itself, or ``backbone.pt`` in a folder."""
    if str(path) in SHIPPED_STARTS:
        return Path(__file__).parent / SHIPPED_STARTS[str(path)]
    p = Path(path).expanduser()
    return p / "backbone.pt" if p.is_dir() else p


def start_checksum(path: str | os.PathLike) -> str:
    """The sha256 of a start's backbone file (ValueError naming the path when it is missing)."""
    f = start_file(path)
    if not f.is_file():
        raise ValueError(f"TrainConfig.init: no start at {f}; give a backbone file, the folder "
                         f"of a finished `promix pretrain`, a shipped start ({', '.join(SHIPPED_STARTS)}) "
                         "or 'scratch'.")
    return sha256_file(f)


# The fast preset before its redesign: the shipped reference runs and the archived H100 run
# were made with it (docs/gpu.md#reference-runs).
ARCHIVED_FAST_SCHEDULE = dict(lr=0.1, lr_min=1e-4, lr_per_step=False, lr_warmup_frac=0.0,
                              nesterov=False)
ARCHIVED_FAST = dict(ARCHIVED_FAST_SCHEDULE, model="fast_cnn", logit_scale=1 / 9, epochs=60,
                     batch_size=512, warmup_epochs=8, gamma_ramp_epochs=10,
                     unlabeled_ramp_epochs=20, lga_start=35, eval_batch_size=2048,
                     prior_momentum=0.998, bn_bias_lr_scale=1.0, mix_buckets=0,
                     augment_chunks=0, eval_every=1, tta_flip=False)  # CIFAR-10's values
