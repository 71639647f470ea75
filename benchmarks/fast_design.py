"""The fast preset's design, checked on a CPU before any GPU time (docs/calibration.md#fast-preset).

``python benchmarks/fast_design.py`` (seconds to minutes; random CIFAR-shaped images, no data
needed) prints and writes benchmarks/results/fast_design_cpu.json:
1. FLOPs per training step and per image (torch.utils.flop_counter.FlopCounterMode over a real
   `Trainer.train_step`, forward and backward) and forward passes per image, for the fast preset
   before this design (``config.ARCHIVED_FAST`` with its logit scale), today's, and today's with
   airbench95's wider network, the mix bucket at a quarter, half, three quarters and all of the
   batch;
2. the profiler's count of host-synchronising ops (nonzero, item, _local_scalar_dense,
   masked_select) in both phases of the step and in the chunked augmentation (the GPU path);
3. ``torch._dynamo.explain``'s graph breaks: the network (training and eval mode) and one
   network's ProMix loss terms;
4. predicted H100 epoch and run times from constants measured on one H100 (``H100``, below:
   per image-pass of the earlier network, per augmentation call, the eval pass per epoch), the
   new network's per-pass time scaled by its FLOPs; and a Colab T4 estimate from FLOPs.
``python benchmarks/fast_design.py proxies [--jobs 2]`` trains the warm-up of each of
`VARIANTS` on a 20,000-image subset of CIFAR-10 (sym:0.8, seed 0, one thread each, ``--jobs`` at
once; needs $PROMIX_CIFAR10_NPZ) and writes benchmarks/results/fast_proxies_cpu.json/.md:
test accuracy after the warm-up, CSS's first selection (precision / recall / F1), how many
training samples a network predicts as their given label with confidence >= 0.95 / 0.99 (what
MHCS could add at the first ProMix epoch) and how many of those are clean, the time per epoch
and the load average. Finished variants are kept in ``--work`` and not trained again.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from promix_tutorial import engine, losses, schedule
from promix_tutorial.config import ARCHIVED_FAST, ARCHIVED_FAST_SCHEDULE, make_config
from promix_tutorial.debias import debiased_pseudo_labels, update_class_prior
from promix_tutorial.devices import views_in_chunks
from promix_tutorial.results import hardware
from promix_tutorial.runs import RunHistory, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SYNC_OPS = ("aten::nonzero", "aten::_local_scalar_dense", "aten::item", "aten::masked_select")
# One H100 80GB HBM3 (bfloat16, channels_last), fast_cnn (64, 256, 256) at batch 512: the
# step's time per image and forward+backward pass net of augmentation, one batch's views, and
# the eval pass of both splits with both networks and the Fig. 3 baselines per epoch.
H100 = {"us_per_image_pass": 10.5, "ms_per_augment_call": 11.0, "eval_s_per_epoch": 0.65}
T4_PEAK_TFLOPS, H100_PEAK_TFLOPS = 65.0, 989.0  # dense float16 / bfloat16 tensor-core peaks
# ARCHIVED_FAST holds the 1/9 scale; "today_airbench95": the preset with airbench95's widths
PRESETS = {"before": dict(ARCHIVED_FAST), "today": {}, "today_airbench95": {"model": "airbench95"}}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
N_TRAIN, N_TEST = 50_000, 10_000


def _random_npz(folder: Path, n: int = 96) -> str:
    rng = np.random.default_rng(0)
    path = folder / "random.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(n) % 10, x_test=rng.integers(0, 256, (20, 32, 32, 3),
                                                            dtype=np.uint8),
             y_test=np.arange(20) % 10)
    return str(path)


def _trainer(preset: str, npz: str, folder: Path, batch: int) -> engine.Trainer:
    cfg = make_config("fast", npz, "sym:0.5", **{
        **PRESETS[preset], "batch_size": batch, "eval_batch_size": batch, "epochs": 4,
        "warmup_epochs": 1, "lga_start": 1, "device": "cpu"})
    tr = engine.Trainer(cfg, folder / preset, progress=False)
    tr.css = torch.rand(tr.css.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    return tr


def _batch(tr, phase: str, rows: int | None, seed: int = 0) -> engine.Batch:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.arange(tr.cfg.batch_size)
    plan = engine.EpochPlan(1, phase, 1.0, 0.1, True, rows)
    lam = schedule.epoch_mix_lambdas(tr.cfg, 1, 1, len(tr.nets))[0].tolist()
    return tr.make_batch(idx, plan, gen, lam)


def step_flops(tr, phase: str, rows: int | None) -> dict:
    """FLOPs of one step (forward + backward, both networks) and forward passes per image."""
    images = []
    hooks = [n.register_forward_hook(lambda m, i, o: images.append(len(i[0])))
             for n in tr.nets]
    batch = _batch(tr, phase, rows)
    with FlopCounterMode(display=False) as fc:
        tr.train_step(batch)
    for h in hooks:
        h.remove()
    b = tr.cfg.batch_size
    return {"flops_per_image": fc.get_total_flops() / b, "passes_per_image": sum(images) / b}


def sync_counts(tr) -> dict:
    """Host-synchronising ops in one warm-up step, one ProMix step (bucket of half the batch)
    and the chunked views of four batches (whole-batch RandAugment, as on a GPU)."""
    out = {}
    for phase in ("warmup", "promix"):
        batch = _batch(tr, phase, tr.cfg.batch_size // 2)
        tr.train_step(batch)  # first call: allocations
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            tr.train_step(batch)
        out[f"step_{phase}"] = {e.key: e.count for e in prof.key_averages() if e.key in SYNC_OPS}
    batches = list(torch.arange(4 * (len(tr.data.y_noisy) // 4)).split(len(tr.data.y_noisy) // 4))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        list(views_in_chunks(tr.data, batches, 2, True, torch.Generator().manual_seed(0), True))
    out["augment_chunks"] = {e.key: e.count for e in prof.key_averages() if e.key in SYNC_OPS}
    return out


def graph_breaks(tr) -> dict:
    """``torch._dynamo.explain`` of the network and of one network's ProMix loss terms."""
    net = tr.nets[0]
    x = tr.data.normalize(tr.data.x_train[:16], tr.channels_last)
    out = {}
    for mode in (True, False):
        ex = torch._dynamo.explain(net.train(mode))(x)
        out["network_" + ("train" if mode else "eval")] = ex.graph_break_count
    g = torch.Generator().manual_seed(0)
    B, C, cfg = 16, 10, tr.cfg

    def heads():
        return losses.Heads(torch.randn(B, C, generator=g), torch.randn(B, C, generator=g))

    views = [losses.Views(heads(), heads()) for _ in range(2)]
    m = losses.MixTerm(torch.randn(B, C, generator=g), torch.randn(B, C, generator=g).softmax(1),
                       torch.rand(B, generator=g) < 0.5)
    mixed = {"mix": m, "aux_mix": m}

    def terms(views, mixed, css, y, prior):
        probs = [v.weak.primary.softmax(1) for v in views]
        guess = losses.lga_guess_logits(0, views, prior, prior, cfg)
        sel = losses.select_labeled(css, probs[0], probs[1], y, guess, cfg, True)
        pseudo = debiased_pseudo_labels(views[0].weak.primary, prior[0], 0.8, 0.5)
        t = losses.promix_losses(views[0], mixed, sel, pseudo, prior[0], prior[0], cfg, 1.0, 0.1)
        return t["total"], update_class_prior(prior[0], probs[0], 0.99, mask=sel.labeled)

    ex = torch._dynamo.explain(terms)(views, mixed, torch.rand(B, generator=g) < 0.3,
                                      torch.randint(0, C, (B,), generator=g),
                                      torch.full((2, C), 0.1))
    out["promix_loss_terms"] = ex.graph_break_count
    return out


def predict_h100(cfg, flops_pass: float, flops_pass_before: float, mix_fraction: float) -> dict:
    """Seconds per warm-up and ProMix epoch on one H100 from the `H100` constants (network
    time per image-pass scaled by FLOPs per pass against the earlier network)."""
    us = H100["us_per_image_pass"] * flops_pass / flops_pass_before
    steps = N_TRAIN // cfg.batch_size
    calls = cfg.augment_chunks or steps
    nets = 2
    # eval: the H100's 0.65 s covered 2 nets x 60,000 images; scaled by images and FLOPs
    eval_unit = H100["eval_s_per_epoch"] / (2 * (N_TRAIN + N_TEST)) * flops_pass / flops_pass_before
    eval_promix = eval_unit * 2 * (N_TRAIN + N_TEST / cfg.eval_every)
    warm_train = steps * cfg.batch_size * nets * 1 * us * 1e-6
    promix_train = steps * cfg.batch_size * nets * (2 + mix_fraction) * us * 1e-6
    aug = calls * H100["ms_per_augment_call"] * 1e-3
    aug_upper = steps * H100["ms_per_augment_call"] * 1e-3  # a chunk no cheaper per image
    return {"us_per_image_pass": round(us, 2),
            "warmup_epoch_s": round(warm_train + aug
                                    + eval_unit * 2 * (N_TRAIN + N_TEST) / cfg.eval_every, 2),
            "promix_epoch_s": round(promix_train + aug + eval_promix, 2),
            "promix_epoch_s_if_chunks_cost_per_image": round(promix_train + aug_upper
                                                             + eval_promix, 2)}


def design(args) -> dict:
    torch.manual_seed(0)
    rec = {"what": "the fast preset's FLOPs, host syncs, graph breaks and predicted H100 times",
           "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npz = _random_npz(Path(tmp))
        for name in PRESETS:
            full = make_config("fast", "cifar10", "sym:0.8", **PRESETS[name])
            tr = _trainer(name, npz, Path(tmp), batch=64)
            b = tr.cfg.batch_size
            fractions = FRACTIONS if full.mix_buckets else (1.0,)
            steps = {f"mix_rows_{f}": step_flops(tr, "promix", math.ceil(f * b) if
                                                 full.mix_buckets else None) for f in fractions}
            warm = step_flops(tr, "warmup", None)
            rec["presets"][name] = {
                "config": {k: v for k, v in full.to_dict().items() if k in (
                    "model", "model_widths", "logit_scale", "batch_size", "epochs",
                    "warmup_epochs", "lga_start", "lr", "lr_per_step", "lr_warmup_frac",
                    "nesterov", "bn_bias_lr_scale", "mix_buckets", "augment_chunks",
                    "eval_batch_size", "eval_every", "tta_flip", "tau")},
                "warmup_step": warm, "promix_step": steps,
                "sync_ops": sync_counts(tr), "graph_breaks": graph_breaks(tr)}
    before, today = rec["presets"]["before"], rec["presets"]["today"]
    fp_before = before["warmup_step"]["flops_per_image"] / before["warmup_step"]["passes_per_image"]
    for name, r in rec["presets"].items():
        full = make_config("fast", "cifar10", "sym:0.8", **PRESETS[name])
        fp = r["warmup_step"]["flops_per_image"] / r["warmup_step"]["passes_per_image"]
        r["flops_per_image_pass"] = fp
        pred = {f: predict_h100(full, fp, fp_before, f)
                for f in ((0.5, 1.0) if full.mix_buckets else (1.0,))}
        r["h100_predicted"] = pred
        promix = full.epochs - full.warmup_epochs
        # the mixed pass at half the batch before LGA (buckets), the whole batch once it runs
        before_lga = full.lga_start - full.warmup_epochs if full.mix_buckets else 0
        half = 0.5 if full.mix_buckets else 1.0
        for key, suffix in (("promix_epoch_s", ""), ("promix_epoch_s_if_chunks_cost_per_image",
                                                     "_if_chunks_cost_per_image")):
            run_s = (full.warmup_epochs * pred[1.0]["warmup_epoch_s"]
                     + before_lga * pred[half][key] + (promix - before_lga) * pred[1.0][key])
            r["h100_predicted_run_min" + suffix] = round(run_s / 60, 2)
        steps = r["promix_step"]
        run_flops = N_TRAIN * (full.warmup_epochs * r["warmup_step"]["flops_per_image"]
                               + before_lga * steps[f"mix_rows_{half}"]["flops_per_image"]
                               + (promix - before_lga) * steps["mix_rows_1.0"]["flops_per_image"])
        achieved = fp_before / H100["us_per_image_pass"] / 1e6  # TFLOP/s on the H100
        r["run_training_pflops"] = round(run_flops / 1e15, 2)
        r["t4_estimate_min"] = round(run_flops / (achieved * 1e12 * T4_PEAK_TFLOPS
                                                   / H100_PEAK_TFLOPS) / 60, 1)
    rec["h100_constants"] = H100
    rec["h100_check"] = (f"the same model gives {before['h100_predicted_run_min']} min for the "
                         "preset before this design; its one H100 run (ProMix, sym:0.8, 60 "
                         "epochs, evaluation every epoch) took 278 s = 4.63 min")
    rec["h100_achieved_tflops"] = round(fp_before / H100["us_per_image_pass"] / 1e6, 1)
    rec["t4_note"] = ("estimate, not a measurement: the run's training FLOPs at the H100's "
                      "measured share of its peak (the same share of a T4's 65 TFLOP/s float16 "
                      "peak), network passes only (no augmentation or evaluation)")
    rec["assumptions"] = (
        "H100 times: the new network's time per image-pass is the measured 10.5 us scaled by "
        "its FLOPs per pass; an augmentation call costs 11 ms whatever its size (the upper "
        "figure assumes a chunk costs what its batches did one by one); the eval pass scales "
        "with the images it evaluates; whole runs take the mixed pass at half the batch before "
        "LGA and the whole batch after; no torch.compile.")
    return rec


# ------------------------------------------------------------------------------ proxies

WARMUP = 5  # proxy warm-up epochs on 20,000 images: a schedule of the same shape, shorter
VARIANTS = {
    "fast_before": dict(ARCHIVED_FAST),                   # fast_cnn, batch 512, cosine per epoch
    "airbench94": {},                                     # today's preset
    "airbench94_smooth0.2": dict(warmup_label_smoothing=0.2),
    # today's network on the earlier preset's batch and schedule: network vs schedule
    "airbench94_schedule_before": dict(ARCHIVED_FAST_SCHEDULE, batch_size=512),
    "airbench94_rise0.03": dict(lr_warmup_frac=0.03),     # the rise over 3% of the run, not 10%
}


def proxy_config(name: str):
    base = make_config("fast", "cifar10", "sym:0.8", **VARIANTS[name])
    epochs = round(base.epochs * WARMUP / base.warmup_epochs)  # the warm-up's share of the run
    return base.replace(n_train=20_000, n_test=5_000, epochs=epochs, warmup_epochs=WARMUP,
                        lga_start=epochs - 1, eval_every=WARMUP, record_epochs=(WARMUP - 1,),
                        tta_flip=False, device="cpu")


def proxy_one(name: str, work: Path) -> dict:
    torch.set_num_threads(1)
    cfg = proxy_config(name)
    out = work / name
    tr = engine.Trainer(cfg, out, resume=(out / "checkpoint.pt").is_file(), progress=False)
    loads = []
    tr.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(tr.start_epoch, WARMUP):
        loads.append(os.getloadavg()[0])
        tr.records.append(tr.run_epoch(epoch))
        tr._save(epoch)
        loads.append(os.getloadavg()[0])
    hist = RunHistory(out)
    last = hist.records[-1]
    return {"variant": name, "overrides": {k: v for k, v in VARIANTS[name].items()},
            "config": json.loads(json.dumps(cfg.to_dict())),
            "test_acc": last["test_acc"], "test_acc_nets": last["test_acc_nets"],
            "css_next": last["css_next"], **confidence(hist),
            "gmm_f1": last["baselines"]["gmm"]["f1"],
            "warmup_loss": [r["losses"]["ce"] for r in hist.records],
            "epoch_train_s": [r["seconds"] for r in hist.records],
            "load_average_1min": [round(v, 2) for v in loads],
            "actual_noise_rate": hist.info["actual_noise_rate"],
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def confidence(hist: RunHistory) -> dict:
    """What MHCS could add at the first ProMix epoch: training samples that network 1 predicts
    as their given label with probability >= t (eval mode, after the warm-up) and how many of
    them are clean, and the 99th percentile of its largest class probability."""
    s = hist.samples(WARMUP - 1)
    probs = s["probs"][0].astype(np.float32)
    given = probs[np.arange(len(s["noisy"])), s["noisy"]]
    clean = s["noisy"] == s["clean"]
    return {"matched_given_label": {str(t): {"count": int((given >= t).sum()),
                                             "clean": int(((given >= t) & clean).sum())}
                                    for t in (0.5, 0.8, 0.95, 0.99)},
            "max_prob_p99": round(float(np.quantile(probs.max(1), 0.99)), 4)}


def proxies(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    names = args.variants or list(VARIANTS)
    pending = [n for n in names if not (work / f"{n}.json").is_file()]
    running: list[subprocess.Popen] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    while pending or running:
        while pending and len(running) < args.jobs:
            n = pending.pop(0)
            running.append(subprocess.Popen([sys.executable, __file__, "proxy-one", n,
                                             "--work", str(work)], env=env))
        time.sleep(5)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            if p.returncode:
                raise SystemExit(f"proxy {p.args[3]} failed (exit {p.returncode})")
    rows = [{**json.loads((work / f"{n}.json").read_text()), **confidence(RunHistory(work / n))}
            for n in names]
    rec = {"what": "ProMix's warm-up on a 20,000-image CIFAR-10 subset, variants of the fast "
                   "preset", "data": "CIFAR-10 (offline JPEG-75 copy), stratified 20,000 "
                   "training / 5,000 test images, sym:0.8, seed 0",
           "warmup_epochs": WARMUP, "hardware": hardware(), "threads_per_run": 1,
           "jobs_at_once": args.jobs, "command": "python benchmarks/fast_design.py proxies "
           + " ".join(sys.argv[2:]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "variants": rows}
    rec["hardware"]["torch_threads"] = 1
    save_json(RESULTS / "fast_proxies_cpu.json", rec)
    (RESULTS / "fast_proxies_cpu.md").write_text(proxy_table(rec))
    print(proxy_table(rec))


def proxy_table(rec: dict) -> str:
    lines = [f"# The fast preset's warm-up, proxies on a CPU\n",
             f"{rec['data']}; {rec['warmup_epochs']} warm-up epochs per variant, each on a "
             f"schedule of the preset's shape shortened to them; one thread per run, "
             f"{rec['jobs_at_once']} runs at once on a {rec['hardware']['cpu_count']}-core "
             f"{rec['hardware']['machine']} CPU shared with other work; torch "
             f"{rec['hardware']['torch']}; {rec['date']}. Made by `{rec['command']}`.\n",
             "| variant | test acc | CSS P / R / F1 | GMM F1 | matched >= 0.5 / 0.8 / 0.95 / "
             "0.99 (clean) | largest p, 99th pct | s per epoch | load average |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rec["variants"]:
        c, m = r["css_next"], r["matched_given_label"]
        matched = " / ".join(f"{m[t]['count']:,} ({m[t]['clean']:,})"
                             for t in ("0.5", "0.8", "0.95", "0.99"))
        lines.append(
            f"| {r['variant']} | {r['test_acc']:.2%} | {c['precision']:.3f} / {c['recall']:.3f}"
            f" / {c['f1']:.3f} | {r['gmm_f1']:.3f} | {matched} | {r['max_prob_p99']:.3f} | "
            f"{np.mean(r['epoch_train_s']):.0f} | {min(r['load_average_1min']):.1f}-"
            f"{max(r['load_average_1min']):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", default="design", choices=("design", "proxies",
                                                                  "proxy-one"))
    ap.add_argument("variant", nargs="?")
    ap.add_argument("--variants", nargs="*", help="proxies: these of VARIANTS (default all)")
    ap.add_argument("--jobs", type=int, default=2, help="proxies: runs at once")
    ap.add_argument("--work", default=str(ROOT / "runs" / "fast_proxies"))
    ap.add_argument("--out", default=str(RESULTS / "fast_design_cpu.json"))
    args = ap.parse_args(argv)
    if args.mode == "proxy-one":
        rec = proxy_one(args.variant, Path(args.work))
        save_json(Path(args.work) / f"{args.variant}.json", rec)
        return 0
    if args.mode == "proxies":
        proxies(args)
        return 0
    torch.set_num_threads(1)
    t0 = time.time()
    rec = design(args)
    rec.update(hardware=hardware(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               seconds=round(time.time() - t0, 1), seed=0,
               data="random CIFAR-shaped images (FLOPs and ops do not depend on the data)",
               command=" ".join(["python benchmarks/fast_design.py", *sys.argv[1:]]))
    save_json(args.out, rec)
    for name, r in rec["presets"].items():
        print(f"{name}: {r['config']['model']} batch {r['config']['batch_size']}, "
              f"{r['flops_per_image_pass'] / 1e9:.3f} GFLOP per image-pass; ProMix step "
              + ", ".join(f"{k}: {v['flops_per_image'] / 1e9:.2f} GFLOP/image, "
                          f"{v['passes_per_image']:.2f} passes" for k, v in r["promix_step"].items()))
        print(f"  host syncs {r['sync_ops']}; graph breaks {r['graph_breaks']}")
        print(f"  H100 predicted {r['h100_predicted']}, whole run {r['h100_predicted_run_min']} "
              f"min; T4 estimate {r['t4_estimate_min']} min")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
