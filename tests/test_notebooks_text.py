"""What a student reads in the notebooks: short markdown cells, no dates or development story, one
setup line instead of a copied profile cell, and no widget output that a reopened notebook could
not show."""
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_MARKDOWN = 1500
DATE = re.compile(r"20\d\d-\d\d-\d\d")
# the project speaks of itself and its users only
STORY = re.compile(r"sandbox|lent (to|a)|device (machine|tool|time)|issue \d+|\.\./shared", re.I)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    """The cell's source and the text of its stored outputs."""
    parts = ["".join(cell["source"])]
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        for value in out.get("data", {}).values():
            if isinstance(value, (str, list)):
                parts.append("".join(value))
    return "\n".join(parts)


def markdown_walls(cells: list[dict]) -> list[str]:
    return [f"cell {i}: {len(''.join(c['source'])):,} characters" for i, c in enumerate(cells)
            if c["cell_type"] == "markdown" and len("".join(c["source"])) > MAX_MARKDOWN]


def dates_and_story(cells: list[dict]) -> list[str]:
    found = []
    for i, c in enumerate(cells):
        text = _text(c)
        found += [f"cell {i}: {m.group(0)!r}" for rx in (DATE, STORY) for m in rx.finditer(text)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_markdown_cell_is_a_wall(path):
    walls = markdown_walls(_cells(path))
    assert not walls, (f"{path.name}: markdown cells over {MAX_MARKDOWN:,} characters (cut history, "
                       f"dates and paths; split the rest): {walls}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_dates_or_development_story(path):
    found = dates_and_story(_cells(path))
    assert not found, f"{path.name}: {found}"


def test_the_checks_find_what_they_look_for():
    cells = [{"cell_type": "markdown", "source": ["x" * (MAX_MARKDOWN + 1)]},
             {"cell_type": "markdown", "source": ["measured on 2026-11-27 in the Sandbox"]},
             {"cell_type": "code", "source": ["print(1)"], "outputs": [
                 {"output_type": "stream", "name": "stdout", "text": ["see Issue 12, ../shared/x"]}]}]
    assert markdown_walls(cells) == [f"cell 0: {MAX_MARKDOWN + 1:,} characters"]
    assert dates_and_story(cells) == ["cell 1: '2026-11-27'", "cell 1: 'Sandbox'",
                                      "cell 2: 'Issue 12'", "cell 2: '../shared'"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_setup_line(path):
    """The profile and runs folder come from `notebook.setup` in one line of the imports cell
    (tests/test_notebook_setup.py tests it), not from a block copied into every notebook."""
    code = ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code"]
    calls = [i for i, s in enumerate(code) if re.search(r"^PROFILE, \w+ = setup\(", s, re.M)]
    assert len(calls) == 1 and calls[0] == 1, f"{path.name}: setup() calls in code cells {calls}"
    for s in code:
        assert not re.search(r"\b(current_profile|notebook_runs_dir)\(", s), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_widget_output(path):
    """A widget output saved without its kernel shows "Error displaying widget: model not found"
    when the notebook is opened; the committed notebooks hold none (nor widget state)."""
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {}), path.name
    for i, c in enumerate(nb["cells"]):
        for out in c.get("outputs", []):
            assert WIDGET_VIEW not in out.get("data", {}), f"{path.name} cell {i}"
