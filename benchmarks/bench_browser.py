"""The demo in a real browser after a command-line refresh (issue 13): how long until the portfolio
page shows its tiles and its table, and a model page its tiles and its chart.

Builds the demo company (``valuetrack demo``, full scale), runs ``valuetrack refresh`` as its own
process (the valuation is written to the ledger there), starts ``valuetrack serve`` and drives
Debian's chromium with Playwright (``executable_path``; nothing is downloaded). Each figure is the
time from ``page.goto`` to the moment the elements are visible, in a fresh tab (a new Streamlit
session): the first visit after the server started, then the median of three more visits.
Targets: portfolio ≤ 2 s, model page ≤ 1.5 s. The portfolio's charts follow its table (D45): the time
until they show is reported too (``charts_median_s``), without a target. The load average of the
machine during the visits is recorded: on the 2-core build machine the browser's time grows with it.
So each page is also timed against a baseline served beside it, the least Streamlit page showing the
same things (five tiles and a one-cell table; and an inline SVG chart for the model page), visited
in the same rounds: ``over_baseline`` is the page's median over its baseline's, what the page itself
adds to what any Streamlit page showing a chart costs on that machine at that moment. The same page
with a plotly chart instead (``baseline_model_plotly``) is timed too: what any page opening on a
plotly chart costs, the reason the model page's first section is SVG (D51).

    python -m benchmarks browser [--quick]     # --quick: the demo at scale 0.1
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from valuetrack.cli import wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("VALUETRACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PAGES = {  # address → what must be visible, then what is timed as well (no target)
    "portfolio": ("/portfolio", ["[data-testid=stMetric] >> nth=3", "[data-testid=stMain] table >> nth=0"],
                  [".js-plotly-plot >> nth=1"]),  # its two charts, which follow the table (D45)
    # its first chart is inline SVG (D51): plotly's bundle is loaded only by the other sections
    "model": ("/model?model=homepage-recs", ["[data-testid=stMetric] >> nth=2", "[data-testid=svg-chart] >> nth=0"], []),
}
TARGETS = {"portfolio": 2.0, "model": 1.5}


def _cli(cwd: Path, env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "valuetrack", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Visible: present, with an area, not hidden; checked in the page at every animation frame. (A
# locator's wait_for retries after 20, 100, 100, then every 500 ms, so a page that shows at 1.1 s was
# timed 1.0 or 1.5 s depending on where the retries fell.)
_VISIBLE = """pairs => pairs.every(([css, k]) => {
  const e = document.querySelectorAll(css)[k];
  if (!e) return false;
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
})"""


def _pairs(selectors: list[str]) -> list[tuple[str, int]]:
    """``"css >> nth=K"`` → (css, K): the K-th match (0 without ``nth``)."""
    out = []
    for sel in selectors:
        css, _, nth = sel.partition(" >> nth=")
        out.append((css, int(nth or 0)))
    return out


def _visit(browser: Any, url: str, selectors: list[str], then: list[str]) -> tuple[float, float | None]:
    """Seconds until ``selectors`` are visible, and until ``then`` are too (None without)."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(_VISIBLE, arg=_pairs(selectors), polling="raf", timeout=120_000)
        shown = time.perf_counter() - t0
        if then:
            page.wait_for_function(_VISIBLE, arg=_pairs(then), polling="raf", timeout=120_000)
        return shown, (time.perf_counter() - t0) if then else None
    finally:
        page.close()


BASELINE = """import streamlit as st

st.set_page_config(layout="wide")
st.title("Baseline")
for i, col in enumerate(st.columns(5)):
    col.metric(f"Tile {i}", f"${i}.0K")
st.html("<table><tr><td>one cell</td></tr></table>")
if st.query_params.get("svg"):  # a line of 365 points drawn as inline SVG, as the model page's first chart is
    points = " ".join(f"{20 + 2 * i},{280 - 0.7 * i}" for i in range(365))
    st.markdown('<div>\\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 300" width="100%" data-testid="svg-chart">'
                f'<polyline points="{points}" fill="none" stroke="#1f4e79"/></svg>\\n</div>', unsafe_allow_html=True)
if st.query_params.get("chart"):  # the same as a plotly chart: what the model page's first chart was before D51
    import plotly.graph_objects as go

    st.plotly_chart(go.Figure(go.Scatter(x=list(range(365)), y=list(range(365)))))
"""
BASELINES = {  # the least Streamlit page showing the same things, served beside the app: load-independent ratios
    "portfolio": ("/", ["[data-testid=stMetric] >> nth=3", "[data-testid=stMain] table >> nth=0"], []),
    "model": ("/?svg=1", ["[data-testid=stMetric] >> nth=2", "[data-testid=svg-chart] >> nth=0"], []),
    "model_plotly": ("/?chart=1", ["[data-testid=stMetric] >> nth=2", ".js-plotly-plot >> nth=0"], []),  # for reference
}


def _serve(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _port()
    proc = subprocess.Popen([*args, "--port" if args[2] == "valuetrack" else "--server.port", str(port)],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if wait_until_serving(url, proc):
        return proc, url
    _stop(proc)
    raise RuntimeError(f"{' '.join(args[:4])} did not answer within 120 s")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run(quick: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"chromium not found at {CHROMIUM}: run `bash scripts/system-deps.sh`")
    env = {k: v for k, v in os.environ.items() if k not in ("VALUETRACK_CONFIG", "VALUETRACK_AS_OF")}
    env.update(PYTHONPATH=str(ROOT), VALUETRACK_USER="bench@example.com", STREAMLIT_SERVER_FILE_WATCHER_TYPE="none")
    out: dict[str, Any] = {"scale": 0.1 if quick else 1.0, "targets_s": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench_browser_") as tmp:
        work = Path(tmp)
        out["demo_s"] = round(_cli(work, env, "demo", *(["--scale", "0.1"] if quick else [])), 1)
        out["refresh_s"] = round(_cli(work, env, "refresh"), 1)
        (work / "baseline.py").write_text(BASELINE)
        app, app_url = _serve([sys.executable, "-m", "valuetrack", "serve", "--headless"], work, env)
        try:
            base, base_url = _serve([sys.executable, "-m", "streamlit", "run", "baseline.py", "--server.headless", "true",
                                     "--browser.gatherUsageStats", "false"], work, env)
        except Exception:
            _stop(app)
            raise
        targets = {**{name: (app_url + path, sel, then) for name, (path, sel, then) in PAGES.items()},
                   **{f"baseline_{name}": (base_url + path, sel, then) for name, (path, sel, then) in BASELINES.items()}}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
                try:  # in rounds, each page once per round: the pages and their baselines share the load
                    seen = {name: [] for name in targets}
                    for _ in range(4):
                        for name, (url, selectors, then) in targets.items():
                            seen[name].append(_visit(browser, url, selectors, then))
                    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
                finally:
                    browser.close()
        finally:
            _stop(base)
            _stop(app)
    for name, visits in seen.items():
        first, again = visits[0], visits[1:]
        shown = [a[0] for a in again]
        out[name] = {"first_visit_s": round(first[0], 3), "median_s": round(statistics.median(shown), 3),
                     "max_s": round(max(shown), 3)}
        if again[0][1] is not None:
            out[name]["charts_median_s"] = round(statistics.median(a[1] for a in again), 3)
    for name in PAGES:
        out[name]["over_baseline"] = round(out[name]["median_s"] / out[f"baseline_{name}"]["median_s"], 2)
    return out
