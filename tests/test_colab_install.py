"""The Colab install cell: one text in every notebook, the address in one place, and what it
does, run for real.

The cell runs before the package is installed, so it cannot import the address from the package.
The address lives in pyproject.toml's ``[project.urls] Repository``, where the project says it is
published; every notebook carries the same cell (`install_cell`, built from that entry) and the
same "Open in Colab" badge address (`badge_url`), and the tests below keep every copy equal.
After a change of the address, ``python tests/test_colab_install.py`` rewrites them.

The cell is then run once as Colab runs it: by IPython (it is a ``%pip`` line), with a
``google.colab`` module imported, in a subprocess. pip clones the repository address from a
local git repository of this checkout (git's ``url.<local>.insteadOf``, so the address in the
cell is the one used) and installs into a temporary folder (``PIP_TARGET``), so nothing in the
test's environment changes. Outside Colab it must do nothing (nbval runs it in CI).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

INSTALL_CELL = '''\
import sys  # on Colab, install the package first (elsewhere nothing happens; locally: pip install -e ".[dev]")
if "google.colab" in sys.modules:
    %pip install -q "promix-tutorial @ git+{repository}"'''
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")

# Run the cell file argv[1] in IPython; with argv[2] == "colab", as Colab's runtime does, with
# google.colab imported (the only thing the cell looks at).
DRIVER = """
import sys, types
from IPython.core.interactiveshell import InteractiveShell
if sys.argv[2] == "colab":
    sys.modules["google.colab"] = types.ModuleType("google.colab")
result = InteractiveShell.instance().run_cell(open(sys.argv[1]).read())
sys.exit(0 if result.success else 1)
"""


def repository() -> str:
    """Where the project is published: pyproject.toml's [project.urls] Repository."""
    text = (REPO / "pyproject.toml").read_text()   # (tomllib is Python 3.11+; 3.10 is supported)
    m = re.search(r'^\[project\.urls\]\n(?:[^\[\n].*\n|\n)*?Repository = "([^"]+)"', text, re.M)
    assert m, "pyproject.toml must name the repository: [project.urls] Repository = \"https://...\""
    return m.group(1)


def install_cell() -> str:
    return INSTALL_CELL.format(repository=repository())


def badge_url(notebook: Path) -> str:
    owner_name = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", repository()).group(1)
    return f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/{notebook.name}"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _install_cell_of(path: Path) -> str:
    """The notebook's first code cell, the install cell."""
    return "".join(next(c for c in _cells(path) if c["cell_type"] == "code")["source"])


def write_notebooks() -> None:
    """Put `install_cell` and `badge_url` into every notebook (outputs and format kept)."""
    for path in NOTEBOOKS:
        text = path.read_text()
        nb = json.loads(text)
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code["source"] = install_cell().splitlines(keepends=True)
        first = nb["cells"][0]
        first["source"] = BADGE.sub(badge_url(path), "".join(first["source"])).splitlines(keepends=True)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
        if new != text:
            path.write_text(new)
            print("rewrote", path.relative_to(REPO))


# ----------------------------------------------------------------------------- one text

def test_the_address_is_where_the_project_is_published():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository()), repository()
    assert f"promix-tutorial @ git+{repository()}" in install_cell()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_same_install_cell_and_badge(path):
    fix = "; run `python tests/test_colab_install.py` to rewrite it"
    assert _install_cell_of(path) == install_cell(), f"{path.name}: install cell differs{fix}"
    first = "".join(_cells(path)[0]["source"])
    assert BADGE.findall(first) == [badge_url(path)], f"{path.name}: Colab badge{fix}"


# ----------------------------------------------------------------------------- run for real

@pytest.fixture(scope="module")
def local_repository(tmp_path_factory) -> Path:
    """A git repository holding what this checkout would publish (pyproject.toml, README.md,
    the package as it is in the working tree), one commit."""
    src = tmp_path_factory.mktemp("published") / "promix-tutorial"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "promix_tutorial", src / "promix_tutorial",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git = ["git", "-C", str(src), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "published"]):
        subprocess.run(git + args, check=True, capture_output=True)
    return src


def _run_cell(where: str, published: Path, tmp: Path):
    cell = tmp / "cell.ipy"
    cell.write_text(_install_cell_of(NOTEBOOKS[0]))   # all notebooks hold this text (above)
    env = {**os.environ, "PIP_TARGET": str(tmp / "site"), "PIP_NO_DEPS": "1",
           "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "IPYTHONDIR": str(tmp / "ipython"),
           # git clones the published address from the local repository instead
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{published}.insteadOf",
           "GIT_CONFIG_VALUE_0": repository()}
    return subprocess.run([sys.executable, "-c", DRIVER, str(cell), where], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=300)


def test_on_colab_the_cell_installs_the_package_from_its_address(local_repository, tmp_path):
    done = _run_cell("colab", local_repository, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    imported = subprocess.run(
        [sys.executable, "-c", "import promix_tutorial.notebook as m; print(m.__file__)"],
        env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path, capture_output=True,
        text=True)
    assert imported.returncode == 0, done.stdout + done.stderr + imported.stderr
    assert Path(imported.stdout.strip()) == site / "promix_tutorial" / "notebook.py"


def test_outside_colab_the_cell_does_nothing(local_repository, tmp_path):
    done = _run_cell("local", local_repository, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (tmp_path / "site").exists()


if __name__ == "__main__":
    write_notebooks()
