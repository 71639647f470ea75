"""Smoke tests of the benchmark scripts (they print figures; nothing here is timed)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    if str(BENCH) not in sys.path:  # as when run as a script: the scripts import each other
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # as an import would: pickling its functions finds them by name
    spec.loader.exec_module(mod)
    return mod


def test_throughput_runs_both_pipelines(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert load("throughput").main(["--presets", "tiny", "--n", "256", "--workers", "0",
                                    "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["model"] == "digits_net"
    assert rows[0]["device_images_per_s"] > 0 and rows[0]["loader_images_per_s"] > 0
    assert "device img/s" in capsys.readouterr().out


def test_accuracy_cpu_cells_cover_the_issue():
    mod = load("accuracy_cpu")
    cells = mod.all_cells()
    assert len(mod.select(["main"])) == 4 * 2 * 3  # 4 noise settings x CE/ProMix x 3 seeds (issue 11)
    assert mod.select(["nearest"]) == [f"{m}__{n}__seed{s}" for n in ("sym0.7", "sym0.6")
                                       for s in (0, 1, 2) for m in ("ce", "promix")]
    assert len([c for c, kw in cells.items() if "ablation" not in kw]) == 36
    assert len(mod.select(["ablations"])) == 6 * 3
    assert "promix__humanworst__seed2" in cells and "no_dbr__asym0.4__seed2" in cells
    with pytest.raises(SystemExit):
        mod.select(["nonsense"])


def test_figure_notebooks_run_accuracy_cpu_cells_at_cpu(tmp_path):
    """Notebooks 02, 03 and 05 at the cpu profile run the configs of accuracy_cpu cells (what their
    text says, and what lets them load a finished cell instead of training it again): 02 the
    ProMix cell at its Fig. 3 noise, 03 the w/o LGA and w/o DBR cells at its Fig. 4 noise, 05
    the seven Table 5 rows (seed 0)."""
    from promix_tutorial.config import config_differences, figure_noise, profile_config
    from promix_tutorial.results import cell_name

    mod = load("accuracy_cpu")

    def cell_config(name):
        return mod.make_cells([name], tmp_path / "results", tmp_path / "runs")[0].config

    nb02 = profile_config("cpu", figure_noise("fig3", "cpu"))
    nb02 = nb02.replace(record_epochs=(nb02.warmup_epochs - 1,))   # as notebook 02 asks
    assert cell_config("promix__sym0.5__seed0") == nb02
    for ablation in ("no_lga", "no_dbr"):
        nb03 = profile_config("cpu", figure_noise("fig4", "cpu"), ablation=ablation)
        cell = cell_config(f"{ablation}__asym0.4__seed0")
        assert config_differences(json.loads(json.dumps(cell.to_dict())), nb03) == {}
    # notebook 05's seven runs are the seed-0 cells of the ProMix and ablation rows
    from promix_tutorial.config import ablation_study_configs
    for label, nb05 in ablation_study_configs("cpu").items():
        name = cell_name("promix", nb05.ablation, nb05.noise, 0)
        assert name in mod.all_cells(), label
        cell = cell_config(name)
        assert config_differences(json.loads(json.dumps(cell.to_dict())), nb05) == {}, label
    # a different noise would not be found: the comparison is not vacuous
    other = profile_config("cpu", "sym:0.8", ablation="no_lga")
    assert config_differences(cell_config("no_lga__asym0.4__seed0").to_dict(), other)


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
                                       "--epochs", "3", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["ProMix seed 0", "w/o Base Selection seed 0"]
    assert all("F1" in line and "labeled" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "ci" / "sym0.8").iterdir()) == ["no_base_selection", "none"]
    # a second seed: seed 0 is loaded, seed 1 trained, and Table 5 with the spread follows
    assert load("ablation_rows").main(["--profile", "ci", "--rows", "none", "no_base_selection",
                                       "--epochs", "3", "--seeds", "0", "1", "--out", str(tmp_path)]) == 0
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
    with pytest.raises(SystemExit):
        mod.select(["promix__sym0.3__seed0"])
    _short_tiny(monkeypatch, mod)
    res, runs, out = tmp_path / "acc", tmp_path / "runs", tmp_path / "out"
    # the CE cell is guessed to take 0.001 min and runs; the ProMix cell, guessed to take 30 min,
    # would end after the 20-min deadline and is not started (no wall-clock race: CI's fast
    # machines once finished the CE cell inside a 1.2-s deadline)
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


def test_accuracy_gpu_runs_cells_side_by_side_within_the_deadline(tmp_path, monkeypatch,
                                                                  capsys):
    """--launcher local --jobs 2 with a deadline: the cells that two lanes finish in time run at
    once (submitit's local jobs; on a GPU machine they share it), each guess multiplied by the
    measured slowdown; their records and the table say that two runs shared the GPU."""
    mod = load("accuracy_gpu")
    _short_tiny(monkeypatch, mod)
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
    from promix_tutorial.sweep import make_cell
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


def test_gpu_sharing_measures_runs_side_by_side(tmp_path, capsys):
    """benchmarks/gpu_sharing.py on the tiny preset: one and two processes, released together;
    the summary and the plan accuracy_gpu.py takes from it."""
    mod = load("gpu_sharing")
    out = tmp_path / "sharing.json"
    assert mod.main(["--preset", "tiny", "--n", "256", "--epochs", "1", "--processes", "1", "2",
                     "--device", "cpu", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert [r["processes"] for r in rec["runs"]] == [1, 2]
    two = rec["runs"][1]
    assert len(two["per_process_images_per_s"]) == 2 and two["images_per_s"] > 0
    assert rec["runs"][0]["gain"] == 1.0 and rec["runs"][0]["slowdown"] == 1.0
    assert rec["model"] == "digits_net" and rec["best"] in (1, 2)
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


def test_fast_recipe_probe_measures_the_warmup_and_skips_done(tmp_path, capsys):
    """benchmarks/fast_recipe_probe.py on the tiny preset: a probe trains exactly the variant's
    warm-up with its schedule, records CSS's first selection, is packed, and is not rerun."""
    import tarfile
    mod = load("fast_recipe_probe")
    # the variant that reproduces the first GPU run's fast preset (2026-11-27) must stay so
    from promix_tutorial.config import make_config, with_added_fields
    first_gpu = BENCH / "results" / "accuracy_gpu_2026-11-27" / "promix__sym0.8__seed0.json"
    first_gpu = with_added_fields(json.loads(first_gpu.read_text())["config"])
    assert {k: first_gpu[k] for k in mod.SCHEDULE} == mod.VARIANTS["cosine_epoch"]
    assert all(set(v) == set(mod.SCHEDULE) for v in mod.VARIANTS.values())
    res, out = tmp_path / "res", tmp_path / "out"
    fast = make_config("fast", "cifar10", "sym:0.8")
    assert {k: getattr(fast, k) for k in mod.SCHEDULE} in mod.VARIANTS.values()  # always probed
    args = ["--preset", "tiny", "--variants", "cosine_epoch", "onecycle_lr0.1", "--noises",
            "sym:0.8", "--set", "warmup_epochs=2", "--set", "epochs=5", "--results", str(res),
            "--pack-to", str(out)]
    assert mod.main(args) == 0
    recs = {p.stem: json.loads(p.read_text()) for p in res.glob("*.json")}
    assert sorted(recs) == ["cosine_epoch__sym0.8", "onecycle_lr0.1__sym0.8"]
    one = recs["onecycle_lr0.1__sym0.8"]
    assert [r["phase"] for r in one["records"]] == ["warmup", "warmup"]
    assert one["schedule"]["lr_per_step"] is True and one["schedule"]["warmup_epochs"] == 2
    # the recorded lr follows the variant's schedule: one-cycle starts at lr / 25
    assert one["records"][0]["lr"] == pytest.approx(0.1 / 25)
    assert recs["cosine_epoch__sym0.8"]["records"][0]["lr"] == pytest.approx(0.1)
    css = one["first_css"]
    assert 0 < css["precision"] <= 1 and 0 < css["recall"] <= 1 and css["count"] > 0
    assert one["config"] == json.loads(json.dumps(make_config("tiny", "cifar10", "sym:0.8", **{
        **mod.VARIANTS["onecycle_lr0.1"], "warmup_epochs": 2, "epochs": 5}).to_dict()))
    with tarfile.open(out / "probes.tar") as tar:
        assert sorted(tar.getnames()) == ["fast_recipe_probe/cosine_epoch__sym0.8.json",
                                          "fast_recipe_probe/onecycle_lr0.1__sym0.8.json"]
    md = (tmp_path / "res.md").read_text()
    today = {k: getattr(fast, k) for k in mod.SCHEDULE}
    now = [v for v, sch in mod.VARIANTS.items() if sch == today]
    mark = " (the fast preset now)" if now == ["onecycle_lr0.1"] else ""
    assert f"| onecycle_lr0.1{mark} | lr 0.1, per step, rise 10%, nesterov" in md
    capsys.readouterr()
    assert mod.main(args) == 0
    assert capsys.readouterr().out.count("[skip]") == 2
    # --promix-epochs K: the warm-up, then K ProMix epochs; a probe file of its own
    assert mod.main(args[:4] + args[5:] + ["--promix-epochs", "2"]) == 0
    longer = json.loads((res / "cosine_epoch__sym0.8__promix2.json").read_text())
    assert [r["phase"] for r in longer["records"]] == ["warmup", "warmup", "promix", "promix"]
    assert longer["promix_epochs"] == 2 and longer["records"][-1]["selection"]["union"]["f1"] > 0
    assert longer["last_test_acc"] == longer["records"][-1]["test_acc"]
    assert longer["first_css"] == recs["cosine_epoch__sym0.8"]["first_css"]  # same warm-up
    assert f"; {longer['last_test_acc']:.1%} after 2 ProMix ep." in (tmp_path / "res.md").read_text()
    for bad in (["--variants", "nope"], ["--noises", "sym:1.5"], ["--set", "nope=1"]):
        with pytest.raises(SystemExit):
            mod.main(["--preset", "tiny", "--results", str(res)] + bad)


def test_fast_recipe_probe_side_by_side(tmp_path, capsys):
    """--jobs 2: two probes at once in spawned processes (on a GPU machine they share it), the
    same records as one after another, each saying that two probes shared the GPU."""
    mod = load("fast_recipe_probe")
    res = tmp_path / "res"
    args = ["--preset", "tiny", "--variants", "cosine_epoch", "onecycle_lr0.1", "--noises",
            "sym:0.8", "--set", "warmup_epochs=2", "--set", "epochs=5", "--results", str(res),
            "--pack-to", str(tmp_path / "out"), "--jobs", "2"]
    assert mod.main(args) == 0
    recs = {p.stem: json.loads(p.read_text()) for p in res.glob("*.json")}
    assert sorted(recs) == ["cosine_epoch__sym0.8", "onecycle_lr0.1__sym0.8"]
    assert {r["probes_sharing_gpu"] for r in recs.values()} == {2}
    alone = mod.probe("onecycle_lr0.1", "sym:0.8", "tiny", {"warmup_epochs": 2, "epochs": 5})
    assert recs["onecycle_lr0.1__sym0.8"]["first_css"] == alone["first_css"]  # same training
    assert capsys.readouterr().out.count("[done]") == 2
    with pytest.raises(SystemExit):
        mod.main(args[:-1] + ["0"])


def test_device_results_unpacks_cells_probes_checks_and_reference(tmp_path, monkeypatch):
    """benchmarks/device_results.py on what device_check.sh brings back: the cell's results
    file lands in accuracy_gpu/, a reference run is exported (checksummed manifest), the probes
    and checks are copied, the log is kept; an existing cell is kept, not replaced."""
    import tarfile
    acc, probe, dev = load("accuracy_gpu"), load("fast_recipe_probe"), load("device_results")
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
    results = tmp_path / "results"
    assert dev.main([str(out), "--results", str(results)]) == 0
    assert (results / "accuracy_gpu" / "promix__sym0.8__seed0.json").is_file()
    assert (results / "fast_recipe_probe" / "cosine_epoch__sym0.8.json").is_file()
    assert "cosine_epoch" in (results / "fast_recipe_probe.md").read_text()
    assert (results / "gpu" / "versions_gpu.txt").read_text() == "torch 9.9\n"
    assert (results / "gpu" / "logs" / "device_check_2026-11-28_0304.txt").is_file()
    manifest = json.loads((results / "reference" / "manifest.json").read_text())
    entry = manifest["runs"]["promix__sym0.8__seed0"]
    assert entry["command"] == "python benchmarks/accuracy_gpu.py --cells promix__sym0.8__seed0"
    assert {f["path"] for f in entry["files"]} >= {"config.json", "history.json"}
    # a second unpack keeps what is there
    mark = results / "accuracy_gpu" / "promix__sym0.8__seed0.json"
    mark.write_text(mark.read_text().replace("{", "{\"kept\": 1, ", 1))
    assert dev.main([str(out), "--results", str(results), "--no-reference"]) == 0
    assert json.loads(mark.read_text())["kept"] == 1


def test_fast_schedule_cpu_copies_histories_and_tabulates(tmp_path, monkeypatch):
    mod = load("fast_schedule_cpu")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "res" / "fast_schedule_cpu")
    run = tmp_path / "runs" / "ce80_oc_lr0.02"
    run.mkdir(parents=True)
    epochs = [{"test_acc": 0.25, "losses": {"total": 2.35}, "lr": 0.0008},
              {"test_acc": 0.305, "losses": {"total": 2.3}, "lr": 0.004}]
    (run / "history.json").write_text(json.dumps({"config": {}, "info": {}, "epochs": epochs}))
    assert mod.main([str(tmp_path / "runs")]) == 0
    assert (tmp_path / "res" / "fast_schedule_cpu" / "ce80_oc_lr0.02.json").is_file()
    md = (tmp_path / "res" / "fast_schedule_cpu.md").read_text()
    assert "| ce80_oc_lr0.02 | --set lr=0.02 --set lr_min=0" in md
    assert "| 30.5% (2.30, lr 0.004) |" in md
    assert "| H100, 2026-11-27 |" in md and "| 13.2% | 15.3% |" in md  # the archived cell


def test_fast_schedule_cpu_tabulates_a_promix_run_beside_the_gpu_reference(tmp_path,
                                                                            monkeypatch):
    """A ProMix run's table: warm-up epochs with CSS's next selection, ProMix epochs with the
    labeled set and MHCS, and the shipped GPU run's same epoch beside them (or a note)."""
    mod = load("fast_schedule_cpu")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "res" / "fast_schedule_cpu")
    run = tmp_path / "runs" / "promix80_recipe_scaled"
    run.mkdir(parents=True)
    sel = {"precision": 0.62341, "recall": 0.44701, "f1": 0.52067, "count": 9000}
    base = {"small_loss": {"f1": 0.591}, "gmm": {"f1": 0.5899}}
    warm = {"epoch": 0, "phase": "warmup", "test_acc": 0.3086, "test_acc_nets": [0.312, 0.299],
            "css_next": sel, "baselines": base, "seconds": 497.5}
    pro = {**warm, "epoch": 1, "phase": "promix", "seconds": 1200.0,
           "selection": {"labeled": {"count": 10123, "target_acc": 0.7}, "mhcs":
                         {"count": 15, "precision": 0.93333}}}
    info = {"device": "cpu", "torch": "2.x", "n_train": 50000, "n_test": 10000,
            "actual_noise_rate": 0.72108}
    (run / "history.json").write_text(json.dumps({"config": {}, "info": info,
                                                  "epochs": [warm, pro]}))
    assert mod.main([str(tmp_path / "runs")]) == 0
    md = (tmp_path / "res" / "fast_schedule_cpu.md").read_text()
    assert "## ProMix: warm-up and first ProMix epochs" in md
    assert "| 1 | warmup | 30.9% (31.2%, 29.9%) | 0.62 / 0.45 / 0.52 | 0.59 | 0.59 |  |  |" in md
    assert "| 2 | promix | 30.9% (31.2%, 29.9%) | 0.62 / 0.45 / 0.52 | 0.59 | 0.59 " \
           "| 10,123 (0.70) | 15 (0.93) |" in md
    assert "2 epochs of 498-1200 s of training each" in md
    # the shipped reference run (H100, 2026-11-27): its first epoch's accuracy and selection
    gpu = mod._gpu_reference()
    assert gpu is not None
    g0 = gpu.records[0]
    assert f"| {g0['test_acc']:.1%} (" in md and mod._sel(g0["css_next"]) in md
    assert f"the shipped reference run {mod.GPU_PROMIX} ({gpu.entry['device_name']}" in md
    # without a shipped run the table says so
    monkeypatch.setenv("PROMIX_REFERENCE_DIR", str(tmp_path / "none"))
    assert mod.main([]) == 0
    assert f"GPU: no reference run {mod.GPU_PROMIX} is shipped" in \
        (tmp_path / "res" / "fast_schedule_cpu.md").read_text()


def test_fast_schedule_cpu_options_reproduce_the_committed_runs():
    """Each committed run's options, added to today's command, give the config it recorded."""
    mod = load("fast_schedule_cpu")
    from promix_tutorial.cli import _parse_set
    from promix_tutorial.config import config_differences, make_config, with_added_fields
    committed = sorted(mod.RESULTS.glob("*.json"))
    assert committed and {p.stem for p in committed} <= set(mod.RUNS) | set(mod.PROMIX_RUNS)
    for path in committed:
        saved = with_added_fields(json.loads(path.read_text())["config"])
        opts = mod.options(path.stem)
        method = "promix" if path.stem in mod.PROMIX_RUNS else "ce"
        cfg = make_config("fast", "cifar10", "sym:0.8", method=method,
                          **_parse_set(opts[1::2]))
        assert config_differences(saved, cfg) == {}, path.stem


def test_logit_scale_cpu_summarises_runs_and_tabulates(tmp_path, monkeypatch):
    """A real (tiny) ProMix run and a CE run in the probe folder are summarised: selection
    counts per ProMix epoch and MHCS's view of the saved per-sample arrays at both taus."""
    mod = load("logit_scale_cpu")
    from promix_tutorial.config import make_config
    from promix_tutorial.train import train
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "res" / "logit_scale_cpu")
    short = dict(epochs=5, warmup_epochs=2, lga_start=3, gamma_ramp_epochs=1,
                 unlabeled_ramp_epochs=2, record_epochs=(1,))
    train(make_config("tiny", "digits", "sym:0.5", **short), tmp_path / "runs" / "p80_scaled",
          progress=False)
    train(make_config("tiny", "digits", "sym:0.5", method="ce", **short),
          tmp_path / "runs" / "ce80_scaled", progress=False)
    assert mod.main([str(tmp_path / "runs")]) == 0
    s = json.loads((tmp_path / "res" / "logit_scale_cpu" / "p80_scaled.json").read_text())
    assert s["epochs_done"] == 5 and len(s["selection_per_epoch"]) == 3
    assert [c["epoch"] for c in s["confidence"]] == [1, 4]
    for c in s["confidence"]:  # counts are consistent: 0.99 within 0.95, clean within all
        assert 0 <= c["matched_at_0.99"] <= c["matched_at_0.95"] <= 1797 * 0.8 + 1
        assert c["matched_at_0.95_clean"] <= c["matched_at_0.95"]
    assert s["confidence"][-1]["matched_at_0.95"] > 0  # the digits are learnt confidently
    md = (tmp_path / "res" / "logit_scale_cpu.md").read_text()
    assert "| p80_scaled |" in md and "| ce80_scaled |" in md
    assert "promix__sym0.8__seed0: 23.80%" in md  # the committed accuracy_cpu cell


def test_logit_scale_cpu_options_reproduce_the_committed_runs(monkeypatch):
    """Each committed summary's options, given to `promix train` with the docstring's common
    command, make the config the run recorded."""
    mod = load("logit_scale_cpu")
    from promix_tutorial import cli, train as T
    from promix_tutorial.config import config_differences, with_added_fields
    committed = sorted(mod.RESULTS.glob("*.json"))
    assert committed and {p.stem for p in committed} <= set(mod.RUNS)
    made = []

    def record_instead_of_training(cfg, *args, **kwargs):
        made.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(T, "train", record_instead_of_training)
    monkeypatch.setattr(cli, "check_out_folder", lambda *a: None)
    for path in committed:
        argv = ["train", "--dataset", "cifar10", "--preset", "cpu", "--seed", "0", "--device",
                "cpu", "--no-bars", "--out", "unused"] + mod.options(path.stem)
        with pytest.raises(SystemExit):
            cli.main(argv)
        saved = with_added_fields(json.loads(path.read_text())["config"])
        assert config_differences(saved, made[-1]) == {}, path.stem


def test_guess_minutes_from_the_step_throughput():
    mod = load("accuracy_gpu")
    from promix_tutorial.config import make_config
    cfg = make_config("fast", "cifar10", "sym:0.5")  # 60 epochs, 8 of warm-up
    g = mod.guess_minutes({"images_per_s": 1000.0}, cfg, 50_000)  # T = 50 s per ProMix epoch
    assert g["promix"] == pytest.approx(1.1 * (8 * 0.25 + 52 + 60 * 0.15) * 50 / 60)
    assert g["ce"] == pytest.approx(1.1 * 60 * 0.22 * 50 / 60)
    # the first H100 session: 11,131 img/s in the profile, the ProMix cell took 278 s
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


def test_device_check_script_on_cpu(tmp_path):
    """benchmarks/device_check.sh, run end to end on a CPU with the tiny preset, so that the
    script is known to work before scarce GPU time is spent on it."""
    import os
    import subprocess

    from conftest import SHARED

    script = BENCH / "device_check.sh"
    env = {**os.environ, "DEVICE_DATA": str(tmp_path / "dev"), "PROMIX_SHARED_DIR": str(SHARED)}
    env.pop("PROMIX_CIFAR10_NPZ", None)  # as on the device: the script makes the arrays file
    missing = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "--prepare" in missing.stderr
    bad = subprocess.run(["bash", str(script), "--prepare"], capture_output=True, text=True,
                         env={**env, "PROMIX_SHARED_DIR": str(tmp_path / "nowhere")})
    assert bad.returncode == 2 and "PROMIX_SHARED_DIR" in bad.stderr
    if not (SHARED / "data" / "cifar10-jpeg75.tar.gz").is_file():
        pytest.skip(f"the offline data is not in {SHARED}")
    subprocess.run(["bash", str(script), "--prepare"], env=env, check=True, capture_output=True)
    assert (tmp_path / "dev" / "data" / "cifar-n" / "CIFAR-10_human.pt").is_file()
    out = tmp_path / "out"
    env.update(OUT=str(out), PRESET="tiny", THROUGHPUT_PRESETS="tiny", THROUGHPUT_N="128",
               THROUGHPUT_WORKERS="0", PROFILE_N="256", DEVICE="cpu", CELLS="ce__sym0.5__seed0",
               RESULTS_DIR=str(tmp_path / "acc"), PYTHON=sys.executable, DEADLINE_S="900",
               PAPER_RESERVE_S="1", PROBE_VARIANTS="cosine_epoch", PROBE_NOISES="sym:0.8",
               PROBE_SET="--set warmup_epochs=2 --set epochs=4", PROBE_PROMIX_EPOCHS="1",
               PROBE_RESULTS=str(tmp_path / "probes"), SHARING_PROCESSES="1 2",
               SHARING_EPOCHS="1", DATA_CACHE=str(tmp_path / "cache"),
               NOTEBOOKS="01_noise_injection", NOTEBOOK_PROFILE="ci")
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, text=True)
    log = (out / "log.txt").read_text()
    assert "0. a tiny ProMix run on CUDA" in log and "ABORT" not in log
    assert "1. CUDA tests" in log and "skipped" in log          # no CUDA here: skipped, not failed
    assert sorted(p.name for p in out.iterdir()) == ["cell_0.tar", "checks.tar", "log.txt",
                                                     "probes.tar"]
    assert "3b. fast-preset schedule probes" in log
    assert "[done] cosine_epoch__sym0.8__promix1: warm-up end test acc" in log
    import tarfile
    with tarfile.open(out / "checks.tar") as tar:
        tar.extractall(tmp_path / "checks", filter="data")
    checks = tmp_path / "checks" / "checks"
    assert json.loads((checks / "throughput_gpu.json").read_text())["rows"][0]["model"] == "digits_net"
    prof = json.loads((checks / "step_profile_tiny.json").read_text())
    assert prof["images_per_s"] > 0 and set(prof["parts"]) >= {"promix/augment", "promix/backward"}
    assert json.loads((checks / "tiny_epoch_time.json").read_text())["projected_total_hours"] > 0
    assert "3c. runs side by side: measuring 1 2 ProMix runs at once" in log
    sharing = json.loads((checks / "gpu_sharing_tiny.json").read_text())
    assert [r["processes"] for r in sharing["runs"]] == [1, 2]
    assert "cell(s) in 1 lane(s) side by side" in log
    times = (checks / "notebook_times.txt").read_text()          # step 6 (Jupyter is here)
    assert "PROMIX_PROFILE=ci" in times and "\n01_noise_injection rc=0 seconds=" in times
    with tarfile.open(out / "cell_0.tar") as tar:
        cell = json.loads(tar.extractfile("accuracy_gpu/ce__sym0.5__seed0.json").read())
    assert cell["method"] == "ce" and cell["epochs"] == 30
    assert "[done] ce__sym0.5__seed0" in log and log.rstrip().endswith("done")
    # a second call, as on the still-warm machine: the arrays file is reused, only probes run,
    # two side by side; no cells
    out2 = tmp_path / "out2"
    env.update(OUT=str(out2), SKIP_TINY="1", SKIP_CHECKS="1", SKIP_CELLS="1", SKIP_PAPER="1",
               NOTEBOOKS="", PROBE_JOBS="2", PROBE_VARIANTS="onecycle_lr0.04 onecycle_lr0.02")
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, text=True)
    log2 = (out2 / "log.txt").read_text()
    assert "the arrays file of an earlier call on this machine" in log2
    assert "4. accuracy cells skipped (SKIP_CELLS=1)" in log2 and "3c." not in log2
    assert sorted(p.name for p in out2.iterdir()) == ["log.txt", "probes.tar"]
    for variant in ("onecycle_lr0.04", "onecycle_lr0.02"):
        rec = json.loads((tmp_path / "probes" / f"{variant}__sym0.8__promix1.json").read_text())
        assert rec["probes_sharing_gpu"] == 2


def test_ce_schedule_probe_runs(cifar10_npz):
    """benchmarks/ce_schedule_probe.py: one short run per network, JSON out."""
    import os
    import subprocess
    for net, recipe in (("fast", "onecycle"), ("plain", "pkg")):
        out = subprocess.run([sys.executable, str(BENCH / "ce_schedule_probe.py"), "--net", net,
                              "--recipe", recipe, "--n", "200", "--n-test", "200", "--epochs", "1"],
                             env={**os.environ, "PROMIX_CIFAR10_NPZ": str(cifar10_npz)},
                             capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        assert rec["net"] == net and len(rec["hist"]) == 1 and 0 <= rec["last"] <= 1


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
