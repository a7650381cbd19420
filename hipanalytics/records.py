"""Patient records: table definitions, readers for clinic files, normalisation and validation.

Clinic files (CSV in any common encoding and delimiter, Excel, Parquet) are read as text, so no
value is changed behind the user's back. Values are then normalised only where the meaning is
unambiguous ("Lt" -> ``left``, "32,5°" -> 32.5), and every normalisation is listed in the report.
Everything else that is wrong is collected at once, with the file, the row as a spreadsheet numbers
it (the header is row 1), the column, the value, the rule and how to fix it.

Examples
--------
>>> import io
>>> csv = "patient_id,measured_on,side,joint,motion,position,mode,instrument,degrees,trial\\n" \\
...       "P001,2026-01-05,Lt,hip,internal_rotation,seated_90,active,inclinometer,32°,1\\n"
>>> result = read_records(io.StringIO(csv), "measurements", today=date(2026, 2, 1))
>>> result.data[["side", "degrees"]].values.tolist()
[['left', 32.0]]
>>> result.report.normalisations[["row", "column", "original", "normalised"]].values.tolist()
[[2, 'side', 'Lt', 'left'], [2, 'degrees', '32°', '32']]
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from .errors import DataValidationError, HipAnalyticsError

__all__ = [
    "TABLES",
    "ColumnSpec",
    "ReadResult",
    "ValidationReport",
    "read_records",
    "schema",
    "table_spec",
]

TABLES = ("patients", "programs", "measurements", "sessions")
SOURCE_ROW = "source_row"
"""Column added to read data: the row number as the spreadsheet shows it (header = row 1)."""

DateOrder = Literal["day-first", "month-first"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table: its kind, whether it may be empty, and its allowed values."""

    name: str
    kind: Literal["id", "text", "date", "int", "float", "enum", "year"]
    description: str
    example: str
    required: bool = True
    nullable: bool = False
    unit: str = ""
    allowed: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    warn_minimum: float | None = None
    warn_maximum: float | None = None
    source: str = ""


# Plausibility limits for hip IR (DESIGN.md section 10): outside -20..90 degrees is an error
# (a slip or a different measurement); outside 0..60 is a warning. Normal adult means are about
# 29-50 degrees, SD 5-11 (compiled in J Athl Train 2018;53(6):560, Table 1).
HIP_IR_ERROR_RANGE = (-20.0, 90.0)
HIP_IR_WARNING_RANGE = (0.0, 60.0)

_SIDE_ALIASES = {"l": "left", "lt": "left", "left": "left", "links": "left", "r": "right",
                 "rt": "right", "right": "right", "b": "both", "both": "both", "bilateral": "both",
                 "bil": "both"}
_POSITION_ALIASES = {
    "seated_90": "seated_90", "seated": "seated_90", "sitting": "seated_90", "seated 90": "seated_90",
    "seated 90/90": "seated_90", "seated (90/90)": "seated_90", "seated hip 90": "seated_90",
    "supine_90": "supine_90", "supine 90": "supine_90", "supine 90/90": "supine_90",
    "supine hip 90": "supine_90", "supine (90/90)": "supine_90",
    "prone": "prone", "prone_0": "prone",
}
_INSTRUMENT_ALIASES = {"goniometer": "goniometer", "gonio": "goniometer", "inclinometer": "inclinometer",
                       "digital inclinometer": "inclinometer", "incl": "inclinometer",
                       "smartphone": "smartphone", "phone": "smartphone", "smartphone app": "smartphone"}
_MODE_ALIASES = {"active": "active", "arom": "active", "passive": "passive", "prom": "passive"}
_MOTION_ALIASES = {"internal_rotation": "internal_rotation", "ir": "internal_rotation",
                   "internal rotation": "internal_rotation", "external_rotation": "external_rotation",
                   "er": "external_rotation", "external rotation": "external_rotation",
                   "flexion": "flexion", "extension": "extension", "abduction": "abduction",
                   "adduction": "adduction"}
_COMPLETION_ALIASES = {"full": "full", "complete": "full", "completed": "full", "partial": "partial",
                       "skipped": "skipped", "missed": "skipped", "not done": "skipped"}
_SEX_ALIASES = {"f": "female", "female": "female", "m": "male", "male": "male", "x": "other",
                "other": "other", "unknown": "unknown"}


def _enum(name, description, example, aliases, **kw) -> ColumnSpec:
    allowed = tuple(dict.fromkeys(aliases.values()))
    return ColumnSpec(name, "enum", description, example, allowed=allowed, aliases=aliases, **kw)


_PATIENT_ID = ColumnSpec("patient_id", "id", "the clinic's patient id (not a name)", "P001")
_SPECS: dict[str, tuple[ColumnSpec, ...]] = {
    "patients": (
        _PATIENT_ID,
        ColumnSpec("birth_year", "year", "year of birth", "1971", minimum=1900),
        _enum("sex", "sex as recorded", "female", _SEX_ALIASES, required=False, nullable=True),
        _enum("involved_side", "the painful hip(s)", "right", _SIDE_ALIASES),
        ColumnSpec("site", "text", "clinic site", "north", required=False, nullable=True),
        ColumnSpec("cohort", "text", "research cohort or arm", "trial-A", required=False, nullable=True),
        ColumnSpec("display_name", "text", "name shown on reports (sensitive)", "Jo Bloggs",
                   required=False, nullable=True),
    ),
    "programs": (
        ColumnSpec("program_id", "id", "program id", "P001-20260105-daily"),
        _PATIENT_ID,
        ColumnSpec("protocol_id", "id", "protocol id", "hip-ir-breakouts"),
        ColumnSpec("protocol_version", "text", "protocol version", "1.0.0"),
        ColumnSpec("schedule", "text", "schedule id or custom weekdays", "three-per-week"),
        ColumnSpec("start_date", "date", "first day", "2026-01-05"),
        ColumnSpec("end_date", "date", "last day (inclusive)", "2026-02-15"),
        ColumnSpec("breakout_slot", "text", "slot carrying the breakouts; empty: the schedule's own",
                   "evening", required=False, nullable=True),
        ColumnSpec("choices", "text", "exercise chosen for a one-of item, as choice=exercise (several: separate with ;)",
                   "ninety-ninety=ninety-ninety-ir-pails", required=False, nullable=True),
        ColumnSpec("dose_overrides", "text", "changed doses as JSON, exercise -> sets/reps/hold_s",
                   '{"ninety-ninety-ir-stretch": {"sets": "4"}}', required=False, nullable=True),
        ColumnSpec("omit", "text", "breakout exercises left out, comma-separated", "quadruped-band-ir",
                   required=False, nullable=True),
        ColumnSpec("reason", "text", "why prescribed or changed", "pain after daily breakouts",
                   required=False, nullable=True),
    ),
    "measurements": (
        ColumnSpec("measurement_id", "id", "row id; derived from the other columns when absent",
                   "M0001", required=False, nullable=True),
        _PATIENT_ID,
        ColumnSpec("measured_on", "date", "date of the visit", "2026-01-05"),
        _enum("side", "side measured", "left", {k: v for k, v in _SIDE_ALIASES.items() if v != "both"}),
        ColumnSpec("joint", "text", "joint measured", "hip", required=False, nullable=True),
        _enum("motion", "motion measured", "internal_rotation", _MOTION_ALIASES),
        _enum("position", "test position (never mixed in one series)", "seated_90", _POSITION_ALIASES,
              source="Simoneau 1998; Gradoz 2018; Kouyoumdjian 2012: IR differs by 3-13 degrees by position"),
        _enum("mode", "active or passive range", "active", _MODE_ALIASES),
        _enum("instrument", "measuring instrument (never mixed in one series)", "inclinometer",
              _INSTRUMENT_ALIASES, source="Roach 2013: inclinometer reads ~4.5 degrees more IR than goniometer"),
        ColumnSpec("degrees", "float", "range of motion", "32.5", unit="degrees",
                   minimum=-180, maximum=180),
        ColumnSpec("trial", "int", "trial number within the visit", "1", minimum=1, maximum=20,
                   required=False),
        ColumnSpec("assessor", "text", "who measured", "AB", required=False, nullable=True),
        ColumnSpec("notes", "text", "free text (dropped from research exports)", "", required=False,
                   nullable=True),
    ),
    "sessions": (
        ColumnSpec("session_id", "id", "row id; derived from the other columns when absent", "S0001",
                   required=False, nullable=True),
        _PATIENT_ID,
        ColumnSpec("performed_on", "date", "date of the session", "2026-01-05"),
        ColumnSpec("performed_at", "text", "time of day, HH:MM", "08:15", required=False, nullable=True),
        ColumnSpec("session", "id", "session template id (breakouts, sequence, custom)", "breakouts"),
        _enum("completion", "how much was done", "full", _COMPLETION_ALIASES),
        ColumnSpec("rounds_done", "int", "circuit rounds done", "3", minimum=0, maximum=20,
                   required=False, nullable=True),
        ColumnSpec("pain_before", "int", "NPRS pain before, 0-10", "2", minimum=0, maximum=10,
                   required=False, nullable=True, source="NPRS 0-10 (Farrar et al., Pain 2001)"),
        ColumnSpec("pain_after", "int", "NPRS pain after, 0-10", "3", minimum=0, maximum=10,
                   required=False, nullable=True, source="NPRS 0-10 (Farrar et al., Pain 2001)"),
        ColumnSpec("notes", "text", "free text (dropped from research exports)", "", required=False,
                   nullable=True),
    ),
}


def table_spec(table: str) -> tuple[ColumnSpec, ...]:
    """The column definitions of a table (``patients``, ``programs``, ``measurements``, ``sessions``)."""
    if table not in _SPECS:
        raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
    return _SPECS[table]


_DTYPES = {"id": "str", "text": "str", "enum": "str", "date": "datetime64[s]", "int": "Int64",
           "year": "Int64", "float": "float64"}


def schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema that normalised data of ``table`` must satisfy.

    Checks types, empty cells, allowed values and hard limits; hip-IR plausibility and
    cross-row rules are applied by :func:`read_records`.
    """
    columns = {}
    for spec in table_spec(table):
        checks = []
        if spec.allowed:
            checks.append(pa.Check.isin(spec.allowed, error=f"one of {', '.join(spec.allowed)}"))
        if spec.minimum is not None:
            checks.append(pa.Check.ge(spec.minimum, error=f"at least {spec.minimum:g}"))
        if spec.maximum is not None:
            checks.append(pa.Check.le(spec.maximum, error=f"at most {spec.maximum:g}"))
        columns[spec.name] = pa.Column(_DTYPES[spec.kind], checks=checks, nullable=spec.nullable,
                                       required=spec.required)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------

PROBLEM_COLUMNS = ["severity", "file", "row", "column", "value", "rule", "fix"]
NORMALISATION_COLUMNS = ["file", "row", "column", "original", "normalised", "rule"]


@dataclass
class ValidationReport:
    """Everything found while reading one file.

    Attributes
    ----------
    file, table : str
    rows_read : int
        Data rows in the file (header excluded).
    problems : DataFrame
        ``severity`` (error | warning | duplicate), ``file``, ``row`` (spreadsheet numbering;
        missing for whole-file problems), ``column``, ``value``, ``rule``, ``fix``.
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
    def ok(self) -> bool:
        """True when there is no error."""
        return self.errors.empty

    def rows_with(self, severity: str) -> set[int]:
        """Spreadsheet row numbers with at least one problem of this severity."""
        rows = self.problems.loc[self.problems["severity"] == severity, "row"].dropna()
        return {int(r) for r in rows}

    def to_csv(self, path: str | Path) -> Path:
        """Write the problems as CSV (one row per problem) and return the path."""
        path = Path(path)
        self.problems.to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = self.problems["severity"].value_counts()
        head = (f"{self.file} ({self.table}): {self.rows_read} rows read, "
                f"{counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
                f"{counts.get('duplicate', 0)} duplicate rows, {len(self.normalisations)} values normalised")
        if self.problems.empty:
            return head
        shown = self.problems.head(50).fillna({"row": -1}).astype({"row": "int64"})
        lines = [head]
        for p in shown.itertuples():
            row = "-" if p.row < 0 else str(p.row)
            lines.append(f"  {p.severity:9} row {row:>6}  {p.column or '-'}: {p.value!r}: {p.rule}; fix: {p.fix}")
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more (export the full list with to_csv)")
        return "\n".join(lines)


@dataclass
class ReadResult:
    """Normalised data of every row read (with ``source_row``), the report, and the raw text.

    ``raw`` holds the cells exactly as read (column names standardised), row for row with
    ``data``, so rejected rows can be written out unchanged for correction.
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


class _Collector:
    """Gathers problems and normalisations as column arrays (fast for millions of rows)."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[pd.DataFrame] = []
        self.changes: list[pd.DataFrame] = []

    def problem(self, severity, rows, column, values, rule, fix) -> None:
        rows = pd.Series(rows, dtype="Int64").reset_index(drop=True)
        if rows.empty:
            return
        values = pd.Series(values, dtype="object").reset_index(drop=True)
        rule, fix = (x.reset_index(drop=True) if isinstance(x, pd.Series) else x for x in (rule, fix))
        self.problems.append(pd.DataFrame({
            "severity": severity, "file": self.file, "row": rows, "column": column,
            "value": values.astype("str"), "rule": rule, "fix": fix,
        }))

    def normalised(self, rows, column, original, new, rule) -> None:
        if len(rows) == 0:
            return
        self.changes.append(pd.DataFrame({
            "file": self.file, "row": pd.Series(rows, dtype="Int64").reset_index(drop=True),
            "column": column, "original": pd.Series(original, dtype="str").reset_index(drop=True),
            "normalised": pd.Series(new, dtype="str").reset_index(drop=True), "rule": rule,
        }))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        problems = (pd.concat(self.problems, ignore_index=True) if self.problems
                    else pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "str") for c in PROBLEM_COLUMNS}))
        changes = (pd.concat(self.changes, ignore_index=True) if self.changes
                   else pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "str") for c in NORMALISATION_COLUMNS}))
        order = {"error": 0, "warning": 1, "duplicate": 2}
        problems = problems.sort_values(["row", "severity"], key=lambda s: s.map(order) if s.name == "severity" else s,
                                        na_position="first", kind="stable").reset_index(drop=True)
        # One problem per cell: a value that could not be parsed is not also reported as missing.
        cell = problems["row"].notna() & problems["column"].notna()
        dup = cell & problems.duplicated(["row", "column", "severity"], keep="first")
        changes = changes.sort_values("row", na_position="first", kind="stable").reset_index(drop=True)
        return problems[~dup].reset_index(drop=True), changes


# ----------------------------------------------------------------------------------------------
# Reading files as text
# ----------------------------------------------------------------------------------------------


def _label(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<data>")


def _cells_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Typed cells (Excel, Parquet) as the text a user would see; empty cells become ''."""
    out = {}
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            text = col.dt.strftime("%Y-%m-%d").where(col.dt.normalize() == col, col.astype("str"))
        else:
            def cell(v):
                if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
                    return ""
                if isinstance(v, pd.Timestamp) or hasattr(v, "isoformat"):
                    ts = pd.Timestamp(v)
                    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
                if isinstance(v, float) and v.is_integer():
                    return str(int(v))
                return str(v)
            text = col.map(cell) if col.dtype == object else col.astype("str").where(col.notna(), "")
        out[str(name)] = text.astype("str")
    return pd.DataFrame(out)


def _read_csv_text(raw: bytes, file: str, collect: _Collector) -> pd.DataFrame:
    if not raw.strip():
        collect.problem("error", [None], None, [""], "the file is empty",
                        "export the table again with a header row and data rows")
        return pd.DataFrame()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if encoding != "utf-8-sig":
        collect.normalised([None], None, ["(file bytes)"], [f"decoded as {encoding}"],
                           f"the file is not UTF-8; read it as {encoding} (Windows/Latin-1 text)")
    sample = text[:20000]
    try:
        delimiter = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    if delimiter != ",":
        name = {";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
        collect.normalised([None], None, ["(delimiter)"], [name], f"columns are separated by {name}s")
    data = text.encode("utf-8") if encoding != "utf-8-sig" else raw.removeprefix(b"\xef\xbb\xbf")
    try:  # the multithreaded Arrow parser keeps every cell as text, "" and "NA" included
        return pd.read_csv(io.BytesIO(data), sep=delimiter, dtype="str", keep_default_na=False, engine="pyarrow")
    except Exception:  # noqa: BLE001 - e.g. a line break inside a quoted cell: the C parser handles it
        return pd.read_csv(io.StringIO(text), sep=delimiter, dtype="str", keep_default_na=False,
                           na_filter=False, skip_blank_lines=True, engine="c")


def _read_raw(source: Any, sheet: str | int | None, collect: _Collector) -> pd.DataFrame:
    """The file as a table of text. The format follows the file name's suffix (a file-like
    object may carry one in ``.name``); anything else is read as delimited text."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        data: bytes | str = path.read_bytes()
    else:
        data = source.read()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    suffix = Path(_label(source)).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(io.BytesIO(raw), sheet, collect)
    if suffix == ".parquet":
        return _cells_as_text(pd.read_parquet(io.BytesIO(raw)))
    return _read_csv_text(raw, _label(source), collect)


def _read_excel(content: io.BytesIO, sheet: str | int | None, collect: _Collector) -> pd.DataFrame:
    sheets = pd.read_excel(content, sheet_name=None, dtype=object)
    names = list(sheets)
    if sheet is not None:
        if sheet in sheets:
            return _cells_as_text(sheets[sheet])
        if isinstance(sheet, int) and 0 <= sheet < len(names):
            return _cells_as_text(sheets[names[sheet]])
        collect.problem("error", [None], None, [str(sheet)], f"the workbook has no sheet {sheet!r}",
                        f"name one of its sheets: {', '.join(repr(n) for n in names)}")
        return pd.DataFrame()
    first = sheets[names[0]]
    if first.dropna(how="all").empty and first.columns.size == 0:
        filled = [n for n in names if not sheets[n].dropna(how="all").empty]
        hint = f"; the data seems to be on sheet {filled[0]!r}: pass --sheet {filled[0]!r}" if filled else ""
        collect.problem("error", [None], None, [names[0]], f"the first sheet {names[0]!r} is empty",
                        "name the sheet that holds the table" + hint)
        return pd.DataFrame()
    return _cells_as_text(first)


# ----------------------------------------------------------------------------------------------
# Normalising columns (vectorised)
# ----------------------------------------------------------------------------------------------

_DEGREES = re.compile(r"^([+-]?\d+(?:[.,]\d+)?)\s*(?:°|º|deg|degs|degree|degrees)?$", re.IGNORECASE)
_INTEGER = re.compile(r"^[+-]?\d+(?:\.0+)?$")
_DATE_FORMATS = [  # (pattern, pandas format, ambiguous day/month order?)
    (re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), "%Y-%m-%d", False),
    (re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$"), "%Y/%m/%d", False),
    (re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$"), None, True),
    (re.compile(r"^\d{1,2} [A-Za-z]{3,9} \d{4}$"), "%d %B %Y", False),
    (re.compile(r"^[A-Za-z]{3,9} \d{1,2},? \d{4}$"), "%B %d %Y", False),
]


def _record_changes(collect, rows, column, before, after, changed, rule):
    if changed.any():
        collect.normalised(rows[changed], column, before[changed], after[changed], rule)


def _enum_fix(spec: ColumnSpec, value: str) -> str:
    if spec.name == "position" and value.strip().lower() == "supine":
        return ("say which supine test: supine_90 (hip and knee at 90 degrees) is supported; "
                "IR differs by position, so it cannot be assumed")
    hint = difflib.get_close_matches(value.lower(), list(spec.aliases), n=1, cutoff=0.5)
    guess = f" (did you mean {spec.aliases[hint[0]]!r}?)" if hint else ""
    return f"use one of {', '.join(spec.allowed)}{guess}"


def _normalise_enum(spec, text, rows, collect):
    key = text.str.lower().str.replace(r"[\s_]+", " ", regex=True).str.strip()
    aliases = {re.sub(r"[\s_]+", " ", k): v for k, v in spec.aliases.items()}
    mapped = key.map(aliases)
    present = text != ""
    unknown = present & mapped.isna()
    if unknown.any():
        values = text[unknown]
        collect.problem("error", rows[unknown], spec.name, values,
                        values.map(lambda v: f"unknown {spec.name.replace('_', ' ')} {v!r}"),
                        values.map(lambda v: _enum_fix(spec, v)))
    changed = present & mapped.notna() & (mapped != text)
    _record_changes(collect, rows, spec.name, text, mapped, changed, f"{spec.name} spelling standardised")
    return mapped.astype("str")


def _normalise_float(spec, text, rows, collect):
    match = text.str.extract(_DEGREES)[0]
    present = text != ""
    bad = present & match.isna()
    collect.problem("error", rows[bad], spec.name, text[bad], f"not a number of {spec.unit or 'units'}",
                    "write a plain number such as 32 or 32.5")
    number = pd.to_numeric(match.str.replace(",", ".", regex=False), errors="coerce")
    shown = number.map(lambda v: f"{v:g}", na_action="ignore")
    parsed = present & ~bad
    comma = parsed & text.str.contains(",", regex=False)
    unit = parsed & text.str.contains(r"[^\d.,+\-\s]", regex=True)  # "32.0" is just a number: not reported
    _record_changes(collect, rows, spec.name, text, shown, comma, "decimal comma read as a decimal point")
    _record_changes(collect, rows, spec.name, text, shown, unit, f"unit text removed; the value is in {spec.unit}")
    return number.astype("float64")


def _normalise_int(spec, text, rows, collect):
    present = text != ""
    ok = text.str.match(_INTEGER)
    bad = present & ~ok
    collect.problem("error", rows[bad], spec.name, text[bad], "not a whole number",
                    f"write a whole number{' from %g to %g' % (spec.minimum, spec.maximum) if spec.maximum else ''}")
    number = pd.to_numeric(text.where(ok & present), errors="coerce").astype("Int64")
    changed = present & ok & (number.astype("str") != text.str.lstrip("+"))
    _record_changes(collect, rows, spec.name, text, number.astype("str"), changed, "written as a whole number")
    return number


def _normalise_date(spec, text, rows, collect, order: DateOrder | None):
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    present = text != ""
    handled = ~present
    reported = pd.Series(False, index=text.index)
    for pattern, fmt, ambiguous in _DATE_FORMATS:
        mask = present & ~handled & text.str.match(pattern)
        if not mask.any():
            continue
        handled |= mask
        if not ambiguous:
            cleaned = text[mask].str.replace(",", "", regex=False)
            parsed = pd.to_datetime(cleaned, format=fmt, errors="coerce")
            if fmt.startswith("%d %B") or fmt.startswith("%B"):
                alt = pd.to_datetime(cleaned, format=fmt.replace("%B", "%b"), errors="coerce")
                parsed = parsed.fillna(alt)
            result[mask] = parsed
            continue
        parts = text[mask].str.split(r"[/.-]", expand=True, regex=True).astype("int64")
        first, second = parts[0], parts[1]
        must_day_first = first > 12
        must_month_first = second > 12
        unclear = ~must_day_first & ~must_month_first & (first != second)
        if order is None:
            if unclear.any():
                evidence = text[mask][must_day_first | must_month_first]
                hint = ""
                if not evidence.empty:
                    kind = "day-first" if must_day_first.any() else "month-first"
                    hint = f"; other rows of this file are {kind} (e.g. {evidence.iloc[0]!r})"
                idx = unclear[unclear].index
                reported[idx] = True
                collect.problem("error", rows[idx], spec.name, text[idx],
                                "ambiguous date: day and month could be either way round",
                                "declare the order (--dates day-first or --dates month-first) or use "
                                "YYYY-MM-DD" + hint)
            day_first = must_day_first | (first == second)
        else:
            day_first = pd.Series(order == "day-first", index=first.index) & ~must_month_first
            day_first |= must_day_first
        day = first.where(day_first, second)
        month = second.where(day_first, first)
        keep = ~unclear if order is None else pd.Series(True, index=first.index)
        parsed = pd.to_datetime(
            pd.DataFrame({"year": parts[2], "month": month, "day": day})[keep], errors="coerce")
        result[parsed.index] = parsed
    bad = present & result.isna() & ~reported
    collect.problem("error", rows[bad], spec.name, text[bad], "not a date",
                    "write dates as YYYY-MM-DD (e.g. 2026-01-05)")
    iso = result.dt.strftime("%Y-%m-%d")
    changed = present & result.notna() & (iso != text)
    _record_changes(collect, rows, spec.name, text, iso, changed, "date written as YYYY-MM-DD")
    return result.astype("datetime64[s]")



# ----------------------------------------------------------------------------------------------
# read_records
# ----------------------------------------------------------------------------------------------


def read_records(
    source: str | Path | io.IOBase,
    table: str,
    *,
    sheet: str | int | None = None,
    dates: DateOrder | None = None,
    today: date | None = None,
    patients: pd.DataFrame | None = None,
) -> ReadResult:
    """Read a clinic file into normalised, validated rows of ``table``.

    Parameters
    ----------
    source : str, Path or file-like
        ``.csv`` / ``.txt`` / ``.tsv`` (any of UTF-8, UTF-8 with BOM, Windows-1252, Latin-1;
        comma, semicolon, tab or pipe separated), ``.xlsx`` or ``.parquet``; a file-like object
        is read as CSV.
    table : str
        ``patients``, ``programs``, ``measurements`` or ``sessions``.
    sheet : str or int, optional
        Excel sheet holding the table (default: the first).
    dates : {"day-first", "month-first"}, optional
        How to read dates such as 03/04/2026; without it such dates are errors (ISO dates and
        dates whose day is above 12 are never ambiguous).
    today : date, optional
        Reference for "date in the future" (default: today).
    patients : DataFrame, optional
        Known patients (``patient_id``, ``birth_year``) for the unknown-patient and
        measured-before-birth checks.

    Returns
    -------
    ReadResult
        ``data``: every row read, normalised, with ``source_row``; ``report``: problems and
        normalisations. Nothing is dropped: rows with errors stay in ``data`` and are listed.
    """
    spec = table_spec(table)
    file = _label(source)
    collect = _Collector(file)
    raw = _read_raw(source, sheet, collect)
    today = today or date.today()
    columns = {c.name: c for c in spec}

    renamed = {c: re.sub(r"\s+", "_", str(c).strip().lower()) for c in raw.columns}
    for before, after in renamed.items():
        if before != after:
            collect.normalised([1], after, [before], [after], "column name standardised")
    raw = raw.rename(columns=renamed)
    n = len(raw)
    rows = pd.Series(np.arange(2, n + 2), index=raw.index, dtype="int64")
    data = pd.DataFrame({SOURCE_ROW: rows})

    if SOURCE_ROW in raw.columns:  # the name hipanalytics gives the spreadsheet row number
        collect.problem("error", [1], SOURCE_ROW, [SOURCE_ROW], f"column name {SOURCE_ROW!r} is reserved",
                        "rename or remove that column; hipanalytics numbers the rows itself")
        raw = raw.drop(columns=SOURCE_ROW)
    if raw.columns.size:
        for name in raw.columns:
            if name not in columns:
                collect.problem("warning", [1], name, [name], f"column {name!r} is not part of the {table} table",
                                f"it will not be imported; rename it to one of {', '.join(columns)} or remove it")
        missing = [c.name for c in spec if c.required and c.name not in raw.columns]
        for name in missing:
            collect.problem("error", [1], name, [""], f"missing required column {name!r}",
                            f"add a column {name!r} ({columns[name].description}, e.g. {columns[name].example})")
        if n == 0 and not missing:
            collect.problem("warning", [None], None, [""], "the file has a header but no data rows",
                            "check that the right file or sheet was exported")
        if not missing:
            coded = _normalise_all(spec, raw, rows, data, collect, dates)
            _check_rules(table, spec, data, rows, collect, today, patients, coded)
    problems, changes = collect.frames()
    report = ValidationReport(file, table, n, problems, changes)
    raw.insert(0, SOURCE_ROW, rows)
    return ReadResult(data.reset_index(drop=True), report, raw.reset_index(drop=True))


def _codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """Factorize a column: integer codes per row (-1 for missing) and the distinct values.

    Arrow-backed text goes through Arrow's dictionary encoding, several times faster than the
    generic path on a million cells.
    """
    array = getattr(values.array, "_pa_array", None)
    if array is not None and pyarrow.types.is_string(array.type) or (
            array is not None and pyarrow.types.is_large_string(array.type)):
        encoded = pc.dictionary_encode(array).combine_chunks()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64", copy=False)
        return codes, encoded.dictionary.to_pylist()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype("int64", copy=False), list(uniques)


class _PerUnique:
    """Lets a normaliser work on a column's distinct values and reports per row.

    Normalisers receive the distinct texts with their positions as "rows"; this adaptor turns
    every problem or change they report back into the spreadsheet rows holding that text.
    A column of a million cells usually has a few hundred distinct values, so the work is small.
    """

    def __init__(self, collect: _Collector, codes: np.ndarray, rows: pd.Series, original: pd.Series):
        self.collect, self.codes, self._original = collect, codes, original
        self.rows = rows.to_numpy()

    def _expand(self, unique_positions, *per_unique):
        positions = np.asarray(pd.Series(unique_positions), dtype="int64")
        lookup = np.full(int(self.codes.max()) + 1 if len(self.codes) else 0, -1)
        lookup[positions] = np.arange(len(positions))
        where = lookup[self.codes]
        hit = where >= 0
        taken = [np.asarray(v, dtype=object)[where[hit]] if isinstance(v, (pd.Series, np.ndarray, list)) else v
                 for v in per_unique]
        return hit, taken

    def problem(self, severity, unique_positions, column, _values, rule, fix) -> None:
        if len(unique_positions) == 0:
            return
        hit, (rule, fix) = self._expand(unique_positions, rule, fix)
        self.collect.problem(severity, self.rows[hit], column, self._original[hit].to_numpy(dtype=object), rule, fix)

    def normalised(self, unique_positions, column, _original, new, rule) -> None:
        if len(unique_positions) == 0:
            return
        hit, (new, rule) = self._expand(unique_positions, new, rule)
        self.collect.normalised(self.rows[hit], column, self._original[hit].to_numpy(dtype=object), new, rule)


def _normalise_all(spec, raw, rows, data, collect, dates) -> dict[str, tuple[np.ndarray, list]]:
    """Normalise every column into ``data``; return each column's codes and distinct normalised values."""
    coded = {}
    for col in spec:
        if col.name not in raw.columns:
            data[col.name] = pd.Series(pd.NA, index=raw.index, dtype=_DTYPES[col.kind])
            continue
        original = raw[col.name].astype("str")
        codes, uniques = _codes(original)
        distinct = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
        positions = pd.Series(np.arange(len(distinct)), dtype="int64")
        report = _PerUnique(collect, codes, rows, original)
        text = distinct.str.strip()
        trimmed = text != distinct
        if trimmed.any():
            report.normalised(positions[trimmed], col.name, distinct[trimmed], text[trimmed], "spaces trimmed")
        if col.kind == "enum":
            value = _normalise_enum(col, text, positions, report)
        elif col.kind == "float":
            value = _normalise_float(col, text, positions, report)
        elif col.kind in ("int", "year"):
            value = _normalise_int(col, text, positions, report)
        elif col.kind == "date":
            value = _normalise_date(col, text, positions, report, dates)
        else:
            value = text
        value = value.where(text != "").astype(_DTYPES[col.kind])
        data[col.name] = value.take(codes).set_axis(raw.index)
        merged, distinct_values = pd.factorize(value, use_na_sentinel=True)  # " P1" and "P1" are one value
        coded[col.name] = (merged[codes].astype("int64"), list(distinct_values))
    return coded


def _check_rules(table, spec, data, rows, collect, today, patients, coded=None):
    repeated = _derive_ids(table, data, rows, collect, coded or {})
    # Hip IR plausibility first: for an IR value it is a more useful message than the hard limit.
    if "degrees" in data and "motion" in data:
        ir = data["motion"] == "internal_rotation"
        degrees = data["degrees"]
        lo, hi = HIP_IR_ERROR_RANGE
        impossible = ir & ((degrees < lo) | (degrees > hi))
        shown = degrees.map(lambda v: f"{v:g}", na_action="ignore")
        collect.problem("error", rows[impossible], "degrees", shown[impossible],
                        f"hip IR outside {lo:g}..{hi:g} degrees is not plausible",
                        "check for a typing slip or a different motion/side")
        wlo, whi = HIP_IR_WARNING_RANGE
        unusual = ir & ~impossible & ((degrees < wlo) | (degrees > whi))
        collect.problem("warning", rows[unusual], "degrees", shown[unusual],
                        f"hip IR outside the usual {wlo:g}..{whi:g} degrees",
                        "confirm the value; it is imported as written")
    try:
        schema(table).validate(data, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        by_name = {c.name: c for c in spec}
        for (column, check), group in cases.groupby(["column", "check"], sort=False):
            col = by_name[column]
            if check == "not_nullable":
                rule, fix = "empty cell in a required column", f"fill in {col.description} (e.g. {col.example})"
            else:
                rule, fix = f"must be {check}", f"correct the value ({col.description}, e.g. {col.example})"
            values = group["failure_case"].map(lambda v: f"{v:g}" if isinstance(v, float) else v)
            collect.problem("error", rows.iloc[group["index"].astype("int64").to_numpy()].to_numpy(), column,
                            values, rule, fix)

    for col in spec:
        if col.kind == "date" and table != "programs":  # a program may be prescribed ahead; visits cannot be
            future = data[col.name] > pd.Timestamp(today)
            collect.problem("error", rows[future], col.name, data.loc[future, col.name].dt.strftime("%Y-%m-%d"),
                            f"date in the future (after {today})", "check the year and month")
    if table == "programs":
        reversed_ = data["start_date"] > data["end_date"]
        collect.problem("error", rows[reversed_], "end_date", data.loc[reversed_, "end_date"].dt.strftime("%Y-%m-%d"),
                        "end date before start date", "swap or correct the dates")
        _check_programs(data[~reversed_], rows[~reversed_], collect)
    if table == "patients":
        future = data["birth_year"] > today.year
        collect.problem("error", rows[future], "birth_year", data.loc[future, "birth_year"],
                        "birth year in the future", "check the year")
    if patients is not None and "patient_id" in data and table != "patients":
        known = set(patients["patient_id"].astype("str"))
        unknown = data["patient_id"].notna() & ~data["patient_id"].isin(known)
        collect.problem("error", rows[unknown], "patient_id", data.loc[unknown, "patient_id"],
                        "unknown patient", "import the patient into the patients table first, or correct the id")
        date_col = {"measurements": "measured_on", "sessions": "performed_on"}.get(table)
        if date_col and "birth_year" in patients:
            born = data["patient_id"].map(patients.set_index("patient_id")["birth_year"])
            before = data[date_col].dt.year < born
            collect.problem("error", rows[before.fillna(False)], date_col,
                            data.loc[before.fillna(False), date_col].dt.strftime("%Y-%m-%d"),
                            "date before the patient's birth year", "check the date and the patient id")
    _check_duplicates(table, data, rows, collect, repeated)


def _check_programs(data: pd.DataFrame, rows: pd.Series, collect: _Collector) -> None:
    """Each program row must make a valid program of its protocol (schedule, slot, choices, doses)."""
    from .program import program_from_record  # programs build on protocols; records do not need them otherwise

    required = ["program_id", "patient_id", "protocol_id", "protocol_version", "schedule", "start_date", "end_date"]
    complete = data[required].notna().all(axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for row, record in zip(rows[complete], data[complete].to_dict("records")):
            caught.clear()
            try:
                program_from_record(record)
            except HipAnalyticsError as exc:
                message = str(exc).removeprefix(f"program for patient {record['patient_id']!r}: ")
                collect.problem("error", [row], "program_id", [record["program_id"]],
                                f"not a valid program: {message}",
                                "correct the schedule, slot, choices, dose_overrides or omit columns")
            for w in caught:
                collect.problem("warning", [row], "schedule", [record["schedule"]], str(w.message),
                                "confirm the schedule with the prescribing clinician")


_ID_COLUMN = {"patients": "patient_id", "programs": "program_id", "measurements": "measurement_id",
              "sessions": "session_id"}


def _key_text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _key_ids(prefix: str, coded: list[tuple[np.ndarray, list]], mask: np.ndarray) -> pd.Series:
    """``prefix`` + the key values joined by ``|`` for the rows in ``mask``: readable and stable.

    Built in Arrow from each column's distinct values and codes, without a Python string per row.
    """
    parts = []
    for codes, uniques in coded:
        texts = pyarrow.array([_key_text(v) for v in uniques] + [""], type=pyarrow.string())
        picked = np.where(codes[mask] < 0, len(uniques), codes[mask])  # missing -> ""
        parts.append(pc.take(texts, pyarrow.array(picked)))
    n = int(mask.sum())
    joined = pc.binary_join_element_wise(pyarrow.array(np.full(n, prefix, dtype=object), type=pyarrow.string()),
                                         *parts, "|")
    return pd.Series(pd.arrays.ArrowStringArray(joined)).astype("str")


def _group_codes(coded: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of several code columns (codes may be -1)."""
    combined = np.zeros(len(coded[0]) if coded else 0, dtype="int64")
    for codes in coded:
        size = int(codes.max()) + 2 if len(codes) else 1
        if combined.max(initial=0) > (np.iinfo("int64").max // size) - size:  # re-number before overflow
            combined = pd.factorize(combined)[0].astype("int64")
        combined = combined * size + (codes + 1)
    return combined


def _cumcount(groups: np.ndarray) -> np.ndarray:
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.array([], dtype=bool)
    position = np.arange(len(ordered))
    first = np.maximum.accumulate(np.where(starts, position, 0)) if len(ordered) else position
    out = np.empty(len(groups), dtype="int64")
    out[order] = position - first
    return out


def _occurrence(frame: pd.DataFrame) -> pd.Series:
    """0 for the first row of each combination of values, 1 for the second, ... (file order)."""
    return pd.Series(_cumcount(_group_codes([_codes(frame[c])[0] for c in frame.columns])), index=frame.index)


_NATURAL_KEY = {
    "measurements": ["patient_id", "measured_on", "side", "joint", "motion", "position", "mode",
                     "instrument", "trial"],
    "sessions": ["patient_id", "performed_on", "performed_at", "session"],
}


def _derive_ids(table, data, rows, collect, coded_columns: dict) -> pd.Series | None:
    """Fill absent measurement/session ids from the row's natural key (stable across re-imports).

    The id is the key itself, e.g. ``M|P001|2026-01-05|left|hip|internal_rotation|seated_90|active|
    inclinometer|1``: readable, and the same in every version of hipanalytics.
    Measurements: patient, date, side, joint, motion, position, mode, instrument, trial; rows
    without a trial number are numbered 1, 2, ... in file order within their visit. Sessions:
    patient, date, time, template and the occurrence of that combination in the file, so two
    identical rows (a morning and an evening sequence) stay two sessions.

    Returns
    -------
    Series of bool or None
        When every id was derived: which rows share their id with another row (found from the
        key's integer codes, cheaper than comparing the id text); otherwise None.
    """
    if table not in _NATURAL_KEY:
        return None
    if table == "measurements":
        no_joint = data["joint"].isna()
        if no_joint.any():
            data.loc[no_joint, "joint"] = "hip"
            collect.normalised([None], "joint", [f"{int(no_joint.sum())} empty"], ["hip"],
                               "joint not given: hip assumed (the protocol's joint)")
        visit = _NATURAL_KEY["measurements"][:-1]
        no_trial = data["trial"].isna()
        if no_trial.any():
            numbered = _occurrence(data.loc[no_trial, visit]) + 1
            data.loc[no_trial, "trial"] = numbered.astype("Int64")
            collect.normalised(rows[no_trial], "trial", [""] * int(no_trial.sum()),
                               numbered.astype("str"), "trial not given: numbered in file order within the visit")
    columns = _NATURAL_KEY[table]
    changed = {"joint", "trial"} if table == "measurements" else set()  # filled in above
    coded = [coded_columns[c] if c in coded_columns and c not in changed else _codes(data[c]) for c in columns]
    groups = _group_codes([codes for codes, _ in coded])
    if table == "sessions":
        occurrence = _cumcount(groups)
        coded.append((occurrence, list(range(int(occurrence.max()) + 1 if len(occurrence) else 0))))
        repeated = pd.Series(False, index=data.index)  # the occurrence number makes every key unique
    else:
        repeated = pd.Series(pd.Series(groups).duplicated(keep=False).to_numpy(), index=data.index)
    id_col = _ID_COLUMN[table]
    missing = data[id_col].isna().to_numpy()
    prefix = "M" if table == "measurements" else "S"
    if missing.all():
        data[id_col] = _key_ids(prefix, coded, missing).set_axis(data.index)
        return repeated
    if missing.any():
        data.loc[missing, id_col] = _key_ids(prefix, coded, missing).set_axis(data.index[missing])
    return None


def _check_duplicates(table, data, rows, collect, repeated: pd.Series | None = None):
    """Report identical rows (imported once) and rows sharing an id with different content (errors).

    ``repeated`` marks rows whose id occurs more than once, when already known.
    """
    id_col = _ID_COLUMN[table]
    if repeated is None:
        codes, uniques = _codes(data[id_col])
        repeated = pd.Series((codes >= 0) & pd.Series(codes).duplicated(keep=False).to_numpy(), index=data.index)
    if not repeated.any():  # identical rows share their id: with unique ids there is nothing to find
        return
    content = [c for c in data.columns if c != SOURCE_ROW]
    exact = data.duplicated(content, keep="first") & repeated
    if exact.any():
        involved = data[data.duplicated(content, keep=False)]
        first_row = involved.groupby(content, dropna=False, sort=False)[SOURCE_ROW].transform("min")
        collect.problem("duplicate", rows[exact], None, first_row[exact[involved.index]].map(lambda r: f"same as row {r}"),
                        "duplicate of an earlier row", "nothing to do: it is imported once")
    ids = data[id_col]
    clash = ids.notna() & ~exact & data[~exact].duplicated(id_col, keep=False).reindex(data.index, fill_value=False)
    if clash.any():
        listing = data[clash].groupby(id_col)[SOURCE_ROW].agg(lambda r: ", ".join(map(str, r)))
        collect.problem("error", rows[clash], id_col, ids[clash],
                        "the same id on rows with different content: " + ids[clash].map(lambda i: f"rows {listing[i]}"),
                        "keep the correct row, or give each row its own id")


# ----------------------------------------------------------------------------------------------
# Data dictionary and templates
# ----------------------------------------------------------------------------------------------

_KIND_TEXT = {"id": "text (identifier)", "text": "text", "date": "date (YYYY-MM-DD preferred)",
              "int": "whole number", "year": "year (4 digits)", "float": "number", "enum": "one of a list"}


def data_dictionary() -> str:
    """The data dictionary (Markdown) of every table, generated from the column definitions."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `hipanalytics/records.py` (`hipanalytics.records.data_dictionary()`); a test keeps",
        "this file in step with the code. Column names are matched case-insensitively, spaces read as `_`.",
        "Row numbers in error messages are spreadsheet rows: the header is row 1.",
        "",
        "Accepted spellings are normalised and every normalisation is listed in the validation report:",
        "sides `L`/`Lt`/`left` -> `left`; `32°`, `32 deg`, `32,5` -> 32 / 32.5 degrees; spaces trimmed;",
        "dates `2026-01-05`, `2026/01/05`, `5 Jan 2026`, `January 5, 2026`, and `25/03/2026` (unambiguous).",
        "A date like `03/04/2026` is refused unless the order is declared (`--dates day-first|month-first`).",
        "",
        "Templates to fill in: `data/templates/<table>.csv` and `data/templates/hipanalytics-templates.xlsx`.",
        "",
    ]
    for table in TABLES:
        lines += [f"## {table}", "", "| column | required | empty allowed | type | unit | allowed values / range | meaning | example |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in table_spec(table):
            allowed = ", ".join(f"`{v}`" for v in c.allowed)
            if c.aliases:
                extra = sorted({k for k, v in c.aliases.items() if k != v})
                allowed += f" (also read: {', '.join(extra)})" if extra else ""
            if c.minimum is not None or c.maximum is not None:
                allowed += f"{c.minimum:g}" if c.minimum is not None else ""
                allowed += f" to {c.maximum:g}" if c.maximum is not None else " or more"
            meaning = c.description + (f". Source: {c.source}" if c.source else "")
            lines.append(f"| `{c.name}` | {'yes' if c.required else 'no'} | {'yes' if c.nullable else 'no'} | "
                         f"{_KIND_TEXT[c.kind]} | {c.unit} | {allowed} | {meaning} | {c.example} |")
        example = ",".join(c.example for c in table_spec(table))
        lines += ["", "Example row:", "", "```csv", ",".join(c.name for c in table_spec(table)), example, "```", ""]
    lines += [
        "## Plausibility rules",
        "",
        f"- Hip internal rotation outside {HIP_IR_ERROR_RANGE[0]:g}..{HIP_IR_ERROR_RANGE[1]:g} degrees is an error; "
        f"outside {HIP_IR_WARNING_RANGE[0]:g}..{HIP_IR_WARNING_RANGE[1]:g} a warning (normal adult means about 29-50, "
        "SD 5-11: J Athl Train 2018;53(6):560, Table 1).",
        "- Visit and session dates in the future are errors (a program may start or end in the future); so are",
        "  measurements or sessions dated before the patient's birth year, and records for a patient who is not",
        "  in the store.",
        "- Each program row must be a valid program of its protocol: a known schedule or weekday set, slot,",
        "  choices, dose overrides and left-out exercises (a recovery schedule with consecutive breakout days is",
        "  a warning).",
        "- Measurement position and instrument are kept exactly: IR differs by 3-13 degrees between seated, supine",
        "  and prone (Simoneau 1998; Gradoz 2018; Kouyoumdjian 2012) and by about 4.5 degrees between inclinometer",
        "  and goniometer (Roach 2013), so a plain `supine` is refused rather than guessed.",
        "- Two rows with the same id but different content are errors; identical rows are reported duplicates",
        "  and imported once. Without `measurement_id`/`session_id` the id is derived from the row's natural key.",
        "",
    ]
    return "\n".join(lines)


def write_templates(folder: str | Path) -> list[Path]:
    """Write a header-only CSV per table and one Excel workbook with a sheet per table.

    The templates hold no example row, so a filled-in template never imports made-up data;
    example rows are in the data dictionary.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    frames = {}
    for table in TABLES:
        spec = table_spec(table)
        frames[table] = pd.DataFrame(columns=[c.name for c in spec])
        path = folder / f"{table}.csv"
        frames[table].to_csv(path, index=False)
        written.append(path)
    workbook = folder / "hipanalytics-templates.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        for table, frame in frames.items():
            frame.to_excel(writer, sheet_name=table, index=False)
    written.append(workbook)
    return written
