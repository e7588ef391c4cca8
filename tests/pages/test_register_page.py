"""The register/edit form: refuses bad input with messages next to the fields and leaves the
registry unchanged; a valid registration appears in the portfolio; edits bump the revision and
are audited with the user; the preview reads the warehouse; the manifest downloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.pages.conftest import USER, app, assert_clean, portfolio_table
from valuetrack.context import open_context

K = "f:"


def _fill(at: AppTest, values: dict) -> AppTest:
    for key, value in values.items():
        if isinstance(value, bool):
            at.toggle(key=K + key).set_value(value)
        elif isinstance(value, (int, float)):
            at.number_input(key=K + key).set_value(value)
        elif isinstance(value, dt.date):
            at.date_input(key=K + key).set_value(value)
        elif key in ("attribution.method", "connection", "kpi.aggregation"):
            at.selectbox(key=K + key).set_value(value)
        else:
            at.text_input(key=K + key).input(value)
    return at


GOOD = {
    "name": "homepage-recs-v2", "display_name": "Homepage recs v2", "owner": "ana@example.com", "team": "personalization",
    "launch": dt.date(2025, 3, 1), "kpi.name": "gmv", "kpi.value_per_unit": 1.0, "monthly_cost": 1500.0,
    "attribution.exposures.table": "exposures", "attribution.exposures.unit": "customer_id",
    "attribution.exposures.timestamp": "scored_at", "attribution.exposures.arm": "arm",
    "attribution.exposures.model": "model_id", "attribution.exposures.model_value": "homepage-recs",
    "attribution.outcomes.table": "outcomes", "attribution.outcomes.unit": "customer_id",
    "attribution.outcomes.timestamp": "event_at", "attribution.outcomes.value": "value",
}


def _registry_state() -> tuple[list, list]:
    ctx = open_context()
    return [(m.name, m.revision) for m in ctx.registry.list()], [a.id for a in ctx.registry.audit()]


def test_bad_input_gets_field_messages_and_changes_nothing(demo_copy: Path) -> None:
    before = _registry_state()
    at = app("pages/register.py").run()
    assert_clean(at)
    _fill(at, {**GOOD, "name": "Bad Name!", "kpi.value_per_unit": -2.0, "display_name": "",
               "attribution.window_days": 0}).run()
    at.button(key="save").click().run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert errors[0].startswith("Not saved: 4 problems")
    # in the form's words, next to each field: no manifest path, no "model." jargon
    assert any("Use 3 to 64 lowercase letters, digits and dashes" in e and "Bad Name!" in e for e in errors)
    assert any(e.startswith("Must be 0 or more (you entered -2)") and "Higher is better" in e for e in errors)
    assert "Required." in errors
    assert any("between 1 and 730" in e.lower() for e in errors)
    assert not [e for e in errors if "model." in e or "value_per_unit" in e or "[" in e]
    assert _registry_state() == before


def test_a_message_goes_as_soon_as_its_cause_does(demo_copy: Path) -> None:
    at = app("pages/register.py").run()
    _fill(at, {**GOOD, "monthly_cost": -500.0}).run()
    at.button(key="save").click().run()
    assert "Must be 0 or more (you entered -500)." in [e.value for e in at.error]
    at.number_input(key=K + "monthly_cost").set_value(500.0).run()  # corrected, not saved yet
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]


def test_valid_registration_appears_in_the_portfolio(demo_copy: Path) -> None:
    at = app("pages/register.py").run()
    _fill(at, {**GOOD, "attribution.outcomes.value": "amount"}).run()
    at.button(key="preview-btn").click().run()
    assert_clean(at)
    assert any('does not have a column named "amount"' in e.value for e in at.error)  # the preview catches it
    at.text_input(key=K + "attribution.outcomes.value").input("value").run()
    at.button(key="preview-btn").click().run()
    assert_clean(at)
    assert not at.error
    md = " ".join(m.value for m in at.markdown)
    assert "arms: `holdout`, `model`" in md and "from **" in md
    assert len(at.dataframe) >= 2                                        # a few rows of each table
    assert at.get("download_button")                                     # the manifest, once valid
    at.button(key="save").click().run()
    assert_clean(at)
    assert "Registered **Homepage recs v2**" in at.success[0].value
    ctx = open_context()
    stored = ctx.registry.get("homepage-recs-v2")
    assert stored.revision == 1 and stored.created_by == USER
    assert ctx.registry.audit("homepage-recs-v2")[0].actor == USER

    at = app().run()
    assert_clean(at)
    assert "homepage-recs-v2" in portfolio_table(at)


def test_edit_bumps_the_revision_and_is_audited(demo_copy: Path) -> None:
    at = app("pages/register.py", model="search-ranking-v4").run()
    assert_clean(at)
    assert at.text_input(key=K + "name").value == "search-ranking-v4"
    rev = open_context().registry.get("search-ranking-v4").revision
    at.number_input(key=K + "monthly_cost").set_value(123.0).run()
    at.button(key="save").click().run()
    assert_clean(at)
    stored = open_context().registry.get("search-ranking-v4")
    assert stored.revision == rev + 1 and stored.spec.monthly_cost == 123.0
    entry = open_context().registry.audit("search-ranking-v4")[0]
    assert entry.actor == USER and "monthly_cost" in entry.changes


def test_editing_in_the_form_keeps_the_decisions_it_does_not_show(demo_copy: Path) -> None:
    before = open_context().registry.get("fraud-screen").spec.decisions
    assert before is not None
    at = app("pages/register.py", model="fraud-screen").run()
    # fraud-screen's monthly cost is dated (its cost rose mid-life): a new number alone is refused,
    # naming the lines; cleared lines make it one number since launch
    at.number_input(key=K + "monthly_cost").set_value(8000.0).run()
    at.button(key="save").click().run()
    assert any("differs from the last dated line" in e.value for e in at.error), [e.value for e in at.error]
    at.text_area(key=K + "history:monthly_cost").input("").run()
    at.button(key="save").click().run()
    assert_clean(at)
    stored = open_context().registry.get("fraud-screen").spec
    assert stored.monthly_cost == 8000.0 and stored.decisions == before


def test_edit_against_a_stale_revision_is_refused(demo_copy: Path, cli) -> None:
    at = app("pages/register.py", model="search-ranking-v4").run()
    ctx = open_context()
    current = ctx.registry.get("search-ranking-v4")
    ctx.registry.update(current.spec.replace(team="someone-else"), expected_revision=current.revision, actor=ctx.actor)
    at.number_input(key=K + "monthly_cost").set_value(1.0).run()
    at.button(key="save").click().run()
    assert_clean(at)
    assert any("was changed since revision" in e.value for e in at.error)
    assert open_context().registry.get("search-ranking-v4").spec.team == "someone-else"


def test_retire(demo_copy: Path) -> None:
    at = app("pages/register.py", model="email-send-time").run()
    at.checkbox(key="retire-sure").check().run()
    at.button(key="retire").click().run()
    assert_clean(at)
    assert open_context().registry.get("email-send-time").spec.status == "retired"
    assert open_context().registry.audit("email-send-time")[0].action == "retire"


def test_dated_amounts_from_the_form(demo_copy: Path) -> None:
    """Costs and a value per unit that changed on dates, and dated one-off costs, entered as lines:
    stored as dated lists, shown again when the model is edited; lines out of order are refused
    next to the field, and nothing is saved."""
    before = _registry_state()
    at = app("pages/register.py").run()
    _fill(at, GOOD).run()
    at.text_area(key=K + "history:monthly_cost").input("2025-03-01 1500\n2025-02-01 2500").run()
    at.button(key="save").click().run()
    errors = [e.value for e in at.error]
    assert any("2025-02-01 is before 2025-03-01" in e for e in errors), errors
    assert _registry_state() == before
    at.text_area(key=K + "history:monthly_cost").input("2025-03-01 1500\n2025-06-16 2500").run()
    at.text_area(key=K + "history:kpi.value_per_unit").input("2025-03-01 1\n2025-05-10 1.25").run()
    at.button(key="save").click().run()  # the numbers above still show other amounts than the last lines
    assert sum("differs from the last dated line" in e.value for e in at.error) == 2, [e.value for e in at.error]
    at.number_input(key=K + "monthly_cost").set_value(2500.0).run()
    at.number_input(key=K + "kpi.value_per_unit").set_value(1.25).run()
    at.text_area(key=K + "history:one_off_costs").input("2025-01-15 24000 build\n2025-05-15 6100 retraining").run()
    at.number_input(key=K + "amortisation_months").set_value(24).run()
    at.button(key="save").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    spec = open_context().registry.get("homepage-recs-v2").spec
    assert [(s.start, s.amount) for s in spec.monthly_cost] == [(dt.date(2025, 3, 1), 1500.0), (dt.date(2025, 6, 16), 2500.0)]
    assert [(s.start, s.amount) for s in spec.kpi.value_per_unit] == [(dt.date(2025, 3, 1), 1.0), (dt.date(2025, 5, 10), 1.25)]
    assert [(e.on, e.amount, e.label) for e in spec.one_off_costs] == [
        (dt.date(2025, 1, 15), 24000.0, "build"), (dt.date(2025, 5, 15), 6100.0, "retraining")]
    assert spec.amortisation_months == 24 and spec.cost_per_1k_predictions == 0.0
    # editing shows the lines again; saving unchanged makes no new revision
    again = app("pages/register.py", model="homepage-recs-v2").run()
    assert again.text_area(key=K + "history:monthly_cost").value == "2025-03-01 1500\n2025-06-16 2500"
    assert again.text_area(key=K + "history:one_off_costs").value == "2025-01-15 24000 build\n2025-05-15 6100 retraining"
    assert again.number_input(key=K + "monthly_cost").value == 2500.0
    revision = open_context().registry.get("homepage-recs-v2").revision
    again.button(key="save").click().run()
    assert open_context().registry.get("homepage-recs-v2").revision == revision


def test_a_line_that_does_not_read_and_a_bad_currency_get_one_message_each(demo_copy: Path) -> None:
    """A dated line that is not 'YYYY-MM-DD amount' is reported once, in the form's words (not also
    as the manifest's "empty list"); a currency that is not a code is refused next to its field and
    is not repeated into the amounts' labels; nothing is saved."""
    before = _registry_state()
    at = app("pages/register.py").run()
    _fill(at, {**GOOD, "currency": "<b>dollars</b>"}).run()
    labels = {at.number_input(key=K + k).label for k in ("monthly_cost", "kpi.value_per_unit")}
    assert labels == {"Monthly cost", "Value per unit"}, labels
    at.text_area(key=K + "history:monthly_cost").input("from March 1500").run()
    at.button(key="save").click().run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert errors[0].startswith("Not saved: 2 problems"), errors
    assert sum("'from March 1500'" in e for e in errors) == 1, errors
    assert not any("empty" in e.lower() for e in errors), errors
    assert any("is not an ISO 4217 currency code" in e for e in errors), errors
    assert _registry_state() == before
    # a currency code, typed in lower case, is shown as the manifest stores it
    _fill(at, {"currency": "eur"}).run()
    assert at.number_input(key=K + "monthly_cost").label == "Monthly cost (EUR)"
