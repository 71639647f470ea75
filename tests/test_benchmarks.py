"""Smoke tests of the benchmark scripts (they print figures; nothing here is timed)."""
import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
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
    main = [c for c, kw in cells.items() if "ablation" not in kw]
    assert len(main) == 4 * 2 * 2  # 4 noise settings x CE/ProMix x 2 seeds
    assert len(mod.select(["ablations"])) == 6
    assert "promix__humanworst__seed1" in cells and "no_dbr__sym0.8__seed0" in cells
    with pytest.raises(SystemExit):
        mod.select(["nonsense"])


def test_selection_f1_writes_series_and_figure(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    assert load("selection_f1").main(["--preset", "tiny", "--epochs", "4", "--runs",
                                      str(tmp_path / "runs"), "--out", str(out)]) == 0
    res = json.loads((out / "selection_f1_tiny_sym80_seed0.json").read_text())
    s = res["series"]
    assert s["epoch"] == [1, 2, 3, 4] and len(s["gmm_tuned"]) == 4
    assert 0 < s["promix_css_mhcs"][-1] <= 1 and 0 < s["gmm_tuned"][-1] <= 1
    assert (out / "selection_f1_tiny_sym80_seed0.png").stat().st_size > 1000
    assert "last epoch F1" in capsys.readouterr().out


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
    assert [line.split(":")[0].strip() for line in lines] == ["ProMix", "w/o Base Selection"]
    assert all("F1" in line and "labeled" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "ci" / "sym0.8").iterdir()) == ["no_base_selection", "none"]
