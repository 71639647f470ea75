"""Self-supervised pretraining of a preset's backbone (its network but ``heads.*``) on the
training images without labels: a start past the warm-up obstacle at high noise, as C2D
(Zheltonozhskii et al. 2022) gives DivideMix. ProMix is unchanged; only starting weights differ.
SimCLR (Chen et al. 2020): two views per image (`simclr_views`, batched on the training device
where the images stay uint8), a projection head, lightly's NT-Xent loss. Feature quality per
kept checkpoint: `metrics.knn_accuracy` of the frozen features, labelled training images as the
memory bank, test images as queries (the only labels read). A folder holds ``checkpoint.pt``
(to resume), ``backbone_eNNN.pt`` every ``checkpoint_every`` epochs, ``backbone.pt`` at the end
(weights only) and ``manifest.json`` (data, time, hardware, kNN accuracy, each file's sha256).
Training uses a start through `load_start`, `check_start` and `apply_start`."""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

from .config import make_config, start_file
from .data import ImageDataset, load_dataset
from .devices import normalization, resolve_device
from .metrics import knn_accuracy
from .models import MODEL_NAMES, FastCNN, build_model, whitening_weights
from .runs import NonFiniteLossError, RunExistsError, atomic_write, save_json, sha256_file

METHODS = ("simclr",)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pretraining (defaults: the `cpu` preset's network)."""

    dataset: str = "cifar10"          # cifar10 | cifar100 | digits | path.npz
    model: str = "fast_cnn"
    model_widths: tuple[int, ...] | None = (32, 64, 128)
    n_images: int | None = None       # a random subset of the training images (None = all)
    method: str = "simclr"            # the only method so far
    epochs: int = 100
    warmup_epochs: int = 5            # the lr rises linearly, then a cosine to 0 (per step)
    batch_size: int = 512
    lr: float = 0.12                  # SGD with momentum 0.9: 0.06 x batch / 256
    weight_decay: float = 5e-4
    temperature: float = 0.2          # of NT-Xent
    projection_dims: tuple[int, int] = (512, 128)  # hidden, output
    min_scale: float = 0.08           # smallest crop area of the random-resized crop
    seed: int = 0
    knn_k: int = 20
    knn_bank: int | None = 10_000     # pretraining images in the kNN memory bank (None = all)
    knn_queries: int | None = None    # test images queried (None = all)
    checkpoint_every: int = 5
    device: str = "auto"              # auto | cpu | cuda | cuda:N

    def __post_init__(self):
        whole = lambda v, least=1: isinstance(v, int) and v >= least  # noqa: E731
        positive = "must be a positive integer"
        checks = [("model", self.model in MODEL_NAMES, f"must be one of {', '.join(MODEL_NAMES)}"),
                  ("method", self.method in METHODS, f"must be one of {', '.join(METHODS)}"),
                  ("model_widths", self.model_widths is None or self.model == "fast_cnn",
                   "is a fast_cnn option"),
                  ("epochs", whole(self.epochs), positive),
                  ("warmup_epochs", whole(self.warmup_epochs, 0) and whole(self.epochs)
                   and self.warmup_epochs < self.epochs, "must be an integer in [0, epochs)"),
                  ("batch_size", whole(self.batch_size, 2), "must be an integer >= 2 (the "
                   "batch's other images are each image's negatives)"),
                  ("knn_k", whole(self.knn_k), positive),
                  ("checkpoint_every", whole(self.checkpoint_every), positive),
                  *((n, getattr(self, n) is None or whole(getattr(self, n)), "must be None or "
                     "a positive integer") for n in ("n_images", "knn_bank", "knn_queries")),
                  ("lr", self.lr > 0, "must be positive"),
                  ("temperature", self.temperature > 0, "must be positive"),
                  ("weight_decay", 0 <= self.weight_decay < 1, "must lie in [0, 1)"),
                  ("min_scale", 0 < self.min_scale <= 1, "must lie in (0, 1]"),
                  ("projection_dims", len(self.projection_dims) == 2
                   and min(self.projection_dims) >= 1, "must be two positive integers"),
                  ("device", self.device == "auto" or self.device.split(":")[0] in
                   ("cpu", "cuda", "mps"), "must be auto, cpu, cuda, cuda:N or mps")]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"PretrainConfig.{name} {why}, got {getattr(self, name)!r}.")


# the 8 x 8 digits: a milder crop and more steps per epoch (1,347 images)
PRESET_PRETRAIN = {"tiny": dict(epochs=30, warmup_epochs=2, batch_size=128, min_scale=0.3,
                                checkpoint_every=10, knn_k=10)}


def pretrain_config_for(preset: str, dataset: str = "cifar10", **overrides) -> PretrainConfig:
    """A `PretrainConfig` for the network that training ``preset`` builds on ``dataset``
    (dataset, model and widths of `config.make_config`), with ``overrides`` applied."""
    tc, fields = make_config(preset, dataset), [f.name for f in dataclasses.fields(PretrainConfig)]
    if set(overrides) - set(fields):
        raise ValueError(f"unknown PretrainConfig field(s) {sorted(set(overrides) - set(fields))};"
                         f" valid fields: {', '.join(fields)}")
    return PretrainConfig(**{"dataset": tc.dataset, "model": tc.model, "model_widths":
                             tc.model_widths, **PRESET_PRETRAIN.get(preset, {}), **overrides})


_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))  # Y: luma


# Our own batched ops, not kornia.augmentation: several times faster on the CPU for the same
# four ops (benchmarks/pretrain_augment_speed.py), as the colour ops fold into one matrix per
# image. See docs/pretrain.md#augmentations.
def simclr_views(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
                 min_scale: float = 0.08, jitter: tuple = (0.4, 0.4, 0.4, 0.1),
                 p_jitter: float = 0.8, p_grey: float = 0.2) -> torch.Tensor:
    """SimCLR's view of a uint8 N x C x H x W batch as floats in [0, 1]: random-resized crop
    (area in [min_scale, 1], aspect ratio in [3/4, 4/3]), flip, with probability ``p_jitter``
    colour jitter (brightness, contrast, saturation factors 1 +- jitter, hue turned up to
    jitter x 360 degrees in YIQ space), greyscale with probability ``p_grey``. The colour ops
    are linear: one 3 x 3 matrix and offset per image, clamped once."""
    (n, c, h, w), dev = x.shape, x.device
    u = torch.rand(n, 11, generator=generator, device=dev)
    area = min_scale + (1 - min_scale) * u[:, 0]
    ratio = torch.exp(math.log(3 / 4) + math.log(16 / 9) * u[:, 1])
    sw, sh = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    sign = torch.where(u[:, 2] < 0.5, -1.0, 1.0) if flip else torch.ones(n, device=dev)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = sw * sign, sh
    theta[:, 0, 2], theta[:, 1, 2] = (1 - sw) * (2 * u[:, 3] - 1), (1 - sh) * (2 * u[:, 4] - 1)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    x = F.grid_sample(x.float() / 255, grid, mode="bilinear", padding_mode="reflection",
                      align_corners=False)
    on = (u[:, 5] < p_jitter).float()
    b, ct, s, hue = (1 + on * j * (2 * u[:, 6 + i] - 1) for i, j in enumerate(jitter))
    luma = torch.tensor(_YIQ[0] if c == 3 else (1.0,), device=dev)
    mean = torch.einsum("c,nc->n", luma, x.mean((2, 3)))  # contrast blends with the mean grey
    offset = ((1 - ct) * b * mean).view(n, 1, 1, 1)
    if c != 3:  # brightness and contrast only
        return (x * (b * ct).view(n, 1, 1, 1) + offset).clamp(0, 1)
    grey = luma.view(1, 1, 3).expand(n, 3, 3)
    sat = s.view(n, 1, 1) * torch.eye(3, device=dev) + (1 - s).view(n, 1, 1) * grey
    ang = (hue - 1) * 2 * math.pi
    rot = torch.zeros(n, 3, 3, device=dev)
    rot[:, 0, 0], rot[:, 1, 1], rot[:, 2, 2] = 1, ang.cos(), ang.cos()
    rot[:, 1, 2], rot[:, 2, 1] = -ang.sin(), ang.sin()
    yiq = torch.tensor(_YIQ, device=dev)
    mat = torch.linalg.inv(yiq) @ rot @ yiq @ sat * (b * ct).view(n, 1, 1)
    mat = torch.where((u[:, 10] < p_grey).view(n, 1, 1), grey @ mat, mat)
    # grey offsets pass saturation, hue and greyscale unchanged (the luma weights sum to 1)
    return (torch.einsum("nij,njhw->nihw", mat, x) + offset).clamp(0, 1)


def lr_at(cfg: PretrainConfig, epoch: int, step: int, steps: int) -> float:
    """The lr at a step: a linear rise over ``warmup_epochs``, then a cosine to 0."""
    t, w = (epoch * steps + step + 1) / (cfg.epochs * steps), cfg.warmup_epochs / cfg.epochs
    return cfg.lr * t / w if t <= w else cfg.lr * (1 + math.cos(math.pi * (t - w) / (1 - w))) / 2


def _pick(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """A uniform random subset of ``n`` indices, sorted (all when ``n`` is None or larger).
    Uniform, not stratified: choosing the pretraining images must not read their labels."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def _subset(idx: np.ndarray, n_total: int, rule: str) -> dict:
    return {"images": len(idx), "of": n_total, "rule": "all" if len(idx) == n_total else rule,
            "index_sha256": hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()}


def _source(dataset: str) -> str:
    npz = os.environ.get("PROMIX_CIFAR10_NPZ") if dataset == "cifar10" else None
    return (f"arrays file {Path(npz or dataset).name}" if dataset.endswith(".npz") or npz
            else "scikit-learn's digits" if dataset == "digits" else "torchvision")


def hardware(device: torch.device) -> dict:
    """What a pretraining ran on: the GPU's or the CPU's name, cores, threads, torch."""
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else next(
        (ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("model name")),
        platform.processor() or platform.machine()))
    return {"device": device.type, "name": name, "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _asdict(cfg: PretrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples as lists, as saved


class Pretrainer:
    """``Pretrainer(cfg, out_dir, resume=...).fit()``: `pretrain`."""

    def __init__(self, cfg: PretrainConfig, out_dir, *, resume: bool = False,
                 progress: bool = True, command: str | None = None):
        self.cfg, self.out = cfg, Path(out_dir)
        self.say = print if progress else lambda *_, **__: None
        ckpt = self.out / "checkpoint.pt"
        if not resume and (ckpt.exists() or (self.out / "manifest.json").exists()):
            raise RunExistsError(f"{self.out} already holds a pretraining; continue it with "
                                 "--resume or choose another --out. Nothing was changed.")
        state = torch.load(ckpt, "cpu", weights_only=True) if resume and ckpt.is_file() else None
        saved = json.loads(state["manifest"])["config"] if state else _asdict(cfg)
        diff = [f"{k} (saved {saved.get(k)!r}, now {v!r})" for k, v in _asdict(cfg).items()
                if k != "device" and saved.get(k) != v]
        if diff:
            raise ValueError(f"cannot resume: the config differs from the saved pretraining in "
                             f"{', '.join(diff)}; resume with the same settings or a new --out.")
        self.device = resolve_device(cfg.device)
        cuda = self.device.type == "cuda"  # bfloat16 autocast on GPUs that compute it natively
        self.amp = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported(False) else None
        torch.backends.cudnn.benchmark = cuda
        self._load_data()
        torch.manual_seed(cfg.seed)  # initialisation of the network and the projection head
        net = build_model(cfg.model, self.num_classes, self.in_channels,
                          **({"widths": cfg.model_widths} if cfg.model_widths else {}))
        if hasattr(net, "set_whitening"):  # airbench's frozen stem, as training computes it
            net.set_whitening(whitening_weights(self.x, *self.mean_std))
        head = SimCLRProjectionHead(net.heads.primary.in_features, *cfg.projection_dims)
        self.learner = nn.ModuleDict({"net": net, "projection": head})  # heads.* stay untrained
        self.learner.to(self.device, memory_format=self.fmt)
        self.criterion = NTXentLoss(temperature=cfg.temperature)
        trained = [p for k, p in self.learner.named_parameters() if not k.startswith("net.heads.")]
        self.opt = torch.optim.SGD(trained, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        self.epoch, m = 0, {
            "format": 1, "config": _asdict(cfg), "data": self.data_info, "model": cfg.model,
            "widths": resolved_widths(cfg.model, cfg.model_widths), "in_channels":
            self.in_channels, "num_classes": self.num_classes, "feature_dim":
            net.heads.primary.in_features, "method": cfg.method, "epochs": cfg.epochs,
            "epochs_done": 0, "batch_size": cfg.batch_size, "seconds": 0.0, "calls": [],
            "knn": self.knn_info, "checkpoints": [], "files": {}, "history": []}
        if state:
            self.learner.load_state_dict(state["learner"])
            self.opt.load_state_dict(state["optimizer"])
            self.epoch, m = state["epoch"], json.loads(state["manifest"])
        m["hardware"] = hardware(self.device)
        m["calls"].append({"command": command or f"pretrain({cfg!r})", "started": _utc(),
                           "from_epoch": self.epoch, "hardware": m["hardware"]})
        self.manifest = m

    def _load_data(self):
        cfg, dev = self.cfg, self.device
        ds = load_dataset(cfg.dataset)
        used = _pick(len(ds.x_train), cfg.n_images, cfg.seed)
        if len(used) < cfg.batch_size:
            raise ValueError(f"PretrainConfig.batch_size {cfg.batch_size} exceeds the "
                             f"{len(used)} pretraining images; choose a smaller batch.")
        bank, queries = used[_pick(len(used), cfg.knn_bank, 0)], _pick(len(ds.x_test),
                                                                       cfg.knn_queries, 0)
        self.mean_std = normalization(ds)
        mean, std = (torch.tensor(v, device=dev).view(1, -1, 1, 1) for v in self.mean_std)
        self.in_channels, self.num_classes = ds.x_train.shape[-1], ds.num_classes
        self.fmt = torch.channels_last if self.in_channels == 3 else torch.contiguous_format
        self.norm = lambda x01: ((x01 - mean) / std).contiguous(memory_format=self.fmt)
        self.flip = ds.name != "digits"
        images = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(dev)  # noqa: E731
        self.x = images(ds.x_train[used])
        # the only labels read: the kNN figure's (memory bank and queries)
        self.bank = images(ds.x_train[bank]), torch.from_numpy(ds.y_train[bank]).to(dev)
        self.queries = images(ds.x_test[queries]), torch.from_numpy(ds.y_test[queries]).to(dev)
        self.data_info = {"dataset": cfg.dataset, "source": _source(cfg.dataset),
                          "image_shape": list(ds.x_train.shape[1:]), "labels": "not read",
                          **_subset(used, len(ds.x_train), f"random subset (seed {cfg.seed})")}
        self.knn_info = {"k": cfg.knn_k, "temperature": 0.1, "labels": "read for kNN only",
                         "bank": _subset(bank, len(used), "random (seed 0) of those pretrained on"),
                         "queries": _subset(queries, len(ds.x_test), "random test (seed 0)")}

    @torch.no_grad()
    def knn(self) -> float:
        """kNN accuracy of the frozen backbone's normalised features of un-augmented images."""
        net, feats = self.learner["net"].eval(), []
        for x in (self.bank[0], self.queries[0]):
            with torch.autocast(x.device.type, dtype=self.amp, enabled=self.amp is not None):
                z = torch.cat([net.features(self.norm(x[i:i + 1024].float() / 255)).float()
                               for i in range(0, len(x), 1024)])
            feats.append(F.normalize(z, dim=1))
        return knn_accuracy(feats[0], self.bank[1], feats[1], self.queries[1], self.num_classes,
                            self.cfg.knn_k)

    def run_epoch(self, epoch: int) -> float:
        """One epoch, its order and views drawn from a generator seeded from (seed, epoch), so a
        resumed pretraining repeats an uninterrupted one exactly on the CPU; the mean loss."""
        cfg, dev, B = self.cfg, self.device, self.cfg.batch_size
        gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1_000_003 + epoch * 7_919 + 17)
        steps, perm = len(self.x) // B, torch.randperm(len(self.x), device=dev, generator=gen)
        total = torch.zeros((), device=dev)
        self.learner.train()
        for step in range(steps):
            self.opt.param_groups[0]["lr"] = lr_at(cfg, epoch, step, steps)
            x = self.x[perm[step * B:(step + 1) * B]]
            views = [self.norm(simclr_views(x, gen, flip=self.flip, min_scale=cfg.min_scale))
                     for _ in range(2)]
            with torch.autocast(dev.type, dtype=self.amp, enabled=self.amp is not None):
                z = self.learner["projection"](self.learner["net"].features(torch.cat(views)))
            loss = self.criterion(*z.float().chunk(2))  # each view's positive is the other
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach()
        return float(total) / steps

    def fit(self) -> dict:
        cfg, m, times = self.cfg, self.manifest, []
        self.out.mkdir(parents=True, exist_ok=True)
        if self.epoch == 0:  # the initial weights: the figure's first point
            acc = self._keep({})["knn_acc"]
            self.say(f"pretraining {cfg.model} on {len(self.x):,} images ({cfg.method}); kNN "
                     f"accuracy of the initial weights {acc:.2%}", flush=True)
            save_json(self.out / "manifest.json", m)
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            loss = self.run_epoch(self.epoch)
            if not math.isfinite(loss):
                raise NonFiniteLossError(f"epoch {self.epoch + 1}: the loss is {loss}; epoch "
                                         f"{self.epoch} is kept; try a lower lr in a new --out.")
            self.epoch += 1
            rec = {"epoch": self.epoch, "loss": round(loss, 5),
                   "train_seconds": round(time.perf_counter() - t0, 1)}
            keep = self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs
            if keep:
                self._keep(rec)
            times.append(time.perf_counter() - t0)
            m["history"].append(rec)
            m.update(epochs_done=self.epoch, seconds=round(m["seconds"] + times[-1], 1),
                     updated=_utc())
            atomic_write(self.out / "checkpoint.pt", lambda f: torch.save(
                {"epoch": self.epoch, "learner": self.learner.state_dict(),
                 "optimizer": self.opt.state_dict(), "manifest": json.dumps(m)}, f))
            if keep:
                save_json(self.out / "manifest.json", m)
            left = (cfg.epochs - self.epoch) * sum(times) / len(times) / 60
            left = f"{left / 60:.1f} h" if left >= 90 else f"{left:.0f} min" if left else ""
            self.say(f"epoch {self.epoch:>3}/{cfg.epochs}  loss {loss:.4f}"
                     + (f"  kNN {rec['knn_acc']:.2%}" if keep else "") + f"  {times[-1]:.0f} s"
                     + (f", about {left} left" if left else ""), flush=True)
        return m

    def _keep(self, rec: dict) -> dict:
        """Add kNN accuracy to ``rec``; after epoch 0 write the backbone (weights only)."""
        t0 = time.perf_counter()
        rec.update(knn_acc=round(self.knn(), 5), knn_seconds=round(time.perf_counter() - t0, 1))
        sd = {k: v.detach().cpu().contiguous() for k, v in self.learner["net"].state_dict().items()
              if not k.startswith("heads.")}
        names = [f"backbone_e{self.epoch:03d}.pt"] if self.epoch else []
        for name in names + (["backbone.pt"] if self.epoch == self.cfg.epochs else []):
            atomic_write(self.out / name, lambda f: torch.save(sd, f))
            self.manifest["files"][name] = sha256_file(self.out / name)
        self.manifest["checkpoints"].append({"epoch": self.epoch, "file": (names or [None])[0],
                                             **rec})
        return rec


def pretrain(cfg: PretrainConfig, out_dir, *, resume: bool = False, progress: bool = True,
             command: str | None = None) -> dict:
    """Pretrain ``cfg``'s backbone into ``out_dir`` (refused when it holds a pretraining, unless
    ``resume``); returns the final manifest. ``command`` is recorded (default: this call)."""
    return Pretrainer(cfg, out_dir, resume=resume, progress=progress, command=command).fit()


def resolved_widths(model: str, widths) -> tuple[int, ...] | None:
    """fast_cnn's widths (its default when None); None for networks without widths."""
    default = inspect.signature(FastCNN).parameters["widths"].default
    return tuple(widths or default) if model == "fast_cnn" else None


def load_start(path) -> tuple[dict, dict]:
    """The weights and manifest of a start: ``path`` is a backbone file, its folder (then
    ``backbone.pt``) or a shipped start's name (`config.SHIPPED_STARTS`); its sha256 must be
    the manifest's (else ValueError). The manifest's
    ``"loaded"`` names the file, its sha256 and epoch."""
    p = start_file(path)
    for f, what in ((p, "a backbone file or the folder of a finished pretraining"),
                    (p.parent / "manifest.json", "a backbone file beside its manifest.json")):
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist: a start is {what}.")
    manifest = json.loads((p.parent / "manifest.json").read_text())
    if (digest := sha256_file(p)) != (expected := manifest["files"].get(p.name)):
        raise ValueError(f"{p} has sha256 {digest[:16]}..., but its manifest lists "
                         f"{(expected or 'nothing')[:16]}...: the file was changed or damaged; "
                         "copy it again with its manifest.json, or pretrain again.")
    epoch = next((c["epoch"] for c in manifest["checkpoints"] if c["file"] == p.name),
                 manifest["epochs_done"])
    manifest["loaded"] = {"file": p.name, "sha256": digest, "epoch": epoch}
    return torch.load(p, map_location="cpu", weights_only=True), manifest


def check_start(manifest: dict, *, model: str, model_widths, dataset: str, in_channels: int,
                preset: str | None = None) -> None:
    """Refuse (ValueError, one line) a start pretrained for another network, width, dataset or
    number of input channels than the run's."""
    def what(m, w, d, c):
        return f"{m}" + (f" widths {tuple(w)}" if w else "") + f" on {d} ({c} input channels)"

    start = what(manifest["model"], manifest["widths"], manifest["data"]["dataset"],
                 manifest["in_channels"])
    run = what(model, resolved_widths(model, model_widths), dataset, in_channels)
    if start != run:
        raise ValueError(f"the start was pretrained for {start}, but this run trains {run}; "
                         f"pretrain a start for it with `promix pretrain --preset "
                         f"{preset or 'PRESET'} --dataset {dataset}`.")


def apply_start(net: nn.Module, state_dict: dict) -> nn.Module:
    """Load a pretrained backbone into ``net``, whose heads (``heads.*``) keep their
    initialisation. Missing or unexpected backbone keys, or other shapes: ValueError."""
    own = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.startswith("heads.")}
    start = {k: tuple(v.shape) for k, v in state_dict.items()}
    if own != start:
        odd = sorted(k for k in own.keys() | start.keys() if own.get(k) != start.get(k))
        raise ValueError(f"the start does not fit this network: {len(odd)} backbone entries are "
                         f"missing, unexpected or of another shape, e.g. {odd[:3]}.")
    net.load_state_dict(state_dict, strict=False)
    return net


def load_init(cfg, ds: ImageDataset) -> dict | None:
    """The backbone weights ``cfg.init`` names, checked against the run (None from scratch):
    the file must be the start whose checksum the config recorded, pretrained for this network,
    width, dataset and number of input channels (`pretrain.check_start`); ValueError if not."""
    if cfg.init == "scratch":
        return None
    state, manifest = load_start(cfg.init)
    if manifest["loaded"]["sha256"] != cfg.init_sha256:
        raise ValueError(f"the start {cfg.init} is not the one this config recorded (sha256 "
                         f"{cfg.init_sha256[:12]}..., the file's {manifest['loaded']['sha256'][:12]}"
                         "...): give the config again with this start, or restore the file.")
    check_start(manifest, model=cfg.model, model_widths=cfg.model_widths, dataset=cfg.dataset,
                in_channels=ds.x_train.shape[-1])
    return state
