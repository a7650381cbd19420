"""Exports: tables as CSV, Excel or Parquet (the de-identified research export is :mod:`.deidentify`).

CSV and Excel files are spreadsheet-safe (OWASP, CSV injection): a text cell that a spreadsheet
would run as a formula (starting with ``= + - @``, a tab or a carriage return) gets a leading
``'``, which makes the spreadsheet show it as text. Numbers are never touched, the stored value is
unchanged, and an import removes the quote again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import StoreError
from ..records import table_spec
from ..records.columns import FORMULA_TRIGGERS

__all__ = ["EXPORT_FORMATS", "spreadsheet_safe", "text_columns", "write_table"]

EXPORT_FORMATS = (".csv", ".xlsx", ".parquet")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(frame: pd.DataFrame, *, text_columns=()) -> pd.DataFrame:
    """A copy of ``frame`` in which no text cell can run as a spreadsheet formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``
    (OWASP's advice against CSV injection); text that is a plain number (``-5``, ``+3.5``) and
    every non-text column are left as they are, except in ``text_columns`` (columns whose values
    are text by definition, such as a table's notes or labels), where a spreadsheet would turn
    ``+1`` into the number 1: there the number is quoted too.

    Examples
    --------
    >>> frame = pd.DataFrame({"notes": ["=HYPERLINK(1)", "-5", "@SUM(A1)", "fine"], "degrees": [-5.0, 1, 2, 3]})
    >>> spreadsheet_safe(frame)["notes"].tolist()
    ["'=HYPERLINK(1)", '-5', "'@SUM(A1)", 'fine']
    >>> spreadsheet_safe(frame)["degrees"].tolist()
    [-5.0, 1.0, 2.0, 3.0]
    >>> spreadsheet_safe(frame, text_columns=["notes"])["notes"].tolist()[:2]
    ["'=HYPERLINK(1)", "'-5"]
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("object")
        always = name in text_columns
        risky = text.map(lambda v: isinstance(v, str) and v[:1] in FORMULA_TRIGGERS
                         and (always or not _NUMBER.fullmatch(v.strip())))
        if risky.any():
            out[name] = text.where(~risky, "'" + text[risky].astype(str))
    return out


def write_table(frame: pd.DataFrame, path: str | Path, *, sheet: str = "data", text_columns=()) -> Path:
    """Write ``frame`` as ``.csv``, ``.xlsx`` or ``.parquet`` (by the suffix); CSV and Excel are
    spreadsheet-safe (:func:`spreadsheet_safe`, with ``text_columns``), dates are written as YYYY-MM-DD."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        spreadsheet_safe(frame, text_columns=text_columns).to_csv(path, index=False, date_format="%Y-%m-%d")
    elif suffix == ".xlsx":
        safe = spreadsheet_safe(frame, text_columns=text_columns)
        for name in safe.columns:  # Excel has no time zones; dates as dates
            if pd.api.types.is_datetime64_any_dtype(safe[name]):
                safe[name] = safe[name].dt.date
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            safe.to_excel(writer, sheet_name=sheet[:31], index=False)
    else:
        raise StoreError(f"export format not recognised from {path.name!r}: use {', '.join(EXPORT_FORMATS)}")
    return path


def text_columns(table: str) -> list[str]:
    """The columns of ``table`` whose values are text by definition (ids, labels, notes): a number
    in them is quoted in CSV and Excel exports, so a spreadsheet keeps it as written."""
    return [c.name for c in table_spec(table) if c.kind in ("id", "text", "enum")]
