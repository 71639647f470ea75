"""One smoke test per finished probe of benchmarks/probes/: it still runs, and its committed table
rebuilds from its committed files (docs/calibration.md quotes them)."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBES = Path(__file__).resolve().parent.parent / "benchmarks" / "probes"


def load(name):
    spec = importlib.util.spec_from_file_location(name, PROBES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # as an import would: spawned workers find its functions by name
    spec.loader.exec_module(mod)
    return mod


def rebuilt_in(tmp_path, monkeypatch, mod, name: str, argv=()) -> str:
    """Run ``mod.main(argv)`` on a copy of its committed results; the table it writes."""
    copy = tmp_path / "res" / name
    shutil.copytree(mod.RESULTS, copy)
    monkeypatch.setattr(mod, "RESULTS", copy)
    assert mod.main(list(argv)) == 0
    return (copy.parent / f"{name}.md").read_text()


def test_ce_schedule_probe_runs(cifar10_npz):
    out = subprocess.run([sys.executable, str(PROBES / "ce_schedule_probe.py"), "--net", "fast",
                          "--recipe", "onecycle", "--n", "200", "--n-test", "200", "--epochs",
                          "1"], capture_output=True, text=True, check=True)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["net"] == "fast" and len(rec["hist"]) == 1 and 0 <= rec["last"] <= 1


def test_fast_schedule_cpu_rebuilds_its_table_and_options_reproduce_the_runs(tmp_path,
                                                                            monkeypatch):
    mod = load("fast_schedule_cpu")
    committed = (PROBES / "results" / "fast_schedule_cpu.md").read_text()
    # a run folder is copied in (the same history again), then the table is rebuilt
    run = tmp_path / "runs" / "ce80_oc_lr0.02"
    run.mkdir(parents=True)
    shutil.copyfile(mod.RESULTS / "ce80_oc_lr0.02.json", run / "history.json")
    assert rebuilt_in(tmp_path, monkeypatch, mod, "fast_schedule_cpu",
                      [str(tmp_path / "runs")]) == committed
    from promix_tutorial.commands import parse_set
    from promix_tutorial.config import TrainConfig, config_differences, with_added_fields

    def config(name):
        return with_added_fields(json.loads((mod.RESULTS / f"{name}.json").read_text())["config"])
    for path in sorted(mod.RESULTS.glob("*.json")):  # the base run + its options = its config
        base = "promix80_recipe_scaled" if path.stem in mod.PROMIX_RUNS else "ce80_recipe_scaled"
        cfg = TrainConfig.from_dict(config(base)).replace(**parse_set(mod.options(path.stem)[1::2]))
        assert config_differences(config(path.stem), cfg) == {}, path.stem


def test_logit_scale_cpu_summarises_a_run_and_options_reproduce_the_runs(tmp_path,
                                                                         monkeypatch):
    mod = load("logit_scale_cpu")
    committed = (PROBES / "results" / "logit_scale_cpu.md").read_text()
    assert rebuilt_in(tmp_path, monkeypatch, mod, "logit_scale_cpu") == committed
    from promix_tutorial import cli, commands, devices, engine
    from promix_tutorial.config import config_differences, make_config, with_added_fields
    # a short tiny ProMix run, summarised: selection per ProMix epoch, MHCS's view of its arrays
    short = dict(epochs=3, warmup_epochs=1, lga_start=2, gamma_ramp_epochs=1,
                 unlabeled_ramp_epochs=1, record_epochs=(0,))
    engine.train(make_config("tiny", "digits", "sym:0.5", **short),
                 tmp_path / "runs" / "p80_scaled", progress=False)
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "new" / "logit_scale_cpu")
    assert mod.main([str(tmp_path / "runs")]) == 0
    s = json.loads((mod.RESULTS / "p80_scaled.json").read_text())
    assert s["epochs_done"] == 3 and len(s["selection_per_epoch"]) == 2
    assert [c["epoch"] for c in s["confidence"]] == [0, 2]
    for c in s["confidence"]:  # counts are consistent: 0.99 within 0.95, clean within all
        assert 0 <= c["matched_at_0.99"] <= c["matched_at_0.95"] <= 1347
        assert c["matched_at_0.95_clean"] <= c["matched_at_0.95"]
    assert "| p80_scaled |" in (mod.RESULTS.parent / "logit_scale_cpu.md").read_text()
    # each committed run's options, given to `promix train`, make the config it recorded
    made = []

    def record_instead_of_loading(cfg, *args, **kwargs):
        made.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(devices, "prepare_data", record_instead_of_loading)
    monkeypatch.setattr(devices, "set_threads", lambda n: None)
    monkeypatch.setattr(commands, "check_out_folder", lambda *a: None)
    for path in sorted((PROBES / "results" / "logit_scale_cpu").glob("*.json")):
        argv = ["train", "--dataset", "cifar10", "--preset", "cpu", "--seed", "0", "--device",
                "cpu", "--no-bars", "--out", "unused"] + mod.options(path.stem)
        with pytest.raises(SystemExit):
            cli.main(argv)
        saved = with_added_fields(json.loads(path.read_text())["config"])
        assert config_differences(saved, made[-1]) == {}, path.stem


def test_fast_recipe_probe_trains_a_warmup_and_skips_done(tmp_path, capsys):
    """A probe trains the variant's warm-up with its schedule, then K ProMix epochs, records
    CSS's first selection, is packed, and is not rerun."""
    import tarfile
    mod = load("fast_recipe_probe")
    from promix_tutorial.config import with_added_fields
    archived = PROBES.parent / "results" / "accuracy_gpu_2026-11-27" / "promix__sym0.8__seed0.json"
    archived = with_added_fields(json.loads(archived.read_text())["config"])
    assert {k: archived[k] for k in mod.SCHEDULE} == mod.VARIANTS["cosine_epoch"]
    res, out = tmp_path / "res", tmp_path / "out"
    args = ["--preset", "tiny", "--variants", "onecycle_lr0.1", "--noises", "sym:0.8", "--set",
            "warmup_epochs=2", "--set", "epochs=4", "--promix-epochs", "1", "--results",
            str(res), "--pack-to", str(out)]
    assert mod.main(args) == 0
    rec = json.loads((res / "onecycle_lr0.1__sym0.8__promix1.json").read_text())
    assert [r["phase"] for r in rec["records"]] == ["warmup", "warmup", "promix"]
    assert rec["records"][0]["lr"] == pytest.approx(0.1 / 25)  # one-cycle starts at lr / 25
    assert 0 < rec["first_css"]["precision"] <= 1 and rec["first_css"]["count"] > 0
    assert rec["command"].startswith("python benchmarks/probes/fast_recipe_probe.py")
    with tarfile.open(out / "probes.tar") as tar:
        assert tar.getnames() == ["fast_recipe_probe/onecycle_lr0.1__sym0.8__promix1.json"]
    assert "after 1 ProMix ep." in (tmp_path / "res.md").read_text()
    capsys.readouterr()
    assert mod.main(args) == 0
    assert capsys.readouterr().out.count("[skip]") == 1
    with pytest.raises(SystemExit):
        mod.main(["--preset", "tiny", "--results", str(res), "--variants", "nope"])


def test_start_warmup_probe_cells_start_from_the_start_with_the_shorter_warmup(tmp_path,
                                                                              monkeypatch):
    mod = load("start_warmup")
    from promix_tutorial.config import start_checksum
    [cell] = mod.cells(5, [1], "cpu-simclr")
    cfg = cell.config
    assert (cfg.warmup_epochs, cfg.seed, cfg.noise, cfg.init) == (5, 1, "sym:0.8", "cpu-simclr")
    assert cfg.init_sha256 == start_checksum("cpu-simclr") and cfg.record_epochs == (4,)
    # from a start the preset's peak rate is 0.01; the folder and command name the rate
    assert cfg.lr == 0.01 and "--warmup 5 --lr 0.01 --seeds 1 --start cpu-simclr" in cell.command
    assert cell.result_path.parent.name == "w5_lr0.01"
    [old] = mod.cells(10, [2], "cpu-simclr", method="ce", lr=0.1)
    assert old.config.lr == 0.1 and old.result_path.parent.name == "w10_lr0.1"
    assert old.command.endswith("--lr 0.1 --seeds 2 --start cpu-simclr --method ce")
    [high] = mod.cells(5, [0], "cpu-simclr", noise="sym:0.9")
    assert high.config.noise == "sym:0.9" and high.name == "promix__sym0.9__seed0"
    assert "--seeds 0 --noise sym:0.9 --start cpu-simclr" in high.command
    # the committed table rebuilds from the committed files
    committed = (mod.RESULTS.parent / "start_warmup.md")
    if committed.is_file():
        assert mod.table() == committed.read_text()
