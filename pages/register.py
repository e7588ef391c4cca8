"""Register or edit a model: the manifest's fields as a form, checked by the library, with a preview
of what the mapping finds in the warehouse before saving, and the manifest TOML to download."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import streamlit as st

from valuetrack import actions as edits
from valuetrack.errors import PermissionDenied, ValidationError, ValuetrackError
from valuetrack.registry.manifest import ManifestEntry, dump_manifest
from valuetrack.attribution import methods
from valuetrack.registry.spec import AGGREGATIONS, AMORTISATION_MONTHS, ModelSpec, field_docs
from valuetrack.ui import actions, components as ui, state, views
from valuetrack.ui.safe import md, one_line

ui.through_app()

NEW = "+ New model"  # plain ASCII: the full-width plus is a missing glyph in many fonts
DOCS = field_docs()
DEFAULTS: dict[str, Any] = {
    "name": "", "display_name": "", "owner": "", "team": "", "status": "active", "timezone": "UTC", "currency": "",
    "monthly_cost": 0.0, "cost_per_1k_predictions": 0.0, "one_off_costs": 0.0, "amortisation_months": AMORTISATION_MONTHS,
    **{k: "" for k in views.DATED_FORM_KEYS if k.startswith("history:")},
    "launch": None, "launch_label": "launch", "relaunches": "",
    "kpi.name": "", "kpi.unit": "USD", "kpi.value_per_unit": 1.0, "kpi.higher_is_better": True, "kpi.aggregation": "sum",
    "attribution.method": "ab", "attribution.window_days": 30, "attribution.outcome_lag_days": 3,
    "attribution.covariate_days": 30, "attribution.treatment_share": 0.5,
    **{f"attribution.exposures.{k}": v for k, v in {"table": "", "unit": "", "timestamp": "", "arm": "", "treatment": "model",
                                                    "control": "holdout", "model": "", "model_value": "", "score": "",
                                                    "segment": ""}.items()},
    **{f"attribution.outcomes.{k}": "" for k in ("table", "unit", "timestamp", "value", "where")},
    **{f"attribution.series.{k}": "" for k in ("table", "date", "value", "controls")},
    **{f"attribution.panel.{k}": "" for k in ("table", "unit", "date", "value", "treated")},
    "thresholds.min_roi": 0.0, "thresholds.unproven_after_days": 90,
    **{f"cost_source.{k}": "" for k in ("table", "date", "amount", "currency", "currency_column", "credits", "labels",
                                        "label_key", "label_value", "where")},
    "cost_source.price_per_unit": 1.0, "cost_source.share": 1.0, "cost_source.settle_days": 5,
}
FIELDS = list(DEFAULTS)
K = "f:"  # widget keys: "f:" + the manifest's dotted field

ctx = state.context()
st.title("Register a model")
if not ctx.actor.can_edit:
    st.warning(f":material/lock: {md(ctx.actor.name)} may view but not register or edit models. Ask an admin to add you to "
               "[auth].editors in valuetrack.toml.")
    st.stop()

connections = list(ctx.settings.connections)
registered = {m.name: m for m in state.registered()}


def load(choice: str) -> None:
    """Fill the form from a registered model (or the defaults for a new one)."""
    values = dict(DEFAULTS, connection=connections[0] if connections else "demo")
    revision = None
    if choice != NEW and choice in registered:
        values.update(views.spec_to_form(registered[choice].spec))
        revision = registered[choice].revision
    for key in [*FIELDS, "connection"]:
        st.session_state[K + key] = values.get(key, DEFAULTS.get(key))
    st.session_state.update(loaded=choice, revision=revision, problems={}, preview=None, saved=None, attempt=None)


def values() -> dict[str, Any]:
    return {k: st.session_state.get(K + k) for k in [*FIELDS, "connection"]}


def current() -> tuple[dict[str, Any], list[str]]:
    return views.form_to_data(values())


def validate() -> tuple[ModelSpec | None, list[str]]:
    data, problems = current()
    loaded = registered.get(st.session_state.get("loaded", NEW))
    if loaded is not None and loaded.spec.guardrails:  # kept, and checked against the edited fields
        data["guardrails"] = loaded.spec.to_dict()["guardrails"]
    try:
        spec = ModelSpec.from_dict(data)
    except ValidationError as exc:
        return None, problems + exc.problems
    loaded = registered.get(st.session_state.get("loaded", NEW))
    if loaded is not None:  # fields the form does not show (the MLflow import's, [decisions]) are kept
        spec = spec.replace(description=loaded.spec.description, annotations=loaded.spec.annotations,
                            decisions=loaded.spec.decisions)
    return (spec, problems) if not problems else (None, problems)


def save() -> None:
    spec, problems = validate()
    st.session_state.saved = None
    st.session_state.attempt = values()  # what the messages are about: they go when the cause goes
    if spec is None:
        st.session_state.problems = views.problems_by_field(problems, [*FIELDS, "connection", "attribution"])
        return
    st.session_state.problems = {}
    new = st.session_state.get("loaded", NEW) == NEW
    try:
        stored = edits.save(state.context(), spec, expected_revision=None if new else st.session_state.revision)
        verb = "Registered" if new else "Saved"
    except PermissionDenied as exc:
        st.session_state.problems = {"": [exc.message]}
        return
    except ValuetrackError as exc:  # AlreadyExists, Conflict, NotFound, a busy database
        st.session_state.problems = {"": [exc.message]}
        return
    state.invalidate()
    st.session_state.saved = f"{verb} **{md(stored.spec.display_name)}** ({md(stored.name)}), revision {stored.revision}."
    st.session_state.choice = stored.name
    st.session_state.loaded = stored.name
    st.session_state.revision = stored.revision


def retire() -> None:
    name = st.session_state.get("loaded")
    try:
        stored = edits.retire(state.context(), name, expected_revision=st.session_state.revision)
    except ValuetrackError as exc:
        st.session_state.problems = {"": [exc.message]}
        return
    state.invalidate()
    st.session_state.saved = f"Retired **{md(stored.spec.display_name)}**; its history and results are kept."
    st.session_state[K + "status"] = "retired"
    st.session_state.revision = stored.revision


def preview() -> None:
    data, _ = current()
    st.session_state.preview = actions.preview_mapping(state.context(), data)


# -- import from MLflow --------------------------------------------------------------------------

with st.expander("Import from MLflow", icon=":material/download:"):
    st.caption("Reads the registered models, versions, aliases, tags and descriptions of an MLflow registry and "
               "proposes manifest entries: fill in every \"TO FILL\" (the KPI and how to measure it), then register "
               "the file with `valuetrack models register --file`. Nothing is registered here. See docs/mlflow.md.")
    a, b, c = st.columns([2, 2, 1])
    a.text_input("Tracking URI", key="mlflow-uri", placeholder="http://mlflow.internal:5000")
    b.text_input("Filter (optional)", key="mlflow-filter", placeholder="name LIKE 'churn%'")
    with c:
        st.write("")
        if st.button("Read MLflow", key="mlflow-read", icon=":material/sync:"):
            st.session_state["mlflow-result"] = actions.import_mlflow(
                ctx, st.session_state.get("mlflow-uri", ""), st.session_state.get("mlflow-filter"))
    imported = st.session_state.get("mlflow-result")
    if imported and imported.get("error"):
        st.error(imported["error"])
    elif imported:
        for w in imported["warnings"]:
            st.warning(w)
        st.dataframe(imported["rows"], hide_index=True, width="stretch", key="mlflow-rows")
        st.download_button("Download the proposed manifest (TOML)", imported["text"], file_name="mlflow-models.toml",
                           mime="application/toml", key="mlflow-download", icon=":material/download:")
        st.code(imported["text"], language="toml")

# -- which model ------------------------------------------------------------------------------

options = [NEW, *registered]
wanted = st.query_params.get("model")
if "choice" not in st.session_state or (wanted in registered and st.session_state.get("loaded") is None):
    st.session_state.choice = wanted if wanted in registered else NEW
if st.session_state.choice not in options:
    st.session_state.choice = NEW
choice = st.selectbox("Model", options, key="choice",
                      format_func=lambda n: n if n == NEW else one_line(f"{registered[n].spec.display_name} ({n})"),
                      help="Register a new model, or pick one to edit it.")
if st.session_state.get("loaded") != choice or K + "name" not in st.session_state:
    load(choice)  # another model picked, or back on this page (Streamlit dropped the form's widget state)
editing = choice != NEW
if editing:
    st.caption(f"Editing revision {st.session_state.revision}. Saving is refused if someone else changed the model "
               "since (nothing is overwritten silently).")

problems: dict[str, list[str]] = st.session_state.get("problems") or {}
if problems:  # after a refused save, check again on every change: a message goes as soon as its cause does
    _, now = validate()
    fresh = views.problems_by_field(now, [*FIELDS, "connection", "attribution"])
    if values() == st.session_state.get("attempt") and problems.get(""):  # the store's own refusal (a conflict, ...)
        fresh[""] = list(dict.fromkeys([*fresh.get("", []), *problems[""]]))
    problems = st.session_state.problems = fresh
saved = st.session_state.pop("saved", None)  # shown once, after the save that caused it
if saved:
    st.success(saved, icon=":material/check_circle:")
    st.page_link("pages/model.py", label="Open the model", query_params={"model": st.session_state.loaded}, icon=":material/query_stats:")
if problems:
    n = sum(len(v) for v in problems.values())
    st.error(f"Not saved: {n} problem{'s' if n != 1 else ''} to fix" + (":" if problems.get("") else " (see the fields below)."))
    for p in problems.get("", []):
        st.error(md(views.plain_problem(p)))


def messages(path: str) -> None:
    for msg in problems.get(path, []):
        st.error(md(views.plain_problem(msg)), icon=":material/error:")


def text(col: Any, path: str, label: str, **kw: Any) -> None:
    with col:
        st.text_input(label, key=K + path, help=DOCS.get(path), disabled=kw.pop("locked", False), **kw)
        messages(path)


def number(col: Any, path: str, label: str, *, integer: bool = False, **kw: Any) -> None:
    with col:
        if integer:
            st.number_input(label, key=K + path, step=1, help=DOCS.get(path), **kw)
        else:
            st.number_input(label, key=K + path, step=kw.pop("step", 100.0), format=kw.pop("format", "%.2f"),
                            help=DOCS.get(path), **kw)
        messages(path)


def dated(col: Any, path: str) -> None:
    """The amounts of a field that changed on dates, one 'YYYY-MM-DD amount' per line (optional)."""
    with col:
        st.text_area("Changed on dates (optional)", key=K + f"history:{path}", height=68,
                     help="One per line: the date from which an amount applies, and the amount, e.g. "
                          "`2025-03-01 4000` then `2025-06-15 6200`. The first date is the launch (or before). "
                          "When given, the lines replace the number above.")


def select(col: Any, path: str, label: str, options: list[str], **kw: Any) -> None:
    with col:
        st.selectbox(label, options, key=K + path, help=DOCS.get(path), **kw)
        messages(path)


# -- the form -----------------------------------------------------------------------------------

with st.container(border=True):
    st.markdown("#### The model")
    a, b, c = st.columns(3)
    # placeholders describe what goes in a field: a real model's values would make empty fields look filled
    text(a, "name", "Name (id)", placeholder="lowercase letters, digits, dashes", locked=editing)
    text(b, "display_name", "Display name", placeholder="the name people read on pages")
    text(c, "owner", "Owner", placeholder="an e-mail address")
    a, b, c = st.columns(3)
    text(a, "team", "Team", placeholder="the owning team")
    select(b, "connection", "Warehouse connection", connections)
    text(c, "timezone", "Time zone", placeholder="an IANA time zone")
    a, b, c = st.columns(3)
    with a:
        st.date_input("Launch date", key=K + "launch", help=DOCS.get("interventions.start"), format="YYYY-MM-DD")
        messages("interventions")
    text(b, "launch_label", "Launch label")
    with c:
        st.text_area("Relaunches (optional)", key=K + "relaunches", height=68,
                     help="One per line: a date and a label, e.g. `2025-06-01 v2 relaunch`")

with st.container(border=True):
    st.markdown("#### KPI and costs")
    a, b, c = st.columns(3)
    text(a, "kpi.name", "KPI", placeholder="the KPI's name")
    text(b, "kpi.unit", "KPI unit", placeholder="a currency code, count or rate")
    # the amounts' currency in their labels: the one typed once it is a currency code (its field says
    # what is wrong with anything else), the reporting currency while the field is blank
    typed = (st.session_state.get(K + "currency") or "").strip().upper()
    own = f" ({typed or ctx.settings.currency})" if not typed or re.fullmatch(r"[A-Z]{3}", typed) else ""
    number(c, "kpi.value_per_unit", f"Value per unit{own}", step=0.1, format="%.4f")
    dated(c, "kpi.value_per_unit")
    a, b, c = st.columns(3)
    select(a, "kpi.aggregation", "Per-unit aggregation", list(AGGREGATIONS))
    with b:
        st.toggle("Higher is better", key=K + "kpi.higher_is_better", help=DOCS.get("kpi.higher_is_better"))
    a, b, c = st.columns(3)
    text(a, "currency", "Currency of its amounts", placeholder=f"blank: {ctx.settings.currency}, the reporting currency")
    a, b, c = st.columns(3)
    number(a, "monthly_cost", f"Monthly cost{own}")
    dated(a, "monthly_cost")
    number(b, "cost_per_1k_predictions", "Cost per 1,000 predictions", step=0.1)
    dated(b, "cost_per_1k_predictions")
    number(c, "one_off_costs", "One-off costs (build, on the launch date)", step=1000.0)
    with c:
        st.text_area("Dated one-off costs (optional)", key=K + "history:one_off_costs", height=68,
                     help="One per line: a date, an amount and a label, e.g. `2025-09-01 15000 retraining`. "
                          "When given, they replace the number above.")
    number(c, "amortisation_months", "Amortised over (months)", integer=True, min_value=1, max_value=240)

with st.container(border=True):
    st.markdown("#### Cost from the bill (optional)")
    st.caption("Read the model's daily cost from a billing table in its warehouse (the BigQuery billing export, "
               "Snowflake metering, an AWS cost-and-usage view: recipes in docs/connectors.md). A day's billed cost "
               "replaces the estimate above once it is older than the settling lag. Leave the table empty for none.")
    messages("cost_source")
    cols = st.columns(5)
    for col, (k, label) in zip(cols * 2, [("table", "Billing table"), ("date", "Date column"), ("amount", "Amount column"),
                                          ("currency", "Currency (constant)"), ("currency_column", "or currency column"),
                                          ("credits", "Credits column (nested)"), ("labels", "Labels column (nested)"),
                                          ("label_key", "Label key"), ("label_value", "Label value (default: name)"),
                                          ("where", "Filter (optional)")]):
        text(col, f"cost_source.{k}", label)
    a, b, c, _ = st.columns(4)
    number(a, "cost_source.price_per_unit", "Price per unit (e.g. per credit)", step=0.1, format="%.4f")
    number(b, "cost_source.share", "Share of these rows", step=0.05, format="%.3f")
    number(c, "cost_source.settle_days", "Settling lag (days)", integer=True)

with st.container(border=True):
    st.markdown("#### How the effect is measured")
    a, _ = st.columns([2, 3])
    select(a, "attribution.method", "Method", list(methods.names()), format_func=methods.label)
    with a:
        messages("attribution")
    b, c, d, e = st.columns(4)
    number(b, "attribution.window_days", "Outcome window (days)", integer=True)
    number(c, "attribution.outcome_lag_days", "Outcome lag (days)", integer=True)
    number(d, "attribution.covariate_days", "CUPED pre-period (days)", integer=True)
    number(e, "attribution.treatment_share", "Planned share served", step=0.05, format="%.2f")
    method = st.session_state.get(K + "attribution.method", "ab")
    sections = methods.get(method).form_sections if method in methods.names() else ()
    if "exposures" in sections:
        st.markdown("**Exposures** — one row per scoring or serving event, both arms logged")
        messages("attribution.exposures")
        cols = st.columns(5)
        for col, (k, label) in zip(cols * 2, [("table", "Table"), ("unit", "Unit column"), ("timestamp", "Timestamp column"),
                                              ("arm", "Arm column"), ("treatment", "Model arm value"),
                                              ("control", "Holdout arm value"), ("model", "Model column (shared table)"),
                                              ("model_value", "Model value"), ("score", "Score column"),
                                              ("segment", "Segment column")]):
            text(col, f"attribution.exposures.{k}", label)
        st.markdown("**Outcomes** — one row per business event")
        messages("attribution.outcomes")
        cols = st.columns(5)
        for col, (k, label) in zip(cols, [("table", "Table"), ("unit", "Unit column"), ("timestamp", "Timestamp column"),
                                          ("value", "Value column"), ("where", "Filter (optional)")]):
            text(col, f"attribution.outcomes.{k}", label)
    if "series" in sections:
        st.markdown("**Daily series** — the KPI per day, and control series the model did not affect")
        messages("attribution.series")
        cols = st.columns(4)
        for col, (k, label) in zip(cols, [("table", "Table"), ("date", "Date column"), ("value", "KPI column"),
                                          ("controls", "Control columns (comma-separated)")]):
            text(col, f"attribution.series.{k}", label)
    if "panel" in sections:
        st.markdown("**Panel** — one row per unit (region, store) and day; the treated units got the model")
        messages("attribution.panel")
        cols = st.columns(5)
        for col, (k, label) in zip(cols, [("table", "Table"), ("unit", "Unit column"), ("date", "Date column"),
                                          ("value", "KPI column"), ("treated", "Treated units (comma-separated)")]):
            text(col, f"attribution.panel.{k}", label)

with st.container(border=True):
    st.markdown("#### When to flag it")
    a, b, _ = st.columns(3)
    number(a, "thresholds.min_roi", "Minimum ROI", step=0.1, format="%.2f")
    number(b, "thresholds.unproven_after_days", "Unproven after (days)", integer=True)
    kept = registered.get(st.session_state.get("loaded", NEW))
    if kept is not None and kept.spec.guardrails:
        st.caption(f"Guardrails ({', '.join(md(g.name) for g in kept.spec.guardrails)}) are kept when you save and "
                   "checked against the fields above; edit them in the manifest (`valuetrack models export`, then "
                   "`valuetrack models register --file`).")

# -- actions ------------------------------------------------------------------------------------

spec, _ = validate()
a, b, c, _ = st.columns([1, 1.3, 2.2, 1])
a.button("Save" if editing else "Register", type="primary", on_click=save, key="save", icon=":material/save:")
b.button("Preview data", on_click=preview, key="preview-btn", icon=":material/search:",
         help="Read a few rows, the date range and the arms the mapping finds in the warehouse")
if spec is not None:
    c.download_button("Download manifest (TOML)", dump_manifest([ManifestEntry(spec, st.session_state.revision)]),
                      file_name=f"{spec.name}.toml", mime="application/toml", key="download", icon=":material/download:")
else:
    c.button("Download manifest (TOML)", disabled=True, key="download-disabled", icon=":material/download:",
             help="Available once the form is valid")

results = st.session_state.get("preview")
if results:
    st.markdown("#### What the mapping finds in the warehouse")
    for item in results:
        with st.container(border=True):
            st.markdown(f"**{item['title']}**" + (f" · {md(item['table'])}" if item.get("table") else ""))
            if item.get("error"):
                st.error(md(item["error"]))
                continue
            facts = []
            if item.get("date_range"):
                lo, hi = item["date_range"]
                facts.append(f"from **{lo}** to **{hi}**")
            if item.get("arms") is not None:
                facts.append("arms: " + ", ".join(f"`{x}`" for x in item["arms"]))
            if facts:
                st.markdown(" · ".join(facts))
            for w in item.get("warnings", []):
                st.warning(w)
            st.dataframe(item["rows"], hide_index=True, width="stretch")

if editing and st.session_state.get(K + "status") == "active":
    with st.expander("Retire this model"):
        st.write("A retired model stops being refreshed and valued from today; its history, results and audit "
                 "log are kept, and it can be re-activated by editing its status.")
        sure = st.checkbox("Yes, retire it", key="retire-sure")
        st.button("Retire", on_click=retire, disabled=not sure, key="retire", type="secondary")
elif editing:
    select(st.container(), "status", "Status", ["active", "retired"])
