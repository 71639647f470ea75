"""The training loop: ProMix with two peer networks, or the CE baseline with one.

One epoch (docs/design.md#a-training-step):
1. `Trainer.plan` fixes the epoch's phase (warm-up, ProMix, or CE) and the ramps of Eq. 9;
2. per batch, `Trainer.make_batch` draws the weak (and in the ProMix phase the strong) view on the
   training device and `Trainer.train_step` takes one optimisation step on that `Batch`: the
   loss terms of losses.py, backward, the optimiser, and the class priors (Eq. 7);
3. `evaluation.evaluate` runs the eval pass over both splits, and the epoch's record is written;
4. `Trainer.select_for_next_epoch`: CSS (Eq. 1-2; or a Fig. 3 baseline's rule) picks each
   network's clean set for the next epoch from this epoch's eval losses.
Randomness: one generator per epoch seeded from (seed, epoch), so a resumed run repeats an
uninterrupted one exactly on the CPU.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.profiler import record_function
from tqdm.auto import tqdm

from .config import TrainConfig
from .data import ImageDataset
from .debias import debiased_pseudo_labels, uniform_prior, update_class_prior
from .devices import (amp_context, amp_dtype, amp_name, batch_views, compile_net,
                      epoch_generator, prepare_data, resolve_device, to_device, views_in_chunks)
from .evaluation import (EpochTally, evaluate, epoch_record, postfix, promix_record,
                         save_samples, summary_line)
from .losses import (forward_views, lga_guess_logits, mix_labeled, mix_row_counts,
                     promix_losses, select_labeled, warmup_losses)
from .metrics import pseudo_label_hits, selection_scores
from .models import AIRBENCH_WIDTHS, build_model, whitening_weights
from .noise import NoisyLabels
from .pretrain import apply_start, load_init
from .runs import (NonFiniteLossError, RunExistsError, RunHistory, atomic_write,
                   find_finished_run, holds_run, runs_root, save_json)
from .schedule import (cosine_lr, epoch_mix_lambdas, eval_splits, make_optimizer,
                       mix_bucket_rows, ramp, set_lr, unlabeled_weight)
from .selection import select_clean


class EpochPlan(NamedTuple):
    """What holds for every step of one epoch."""

    epoch: int
    phase: str       # "warmup" | "promix" | "ce"
    gamma: float     # weight of the consistency and mixing terms (Eq. 9)
    lam_u: float     # weight of the unlabeled term
    lga_on: bool     # LGA (Eq. 8) adds to the labeled set
    mix_rows: int | None = None  # rows of the mixed passes (mix buckets), None: all


@dataclass
class Batch:
    """One training step's input: sample indices, their normalised views, the given labels."""

    idx: torch.Tensor
    x_weak: torch.Tensor
    x_strong: torch.Tensor | None    # ProMix phase only
    labels: torch.Tensor             # the given (noisy) labels of ``idx``
    plan: EpochPlan
    generator: torch.Generator       # the epoch's random stream (mixing pairs)
    mix_lambdas: list | np.ndarray | None = None  # (networks, 4), `schedule.epoch_mix_lambdas`


class StepOutcome(NamedTuple):
    """What one step did: its loss terms, each network's labeled set (ProMix phase), and network
    1's pseudo-label hits on D_u, plain / debiased / count (Fig. 4)."""

    terms: dict
    selections: list | None
    pseudo_hits: torch.Tensor | None
    mix: torch.Tensor | None = None  # mix buckets: per network `losses.mix_row_counts`


class Trainer:
    """Trains ProMix (two peer networks) or the CE baseline (one network) as ``cfg`` says.

    ``Trainer(cfg, out_dir).fit()`` runs to ``cfg.epochs``, writing the run folder described in
    runs.py after every epoch. ``resume=True`` continues from ``checkpoint.pt``.
    """

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
                 progress: bool | str = True, epoch_lines: bool | None = None,
                 data: tuple[ImageDataset, NoisyLabels] | None = None):
        if progress not in (True, False, "epochs"):
            raise ValueError(f"progress={progress!r}: use True (a bar per epoch over its "
                             "batches), 'epochs' (one bar over the epochs) or False.")
        self.cfg, self.out = cfg, Path(out_dir)
        # per-batch bars send thousands of widget messages, which can starve a notebook kernel
        self.epoch_bar = progress == "epochs"
        self.progress = progress is True
        self.epoch_lines = self.progress if epoch_lines is None else epoch_lines
        self._check_out_dir(resume)
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":  # static shapes: cuDNN's autotuning pays
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(cfg.seed)  # network initialisation
        self.ds, self.noisy = data if data is not None else prepare_data(cfg)
        self.data = to_device(self.ds, self.noisy, self.device)
        self.channels_last = cfg.channels_last and self.data.x_train.shape[1] == 3
        resuming = resume and (self.out / "checkpoint.pt").is_file()
        self.start = None if resuming else load_init(cfg, self.ds)
        self.whitening = (whitening_weights(self.data.x_train, self.data.mean, self.data.std)
                          if cfg.model in AIRBENCH_WIDTHS else None)  # once, before training
        n_nets = 2 if cfg.method == "promix" else 1
        self.nets = [self._build_net() for _ in range(n_nets)]
        # checkpoints hold the plain networks' weights; the step calls the compiled ones
        self.models = [compile_net(n) if cfg.compile else n for n in self.nets]
        self.opt = make_optimizer(self.nets, cfg)
        self.amp_dtype = amp_dtype(cfg, self.device)
        self.amp = amp_context(self.amp_dtype, self.device)
        # float16 gradients underflow without loss scaling; disabled, the scaler is a no-op
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

    # -- setup and the run folder ---------------------------------------------------------
    def _build_net(self):
        kw = {"widths": self.cfg.model_widths} if self.cfg.model_widths else {}
        if self.cfg.logit_scale != 1.0:
            kw["logit_scale"] = self.cfg.logit_scale
        net = build_model(self.cfg.model, self.ds.num_classes, self.ds.x_train.shape[-1], **kw)
        if self.whitening is not None:
            net.set_whitening(self.whitening)
        if self.start is not None:  # the backbone of the start, the heads as initialised
            apply_start(net, self.start)
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
            diff = self.cfg.differences(json.loads((self.out / "config.json").read_text()))
            if diff:
                raise ValueError("cannot resume: the config differs from the saved run in "
                                 + ", ".join(f"{k} (saved {a!r}, now {b!r})"
                                             for k, (a, b) in sorted(diff.items()))
                                 + ". Resume with the same settings or start a new --out.")

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
        cuda = self.device.type == "cuda"
        return {"device": str(self.device),
                "device_name": torch.cuda.get_device_name(self.device) if cuda else "cpu",
                "torch": torch.__version__, "amp": amp_name(self.amp_dtype),
                "n_train": len(self.data.y_noisy), "n_test": len(self.data.y_test),
                "num_classes": self.data.num_classes,
                "actual_noise_rate": round(self.noisy.actual_rate, 5),
                "classes": list(self.ds.classes)}

    # -- the run ----------------------------------------------------------------------------
    def fit(self, stop_after: int | None = None) -> RunHistory:
        """Train to the end, or only to epoch ``stop_after`` (the run then resumes from there,
        e.g. the warm-up alone: ``stop_after=cfg.warmup_epochs``)."""
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.cfg.epochs, initial=self.start_epoch, unit="epoch",
                   desc=f"{self.cfg.method} {self.cfg.noise}", disable=not self.epoch_bar)
        with bar:
            for epoch in range(self.start_epoch, min(self.cfg.epochs, stop_after or 1 << 30)):
                t0 = time.perf_counter()
                record = self.run_epoch(epoch)
                self.records.append(record)
                self._save(epoch)
                if self.epoch_lines:
                    self._print_epoch(record, time.perf_counter() - t0)
                bar.set_postfix_str(postfix(record), refresh=False)
                bar.update(1)
        return RunHistory(self.out)

    def _print_epoch(self, r: dict, seconds: float) -> None:
        """The epoch's warnings and summary line, with the time left at this epoch's pace."""
        for line in r.get("warnings", []):
            tqdm.write(f"warning: {line}", file=sys.stderr)
        tqdm.write(summary_line(r, self.cfg.epochs, seconds))

    def plan(self, epoch: int) -> EpochPlan:
        cfg = self.cfg
        phase = "ce" if cfg.method == "ce" else (
            "warmup" if epoch < cfg.warmup_epochs else "promix")
        prev = next((r for r in self.records if r["epoch"] == epoch - 1), {})
        return EpochPlan(epoch, phase, ramp(epoch, cfg.gamma_ramp_epochs),
                         unlabeled_weight(cfg, epoch), cfg.use_lga and epoch >= cfg.lga_start,
                         mix_bucket_rows(cfg, epoch, prev.get("mix")) if phase == "promix"
                         else None)

    def new_tally(self) -> EpochTally:
        return EpochTally(len(self.nets), len(self.data.y_noisy), self.device)

    def run_epoch(self, epoch: int) -> dict:
        """Train one epoch, evaluate, record it, and select the next epoch's clean sets."""
        plan, gen = self.plan(epoch), epoch_generator(self.cfg, epoch, self.device)
        for net in self.nets:
            net.train()
        self._sync()
        t0 = time.perf_counter()
        tally = self._train_epoch(plan, gen)
        self._sync()
        seconds = time.perf_counter() - t0
        self._check_finite(epoch, tally)
        cfg, last = self.cfg, epoch == self.cfg.epochs - 1
        ev = evaluate(self.models, self.data, cfg, self.amp, self.channels_last,
                      **eval_splits(cfg, epoch))
        record = epoch_record(cfg, epoch, plan.phase, tally, seconds, ev, self.data)
        if plan.phase == "promix":
            record.update(promix_record(cfg, epoch, tally, self.data, self.css,
                                        self.prior_l, self.prior_u, plan.mix_rows))
        if cfg.method == "promix" and ev.train_losses is not None:
            self.css = self.select_for_next_epoch(ev.train_losses)
            record["css_next"] = selection_scores(self.css[0], self.data.is_clean)
        if epoch in cfg.record_epochs or last:
            save_samples(self.out, epoch, self.data, ev, self.css, tally, self.prior_l,
                         self.prior_u)
        return record

    def select_for_next_epoch(self, train_losses: torch.Tensor) -> torch.Tensor:
        """Each network's clean set for the next epoch, where its labeled set starts: CSS (Eq.
        1-2, the ``ceil(R N / C)`` smallest eval-mode losses of every given class), or with
        ``cfg.selection`` the GMM or small-loss rule of Fig. 3 (`selection.select_clean`)."""
        cfg, d = self.cfg, self.data
        return torch.stack([select_clean(cfg.selection, l, d.y_noisy, d.num_classes,
                                         rho=cfg.rho, threshold=cfg.gmm_threshold,
                                         forget_rate=cfg.forget_rate, seed=cfg.seed)
                            for l in train_losses])

    def _check_finite(self, epoch: int, tally: EpochTally) -> None:
        bad = [k for k, v in tally.mean_losses().items() if not math.isfinite(v)]
        if bad:
            last = f"epoch {epoch}" if epoch > 0 else "none yet"
            raise NonFiniteLossError(
                f"epoch {epoch + 1}: the loss became non-finite ({', '.join(bad)}); the run "
                f"stopped and the last good checkpoint in {self.out} was kept ({last}). Try a "
                "smaller lr, or amp=False.")

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def batch_indices(self, gen) -> list[torch.Tensor]:
        """The epoch's batches of sample indices (the last partial batch is dropped: BatchNorm
        needs more than one sample)."""
        N, B = len(self.data.y_noisy), self.cfg.batch_size
        perm = torch.randperm(N, device=self.device, generator=gen)
        return [perm[i * B:(i + 1) * B] for i in range(max(1, N // B))]

    def _train_epoch(self, plan: EpochPlan, gen) -> EpochTally:
        cfg, tally = self.cfg, self.new_tally()
        batches = self.batch_indices(gen)
        lams = epoch_mix_lambdas(cfg, plan.epoch, len(batches), len(self.nets))
        chunks = (views_in_chunks(self.data, batches, cfg.augment_chunks,
                                  plan.phase == "promix", gen) if cfg.augment_chunks else None)
        bar = tqdm(batches, desc=f"epoch {plan.epoch + 1}/{cfg.epochs} {plan.phase}",
                   leave=False, disable=not self.progress)
        for b, idx in enumerate(bar):
            if b == 0 or cfg.lr_per_step:
                set_lr(self.opt, cosine_lr(cfg, plan.epoch, b, len(batches)))
            views = next(chunks) if chunks is not None else None
            outcome = self.train_step(self.make_batch(idx, plan, gen, lams[b].tolist(), views))
            self.tally_step(tally, idx, outcome)
        return tally

    def make_batch(self, idx: torch.Tensor, plan: EpochPlan, gen: torch.Generator,
                   mix_lambdas: list | np.ndarray | None = None,
                   views: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> Batch:
        """The `Batch` of samples ``idx``: the normalised weak view and, in the ProMix phase,
        the strong view (augment.py, on the training device), or the uint8 ``views`` made
        beforehand (`devices.views_in_chunks`); ``mix_lambdas`` as Python floats (NumPy values
        would break a compiled graph and make a GPU wait)."""
        d = self.data
        with record_function("promix/augment"):
            if views is None:
                views = batch_views(d, d.x_train[idx], plan.phase == "promix", gen)
            x_w = d.normalize(views[0], self.channels_last)
            x_s = None if views[1] is None else d.normalize(views[1], self.channels_last)
        return Batch(idx, x_w, x_s, d.y_noisy[idx], plan, gen, mix_lambdas)

    def tally_step(self, tally: EpochTally, idx: torch.Tensor, outcome: StepOutcome) -> None:
        """Add one step's outcome to the epoch's tally (device tensors, no host sync)."""
        tally.add_losses(outcome.terms, len(idx))
        for k, sel in enumerate(outcome.selections or []):
            tally.add_selection(k, idx, sel, self.data.y_clean[idx])
        if outcome.pseudo_hits is not None:
            tally.pseudo_hits += outcome.pseudo_hits
        if outcome.mix is not None:
            tally.add_mix(outcome.mix)

    def train_step(self, batch: Batch) -> StepOutcome:
        """One optimisation step on ``batch``. Nothing in it waits for the GPU
        (tests/test_train.py checks it); benchmarks/throughput.py feeds it from a DataLoader."""
        with record_function("promix/forward+losses"), self.amp():
            if batch.plan.phase in ("warmup", "ce"):
                outcome = StepOutcome(warmup_losses(self.models, batch.x_weak, batch.labels,
                                                    self.cfg), None, None)
            else:
                outcome = self._promix_step(batch)
        with record_function("promix/backward"):
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(outcome.terms["total"]).backward()
        with record_function("promix/optimizer"):
            self.scaler.step(self.opt)
            self.scaler.update()
        return outcome

    def _promix_step(self, batch: Batch) -> StepOutcome:
        """Both networks' ProMix terms (losses.py): forward both views, then per network select
        the labeled set, mix it, make the debiased pseudo-labels (Eq. 6), compute the losses
        (Eq. 5, 9) and update the priors (Eq. 7)."""
        cfg, plan, y = self.cfg, batch.plan, batch.labels
        lam = batch.mix_lambdas
        if lam is None:
            lam = epoch_mix_lambdas(cfg, int(torch.randint(1 << 30, (1,))), 1, len(self.nets))[0]
        views = [forward_views(m, batch.x_weak, batch.x_strong) for m in self.models]
        probs = [v.weak.primary.detach().softmax(1) for v in views]
        terms: dict[str, torch.Tensor] = {}
        total, sels, hits, mix = 0.0, [], None, []
        for k, model in enumerate(self.models):
            guess = (lga_guess_logits(k, views, self.prior_l, self.prior_u, cfg)
                     if plan.lga_on else None)
            sel = select_labeled(self.css[k, batch.idx], probs[k], probs[1 - k], y, guess, cfg,
                                 plan.lga_on)
            mixed = mix_labeled(model, batch.x_weak, sel, self.data.num_classes, lam[k], cfg,
                                batch.generator, self.channels_last, plan.mix_rows)
            if plan.mix_rows is not None:
                mix.append(mix_row_counts(sel.labeled, plan.mix_rows))
            pseudo = debiased_pseudo_labels(views[k].weak.primary, self.prior_u[k],
                                            cfg.effective_alpha, cfg.temperature)
            t = promix_losses(views[k], mixed, sel, pseudo, self.prior_l[k], self.prior_u[k],
                              cfg, plan.gamma, plan.lam_u)
            total = total + t.pop("total")
            for name, v in t.items():
                terms[name] = terms.get(name, 0.0) + v
            sels.append(sel)
            if k == 0:  # Fig. 4, with this network's prior before this step's update
                unl = ~sel.labeled
                h = pseudo_label_hits(views[0].weak.primary.detach(), self.prior_u[0],
                                      cfg.alpha, self.data.y_clean[batch.idx], mask=unl)
                hits = torch.cat([h, unl.sum().view(1)]).float()
            self._update_priors(k, probs[k], sel.labeled)
        terms["total"] = total
        return StepOutcome(terms, sels, hits, torch.stack(mix) if mix else None)

    def _update_priors(self, k: int, probs: torch.Tensor, labeled: torch.Tensor) -> None:
        """Eq. 7 for network k: the labeled and the unlabeled prior, each from its own samples
        of the batch (an empty set leaves its prior as it is)."""
        m = self.cfg.prior_momentum
        self.prior_l[k] = update_class_prior(self.prior_l[k], probs, m, mask=labeled)
        self.prior_u[k] = update_class_prior(self.prior_u[k], probs, m, mask=~labeled)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          progress: bool | str = True, epoch_lines: bool | None = None,
          data: tuple[ImageDataset, NoisyLabels] | None = None) -> RunHistory:
    """Train ``cfg`` into ``out_dir`` (see `Trainer`) and return its `RunHistory`.

    ``progress``: True: a tqdm bar per epoch over its batches; ``"epochs"``: one bar over the
    epochs; False: none. ``epoch_lines``: a one-line summary per epoch, with the epoch's
    warnings (default: as ``progress``); ``data``: (dataset, noisy labels) to train on instead
    of what ``cfg.dataset`` and ``cfg.noise`` give (e.g. noise sampled from a transition matrix)."""
    return Trainer(cfg, out_dir, resume=resume, progress=progress, epoch_lines=epoch_lines,
                   data=data).fit()


def train_or_load(cfg: TrainConfig, out_dir: str | Path, *, load: bool = False,
                  progress: bool | str = "epochs",
                  data: tuple[ImageDataset, NoisyLabels] | None = None,
                  search_root: str | Path | None = None) -> RunHistory:
    """What notebooks call: with ``load=True`` read the finished run in ``out_dir`` (no
    training; a clear error if there is none); otherwise continue or start the run there. A
    finished run of the same config is loaded, not retrained; a different config in the same
    folder is an error naming the fields (nothing is overwritten).

    Runs made elsewhere are reused: when ``out_dir`` holds no run and lies inside
    ``search_root`` (default `runs.runs_root`, the folder the notebooks and ``promix train
    --out runs/...`` share), a finished run of the same config anywhere under it
    (`runs.find_finished_run`) is returned instead of training, with one line saying so.
    Nothing is copied into ``out_dir``. Not done with ``data=`` (a config cannot prove the data
    is the same), nor for an ``out_dir`` outside ``search_root``. `train` never reuses a run."""
    out = Path(out_dir)
    root = Path(runs_root() if search_root is None else search_root).resolve()
    if data is None and not holds_run(out) and out.resolve().is_relative_to(root):
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
