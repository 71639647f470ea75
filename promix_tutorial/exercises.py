"""Self-checks for the notebooks' exercises: each compares the reader's answer with a value
the package computes, and prints a hint instead of the answer."""
from __future__ import annotations


def check_answer(answer, expected: float, *, tolerance: float, hint: str) -> bool | None:
    """Print whether ``answer`` is within ``tolerance`` of ``expected``.

    Returns None (and says so) when the reader has not answered yet (``answer is None``), so a
    notebook run top to bottom never fails on an open exercise.
    """
    if answer is None:
        print("Not answered yet: set the variable above and run this cell again.")
        return None
    ok = abs(float(answer) - float(expected)) <= tolerance
    print("Correct!" if ok else f"Not quite ({answer}). Hint: {hint}")
    return ok
