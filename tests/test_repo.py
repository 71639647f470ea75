"""Repository conventions: CI runs README's test command, notebooks are stripped and follow
the conventions of DESIGN.md."""
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", text, re.S)
    assert m, "README.md must give the test command in a ```bash block after <!-- test-command -->"
    return m.group(1).strip()


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == _readme_test_command()


def test_notebooks_follow_conventions():
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks"
    for path in notebooks:
        nb = json.loads(path.read_text())
        cells = nb["cells"]
        first = "".join(cells[0]["source"])
        assert first.startswith("# ") and "colab.research.google.com" in first, path.name
        assert "What you will learn" in first, path.name
        assert "google.colab" in "".join(cells[1]["source"]), f"{path.name}: Colab install cell"
        src = "\n".join("".join(c["source"]) for c in cells)
        assert "= setup(" in src, f"{path.name}: the profile's setup line"
        assert "check_answer(" in src, f"{path.name}: exercise with a self-check"
        for i, c in enumerate(cells):
            if c["cell_type"] == "code" and not c.get("outputs"):
                # stripped; a cell with stored outputs (an nbval-checked one, below) keeps its
                # count: nbval refuses "unrun reference cells" that have outputs
                assert c.get("execution_count") is None, \
                    f"{path.name} cell {i} keeps an execution count: strip it (nbstripout)"
            if c["cell_type"] == "code" and c.get("outputs"):
                tagged = "keep_output" in c.get("metadata", {}).get("tags", [])
                assert tagged and "NBVAL_CHECK_OUTPUT" in "".join(c["source"]), \
                    f"{path.name} cell {i} has outputs but is not an nbval-checked cell"


def test_notebook_text_has_no_control_characters():
    """A LaTeX command written into a notebook through a non-raw Python string ("\\tau", "\\rceil")
    arrives as a tab or carriage return and renders as garbage; none may be left."""
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            text = "".join(cell["source"])
            bad = re.search(r"[\x00-\x09\x0b-\x1f]", text)
            assert bad is None, f"{path.name} cell {i}: {text[max(0, bad.start() - 30):bad.end() + 10]!r}"


def test_imported_packages_are_declared():
    """Every third-party package the notebooks and the package import is a declared dependency
    (pyproject.toml and environment.yml), so a fresh install runs them."""
    import sys
    declared = (REPO / "pyproject.toml").read_text() + (REPO / "environment.yml").read_text()
    code = "\n".join(p.read_text() for p in (REPO / "promix_tutorial").glob("*.py"))
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        code += "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
    imported = set(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", code, re.M))
    third_party = imported - set(sys.stdlib_module_names) - {"promix_tutorial", "IPython"}
    names = {"sklearn": "scikit-learn", "PIL": "pillow", "torch": "torch"}
    missing = [m for m in third_party if names.get(m, m) not in declared]
    assert not missing, f"imported but not declared: {missing}"


def test_python_bounds_agree():
    """pyproject.toml and environment.yml admit the same Python versions."""
    py = re.search(r'requires-python = "([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    env = re.search(r"- python(\S+)", (REPO / "environment.yml").read_text()).group(1)
    assert sorted(py.split(",")) == sorted(env.split(",")), (py, env)
