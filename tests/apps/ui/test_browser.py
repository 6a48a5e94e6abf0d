"""Browser test: serve the suite with `streamlit run apps/ui/app.py`, load and use every page in headless Chromium.

Chromium is driven over the DevTools protocol (remote debugging on a free local port, the `websockets`
client Streamlit already depends on): `--dump-dom` alone returns Streamlit's empty shell, because the
page is rendered by JavaScript from a websocket stream. Widgets are used the way a person uses them:
mouse clicks at an element's position (Input.dispatchMouseEvent), typed text (Input.insertText, Enter),
a file chosen for the uploader (DOM.setFileInputFiles). After every load and every interaction the test
waits for the expected result and for the script to stop running, then checks what a person sees: the
main area's visible text (innerText) shows no exception, error alert or traceback, no raw HTML markup
(`<mark`, `<span`, escaped entities) and there is no KaTeX math anywhere (text between two `$` turned into
math is the classic Streamlit Markdown failure; no page shows formulas). A screenshot of each page and
of each interaction goes to tests/artifacts/ui/.

The Finance page reads a database built from the test feed (tests/apps/ui/finance_demo.py: keyword
sentiment + topic predictor, the repo's finance graph) whose alert tweets carry cashtags and Markdown/HTML
characters and spike a topic; the topic filter is used like a person uses it; uploading a feed runs the
shipped model. The Medical page links with the hashing encoder (its MiniLM drug index takes minutes to build the
first time). Skipped only when no Chromium binary is installed (Debian: `apt-get install chromium`).
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
from tests.apps.ui.finance_demo import SPIKE_TOPIC, TRICKY, build_finance_demo_db, finance_graph_path

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "tests" / "artifacts" / "ui"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
                  "--disable-extensions", "--disable-component-update", "--disable-sync", "--mute-audio")
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 1000, 4000
# The heading each page must show.
HEADINGS = {"": "kgfusion", "finance": "Financial sentiment monitor", "medical": "Clinical notes",
            "recommend": "Movie recommendations", "models": "Models", "knowledge": "Knowledge graphs"}
# Exception class names or a traceback in the rendered text mean a page crashed.
CRASH_TEXT = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Error|Exception)\b|\bError\b")
# HTML the pages generate must be rendered, never shown: tags of ours or entities in the visible text.
RAW_MARKUP = re.compile(r"</?(?:mark|span|div|sub|br|p)\b|&(?:lt|gt|amp|quot|#x?[0-9a-f]+);", re.IGNORECASE)

PROBE = """(() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const count = (sel) => document.querySelectorAll(sel).length;
  return {
    headings: [...main.querySelectorAll('h1')].map((e) => e.innerText.trim()).filter(Boolean),
    text: main.innerText,
    exceptions: count('[data-testid="stException"]'),
    errors: count('[data-testid="stAlertContentError"]'),
    katex: count('.katex, .katex-error, .katex-display'),
    running: count('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')
      + count('[data-stale="true"]'),
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
def finance_db(tmp_path_factory) -> Path:
    """The finance demo database (tests/apps/ui/finance_demo.py): the test feed doubled, alert tweets rewritten
    to TRICKY, keyword sentiment + topic predictor, no model."""
    return build_finance_demo_db(tmp_path_factory.mktemp("finance"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, finance_db) -> Iterator[str]:
    """`streamlit run apps/ui/app.py` on a free localhost port; yields the base URL once healthy."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    # The same command line `kgfusion ui --headless` runs, plus no file watching (nothing edits the app).
    cmd = [*streamlit_command(port, "127.0.0.1", headless=True),
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO),
           "KGFUSION_FINANCE_DB": str(finance_db), "KGFUSION_FINANCE_KG": str(finance_graph_path()),
           "KGFUSION_MEDICAL_LINK_ENCODER": "hashing"}
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


def settle(devtools: DevTools, condition: str | None, timeout: float, what: str) -> dict:
    """The page probe once the JS ``condition`` holds (None: always) and the script is idle on 3 polls in a
    row (~0.6 s) with nothing left to load; an exception box also ends the wait (the checks report it)."""
    state: dict = {"stable": 0}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = devtools.evaluate(PROBE) or {}
        met = condition is None or bool(devtools.evaluate(condition))
        idle = (met or probe.get("exceptions")) and not probe.get("running") and not probe.get("skeletons")
        state["stable"] = state["stable"] + 1 if idle else 0
        state["probe"] = probe
        if state["stable"] >= 3:
            return probe
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last state: "
                f"{json.dumps(state.get('probe', {}))[:2000]}")


def render(devtools: DevTools, url: str, heading: str | None, timeout: float = 60.0) -> dict:
    """Navigate to ``url``; return the page probe once the heading shows and the script has finished."""
    devtools.call("Page.navigate", url=url)
    time.sleep(0.5)  # let the old document go before probing the new one
    wanted = "" if heading is None else heading
    condition = f"""[...document.querySelectorAll('[data-testid="stMain"] h1')]
        .some((h) => h.innerText.trim() && h.innerText.includes({json.dumps(wanted)}))"""
    return settle(devtools, condition, timeout, f"{url} to render")


def screenshot(devtools: DevTools, height: int, path: Path) -> None:
    """A PNG of the page at full height (capped at MAX_HEIGHT px), written atomically."""
    devtools.evaluate("document.querySelectorAll('*').forEach((e) => { if (e.scrollTop) e.scrollTop = 0; })")
    devtools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=min(max(height, HEIGHT), MAX_HEIGHT),
                  deviceScaleFactor=1, mobile=False)
    time.sleep(0.6)  # charts and tables re-layout after the resize
    data = b64decode(devtools.call("Page.captureScreenshot", format="png")["data"])
    devtools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- using widgets like a person


def js_find(selector: str, text: str | None = None, *, contains: str | None = None, last: bool = False) -> str:
    """A JS expression for the first (or last) element matching ``selector`` whose trimmed innerText equals
    ``text`` / whose textContent (hidden parts too, e.g. a table's accessible grid) contains ``contains``."""
    test = ("(e) => true" if text is None and contains is None else
            f"(e) => e.innerText.trim() === {json.dumps(text)}" if text is not None else
            f"(e) => e.textContent.includes({json.dumps(contains)})")
    pick = "filter(test).at(-1)" if last else "find(test)"
    return f"(() => {{ const test = {test}; return [...document.querySelectorAll({json.dumps(selector)})].{pick}; }})()"


def centre(devtools: DevTools, element: str, scroll: bool = True) -> list[float] | None:
    """Viewport centre of the element (scrolled into view first unless ``scroll`` is False), or None."""
    return devtools.evaluate(f"""(() => {{ const e = {element}; if (!e) return null;
        {"e.scrollIntoView({block: 'center'});" if scroll else ""}
        const r = e.getBoundingClientRect(); return r.width && r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null;
    }})()""")


def click(devtools: DevTools, element: str, what: str, *, scroll: bool = True, timeout: float = 20.0) -> None:
    """A real left click (mouse move, press, release) at the element's centre, once it is on the page."""
    x, y = wait_for(lambda: centre(devtools, element, scroll), timeout, what)
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        devtools.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def type_into(devtools: DevTools, label: str, text: str) -> None:
    """Replace a text input's value (by its label) with ``text`` as typed, then press Enter to submit it."""
    element = f"document.querySelector({json.dumps(f'input[aria-label={json.dumps(label)}]')})"
    click(devtools, element, f"the {label!r} text input")
    devtools.evaluate(f"{element}.select()")
    devtools.call("Input.insertText", text=text)
    for kind in ("keyDown", "keyUp"):
        devtools.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13,
                      nativeVirtualKeyCode=13)


def choose(devtools: DevTools, label: str, typed: str, option: str | None = None, *,
           contains: str | None = None) -> None:
    """Pick an option (exact text ``option``, or the first one containing ``contains``) in the selectbox
    labelled ``label``: open it, type ``typed`` to filter the (virtualised) list, click the option. The list
    is not scrolled into view: a scroll closes the popover."""
    combo = f"document.querySelector({json.dumps(f'input[aria-label={json.dumps(label)}]')})"
    click(devtools, combo, f"the {label!r} selectbox")
    devtools.call("Input.insertText", text=typed)
    click(devtools, js_find('[role="option"]', option, contains=contains),
          f"option {option or contains!r} of {label!r}", scroll=False)


def field_value(label: str) -> str:
    return f"(document.querySelector({json.dumps(f'input[aria-label={json.dumps(label)}]')}) || {{}}).value"


def table_rows(element: str) -> str:
    """JS: data rows of a st.dataframe (its accessible grid, rendered once the table is in view), or -1."""
    return f"""(() => {{ const d = {element}; const t = d && d.querySelector('table[role="grid"]');
        return t ? Number(t.getAttribute('aria-rowcount')) - 1 : -1; }})()"""


def rows_in_view(devtools: DevTools, element: str, what: str) -> int:
    """Scroll the table into view and return its number of data rows."""
    wait_for(lambda: centre(devtools, element), 20, what)
    return wait_for(lambda: (n := devtools.evaluate(table_rows(element))) >= 0 and n + 1, 20, what) - 1


def check_shown(probe: dict, name: str) -> list[str]:
    """What a person must not see: an exception, an error alert, a traceback, raw markup, KaTeX math."""
    text = probe.get("text", "")
    problems = []
    if probe.get("exceptions") or probe.get("errors") or (crash := CRASH_TEXT.search(text)):
        problems.append(f"{probe.get('exceptions')} exception(s), {probe.get('errors')} error alert(s), "
                        f"text {crash.group(0) if crash else '-'!r}")
    if raw := RAW_MARKUP.findall(text):
        problems.append(f"raw markup in the visible text: {sorted(set(raw))}")
    if probe.get("katex"):
        problems.append(f"{probe['katex']} KaTeX element(s): text between `$` signs rendered as math")
    if not text.strip():
        problems.append("empty page")
    return [f"{name}: {p}" for p in problems]


def shoot_and_check(devtools: DevTools, probe: dict, name: str) -> None:
    """Screenshot to tests/artifacts/ui/<name>.png, then fail on anything check_shown reports."""
    shot = ARTIFACTS / f"{name}.png"
    screenshot(devtools, int(probe.get("height") or HEIGHT), shot)
    assert shot.stat().st_size > 10_000, f"{shot} is suspiciously small"
    problems = check_shown(probe, name)
    assert not problems, "\n".join(problems) + f"\nsee {shot}"


PAGES = [spec.url_path for spec in page_specs()]
# The first render of a page loads its models (the recommender: ~30 s idle, minutes on a busy 2-core box).
RENDER_TIMEOUT = {"recommend": 240.0, "medical": 180.0, "finance": 180.0}
# Extra readiness per page: the Knowledge page's Graphviz picture is drawn after the script finishes.
SVG_TEXT = """(() => { const s = document.querySelector('[data-testid="stGraphVizChart"] svg');
  return s ? s.textContent : ''; })()"""
MAIN_TEXT = "document.querySelector('[data-testid=\"stMain\"]').innerText"


def test_every_suite_page_renders_in_chromium(server, devtools):
    """Home, the app pages, Models and Knowledge: heading shown, nothing wrong visible, a screenshot each."""
    assert {"", "finance", "medical", "models", "knowledge"} <= set(PAGES)
    failures = []
    for url_path in PAGES:
        name = url_path or "home"
        probe = render(devtools, f"{server}/{url_path}", HEADINGS.get(url_path), RENDER_TIMEOUT.get(url_path, 90.0))
        if url_path == "knowledge":  # the neighbourhood graph really renders: an SVG naming the entity
            svg = wait_for(lambda: devtools.evaluate(SVG_TEXT), 20, "the neighbourhood SVG")
            assert "Apple" in svg and "in sector" in svg
        shot = ARTIFACTS / f"{name}.png"
        screenshot(devtools, int(probe.get("height") or HEIGHT), shot)
        assert shot.stat().st_size > 10_000, f"{shot} is suspiciously small"
        failures += [f"{problem}; see {shot}" for problem in check_shown(probe, name)]
    assert not failures, "\n".join(failures)


def test_finance_alert_drilldown_shows_tweets_as_written_and_a_feed_uploads(server, devtools, tmp_path):
    render(devtools, f"{server}/finance", HEADINGS["finance"], RENDER_TIMEOUT["finance"])
    # Pick the sector alert: its evidence tweets appear exactly as written, cashtags, <b> and all.
    choose(devtools, "Alert", "sector", contains="· sector · Information Technology ·")
    probe = settle(devtools, f"{field_value('Alert')}.includes('· sector ·')", 60, "the sector alert")
    assert TRICKY in probe["text"], probe["text"][-3000:]
    marks = devtools.evaluate("""[...document.querySelectorAll('.kgf-text mark')].map((m) =>
        [m.innerText, m.title, getComputedStyle(m).backgroundColor])""")
    titled = {text: title for text, title, _ in marks}
    assert {"$AAPL", "$KEY", "$EIX", "fell", "downgrade", "loss"} <= set(titled), marks
    assert "Apple Inc." in titled["$AAPL"] and "fin.lex.downgrade" in titled["downgrade"]  # hover titles
    assert "$PTEN" not in titled  # not an S&P 500 company: plain text
    shown = devtools.evaluate("[...document.querySelectorAll('.kgf-text')].map((d) => d.innerText)")
    assert len(shown) == 3 and all(re.fullmatch(re.escape(TRICKY) + r" \(t\d+-\d\)", t) for t in shown), shown
    # Open the first tweet's evidence: a table of the model score, the rules and the KG links.
    click(devtools, js_find('[data-testid="stExpander"] summary', contains="Evidence"), "the Evidence expander")
    evidence = js_find('[data-testid="stExpander"]:has(details[open])')
    probe = settle(devtools, f"{table_rows(evidence)} > 0", 30, "the evidence table")
    assert rows_in_view(devtools, evidence, "the evidence table") == 8  # model, topic head, 3 rules, 3 companies
    cells = devtools.evaluate(f"{evidence}.querySelector('table').innerText")
    assert "fin.lex.downgrade" in cells and "company/AAPL" in cells
    shoot_and_check(devtools, settle(devtools, None, 10, "the page"), "finance-alert")

    # Upload a small feed and score it with the shipped model.
    feed = tmp_path / "my_feed.csv"
    feed.write_text('text,timestamp\n"Apple $AAPL profit rose 12% in the quarter",2014-02-03T10:00:00Z\n'
                    '"<i>Exxon</i> $XOM cuts 300 jobs; shares fell $2",2014-02-03T11:00:00Z\n'
                    '"Microsoft $MSFT raises guidance *again*",2014-02-04T09:30:00Z\n",2014-02-04T10:00:00Z\n',
                    encoding="utf-8")
    click(devtools, js_find('[data-testid="stSidebar"] label', "Upload a feed"), "the 'Upload a feed' radio")
    settle(devtools, "!!document.querySelector('input[type=file]')", 30, "the file uploader")
    root = devtools.call("DOM.getDocument", depth=-1, pierce=True)["root"]["nodeId"]
    node = devtools.call("DOM.querySelector", nodeId=root, selector="input[type=file]")["nodeId"]
    devtools.call("DOM.setFileInputFiles", files=[str(feed)], nodeId=node)
    settle(devtools, f"{MAIN_TEXT}.includes('my_feed.csv')", 30, "the uploaded file")
    click(devtools, js_find('[data-testid="stMain"] button', "Score feed"), "the 'Score feed' button")
    success = "(document.querySelector('[data-testid=\"stAlertContentSuccess\"]') || {}).innerText"
    probe = settle(devtools, f"({success} || '').includes('items scored')", 120, "the scored feed")
    assert devtools.evaluate(success).startswith("3 items scored, 1 rejected"), devtools.evaluate(success)
    assert re.search(r"Items\s+3\s+Linked to companies\s+3\b", probe["text"]), probe["text"][:2000]
    shoot_and_check(devtools, probe, "finance-upload")


CHART_INFO = r"""((i) => { const c = document.querySelectorAll('[data-testid="stVegaLiteChart"]')[i]; if (!c) return null;
  const texts = (sel) => [...c.querySelectorAll(sel)].map((t) => t.textContent);
  const box = c.closest('[data-testid="stElementContainer"]'), prev = box && box.previousElementSibling;
  return {heading: prev ? prev.innerText.trim() : '',
          y_axis: [...c.querySelectorAll('.role-axis')].map((a) => a.getAttribute('aria-label') || '')
            .find((l) => l.startsWith('Y-axis')) || '',
          y_labels: [...c.querySelectorAll('.role-axis')].filter((a) => (a.getAttribute('aria-label') || '')
            .startsWith('Y-axis')).flatMap((a) => [...a.querySelectorAll('.role-axis-label text')].map((t) => t.textContent)),
          cells: [...c.querySelectorAll('.mark-rect path')].map((r) => {
              const m = /^M([\d.]+),([\d.]+)h([\d.]+)/.exec(r.getAttribute('d') || '');
              return {label: r.getAttribute('aria-label') || '', fill: r.getAttribute('fill'),
                      x: m ? Number(m[1]) : null, y: m ? Number(m[2]) : null, width: m ? Number(m[3]) : 0}; })
            .filter((cell) => cell.label.startsWith('period')),
          legend: texts('.role-legend text')}; })"""


def chart_info(devtools: DevTools, index: int) -> dict:
    """What the ``index``-th Vega-Lite chart (SVG) shows: the Markdown heading above it, its y-axis labels,
    its heatmap cells (one per rect: accessible label "period ...; topic: ...; negative share: ...", fill
    colour, x, y and width in px) and its legend text."""
    return wait_for(lambda: devtools.evaluate(f"{CHART_INFO}({index})"), 20, f"chart {index}")


def selectbox_options(devtools: DevTools, label: str) -> list[str]:
    """The options a person sees on opening the selectbox ``label`` (closed again with Escape)."""
    combo = f"document.querySelector({json.dumps(f'input[aria-label={json.dumps(label)}]')})"
    click(devtools, combo, f"the {label!r} selectbox")
    options = wait_for(lambda: devtools.evaluate(
        "[...document.querySelectorAll('[role=\"option\"]')].map((o) => o.innerText.trim())"), 20,
        f"the options of {label!r}")
    for kind in ("keyDown", "keyUp"):
        devtools.call("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27,
                      nativeVirtualKeyCode=27)
    settle(devtools, "!document.querySelector('[role=\"option\"]')", 20, f"{label!r} to close")
    return options


def test_finance_topic_filter_narrows_alerts_heatmap_lines_and_evidence(server, devtools):
    """Pick a topic in the sidebar filter: the alerts, the topic x day heatmap, the per-topic lines and every
    evidence item are about that topic."""
    render(devtools, f"{server}/finance", HEADINGS["finance"], RENDER_TIMEOUT["finance"])
    heat = chart_info(devtools, 0)
    assert heat["heading"] == "Negative share by topic and day", heat
    assert len(heat["y_labels"]) == 3 and SPIKE_TOPIC in heat["y_labels"], heat  # all the store's topics
    assert devtools.evaluate(field_value("Topic")) == "All topics"

    choose(devtools, "Topic", SPIKE_TOPIC[:4], contains=f"{SPIKE_TOPIC} (")
    probe = settle(devtools, f"{MAIN_TEXT}.includes({json.dumps(f'Alerts about {SPIKE_TOPIC}')})", 60,
                   "the topic's alerts")
    assert re.fullmatch(rf"{SPIKE_TOPIC} \(\d+ items\)", devtools.evaluate(field_value("Topic")))
    # Alerts: only the topic's levels, each naming the topic
    alerts = selectbox_options(devtools, "Alert")
    assert {a.split(" · ")[1] for a in alerts} == {"topic", "company-topic", "sector-topic"}, alerts
    assert all(f"{SPIKE_TOPIC} · z=" in a for a in alerts), alerts
    # Heatmap: one row, the chosen topic, one cell per day side by side; the alert day is its one fully
    # negative cell, in a colour no other cell has
    heat = chart_info(devtools, 0)
    assert heat["heading"] == "Negative share by topic and day"
    assert heat["y_labels"] == [SPIKE_TOPIC] and heat["y_axis"].endswith(f"1 value: {SPIKE_TOPIC}"), heat
    cells = sorted(heat["cells"], key=lambda c: c["x"])
    assert len(cells) > 20 and all(f"; topic: {SPIKE_TOPIC};" in c["label"] for c in cells), cells[:3]
    assert all(c["width"] > 5 for c in cells) and len({c["y"] for c in cells}) == 1, cells[:3]
    assert all(a["x"] + a["width"] <= b["x"] + 0.5 for a, b in zip(cells, cells[1:])), "cells overlap"
    spikes = [c for c in cells if re.search(r"; negative share: 1(;|$)", c["label"])]
    assert len(spikes) == 1 and all(c["fill"] != spikes[0]["fill"] for c in cells if c is not spikes[0]), spikes
    # Per-topic lines: the company with most items of the topic, one line per topic it has
    assert devtools.evaluate(field_value("Company (topic lines)")) == "AAPL"
    lines = chart_info(devtools, 1)
    assert "topic" in lines["legend"] and SPIKE_TOPIC in lines["legend"], lines
    # Evidence of the first alert: three tweets, each showing the topic and its probability
    items = [line for line in probe["text"].splitlines() if "(confidence " in line]
    assert len(items) == 3 and all(line.endswith(f" · topic: {SPIKE_TOPIC} (0.90)") for line in items), items
    assert probe["text"].count(TRICKY) == 3
    shoot_and_check(devtools, settle(devtools, None, 10, "the page"), "finance-topic")


def test_medical_extract_highlights_mentions_and_fills_the_table(server, devtools):
    from kgfusion.apps.common import repo_data_dir

    probe = render(devtools, f"{server}/medical", HEADINGS["medical"], RENDER_TIMEOUT["medical"])
    note = wait_for(lambda: devtools.evaluate(field_value("Example note")), 20, "the example note selectbox")
    click(devtools, js_find('[data-testid="stMain"] button', "Extract"), "the Extract button")
    probe = settle(devtools, "document.querySelectorAll('.kgf-text mark').length > 0", 120, "highlighted mentions")
    # The note reads exactly as the file (badges aside), each mention a styled <mark> with a hover title.
    text = devtools.evaluate("""(() => { const c = document.querySelector('.kgf-text').cloneNode(true);
        c.querySelectorAll('sub').forEach((s) => s.remove()); return c.textContent; })()""")
    assert text == (repo_data_dir() / "notes" / note).read_text(encoding="utf-8")
    marks = devtools.evaluate("[...document.querySelectorAll('.kgf-text mark')].map((m) => [m.className, m.title])")
    assert {cls for cls, _ in marks} <= {"kgf-disease", "kgf-chemical"} and all(title for _, title in marks)
    mentions = int(re.search(r"Mentions\s+(\d+)", probe["text"]).group(1))
    assert mentions == len(marks) > 0
    table = js_find('[data-testid="stDataFrame"]', last=True)
    assert rows_in_view(devtools, table, "the mention table") == mentions
    shoot_and_check(devtools, settle(devtools, None, 10, "the page"), "medical-extract")


def test_recommend_changing_the_user_changes_history_and_recommendations(server, devtools):
    if "recommend" not in PAGES:
        pytest.skip("no recommendation page in this checkout")
    probe = render(devtools, f"{server}/recommend", HEADINGS["recommend"], RENDER_TIMEOUT["recommend"])
    before = probe["text"]
    first = devtools.evaluate(field_value("User"))
    assert first == "1", first  # the first known user
    choose(devtools, "User", "5", "5")  # typed "5" lists 5, 50, 51, ...
    probe = settle(devtools, f"{field_value('User')} === '5' && {MAIN_TEXT} !== {json.dumps(before)}", 60,
                   "user 5's recommendations")
    history = re.search(r"(\d+) rated movies", probe["text"])
    assert history and history.group(0) not in before, probe["text"][:1500]
    assert re.search(r"\n1\. .+ · score \d\.\d{3}", probe["text"])  # ranked titles, literal "1." (no list)
    click(devtools, js_find('[data-testid="stExpander"] summary', contains="1. "), "the first recommendation")
    opened = js_find('[data-testid="stExpander"]:has(details[open])')
    probe = settle(devtools, f"{table_rows(opened)} > 0", 30, "the recommendation's evidence")
    assert devtools.evaluate(f"{opened}.innerText").count("\n") >= 2  # the explanation text is shown
    shoot_and_check(devtools, probe, "recommend-user")


def test_knowledge_runs_the_example_query_and_finds_an_entity(server, devtools):
    render(devtools, f"{server}/knowledge", HEADINGS["knowledge"])
    click(devtools, js_find('[data-testid="stMain"] button', "Run query"), "the Run query button")
    caption = """[...document.querySelectorAll('[data-testid="stCaptionContainer"]')].map((c) => c.innerText)
        .find((t) => / row\\(s\\)/.test(t)) || ''"""
    settle(devtools, caption, 60, "the SPARQL result")
    rows = int(re.match(r"(\d+) row", devtools.evaluate(caption)).group(1))
    result = """(() => { const form = document.querySelector('[data-testid="stForm"]');
        return [...document.querySelectorAll('[data-testid="stDataFrame"]')]
            .find((d) => form.compareDocumentPosition(d) & Node.DOCUMENT_POSITION_FOLLOWING); })()"""
    assert rows > 0 and rows_in_view(devtools, result, "the SPARQL result table") == rows
    assert "ticker" in devtools.evaluate(f"{result}.querySelector('table').innerText")  # the example's columns
    shoot_and_check(devtools, settle(devtools, None, 10, "the page"), "knowledge-sparql")

    type_into(devtools, "Mention", "Microsft")  # misspelt on purpose: found by the linker
    success = "(document.querySelector('[data-testid=\"stAlertContentSuccess\"]') || {}).innerText || ''"
    settle(devtools, f"({success}).includes('Microsoft')", 60, "the entity search hit")
    assert "company:MSFT" in devtools.evaluate(success)
    candidates = js_find('[data-testid="stDataFrame"]', contains="company:MSFT")
    assert rows_in_view(devtools, candidates, "the candidate table") >= 1
    shoot_and_check(devtools, settle(devtools, None, 10, "the page"), "knowledge-search")

