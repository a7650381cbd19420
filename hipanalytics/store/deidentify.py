"""The de-identified research export: an allow-list of columns, keyed pseudonyms and codes, one
date shift per patient that is never 0, ages in bands, and a small-cell (k-anonymity) check.

What each column becomes is :data:`hipanalytics.records.columns.RESEARCH_EXPORT` (shown in the
data dictionary); :data:`DEIDENTIFY_NOTE` is the method as the export's README states it. This is
pseudonymisation with generalisation, not anonymisation: we do not claim HIPAA's Safe Harbor
(exported dates keep their weekday and intervals, which Safe Harbor forbids) and the export is
meant for a recipient bound by a data-use agreement, with an expert determination where the law
requires one.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import string
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import StoreError
from ..records import TABLES, table_spec
from ..records.columns import ALLOCATIONS, RESEARCH_EXPORT
from .export import EXPORT_FORMATS, text_columns, write_table

if TYPE_CHECKING:
    from .core import Store

__all__ = ["DEIDENTIFY_NOTE", "KEY_BITS", "K_ANONYMITY", "QUASI_IDENTIFIERS", "ResearchExport", "check_key",
           "date_shift_weeks", "deidentify", "export_research", "small_cells"]

KEY_BITS = 256
"""The least a de-identification key must hold: 32 random bytes (``hipanalytics key`` writes 64 hex
digits). A key's pseudonyms are only as hard to recompute as the key is to guess."""

SHIFT_WEEKS = 26
"""Dates move by 1 to 26 whole weeks (7-182 days), earlier or later, never 0."""

K_ANONYMITY = 5
"""The default k of the small-cell check: a combination of quasi-identifiers shared by fewer than 5
patients is flagged. k-anonymity: Sweeney, Int J Uncertain Fuzziness Knowl-Based Syst
2002;10(5):557-570; its use for health data: El Emam & Dankar, JAMIA 2008;15(5):627-637. The 5 is
our choice for a pseudonymised extract shared under a data-use agreement (public releases ask for
more: CMS suppresses cells under 11); ``--k`` changes it."""

QUASI_IDENTIFIERS = ("age_band", "sex", "involved_side", "site", "cohort")
"""Exported patient columns an outsider may know about a patient and link on."""

DEIDENTIFY_NOTE = """\
# De-identified research export

Made by hipanalytics from a clinic store. This is a *pseudonymised* extract for a recipient bound
by a data-use agreement; it is not anonymous. It does not follow HIPAA's Safe Harbor method (dates
keep their weekdays and the intervals between them, and ages are given in bands below 90): where
the law asks for de-identification, have it confirmed by expert determination (45 CFR 164.514(b)(1)).

Every column exported is on an allow-list, each with its treatment (the full list, per column, is
in the data dictionary and in `columns.csv` beside this file); any other column is dropped:

- **Patient and record ids** are replaced by keyed-hash pseudonyms (HMAC-SHA256 with the exporter's
  secret key of at least 32 random bytes; prefixes `R-`, `RP-`, `RM-`, `RS-`, `RE-`). The same key
  gives the same pseudonyms in every export, so exports can be linked; without the key the mapping
  cannot be recomputed or reversed. Sites get keyed codes (`site-...`) likewise.
- **Categories that could carry free text** (cohort, protocol, schedule, slot, choices, omitted
  exercises, dose overrides, joint, session) are kept only when the value belongs to the
  protocols' vocabulary (schedule, slot, session and exercise ids, allocations, version numbers);
  any other value is replaced by a keyed code (`cohort-...`), so a name typed into a label never
  leaves the clinic.
- **Dates** of each patient are shifted by one whole number of weeks, from 1 to 26 (7 to 182 days)
  earlier or later, derived from the key and the same in every table, never 0: intervals between a
  patient's dates and every weekday are kept, calendar dates are not. A later shift that would
  carry any of the patient's dates past the export day is made the earlier shift of the same size
  instead, so no exported date lies after the export day unless the record itself does (a planned
  program end), and a date's position gives away neither the sign nor the size of its shift.
- **Times of day** are cut to the hour.
- **Birth year** becomes `age_band`: the age at time zero (the first program's start, or the first
  record) in 5-year bands, 90 and above as `90+`.
- **Dropped**: names, free-text notes, program reasons, assessors, and any column not on the list.
- Only the current state is exported: superseded and voided versions are left out.

Keep the key apart from the export: anyone holding both could re-identify patients whose ids they know.
"""


# ----------------------------------------------------------------------------------------------
# The key
# ----------------------------------------------------------------------------------------------

_HEX = set(string.hexdigits)
_BASE64 = set(string.ascii_letters + string.digits + "+/=-_")
_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


def check_key(key: bytes) -> None:
    """Refuse a key that cannot hold 32 random bytes, or that looks far from random.

    The capacity counts the bits each character can carry (hex 4, base64 6, other printable text
    6.6, anything else 8); a key also has to be incompressible (zlib shrinks no random key below
    three quarters of its length, and a repeated or patterned one well below) and must not repeat
    one character.

    Raises
    ------
    StoreError
        Saying what is wrong and how to make a key (``hipanalytics key FILE``).

    Examples
    --------
    >>> import secrets
    >>> check_key(secrets.token_hex(32).encode())
    >>> check_key(b"0123456789abcdef" * 4)
    Traceback (most recent call last):
    ...
    hipanalytics.errors.StoreError: the de-identification key looks far from random (it repeats or follows a pattern): make one with `hipanalytics key FILE` (32 random bytes)
    """
    text = key.decode("latin-1")
    chars = set(text)
    bits = 4 if chars <= _HEX else 6 if chars <= _BASE64 else math.log2(95) if chars <= _PRINTABLE else 8
    make = "make one with `hipanalytics key FILE` (32 random bytes)"
    if bits * len(text) < KEY_BITS:
        raise StoreError(f"the de-identification key is too short: {len(text)} characters hold at most "
                         f"{bits * len(text):.0f} random bits, {KEY_BITS} are needed; {make}")
    top = Counter(text).most_common(1)[0][1]
    if len(zlib.compress(key, 9)) < 0.75 * len(key) or top > max(len(text) // 4, 4):
        raise StoreError(f"the de-identification key looks far from random (it repeats or follows a pattern): {make}")


# ----------------------------------------------------------------------------------------------
# Pseudonyms, codes, shifts
# ----------------------------------------------------------------------------------------------

def _digest(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), "sha256").digest()


def _keyed(key: bytes, label: str, values: pd.Series, prefix: str) -> pd.Series:
    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
        return prefix + _digest(key, f"{label}:{v}").hex()[:12]

    return values.map(one).astype("str")


def date_shift_weeks(key: bytes, patient_id: str) -> int:
    """The patient's date shift before the export-day rule: 1 to 26 weeks, earlier (negative) or later,
    never 0, from the keyed hash of the patient id (uniform over the 52 values).

    Examples
    --------
    >>> import secrets
    >>> key = secrets.token_hex(32).encode()
    >>> shifts = {date_shift_weeks(key, f"P{i}") for i in range(2000)}
    >>> 0 in shifts, min(shifts), max(shifts), len(shifts)
    (False, -26, 26, 52)
    """
    k = int.from_bytes(_digest(key, f"shift:{patient_id}")[:8], "big") % (2 * SHIFT_WEEKS)
    return k - SHIFT_WEEKS if k < SHIFT_WEEKS else k - SHIFT_WEEKS + 1


def _vocabulary() -> dict[str, set[str]]:
    """The words the recoded columns may keep: the shipped protocols' ids, versions, schedules, slots,
    sessions, exercises and choices."""
    from ..protocol import list_protocols, load_protocol

    words: dict[str, set[str]] = {k: set() for k in ("protocol", "schedule", "slot", "session", "exercise")}
    found = list_protocols()
    for pid in found.loc[found["problem"].fillna("") == "", "id"]:  # a broken protocol file narrows the vocabulary
        p = load_protocol(pid)
        words["protocol"].add(p.id)
        words["schedule"] |= {s.id for s in p.schedules}
        words["slot"] |= {slot.id for s in p.schedules for slot in s.slots}
        words["session"] |= {s.id for s in p.sessions}
        words["exercise"] |= {e.id for e in p.exercises} | {c.id for c in p.choices()}
    return words


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_VERSION = re.compile(r"\d{1,4}(?:\.\d{1,4}){0,3}")
_PARTS = re.compile(r"[;,=]")


def _doses_known(text: str, exercises: set[str]) -> bool:
    try:
        doses = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(doses, dict) and all(
        ex in exercises and isinstance(d, dict) and all(
            k in ("sets", "reps", "hold_s") and re.fullmatch(r"\d{1,3}(?:\.\d)?", str(v)) for k, v in d.items())
        for ex, d in doses.items())


def _known(column: str, vocabulary: dict[str, set[str]]):
    """Whether a value of ``column`` may be exported as it is (a predicate on the stored text)."""
    exercises = vocabulary["exercise"]
    weekdays = re.compile(rf"(?:custom:)?(?:{'|'.join(_WEEKDAYS)})(?:,(?:{'|'.join(_WEEKDAYS)}))*")
    rules = {
        "cohort": lambda v: v in vocabulary["schedule"] or v in ALLOCATIONS,
        "protocol_id": lambda v: v in vocabulary["protocol"],
        "protocol_version": lambda v: bool(_VERSION.fullmatch(v)),
        "schedule": lambda v: v in vocabulary["schedule"] or bool(weekdays.fullmatch(v)),
        "breakout_slot": lambda v: v in vocabulary["slot"],
        "choices": lambda v: all(p.strip() in exercises for p in _PARTS.split(v)),
        "omit": lambda v: all(p.strip() in exercises for p in _PARTS.split(v)),
        "dose_overrides": lambda v: _doses_known(v, exercises),
        "joint": lambda v: v == "hip",
        "session": lambda v: v in vocabulary["session"],
    }
    return rules[column]


def _recode(key: bytes, column: str, values: pd.Series, known) -> pd.Series:
    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
        return v if known(str(v)) else f"{column.replace('_', '-')}-" + _digest(key, f"{column}:{v}").hex()[:8]

    return values.map(one).astype("str")


def _hour(values: pd.Series) -> pd.Series:
    hours = values.astype("str").str.extract(r"^\s*(\d{1,2})[:.h]\d{2}")[0]
    hour = pd.to_numeric(hours, errors="coerce")
    return hour.map(lambda h: f"{int(h):02d}:00" if pd.notna(h) and h < 24 else None).astype("str")


def _age_band(age: pd.Series, width: int) -> pd.Series:
    def one(a):
        if pd.isna(a):
            return None
        if a >= 90:
            return "90+"
        low = int(a // width * width)
        return f"{low}-{min(low + width - 1, 89)}"

    return age.map(one).astype("str")


# ----------------------------------------------------------------------------------------------
# De-identification
# ----------------------------------------------------------------------------------------------

def deidentify(tables: dict[str, pd.DataFrame], key: bytes, *, as_of: date | None = None,
               age_band_years: int = 5) -> dict[str, pd.DataFrame]:
    """De-identify current-state tables for research (see :data:`DEIDENTIFY_NOTE`).

    Parameters
    ----------
    tables : dict of DataFrame
        Any of ``patients``, ``programs``, ``measurements``, ``sessions``, ``episodes`` as read from the
        store.
    key : bytes
        The exporter's secret (:func:`check_key`: at least 32 random bytes).
    as_of : date, optional
        The export day (default today): no patient's later shift carries a date past it.
    age_band_years : int
        Width of the age bands (5; 10 or 20 to generalise).

    Returns
    -------
    dict of DataFrame
        New frames with only the allow-listed columns; the inputs are not modified.

    Examples
    --------
    >>> import secrets
    >>> patients = pd.DataFrame({"patient_id": ["P001"], "birth_year": [1971], "sex": ["female"],
    ...                          "involved_side": ["left"], "cohort": ["John Smith's group"], "display_name": ["Jo"]})
    >>> out = deidentify({"patients": patients}, secrets.token_hex(32).encode())["patients"]
    >>> out.columns.tolist()
    ['patient_id', 'age_band', 'sex', 'involved_side', 'cohort']
    >>> bool(out["cohort"].str.startswith("cohort-").all())
    True
    """
    check_key(key)
    today = pd.Timestamp(as_of or date.today())
    vocabulary = _vocabulary()
    all_ids = pd.concat([t["patient_id"] for t in tables.values() if "patient_id" in t], ignore_index=True)
    patient_ids = pd.unique(all_ids.dropna())
    latest: dict[str, pd.Timestamp] = {}
    first_dates: dict[str, pd.Timestamp] = {}
    for name, frame in tables.items():
        dates = [s.name for s in table_spec(name) if s.kind == "date" and s.name in frame]
        if "patient_id" not in frame or not dates or frame.empty:
            continue
        stamps = frame[dates].apply(pd.to_datetime)
        stamps = stamps.where(stamps <= today)  # a planned future end moves past the export day whatever its shift
        for pid, last in stamps.max(axis=1).groupby(frame["patient_id"]).max().items():
            if pd.notna(last) and (pid not in latest or last > latest[pid]):
                latest[pid] = last
    for name, column in (("programs", "start_date"), ("measurements", "measured_on"), ("sessions", "performed_on")):
        if name in tables and not tables[name].empty:  # program start first; records only as a fallback
            for pid, d in tables[name].groupby("patient_id")[column].min().items():
                first_dates.setdefault(pid, d)
    shift_weeks = {}
    for pid in patient_ids:
        weeks = date_shift_weeks(key, pid)
        last = latest.get(pid)
        if weeks > 0 and last is not None and last + pd.Timedelta(weeks=weeks) > today:
            weeks = -weeks  # later would carry a date past the export day and give the sign away
        shift_weeks[pid] = weeks

    out = {}
    for name, frame in tables.items():
        allowed = RESEARCH_EXPORT.get(name, {})
        df = frame[[c for c in frame.columns if c in allowed]].copy()
        if "patient_id" in df:
            shift = pd.to_timedelta(df["patient_id"].map(shift_weeks).astype("int64") * 7, unit="D")
            for column, (treatment, _) in allowed.items():
                if treatment == "shifted" and column in df:
                    df[column] = (pd.to_datetime(df[column]) + shift).astype("datetime64[s]")
        for column, (treatment, _) in allowed.items():
            if column not in df:
                continue
            if treatment == "recoded":
                df[column] = _recode(key, column, df[column], _known(column, vocabulary))
            elif treatment == "pseudonymised" and column != "patient_id":
                prefix = {"program_id": "RP-", "measurement_id": "RM-", "session_id": "RS-", "episode_id": "RE-",
                          "site": "site-"}[column]
                df[column] = _keyed(key, column if column != "site" else "site", df[column], prefix)
        if name == "sessions" and "performed_at" in df:
            df["performed_at"] = _hour(df["performed_at"])
        if name == "patients" and "birth_year" in df:
            start_year = df["patient_id"].map(lambda p: first_dates[p].year if p in first_dates else np.nan)
            age = start_year - df["birth_year"].astype("float64")
            df.insert(df.columns.get_loc("birth_year"), "age_band", _age_band(age, age_band_years))
            df = df.drop(columns="birth_year")
        if "patient_id" in df:
            df["patient_id"] = _keyed(key, "patient", df["patient_id"], "R-")
        out[name] = df.reset_index(drop=True)
    return out


def small_cells(patients: pd.DataFrame, k: int = K_ANONYMITY,
                quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS) -> pd.DataFrame:
    """The combinations of quasi-identifiers that fewer than ``k`` exported patients share.

    An empty value counts as a value of its own. Returns one row per small group: the
    quasi-identifiers and ``patients`` (how many share it); empty when the table is k-anonymous.

    Examples
    --------
    >>> p = pd.DataFrame({"age_band": ["40-44"] * 5 + ["70-74"], "sex": ["female"] * 6})
    >>> small_cells(p, 5, ("age_band", "sex")).to_dict("records")
    [{'age_band': '70-74', 'sex': 'female', 'patients': 1}]
    """
    columns = [c for c in quasi_identifiers if c in patients]
    if not columns or patients.empty:
        return pd.DataFrame(columns=[*columns, "patients"])
    sizes = patients.groupby(columns, dropna=False).size().rename("patients").reset_index()
    return sizes[sizes["patients"] < k].reset_index(drop=True)


_GENERALISE = (("age in 10-year bands", {"age_band_years": 10}), ("age in 20-year bands", {"age_band_years": 20}),
               ("site suppressed", {"suppress": "site"}), ("cohort suppressed", {"suppress": "cohort"}),
               ("involved side as one or both hips", {"one_side": "involved_side"}))
"""The steps ``--generalise`` takes, in order, until no small cell is left."""


@dataclass
class ResearchExport:
    """What :func:`export_research` wrote: the files, the generalisation steps taken and the small
    cells left (combinations of quasi-identifiers shared by fewer than ``k`` patients)."""

    paths: dict[str, Path]
    k: int
    small_cells: pd.DataFrame
    generalised: list[str] = field(default_factory=list)

    def warning(self) -> str | None:
        """The small-cell warning in words, or None."""
        if self.small_cells.empty:
            return None
        n = int(self.small_cells["patients"].sum())
        columns = [c for c in self.small_cells.columns if c != "patients"]
        return (f"{n} patient(s) in {len(self.small_cells)} group(s) of fewer than {self.k} sharing "
                f"{', '.join(columns)}: they may be recognisable; "
                + ("generalising as far as hipanalytics goes did not remove them: share with care or leave them out"
                   if self.generalised else "`--generalise` widens the age bands, then suppresses site and cohort, then keeps only "
                      "whether one hip or both are involved"))


def export_research(store: Store, folder: str | Path, key: bytes, *, fmt: str = "csv", as_of: date | None = None,
                    k: int = K_ANONYMITY, generalise: bool = False) -> ResearchExport:
    """Write a de-identified copy of every table (:func:`deidentify`), its README and its column list
    (``columns.csv``: every column of every table and what was done to it), after the small-cell
    check (:func:`small_cells`); with ``generalise``, the steps of :data:`_GENERALISE` are taken
    until no group is smaller than ``k``."""
    if f".{fmt}" not in EXPORT_FORMATS:
        raise StoreError(f"unknown export format {fmt!r}: use {', '.join(f.lstrip('.') for f in EXPORT_FORMATS)}")
    if k < 2:
        raise StoreError(f"k of the small-cell check must be 2 or more, not {k}")
    source = {t: store.read(t) for t in TABLES}
    tables = deidentify(source, key, as_of=as_of)
    taken: list[str] = []
    suppressed: set[str] = set()
    if generalise:
        for step, change in _GENERALISE:
            if small_cells(tables["patients"], k).empty:
                break
            if "age_band_years" in change:
                tables = deidentify(source, key, as_of=as_of, age_band_years=change["age_band_years"])
                for column in suppressed:
                    tables["patients"][column] = None
            elif "suppress" in change:
                suppressed.add(change["suppress"])
                tables["patients"][change["suppress"]] = None
            else:
                side = tables["patients"]["involved_side"]
                tables["patients"]["involved_side"] = side.where(side.isna() | (side == "both"), "one")
            taken.append(step)
    cells = small_cells(tables["patients"], k)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: write_table(df, folder / f"{name}.{fmt}", sheet=name, text_columns=text_columns(name))
             for name, df in tables.items()}
    columns = pd.DataFrame([{"table": t, "column": s.name, "treatment": RESEARCH_EXPORT[t].get(s.name, ("dropped", ""))[0],
                             "how": RESEARCH_EXPORT[t].get(s.name, ("dropped", ""))[1]}
                            for t in TABLES for s in table_spec(t)])
    paths["columns"] = write_table(columns, folder / "columns.csv")
    result = ResearchExport(paths, k, cells, taken)
    note = DEIDENTIFY_NOTE + f"\n## Small cells (k = {k})\n\n"
    note += (f"Generalised: {'; '.join(taken)}.\n\n" if taken else "")
    note += ("Every combination of age band, sex, involved side, site and cohort is shared by at least "
             f"{k} patients.\n" if cells.empty else f"Warning: {result.warning()}.\n")
    (folder / "README.md").write_text(note, encoding="utf-8")
    paths["README"] = folder / "README.md"
    return result
