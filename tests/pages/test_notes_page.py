"""The model page's notes (issue 17): an override appears on the page beside the unadjusted figure, the
figures equal `value --json`, hostile text is shown as typed, and an editor can withdraw it there."""

from __future__ import annotations

import html as htmllib
import json
from pathlib import Path

import pytest

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, run_cli, svg_charts
from valuetrack.formatting import money, money_column, money_compact

SVG = "{http://www.w3.org/2000/svg}"
SVG_TAGS = ("svg", "defs", "clipPath", "pattern", "rect", "path", "polyline", "polygon", "circle", "text", "title", "g")

EVIL = '=HYPERLINK("http://evil.example/?x","Click") [phish](https://evil.example) <img src=x onerror=alert(1)>'


NOTES = "Notes, exclusions & overrides"  # the model page's section of notes (opened by its address)


def _tables(at) -> dict[str, dict]:  # noqa: ANN001
    return {t["id"]: t for t in html_tables(at) if t["id"]}


def test_an_override_shows_on_the_page_as_in_the_json_and_can_be_withdrawn_there(demo_copy: Path) -> None:
    code, _ = run_cli("notes", "override", "homepage-recs", "--amount", "1234.56", "--on", "2026-05-03",
                      "--reason", EVIL, "--as-of", AS_OF)
    assert code == 0
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    m = next(x for x in json.loads(out)["models"] if x["model"] == "homepage-recs")
    assert m["override_amount"] == 1234.56 and m["net_adjusted"] == m["net"] + 1234.56
    [o] = m["overrides"]
    assert o["text"] == EVIL and o["effect"] == 1234.56

    at = app("pages/model.py", model="homepage-recs").run()
    assert_clean(at)
    figures = {r["cells"][0]: r["cells"][1] for r in _tables(at)["figures"]["rows"]}
    cur = m["currency"]
    want = money_column([m["gross"], m["cost"], m["net"], *m["ci_net"], 1234.56, m["net_adjusted"]], cur)
    assert [figures[k] for k in ("From overrides agreed with finance", "Net value, adjusted")] == want[5:]
    assert any("adjusted for overrides" in c.value for c in at.caption)
    at = app("pages/model.py", model="homepage-recs", section=NOTES).run()
    assert_clean(at)
    tables = _tables(at)
    adjusted = {r["cells"][0]: r["cells"][1] for r in tables["adjusted"]["rows"]}
    assert adjusted["Net value, adjusted"] == money(m["net_adjusted"], cur, cents=True)
    assert adjusted["Net value (unadjusted: statistics and flags use it)"] == money(m["net"], cur, cents=True)
    notes = tables["notes"]["rows"]
    assert [r["cells"][1] for r in notes] == [EVIL]  # shown as typed: escaped, not a link, an image or a formula
    html = "".join(h.proto.body for h in at.get("html"))
    assert "<img src=x" not in html and "&lt;img src=x" in html

    # the portfolio's totals show the adjusted figure beside the unadjusted one
    portfolio = app().run()
    assert_clean(portfolio)
    sources = [c.value for c in portfolio.caption] + [h.proto.body for h in portfolio.get("html")]
    tile = next(s for s in sources if "data-testid='tile-to-date'" in s)  # the tile's caption, with its exact figure
    assert "adjusted for overrides" in tile and htmllib.escape(money_compact(1234.56, cur)) in tile

    # withdraw it from the page (the editor's form), then the figures are the unadjusted ones again
    at.text_input(key="withdraw-reason").set_value("entered twice")
    next(b for b in at.button if b.label == "Withdraw").click().run()
    assert_clean(at)
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    m2 = next(x for x in json.loads(out)["models"] if x["model"] == "homepage-recs")
    assert m2["override_amount"] == 0.0 and m2["overrides"] is None and m2["net_adjusted"] == m2["net"] == m["net"]
    tables = _tables(app("pages/model.py", model="homepage-recs", section=NOTES).run())
    assert "notes" not in tables and [r["cells"][-1] for r in tables["withdrawn"]["rows"]] == ["entered twice"]
    tables = _tables(app("pages/model.py", model="homepage-recs", section="Registry & audit log").run())
    audit = [r["cells"] for r in tables["audit"]["rows"]]
    assert [a[2] for a in audit[:2]] == ["withdraw", "override"]


def test_a_viewer_sees_the_notes_but_no_form_and_the_store_refuses_them(demo_copy: Path) -> None:
    from tests.pages.test_access import EDITOR, VIEWER, _as
    from valuetrack.access import Actor
    from valuetrack.context import open_context
    from valuetrack.errors import PermissionDenied

    assert run_cli("notes", "annotate", "homepage-recs", "--on", "2026-05-01", "--text", "v2 release",
                   "--category", "release")[0] == 0
    _secure(demo_copy, EDITOR)
    at = _as(VIEWER, "pages/model.py", model="homepage-recs", section=NOTES).run()
    assert_clean(at)
    assert [r["cells"][1] for r in _tables(at)["notes"]["rows"]] == ["v2 release"]
    assert not [b for b in at.button if b.label in ("Withdraw", "Add annotation")]
    assert not at.get("form")
    at = _as(EDITOR, "pages/model.py", model="homepage-recs", section=NOTES).run()
    assert [b for b in at.button if b.label == "Withdraw"]
    # the role is decided where the write happens: a hand-built actor is a viewer under [auth]
    ctx = open_context(actor=Actor(EDITOR))
    try:
        ctx.notes.add(ctx.actor, "homepage-recs", "annotation", text="x", start=None)
    except PermissionDenied as exc:
        assert "may not annotate models" in exc.message
    else:
        raise AssertionError("a viewer's note was stored")
    assert len(ctx.notes.list("homepage-recs")) == 1


def _secure(path: Path, editor: str) -> None:
    import textwrap

    (path / "valuetrack.toml").write_text(textwrap.dedent(f"""
        [store]
        url = "sqlite:///valuetrack.db"
        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        [auth]
        default_role = "viewer"
        editors = ["{editor}"]
    """))


def test_annotations_and_excluded_windows_on_every_chart_and_the_estimate_with_and_without(demo_copy: Path) -> None:
    assert run_cli("notes", "annotate", "homepage-recs", "--on", "2026-04-20", "--text", "spring <b>campaign</b>",
                   "--category", "campaign")[0] == 0
    assert run_cli("notes", "exclude", "homepage-recs", "--from", "2026-05-02", "--to", "2026-05-04", "--reason",
                   "tracking bug")[0] == 0
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    m = next(x for x in json.loads(out)["models"] if x["model"] == "homepage-recs")
    ex = m["exclusions"]
    at = app("pages/model.py", model="homepage-recs").run()
    assert_clean(at)
    rows = {r["cells"][0]: r["cells"][1:] for r in _tables(at)["exclusions"]["rows"]}
    from valuetrack import notes_text

    assert rows == {r[0]: r[1:] for r in notes_text.exclusion_rows(ex, m["currency"])}
    assert rows["Effect per unit"] == [f"{ex['with']['effect']:,.4g}", f"{ex['without']['effect']:,.4g}"]
    # the Value section's charts are SVG (D51): the note's text as typed (escaped: no element made of
    # it), the excluded days shaded with their reason on hover
    value = svg_charts(app("pages/model.py", model="homepage-recs", section="Value").run())
    assert len(value) == 3  # uplift, cumulative, monthly
    for svg in value:
        assert {e.tag for e in svg.iter()} <= {f"{SVG}{t}" for t in SVG_TAGS}, {e.tag for e in svg.iter()}
        hover = [t.text for t in svg.iter(f"{SVG}title")]
        assert any(h.endswith(" spring <b>campaign</b>") for h in hover), svg.get("aria-label")
        assert "excluded: tracking bug" in hover, svg.get("aria-label")
    figures = [json.loads(c.proto.spec) for section in ("Health & risk", "Costs")
               for c in app("pages/model.py", model="homepage-recs", section=section).run().get("plotly_chart")]
    assert len(figures) >= 2  # volume; costs over time
    for fig in figures:
        texts = " ".join(a.get("text", "") for a in fig["layout"].get("annotations", []))
        assert "spring ‹b›campaign‹/b›" in texts, texts  # as typed, no markup
    dated = [f for f in figures if any(s.get("type") == "rect" and s.get("x0", "").startswith("2026-05-02")
                                       for s in f["layout"].get("shapes", []))]
    assert len(dated) >= 2  # the excluded days shaded on every dated chart


def test_an_editor_adds_an_excluded_window_and_an_override_from_the_page(demo_copy: Path) -> None:
    import datetime as dt

    at = app("pages/model.py", model="homepage-recs", section=NOTES).run()
    assert_clean(at)
    at.radio(key="note-kind").set_value("Excluded window").run()
    at.date_input(key="note-from").set_value(dt.date(2026, 5, 2))
    at.date_input(key="note-to").set_value(dt.date(2026, 5, 4))
    at.text_input(key="note-reason-x").set_value("tracking bug")
    next(b for b in at.button if b.label == "Exclude these days").click().run()
    assert_clean(at)
    at.radio(key="note-kind").set_value("Override").run()
    at.number_input(key="note-amount").set_value(0.5)
    at.text_input(key="note-reason-o").set_value("finance: half")
    next(b for b in at.button if b.label == "Add override").click().run()
    assert_clean(at)
    # a bad one is refused with the field named, and nothing is stored
    at.radio(key="note-kind").set_value("Excluded window").run()
    at.date_input(key="note-from").set_value(dt.date(2026, 5, 9))
    at.date_input(key="note-to").set_value(dt.date(2026, 5, 1))
    at.text_input(key="note-reason-x").set_value("backwards")
    next(b for b in at.button if b.label == "Exclude these days").click().run()
    assert any("2026-05-01 is before exclusion.from 2026-05-09" in e.value for e in at.error), [e.value for e in at.error]

    code, out = run_cli("notes", "list", "homepage-recs", "--json")
    notes = json.loads(out)["notes"]
    assert [(n["kind"], n["start"], n["end"], n["amount"], n["text"]) for n in notes] == [
        ("exclusion", "2026-05-02", "2026-05-04", None, "tracking bug"),
        ("override", None, None, 0.5, "finance: half")]
    assert all(n["created_by"] == "tester@example.com" for n in notes)
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    m = next(x for x in json.loads(out)["models"] if x["model"] == "homepage-recs")
    assert m["exclusions"]["days"] == 3
    assert m["override_amount"] == pytest.approx(-0.5 * m["gross"], rel=1e-9)
