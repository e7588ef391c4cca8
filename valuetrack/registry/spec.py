"""The model specification: what a manifest entry and the registration form describe.

Each section of the manifest is a frozen dataclass. ``ModelSpec.from_dict`` validates a whole
entry and reports *every* problem at once, each naming the model and the dotted field, so a user
can fix a manifest in one pass. Field metadata ``doc`` documents each field; the manifest, the
form and docs/user-guide.md all read from the same definitions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from valuetrack.attribution import methods
from valuetrack.errors import ValidationError
from valuetrack.sqlsafety import check_identifier, check_predicate

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")
STATUSES = ("active", "retired")
AGGREGATIONS = ("sum", "mean", "conversion")
HARMS = ("increase", "decrease")
GUARDRAIL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
MAX_GUARDRAILS = 10
NON_CURRENCY_UNITS = ("count", "rate")


MAX_TEXT = 1000
"""Longest string any manifest field may hold (the columns of the app database hold less: see max_len)."""
# C0/C1 control characters (tab and newlines allowed), and the bidirectional overrides that make
# text display differently from what it is ("Trojan Source"); PostgreSQL refuses NUL outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _doc(text: str, *, max_len: int = MAX_TEXT, key: str | None = None, omit_empty: bool = False, **kw: Any) -> Any:
    """A documented field; ``key`` names it in the manifest when that differs (e.g. ``from``);
    ``omit_empty`` leaves an empty list out of the manifest form (fields added after manifests
    were stored, so that existing entries serialise as before)."""
    return field(metadata={"doc": text, "max_len": max_len, "key": key, "omit_empty": omit_empty}, **kw)


def _key(f: dataclasses.Field) -> str:
    """The field's name in the manifest."""
    return f.metadata.get("key") or f.name


@dataclass(frozen=True)
class Intervention:
    """A date from which the model served traffic (a launch or a relaunch)."""

    start: dt.date = _doc("first day the model served traffic, in the model's timezone")
    label: str = _doc("short description, e.g. 'v3 launch'", max_len=200, default="")
    end: dt.date | None = _doc("last day the model served in this window (open when omitted): later days are not "
                               "attributed to it, and its costs stop (`models retire --on` sets it for a model "
                               "without exposures)", default=None)

    def _check(self, where: str, problems: list[str]) -> None:
        if self.end is not None and self.end < self.start:
            problems.append(f"{where}.end: {self.end} is before start {self.start}")


@dataclass(frozen=True)
class Annotation:
    """A dated note on the model's charts (e.g. a new model version of an A/B model); it changes no figure."""

    date: dt.date = _doc("the day it happened")
    label: str = _doc("short description, e.g. 'MLflow version 4'", max_len=200)

    def _check(self, where: str, problems: list[str]) -> None:
        if not self.label.strip():
            problems.append(f"{where}.label: must not be empty")


@dataclass(frozen=True)
class DatedAmount:
    """An amount in effect from a date on (until the next one): a cost or value per unit that changed."""

    start: dt.date = _doc("first day this amount applies, in the model's timezone", key="from")
    amount: float = _doc("the amount from that day on, in the model's currency")

    def _check(self, where: str, problems: list[str]) -> None:
        if self.amount < 0:
            problems.append(f"{where}.amount: must be >= 0 (got {self.amount})")


@dataclass(frozen=True)
class OneOffCost:
    """A one-off cost incurred on a date (a build, a retraining, a migration)."""

    on: dt.date = _doc("the day the cost was incurred")
    amount: float = _doc("the cost, in the model's currency")
    label: str = _doc("what it was, e.g. 'v2 rebuild'", max_len=200, default="")

    def _check(self, where: str, problems: list[str]) -> None:
        if self.amount < 0:
            problems.append(f"{where}.amount: must be >= 0 (got {self.amount})")


Dated = Union[float, tuple[DatedAmount, ...]]
"""A money figure for the model's whole life: a number (since launch) or a list of dated amounts."""

AMORTISATION_MONTHS = 36
"""The default period over which one-off costs are amortised in the fully loaded view (D31)."""


def steps(value: Any) -> tuple[DatedAmount, ...]:
    """A dated figure as its steps; a plain number is one step with no start (since launch)."""
    if isinstance(value, tuple):
        return value
    return (DatedAmount(None, float(value)),)  # type: ignore[arg-type]


def amount_on(value: Any, day: dt.date) -> float:
    """The amount of a dated figure in effect on ``day`` (the first amount before the first step)."""
    found = steps(value)
    amount = found[0].amount
    for step in found:
        if step.start is not None and step.start <= day:
            amount = step.amount
    return amount


def latest(value: Any) -> float:
    """The newest amount of a dated figure (what it costs, or is worth, now)."""
    return steps(value)[-1].amount


def one_off_events(value: Any, launch: dt.date | None) -> tuple[OneOffCost, ...]:
    """One-off costs as dated events; a plain number is one event on the launch date (none when 0)."""
    if isinstance(value, tuple):
        return value
    if not value:
        return ()
    return (OneOffCost(launch, float(value), "one-off costs"),)  # type: ignore[arg-type]


def one_off_total(value: Any) -> float:
    return float(sum(e.amount for e in value)) if isinstance(value, tuple) else float(value)


def _charges(value: Any) -> bool:
    """Whether a cost (a number or a dated list) is ever above zero."""
    if isinstance(value, tuple):
        return any(v is not None and v.amount > 0 for v in value)
    return value is not None and value > 0


def _check_dated(value: Any, where: str, launch: dt.date | None, problems: list[str], *, key: str = "from") -> None:
    """A dated list: not empty, dates strictly increasing, the first on or before launch."""
    if not isinstance(value, tuple):
        if value is not None and value < 0:
            problems.append(f"{where}: must be >= 0 (got {value})")
        return
    example = "{from = 2025-03-01, amount = 4000.0}" if key == "from" else "{on = 2025-03-01, amount = 25000.0}"
    if not value:
        problems.append(f"{where}: an empty list; give a number, or at least one {example}")
        return
    if any(v is None for v in value):
        return  # each bad entry is already reported
    dates = [v.start if key == "from" else v.on for v in value]
    for i in range(1, len(dates)):
        if dates[i] == dates[i - 1]:
            problems.append(f"{where}[{i}].{key}: {dates[i]} appears twice; give one amount per date")
        elif dates[i] < dates[i - 1]:
            problems.append(f"{where}[{i}].{key}: {dates[i]} is before {dates[i - 1]} in the entry above; "
                            "list the amounts in date order")
    if key == "from":
        if launch is None:
            problems.append(f"{where}: a dated list needs the launch date; add [[models.interventions]] with "
                            "its start, or give a number")
        elif dates[0] > launch:
            problems.append(f"{where}[0].from: {dates[0]} is after the launch ({launch}); the first amount must "
                            f"start on or before the launch (use from = {launch})")


@dataclass(frozen=True)
class Kpi:
    """The business metric the model is meant to move, and what one unit of it is worth."""

    name: str = _doc("KPI name, e.g. 'retained_revenue'", max_len=200)
    unit: str = _doc("a currency code (e.g. 'USD'), 'count' or 'rate'")
    value_per_unit: Dated = _doc("money per KPI unit, in the model's currency: a number, or a list of "
                                 "{from = DATE, amount = …} when it changed")
    higher_is_better: bool = _doc("false for KPIs such as losses, where a decrease is the gain", default=True)
    aggregation: str = _doc("per unit: 'sum', 'mean' or 'conversion' (0/1)", default="sum")

    def _check(self, where: str, problems: list[str]) -> None:
        if not self.name.strip():
            problems.append(f"{where}.name: must not be empty")
        if not (self.unit in NON_CURRENCY_UNITS or re.fullmatch(r"[A-Z]{3}", self.unit)):
            problems.append(f"{where}.unit: {self.unit!r} is neither a 3-letter currency code nor 'count'/'rate'")
        if not isinstance(self.value_per_unit, tuple) and self.value_per_unit < 0:
            problems.append(
                f"{where}.value_per_unit: must be >= 0 (got {self.value_per_unit}); "
                "use higher_is_better = false for KPIs where less is better"
            )
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"{where}.aggregation: {self.aggregation!r} is not one of {', '.join(AGGREGATIONS)}")


@dataclass(frozen=True)
class ExposureSource:
    """Where the scoring/serving events live: one row per event, both arms logged."""

    table: str = _doc("table name, optionally schema- or project-qualified")
    unit: str = _doc("column identifying the randomisation unit (customer, session...)")
    timestamp: str = _doc("column with the time of the exposure")
    arm: str = _doc("column with the arm label")
    treatment: str = _doc("arm value served by the model", max_len=200, default="model")
    control: str = _doc("arm value of the holdout", max_len=200, default="holdout")
    model: str | None = _doc("column naming the model, when the table is shared by several models", default=None)
    model_value: str | None = _doc("value of `model` for this model (defaults to the model's name)", default=None)
    score: str | None = _doc("column with the model's score, for drift checks", default=None)
    segment: str | None = _doc("column to break results down by (e.g. country)", default=None)

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",), skip=("treatment", "control", "model_value"))
        if self.treatment == self.control:
            problems.append(f"{where}.treatment: equals control ({self.control!r}); the arms must differ")
        if self.model_value is not None and self.model is None:
            problems.append(f"{where}.model_value: given without `model` (the column to compare it with)")


@dataclass(frozen=True)
class OutcomeSource:
    """Where the business events live: one row per event."""

    table: str = _doc("table name, optionally schema- or project-qualified")
    unit: str = _doc("column identifying the unit, same meaning as the exposures' unit")
    timestamp: str = _doc("column with the time of the event")
    value: str = _doc("column with the KPI amount of the event (1 per event to count events)")
    where: str | None = _doc("optional read-only filter, e.g. \"event_type = 'purchase'\"", default=None)

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",), skip=("where",))
        if self.where is not None:
            try:
                check_predicate(self.where)
            except ValidationError as exc:
                problems.append(f"{where}.where: {exc.problems[0]}")


@dataclass(frozen=True)
class SeriesSource:
    """A daily KPI series and its control series, for models without a holdout."""

    table: str = _doc("table with one row per day")
    date: str = _doc("column with the day")
    value: str = _doc("column with the treated KPI series")
    controls: tuple[str, ...] = _doc("columns with control series the model did not affect", default=())

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",), skip=("controls",))
        for i, col in enumerate(self.controls):
            _one_identifier(col, f"{where}.controls[{i}]", problems)
        if self.value in self.controls:
            problems.append(f"{where}.controls: contains the treated series {self.value!r}")


@dataclass(frozen=True)
class AllocationStep:
    """One step of a ramped rollout: from this day on, the planned share of units served by the model."""

    start: dt.date = _doc("first day of this step (units first exposed from this day belong to it)", key="from")
    treatment_share: float = _doc("planned share of units served by the model during this step")

    def _check(self, where: str, problems: list[str]) -> None:
        if not 0.0 < self.treatment_share < 1.0:
            problems.append(f"{where}.treatment_share: must be strictly between 0 and 1 (got {self.treatment_share})")


@dataclass(frozen=True)
class Challenger:
    """A second version of the model in the same experiment (champion vs challenger)."""

    arm: str = _doc("arm value of the challenger's units in the exposures' arm column", max_len=200)
    treatment_share: float = _doc("planned share of units served by the challenger")
    label: str = _doc("name of the version, e.g. 'v4'", max_len=200, default="")
    monthly_cost: float = _doc("the challenger's running cost per month, in the model's currency", default=0.0)
    cost_per_1k_predictions: float = _doc("the challenger's cost per 1,000 predictions", default=0.0)

    def _check(self, where: str, problems: list[str]) -> None:
        if not 0.0 < self.treatment_share < 1.0:
            problems.append(f"{where}.treatment_share: must be strictly between 0 and 1 (got {self.treatment_share})")
        for name in ("monthly_cost", "cost_per_1k_predictions"):
            if getattr(self, name) < 0:
                problems.append(f"{where}.{name}: must be >= 0 (got {getattr(self, name)})")


@dataclass(frozen=True)
class PanelSource:
    """A panel: one row per unit (region, store...) and day, some units served by the model
    (methods 'did' and 'synthetic_control')."""

    table: str = _doc("long table with one row per unit and day")
    unit: str = _doc("column naming the unit")
    date: str = _doc("column with the day")
    value: str = _doc("column with the KPI of the unit on that day")
    treated: tuple[str, ...] = _doc("the units served by the model (values of `unit`); the others are controls",
                                    default=())

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",), skip=("treated",))
        if not self.treated:
            problems.append(f"{where}.treated: name at least one treated unit (a value of column {self.unit!r})")
        for i, unit in enumerate(self.treated):
            if not unit.strip() or len(unit) > 120 or _CONTROL.search(unit):
                problems.append(f"{where}.treated[{i}]: {unit!r} must be 1-120 printable characters")
        if len(set(self.treated)) != len(self.treated):
            problems.append(f"{where}.treated: lists a unit twice")


@dataclass(frozen=True)
class Attribution:
    """How the model's causal effect on its KPI is estimated."""

    method: str = _doc("one of the registered methods (see the methods table): "
                       "'ab' | 'structural' | 'its' | 'did' | 'synthetic_control' | 'auto'", max_len=64, default="auto")
    window_days: int = _doc("a unit's outcomes count this long after its first exposure", default=30)
    outcome_lag_days: int = _doc("how late outcomes may land in the warehouse", default=3)
    covariate_days: int = _doc("CUPED pre-period before first exposure (0 = off)", default=30)
    treatment_share: float = _doc("planned share of units served by the model (for SRM)", default=0.5)
    exposures: ExposureSource | None = _doc("exposure events (A/B)", default=None)
    outcomes: OutcomeSource | None = _doc("outcome events (A/B)", default=None)
    series: SeriesSource | None = _doc("daily series (time-series methods; with a holdout too, the two "
                                       "methods are compared)", default=None)
    allocation: tuple[AllocationStep, ...] = _doc("a ramped rollout: the planned treatment share by date "
                                                  "(replaces treatment_share; A/B)", default=(), omit_empty=True)
    challenger: Challenger | None = _doc("a second model version in the same experiment (A/B)", default=None)
    panel: PanelSource | None = _doc("panel of units, some treated (did, synthetic_control)", default=None)

    def _check(self, where: str, problems: list[str]) -> None:
        known = methods.names()
        if self.method not in known:
            problems.append(f"{where}.method: {self.method!r} is not one of {', '.join(known)}")
        for name, lo, hi in (("window_days", 1, 730), ("outcome_lag_days", 0, 365), ("covariate_days", 0, 730)):
            value = getattr(self, name)
            if not lo <= value <= hi:
                problems.append(f"{where}.{name}: must be between {lo} and {hi} (got {value})")
        if not 0.0 < self.treatment_share < 1.0:
            problems.append(f"{where}.treatment_share: must be strictly between 0 and 1 (got {self.treatment_share})")
        if (self.exposures is None) != (self.outcomes is None):
            missing = "outcomes" if self.outcomes is None else "exposures"
            problems.append(f"{where}.{missing}: required with [{where}.{'exposures' if missing == 'outcomes' else 'outcomes'}]")
        # the method's own needs are checked by ModelSpec._check (they involve the interventions)
        has_ab = self.exposures is not None and self.outcomes is not None
        if (self.allocation or self.challenger) and not has_ab:
            what = "allocation" if self.allocation else "challenger"
            problems.append(f"{where}.{what}: needs a holdout ([{where}.exposures] and [{where}.outcomes])")
        starts = [a.start for a in self.allocation if a is not None]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            problems.append(f"{where}.allocation: 'from' dates must be distinct and in date order")
        if self.allocation and self.challenger:
            problems.append(f"{where}.challenger: a challenger in a ramped rollout is not supported; "
                            "give one of [[allocation]] and [challenger]")
        if self.challenger is not None and self.exposures is not None:
            c = self.challenger
            if c.arm in (self.exposures.treatment, self.exposures.control):
                problems.append(f"{where}.challenger.arm: {c.arm!r} is already the model's or the holdout's arm")
            if self.treatment_share + c.treatment_share >= 1.0:
                problems.append(f"{where}.challenger.treatment_share: with the model's treatment_share "
                                f"({self.treatment_share}) it leaves no holdout (they add up to "
                                f"{self.treatment_share + c.treatment_share:g}; must be < 1)")


@dataclass(frozen=True)
class Thresholds:
    """When the model is flagged."""

    min_roi: float = _doc("flag when ROI is confidently below this (0 = must cover its cost)", default=0.0)
    unproven_after_days: int = _doc("flag when still inconclusive after this many days live", default=90)

    def _check(self, where: str, problems: list[str]) -> None:
        if self.min_roi < -1.0:
            problems.append(f"{where}.min_roi: must be >= -1 (got {self.min_roi}); -1 means 'never flag on ROI'")
        if not 1 <= self.unproven_after_days <= 3650:
            problems.append(f"{where}.unproven_after_days: must be between 1 and 3650 (got {self.unproven_after_days})")


@dataclass(frozen=True)
class Decisions:
    """A classifier's predictions, the decisions taken on them and their (late) labels, with what
    each outcome is worth. Shown beside the causal estimate, never added to it."""

    table: str = _doc("table with one row per prediction (rows repeating an id count once)")
    id: str = _doc("column with the prediction id")
    timestamp: str = _doc("column with the time of the prediction")
    label: str = _doc("column with the true class, 1 or 0; NULL until it is known")
    label_timestamp: str = _doc("column with the time the label became known")
    score: str | None = _doc("column with the calibrated probability of class 1 (for the estimate "
                             "while labels lag, and other thresholds)", default=None)
    decision: str | None = _doc("column with the decision taken, 1 or 0 (default: score >= threshold)",
                                default=None)
    threshold: float = _doc("the score threshold in use, when there is no decision column", default=0.5)
    value_tp: float = _doc("money per true positive (class 1, decided 1), in the model's currency", default=0.0)
    value_fp: float = _doc("money per false positive (class 0, decided 1); negative for a cost", default=0.0)
    value_fn: float = _doc("money per false negative (class 1, decided 0)", default=0.0)
    value_tn: float = _doc("money per true negative (class 0, decided 0)", default=0.0)
    label_lag_days: int = _doc("labels may arrive this many days after the prediction", default=90)

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",), skip=())
        if self.score is None and self.decision is None:
            problems.append(f"{where}: give `score` (a probability) or `decision` (1/0), or both")
        if not 0.0 < self.threshold < 1.0:
            problems.append(f"{where}.threshold: must be strictly between 0 and 1 (got {self.threshold})")
        if not any((self.value_tp, self.value_fp, self.value_fn, self.value_tn)):
            problems.append(f"{where}: give the money of at least one outcome (value_tp, value_fp, value_fn, value_tn)")
        if not 1 <= self.label_lag_days <= 730:
            problems.append(f"{where}.label_lag_days: must be between 1 and 730 (got {self.label_lag_days})")
        cols = [c for c in (self.id, self.timestamp, self.label, self.label_timestamp, self.score, self.decision) if c]
        if len(set(cols)) != len(cols):
            problems.append(f"{where}: id, timestamp, label, label_timestamp, score and decision must be different columns")


@dataclass(frozen=True)
class Guardrail:
    """A secondary KPI the model must not harm beyond a tolerance (refunds, churn, complaints, latency).

    It is compared between the model's arms exactly as the KPI is (same exposures, window, lag and
    method) and flagged ``guardrail_breach`` when its harm per treated unit is confidently above
    ``tolerance`` (docs/methods-value.md, "Guardrails")."""

    name: str = _doc("short id, unique within the model: 1-24 characters of a-z, 0-9 and '_', e.g. 'refunds'",
                     max_len=24)
    harm: str = _doc("which way is harm: 'increase' (refunds, complaints, latency) or 'decrease' (retention)")
    tolerance: float = _doc("harm tolerated per treated unit, in the guardrail's units (0 = none)")
    outcomes: OutcomeSource = _doc("the guardrail's events, one row per event (like the model's outcomes)")
    unit: str = _doc("a currency code (e.g. 'USD'), 'count' or 'rate'", default="count")
    aggregation: str = _doc("per unit: 'sum', 'mean' or 'conversion' (0/1)", default="sum")
    value_per_unit: float | None = _doc("optional: money per guardrail unit (positive); its effect then enters "
                                        "net value, unless in_main_kpi", default=None)
    in_main_kpi: bool = _doc("true when its events are already counted by the model's KPI (refunds inside "
                             "net revenue): its money is then shown but never added again", default=False)

    @property
    def in_net(self) -> bool:
        """Whether its money enters the model's net value."""
        return self.value_per_unit is not None and not self.in_main_kpi

    def _check(self, where: str, problems: list[str]) -> None:
        if not GUARDRAIL_NAME_RE.fullmatch(self.name):
            problems.append(f"{where}.name: {self.name!r} must be 1-24 characters of a-z, 0-9 and '_', "
                            "starting with a letter")
        if self.harm not in HARMS:
            problems.append(f"{where}.harm: {self.harm!r} is not one of {', '.join(HARMS)} (which way is harm)")
        if self.tolerance < 0:
            problems.append(f"{where}.tolerance: must be >= 0 (got {self.tolerance}); it is the harm tolerated "
                            "per treated unit, in the guardrail's units")
        if not (self.unit in NON_CURRENCY_UNITS or re.fullmatch(r"[A-Z]{3}", self.unit)):
            problems.append(f"{where}.unit: {self.unit!r} is neither a 3-letter currency code nor 'count'/'rate'")
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"{where}.aggregation: {self.aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
        if self.value_per_unit is not None and self.value_per_unit < 0:
            problems.append(f"{where}.value_per_unit: must be >= 0 (got {self.value_per_unit}); the direction "
                            "comes from `harm`")


@dataclass(frozen=True)
class CostSource:
    """The model's daily cost read from a billing table in its warehouse (the BigQuery billing
    export, Snowflake metering, an AWS cost-and-usage table): once a day has settled it replaces
    the manifest's running-cost estimate (monthly_cost, cost_per_1k_predictions) for that day."""

    table: str = _doc("billing table or view, optionally schema- or project-qualified")
    date: str = _doc("column with the usage day or usage start time (a timestamp is cut into UTC days)")
    amount: str = _doc("column with the row's cost (or the units billed, e.g. Snowflake credits, with price_per_unit)")
    currency: str | None = _doc("the bill's currency as a constant, e.g. 'USD' (or give currency_column)", default=None)
    currency_column: str | None = _doc("column with each row's currency (or give currency)", default=None)
    credits: str | None = _doc("column holding an array of structs whose `amount` fields are added to the row's "
                               "amount (the BigQuery billing export's `credits`: net cost = cost + credits)",
                               default=None)
    labels: str | None = _doc("column holding an array of {key, value} structs (the BigQuery billing export's "
                              "`labels`); with label_key, only rows labelled with this model count", default=None)
    label_key: str | None = _doc("label key naming the model, e.g. 'valuetrack-model'", max_len=200, default=None)
    label_value: str | None = _doc("value of label_key for this model (defaults to the model's name)", max_len=200,
                                   default=None)
    where: str | None = _doc("optional read-only filter on the billing rows, e.g. \"warehouse_name = 'ML_WH'\"",
                             default=None)
    price_per_unit: float = _doc("money per unit of `amount` (the price of a Snowflake credit); 1 when `amount` is "
                                 "money", default=1.0)
    share: float = _doc("fixed share of the selected rows' cost that is this model's (a shared warehouse or "
                        "account); 1 when the rows are the model's alone", default=1.0)
    settle_days: int = _doc("bills are revised for this many days after the fact: a day's billed cost is used "
                            "once it is older than this, the manifest's estimate before", default=5)

    def _check(self, where: str, problems: list[str]) -> None:
        _identifiers(self, where, problems, table_fields=("table",),
                     skip=("currency", "label_key", "label_value", "where"))
        if (self.currency is None) == (self.currency_column is None):
            problems.append(f"{where}.currency: give exactly one of `currency` (a constant such as 'USD') and "
                            "`currency_column` (a column of the billing table)")
        if self.currency is not None and not re.fullmatch(r"[A-Z]{3}", self.currency):
            problems.append(f"{where}.currency: {self.currency!r} is not a 3-letter currency code such as 'USD'")
        if (self.labels is None) != (self.label_key is None):
            problems.append(f"{where}.label_key: `labels` (the column) and `label_key` go together; give both or "
                            "neither")
        if self.label_value is not None and self.label_key is None:
            problems.append(f"{where}.label_value: given without `label_key`")
        for name in ("label_key", "label_value"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                problems.append(f"{where}.{name}: must not be empty")
        if self.where is not None:
            try:
                check_predicate(self.where)
            except ValidationError as exc:
                problems.append(f"{where}.where: {exc.problems[0]}")
        if not self.price_per_unit > 0:
            problems.append(f"{where}.price_per_unit: must be > 0 (got {self.price_per_unit})")
        if not 0.0 < self.share <= 1.0:
            problems.append(f"{where}.share: must be > 0 and at most 1 (got {self.share}); it is the model's "
                            "share of the selected rows' cost")
        if not 0 <= self.settle_days <= 90:
            problems.append(f"{where}.settle_days: must be between 0 and 90 (got {self.settle_days})")
        cols = [c for c in (self.date, self.amount, self.currency_column, self.credits, self.labels) if c]
        if len(set(cols)) != len(cols):
            problems.append(f"{where}: date, amount, currency_column, credits and labels must be different columns")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: who owns it, what it costs, which KPI it moves and how to measure that."""

    name: str = _doc("unique id: lowercase letters, digits and '-', 3 to 64 characters")
    display_name: str = _doc("human-readable name", max_len=200)
    owner: str = _doc("owner's e-mail or handle", max_len=200)
    team: str = _doc("owning team", max_len=200)
    kpi: Kpi = _doc("the KPI the model moves")
    attribution: Attribution = _doc("how its effect is measured")
    status: str = _doc("'active' or 'retired'", default="active")
    connection: str = _doc("name of a connection in valuetrack.toml", max_len=100, default="demo")
    timezone: str = _doc("IANA time zone in which days are cut for this model", default="UTC")
    currency: str | None = _doc("ISO 4217 code of the model's own amounts (value_per_unit, monthly_cost, "
                                "cost_per_1k_predictions, one_off_costs); converted into the reporting currency "
                                "at each day's rate from [fx]; default: the reporting currency", default=None)
    monthly_cost: Dated = _doc("serving + licences + people share per month, in the model's currency: a number "
                               "(since launch), or a list of {from = DATE, amount = …} when it changed", default=0.0)
    cost_per_1k_predictions: Dated = _doc("variable cost per 1,000 predictions: a number, or a list of "
                                          "{from = DATE, amount = …}", default=0.0)
    one_off_costs: float | tuple[OneOffCost, ...] = _doc(
        "build cost: a number (incurred on the launch date), or a list of {on = DATE, amount = …}; counted "
        "in the payback date and, amortised, in the fully loaded view", default=0.0)
    amortisation_months: int | None = _doc(
        f"months over which each one-off cost is spread in the fully loaded view, straight line by day from "
        f"the later of its date and the launch (default {AMORTISATION_MONTHS})", default=None)
    interventions: tuple[Intervention, ...] = _doc("launch dates; several for relaunches", default=())
    thresholds: Thresholds = _doc("flagging thresholds", default=Thresholds())
    decisions: Decisions | None = _doc("a classifier's decisions and labels, and what each outcome is worth",
                                       default=None)
    description: str | None = _doc("what the model does (optional; e.g. from the MLflow registry)", default=None)
    annotations: tuple[Annotation, ...] = _doc("dated notes shown on the model's charts (new versions of an A/B model)",
                                               default=())
    cost_source: CostSource | None = _doc("daily cost from a billing table in the model's warehouse, used once "
                                          "settled in place of the running-cost estimate", default=None)
    guardrails: tuple[Guardrail, ...] = _doc("secondary KPIs it must not harm beyond a tolerance (needs a holdout)",
                                             default=(), omit_empty=True)

    def _check(self, where: str, problems: list[str]) -> None:
        if not NAME_RE.fullmatch(self.name):
            problems.append(
                f"{where}.name: {self.name!r} must be 3-64 characters of a-z, 0-9 and '-', "
                "starting and ending with a letter or digit"
            )
        for name in ("display_name", "owner", "team"):
            if not getattr(self, name).strip():
                problems.append(f"{where}.{name}: must not be empty")
        if self.status not in STATUSES:
            problems.append(f"{where}.status: {self.status!r} is not one of {', '.join(STATUSES)}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{where}.timezone: {self.timezone!r} is not an IANA time zone such as 'Europe/Paris'")
        launch = self.interventions[0].start if self.interventions else None
        for name in ("monthly_cost", "cost_per_1k_predictions", "one_off_costs"):
            _check_dated(getattr(self, name), f"{where}.{name}", launch, problems,
                         key="on" if name == "one_off_costs" else "from")
        if self.attribution.exposures is None and _charges(self.cost_per_1k_predictions):
            problems.append(f"{where}.cost_per_1k_predictions: the model has no exposures "
                            f"([{where}.attribution.exposures]) whose predictions it could be charged on; "
                            "put that cost in monthly_cost, or set it to 0")
        if self.currency is not None and self.currency not in currency_codes():
            problems.append(f"{where}.currency: {self.currency!r} is not an ISO 4217 currency code such as 'EUR' "
                            "or 'USD' (omit it for the reporting currency)")
        if self.kpi is not None and isinstance(self.kpi.value_per_unit, tuple):
            _check_dated(self.kpi.value_per_unit, f"{where}.kpi.value_per_unit", launch, problems)
        if self.amortisation_months is not None and not 1 <= self.amortisation_months <= 240:
            problems.append(f"{where}.amortisation_months: must be between 1 and 240 (got {self.amortisation_months})")
        starts = [iv.start for iv in self.interventions]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            problems.append(f"{where}.interventions: starts must be distinct and in date order")
        if self.attribution.method in methods.names():
            methods.get(self.attribution.method).validate(self, where, problems)
        if self.guardrails:
            if not self.has_holdout:
                problems.append(f"{where}.guardrails: need a holdout ([{where}.attribution.exposures] and "
                                f"[{where}.attribution.outcomes]): a guardrail is compared between the model's arms")
            names = [g.name for g in self.guardrails if g is not None]
            if len(set(names)) != len(names):
                problems.append(f"{where}.guardrails: names must be unique within the model (got {', '.join(names)})")
            if len(self.guardrails) > MAX_GUARDRAILS:
                problems.append(f"{where}.guardrails: at most {MAX_GUARDRAILS} per model (got {len(self.guardrails)})")

    # -- conversion ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, label: str | None = None) -> ModelSpec:
        """Build and validate a spec from manifest data; raise ValidationError listing every problem."""
        problems: list[str] = []
        name = data.get("name") if isinstance(data, dict) else None
        where = f"model {name!r}" if isinstance(name, str) and name else (label or "model")
        spec = _build(cls, data, where, problems)
        if problems:
            raise ValidationError(problems)
        assert spec is not None
        return spec

    @classmethod
    def from_stored(cls, data: Any) -> tuple[ModelSpec | None, list[str]]:
        """A spec as stored in the app database, even when it no longer validates (e.g. its method
        was removed, or a row was edited by hand): (spec or None when it cannot be built, problems)."""
        try:
            return cls.from_dict(data), []
        except ValidationError as exc:
            loose: list[str] = []
            name = data.get("name") if isinstance(data, dict) else None
            return _build(cls, data, f"model {name!r}", loose, check=False), exc.problems

    def to_dict(self) -> dict[str, Any]:
        """Manifest form: fields in declaration order, None and no annotations omitted (TOML has no null)."""
        out = _to_dict(self)
        if not out.get("annotations"):
            out.pop("annotations", None)
        return out

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    @property
    def has_holdout(self) -> bool:
        return self.attribution.exposures is not None and self.attribution.outcomes is not None


@functools.lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """The ISO 4217 codes a model's ``currency`` may take (Babel's list; not XXX "no currency" nor
    XTS "for testing")."""
    from babel.numbers import list_currencies

    return frozenset(c for c in list_currencies() if len(c) == 3 and c.isupper() and c not in ("XXX", "XTS"))


def guardrail_view(spec: ModelSpec, guardrail: Guardrail) -> ModelSpec:
    """The model as if the guardrail were its KPI: same exposures (without segments), window, lag,
    covariate days and design (ramp, challenger), the guardrail's outcomes and aggregation. The
    guardrail's query and its estimate are the model's own, run on this view."""
    a = spec.attribution
    exposures = dataclasses.replace(a.exposures, segment=None) if a.exposures is not None else None
    attribution = dataclasses.replace(a, method="ab", exposures=exposures, outcomes=guardrail.outcomes, series=None,
                                      panel=None)
    kpi = Kpi(name=guardrail.name, unit=guardrail.unit, value_per_unit=guardrail.value_per_unit or 0.0,
              higher_is_better=guardrail.harm == "decrease", aggregation=guardrail.aggregation)
    return dataclasses.replace(spec, kpi=kpi, attribution=attribution, guardrails=(), decisions=None)


# ------------------------------------------------------------------------------------------------
# generic, annotation-driven validation (one implementation for every section)


def _identifiers(obj: Any, where: str, problems: list[str], *, table_fields: tuple[str, ...], skip: tuple[str, ...]) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or value is None or not isinstance(value, str):
            continue
        try:
            check_identifier(value, qualified=f.name in table_fields)
        except ValidationError as exc:
            problems.append(f"{where}.{f.name}: {exc.problems[0]}")


def _one_identifier(value: str, where: str, problems: list[str]) -> None:
    try:
        check_identifier(value)
    except ValidationError as exc:
        problems.append(f"{where}: {exc.problems[0]}")


_MISSING = object()


def _type_name(tp: Any) -> str:
    return {str: "a string", float: "a number", int: "a whole number", bool: "true or false",
            dt.date: "a date (YYYY-MM-DD)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, where: str, problems: list[str], check: bool = True) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        lists = [a for a in inner if typing.get_origin(a) is tuple]
        if value is None:
            if type(None) not in typing.get_args(tp):  # a number or a dated list: None is neither
                problems.append(f"{where}: must be a number or a list of dated amounts (got nothing)")
            return None
        if lists and len(inner) > 1:  # a number or a dated list (monthly_cost, value_per_unit, ...)
            if isinstance(value, (list, tuple)):
                return _convert(lists[0], value, where, problems, check)
            number = [a for a in inner if typing.get_origin(a) is not tuple][0]
            before = len(problems)
            out = _convert(number, value, where, problems, check)
            if len(problems) > before and problems[-1].startswith(f"{where}: must be a number (got"):
                item = typing.get_args(lists[0])[0]
                example = "{from = DATE, amount = …}" if item is DatedAmount else "{on = DATE, amount = …}"
                problems[-1] += f", or a list of {example}"
            return out
        return _convert(inner[0], value, where, problems, check)
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: must be a list (got {type(value).__name__} {value!r})")
            return ()
        return tuple(_convert(item_tp, v, f"{where}[{i}]", problems, check) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, problems, check)
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is str and isinstance(value, str))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is dt.date and isinstance(value, dt.date) and not isinstance(value, dt.datetime))
    )
    if tp is dt.date and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if not ok:
        problems.append(f"{where}: must be {_type_name(tp)} (got {type(value).__name__} {value!r})")
        if tp is float and isinstance(value, list):
            problems[-1] += ("; dated lists are accepted only for the model's monthly_cost, cost_per_1k_predictions, "
                             "one_off_costs and kpi.value_per_unit (give one number here)")
        return None
    if tp is float:
        try:
            value = float(value)
        except OverflowError:
            problems.append(f"{where}: must be a finite number (got a number too large to represent)")
            return None
        if value != value or value in (float("inf"), float("-inf")):
            problems.append(f"{where}: must be a finite number (got {value})")
    return value


def _text_ok(value: str, where: str, max_len: int, problems: list[str]) -> bool:
    """Refuse control characters and overlong text (PostgreSQL refuses NUL; columns have a length)."""
    ok = True
    bad = _CONTROL.search(value)
    if bad:
        problems.append(f"{where}: contains the control character U+{ord(bad.group()):04X} at position "
                        f"{bad.start() + 1}; remove it")
        ok = False
    if len(value) > max_len:
        problems.append(f"{where}: must be at most {max_len} characters (got {len(value)})")
        ok = False
    return ok


@functools.cache
def _fields(cls: Any) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A spec class's resolved field types and its fields by manifest key (resolving the types took
    most of the time of reading 200 stored specs)."""
    return typing.get_type_hints(cls), {_key(f): f for f in dataclasses.fields(cls)}


def _build(cls: Any, data: Any, where: str, problems: list[str], check: bool = True) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a table of fields (got {type(data).__name__})")
        return None
    hints, fields = _fields(cls)
    for key in data:
        if key not in fields:
            problems.append(f"{where}.{key}: unknown field; known fields are {', '.join(fields)}")
    before = len(problems)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        fname = f.name
        if key in data:
            values[fname] = _convert(hints[fname], data[key], f"{where}.{key}", problems, check)
            if isinstance(values[fname], str) and not _text_ok(values[fname], f"{where}.{key}",
                                                               f.metadata.get("max_len", MAX_TEXT), problems):
                values[fname] = None
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{where}.{key}: required field is missing ({f.metadata.get('doc', '')})")
    if any(f.name not in values for f in fields.values() if f.default is dataclasses.MISSING):
        return None
    obj = cls(**values)
    if not check:  # a stored spec that no longer validates: built as it is, its problems reported
        return obj
    try:
        obj._check(where, problems)
    except (AttributeError, TypeError):
        # a field that failed conversion is None; its own problem is already reported
        if len(problems) == before:
            raise
    return obj if len(problems) == before else None


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = _to_dict(getattr(obj, f.name))
            if value is not None and not (f.metadata.get("omit_empty") and value == []):
                out[_key(f)] = value
        return out
    if isinstance(obj, tuple):
        return [_to_dict(v) for v in obj]
    return obj


def field_docs(cls: Any = ModelSpec, prefix: str = "") -> dict[str, str]:
    """Dotted field name → documentation, for the form's help texts and the user guide."""
    out: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{_key(f)}"
        out[key] = f.metadata.get("doc", "")
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        for a in args:
            a = typing.get_args(a)[0] if typing.get_origin(a) is tuple else a
            if dataclasses.is_dataclass(a):
                out.update(field_docs(a, key + "."))
    return out
