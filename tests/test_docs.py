"""The documentation: generated pages are current, links resolve, and the built site shows the
notebooks' figures in a real browser.

- docs/results.md, its figures and README's tables equal what `python docs/build_results.py`
  builds from benchmarks/results now;
- every stored notebook in docs/notebooks/ has its source notebook's code cells
  (`python docs/execute_notebooks.py NAME` refreshes one);
- README stays a user's page: short, its links resolve, no development history;
- links from docs pages to repository files, and from code comments to docs anchors, resolve;
- the API page covers every module, the method page's function names exist, the changelog
  lists every field of `config.ADDED_FIELDS`;
- the `browser` test builds the site (`mkdocs build --strict`), serves it on 127.0.0.1 and opens
  the index and a notebook page in headless Chromium: their figures must have loaded.
"""
from __future__ import annotations

import functools
import http.server
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
FORBIDDEN = re.compile(r"sandbox|lent (to|a)|device (machine|tool|time)|issue [0-9]+|\.\./shared",
                       re.I)


def _load(name: str):
    """A script of docs/ as a module (they are commands, not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


# ------------------------------------------------------------------------------ generated pages

def test_results_page_and_readme_tables_are_current():
    build = _load("build_results")
    files = build.outputs()
    stale = [p.relative_to(REPO).as_posix() for p, data in files.items()
             if not p.is_file() or p.read_bytes() != data]
    stray = [p.name for p in build.FIGURES.glob("*.png") if p not in files]
    assert not stale and not stray, (
        f"out of date: {', '.join(stale + stray)}; run `python docs/build_results.py` and commit "
        "what it writes (never edit docs/results.md or README's tables by hand)")


def test_results_page_cites_its_files_and_shows_every_table():
    text = (DOCS / "results.md").read_text()
    for anchor in ("cpu-accuracy", "cpu-per-seed", "cpu-claims", "cpu-table5", "selection-f1",
                   "ci-table5", "throughput", "archived-gpu"):
        assert "{#" + anchor + "}" in text, anchor
    assert "/benchmarks/results/accuracy_cpu" in text
    for png in (DOCS / "figures").glob("selection_f1_*.png"):
        assert f"(figures/{png.name})" in text


def test_stored_notebooks_have_their_sources_code():
    execute = _load("execute_notebooks")
    stale = execute.stale_copies()
    assert not stale, ("stored notebooks out of date: " + ", ".join(stale)
                       + "; run `python docs/execute_notebooks.py " + " ".join(stale) + "`")
    for path in sorted((DOCS / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert "widgets" not in nb["metadata"], f"{path.name}: widget state not stripped"
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert outputs, f"{path.name} was not executed"
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert not errors, f"{path.name} stored a traceback: {errors[0].get('ename')}"


def test_a_stale_copy_is_detected(tmp_path, monkeypatch):
    execute = _load("execute_notebooks")
    src, stored = tmp_path / "notebooks", tmp_path / "stored"
    src.mkdir(), stored.mkdir()
    nb = {"cells": [{"cell_type": "markdown", "source": "# t"},
                    {"cell_type": "code", "source": ["x = 1\n", "x"], "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (src / "01_a.ipynb").write_text(json.dumps(nb))
    nb["cells"][1]["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "1"}}]
    (stored / "01_a.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(execute, "SOURCE", src)
    monkeypatch.setattr(execute, "STORED", stored)
    assert execute.stale_copies() == []           # outputs may differ, code may not
    nb["cells"][1]["source"] = "x = 2"
    (src / "01_a.ipynb").write_text(json.dumps(nb))
    (stored / "02_gone.ipynb").write_text(json.dumps(nb))
    assert execute.stale_copies() == ["01_a", "02_gone"]
    assert execute.main(["--check"]) == 1


def test_widget_views_and_state_are_stripped():
    execute = _load("execute_notebooks")
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox()"}
    nb = {"metadata": {"widgets": {"state": {}}}, "cells": [
        {"cell_type": "code", "metadata": {"execution": {"t": 1}}, "source": "", "outputs": [
            {"output_type": "display_data", "data": view, "metadata": {}},
            {"output_type": "display_data", "data": {**view, "image/png": "iVBO"}, "metadata": {}},
            {"output_type": "stream", "name": "stdout", "text": "hi"}]}]}
    out = execute.strip_for_docs(nb)
    assert "widgets" not in out["metadata"] and "execution" not in out["cells"][0]["metadata"]
    assert out["cells"][0]["outputs"] == [
        {"output_type": "display_data", "data": {"image/png": "iVBO"}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "hi"}]
    assert "widgets" in nb["metadata"]              # the input is not modified


# ------------------------------------------------------------------------------ README

def test_readme_is_a_short_users_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "README.md: at most 250 lines; move the rest to docs/"
    for marker in ("<!-- main-command -->", "<!-- test-command -->", "<!-- results-table:start -->",
                   "<!-- notebook-times:start -->"):
        assert marker in text, marker
    assert re.search(r"<!-- test-command -->\s*```bash\nmake test\n```", text)
    bad = FORBIDDEN.search(text) or re.search(r"load average|20[0-9]{2}-[01][0-9]-[0-3][0-9]", text)
    assert bad is None, f"README.md speaks of development, not of the project: {bad.group(0)!r}"


def test_readme_links_resolve():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        assert (REPO / path).exists(), f"README.md links {target}, which does not exist"


# ------------------------------------------------------------------------------ links and names

def _repository_url() -> str:
    return re.search(r'^Repository\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(),
                     re.M).group(1).rstrip("/")


def test_links_to_repository_files_exist():
    """Docs pages link files outside docs/ by their address (the site's build only checks files
    inside docs/); each must name a file of this repository."""
    url = re.escape(_repository_url())
    pattern = re.compile(url + r"/(?:blob|tree)/main/([^)\s#\"'>]+)")
    found = 0
    for page in _doc_pages() + [README]:
        for path in pattern.findall(page.read_text()):
            found += 1
            assert (REPO / path).exists(), f"{page.name} links {path}, which does not exist"
    assert found > 10


def _anchors(page: Path) -> set[str]:
    """The anchors of a markdown page: explicit ``{#id}`` and the slugs of its headings."""
    from markdown.extensions.toc import slugify
    text = page.read_text()
    ids = set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", text))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*(?:\{#[^}]*\})?\s*$", text, re.M):
        ids.add(slugify(heading, "-"))
    return ids


def test_links_to_docs_anchors_resolve():
    """Code comments, docstrings, notebooks and scripts link docs/PAGE.md#anchor: each page and
    anchor must exist (mkdocs checks the links between pages itself)."""
    sources = [*REPO.glob("promix_tutorial/*.py"), *REPO.glob("benchmarks/*.py"), *REPO.glob("benchmarks/probes/*.py"),
               *REPO.glob("benchmarks/*.sh"), *REPO.glob("tests/*.py"),
               *REPO.glob("notebooks/*.ipynb"), README, REPO / "mkdocs.yml"]
    missing = []
    for src in sources:
        for page, anchor in re.findall(r"docs/([a-z_]+\.md)(?:#([A-Za-z0-9_-]+))?",
                                       src.read_text()):
            target = DOCS / page
            if not target.is_file():
                missing.append(f"{src.relative_to(REPO)}: docs/{page} does not exist")
            elif anchor and anchor not in _anchors(target):
                missing.append(f"{src.relative_to(REPO)}: docs/{page}#{anchor} has no such section")
    assert not missing, "\n".join(sorted(set(missing)))


def test_function_names_in_the_docs_exist():
    """Every ``promix_tutorial.module.name`` the docs pages cite resolves."""
    names = set()
    for page in _doc_pages():
        names.update(re.findall(r"`(promix_tutorial(?:\.[A-Za-z_]\w*)+)`", page.read_text()))
    assert len(names) > 20
    bad = []
    for dotted in sorted(names):
        parts = dotted.split(".")
        for i in range(len(parts), 1, -1):  # the longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(dotted)
            break
        else:
            bad.append(dotted)
    assert not bad, f"the docs cite names that do not exist: {bad}"


def test_api_page_covers_every_module():
    listed = set(re.findall(r"^::: promix_tutorial\.(\w+)\s*$", (DOCS / "api.md").read_text(),
                            re.M))
    modules = {p.stem for p in (REPO / "promix_tutorial").glob("*.py") if p.stem != "__init__"}
    assert listed == modules, (f"docs/api.md: add {sorted(modules - listed)}, "
                               f"remove {sorted(listed - modules)}")


def test_changelog_lists_every_added_field():
    from promix_tutorial.config import ADDED_FIELDS
    text = (DOCS / "changelog.md").read_text()
    for field, old in ADDED_FIELDS.items():
        row = re.search(rf"^\| `{field}` \|.*\| `([^`]+)` \|$", text, re.M)
        assert row, f"docs/changelog.md: no row for config.ADDED_FIELDS[{field!r}]"
        assert row.group(1) == json.dumps(old).replace("false", "False").replace(
            "true", "True").replace("null", "None"), f"{field}: the changelog says {row.group(1)}, ADDED_FIELDS {old!r}"


def test_docs_speak_of_the_project_and_its_users():
    files = _doc_pages() + sorted((DOCS / "notebooks").glob("*.ipynb"))
    for f in files:
        bad = FORBIDDEN.search(f.read_text())
        assert bad is None, f"{f.relative_to(REPO)}: {bad.group(0)!r}"


# ------------------------------------------------------------------------------ the built site

def _chromium() -> tuple[str | None, str]:
    """(Chromium binary, "") when it and Playwright are there, else (None, what is missing)."""
    missing = []
    exe = (os.environ.get("PROMIX_CHROMIUM") or shutil.which("chromium")
           or shutil.which("chromium-browser"))
    if not exe:
        missing.append("no chromium executable on PATH: apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not importable: pip install playwright")
    return (exe, "") if not missing else (None, "; ".join(missing))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the test output
        pass


@pytest.mark.browser
def test_built_site_shows_the_notebook_figures(tmp_path):
    exe, why = _chromium()
    if exe is None:
        if os.environ.get("PROMIX_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(site)], cwd=REPO, capture_output=True, text=True, env=env,
                           timeout=300)
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-4000:]}"

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    from playwright.sync_api import sync_playwright
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            # the site only: fonts, MathJax and badges from other hosts are not needed here
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(base) else route.abort())
            page.goto(f"{base}/index.html", wait_until="load")
            assert "promix-tutorial" in page.title()
            widths = page.eval_on_selector_all(
                "img[src$='.png']", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert widths and all(w > 0 for w in widths), f"index figures: {widths}"

            page.goto(f"{base}/notebooks/02_progressive_selection/", wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll(\"img[src^='data:image']\")]"
                ".every(i => i.complete)", timeout=30_000)
            widths = page.eval_on_selector_all(
                "img[src^='data:image']", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) >= 2 and all(w > 0 for w in widths), \
                f"notebook 02's figures did not render: natural widths {widths}"
            text = page.inner_text("body")
            assert "Progressive selection" in text and "Traceback" not in text
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
