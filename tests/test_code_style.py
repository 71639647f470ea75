"""The package's shape: its layers import only downward, its comments say why in a few lines,
and it speaks of itself and its users only."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "promix_tutorial"

# bottom to top, as promix_tutorial/__init__.py describes them
LAYERS = ["runs", "data", "noise", "transition", "selection", "debias", "metrics", "augment",
          "models", "config", "profiles", "schedule", "devices", "pretrain", "losses", "evaluation",
          "engine", "results", "tables", "cells", "sweep", "reference", "plots", "widgets", "notebook",
          "exercises", "commands", "cli"]
MAX_LINES = 450


def _modules():
    return sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")


def _package_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports, at the top or inside functions."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # annotations only: `if TYPE_CHECKING:` blocks do not count
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
    return found


def test_every_module_has_a_layer_and_imports_only_below_it():
    for path in _modules():
        name = path.stem
        assert name in LAYERS, f"{name}.py: give it a place in LAYERS (and __init__'s layer map)"
        for other in _package_imports(path):
            assert LAYERS.index(other) < LAYERS.index(name), \
                f"{name}.py imports {other}, a module at or above its own layer"


def test_modules_are_readable_in_a_sitting():
    for path in _modules():
        n = len(path.read_text().splitlines())
        assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES}): split it by job"


def test_comments_are_short_and_carry_no_history():
    """A comment block says why in at most three lines (details belong in docs/); no dates,
    and no results typed into the code."""
    date = re.compile(r"\b20\d\d-\d\d-\d\d\b")
    for path in sorted(PACKAGE.glob("*.py")):
        lines = path.read_text().splitlines()
        run = 0
        for i, line in enumerate(lines, 1):
            run = run + 1 if line.strip().startswith("#") else 0
            assert run <= 3, f"{path.name}:{i}: a comment block longer than three lines"
            assert not date.search(line), f"{path.name}:{i}: a date in the package"


FORBIDDEN = re.compile(r"sandbox|lent (to|a)|device (machine|tool|time)|issue [0-9]+|\.\./shared",
                       re.I)


def test_the_project_speaks_of_itself_and_its_users_only():
    """No word of the machine the project was developed on, in what users read."""
    files = [REPO / "README.md", *PACKAGE.glob("*.py"), *(REPO / "notebooks").glob("*.ipynb")]
    files += [p for p in (REPO / "docs").rglob("*") if p.suffix in (".md", ".py", ".ipynb")]
    for path in files:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            m = FORBIDDEN.search(line)
            assert m is None, f"{path.relative_to(REPO)}:{i}: {m.group(0)!r}"


def test_docs_links_in_the_package_resolve():
    """Every ``docs/PAGE.md#anchor`` a docstring or comment links exists: the page, and a
    heading whose slug is the anchor."""
    link = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
    for path in sorted(PACKAGE.glob("*.py")):
        for page, anchor in link.findall(path.read_text()):
            doc = REPO / "docs" / page
            assert doc.is_file(), f"{path.name} links docs/{page}, which does not exist"
            if anchor:
                assert anchor in _anchors(doc), f"{path.name} links docs/{page}#{anchor}: no such heading"


def _anchors(doc: Path) -> set[str]:
    """The heading ids mkdocs gives a page (lower case, words joined by '-'), and explicit
    ``{#id}`` attributes."""
    out = set()
    for line in doc.read_text().splitlines():
        if line.startswith("#"):
            explicit = re.search(r"\{#([\w-]+)\}", line)
            if explicit:
                out.add(explicit.group(1))
            text = re.sub(r"\{#[\w-]+\}", "", line.lstrip("#")).strip().lower()
            out.add(re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text)).strip("-"))
    return out
