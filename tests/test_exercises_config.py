"""Tests of the exercise self-check and the notebook profile switch."""
import pytest

from promix_tutorial.config import current_profile
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
