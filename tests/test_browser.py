"""The chat notebook in a real JupyterLab, driven by headless Chromium (Playwright).

What a person does, end to end: JupyterLab serves a copy of ``notebooks/en/30_chat_inference.ipynb``
with its parameters pointed at the tiny model and a freshly trained adapter; the browser opens it,
runs all cells from the Run menu, types a question into the chat panel, presses Send, and waits for
the streamed reply to appear in the transcript. A screenshot of the page is saved (its path is
printed; also copied to ``$KIT_SCREENSHOT_DIR/chat_panel.png`` when that is set).

Needs a Chromium (``/usr/bin/chromium``, or ``KIT_CHROMIUM``), the Python package ``playwright`` (it
drives the system Chromium: no browser download) and JupyterLab; ``bash scripts/install_browser.sh``
installs them. Without them the test is skipped, unless ``KIT_REQUIRE_BROWSER=1`` (CI) makes that a
failure. On failure a screenshot, the page's text and the JupyterLab log are saved next to it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kit.ports import free_port

REPO = Path(__file__).resolve().parents[1]
CHAT_NOTEBOOK = REPO / "notebooks" / "en" / "30_chat_inference.ipynb"
QUESTION = "Who are you? Please introduce yourself."
PLACEHOLDER = "Type a message, then Send"  # the ChatPanel's input box (kit/chat/widget.py)
CURSOR = "\u258d"  # the ChatPanel shows it after a reply while it streams

# Headless Chromium in a container: no sandbox (root), no GPU, and no background connections (this
# machine refuses them, and Chromium then stalls).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

# Seconds; generous: the CPU is slow and shared.
SERVER_START_S = 90
PAGE_LOAD_S = 120
ACTION_S = 30  # a click, a key press
KERNEL_IDLE_S = 90
RUN_ALL_S = 240
REPLY_S = 120


def _chromium() -> str | None:
    """KIT_CHROMIUM when set (a path or a command name), else the first Chromium on PATH."""
    if os.environ.get("KIT_CHROMIUM"):
        return shutil.which(os.environ["KIT_CHROMIUM"])
    for candidate in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(candidate):
            return found
    return None


def _missing() -> list[str]:
    missing = []
    if _chromium() is None:
        missing.append("a Chromium executable (apt-get install chromium, or set KIT_CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package playwright")
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyterlab")
    return missing


def _missing_reason() -> str:
    missing = _missing()
    return ("needs " + ", ".join(missing) + ": run bash scripts/install_browser.sh") if missing else ""


# Skipped at collection (before the model and adapter fixtures are built) unless CI requires it.
skip_without_browser = pytest.mark.skipif(bool(_missing_reason()) and os.environ.get("KIT_REQUIRE_BROWSER") != "1",
                                          reason=_missing_reason() or "browser tools present")


# ---------------------------------------------------------------- the served notebook
def _write_notebook(served: Path, parameters: dict) -> Path:
    """A copy of the chat notebook in ``served``, with papermill's injected-parameters cell."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(CHAT_NOTEBOOK))  # as papermill reads it (every cell gets its tags list)
    nb = parameterize_notebook(nb, parameters)
    path = served / "chat.ipynb"
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------- JupyterLab
class JupyterLab:
    """JupyterLab as a subprocess on loopback, with its own config, settings and runtime folders."""

    def __init__(self, root: Path, state: Path, log_path: Path):
        self.root, self.log_path = root, log_path
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        config_dir = state / "config"
        (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
        # No "would you like news?" toast over the notebook.
        (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        env.update({
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
            "JUPYTER_PLATFORM_DIRS": "1",
            # the kernel starts as "python"; make that this interpreter's environment
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
        })
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]  # no queries to PyPI for extensions
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
            cmd.append("--allow-root")
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def _api(self, path: str, method: str = "GET", timeout: float = 5.0) -> bytes:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.read()

    def wait_ready(self, timeout: float = SERVER_START_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self._api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")
                time.sleep(0.5)

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Shut down kernels and server through the API, then make sure the process is gone."""
        if self.proc.poll() is None:
            try:
                self._api("/api/shutdown", method="POST", timeout=15)
            except Exception:  # already going down, or not answering: the signals below handle it
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        self._log.close()


# ---------------------------------------------------------------- the page
NOTEBOOK_STATE_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return {ready: false};
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) {
    for (const o of c.model.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'));
    }
  }
  return {
    ready: true,
    kernel: kernel ? kernel.status : null,
    cells: cells.length,
    executed: cells.filter(c => c.model.executionCount !== null).length,
    errors: errors,
  };
}"""

# The chat panel's transcripts (one per engine): the panel is the output holding its input box; a
# transcript is an HTML widget of bubbles (<div>s), or empty before the first message.
_FIND_TRANSCRIPTS_JS = """(placeholder) => {
  const input = document.querySelector(`textarea[placeholder="${placeholder}"]`);
  const root = input && input.closest('.jp-OutputArea-output');
  if (!root) return null;
  return Array.from(root.querySelectorAll('.widget-html-content'))
    .filter(el => el.querySelector(':scope > div') !== null || el.innerText.trim() === '');
}"""

# Each transcript as a list of its bubbles' text, in display order.
TRANSCRIPTS_JS = f"""(placeholder) => {{
  const transcripts = ({_FIND_TRANSCRIPTS_JS})(placeholder);
  if (!transcripts) return null;
  return {{transcripts: transcripts.map(el => Array.from(el.querySelectorAll(':scope > div')).map(d => d.innerText))}};
}}"""

# From now on, record every text the first transcript shows: the states of the next reply as it streams.
OBSERVE_JS = f"""(placeholder) => {{
  const transcript = ({_FIND_TRANSCRIPTS_JS})(placeholder)[0];
  window.__kitTranscriptStates = [];
  new MutationObserver(() => window.__kitTranscriptStates.push(transcript.innerText))
    .observe(transcript, {{childList: true, subtree: true, characterData: true}});
}}"""


def _wait_until(page, js: str, arg, predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(js, arg) if arg is not None else page.evaluate(js)
        if predicate(value):
            return value
        page.wait_for_timeout(poll * 1000)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last state: {value!r}")


def _assistant_replies(bubbles: list[str]) -> list[str]:
    return [b.split(":", 1)[1].strip() for b in bubbles if b.startswith("Assistant:")]


@pytest.mark.browser
@skip_without_browser
def test_chat_panel_in_jupyterlab(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    if reason := _missing_reason():  # only with KIT_REQUIRE_BROWSER=1
        pytest.fail(reason + " (KIT_REQUIRE_BROWSER=1: not skipping)")
    if not CHAT_NOTEBOOK.is_file():
        pytest.fail(f"{CHAT_NOTEBOOK} is missing")
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    served = tmp_path / "served"
    served.mkdir()
    _write_notebook(served, {
        "model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir),
        "export_dir": str(tmp_path / "merged"), "identity_name": "Lumi", "max_new_tokens": 16, "device": "cpu",
    })
    screenshot = tmp_path / "chat_panel.png"
    lab = JupyterLab(served, tmp_path / "jupyter", tmp_path / "jupyterlab.log")
    page = browser = None
    try:
        lab.wait_ready()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(ACTION_S * 1000)
            try:
                page.goto(f"{lab.url}/lab/tree/chat.ipynb?token={lab.token}", wait_until="domcontentloaded",
                          timeout=PAGE_LOAD_S * 1000)
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=PAGE_LOAD_S * 1000)
                _wait_until(page, NOTEBOOK_STATE_JS, None, lambda s: s.get("ready") and s.get("kernel") == "idle",
                            KERNEL_IDLE_S, "the notebook's kernel to be idle")

                # Run -> Run All Cells, as a person would.
                page.locator(".lm-MenuBar").get_by_role("menuitem", name="Run", exact=True).click()
                page.locator(".lm-Menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()
                state = _wait_until(
                    page, NOTEBOOK_STATE_JS, None,
                    lambda s: s.get("errors") or (s.get("kernel") == "idle" and s.get("executed") == s.get("cells")),
                    RUN_ALL_S, "all cells to run")
                assert not state["errors"], "a cell failed in the browser:\n" + "\n\n".join(state["errors"])

                # The panel: type a question, press Send, wait for the streamed reply.
                box = page.get_by_placeholder(PLACEHOLDER)
                box.wait_for(state="visible", timeout=60_000)
                box.scroll_into_view_if_needed()
                before = page.evaluate(TRANSCRIPTS_JS, PLACEHOLDER)
                assert before and before["transcripts"], f"no transcript in the chat panel: {before!r}"
                replies_before = len(_assistant_replies(before["transcripts"][0]))
                page.evaluate(OBSERVE_JS, PLACEHOLDER)
                box.click()
                box.press_sequentially(QUESTION, delay=10)
                root = box.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]")
                root.get_by_role("button", name="Send").click()

                def answered(s) -> bool:
                    if not s or not s["transcripts"]:
                        return False
                    bubbles = s["transcripts"][0]
                    replies = _assistant_replies(bubbles)
                    return (len(replies) > replies_before and replies[-1] != "" and CURSOR not in replies[-1]
                            and any(b == f"User: {QUESTION}" for b in bubbles))

                after = _wait_until(page, TRANSCRIPTS_JS, PLACEHOLDER, answered, REPLY_S, "the reply in the chat panel",
                                    poll=0.05)
                reply = _assistant_replies(after["transcripts"][0])[-1]
                assert reply, after
                # The reply streamed in: the transcript showed it in progress (with the cursor) before it was done.
                states = page.evaluate("() => window.__kitTranscriptStates")
                streaming = [t for t in states if QUESTION in t and t.rstrip().endswith(CURSOR)]
                assert streaming, f"the transcript never showed the reply in progress; states seen: {states!r}"
                # Send is enabled again once every reply (both columns in compare mode) is complete.
                expect(root.get_by_role("button", name="Send")).to_be_enabled(timeout=REPLY_S * 1000)
                root.scroll_into_view_if_needed()
                page.screenshot(path=str(screenshot))
            except BaseException:
                _save_diagnostics(page, tmp_path, lab)
                raise
            finally:
                browser.close()
    finally:
        lab.stop()

    print(f"\nreply in the browser: {reply!r} (the transcript changed {len(states)} times while it streamed; "
          f"{len(streaming)} of them in progress)")
    print(f"screenshot: {screenshot}")
    if os.environ.get("KIT_SCREENSHOT_DIR"):
        out = Path(os.environ["KIT_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, out / "chat_panel.png")
        print(f"screenshot copied to: {out / 'chat_panel.png'}")
    print(f"browser test wall time: {time.monotonic() - started:.1f} s")


def _save_diagnostics(page, tmp_path: Path, lab: JupyterLab) -> None:
    """A screenshot, the page's text and the server log, for a failure; paths printed."""
    saved = []
    try:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        saved.append(tmp_path / "failure.png")
    except Exception as exc:
        print(f"no failure screenshot: {exc}")
    try:
        (tmp_path / "failure_page.txt").write_text(page.inner_text("body"))
        saved.append(tmp_path / "failure_page.txt")
    except Exception as exc:
        print(f"no page text: {exc}")
    if os.environ.get("KIT_SCREENSHOT_DIR"):
        out = Path(os.environ["KIT_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        for f in saved:
            shutil.copy(f, out / f.name)
    print("browser test failed; diagnostics:", *saved, lab.log_path, sep="\n  ")
    print("JupyterLab log (tail):\n" + lab.log_tail())
