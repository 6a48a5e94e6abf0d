"""Browser test: serve the suite with `streamlit run apps/ui/app.py`, load every page in headless Chromium.

Chromium is driven over the DevTools protocol (remote debugging on a free local port, the `websockets`
client Streamlit already depends on): `--dump-dom` alone returns Streamlit's empty shell, because the
page is rendered by JavaScript from a websocket stream. For each page the test waits until the page's
heading is shown and the script has stopped running, asserts there is no Streamlit exception box,
error alert or traceback text, and saves a screenshot to tests/artifacts/ui/<page>.png.

Skipped only when no Chromium binary is installed (Debian: `apt-get install chromium`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgfusion.apps.ui.cli import streamlit_command
from kgfusion.apps.ui.pages import page_specs

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "tests" / "artifacts" / "ui"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
                  "--disable-extensions", "--disable-component-update", "--disable-sync", "--mute-audio")
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 1000, 4000
# The heading each page must show (pages whose heading we do not own only need some heading).
HEADINGS = {"": "kgfusion", "finance": "Financial sentiment monitor", "medical": "Clinical notes",
            "models": "Models", "knowledge": "Knowledge graphs"}
# Exception class names or a traceback in the rendered text mean a page crashed.
CRASH_TEXT = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Error|Exception)\b|\bError\b")

PROBE = """(() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const count = (sel) => document.querySelectorAll(sel).length;
  return {
    headings: [...main.querySelectorAll('h1')].map((e) => e.innerText.trim()).filter(Boolean),
    text: main.innerText,
    exceptions: count('[data-testid="stException"]'),
    errors: count('[data-testid="stAlertContentError"]'),
    running: count('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'),
    skeletons: count('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]'),
    height: Math.max(main.scrollHeight, document.body.scrollHeight),
  };
})()"""


def find_chromium() -> str | None:
    """$CHROMIUM if set, else the first Chromium/Chrome binary on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    """Poll ``check()`` until it returns a truthy value; fail with ``what`` (and the process log) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        value = check()
        if value:
            return value
        time.sleep(0.2)
    detail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")


def _get(url: str, timeout: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (localhost only)
            return resp.read().decode("utf-8")
    except OSError:
        return None


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=15)
        self._id = 0

    def call(self, method: str, timeout: float = 30.0, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:  # events arrive interleaved with answers; skip them
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """`streamlit run apps/ui/app.py` on a free localhost port; yields the base URL once healthy."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    # The same command line `kgfusion ui --headless` runs, plus no file watching (nothing edits the app).
    cmd = [*streamlit_command(port, "127.0.0.1", headless=True),
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/_stcore/health") == "ok", 40, "streamlit /_stcore/health", proc, log)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def devtools(tmp_path_factory) -> Iterator[DevTools]:
    """Headless Chromium with remote debugging on a free port; yields a client for its first tab."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = profile.parent / "chromium.log"
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
           f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    client = None
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(lambda: port_file.is_file() and port_file.read_text().strip(), 30, "Chromium DevTools port", proc, log)
        port = port_file.read_text().split()[0]

        def page_socket() -> str | None:
            targets = json.loads(_get(f"http://127.0.0.1:{port}/json/list") or "[]")
            return next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)

        client = DevTools(wait_for(page_socket, 15, "a Chromium page target", proc, log))
        client.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                    mobile=False)
        yield client
    finally:
        if client is not None:
            client.close()
        stop(proc)


def render(devtools: DevTools, url: str, heading: str | None, timeout: float = 45.0) -> dict:
    """Navigate to ``url``; return the page probe once the heading shows and the script has finished."""
    devtools.call("Page.navigate", url=url)
    time.sleep(0.5)  # let the old document go before probing the new one
    state: dict = {"stable": 0}

    def ready():
        probe = devtools.evaluate(PROBE) or {}
        heads = probe.get("headings", [])
        done = (bool(heads) if heading is None else any(heading in h for h in heads)) or probe.get("exceptions")
        idle = done and not probe.get("running") and not probe.get("skeletons")
        state["stable"] = state["stable"] + 1 if idle else 0
        state["probe"] = probe
        return probe if state["stable"] >= 3 else None  # idle on 3 polls in a row (~0.6 s)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = ready()
        if probe:
            return probe
        time.sleep(0.2)
    pytest.fail(f"{url} did not finish rendering in {timeout:.0f} s; last state: "
                f"{json.dumps(state.get('probe', {}))[:2000]}")


def screenshot(devtools: DevTools, height: int, path: Path) -> None:
    """A PNG of the page at full height (capped at MAX_HEIGHT px), written atomically."""
    devtools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=min(max(height, HEIGHT), MAX_HEIGHT),
                  deviceScaleFactor=1, mobile=False)
    time.sleep(0.4)  # charts re-layout after the resize
    data = b64decode(devtools.call("Page.captureScreenshot", format="png")["data"])
    devtools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


PAGES = [spec.url_path for spec in page_specs()]
# Extra readiness per page: the Knowledge page's Graphviz picture is drawn after the script finishes.
SVG_TEXT = """(() => { const s = document.querySelector('[data-testid="stGraphVizChart"] svg');
  return s ? s.textContent : ''; })()"""


def test_every_suite_page_renders_in_chromium(server, devtools):
    """Home, the app pages, Models and Knowledge: heading shown, no exception, a screenshot each."""
    assert {"", "finance", "medical", "models", "knowledge"} <= set(PAGES)
    failures = []
    for url_path in PAGES:
        name = url_path or "home"
        probe = render(devtools, f"{server}/{url_path}", HEADINGS.get(url_path))
        if url_path == "knowledge":  # the neighbourhood graph really renders: an SVG naming the entity
            svg = wait_for(lambda: devtools.evaluate(SVG_TEXT), 20, "the neighbourhood SVG")
            assert "Apple" in svg and "in sector" in svg
        shot = ARTIFACTS / f"{name}.png"
        screenshot(devtools, int(probe.get("height") or HEIGHT), shot)
        assert shot.stat().st_size > 10_000, f"{shot} is suspiciously small"
        crash = CRASH_TEXT.search(probe["text"])
        if probe["exceptions"] or probe["errors"] or crash:
            failures.append(f"{name}: {probe['exceptions']} exception(s), {probe['errors']} error alert(s), "
                            f"text {crash.group(0) if crash else '-'!r}; see {shot}")
        assert probe["text"].strip(), f"{name}: empty page"
    assert not failures, "\n".join(failures)
