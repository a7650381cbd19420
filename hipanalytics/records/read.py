"""Reading a clinic's file as a table of text, exactly as written.

The format comes from the file's content first (a workbook renamed ``.csv`` is recognised, not
misread), then its name. Text files are decoded by their byte-order mark, a declared encoding,
or UTF-8 then Windows-1252; UTF-16 without a byte-order mark and binary files are refused with
what they look like. Every record keeps its spreadsheet row number: blank lines, quoted line
breaks and rows with too many or too few fields do not shift the numbering, and a row whose
field count differs from the header's is reported with both counts instead of failing the file.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.csv as pacsv

from .report import Collector, shown

__all__ = ["RawTable", "read_table", "label_of", "cell_text"]

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_PROBE = 65536  # bytes looked at to tell text from binary


@dataclass
class RawTable:
    """A file's cells as text, before any interpretation.

    ``header`` holds the first non-blank row as written; ``body`` one column per header cell
    (named 0, 1, ...) and one row per record after it, cells as text ('' when empty); ``rows``
    the spreadsheet row number of each body row; ``ragged`` the rows whose field count differs
    from the header's: row -> (field count, the record as written, its fields); ``padded`` the rows
    with more fields than the header whose extra fields are all empty: row -> their fields (the
    body holds the first ones; whether that reading can stand is for the reader of the table to
    judge, knowing the columns' types).
    """

    header: list[str]
    body: pd.DataFrame
    rows: np.ndarray
    ragged: dict[int, tuple[int, str, list[str]]] = field(default_factory=dict)
    padded: dict[int, list[str]] = field(default_factory=dict)
    delimiter: str | None = None
    """The field delimiter of delimited text (None for workbooks and Parquet)."""
    structure: SheetStructure | None = None
    """A workbook sheet's hidden rows and columns, merged cells and formulas without a value."""


def label_of(source: Any) -> str:
    """How messages name a source: its path, or a file-like object's ``name``."""
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<data>")


def source_bytes(source: Any) -> bytes:
    """The content of a path or file-like object."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        return path.read_bytes()
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def read_table(source: Any, *, sheet: str | int | None, encoding: str | None, collect: Collector) -> RawTable | None:
    """The file as a :class:`RawTable`, or None when it cannot be read as a table (the reason is
    recorded in ``collect`` as a whole-file error)."""
    raw = source_bytes(source)
    suffix = Path(label_of(source)).suffix.lower()
    kind = _content_kind(raw)
    if suffix in (".xlsx", ".xlsm"):
        if kind != "zip":
            return _refuse(collect, f"the file is named {suffix} but is not an Excel workbook: it looks like "
                                    f"{_looks_like(raw)}", "export the workbook again from Excel, or give the file its right name")
        return _read_excel(raw, sheet, collect)
    if suffix == ".parquet":
        if kind != "parquet":
            return _refuse(collect, f"the file is named .parquet but is not a Parquet file: it looks like "
                                    f"{_looks_like(raw)}", "give the file its right name")
        return _read_parquet(raw)
    if kind not in ("text", "utf16"):
        return _refuse(collect, f"this is not a text table: it looks like {_looks_like(raw)}",
                       _binary_fix(kind, suffix))
    text = _decode(raw, encoding, collect)
    if text is None:
        return None
    return _read_delimited(text, collect)


# ----------------------------------------------------------------------------------------------
# What the bytes are
# ----------------------------------------------------------------------------------------------

_MAGIC = [
    (b"PK\x03\x04", "zip"), (b"PAR1", "parquet"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"%PDF", "pdf"), (b"\x89PNG", "image"), (b"\xff\xd8\xff", "image"), (b"GIF8", "image"),
    (b"SQLite format 3\x00", "sqlite"), (b"\x1f\x8b", "gzip"),
]
_DESCRIPTIONS = {
    "zip": "a ZIP archive, such as an Excel workbook (.xlsx)", "parquet": "a Parquet file",
    "ole": "an old Excel workbook (.xls) or another Office file", "pdf": "a PDF document",
    "image": "an image", "sqlite": "a SQLite database (a hipanalytics store is opened with --store)",
    "gzip": "a gzip-compressed file", "binary": "binary data, not text",
}
_BOMS = [(b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")]


def _content_kind(raw: bytes) -> str:
    for magic, kind in _MAGIC:
        if raw.startswith(magic):
            return kind
    if any(raw.startswith(bom) for bom, _ in _BOMS):
        return "text"
    probe = raw[:_PROBE]
    if not probe:
        return "text"
    if probe.count(b"\x00") and _utf16_without_bom(probe):
        return "utf16"
    controls = sum(probe.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    # A stray control character (a NUL pasted into a note) is reported in its cell; many are binary.
    return "binary" if controls > max(2, len(probe) // 100) else "text"


def _utf16_without_bom(probe: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the bytes look like UTF-16 text without a byte-order mark."""
    even, odd = probe[0::2], probe[1::2]
    if len(probe) < 4:
        return None
    if odd.count(b"\x00") > 0.6 * len(odd) and even.count(b"\x00") < 0.1 * len(even):
        return "utf-16-le"
    if even.count(b"\x00") > 0.6 * len(even) and odd.count(b"\x00") < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _looks_like(raw: bytes) -> str:
    kind = _content_kind(raw)
    if kind == "text":
        first = raw[:200].decode("utf-8", "replace").splitlines()[0] if raw.strip() else ""
        return f"text (first line {shown(first)})"
    if kind == "utf16":
        return f"{_utf16_without_bom(raw[:_PROBE]).upper()} text"
    return _DESCRIPTIONS[kind]


def _binary_fix(kind: str, suffix: str) -> str:
    if kind == "zip":
        return "if it is an Excel workbook, name it .xlsx (and give --sheet if the table is not on the first sheet)"
    if kind == "ole":
        return "open it in Excel and save it as .xlsx or CSV"
    if kind == "parquet":
        return "name it .parquet"
    return f"give the CSV or Excel file that holds the table (this {suffix or 'file'} is something else)"


def _refuse(collect: Collector, rule: str, fix: str) -> None:
    collect.problem("error", [None], None, [""], rule, fix)
    return None


def _decode(raw: bytes, encoding: str | None, collect: Collector) -> str | None:
    if encoding:
        try:
            text = raw.decode(encoding)
        except LookupError:
            return _refuse(collect, f"unknown encoding {encoding!r}",
                           "give a Python encoding name, e.g. --encoding utf-8, cp1252 or utf-16")
        except UnicodeDecodeError as exc:
            return _refuse(collect, f"the file cannot be read as {encoding}: byte {raw[exc.start]:#04x} at "
                                    f"position {exc.start:,} is not valid there",
                           "check the encoding the file was saved with and give it with --encoding")
        return text.removeprefix("\ufeff")
    for bom, name in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw[len(bom):].decode(name.removesuffix("-sig"))
            except UnicodeDecodeError as exc:
                return _refuse(collect, f"the file starts with a {name.upper()} byte-order mark but byte "
                                        f"{exc.start + len(bom):,} is not valid {name.upper()}",
                               "export the file again, or give its encoding with --encoding")
            if name != "utf-8-sig":
                collect.normalised([None], None, ["(file bytes)"], [f"decoded as {name.upper()}"],
                                   f"the file is {name.upper()} text (byte-order mark), e.g. Excel's 'Unicode text'")
            return text
    guess = _utf16_without_bom(raw[:_PROBE])
    if guess:
        return _refuse(collect, f"the file looks like {guess.upper()} text without a byte-order mark",
                       f"if it is, give --encoding {guess}; otherwise export it again as UTF-8 CSV")
    for name in ("utf-8", "cp1252", "latin-1"):
        try:
            text = raw.decode(name)
            break
        except UnicodeDecodeError:
            continue
    if name != "utf-8":
        collect.normalised([None], None, ["(file bytes)"], [f"decoded as {name}"],
                           f"the file is not UTF-8; read it as {name} (Windows/Latin-1 text); give --encoding if "
                           "it was saved in another encoding")
    return text


# ----------------------------------------------------------------------------------------------
# Delimited text
# ----------------------------------------------------------------------------------------------


def _sniff(first_line: str) -> str:
    try:
        return csv.Sniffer().sniff(first_line, delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _read_delimited(text: str, collect: Collector) -> RawTable | None:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return _refuse(collect, "the file is empty", "export the table again with a header row and data rows")
    csv.field_size_limit(max(csv.field_size_limit(), sys.maxsize // 2))  # a long cell is a finding, not a crash
    delimiter = _sniff(first[:_PROBE])
    if delimiter != ",":
        name = _DELIMITERS[delimiter]
        collect.normalised([None], None, ["(delimiter)"], [name], f"columns are separated by {name}s")
    fast = _read_fast(text, delimiter) if text.strip() and lines and lines[0].strip() else None
    return fast if fast is not None else _read_records(text, delimiter, collect)


def _read_fast(text: str, delimiter: str) -> RawTable | None:
    """Arrow's multithreaded parser, for well-formed files (the common case): every row has the
    header's field count, no blank line, no quoted line break. Anything else returns None and is
    read record by record."""
    header = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")], delimiter=delimiter))
    n = len(header)
    names = [f"f{i}" for i in range(n)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={c: pyarrow.string() for c in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pyarrow.ArrowInvalid, pyarrow.ArrowException):
        return None
    body = table.to_pandas(types_mapper=pd.ArrowDtype).astype("str")
    body.columns = range(n)
    end = len(body)
    while end and not any(str(c).strip() for c in body.iloc[end - 1]):  # blank lines after the last filled row
        end -= 1                                                          # are not rows
    body = body.iloc[:end]
    return RawTable(header, body, np.arange(2, len(body) + 2, dtype="int64"), delimiter=delimiter)


def _read_records(text: str, delimiter: str, collect: Collector) -> RawTable | None:
    """Record by record with Python's csv module: blank lines, quoted line breaks and ragged rows
    keep their spreadsheet row numbers."""
    records = []
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False):
            records.append(record)
    except csv.Error as exc:
        return _refuse(collect, f"the file cannot be read as delimited text: {exc} (row {len(records) + 1})",
                       "export the table again as CSV")
    blank = [not any(c.strip() for c in r) for r in records]
    start = blank.index(False)
    header = records[start]
    last = len(records) - 1 - blank[::-1].index(False)
    n = len(header)
    cells, rows, ragged, padded = [], [], {}, {}
    for index in range(start + 1, last + 1):
        record = records[index]
        row = index + 1  # a spreadsheet opening this file shows record i on row i + 1
        if len(record) != n and any(c.strip() for c in record[n:]) or len(record) < n and not blank[index]:
            ragged[row] = (len(record), delimiter.join(record), record)
        elif len(record) > n:
            padded[row] = record
        cells.append((record + [""] * n)[:n])
        rows.append(row)
    body = pd.DataFrame(cells, columns=range(n), dtype="str") if cells else pd.DataFrame(
        {i: pd.Series(dtype="str") for i in range(n)})
    return RawTable(header, body, np.asarray(rows, dtype="int64"), ragged, padded, delimiter)


# ----------------------------------------------------------------------------------------------
# Workbooks and Parquet
# ----------------------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A typed cell (Excel, Parquet) as the text a user sees; empty cells become ''.

    Examples
    --------
    >>> from datetime import datetime
    >>> cell_text(None), cell_text(32.0), cell_text(32.5), cell_text(datetime(2026, 3, 4)), cell_text(datetime(2026, 3, 4, 10))
    ('', '32', '32.5', '2026-03-04', '2026-03-04T10:00:00')
    """
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    if hasattr(value, "isoformat") and not isinstance(value, str):
        stamp = pd.Timestamp(value) if not hasattr(value, "hour") or hasattr(value, "year") else None
        if stamp is None:  # a time of day
            return value.strftime("%H:%M") if value.second == 0 else value.isoformat()
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_MAX_UNZIPPED = 1 << 30  # 1 GiB
_MAX_RATIO = 200
"""A workbook is a zip file: one that unpacks to more than 1 GiB, or a part over 50 MB that is more
than 200 times its compressed size (ordinary sheets compress 5-30 times), is refused before
parsing, as a zip bomb would be."""

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


@dataclass
class SheetStructure:
    """What a worksheet's XML says that its values do not: hidden sheets, rows and columns, merged
    cells, and formulas without a saved (computed) value."""

    states: dict[str, str] = field(default_factory=dict)
    hidden_rows: list[int] = field(default_factory=list)
    hidden_columns: list[int] = field(default_factory=list)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)


def _cell_position(ref: str) -> tuple[int, int]:
    """``"J5"`` -> (5, 9): the spreadsheet row and the 0-based column."""
    letters = "".join(c for c in ref if c.isalpha())
    column = 0
    for c in letters.upper():
        column = column * 26 + ord(c) - 64
    return int(ref[len(letters):]), column - 1


def _unzipped_size_problem(archive) -> str | None:
    total = sum(i.file_size for i in archive.infolist())
    if total > _MAX_UNZIPPED:
        return f"the workbook unpacks to {total / 2**30:.1f} GiB"
    for info in archive.infolist():
        if info.file_size > 50_000_000 and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
            return (f"its part {info.filename} unpacks to {info.file_size / 1e6:,.0f} MB, "
                    f"{info.file_size / max(info.compress_size, 1):,.0f} times its compressed size")
    return None


def _structure(archive, chosen: str) -> SheetStructure:
    """Sheet states from the workbook part, then one streaming pass over the chosen sheet's XML."""
    import xml.etree.ElementTree as ET

    found = SheetStructure()
    book = ET.fromstring(archive.read("xl/workbook.xml"))
    rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    part = None
    for sheet in book.iter(f"{_MAIN}sheet"):
        found.states[sheet.get("name")] = sheet.get("state", "visible")
        if sheet.get("name") == chosen:
            target = targets.get(sheet.get(f"{_REL}id"), "")
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    if part is None or part not in archive.namelist():
        return found
    with archive.open(part) as handle:
        for _, element in ET.iterparse(handle):
            tag = element.tag.removeprefix(_MAIN)
            if tag == "row":
                if element.get("hidden") in ("1", "true") and element.get("r"):
                    found.hidden_rows.append(int(element.get("r")))
                element.clear()
            elif tag == "col" and element.get("hidden") in ("1", "true"):
                found.hidden_columns += range(int(element.get("min")) - 1, int(element.get("max")))
            elif tag == "mergeCell" and ":" in element.get("ref", ""):
                (r1, c1), (r2, c2) = (_cell_position(x) for x in element.get("ref").split(":"))
                found.merged.append((r1, c1, r2, c2))
            elif tag == "c":
                formula, value = element.find(f"{_MAIN}f"), element.find(f"{_MAIN}v")
                if formula is not None and (value is None or value.text is None) and element.get("r"):
                    found.formulas[_cell_position(element.get("r"))] = formula.text or "(shared formula)"
    return found


def _read_excel(raw: bytes, sheet: str | int | None, collect: Collector) -> RawTable | None:
    import zipfile

    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            bomb = _unzipped_size_problem(archive)
    except zipfile.BadZipFile:
        bomb = None  # openpyxl says what is wrong below
    if bomb:
        return _refuse(collect, f"{bomb}: far more than any clinic table, as a zip bomb would (refused before "
                                "reading)", "export the table again from the program that made it")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or encrypted workbook: say so, never a traceback
        return _refuse(collect, f"the workbook cannot be opened ({type(exc).__name__}: {exc})",
                       "open it in Excel and save it again as .xlsx (not password-protected)")
    try:
        names = workbook.sheetnames
        if sheet is not None:
            if sheet in names:
                chosen = sheet
            elif isinstance(sheet, int) and 0 <= sheet < len(names):
                chosen = names[sheet]
            else:
                return _refuse(collect, f"the workbook has no sheet {sheet!r}",
                               f"name one of its sheets: {', '.join(repr(n) for n in names)}")
        else:
            states = _structure_of(raw, names[0]).states
            visible = [n for n in names if states.get(n, "visible") == "visible"] or names
            chosen = visible[0]
        structure = _structure_of(raw, chosen)
        hidden = [n for n in names if structure.states.get(n, "visible") != "visible"]
        if chosen in hidden:
            collect.problem("warning", [None], None, [chosen], f"sheet {chosen!r} is hidden in Excel; it was read, "
                            "as asked", "check that the hidden sheet is the table meant")
        elif hidden:
            collect.problem("warning", [None], None, [", ".join(hidden)],
                            f"hidden sheet(s) not read: {', '.join(repr(n) for n in hidden)}; sheet {chosen!r} was read",
                            "pass --sheet NAME to read a hidden sheet")
        grid = [[cell_text(v) for v in row] for row in workbook[chosen].iter_rows(values_only=True)]
        if sheet is None and not any(any(c.strip() for c in row) for row in grid):
            filled = [n for n in visible if n != chosen and any(any(cell_text(v).strip() for v in row)
                                                                for row in workbook[n].iter_rows(values_only=True))]
            hint = f"; the data seems to be on sheet {filled[0]!r}: pass --sheet {filled[0]!r}" if filled else ""
            return _refuse(collect, f"the first sheet {chosen!r} is empty", "name the sheet that holds the table" + hint)
    finally:
        workbook.close()
    table = _from_grid(grid, collect, f"sheet {chosen!r}")
    if table is not None:
        table.structure = structure
    return table


def _structure_of(raw: bytes, chosen: str) -> SheetStructure:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return _structure(archive, chosen)
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError):  # a workbook openpyxl reads but we cannot scan
        return SheetStructure()


def _from_grid(grid: list[list[str]], collect: Collector, where: str) -> RawTable | None:
    """Rows of cells (row 1 first) as a RawTable: the header is the first non-blank row; blank rows
    after the last filled row are not rows."""
    filled = [i for i, row in enumerate(grid) if any(c.strip() for c in row)]
    if not filled:
        return _refuse(collect, f"{where} is empty", "export the table again with a header row and data rows")
    start, last = filled[0], filled[-1]
    width = 1
    for row in grid[start:last + 1]:  # formatted but empty columns at the right are not columns
        width = max(width, next((j + 1 for j in range(len(row) - 1, -1, -1) if row[j].strip()), 0))
    header = (grid[start] + [""] * width)[:width]
    n = len(header)
    cells = [(row + [""] * n)[:n] for row in grid[start + 1:last + 1]]
    body = pd.DataFrame(cells, columns=range(n), dtype="str") if cells else pd.DataFrame(
        {i: pd.Series(dtype="str") for i in range(n)})
    return RawTable(header, body, np.arange(start + 2, last + 2, dtype="int64"))


def _read_parquet(raw: bytes) -> RawTable:
    frame = pd.read_parquet(io.BytesIO(raw))
    header = [str(c) for c in frame.columns]
    body = pd.DataFrame({i: frame.iloc[:, i].map(cell_text).astype("str") for i in range(len(header))})
    return RawTable(header, body, np.arange(2, len(frame) + 2, dtype="int64"))
