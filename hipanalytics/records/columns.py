"""Columns and vocabulary: what each table holds, the words clinics use for it, and the limits.

Everything the reader, the normalisers, the rules, the data dictionary and the store know about a
column comes from :func:`table_spec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pandera.pandas as pa

from ..config import WINDOWS_RESERVED

__all__ = ["TABLES", "ALLOCATIONS", "LATEST_DAY_COLUMNS", "SOURCE_ROW", "ORIGINAL_ROW", "ColumnSpec", "DateOrder", "DTYPES", "HIP_IR_ERROR_RANGE",
           "HIP_IR_WARNING_RANGE", "ID_PATTERN", "ID_RULE", "ID_COLUMN", "valid_id", "FORMULA_TRIGGERS", "table_spec", "schema",
           "column_letter", "RESEARCH_EXPORT"]

TABLES = ("patients", "programs", "measurements", "sessions", "episodes")
ALLOCATIONS = ("daily", "three-per-week")
"""The schedules a patient can be allocated to (``patients.allocation``): the two arms the cohort
report compares."""
LATEST_DAY_COLUMNS = (("measurements", "measured_on"), ("sessions", "performed_on"), ("episodes", "end_date"))
"""The dates that make a store's latest day (visits, sessions, discharges): the day a report is
made for unless told otherwise."""
SOURCE_ROW = "source_row"
"""Column added to read data: the row number as the spreadsheet shows it (header = row 1). A file
that has a column of this name is a quarantine file (see :data:`ORIGINAL_ROW`)."""

ORIGINAL_ROW = "original_row"
"""Column added when a corrected quarantine file is read: the row number in the file first
imported, taken from the quarantine file's ``source_row`` column and kept for the audit."""

DateOrder = Literal["day-first", "month-first"]

ID_COLUMN = {"patients": "patient_id", "programs": "program_id", "measurements": "measurement_id",
             "sessions": "session_id", "episodes": "episode_id"}
"""The id column of each table."""

ID_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?")
ID_RULE = ("letters A-Z a-z, digits 0-9 and . _ - / only, starting and ending with a letter or digit, "
           "with no '..' and no '//', and no part that Windows reserves as a device name (CON, PRN, AUX, NUL, "
           "COM1-COM9, LPT1-LPT9, also with an extension such as NUL.txt)")

"""The id rule for patient and program ids. They name files and appear in links, so nothing that
could climb out of a folder (``../``) or hide in a file name is accepted; the length limit is each
column's ``max_length``. Measurement and session ids (often derived, ``M|P001|2026-01-05|...``) only
need printable text within their length."""



def valid_id(text: str, max_length: int = 64) -> bool:
    """Whether ``text`` follows :data:`ID_RULE` within ``max_length`` characters.

    Examples
    --------
    >>> [valid_id(t) for t in ("P001", "Q/1", "2026/001-a", "../../etc/passwd", "A..B", "P 001", "")]
    [True, True, True, False, False, False, False]
    >>> [valid_id(t) for t in ("CON", "nul.txt", "lpt1", "Aux", "site/COM3", "CONSTANCE", "NUL1")]
    [False, False, False, False, False, True, True]
    """
    return (0 < len(text) <= max_length and bool(ID_PATTERN.fullmatch(text)) and ".." not in text
            and "//" not in text and not any(part.split(".")[0].casefold() in WINDOWS_RESERVED
                                             for part in text.split("/")))


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection)."""


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
    max_length: int | None = None
    """Longest text accepted (characters); id and text columns only."""
    id_rule: bool = False
    """Whether values must follow :data:`ID_RULE` (ids a clinic gives)."""


# Plausibility limits for hip IR (DESIGN.md section 10): outside -20..90 degrees is an error
# (a slip or a different measurement); outside 0..60 is a warning. Normal adult means are about
# 29-50 degrees, SD 5-11 (J Athl Train 2018;53(6):560, Table 1).
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
_DISCHARGE_ALIASES = {
    "goals_met": "goals_met", "goals met": "goals_met", "goal met": "goals_met", "goals achieved": "goals_met",
    "plateau": "plateau", "plateaued": "plateau", "levelled off": "plateau", "leveled off": "plateau",
    "patient_choice": "patient_choice", "patient choice": "patient_choice", "self-discharged": "patient_choice",
    "self discharged": "patient_choice",
    "referred_on": "referred_on", "referred on": "referred_on", "referred": "referred_on",
    "did_not_return": "did_not_return", "did not return": "did_not_return", "dna": "did_not_return",
    "lost to follow-up": "did_not_return", "lost to follow up": "did_not_return",
    "other": "other",
}
_SEX_ALIASES = {"f": "female", "female": "female", "m": "male", "male": "male", "x": "other",
                "other": "other", "unknown": "unknown"}


def _enum(name, description, example, aliases, **kw) -> ColumnSpec:
    allowed = tuple(dict.fromkeys(aliases.values()))
    return ColumnSpec(name, "enum", description, example, allowed=allowed, aliases=aliases, **kw)


def _text(name, description, example, max_length, **kw) -> ColumnSpec:
    return ColumnSpec(name, "text", description, example, max_length=max_length, **kw)


def _given_id(name, description, example, max_length, **kw) -> ColumnSpec:
    return ColumnSpec(name, "id", description, example, max_length=max_length, id_rule=True, **kw)


_PATIENT_ID = _given_id("patient_id", "the clinic's patient id (not a name)", "P001", 64)
_SPECS: dict[str, tuple[ColumnSpec, ...]] = {
    "patients": (
        _PATIENT_ID,
        ColumnSpec("birth_year", "year", "year of birth", "1971", minimum=1900),
        _enum("sex", "sex as recorded", "female", _SEX_ALIASES, required=False, nullable=True),
        _enum("involved_side", "the painful hip(s)", "right", _SIDE_ALIASES),
        _text("site", "clinic site", "north", 100, required=False, nullable=True),
        _text("cohort", "research cohort: a free label to select patients by (not an allocation: see allocation)",
              "trial-A", 100, required=False, nullable=True),
        _enum("allocation", "randomised arm: the schedule the patient was allocated to; empty: not allocated "
              "(the first program's schedule counts, an observational comparison)", "daily",
              {**{a: a for a in ALLOCATIONS}, "three per week": "three-per-week"},
              required=False, nullable=True),
        ColumnSpec("allocated_on", "date", "allocation date: time zero of the cohort comparison; needs an "
                   "allocation; empty: the first program's start", "2026-01-05", required=False, nullable=True),
        _text("display_name", "name shown on reports (sensitive)", "Jo Bloggs", 200, required=False, nullable=True),
    ),
    "programs": (
        _given_id("program_id", "program id", "P001-20260105-daily", 128),
        _PATIENT_ID,
        ColumnSpec("protocol_id", "id", "protocol id", "hip-ir-breakouts", max_length=64),
        _text("protocol_version", "protocol version", "1.0.0", 32),
        _text("schedule", "schedule id or custom weekdays", "three-per-week", 64),
        ColumnSpec("start_date", "date", "first day", "2026-01-05"),
        ColumnSpec("end_date", "date", "last day (inclusive)", "2026-02-15"),
        _text("breakout_slot", "slot carrying the breakouts; empty: the schedule's own", "evening", 32,
              required=False, nullable=True),
        _text("choices", "exercise chosen for a one-of item, as choice=exercise (several: separate with ;)",
              "ninety-ninety=ninety-ninety-ir-pails", 500, required=False, nullable=True),
        _text("dose_overrides", "changed doses as JSON, exercise -> sets/reps/hold_s",
              '{"ninety-ninety-ir-stretch": {"sets": "4"}}', 2000, required=False, nullable=True),
        _text("omit", "breakout exercises left out, comma-separated", "quadruped-band-ir", 500,
              required=False, nullable=True),
        _text("reason", "why prescribed or changed", "pain after daily breakouts", 500, required=False,
              nullable=True),
        _given_id("episode_id", "episode of care the program belongs to; empty: found from the programs' dates",
                  "P001-E1", 128, required=False, nullable=True),
    ),
    "measurements": (
        ColumnSpec("measurement_id", "id", "row id; derived from the other columns when absent", "M0001",
                   required=False, nullable=True, max_length=256),
        _PATIENT_ID,
        ColumnSpec("measured_on", "date", "date of the visit", "2026-01-05"),
        _enum("side", "side measured", "left", {k: v for k, v in _SIDE_ALIASES.items() if v != "both"}),
        _text("joint", "joint measured", "hip", 32, required=False, nullable=True),
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
        _text("assessor", "who measured", "AB", 100, required=False, nullable=True),
        _text("notes", "free text (dropped from research exports)", "", 2000, required=False, nullable=True),
    ),
    "sessions": (
        ColumnSpec("session_id", "id", "row id; derived from the other columns when absent", "S0001",
                   required=False, nullable=True, max_length=256),
        _PATIENT_ID,
        ColumnSpec("performed_on", "date", "date of the session", "2026-01-05"),
        _text("performed_at", "time of day, HH:MM", "08:15", 8, required=False, nullable=True),
        ColumnSpec("session", "id", "session template id (breakouts, sequence, custom)", "breakouts",
                   max_length=64),
        _enum("completion", "how much was done", "full", _COMPLETION_ALIASES),
        ColumnSpec("rounds_done", "int", "circuit rounds done", "3", minimum=0, maximum=20,
                   required=False, nullable=True),
        ColumnSpec("pain_before", "int", "NPRS pain before, 0-10", "2", minimum=0, maximum=10,
                   required=False, nullable=True, source="NPRS 0-10 (Farrar et al., Pain 2001)"),
        ColumnSpec("pain_after", "int", "NPRS pain after, 0-10", "3", minimum=0, maximum=10,
                   required=False, nullable=True, source="NPRS 0-10 (Farrar et al., Pain 2001)"),
        ColumnSpec("pain_next_day", "int", "NPRS pain the next morning, after this session, 0-10", "2", minimum=0,
                   maximum=10, required=False, nullable=True,
                   source="pain should settle by the next morning (pain-monitoring model: Silbernagel et al., "
                          "Am J Sports Med 2007;35(6):897-906)"),
        _text("notes", "free text (dropped from research exports)", "", 2000, required=False, nullable=True),
    ),
    "episodes": (
        _given_id("episode_id", "episode of care id", "P001-E1", 128),
        _PATIENT_ID,
        ColumnSpec("start_date", "date", "first day of the episode (evaluation or first program)", "2026-01-05"),
        ColumnSpec("end_date", "date", "discharge date; empty while the episode is open", "2026-03-01",
                   required=False, nullable=True),
        _enum("discharge_reason", "why the episode ended", "goals_met", _DISCHARGE_ALIASES, required=False,
              nullable=True),
        _text("notes", "free text (dropped from research exports)", "", 2000, required=False, nullable=True),
    ),
}


_PSEUDONYM = ("pseudonymised", "keyed-hash pseudonym (HMAC-SHA256 with the exporter's key)")
_SHIFTED = ("shifted", "moved by the patient's date shift (whole weeks, never 0)")
_KEPT = ("kept", "as stored (a number or a value of a fixed list)")


def _recoded(what: str) -> tuple[str, str]:
    return ("recoded", f"kept when {what}; any other value replaced by a keyed code")


RESEARCH_EXPORT: dict[str, dict[str, tuple[str, str]]] = {
    "patients": {
        "patient_id": _PSEUDONYM,
        "birth_year": ("generalised", "exported as `age_band`: 5-year band of the age at time zero, 90 and above "
                                      "as `90+` (wider with `--generalise`)"),
        "sex": _KEPT, "involved_side": ("kept", "as stored; `one` or `both` when `--generalise` needs it"),
        "site": ("pseudonymised", "keyed code per site (suppressed by `--generalise` when needed)"),
        "cohort": _recoded("a schedule or allocation name"),
        "allocation": _KEPT, "allocated_on": _SHIFTED,
    },
    "programs": {
        "program_id": _PSEUDONYM, "patient_id": _PSEUDONYM,
        "protocol_id": _recoded("the id of a shipped protocol"),
        "protocol_version": _recoded("a version number (digits and dots)"),
        "schedule": _recoded("a protocol's schedule id or a list of weekdays"),
        "start_date": _SHIFTED, "end_date": _SHIFTED,
        "breakout_slot": _recoded("a protocol's slot id"),
        "choices": _recoded("every part is a protocol's choice or exercise id"),
        "dose_overrides": _recoded("JSON of exercise ids to sets/reps/hold_s numbers"),
        "omit": _recoded("every part is a protocol's exercise id"),
        "episode_id": _PSEUDONYM,
    },
    "measurements": {
        "measurement_id": _PSEUDONYM, "patient_id": _PSEUDONYM, "measured_on": _SHIFTED, "side": _KEPT,
        "joint": _recoded("`hip`"), "motion": _KEPT, "position": _KEPT, "mode": _KEPT, "instrument": _KEPT,
        "degrees": _KEPT, "trial": _KEPT,
    },
    "sessions": {
        "session_id": _PSEUDONYM, "patient_id": _PSEUDONYM, "performed_on": _SHIFTED,
        "performed_at": ("generalised", "the hour only (`08:15` -> `08:00`); anything else emptied"),
        "session": _recoded("a protocol's session id"),
        "completion": _KEPT, "rounds_done": _KEPT, "pain_before": _KEPT, "pain_after": _KEPT, "pain_next_day": _KEPT,
    },
    "episodes": {
        "episode_id": _PSEUDONYM, "patient_id": _PSEUDONYM, "start_date": _SHIFTED, "end_date": _SHIFTED,
        "discharge_reason": _KEPT,
    },
}
"""The research export's allow-list (:func:`hipanalytics.store.deidentify`): per table, every
column exported and its treatment (``kept``, ``pseudonymised``, ``shifted``, ``generalised``,
``recoded``), with how. A column not listed (names, free-text notes, reasons, assessors, and any
column added later until it is listed here) is dropped."""


def table_spec(table: str) -> tuple[ColumnSpec, ...]:
    """The column definitions of a table (``patients``, ``programs``, ``measurements``, ``sessions``,
    ``episodes``)."""
    if table not in _SPECS:
        raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
    return _SPECS[table]


DTYPES = {"id": "str", "text": "str", "enum": "str", "date": "datetime64[s]", "int": "Int64",
          "year": "Int64", "float": "float64"}
"""The pandas dtype of each column kind in normalised data."""


def schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema that normalised data of ``table`` must satisfy.

    Checks types, empty cells, allowed values and hard limits; hip-IR plausibility and
    cross-row rules are applied by :func:`hipanalytics.records.read_records`.
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
        columns[spec.name] = pa.Column(DTYPES[spec.kind], checks=checks, nullable=spec.nullable,
                                       required=spec.required)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def column_letter(position: int) -> str:
    """The spreadsheet letter of a 1-based column position.

    Examples
    --------
    >>> column_letter(1), column_letter(26), column_letter(27), column_letter(703)
    ('A', 'Z', 'AA', 'AAA')
    """
    letters = ""
    while position > 0:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
