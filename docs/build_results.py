"""Build docs/results.md, its figures and README.md's results table from benchmarks/results.

    python docs/build_results.py            # write what changed
    python docs/build_results.py --check    # exit 1 naming each file that is out of date

Every number comes from a results file (one JSON per accuracy cell, each benchmark's JSON or
text file); every table names the files and the command behind it. Never edit docs/results.md
or README.md's table between its markers by hand: rerun this command after a benchmark writes
new results (tests/test_docs.py fails while they differ).
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROBE_RESULTS = ROOT / "benchmarks" / "probes" / "results"
PAGE = ROOT / "docs" / "results.md"
FIGURES = ROOT / "docs" / "figures"
README = ROOT / "README.md"
README_MARKER = "results-table"
README_TIMES_MARKER = "notebook-times"
PROFILES = ("ci", "cpu", "gpu", "reference")
CURVES = FIGURES / "accuracy_cpu_curves.png"
CURVE_NOISES = ("sym:0.5", "asym:0.4")


def repository_url() -> str:
    """The project's address, from pyproject.toml's [project.urls] Repository."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M).group(1).rstrip("/")


def blob(path: str | Path) -> str:
    """The address of a repository file (docs pages link files outside docs/ this way; the
    site's strict build only resolves files inside docs/). tests/test_docs.py checks that
    every such link names a file that exists."""
    rel = Path(path).resolve().relative_to(ROOT).as_posix()
    kind = "tree" if (ROOT / rel).is_dir() else "blob"
    return f"{repository_url()}/{kind}/main/{rel}"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def noise_order(noise: str) -> tuple:
    """sym by rate, then asym, pairflip, human: the order the tables list noise settings in."""
    kind, _, value = noise.partition(":")
    rank = {"sym": 0, "asym": 1, "pairflip": 2, "human": 3}.get(kind, 4)
    try:
        return rank, float(value), ""
    except ValueError:
        return rank, 0.0, value


def cell_noises(cells: list[dict]) -> list[str]:
    return sorted({c["noise"] for c in cells}, key=noise_order)


def dates(records: list[dict]) -> str:
    days = sorted({r["date"][:10] for r in records if r.get("date")})
    if not days:
        return "date not recorded"
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def cpu_hardware(records: list[dict]) -> str:
    """'a 2-core x86_64 CPU, torch 2.14.1+cu130, 1 thread' from the records' hardware."""
    hw = [r["hardware"] for r in records if r.get("hardware")]
    if not hw:
        return "hardware not recorded"
    gpus = sorted({h["gpu"] for h in hw if h.get("gpu")})
    if gpus:
        return f"one {', '.join(gpus)}, torch {', '.join(sorted({h['torch'] for h in hw}))}"
    cores = sorted({h["cpu_count"] for h in hw})
    threads = sorted({h.get("torch_threads") for h in hw if h.get("torch_threads")})
    return (f"a {'/'.join(map(str, cores))}-core {hw[0]['machine']} CPU, torch "
            f"{', '.join(sorted({h['torch'] for h in hw}))}, "
            f"{'/'.join(map(str, threads))} PyTorch thread{'s' if threads != [1] else ''} per run")


# ------------------------------------------------------------------------------ the README figure

def curve_data(cells: list[dict]) -> dict:
    """{noise: {row: [test accuracy per epoch, one list per seed]}} of ProMix and CE at
    `CURVE_NOISES`, and each noise's warm-up length."""
    data = {}
    for n in CURVE_NOISES:
        rows = {row: [c["test_acc_per_epoch"] for c in sorted(cells, key=lambda c: c["seed"])
                      if c["noise"] == n and c["row"] == row] for row in ("ProMix", "CE")}
        warm = {c["config"]["warmup_epochs"] for c in cells if c["noise"] == n
                and c["row"] == "ProMix"}
        data[n] = {"rows": rows, "warmup_epochs": sorted(warm)}
    return data


def curves_png(cells: list[dict]) -> bytes:
    """The README's figure: test accuracy per epoch of ProMix and CE, every seed, at
    `CURVE_NOISES`. The PNG carries the SHA-256 of the numbers it draws, so an unchanged figure
    is kept byte for byte (matplotlib's pixels differ between versions; the data do not)."""
    import hashlib
    import io

    data = curve_data(cells)
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    if CURVES.is_file():
        from PIL import Image
        with Image.open(CURVES) as im:
            if im.text.get("Source") == f"docs/build_results.py, data sha256 {key}":
                return CURVES.read_bytes()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_NOISES), figsize=(9, 3.2), sharey=True)
    colors = {"ProMix": "tab:blue", "CE": "tab:orange"}
    for ax, n in zip(axes, CURVE_NOISES):
        for row, runs in data[n]["rows"].items():
            for i, acc in enumerate(runs):
                ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], color=colors[row],
                        lw=1.2, alpha=0.8, label=f"{row} ({len(runs)} seeds)" if i == 0 else None)
        for w in data[n]["warmup_epochs"]:
            ax.axvline(w + 0.5, color="grey", ls=":", lw=1)
        ax.set_title(f"CIFAR-10, {n} labels, cpu preset", fontsize=10)
        ax.set_xlabel("epoch (dotted: end of ProMix's warm-up)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100,
                metadata={"Software": None, "Source": f"docs/build_results.py, data sha256 {key}"})
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------ README table

def _pct(record: dict) -> str:
    return f"{100 * record['final_acc']:.2f}"


def readme_table(cells: list[dict], folder: Path) -> str:
    """ProMix vs CE per noise setting: each seed's last-epoch test accuracy linking its results
    file, the means, the mean difference over the shared seeds, and the paper's numbers."""
    from promix_tutorial.results import PAPER_CIFAR10

    by = {(c["row"], c["noise"], c["seed"]): c for c in cells}
    lines = ["| noise | ProMix, per seed (mean) | CE, per seed (mean) | ProMix - CE | "
             "paper: ProMix / CE |", "|---|---|---|---|---|"]
    for n in cell_noises(cells):
        seeds = sorted(s for (r, nn, s) in by if r == "ProMix" and nn == n
                       and ("CE", n, s) in by)
        if not seeds:
            continue

        def entry(row: str) -> str:
            recs = [by[row, n, s] for s in seeds]
            links = ", ".join(f"[{_pct(r)}]({rel(folder / (r['cell'] + '.json'))})" for r in recs)
            return f"{links} ({statistics.fmean(100 * r['final_acc'] for r in recs):.2f})"

        diff = statistics.fmean(100 * (by["ProMix", n, s]["final_acc"] - by["CE", n, s]["final_acc"])
                                for s in seeds)
        paper = [PAPER_CIFAR10.get(r, {}).get(n) for r in ("ProMix", "CE")]
        ptxt = " / ".join("-" if p is None else f"{p:.2f}" for p in paper)
        lines.append(f"| {n} | {entry('ProMix')} | {entry('CE')} | {diff:+.2f} | {ptxt} |")
    return "\n".join(lines)


def readme_block() -> str:
    from promix_tutorial.results import load_cells

    cpu = RESULTS / "accuracy_cpu"
    cells = load_cells(cpu)
    text = readme_table(cells, cpu)
    gpu = RESULTS / "accuracy_gpu"
    gpu_cells = load_cells(gpu) if gpu.is_dir() else []
    if any(c["row"] == "ProMix" for c in gpu_cells) and any(c["row"] == "CE" for c in gpu_cells):
        text += ("\n\nFull CIFAR-10 on a GPU (`fast` preset, "
                 f"{cpu_hardware(gpu_cells)}):\n\n" + readme_table(gpu_cells, gpu))
    return text


def readme_notebook_times() -> str:
    """Minutes per notebook for each profile measured in benchmarks/results/
    notebook_times_PROFILE.txt, and which profiles are not measured yet."""
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    lines = ["| profile | " + " | ".join(n.split("_")[0] for n in names) + " | measured |",
             "|---|" + "---|" * (len(names) + 1)]
    missing = []
    for profile in PROFILES:
        f = RESULTS / f"notebook_times_{profile}.txt"
        if not f.is_file():
            missing.append(f"`{profile}`")
            continue
        t = notebook_times(f)
        lines.append(f"| `{profile}` | " + " | ".join(f"{t[n] / 60:.1f}" if n in t else
                                                     "not measured" for n in names)
                     + f" | [{f.name}]({rel(f)}) |")
    if missing:
        lines += ["", f"Not measured yet: {', '.join(missing)}."]
    return "\n".join(lines)


def replace_between_markers(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"README.md lacks the markers {start} ... {end}")
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + body.strip() + "\n" + text[b:]


# ------------------------------------------------------------------------------ the page

def section_cpu(out: list[str]) -> None:
    from promix_tutorial.results import load_cells
    from promix_tutorial.tables import ablation_table, claims_table, markdown_table, paired_table

    folder = RESULTS / "accuracy_cpu"
    cells = load_cells(folder)
    noises = cell_noises(cells)
    first = cells[0]
    out += [
        "## CIFAR-10 on a CPU: the `cpu` preset {#cpu}", "",
        f"Each cell is one run of `python benchmarks/accuracy_cpu.py --cells CELL` (its record "
        f"names the exact command) with one results file in "
        f"[benchmarks/results/accuracy_cpu/]({blob(folder)}): {len(cells)} runs, "
        f"{cpu_hardware(cells)}, {dates(cells)}. Data: a stratified {first['n_train']:,}-image "
        f"training subset and {first['n_test']:,} test images of the offline CIFAR-10 copy, "
        "which is JPEG-compressed (quality 75), so every accuracy here sits a little below what "
        "the original images give. The paper's numbers (full CIFAR-10, PreAct ResNet-18, 600 "
        "epochs) are printed under each entry for reference only.", "",
        "### Accuracy {#cpu-accuracy}", "",
        "Entries: **last-epoch** / best test accuracy (%), mean ± half-range over the seeds; "
        "for ProMix the final selection precision / recall / F1 of CSS ∪ MHCS against the "
        "injected noise; wall minutes per run.", "",
        markdown_table(cells, noises), "",
        "### ProMix vs CE per seed {#cpu-per-seed}", "",
        "Last-epoch test accuracy (%); the same seed gives both methods the same noisy labels "
        "and the same image subset.", "",
        paired_table(cells, noises), "",
        "### What the figures of notebooks 02 and 03 claim {#cpu-claims}", "",
        "Fig. 3: ProMix's selection F1 (CSS ∪ MHCS) beside the GMM (DivideMix) and small-loss "
        "baselines, each tuned once over the run with the true noise (`metrics.once_tuned`, an "
        "advantage no real method has). Fig. 4: how many points debiasing (Eq. 6) adds to the "
        "accuracy of the pseudo-labels on the unlabeled set, at the last epoch and averaged "
        "over the epochs that made pseudo-labels.", "",
        claims_table(cells, noises), "",
    ]
    table5 = sorted({c["noise"] for c in cells if c["ablation"] != "none"}, key=noise_order)
    for n in table5:
        out += [f"### Table 5 at {n} {{#cpu-table5}}", "",
                "Last-epoch test accuracy (%) per seed. A row counts as below ProMix only when "
                "its mean is lower by more than the larger half-range of the two over their "
                "shared seeds (`tables.ablation_table`). The rows after \"w/o LGA\" have LGA "
                "switched off too, so the last column compares them with \"w/o LGA\", their fair "
                "reference.", "",
                ablation_table(cells, n), ""]


def section_selection_f1(out: list[str]) -> list[Path]:
    files = sorted(RESULTS.glob("selection_f1_*.json"))
    if not files:
        return []
    out += ["## Fig. 3 at the `cpu` scale: selection F1 per epoch {#selection-f1}", "",
            "`python benchmarks/selection_f1.py` reads a finished ProMix cell (nothing is "
            "retrained) and draws Fig. 3 per epoch, the baselines tuned once for the whole run "
            "(as the paper tuned them) and, thinner, re-tuned every epoch. It also applies CSS "
            "to the same last-epoch losses at budgets R = 0.10 ... 0.90 (`metrics.css_budget_f1`).",
            "",
            "| noise | ProMix (CSS ∪ MHCS) | GMM, tuned once (threshold) | small-loss, tuned once "
            "(forget rate) | CSS at its best budget (R) | run | file |",
            "|---|---|---|---|---|---|---|"]
    pngs = []
    for f in files:
        d = load_json(f)
        last, once = d["last_epoch"], d["once_tuned"]
        best = max(d["css_budget_last_epoch"]["rows"], key=lambda r: r["f1"])
        out.append(f"| {d['config']['noise']} | {last['promix_css_mhcs']:.3f} | "
                   f"{last['gmm_once']:.3f} ({once['gmm_threshold']:.2f}) | "
                   f"{last['small_loss_once']:.3f} ({once['small_loss_forget_rate']:.2f}) | "
                   f"{best['f1']:.3f} ({best['rho']:.2f}) | `{Path(d['run']).name}`, "
                   f"{d['config']['preset'] if 'preset' in d['config'] else 'cpu'} preset | "
                   f"[{f.name}]({blob(f)}) |")
    out += ["", f"Made by `{load_json(files[0])['command'].split(' --noise')[0]} --noise ...` "
            f"({dates([load_json(f) for f in files])}, {cpu_hardware([load_json(f) for f in files])}).",
            ""]
    for f in files:
        png = f.with_suffix(".png")
        if png.is_file():
            pngs.append(png)
            noise = load_json(f)["config"]["noise"]
            out += [f"![selection F1 per epoch, {noise}](figures/{png.name})", ""]
    return pngs


def section_ci_table5(out: list[str]) -> None:
    from promix_tutorial.results import load_cells
    from promix_tutorial.tables import ablation_table

    folder = RESULTS / "ablation_rows_ci"
    if not folder.is_dir():
        return
    cells = load_cells(folder)
    seeds = sorted({c["seed"] for c in cells})
    for n in cell_noises(cells):
        out += ["## Table 5 on the digits: the `ci` profile's scale {#ci-table5}", "",
                f"Notebook 05's seven rows at the `ci` profile's ablation-study scale "
                f"(`profiles.ABLATION_STUDY[\"ci\"]`: the `tiny` preset, {cells[0]['n_train']:,} "
                f"training / {cells[0]['n_test']:,} test digits, {n}, "
                f"{cells[0]['epochs']} epochs), seeds {', '.join(map(str, seeds))}: "
                f"`python benchmarks/ablation_rows.py --profile ci --seeds "
                f"{' '.join(map(str, seeds))}` ({cpu_hardware(cells)}, {dates(cells)}; "
                f"files in [benchmarks/results/ablation_rows_ci/]({blob(folder)})). Last-epoch "
                "test accuracy (%).", "",
                ablation_table(cells, n), ""]


def section_preset_time(out: list[str]) -> None:
    f = RESULTS / "preset_time_cpu.json"
    if not f.is_file():
        return
    d = load_json(f)
    out += ["## Time of a `cpu` preset run {#preset-time}", "",
            f"`{d['command'].strip()}` times the first epochs of each phase and projects the "
            f"whole run ({d['preset']} preset, {d['noise']}, seed {d['seed']}; "
            f"{cpu_hardware([d])}; {dates([d])}; [{f.name}]({blob(f)})).", "",
            "| method | seconds per epoch (timed epochs) | epochs | projected minutes |",
            "|---|---|---|---|"]
    for method in ("promix", "ce"):
        m = d.get(method)
        if not m:
            continue
        per = ", ".join(f"{phase} {s:.1f}" for phase, s in m["mean_epoch_seconds"].items())
        out.append(f"| {'ProMix' if method == 'promix' else 'CE'} | {per} "
                   f"({m['timed_epochs']}) | {m['epochs']} | {m['projected_minutes']:.1f} |")
    out.append("")


def section_start_strength(out: list[str]) -> list[Path]:
    from promix_tutorial.results import records_across_noises, strength_stem
    folder = RESULTS / "start_strength_cpu"
    every = [load_json(f) for f in sorted(folder.glob("*.json"))]
    recs = [r for r in every if r["noise"] == "sym:0.8"]
    if not recs:
        return []
    recs.sort(key=lambda r: (r["knn_acc"] or 0, r["seed"]))
    out += ["## How strong must a self-supervised start be? {#start-strength}", "",
            "`python benchmarks/start_strength.py runs/pretrain/cpu_simclr` trains ProMix's "
            "warm-up alone (`cpu` preset, sym:0.8, the whole run's learning-rate schedule) from "
            "scratch and from each kept start of the `cpu` network's pretraining "
            "([Pretraining](pretrain.md)), and records the warm-up's last test accuracy and the "
            "precision / recall of CSS's first selection (peak learning rate 0.1 from scratch, "
            "0.02 from a start, [Calibration](calibration.md#cpu-start-lr)); the start's kNN "
            "accuracy comes from "
            f"its manifest ({cpu_hardware(recs)}, {dates(recs)}; files in "
            f"[benchmarks/results/start_strength_cpu/]({blob(folder)}); JPEG-75 CIFAR-10 copy).",
            "", "| start | kNN accuracy | warm-up test acc | first selection P / R / F1 | seed | "
            "file |", "|---|---|---|---|---|---|"]
    for r in recs:
        sel, f = r["first_selection"], folder / f"{r['point']}__seed{r['seed']}.json"
        knn = f"{r['knn_acc']:.1%}" if r["knn_acc"] is not None else "random weights"
        out.append(f"| {r['point']} | {knn} | {r['warmup_test_acc']:.1%} | "
                   f"{sel['precision']:.3f} / {sel['recall']:.3f} / {sel['f1']:.3f} | "
                   f"{r['seed']} | [{f.name}]({blob(f)}) |")
    out.append("")
    pngs = []
    png = RESULTS / "start_strength_cpu.png"
    if png.is_file():
        out += [f"![start strength against the first selection](figures/{png.name})", ""]
        pngs.append(png)
    across = records_across_noises(every)
    if across:
        out += ["### The warm-up obstacle {#warmup-obstacle}", "",
                "The same warm-up at other symmetric noise rates, from scratch and from the "
                "shipped start (`--noises`; notebook 04 draws it). A first selection no more "
                "precise than the share of right labels picks at random.", "",
                "| noise | labels right | start | warm-up test acc | first selection P / R / F1 "
                "| file |", "|---|---|---|---|---|---|"]
        for r in sorted((r for rs in across.values() for r in rs),
                        key=lambda r: (r["actual_noise_rate"], r["point"] != "scratch")):
            sel = r["first_selection"]
            f = folder / f"{strength_stem(r['point'], r['seed'], r['noise'])}.json"
            out.append(f"| {r['noise']} | {1 - r['actual_noise_rate']:.1%} | {r['point']} | "
                       f"{r['warmup_test_acc']:.1%} | {sel['precision']:.3f} / "
                       f"{sel['recall']:.3f} / {sel['f1']:.3f} | [{f.name}]({blob(f)}) |")
        out.append("")
        png = RESULTS / "start_strength_noise_cpu.png"
        if png.is_file():
            out += [f"![the first selection against the noise rate](figures/{png.name})", ""]
            pngs.append(png)
    return pngs


def section_from_start(out: list[str]) -> None:
    """The cpu cells whose networks start from the shipped self-supervised start."""
    table = RESULTS / "accuracy_cpu_start.md"
    out += ["## ProMix and CE from a self-supervised start {#from-the-start}", ""]
    if not table.is_file():
        out += ["The `cpu` cells from the shipped start (`python benchmarks/accuracy_cpu.py "
                "--start cpu-simclr --cells start`, [Pretraining](pretrain.md#shipped-start)) "
                "have not run yet.", ""]
        return
    body = table.read_text().split("\n", 2)[2]   # the file's own heading is this section's
    from promix_tutorial.results import load_cells
    rate = "/".join(f"{v:g}" for v in sorted({c["config"]["lr"] for c in
                                              load_cells(RESULTS / "accuracy_cpu_start")}))
    out += [f"Every network of these cells starts from the shipped start "
            f"([Pretraining](pretrain.md#shipped-start)); the table is "
            f"[accuracy_cpu_start.md]({blob(table)}), its cells' files in "
            f"[benchmarks/results/accuracy_cpu_start/]({blob(RESULTS / 'accuracy_cpu_start')}) "
            f"(JPEG-75 CIFAR-10 copy). From a start the preset trains at a peak rate of {rate}, "
            "not 0.1 ([Calibration](calibration.md#cpu-start-lr); the runs at 0.1 are in "
            f"[start_warmup.md]({blob(PROBE_RESULTS / 'start_warmup.md')}), the cells at 0.02 "
            "[archived](#archived-cpu-start)).", "",
            body.strip(), ""]


def section_first_run(out: list[str]) -> None:
    f = RESULTS / "first_run_cpu.json"
    if not f.is_file():
        return
    d = load_json(f)
    out += ["## README's first run beside another CPU job {#first-run}", "",
            f"`{d['command']}` runs `{d['main_command']}` while {d['other_job']} keeps the "
            f"cores busy ({cpu_hardware([d])}, {dates([d])}; [{f.name}]({blob(f)})), with the "
            "threads the command line chooses and with PyTorch's default threads (one per "
            "core, what it used before it chose):", "",
            "| threads | wall seconds per run |", "|---|---|"]
    for mode, secs in d["seconds"].items():
        out.append(f"| {mode} | {', '.join(f'{s:.0f}' for s in secs)} |")
    out.append("")


def notebook_times(path: Path) -> dict[str, float]:
    """name -> seconds from a notebook_times_*.txt (the last line of each notebook counts)."""
    times = {}
    for line in path.read_text().splitlines():
        m = re.match(r"(\S+) rc=0 seconds=(\d+)", line)
        if m:
            times[m.group(1)] = float(m.group(2))
    return times


def section_notebook_times(out: list[str]) -> None:
    files = sorted(RESULTS.glob("notebook_times_*.txt"))
    if not files:
        return
    out += ["## Notebook run times {#notebook-times}", "",
            "Each notebook top to bottom from scratch (no finished runs), by "
            "`PROMIX_PROFILE=PROFILE bash benchmarks/notebook_times.sh OUT`; the header of each "
            "file says on what and when.", "",
            "| notebook | " + " | ".join(f.stem.removeprefix("notebook_times_") + " profile, minutes"
                                       for f in files) + " |",
            "|---|" + "---|" * len(files)]
    per_file = [notebook_times(f) for f in files]
    for name in sorted({n for t in per_file for n in t}):
        out.append(f"| {name} | " + " | ".join(f"{t[name] / 60:.1f}" if name in t else "not measured"
                                              for t in per_file) + " |")
    out += ["", "Files: " + ", ".join(f"[{f.name}]({blob(f)})" for f in files) + ". Each "
            "notebook ran with its own empty runs folder, so none loaded a run another had made; "
            "at the `cpu` profile 02, 03 and 05 load the cells of `benchmarks/accuracy_cpu.py "
            "--start cpu-simclr` where that benchmark has run on the same machine.", ""]


def section_throughput(out: list[str]) -> None:
    files = [f for f in (RESULTS / "throughput_cpu.json", RESULTS / "gpu" / "throughput_gpu.json")
             if f.is_file()]
    if not files:
        return
    out += ["## Throughput: augmentation on the training device vs a DataLoader {#throughput}", "",
            "One ProMix epoch (two networks, weak + strong views, mixup, MHCS, LGA) fed by this "
            "package's batched uint8 augmentation on the training device, against a "
            "torchvision/PIL `DataLoader` feeding the same training step "
            "(`benchmarks/throughput.py`).", ""]
    for f in files:
        d = load_json(f)
        info = d["info"]
        where = (f"one {info['device_name']}" if info["device"] == "cuda"
                 else f"a {info['cpu_count']}-core {info['device_name']} CPU")
        out += [f"Measured on {where}, torch {info['torch']}, {info['workers']} loader workers, "
                f"{info['date'][:10]} ([{f.name}]({blob(f)})):", "",
                "| preset | network | parameters | device-side img/s | DataLoader img/s | ratio |",
                "|---|---|---|---|---|---|"]
        for r in d["rows"]:
            out.append(f"| {r['preset']} | {r['model']} | {r['params']:,} | "
                       f"{r['device_images_per_s']:,.0f} | {r['loader_images_per_s']:,.0f} | "
                       f"{r['ratio']:.2f} |")
        out.append("")


def section_step_profile(out: list[str]) -> None:
    files = sorted(RESULTS.glob("step_profile_*.json")) + sorted((RESULTS / "gpu").glob(
        "step_profile_*.json"))
    if not files:
        return
    out += ["## The ProMix step, profiled {#step-profile}", "",
            "`benchmarks/step_profile.py`: images per second through the ProMix step (both "
            "networks), and the augmentation's share of the step time.", "",
            "| preset | overrides | device | images/s (per network) | augmentation share | "
            "date | file |", "|---|---|---|---|---|---|---|"]
    for f in files:
        d = load_json(f)
        dev = d.get("device_name") if d.get("device") == "cuda" else "CPU"
        if d.get("device") != "cuda" and d.get("hardware"):
            dev = f"{d['hardware'].get('cpu_count')}-core CPU"
        out.append(f"| {d['preset']} | {', '.join(d.get('overrides') or []) or '-'} | {dev} | "
                   f"{d['images_per_s']:,.1f} ({d['images_per_s_per_network']:,.1f}) | "
                   f"{100 * d['augment_share']:.1f}% | {d.get('date', '')[:10]} | "
                   f"[{f.name}]({blob(f)}) |")
    out.append("")


def section_widgets(out: list[str]) -> None:
    f = RESULTS / "widgets_speed.json"
    if not f.is_file():
        return
    d = load_json(f)
    info = d["info"]
    out += ["## Slider speed {#widgets-speed}", "",
            f"`{info['command'].strip()}`: one slider step of the notebooks' explorers "
            f"(compute, redraw, PNG) on {info['n']:,} samples; a {info['cpu_count']}-core "
            f"{info['machine']} CPU, {info['date'][:10]} ([{f.name}]({blob(f)})). Target: "
            f"{d['target_s']} s per step.", "",
            "| classes | what | mean s | p90 s | max s |", "|---|---|---|---|---|"]
    for r in d["rows"]:
        w = r["wall"]
        out.append(f"| {r['classes']} | {r['what']} | {w['mean_s']:.3f} | {w['p90_s']:.3f} | "
                   f"{w['max_s']:.3f} |")
    out.append("")


def section_gpu(out: list[str]) -> None:
    from promix_tutorial.results import load_cells
    from promix_tutorial.tables import markdown_table

    folder = RESULTS / "accuracy_gpu"
    cells = load_cells(folder) if folder.is_dir() else []
    out += ["## Full CIFAR-10 on a GPU: the `fast` preset {#gpu}", ""]
    if cells:
        out += [f"`python benchmarks/accuracy_gpu.py --cells CELL`, all 50,000 training / "
                f"10,000 test images of the offline CIFAR-10 copy (JPEG quality 75); "
                f"{cpu_hardware(cells)}, {dates(cells)}; files in "
                f"[benchmarks/results/accuracy_gpu/]({blob(folder)}).", "",
                markdown_table(cells, cell_noises(cells)), ""]
    else:
        out += ["No cell of the current `fast` preset has run yet: "
                "`python benchmarks/accuracy_gpu.py --cells ...` writes them to "
                "`benchmarks/results/accuracy_gpu/` and this page shows them once rebuilt. "
                "What the earlier `fast` preset measured is archived below; "
                "[GPU](gpu.md) tells what it showed.", ""]


ARCHIVED = [
    ("accuracy_cpu_start_lr0.02", "archived-cpu-start",
     "A CPU, the `cpu` preset from the shipped start at a peak rate of 0.02",
     "The cells of `python benchmarks/accuracy_cpu.py --start cpu-simclr` while the preset "
     "trained from a start at a peak rate of 0.02: at 90% noise ProMix's first epochs then "
     "dropped, which is why the rate is now lower ([Calibration](calibration.md#cpu-start-lr)). "
     "Each file's config trains its run again with `--set lr=0.02`."),
    ("accuracy_gpu_2026-11-27", "archived-gpu",
     "One H100, the `fast` preset as it was on 2026-11-27",
     "The `fast` preset of that day (unscaled logits, code of commit 12e1b02, whose ProMix step "
     "forwarded the weak and strong views in one BatchNorm pass). No current command reproduces "
     "these cells: `--set logit_scale=1` gives that day's config again, but not that code."),
    ("accuracy_cpu_2026-11-26", "archived-cpu",
     "A CPU, the `cpu` preset before its calibration",
     "25 epochs, 5 warm-up epochs, per-epoch cosine from lr 0.05, the warm-up penalty under "
     "asymmetric noise, R = 0.5, and the training loop as it was before it was aligned "
     "with the released code. No current command reproduces these cells; "
     "[Calibration](calibration.md) explains what changed and why."),
]


def section_archived(out: list[str]) -> None:
    from promix_tutorial.results import load_cells
    from promix_tutorial.tables import ablation_table, markdown_table, paired_table, rules_table

    out += ["## Archived measurements {#archived}", "",
            "Kept as measured, with their files, because other pages cite them. They were made "
            "with earlier versions of a preset and are not comparable with the tables above.", ""]
    for name, anchor, title, why in ARCHIVED:
        folder = RESULTS / name
        if not folder.is_dir():
            continue
        cells = load_cells(folder)
        noises = cell_noises(cells)
        out += [f"### {title} {{#{anchor}}}", "", f"{why} Measured on {cpu_hardware(cells)}, "
                f"{dates(cells)}; files in [benchmarks/results/{name}/]({blob(folder)}).", "",
                markdown_table(cells, noises), "", paired_table(cells, noises), ""]
        out += [x for n in noises if (rules := rules_table(cells, n))
                for x in (f"Fig. 3's rule runs at {n}:", "", rules, "")]
        if any(c["ablation"] != "none" for c in cells):
            out += ["Table 5 at sym:0.8:", "", ablation_table(cells, "sym:0.8"), ""]
    f = RESULTS / "gpu" / "paper_epoch_time_gpu.json"
    if f.is_file():
        d = load_json(f)
        s = d["seconds_per_epoch"]
        out += ["### The `paper` preset's epoch time on one H100 {#archived-paper-epoch-time}", "",
                f"`{d['command']}` on {cpu_hardware([d])}, {dates([d])}, with the `paper` preset "
                f"as it was then ({d['model']}, no FMix, one mixed pass per network, batch "
                f"{d['batch_size']}, {d['n_train']:,} images; [{f.name}]({blob(f)})): "
                f"{s['warmup']:.1f} s per warm-up epoch, {s['promix']:.1f} s per ProMix epoch, "
                f"{s['promix_lga']:.1f} s per ProMix epoch with LGA, each with its evaluation: "
                f"**{d['projected_total_hours']:.2f} hours projected** for the "
                f"{sum(d['epochs'].values())} epochs. Today's `paper` preset adds FMix and mixes "
                "each head separately, so its ProMix epochs do more work.", ""]


def build_page() -> tuple[str, list[Path]]:
    out = ["# Results", "",
           "Built by `python docs/build_results.py` from the files in "
           f"[benchmarks/results/]({blob(RESULTS)}); do not edit this page by hand. Every table "
           "names the command that made its numbers and links the files that hold them, with "
           "their hardware, seeds, data and date. The README shows the first table's "
           "ProMix-vs-CE cells; [Calibration](calibration.md) and [GPU](gpu.md) tell what the "
           "numbers mean.", ""]
    section_cpu(out)
    pngs = section_selection_f1(out)
    section_ci_table5(out)
    pngs += section_start_strength(out)
    section_from_start(out)
    section_gpu(out)
    section_preset_time(out)
    section_first_run(out)
    section_notebook_times(out)
    section_throughput(out)
    section_step_profile(out)
    section_widgets(out)
    section_archived(out)
    return "\n".join(out).rstrip() + "\n", pngs


def outputs() -> dict[Path, bytes]:
    """Every file this command writes, with its content."""
    from promix_tutorial.results import load_cells

    page, pngs = build_page()
    files = {PAGE: page.encode(), CURVES: curves_png(load_cells(RESULTS / "accuracy_cpu"))}
    for png in pngs:
        files[FIGURES / png.name] = png.read_bytes()
    readme = replace_between_markers(README.read_text(), README_MARKER, readme_block())
    readme = replace_between_markers(readme, README_TIMES_MARKER, readme_notebook_times())
    files[README] = readme.encode()
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 naming the files that are out of date")
    args = ap.parse_args(argv)
    files = outputs()
    stale = [p for p, data in files.items() if not p.is_file() or p.read_bytes() != data]
    stray = [f for f in sorted(FIGURES.glob("*.png")) if f not in files]
    if args.check:
        for p in stale:
            print(f"out of date: {rel(p)} (run: python docs/build_results.py)")
        for f in stray:
            print(f"not a results figure: {rel(f)} (run: python docs/build_results.py)")
        return 1 if stale or stray else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(files[p])
        tmp.replace(p)
        print(f"wrote {rel(p)}")
    for f in stray:
        f.unlink()
        print(f"removed {rel(f)} (no longer a results figure)")
    if not stale and not stray:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
