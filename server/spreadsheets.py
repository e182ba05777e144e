"""CSV and xlsx files for organiser exports (rosters, attendance, compliance), Chinese headers welcome.

CSV carries a UTF-8 BOM so Excel on Windows opens Chinese text correctly. Texts are checked on the way in
(schemas.common), but rows stored before that may hold control characters, which an xlsx file cannot
contain at all (openpyxl raises): every cell gets U+FFFD in their place, in both formats.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook

from schemas.common import TEXT_REFUSED
from server.errors import ApiError

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"
# Cells starting with these are formulas to a spreadsheet: prefix them so a name cannot run one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What a text field refuses today, plus the two noncharacters XML (so xlsx) cannot hold.
_UNWRITABLE = re.compile(f"[{TEXT_REFUSED}\ufffe\uffff]")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        value = _UNWRITABLE.sub("\ufffd", value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """One workbook; each sheet is (title, headers, rows)."""
    workbook = Workbook(write_only=True)
    for title, headers, rows in sheets:
        sheet = workbook.create_sheet(title[:31])
        sheet.append(list(headers))
        for row in rows:
            sheet.append([_cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def file_format(value: str | None) -> str:
    """Validate a `format=` query value: csv (default) or xlsx."""
    fmt = (value or "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise ApiError(422, "invalid_request", "format must be csv or xlsx.",
                       errors=[{"field": "format", "message": "csv or xlsx"}])
    return fmt
