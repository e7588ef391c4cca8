"""The screenshots README.md and docs/ show, taken from the full-scale demo company.

Builds the demo (``valuetrack demo``, scale 1) in a temporary folder, values it with
``valuetrack refresh`` from the command line, starts ``valuetrack serve`` and drives Debian's
chromium with Playwright (``executable_path``; nothing is downloaded), waiting for each page's
tiles, tables and charts before the shot. The report images are pages of a real PDF export
(``valuetrack report``), rendered with pdftoppm.

    python scripts/screenshots.py            # writes docs/img/{portfolio,model}-1440.png, report-page-{1,model}.png

(tests/pages/test_browser.py with VALUETRACK_UPDATE_SCREENSHOTS=1 writes every page at two widths
from the small test demo instead.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from valuetrack.cli import wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
CHROMIUM = os.environ.get("VALUETRACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
WIDTH = 1440
REPORT_MONTH = "2026-04"
REPORT_MODEL = "Homepage recommendations"  # the report page shown: this model's
PLOTLY, SVG = ".js-plotly-plot", "[data-testid=svg-chart]"  # the model page's Value section draws SVG (D51)
SHOTS = {  # file → address, what must be visible, which charts and how many
    "portfolio-1440.png": ("/portfolio", ["table[data-testid=portfolio-table]", "table[data-testid=reconciliation]"], (PLOTLY, 2)),
    "model-1440.png": ("/model?model=homepage-recs", ["table[data-testid=figures]"], (SVG, 3)),
}
IDLE = ("() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'"
        " && !document.querySelector('[data-testid=stSkeleton]')")


def _cli(cwd: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "valuetrack", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shoot(browser, url: str, selectors: list[str], charts: tuple[str, int], out: Path) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000}, device_scale_factor=1)
    page.set_default_timeout(180_000)
    try:
        page.goto(url)
        page.locator("[data-testid=stMetric]").first.wait_for()
        for sel in selectors:
            page.locator(sel).first.wait_for()
        page.locator(charts[0]).nth(charts[1] - 1).wait_for()
        last = -1
        while True:  # settled: not running, and the same height twice
            page.wait_for_function(IDLE)
            page.wait_for_timeout(500)
            height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
            if height == last:
                break
            last = height
        page.set_viewport_size({"width": WIDTH, "height": min(height + 40, 8000)})
        page.wait_for_timeout(1000)  # the charts redraw at the new size
        page.screenshot(path=str(out))
    finally:
        page.close()


def _report_pages(work: Path, env: dict[str, str]) -> None:
    pdf = work / "report.pdf"
    _cli(work, env, "report", "--month", REPORT_MONTH, "--format", "pdf", "--out", str(pdf))
    pages = int(next(line.split()[-1] for line in subprocess.run(
        ["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout.splitlines()
        if line.startswith("Pages:")))
    # sections flow (D46): the page where the model's header (its name, then "… · owner …") is
    model_page = next(n for n in range(2, pages + 1) if re.search(
        rf"^{re.escape(REPORT_MODEL)}\n(?:.*\n){{0,6}}.* · owner ", subprocess.run(
            ["pdftotext", "-f", str(n), "-l", str(n), str(pdf), "-"], check=True, capture_output=True,
            text=True).stdout, re.M))
    for n, name in ((1, "report-page-1"), (model_page, "report-page-model")):
        subprocess.run(["pdftoppm", "-f", str(n), "-l", str(n), "-r", "110", "-png", "-singlefile", str(pdf),
                        str(IMG / name)], check=True)
        print(f"docs/img/{name}.png: page {n} of {pages}")


def main() -> int:
    from playwright.sync_api import sync_playwright

    env = {k: v for k, v in os.environ.items() if k not in ("VALUETRACK_CONFIG", "VALUETRACK_AS_OF")}
    env.update(PYTHONPATH=str(ROOT), VALUETRACK_USER="maya.chen@example.com", STREAMLIT_SERVER_FILE_WATCHER_TYPE="none")
    with tempfile.TemporaryDirectory(prefix="screenshots_") as tmp:
        work = Path(tmp)
        _cli(work, env, "demo")
        _cli(work, env, "refresh")
        _report_pages(work, env)
        port = _port()
        proc = subprocess.Popen([sys.executable, "-m", "valuetrack", "serve", "--headless", "--port", str(port)],
                                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_until_serving(url, proc):
                raise RuntimeError("the dashboard did not answer within 120 s")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for name, (path, selectors, charts) in SHOTS.items():
                        _shoot(browser, url + path, selectors, charts, IMG / name)
                        print(f"docs/img/{name}: {path}")
                finally:
                    browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
