"""The portfolio reconciles to the cent in a real browser (issue 16): the tile, the rows and the
waterfall, read at full precision from their titles (and the chart's own data), add up, first
without an overlap deduction, then with three models counting the same units (two copies of
homepage-recs reading its rows, refreshed) and one more model without an estimate.

Marker ``browser``: Debian's chromium through Playwright (fails, never skips, when missing).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.pages.conftest import AS_OF, ROOT, run_cli
from tests.pages.test_browser import Tab, _free_port, browser  # noqa: F401 (the browser fixture)
from valuetrack.cli import wait_until_serving

pytestmark = pytest.mark.browser
CENT = 0.005


@pytest.fixture(scope="module")
def workspace(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("reconcile") / "demo"
    shutil.copytree(demo_dir, work)
    yield work


@pytest.fixture(scope="module")
def server(workspace: Path) -> Iterator[str]:
    from valuetrack.store.db import dispose_all

    dispose_all()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "VALUETRACK_CONFIG"}
    env.update(VALUETRACK_AS_OF=AS_OF, VALUETRACK_USER="ana@example.com", STREAMLIT_SERVER_FILE_WATCHER_TYPE="none",
               PYTHONPATH=str(ROOT))
    log = open(workspace.parent / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "valuetrack", "serve", "--headless", "--port", str(port)],
                            cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_serving(url, proc):
            assert proc.poll() is None, (workspace.parent / "server.log").read_text()
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


def _cli(workspace: Path, *args: str) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workspace)
        mp.delenv("VALUETRACK_CONFIG", raising=False)
        mp.setenv("VALUETRACK_USER", "ana@example.com")
        mp.setenv("VALUETRACK_AS_OF", AS_OF)
        code, out = run_cli(*args)
    from valuetrack.store.db import dispose_all

    dispose_all()
    assert code == 0, out
    return out


def _register_copy(workspace: Path, name: str) -> None:
    """A model reading homepage-recs' rows (the same units, the same KPI, the same estimate)."""
    manifest = _cli(workspace, "models", "export", "--name", "homepage-recs")
    path = workspace / f"{name}.toml"
    path.write_text(manifest.replace('name = "homepage-recs"', f'name = "{name}"', 1)
                    .replace('display_name = "', f'display_name = "{name} ', 1)
                    .replace('model = "model_id"', 'model = "model_id"\nmodel_value = "homepage-recs"', 1))
    _cli(workspace, "models", "register", "--file", str(path))


def _amount(title: str) -> float:
    """The full-precision figure in a title such as 'net 1234.5678 USD' or 'Net value to date: -12.5'."""
    for word in title.replace(":", " ").split():
        try:
            return float(word)
        except ValueError:
            continue
    raise AssertionError(f"no figure in title {title!r}")


def _read(tab: Tab) -> dict[str, Any]:
    page = tab.open("/portfolio")
    tile = page.locator("[data-testid=tile-to-date]").get_attribute("title")
    table = "table[data-testid=portfolio-table] tbody td"
    rows = [_amount(t) for t in page.locator(f"{table}[data-estimate=yes]").evaluate_all("es => es.map(e => e.getAttribute('aria-label'))")]
    costs = [_amount(t.split("cost", 1)[1])
             for t in page.locator(f"{table}[data-estimate=no]").evaluate_all("es => es.map(e => e.getAttribute('aria-label'))")]
    steps = {page.locator("table[data-testid=reconciliation] tr[data-step]").nth(i).get_attribute("data-step"):
             _amount(page.locator("table[data-testid=reconciliation] tr[data-step] td.num").nth(i).get_attribute("title"))
             for i in range(4)}
    page.locator("[data-testid=stPlotlyChart] .js-plotly-plot").nth(1).wait_for()  # the charts follow the table (D45)
    chart = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot").evaluate_all(
        "es => es.map(e => (e.data || [])[0]).filter(d => d && d.type === 'waterfall').map(d => Array.from(d.y))")
    assert len(chart) == 1, chart
    return {"tile": _amount(tile), "rows": rows, "costs": costs, "steps": steps, "waterfall": chart[0],
            "text": page.inner_text("[data-testid=stMain]")}


def _adds_up(seen: dict[str, Any]) -> None:
    s = seen["steps"]
    assert abs(sum(seen["rows"]) - s["rows"]) < CENT  # the rows as shown, at full precision
    assert abs(-sum(seen["costs"]) - s["no_estimate"]) < CENT  # each model without an estimate shows its cost
    assert abs(s["rows"] + s["overlap"] + s["no_estimate"] - s["total"]) < CENT
    assert abs(s["total"] - seen["tile"]) < CENT  # the tile is the waterfall's total
    assert seen["waterfall"] == pytest.approx([s["rows"], s["overlap"], s["no_estimate"], s["total"]], abs=CENT)


def test_tiles_rows_and_waterfall_add_up_with_and_without_overlap(server: str, browser: Any, workspace: Path) -> None:  # noqa: F811
    for name in ("recs-copy-one", "recs-copy-two"):  # registered, not refreshed: no estimate, their cost counts
        _register_copy(workspace, name)
    tab = Tab(browser, server, 1440)
    try:
        before = _read(tab)
        assert before["steps"]["overlap"] == 0  # the demo's one overlap (search-ranking-v4) creates no value
        assert len(before["costs"]) == 2 and min(before["costs"]) > 0
        _adds_up(before)

        _cli(workspace, "refresh", "--as-of", AS_OF)  # the copies now count every unit of homepage-recs again
        _register_copy(workspace, "recs-copy-three")  # and one more model without an estimate
        after = _read(tab)
        value = json.loads(_cli(workspace, "value", "--json"))
        by_name = {m["model"]: m for m in value["models"]}
        v = by_name["homepage-recs"]["gross"]
        assert v > 0 and by_name["recs-copy-two"]["gross"] == pytest.approx(v, rel=1e-9)
        # three models counting the same units count them once: two of the three claims are deducted (and a
        # share of search-ranking-v4's, on the quarter of its units it shares, if it creates value there)
        three = [p for p in value["overlap_patterns"] if {"homepage-recs", "recs-copy-one", "recs-copy-two"} <= set(p["models"])]
        assert three and all(p["counted_at"] == "homepage-recs" for p in three)
        assert value["totals"]["double_counted"] >= 2 * v * (1 - 1e-9)
        assert after["steps"]["overlap"] == pytest.approx(-value["totals"]["double_counted"], abs=CENT)
        assert len(after["costs"]) == 1
        _adds_up(after)
        assert after["tile"] == pytest.approx(value["totals"]["net"], abs=CENT)
        assert "From the rows to the total" in after["text"] and "None" not in after["text"]
    finally:
        tab.close()
