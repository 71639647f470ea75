"""`promix sweep` and the one cell runner (promix_tutorial/sweep.py) on the tiny preset, a few
epochs each: submitit's LocalExecutor (two jobs) and, in this process, its DebugExecutor (the
inline launcher); SLURM as the parameters and the sbatch script it builds (a fake sbatch)."""
import os
from pathlib import Path

import pytest

from promix_tutorial import cli
from promix_tutorial import cells as cl, sweep as sw
from promix_tutorial.runs import RunHistory

SHORT = ["--set", "epochs=3", "--set", "warmup_epochs=1", "--set", "lga_start=2",
         "--set", "gamma_ramp_epochs=1", "--set", "unlabeled_ramp_epochs=1",
         "--set", "n_train=500"]
GRID = ["sweep", "--preset", "tiny", "--noise", "sym:0.5", "sym:0.8", "--methods", "promix",
        "ce", "--no-bars"] + SHORT
CELLS = ["promix__sym0.5__seed0", "ce__sym0.5__seed0", "promix__sym0.8__seed0",
         "ce__sym0.8__seed0"]


def mtimes(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_grid_on_two_local_jobs_rerun_skips_and_a_failed_job_names_its_log(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = GRID + ["--launcher", "local", "--jobs", "2", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "4 cells, 4 to run, on 2 local job(s) x" in printed
    assert sorted(line.split()[1].rstrip(":") for line in printed.splitlines()
                  if line.startswith("[done]")) == sorted(CELLS)
    assert "(4/4)" in printed and "| CE |" in printed and "| ProMix |" in printed
    assert sorted(p.stem for p in (out / "results").iterdir()) == sorted(CELLS)
    for name in CELLS:
        assert len(RunHistory(out / name)) == 3
    assert (out / "sweep.json").is_file() and "| ProMix |" in (out / "table.md").read_text()
    assert len(list((out / "logs").glob("*_log.out"))) == 2  # one job per lane

    # the same command again: nothing runs, nothing is rewritten; --table, --list neither
    before = mtimes(out)
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert [line.split()[1] for line in printed.splitlines()
            if line.startswith("[skip]")] == [f"{c}:" for c in CELLS]
    assert "[done]" not in printed and "0 to run" in printed
    assert cli.main(["sweep", "--table", str(out)]) == 0
    assert "| CE |" in capsys.readouterr().out
    assert cli.main(args + ["--list"]) == 0
    assert capsys.readouterr().out.count("done  ") == 4
    # another grid in the same folder is refused in one line
    assert cli.main(GRID + ["--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "describes another sweep" in err and "seeds" in err and len(err.splitlines()) == 1
    assert mtimes(out) == before

    # a cell whose checkpoint is broken fails in its job; the report names the job's log
    (out / "results" / "ce__sym0.8__seed0.json").unlink()
    (out / "ce__sym0.8__seed0" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert cli.main(args) == 1
    printed = capsys.readouterr().out
    fail = [line for line in printed.splitlines() if line.startswith("[fail]")]
    assert len(fail) == 1 and fail[0].startswith("[fail] ce__sym0.8__seed0: ")
    log = Path(fail[0].split("; log: ")[1])
    assert log.parent == out / "logs" and "Traceback" in log.read_text()
    assert printed.count("[skip]") == 3 and "1 failed" in printed


def test_failed_cell_is_reported_and_the_rerun_resumes_it(tmp_path, capsys, monkeypatch):
    """Inline (submitit's DebugExecutor, in this process): the CE cell is killed in its third
    epoch; the ProMix cell still finishes. The same command again skips ProMix and continues CE
    from its checkpoint: its first two epochs are kept, not retrained."""
    from promix_tutorial.engine import Trainer

    real = Trainer.run_epoch

    def killed(self, epoch):
        if self.cfg.method == "ce" and epoch == 2:
            raise RuntimeError("killed in epoch 3")
        return real(self, epoch)

    out = tmp_path / "sweep"
    args = ["sweep", "--preset", "tiny", "--methods", "promix", "ce", "--launcher", "inline",
            "--no-bars", "--out", str(out)] + SHORT
    monkeypatch.setattr(Trainer, "run_epoch", killed)
    assert cli.main(args) == 1
    printed = capsys.readouterr()
    assert ("[fail] ce__sym0.5__seed0: RuntimeError: killed in epoch 3; traceback above"
            in printed.out)
    assert "[done] promix__sym0.5__seed0" in printed.out and "Traceback" in printed.err
    first = RunHistory(out / "ce__sym0.5__seed0").records
    assert len(first) == 2

    monkeypatch.setattr(Trainer, "run_epoch", real)
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "[skip] promix__sym0.5__seed0: results file exists" in printed
    assert "epoch   3/3" in printed and "epoch   1/3" not in printed  # resumed, not restarted
    records = RunHistory(out / "ce__sym0.5__seed0").records
    assert len(records) == 3 and records[:2] == first


@pytest.mark.parametrize("args,needle", [
    (["--noise", "sym:1.5"], "sym:1.5"),
    (["--ablations", "no_magic"], "no_magic"),
    (["--preset", "huge"], "huge"),
    (["--seeds", "0", "-1"], "-1"),
    (["--set", "seed=3"], "--set seed"),
    (["--set", "tau=2"], "TrainConfig.tau"),
    (["--launcher", "cluster"], "cluster"),
    (["--jobs", "0"], "--jobs"),
])
def test_bad_grid_values_fail_in_one_line_before_anything_is_written(tmp_path, capsys, args,
                                                                   needle):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--preset", "tiny", "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_local_plan_and_lanes():
    assert cl.local_plan(10, 2) == (2, 1)              # as many jobs as cores, 1 thread each
    assert cl.local_plan(3, 16) == (3, 5)              # never more jobs than cells
    assert cl.local_plan(10, 16, threads=4) == (4, 4)
    assert cl.local_plan(10, 16, jobs=2) == (2, 8)
    assert cl.local_plan(10, 16, cuda_devices=1) == (1, 16)
    cells = sw.sweep_cells(sw.Sweep(presets=("tiny",), noises=("sym:0.5", "sym:0.8"),
                                    methods=("promix", "ce")), "out")
    lanes = cl.plan_lanes(cells, cl.Launcher("local", jobs=2))
    # each lane gets one ProMix and one CE cell, in the grid's order
    assert [[c.name for c in lane] for lane in lanes] == [
        ["promix__sym0.5__seed0", "ce__sym0.5__seed0"],
        ["promix__sym0.8__seed0", "ce__sym0.8__seed0"]]
    assert cl.plan_lanes(cells, cl.Launcher("slurm")) == [[c] for c in cells]


@pytest.mark.parametrize("visible, seen", [(None, "0"), ("GPU-5f2e,3", "GPU-5f2e,3")])
def test_local_jobs_see_the_gpus_of_the_sweep(tmp_path, monkeypatch, visible, seen):
    """submitit's LocalExecutor hides every GPU from its jobs unless told (it sets
    CUDA_VISIBLE_DEVICES to ''): on a GPU machine the local launcher passes them on, as this
    process sees them (a pretend GPU here: a job reports its CUDA_VISIBLE_DEVICES)."""
    import functools
    import torch
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    argv = ["sweep", "--preset", "tiny", "--out", str(tmp_path / "out"), "--launcher", "local",
            "--jobs", "2"]
    launcher = cl.launcher_from_args(cli.build_parser().parse_args(argv), [], tmp_path / "logs")
    with cl.executor_for(launcher) as ex:
        job = ex.submit(functools.partial(os.getenv, "CUDA_VISIBLE_DEVICES"))
    assert job.result() == seen
    assert cl.local_gpu_parameters(0) == {}


def test_several_presets_get_a_folder_each():
    cells = sw.sweep_cells(sw.Sweep(presets=("tiny", "cpu"), seeds=(0, 1)), "out")
    assert [c.label for c in cells] == [
        "tiny__digits/promix__sym0.5__seed0", "tiny__digits/promix__sym0.5__seed1",
        "cpu__cifar10/promix__sym0.5__seed0", "cpu__cifar10/promix__sym0.5__seed1"]
    assert cells[2].results_dir == Path("out/cpu__cifar10/results")
    with pytest.raises(ValueError, match="same run"):  # tiny trains digits for both
        sw.sweep_cells(sw.Sweep(presets=("tiny",), datasets=("cifar10", "cifar100")), "out")


def test_slurm_parameters_reach_the_sbatch_script(tmp_path, monkeypatch, capsys):
    """The options become submitit parameters (a pure function), and submitit writes them into
    the sbatch script of one array over the cells (fake srun/sbatch: no cluster here)."""
    params = cl.slurm_parameters(partition="gpu", gpus_per_job=1, time_min=90,
                                 array_parallelism=2, threads=4, name="promix-sweep")
    assert params == {"name": "promix-sweep", "timeout_min": 90, "gpus_per_node": 1,
                      "cpus_per_task": 4, "tasks_per_node": 1, "nodes": 1,
                      "stderr_to_stdout": True, "slurm_partition": "gpu",
                      "slurm_array_parallelism": 2}
    argv = ["sweep", "--preset", "fast", "--out", str(tmp_path / "out"), "--launcher", "slurm",
            "--partition", "gpu", "--time-min", "90", "--array-parallelism", "2"]
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM here: refused before anything is written
    assert cli.main(argv) == 2 and not (tmp_path / "out").exists()
    assert "no srun/sbatch" in capsys.readouterr().err

    bin_dir = tmp_path / "bin"  # a fake one: srun exists, sbatch keeps the script it is given
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/sbatch.sh\n'
                                    'echo "Submitted batch job 4242"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path}")
    cells = sw.sweep_cells(sw.Sweep(presets=("fast",), noises=("sym:0.5", "sym:0.8"),
                                    seeds=(0, 1)), tmp_path / "out")
    launcher = cl.launcher_from_args(cli.build_parser().parse_args(argv), cells,
                                     tmp_path / "logs", gpus=1)
    assert launcher.kind == "slurm" and launcher.threads == 4 and launcher.parameters == params
    lanes = cl.plan_lanes(cells, launcher)
    with cl.executor_for(launcher) as ex:
        jobs = ex.map_array(cl.LaneJob(), lanes, [launcher.threads] * 4, [True] * 4)
    assert [j.job_id for j in jobs] == [f"4242_{k}" for k in range(4)]
    script = (tmp_path / "sbatch.sh").read_text()
    for line in ("--job-name=promix-sweep", "--partition=gpu", "--gpus-per-node=1",
                 "--cpus-per-task=4", "--time=90", "--array=0-3%2", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}\n" in script, line


def test_sweep_help_imports_neither_torch_nor_submitit():
    import subprocess
    import sys
    code = ("import sys; from promix_tutorial import cli\n"
            "try: cli.build_parser().parse_args(['sweep', '--help'])\n"
            "except SystemExit: pass\n"
            "print('torch' in sys.modules, 'submitit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--array-parallelism" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_sigterm_to_a_local_sweep_stops_its_jobs(tmp_path):
    """`kill PID` of a local sweep cancels its jobs as Ctrl-C does (submitit's local jobs ignore
    the SIGTERM of their parent; before `sigterm_as_interrupt` they trained on)."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "sweep"
    args = ["sweep", "--preset", "tiny", "--noise", "sym:0.5", "--methods", "ce", "--no-bars",
            "--set", "epochs=300", "--launcher", "local", "--jobs", "1", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    sweep = subprocess.Popen([sys.executable, "-m", "promix_tutorial.cli", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "ce__sym0.5__seed0" / "history.json"
    deadline = time.monotonic() + 300
    while not history.is_file():  # the job trains: its first epoch is written
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)

    def jobs_alive() -> bool:  # the job processes run with the sweep's logs folder as argument
        found = subprocess.run(["pgrep", "-f", str(out / "logs")], capture_output=True, text=True)
        return bool(found.stdout.split())

    try:
        assert jobs_alive()
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=60) != 0
        deadline = time.monotonic() + 60
        while jobs_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not jobs_alive()
        assert len(RunHistory(out / "ce__sym0.5__seed0")) < 300   # stopped, not finished
    finally:  # a failure here must not leave a training behind
        sweep.kill()
        subprocess.run(["pkill", "-9", "-f", str(out / "logs")])
