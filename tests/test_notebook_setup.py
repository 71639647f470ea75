"""promix_tutorial.notebook: the one setup line of every notebook, a notebook's runs with one line
each (a missing reference run is one line too, and the notebook goes on with the others), one
line for all their warnings, and tables rounded for reading."""
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from promix_tutorial import notebook as N
from promix_tutorial import reference as R
from promix_tutorial.profiles import profile_config
from promix_tutorial.runs import RunHistory, save_json

REPO = Path(__file__).resolve().parent.parent


def test_setup_prints_one_line_and_returns_profile_and_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PROMIX_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PROMIX_PROFILE", "cpu")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # the threads are chosen as `promix train` does
    profile, runs = N.setup()
    assert (profile, runs) == ("cpu", tmp_path / "runs" / "cpu")
    n = profile_config("cpu").n_train
    assert capsys.readouterr().out == (f"profile: cpu (cpu preset, {n:,} CIFAR-10 training "
                                       f"images) | runs in {tmp_path / 'runs' / 'cpu'} | "
                                       "1 CPU thread\n")
    monkeypatch.setenv("PROMIX_PROFILE", "reference")
    assert N.setup() == ("reference", tmp_path / "runs" / "reference")   # not made: nothing trains
    assert capsys.readouterr().out == ("profile: reference (full-scale GPU runs shipped with the "
                                       "repository, read, never trained here)\n")
    assert not (tmp_path / "runs").exists()
    monkeypatch.setenv("PROMIX_PROFILE", "gpu")
    assert N.setup(runs=False) == ("gpu", None)
    assert capsys.readouterr().out == "profile: gpu (fast preset, all of CIFAR-10)\n"
    monkeypatch.setenv("PROMIX_PROFILE", "laptop")
    with pytest.raises(ValueError, match="PROMIX_PROFILE='laptop' is not a profile"):
        N.setup()


def test_setup_in_ci_uses_a_folder_removed_with_the_kernel(tmp_path):
    """In `ci` the runs go to a temporary folder that disappears when the process ends."""
    code = ("from promix_tutorial.notebook import setup\n"
            "p, runs = setup(); (runs / 'x').write_text('1'); print('RUNS', runs)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PROMIX_PROFILE": "ci", "PATH": ""}, cwd=tmp_path, check=True)
    first, second = done.stdout.splitlines()
    assert re.fullmatch(r"profile: ci \(tiny preset, the 8x8 digits\) \| runs in "
                        r"\S+promix-ci-\S+ \(removed when the kernel exits\) \| 1 CPU thread", first), first
    assert not Path(second.split(" ", 1)[1]).exists()


# ----------------------------------------------------------------------------- runs

def _fake_run(folder: Path, cfg, accs=(0.5, 0.6, 0.55), warnings_at=(), selection=True) -> Path:
    """A finished run folder of ``cfg`` whose records hold what the notebooks read."""
    recs = []
    for e, acc in enumerate(accs):
        rec = {"epoch": e, "phase": "promix", "test_acc": acc, "seconds": 30.0,
               "images_per_s": 1234.56}
        if selection:
            rec["selection"] = {"union": {"f1": 0.8123}, "labeled": {"count": 1500}}
        if e in warnings_at:
            rec["warnings"] = [f"epoch {e + 1}: network {k} had an empty labeled set (why); its "
                               "labeled loss terms were zero." for k in (1, 2)]
        recs.append(rec)
    config = json.loads(json.dumps(cfg.to_dict()))
    save_json(folder / "config.json", config)
    save_json(folder / "history.json", {"config": config, "info": {"n_train": 50_000},
                                        "epochs": recs})
    return folder


def test_warnings_summary_is_one_line(tmp_path):
    cfg = profile_config("ci", "sym:0.8")
    runs = {"ProMix": RunHistory(_fake_run(tmp_path / "p", cfg)),
            "w/o Base Selection": RunHistory(_fake_run(tmp_path / "b", cfg, warnings_at=(1, 2)))}
    line = N.warnings_summary(runs)
    assert "\n" not in line and line.startswith("warnings: w/o Base Selection 4 (epochs 2-3); ")
    assert "e.g. network 1 had an empty labeled set (why)" in line and "ProMix" not in line
    assert N.warnings_summary({"ProMix": runs["ProMix"]}) is None


def test_a_missing_reference_run_is_one_line_and_the_others_are_read(tmp_path, monkeypatch,
                                                                     capsys):
    """In the reference profile a notebook gets the runs that are shipped, one line per run,
    and one line naming the missing ones with the command that makes them; no traceback."""
    short = dict(epochs=3, warmup_epochs=1, lga_start=2)   # three records below
    promix = profile_config("reference", "sym:0.8", **short)
    no_dbr = profile_config("reference", "sym:0.8", ablation="no_dbr", **short)
    ref = tmp_path / "reference"
    R.export_reference(_fake_run(tmp_path / "run", promix, warnings_at=(2,)),
                       "promix__sym0.8__seed0", dest=ref, command="test", epochs=())
    monkeypatch.setenv("PROMIX_REFERENCE_DIR", str(ref))
    runs = N.notebook_runs("reference", {"ProMix": promix, "w/o DBR": no_dbr}, None)
    assert list(runs) == ["ProMix"] and isinstance(runs["ProMix"], R.ReferenceRun)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("no reference run yet for: w/o DBR (no_dbr__sym0.8__seed0); make them on "
                        "a GPU with `python benchmarks/accuracy_gpu.py --cells "
                        "no_dbr__sym0.8__seed0` (then `python -m promix_tutorial.reference`).")
    assert lines[1] == " ProMix: last 55.00%, best 60.00%"   # aligned with "w/o DBR"
    assert lines[2].startswith("warnings: ProMix 2 (epoch 3); ") and len(lines) == 3
    assert N.notebook_runs("reference", {"w/o DBR": no_dbr}, None) == {}
    assert capsys.readouterr().out.count("\n") == 1


def test_runs_table_is_rounded_for_reading(tmp_path):
    cfg = profile_config("ci", "sym:0.5")
    runs = {"ProMix": RunHistory(_fake_run(tmp_path / "p", cfg, accs=(0.51234, 0.61789))),
            "CE": RunHistory(_fake_run(tmp_path / "c", cfg.replace(method="ce"),
                                       accs=(0.4, 0.38), selection=False))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no library warning (e.g. pandas' FutureWarning)
        table = N.runs_table(runs, "method", paper={"ProMix": 97.3}, paper_column="paper")
    assert table.index.name == "method" and list(table.index) == ["ProMix", "CE"]
    assert table.loc["ProMix"].to_dict() == {
        "last acc (%)": "61.8", "best acc (%)": "61.8", "selection F1": "0.81",
        "labeled (last epoch)": "1,500", "train minutes": "1.0", "images/s": "1,235",
        "paper": "97.30"}
    assert table.loc["CE", "selection F1"] == "-" and table.loc["CE", "paper"] == "-"
    assert table.loc["CE", "best acc (%)"] == "40.0"


def test_rule_run_configs_tune_each_rule_once_from_the_promix_run():
    """Notebook 02's Fig. 3 rule runs: each rule's config carries the value with the best mean
    F1 over the epochs where ProMix selected; other fields as the profile's config."""
    from types import SimpleNamespace
    from promix_tutorial.metrics import FORGET_RATES, GMM_THRESHOLDS

    def grid(values, best):
        return [1.0 if v == best else 0.5 for v in values]
    recs = [{"baselines": {"gmm": {"f1_grid": grid(GMM_THRESHOLDS, 0.9)},
                           "small_loss": {"f1_grid": grid(FORGET_RATES, 0.9)}}},  # warm-up
            *[{"selection": {}, "baselines": {"gmm": {"f1_grid": grid(GMM_THRESHOLDS, 0.7)},
                                              "small_loss": {"f1_grid": grid(FORGET_RATES, 0.3)}}}
              for _ in range(2)]]
    configs = N.rule_run_configs("ci", SimpleNamespace(records=recs), "sym:0.8", seed=3)
    assert list(configs) == ["GMM rule (DivideMix)", "small-loss rule"]
    gmm, small = configs.values()
    assert (gmm.selection, gmm.gmm_threshold, small.selection, small.forget_rate) == \
        ("gmm", 0.7, "small_loss", 0.3)
    assert gmm.replace(selection="promix", gmm_threshold=small.gmm_threshold, use_mhcs=True) == \
        profile_config("ci", "sym:0.8", seed=3)
    assert N.rule_run_configs("ci", SimpleNamespace(records=[{"selection": {}}]), "sym:0.8") == {}
