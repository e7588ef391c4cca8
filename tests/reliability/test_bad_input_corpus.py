"""A corpus of hand-made bad inputs, one per way input enters valuetrack: manifests, CLI argument
vectors, CSV/Parquet files for ``valuetrack attribute``, settings files, and warehouse data.

Every case runs the real CLI entry point and must end with exit code 1 or 2, a message on stderr
that names the problem (a regex per case), no traceback, and the app database unchanged
(row for row, and byte for byte for the SQLite file).
"""

from __future__ import annotations

import json

import re
import shutil
import textwrap
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from tests.reliability.cases import (
    AS_OF, SQLI_PAYLOADS, TRACEBACK, VALID_MANIFEST, WAREHOUSE_MANIFEST, ab_frame, build_warehouse, did_frame, run_cli, ts_frame,
)
from tests.reliability.conftest import db_rows, file_digest

V = VALID_MANIFEST


def sub(old: str, new: str, text: str = VALID_MANIFEST) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# ------------------------------------------------------------------------------------------------
# manifests: name → (manifest text, message regex)

MANIFESTS: dict[str, tuple[str | bytes, str]] = {
    "not toml": ("[[models]\nname = 'x'", r"not valid TOML"),
    "empty file": ("", r"no \[\[models\]\] entries"),
    "comment only": ("# nothing here\n", r"no \[\[models\]\] entries"),
    "models is a number": ("models = 5\n", r"no \[\[models\]\] entries"),
    "models of numbers": ("models = [1, 2]\n", r"models\[0\]: must be a \[\[models\]\] table"),
    "unknown top-level key": ("title = 'x'\n" + V, r"unknown top-level key 'title'"),
    "name missing": (sub('name = "dynamic-pricing"\n', ""), r"models\[1\]\.name: required field is missing"),
    "name uppercase": (sub('name = "dynamic-pricing"', 'name = "Dynamic-Pricing"'), r"\.name: 'Dynamic-Pricing' must be 3-64"),
    "name too short": (sub('name = "dynamic-pricing"', 'name = "dp"'), r"'dp' must be 3-64 characters"),
    "name too long": (sub('name = "dynamic-pricing"', f'name = "{"d" * 65}"'), r"must be 3-64 characters"),
    "name trailing dash": (sub('name = "dynamic-pricing"', 'name = "pricing-"'), r"'pricing-' must be 3-64"),
    "name is a number": (sub('name = "dynamic-pricing"', "name = 42"), r"\.name: must be a string \(got int 42\)"),
    "name homoglyph": (sub('name = "dynamic-pricing"', 'name = "dynamic-pric\u0456ng"'), r"must be 3-64 characters of a-z"),
    "duplicate names": (sub('name = "dynamic-pricing"', 'name = "churn-save-offers"'), r"duplicate; models\[0\] has the same name"),
    "display_name empty": (sub('display_name = "Dynamic pricing"', 'display_name = "  "'), r"display_name: must not be empty"),
    "display_name NUL": (sub('display_name = "Dynamic pricing"', 'display_name = "Dyn\\u0000amic"'), r"display_name: .*control character"),
    "display_name escape codes": (sub('display_name = "Dynamic pricing"', 'display_name = "\\u001b[31mred"'), r"display_name: .*control character"),
    "display_name 10k chars": (sub('display_name = "Dynamic pricing"', f'display_name = "{"x" * 10_000}"'), r"display_name: .*at most 200 characters"),
    "owner 300 chars": (sub('owner = "pricing@example.com"', f'owner = "{"o" * 300}@x.com"'), r"owner: .*at most 200 characters"),
    "owner missing": (sub('owner = "pricing@example.com"\n', ""), r"owner: required field is missing"),
    "status paused": (sub('status = "active"', 'status = "paused"'), r"status: 'paused' is not one of active, retired"),
    "timezone unknown": (sub('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'), r"timezone: 'Mars/Olympus' is not an IANA"),
    "timezone empty": (sub('timezone = "Europe/Paris"', 'timezone = ""'), r"timezone: '' is not an IANA"),
    "timezone path traversal": (sub('timezone = "Europe/Paris"', 'timezone = "../../etc/passwd"'), r"timezone: .* is not an IANA"),
    "timezone offset string": (sub('timezone = "Europe/Paris"', 'timezone = "+02:00"'), r"timezone: '\+02:00' is not an IANA"),
    "negative monthly cost": (sub("monthly_cost = 4000.0", "monthly_cost = -1.0"), r"monthly_cost: must be >= 0"),
    "cost as string": (sub("monthly_cost = 4000.0", 'monthly_cost = "4000"'), r"monthly_cost: must be a number \(got str"),
    "cost nan": (sub("monthly_cost = 4000.0", "monthly_cost = nan"), r"monthly_cost: must be a finite number"),
    "cost inf": (sub("monthly_cost = 4000.0", "monthly_cost = inf"), r"monthly_cost: must be a finite number"),
    "cost 10**400": (sub("monthly_cost = 4000.0", f"monthly_cost = {10 ** 400}"), r"monthly_cost: .*too large"),
    "cost bool": (sub("one_off_costs = 25000.0", "one_off_costs = true"), r"one_off_costs: must be a number \(got bool"),
    # effective-dated money (issue 17): lists of {from, amount} / {on, amount}, refused with the field named
    "dated cost out of order": (sub("monthly_cost = 4000.0", "monthly_cost = [{from = 2025-03-01, amount = 4000.0}, "
                                    "{from = 2025-07-01, amount = 5000.0}, {from = 2025-05-01, amount = 4500.0}]"),
                                r"monthly_cost\[2\]\.from: 2025-05-01 is before 2025-07-01 .*date order"),
    "dated cost duplicate date": (sub("monthly_cost = 4000.0", "monthly_cost = [{from = 2025-03-01, amount = 4000.0}, "
                                      "{from = 2025-03-01, amount = 5000.0}]"),
                                  r"monthly_cost\[1\]\.from: 2025-03-01 appears twice"),
    "dated cost starts after launch": (sub("monthly_cost = 4000.0", "monthly_cost = [{from = 2025-04-01, amount = 4000.0}]"),
                                       r"monthly_cost\[0\]\.from: 2025-04-01 is after the launch \(2025-03-01\)"),
    "dated cost empty list": (sub("monthly_cost = 4000.0", "monthly_cost = []"), r"monthly_cost: an empty list"),
    "dated cost negative amount": (sub("monthly_cost = 4000.0", "monthly_cost = [{from = 2025-03-01, amount = -1.0}]"),
                                   r"monthly_cost\[0\]\.amount: must be >= 0"),
    "dated cost missing amount": (sub("monthly_cost = 4000.0", "monthly_cost = [{from = 2025-03-01}]"),
                                  r"monthly_cost\[0\]\.amount: required field is missing"),
    "dated cost unknown key": (sub("monthly_cost = 4000.0", "monthly_cost = [{since = 2025-03-01, amount = 1.0}]"),
                               r"monthly_cost\[0\]\.since: unknown field"),
    "dated per-1k cost after launch": (sub("cost_per_1k_predictions = 0.5", "cost_per_1k_predictions = [{from = 2025-03-02, amount = 0.5}]"),
                                       r"cost_per_1k_predictions\[0\]\.from: 2025-03-02 is after the launch"),
    "dated value per unit out of order": (sub("value_per_unit = 1.0", "value_per_unit = [{from = 2025-03-01, amount = 1.0}, "
                                              "{from = 2025-02-01, amount = 1.2}]"),
                                          r"kpi\.value_per_unit\[1\]\.from: 2025-02-01 is before 2025-03-01"),
    "dated value per unit after launch": (sub("value_per_unit = 1.0", "value_per_unit = [{from = 2025-06-01, amount = 1.0}]"),
                                          r"kpi\.value_per_unit\[0\]\.from: 2025-06-01 is after the launch"),
    "one-off costs out of order": (sub("one_off_costs = 25000.0", "one_off_costs = [{on = 2025-05-01, amount = 1.0}, "
                                       "{on = 2025-01-01, amount = 2.0}]"),
                                   r"one_off_costs\[1\]\.on: 2025-01-01 is before 2025-05-01"),
    "one-off costs duplicate date": (sub("one_off_costs = 25000.0", "one_off_costs = [{on = 2025-05-01, amount = 1.0}, "
                                         "{on = 2025-05-01, amount = 2.0}]"),
                                     r"one_off_costs\[1\]\.on: 2025-05-01 appears twice"),
    "one-off costs with from": (sub("one_off_costs = 25000.0", "one_off_costs = [{from = 2025-05-01, amount = 1.0}]"),
                                r"one_off_costs\[0\]\.from: unknown field; known fields are on, amount, label"),
    "cost as a table": (sub("monthly_cost = 4000.0", "monthly_cost = {from = 2025-03-01, amount = 1.0}"),
                        r"monthly_cost: must be a number \(got dict .*\), or a list of \{from = DATE, amount = …\}"),
    "amortisation_months zero": (sub("one_off_costs = 25000.0", "one_off_costs = 25000.0\namortisation_months = 0"),
                                 r"amortisation_months: must be between 1 and 240 \(got 0\)"),
    "challenger dated cost": (sub("[models.thresholds]\nmin_roi = 0.0", "[models.attribution.challenger]\narm = \"v4\"\n"
                                  "treatment_share = 0.05\nmonthly_cost = [{from = 2025-03-01, amount = 1.0}]\n\n"
                                  "[models.thresholds]\nmin_roi = 0.0"),
                              r"challenger\.monthly_cost: must be a number \(got list.*dated lists are accepted only for the model.s"),
    "interventions out of order": (sub("start = 2025-06-01", "start = 2025-01-01"), r"interventions: starts must be distinct and in date order"),
    "intervention impossible date": (sub("start = 2025-03-01", 'start = "2025-02-30"'), r"interventions\[0\]\.start: must be a date"),
    "intervention datetime": (sub("start = 2025-03-01", "start = 2025-03-01T10:00:00"), r"interventions\[0\]\.start: must be a date"),
    "intervention end before start": (sub('label = "v3 launch"', 'label = "v3 launch"\nend = 2025-01-01'), r"end: 2025-01-01 is before start"),
    "interventions not a list": (sub("[[models.interventions]]\nstart = 2025-03-01\nlabel = \"v3 launch\"\n", 'interventions = "2025-03-01"\n'), r"interventions: must be a list"),
    "kpi missing": (sub('[models.kpi]\nname = "orders"\nunit = "count"\nvalue_per_unit = 7.5\n', ""), r"'dynamic-pricing'\.kpi: required"),
    "kpi unit dollars": (sub('unit = "USD"', 'unit = "dollars"'), r"kpi\.unit: 'dollars' is neither"),
    "kpi negative value": (sub("value_per_unit = 1.0", "value_per_unit = -1.0"), r"kpi\.value_per_unit: must be >= 0"),
    "kpi aggregation median": (sub('aggregation = "sum"', 'aggregation = "median"'), r"kpi\.aggregation: 'median' is not one of"),
    "kpi boolean as string": (sub("higher_is_better = true", 'higher_is_better = "yes"'), r"higher_is_better: must be true or false"),
    "kpi not a table": ("[[models]]\nname = \"abc\"\ndisplay_name = \"a\"\nowner = \"o\"\nteam = \"t\"\nkpi = \"revenue\"\n[models.attribution]\nmethod = \"ab\"\n",
                        r"kpi: must be a table of fields"),
    "kpi unknown field": (sub('aggregation = "sum"', 'aggregation = "sum"\ncurrency = "EUR"'), r"kpi\.currency: unknown field"),
    "method magic": (sub('method = "ab"', 'method = "magic"'), r"attribution\.method: 'magic' is not one of"),
    "window 0": (sub("window_days = 30", "window_days = 0"), r"window_days: must be between 1 and 730"),
    "window huge": (sub("window_days = 30", "window_days = 100000"), r"window_days: must be between 1 and 730"),
    "window float": (sub("window_days = 30", "window_days = 1.5"), r"window_days: must be a whole number"),
    "lag negative": (sub("outcome_lag_days = 3", "outcome_lag_days = -1"), r"outcome_lag_days: must be between 0 and 365"),
    "covariate too long": (sub("covariate_days = 30", "covariate_days = 731"), r"covariate_days: must be between 0 and 730"),
    "share 1": (sub("treatment_share = 0.9", "treatment_share = 1.0"), r"treatment_share: must be strictly between 0 and 1"),
    "share 0": (sub("treatment_share = 0.9", "treatment_share = 0"), r"treatment_share: must be strictly between 0 and 1"),
    "exposures without outcomes": (V.split("[models.attribution.outcomes]")[0] + "[[models]]" + V.split("[[models]]")[2],
                                   r"attribution\.outcomes: required with"),
    "structural without controls": (sub('controls = ["region_b_orders", "region_c_orders"]', "controls = []"), r"method 'structural' needs at least one control"),
    "ab with series only": (sub('method = "structural"', 'method = "ab"'), r"method 'ab' needs"),
    "table injection": (sub('table = "exposures"', 'table = "exposures; DROP TABLE x"'), r"exposures\.table: .* is not a plain name"),
    "column with space": (sub('unit = "customer_id"', 'unit = "customer id"'), r"exposures\.unit: 'customer id' is not a plain name"),
    "column with quote": (sub('arm = "arm"', "arm = 'arm\"'"), r"exposures\.arm: .* is not a plain name"),
    "column comment": (sub('score = "score"', 'score = "score--"'), r"exposures\.score: .* is not a plain name"),
    "four-part table": (sub('table = "outcomes"', 'table = "a.b.c.outcomes"'), r"outcomes\.table: .*up to 3 parts"),
    "arms equal": (sub('control = "holdout"', 'control = "model"'), r"treatment: equals control"),
    "model_value without model": (sub('model = "model_id"\n', 'model_value = "x"\n'), r"model_value: given without `model`"),
    "where stacked": (sub("where = \"event_type = 'purchase'\"", "where = \"1=1; DROP TABLE outcomes\""), r"outcomes\.where: .*holds ';'"),
    "where subquery": (sub("where = \"event_type = 'purchase'\"", "where = \"(SELECT 1) = 1\""), r"outcomes\.where: .*subquery"),
    "where pg_sleep": (sub("where = \"event_type = 'purchase'\"", "where = \"pg_sleep(10) IS NULL\""), r"outcomes\.where: .*pg_sleep"),
    "where read_csv": (sub("where = \"event_type = 'purchase'\"", "where = \"event_type IN (SELECT * FROM read_csv('/etc/passwd'))\""), r"outcomes\.where: .*"),
    "where empty": (sub("where = \"event_type = 'purchase'\"", 'where = ""'), r"outcomes\.where: the filter is empty"),
    "where unparsable": (sub("where = \"event_type = 'purchase'\"", 'where = "event_type = "'), r"outcomes\.where: .*"),
    "where is a statement": (sub("where = \"event_type = 'purchase'\"", 'where = "DELETE FROM outcomes"'), r"outcomes\.where: .*(not a condition|DELETE)"),
    "controls contain value": (sub('controls = ["region_b_orders", "region_c_orders"]', 'controls = ["region_a_orders"]'), r"controls: contains the treated series"),
    "controls a string": (sub('controls = ["region_b_orders", "region_c_orders"]', 'controls = "region_b_orders"'), r"controls: must be a list"),
    "controls injection": (sub('controls = ["region_b_orders", "region_c_orders"]', 'controls = ["b", "c) FROM t; --"]'), r"controls\[1\]: .* is not a plain name"),
    "min_roi below -1": (sub("min_roi = 0.0", "min_roi = -2.0"), r"min_roi: must be >= -1"),
    "unproven 0 days": (sub("unproven_after_days = 90", "unproven_after_days = 0"), r"unproven_after_days: must be between 1 and 3650"),
    "revision 0": (sub('name = "churn-save-offers"', 'name = "churn-save-offers"\nrevision = 0'), r"revision: must be a whole number >= 1"),
    "revision string": (sub('name = "churn-save-offers"', 'name = "churn-save-offers"\nrevision = "3"'), r"revision: must be a whole number >= 1"),
    "revision bool": (sub('name = "churn-save-offers"', 'name = "churn-save-offers"\nrevision = true'), r"revision: must be a whole number >= 1"),
    "revision stale": (sub('name = "churn-save-offers"', 'name = "churn-save-offers"\nrevision = 99').replace("4000.0", "4100.0"),
                       r"exported at revision 99 but the registry is at revision 1"),
    "unknown connection": (sub('connection = "demo"\ntimezone', 'connection = "nowhere"\ntimezone'), r"connection: 'nowhere' is not a connection"),
    "latin-1 bytes": ('[[models]]\nname = "caf\xe9"\n'.encode("latin-1"), r"cannot read .*utf-8"),
    "utf-16 file": (V.encode("utf-16"), r"cannot read|not valid TOML"),
    "second model invalid, all or nothing": (sub("monthly_cost = 12000.0", "monthly_cost = -5.0").replace("4000.0", "4400.0"),
                                             r"'dynamic-pricing'\.monthly_cost: must be >= 0"),
}


# ------------------------------------------------------------------------------------------------
# CLI argument vectors: name → (argv, exit code, message regex). {ws} is the workspace.

ARGV: dict[str, tuple[list[str], int, str]] = {
    "no arguments": ([], 2, r"the following arguments are required: COMMAND"),
    "unknown command": (["frobnicate"], 2, r"invalid choice: 'frobnicate'"),
    "models without action": (["models"], 2, r"required: ACTION"),
    "show unknown model": (["models", "show", "no-such-model"], 1, r"no model named 'no-such-model'"),
    "show injection name": (["models", "show", "' OR 1=1 --"], 1, r"no model named"),
    "show history negative": (["models", "show", "churn-save-offers", "--history", "-1"], 2, r"--history: must be a whole number >= 1"),
    "show history text": (["models", "show", "churn-save-offers", "--history", "ten"], 2, r"--history: .*'ten'"),
    "retire unknown": (["models", "retire", "no-such-model"], 1, r"no model named 'no-such-model'"),
    "retire revision text": (["models", "retire", "churn-save-offers", "--revision", "abc"], 2, r"--revision: .*'abc'"),
    "retire revision stale": (["models", "retire", "churn-save-offers", "--revision", "99"], 1, r"changed since revision 99"),
    "retire revision 0": (["models", "retire", "churn-save-offers", "--revision", "0"], 2, r"--revision: must be a whole number >= 1"),
    "export unknown name": (["models", "export", "--name", "nope"], 1, r"--name: no model named 'nope'"),
    "export to missing folder": (["models", "export", "--out", "{ws}/no/such/dir/m.toml"], 1, r"--out: folder .*no/such/dir. does not exist"),
    "register missing file": (["models", "register", "--file", "{ws}/nope.toml"], 1, r"--file: .*does not exist"),
    "register a folder": (["models", "register", "--file", "{ws}"], 1, r"--file: cannot read"),
    "register without file": (["models", "register"], 2, r"required: --file"),
    "value bad month": (["value", "--month", "2025-13"], 2, r"--month: '2025-13' is not a month"),
    "value month injection": (["value", "--month", "2025-01'; DROP TABLE models; --"], 2, r"--month: .* is not a month"),
    "value alpha 2": (["value", "--alpha", "2"], 2, r"--alpha must be between 0 and 0.5"),
    "value alpha text": (["value", "--alpha", "five"], 2, r"'five' is not a number"),
    "value alpha nan": (["value", "--alpha", "nan"], 2, r"--alpha must be between 0 and 0.5"),
    "value impossible as-of": (["value", "--as-of", "2025-02-30"], 2, r"'2025-02-30' is not a date"),
    "flags negative alpha": (["flags", "--alpha", "-1"], 2, r"--alpha must be between"),
    "report unknown format": (["report", "--month", "2025-01", "--format", "docx", "--out", "x"], 2, r"invalid choice: 'docx'"),
    "report without out": (["report", "--month", "2025-01", "--format", "csv"], 2, r"required: --out"),
    "refresh unknown model": (["refresh", "--model", "no-such-model"], 1, r"no model named 'no-such-model'"),
    "refresh timeout text": (["refresh", "--timeout", "soon"], 2, r"--timeout: .*'soon'"),
    "refresh timeout negative": (["refresh", "--timeout", "-5"], 2, r"--timeout: must be a number of seconds > 0"),
    "refresh timeout nan": (["refresh", "--timeout", "nan"], 2, r"--timeout: must be a number of seconds > 0"),
    "missing config file": (["models", "list", "--config", "{ws}/nope.toml"], 1, r"settings file .* does not exist"),
    "attribute ab missing options": (["attribute", "ab", "--data", "x.csv"], 2, r"required: --metric"),
    "attribute ts bad intervention": (["attribute", "ts", "--data", "x.csv", "--date-col", "d", "--metric", "m", "--intervention", "March"], 2, r"'March' is not a date"),
    "attribute did neither form": (["attribute", "did", "--data", "{ws}/did.csv", "--time-col", "t", "--metric", "y", "--intervention", "6"], 2, r"give either --unit-col"),
    "attribute did unit without treated": (["attribute", "did", "--data", "{ws}/did.csv", "--time-col", "t", "--metric", "y", "--intervention", "6", "--unit-col", "unit"], 2, r"--unit-col needs --treated"),
    "serve bad port": (["serve", "--port", "http"], 2, r"--port: .*'http'"),
    "demo negative scale": (["demo", "--scale", "-1"], 2, r"--scale: must be a number > 0"),
    "share above 1": (["attribute", "ab", "--data", "x.csv", "--metric", "y", "--arm-col", "arm", "--control", "a", "--treatment", "b", "--treatment-share", "1.5"], 2, r"--treatment-share must be strictly between"),
}


# ------------------------------------------------------------------------------------------------
# CSV / Parquet for `valuetrack attribute`: name → (kind, file name, writer, extra argv, message)

AB_ARGS = ["--metric", "y", "--arm-col", "arm", "--control", "holdout", "--treatment", "model"]
TS_ARGS = ["--date-col", "day", "--metric", "orders", "--intervention", "2025-03-15", "--controls", "ctrl", "--method", "its"]
DID_ARGS = ["--time-col", "t", "--metric", "y", "--intervention", "6", "--unit-col", "unit", "--treated", "a"]


def _csv(frame_fn: Callable[[], pd.DataFrame]) -> Callable[[Path], None]:
    return lambda p: frame_fn().to_csv(p, index=False)


def _text(text: str | bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(text if isinstance(text, bytes) else text.encode())


def _parquet(frame_fn: Callable[[], pd.DataFrame]) -> Callable[[Path], None]:
    return lambda p: frame_fn().to_parquet(p, index=False)


def _ab(**changes: Any) -> Callable[[], pd.DataFrame]:
    def make() -> pd.DataFrame:
        f = ab_frame()
        for key, fn in changes.items():
            f = fn(f)
        return f
    return make


def _set(col: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(f: pd.DataFrame) -> pd.DataFrame:
        f = f.astype({col: object})
        f.loc[row, col] = value
        return f
    return fn


def _ts(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], pd.DataFrame]:
    return lambda: fn(ts_frame())


def _did(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], pd.DataFrame]:
    return lambda: fn(did_frame())


FILES: dict[str, tuple[str, str, Callable[[Path], None], list[str], str]] = {
    "ab empty file": ("ab", "d.csv", _text(""), AB_ARGS, r"--data: 'd.csv' is empty"),
    "ab header only": ("ab", "d.csv", _text("unit,arm,y,x\n"), AB_ARGS, r"--data: 'd.csv' has no rows"),
    "ab missing metric column": ("ab", "d.csv", _csv(_ab(a=lambda f: f.drop(columns="y"))), AB_ARGS, r"--metric: no column 'y'"),
    "ab missing arm column": ("ab", "d.csv", _csv(_ab(a=lambda f: f.drop(columns="arm"))), AB_ARGS, r"--arm-col: no column 'arm'"),
    "ab non-numeric metric": ("ab", "d.csv", _csv(_ab(a=_set("y", 7, "abc"))), AB_ARGS, r"--metric: column 'y' must be numeric; row 8 has 'abc'"),
    "ab missing metric value": ("ab", "d.csv", _csv(_ab(a=_set("y", 3, None))), AB_ARGS, r"--metric: column 'y' has 1 missing value"),
    "ab infinite metric": ("ab", "d.csv", _csv(_ab(a=_set("y", 5, float("inf")))), AB_ARGS, r"--metric: .*(infinite|finite)"),
    "ab overflowing metric": ("ab", "d.csv", _csv(_ab(a=_set("y", 5, 1e308))), AB_ARGS, r"sum_y2: sufficient statistics must be finite"),
    "ab unknown control label": ("ab", "d.csv", _csv(_ab()), ["--metric", "y", "--arm-col", "arm", "--control", "ctrl", "--treatment", "model"], r"--control: no rows have arm = 'ctrl'; labels found: holdout, model"),
    "ab unknown treatment label": ("ab", "d.csv", _csv(_ab()), ["--metric", "y", "--arm-col", "arm", "--control", "holdout", "--treatment", "Model"], r"--treatment: no rows have arm = 'Model'"),
    "ab same arm twice": ("ab", "d.csv", _csv(_ab()), ["--metric", "y", "--arm-col", "arm", "--control", "model", "--treatment", "model"], r"name the same arm"),
    "ab one arm only": ("ab", "d.csv", _csv(_ab(a=lambda f: f.assign(arm="model"))), AB_ARGS, r"--control: no rows have arm = 'holdout'"),
    "ab arm all null": ("ab", "d.csv", _csv(_ab(a=lambda f: f.assign(arm=None))), AB_ARGS, r"--control: no rows have arm"),
    "ab covariate missing": ("ab", "d.csv", _csv(_ab()), AB_ARGS + ["--covariate", "pre"], r"--covariate: no column 'pre'"),
    "ab covariate text": ("ab", "d.csv", _csv(_ab(a=_set("x", 0, "n/a"))), AB_ARGS + ["--covariate", "x"], r"--covariate: column 'x' has 1 missing value"),
    "ab ragged rows": ("ab", "d.csv", _text("unit,arm,y\n1,model,3\n2,holdout,4,5,6\n"), AB_ARGS, r"could not read 'd.csv'"),
    "ab binary garbage": ("ab", "d.csv", _text(bytes(range(256)) * 4), AB_ARGS, r"--data: could not read 'd.csv'|--metric: no column"),
    "ab utf-16 csv": ("ab", "d.csv", _text(ab_frame().to_csv(index=False).encode("utf-16")), AB_ARGS, r"--data: could not read 'd.csv'|--metric: no column"),
    "ab xlsx extension": ("ab", "d.xlsx", _text(b"PK\x03\x04"), AB_ARGS, r"'d.xlsx' is neither .csv nor .parquet"),
    "ab missing file": ("ab", "nope.csv", lambda p: None, AB_ARGS, r"--data: file .*nope.csv' does not exist"),
    "ab folder": ("ab", "folder.csv", lambda p: p.mkdir(), AB_ARGS, r"is a folder"),
    "ab corrupt parquet": ("ab", "d.parquet", _text(b"PAR1 this is not parquet PAR1"), AB_ARGS, r"--data: could not read 'd.parquet'"),
    "ab parquet no rows": ("ab", "d.parquet", _parquet(lambda: ab_frame().iloc[:0]), AB_ARGS, r"'d.parquet' has no rows"),
    "ab parquet metric strings": ("ab", "d.parquet", _parquet(_ab(a=lambda f: f.assign(y=f["y"].astype(str).str.replace("1", "one")))), AB_ARGS, r"--metric: column 'y' must be numeric"),
    "ab parquet metric column missing": ("ab", "d.parquet", _parquet(_ab(a=lambda f: f.drop(columns="y"))), AB_ARGS, r"--metric: no column 'y'"),
    "ab duplicate units": ("ab", "d.csv", _csv(_ab(a=lambda f: pd.concat([f, f.iloc[:50]]))), AB_ARGS + ["--unit-col", "unit"], r"unrecognized arguments: --unit-col"),
    "ts dates not dates": ("ts", "t.csv", _csv(_ts(lambda f: f.assign(day="someday"))), TS_ARGS, r"--date-col: .*(does not hold dates|is not a date)"),
    "ts one bad date": ("ts", "t.csv", _csv(_ts(lambda f: f.astype({"day": object}).pipe(lambda g: g.__setitem__(("day"), g["day"].where(g.index != 4, "2025-02-30")) or g))), TS_ARGS, r"--date-col: .*(row 5|does not hold dates)"),
    "ts mixed time zones": ("ts", "t.csv", _csv(_ts(lambda f: f.assign(day=[d + ("T00:00:00+02:00" if i % 2 else "T00:00:00Z") for i, d in enumerate(f["day"])]))), TS_ARGS, r"--date-col: .*"),
    "ts duplicate dates": ("ts", "t.csv", _csv(_ts(lambda f: pd.concat([f, f.iloc[10:12]]))), TS_ARGS, r"--date-col: .*(duplicate|twice|more than once)"),
    "ts intervention after data": ("ts", "t.csv", _csv(_ts(lambda f: f)), ["--date-col", "day", "--metric", "orders", "--intervention", "2030-01-01", "--method", "its"], r"--intervention: .*"),
    "ts missing control": ("ts", "t.csv", _csv(_ts(lambda f: f.drop(columns="ctrl"))), TS_ARGS, r"--controls: no column 'ctrl'"),
    "ts control is metric": ("ts", "t.csv", _csv(_ts(lambda f: f)), ["--date-col", "day", "--metric", "orders", "--intervention", "2025-03-15", "--controls", "orders"], r"--controls: 'orders' is the metric itself"),
    "ts metric text": ("ts", "t.csv", _csv(_ts(lambda f: f.astype({"orders": object}).assign(orders=lambda g: g["orders"].where(g.index != 9, "12,5")))), TS_ARGS, r"--metric: column 'orders' must be numeric; row 10"),
    "ts three rows": ("ts", "t.csv", _csv(_ts(lambda f: f.iloc[70:73])), TS_ARGS, r"(--intervention|--data|--date-col|pre-period|too few|at least).*"),
    "ts missing date column": ("ts", "t.csv", _csv(_ts(lambda f: f.drop(columns="day"))), TS_ARGS, r"--date-col: no column 'day'"),
    "did treated unit absent": ("did", "did.csv", _csv(_did(lambda f: f)), ["--time-col", "t", "--metric", "y", "--intervention", "6", "--unit-col", "unit", "--treated", "zz"], r"--treated: .*'zz'"),
    "did time column missing": ("did", "did.csv", _csv(_did(lambda f: f.drop(columns="t"))), DID_ARGS, r"--time-col: no column 't'"),
    "did metric text": ("did", "did.csv", _csv(_did(lambda f: f.astype({"y": object}).assign(y=lambda g: g["y"].where(g.index != 2, "lots")))), DID_ARGS, r"--metric: column 'y' must be numeric"),
    "did intervention outside": ("did", "did.csv", _csv(_did(lambda f: f)), ["--time-col", "t", "--metric", "y", "--intervention", "99", "--unit-col", "unit", "--treated", "a"], r"--intervention: .*"),
    "did group without value": ("did", "did.csv", _csv(_did(lambda f: f)), ["--time-col", "t", "--metric", "y", "--intervention", "6", "--group-col", "unit"], r"--group-col needs --treated-value"),
    "did every unit treated": ("did", "did.csv", _csv(_did(lambda f: f)), ["--time-col", "t", "--metric", "y", "--intervention", "6", "--unit-col", "unit", "--treated", "a,b,c,d"], r"--treated: .*"),
}


# ------------------------------------------------------------------------------------------------
# settings files: name → (valuetrack.toml text, argv, message). The workspace database is untouched.

SETTINGS: dict[str, tuple[str, list[str], str]] = {
    "settings not toml": ("[store\nurl=1", ["models", "list"], r"not valid TOML"),
    "settings unknown section": ("[stores]\nurl = 'x'\n", ["models", "list"], r"unknown section 'stores'"),
    "store is a number": ("store = 5\n", ["models", "list"], r"\[store\] must be a table"),
    "store url not a url": ("[store]\nurl = 'not a url'\n", ["models", "list"], r"\[store\]\.url .* is not a SQLAlchemy URL"),
    "store url number": ("[store]\nurl = 5\n", ["models", "list"], r"\[store\]\.url must be a string"),
    "store url secret undefined": ("[store]\nurl = 'postgresql+psycopg://vt:${NO_SUCH_VALUETRACK_VAR}@db/vt'\n", ["models", "list"], r"\[store\]\.url refers to \$\{NO_SUCH_VALUETRACK_VAR\}"),
    "secrets file not toml": ("[store]\nurl = 'sqlite:///${VT_SECRET_PATH}'\n", ["models", "list", "--json"], r"secrets.toml: not valid TOML"),
    "store folder missing": ("[store]\nurl = 'sqlite:////no/such/dir/x.db'\n", ["models", "list"], r"folder '/no/such/dir' of the app database does not exist"),
    "store unknown dialect": ("[store]\nurl = 'nosuchdb://host/x'\n", ["models", "list"], r"\[store\]\.url: .*nosuchdb"),
    "store postgres refused": ("[store]\nurl = 'postgresql+psycopg://u@127.0.0.1:1/x'\n", ["models", "list"], r"cannot open the app database: .*(refused|connect)"),
    "currency lowercase": ("[store]\ncurrency = 'usd'\n", ["models", "list"], r"\[store\]\.currency 'usd' must be a 3-letter code"),
    "connection without url": ("[connections.x]\nhost = 'h'\n", ["models", "list"], r"\[connections\.x\] needs a url"),
    "connections is a string": ("connections = 'duckdb:///x'\n", ["models", "list"], r"\[connections\] must be a table"),
    "connection url number": ("[connections.demo]\nurl = 5\n", ["models", "list"], r"\[connections\.demo\] needs a url"),
    "auth is a string": ("auth = 'everyone'\n", ["models", "list"], r"\[auth\] must be a table"),
    "auth editors a string": ("[auth]\neditors = 'ana@example.com'\n", ["models", "list"], r"\[auth\]\.editors must be a list"),
    "auth unknown role": ("[auth]\ndefault_role = 'superuser'\n", ["models", "list"], r"\[auth\]\.default_role 'superuser' is not one of viewer, editor, admin"),
    "auth unknown key": ("[auth]\nadmin = ['x']\n", ["models", "list"], r"\[auth\]: unknown key 'admin'"),
}


# ------------------------------------------------------------------------------------------------
# input the app database itself must refuse: every case OPENS the database (checked), so "the
# database is unchanged" is a real claim, not true by construction. name → (argv, env, use the
# [auth] template, message regex). Exit code 1.

HOSTILE_NAMES = SQLI_PAYLOADS[:30] + ["churn-save-offers\u202e", "Churn-Save-Offers", "churn_save_offers", "x" * 5000,
                             "../../etc/passwd", "churn-save-offers ", "${VALUETRACK_CONFIG}", "%s%s%n"]
ANA_TOKEN = "corpus-ana-token"
AUTH_SETTINGS = textwrap.dedent(f"""
    [store]
    url = "sqlite:///valuetrack.db"
    [connections.demo]
    url = "duckdb:///sample_data/demo.duckdb"
    [auth]
    default_role = "viewer"
    editors = ["ana@example.com"]
    admins = ["lead@example.com"]
    [auth.service_accounts."ana@example.com"]
    token_sha256 = "{__import__("hashlib").sha256(ANA_TOKEN.encode()).hexdigest()}"
""")
EDITS = {  # one field changed, as a person would edit an exported manifest
    "display name": ('display_name = "Churn save offers v3"', 'display_name = "Churn save offers v4"'),
    "owner": ('owner = "retention-team@example.com"', 'owner = "new-owner@example.com"'),
    "team": ('team = "retention"', 'team = "growth"'),
    "retire": ('status = "active"', 'status = "retired"'),
    "monthly cost": ("monthly_cost = 4000.0", "monthly_cost = 1.0"),
    "one-off costs": ("one_off_costs = 25000.0", "one_off_costs = 0.0"),
    "value per unit": ("value_per_unit = 1.0", "value_per_unit = 100.0"),
    "lower is better": ("higher_is_better = true", "higher_is_better = false"),
    "window": ("window_days = 30", "window_days = 7"),
    "lag": ("outcome_lag_days = 3", "outcome_lag_days = 0"),
    "covariate off": ("covariate_days = 30", "covariate_days = 0"),
    "treatment share": ("treatment_share = 0.9", "treatment_share = 0.5"),
    "exposures table": ('table = "exposures"', 'table = "exposures_v2"'),
    "outcome value": ('value = "value"', 'value = "margin"'),
    "where filter": ("where = \"event_type = 'purchase'\"", "where = \"event_type = 'refund'\""),
    "min roi": ("min_roi = 0.0", "min_roi = 5.0"),
    "unproven after": ("unproven_after_days = 90", "unproven_after_days = 365"),
    "timezone": ('timezone = "Europe/Paris"', 'timezone = "Pacific/Kiritimati"'),
    "launch date": ("start = 2025-03-01", "start = 2025-02-01"),
    "second model cost": ("monthly_cost = 12000.0", "monthly_cost = 0.0"),
}


def _edited(edit: str, *, revision: int | None = None) -> str:
    old, new = EDITS[edit]
    text = sub(old, new)
    if revision is not None:  # an export carries its revision: stale here (the registry is at 1)
        text = text.replace('name = "churn-save-offers"\n', f'name = "churn-save-offers"\nrevision = {revision}\n', 1)
        text = text.replace('name = "dynamic-pricing"\n', f'name = "dynamic-pricing"\nrevision = {revision}\n', 1)
    return text


DB_CASES: dict[str, tuple[list[str], dict[str, str], bool, str]] = {}
for _i, _n in enumerate(HOSTILE_NAMES):
    _shown = re.escape(repr(_n)[:40])
    DB_CASES[f"show unknown #{_i}"] = (["models", "show", "--", _n], {}, False, r"no model named .* is registered")
    DB_CASES[f"retire unknown #{_i}"] = (["models", "retire", "--", _n], {}, False, r"no model named .* is registered")
    DB_CASES[f"refresh unknown #{_i}"] = ([f"--model={_n}", "refresh", "--as-of", str(AS_OF)], {}, False,
                                          r"no model named .* is registered")
    DB_CASES[f"export unknown #{_i}"] = (["models", "export", f"--name={_n}"], {}, False, r"--name: no model named")
for _edit in EDITS:
    DB_CASES[f"stale revision: {_edit}"] = (["models", "register", "--file", "{edit:" + _edit + "}"], {}, False,
                                           r"was exported at revision 7 but the registry is at revision 1")
    DB_CASES[f"claimed name, no credential: {_edit}"] = (
        ["models", "register", "--file", "{edit:" + _edit + "}"], {"VALUETRACK_USER": "lead@example.com"}, True,
        r"lead@example\.com is a viewer and may not register models; .*not a credential")
for _i, _token in enumerate(["", " ", "corpus-ana-token-", "CORPUS-ANA-TOKEN", "corpus-ana-toke", ANA_TOKEN * 2,
                             "${VALUETRACK_TOKEN}", "0" * 64]):
    DB_CASES[f"wrong token #{_i}"] = (["models", "retire", "churn-save-offers"],
                                      {"VALUETRACK_TOKEN": _token, "VALUETRACK_USER": "ana@example.com"}, True,
                                      r"is a viewer and may not retire models")
DB_CASES["retire at an old revision"] = (["models", "retire", "churn-save-offers", "--revision", "3"], {}, False,
                                         r"was changed since revision 3")
DB_CASES["report of a month that has not started"] = (
    ["report", "--month", "2025-08", "--format", "csv", "--out", "{ws}/r.csv", "--as-of", str(AS_OF)], {}, False,
    r"has not started")


CASES: list[tuple[str, str]] = (
    [("manifest", k) for k in MANIFESTS] + [("argv", k) for k in ARGV] + [("file", k) for k in FILES]
    + [("settings", k) for k in SETTINGS] + [("database", k) for k in DB_CASES]
)
NEVER_OPEN = {"file"}  # `attribute` reads a file and never the app database


def test_the_corpus_has_at_least_100_cases_and_150_that_open_the_database() -> None:
    assert len(CASES) >= 100, len(CASES)
    assert len(DB_CASES) >= 150, len(DB_CASES)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app database with the valid manifest registered, built once and copied into each case."""
    from valuetrack.access import Actor
    from valuetrack.registry.manifest import parse_manifest
    from valuetrack.registry.store import RegistryStore
    from valuetrack.store.db import dispose_all, open_engine

    path = tmp_path_factory.mktemp("template") / "valuetrack.db"
    RegistryStore(open_engine(f"sqlite:///{path}")).apply(parse_manifest(VALID_MANIFEST), Actor("tester@example.com"))
    dispose_all()
    file_digest(path)  # fold the WAL into the file
    return path


@pytest.fixture(scope="module")
def template_auth_db(template_db: Path) -> Path:
    """The same database after settings with [auth] opened it (so it enforces that [auth])."""
    from valuetrack.access import Access
    from valuetrack.config import _from_dict
    from valuetrack.store.db import dispose_all, open_engine

    path = template_db.with_name("valuetrack-auth.db")
    shutil.copyfile(template_db, path)
    auth = _from_dict(__import__("tomllib").loads(AUTH_SETTINGS), path.with_name("x.toml")).auth
    Access(open_engine(f"sqlite:///{path}"), auth)
    dispose_all()
    file_digest(path)
    return path


@pytest.fixture
def registered(workspace: Path, template_db: Path) -> Path:
    """The workspace with the valid manifest registered: the state every case must leave intact."""
    shutil.copyfile(template_db, workspace / "valuetrack.db")
    did_frame().to_csv(workspace / "did.csv", index=False)
    return workspace


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The app-database URLs the case opened (every open after dispose_all() creates an engine)."""
    from valuetrack.store import db as store_db

    urls: list[str] = []
    original = store_db._create

    def create(url: str) -> Any:
        urls.append(url)
        return original(url)

    monkeypatch.setattr(store_db, "_create", create)
    return urls


def _state(ws: Path) -> tuple[Any, str]:
    from valuetrack.store.db import dispose_all

    dispose_all()  # release pooled connections so the file can be checkpointed and hashed
    db = ws / "valuetrack.db"
    return db_rows(f"sqlite:///{db}"), file_digest(db)


def _check(run: Any, code: int | tuple[int, ...], message: str) -> None:
    codes = code if isinstance(code, tuple) else (code,)
    assert run.code in codes, f"exit {run.code}, stderr: {run.err!r}"
    assert not TRACEBACK.search(run.err + run.out), run.err
    assert run.err.startswith(("valuetrack: error:", "usage:")), run.err
    assert re.search(message, run.err, re.S), f"{message!r} not in {run.err!r}"


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}:{n}" for k, n in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(registered: Path, kind: str, name: str, opened: list[str],
                                                         template_auth_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = registered
    if kind == "database" and DB_CASES[name][2]:
        shutil.copyfile(template_auth_db, ws / "valuetrack.db")
        (ws / "valuetrack.toml").write_text(AUTH_SETTINGS)
    before = _state(ws)
    opened.clear()
    if kind == "manifest":
        text, message = MANIFESTS[name]
        path = ws / "bad.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        run = run_cli("models", "register", "--file", path)
        _check(run, 1, message)
        dry = run_cli("models", "register", "--file", path, "--dry-run", "--json")
        assert dry.code == 1 and '"error"' in dry.out
    elif kind == "argv":
        argv, code, message = ARGV[name]
        run = run_cli(*[a.replace("{ws}", str(ws)) for a in argv])
        _check(run, code, message)
    elif kind == "file":
        method, fname, write, extra, message = FILES[name]
        data = ws / fname
        write(data)
        run = run_cli("attribute", method, "--data", data, *extra)
        _check(run, (1, 2), message)
        as_json = run_cli("attribute", method, "--data", data, *extra, "--json")
        assert as_json.code == run.code
    elif kind == "settings":
        text, argv, message = SETTINGS[name]
        cfg = ws / "bad-settings" / "valuetrack.toml"
        cfg.parent.mkdir()
        cfg.write_text(textwrap.dedent(text))
        if name == "secrets file not toml":
            (cfg.parent / ".streamlit").mkdir()
            (cfg.parent / ".streamlit" / "secrets.toml").write_text("VT_SECRET_PATH = [unclosed")
        run = run_cli(*argv, "--config", cfg)
        _check(run, (1, 2), message)
    if kind == "database":
        argv, env, _, message = DB_CASES[name]
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for i, arg in enumerate(argv):
            if arg.startswith("{edit:"):
                (ws / "edit.toml").write_text(_edited(arg[6:-1], revision=None if env else 7))
                argv = [*argv[:i], str(ws / "edit.toml"), *argv[i + 1:]]
        if argv[0].startswith("--model="):  # refresh --model=NAME (a name starting with '-' is not an option)
            argv = [*argv[1:], argv[0]]
        argv = [a.replace("{ws}", str(ws)) for a in argv]
        cut = argv.index("--") if "--" in argv else len(argv)  # options go before "--"
        run = run_cli(*argv[:cut], "--json", *argv[cut:])
        _check(run, 1, message)
        assert '"error"' in run.out
    opens = [u for u in opened if u.endswith("valuetrack.db")]
    if kind == "database":
        assert opens, "this case must open the app database"
    elif kind in NEVER_OPEN:
        assert not opens, "refused before the app database is opened"
    assert _state(ws) == before, "the app database changed"


# ------------------------------------------------------------------------------------------------
# warehouse data: nulls, duplicates, mixed time zones, future timestamps, negative and non-numeric
# values, empty tables. A refresh either stores sound aggregates or fails with a message naming the
# problem; the registry is never touched and earlier aggregates stay when it fails.

def _exposures_sql(select: str) -> str:
    return f"CREATE TABLE exposures AS {select}"


_GOOD_EXPOSURES = ("SELECT i AS customer_id, TIMESTAMP '2025-06-29 12:00:00' - INTERVAL (i % 50) DAY AS scored_at, "
                   "'churn-save-offers' AS model_id, CASE WHEN i % 10 = 0 THEN 'holdout' ELSE 'model' END AS arm, "
                   "(i % 97) / 97.0 AS score, CASE WHEN i % 3 = 0 THEN 'fr' ELSE 'de' END AS country FROM range(500) t(i)")
_GOOD_OUTCOMES = ("SELECT i AS customer_id, TIMESTAMP '2025-06-29 13:00:00' - INTERVAL (i % 50) DAY AS event_at, "
                  "(i % 13) * 1.5 AS value, 'purchase' AS event_type FROM range(500) t(i)")

WAREHOUSE_DATA: dict[str, tuple[str, str, str | None]] = {
    # name → (exposures SELECT, outcomes SELECT, message regex when the refresh must fail)
    "empty tables": (_GOOD_EXPOSURES + " LIMIT 0", _GOOD_OUTCOMES + " LIMIT 0", None),
    "null units, arms, timestamps": (
        "SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE i END AS customer_id, CASE WHEN i % 11 = 0 THEN NULL ELSE "
        "TIMESTAMP '2025-06-29 12:00:00' - INTERVAL (i % 50) DAY END AS scored_at, 'churn-save-offers' AS model_id, "
        "CASE WHEN i % 13 = 0 THEN NULL WHEN i % 10 = 0 THEN 'holdout' ELSE 'model' END AS arm, NULL::DOUBLE AS score, "
        "NULL::VARCHAR AS country FROM range(500) t(i)",
        "SELECT i AS customer_id, TIMESTAMP '2025-06-29 13:00:00' - INTERVAL (i % 50) DAY AS event_at, "
        "CASE WHEN i % 5 = 0 THEN NULL ELSE i % 13 END AS value, 'purchase' AS event_type FROM range(500) t(i)", None),
    "duplicate rows": (_GOOD_EXPOSURES + " UNION ALL " + _GOOD_EXPOSURES, _GOOD_OUTCOMES + " UNION ALL " + _GOOD_OUTCOMES, None),
    "mixed time zones": (
        "SELECT i AS customer_id, (CASE WHEN i % 2 = 0 THEN '2025-06-20 23:30:00+00' ELSE '2025-06-21 01:30:00+05' END)::TIMESTAMPTZ "
        "AS scored_at, 'churn-save-offers' AS model_id, CASE WHEN i % 10 = 0 THEN 'holdout' ELSE 'model' END AS arm, "
        "0.5 AS score, 'fr' AS country FROM range(200) t(i)",
        "SELECT i AS customer_id, '2025-06-22 10:00:00-07'::TIMESTAMPTZ AS event_at, 1.0 AS value, 'purchase' AS event_type "
        "FROM range(200) t(i)", None),
    "future timestamps": (_GOOD_EXPOSURES.replace("TIMESTAMP '2025-06-29", "TIMESTAMP '2031-06-29"),
                          _GOOD_OUTCOMES.replace("TIMESTAMP '2025-06-29", "TIMESTAMP '2031-06-29"), None),
    "negative values": (_GOOD_EXPOSURES, _GOOD_OUTCOMES.replace("(i % 13) * 1.5", "-(i % 13) * 1e6"), None),
    "non-numeric values": (_GOOD_EXPOSURES, _GOOD_OUTCOMES.replace("(i % 13) * 1.5", "'n/a'"), r"(value|Conversion|sum|cast|varchar)"),
    "arm labels differ": (_GOOD_EXPOSURES.replace("'holdout'", "'control'").replace("'model' END", "'treated' END"), _GOOD_OUTCOMES, None),
    "table missing": ("SELECT 1 AS x", _GOOD_OUTCOMES, r"(customer_id|scored_at|column|Binder)"),
}


@pytest.mark.parametrize("name", sorted(WAREHOUSE_DATA))
def test_bad_warehouse_data_never_crashes_and_never_touches_the_registry(workspace: Path, name: str) -> None:
    from valuetrack.store.db import dispose_all

    exposures, outcomes, message = WAREHOUSE_DATA[name]
    wh = workspace / "sample_data" / "demo.duckdb"
    build_warehouse(wh, exposures_sql=_exposures_sql(_GOOD_EXPOSURES), outcomes_sql=f"CREATE TABLE outcomes AS {_GOOD_OUTCOMES}")
    (workspace / "m.toml").write_text(WAREHOUSE_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    good = run_cli("refresh", "--as-of", str(AS_OF), "--json")
    assert good.code == 0, good.err
    dispose_all()
    registry_before = {k: v for k, v in db_rows(f"sqlite:///{workspace / 'valuetrack.db'}").items() if k in ("models", "audit_log")}
    aggregates_before = db_rows(f"sqlite:///{workspace / 'valuetrack.db'}")["ab_aggregates"]

    build_warehouse(wh, exposures_sql=_exposures_sql(exposures), outcomes_sql=f"CREATE TABLE outcomes AS {outcomes}")
    run = run_cli("refresh", "--as-of", str(AS_OF), "--full")
    assert run.code in (0, 1) and not TRACEBACK.search(run.err + run.out), run.err
    if message is None:
        assert run.code == 0, run.out + run.err
    else:
        assert run.code == 1 and "failed" in run.out and re.search(message, run.out, re.I), run.out
    value = run_cli("value", "--as-of", str(AS_OF), "--json")
    # a model whose refresh failed is not valued: it says why (stderr, its row) and value exits 1
    assert value.code == (0 if message is None else 1) and not TRACEBACK.search(value.err), value.err
    if message is not None:
        assert "valuetrack: churn-save-offers: the last refresh failed" in value.err, value.err
        assert json.loads(value.out)["models"][0]["state"] == "error"
    flags = run_cli("flags", "--as-of", str(AS_OF))
    assert flags.code == 0 and not TRACEBACK.search(flags.err), flags.err
    dispose_all()
    after = db_rows(f"sqlite:///{workspace / 'valuetrack.db'}")
    assert {k: v for k, v in after.items() if k in ("models", "audit_log")} == registry_before
    if message is not None:
        assert after["ab_aggregates"] == aggregates_before  # last good aggregates intact
    if name == "future timestamps" or name == "empty tables":
        assert after["ab_aggregates"] == []  # nothing after as_of was read
