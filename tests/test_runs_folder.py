"""One runs folder for the command line and the notebooks (issue 15.3): `runs.runs_root` and
the reuse of a finished run of the same config by `train.train_or_load`."""
import json
import os
import shutil
from pathlib import Path

import pytest

from promix_tutorial import devices, engine, runs
from promix_tutorial.config import make_config
from promix_tutorial.runs import runs_root
from promix_tutorial.runs import RunHistory
from promix_tutorial.reference import notebook_run

REPO = Path(__file__).resolve().parent.parent


def short(**kw):
    """A tiny-preset config of a few seconds: 3 epochs on a digits subset."""
    base = dict(epochs=3, warmup_epochs=1, lga_start=2, gamma_ramp_epochs=1,
                unlabeled_ramp_epochs=1, n_train=400, n_test=200, record_epochs=(0,))
    base.update(kw)
    return make_config("tiny", "digits", "sym:0.5", **base)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A finished run in ROOT/cli_run, as `promix train --out ROOT/cli_run` leaves it."""
    root = tmp_path_factory.mktemp("runs")
    cfg = short()
    engine.train(cfg, root / "cli_run", progress=False)
    return cfg, root / "cli_run"


@pytest.fixture
def root(cli_run, tmp_path):
    """A runs folder holding a copy of the finished run (tests may add to it)."""
    dest = tmp_path / "runs"
    shutil.copytree(cli_run[1], dest / "cli_run")
    return dest


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- runs_root

def test_runs_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMIX_RUNS_DIR", "~/my_runs")
    assert runs_root() == Path.home() / "my_runs"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMIX_RUNS_DIR", "shared/runs")   # relative: made absolute
    assert runs_root() == tmp_path / "shared" / "runs" and runs_root().is_absolute()


def test_runs_root_of_a_checkout_and_of_an_install(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMIX_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)                  # the working directory does not matter...
    assert runs_root() == REPO / "runs"          # ...in a source checkout (this one)
    checkout = tmp_path / "clone"
    (checkout / "promix_tutorial").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'promix-tutorial'\n")
    monkeypatch.setattr(runs, "__file__", str(checkout / "promix_tutorial" / "runs.py"))
    assert runs_root() == checkout / "runs"
    # installed from a wheel (site-packages has no pyproject.toml): the working directory's runs/
    site = tmp_path / "venv" / "lib" / "site-packages"
    (site / "promix_tutorial").mkdir(parents=True)
    monkeypatch.setattr(runs, "__file__", str(site / "promix_tutorial" / "runs.py"))
    work = tmp_path / "content"
    work.mkdir()
    monkeypatch.chdir(work)
    assert runs_root() == work / "runs"


# ----------------------------------------------------------------------------- reuse

def test_a_finished_run_elsewhere_in_the_runs_folder_is_loaded_not_retrained(root, capsys):
    cfg, before = short(), _listing(root)
    out = root / "cpu" / "other"
    run = engine.train_or_load(cfg, out, search_root=root)
    assert run.out_dir == root / "cli_run" and len(run) == cfg.epochs
    assert run.records == RunHistory(root / "cli_run").records
    assert _listing(root) == before and not out.exists()     # nothing trained or written
    assert capsys.readouterr().out == (f"using the finished run {root / 'cli_run'} (same config) "
                                       f"instead of training into {out}\n")
    # load=True (LOAD_FINISHED_RUNS in the notebooks) finds it the same way
    assert engine.train_or_load(cfg, out, load=True, search_root=root).out_dir == root / "cli_run"


def test_the_default_search_root_is_runs_root(root, monkeypatch, capsys):
    monkeypatch.setenv("PROMIX_RUNS_DIR", str(root))
    # what a notebook calls: RUNS = runs_root() / PROFILE; fields that do not change results
    # (device, eval batch size, which epochs' arrays are saved) do not matter
    cfg = short().replace(device="cpu", eval_batch_size=512, record_epochs=())
    run = notebook_run("cpu", cfg, runs_root() / "cpu", "promix_sym50")
    assert run.out_dir == root / "cli_run" and "using the finished run" in capsys.readouterr().out


def test_a_run_of_another_config_is_not_reused(root, capsys):
    for changed in (dict(seed=1), dict(rho=0.3), dict(noise="sym:0.2"), dict(method="ce"),
                    dict(epochs=4, record_epochs=())):
        cfg = short().replace(**changed)
        assert runs.find_finished_run(cfg, root) is None, changed
        with pytest.raises(FileNotFoundError):   # load=True: no training, nothing found
            engine.train_or_load(cfg, root / "cpu" / "other", load=True, search_root=root)
    # per-sample arrays of an epoch the run did not save: not reused (a notebook reads them)
    assert runs.find_finished_run(short(record_epochs=(1,)), root) is None
    assert capsys.readouterr().out == ""


def test_an_unfinished_run_is_not_reused(cli_run, tmp_path):
    cfg, src = cli_run
    part = Path(shutil.copytree(src, tmp_path / "runs" / "part"))
    hist = json.loads((part / "history.json").read_text())
    hist["epochs"] = hist["epochs"][:-1]
    (part / "history.json").write_text(json.dumps(hist))
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "config.json").write_text("{not json")
    assert runs.find_finished_run(cfg, tmp_path / "runs") is None
    with pytest.raises(FileNotFoundError):
        engine.train_or_load(cfg, tmp_path / "runs" / "cpu" / "x", load=True,
                        search_root=tmp_path / "runs")


def test_no_reuse_with_custom_data_or_outside_the_runs_folder(root, tmp_path, capsys):
    cfg = short()
    data = devices.prepare_data(cfg)   # the same data, but a config cannot prove that
    with pytest.raises(FileNotFoundError):
        engine.train_or_load(cfg, root / "cpu" / "custom", load=True, data=data, search_root=root)
    with pytest.raises(FileNotFoundError):   # e.g. the ci profile's temporary folder
        engine.train_or_load(cfg, tmp_path / "elsewhere", load=True, search_root=root)
    assert capsys.readouterr().out == ""


def test_a_run_in_out_dir_comes_first(root, tmp_path, capsys):
    cfg = short()
    own = Path(shutil.copytree(root / "cli_run", root / "cpu" / "mine"))
    os.utime(root / "cli_run" / "history.json")   # the other one finished later
    assert engine.train_or_load(cfg, own, load=True, search_root=root).out_dir == own
    assert engine.train_or_load(cfg, own, search_root=root).out_dir == own   # finished: loaded
    assert capsys.readouterr().out == ""


def test_several_matches_the_most_recently_finished_then_by_path(root):
    cfg = short()
    for name in ("a", "b/deeper"):
        shutil.copytree(root / "cli_run", root / name)
    t = os.stat(root / "cli_run" / "history.json").st_mtime
    for name in ("a", "b/deeper", "cli_run"):
        os.utime(root / name / "history.json", (t, t))
    assert runs.find_finished_run(cfg, root) == root / "a"     # same time: first by path
    os.utime(root / "b" / "deeper" / "history.json", (t + 60, t + 60))
    assert runs.find_finished_run(cfg, root) == root / "b" / "deeper"


def test_the_search_is_bounded(cli_run, tmp_path):
    cfg, src = cli_run
    deep = tmp_path / "runs" / Path(*["d"] * (runs.SEARCH_DEPTH + 1)) / "run"
    shutil.copytree(src, deep)
    shutil.copytree(src, tmp_path / "runs" / ".hidden" / "run")
    assert runs.find_finished_run(cfg, tmp_path / "runs") is None
    shutil.copytree(src, tmp_path / "runs" / Path(*["d"] * (runs.SEARCH_DEPTH - 1)) / "run")
    assert runs.find_finished_run(cfg, tmp_path / "runs") is not None
    assert runs.find_finished_run(cfg, tmp_path / "missing") is None


def test_the_command_line_says_whether_the_notebooks_will_find_its_run(monkeypatch, tmp_path):
    from promix_tutorial.commands import next_steps
    monkeypatch.setenv("PROMIX_RUNS_DIR", str(tmp_path / "runs"))
    inside = next_steps(short(), str(tmp_path / "runs" / "cpu_sym50"))
    assert inside.endswith("a notebook asking for this config loads this run instead of training it")
    outside = next_steps(short(), str(tmp_path / "elsewhere"))
    assert outside.endswith(f"the notebooks look for finished runs in {tmp_path / 'runs'}, not here")


def test_notebook_runs_dir(monkeypatch, tmp_path):
    """Notebooks keep runs in runs_root()/PROFILE; the ci profile's temporary folder is gone
    once the kernel (here: a Python process) exits."""
    import subprocess
    import sys
    from promix_tutorial.profiles import notebook_runs_dir
    monkeypatch.setenv("PROMIX_RUNS_DIR", str(tmp_path / "r"))
    assert notebook_runs_dir("cpu") == tmp_path / "r" / "cpu"
    code = ("from promix_tutorial.profiles import notebook_runs_dir\n"
            "d = notebook_runs_dir('ci'); (d / 'run').mkdir(); (d / 'run' / 'x').write_text('1')\n"
            "print(d)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    folder = Path(out.stdout.strip())
    assert folder.name.startswith("promix-ci-") and not folder.exists()
