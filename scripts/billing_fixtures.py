"""Generate the billing fixtures (tests/fixtures/billing/): three bills as they sit in a warehouse,
with the expected daily costs computed here, at generation time, from the generated rows.

    python scripts/billing_fixtures.py            # writes tests/fixtures/billing/
    python scripts/billing_fixtures.py --check    # regenerates in memory, fails if the files differ

Each bill comes in two versions: what the warehouse held at a first refresh ("initial") and the
rows after a late correction to a day of January, a month that was final by then ("final",
``<name>.jsonl``); ``expected.json`` says how the initial version differs (``correction``: rows
appended, or one row revised, with its initial value) and holds, per bill and model, the daily
cost (money, after credits, price per unit and share) of both versions, computed with ``Decimal`` from the rows written, never by
running a query. Tests load the rows into DuckDB and each stand-in, run valuetrack's query and
compare with these figures.

The bills (all amounts in USD, days 2026-01-01 .. 2026-02-28, timestamps UTC):

* ``gcp_billing_export``: the BigQuery billing export (standard usage cost table): ``service`` and
  ``sku`` structs, ``usage_start_time`` / ``usage_end_time`` / ``export_time``, ``cost``,
  ``currency``, nested ``credits`` (ARRAY<STRUCT<name, amount, type>>, negative amounts) and
  ``labels`` (ARRAY<STRUCT<key, value>>). Models are told apart by the label
  ``valuetrack-model``; net cost = cost + Σ credits.amount. Correction: an adjustment row exported
  on 2026-03-04 for usage on 2026-01-20 (the export appends rows, it does not rewrite them).
* ``warehouse_metering_history``: Snowflake's ACCOUNT_USAGE view, credits per warehouse per hour.
  ``ML_SCORING_WH`` is shared by two models (fixed shares 0.6 / 0.4), ``ETL_WH`` by no model. Price
  3.00 USD per credit. Correction: the cloud-services credits of one January hour revised in place.
* ``cur``: an AWS cost-and-usage report as an Athena view: ``line_item_*`` columns, a Savings Plan
  (covered usage + negation), a credit line, a resource tag column
  ``resource_tags_user_valuetrack_model`` and ``net_amortized_cost``, computed as the view in
  docs/connectors.md does. Correction: a credit (refund) for 2026-01-12 added in the restated report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import zlib
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

SEED = 20260117
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "billing"
FIRST, LAST = dt.date(2026, 1, 1), dt.date(2026, 2, 28)
SNOWFLAKE_PRICE = Decimal("3.00")
SHARES = {"churn-scorer": Decimal("0.6"), "upsell-recommender": Decimal("0.4")}
Q6 = Decimal("0.000001")


def d6(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(Q6, rounding=ROUND_HALF_EVEN)


def ts(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.timezone.utc).isoformat()


def days() -> list[dt.date]:
    return [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


# -- BigQuery billing export ----------------------------------------------------------------------

GCP_SERVICES = {
    "Vertex AI": ("C7E2-9256-1C43", [("Online prediction n1-standard-4", 4.2), ("Model training GPU", 9.0)]),
    "BigQuery": ("24E6-581D-38E5", [("Analysis", 2.5)]),
    "Cloud Storage": ("95FF-2EF5-5EA1", [("Standard Storage US", 0.6)]),
}


def gcp(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    rows = []
    for day in days():
        for model in ("churn-scorer", "upsell-recommender", None):
            for service, (sid, skus) in GCP_SERVICES.items():
                for sku, scale in skus:
                    if rng.random() < 0.25:
                        continue  # not every SKU every day
                    hour = int(rng.integers(0, 24))
                    cost = d6(scale * rng.gamma(4.0, 0.25) * (1.0 if model else 1.7))
                    credits = []
                    if service == "Vertex AI" and rng.random() < 0.5:
                        credits.append({"name": "Sustained usage discount", "amount": float(-d6(float(cost) * 0.2)),
                                        "type": "SUSTAINED_USAGE_DISCOUNT"})
                    if rng.random() < 0.15:
                        credits.append({"name": "Free trial", "amount": float(-d6(float(cost) * rng.uniform(0.05, 0.5))),
                                        "type": "FREE_TIER"})
                    labels = [{"key": "env", "value": "prod"}]
                    if model:
                        labels.insert(int(rng.integers(0, 2)), {"key": "valuetrack-model", "value": model})
                    rows.append({
                        "service": {"id": sid, "description": service},
                        "sku": {"id": f"{zlib.crc32(sku.encode()) % 10**8:08d}", "description": sku},
                        "usage_start_time": ts(day, hour), "usage_end_time": ts(day, hour, 59),
                        "export_time": ts(day + dt.timedelta(days=1), 6),
                        "labels": labels, "cost": float(cost), "currency": "USD", "credits": credits,
                    })
    # a row just before midnight UTC: it belongs to its UTC day
    rows.append({**rows[0], "usage_start_time": ts(dt.date(2026, 1, 31), 23, 30),
                 "usage_end_time": ts(dt.date(2026, 1, 31), 23, 59), "cost": 1.234567, "credits": [],
                 "labels": [{"key": "valuetrack-model", "value": "churn-scorer"}]})
    initial = list(rows)
    correction = {**rows[5], "usage_start_time": ts(dt.date(2026, 1, 20), 10), "usage_end_time": ts(dt.date(2026, 1, 20), 11),
                  "export_time": ts(dt.date(2026, 3, 4), 6), "cost": -3.5, "credits": [{"name": "Billing adjustment",
                  "amount": -0.25, "type": "RESELLER_MARGIN"}],
                  "labels": [{"key": "valuetrack-model", "value": "churn-scorer"}],
                  "service": {"id": GCP_SERVICES["Vertex AI"][0], "description": "Vertex AI"}}
    return initial, initial + [correction]


def gcp_expected(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, Decimal]] = {m: {} for m in SHARES}
    for r in rows:
        model = next((lab["value"] for lab in r["labels"] if lab["key"] == "valuetrack-model"), None)
        if model is None:
            continue
        day = r["usage_start_time"][:10]
        net = Decimal(repr(r["cost"])) + sum((Decimal(repr(c["amount"])) for c in r["credits"]), Decimal(0))
        out[model][day] = out[model].get(day, Decimal(0)) + net
    return {m: {d: float(v) for d, v in sorted(days_.items())} for m, days_ in out.items()}


# -- Snowflake WAREHOUSE_METERING_HISTORY ---------------------------------------------------------


def snowflake(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    rows = []
    for day in days():
        for wid, wh, hours in ((101, "ML_SCORING_WH", (2, 3, 4, 14)), (102, "ETL_WH", (1, 5, 23))):
            for hour in hours:
                compute = d6(rng.gamma(3.0, 0.35 if wh == "ML_SCORING_WH" else 0.8))
                cloud = d6(float(compute) * rng.uniform(0.01, 0.12))
                rows.append({"start_time": ts(day, hour), "end_time": ts(day, hour + 1) if hour < 23 else ts(day + dt.timedelta(days=1), 0),
                             "warehouse_id": wid, "warehouse_name": wh,
                             "credits_used": float(compute + cloud), "credits_used_compute": float(compute),
                             "credits_used_cloud_services": float(cloud)})
    initial = [dict(r) for r in rows]
    final = [dict(r) for r in rows]
    # revised in place: cloud-services credits of 2026-01-09 03:00 on the shared warehouse
    i = next(i for i, r in enumerate(final) if r["start_time"] == ts(dt.date(2026, 1, 9), 3) and r["warehouse_name"] == "ML_SCORING_WH")
    extra = Decimal("0.750000")
    final[i]["credits_used_cloud_services"] = float(Decimal(repr(final[i]["credits_used_cloud_services"])) + extra)
    final[i]["credits_used"] = float(Decimal(repr(final[i]["credits_used"])) + extra)
    return initial, final


def snowflake_expected(rows: list[dict]) -> dict[str, dict[str, float]]:
    credits: dict[str, Decimal] = {}
    for r in rows:
        if r["warehouse_name"] == "ML_SCORING_WH":
            day = r["start_time"][:10]
            credits[day] = credits.get(day, Decimal(0)) + Decimal(repr(r["credits_used"]))
    return {m: {d: float(c * SNOWFLAKE_PRICE * share) for d, c in sorted(credits.items())} for m, share in SHARES.items()}


# -- AWS cost and usage report (Athena view) ------------------------------------------------------


def net_amortized(r: dict) -> Decimal:
    """The net amortised cost of one CUR line, as the view in docs/connectors.md computes it."""
    kind = r["line_item_line_item_type"]
    if kind == "SavingsPlanCoveredUsage":
        return Decimal(repr(r["savings_plan_net_savings_plan_effective_cost"]))
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    return Decimal(repr(r["line_item_net_unblended_cost"]))


def aws(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    rows = []

    def line(day: dt.date, hour: int, kind: str, product: str, model: str | None, unblended: Decimal,
             net_unblended: Decimal, sp_effective: Decimal = Decimal(0)) -> dict:
        r = {"line_item_usage_start_date": ts(day, hour), "line_item_line_item_type": kind,
             "line_item_product_code": product, "line_item_currency_code": "USD",
             "line_item_unblended_cost": float(unblended), "line_item_net_unblended_cost": float(net_unblended),
             "savings_plan_net_savings_plan_effective_cost": float(sp_effective),
             "resource_tags_user_valuetrack_model": model}
        r["net_amortized_cost"] = float(net_amortized(r))
        return r

    for day in days():
        for model in ("churn-scorer", "upsell-recommender", None):
            # SageMaker endpoint usage covered by a Savings Plan: the negation cancels the on-demand
            # line, the effective cost is what the plan charges
            on_demand = d6(rng.gamma(5.0, 0.9))
            net = d6(float(on_demand) * 0.95)  # an enterprise discount
            rows.append(line(day, int(rng.integers(0, 24)), "SavingsPlanCoveredUsage", "AmazonSageMaker", model,
                             on_demand, net, d6(float(on_demand) * 0.72)))
            rows.append(line(day, int(rng.integers(0, 24)), "SavingsPlanNegation", "AmazonSageMaker", model,
                             -on_demand, -net))
            s3 = d6(rng.gamma(2.0, 0.2))
            rows.append(line(day, int(rng.integers(0, 24)), "Usage", "AmazonS3", model, s3, d6(float(s3) * 0.95)))
        if day.day == 15:  # a promotional credit on the churn model's endpoint
            rows.append(line(day, 0, "Credit", "AmazonSageMaker", "churn-scorer", Decimal("-4.000000"), Decimal("-4.000000")))
    initial = list(rows)
    refund = line(dt.date(2026, 1, 12), 0, "Credit", "AmazonSageMaker", "churn-scorer", Decimal("-2.500000"),
                  Decimal("-2.375000"))
    return initial, initial + [refund]


def aws_expected(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, Decimal]] = {m: {} for m in SHARES}
    for r in rows:
        model = r["resource_tags_user_valuetrack_model"]
        if model is None:
            continue
        day = r["line_item_usage_start_date"][:10]
        out[model][day] = out[model].get(day, Decimal(0)) + net_amortized(r)
    return {m: {d: float(v) for d, v in sorted(x.items())} for m, x in out.items()}


# -- the cost sources (as in the manifest) --------------------------------------------------------

RECIPES = {
    "gcp_billing_export": {"date": "usage_start_time", "amount": "cost", "currency_column": "currency",
                           "credits": "credits", "labels": "labels", "label_key": "valuetrack-model",
                           "settle_days": 5},
    "warehouse_metering_history": {"date": "start_time", "amount": "credits_used", "currency": "USD",
                                   "where": "warehouse_name = 'ML_SCORING_WH'", "price_per_unit": float(SNOWFLAKE_PRICE),
                                   "share": {m: float(s) for m, s in SHARES.items()}, "settle_days": 2},
    "cur": {"date": "line_item_usage_start_date", "amount": "net_amortized_cost",
            "currency_column": "line_item_currency_code",
            "where": {m: f"resource_tags_user_valuetrack_model = '{m}'" for m in SHARES}, "settle_days": 10},
}


def correction(initial: list[dict], final: list[dict]) -> dict:
    """How the final version differs from the initial one: rows appended, or one row revised."""
    if final[:len(initial)] == initial:
        return {"kind": "appended", "lines": list(range(len(initial), len(final)))}
    (line,) = [i for i, (a, b) in enumerate(zip(initial, final)) if a != b]
    return {"kind": "revised", "line": line, "initial": initial[line]}


def initial_rows(final: list[dict], change: dict) -> list[dict]:
    """The initial version of a bill from its final rows and ``correction``."""
    if change["kind"] == "appended":
        drop = set(change["lines"])
        return [r for i, r in enumerate(final) if i not in drop]
    return [change["initial"] if i == change["line"] else r for i, r in enumerate(final)]


def generate(seed: int = SEED) -> dict[str, str]:
    """File name → text of every fixture file."""
    rng = np.random.default_rng(seed)
    files: dict[str, str] = {}
    expected: dict[str, object] = {"seed": seed, "generated_by": "scripts/billing_fixtures.py", "first_day": str(FIRST),
                                   "last_day": str(LAST), "bills": {}}
    for name, make, expect in (("gcp_billing_export", gcp, gcp_expected), ("warehouse_metering_history", snowflake,
                                                                          snowflake_expected), ("cur", aws, aws_expected)):
        initial, final = make(rng)
        change = correction(initial, final)
        assert initial_rows(final, change) == initial
        files[f"{name}.jsonl"] = "".join(json.dumps(r, sort_keys=True) + "\n" for r in final)
        expected["bills"][name] = {"cost_source": RECIPES[name], "rows": len(final), "correction": change,
                                   "daily_cost": {"initial": expect(initial), "final": expect(final)}}
    files["expected.json"] = json.dumps(expected, indent=1, sort_keys=True) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="fail if the files on disk differ from a fresh generation")
    args = ap.parse_args(argv)
    files = generate(args.seed)
    if args.check:
        stale = [n for n, text in files.items() if not (args.out / n).exists() or (args.out / n).read_text() != text]
        if stale:
            print(f"billing fixtures differ from a fresh generation: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
