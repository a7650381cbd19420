"""Exports: tables as CSV, Excel or Parquet, and the de-identified research export.

CSV and Excel files are spreadsheet-safe (OWASP, CSV injection): a text cell that a spreadsheet
would run as a formula (starting with ``= + - @``, a tab or a carriage return) gets a leading
``'``, which makes the spreadsheet show it as text. Numbers are never touched, the stored value is
unchanged, and an import removes the quote again.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import StoreError
from ..records import TABLES, table_spec
from ..records.columns import FORMULA_TRIGGERS

if TYPE_CHECKING:
    from .core import Store

__all__ = ["EXPORT_FORMATS", "spreadsheet_safe", "write_table", "DEIDENTIFY_NOTE", "deidentify", "export_research"]

EXPORT_FORMATS = (".csv", ".xlsx", ".parquet")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` in which no text cell can run as a spreadsheet formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``
    (OWASP's advice against CSV injection); text that is a plain number (``-5``, ``+3.5``) and
    every non-text column are left as they are.

    Examples
    --------
    >>> frame = pd.DataFrame({"notes": ["=HYPERLINK(1)", "-5", "@SUM(A1)", "fine"], "degrees": [-5.0, 1, 2, 3]})
    >>> spreadsheet_safe(frame)["notes"].tolist()
    ["'=HYPERLINK(1)", '-5', "'@SUM(A1)", 'fine']
    >>> spreadsheet_safe(frame)["degrees"].tolist()
    [-5.0, 1.0, 2.0, 3.0]
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        text = column.astype("object")
        risky = text.map(lambda v: isinstance(v, str) and v[:1] in FORMULA_TRIGGERS and not _NUMBER.fullmatch(v.strip()))
        if risky.any():
            out[name] = text.where(~risky, "'" + text[risky].astype(str))
    return out


def write_table(frame: pd.DataFrame, path: str | Path, *, sheet: str = "data") -> Path:
    """Write ``frame`` as ``.csv``, ``.xlsx`` or ``.parquet`` (by the suffix); CSV and Excel are
    spreadsheet-safe (:func:`spreadsheet_safe`), dates are written as YYYY-MM-DD."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        spreadsheet_safe(frame).to_csv(path, index=False, date_format="%Y-%m-%d")
    elif suffix == ".xlsx":
        safe = spreadsheet_safe(frame)
        for name in safe.columns:  # Excel has no time zones; dates as dates
            if pd.api.types.is_datetime64_any_dtype(safe[name]):
                safe[name] = safe[name].dt.date
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            safe.to_excel(writer, sheet_name=sheet[:31], index=False)
    else:
        raise StoreError(f"export format not recognised from {path.name!r}: use {', '.join(EXPORT_FORMATS)}")
    return path


# ----------------------------------------------------------------------------------------------
# De-identified research export
# ----------------------------------------------------------------------------------------------

DEIDENTIFY_NOTE = """\
# De-identified research export

Made by hipanalytics from a clinic store. What was done to every table:

- **Patient ids** are replaced by keyed-hash pseudonyms (HMAC-SHA256 with the exporter's secret
  key, first 12 hex digits, prefix `R-`). The same key gives the same pseudonyms in every export,
  so exports can be linked; without the key the mapping cannot be recomputed or reversed.
- **Record ids** (program, measurement, session, episode of care, and a program's episode) are
  re-keyed the same way, because the clinic's ids may contain patient ids or dates (an episode
  found from the dates is named by the patient id and its start date). Site names are pseudonymised likewise.
- **Dates** of each patient are shifted by one random whole number of weeks between -26 and +26
  (derived from the key), the same shift in every table: intervals between a patient's dates and
  the weekday of every date are kept (schedules such as Mon/Wed/Fri stay visible), calendar dates
  are not.
- **Birth year** is replaced by `age_at_start` (whole years at the patient's first program start,
  or first record when there is no program), with ages of 90 and above reported as 90.
- **Dropped**: `display_name`, free-text `notes`, program `reason`, and `assessor`.
- Only the current state is exported: superseded and voided versions are left out.

Keep the key apart from the export; anyone holding both could re-identify patients whose ids they know.
"""

_FREE_TEXT = {"display_name", "notes", "reason", "assessor"}


def _keyed(key: bytes, label: str, values: pd.Series, prefix: str) -> pd.Series:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        return prefix + hmac.new(key, f"{label}:{v}".encode(), "sha256").hexdigest()[:12]

    return values.map(one).astype("str")


def deidentify(tables: dict[str, pd.DataFrame], key: bytes) -> dict[str, pd.DataFrame]:
    """De-identify current-state tables for research (see ``DEIDENTIFY_NOTE``).

    Parameters
    ----------
    tables : dict of DataFrame
        Any of ``patients``, ``programs``, ``measurements``, ``sessions``, ``episodes`` as read from the
        store.
    key : bytes
        The exporter's secret (at least 16 bytes).

    Returns
    -------
    dict of DataFrame
        New frames; the inputs are not modified.
    """
    if len(key) < 16:
        raise StoreError("the de-identification key must be at least 16 bytes; keep it secret and apart from the export")

    all_ids = pd.concat([t["patient_id"] for t in tables.values() if "patient_id" in t], ignore_index=True)
    patient_ids = pd.unique(all_ids.dropna())
    shift_weeks = {
        pid: int.from_bytes(hmac.new(key, f"shift:{pid}".encode(), "sha256").digest()[:4], "big") % 53 - 26
        for pid in patient_ids
    }
    first_dates: dict[str, pd.Timestamp] = {}
    for name, date_col in (("programs", "start_date"), ("measurements", "measured_on"), ("sessions", "performed_on")):
        if name in tables and not tables[name].empty:  # program start first; records only as a fallback
            for pid, d in tables[name].groupby("patient_id")[date_col].min().items():
                first_dates.setdefault(pid, d)
    out = {}
    for name, frame in tables.items():
        df = frame.drop(columns=[c for c in frame.columns if c in _FREE_TEXT]).copy()
        if "patient_id" in df:
            shift = pd.to_timedelta(df["patient_id"].map(shift_weeks).astype("int64") * 7, unit="D")
            for spec in table_spec(name):
                if spec.kind == "date" and spec.name in df:
                    df[spec.name] = (df[spec.name] + shift).astype("datetime64[s]")
        if name == "patients" and "birth_year" in df:
            start_year = df["patient_id"].map(lambda p: first_dates[p].year if p in first_dates else np.nan)
            age = (start_year - df["birth_year"].astype("float64")).clip(upper=90)
            df.insert(df.columns.get_loc("birth_year"), "age_at_start", pd.array(age.round(), dtype="Int64"))
            df = df.drop(columns="birth_year")
        if "site" in df:
            df["site"] = _keyed(key, "site", df["site"], "site-")
        for id_col, prefix in (("program_id", "RP-"), ("measurement_id", "RM-"), ("session_id", "RS-"),
                               ("episode_id", "RE-")):
            if id_col in df:
                df[id_col] = _keyed(key, id_col, df[id_col], prefix)
        if "patient_id" in df:
            df["patient_id"] = _keyed(key, "patient", df["patient_id"], "R-")
        out[name] = df.reset_index(drop=True)
    return out


def export_research(store: Store, folder: str | Path, key: bytes, *, fmt: str = "csv") -> dict[str, Path]:
    """Write a de-identified copy of every table, and a README saying what was removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = deidentify({t: store.read(t) for t in TABLES}, key)
    paths = {}
    if f".{fmt}" not in EXPORT_FORMATS:
        raise StoreError(f"unknown export format {fmt!r}: use {', '.join(f.lstrip('.') for f in EXPORT_FORMATS)}")
    for name, df in tables.items():
        paths[name] = write_table(df, folder / f"{name}.{fmt}", sheet=name)
    (folder / "README.md").write_text(DEIDENTIFY_NOTE, encoding="utf-8")
    paths["README"] = folder / "README.md"
    return paths
