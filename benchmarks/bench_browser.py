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
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("VALUETRACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PAGES = {  # address → what must be visible, then what is timed as well (no target)
    "portfolio": ("/portfolio", ["[data-testid=stMetric] >> nth=3", "[data-testid=stMain] table >> nth=0"],
                  [".js-plotly-plot >> nth=1"]),  # its two charts, which follow the table (D45)
    "model": ("/model?model=homepage-recs", ["[data-testid=stMetric] >> nth=2", ".js-plotly-plot >> nth=0"], []),
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


def _visit(browser: Any, url: str, selectors: list[str], then: list[str]) -> tuple[float, float | None]:
    """Seconds until ``selectors`` are visible, and until ``then`` are too (None without)."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        t0 = time.perf_counter()
        page.goto(url)
        for sel in selectors:
            page.locator(sel).wait_for(state="visible", timeout=120_000)
        shown = time.perf_counter() - t0
        for sel in then:
            page.locator(sel).wait_for(state="visible", timeout=120_000)
        return shown, (time.perf_counter() - t0) if then else None
    finally:
        page.close()


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
        port = _port()
        proc = subprocess.Popen([sys.executable, "-m", "valuetrack", "serve", "--headless", "--port", str(port)],
                                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError("the dashboard did not answer within 120 s")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
                try:
                    for name, (path, selectors, then) in PAGES.items():
                        first = _visit(browser, url + path, selectors, then)
                        again = [_visit(browser, url + path, selectors, then) for _ in range(3)]
                        shown = [a[0] for a in again]
                        out[name] = {"first_visit_s": round(first[0], 3), "median_s": round(statistics.median(shown), 3),
                                     "max_s": round(max(shown), 3)}
                        if then:
                            out[name]["charts_median_s"] = round(statistics.median(a[1] for a in again), 3)
                    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
                finally:
                    browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return out
