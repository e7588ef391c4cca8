"""Registry text written as an attacker would (Markdown links and images, raw HTML, autolinks,
Streamlit directives) is shown as typed: checked in a real browser (Playwright + Debian chromium:
no link, no image, no request because of stored text) and on every page with AppTest."""

from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.pages.conftest import ROOT, app, assert_clean
from tests.pages.test_browser import ARGS, CHROMIUM, server  # noqa: F401 - the served-dashboard fixture

VICTIM = "homepage-recs"
LIVE = re.compile(r"(?<!\\)\]\(https|(?<!\\)<img|(?<!\\):red\[owned|(?<![\\\w])www\.evil")
PAYLOADS = {
    "display_name": "[Click me](https://evil.example/phish)",
    "owner": "![p](https://evil.example/p.png)",
    "team": "<img src=https://evil.example/t.png> www.evil.example :red[owned] $x^2$",
}


def _plant(folder: Path) -> None:
    from valuetrack.access import Actor
    from valuetrack.actions import save
    from valuetrack.context import open_context
    from valuetrack.store.db import dispose_all

    ctx = open_context(cwd=folder, actor=Actor("mallory"))
    current = ctx.registry.get(VICTIM)
    save(ctx, current.spec.replace(**PAYLOADS), expected_revision=current.revision)  # valued at once
    dispose_all()


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served dashboard runs this checkout's package (not whichever one is installed)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.fixture(scope="module")
def demo_dir(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with the payloads planted in one model (the served dashboard's data)."""
    folder = tmp_path_factory.mktemp("evil-demo")
    shutil.copytree(demo_dir, folder, dirs_exist_ok=True)
    _plant(folder)
    return folder


def test_payloads_are_shown_as_text_on_every_page(in_demo: Path) -> None:
    sections = [t.label for t in app("pages/model.py", model=VICTIM).run().tabs]  # one is drawn at a time
    for page, query in (*(("pages/model.py", {"model": VICTIM, "section": s}) for s in sections),
                        ("pages/portfolio.py", {}), ("pages/flags.py", {})):
        at = app(page, **query).run()
        assert_clean(at)
        sources = [e.value for kind in ("title", "markdown", "caption", "error", "warning", "info", "success")
                   for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
        for text in sources:  # no unescaped link, image, HTML tag or directive around the payloads
            assert not LIVE.search(text), (page, text)
    at = app("pages/model.py", model=VICTIM).run()
    assert at.title[0].value == "\\[Click me\\](https\\:\u200b//evil.example/phish)"


def test_payloads_in_chromium_are_text_and_fetch_nothing(server: str) -> None:  # noqa: F811
    assert Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM}: run `bash scripts/system-deps.sh`"
    try:
        from playwright.sync_api import expect, sync_playwright
    except ModuleNotFoundError:
        pytest.fail('playwright is not installed: pip install -e ".[test]" (never `playwright install`)')
    expect.set_options(timeout=180_000)
    off_host: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            page.set_default_timeout(180_000)

            def watch(request) -> None:  # noqa: ANN001
                host = urllib.parse.urlsplit(request.url).hostname or ""
                if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
                    off_host.append(request.url)

            page.on("request", watch)
            page.goto(f"{server}/model?model={VICTIM}")
            heading = page.get_by_role("heading", name="[Click me](https:\u200b//evil.example/phish)")
            expect(heading).to_be_visible()
            expect(page.get_by_text("Net value to date").first).to_be_visible()
            page.wait_for_timeout(1500)
            body = page.inner_text("body").replace("\u200b", "")  # (the autolink breakers are invisible)
            assert PAYLOADS["owner"] in body and PAYLOADS["team"] in body  # shown exactly as typed
            evil = page.locator("a[href*='evil.example'], img[src*='evil.example'], [href*='evil.example']")
            assert evil.count() == 0, [evil.nth(i).evaluate("e => e.outerHTML") for i in range(evil.count())]
            page.goto(f"{server}/flags")
            expect(page.get_by_role("heading", name="Flags")).to_be_visible()
            page.wait_for_timeout(1500)
            assert page.locator("a[href*='evil.example'], img[src*='evil.example']").count() == 0
        finally:
            browser.close()
    # nothing because of stored text; the only off-host requests are Streamlit's own Material icon
    # files (fonts.gstatic.com), which every Streamlit page with an icon makes
    assert not [u for u in off_host if "evil" in u], off_host
    assert {urllib.parse.urlsplit(u).hostname for u in off_host} <= {"fonts.gstatic.com"}, off_host


def test_pages_put_registry_text_through_md() -> None:
    """A static guard for new page code: an f-string on a page that interpolates registry text
    (display name, owner, team, a reason or action, an actor) wraps it in md() or one_line()."""
    registry_text = re.compile(r"display_name|\.owner\b|\.team\b|\breason\b|\.action\b|actor\.name|\['name'\]|\[\"name\"\]")
    rendered = re.compile(r"\b(markdown|title|caption|header|subheader|warning|error|info|success|toast|flash)\(|label=")
    found = []
    for path in [*sorted((ROOT / "pages").glob("*.py")), ROOT / "valuetrack" / "ui" / "components.py"]:
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not rendered.search(line) or "one_line(f" in line or "md(f" in line:
                continue  # not shown as Markdown, or escaped as a whole
            for expr in re.findall(r"(?<!\{)\{([^{}]+)\}", line):
                if registry_text.search(expr) and not expr.startswith(("md(", "one_line(")) and " for " not in expr:
                    found.append(f"{path.name}:{no}: {{{expr}}}")
    assert not found, found
