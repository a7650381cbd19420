"""REDCap: a data dictionary generated from our tables, and our records in REDCap's import format.

A research team builds its REDCap project from :func:`redcap_dictionary` in one upload: four
instruments (``patient``; ``program``, ``rom_visit`` and ``session_log``, each to be set up as a
repeating instrument), every column of ours as one field with our codes as the choices of its
radio buttons, dates, whole numbers and numbers validated with our limits, identifiers marked, and
the field annotation naming the column it holds (``hipanalytics: measurements.degrees``).
:func:`redcap_records` writes a store's tables in the "CSV (raw data)" layout REDCap imports for
that dictionary: one row per patient, and one per program, measurement and session as instances
of the repeating instruments.

The field names are ours with a prefix per instrument, because REDCap needs every name unique in
a project and ours repeat across tables (``notes``): see :func:`field_map` and
``docs/redcap.md``.

Examples
--------
>>> d = redcap_dictionary()
>>> d.iloc[0][["Variable / Field Name", "Form Name", "Field Type"]].tolist()
['patient_id', 'patient', 'text']
>>> d.set_index("Variable / Field Name").loc["rom_side", "Choices, Calculations, OR Slider Labels"]
'left, left | right, right'
"""

from __future__ import annotations

import pandas as pd

from .records.columns import HIP_IR_ERROR_RANGE, TABLES, ColumnSpec, table_spec

__all__ = ["DICTIONARY_COLUMNS", "FORMS", "field_map", "redcap_dictionary", "redcap_records"]

DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)
"""The columns of a REDCap data dictionary (CSV), in REDCap's order."""

FORMS = {"patients": ("patient", ""), "programs": ("program", "prg_"), "measurements": ("rom_visit", "rom_"),
         "sessions": ("session_log", "ses_")}
"""Our table -> (REDCap instrument, field-name prefix). ``patients`` is the non-repeating first
instrument; its ``patient_id`` is the project's record id."""

RECORD_ID = "patient_id"

# Columns a REDCap project flags as identifiers, so its de-identified exports leave them out: the
# display name, and free text, which may hold anything (our research exports drop it too).
_IDENTIFIERS = {("patients", "display_name"), ("measurements", "notes"), ("sessions", "notes")}

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
    if not spec.nullable and (spec.required or spec.name == RECORD_ID):
        row["Required Field?"] = "y"
    return row


def redcap_dictionary() -> pd.DataFrame:
    """The REDCap data dictionary of our four tables (write it with ``to_csv(index=False)``).

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
        row per patient, then per program, measurement and session of that patient, numbered 1,
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
