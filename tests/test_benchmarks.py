"""Tests of the benchmark scripts users run (they print figures; nothing here is timed). The
finished probes of benchmarks/probes/ have their smoke tests in tests/test_probes.py."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
USER_SCRIPTS = ("accuracy_cpu", "accuracy_gpu", "ablation_rows", "throughput", "selection_f1",
                "widgets_speed", "preset_time", "step_profile", "gpu_sharing", "device_results",
                "first_run", "start_strength")


def load(name, folder=BENCH):
    if str(BENCH) not in sys.path:  # as when run as a script: the scripts import each other
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # as an import would: pickling its functions finds them by name
    spec.loader.exec_module(mod)
    return mod


def test_scripts_speak_of_the_project_and_its_users():
    """What the scripts print and write into results files names hardware as hardware and tells
    no development history (committed results files stay as they were measured)."""
    import re
    forbidden = re.compile(r"sandbox|lent (to|a)|device (machine|tool|time)|issue [0-9]+"
                           r"|\.\./shared", re.I)
    files = sorted([*BENCH.glob("*.py"), *BENCH.glob("*.sh"), *BENCH.glob("*.txt"),
                    *BENCH.glob("probes/*.py")])
    assert len(files) > 15
    for f in files:
        bad = forbidden.search(f.read_text())
        assert bad is None, f"{f.relative_to(BENCH.parent)}: {bad.group(0)!r}"
    for name in ("accuracy_cpu", "accuracy_gpu"):  # the data text of every results file
        assert load(name).DATA.startswith("offline CIFAR-10 copy (JPEG quality 75, original")


@pytest.mark.parametrize("name", USER_SCRIPTS)
def test_every_script_answers_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        load(name).main(["--help"])
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out


def test_throughput_runs_both_pipelines(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert load("throughput").main(["--presets", "tiny", "--n", "256", "--workers", "0",
                                    "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["model"] == "digits_net"
    assert rows[0]["device_images_per_s"] > 0 and rows[0]["loader_images_per_s"] > 0
    assert "device img/s" in capsys.readouterr().out


def test_accuracy_cpu_cells_cover_the_tables():
    mod = load("accuracy_cpu")
    cells = mod.all_cells()
    assert len(mod.select(["main"])) == 4 * 2 * 3  # 4 noise settings x CE/ProMix x 3 seeds
    assert mod.select(["nearest"]) == [f"{m}__{n}__seed{s}" for n in ("sym0.7", "sym0.6")
                                       for s in (0, 1, 2) for m in ("ce", "promix")]
    assert len([c for c, kw in cells.items() if "ablation" not in kw]) == 36
    assert len(mod.select(["ablations"])) == 6 * 3
    assert "promix__humanworst__seed2" in cells and "no_dbr__asym0.4__seed2" in cells
    with pytest.raises(ValueError, match="--list"):
        mod.select(["nonsense"])


def test_accuracy_cpu_start_cells_start_every_network_from_the_start(tmp_path, monkeypatch):
    """--start: CE and ProMix at sym:0.8/0.9 and the Table 5 rows at sym:0.8, each config
    recording the start and its checksum, each command naming it; the start's table sets each
    method beside the scratch cells."""
    from promix_tutorial.config import start_checksum
    from promix_tutorial.results import write_cell
    mod = load("accuracy_cpu")
    assert len(mod.select(["start"], mod.START_GROUPS)) == 2 * 2 * 3
    assert len(mod.select(["start_ablations"], mod.START_GROUPS)) == 6 * 3
    assert len(mod.select(["start_rules"], mod.START_GROUPS)) == 2 * 3
    [cell] = mod.make_cells(["promix__sym0.9__seed1"], tmp_path / "r", tmp_path / "runs",
                            start="cpu-simclr")
    assert cell.config.init == "cpu-simclr" and cell.config.noise == "sym:0.9"
    assert cell.config.init_sha256 == start_checksum("cpu-simclr")
    assert "--start cpu-simclr --cells promix__sym0.9__seed1" in cell.command
    with pytest.raises(ValueError, match="no start at"):
        mod.make_cells(["ce__sym0.8__seed0"], tmp_path / "r", tmp_path / "runs",
                       start=str(tmp_path / "none.pt"))
    # the table: start cells beside scratch cells of the same method and noise
    base = {"method": "promix", "ablation": "none", "row": "ProMix", "noise": "sym:0.8",
            "best_acc": 0.5, "wall_seconds": 60, "selection": None}
    for folder, accs in (("start", (0.40, 0.44)), ("scratch", (0.24, 0.23))):
        for seed, acc in enumerate(accs):
            write_cell(tmp_path / folder, {**base, "cell": f"promix__sym0.8__seed{seed}",
                                           "seed": seed, "final_acc": acc})
    monkeypatch.setattr(mod, "START_RESULTS", tmp_path / "start")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "scratch")
    monkeypatch.setattr(mod, "START_TABLE", tmp_path / "start.md")
    monkeypatch.setattr(mod, "START_RUNS", tmp_path / "runs")
    text = mod.rebuild_start_tables()
    assert "| sym:0.8 | ProMix | 42.0 ± 2.0 (seeds 0,1) | 23.5 ± 0.5 (seeds 0,1) | +18.5 |" in text
    assert "+18.5" in (tmp_path / "start.md").read_text()


def test_fig3_rule_cells_train_their_own_rule_tuned_once_from_the_promix_cells(tmp_path):
    """start_rules: ProMix's loop with the GMM / small-loss rule as its selection (MHCS off),
    threshold and forget rate the median of the ProMix cells' once-tuned values; refused, with
    what to run, while there is no ProMix cell to tune from."""
    from promix_tutorial.results import write_cell
    mod = load("accuracy_cpu")
    names = ["gmm_rule__sym0.8__seed1", "small_loss_rule__sym0.8__seed1"]
    with pytest.raises(ValueError, match="--cells start"):
        mod.make_cells(names, tmp_path / "r", tmp_path / "runs", start="cpu-simclr")
    for seed, (t, f) in enumerate(((0.86, 0.69), (0.80, 0.60), (0.90, 0.70))):
        write_cell(tmp_path / "r", {"cell": f"promix__sym0.8__seed{seed}", "row": "ProMix",
                                    "noise": "sym:0.8", "claims": {"once_tuned": {
                                        "gmm": {"value": t}, "small_loss": {"value": f}}}})
    gmm, small = mod.make_cells(names, tmp_path / "r", tmp_path / "runs", start="cpu-simclr")
    assert (gmm.name, gmm.config.selection, gmm.config.gmm_threshold) == (names[0], "gmm", 0.86)
    assert (small.config.selection, small.config.forget_rate) == ("small_loss", 0.69)
    assert not gmm.config.use_mhcs and gmm.config.init == "cpu-simclr" and gmm.config.seed == 1
    assert gmm.command.endswith("--cells gmm_rule__sym0.8__seed1")


def test_figure_notebooks_run_accuracy_cpu_cells_at_cpu(tmp_path):
    """Notebooks 02, 03 and 05 at the cpu profile run the configs of the accuracy_cpu cells from
    the shipped start (what their text says, and what lets them load a finished cell instead of
    training it again): 02 the ProMix cell at its Fig. 3 noise and the two rule cells, 03 the w/o LGA and w/o DBR cells
    at its Fig. 4 noise, 05 the seven Table 5 rows (seed 0)."""
    from promix_tutorial.config import config_differences
    from promix_tutorial.profiles import figure_noise, figure_start, profile_config
    from promix_tutorial.results import cell_name

    mod = load("accuracy_cpu")
    start = figure_start("cpu")["init"]

    def cell_config(name):
        return mod.make_cells([name], tmp_path / "results", tmp_path / "runs",
                              start=start)[0].config

    nb02 = profile_config("cpu", figure_noise("fig3", "cpu"), **figure_start("cpu"))
    nb02 = nb02.replace(record_epochs=(nb02.warmup_epochs - 1,))   # as notebook 02 asks
    assert cell_config("promix__sym0.8__seed0") == nb02
    # its two rule runs: tuned as the benchmark's rule cells were, whatever its own run's grids say
    from types import SimpleNamespace
    from promix_tutorial.notebook import rule_run_configs
    grids = [{"selection": {}, "baselines": {r: {"f1_grid": [1.0] + [0.0] * 40}
                                             for r in ("gmm", "small_loss")}}]
    rules = rule_run_configs("cpu", SimpleNamespace(records=grids), figure_noise("fig3", "cpu"),
                             **figure_start("cpu"))
    for rule, label in (("gmm_rule", "GMM rule (DivideMix)"), ("small_loss_rule", "small-loss rule")):
        cell = mod.make_cells([f"{rule}__sym0.8__seed0"], mod.START_RESULTS, tmp_path / "runs",
                              start=start)[0].config
        cell = json.loads(json.dumps(cell.to_dict()))
        assert config_differences(cell, rules[label]) == {}, label
    for ablation in ("no_lga", "no_dbr"):
        nb03 = profile_config("cpu", figure_noise("fig4", "cpu"), ablation=ablation,
                              **figure_start("cpu"))
        cell = cell_config(f"{ablation}__sym0.8__seed0")
        assert config_differences(json.loads(json.dumps(cell.to_dict())), nb03) == {}
    # notebook 05's seven runs are the seed-0 cells of the ProMix and ablation rows
    from promix_tutorial.profiles import ablation_study_configs
    for label, nb05 in ablation_study_configs("cpu").items():
        name = cell_name("promix", nb05.ablation, nb05.noise, 0)
        assert name in mod.all_cells(mod.START_GROUPS), label
        cell = cell_config(name)
        assert config_differences(json.loads(json.dumps(cell.to_dict())), nb05) == {}, label
    # from scratch it would not be found: the comparison is not vacuous
    other = profile_config("cpu", "sym:0.8", ablation="no_lga")
    assert config_differences(cell_config("no_lga__sym0.8__seed0").to_dict(), other)


def test_selection_f1_writes_series_and_figure(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    assert load("selection_f1").main(["--preset", "tiny", "--epochs", "4", "--runs",
                                      str(tmp_path / "runs"), "--out", str(out)]) == 0
    res = json.loads((out / "selection_f1_tiny_sym80_seed0.json").read_text())
    s = res["series"]
    assert s["epoch"] == [1, 2, 3, 4] and len(s["gmm_tuned"]) == 4
    assert 0 < s["promix_css_mhcs"][-1] <= 1 and 0 < s["gmm_tuned"][-1] <= 1
    # once tuned: one value for the run, never above the per-epoch oracle
    assert res["once_tuned"]["small_loss_forget_rate"] is not None
    assert s["small_loss_once"][-1] <= s["small_loss_tuned"][-1] + 1e-9
    assert (out / "selection_f1_tiny_sym80_seed0.png").stat().st_size > 1000
    # CSS on the last epoch's losses at other budgets, the preset's R among them
    budget = res["css_budget_last_epoch"]
    assert budget["epoch"] == 4 and budget["preset_rho"] in [r["rho"] for r in budget["rows"]]
    assert all(0 <= r["f1"] <= 1 for r in budget["rows"])
    out_text = capsys.readouterr().out
    assert "last epoch F1" in out_text and "other budgets" in out_text


def test_notebook_times_script(tmp_path):
    """benchmarks/notebook_times.sh executes a notebook and appends its wall time; a wrong name
    is refused before anything runs."""
    import os
    import shutil
    import subprocess

    if shutil.which("jupyter") is None:
        pytest.skip("jupyter is not on PATH")
    script = BENCH / "notebook_times.sh"
    env = {**os.environ, "PROMIX_PROFILE": "ci"}
    bad = subprocess.run(["bash", str(script), str(tmp_path / "bad"), "01_noise_injection.ipynb"],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "without .ipynb" in bad.stderr
    assert not (tmp_path / "bad").exists()
    subprocess.run(["bash", str(script), str(tmp_path), "01_noise_injection"], env=env, check=True)
    line = (tmp_path / "times.txt").read_text().strip()
    assert line.startswith("01_noise_injection rc=0 seconds="), line
    assert (tmp_path / "01_noise_injection.ipynb").is_file()


def test_ablation_rows_runs_the_chosen_rows(tmp_path, capsys):
    assert load("ablation_rows").main(["--profile", "ci", "--rows", "none", "no_base_selection",
                                       "--epochs", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["ProMix seed 0", "w/o Base Selection seed 0"]
    assert all("F1" in line and "labeled" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "ci" / "sym0.8").iterdir()) == ["no_base_selection", "none"]
    # a second seed: seed 0 is loaded, seed 1 trained, and Table 5 with the spread follows
    assert load("ablation_rows").main(["--profile", "ci", "--rows", "none", "no_base_selection",
                                       "--epochs", "2", "--seeds", "0", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows, table = out.split("\n\n", 1)
    assert sorted(line.split(":")[0].strip() for line in rows.splitlines()) == [
        "ProMix seed 0", "ProMix seed 1", "w/o Base Selection seed 0", "w/o Base Selection seed 1"]
    assert sorted(p.name for p in (tmp_path / "ci" / "sym0.8" / "none").iterdir()) == ["seed0", "seed1"]
    assert sorted(p.name for p in (tmp_path / "ci" / "results").glob("*.json")) == [
        "no_base_selection__sym0.8__seed0.json", "no_base_selection__sym0.8__seed1.json",
        "promix__sym0.8__seed0.json", "promix__sym0.8__seed1.json"]
    header, _, promix, no_base = table.strip().splitlines()
    assert "seed 0" in header and "seed 1" in header and "below ProMix" in header
    assert promix.startswith("| ProMix |") and no_base.startswith("| w/o Base Selection |")
    assert no_base.count("|") == header.count("|")


def _short_tiny(monkeypatch, mod):
    """Make accuracy_gpu's configs a few epochs long (the tiny preset on digits)."""
    from promix_tutorial.config import make_config as real

    def short(preset, dataset, noise, **kw):
        return real(preset, dataset, noise, epochs=4, warmup_epochs=1, lga_start=3,
                    gamma_ramp_epochs=1, unlabeled_ramp_epochs=1, **kw)
    monkeypatch.setattr(mod, "make_config", short)


def test_accuracy_gpu_cells_deadline_and_packing(tmp_path, monkeypatch, capsys):
    import tarfile
    mod = load("accuracy_gpu")
    cells = mod.all_cells()
    noises = ("sym0.5", "sym0.8", "asym0.4", "humanworst")
    table5 = ("no_lga", "no_mhcs", "no_base_selection", "no_cbr", "no_dbr", "only_clean")
    assert sorted(cells) == sorted([f"{m}__{n}__seed0" for m in ("promix", "ce") for n in noises]
                                   + [f"{a}__sym0.8__seed0" for a in table5])
    # what the notebooks' reference profile reads comes first
    assert list(cells)[:6] == ["promix__sym0.8__seed0", "ce__sym0.8__seed0", "promix__sym0.5__seed0",
                               "ce__sym0.5__seed0", "no_lga__sym0.8__seed0", "no_dbr__sym0.8__seed0"]
    with pytest.raises(ValueError, match="--list"):
        mod.select(["promix__sym0.3__seed0"])
    _short_tiny(monkeypatch, mod)
    res, runs, out = tmp_path / "acc", tmp_path / "runs", tmp_path / "out"
    # the CE cell is guessed to take 0.001 min and runs; the ProMix cell, guessed to take 30 min,
    # would end after the 20-min deadline and is not started (guesses, not a wall-clock race)
    assert mod.main(["--preset", "tiny", "--cells", "ce__sym0.8__seed0", "promix__sym0.8__seed0",
                     "--deadline-minutes", "20", "--first-guess-minutes", "30", "0.001",
                     "--results", str(res), "--runs", str(runs), "--pack-to", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[done] ce__sym0.8__seed0" in printed and "[wait] promix__sym0.8__seed0" in printed
    assert [p.name for p in res.iterdir()] == ["ce__sym0.8__seed0.json"]
    rec = json.loads((res / "ce__sym0.8__seed0.json").read_text())
    assert rec["epochs"] == 4 and rec["noise"] == "sym:0.8" and rec["data"] == "digits"
    assert rec["config"]["record_epochs"] == [0]  # the end of warm-up, for the notebooks
    assert "| CE |" in (tmp_path / "acc.md").read_text()
    with tarfile.open(out / "cell_0.tar") as tar:
        names = sorted(tar.getnames())
    assert names == ["accuracy_gpu/ce__sym0.8__seed0.json", "runs/ce__sym0.8__seed0/config.json",
                     "runs/ce__sym0.8__seed0/history.json",
                     "runs/ce__sym0.8__seed0/samples_e000.npz",
                     "runs/ce__sym0.8__seed0/samples_e003.npz"]
    # an existing cell is skipped, not retrained; a bad deadline or cell fails before any work
    assert mod.main(["--preset", "tiny", "--cells", "ce__sym0.8__seed0", "--results", str(res),
                     "--runs", str(runs)]) == 0
    assert "[skip] ce__sym0.8__seed0" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        mod.main(["--cells", "all", "--deadline-minutes", "0"])
    with pytest.raises(SystemExit):
        mod.main(["--cells", "promix__nonsense__seed0", "--paper-epoch-time"])


def test_accuracy_gpu_plans_cells_side_by_side_within_the_deadline(tmp_path, monkeypatch,
                                                                   capsys):
    """--launcher local with a sharing measurement and a deadline: the cells that two lanes
    finish in time are handed to the local launcher with 2 jobs, each guess multiplied by the
    measured slowdown; their records and the table say that two runs shared the GPU. (The cells
    run inline here: the local launcher itself is tested in test_sweep.py.)"""
    mod = load("accuracy_gpu")
    _short_tiny(monkeypatch, mod)
    from promix_tutorial.cells import INLINE
    launchers, run_cells = [], mod.run_cells

    def inline(cells, launcher, **kw):
        launchers.append(launcher)
        return run_cells(cells, INLINE, **kw)
    monkeypatch.setattr(mod, "run_cells", inline)
    res, runs = tmp_path / "acc", tmp_path / "runs"
    sharing = tmp_path / "sharing.json"  # as benchmarks/gpu_sharing.py writes it
    sharing.write_text(json.dumps({"best": 2, "runs": [
        {"processes": 1, "slowdown": 1.0}, {"processes": 2, "slowdown": 1.5}]}))
    # CE guessed 4 min alone, 6 min with two sharing: two CE cells fit a 7-min deadline side by
    # side, a third would need 12 min in a lane; ProMix (20 min alone) fits nowhere
    assert mod.main(["--preset", "tiny", "--cells", "ce__sym0.8__seed0", "promix__sym0.8__seed0",
                     "ce__sym0.5__seed0", "ce__asym0.4__seed0", "--deadline-minutes", "7",
                     "--first-guess-minutes", "20", "4", "--launcher", "local",
                     "--sharing", str(sharing), "--results", str(res), "--runs", str(runs),
                     "--pack-to", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "[plan] 2 cell(s) in 2 lane(s) side by side" in printed
    assert [(lc.kind, lc.jobs) for lc in launchers] == [("local", 2)]
    assert "[wait] promix__sym0.8__seed0" in printed and "[wait] ce__asym0.4__seed0" in printed
    assert sorted(p.name for p in res.iterdir()) == ["ce__sym0.5__seed0.json",
                                                     "ce__sym0.8__seed0.json"]
    rec = json.loads((res / "ce__sym0.5__seed0.json").read_text())
    assert rec["cells_sharing_gpu"] == 2 and rec["epochs"] == 4
    assert "(2 runs sharing the GPU)" in (tmp_path / "acc.md").read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cell_0.tar", "cell_1.tar"]
    with pytest.raises(SystemExit):  # --sharing is for cells side by side only
        mod.main(["--cells", "all", "--sharing", str(sharing)])


def test_cells_that_fit_fills_lanes_in_order():
    mod = load("accuracy_gpu")
    from promix_tutorial.cells import make_cell
    from promix_tutorial.config import make_config

    def cell(method, noise):
        return make_cell(make_config("tiny", "digits", noise, method=method), "r", "nowhere",
                         "cmd", "digits")
    cells = [cell("promix", "sym:0.8"), cell("ce", "sym:0.8"), cell("promix", "sym:0.5"),
             cell("ce", "sym:0.5")]
    minutes = {"promix": 5.0, "ce": 1.0}
    chosen, left = mod.cells_that_fit(cells, minutes, jobs=2, budget=6.0)
    assert [c.name for c in chosen] == [c.name for c in cells]      # 5 + 1 in each lane
    chosen, left = mod.cells_that_fit(cells, minutes, jobs=1, budget=6.0)
    assert [c.name for c in chosen] == ["promix__sym0.8__seed0", "ce__sym0.8__seed0"]
    chosen, left = mod.cells_that_fit(cells, minutes, jobs=3, budget=4.0)
    assert [c.name for c in chosen] == ["ce__sym0.8__seed0", "ce__sym0.5__seed0"]
    # which number of runs at once: the one that finishes the most work (minutes alone) in time
    sharing = {"best": 4, "runs": [{"processes": 1, "slowdown": 1.0},
                                   {"processes": 2, "slowdown": 1.1},
                                   {"processes": 4, "slowdown": 2.0}]}
    jobs, factor, chosen, left = mod.plan_side_by_side(cells, minutes, sharing, None, 7.0)
    assert (jobs, factor, len(chosen), left) == (2, 1.1, 4, [])     # 4 x 2.0 x 5 min > 7
    jobs, factor, chosen, left = mod.plan_side_by_side(cells, minutes, sharing, None, 10.0)
    assert (jobs, len(chosen)) == (2, 4)                             # 4 fits too: tie to fewer
    jobs, factor, chosen, left = mod.plan_side_by_side(cells, minutes, sharing, None, None)
    assert (jobs, factor, len(chosen)) == (4, 2.0, 4)                # no deadline: the best
    jobs, factor, chosen, left = mod.plan_side_by_side(cells, minutes, None, 2, 6.0)
    assert (jobs, factor, [c.name for c in chosen]) == (2, 2.0, ["ce__sym0.8__seed0",
                                                                "ce__sym0.5__seed0"])


def test_gpu_sharing_measures_runs_side_by_side(tmp_path, monkeypatch, capsys):
    """benchmarks/gpu_sharing.py on the tiny preset: two processes released together; the
    summary of the runs and the plan accuracy_gpu.py takes from it."""
    import argparse
    mod = load("gpu_sharing")
    two = mod.run_together(2, argparse.Namespace(preset="tiny", n=128, epochs=1, device="cpu"))
    assert two["processes"] == 2 and two["images_per_s"] > 0 and two["makespan_s"] > 0
    assert len(two["per_process_images_per_s"]) == 2 and two["late_start_s"] >= 0
    assert two["model"] == "digits_net" and two["max_memory_gib_per_process"] is None
    # main: one measurement per number of processes (the one-process run here as if measured)
    solo = {**two, "processes": 1, "images_per_s": two["images_per_s"] / 1.5,
            "makespan_s": two["makespan_s"] / 1.2}
    monkeypatch.setattr(mod, "run_together", lambda n, args: {1: solo, 2: two}[n])
    out = tmp_path / "sharing.json"
    assert mod.main(["--preset", "tiny", "--processes", "1", "2", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert [(r["processes"], r["gain"], r["slowdown"]) for r in rec["runs"]] == [
        (1, 1.0, 1.0), (2, 1.5, 1.2)]
    assert rec["best"] == 2 and rec["model"] == "digits_net" and rec["hardware"]["cpu_count"]
    assert "slowdown of one run" in capsys.readouterr().out
    runs = [{"processes": 1, "images_per_s": 100.0, "makespan_s": 10.0},
            {"processes": 2, "images_per_s": 180.0, "makespan_s": 11.1},
            {"processes": 4, "images_per_s": 190.0, "makespan_s": 21.0}]
    summary = mod.summarize(runs, min_gain=1.15)
    assert summary["best"] == 4 and [r["gain"] for r in summary["runs"]] == [1.0, 1.8, 1.9]
    assert mod.summarize(runs, min_gain=2.0)["best"] == 1            # too little gain: alone
    assert mod.measured_counts(summary) == [1, 2, 4] and mod.measured_counts(None) == [1]
    assert mod.slowdown(summary, 4) == 2.1 and mod.slowdown(summary, 2) == 1.11
    assert mod.slowdown(summary, 3) == 3.0 and mod.slowdown(None, 2) == 2.0  # no gain assumed
    with pytest.raises(ValueError):
        mod.summarize(runs[1:], min_gain=1.15)
    with pytest.raises(SystemExit):
        mod.main(["--processes", "2", "4"])                          # no baseline


def test_device_results_unpacks_cells_probes_checks_and_reference(tmp_path, monkeypatch):
    """benchmarks/device_results.py on what device_check.sh brings back: the cell's results
    file lands in accuracy_gpu/, a reference run is exported (checksummed manifest), the probes
    and checks are copied, the log is kept; an existing cell is kept, not replaced."""
    import tarfile
    acc, dev = load("accuracy_gpu"), load("device_results")
    probe = load("fast_recipe_probe", BENCH / "probes")
    _short_tiny(monkeypatch, acc)
    out = tmp_path / "device_out"
    assert acc.main(["--preset", "tiny", "--cells", "promix__sym0.8__seed0", "--results",
                     str(tmp_path / "acc"), "--runs", str(tmp_path / "runs"),
                     "--pack-to", str(out)]) == 0
    assert probe.main(["--preset", "tiny", "--variants", "cosine_epoch", "--noises", "sym:0.8",
                       "--set", "warmup_epochs=1", "--set", "epochs=3", "--results",
                       str(tmp_path / "probes"), "--pack-to", str(out)]) == 0
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "versions.txt").write_text("torch 9.9\n")
    with tarfile.open(out / "checks.tar", "w") as tar:
        tar.add(tmp_path / "checks", arcname="checks")
    (out / "log.txt").write_text("[0 s] device check 2026-11-28 03:04 UTC, commit abc\n")
    results, probe_results = tmp_path / "results", tmp_path / "probe_results"
    assert dev.main([str(out), "--results", str(results), "--probe-results",
                     str(probe_results)]) == 0
    assert (results / "accuracy_gpu" / "promix__sym0.8__seed0.json").is_file()
    assert (probe_results / "fast_recipe_probe" / "cosine_epoch__sym0.8.json").is_file()
    assert "cosine_epoch" in (probe_results / "fast_recipe_probe.md").read_text()
    assert (results / "gpu" / "versions_gpu.txt").read_text() == "torch 9.9\n"
    assert (results / "gpu" / "logs" / "device_check_2026-11-28_0304.txt").is_file()
    manifest = json.loads((results / "reference" / "manifest.json").read_text())
    entry = manifest["runs"]["promix__sym0.8__seed0"]
    assert entry["command"] == "python benchmarks/accuracy_gpu.py --cells promix__sym0.8__seed0"
    assert {f["path"] for f in entry["files"]} >= {"config.json", "history.json"}
    # a second unpack keeps what is there
    mark = results / "accuracy_gpu" / "promix__sym0.8__seed0.json"
    mark.write_text(mark.read_text().replace("{", "{\"kept\": 1, ", 1))
    assert dev.main([str(out), "--results", str(results), "--probe-results",
                     str(probe_results), "--no-reference"]) == 0
    assert json.loads(mark.read_text())["kept"] == 1


def test_device_results_routes_start_cells_and_the_starts(tmp_path):
    """Cells trained from a start (start_cell_K.tar) land in accuracy_gpu_start/, never among
    the scratch cells; the starts made on the GPU (checks.tar's pretrain_PRESET/) in gpu/."""
    import tarfile
    dev = load("device_results")
    out, src = tmp_path / "device_out", tmp_path / "src"
    (src / "accuracy_gpu").mkdir(parents=True)
    (src / "accuracy_gpu" / "promix__sym0.8__seed0.json").write_text('{"init": "start"}')
    (src / "checks" / "pretrain_fast").mkdir(parents=True)
    (src / "checks" / "pretrain_fast" / "manifest.json").write_text("{}")
    out.mkdir()
    with tarfile.open(out / "start_cell_0.tar", "w") as tar:
        tar.add(src / "accuracy_gpu", arcname="accuracy_gpu")
    with tarfile.open(out / "checks.tar", "w") as tar:
        tar.add(src / "checks", arcname="checks")
    results = tmp_path / "results"
    assert dev.main([str(out), "--results", str(results), "--probe-results",
                     str(tmp_path / "probes"), "--no-reference"]) == 0
    assert (results / "accuracy_gpu_start" / "promix__sym0.8__seed0.json").is_file()
    assert not (results / "accuracy_gpu" / "promix__sym0.8__seed0.json").exists()
    assert (results / "gpu" / "pretrain_fast" / "manifest.json").is_file()


def test_guess_minutes_from_the_step_throughput():
    mod = load("accuracy_gpu")
    from promix_tutorial.config import make_config
    # the length of the archived H100 cells' fast preset: 60 epochs, 8 of warm-up
    cfg = make_config("fast", "cifar10", "sym:0.5", epochs=60, warmup_epochs=8, lga_start=35)
    g = mod.guess_minutes({"images_per_s": 1000.0}, cfg, 50_000)  # T = 50 s per ProMix epoch
    assert g["promix"] == pytest.approx(1.1 * (8 * 0.25 + 52 + 60 * 0.15) * 50 / 60)
    assert g["ce"] == pytest.approx(1.1 * 60 * 0.22 * 50 / 60)
    # those cells: 11,131 img/s in the step profile, the ProMix cell took 278 s
    h100 = mod.guess_minutes({"images_per_s": 11131.0}, cfg, 50_000)
    assert 278 / 60 < h100["promix"] < 1.15 * 278 / 60
    # gpu_sharing.py's record: its one-process run is the same measurement
    sharing = {"runs": [{"processes": 2, "images_per_s": 20000.0},
                        {"processes": 1, "images_per_s": 11131.0}]}
    assert mod.guess_minutes(sharing, cfg, 50_000) == h100


def test_pack_cell_appends(tmp_path):
    import tarfile
    mod = load("accuracy_gpu")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text("{}")
        (tmp_path / name / "checkpoint.pt").write_text("x")
        (tmp_path / f"{name}.json").write_text("{}")
        mod.pack_cell(tmp_path / f"{name}.json", tmp_path / name, tmp_path / "t.tar")
    with tarfile.open(tmp_path / "t.tar") as tar:
        assert sorted(tar.getnames()) == ["accuracy_gpu/a.json", "accuracy_gpu/b.json",
                                          "runs/a/history.json", "runs/b/history.json"]
    assert not (tmp_path / "t.tar.part").exists()


def test_accuracy_gpu_epoch_time_projection(tmp_path, monkeypatch, capsys):
    mod = load("accuracy_gpu")
    _short_tiny(monkeypatch, mod)
    assert mod.main(["--paper-epoch-time", "--preset", "tiny", "--results", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "tiny_epoch_time.json").read_text())
    sec, n = rec["seconds_per_epoch"], rec["epochs"]
    assert n == {"warmup": 1, "promix": 2, "promix_lga": 1}
    assert all(v > 0 for v in sec.values())
    total = sum(n[k] * sec[k] for k in n)
    assert rec["projected_total_hours"] == pytest.approx(total / 3600, abs=0.01)
    assert rec["amp"] == "off"  # the CPU runs float32 (bfloat16 / float16 on CUDA: amp_dtype)
    assert "projected 4 epochs" in capsys.readouterr().out


def test_preset_time_projects_a_whole_run_from_timed_epochs(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert load("preset_time").main(["--preset", "tiny", "--dataset", "digits",
                                     "--promix-epochs", "1", "--ce-epochs", "2",
                                     "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    p, c = res["promix"], res["ce"]
    assert len(p["epoch_seconds"]["warmup"]) == 5 and len(p["epoch_seconds"]["promix"]) == 1
    assert p["epochs"] == 30 and len(c["epoch_seconds"]["ce"]) == 2
    m = p["mean_epoch_seconds"]
    assert p["projected_minutes"] == pytest.approx((5 * m["warmup"] + 25 * m["promix"]) / 60,
                                                   abs=0.02)
    assert c["projected_minutes"] == pytest.approx(30 * c["mean_epoch_seconds"]["ce"] / 60,
                                                   abs=0.02)
    assert res["hardware"]["cpu_count"] and "load average before" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        load("preset_time").main(["--ce-epochs", "0"])


def test_step_profile_times_the_parts_of_a_promix_step(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert load("step_profile").main(["--preset", "tiny", "--n", "256", "--epochs", "1",
                                      "--device", "cpu", "--set", "mix_per_head=true",
                                      "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["images_per_s"] > 0 and len(rec["epoch_s"]) == 1 and rec["networks"] == 2
    assert rec["n_images"] == 256 // rec["batch_size"] * rec["batch_size"]
    assert set(rec["parts"]) == {"promix/augment", "promix/forward+losses", "promix/backward",
                                 "promix/optimizer"}
    assert all(p["calls"] > 0 for p in rec["parts"].values())
    assert 0 < rec["augment_share"] < 1 and rec["cuda_sync_warnings"] is None
    assert rec["overrides"] == ["mix_per_head=true"]
    assert "img/s through the ProMix step" in capsys.readouterr().out


# -------------------------------------------------------------------------- device_check.sh

def _device_check(tmp_path, *args, **env):
    env = {**os.environ, "DEVICE_DATA": str(tmp_path / "dev"), "PYTHON": sys.executable,
           "DATA_CACHE": str(tmp_path / "cache"), "OUT": str(tmp_path / "out"), **env}
    env.pop("PROMIX_CIFAR10_NPZ", None)  # as on a GPU machine: the script makes the arrays file
    return subprocess.run(["bash", str(BENCH / "device_check.sh"), *args], env=env,
                          capture_output=True, text=True)


def test_device_check_help_errors_and_prepare(tmp_path):
    """benchmarks/device_check.sh: --help prints its settings; without prepared data, with an
    unknown option or a wrong data folder it stops at once with exit 2; --prepare copies the
    offline data and submitit into DEVICE_DATA."""
    from conftest import SHARED
    shown = _device_check(tmp_path, "--help")
    assert shown.returncode == 0 and "Settings (environment):" in shown.stdout
    assert "--dry-run" in shown.stdout and not shown.stdout.startswith("#")
    missing = _device_check(tmp_path)
    assert missing.returncode == 2 and "--prepare" in missing.stderr
    assert not (tmp_path / "out").exists()
    assert _device_check(tmp_path, "--nonsense").returncode == 2
    bad = _device_check(tmp_path, "--prepare", PROMIX_OFFLINE_DATA_DIR=str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "PROMIX_OFFLINE_DATA_DIR" in bad.stderr
    if not (SHARED / "data" / "cifar10-jpeg75.tar.gz").is_file():
        pytest.skip(f"the offline data is not in {SHARED}")
    done = _device_check(tmp_path, "--prepare", PROMIX_OFFLINE_DATA_DIR=str(SHARED))
    assert done.returncode == 0, done.stderr
    dev = tmp_path / "dev"
    assert (dev / "data" / "cifar-n" / "CIFAR-10_human.pt").is_file()
    assert (dev / "tools" / "make_offline_cifar10.py").is_file()
    assert (dev / "pylib" / "submitit" / "__init__.py").is_file()


def test_device_check_dry_run_lists_each_step_and_its_command(tmp_path):
    """--dry-run: every step these settings run, in order, with the command it would run (each
    naming a script of this checkout); nothing runs and nothing is written to OUT."""
    dry = _device_check(tmp_path, "--dry-run", PRESET="tiny", DEVICE="cpu",
                        CELLS="ce__sym0.5__seed0", PROBE_VARIANTS="cosine_epoch",
                        PROBE_SET="--set epochs=4", NOTEBOOKS="01_noise_injection")
    assert dry.returncode == 0, dry.stderr
    log = dry.stdout
    steps = ["0. a tiny ProMix run on CUDA", "1. CUDA tests", "2. step profile", "3. throughput",
             "3b. fast-preset schedule probes", "3c. runs side by side: measuring 1 2 4",
             "4. accuracy cells", "5. paper-preset epoch time", "6. notebook times", "done"]
    at = [log.index(step) for step in steps]
    assert at == sorted(at)
    assert "a real call would stop here" in log  # DEVICE_DATA was not prepared
    commands = [line for line in log.splitlines() if line.startswith("[dry run] ")]
    assert len(commands) == 10  # the arrays file and one per step (4 runs after 3c)
    scripts = [w for line in commands for w in line.split() if w.endswith((".py", ".sh"))
               and w.startswith(("benchmarks/", "tests/"))]
    assert all((BENCH.parent / s).is_file() for s in scripts)
    assert {s for s in scripts if s.startswith("benchmarks/")} == {
        f"benchmarks/{s}" for s in ("step_profile.py", "throughput.py", "gpu_sharing.py",
                                    "probes/fast_recipe_probe.py", "accuracy_gpu.py",
                                    "notebook_times.sh")}
    probe = next(c for c in commands if "fast_recipe_probe.py" in c)
    assert "benchmarks/probes/fast_recipe_probe.py --preset tiny --variants cosine_epoch" in probe
    assert probe.endswith("--set epochs=4")
    cells = next(c for c in commands if "--cells" in c)
    assert "--cells ce__sym0.5__seed0" in cells and "--launcher local --sharing" in cells
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    # a second call on the same machine: the arrays file is reused; only the probes run
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cifar10_jpeg75.npz").write_bytes(b"")
    again = _device_check(tmp_path, "--dry-run", SKIP_TINY="1", SKIP_CHECKS="1",
                          SKIP_CELLS="1", SKIP_PAPER="1").stdout
    assert "the arrays file of an earlier call on this machine" in again
    assert "4. accuracy cells skipped (SKIP_CELLS=1)" in again and "3c." not in again
    assert [c.split()[3] for c in again.splitlines() if c.startswith("[dry run] ")] == [
        "benchmarks/probes/fast_recipe_probe.py"]


def test_first_run_times_the_main_command_beside_another_job(tmp_path, capsys):
    out = tmp_path / "first_run.json"
    assert load("first_run").main(["--repeats", "1", "--epochs", "2", "--other-threads", "1",
                                   "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert [r["mode"] for r in rec["runs"]] == ["chosen", "default threads"]
    assert "threads=1 (the tiny preset's default)" in rec["runs"][0]["header"]
    assert f"threads={os.cpu_count()} (--threads)" in rec["runs"][1]["header"]
    assert all(r["seconds"] > 0 and r["header"].endswith("-> DIR") for r in rec["runs"])
    assert rec["other_job"]
    assert "chosen" in capsys.readouterr().out


def test_start_strength_points_and_table(tmp_path, monkeypatch):
    """The points of a pretraining folder (scratch first, then each kept start with the kNN
    accuracy its manifest records) and the table and plot built from result files."""
    mod = load("start_strength")
    start = tmp_path / "start"
    start.mkdir()
    for e in (5, 10):
        (start / f"backbone_e{e:03d}.pt").write_bytes(b"x")
    (start / "manifest.json").write_text(json.dumps({"checkpoints": [
        {"epoch": 5, "file": "backbone_e005.pt", "knn_acc": 0.55},
        {"epoch": 10, "file": "backbone_e010.pt", "knn_acc": 0.6}]}))
    pts = mod.points(start)
    assert [n for n, _ in pts] == ["scratch", "e005", "e010"] and pts[0][1] is None
    assert mod.knn_of(pts[2][1]) == 0.6 and mod.knn_of(None) is None
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "res" / "start_strength_cpu")
    mod.RESULTS.mkdir(parents=True)
    sel = {"precision": 0.5, "recall": 0.4, "f1": 0.44}
    for name, knn, lr in (("scratch", None, 0.1), ("e005", 0.55, 0.01)):
        (mod.RESULTS / f"{mod.stem(name, 0)}.json").write_text(json.dumps(
            {"point": name, "seed": 0, "noise": "sym:0.8", "knn_acc": knn,
             "warmup_test_acc": 0.3, "first_selection": sel, "actual_noise_rate": 0.72,
             "config": {"lr": lr}}))
    text = mod.table()
    assert "| e005 | 55.0% | 30.0% | 0.500 / 0.400 / 0.440 | 0 |" in text
    assert "Peak learning rate: 0.1 from scratch, 0.01 from a start" in text  # as recorded
    assert "28.0% of the labels right" in text and "warm-up obstacle" not in text
    assert (tmp_path / "res" / "start_strength_cpu.png").stat().st_size > 1000
    assert not (tmp_path / "res" / "start_strength_noise_cpu.png").exists()
    # the same points at another noise rate: the warm-up obstacle's table and plot
    assert mod.stem("e005", 1, "sym:0.5") == "e005__sym0.5__seed1"
    for name, p in (("scratch", 0.7), ("e005", 0.8)):
        (mod.RESULTS / f"{mod.stem(name, 0, 'sym:0.5')}.json").write_text(json.dumps(
            {"point": name, "seed": 0, "noise": "sym:0.5", "knn_acc": None,
             "warmup_test_acc": 0.4, "first_selection": dict(sel, precision=p),
             "actual_noise_rate": 0.45, "config": {"lr": 0.01}}))
    text = mod.table()
    assert "| e005 | 55.0% | 30.0% |" in text and text.count("| e005 |") == 3  # 1 + 2 noises
    rows = text.split("warm-up obstacle")[1]
    assert rows.index("| sym:0.5 | 55.0% | scratch | 40.0% | 0.700 /") < rows.index(
        "| sym:0.5 | 55.0% | e005 | 40.0% | 0.800 /") < rows.index("| sym:0.8 | 28.0% | scratch")
    assert (tmp_path / "res" / "start_strength_noise_cpu.png").stat().st_size > 1000


def test_accuracy_gpu_refuses_a_missing_start_before_any_work(tmp_path, capsys):
    acc = load("accuracy_gpu")
    with pytest.raises(SystemExit) as e:
        acc.main(["--preset", "tiny", "--cells", "promix__sym0.8__seed0", "--start",
                  str(tmp_path / "none.pt"), "--results", str(tmp_path / "r"), "--runs",
                  str(tmp_path / "runs")])
    assert e.value.code == 2 and "no start at" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()
