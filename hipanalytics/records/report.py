"""What reading a file found: problems, skipped rows and normalisations, row by row.

Every finding names the file, the row as a spreadsheet numbers it (the header is row 1), the
column, the value as written, the rule and how to fix it. Nothing read is dropped: a row is
imported, set aside with its reasons, counted as a duplicate, or skipped as blank or a summary
row, and the report says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataValidationError
from .columns import SOURCE_ROW

__all__ = ["PROBLEM_COLUMNS", "NORMALISATION_COLUMNS", "REPORT_COLUMNS", "ValidationReport", "ReadResult",
           "Collector", "shown"]

PROBLEM_COLUMNS = ["severity", "file", "row", "column", "value", "rule", "fix"]
NORMALISATION_COLUMNS = ["file", "row", "column", "original", "normalised", "rule"]
REPORT_COLUMNS = ["kind", "file", "row", "column", "value", "normalised", "rule", "fix"]
"""Columns of the full report (:meth:`ValidationReport.to_csv`): every problem and every change."""

_SHOWN_LENGTH = 80


def shown(value) -> str:
    """A cell as a message shows it: ``(empty)`` for nothing, long text cut with its length.

    Examples
    --------
    >>> shown(""), shown(None), shown("Lt")
    ('(empty)', '(empty)', "'Lt'")
    >>> shown("x" * 1000)[-30:]
    "xxxx...' (1,000 characters)"
    """
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == "":
        return "(empty)"
    text = str(value)
    if len(text) > _SHOWN_LENGTH:
        return repr(text[:_SHOWN_LENGTH] + "...") + f" ({len(text):,} characters)"
    return repr(text)


@dataclass
class ValidationReport:
    """Everything found while reading one file.

    Attributes
    ----------
    file, table : str
    rows_read : int
        Data rows in the file (header excluded; blank rows after the last data row are not rows).
    problems : DataFrame
        ``severity`` (error | warning | duplicate | skipped), ``file``, ``row`` (spreadsheet
        numbering; missing for whole-file problems), ``column``, ``value``, ``rule``, ``fix``.
    normalisations : DataFrame
        ``file``, ``row``, ``column``, ``original``, ``normalised``, ``rule``: every value changed.
    """

    file: str
    table: str
    rows_read: int
    problems: pd.DataFrame
    normalisations: pd.DataFrame

    @property
    def errors(self) -> pd.DataFrame:
        """Problems that stop a row from being imported."""
        return self.problems[self.problems["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        """Caveats worth a look; the rows are still imported."""
        return self.problems[self.problems["severity"] == "warning"]

    @property
    def skipped(self) -> pd.DataFrame:
        """Rows that hold no record (blank rows, a trailing total row): counted, not imported."""
        return self.problems[self.problems["severity"] == "skipped"]

    @property
    def whole_file(self) -> bool:
        """True when the file itself was refused (not a table, a column missing or twice, ...)."""
        errors = self.errors
        return bool((errors["row"].isna() | (errors["row"] == 1)).any())

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return self.errors.empty

    def rows_with(self, severity: str) -> set[int]:
        """Spreadsheet row numbers with at least one problem of this severity."""
        rows = self.problems.loc[self.problems["severity"] == severity, "row"].dropna()
        return {int(r) for r in rows}

    def normalisation_counts(self) -> pd.Series:
        """How many values each normalisation rule changed, largest first."""
        return self.normalisations.groupby("rule").size().sort_values(ascending=False, kind="stable")

    def full(self) -> pd.DataFrame:
        """Every problem and every normalisation in one table (see :data:`REPORT_COLUMNS`)."""
        problems = self.problems.rename(columns={"severity": "kind"}).assign(normalised="")
        changes = self.normalisations.rename(columns={"original": "value"}).assign(kind="normalised", fix="")
        both = pd.concat([problems[REPORT_COLUMNS], changes[REPORT_COLUMNS]], ignore_index=True)
        return both.sort_values("row", na_position="first", kind="stable").reset_index(drop=True)

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`full` as CSV (spreadsheet-safe: no cell can run as a formula); return the path."""
        from ..store.export import spreadsheet_safe

        path = Path(path)
        spreadsheet_safe(self.full()).to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = self.problems["severity"].value_counts()
        head = (f"{self.file} ({self.table}): {self.rows_read} rows read, "
                f"{counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
                f"{counts.get('duplicate', 0)} duplicate rows, {counts.get('skipped', 0)} rows skipped, "
                f"{len(self.normalisations)} values normalised")
        if self.problems.empty:
            return head
        lines = [head]
        for p in self.problems.head(50).itertuples():
            row = "-" if pd.isna(p.row) else str(int(p.row))
            quiet = p.value == "" and (pd.isna(p.row) or p.row == 1 or p.severity == "skipped")
            value = "" if quiet else f"{shown(p.value)}: "
            lines.append(f"  {p.severity:9} row {row:>6}  {p.column if isinstance(p.column, str) else '-'}: "
                         f"{value}{p.rule}; fix: {p.fix}")
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more: write them all with --report FILE "
                         "(in Python: report.to_csv(path))")
        return "\n".join(lines)


@dataclass
class ReadResult:
    """Normalised data of every record read (with ``source_row``), the report, and the raw text.

    ``raw`` holds the cells exactly as read (column names standardised), row for row with
    ``data``, so rejected rows can be written out unchanged for correction. Skipped rows (blank,
    a trailing summary row) are in neither: the report lists them.
    """

    data: pd.DataFrame
    report: ValidationReport
    raw: pd.DataFrame

    def valid(self) -> pd.DataFrame:
        """Rows without errors and not duplicates of an earlier row: what an import may store."""
        skip = self.report.rows_with("error") | self.report.rows_with("duplicate")
        return self.data[~self.data[SOURCE_ROW].isin(skip)]

    def invalid(self) -> pd.DataFrame:
        """Rows with at least one error."""
        return self.data[self.data[SOURCE_ROW].isin(self.report.rows_with("error"))]

    def raise_for_errors(self) -> None:
        """Raise :class:`DataValidationError` carrying the report if any error was found."""
        if not self.report.ok:
            raise DataValidationError(self.report)


def _as_text(values) -> pd.Series:
    series = pd.Series(values, dtype="object").reset_index(drop=True)
    return series.map(lambda v: "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v))


class Collector:
    """Gathers problems and normalisations as column arrays (fast for millions of rows)."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[pd.DataFrame] = []
        self.changes: list[pd.DataFrame] = []

    def problem(self, severity, rows, column, values, rule, fix) -> None:
        rows = pd.Series(rows, dtype="Int64").reset_index(drop=True)
        if rows.empty:
            return
        rule, fix = (x.reset_index(drop=True) if isinstance(x, pd.Series) else x for x in (rule, fix))
        self.problems.append(pd.DataFrame({
            "severity": severity, "file": self.file, "row": rows, "column": column,
            "value": _as_text(values), "rule": rule, "fix": fix,
        }))

    def normalised(self, rows, column, original, new, rule) -> None:
        if len(rows) == 0:
            return
        self.changes.append(pd.DataFrame({
            "file": self.file, "row": pd.Series(rows, dtype="Int64").reset_index(drop=True),
            "column": column, "original": _as_text(original), "normalised": _as_text(new), "rule": rule,
        }))

    def rows_with_error(self, column: str) -> set[int]:
        """Rows with an error in ``column`` so far."""
        return {int(r) for p in self.problems
                for r in p.loc[(p["severity"] == "error") & (p["column"] == column), "row"].dropna()}

    def has_file_error(self) -> bool:
        """Whether a whole-file error (no row, or the header row) was recorded."""
        return any(((p["severity"] == "error") & (p["row"].isna() | (p["row"] == 1))).any() for p in self.problems)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        problems = (pd.concat(self.problems, ignore_index=True) if self.problems
                    else pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "str") for c in PROBLEM_COLUMNS}))
        changes = (pd.concat(self.changes, ignore_index=True) if self.changes
                   else pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "str") for c in NORMALISATION_COLUMNS}))
        order = {"error": 0, "warning": 1, "duplicate": 2, "skipped": 3}
        problems = problems.sort_values(["row", "severity"], key=lambda s: s.map(order) if s.name == "severity" else s,
                                        na_position="first", kind="stable").reset_index(drop=True)
        # One problem per cell: a value that could not be parsed is not also reported as missing.
        cell = problems["row"].notna() & problems["column"].notna()
        dup = cell & problems.duplicated(["row", "column", "severity"], keep="first")
        changes = changes.sort_values("row", na_position="first", kind="stable").reset_index(drop=True)
        return problems[~dup].reset_index(drop=True), changes
