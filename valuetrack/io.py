"""Reading the CSV/Parquet files that ``valuetrack attribute`` takes, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from valuetrack.errors import ValidationError


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises:
        ValidationError: the file is missing, empty, of an unknown type, or unreadable.
    """
    p = Path(path)
    if not p.exists():
        raise ValidationError(f"--data: file {str(p)!r} does not exist")
    if p.is_dir():
        raise ValidationError(f"--data: {str(p)!r} is a folder; give a .csv or .parquet file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".csv", ".txt", ".gz"):
            frame = pd.read_csv(p)
        else:
            raise ValidationError(f"--data: {p.name!r} is neither .csv nor .parquet")
    except ValidationError:
        raise
    except pd.errors.EmptyDataError:
        raise ValidationError(f"--data: {p.name!r} is empty") from None
    except Exception as exc:  # parser errors differ by engine; name the file and the cause
        raise ValidationError(f"--data: could not read {p.name!r}: {type(exc).__name__}: {exc}") from None
    if frame.empty:
        raise ValidationError(f"--data: {p.name!r} has no rows")
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[tuple[str, str | None]]) -> None:
    """Check that each (option, column) names a column of ``frame``; None columns are skipped."""
    missing = [(opt, col) for opt, col in columns if col is not None and col not in frame.columns]
    if missing:
        opt, col = missing[0]
        raise ValidationError(
            f"{opt}: no column {col!r} in the data; columns are: {', '.join(map(str, frame.columns))}"
        )


def numeric_column(frame: pd.DataFrame, option: str, column: str) -> pd.Series:
    """Return ``frame[column]`` as float, refusing non-numeric values with the row that failed."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ValidationError(
            f"{option}: column {column!r} must be numeric; row {row + 1} has {frame[column].iloc[row]!r}"
        )
    return values.astype(float)
