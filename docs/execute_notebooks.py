"""Execute the notebooks in the `ci` profile and store the executed copies the docs site renders.

    python docs/execute_notebooks.py                       # every notebook in notebooks/
    python docs/execute_notebooks.py 02_progressive_selection 04_full_promix_run
    python docs/execute_notebooks.py --check               # exit 1 if a copy is stale

Each notebook in notebooks/ runs top to bottom in a fresh kernel (nbclient; working directory
notebooks/, as in JupyterLab) with PROMIX_PROFILE=ci and OMP_NUM_THREADS=1, the profile CI runs:
the 8x8 digits, a few minutes on a CPU. The executed copy goes to docs/notebooks/NAME.ipynb
without widget state (a rendered page cannot run widgets) or timing metadata, so the files stay
small and change only when their content does. mkdocs-jupyter renders these copies as they are
(mkdocs.yml: ``execute: false``); tests/test_docs.py fails when a copy's code cells differ from
its source notebook's. A notebook that raises keeps its old copy; the others still run, and the
command exits 1 naming it.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
STORED = ROOT / "docs" / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
ENV = {"PROMIX_PROFILE": "ci", "OMP_NUM_THREADS": "1"}
CELL_TIMEOUT_S = 900


def code_sources(nb: dict) -> list[str]:
    """The source of every code cell, in order: what a stored copy must share with its notebook."""
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def stale_copies(names: list[str] | None = None) -> list[str]:
    """The notebook names (``NN_name``) whose stored copy is missing or whose code cells differ
    from the source notebook's, plus stored copies that have no source notebook any more."""
    sources = {p.stem: p for p in sorted(SOURCE.glob("*.ipynb"))}
    stale = []
    for name in names or list(sources):
        copy_path = STORED / f"{name}.ipynb"
        if not copy_path.is_file() or (code_sources(json.loads(copy_path.read_text()))
                                       != code_sources(json.loads(sources[name].read_text()))):
            stale.append(name)
    if names is None:
        stale += [p.stem for p in sorted(STORED.glob("*.ipynb")) if p.stem not in sources]
    return stale


def strip_for_docs(nb: dict) -> dict:
    """A copy of an executed notebook for the site: no widget state, no widget views (a static
    page has no kernel to draw them), no execution timestamps."""
    nb = copy.deepcopy(nb)
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_MIME in data:
                data = {k: v for k, v in data.items() if k not in (WIDGET_MIME, "text/plain")}
                if not data:
                    continue
                out = {**out, "data": data}
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def execute(path: Path, timeout: int = CELL_TIMEOUT_S) -> dict:
    """``path`` executed top to bottom in the `ci` profile (raises on the first error)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return json.loads(nbformat.writes(nb))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook names (NN_name, default: all)")
    ap.add_argument("--check", action="store_true",
                    help="only report copies whose code cells differ from their notebook")
    args = ap.parse_args(argv)
    known = {p.stem for p in SOURCE.glob("*.ipynb")}
    names = [n.removesuffix(".ipynb").split("/")[-1] for n in args.names]
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"no notebook {', '.join(unknown)} in notebooks/ (have: "
                 f"{', '.join(sorted(known))})")
    if args.check:
        stale = stale_copies(names or None)
        for n in stale:
            print(f"stale: docs/notebooks/{n}.ipynb (run: python docs/execute_notebooks.py {n})")
        return 1 if stale else 0
    STORED.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names or sorted(known):
        t0 = time.perf_counter()
        print(f"[run ] {name}", flush=True)
        try:
            nb = strip_for_docs(execute(SOURCE / f"{name}.ipynb"))
        except Exception as e:  # nbclient's CellExecutionError carries the cell's traceback
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # the traceback's colours
            lines = [ln for ln in text.strip().splitlines() if ln.strip()]
            print(f"[fail] {name}: {lines[-1] if lines else type(e).__name__}", flush=True)
            failed.append(name)
            continue
        out = STORED / f"{name}.ipynb"
        tmp = out.with_suffix(".ipynb.tmp")
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        tmp.replace(out)
        print(f"[done] {name}: {out.relative_to(ROOT)} ({out.stat().st_size / 1e3:.0f} kB) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)} (their stored copies were not changed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
