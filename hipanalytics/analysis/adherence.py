"""Adherence: planned sessions (from the programs, schedule switches included) against logged ones.

Sessions are matched within an ISO week and session template, so a breakout session done on
Tuesday instead of Monday still counts for its week. Partial sessions are counted as such, and
sessions logged beyond the plan are reported as ``unplanned`` rather than raising adherence above
100 %.

Examples
--------
>>> programs = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"],
...     "protocol_id": ["hip-ir-breakouts"], "protocol_version": ["1.0.0"],
...     "schedule": ["three-per-week"], "start_date": ["2026-01-05"], "end_date": ["2026-01-11"]})
>>> log = pd.DataFrame({"patient_id": "P1", "session": "breakouts", "completion": ["full", "partial"],
...     "performed_on": pd.to_datetime(["2026-01-05", "2026-01-07"])})
>>> weekly = breakout_frequency(programs, log)
>>> weekly[["breakouts_planned", "breakouts_done", "breakouts_full"]].values.tolist()
[[3, 2, 1]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..program import breakout_templates, plan_table

__all__ = ["adherence", "breakout_frequency", "adherence_summary"]

ADHERENCE_COLUMNS = ["patient_id", "iso_year", "iso_week", "week_start", "session", "breakouts", "planned",
                     "full", "partial", "skipped", "done", "unplanned", "adherence"]


def _iso(dates: pd.Series) -> pd.DataFrame:
    dates = pd.to_datetime(dates)
    iso = dates.dt.isocalendar()
    return pd.DataFrame({
        "iso_year": iso["year"].astype("int64"), "iso_week": iso["week"].astype("int64"),
        "week_start": (dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")).astype("datetime64[s]"),
    }, index=dates.index)


def adherence(programs: pd.DataFrame, sessions: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
    """Planned against logged sessions per patient, ISO week and session template.

    Parameters
    ----------
    programs : DataFrame
        Stored programs (see :func:`hipanalytics.program.plan_table`); a patient with several
        programs (a schedule switch) is planned from each in its date range.
    sessions : DataFrame
        Logged sessions: ``patient_id``, ``performed_on``, ``session`` (template id),
        ``completion`` (full | partial | skipped).
    as_of : date-like, optional
        Count planned and logged sessions up to this date only (a report's date); by default
        every planned session counts.

    Returns
    -------
    DataFrame
        ``patient_id``, ``iso_year``, ``iso_week``, ``week_start``, ``session``, ``breakouts``
        (the template holds the breakouts), ``planned``, ``full``, ``partial``, ``skipped`` (logged
        as not done), ``done`` (full + partial), ``unplanned`` (done beyond the plan),
        ``adherence`` (done, capped at planned, over planned; NaN when nothing was planned).
    """
    return _adherence(programs, sessions, as_of)[0]


def _adherence(programs: pd.DataFrame, sessions: pd.DataFrame, as_of) -> tuple[pd.DataFrame, pd.Series]:
    """The adherence table and each patient's number of planned days (for per-week rates)."""
    planned = plan_table(programs)
    logged = sessions[["patient_id", "performed_on", "session", "completion"]].copy()
    logged["performed_on"] = pd.to_datetime(logged["performed_on"])
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        planned = planned[planned["date"] <= cut]
        logged = logged[logged["performed_on"] <= cut]
    keys = ["patient_id", "iso_year", "iso_week", "week_start", "session"]
    plan_counts = (planned[["patient_id", "session"]].join(_iso(planned["date"]))
                   .groupby(keys).size().rename("planned"))
    counts = (logged[["patient_id", "session", "completion"]].join(_iso(logged["performed_on"]))
              .groupby(keys + ["completion"]).size().unstack("completion", fill_value=0))
    for column in ("full", "partial", "skipped"):
        if column not in counts:
            counts[column] = 0
    table = pd.concat([plan_counts, counts[["full", "partial", "skipped"]]], axis=1).fillna(0).astype("int64")
    table = table.reset_index()
    table["done"] = table["full"] + table["partial"]
    table["unplanned"] = (table["done"] - table["planned"]).clip(lower=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["adherence"] = np.where(table["planned"] > 0,
                                      np.minimum(table["done"], table["planned"]) / table["planned"], np.nan)
    table["breakouts"] = table["session"].isin(breakout_templates(programs)) if len(programs) else False
    days = planned.groupby("patient_id")["date"].nunique()
    return table[ADHERENCE_COLUMNS].sort_values(keys).reset_index(drop=True), days


def breakout_frequency(programs: pd.DataFrame, sessions: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
    """Breakout sessions planned and done per patient and ISO week.

    Returns
    -------
    DataFrame
        ``patient_id``, ``iso_year``, ``iso_week``, ``week_start``, ``breakouts_planned``,
        ``breakouts_done`` (full + partial, planned or not), ``breakouts_full``,
        ``breakouts_partial``.
    """
    table = adherence(programs, sessions, as_of=as_of)
    b = table[table["breakouts"]]
    keys = ["patient_id", "iso_year", "iso_week", "week_start"]
    out = b.groupby(keys).agg(breakouts_planned=("planned", "sum"), breakouts_done=("done", "sum"),
                              breakouts_full=("full", "sum"), breakouts_partial=("partial", "sum"))
    return out.reset_index()


def adherence_summary(programs: pd.DataFrame, sessions: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
    """One row per patient: overall and breakout adherence, breakouts per week planned and done.

    Returns
    -------
    DataFrame
        ``patient_id``, ``planned``, ``done``, ``adherence``, ``breakouts_planned``,
        ``breakouts_done``, ``breakout_adherence``, ``weeks`` (planned days / 7),
        ``breakouts_per_week_planned``, ``breakouts_per_week_done``.
    """
    table, days = _adherence(programs, sessions, as_of)
    capped = np.minimum(table["done"], table["planned"])
    per = table.assign(capped=capped, b_planned=table["planned"].where(table["breakouts"], 0),
                       b_done=table["done"].where(table["breakouts"], 0),
                       b_capped=capped.where(table["breakouts"], 0))
    g = per.groupby("patient_id")
    out = pd.DataFrame({
        "planned": g["planned"].sum(), "done": g["done"].sum(), "capped": g["capped"].sum(),
        "breakouts_planned": g["b_planned"].sum(), "breakouts_done": g["b_done"].sum(),
        "b_capped": g["b_capped"].sum(),
    })
    out["weeks"] = days.reindex(out.index) / 7
    with np.errstate(divide="ignore", invalid="ignore"):
        out["adherence"] = out["capped"] / out["planned"].where(out["planned"] > 0)
        out["breakout_adherence"] = out["b_capped"] / out["breakouts_planned"].where(out["breakouts_planned"] > 0)
    out["breakouts_per_week_planned"] = out["breakouts_planned"] / out["weeks"]
    out["breakouts_per_week_done"] = out["breakouts_done"] / out["weeks"]
    columns = ["planned", "done", "adherence", "breakouts_planned", "breakouts_done", "breakout_adherence",
               "weeks", "breakouts_per_week_planned", "breakouts_per_week_done"]
    return out[columns].reset_index()
