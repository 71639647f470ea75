"""What an epoch measures and records: the eval pass over both splits, the epoch's record in
history.json, the per-sample arrays the widgets read, and the tally the steps fill.

A record holds the test accuracy of the ensemble (mean of both networks' primary logits, as the
paper reports it) and of each network, the mean loss terms, the Fig. 3 baselines tuned on this
epoch's losses, and in the ProMix phase the precision / recall / F1 of CSS, MHCS and their
union against the injected noise, LGA's relabelled count and accuracy, the pseudo-label
accuracy with and without debiasing (Fig. 4), the selected count per class and both priors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig
from .devices import DeviceData
from .losses import Selection
from .metrics import confident_learning, selection_scores, tuned_gmm, tuned_small_loss
from .runs import samples_path, save_npz
from .schedule import cosine_lr


@torch.no_grad()
def predict(net, x_uint8: torch.Tensor, data: DeviceData, batch_size: int, amp,
            channels_last: bool = False, flip: bool = False) -> torch.Tensor:
    """Primary-head logits (float32) of un-augmented images, eval mode, in batches; with
    ``flip`` of the mirror images (test-time augmentation averages both)."""
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(x_uint8), batch_size):
        x = x_uint8[i:i + batch_size]
        with amp():
            out.append(net(data.normalize(x.flip(3) if flip else x, channels_last))[0].float())
    net.train(was_training)
    return torch.cat(out)


class EvalOutputs(NamedTuple):
    """One epoch's eval pass: per network, the primary logits on the training and the test
    split and the per-sample CE against the given labels (what the next CSS ranks, Eq. 1);
    ``None`` for a split not evaluated this epoch (`TrainConfig.eval_every`). With test-time
    flips the test logits average both images and ``test_logits_plain`` are the images' own."""

    train_logits: list[torch.Tensor] | None
    test_logits: list[torch.Tensor] | None
    train_losses: torch.Tensor | None   # (networks, N)
    test_logits_plain: list[torch.Tensor] | None = None


def evaluate(models, data: DeviceData, cfg: TrainConfig, amp, channels_last: bool, *,
             train: bool = True, test: bool = True, tta: bool = False) -> EvalOutputs:
    """The eval pass over the training split (``train``) and the test split (``test``) for
    every network (un-augmented images, eval mode); ``tta``: the test logits are the mean of
    each image's and its mirror image's (`TrainConfig.tta_flip`)."""
    def run(x, flip=False):
        return [predict(n, x, data, cfg.eval_batch_size, amp, channels_last, flip)
                for n in models]

    train_logits = run(data.x_train) if train else None
    test_logits = run(data.x_test) if test else None
    plain = None
    if test and tta:
        plain = test_logits
        test_logits = [(a + b) / 2 for a, b in zip(plain, run(data.x_test, flip=True))]
    losses = None if not train else torch.stack(
        [F.cross_entropy(lg, data.y_noisy, reduction="none") for lg in train_logits])
    return EvalOutputs(train_logits, test_logits, losses, plain)


@dataclass
class EpochTally:
    """What the steps of one epoch leave for its record: loss sums and per-sample masks (device
    tensors, filled without a host sync)."""

    n_nets: int
    n_samples: int
    device: torch.device
    loss_sums: dict = field(default_factory=dict)
    n_batches: int = 0
    images: int = 0

    def __post_init__(self):
        def mask():
            return torch.zeros(self.n_nets, self.n_samples, dtype=torch.bool, device=self.device)

        self.mhcs, self.lga, self.labeled, self.lga_ok = mask(), mask(), mask(), mask()
        self.lga_hits = torch.zeros(2, device=self.device)     # [correct guesses, guesses]
        self.pseudo_hits = torch.zeros(3, device=self.device)  # [plain, debiased, total]
        # mix buckets: the most labeled rows of a batch, and labeled rows left out of mixup
        self.mix = torch.zeros(2, dtype=torch.long, device=self.device)

    def add_losses(self, terms: dict, n_images: int) -> None:
        """Add one step's loss terms (tensors, detached here)."""
        for k, v in terms.items():
            self.loss_sums[k] = self.loss_sums.get(k, 0.0) + v.detach().float()
        self.n_batches += 1
        self.images += n_images

    def add_selection(self, k: int, idx: torch.Tensor, sel: Selection,
                      clean: torch.Tensor) -> None:
        """Network ``k``'s labeled set in one batch and whether LGA's guesses were right."""
        self.mhcs[k, idx] = sel.mhcs
        self.lga[k, idx] = sel.lga
        self.labeled[k, idx] = sel.labeled
        lga_ok = sel.lga & (sel.targets == clean)
        self.lga_ok[k, idx] = lga_ok
        self.lga_hits += torch.stack([lga_ok.sum(), sel.lga.sum()]).float()

    def add_mix(self, counts: torch.Tensor) -> None:
        """One step's `losses.mix_row_counts` of every network (``(networks, 2)``)."""
        self.mix = torch.stack([self.mix[0].maximum(counts[:, 0].max()),
                                self.mix[1] + counts[:, 1].sum()])

    def mean_losses(self) -> dict[str, float]:
        return {k: float(v) / max(self.n_batches, 1) for k, v in self.loss_sums.items()}


def _accuracy(logits: torch.Tensor, data: DeviceData) -> float:
    return float((logits.argmax(1) == data.y_test).float().mean())


def epoch_record(cfg: TrainConfig, epoch: int, phase: str, tally: EpochTally, seconds: float,
                 ev: EvalOutputs, data: DeviceData) -> dict:
    """The record every epoch writes: accuracies, mean losses, time, and the Fig. 3 baselines
    (tuned on network 1's eval-mode losses of this epoch, `metrics.tuned_gmm`). An epoch without
    a test pass (`TrainConfig.eval_every`) records ``test_acc`` None and no baselines."""
    losses = tally.mean_losses()
    rec = {"epoch": epoch, "phase": phase, "lr": cosine_lr(cfg, epoch),
           "test_acc": None, "test_acc_nets": None,
           "losses": {k: round(v, 5) for k, v in losses.items()},
           "seconds": round(seconds, 3), "images_per_s": round(tally.images / seconds, 1)}
    if ev.test_logits is None:
        return rec
    rec["test_acc"] = _accuracy(torch.stack(ev.test_logits).mean(0), data)
    rec["test_acc_nets"] = [_accuracy(lg, data) for lg in ev.test_logits]
    if ev.test_logits_plain is not None:  # the accuracy without the flips, for comparison
        rec["test_acc_plain"] = _accuracy(torch.stack(ev.test_logits_plain).mean(0), data)
    if ev.train_losses is not None:
        rec["baselines"] = {
            "small_loss": tuned_small_loss(ev.train_losses[0], data.is_clean),
            "gmm": tuned_gmm(ev.train_losses[0], data.is_clean, seed=cfg.seed),
            "cleanlab": confident_learning(ev.train_logits[0].softmax(1), data.y_noisy,
                                           data.is_clean)}
    return rec


def promix_record(cfg: TrainConfig, epoch: int, tally: EpochTally, data: DeviceData,
                  css: torch.Tensor, prior_l: torch.Tensor, prior_u: torch.Tensor,
                  mix_rows: int | None = None) -> dict:
    """What a ProMix epoch adds to its record: the selection scores of the CSS this epoch
    trained with (``css``), MHCS and LGA; pseudo-label accuracy; priors; warnings; with mix
    buckets the rows of the mixed passes, the most labeled rows of a batch and how many labeled
    rows were left out of mixup (`schedule.mix_bucket_rows`)."""
    is_clean = data.is_clean
    per_net = selection_records(cfg, css, tally, is_clean)
    n_lga = float(tally.lga_hits[1])
    ph = tally.pseudo_hits.tolist()
    return {"selection": per_net[0], "selection_nets": per_net,
            "lga_label_acc": float(tally.lga_hits[0]) / n_lga if n_lga else None,
            "pseudo_acc": ph[0] / ph[2] if ph[2] else None,
            "pseudo_acc_debiased": ph[1] / ph[2] if ph[2] else None,
            "selected_per_class": torch.bincount(data.y_noisy[tally.labeled[0]],
                                                 minlength=data.num_classes).tolist(),
            "prior_l": [round(v, 6) for v in prior_l[0].tolist()],
            "prior_u": [round(v, 6) for v in prior_u[0].tolist()],
            "warnings": empty_selection_warnings(cfg, epoch, tally),
            **({} if mix_rows is None else {"mix": dict(zip(
                ("rows", "labeled_max", "dropped"), [mix_rows] + tally.mix.tolist()))})}


def selection_records(cfg: TrainConfig, css: torch.Tensor, tally: EpochTally,
                      is_clean: torch.Tensor) -> list[dict]:
    """Per network: precision / recall / F1 of CSS, MHCS and their union; LGA's count and label
    accuracy (a guess counts as right when it is the true label); the labeled set's size and
    how many of its targets are right."""
    per_net = []
    for k in range(tally.n_nets):
        c = css[k] if cfg.use_css else torch.zeros_like(is_clean)
        masks = {"css": c, "mhcs": tally.mhcs[k], "union": c | tally.mhcs[k]}
        scores = {name: selection_scores(m, is_clean) for name, m in masks.items()}
        n_lga = int(tally.lga[k].sum())
        scores["lga"] = {"count": n_lga,
                         "label_acc": float(tally.lga_ok[k].sum()) / n_lga if n_lga else None}
        labeled = tally.labeled[k]
        correct = (labeled & ~tally.lga[k] & is_clean) | tally.lga_ok[k]
        scores["labeled"] = {"count": int(labeled.sum()),
                             "target_acc": float(correct.sum()) / max(int(labeled.sum()), 1)}
        per_net.append(scores)
    return per_net


def empty_selection_warnings(cfg: TrainConfig, epoch: int, tally: EpochTally) -> list[str]:
    """One line per network whose labeled set stayed empty for the whole epoch (e.g. w/o Base
    Selection, when MHCS finds no confident match): its labeled terms were zero and only the
    unlabeled term trained it."""
    out = []
    for k, n in enumerate(tally.labeled.sum(1).tolist()):
        if n == 0:
            why = ("CSS is off and " if not cfg.use_css else "") + (
                f"MHCS found no sample whose prediction matches its given label with "
                f"confidence >= tau = {cfg.tau}" if cfg.use_mhcs else "MHCS is off")
            if cfg.use_lga and epoch >= cfg.lga_start:
                why += ", and LGA found no sample both networks agree on that confidently"
            out.append(f"epoch {epoch + 1}: network {k + 1} had an empty labeled set ({why}); "
                       "its labeled loss terms were zero, only the unlabeled term trained it.")
    return out


def save_samples(out_dir: Path, epoch: int, data: DeviceData, ev: EvalOutputs,
                 css: torch.Tensor, tally: EpochTally, prior_l: torch.Tensor,
                 prior_u: torch.Tensor) -> Path:
    """The per-sample arrays of ``epoch`` (``samples_eNNN.npz``): labels, eval losses, float16
    probabilities, the CSS chosen for the next epoch, the epoch's masks and the priors."""
    arrays = dict(epoch=np.int64(epoch), noisy=data.y_noisy.cpu().numpy(),
                  clean=data.y_clean.cpu().numpy(),
                  losses=ev.train_losses.cpu().numpy().astype(np.float32),
                  probs=torch.stack([lg.softmax(1) for lg in ev.train_logits]).cpu().numpy()
                  .astype(np.float16),
                  css=css.cpu().numpy(), mhcs=tally.mhcs.cpu().numpy(),
                  lga=tally.lga.cpu().numpy(), labeled=tally.labeled.cpu().numpy(),
                  prior_l=prior_l.cpu().numpy(), prior_u=prior_u.cpu().numpy())
    return save_npz(samples_path(out_dir, epoch), **arrays)


def summary_line(r: dict, epochs: int, seconds: float) -> str:
    """The one-line summary of epoch record ``r`` of ``epochs``, with the time left at the pace
    of this epoch (``seconds``, evaluation included)."""
    acc = "-" if r["test_acc"] is None else f"{r['test_acc']:.2%}"
    s = (f"epoch {r['epoch'] + 1:>3}/{epochs} {r['phase']:<7} "
         f"test acc {acc}  loss {r['losses'].get('total', float('nan')):.3f}")
    if r.get("selection"):
        u, lab = r["selection"]["union"], r["selection"]["labeled"]
        s += (f"  clean sel. P {u['precision']:.3f} R {u['recall']:.3f} F1 {u['f1']:.3f}"
              f"  labeled {lab['count']} ({lab['target_acc']:.1%} right)")
    s += f"  {r['seconds']:.1f}s {r['images_per_s']:.0f} img/s"
    left = (epochs - r["epoch"] - 1) * seconds
    if left <= 0:
        return s
    # a warm-up epoch is several times faster than a ProMix epoch
    more = "more than" if r["phase"] == "warmup" else "about"
    left_text = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
    return s + f", {more} {left_text} left"


def postfix(r: dict) -> str:
    """The short per-epoch summary shown on the epoch bar."""
    s = r["phase"] + ("" if r["test_acc"] is None else f", test acc {r['test_acc']:.1%}")
    if r.get("selection"):
        s += f", sel. F1 {r['selection']['union']['f1']:.2f}"
    return s
