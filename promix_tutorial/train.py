"""The ProMix training loop and the cross-entropy baseline: a thin orchestrator.

One ProMix epoch (RECIPE.md and its "Corrections", i.e. the authors' released code; equations in
selection.py and debias.py):
1. warm-up epochs: cross-entropy on the weak view, both networks, primary head only (plus the
   weighted `confidence_penalty` under asymmetric noise);
2. afterwards, per batch, both networks see the weak and the strong view (`forward_views`), then
   per network k (`Trainer._promix_terms`):
   - `select_labeled`: CSS (Eq. 1-2, from the eval-mode losses at the end of the previous
     epoch) | MHCS (Eq. 3) | in the late phase LGA (Eq. 8) with the peer, whose guessed label
     is the argmax of network k's prediction debiased with its labeled prior (`lga_guess_logits`);
     the unlabeled set U is the rest of the batch;
   - `mix_labeled`: mixup inside the labeled set (and FMix with ``cfg.fmix``), for each head;
   - the sharpened debiased pseudo-labels (Eq. 6, unlabeled prior) from the primary head;
   - `promix_losses` (Eq. 5 and 9): on both heads DML(weak) + gamma (DML(strong) + DML(mixup)
     [+ DML(FMix)]) with the labeled prior; on the auxiliary head lambda_u (DML(weak) + gamma DML(strong)) on U
     against the pseudo-labels with the unlabeled prior;
   - `Trainer._update_priors` (Eq. 7), labeled and unlabeled separately, and
     `Trainer._record_step` for the epoch's metrics;
3. an eval pass over the training set (losses for the next CSS, selection records) and the test
   set (accuracy of the mean of both networks' primary logits).

The dataset sits on the training device as uint8; augmentation is batched tensor ops
(augment.py). Nothing in a step makes the host wait for the GPU: every subset is a mask used
arithmetically (`masked_mean`, static shapes), the mixup coefficients are drawn on the host at
the start of the epoch, and RandAugment runs on the whole batch on CUDA (tests/test_train.py
checks both with the profiler and CUDA's sync debug mode). On CUDA: bfloat16 autocast (float16
with loss scaling on GPUs older than compute capability 8.0, `amp_dtype`);
``cfg.compile`` wraps the networks in torch.compile. channels_last memory format for 3-channel
images on every device (measured 1.4x faster training of the cpu preset's CNN on a 2-core CPU
too). Randomness: one generator per epoch seeded from (seed, epoch), so a resumed run repeats an
uninterrupted one exactly on the CPU.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import record_function
from tqdm.auto import tqdm

from . import augment
from .config import TrainConfig, config_differences, runs_root
from .data import ImageDataset, load_dataset
from .debias import debiased_margin_loss, debiased_pseudo_labels, debias_logits, uniform_prior, \
    update_class_prior
from .history import RunHistory, save_json, samples_path, save_npz, atomic_write
from .metrics import pseudo_label_hits, selection_scores, tuned_gmm, tuned_small_loss
from .models import build_model
from .noise import NoisyLabels, noisy_labels_for
from .selection import class_wise_small_loss, label_guessing_by_agreement, matched_high_confidence


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the run stopped and the last good checkpoint was kept."""


class RunExistsError(RuntimeError):
    """The output folder already holds a run and neither resume nor a new folder was asked for."""


# ----------------------------------------------------------------------------- data on device

@dataclass
class DeviceData:
    """The training and test sets as uint8 NCHW tensors on the training device."""

    x_train: torch.Tensor
    y_noisy: torch.Tensor
    y_clean: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple
    std: tuple
    pad: int
    flip: bool
    num_classes: int

    @property
    def is_clean(self) -> torch.Tensor:
        return self.y_noisy == self.y_clean

    def normalize(self, x_uint8: torch.Tensor, channels_last: bool) -> torch.Tensor:
        x = augment.normalize(x_uint8, self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def prepare_data(cfg: TrainConfig) -> tuple[ImageDataset, NoisyLabels]:
    """Load the dataset (subset if asked) and inject the configured noise (seeded)."""
    ds = load_dataset(cfg.dataset)
    if cfg.n_train is not None or cfg.n_test is not None:
        ds = ds.subset(cfg.n_train, cfg.n_test, seed=cfg.seed)
    return ds, noisy_labels_for(ds, cfg.noise, seed=cfg.seed)


def to_device(ds: ImageDataset, noisy: NoisyLabels, device: torch.device) -> DeviceData:
    def images(x):
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)

    if ds.name == "cifar10":
        mean, std = augment.CIFAR10_MEAN, augment.CIFAR10_STD
    elif ds.name == "cifar100":
        mean, std = augment.CIFAR100_MEAN, augment.CIFAR100_STD
    else:  # other sources: per-channel statistics of the training images
        flat = ds.x_train.reshape(-1, ds.x_train.shape[-1]) / 255.0
        mean, std = tuple(flat.mean(0).tolist()), tuple(np.maximum(flat.std(0), 1e-3).tolist())
    h = ds.x_train.shape[1]
    return DeviceData(images(ds.x_train), torch.from_numpy(noisy.noisy).to(device),
                      torch.from_numpy(noisy.clean).to(device), images(ds.x_test),
                      torch.from_numpy(ds.y_test).to(device), mean, std,
                      pad=max(1, round(h * 4 / 32)), flip=ds.name != "digits",
                      num_classes=ds.num_classes)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device is 'cuda' but no CUDA GPU is available; use "
                         "device='auto' or 'cpu'.")
    return dev


# ----------------------------------------------------------------------------- schedules

def cosine_lr(cfg: TrainConfig, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate at ``step`` of ``epoch``. The recipe (RECIPE "Networks"): cosine from
    ``lr`` to ``lr_min``, once per epoch. Options of the short presets: ``lr_per_step`` evaluates
    the same cosine at every step, and ``lr_warmup_frac`` > 0 first rises linearly from
    ``lr / 25`` to ``lr`` over that fraction of training (a one-cycle schedule)."""
    t = epoch / cfg.epochs
    if cfg.lr_per_step:
        t = (epoch * steps_per_epoch + step) / (cfg.epochs * steps_per_epoch)
    w = cfg.lr_warmup_frac
    if t < w:
        return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * t / w
    u = (t - w) / (1 - w)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * u))


def ramp(epoch: int, length: int) -> float:
    """min(epoch / length, 1); 1 when length is 0."""
    return 1.0 if length <= 0 else min(epoch / length, 1.0)


def unlabeled_weight(cfg: TrainConfig, epoch: int) -> float:
    """lambda_u = 0.1 * min(epoch / 100, 1), zero from ``unlabeled_stop_epoch`` on (code option)."""
    if not cfg.use_unlabeled or (cfg.unlabeled_stop_epoch is not None
                                 and epoch >= cfg.unlabeled_stop_epoch):
        return 0.0
    return cfg.unlabeled_weight * ramp(epoch, cfg.unlabeled_ramp_epochs)


def epoch_generator(cfg: TrainConfig, epoch: int, device: torch.device) -> torch.Generator:
    """The epoch's random stream (shuffling, augmentation, mixup), seeded from (seed, epoch)."""
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed * 1_000_003 + epoch * 7_919 + 17)
    return g


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def predict(net, x_uint8: torch.Tensor, data: DeviceData, cfg: TrainConfig, amp,
            channels_last: bool = False) -> torch.Tensor:
    """Primary-head logits (float32) of un-augmented images, eval mode, in batches."""
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(x_uint8), cfg.eval_batch_size):
        with amp():
            out.append(net(data.normalize(x_uint8[i:i + cfg.eval_batch_size],
                                          channels_last))[0].float())
    net.train(was_training)
    return torch.cat(out)


COMPILE_BACKEND = "inductor"  # tests use "eager" to check the wiring in seconds


def compile_net(net: torch.nn.Module):
    """``torch.compile`` of a network (``TrainConfig.compile``). The training step's shapes are
    static (B and 2B images), so it compiles a few graphs once per run; the compiled module
    shares the network's parameters and train/eval mode."""
    return torch.compile(net, backend=COMPILE_BACKEND)


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the step and the evaluation, or None (float32: ``cfg.amp`` off, or
    not CUDA). bfloat16 on GPUs that compute it natively (compute capability 8.0 and newer:
    A100, L4, H100; and ROCm); float16 on older ones (T4, Colab's free GPU, and V100), which only
    emulate bfloat16. float16 needs loss scaling (`Trainer` then uses a GradScaler)."""
    if not cfg.amp or device.type != "cuda":
        return None
    if torch.version.hip or torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16


def amp_name(dtype: torch.dtype | None) -> str:
    """``"bfloat16"``, ``"float16"`` or ``"off"``: what a run's history.json records as "amp"."""
    return str(dtype).removeprefix("torch.") if dtype is not None else "off"


def _amp_context(dtype: torch.dtype | None, device: torch.device):
    return lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


# ----------------------------------------------------------------------------- one batch's pieces

class Heads(NamedTuple):
    """Logits of one batch of inputs on both heads: the primary head h and the auxiliary pseudo
    head h_AP (float32, ``(B, C)`` each)."""

    primary: torch.Tensor
    aux: torch.Tensor


class Views(NamedTuple):
    """One network's outputs on the weak and the strong view of the same batch."""

    weak: Heads
    strong: Heads


class Selection(NamedTuple):
    """One network's labeled set in one batch (bool / long ``(B,)`` tensors)."""

    labeled: torch.Tensor   # D_l = CSS | MHCS | LGA
    targets: torch.Tensor   # the given label, or LGA's guess where LGA added the sample
    mhcs: torch.Tensor      # added by MHCS (Eq. 3)
    lga: torch.Tensor       # added by LGA (Eq. 8)


def heads(net, x: torch.Tensor) -> Heads:
    """``net(x)`` as float32 `Heads`."""
    h, ap = net(x)
    return Heads(h.float(), ap.float())


def forward_views(net, x_w: torch.Tensor, x_s: torch.Tensor) -> Views:
    """Both views through ``net``, one forward pass each (so each has its own BatchNorm batch
    statistics, as in the released code, Train_promix.py lines 134-137 at commit 40d8378)."""
    return Views(heads(net, x_w), heads(net, x_s))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the rows where ``mask`` is True; 0 (still in the graph) when it
    is all False. Arithmetic masking, not boolean indexing: the shapes stay static and a GPU
    never makes the host wait."""
    w = mask.to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1)


def confidence_penalty(logits: torch.Tensor) -> torch.Tensor:
    """The warm-up's negative-entropy penalty for asymmetric noise (RECIPE "Warm-up"; DivideMix's
    NegEntropy): ``mean_i sum_j p_ij log p_ij`` with ``p = softmax(max(logits, 1e-12))``.
    Adding it to the loss rewards less confident predictions. The logits are clamped at 1e-12
    before the softmax because the released code does (RECIPE "Corrections")."""
    p = logits.clamp_min(1e-12).softmax(1)
    return (p * p.clamp_min(1e-12).log()).sum(1).mean()


def select_labeled(css: torch.Tensor, probs: torch.Tensor, peer_probs: torch.Tensor,
                   given: torch.Tensor, guess_logits: torch.Tensor | None, cfg: TrainConfig,
                   lga_on: bool) -> Selection:
    """The labeled set of one network in one batch: CSS (Eq. 1-2; chosen once per epoch, passed
    in as ``css``), MHCS (Eq. 3) on this network's weak-view ``probs``, and in the late phase
    LGA (Eq. 8) with the peer's ``peer_probs``; LGA's samples take the argmax of
    ``guess_logits`` as their target."""
    none = torch.zeros_like(given, dtype=torch.bool)
    labeled = css if cfg.use_css else none
    mhcs = matched_high_confidence(probs, given, cfg.tau) if cfg.use_mhcs else none
    labeled = labeled | mhcs
    if not lga_on:
        return Selection(labeled, given, mhcs, none)
    lga, guessed = label_guessing_by_agreement(probs, peer_probs, labeled, cfg.tau,
                                               cfg.max_labeled_frac, guess_logits=guess_logits)
    return Selection(labeled | lga, torch.where(lga, guessed, given), mhcs, lga)


def lga_guess_logits(k: int, views: list[Views], prior_l: torch.Tensor, prior_u: torch.Tensor,
                     cfg: TrainConfig) -> torch.Tensor:
    """The scores whose argmax is LGA's guessed label for network ``k`` (Eq. 6 applied to LGA).

    ``cfg.lga_guess == "own"`` (the released code): network k's own weak-view prediction
    debiased with its LABELED prior, ``f_k - alpha log pi_l``. ``"ensemble"`` (our earlier
    reading of the paper): the sum over both networks of softmax(f_j - alpha log pi_u,j)."""
    a = cfg.effective_alpha
    if cfg.lga_guess == "own":
        return debias_logits(views[k].weak.primary.detach(), prior_l[k], a)
    return sum(debias_logits(v.weak.primary.detach(), prior_u[j], a).softmax(1)
               for j, v in enumerate(views))


class MixTerm(NamedTuple):
    """One mixing loss term's inputs: the logits of the head it trains on mixed labeled inputs,
    their soft targets, and which rows count (the pairs of unlabeled samples do not)."""

    logits: torch.Tensor    # (B, C)
    targets: torch.Tensor   # (B, C)
    weight: torch.Tensor    # bool (B,)


def mix_labeled(net, x_w: torch.Tensor, sel: Selection, num_classes: int, lam,
                cfg: TrainConfig, gen: torch.Generator,
                channels_last: bool) -> dict[str, MixTerm]:
    """The mixing terms of one network's step: mixup inside the labeled set (RECIPE: lambda ~
    Beta(4, 4), max(lambda, 1 - lambda)) and, with ``cfg.fmix``, the released code's FMix term
    (its own pairs, lambda ~ Beta(1, 1)); ``lam`` = (mixup, FMix, aux mixup, aux FMix).

    Returns {"mix", "fmix"} for the primary head and {"aux_mix", "aux_fmix"} for the auxiliary
    head (only the names that are on). With ``cfg.mix_per_head`` (the released code) each head
    gets its own draw and its own forward pass; otherwise the auxiliary terms read the auxiliary
    head of the primary's passes (one pass per term fewer). Static shapes
    (`augment.labeled_pairs`): all B pairs go through the network, the pairs of unlabeled samples
    with zero weight, so BatchNorm's statistics of a mixed pass include those pairs too."""
    onehot = (sel.targets[:, None] == torch.arange(num_classes, device=x_w.device)).float()

    def mixed(kind: str, coef: float) -> tuple[Heads, torch.Tensor, torch.Tensor]:
        first, second, valid = augment.labeled_pairs(sel.labeled, gen)
        if kind == "mix":
            x, y = augment.mix_pairs(x_w, onehot, first, second, coef)
        else:
            x, y = augment.fmix_pairs(x_w, onehot, first, second, coef, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return heads(net, x), y, valid

    lam = [float(v) for v in lam]  # Python floats: a NumPy scalar would be a CPU tensor in CUDA ops
    kinds = ("mix", "fmix") if cfg.fmix else ("mix",)
    terms = {}
    for i, kind in enumerate(kinds):
        out, y, valid = mixed(kind, lam[i])
        terms[kind] = MixTerm(out.primary, y, valid)
        if cfg.use_cbr and not cfg.mix_per_head:
            terms["aux_" + kind] = MixTerm(out.aux, y, valid)
    if cfg.use_cbr and cfg.mix_per_head:
        for i, kind in enumerate(kinds):
            out, y, valid = mixed(kind, lam[2 + i])
            terms["aux_" + kind] = MixTerm(out.aux, y, valid)
    return terms


def promix_losses(out: Views, mixed: dict[str, MixTerm], sel: Selection, pseudo: torch.Tensor,
                  prior_l: torch.Tensor, prior_u: torch.Tensor, cfg: TrainConfig, gamma: float,
                  lam_u: float) -> dict[str, torch.Tensor]:
    """The loss terms of one network on one batch, as the released code computes them (Eq. 5
    and 9; RECIPE "Debiased training" and "Corrections").

    Labeled set L (``sel.labeled``, targets ``sel.targets``), on each head:
    ``L_cls + gamma * (L_cr + L_mix [+ L_fmix])`` = DML(weak) + gamma * (DML(strong) +
    DML(mixup) [+ DML(FMix)]) (`mix_labeled`), every DML (Eq. 5) with the LABELED prior pi_l.
    The primary head uses plain CE instead when ``cfg.primary_dml`` is False (the paper's text).
    Unlabeled set U = not L, on the auxiliary head (on the primary head when CBR is off):
    ``lambda_u * (DML(weak) + gamma * DML(strong))`` against the sharpened debiased pseudo-labels
    ``pseudo`` (Eq. 6), with the UNLABELED prior pi_u. Every mean is a masked mean over the batch
    (`masked_mean`). Returns the named terms and their weighted sum ``total``.
    """
    a = cfg.effective_alpha
    L, t = sel.labeled, sel.targets

    def dml(logits, targets, prior, alpha, mask):
        return masked_mean(debiased_margin_loss(logits, targets, prior, alpha, "none"), mask)

    def head_terms(prefix: str, weak, strong, alpha) -> dict:
        terms = {prefix + "cls": dml(weak, t, prior_l, alpha, L),
                 prefix + "cr": dml(strong, t, prior_l, alpha, L)}
        for kind in ("mix", "fmix"):
            m = mixed.get(prefix + kind)
            if m is not None:
                terms[prefix + kind] = dml(m.logits, m.targets, prior_l, alpha, m.weight)
        return terms

    def head_total(terms: dict, prefix: str):
        consistency = sum(v for k, v in terms.items()
                          if k.startswith(prefix) and k[len(prefix):] in ("cr", "mix", "fmix"))
        return terms[prefix + "cls"] + gamma * consistency

    terms = head_terms("", out.weak.primary, out.strong.primary, a if cfg.primary_dml else 0.0)
    total = head_total(terms, "")
    if cfg.use_cbr:  # auxiliary pseudo head: the same labeled terms
        terms.update(head_terms("aux_", out.weak.aux, out.strong.aux, a))
        total = total + head_total(terms, "aux_")
        u_heads = Heads(out.weak.aux, out.strong.aux)
    else:  # w/o CBR: the pseudo-labels are consumed by the head that produced them
        u_heads = Heads(out.weak.primary, out.strong.primary)
    if lam_u > 0:
        U = ~L
        terms["unl"] = (dml(u_heads.primary, pseudo, prior_u, a, U)
                        + gamma * dml(u_heads.aux, pseudo, prior_u, a, U))
        total = total + lam_u * terms["unl"]
    terms["total"] = total
    return terms


def epoch_mix_lambdas(cfg: TrainConfig, epoch: int, n_batches: int, n_nets: int) -> np.ndarray:
    """(n_batches, n_nets, 4) coefficients for the epoch, drawn on the host at its start so no
    step waits for the GPU: [..., 0] and [..., 2] mixup's lambda ~ Beta(mixup_alpha,
    mixup_alpha), max(lambda, 1 - lambda), for the primary and the auxiliary head; [..., 1] and
    [..., 3] FMix's lambda ~ Beta(1, 1) (the released code's FMix) likewise (`mix_labeled`)."""
    n = n_batches * n_nets * 2
    mix = augment.mix_lambdas(cfg.mixup_alpha, n, [cfg.seed, epoch, 0]).reshape(-1, 2)
    fm = np.random.default_rng([cfg.seed, epoch, 1]).beta(1.0, 1.0, size=n).reshape(-1, 2)
    lam = np.stack([mix[:, 0], fm[:, 0], mix[:, 1], fm[:, 1]], axis=-1)
    return lam.reshape(n_batches, n_nets, 4)


# ----------------------------------------------------------------------------- the trainer

class Trainer:
    """Trains ProMix (two peer networks) or the CE baseline (one network) as ``cfg`` says.

    ``Trainer(cfg, out_dir).fit()`` runs to ``cfg.epochs``, writing the run folder described in
    history.py after every epoch. ``resume=True`` continues from ``checkpoint.pt``.
    """

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
                 progress: bool | str = True, epoch_lines: bool | None = None,
                 data: tuple[ImageDataset, NoisyLabels] | None = None):
        if progress not in (True, False, "epochs"):
            raise ValueError(f"progress={progress!r}: use True (a bar per epoch over its "
                             "batches), 'epochs' (one bar over the epochs) or False.")
        self.cfg, self.out = cfg, Path(out_dir)
        # "epochs": one bar updated once per epoch. Notebooks use it: per-batch bars send
        # thousands of widget messages, which can starve a headless kernel (nbval timeouts).
        self.epoch_bar = progress == "epochs"
        self.progress = progress is True
        self.epoch_lines = self.progress if epoch_lines is None else epoch_lines
        self._check_out_dir(resume)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":  # the step's shapes are static: cuDNN's autotuning pays
            torch.backends.cudnn.benchmark = True
        self.channels_last = None  # set once the data is known (3-channel images only)
        torch.manual_seed(cfg.seed)  # network initialisation
        self.ds, self.noisy = data if data is not None else prepare_data(cfg)
        self.data = to_device(self.ds, self.noisy, self.device)
        self.channels_last = cfg.channels_last and self.data.x_train.shape[1] == 3
        n_nets = 2 if cfg.method == "promix" else 1
        self.nets = [self._build_net() for _ in range(n_nets)]
        # what the step and the evaluation call: the networks themselves, or compiled
        # (cfg.compile); checkpoints always hold the plain networks' weights
        self.models = [compile_net(n) if cfg.compile else n for n in self.nets]
        params = [p for net in self.nets for p in net.parameters()]
        self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.amp_dtype = amp_dtype(cfg, self.device)
        self.amp = _amp_context(self.amp_dtype, self.device)
        # float16 gradients underflow without loss scaling; bfloat16 and float32 need none (the
        # disabled scaler passes the loss and the step through unchanged). The enabled scaler
        # reads its inf check back once per step (GradScaler.step): the one host sync of the
        # float16 path, which the bfloat16 GPUs the sync tests run on do not have.
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16)
        C, N = self.data.num_classes, len(self.data.y_noisy)
        self.prior_l = torch.stack([uniform_prior(C, self.device)] * n_nets)
        self.prior_u = self.prior_l.clone()
        self.css = torch.ones(n_nets, N, dtype=torch.bool, device=self.device)
        self.records: list[dict] = []
        self.start_epoch = 0
        if resume and (self.out / "checkpoint.pt").is_file():
            self._load_checkpoint()

    # -- setup ---------------------------------------------------------------
    def _build_net(self):
        kw = {"widths": self.cfg.model_widths} if self.cfg.model_widths else {}
        if self.cfg.logit_scale != 1.0:
            kw["logit_scale"] = self.cfg.logit_scale
        net = build_model(self.cfg.model, self.ds.num_classes, self.ds.x_train.shape[-1], **kw)
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    def _check_out_dir(self, resume: bool):
        ckpt = self.out / "checkpoint.pt"
        if ckpt.is_file() and not resume:
            raise RunExistsError(f"{self.out} already holds a run (checkpoint.pt); continue it "
                                 "with --resume or choose another --out. Nothing was changed.")
        if resume and ckpt.is_file():
            diff = config_differences(json.loads((self.out / "config.json").read_text()),
                                      self.cfg)
            if diff:
                raise ValueError("cannot resume: the config differs from the saved run in "
                                 + ", ".join(f"{k} (saved {a!r}, now {b!r})"
                                             for k, (a, b) in sorted(diff.items()))
                                 + f". Resume with the same settings or start a new --out.")

    def _checkpoint_state(self, epoch: int) -> dict:
        return {"epoch": epoch, "nets": [n.state_dict() for n in self.nets],
                "optimizer": self.opt.state_dict(), "prior_l": self.prior_l,
                "prior_u": self.prior_u, "css": self.css, "records": json.dumps(self.records),
                "scaler": self.scaler.state_dict()}

    def _load_checkpoint(self):
        state = torch.load(self.out / "checkpoint.pt", map_location=self.device,
                           weights_only=True)
        for net, sd in zip(self.nets, state["nets"]):
            net.load_state_dict(sd)
        self.opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):  # {} when saved without float16 loss scaling
            self.scaler.load_state_dict(state["scaler"])
        self.prior_l, self.prior_u = state["prior_l"], state["prior_u"]
        self.css = state["css"]
        self.records = json.loads(state["records"])
        self.start_epoch = state["epoch"] + 1

    def _save(self, epoch: int):
        save_json(self.out / "config.json", self.cfg.to_dict())
        atomic_write(self.out / "checkpoint.pt",
                     lambda f: torch.save(self._checkpoint_state(epoch), f))
        save_json(self.out / "history.json", {"config": self.cfg.to_dict(),
                                              "info": self._info(), "epochs": self.records})

    def _info(self) -> dict:
        return {"device": str(self.device), "device_name": (torch.cuda.get_device_name(self.device)
                                                            if self.device.type == "cuda" else "cpu"),
                "torch": torch.__version__,
                "amp": amp_name(self.amp_dtype),
                "n_train": len(self.data.y_noisy),
                "n_test": len(self.data.y_test), "num_classes": self.data.num_classes,
                "actual_noise_rate": round(self.noisy.actual_rate, 5),
                "classes": list(self.ds.classes)}

    # -- the run -------------------------------------------------------------
    def fit(self) -> RunHistory:
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.cfg.epochs, initial=self.start_epoch, unit="epoch",
                   desc=f"{self.cfg.method} {self.cfg.noise}", disable=not self.epoch_bar)
        with bar:
            for epoch in range(self.start_epoch, self.cfg.epochs):
                t0 = time.perf_counter()
                record = self.run_epoch(epoch)
                self.records.append(record)
                self._save(epoch)
                if self.epoch_lines:  # the time left at this epoch's pace, evaluation included
                    left = (self.cfg.epochs - epoch - 1) * (time.perf_counter() - t0)
                    # a warm-up epoch is several times faster than a ProMix epoch
                    more = record["phase"] == "warmup" and epoch + 1 < self.cfg.epochs
                    tqdm.write(self._summary(record) + (
                        f", {'more than' if more else 'about'} {_minutes(left)} left"
                        if left > 0 else ""))
                bar.set_postfix_str(self._postfix(record), refresh=False)
                bar.update(1)
        return RunHistory(self.out)

    @staticmethod
    def _postfix(r: dict) -> str:
        """The short per-epoch summary shown on the epoch bar."""
        s = f"{r['phase']}, test acc {r['test_acc']:.1%}"
        if r.get("selection"):
            s += f", sel. F1 {r['selection']['union']['f1']:.2f}"
        return s

    def _summary(self, r: dict) -> str:
        s = (f"epoch {r['epoch'] + 1:>3}/{self.cfg.epochs} {r['phase']:<7} "
             f"test acc {r['test_acc']:.2%}  loss {r['losses'].get('total', float('nan')):.3f}")
        if r.get("selection"):
            u, lab = r["selection"]["union"], r["selection"]["labeled"]
            s += (f"  clean sel. P {u['precision']:.3f} R {u['recall']:.3f} F1 {u['f1']:.3f}"
                  f"  labeled {lab['count']} ({lab['target_acc']:.1%} right)")
        return s + f"  {r['seconds']:.1f}s {r['images_per_s']:.0f} img/s"

    def run_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        gen = epoch_generator(cfg, epoch, self.device)
        for net in self.nets:
            net.train()
        if cfg.method == "ce":
            phase = "ce"
        else:
            phase = "warmup" if epoch < cfg.warmup_epochs else "promix"
        self._sync()
        t0 = time.perf_counter()
        acc = self._train_epoch(epoch, phase, gen)
        self._sync()
        seconds = time.perf_counter() - t0
        return self._end_of_epoch(epoch, phase, acc, seconds)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _batches(self, gen):
        N, B = len(self.data.y_noisy), self.cfg.batch_size
        perm = torch.randperm(N, device=self.device, generator=gen)
        n_batches = max(1, N // B)  # drop the last partial batch (BatchNorm needs > 1 sample)
        return [perm[i * B:(i + 1) * B] for i in range(n_batches)]

    def new_accumulator(self) -> dict:
        """Per-epoch sums and per-sample masks filled by `train_step`."""
        K, N = len(self.nets), len(self.data.y_noisy)

        def mask():
            return torch.zeros(K, N, dtype=torch.bool, device=self.device)

        return {"loss_sums": {}, "n_batches": 0, "images": 0, "mhcs": mask(), "lga": mask(),
                "labeled": mask(), "lga_ok": mask(),
                "lga_hits": torch.zeros(2, device=self.device),   # [correct guesses, guesses]
                "pseudo_hits": torch.zeros(3, device=self.device)}  # [plain, debiased, total]

    def _train_epoch(self, epoch: int, phase: str, gen) -> dict:
        cfg, d = self.cfg, self.data
        acc = self.new_accumulator()
        gamma, lam_u = ramp(epoch, cfg.gamma_ramp_epochs), unlabeled_weight(cfg, epoch)
        lga_on = cfg.use_lga and epoch >= cfg.lga_start
        batches = self._batches(gen)
        lams = epoch_mix_lambdas(cfg, epoch, len(batches), len(self.nets))
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs} {phase}", leave=False,
                   disable=not self.progress)
        for b, idx in enumerate(bar):
            if b == 0 or cfg.lr_per_step:
                for g in self.opt.param_groups:
                    g["lr"] = cosine_lr(cfg, epoch, b, len(batches))
            x_w, x_s = self.views(idx, phase, gen)
            self.train_step(idx, x_w, x_s, phase, gamma, lam_u, lga_on, gen, acc,
                            mix_lam=lams[b])
        return acc

    def views(self, idx, phase: str, gen) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The normalised weak view of the batch ``idx`` and, in the ProMix phase, its strong
        view (None otherwise)."""
        d = self.data
        with record_function("promix/augment"):
            x = d.x_train[idx]
            x_w = d.normalize(augment.weak_augment(x, pad=d.pad, flip=d.flip, generator=gen),
                              self.channels_last)
            x_s = None
            if phase == "promix":
                x_s = d.normalize(augment.strong_augment(x, pad=d.pad, flip=d.flip,
                                                         generator=gen), self.channels_last)
        return x_w, x_s

    def train_step(self, idx, x_w, x_s, phase, gamma, lam_u, lga_on, gen, acc,
                   mix_lam=None) -> None:
        """One optimisation step on the batch ``idx`` given its normalised weak (and, in the
        ProMix phase, strong) views; fills ``acc``. ``mix_lam``: (networks, 4) mixup/FMix
        coefficients (`epoch_mix_lambdas`; drawn here when None). Nothing in it waits for the
        GPU (tests/test_train.py checks it). benchmarks/throughput.py feeds it from a
        DataLoader too."""
        y = self.data.y_noisy[idx]
        with record_function("promix/forward+losses"), self.amp():
            if phase in ("warmup", "ce"):
                terms = self._warmup_terms(x_w, y)
            else:
                if mix_lam is None:
                    mix_lam = epoch_mix_lambdas(self.cfg, int(torch.randint(1 << 30, (1,))),
                                                1, len(self.nets))[0]
                terms = self._promix_terms(idx, x_w, x_s, y, gamma, lam_u, lga_on, gen, acc,
                                           mix_lam)
        with record_function("promix/backward"):
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(terms["total"]).backward()
        with record_function("promix/optimizer"):
            self.scaler.step(self.opt)
            self.scaler.update()
        for k, v in terms.items():
            acc["loss_sums"][k] = acc["loss_sums"].get(k, 0.0) + v.detach().float()
        acc["n_batches"] += 1
        acc["images"] += len(idx)

    def _warmup_terms(self, x_w, y) -> dict:
        """Warm-up / CE baseline: CE on the weak view, primary head, every network; with the
        weighted confidence penalty for asymmetric noise (RECIPE "Warm-up")."""
        cfg = self.cfg
        penalize = cfg.warmup_conf_penalty and cfg.method == "promix"
        terms = {"ce": 0.0, "total": 0.0}
        for model in self.models:
            logits = heads(model, x_w).primary
            ce = F.cross_entropy(logits, y)
            terms["ce"] = terms["ce"] + ce
            terms["total"] = terms["total"] + ce
            if penalize:
                penalty = confidence_penalty(logits)
                terms["penalty"] = terms.get("penalty", 0.0) + penalty
                terms["total"] = terms["total"] + cfg.warmup_penalty_weight * penalty
        return terms

    def _promix_terms(self, idx, x_w, x_s, y, gamma, lam_u, lga_on, gen, acc, mix_lam) -> dict:
        """The ProMix step for both networks (module docstring, step 2): forward both views,
        then per network select the labeled set, mix it, make the pseudo-labels, compute the
        losses, update the priors and record what the epoch's metrics need."""
        cfg = self.cfg
        views = [forward_views(model, x_w, x_s) for model in self.models]
        probs = [v.weak.primary.detach().softmax(1) for v in views]
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        for k, model in enumerate(self.models):
            guess = (lga_guess_logits(k, views, self.prior_l, self.prior_u, cfg)
                     if lga_on else None)
            sel = select_labeled(self.css[k, idx], probs[k], probs[1 - k], y, guess, cfg,
                                 lga_on)
            mixed = mix_labeled(model, x_w, sel, self.data.num_classes, mix_lam[k], cfg, gen,
                                self.channels_last)
            pseudo = debiased_pseudo_labels(views[k].weak.primary, self.prior_u[k],
                                            cfg.effective_alpha, cfg.temperature)
            t = promix_losses(views[k], mixed, sel, pseudo, self.prior_l[k], self.prior_u[k],
                              cfg, gamma, lam_u)
            total = total + t.pop("total")
            for name, v in t.items():
                terms[name] = terms.get(name, 0.0) + v
            self._record_step(k, idx, sel, views[k], acc)
            self._update_priors(k, probs[k], sel.labeled)
        terms["total"] = total
        return terms

    def _update_priors(self, k: int, probs: torch.Tensor, labeled: torch.Tensor) -> None:
        """Eq. 7 for network k after its step: the labeled and the unlabeled prior, each from
        its own samples of the batch (an empty set leaves its prior as it is)."""
        m = self.cfg.prior_momentum
        self.prior_l[k] = update_class_prior(self.prior_l[k], probs, m, mask=labeled)
        self.prior_u[k] = update_class_prior(self.prior_u[k], probs, m, mask=~labeled)

    def _record_step(self, k: int, idx, sel: Selection, out: Views, acc: dict) -> None:
        """What the epoch's records need from this step (device tensors only, no host sync):
        the per-sample masks, LGA's hits, and for network 1 the pseudo-label accuracy on U with
        and without debiasing (Fig. 4; debiased with ``cfg.alpha`` even in w/o DBR)."""
        clean = self.data.y_clean[idx]
        acc["mhcs"][k, idx] = sel.mhcs
        acc["lga"][k, idx] = sel.lga
        acc["labeled"][k, idx] = sel.labeled
        lga_ok = sel.lga & (sel.targets == clean)
        acc["lga_ok"][k, idx] = lga_ok
        acc["lga_hits"] += torch.stack([lga_ok.sum(), sel.lga.sum()]).float()
        if k == 0:
            unl = ~sel.labeled
            hits = pseudo_label_hits(out.weak.primary.detach(), self.prior_u[k], self.cfg.alpha,
                                     clean, mask=unl)
            acc["pseudo_hits"] += torch.cat([hits, unl.sum().view(1)]).float()

    # -- end of epoch: eval, records, CSS for the next epoch ----------------------
    def _end_of_epoch(self, epoch: int, phase: str, acc: dict, seconds: float) -> dict:
        cfg, d = self.cfg, self.data
        losses = {k: float(v) / max(acc["n_batches"], 1) for k, v in acc["loss_sums"].items()}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            last = f"epoch {epoch}" if epoch > 0 else "none yet"
            raise NonFiniteLossError(
                f"epoch {epoch + 1}: the loss became non-finite ({', '.join(bad)}); the run "
                f"stopped and the last good checkpoint in {self.out} was kept ({last}). Try a "
                "smaller lr, or amp=False.")
        train_logits = [predict(n, d.x_train, d, cfg, self.amp, self.channels_last)
                        for n in self.models]
        test_logits = [predict(n, d.x_test, d, cfg, self.amp, self.channels_last)
                       for n in self.models]
        train_losses = torch.stack([F.cross_entropy(lg, d.y_noisy, reduction="none")
                                    for lg in train_logits])
        ens = torch.stack(test_logits).mean(0)
        rec = {"epoch": epoch, "phase": phase, "lr": cosine_lr(cfg, epoch),
               "test_acc": float((ens.argmax(1) == d.y_test).float().mean()),
               "test_acc_nets": [float((lg.argmax(1) == d.y_test).float().mean())
                                 for lg in test_logits],
               "losses": {k: round(v, 5) for k, v in losses.items()},
               "seconds": round(seconds, 3), "images_per_s": round(acc["images"] / seconds, 1)}
        is_clean = d.is_clean
        # Fig. 3 baselines, applied to network 1's eval-mode losses of this epoch
        rec["baselines"] = {"small_loss": tuned_small_loss(train_losses[0], is_clean),
                            "gmm": tuned_gmm(train_losses[0], is_clean, seed=cfg.seed)}
        if phase == "promix":
            rec["selection"], rec["selection_nets"] = self._selection_records(acc, is_clean)
            n_lga = float(acc["lga_hits"][1])
            rec["lga_label_acc"] = float(acc["lga_hits"][0]) / n_lga if n_lga else None
            ph = acc["pseudo_hits"].tolist()
            rec["pseudo_acc"] = ph[0] / ph[2] if ph[2] else None
            rec["pseudo_acc_debiased"] = ph[1] / ph[2] if ph[2] else None
            rec["selected_per_class"] = torch.bincount(
                d.y_noisy[acc["labeled"][0]], minlength=d.num_classes).tolist()
            rec["prior_l"] = [round(v, 6) for v in self.prior_l[0].tolist()]
            rec["prior_u"] = [round(v, 6) for v in self.prior_u[0].tolist()]
            rec["warnings"] = self._empty_selection_warnings(epoch, acc)
            for line in rec["warnings"]:
                tqdm.write(f"warning: {line}", file=sys.stderr)
        if cfg.method == "promix":  # CSS for the next epoch, from this epoch's eval losses
            self.css = torch.stack([
                class_wise_small_loss(l, d.y_noisy, d.num_classes, cfg.rho) for l in train_losses])
            rec["css_next"] = selection_scores(self.css[0], is_clean)
        if epoch in cfg.record_epochs or epoch == cfg.epochs - 1:
            self._save_samples(epoch, train_logits, train_losses, acc)
        return rec

    def _empty_selection_warnings(self, epoch: int, acc: dict) -> list[str]:
        """One line per network whose labeled set stayed empty for the whole epoch (e.g. w/o
        Base Selection, when MHCS finds no confident match): its labeled terms were zero and
        only the unlabeled term trained it. Recorded in history.json and printed."""
        cfg, out = self.cfg, []
        for k, n in enumerate(acc["labeled"].sum(1).tolist()):
            if n == 0:
                why = ("CSS is off and " if not cfg.use_css else "") + (
                    f"MHCS found no sample whose prediction matches its given label with "
                    f"confidence >= tau = {cfg.tau}" if cfg.use_mhcs else "MHCS is off")
                if cfg.use_lga and epoch >= cfg.lga_start:
                    why += ", and LGA found no sample both networks agree on that confidently"
                out.append(f"epoch {epoch + 1}: network {k + 1} had an empty labeled set ({why}); "
                           "its labeled loss terms were zero, only the unlabeled term trained it.")
        return out

    def _selection_records(self, acc: dict, is_clean) -> tuple[dict, list]:
        per_net = []
        for k in range(len(self.nets)):
            css = self.css[k] if self.cfg.use_css else torch.zeros_like(is_clean)
            masks = {"css": css, "mhcs": acc["mhcs"][k], "union": css | acc["mhcs"][k]}
            scores = {name: selection_scores(m, is_clean) for name, m in masks.items()}
            # LGA relabels: its samples count as correct when the guessed label is the true one
            n_lga = int(acc["lga"][k].sum())
            scores["lga"] = {"count": n_lga,
                             "label_acc": float(acc["lga_ok"][k].sum()) / n_lga if n_lga else None}
            labeled = acc["labeled"][k]
            correct = (labeled & ~acc["lga"][k] & is_clean) | acc["lga_ok"][k]
            scores["labeled"] = {"count": int(labeled.sum()),
                                 "target_acc": float(correct.sum()) / max(int(labeled.sum()), 1)}
            per_net.append(scores)
        return per_net[0], per_net

    def _save_samples(self, epoch: int, train_logits, train_losses, acc):
        d = self.data
        arrays = dict(epoch=np.int64(epoch), noisy=d.y_noisy.cpu().numpy(),
                      clean=d.y_clean.cpu().numpy(),
                      losses=train_losses.cpu().numpy().astype(np.float32),
                      probs=torch.stack([lg.softmax(1) for lg in train_logits]).cpu().numpy()
                      .astype(np.float16),
                      css=self.css.cpu().numpy(), mhcs=acc["mhcs"].cpu().numpy(),
                      lga=acc["lga"].cpu().numpy(), labeled=acc["labeled"].cpu().numpy(),
                      prior_l=self.prior_l.cpu().numpy(), prior_u=self.prior_u.cpu().numpy())
        save_npz(samples_path(self.out, epoch), **arrays)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          progress: bool | str = True, epoch_lines: bool | None = None,
          data: tuple[ImageDataset, NoisyLabels] | None = None) -> RunHistory:
    """Train ``cfg`` into ``out_dir`` (see `Trainer`) and return its `RunHistory`.

    ``progress``: True: a tqdm bar per epoch over its batches; ``"epochs"``: one bar over the
    epochs; False: none. ``epoch_lines``: a one-line summary per epoch (default: as
    ``progress``); ``data``: (dataset, noisy labels) to train on instead of what ``cfg.dataset``
    and ``cfg.noise`` give (e.g. noise sampled from a transition matrix)."""
    return Trainer(cfg, out_dir, resume=resume, progress=progress, epoch_lines=epoch_lines,
                   data=data).fit()


# how far find_finished_run looks: runs/cpu/ablations/no_lga is 3 levels below runs/
SEARCH_DEPTH = 5
SEARCH_MAX_FOLDERS = 5000


def _holds_run(folder: Path) -> bool:
    return any((folder / f).is_file() for f in ("checkpoint.pt", "history.json", "config.json"))


def _run_folders(root: Path, depth: int = SEARCH_DEPTH, limit: int = SEARCH_MAX_FOLDERS):
    """Folders holding a ``config.json`` under ``root``, breadth first, at most ``depth`` levels
    down and ``limit`` folders looked into; hidden folders are skipped and a run folder is not
    descended into (so a large or deep tree costs a bounded number of directory listings)."""
    level, seen = [root], 0
    for _ in range(depth + 1):
        below = []
        for folder in level:
            seen += 1
            if seen > limit:
                return
            if (folder / "config.json").is_file():
                yield folder
                continue
            try:
                below += sorted(Path(e.path) for e in os.scandir(folder)
                                if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
        level = below


def find_finished_run(cfg: TrainConfig, root: str | os.PathLike) -> Path | None:
    """A finished run of ``cfg`` under ``root``, or None.

    A folder qualifies when its ``config.json`` equals ``cfg`` as `config.config_differences`
    compares them (the comparison used for reference runs: fields added later are read at their
    earlier behaviour, and `config.IGNORED_FIELDS` -- device, record_epochs, eval_batch_size --
    are ignored), its history holds ``cfg.epochs`` epochs, and it saved the per-sample arrays of
    every epoch ``cfg.record_epochs`` asks for (and of the last one). The search goes at most
    `SEARCH_DEPTH` folders down and looks into at most `SEARCH_MAX_FOLDERS` folders; hidden
    folders are skipped. Several matches: the most recently finished one (``history.json``
    written last), then the first by path."""
    want = set(cfg.record_epochs) | {cfg.epochs - 1}
    found = []
    for folder in _run_folders(Path(root)):
        try:
            if config_differences(json.loads((folder / "config.json").read_text()), cfg):
                continue
            hist = RunHistory(folder)
            finished = (folder / "history.json").stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):  # unreadable or half-copied: skip
            continue
        if len(hist) >= cfg.epochs and want <= set(hist.sample_epochs()):
            found.append((-finished, str(folder), folder))
    return min(found)[2] if found else None


def train_or_load(cfg: TrainConfig, out_dir: str | Path, *, load: bool = False,
                  progress: bool | str = "epochs",
                  data: tuple[ImageDataset, NoisyLabels] | None = None,
                  search_root: str | os.PathLike | None = None) -> RunHistory:
    """What notebooks call: with ``load=True`` read the finished run in ``out_dir`` (no
    training; a clear error if there is none); otherwise continue or start the run there. A
    finished run of the same config is loaded, not retrained; a different config in the same
    folder is an error naming the fields (nothing is overwritten). ``progress`` as in `train`;
    the default, one bar over the epochs, keeps a notebook's output small.

    Runs made elsewhere are reused: when ``out_dir`` holds no run (no checkpoint, history or
    config) and lies inside ``search_root`` (default `config.runs_root`, the folder the
    notebooks and ``promix train --out runs/...`` share), a finished run of the same config
    anywhere under ``search_root`` (`find_finished_run`) is returned instead of training (or,
    with ``load=True``, instead of the error), with one line saying so: e.g. notebook 04's
    ``runs/cpu/promix_sym50`` loads the quick start's ``runs/cpu_sym50``. Nothing is copied
    into ``out_dir``. Not done with ``data=`` (custom data: a config cannot prove the data is
    the same), nor for an ``out_dir`` outside ``search_root`` (e.g. the ``ci`` profile's
    temporary folder, which so stays self-contained). `train` never reuses a run."""
    out = Path(out_dir)
    root = Path(runs_root() if search_root is None else search_root).resolve()
    if data is None and not _holds_run(out) and out.resolve().is_relative_to(root):
        other = find_finished_run(cfg, root)
        if other is not None:
            print(f"using the finished run {other} (same config) instead of training into {out}")
            return RunHistory(other)
    if load:
        hist = RunHistory(out)
        if len(hist) < hist.config["epochs"]:
            raise ValueError(f"{out} holds an unfinished run ({len(hist)} of "
                             f"{hist.config['epochs']} epochs): train it with load=False.")
        return hist
    return train(cfg, out, resume=(out / "checkpoint.pt").is_file(), progress=progress,
                 data=data)
