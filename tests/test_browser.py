"""Notebooks 02-05 as a student meets them: one JupyterLab server on 127.0.0.1, headless
Chromium driven by Playwright, each notebook opened and run with Run > Run All Cells, in the
`ci` profile and in the `reference` profile (a kernel spec per profile), one after another.

Each run fails on what nbval cannot see: a traceback in any cell, "Error displaying widget" on
the page, a widget cell that shows more than one figure, a library warning (FutureWarning and
the like) in an output, or a run warning repeated on several lines instead of summarised in one.
On notebook 02 (`ci`) it also moves the R slider with the keyboard and checks that the cell's
one figure is replaced by the kernel's frame for the new value (pixel for pixel, and its title
says R=<new value>), times that step (printed with `-s`, recorded as the `slider_step_ms`
property), returns, and restarts the kernel: the hint stays and no widget error appears.

Needs Debian's `chromium` (`apt-get install chromium`; Playwright's own browser download is not
used) and Playwright for Python (`pip install playwright`). Without them it is skipped, naming
exactly what is missing, unless PROMIX_REQUIRE_BROWSER=1 (what .ci/run sets): then it fails.
PROMIX_CHROMIUM may name another Chromium binary.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("02_progressive_selection", "03_debiased_pseudo_labels", "04_full_promix_run",
             "05_ablations")
PROFILES = ("ci", "reference")
# Run All of one notebook: the ci runs take about a minute each on an idle 2-core CPU, several
# minutes when other jobs share the cores.
RUN_ALL_TIMEOUT_S = float(os.environ.get("PROMIX_BROWSER_RUN_ALL_TIMEOUT_S", "600"))
DEV = "pip install -e '.[dev]'"

pytestmark = pytest.mark.browser


# ----------------------------------------------------------------------------- dependencies

def missing_browser_dependencies(which=shutil.which, find_spec=importlib.util.find_spec,
                                 environ=os.environ) -> tuple[str | None, list[str]]:
    """(the Chromium binary or None, one exact line per missing dependency)."""
    missing = []
    if find_spec("playwright") is None:
        missing.append("Playwright for Python is not installed (pip install playwright)")
    exe = environ.get("PROMIX_CHROMIUM")
    if exe:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            missing.append(f"PROMIX_CHROMIUM={exe} is not an executable file")
            exe = None
    else:
        exe = which("chromium") or which("chromium-browser")
        if exe is None:
            missing.append("chromium not found (apt-get install chromium)")
    for module, name in (("jupyterlab", "JupyterLab"), ("ipywidgets", "ipywidgets"),
                         ("jupyter_client", "jupyter_client")):
        if find_spec(module) is None:
            missing.append(f"{name} is not installed ({DEV})")
    return (None if missing else exe), missing


@pytest.fixture(scope="module")
def chromium_path() -> str | None:
    """The Chromium binary; a skip naming what is missing, or None under
    PROMIX_REQUIRE_BROWSER=1 (the test then fails: a failure, not a setup error or a skip)."""
    exe, missing = missing_browser_dependencies()
    if exe is None and os.environ.get("PROMIX_REQUIRE_BROWSER") != "1":
        pytest.skip("; ".join(missing))
    return exe


def test_a_missing_dependency_is_named_exactly(tmp_path):
    """Each missing piece gets its own line, and only the missing ones (no browser needed)."""
    have = lambda name: object()  # noqa: E731
    without = lambda *names: (lambda name: None if name in names else object())  # noqa: E731
    assert missing_browser_dependencies(lambda n: "/usr/bin/chromium", have, {}) \
        == ("/usr/bin/chromium", [])
    assert missing_browser_dependencies(lambda n: "/usr/bin/chromium", without("playwright"),
                                        {})[1] \
        == ["Playwright for Python is not installed (pip install playwright)"]
    assert missing_browser_dependencies(lambda n: None, have, {}) \
        == (None, ["chromium not found (apt-get install chromium)"])
    assert missing_browser_dependencies(lambda n: None, without("jupyterlab"), {})[1] \
        == ["chromium not found (apt-get install chromium)",
            f"JupyterLab is not installed ({DEV})"]
    not_exe = tmp_path / "chromium"
    not_exe.write_text("")
    assert missing_browser_dependencies(lambda n: "/usr/bin/chromium", have,
                                        {"PROMIX_CHROMIUM": str(not_exe)})[1] \
        == [f"PROMIX_CHROMIUM={not_exe} is not an executable file"]


# ----------------------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"(no log: {e})"


class LabServer:
    """A JupyterLab server serving ``root``; its log in ``log``; `stop` ends it and its kernels.
    ``jupyter_path`` (JUPYTER_PATH) holds extra kernel specs."""

    def __init__(self, root: Path, home: Path, jupyter_path: Path | None = None):
        self.root, self.home, self.jupyter_path = root, home, jupyter_path
        self.token = uuid4().hex
        self.log = home / "jupyterlab.log"
        self.runtime = home / "runtime"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        config = self.home / "config"  # user config only: extensions (data dirs) stay found
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        # no "get Jupyter news?" toast over the notebook
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        env = dict(os.environ, PROMIX_PROFILE="ci", JUPYTER_RUNTIME_DIR=str(self.runtime),
                   JUPYTER_CONFIG_DIR=str(config), IPYTHONDIR=str(self.home / "ipython"),
                   PYTHONUNBUFFERED="1")
        if self.jupyter_path is not None:
            env["JUPYTER_PATH"] = os.pathsep.join(
                [str(self.jupyter_path)] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
        # one thread per kernel unless set: on 2 busy cores torch's default (one thread per
        # core) trains a notebook's tiny runs several times slower
        env.setdefault("OMP_NUM_THREADS", "1")
        for attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}", "--ServerApp.allow_root=True",
                   "--ServerApp.terminals_enabled=False",
                   "--LabApp.expose_app_in_browser=True",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.news_url=None",
                   "--LabApp.open_browser=False"]
            with open(self.log, "ab") as log:
                log.write(f"\n--- attempt {attempt + 1}: {' '.join(cmd)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    req = urllib.request.Request(f"{self.url}/api/status",
                                                 headers={"Authorization": f"token {self.token}"})
                    with urllib.request.urlopen(req, timeout=5) as r:
                        if r.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.3)
            if self.proc.poll() is None:  # alive but never answered
                self.stop()
                raise RuntimeError(f"JupyterLab did not answer /api/status in {timeout:.0f} s; "
                                   f"log {self.log}:\n{_tail(self.log)}")
        raise RuntimeError(f"JupyterLab exited (rc {self.proc.returncode}) three times; "
                           f"log {self.log}:\n{_tail(self.log)}")

    def stop(self) -> None:
        """SIGTERM to the server's process group (it shuts its kernels down); after 15 s, or
        for a kernel still alive then (kernels run in sessions of their own), SIGKILL."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        kernels = _children(p.pid)
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)
        for pid in kernels:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _children(pid: int) -> list[int]:
    """Ids of the processes whose parent is ``pid`` (Linux /proc; [] elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def kernel_name(profile: str) -> str:
    return f"promix-{profile}"


def write_kernel_specs(folder: Path) -> Path:
    """A kernel spec per profile (this Python, ``PROMIX_PROFILE`` set), under ``folder/kernels``
    for JUPYTER_PATH: one server runs the notebooks of every profile."""
    for profile in PROFILES:
        spec = folder / "kernels" / kernel_name(profile)
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python 3 (promix {profile})", "language": "python",
            "env": {"PROMIX_PROFILE": profile}}))
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium_path):
    """JupyterLab serving ``PROFILE/NN.ipynb``: copies of the notebooks without outputs or
    execution counts, each on its profile's kernel (the committed files are never touched)."""
    if chromium_path is None:  # the test fails on it
        yield None
        return
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    for profile in PROFILES:
        (root / profile).mkdir(parents=True)
        for stem in NOTEBOOKS:
            nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text())
            for cell in nb["cells"]:  # start unexecuted: "every cell numbered" = "ran here"
                if cell["cell_type"] == "code":
                    cell["execution_count"], cell["outputs"] = None, []
            nb["metadata"]["kernelspec"] = {"name": kernel_name(profile), "language": "python",
                                            "display_name": f"Python 3 (promix {profile})"}
            (root / profile / f"{stem}.ipynb").write_text(json.dumps(nb, indent=1))
    server = LabServer(root, home, write_kernel_specs(home / "jupyter"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- the page

# Run in the page (JupyterLab exposes `window.jupyterapp` with --LabApp.expose_app_in_browser):
# the current notebook's kernel and, per code cell, its count, state and outputs.
JS_NOTEBOOK_STATE = """() => {
  const app = window.jupyterapp;
  if (!app) return {ready: false, why: 'window.jupyterapp missing'};
  const panel = app.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext)
    return {ready: false, why: 'no notebook panel'};
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const model = panel.content.model, cells = [];
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    if (c.type !== 'code') continue;
    const outputs = [];
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      const text = [].concat(o.text || []).join('');
      outputs.push({type: o.output_type, name: o.name || null, text,
                    mimes: Object.keys(o.data || {}),
                    error: o.output_type === 'error' ?
                      o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n') : null});
    }
    cells.push({index: i, count: c.executionCount, state: c.executionState || null, outputs});
  }
  return {ready: panel.sessionContext.isReady, kernel: kernel ? kernel.status : null,
          kernel_id: kernel ? kernel.id : null, path: panel.context.path, cells};
}"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIBRARY_WARNING = re.compile(r"\b\w*Warning\b")


def _errors(state: dict) -> list[str]:
    return [o["error"] for c in state.get("cells", []) for o in c["outputs"] if o["error"]]


def _wait_notebook(page, predicate, timeout_s: float, what: str) -> dict:
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        state = page.evaluate(JS_NOTEBOOK_STATE)
        errors = _errors(state)
        if errors:
            raise AssertionError(f"{state.get('path')}: a cell raised:\n"
                                 + ANSI.sub("", errors[0])[-3000:])
        if predicate(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last state: "
                         f"{json.dumps(state)[:2000]}")


def _all_ran(state: dict) -> bool:
    return state.get("kernel") == "idle" and bool(state["cells"]) and all(
        isinstance(c["count"], int) and c["state"] != "running" for c in state["cells"])


def problems_of(state: dict) -> list[str]:
    """What a student must not see in a finished notebook (the model's outputs): a traceback,
    a widget cell with more than one figure, a library warning, a run warning repeated on
    several lines."""
    found = []
    for c in state["cells"]:
        where = f"{state.get('path')} cell {c['index']}"
        outs = c["outputs"]
        found += [f"{where}: traceback {ANSI.sub('', o['error'])[:300]}" for o in outs if o["error"]]
        figures = sum("image/png" in o["mimes"] for o in outs)
        if figures > 1 and any(WIDGET_VIEW in o["mimes"] for o in outs):
            found.append(f"{where}: a widget cell with {figures} figures")
        text = "".join(o["text"] for o in outs if o["type"] == "stream")
        for w in sorted(set(LIBRARY_WARNING.findall(text))):
            found.append(f"{where}: library warning {w}: "
                         + next(line for line in text.splitlines() if w in line)[:300])
        repeated = [line for line in text.splitlines() if line.lower().startswith("warning")]
        if len(repeated) > 1:
            found.append(f"{where}: {len(repeated)} warning lines instead of one summary")
    return found


def test_problems_of_finds_each_problem():
    """The checks on the page's model are not vacuous."""
    def out(type="stream", text="", mimes=(), error=None, name="stdout"):
        return {"type": type, "name": name, "text": text, "mimes": list(mimes), "error": error}
    state = {"path": "ci/x.ipynb", "cells": [
        {"index": 1, "outputs": [out("error", error="ValueError: boom")]},
        {"index": 2, "outputs": [out("display_data", mimes=["text/markdown"]),
                                 out("display_data", mimes=[WIDGET_VIEW, "text/plain"]),
                                 out("display_data", mimes=["image/png"]),
                                 out("display_data", mimes=["image/png"])]},
        {"index": 3, "outputs": [out(text="x.py:3: FutureWarning: Downcasting\n", name="stderr")]},
        {"index": 4, "outputs": [out(text="warning: a\nwarning: b\n", name="stderr")]},
        {"index": 5, "outputs": [out("display_data", mimes=[WIDGET_VIEW]),
                                 out("display_data", mimes=["image/png"]),
                                 out(text="warnings: one line\n")]}]}
    found = problems_of(state)
    assert [f.split(":")[0] for f in found] == ["ci/x.ipynb cell 1", "ci/x.ipynb cell 2",
                                                "ci/x.ipynb cell 3", "ci/x.ipynb cell 4"]
    assert "2 figures" in found[1] and "FutureWarning" in found[2] and "2 warning" in found[3]


# the images in each cell that shows sliders, as the page draws them (a figure inside a widget
# counts too, which the model's outputs do not show)
JS_SLIDER_CELL_IMAGES = """() => Array.from(document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')).filter(
  c => c.querySelector('.widget-slider')).map(c => c.querySelectorAll('img').length)"""


def _png_pixels(data: str) -> np.ndarray:
    from PIL import Image

    b64 = data.split(",", 1)[1] if data.startswith("data:") else data
    with Image.open(io.BytesIO(base64.b64decode("".join(b64.split())))) as im:
        return np.asarray(im.convert("RGBA"))


PROBE = r"""
def _promix_browser_probe():
    import base64, json
    from IPython import get_ipython
    from promix_tutorial.widgets import SelectionExplorer
    found = [v for k, v in get_ipython().user_ns.items()
             if isinstance(v, SelectionExplorer) and not k.startswith("_")]
    assert len(found) == 1, f"{len(found)} SelectionExplorer objects in the notebook"
    ex = found[0]
    print("PROBE" + json.dumps({
        "values": {k: s.value for k, s in ex.sliders.items()},
        "titles": [ax.get_title() for ax in ex.figure.axes],
        "png": base64.b64encode(ex.frame).decode()}))
_promix_browser_probe()
del _promix_browser_probe
"""


def _probe_kernel(server: LabServer, kernel_id: str) -> dict:
    """The notebook's SelectionExplorer as the kernel holds it: slider values, the titles of its
    figure and the PNG frame it last sent (a second client on the notebook's own kernel,
    through its connection file in our runtime dir; JupyterLab ignores the replies to it)."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(server.runtime / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + "\n".join(msg["content"]["traceback"]))

    try:
        kc.wait_for_ready(timeout=30)
        reply = kc.execute_interactive(PROBE, store_history=False, output_hook=hook, timeout=60)
    finally:
        kc.stop_channels()
    text = ANSI.sub("", "".join(out))
    assert reply["content"]["status"] == "ok" and "PROBE" in text, text[-3000:]
    return json.loads(text.split("PROBE", 1)[1])


def _page_text(page) -> str:
    """All text of the page, offscreen cells included (innerText skips what is not rendered)."""
    return page.evaluate("() => document.body.textContent")


def test_notebooks_in_a_real_browser(lab, chromium_path, tmp_path, record_property):
    if chromium_path is None:
        pytest.fail("PROMIX_REQUIRE_BROWSER=1 but " + "; ".join(missing_browser_dependencies()[1]),
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    args = ["--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    console: list[str] = []
    shot = tmp_path / "failure.png"
    timings: dict[str, float] = {}
    problems: list[str] = []
    with sync_playwright() as pw:
        xdg = {k: str(tmp_path / "chromium" / k) for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=args,
                                     env={**os.environ, **xdg})  # nothing into ~/.config
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # only our server: the notebooks' Colab badges and the like are not fetched
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
            page.set_default_timeout(60_000)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                _open_lab(page, lab)
                for profile in PROFILES:
                    for stem in NOTEBOOKS:
                        t0 = time.monotonic()
                        state = _run_all(page, f"{profile}/{stem}.ipynb")
                        problems += problems_of(state)
                        if "Error displaying widget" in _page_text(page):
                            problems.append(f"{profile}/{stem}: 'Error displaying widget' on the page")
                        problems += [f"{profile}/{stem}: {n} figures in a cell with sliders"
                                     for n in page.evaluate(JS_SLIDER_CELL_IMAGES) if n != 1]
                        if (profile, stem) == ("ci", "02_progressive_selection"):
                            _check_sliders(page, lab, state, tmp_path, record_property)
                            _check_restart(page)
                        timings[f"{profile}/{stem}"] = round(time.monotonic() - t0, 1)
                        _close(page)
            except BaseException:
                try:
                    page.screenshot(path=str(shot), full_page=False)
                except Exception:  # noqa: BLE001  (the page may be gone)
                    pass
                print(f"--- screenshot: {shot}\n--- browser console (last 40):\n"
                      + "\n".join(console[-40:])
                      + f"\n--- JupyterLab log {lab.log} (tail):\n{_tail(lab.log)}")
                raise
        finally:
            browser.close()
    print(f"\nseconds per notebook (open, Run All, checks): {json.dumps(timings)}")
    assert not problems, "\n".join(problems)


def _open_lab(page, lab: LabServer) -> None:
    page.goto(f"{lab.url}/lab?reset&token={lab.token}", wait_until="load")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-LabShell", state="visible")
    extensions = page.evaluate("() => JSON.parse(document.getElementById("
                               "'jupyter-config-data').textContent).federated_extensions"
                               ".map(e => e.name)")
    assert "@jupyter-widgets/jupyterlab-manager" in extensions, \
        f"JupyterLab does not find ipywidgets' lab extension (jupyterlab_widgets): {extensions}"


def _run_all(page, path: str) -> dict:
    """Open ``path``, wait for its kernel, Run > Run All Cells as a reader would, and return the
    notebook's state once every code cell has run and the kernel is idle."""
    page.evaluate("async (path) => { await window.jupyterapp.commands.execute("
                  "'docmanager:open', {path}); }", path)
    _wait_notebook(page, lambda s: s.get("path") == path and s.get("ready")
                   and s.get("kernel") == "idle", 120, f"{path}: its kernel to start")
    page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^\s*Run All Cells\s*$")).click()
    return _wait_notebook(page, _all_ran, RUN_ALL_TIMEOUT_S,
                          f"{path}: Run All Cells to finish (every code cell numbered, kernel idle)")


def _close(page) -> None:
    """Save the notebook (into the test's folder), shut its kernel down and close it."""
    page.evaluate("""async () => {
      const panel = window.jupyterapp.shell.currentWidget;
      await panel.context.save();
      await panel.sessionContext.shutdown();
      panel.dispose();
    }""")


def _widget_cell(page):
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").filter(
        has=page.locator(".widget-slider"))
    cell.first.wait_for(state="visible", timeout=30_000)
    assert cell.count() == 1, f"{cell.count()} cells hold sliders"
    return cell


def _check_sliders(page, lab: LabServer, state: dict, tmp_path: Path, record_property) -> None:
    """The R and tau sliders render as sliders above the cell's one figure; one R step replaces
    that figure by the kernel's frame for the new value, and the step back restores it."""
    cell = _widget_cell(page)
    sliders = cell.locator(".widget-slider")
    labels = [t.strip() for t in sliders.locator(".widget-label").all_inner_texts()]
    assert sorted(labels) == ["R", "tau"], f"slider labels {labels}"
    assert "run this cell again" in cell.inner_text(), "the hint line is missing"
    r = sliders.filter(has=page.locator(".widget-label", has_text=re.compile(r"^\s*R\s*$")))
    handle, readout = r.locator(".noUi-handle"), r.locator(".widget-readout")
    assert handle.count() == 1 and readout.count() == 1, r.inner_html()[:2000]
    image = cell.locator(".jp-OutputArea-output img")
    image.first.wait_for(state="visible", timeout=30_000)
    assert image.count() == 1, f"{image.count()} images in the widget cell"
    old_src, old_readout = image.get_attribute("src"), readout.inner_text().strip()
    old_value = float(old_readout)
    vmax = float(handle.get_attribute("aria-valuemax") or "1")
    key, new_value = ("ArrowRight", old_value + 0.05) if old_value + 0.05 <= vmax + 1e-9 \
        else ("ArrowLeft", old_value - 0.05)

    # one slider step, timed in the page: key down on the handle -> a new <img> in the cell
    cell.evaluate("""(root, oldSrc) => {
      window.__step = {key: null, img: null};
      document.addEventListener('keydown', () => {
        if (window.__step.key === null) window.__step.key = performance.now(); },
        {capture: true, once: true});
      const seen = () => {
        const img = root.querySelector('.jp-OutputArea-output img');
        if (img && img.getAttribute('src') !== oldSrc && window.__step.img === null) {
          window.__step.img = performance.now(); obs.disconnect(); }
      };
      const obs = new MutationObserver(seen);
      obs.observe(root, {subtree: true, childList: true, attributes: true,
                         attributeFilter: ['src']});
    }""", old_src)
    handle.focus()
    page.keyboard.press(key)
    page.wait_for_function("() => window.__step && window.__step.img !== null", timeout=30_000)
    step = page.evaluate("() => window.__step")
    assert step["key"] is not None, "the key press never reached the page"
    step_ms = step["img"] - step["key"]

    new_readout = readout.inner_text().strip()
    assert float(new_readout) == pytest.approx(new_value), (old_readout, new_readout)
    assert image.count() == 1, f"{image.count()} images after a slider step"
    new_src = image.get_attribute("src")
    assert new_src and new_src != old_src, "the figure did not change"
    # the page shows the kernel's figure for the new value, and its title says R=<new value>
    probe = _probe_kernel(lab, state["kernel_id"])
    assert probe["values"]["R"] == pytest.approx(new_value), probe["values"]
    assert any(f"R={new_value:.2f}" in t for t in probe["titles"]), probe["titles"]
    shown, drawn = _png_pixels(new_src), _png_pixels(probe["png"])
    assert shown.shape == drawn.shape and (shown == drawn).all(), \
        f"the figure in the page is not the kernel's frame for R={new_value:.2f}"
    assert not (shown.shape == _png_pixels(old_src).shape
                and (shown == _png_pixels(old_src)).all()), "same pixels after the step"

    # and back: the readout and the figure return to the first value's
    back = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
    handle.focus()
    page.keyboard.press(back)
    page.wait_for_function("([el, src]) => { const i = el.querySelector("
                           "'.jp-OutputArea-output img'); return i && i.getAttribute('src') !== src; }",
                           arg=[cell.element_handle(), new_src], timeout=30_000)
    assert readout.inner_text().strip() == old_readout
    back_px, old_px = _png_pixels(image.get_attribute("src")), _png_pixels(old_src)
    assert back_px.shape == old_px.shape and (back_px == old_px).all(), \
        "the figure did not return to the first value's"

    timing = {"slider_step_ms": round(step_ms, 1), "key": key, "R": [old_value, new_value],
              "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    (tmp_path / "slider_step.json").write_text(json.dumps(timing, indent=1))
    record_property("slider_step_ms", timing["slider_step_ms"])
    print(f"\nnotebook 02 in Chromium: one R slider step (key press -> new figure in the page) "
          f"{step_ms:.0f} ms; {json.dumps(timing)}")


def _check_restart(page) -> None:
    """After a kernel restart the widget cell still shows its hint and its one figure, and no
    widget error."""
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext"
                  ".restartKernel(); }")
    _wait_notebook(page, lambda s: s.get("ready") and s.get("kernel") == "idle", 120,
                   "the kernel to restart")
    page.wait_for_timeout(1000)   # what the widget manager does after a restart
    cell = _widget_cell(page)
    assert "run this cell again" in cell.inner_text(), "no hint after a kernel restart"
    assert cell.locator(".jp-OutputArea-output img").count() == 1
    assert "Error displaying widget" not in _page_text(page), "a widget error after a restart"
