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
