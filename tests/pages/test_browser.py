"""One real-browser test: `valuetrack serve --headless` on a small demo, driven by Playwright in
Debian's chromium. Opens the portfolio, clicks into a model, and saves the screenshots the README
and docs/dashboard.md show. Fails (never skips) when chromium or playwright is missing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pages.conftest import AS_OF, ROOT

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("VALUETRACK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DOCS_IMG = ROOT / "docs" / "img"
# the docs' screenshots are refreshed only on request, so a test run leaves the checkout clean
UPDATE_DOCS = os.environ.get("VALUETRACK_UPDATE_SCREENSHOTS") == "1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(demo_dir: Path, tmp_path: Path):
    work = tmp_path / "demo"
    shutil.copytree(demo_dir, work)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "VALUETRACK_CONFIG"}
    # no file watcher: other edits in the checkout must not put a "File change, rerun" banner in the shots
    # PYTHONPATH: this checkout's code, not whichever checkout the virtualenv's editable install names
    env.update(VALUETRACK_AS_OF=AS_OF, VALUETRACK_USER="ana@example.com", STREAMLIT_SERVER_FILE_WATCHER_TYPE="none",
               PYTHONPATH=str(ROOT))
    log = open(tmp_path / "server.log", "wb")
    # its own process group: `valuetrack serve` starts `streamlit run` as a child, and both must end
    proc = subprocess.Popen([sys.executable, "-m", "valuetrack", "serve", "--headless", "--port", str(port)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not answer within 120 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this fixture started (serve + streamlit)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_portfolio_and_model_in_chromium(server: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM}: run `bash scripts/system-deps.sh`"
    try:
        from playwright.sync_api import expect, sync_playwright
    except ModuleNotFoundError:
        pytest.fail('playwright is not installed: pip install -e ".[test]" (never `playwright install`)')
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=180_000)  # the first render values the portfolio (cold cache)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1700}, device_scale_factor=1)
            page.set_default_timeout(180_000)
            page.goto(server + "/portfolio")
            expect(page.get_by_role("heading", name="Model portfolio")).to_be_visible()
            expect(page.get_by_test_id("stMetric").first).to_be_visible()
            expect(page.locator("table.vt-table").first).to_be_visible()
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            page.wait_for_timeout(1500)  # let the charts finish their first draw
            assert "Net value to date" in page.inner_text("body")
            page.screenshot(path=str(tmp_path / "portfolio.png"), full_page=True)
            if UPDATE_DOCS:
                page.screenshot(path=str(DOCS_IMG / "portfolio.png"), full_page=True)

            link = page.get_by_role("link", name="Open model detail")
            expect(link).to_be_visible()
            link.click()
            page.wait_for_url("**/model?model=*")
            expect(page.get_by_text("Uplift per unit over time").or_(page.get_by_text("Actual KPI against the counterfactual"))).to_be_visible()
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            expect(page.get_by_text("Net value to date").first).to_be_visible()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
            if UPDATE_DOCS:
                page.screenshot(path=str(DOCS_IMG / "model.png"), full_page=True)
            assert "Traceback" not in page.inner_text("body")
        finally:
            browser.close()
    for name in ("portfolio.png", "model.png"):
        assert (DOCS_IMG / name).stat().st_size > 20_000
