"""The Colab install cell (issue 15.9): one text in every notebook, the address in one place, and
what it does, run for real.

The cell runs before the package is installed, so it cannot import the address from the package.
The address lives in pyproject.toml's ``[project.urls] Repository``, where the project says it is
published; every notebook carries the same cell (`install_cell`, built from that entry) and the
same "Open in Colab" badge address (`badge_url`), and the tests below keep every copy equal.
After a change of the address, ``python tests/test_colab_install.py`` rewrites them.

The cell is then executed as Colab would (a ``google.colab`` module imported) in a subprocess,
with ``PROMIX_INSTALL_SPEC`` pointing pip at a wheel of this checkout built here and pip told
(``PIP_TARGET``) to install into a temporary folder, so nothing in the test's environment changes;
outside Colab it must do nothing (nbval runs it in CI).
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
# Colab only: install the package (does nothing elsewhere; locally use `pip install -e ".[dev]"`).
# To install a fork or a wheel instead, first run e.g.
# %env PROMIX_INSTALL_SPEC=git+https://github.com/YOU/promix-tutorial   (or =/content/NAME.whl)
import os, subprocess, sys
if "google.colab" in sys.modules:
    spec = os.environ.get("PROMIX_INSTALL_SPEC",
                          "promix-tutorial @ git+{repository}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)'''
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")

# Run the cell file argv[1]; with argv[2] == "colab", as Colab's runtime does, with google.colab
# imported (the only thing the cell looks at).
DRIVER = """
import sys, types
if sys.argv[2] == "colab":
    sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(compile(open(sys.argv[1]).read(), "install cell", "exec"), {"__name__": "__main__"})
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


def test_the_cell_asks_pip_for_the_repository_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.delenv("PROMIX_INSTALL_SPEC", raising=False)
    exec(install_cell(), {})                       # outside Colab: nothing
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    exec(install_cell(), {})
    assert calls == [([sys.executable, "-m", "pip", "install", "-q",
                       f"promix-tutorial @ git+{repository()}"], {"check": True})]
    monkeypatch.setenv("PROMIX_INSTALL_SPEC", "git+https://github.com/someone/fork")
    exec(install_cell(), {})
    assert calls[-1][0][-1] == "git+https://github.com/someone/fork"


# ----------------------------------------------------------------------------- run for real

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout, built from a copy (the checkout gets no build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "promix_tutorial", src / "promix_tutorial",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, cwd=tmp)
    (found,) = (tmp / "dist").glob("promix_tutorial-*.whl")
    return found


def _run_cell(path: Path, where: str, spec: Path, target: Path, tmp: Path):
    cell = tmp / "cell.py"
    cell.write_text(_install_cell_of(path))
    env = {**os.environ, "PROMIX_INSTALL_SPEC": str(spec), "PIP_TARGET": str(target),
           "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-c", DRIVER, str(cell), where], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_on_colab_the_cell_installs_the_package(path, wheel, tmp_path):
    site = tmp_path / "site"
    done = _run_cell(path, "colab", wheel, site, tmp_path)
    assert done.returncode == 0, done.stderr
    imported = subprocess.run([sys.executable, "-c", "import promix_tutorial as p; print(p.__file__)"],
                              env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert Path(imported) == site / "promix_tutorial" / "__init__.py"
    assert (site / "promix_tutorial" / "train.py").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outside_colab_the_cell_does_nothing(path, wheel, tmp_path):
    site = tmp_path / "site"
    done = _run_cell(path, "local", wheel, site, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not site.exists()


if __name__ == "__main__":
    write_notebooks()
