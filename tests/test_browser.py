"""A real browser on notebook 02: JupyterLab on 127.0.0.1, headless Chromium driven by
Playwright, Run > Run All Cells in the `ci` profile, then the R slider moved with the keyboard.

It checks what nbval cannot: that the R and tau sliders render as sliders (the ipywidgets lab
extension is found and loads), that a key press on the R slider's handle reaches the kernel, and
that the live figure below the sliders is redrawn for the new value (its pixels equal the frame
the kernel's SelectionExplorer last drew, whose figure title shows the new R; the readout shows
it too) and returns to the first picture on the way back. It also times one slider
step, from the key press to the new image in the DOM, and prints it (`-s`), records it as the
`slider_step_ms` property and writes it to `slider_step.json` in the test's tmp dir.

Needs Debian's `chromium` (`apt-get install chromium`; Playwright's own browser download is not
used) and `pip install playwright`. Without them it is skipped, unless PROMIX_REQUIRE_BROWSER=1
(what .ci/run sets): then it fails. PROMIX_CHROMIUM may name another Chromium binary.
"""
from __future__ import annotations

import base64
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
NOTEBOOK = REPO / "notebooks" / "02_progressive_selection.ipynb"
# Run All trains the ci profile's one tiny run: about 40 s on an idle 2-core CPU (the whole test
# then about 1.5 min), several minutes when other trainings share the cores.
RUN_ALL_TIMEOUT_S = float(os.environ.get("PROMIX_BROWSER_RUN_ALL_TIMEOUT_S", "420"))

pytestmark = pytest.mark.browser


def _chromium() -> tuple[str | None, str]:
    """(path of a Chromium binary and Playwright is importable, "") or (None, why not)."""
    missing = []
    exe = os.environ.get("PROMIX_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not exe or not os.access(exe, os.X_OK):
        missing.append(f"no chromium executable ({exe or 'none on PATH'}): "
                       "apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright not importable: pip install playwright")
    for mod in ("jupyterlab", "ipywidgets", "jupyter_client"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(f"{mod} not importable: pip install -e '.[dev]'")
    if missing:
        return None, ("chromium not found: apt-get install chromium, pip install playwright ("
                      + "; ".join(missing) + ")")
    return exe, ""


@pytest.fixture(scope="module")
def chromium_path() -> str | None:
    """The Chromium binary; a skip without it, or None under PROMIX_REQUIRE_BROWSER=1 (the test
    then fails: a failure, not a setup error or a skip)."""
    exe, why = _chromium()
    if exe is None and os.environ.get("PROMIX_REQUIRE_BROWSER") != "1":
        pytest.skip(why)
    return exe


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
    """A JupyterLab server serving ``root``; its log in ``log``; `stop` ends it and its kernels."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home
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
        # one thread per kernel unless set: on 2 busy cores torch's default (one thread per
        # core) trains the notebook's tiny run 4-8x slower (measured 15-21 s vs 55-127 s)
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
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
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


@pytest.fixture
def lab(tmp_path, chromium_path):
    """JupyterLab serving a tmp copy of notebook 02 without outputs or execution counts (the
    committed file is never touched)."""
    if chromium_path is None:  # the test fails on it
        yield None
        return
    root = tmp_path / "root"
    root.mkdir()
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:  # start unexecuted, so "every cell numbered" means "ran here"
        if cell["cell_type"] == "code":
            cell["execution_count"], cell["outputs"] = None, []
    (root / NOTEBOOK.name).write_text(json.dumps(nb, indent=1))
    server = LabServer(root, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# Run in the page (JupyterLab exposes `window.jupyterapp` with --LabApp.expose_app_in_browser).
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
    const errors = [];
    for (let j = 0; j < c.outputs.length; j++) {
      if (c.outputs.get(j).type !== 'error') continue;
      const o = c.outputs.get(j).toJSON();
      errors.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'));
    }
    cells.push({index: i, count: c.executionCount, state: c.executionState || null, errors});
  }
  return {ready: panel.sessionContext.isReady, kernel: kernel ? kernel.status : null,
          kernel_id: kernel ? kernel.id : null, cells};
}"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _wait_notebook(page, predicate, timeout_s: float, what: str) -> dict:
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        state = page.evaluate(JS_NOTEBOOK_STATE)
        errors = [e for c in state.get("cells", []) for e in c["errors"]]
        if errors:
            raise AssertionError("a cell raised:\n" + ANSI.sub("", errors[0])[-3000:])
        if predicate(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last state: "
                         f"{json.dumps(state)[:2000]}")


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


def test_notebook_02_sliders_in_a_real_browser(lab, chromium_path, tmp_path, record_property):
    if chromium_path is None:
        pytest.fail(f"PROMIX_REQUIRE_BROWSER=1 but {_chromium()[1]}", pytrace=False)
    from playwright.sync_api import sync_playwright

    t_start = time.monotonic()
    args = ["--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
            "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    console: list[str] = []
    shot = tmp_path / "failure.png"
    with sync_playwright() as pw:
        xdg = {k: str(tmp_path / "chromium" / k) for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=args,
                                     env={**os.environ, **xdg})  # nothing into ~/.config
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # only our server: the notebook's Colab badge and the like are not fetched
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
            page.set_default_timeout(60_000)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                _check_notebook(page, lab, tmp_path, record_property, t_start)
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


def _check_notebook(page, lab: LabServer, tmp_path: Path, record_property, t_start: float):
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}", wait_until="load")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
    _wait_notebook(page, lambda s: s.get("ready") and s.get("kernel") == "idle", 60,
                   "the kernel to start")
    extensions = page.evaluate("() => JSON.parse(document.getElementById("
                               "'jupyter-config-data').textContent).federated_extensions"
                               ".map(e => e.name)")
    assert "@jupyter-widgets/jupyterlab-manager" in extensions, \
        f"JupyterLab does not find ipywidgets' lab extension (jupyterlab_widgets): {extensions}"
    t_loaded = time.monotonic()

    # Run > Run All Cells, as a reader would
    page.locator(".jp-NotebookPanel .jp-Notebook").click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^\s*Run All Cells\s*$")).click()
    state = _wait_notebook(
        page, lambda s: s.get("kernel") == "idle" and s["cells"] and all(
            isinstance(c["count"], int) and c["state"] != "running" for c in s["cells"]),
        RUN_ALL_TIMEOUT_S, "Run All Cells to finish (every code cell numbered, kernel idle)")
    t_ran = time.monotonic()

    # the sliders render as sliders, in the output of the widget cell, the figure below them
    page.locator(".jp-OutputArea .widget-slider").first.wait_for(state="visible", timeout=30_000)
    widget = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-slider"))
    assert widget.count() == 1, f"{widget.count()} outputs hold sliders"
    sliders = widget.locator(".widget-slider")
    labels = [t.strip() for t in sliders.locator(".widget-label").all_inner_texts()]
    assert sorted(labels) == ["R", "tau"], f"slider labels {labels}"
    assert "Error displaying widget" not in page.inner_text("body"), "a widget failed to render"
    r = sliders.filter(has=page.locator(".widget-label", has_text=re.compile(r"^\s*R\s*$")))
    handle, readout = r.locator(".noUi-handle"), r.locator(".widget-readout")
    assert handle.count() == 1 and readout.count() == 1, r.inner_html()[:2000]
    image = widget.locator(".widget-output img")
    image.first.wait_for(state="visible", timeout=30_000)
    assert image.count() == 1, f"{image.count()} images under the sliders"
    old_src, old_readout = image.get_attribute("src"), readout.inner_text().strip()
    old_value = float(old_readout)
    vmax = float(handle.get_attribute("aria-valuemax") or "1")
    key, new_value = ("ArrowRight", old_value + 0.05) if old_value + 0.05 <= vmax + 1e-9 \
        else ("ArrowLeft", old_value - 0.05)

    # one slider step, timed in the page: key down on the handle -> a new <img> in the DOM
    widget.evaluate("""(root, oldSrc) => {
      window.__step = {key: null, img: null};
      document.addEventListener('keydown', () => {
        if (window.__step.key === null) window.__step.key = performance.now(); },
        {capture: true, once: true});
      const seen = () => {
        const img = root.querySelector('.widget-output img');
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
    page.wait_for_function("([el, src]) => { const i = el.querySelector('.widget-output img');"
                           " return i && i.getAttribute('src') !== src; }",
                           arg=[widget.element_handle(), new_src], timeout=30_000)
    assert readout.inner_text().strip() == old_readout
    back_px, old_px = _png_pixels(image.get_attribute("src")), _png_pixels(old_src)
    assert back_px.shape == old_px.shape and (back_px == old_px).all(), \
        "the figure did not return to the first value's"
    assert "Error displaying widget" not in page.inner_text("body")

    t_end = time.monotonic()
    timing = {"slider_step_ms": round(step_ms, 1), "key": key,
              "R": [old_value, new_value],
              "lab_load_s": round(t_loaded - t_start, 1),
              "run_all_s": round(t_ran - t_loaded, 1),
              "browser_part_s": round(t_end - t_start, 1),
              "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    (tmp_path / "slider_step.json").write_text(json.dumps(timing, indent=1))
    record_property("slider_step_ms", timing["slider_step_ms"])
    print(f"\nnotebook 02 in Chromium: one R slider step (key press -> new figure in the DOM) "
          f"{step_ms:.0f} ms; {json.dumps(timing)}; {tmp_path / 'slider_step.json'}")
