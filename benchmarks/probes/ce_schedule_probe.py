"""CE at the `cpu` preset's scale, crossing the network with the learning-rate schedule.

Trains CE on the cpu preset's 5,000-image subset (sym noise, seed 0; evaluated on all 10,000 test
images), crossing the network (``--net fast``: the package's fast_cnn (32, 64, 128); ``plain``: a
conv-BN-ReLU-pool CNN) with the schedule (``--recipe pkg``: the recipe's cosine per epoch from
0.05; ``onecycle``: PyTorch's OneCycleLR to 0.1 with a 20% rise and Nesterov;
``onecycle_nonest``; ``nowarm_onecycle``: its annealing without the rise; ``cos_nest_step``).
Prints one JSON line. What it showed (the rise of the learning rate matters, not the network):
docs/calibration.md#cpu-one-cycle, benchmarks/probes/results/calibration_cpu.md.

Usage: PROMIX_CIFAR10_NPZ=... OMP_NUM_THREADS=1 python benchmarks/probes/ce_schedule_probe.py \\
           --net fast --recipe onecycle [--n 5000] [--epochs 25]
"""
import argparse, json, math, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from promix_tutorial.config import make_config
from promix_tutorial.devices import prepare_data, to_device
from promix_tutorial.models import build_model
from promix_tutorial import augment

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--net", default="fast"); ap.add_argument("--recipe", default="pkg")
ap.add_argument("--n", type=int, default=5000); ap.add_argument("--epochs", type=int, default=25)
ap.add_argument("--noise", default="sym:0.5"); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--widths", default="32,64,128"); ap.add_argument("--lr", type=float, default=None)
ap.add_argument("--bs", type=int, default=128)
ap.add_argument("--n-test", type=int, default=10000)
a = ap.parse_args()
cfg = make_config("cpu", "cifar10", a.noise, n_train=a.n, n_test=a.n_test, seed=a.seed, method="ce")
ds, noisy = prepare_data(cfg); d = to_device(ds, noisy, torch.device("cpu"))
torch.manual_seed(a.seed)

class Plain(nn.Module):
    def __init__(s, w=32):
        super().__init__()
        def cbr(i, o): return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
        s.body = nn.Sequential(*cbr(3, w), *cbr(w, 2*w), nn.MaxPool2d(2), *cbr(2*w, 4*w), nn.MaxPool2d(2),
                               *cbr(4*w, 8*w), nn.MaxPool2d(2))
        s.fc = nn.Linear(8*w, 10)
    def forward(s, x): return s.fc(F.adaptive_max_pool2d(s.body(x), 1).flatten(1)), None

widths = tuple(int(w) for w in a.widths.split(","))
net = Plain() if a.net == "plain" else build_model("fast_cnn", 10, 3, widths=widths)
net = net.to(memory_format=torch.channels_last)
N = len(d.y_noisy); steps_per = N // a.bs; total = steps_per * a.epochs
if a.recipe == "onecycle":
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr or 0.1, total_steps=total, pct_start=0.2)
elif a.recipe == "onecycle_nonest":
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=False, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr or 0.1, total_steps=total, pct_start=0.2)
elif a.recipe == "cos_nest_step":   # no warm-up: cosine per step from lr to 0, nesterov
    opt = torch.optim.SGD(net.parameters(), lr=a.lr or 0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
elif a.recipe == "nowarm_onecycle":  # onecycle's anneal without its warm-up (pct_start tiny)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr or 0.1, total_steps=total, pct_start=0.01)
else:
    opt = torch.optim.SGD(net.parameters(), lr=a.lr or 0.05, momentum=0.9, weight_decay=5e-4)
    sched = None
def test():
    net.eval(); c = 0
    with torch.no_grad():
        for k in range(0, len(d.y_test), 1000):
            c += (net(d.normalize(d.x_test[k:k+1000], True))[0].argmax(1) == d.y_test[k:k+1000]).sum().item()
    net.train(); return c / len(d.y_test)
g = torch.Generator().manual_seed(a.seed); t0 = time.time(); hist = []
for ep in range(a.epochs):
    if sched is None:
        for grp in opt.param_groups: grp["lr"] = 1e-4 + 0.5 * ((a.lr or 0.05) - 1e-4) * (1 + math.cos(math.pi * ep / a.epochs))
    perm = torch.randperm(N, generator=g)
    for i in range(steps_per):
        idx = perm[i*a.bs:(i+1)*a.bs]
        x = d.normalize(augment.weak_augment(d.x_train[idx], pad=4, flip=True, generator=g), True)
        loss = F.cross_entropy(net(x)[0], d.y_noisy[idx])
        opt.zero_grad(); loss.backward(); opt.step()
        if sched: sched.step()
    hist.append(test())
print(json.dumps({**vars(a), "last": hist[-1], "best": max(hist), "hist": [round(h, 4) for h in hist], "s": round(time.time() - t0)}), flush=True)
