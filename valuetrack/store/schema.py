"""Tables of the app database (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them;
these declarations are what the code queries. Keep the two in step: ``tests/store/test_migrations.py``
compares them.

Secrets never go in here: connections are referred to by name only.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, Sequence("models_id_seq"), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("team", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("kpi_name", String(200), nullable=False),
    Column("method", String(64), nullable=False),
    # the whole manifest entry (every field), canonical JSON; the columns above are for filtering
    Column("spec", JSON, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
    UniqueConstraint("name", name="uq_models_name"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, Sequence("audit_log_id_seq"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("model_name", String(64), ForeignKey("models.name"), nullable=True),
    Column("from_revision", Integer, nullable=True),
    Column("to_revision", Integer, nullable=True),
    # {"field.path": [old, new], ...}
    Column("changes", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_audit_log_model", "model_name", "id"),
)

# -- notes on a model (valuetrack.store.notes; migration 0016) ------------------------------------
# Annotations (dated notes for charts and reports), excluded windows (days left out of attribution)
# and overrides (a value adjustment agreed with finance). Rows are never deleted: a withdrawn note
# keeps who withdrew it, when and why. Every change is also an audit_log entry.

model_notes = Table(
    "model_notes",
    metadata,
    Column("id", Integer, Sequence("model_notes_id_seq"), primary_key=True),
    Column("model_name", String(64), ForeignKey("models.name"), nullable=False),
    Column("kind", String(16), nullable=False),  # annotation | exclusion | override
    Column("category", String(16), nullable=True),  # annotation: release|incident|campaign|other; override: amount|share
    Column("start_day", sa.Date, nullable=True),  # annotation's day; exclusion's first day; override's first day
    Column("end_day", sa.Date, nullable=True),  # exclusion's last day; a share override's last day (None: open)
    Column("amount", sa.Float(precision=53), nullable=True),  # override: the amount (money) or the share counted
    Column("text", Text, nullable=False),  # the note, or why
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Column("withdrawn_by", String(200), nullable=True),
    Column("withdrawn_reason", Text, nullable=True),
    Index("ix_model_notes_model", "model_name", "id"),
)

# -- aggregates cache (valuetrack.store.aggregates reads and writes these) --------------------

NO_SEGMENT = ""  # segment key of models without a segment (NULL cannot be part of a primary key)

refreshes = sa.Table(
    "refreshes", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("refreshes_id_seq"), primary_key=True),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("since_day", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | ok | failed | abandoned
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cost", sa.JSON, nullable=True),  # totals + per-query entries
    sa.Column("rows", sa.Integer, nullable=True),
    sa.Column("mature_through", sa.Date, nullable=True),
    sa.Column("bin_edges", sa.JSON, nullable=True),
    sa.Column("max_exposure_ts", sa.DateTime, nullable=True),
    sa.Column("max_outcome_ts", sa.DateTime, nullable=True),
    sa.Column("started_by", sa.String(200), nullable=True),  # who ran the refresh (migration 0007)
    sa.Column("runner", sa.String(200), nullable=True),  # "pid@host" of the process (migration 0008)
    # migration 0022: the first day from which the model's stored daily exposure counts are complete
    # (refresh_pull.HISTORY_START: the whole history); NULL: only the last HEALTH_DAYS of its first
    # refresh were read (before D53), so the next refresh reads them over the whole history
    sa.Column("exposures_from", sa.Date, nullable=True),
    # migration 0025: the digest of the model's queries the refresh read with (refresh_pull.model_definition,
    # D66); a refresh whose model's digest differs re-reads the whole history. NULL: stored before D66
    sa.Column("definition", sa.String(64), nullable=True),
    sa.Index("ix_refreshes_model", "model_name", "id"),
)


def _ab_sums() -> list[sa.Column]:
    """The A/B sufficient statistics of a day and arm (ab_aggregates, ab_day_totals,
    guardrail_aggregates): units, exposures and the outcome's and covariate's sums."""
    return [sa.Column("n", sa.BigInteger, nullable=False), sa.Column("n_units", sa.BigInteger, nullable=False),
            *(sa.Column(k, sa.Float(precision=53), nullable=True) for k in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"))]


ab_aggregates = sa.Table(
    "ab_aggregates", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    *_ab_sums(),
    sa.Column("mature", sa.Boolean, nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

ab_day_totals = sa.Table(  # migration 0023: ab_aggregates summed over segments (D61)
    # per model × cohort day × arm, written by the same transaction as the rows it sums, by the
    # database's own SUM over them (AggregateStore.save); what a valuation reads (read_ab_by_day)
    "ab_day_totals", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    *_ab_sums(),
    sa.Column("mature", sa.Boolean, nullable=False),  # every row of the day and arm is mature
)

ab_crossovers = sa.Table(
    "ab_crossovers", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("n_crossover", sa.BigInteger, nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

series_points = sa.Table(
    "series_points", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("series", sa.String(128), primary_key=True),  # "value" or a control column
    sa.Column("value", sa.Float(precision=53), nullable=True),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

health_daily = sa.Table(
    "health_daily", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    sa.Column("n_exposures", sa.BigInteger, nullable=False),
    sa.Column("n_units", sa.BigInteger, nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

health_histogram = sa.Table(
    "health_histogram", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("bin", sa.Integer, primary_key=True),  # -1 = NULL score
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

decision_aggregates = sa.Table(  # migration 0011: a classifier's decisions (valuetrack.queries.decisions_query)
    "decision_aggregates", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("bin", sa.Integer, primary_key=True),  # ⌊score·100⌋, -1 = no score
    sa.Column("decision", sa.Integer, primary_key=True),  # 1 | 0
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("sum_s", sa.Float(precision=53), nullable=False),
    sa.Column("sum_s2", sa.Float(precision=53), nullable=False),
    sa.Column("n_labelled", sa.BigInteger, nullable=False),
    sa.Column("n_positive", sa.BigInteger, nullable=False),
    sa.Column("sum_s_labelled", sa.Float(precision=53), nullable=False),
    sa.Column("sum_s2_labelled", sa.Float(precision=53), nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

billed_costs = sa.Table(  # migration 0014: billed cost per day (valuetrack.queries.billed_cost_query)
    "billed_costs", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("currency", sa.String(8), primary_key=True),
    sa.Column("amount", sa.Float(precision=53), nullable=False),  # units of cost_source.amount (money or credits)
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

guardrail_aggregates = sa.Table(  # migration 0018: guardrail KPIs ([[models.guardrails]], valuetrack.refresh_pull)
    "guardrail_aggregates", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("guardrail", sa.String(40), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    *_ab_sums(),
    sa.Column("mature", sa.Boolean, nullable=False),
    sa.Column("definition", sa.String(64), nullable=False),  # digest of the guardrail's query: a changed one is re-read
    sa.Column("refresh_id", sa.Integer, nullable=False),
)

TABLES = (refreshes, ab_aggregates, ab_day_totals, ab_crossovers, series_points, health_daily, health_histogram,
          decision_aggregates, billed_costs, guardrail_aggregates)

# -- report snapshots (valuetrack.reports owns this section; migration 0003) --------------------
# One row per issued monthly report: the whole report as JSON, never updated after insert (a new
# issue of a month, e.g. provisional → final, is a new row pointing at the one it supersedes).

report_snapshots = sa.Table(
    "report_snapshots", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("report_snapshots_id_seq"), primary_key=True),
    sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM
    sa.Column("status", sa.String(16), nullable=False),  # provisional | final
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),  # valuetrack version that built it
    sa.Column("inputs_hash", sa.String(64), nullable=False),  # sha256 of what the numbers depend on
    sa.Column("content_hash", sa.String(64), nullable=False),  # sha256 of canonical JSON of content
    sa.Column("supersedes", sa.Integer, nullable=True),  # id of the previous snapshot of the month
    sa.Column("content", sa.JSON, nullable=False),
    sa.Index("ix_report_snapshots_month", "month", "id"),
)


# -- value results: written by refresh before the ledger (migration 0013) replaced it; kept, not written --

value_results = sa.Table(
    "value_results", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("value_results_id_seq"), primary_key=True),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("registry_revision", sa.Integer, nullable=False),
    sa.Column("library_version", sa.String(32), nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=True),  # the refresh whose aggregates it used
    sa.Column("net", sa.Float(precision=53), nullable=True),
    sa.Column("result", sa.JSON, nullable=False),  # ModelValue.to_dict() to date
    sa.Index("ix_value_results_model", "model_name", "id"),
)

model_overlaps = sa.Table(
    "model_overlaps", metadata,
    sa.Column("model_a", sa.String(64), primary_key=True),
    sa.Column("model_b", sa.String(64), primary_key=True),
    sa.Column("shared_units", sa.BigInteger, nullable=False),
    sa.Column("shared_kpi", sa.Boolean, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

# units per membership pattern of each KPI group (valuetrack.value.overlap; migration 0017), as the
# latest refresh counted them; a group counted pair by pair holds one row per pair (``pairwise``)
model_overlap_patterns = sa.Table(
    "model_overlap_patterns", metadata,
    sa.Column("group_no", sa.Integer, primary_key=True),
    sa.Column("row_no", sa.Integer, primary_key=True),
    sa.Column("group_models", sa.JSON, nullable=False),  # every model of the KPI group, in bit order
    sa.Column("models", sa.JSON, nullable=False),  # the models of this pattern (or pair)
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("pairwise", sa.Boolean, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

# each KPI group's units per membership mask over the exposures before its settled day (D64;
# migration 0024): what the next refresh advances with the units served since, instead of
# counting every unit again; replaced with the patterns, for the groups counted by pattern
overlap_settled_counts = sa.Table(
    "overlap_settled_counts", metadata,
    sa.Column("group_key", sa.String(64), primary_key=True),  # valuetrack.value.overlap.membership_key
    sa.Column("settled_day", sa.Date, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),  # [[mask as a decimal string, units], ...]
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

# -- exchange rates read from a warehouse table ([fx] table; valuetrack/fx.py; migration 0020) ----
# units of the reporting currency per 1 unit of `currency`, as published on `day`; the currencies
# a refresh reads are replaced as a whole (a corrected rate replaces the old one)

fx_rates = sa.Table(
    "fx_rates", metadata,
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
)

# -- settings the app database enforces itself (valuetrack.access; migration 0008) ---------------
# key "auth": the [auth] mapping recorded the first time settings with [auth] opened this database,
# so that a settings file without it cannot reopen the database in the open local mode.

app_settings = sa.Table(
    "app_settings", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=True),
)

# -- notifications (valuetrack.store.notifications; migration 0009) ---------------------------------

notification_state = sa.Table(
    "notification_state", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),  # a "raised" message went out, no "cleared" yet
    sa.Column("flag_types", sa.JSON, nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("absent_runs", sa.Integer, nullable=False),  # consecutive as-of days without a flag
    sa.Column("last_as_of", sa.Date, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

notification_events = sa.Table(
    "notification_events", metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # the idempotency key
    sa.Column("kind", sa.String(32), nullable=False),  # raised | escalated | cleared | refresh_failed | test
    sa.Column("model_name", sa.String(64), nullable=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_notification_events_created", "created_at"),
)

notification_deliveries = sa.Table(
    "notification_deliveries", metadata,
    sa.Column("event_key", sa.String(200), primary_key=True),
    sa.Column("target", sa.String(200), primary_key=True),  # target id: never the URL (secrets)
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),  # redacted
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# -- the portfolio's value at risk (valuetrack.store.results.VarStore; migration 0010) ------------
# Computed where valuation runs (the end of a refresh), read by pages, `value --var` and reports.

portfolio_var = sa.Table(
    "portfolio_var", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("portfolio_var_id_seq"), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("library_version", sa.String(32), nullable=False),
    sa.Column("result", sa.JSON, nullable=False),  # PortfolioVar.to_dict()
    sa.Index("ix_portfolio_var_as_of", "as_of", "id"),
)


# -- the valuation ledger (valuetrack.store.ledger; migration 0013) ------------------------------
# One row per valuation of the whole portfolio (an "as-of"), written in one transaction with every
# model's figures, months, flags and (for the latest as-of and month-ends only) daily timelines.
# Pages, the CLI's reads and the reports read only these tables (docs/architecture.md).

ledger_asofs = sa.Table(
    "ledger_asofs", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("ledger_asofs_id_seq"), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("valued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # refresh | edit | revalue
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("alpha", sa.Float(precision=53), nullable=False),
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("library_version", sa.String(32), nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=True),  # newest refresh whose aggregates it read
    sa.Column("registry_version", sa.Integer, nullable=True),  # newest audit-log entry it saw
    sa.Column("input_hash", sa.String(64), nullable=False),  # sha256 over the models' input hashes
    sa.Column("periods", sa.JSON, nullable=False),  # {"to-date"|"YYYY-MM": {totals, overlaps, start, end}}
    sa.Index("ix_ledger_asofs_as_of", "as_of", "id"),
)

ledger_models = sa.Table(
    "ledger_models", metadata,
    sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(8), nullable=False),  # ok | error
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("registry_revision", sa.Integer, nullable=False),
    sa.Column("refresh_id", sa.Integer, nullable=True),
    sa.Column("input_hash", sa.String(64), nullable=False),
    sa.Column("net", sa.Float(precision=53), nullable=True),
    sa.Column("figures", sa.JSON, nullable=False),  # ModelValue.to_dict() to date
    sa.Column("detail", sa.JSON, nullable=False),  # effect, diagnostics, live span, refresh status
)

ledger_monthly = sa.Table(
    "ledger_monthly", metadata,
    sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),  # YYYY-MM
    sa.Column("live", sa.Boolean, nullable=False),  # the model was live (or retiring) that month
    sa.Column("net", sa.Float(precision=53), nullable=True),
    sa.Column("figures", sa.JSON, nullable=False),  # ModelValue.to_dict() of the month (health: see to date)
)

ledger_timeline = sa.Table(
    "ledger_timeline", metadata,
    sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("series", sa.JSON, nullable=False),  # {"timeline", "cumulative", "daily"}: column -> values
)

ledger_flags = sa.Table(
    "ledger_flags", metadata,
    sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(32), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # raised (at this look) | cleared (since the last)
    sa.Column("raised_on", sa.Date, nullable=False),
    sa.Column("cleared_on", sa.Date, nullable=True),
    sa.Column("p_value", sa.Float(precision=53), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("at_stake", sa.Float(precision=53), nullable=True),  # money at stake (D42); None before 0015
    sa.Index("ix_ledger_flags_model", "model_name", "asof_id"),
)

# A month whose report is final reads the figures of one valuation (the version's ``asof_id``) on
# every surface until a person applies a restatement, which adds the next version (D34).
ledger_finals = sa.Table(
    "ledger_finals", metadata,
    sa.Column("id", sa.Integer, sa.Sequence("ledger_finals_id_seq"), primary_key=True),
    sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM
    sa.Column("version", sa.Integer, nullable=False),  # 1: the first final report, 2, ...: restatements
    sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id"), nullable=False),  # the figures it reads
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("alpha", sa.Float(precision=53), nullable=False),
    sa.Column("snapshot_id", sa.Integer, nullable=False),  # the final report snapshot of this version
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # why it was restated (None for version 1)
    sa.Column("net_before", sa.Float(precision=53), nullable=True),
    sa.Column("net_after", sa.Float(precision=53), nullable=True),
    sa.Column("delta", sa.Float(precision=53), nullable=True),
    sa.Column("differences", sa.JSON, nullable=True),  # the per-model differences applied
    sa.UniqueConstraint("month", "version", name="uq_ledger_finals_month_version"),
)

LEDGER_TABLES = (ledger_asofs, ledger_models, ledger_monthly, ledger_timeline, ledger_flags)

# -- kept structural fits (valuetrack.attribution.timeseries.FitCache, D52; migration 0021) --------
# What a structural model's Kalman filter passes over an unchanged pre-period produced, so the next
# valuation does not run them again. A cache, never a figure: an entry is used only when its key (a
# sha256 of everything the fit reads, versions included) matches, and the rows are exactly the
# entries the newest valuation used (replaced in its ledger transaction), so they cannot pile up.

fit_cache = sa.Table(
    "fit_cache", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # numpy arrays (np.savez, read without pickle)
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
)

# -- kept segment sums (valuetrack.valuation._segments, D68; migration 0026) -----------------------
# An A/B model's sums per segment × arm over its mature cohort days up to ``through`` (its excluded
# windows, ``windows``, left out), so that the next valuation adds only the days that matured since
# instead of summing the model's whole history per segment again. A cache, never a figure: written
# in the ledger transaction of the valuation that summed it (a valuation whose inputs changed meanwhile
# writes nothing), replaced by the next one, and deleted by the refresh that rewrites any of the days
# it sums (AggregateStore.save: the entries with ``through`` ≥ the first re-read day).

segment_sums_kept = sa.Table(
    "segment_sums_kept", metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("through", sa.Date, nullable=False),  # the last cohort day summed
    sa.Column("windows", sa.Text, nullable=False),  # the excluded windows left out (JSON)
    sa.Column("sums", sa.JSON, nullable=False),  # [{segment, arm, n, n_units, sum_y, ...}]
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
)
