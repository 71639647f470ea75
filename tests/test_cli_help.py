"""The command line explains itself: help texts with defaults and the noise grammar, errors that
name what to fix before any work, the thread count in the header, where a resumed run
continues; and README's Python example runs as written."""
import re
from pathlib import Path

import pytest

from promix_tutorial import cli
from promix_tutorial.devices import choose_threads

REPO = Path(__file__).resolve().parent.parent
TINY = ["train", "--dataset", "digits", "--noise", "sym:0.5", "--preset", "tiny", "--no-bars",
        "--set", "warmup_epochs=1", "--set", "lga_start=2"]


def test_bare_promix_lists_every_command_with_one_line(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for name, line in cli.COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(line[:30])}", out, re.M), name
    assert "promix COMMAND --help" in out


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_help_has_a_description_and_shows_defaults(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert len(description) > 40, f"promix {command} --help has no description"
    if command in ("noise", "train", "sweep"):
        assert "sym:R" in out and "human:SET" in out and "pairflip:R" in out  # the grammar
        assert "default: sym:0.5)" in " ".join(out.split())


def test_train_help_names_the_defaults_of_epochs_seed_and_threads(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS default: the preset's" in out
    assert "--seed SEED seed of the noise" in out and "(default: 0)" in out
    assert "--threads THREADS CPU threads for PyTorch" in out


@pytest.mark.parametrize("pair,needle", [
    ("rho=abc", "--set 'rho=abc': rho takes a number, not 'abc'"),
    ("epochs=1.5", "epochs takes an integer, not '1.5'"),
    ("use_lga=maybe", "use_lga takes true or false"),
    ("model_widths=a,b", "model_widths takes comma-separated integers"),
])
def test_set_errors_name_the_field_and_its_type(tmp_path, capsys, pair, needle):
    assert cli.main(TINY + ["--out", str(tmp_path / "r"), "--set", pair]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_a_missing_arrays_file_names_the_variable_before_the_header(tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.setenv("PROMIX_CIFAR10_NPZ", str(tmp_path / "missing.npz"))
    argv = ["train", "--dataset", "cifar10", "--preset", "cpu", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "$PROMIX_CIFAR10_NPZ" in captured.err and "missing.npz" in captured.err
    assert "promix train:" not in captured.out  # no header before the data is there
    assert cli.main(argv[:2] + [str(tmp_path / "nothing.npz")] + argv[3:]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_header_says_the_threads(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cli.main(TINY + ["--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("promix train: promix preset=tiny")
    assert "threads=1 (the tiny preset's default)" in header


def test_resume_prints_the_epoch_it_continues_from(tmp_path, capsys, monkeypatch):
    from promix_tutorial import engine
    out = tmp_path / "run"
    original = engine.Trainer.run_epoch

    def stop_after_first(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(engine.Trainer, "run_epoch", stop_after_first)
    assert cli.main(TINY + ["--epochs", "3", "--out", str(out)]) == 130
    monkeypatch.setattr(engine.Trainer, "run_epoch", original)
    capsys.readouterr()
    assert cli.main(TINY + ["--epochs", "3", "--out", str(out), "--resume"]) == 0
    assert f"resuming at epoch 2 of 3 from {out}" in capsys.readouterr().out


def test_thread_choice(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads("tiny") == (1, "the tiny preset's default")
    assert choose_threads("cpu", 3) == (3, "--threads")
    n, why = choose_threads("cpu")
    assert n >= 1 and "cores free" in why
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads("tiny") == (2, "OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        choose_threads("cpu")
    with pytest.raises(ValueError, match="--threads"):
        choose_threads("cpu", 0)


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.+?)```", text, re.S)
    assert blocks, "README.md has no Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert (tmp_path / "runs").is_dir()
