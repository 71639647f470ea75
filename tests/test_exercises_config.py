"""Tests of the exercise self-check and the notebook profile switch."""
import pytest

from promix_tutorial.profiles import current_profile
from promix_tutorial.exercises import check_answer


def test_check_answer(capsys):
    assert check_answer(None, 0.45, tolerance=0.01, hint="h") is None
    assert "Not answered" in capsys.readouterr().out
    assert check_answer(0.45, 0.4517, tolerance=0.01, hint="h") is True
    assert check_answer(0.6, 0.4517, tolerance=0.01, hint="think of 1/C") is False
    assert "think of 1/C" in capsys.readouterr().out


def test_profile_switch(monkeypatch):
    monkeypatch.setenv("PROMIX_PROFILE", "CI")
    assert current_profile() == "ci"
    monkeypatch.setenv("PROMIX_PROFILE", "laptop")
    with pytest.raises(ValueError, match="gpu, cpu, ci"):
        current_profile()
    monkeypatch.delenv("PROMIX_PROFILE")
    assert current_profile() in ("gpu", "cpu")


def test_ablation_study_configs_per_profile():
    from promix_tutorial.config import ABLATION_LABELS
    from promix_tutorial.profiles import ablation_study_configs

    cpu = ablation_study_configs("cpu")
    assert list(cpu) == list(ABLATION_LABELS.values())
    assert {c.noise for c in cpu.values()} == {"sym:0.8"}          # see profiles.ABLATION_STUDY
    assert {c.init for c in cpu.values()} == {"cpu-simclr"} and {c.lr for c in cpu.values()} == {0.01}
    assert {(c.n_train, c.epochs, c.model) for c in cpu.values()} == {(5000, 35, "fast_cnn")}
    assert [c.ablation for c in cpu.values()] == list(ABLATION_LABELS)
    assert not cpu["w/o Base Selection"].use_css and cpu["ProMix"].use_css
    ci = ablation_study_configs("ci", "sym:0.5")
    assert {c.noise for c in ci.values()} == {"sym:0.5"} and ci["ProMix"].dataset == "digits"
    assert ablation_study_configs("gpu")["ProMix"].noise == "sym:0.8"
    with pytest.raises(ValueError, match="unknown profile"):
        ablation_study_configs("laptop")


def test_figure_noise_per_profile():
    from promix_tutorial.profiles import figure_noise

    from promix_tutorial.profiles import figure_start
    for profile in ("gpu", "cpu", "ci", "reference"):   # the paper's figures: 80% symmetric
        assert figure_noise("fig3", profile) == figure_noise("fig4", profile) == "sym:0.8"
    # at the cpu scale from the shipped self-supervised start, elsewhere from scratch
    assert figure_start("cpu") == {"init": "cpu-simclr"} and figure_start("gpu") == {}
    with pytest.raises(ValueError, match="unknown figure 'fig5'"):
        figure_noise("fig5", "cpu")
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        figure_noise("fig3", "laptop")
