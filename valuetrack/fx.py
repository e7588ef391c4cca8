"""Where a valuation gets its exchange rates (``[fx]`` in valuetrack.toml; docs/user-guide.md).

- ``csv``: the file is read at each valuation (a valuation never opens a warehouse; a file named in
  the settings is the settings' own input, like a template).
- ``connection`` + ``table``: refresh reads the table through the connection (one pushed-down
  query, valuetrack/queries.py) into the app database; valuations read that copy.

Either way the rows are checked by :func:`valuetrack.value.fx.check_rates` and come back as
:class:`valuetrack.value.fx.FxRates`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from valuetrack.config import Settings
from valuetrack.errors import ConfigError
from valuetrack.value.fx import FxRates, check_rates

MAX_CSV_BYTES = 50 * 1024 * 1024


def load_rates(settings: Settings, stored: pd.DataFrame | None = None) -> FxRates:
    """The rates of ``[fx]``: from its CSV, or from ``stored`` (the app database's copy of the table).

    Raises:
        ConfigError when there is no [fx] section, the CSV cannot be read or lacks a column;
        ValidationError (each problem naming the row) when the rows are not usable rates.
    """
    fx = settings.fx
    if fx is None:
        raise ConfigError(f"no [fx] section in {settings.source}: a model whose currency is not the reporting "
                          f"currency ({settings.currency}) needs dated rates; add [fx] with quote = "
                          f"\"{settings.currency}\" and csv = \"fx_rates.csv\" (columns date, currency, rate) "
                          "or a warehouse table (docs/user-guide.md, Currencies)")
    if fx.csv is None:
        frame = stored if stored is not None else pd.DataFrame(columns=["date", "currency", "rate"])
        if not len(frame):
            raise ConfigError(f"no rates from {fx.source} yet: run `valuetrack refresh` to read them")
        return FxRates.from_frame(check_rates(frame, settings.currency, fx.source), settings.currency, fx.source)
    try:
        if fx.csv.stat().st_size > MAX_CSV_BYTES:
            raise ConfigError(f"[fx].csv {str(fx.csv)!r} is larger than {MAX_CSV_BYTES // 2**20} MB")
        raw = pd.read_csv(fx.csv, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ConfigError(f"[fx].csv: {str(fx.csv)!r} does not exist; create it (columns {fx.date}, {fx.currency}, "
                          f"{fx.rate}) or fix the path in {settings.source}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"[fx].csv: cannot read {str(fx.csv)!r}: {exc}") from None
    missing = [c for c in (fx.date, fx.currency, fx.rate) if c not in raw.columns]
    if missing:
        raise ConfigError(f"[fx].csv: {fx.csv.name} has no column {missing[0]!r} (columns: {', '.join(raw.columns)}); "
                          f"name the columns with [fx].date, [fx].currency and [fx].rate")
    frame = raw.rename(columns={fx.date: "date", fx.currency: "currency", fx.rate: "rate"})
    rows = check_rates(frame[["date", "currency", "rate"]], settings.currency, fx.source)
    return FxRates.from_frame(rows, settings.currency, fx.source)


def read_table_rates(settings: Settings, connector: Any, currencies: list[str], as_of: dt.date, *,
                     timeout_s: float | None = None) -> pd.DataFrame:
    """The rates of ``currencies`` from the [fx] warehouse table, published before ``as_of``
    (refresh stores them; the query is pushed down: only those currencies' rows leave the warehouse).

    Raises:
        WarehouseError when the query fails; ValidationError when the rows are not usable rates.
    """
    from valuetrack.queries import fx_rates_query

    fx = settings.fx
    assert fx is not None and fx.table is not None
    query = fx_rates_query(fx.table, fx.date, fx.currency, fx.rate, currencies, as_of - dt.timedelta(days=1),
                           dialect_ops=getattr(connector, "ops", None))
    frame = connector.run(query, model="fx-rates", purpose="fx", timeout_s=timeout_s).frame
    return check_rates(frame, settings.currency, fx.source)
