"""REDCap: a data dictionary generated from our tables, and our records in REDCap's import format.

A research team builds its REDCap project from :func:`redcap_dictionary` in one upload: five
instruments (``patient``; ``program``, ``rom_visit``, ``session_log`` and ``episode``, each to be set up as a
repeating instrument), every column of ours as one field with our codes as the choices of its
radio buttons, dates, whole numbers and numbers validated with our limits, identifiers marked, and
the field annotation naming the column it holds (``hipanalytics: measurements.degrees``).
:func:`redcap_records` writes a store's tables in the "CSV (raw data)" layout REDCap imports for
that dictionary: one row per patient, and one per program, measurement, session and episode as instances
of the repeating instruments.

The field names are ours with a prefix per instrument, because REDCap needs every name unique in
a project and ours repeat across tables (``notes``): see :func:`field_map` and
``docs/redcap.md``.

:func:`read_redcap` reads a REDCap "CSV (raw data)" export back into our tables (classic or
longitudinal projects, repeating instruments, checkbox fields), through the built-in mapping of
our own dictionary or a YAML mapping of a project whose names differ; :func:`import_redcap`
imports it through the same validation, quarantine and row accounting as any file, with every
message naming the export's row and the REDCap field.

Examples
--------
>>> d = redcap_dictionary()
>>> d.iloc[0][["Variable / Field Name", "Form Name", "Field Type"]].tolist()
['patient_id', 'patient', 'text']
>>> d.set_index("Variable / Field Name").loc["rom_side", "Choices, Calculations, OR Slider Labels"]
'left, left | right, right'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import HipAnalyticsError
from .records.columns import HIP_IR_ERROR_RANGE, SOURCE_ROW, TABLES, ColumnSpec, table_spec

__all__ = ["DICTIONARY_COLUMNS", "FORMS", "field_map", "redcap_dictionary", "redcap_records", "RedcapError",
           "RedcapRows", "read_redcap", "import_redcap"]

DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)
"""The columns of a REDCap data dictionary (CSV), in REDCap's order."""

FORMS = {"patients": ("patient", ""), "programs": ("program", "prg_"), "measurements": ("rom_visit", "rom_"),
         "sessions": ("session_log", "ses_"), "episodes": ("episode", "epi_")}
"""Our table -> (REDCap instrument, field-name prefix). ``patients`` is the non-repeating first
instrument; its ``patient_id`` is the project's record id."""

RECORD_ID = "patient_id"

# Columns a REDCap project flags as identifiers, so its de-identified exports leave them out: the
# display name, and free text, which may hold anything (our research exports drop it too).
_IDENTIFIERS = {("patients", "display_name"), ("measurements", "notes"), ("sessions", "notes"), ("episodes", "notes")}

# Fields shown only when another is filled in: an allocation date belongs to an allocation (the
# import refuses one without the other, records.rules).
_BRANCHING = {("patients", "allocated_on"): "[allocation] <> ''"}

_VALIDATION = {"date": "date_ymd", "int": "integer", "year": "integer", "float": "number"}
_TIME = {("sessions", "performed_at")}  # HH:MM, REDCap's "time" validation

# A REDCap validation range is a soft check (the form warns, the user may confirm). For degrees
# we use the hard plausibility range for hip IR (records.columns.HIP_IR_ERROR_RANGE, DESIGN.md 10),
# not the column's -180..180, so a slip is questioned at entry.
_LIMITS = {("measurements", "degrees"): HIP_IR_ERROR_RANGE, ("patients", "birth_year"): (1900, None)}


def field_map() -> pd.DataFrame:
    """Every column of ours and the REDCap field that holds it.

    Returns
    -------
    DataFrame
        ``table``, ``column``, ``form``, ``field`` (the record id ``patient_id`` appears once, on
        the ``patient`` form; the other tables' ``patient_id`` is the record they belong to).
    """
    rows = []
    for table in TABLES:
        form, prefix = FORMS[table]
        for spec in table_spec(table):
            if spec.name == RECORD_ID and table != "patients":
                continue
            rows.append({"table": table, "column": spec.name, "form": form, "field": prefix + spec.name})
    return pd.DataFrame(rows)


def _number(value) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _field(table: str, spec: ColumnSpec, form: str, name: str) -> dict[str, str]:
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    note = [spec.description]
    if spec.unit:
        note.append(f"in {spec.unit}")
    if spec.max_length:
        note.append(f"at most {spec.max_length} characters")
    if spec.source:
        note.append(f"source: {spec.source}")
    row.update({"Variable / Field Name": name, "Form Name": form, "Field Label": spec.name.replace("_", " "),
                "Field Note": "; ".join(note), "Field Annotation": f"hipanalytics: {table}.{spec.name}"})
    if spec.kind == "enum":
        row["Field Type"] = "radio"
        row["Choices, Calculations, OR Slider Labels"] = " | ".join(f"{code}, {code.replace('_', ' ')}"
                                                                    for code in spec.allowed)
    else:
        row["Field Type"] = "notes" if spec.kind == "text" and (spec.max_length or 0) > 255 else "text"
        row["Text Validation Type OR Show Slider Number"] = ("time" if (table, spec.name) in _TIME
                                                              else _VALIDATION.get(spec.kind, ""))
        low, high = _LIMITS.get((table, spec.name), (spec.minimum, spec.maximum))
        if spec.kind in _VALIDATION and spec.kind != "date":
            row["Text Validation Min"], row["Text Validation Max"] = _number(low), _number(high)
    if (table, spec.name) in _IDENTIFIERS:
        row["Identifier?"] = "y"
    row["Branching Logic (Show field only if...)"] = _BRANCHING.get((table, spec.name), "")
    if not spec.nullable and (spec.required or spec.name == RECORD_ID):
        row["Required Field?"] = "y"
    return row


def redcap_dictionary() -> pd.DataFrame:
    """The REDCap data dictionary of our five tables (write it with ``to_csv(index=False)``).

    The record id ``patient_id`` comes first, as REDCap requires. Section headers name the
    instrument's table; the ids REDCap does not need (derived measurement and session ids) are
    kept as optional text fields so a round trip keeps them.
    """
    rows = []
    specs = {table: {spec.name: spec for spec in table_spec(table)} for table in TABLES}
    for table, group in field_map().groupby("table", sort=False):
        form = FORMS[table][0]
        for i, item in enumerate(group.itertuples()):
            row = _field(table, specs[table][item.column], form, item.field)
            if i == 0:
                row["Section Header"] = f"hipanalytics {table}"
            rows.append(row)
    return pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))


def _text(values: pd.Series, kind: str) -> pd.Series:
    """A column as REDCap's raw export writes it: ISO dates, whole numbers without '.0', blanks."""
    if kind == "date":
        return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")
    if kind in ("int", "year"):
        return values.astype("Int64").astype("string").fillna("")
    if kind == "float":
        return values.map(lambda v: "" if pd.isna(v) else f"{float(v):g}")
    return values.astype("string").fillna("")


def redcap_records(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Our tables as a REDCap import file ("CSV (raw data)", repeating instruments).

    Parameters
    ----------
    tables : dict of DataFrame
        ``patients`` and any of ``programs``, ``measurements``, ``sessions`` (as a store reads them).

    Returns
    -------
    DataFrame
        ``patient_id``, ``redcap_repeat_instrument``, ``redcap_repeat_instance``, every field of
        :func:`field_map` and each instrument's ``<form>_complete`` (2, complete), all text. One
        row per patient, then per program, measurement, session and episode of that patient, numbered 1,
        2, ... per instrument in the order of the table.

    Examples
    --------
    >>> from hipanalytics.synthetic import generate_clinic
    >>> out = redcap_records(generate_clinic(2, seed=1))
    >>> out.groupby("redcap_repeat_instrument").size().index.tolist()
    ['', 'program', 'rom_visit', 'session_log']
    """
    fields = field_map()
    columns = [RECORD_ID, "redcap_repeat_instrument", "redcap_repeat_instance",
               *fields.loc[fields["field"] != RECORD_ID, "field"],
               *(f"{FORMS[t][0]}_complete" for t in TABLES)]
    parts = []
    for table in TABLES:
        frame = tables.get(table)
        if frame is None or frame.empty:
            continue
        form, prefix = FORMS[table]
        specs = {spec.name: spec for spec in table_spec(table)}
        mine = fields[fields["table"] == table]
        part = pd.DataFrame({RECORD_ID: _text(frame[RECORD_ID], "id").to_numpy()})
        for item in mine.itertuples():
            if item.column in frame:
                part[item.field] = _text(frame[item.column], specs[item.column].kind).to_numpy()
        if table == "patients":
            part["redcap_repeat_instrument"], part["redcap_repeat_instance"] = "", ""
        else:
            part["redcap_repeat_instrument"] = form
            part["redcap_repeat_instance"] = (part.groupby(RECORD_ID).cumcount() + 1).astype(str).to_numpy()
        part[f"{form}_complete"] = "2"
        part["_order"] = TABLES.index(table)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values([RECORD_ID, "_order"], kind="stable").drop(columns="_order")
    return out.reindex(columns=columns, fill_value="").astype("string").fillna("").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Reading a REDCap export back
# ----------------------------------------------------------------------------------------------


class RedcapError(HipAnalyticsError):
    """A REDCap export, dictionary or mapping that cannot be read as the other two describe."""


_BOOKKEEPING = re.compile(r"redcap_(?:event_name|repeat_instrument|repeat_instance|data_access_group|"
                          r"survey_identifier)|.+_complete|.+_timestamp")
"""Columns REDCap adds to an export (events, instances, form status, survey timestamps that read
``[not completed]``): read for the structure, never as data."""

_ENTRY = "_redcap_entry"

_DATE_ORDER = {"date_dmy": "day-first", "date_mdy": "month-first", "datetime_dmy": "day-first",
               "datetime_mdy": "month-first"}


@dataclass
class _TableMap:
    table: str
    form: str
    columns: dict[str, str]
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, dict[str, str]]] = field(default_factory=list)

    def fields(self) -> list[str]:
        return [*self.columns.values(), *(f for entry in self.rows for f in entry.get("columns", {}).values())]


def _builtin_mapping() -> tuple[str, dict[str, _TableMap]]:
    fields = field_map()
    tables = {}
    for table, group in fields.groupby("table", sort=False):
        tables[table] = _TableMap(table, FORMS[table][0], dict(zip(group["column"], group["field"])))
    return RECORD_ID, tables


def _load_mapping(path: str | Path, dictionary: pd.DataFrame) -> tuple[str, dict[str, _TableMap]]:
    """A YAML mapping of a project whose field names differ from ours (see docs/redcap.md)."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RedcapError(f"{path}: not a readable YAML mapping ({exc})") from None
    if not isinstance(spec, dict) or "record_id" not in spec or not isinstance(spec.get("tables"), dict):
        raise RedcapError(f"{path}: a mapping needs 'record_id' (the project's record id field) and 'tables'")
    known = set(dictionary.index)
    tables = {}
    for table, item in spec["tables"].items():
        if table not in TABLES:
            raise RedcapError(f"{path}: unknown table {table!r}: expected one of {', '.join(TABLES)}")
        columns = {spec_.name for spec_ in table_spec(table)}
        def texts(value) -> dict[str, str]:
            return {str(k): str(v) for k, v in (value or {}).items()}

        entry = _TableMap(table, str(item.get("form", "")), texts(item.get("columns")),
                          {str(k): texts(v) for k, v in (item.get("codes") or {}).items()},
                          texts(item.get("constants")),
                          [{"set": texts(r.get("set")), "columns": texts(r.get("columns"))}
                           for r in item.get("rows") or []])
        ours = [*entry.columns, *entry.codes, *entry.constants,
                *(c for r in entry.rows for c in (*r["set"], *r["columns"]))]
        wrong = sorted(set(ours) - columns - {RECORD_ID})
        if wrong:
            raise RedcapError(f"{path}: {table} has no column {', '.join(map(repr, wrong))}: expected some of "
                              f"{', '.join(sorted(columns))}")
        missing = sorted(set(entry.fields()) - known)
        if missing:
            raise RedcapError(f"{path}: field(s) {', '.join(map(repr, missing))} of {table} are not in the data "
                              "dictionary")
        tables[table] = entry
    return str(spec["record_id"]), tables


def _read_text_table(path: str | Path, what: str) -> pd.DataFrame:
    try:
        # blank lines are rows too (skipped, counted), so row numbers stay the spreadsheet's
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RedcapError(f"{path}: cannot be read as a REDCap {what} (CSV): {exc}") from None
    return frame


def _read_dictionary(path: str | Path) -> pd.DataFrame:
    frame = _read_text_table(path, "data dictionary")
    needed = ["Variable / Field Name", "Form Name", "Field Type"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise RedcapError(f"{path}: not a REDCap data dictionary: no column {', '.join(map(repr, missing))}")
    return frame.set_index("Variable / Field Name")


@dataclass
class RedcapRows:
    """A REDCap export read into our tables, before validation.

    Attributes
    ----------
    file : str
        The export.
    tables : dict of DataFrame
        Our columns as text, and ``source_row``: the export's row (spreadsheet numbering, header
        = row 1) each row came from. One export row may give several rows (one per side).
    fields : dict
        ``(table, column) -> REDCap field`` for the messages, and ``(table, column, entry)`` for
        a column a mapping's ``rows`` fill from a different field each.
    dates : dict
        ``table -> "day-first" | "month-first"`` from the dictionary's date validations.
    rows_read, used, blank, unmapped : int
        Export rows; rows that gave at least one of ours; blank rows (nothing but REDCap's
        bookkeeping: a repeat instance or event saved empty), skipped; rows whose data are all in
        columns not mapped (another instrument's). ``rows_read == used + blank + unmapped``.
    ignored : list of str
        Export columns not mapped (listed once, as a caveat).
    """

    file: str
    tables: dict[str, pd.DataFrame]
    fields: dict[tuple[str, str], str]
    dates: dict[str, str]
    rows_read: int
    used: int
    blank: int
    unmapped: int
    ignored: list[str]
    entries: dict[str, list[int]] = field(default_factory=dict)
    """Per table and row, which entry of a mapping's ``rows`` made it (0 without ``rows``)."""

    def __str__(self) -> str:
        made = ", ".join(f"{len(frame)} {table}" for table, frame in self.tables.items() if len(frame))
        text = (f"{self.file}: {self.rows_read} REDCap rows read: {self.used} gave {made or 'nothing'}; "
                f"{self.blank} blank rows skipped; {self.unmapped} held data only in columns not mapped")
        if self.ignored:
            text += f"\n  columns not mapped (not imported): {', '.join(self.ignored[:20])}"
            text += f" and {len(self.ignored) - 20} more" if len(self.ignored) > 20 else ""
        return text

    def translate(self, report, table: str):
        """``report`` (of this table's rows) with the export's rows, the REDCap fields and the file."""
        from .records import ValidationReport

        frame = self.tables[table]
        entry = self.entries.get(table) or [0] * len(frame)
        rows = dict(zip(range(2, len(frame) + 2), zip(frame[SOURCE_ROW].astype(int), entry)))

        def translated(part: pd.DataFrame) -> pd.DataFrame:
            def row(value):
                return value if pd.isna(value) or value == 1 else rows.get(int(value), (value, 0))[0]

            def column(value, at):
                if not isinstance(value, str):
                    return value
                number = rows.get(int(at), (at, 0))[1] if not pd.isna(at) else 0
                name = self.fields.get((table, value, number)) or self.fields.get((table, value))
                return f"{value} (REDCap field {name})" if name else value

            columns = [column(c, r) for c, r in zip(part["column"], part["row"])]
            return part.assign(file=self.file, row=part["row"].map(row), column=columns)

        return ValidationReport(self.file, table, report.rows_read, translated(report.problems),
                                translated(report.normalisations))


def _values(raw: pd.DataFrame, name: str, dictionary: pd.DataFrame) -> pd.Series:
    """A field's text per row; a checkbox field (``name___code`` columns of 0/1) as its checked
    codes joined by ','."""
    if name in raw.columns:
        return raw[name].str.strip()
    kind = dictionary.at[name, "Field Type"] if name in dictionary.index else ""
    boxes = [c for c in raw.columns if c.startswith(f"{name}___")]
    if kind == "checkbox" and boxes:
        checked = pd.DataFrame({c.removeprefix(f"{name}___"): raw[c].str.strip() == "1" for c in boxes})
        return checked.apply(lambda r: ",".join(code for code, on in r.items() if on), axis=1)
    raise RedcapError(f"the export has no column {name!r} (nor its checkbox columns {name}___n): "
                      "export every field of the mapped instruments, raw data")


_NUMBER_VALIDATIONS = {"number", "integer", "number_1dp", "number_2dp", "number_1dp_comma_decimal",
                       "number_2dp_comma_decimal", "number_comma_decimal"}


def _kind_fits(kind: str, field_type: str, validation: str) -> bool:
    """Whether a REDCap field of ``field_type`` / ``validation`` can hold our column ``kind``."""
    if kind == "enum":
        return field_type in ("radio", "dropdown", "checkbox", "text", "yesno", "truefalse")
    if kind == "date":
        return field_type == "text" and validation.startswith(("date_", "datetime_"))
    if kind in ("int", "year", "float"):
        return field_type in ("text", "calc", "slider") and (validation in _NUMBER_VALIDATIONS or field_type != "text")
    return field_type in ("text", "notes", "calc", "descriptive", "sql")


def _check_dictionary(dic: pd.DataFrame, tables: dict[str, _TableMap], raw: pd.DataFrame, label: str,
                      dictionary: str | Path, record_id: str) -> None:
    """The dictionary must describe the export and our columns: every required column's field
    present, each mapped field of a type that can hold it, on the instrument the mapping expects,
    and every data column of the export a field of the dictionary (else: another project's
    dictionary, or a tampered one). Raises :class:`RedcapError` naming every mismatch."""
    problems = []
    validation = dic.get("Text Validation Type OR Show Slider Number", pd.Series("", index=dic.index)).fillna("")
    for table, tm in tables.items():
        kinds = {c.name: c for c in table_spec(table)}
        for column, name in tm.columns.items():
            spec = kinds.get(column)
            if spec is None or name not in dic.index:
                continue
            field_type, valid = str(dic.at[name, "Field Type"]).strip(), str(validation.get(name, "")).strip()
            if not _kind_fits(spec.kind, field_type, valid):
                problems.append(f"field {name!r} is {field_type}{' (' + valid + ')' if valid else ''} in the dictionary, "
                                f"but {table}.{column} needs {'a date' if spec.kind == 'date' else 'a number' if spec.kind in ('int', 'year', 'float') else 'a choice or text'}")
            form = str(dic.at[name, "Form Name"]).strip()
            if tm.form and form and form != tm.form and name != record_id:
                problems.append(f"field {name!r} is on instrument {form!r} in the dictionary, not {tm.form!r}")
    fields = set(dic.index)
    checkbox = re.compile(r"(.+)___[^_].*")
    unknown = [c for c in raw.columns if c not in fields and not _BOOKKEEPING.fullmatch(c)
               and not (checkbox.fullmatch(c) and checkbox.fullmatch(c).group(1) in fields)]
    if unknown:
        problems.append(f"the export has {len(unknown)} column(s) the dictionary does not list: "
                        f"{', '.join(map(repr, unknown[:8]))}{' ...' if len(unknown) > 8 else ''}")
    if problems:
        raise RedcapError(f"{dictionary} does not describe {label}: " + "; ".join(problems)
                          + ". Give the data dictionary of the project this export came from (Project Setup > "
                            "Data Dictionary > Download), or a --mapping for a project whose fields differ")


def _choices(dic: pd.DataFrame, name: str) -> dict[str, str]:
    """A radio or dropdown field's choices, raw code -> label (``1, Left | 2, Right``)."""
    if name not in dic.index or str(dic.at[name, "Field Type"]).strip() not in ("radio", "dropdown"):
        return {}
    text = str(dic.get("Choices, Calculations, OR Slider Labels", pd.Series(dtype=str)).get(name, "") or "")
    pairs = [part.split(",", 1) for part in text.split("|") if "," in part]
    return {code.strip(): label.strip() for code, label in pairs}


def read_redcap(export: str | Path, dictionary: str | Path, mapping: str | Path | None = None) -> RedcapRows:
    """Read a REDCap "CSV (raw data)" export into our tables (text, not yet validated).

    Parameters
    ----------
    export : path
        The export: classic or longitudinal (``redcap_event_name``), with repeating instruments
        (``redcap_repeat_instrument``, ``redcap_repeat_instance``) or repeating events.
    dictionary : path
        The project's data dictionary (field types, date formats, checkbox fields).
    mapping : path, optional
        A YAML mapping (see ``docs/redcap.md``); by default our own dictionary's field names.

    Raises
    ------
    RedcapError
        When the files do not fit together (a mapped field missing from the export, a record id
        column missing, a mapping naming columns we do not have).
    """
    label = str(export)
    dic = _read_dictionary(dictionary)
    record_id, tables = _builtin_mapping() if mapping is None else _load_mapping(mapping, dic)
    if mapping is None:  # a project built from an earlier dictionary of ours lacks the newer, optional fields
        required = {(t, c.name) for t in TABLES for c in table_spec(t) if c.required and not c.nullable}
        lacking = [f for t, m in tables.items() for c, f in m.columns.items()
                   if f not in dic.index and (t, c) in required and f != record_id
                   and any(g in dic.index for g in m.columns.values())]
        if lacking:
            raise RedcapError(f"{dictionary}: the data dictionary has no field {', '.join(map(repr, lacking))}, which "
                              "our tables require: give the project's own dictionary (Project Setup > Data "
                              "Dictionary > Download), or a --mapping for a project whose fields differ")
        tables = {t: replace(m, columns={c: f for c, f in m.columns.items() if f in dic.index})
                  for t, m in tables.items()}
        tables = {t: m for t, m in tables.items() if m.columns}
    raw = _read_text_table(export, "export")
    if record_id not in raw.columns:
        raise RedcapError(f"{label}: no record id column {record_id!r}: not an export of this project "
                          "(or give --mapping with its record_id)")
    _check_dictionary(dic, tables, raw, label, dictionary, record_id)
    n = len(raw)
    instrument = (raw["redcap_repeat_instrument"].str.strip() if "redcap_repeat_instrument" in raw
                  else pd.Series("", index=raw.index))
    validation = dic.get("Text Validation Type OR Show Slider Number", pd.Series(dtype=str))
    repeating = set(instrument[instrument != ""])
    gave = pd.Series(0, index=raw.index)
    anything = pd.Series(False, index=raw.index)  # a mapped field filled, whatever the instrument
    out: dict[str, pd.DataFrame] = {}
    names: dict[tuple, str] = {}
    entries: dict[str, list[int]] = {}
    dates: dict[str, str] = {}
    used_columns = {record_id}
    specs = {t: {c.name: c.aliases or dict.fromkeys(c.allowed) for c in table_spec(t)} for t in TABLES}
    for table in TABLES:
        tm = tables.get(table)
        if tm is None:
            continue
        own = instrument == tm.form if tm.form in repeating else instrument == ""
        values = {f: _values(raw, f, dic) for f in dict.fromkeys(tm.fields())}
        used_columns |= {c for f in values for c in raw.columns if c == f or c.startswith(f"{f}___")}
        data = {f: v for f, v in values.items() if f != record_id}  # the record id is on every row
        filled = pd.DataFrame(data).ne("").any(axis=1) if data else pd.Series(False, index=raw.index)
        anything |= filled
        rows = raw.index[own & filled]
        orders = {_DATE_ORDER[kind] for kind in validation.reindex(list(values)).dropna() if kind in _DATE_ORDER}
        if len(orders) > 1:
            raise RedcapError(f"the dictionary's date fields of {table} mix day-first and month-first formats")
        if orders:
            dates[table] = orders.pop()
        parts = []
        for number, entry in enumerate(tm.rows or [{"set": {}, "columns": {}}]):
            part = pd.DataFrame({RECORD_ID: raw.loc[rows, record_id].str.strip()})
            for column, name in {**tm.columns, **entry["columns"]}.items():
                text = values[name].loc[rows]
                codes = tm.codes.get(column)  # the mapping's own translation comes first
                known = {k.casefold() for k in specs[table].get(column, {})}
                choices = {c: lab for c, lab in _choices(dic, name).items() if c.casefold() not in known}
                part[column] = text.map(lambda v, codes=codes, choices=choices: (codes or {}).get(v) or
                                        choices.get(v, v) if v else v)
                names[(table, column)] = name
            for column, name in entry["columns"].items():  # this row's own field for the column
                names[(table, column, number)] = name
            part[_ENTRY] = number
            for column, value in {**tm.constants, **entry["set"]}.items():
                part[column] = value
            if entry["columns"]:  # one of several rows per REDCap row: only where its own fields are filled
                own_fields = pd.DataFrame({f: values[f].loc[rows] for f in entry["columns"].values()})
                part = part[own_fields.ne("").any(axis=1)]
            part[SOURCE_ROW] = part.index + 2
            parts.append(part)
        frame = pd.concat(parts).sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)
        gave = gave.add(frame[SOURCE_ROW].sub(2).value_counts().reindex(raw.index, fill_value=0), fill_value=0)
        entries[table] = frame.pop(_ENTRY).tolist()
        out[table] = frame
    ignored = [c for c in raw.columns if c not in used_columns and not _BOOKKEEPING.fullmatch(c)]
    other = raw[ignored].apply(lambda c: c.str.strip() != "").any(axis=1) if ignored else anything & False
    used = int((gave > 0).sum())
    skipped = int(((gave == 0) & ~anything & ~other).sum())  # nothing but REDCap's bookkeeping
    return RedcapRows(label, out, names, dates, n, used, skipped, n - used - skipped, ignored, entries)


def import_redcap(store, export: str | Path, dictionary: str | Path, mapping: str | Path | None = None, *,
                  mode: str = "strict", quarantine_dir: str | Path | None = None, dates: str | None = None,
                  who: str | None = None) -> tuple[RedcapRows, dict[str, Any]]:
    """Import a REDCap export into ``store`` table by table (patients first), through the same
    validation, quarantine and row accounting as any file.

    The tables are stored in one transaction: in strict mode an error anywhere imports nothing. Messages and quarantine files name the export's rows and the REDCap fields.

    Returns
    -------
    (RedcapRows, dict)
        What was read, and ``table -> ImportSummary`` (its report translated to the export).
    """
    from .store.imports import import_derived

    rows = read_redcap(export, dictionary, mapping)
    labels = {t: f"{Path(export).name} [REDCap {FORMS[t][0]}]" for t in rows.tables}
    folder = quarantine_dir if quarantine_dir is not None else Path(export).resolve().parent
    summaries = import_derived(store, rows, labels, origin=rows.file, mode=mode, quarantine_dir=folder,
                               dates=dates, who=who)
    return rows, summaries
