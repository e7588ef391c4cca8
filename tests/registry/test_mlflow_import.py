"""`valuetrack models import mlflow` (docs/mlflow.md): the merge rules, then the whole path from a
fresh clone against a real `mlflow server` (SQLite backend, from its own venv .venvs/mlflow) driven
with the ordinary MLflow client: register two models with versions, import, fill in the KPIs,
register, refresh, and see the versions on the model page."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.connectors.standins import missing, require_module
import tomli_w

from tests.conftest import free_port
from tests.pages.conftest import _no_legacy_pages_mode  # noqa: F401  (autouse: AppTest keeps button presses)
from valuetrack.registry.manifest import TO_FILL
from valuetrack.registry.mlflow_import import MlflowModel, MlflowVersion, merge, propose

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-06-30"


# ------------------------------------------------------------------------------------------------
# the merge rules, on fixed inputs


def _model(*versions: MlflowVersion, **tags: str) -> MlflowModel:
    return MlflowModel("Churn Save Offers", "Who gets a save offer", dict(tags), tuple(versions))


V1 = MlflowVersion(1, dt.date(2025, 3, 1))
V2 = MlflowVersion(2, None, ("champion",))


def test_a_new_model_is_a_draft_with_what_mlflow_knows_and_the_rest_to_fill() -> None:
    entries, summary, warnings = propose([_model(V1, V2, owner="ana@example.com")], existing={}, registered={},
                                         connections=["demo"])
    (e,) = entries
    assert e["name"] == "churn-save-offers" and e["display_name"] == "Churn Save Offers"
    assert e["owner"] == "ana@example.com" and e["team"] == TO_FILL and e["connection"] == "demo"
    assert e["description"] == "Who gets a save offer"
    assert e["interventions"] == [{"start": dt.date(2025, 3, 1), "label": "MLflow version 1"}]
    assert e["annotations"] == [{"date": TO_FILL, "label": "MLflow version 2 (champion)"}]
    assert summary[0].action == "new"
    assert set(summary[0].to_fill) == {"team", "kpi.name", "kpi.unit", "kpi.value_per_unit", "attribution.method",
                                       "annotations[0].date"}
    assert warnings == []


def test_a_person_set_field_is_never_overwritten_and_rerunning_changes_nothing() -> None:
    entry, *_ = propose([_model(V1, owner="ana@example.com")], existing={}, registered={}, connections=["demo"])[0]
    entry.update(owner="bo@example.com", display_name="Churn offers", team="retention")
    entry["interventions"][0]["label"] = "MLflow version 1, the first launch"  # edited by a person
    again = json.loads(json.dumps(entry, default=str))
    changes = merge(entry, _model(V1, owner="someone-else@example.com", team="other"))
    assert changes == [] and json.loads(json.dumps(entry, default=str)) == again


def test_a_new_version_is_an_intervention_for_time_series_and_an_annotation_for_ab() -> None:
    v3 = MlflowVersion(3, dt.date(2025, 9, 1))
    for method, where in (("structural", "interventions"), ("ab", "annotations")):
        entry = {"name": "m-one", "display_name": "M", "owner": "o", "team": "t", "description": "d",
                 "attribution": {"method": method},
                 "interventions": [{"start": dt.date(2025, 3, 1), "label": "MLflow version 1"}]}
        assert merge(entry, _model(V1, v3)) == [f"{where}: version 3"]
        assert {"start" if where == "interventions" else "date": dt.date(2025, 9, 1),
                "label": "MLflow version 3"} in entry[where]


def test_a_live_from_tag_added_later_fills_the_date_left_to_fill() -> None:
    entry = propose([_model(V1, V2)], existing={}, registered={}, connections=["demo"])[0][0]
    assert merge(entry, _model(V1, MlflowVersion(2, dt.date(2025, 6, 1)))) == ["version 2 live-from date"]
    assert entry["annotations"][0]["date"] == dt.date(2025, 6, 1)


def test_an_mlflow_name_that_cannot_become_a_name_is_reported() -> None:
    bad = MlflowModel("!!", "", {}, (V1,))
    entries, summary, warnings = propose([bad], existing={}, registered={}, connections=["demo"])
    assert entries == [] and summary == [] and "valuetrack.name" in warnings[0]


# ------------------------------------------------------------------------------------------------
# against a real MLflow server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    exe = ROOT / ".venvs" / "mlflow" / "bin" / "mlflow"
    if not exe.exists():
        missing(str(exe), "scripts/standins/tool_venvs.sh (make standins) builds it")
    require_module("mlflow", 'the MLflow client: pip install "valuetrack[mlflow]"')
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([str(exe), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                             "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], cwd=folder, env=env, stdout=log, stderr=log)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("mlflow server did not start:\n" + (folder / "server.log").read_text()[-3000:])
            time.sleep(0.5)
    yield uri
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # uvicorn may wait on open connections
        proc.kill()
        proc.wait(timeout=10)
    log.close()


def _demo_entries(folder: Path) -> dict[str, dict]:
    data = tomllib.loads((folder / "sample_data" / "demo_models.toml").read_text())
    return {m["name"]: m for m in data["models"]}


@pytest.mark.standin
def test_from_mlflow_to_the_model_page(mlflow_server: str, demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from mlflow import MlflowClient

    folder = demo_builder(0.1, AS_OF)
    for f in folder.glob("valuetrack.db*"):  # keep the warehouse, start with an empty registry
        f.unlink()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    demo = _demo_entries(folder)
    churn_launch = demo["churn-save-offers"]["interventions"][0]["start"]
    pricing_launch = demo["dynamic-pricing"]["interventions"][0]["start"]

    # 1. two models with versions, through the ordinary client
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    client.create_registered_model("Churn Save Offers", tags={"owner": "retention-team@example.com", "team": "retention"},
                                   description="Who gets a save offer before renewal")
    client.create_model_version("Churn Save Offers", "s3://models/churn/1", tags={"valuetrack.live_from": str(churn_launch)})
    v2 = client.create_model_version("Churn Save Offers", "s3://models/churn/2",
                                     tags={"valuetrack.live_from": str(churn_launch + dt.timedelta(days=120))})
    client.set_registered_model_alias("Churn Save Offers", "champion", v2.version)
    client.create_registered_model("Dynamic Pricing", tags={"owner": "pricing@example.com"})
    client.create_model_version("Dynamic Pricing", "s3://models/pricing/1", tags={"valuetrack.live_from": str(pricing_launch)})
    client.create_model_version("Dynamic Pricing", "s3://models/pricing/2")  # no live-from tag yet

    # 2. import: drafts with what MLflow knows, the rest TO FILL; a re-run changes nothing
    out = folder / "mlflow-models.toml"
    first = cli("models", "import", "mlflow", "--tracking-uri", mlflow_server, "--out", out, "--json",
                schema="models_import_mlflow")
    assert first.code == 0, first.err
    by_name = {m["name"]: m for m in first.json["models"]}
    assert {n: m["action"] for n, m in by_name.items()} == {"churn-save-offers": "new", "dynamic-pricing": "new"}
    assert "kpi.name" in by_name["churn-save-offers"]["to_fill"] and "owner" not in by_name["churn-save-offers"]["to_fill"]
    assert "annotations[0].date" in by_name["dynamic-pricing"]["to_fill"]
    written = out.read_bytes()
    dry = cli("models", "import", "mlflow", "--tracking-uri", mlflow_server, "--out", out, "--dry-run", "--json",
              schema="models_import_mlflow")
    assert {m["action"] for m in dry.json["models"]} == {"unchanged"}
    assert cli("models", "import", "mlflow", "--tracking-uri", mlflow_server, "--out", out).code == 0
    assert out.read_bytes() == written

    refused = cli("models", "register", "--file", out)
    assert refused.code == 1 and "model 'churn-save-offers'.kpi.name: still 'TO FILL'" in refused.err

    # 3. a person fills in the KPIs and how to measure them (here: from the demo company's manifest)
    draft = tomllib.loads(out.read_text())
    for entry in draft["models"]:
        ref = demo[entry["name"]]
        for key in ("kpi", "attribution", "monthly_cost", "cost_per_1k_predictions", "one_off_costs", "timezone",
                    "thresholds"):
            entry[key] = ref[key]
        if entry["team"] == TO_FILL:
            entry["team"] = ref["team"]
    churn = next(e for e in draft["models"] if e["name"] == "churn-save-offers")
    churn["display_name"] = "Churn save offers (from MLflow)"
    out.write_text(tomli_w.dumps(draft))
    # ... and MLflow moves on: the pricing v2 date is tagged, a v3 is registered
    client.set_model_version_tag("Dynamic Pricing", "2", "valuetrack.live_from", str(pricing_launch + dt.timedelta(days=40)))
    client.create_model_version("Dynamic Pricing", "s3://models/pricing/3",
                                tags={"valuetrack.live_from": str(pricing_launch + dt.timedelta(days=90))})
    again = cli("models", "import", "mlflow", "--tracking-uri", mlflow_server, "--out", out, "--json",
                schema="models_import_mlflow")
    changes = {m["name"]: m["changes"] for m in again.json["models"]}
    assert changes == {"churn-save-offers": [],
                       "dynamic-pricing": ["version 2 live-from date", "interventions: version 3"]}
    assert all(m["to_fill"] == [] for m in again.json["models"])
    registered = cli("models", "register", "--file", out, "--json", schema="models_register")
    assert registered.code == 0, registered.err
    assert registered.json["counts"] == {"create": 2, "update": 0, "unchanged": 0}
    shown = cli("models", "show", "churn-save-offers", "--json", schema="models_show").json["spec"]
    assert shown["display_name"] == "Churn save offers (from MLflow)"  # the person's value survived the re-import
    assert shown["owner"] == "retention-team@example.com"
    assert shown["annotations"] == [{"date": str(churn_launch + dt.timedelta(days=120)),
                                     "label": "MLflow version 2 (champion)"}]

    # 4. refresh, and the versions are on the model pages
    refreshed = cli("refresh", "--as-of", AS_OF, "--json", schema="refresh")
    assert refreshed.code == 0, refreshed.err
    assert {o["model"]: o["status"] for o in refreshed.json["refreshed"]} == {"churn-save-offers": "ok",
                                                                             "dynamic-pricing": "ok"}
    from tests.pages.conftest import app, assert_clean, svg_charts
    from valuetrack.store.db import dispose_all

    dispose_all()
    monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF)
    for model, labels in (("churn-save-offers", ["MLflow version 2 (champion)"]),
                          ("dynamic-pricing", ["MLflow version 1", "MLflow version 3"])):
        at = app("pages/model.py", model=model).run()
        assert_clean(at)
        first_chart = svg_charts(at)[0]  # the Value section's first chart, inline SVG (D51)
        hover = [t.text or "" for t in first_chart.iter("{http://www.w3.org/2000/svg}title")]
        for label in labels:
            assert any(h.endswith(label) for h in hover), (model, hover)
    dispose_all()


def test_an_unreachable_registry_is_a_clear_error(workspace: Path, cli) -> None:
    require_module("mlflow", 'the MLflow client: pip install "valuetrack[mlflow]"')
    port = free_port()
    started = time.monotonic()
    result = cli("models", "import", "mlflow", "--tracking-uri", f"http://user:pa55word@127.0.0.1:{port}", "--json")
    assert result.code == 1 and "cannot read the MLflow registry at http://user:***@127.0.0.1" in result.err
    assert "pa55word" not in result.err + result.out and "Traceback" not in result.err
    assert time.monotonic() - started < 60
    assert not (workspace / "mlflow-models.toml").exists()


@pytest.mark.standin
def test_the_register_page_offers_the_same_import(mlflow_server: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from tests.pages.conftest import app, assert_clean, svg_charts
    from valuetrack.store.db import dispose_all

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    client.create_registered_model("Fraud <i>Screen", tags={"team": "risk"})
    client.create_model_version("Fraud <i>Screen", "s3://models/fraud/1", tags={"valuetrack.live_from": "2025-04-01"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    at = app("pages/register.py").run()
    at.text_input(key="mlflow-uri").input(mlflow_server)
    at.text_input(key="mlflow-filter").input("name LIKE 'Fraud%'")
    at.button(key="mlflow-read").click().run()
    assert_clean(at)
    rows = next(d.value for d in at.dataframe if "to fill" in d.value.columns)
    assert list(rows["model"]) == ["fraud-i-screen"] and rows["action"][0] == "new"
    assert "kpi.name" in rows["to fill"][0]
    code = at.get("code")[-1].value
    assert 'label = "MLflow version 1"' in code and "2025-04-01" in code and 'team = "risk"' in code
    at.text_input(key="mlflow-uri").input("http://127.0.0.1:9").run()
    at.button(key="mlflow-read").click().run()
    assert "cannot read the MLflow registry" in at.error[0].value
    dispose_all()
