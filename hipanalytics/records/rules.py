"""Checking rules on normalised rows: plausibility, the table schema, dates, programs and patients.

Each rule reports the rows that break it with the value, what is wrong and how to fix it; rows
are never changed here.
"""

from __future__ import annotations

import warnings
from datetime import date

import pandas as pd
from pandera.errors import SchemaErrors

from ..errors import HipAnalyticsError
from .columns import ALLOCATIONS, HIP_IR_ERROR_RANGE, HIP_IR_WARNING_RANGE, schema
from .report import Collector

__all__ = ["check_rules"]


def check_rules(table: str, spec, data: pd.DataFrame, rows: pd.Series, collect: Collector, today: date,
                patients: pd.DataFrame | None) -> None:
    """Apply every row rule of ``table`` to ``data`` (normalised), reporting into ``collect``."""
    _plausible_hip_ir(data, rows, collect)
    _schema(table, spec, data, rows, collect)
    ahead = {"programs": {"start_date", "end_date"}, "episodes": {"start_date"}}.get(table, set())
    for col in spec:
        if col.kind == "date" and col.name not in ahead:  # a program may be prescribed ahead; visits cannot be
            future = data[col.name] > pd.Timestamp(today)
            collect.problem("error", rows[future], col.name, data.loc[future, col.name].dt.strftime("%Y-%m-%d"),
                            f"date in the future (after {today})", "check the year and month")
    if table in ("programs", "episodes"):
        reversed_ = (data["start_date"] > data["end_date"]).fillna(False).astype(bool)
        collect.problem("error", rows[reversed_], "end_date", data.loc[reversed_, "end_date"].dt.strftime("%Y-%m-%d"),
                        "end date before start date", "swap or correct the dates")
    if table == "programs":
        _check_programs(data[~reversed_], rows[~reversed_], collect)
    if table == "patients":
        future = data["birth_year"] > today.year
        collect.problem("error", rows[future], "birth_year", data.loc[future, "birth_year"],
                        "birth year in the future", "check the year")
        _ids_unique_ignoring_case(data, rows, collect, patients)
        _allocation_date_needs_an_allocation(data, rows, collect)
    if patients is not None and "patient_id" in data and table != "patients":
        _known_patients(table, data, rows, collect, patients)


def _plausible_hip_ir(data, rows, collect) -> None:
    """Hip IR plausibility (checked before the hard limits: for an IR value it is the more useful message)."""
    if "degrees" not in data or "motion" not in data:
        return
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


def _schema(table, spec, data, rows, collect) -> None:
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
            values = group["failure_case"].map(lambda v: "" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else v)
            collect.problem("error", rows.iloc[group["index"].astype("int64").to_numpy()].to_numpy(), column,
                            values, rule, fix)


def _allocation_date_needs_an_allocation(data, rows, collect) -> None:
    """An allocation date without an allocation says a patient was randomised without saying to
    what: an error (unless the allocation cell itself is already one)."""
    wrong = collect.rows_with_error("allocation")
    alone = (data["allocated_on"].notna() & data["allocation"].isna() & ~rows.isin(wrong)).to_numpy()
    collect.problem("error", rows[alone], "allocated_on", data.loc[alone, "allocated_on"].dt.strftime("%Y-%m-%d"),
                    "allocation date without an allocation",
                    f"fill in allocation ({' or '.join(ALLOCATIONS)}), or leave allocated_on empty if the patient was "
                    "not allocated")


def _ids_unique_ignoring_case(data, rows, collect, patients) -> None:
    """A patient id may not repeat a stored or earlier id in another letter case (``p001`` beside
    ``P001``): ids name report and FHIR files, and on Windows and macOS such names are one file, so
    one patient's report would overwrite the other's. More often it is the same patient typed twice."""
    first: dict[str, tuple[str, str]] = {}  # casefolded id -> (spelling, where)
    if patients is not None:
        for pid in patients["patient_id"].astype("str"):
            first.setdefault(pid.casefold(), (pid, "already stored"))
    for row, pid in zip(rows, data["patient_id"]):
        if not isinstance(pid, str):
            continue
        spelling, where = first.setdefault(pid.casefold(), (pid, f"row {row}"))
        if spelling != pid:
            collect.problem("error", [row], "patient_id", [pid],
                            f"differs from patient id {spelling!r} ({where}) only in letter case; ids name report "
                            "and FHIR files, which would overwrite each other on Windows and macOS",
                            "use the same spelling if it is the same patient, or give a distinct id")


def _known_patients(table, data, rows, collect, patients) -> None:
    known = set(patients["patient_id"].astype("str"))
    unknown = data["patient_id"].notna() & ~data["patient_id"].isin(known)
    spelled = {k.casefold(): k for k in known}
    fixes = data.loc[unknown, "patient_id"].map(
        lambda pid: f"ids are case-sensitive: did you mean {spelled[pid.casefold()]!r}?"
        if isinstance(pid, str) and pid.casefold() in spelled
        else "import the patient into the patients table first, or correct the id")
    for fix, part in fixes.groupby(fixes, sort=False):
        collect.problem("error", rows[part.index], "patient_id", data.loc[part.index, "patient_id"],
                        "unknown patient", fix)
    date_col = {"measurements": "measured_on", "sessions": "performed_on"}.get(table)
    if date_col and "birth_year" in patients:
        born = data["patient_id"].map(patients.set_index("patient_id")["birth_year"])
        before = (data[date_col].dt.year < born).fillna(False).astype(bool)
        collect.problem("error", rows[before], date_col, data.loc[before, date_col].dt.strftime("%Y-%m-%d"),
                        "date before the patient's birth year", "check the date and the patient id")


def _check_programs(data: pd.DataFrame, rows: pd.Series, collect: Collector) -> None:
    """Each program row must make a valid program of its protocol (schedule, slot, choices, doses)."""
    from ..program import program_from_record  # programs build on protocols; records do not need them otherwise

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
