"""Patient records: reading clinic files into normalised, validated rows, with a report of everything.

Whatever file a clinic sends, :func:`read_records` either reads it exactly, normalises it with a
report, or refuses it with a precise reason; it never changes or drops a value silently. The
steps, one module each, in the order they run:

1. :mod:`.read` - the file as a table of text, every record with its spreadsheet row number
   (encodings, delimiters, workbooks, ragged rows, binary files);
2. the header (here) - column names standardised; a name given twice, a missing column, or a
   file that is not a table is refused; a corrected quarantine file is recognised;
3. blank rows and a trailing total row (here) - skipped, and counted as such;
4. :mod:`.normalise` - each cell to its value, only where unambiguous;
5. :mod:`.rules` - plausibility, the schema, dates, programs, known patients;
6. :mod:`.ids` - ids derived where absent, duplicates and clashing ids.

:mod:`.columns` holds what every step knows about a column; :mod:`.report` what they found;
:mod:`.dictionary` the data dictionary and templates generated from the columns.

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

import io
import re
from datetime import date
from pathlib import Path

import pandas as pd

from .columns import (
    DTYPES,
    HIP_IR_ERROR_RANGE,
    HIP_IR_WARNING_RANGE,
    ID_COLUMN,
    ID_RULE,
    ORIGINAL_ROW,
    SOURCE_ROW,
    TABLES,
    ColumnSpec,
    DateOrder,
    column_letter,
    schema,
    table_spec,
)
from .dictionary import data_dictionary, write_templates
from .ids import check_duplicates, derive_ids
from .normalise import normalise_columns
from .read import RawTable, label_of, read_table
from .report import Collector, ReadResult, ValidationReport
from .rules import check_rules

__all__ = [
    "TABLES",
    "SOURCE_ROW",
    "ORIGINAL_ROW",
    "ID_COLUMN",
    "ID_RULE",
    "DTYPES",
    "HIP_IR_ERROR_RANGE",
    "HIP_IR_WARNING_RANGE",
    "ColumnSpec",
    "ReadResult",
    "ValidationReport",
    "data_dictionary",
    "read_records",
    "schema",
    "table_spec",
    "write_templates",
]

_SUMMARY_WORD = re.compile(r"^\s*(?:grand\s+)?(?:total|totals|sum|subtotal|mean|average|avg|median|count)\b",
                           re.IGNORECASE)


def read_records(
    source: str | Path | io.IOBase,
    table: str,
    *,
    sheet: str | int | None = None,
    dates: DateOrder | None = None,
    encoding: str | None = None,
    repeated_trials: bool = False,
    today: date | None = None,
    patients: pd.DataFrame | None = None,
) -> ReadResult:
    """Read a clinic file into normalised, validated rows of ``table``.

    Parameters
    ----------
    source : str, Path or file-like
        ``.csv`` / ``.txt`` / ``.tsv`` (UTF-8 with or without byte-order mark, UTF-16 with one,
        Windows-1252, Latin-1; comma, semicolon, tab or pipe separated), ``.xlsx`` or
        ``.parquet``; a file-like object is read as CSV unless its ``name`` says otherwise.
        A quarantine file written by an import (corrected) is read directly: its ``problems``
        column is ignored and its ``source_row`` kept as :data:`ORIGINAL_ROW`.
    table : str
        ``patients``, ``programs``, ``measurements`` or ``sessions``.
    sheet : str or int, optional
        Excel sheet holding the table (default: the first).
    dates : {"day-first", "month-first"}, optional
        How to read dates such as 03/04/2026; without it such dates are errors (ISO dates and
        dates whose day is above 12 are never ambiguous). A declared order is enforced: a date
        impossible in it is an error. Without it, a file mixing day-first and month-first dates
        is refused.
    encoding : str, optional
        The text encoding (e.g. ``utf-16-le``); default: detected.
    repeated_trials : bool
        The file holds repeated trials: identical measurements at one visit without trial
        numbers are numbered as trials instead of being reported as suspected duplicates.
    today : date, optional
        Reference for "date in the future" (default: today).
    patients : DataFrame, optional
        Known patients (``patient_id``, ``birth_year``) for the unknown-patient and
        measured-before-birth checks; for the ``patients`` table, the stored ids a new id must not
        repeat in another letter case.

    Returns
    -------
    ReadResult
        ``data``: every record read, normalised, with ``source_row``; ``report``: problems,
        skipped rows and normalisations. Nothing is dropped: rows with errors stay in ``data``
        and are listed; blank and summary rows are listed as skipped.
    """
    spec = table_spec(table)
    file = label_of(source)
    collect = Collector(file)
    today = today or date.today()
    raw = read_table(source, sheet=sheet, encoding=encoding, collect=collect)
    named = _header(raw, table, spec, collect) if raw is not None else None
    rows_read = len(raw.body) if raw is not None else 0
    if named is None:  # refused whole: what reading it would have normalised means nothing
        collect.changes.clear()
        return _result(file, table, rows_read, collect, pd.DataFrame({SOURCE_ROW: pd.Series(dtype="int64")}))
    named = _skip_blank_and_summary_rows(named, collect).reset_index(drop=True)
    _check_field_counts(raw, spec, collect)
    _check_structure(raw, collect)
    rows = named[SOURCE_ROW]
    data = pd.DataFrame({SOURCE_ROW: rows})
    if ORIGINAL_ROW in named:
        data[ORIGINAL_ROW] = _original_rows(named, collect)
    cells = named.drop(columns=[c for c in (SOURCE_ROW, ORIGINAL_ROW) if c in named])
    coded = normalise_columns(spec, cells, rows, data, collect, dates)
    if not collect.has_file_error():
        repeated, suspected = derive_ids(table, data, rows, collect, coded, repeated_trials=repeated_trials)
        check_rules(table, spec, data, rows, collect, today, patients)
        check_duplicates(table, data, rows, collect, repeated, suspected)
    _check_padded_rows(raw, collect)
    return _result(file, table, rows_read, collect, data.reset_index(drop=True), named.reset_index(drop=True))


def _column_names(raw: RawTable) -> list[str]:
    return [re.sub(r"\s+", "_", str(c).strip().lower()) for c in raw.header]


def _check_structure(raw: RawTable, collect: Collector) -> None:
    """What a workbook sheet's values hide: hidden rows and columns (read, and said), merged cells
    and formulas without a saved value (each an error in its cell: they would read as empty)."""
    found = raw.structure
    if found is None or not len(raw.rows):
        return
    body = set(int(r) for r in raw.rows)
    names, width = _column_names(raw), len(raw.header)
    hidden_rows = sorted(body & set(found.hidden_rows))
    collect.problem("warning", hidden_rows, None, ["(hidden row)"] * len(hidden_rows),
                    "the row is hidden in Excel; it was read like the others", "check that it belongs to the table")
    for c in sorted(set(found.hidden_columns)):
        if c < width:
            collect.problem("warning", [1], names[c], [names[c]], f"column {column_letter(c + 1)} ({names[c]}) is "
                            "hidden in Excel; it was read like the others", "check that it belongs to the table")
    for r1, c1, r2, c2 in found.merged:
        first = f"{column_letter(c1 + 1)}{r1}"
        span = f"{first}:{column_letter(c2 + 1)}{r2}"
        for r in range(r1, r2 + 1):
            for c in range(c1, min(c2, width - 1) + 1):
                if (r, c) != (r1, c1) and r in body:
                    collect.problem("error", [r], names[c], [f"{column_letter(c + 1)}{r}"],
                                    f"the cell is part of the merged cells {span}: only {first} holds a value, so it "
                                    "would read as empty", "unmerge the cells and fill in the value in each row")
    for (r, c), formula in sorted(found.formulas.items()):
        if r in body and c < width:
            collect.problem("error", [r], names[c], [f"{column_letter(c + 1)}{r}"],
                            f"the cell holds a formula (={formula}) whose value was never computed and saved, so it "
                            "would read as empty", "open the workbook in Excel or LibreOffice, let it calculate and "
                            "save it (or paste the values)")


def _decimal_comma(raw: RawTable, spec, fields: list[str]) -> str | None:
    """The first number column whose value, read with a decimal comma, was split over two fields by the
    comma delimiter (``32,5`` -> ``32`` | ``5``): 'degrees 32,5', or None."""
    if raw.delimiter != ",":
        return None
    numbers = {c.name for c in spec if c.kind == "float"}
    names = _column_names(raw)
    for i, name in enumerate(names[:len(fields) - 1]):
        if name in numbers and re.fullmatch(r"[+-]?\d+", fields[i].strip()) and re.fullmatch(r"\d+", fields[i + 1].strip()):
            return f"{name} {fields[i].strip()},{fields[i + 1].strip()}"
    return None


def _decimal_fix(split: str) -> str:
    whole, fraction = split.split(" ", 1)[1].split(",")
    return (f'write the value with a decimal point ({whole}.{fraction}) or quote it ("{whole},{fraction}"), or save '
            "the file with semicolons as the delimiter; if the row only ends with one delimiter too many, remove it; "
            "then import the row again")


def _check_field_counts(raw: RawTable, spec, collect: Collector) -> None:
    """Rows whose fields do not line up with the header are errors, never read as they fall: a row
    with more fields than the header is read (its empty extra fields dropped, reported) only when no
    number column looks split by a decimal comma; whether its other fields pass their types is
    checked once they are read (:func:`_check_padded_rows`)."""
    n = len(raw.header)
    for row, (count, record, fields) in raw.ragged.items():
        split = _decimal_comma(raw, spec, fields) if count > n else None
        collect.problem("error", [row], None, [record], f"{count} fields, but the header has {n}"
                        + (f": {split} looks like a decimal comma that split the value in two" if split else ""),
                        _decimal_fix(split) if split else
                        "a value may hold the delimiter without quotes, or a field is missing: correct the row")
    for row, fields in list(raw.padded.items()):
        split = _decimal_comma(raw, spec, fields)
        if split:
            collect.problem("error", [row], None, [raw.delimiter.join(fields)],
                            f"{len(fields)} fields, but the header has {n}: {split} looks like a decimal comma that "
                            "split the value in two (every later field would shift by one)", _decimal_fix(split))
            del raw.padded[row]
        else:
            collect.normalised([row], None, [raw.delimiter.join(fields[n:])], [""],
                               f"empty fields beyond the header's {n} columns dropped")


def _check_padded_rows(raw: RawTable, collect: Collector) -> None:
    """A row whose empty extra fields were dropped and whose fields then fail their types may not line
    up with the header: said beside its errors."""
    if not raw.padded or not collect.problems:
        return
    problems, _ = collect.frames()
    failing = set(problems.loc[problems["severity"] == "error", "row"].dropna().astype(int))
    n = len(raw.header)
    for row in sorted(failing & set(raw.padded)):
        fields = raw.padded[row]
        collect.problem("error", [row], None, [raw.delimiter.join(fields)],
                        f"{len(fields)} fields, but the header has {n} (the extra ones empty), and the row's values "
                        "fail their columns: a field may be missing or split, shifting the rest",
                        "check that every value is under its column, then import the row again")


def _result(file, table, rows_read, collect, data, raw=None) -> ReadResult:
    problems, changes = collect.frames()
    raw = raw if raw is not None else data[[SOURCE_ROW]]
    return ReadResult(data, ValidationReport(file, table, rows_read, problems, changes), raw)


_LONGEST_NAME = 200
"""A header cell longer than this is not a column name: the file is refused."""


def _header(raw: RawTable, table: str, spec, collect: Collector) -> pd.DataFrame | None:
    """The body with standardised column names (text) and ``source_row``, or None when the header
    itself refuses the file."""
    body = raw.body
    long = [(p, len(str(c))) for p, c in enumerate(raw.header, start=1) if len(str(c)) > _LONGEST_NAME]
    if long:
        position, length = long[0]
        collect.problem("error", [1], None, [f"{str(raw.header[position - 1])[:40]}..."],
                        f"the header cell in column {column_letter(position)} is {length:,} characters long: not a "
                        f"column name (column names are at most {_LONGEST_NAME} characters)",
                        "check that the first row is the header row of the table, not data or pasted text")
        return None
    names: list[str | None] = []
    for position, cell in enumerate(raw.header, start=1):
        standard = re.sub(r"\s+", "_", str(cell).strip().lower())
        if not standard:
            filled = bool((body[position - 1].str.strip() != "").any()) if len(body) else False
            standard = f"(column {column_letter(position)})" if filled else None  # an empty, unnamed column holds nothing
        elif standard != cell:
            collect.normalised([1], standard, [cell], [standard], "column name standardised")
        names.append(standard)
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        if name is not None:
            positions.setdefault(name, []).append(position)
    twice = {name: where for name, where in positions.items() if len(where) > 1}
    for name, where in twice.items():
        columns = " and ".join(f"{column_letter(p)} (column {p})" for p in where)
        collect.problem("error", [1], name, [name], f"column {name!r} appears {len(where)} times: {columns}",
                        "keep one of them: their values may differ, and hipanalytics cannot know which is right")
    known = {c.name for c in spec}
    if not known & set(positions) and not twice:
        first = ", ".join(str(c) for c in raw.header[:6])
        collect.problem("error", [None], None, [first], f"the first row does not name any column of the {table} "
                        f"table, so this is not a {table} table (or its header row is missing)",
                        f"give the file whose first row names the columns ({', '.join(c.name for c in spec[:5])}, "
                        "...; see docs/data-dictionary.md)")
        return None
    missing = [c for c in spec if c.required and c.name not in positions]
    for col in missing:
        collect.problem("error", [1], col.name, [""], f"missing required column {col.name!r}",
                        f"add a column {col.name!r} ({col.description}, e.g. {col.example})")
    quarantine = SOURCE_ROW in positions
    extra = [n for n in positions if n not in known and n != SOURCE_ROW and not (quarantine and n == "problems")]
    if extra:
        listed = ", ".join(repr(n) for n in extra[:10]) + (f" and {len(extra) - 10:,} more" if len(extra) > 10 else "")
        collect.problem("warning", [1], extra[0] if len(extra) == 1 else None, [", ".join(extra)],
                        f"column {extra[0]!r} is not part of the {table} table" if len(extra) == 1 else
                        f"{len(extra):,} columns are not part of the {table} table: {listed}",
                        f"they are not imported; rename a column to one of {', '.join(known)} if it was meant "
                        "to be imported")
    if quarantine and "problems" in positions:
        collect.normalised([1], "problems", ["problems"], [""], "quarantine file: its problems column is not data")
    if twice or missing:
        return None
    if len(body) == 0:
        collect.problem("error", [None], None, [""], "the file has a header but no data rows: nothing to import",
                        "check that the right file or sheet was exported")
        return None
    keep = {name: where[0] - 1 for name, where in positions.items() if not (quarantine and name == "problems")}
    frame = pd.DataFrame({name: body[index] for name, index in keep.items()})
    if quarantine:
        frame = frame.rename(columns={SOURCE_ROW: ORIGINAL_ROW})
    frame.insert(0, SOURCE_ROW, pd.Series(raw.rows, index=body.index, dtype="int64"))
    return frame


def _skip_blank_and_summary_rows(named: pd.DataFrame, collect: Collector) -> pd.DataFrame:
    """Rows that hold no record: fully blank rows, and summary rows at the end of the table (a word
    such as Total or Mean in their first cells, and no patient id but that word). Reported as skipped."""
    cells = named.drop(columns=[SOURCE_ROW])
    blank = pd.Series(True, index=named.index)
    for column in cells.columns:  # a row stays a candidate while every cell so far is blank
        candidates = blank[blank].index
        if candidates.empty:
            break
        blank.loc[candidates] = cells.loc[candidates, column].str.strip() == ""
    collect.problem("skipped", named.loc[blank, SOURCE_ROW], None, [""] * int(blank.sum()), "blank row",
                    "nothing to do: it holds no record")
    summary = pd.Series(False, index=named.index)
    for index in reversed(named.index):  # from the end: only summary and blank rows may follow a summary row
        if blank[index]:
            continue
        first = [c for c in cells.loc[index].tolist() if c.strip()][:3]
        patient = cells.loc[index, "patient_id"].strip() if "patient_id" in cells else ""
        if not any(_SUMMARY_WORD.match(c) for c in first) or (patient and not _SUMMARY_WORD.match(patient)):
            break
        summary[index] = True
    words = cells.loc[summary].apply(lambda r: " ".join(c for c in r if c.strip())[:60], axis=1)
    collect.problem("skipped", named.loc[summary, SOURCE_ROW], None, words, "summary row (a total, not a record)",
                    "nothing to do: summary rows are not imported")
    skipped = blank | summary
    return named[~skipped] if skipped.any() else named


def _original_rows(named: pd.DataFrame, collect: Collector) -> pd.Series:
    """The quarantine file's ``source_row``: the row of each record in the file first imported."""
    text = named[ORIGINAL_ROW].str.strip()
    number = pd.to_numeric(text.where(text.str.fullmatch(r"\d+")), errors="coerce")
    bad = number.isna() | (number < 2)
    collect.problem("error", named.loc[bad, SOURCE_ROW], SOURCE_ROW, text[bad],
                    "not a row number of the original file (this column comes from the quarantine file)",
                    "leave the source_row column as the quarantine file wrote it")
    return number.astype("Int64")

