"""Tests of the noise figures and the `promix noise` command."""
import numpy as np
import pytest

from promix_tutorial import cli
from promix_tutorial.data import load_digits
from promix_tutorial.noise import inject_noise
from promix_tutorial.plots import plot_noisy_examples, plot_transition_matrix


def test_transition_heatmap_draws_the_matrix():
    ds = load_digits()
    noisy = inject_noise(ds.y_train, "sym:0.5", 10, seed=0)
    ax = plot_transition_matrix(noisy, ds.classes)
    drawn = ax.collections[0].get_array().reshape(10, 10)
    np.testing.assert_allclose(drawn, noisy.transition_matrix * 100)
    assert "sym:0.5" in ax.get_title()


def test_noisy_examples_grid_marks_wrong_labels():
    ds = load_digits()
    noisy = inject_noise(ds.y_train, "sym:0.8", 10, seed=0)
    fig = plot_noisy_examples(ds.x_train, noisy, ds.classes, n=16)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titles) == 16 and sum("->" in t for t in titles) == 8


def test_cli_noise_report(capsys):
    assert cli.main(["noise", "--dataset", "digits", "--noise", "sym:0.5", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "dataset digits: 1347 train" in out and "actual noise rate" in out


def test_cli_bad_input_is_one_clear_line(capsys):
    assert cli.main(["noise", "--dataset", "digits", "--noise", "sym:2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("promix noise: error:") and "Traceback" not in err


def test_cli_human_worst(capsys, cifar_n_dir, cifar10_npz):
    assert cli.main(["noise", "--dataset", "cifar10", "--noise", "human:worst",
                     "--cifar-n", str(cifar_n_dir)]) == 0
    assert "actual noise rate 40.21%" in capsys.readouterr().out


def test_cli_help_does_not_import_torch():
    """`promix --help` and `promix train --help` answer without importing torch (seconds)."""
    import subprocess
    import sys
    code = ("import sys; from promix_tutorial import cli\n"
            "for args in (['--help'], ['train', '--help']):\n"
            "    try: cli.build_parser().parse_args(args)\n"
            "    except SystemExit: pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
