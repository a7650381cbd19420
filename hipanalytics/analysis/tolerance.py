"""Tolerance: pain before and after sessions, and a flag for repeated pain rises after breakouts.

The breakouts stress the hip more than the movement sequence; the protocol's author moves patients
who do not tolerate them daily to breakouts 3x/week with a recovery day between. A rise of 2 NPRS
points is the usual clinically important change in pain (Farrar et al., Pain 2001). Flags explain
themselves (which sessions, which values) and inform the clinician; they decide nothing.

Examples
--------
>>> s = pd.DataFrame({"patient_id": "P1", "session": "breakouts", "completion": "full",
...     "performed_on": pd.to_datetime(["2026-01-05", "2026-01-06", "2026-01-07"]),
...     "pain_before": [2, 3, 2], "pain_after": [5, 3, 4]})
>>> p = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"], "protocol_id": ["hip-ir-breakouts"],
...     "protocol_version": ["1.0.0"], "schedule": ["daily"], "start_date": ["2026-01-05"],
...     "end_date": ["2026-02-01"]})
>>> flags = tolerance_flags(s, p)
>>> bool(flags["flagged"].iloc[0]), int(flags["rises"].iloc[0])
(True, 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..program import breakout_templates

__all__ = ["PAIN_RISE_NPRS", "pain_response", "tolerance_flags"]

PAIN_RISE_NPRS = 2
"""Pain rise (NPRS points) treated as clinically important (Farrar et al., Pain 2001)."""


def pain_response(sessions: pd.DataFrame) -> pd.DataFrame:
    """Pain before and after, by patient and session template.

    Parameters
    ----------
    sessions : DataFrame
        ``patient_id``, ``session``, ``pain_before``, ``pain_after`` (NPRS 0-10, may be empty).

    Returns
    -------
    DataFrame
        ``patient_id``, ``session``, ``n_sessions``, ``n_with_pain`` (both values recorded),
        ``pain_before_mean``, ``pain_after_mean``, ``pain_change_mean`` (after minus before),
        ``n_rises`` (change of at least :data:`PAIN_RISE_NPRS`).
    """
    both = sessions["pain_before"].notna() & sessions["pain_after"].notna()
    change = (sessions["pain_after"] - sessions["pain_before"]).where(both).astype("float64")
    data = sessions[["patient_id", "session"]].assign(
        before=sessions["pain_before"].where(both).astype("float64"),
        after=sessions["pain_after"].where(both).astype("float64"),
        change=change, has=both, rise=change >= PAIN_RISE_NPRS)
    out = data.groupby(["patient_id", "session"]).agg(
        n_sessions=("has", "size"), n_with_pain=("has", "sum"), pain_before_mean=("before", "mean"),
        pain_after_mean=("after", "mean"), pain_change_mean=("change", "mean"), n_rises=("rise", "sum"))
    return out.reset_index()


def tolerance_flags(
    sessions: pd.DataFrame,
    programs: pd.DataFrame,
    *,
    rise: float = PAIN_RISE_NPRS,
    repeats: int = 2,
    window: int = 6,
    as_of=None,
) -> pd.DataFrame:
    """Flag patients whose pain rose by ``rise`` or more after ``repeats`` of their last ``window``
    breakout sessions on the schedule they follow now.

    Rises on an earlier schedule (before a switch, e.g. from daily to 3x/week breakouts) do not
    count towards the flag or the suggestion: the switch was the answer to them. They are told as
    history ("before the switch on ...").

    Parameters
    ----------
    sessions : DataFrame
        Logged sessions with ``patient_id``, ``performed_on``, ``session``, ``pain_before``,
        ``pain_after``.
    programs : DataFrame
        Stored programs: which templates hold the breakouts, and the schedule in force.
    rise, repeats, window
        The rule; defaults: 2 NPRS points, 2 times, in the last 6 breakout sessions with pain recorded.
    as_of : date-like, optional
        Ignore sessions after this date.

    Returns
    -------
    DataFrame
        One row per patient with breakout sessions that have pain recorded: ``patient_id``,
        ``breakout_sessions`` (considered, on the current schedule), ``rises``, ``flagged``,
        ``schedule`` (in force at the last of them), ``since`` (when that schedule started),
        ``evidence`` (date: before -> after for each rise), ``history`` (rises before a switch, in
        words, or empty), ``message``.
    """
    data = sessions
    if as_of is not None:
        data = data[pd.to_datetime(data["performed_on"]) <= pd.Timestamp(as_of)]
    breakouts = data[data["session"].isin(breakout_templates(programs))
                     & data["pain_before"].notna() & data["pain_after"].notna()]
    columns = ["patient_id", "breakout_sessions", "rises", "flagged", "schedule", "since", "evidence", "history",
               "message"]
    if breakouts.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    b = breakouts[["patient_id", "performed_on", "pain_before", "pain_after"]].copy()
    b["performed_on"] = pd.to_datetime(b["performed_on"])
    b = b.sort_values(["patient_id", "performed_on"], kind="stable").reset_index(drop=True)
    on = _program_on(programs, b["patient_id"], b["performed_on"])
    b["schedule"], b["since"] = on["schedule"].to_numpy(), on["start_date"].to_numpy()
    b["rise"] = (b["pain_after"] - b["pain_before"]) >= rise
    b["text"] = (b["performed_on"].dt.strftime("%Y-%m-%d") + ": " + b["pain_before"].astype("int64").astype("str")
                 + " -> " + b["pain_after"].astype("int64").astype("str"))
    last = b.groupby("patient_id").tail(1).set_index("patient_id")
    current = (b["schedule"].to_numpy() == b["patient_id"].map(last["schedule"]).to_numpy()) & (
        b["since"].fillna(pd.Timestamp.min).to_numpy() == b["patient_id"].map(last["since"]).fillna(pd.Timestamp.min).to_numpy())
    now, before = b[current], b[~current]
    now = now[now.groupby("patient_id").cumcount(ascending=False) < window]
    g = now.groupby("patient_id")
    out = pd.DataFrame({
        "breakout_sessions": g.size(), "rises": g["rise"].sum().astype("int64"),
        "evidence": now[now["rise"]].groupby("patient_id")["text"].agg("; ".join),
    }).reset_index()
    out["evidence"] = out["evidence"].fillna("")
    out["schedule"] = out["patient_id"].map(last["schedule"])
    out["since"] = out["patient_id"].map(last["since"])
    out["flagged"] = out["rises"] >= repeats
    earlier = before[before["rise"]].groupby("patient_id").agg(n=("rise", "size"), schedule=("schedule", "last"),
                                                                 text=("text", "; ".join))
    out["history"] = [
        (f"Before the switch to {s} on {since:%Y-%m-%d}, pain rose by {rise:g}+ points after {int(earlier.loc[p, 'n'])} "
         f"breakout session{'s' if earlier.loc[p, 'n'] != 1 else ''} on {earlier.loc[p, 'schedule']} "
         f"({earlier.loc[p, 'text']}).") if p in earlier.index and pd.notna(since) else ""
        for p, s, since in zip(out["patient_id"], out["schedule"], out["since"])]
    lead = ("Pain rose by " + f"{rise:g}" + " or more NPRS points after " + out["rises"].astype("str") + " of the last "
            + out["breakout_sessions"].astype("str") + " breakout sessions (" + out["evidence"] + ").")
    on_daily = out["schedule"] == "daily"
    advice = np.where(
        on_daily,
        lead + " The breakouts stress the hip more than the movement sequence; for patients who do not "
        "tolerate them daily the protocol suggests breakouts 3x/week with a recovery day between: "
        "consider switching to the three-per-week schedule.",
        lead + " The schedule already leaves recovery days: review the dose and technique with the patient.")
    quiet = ("No repeated pain rise on " + out["schedule"].astype("str") + " breakouts (since "
             + out["since"].map(lambda d: f"{d:%Y-%m-%d}" if pd.notna(d) else "?") + "). ")
    out["message"] = np.where(out["flagged"], advice + np.where(out["history"] != "", " " + out["history"], ""),
                              np.where(out["history"] != "", quiet + out["history"], ""))
    return out[columns]


def _program_on(programs: pd.DataFrame, patients: pd.Series, dates: pd.Series) -> pd.DataFrame:
    """The schedule and start date of the program in force for each (patient, date); 'no program' if none."""
    p = programs[["patient_id", "schedule", "start_date", "end_date"]].copy()
    p["start_date"], p["end_date"] = pd.to_datetime(p["start_date"]), pd.to_datetime(p["end_date"])
    query = pd.DataFrame({"patient_id": patients.to_numpy(), "date": dates.to_numpy()})
    merged = query.reset_index().merge(p, on="patient_id", how="left")
    inside = merged[(merged["date"] >= merged["start_date"]) & (merged["date"] <= merged["end_date"])]
    found = inside.drop_duplicates("index").set_index("index")[["schedule", "start_date"]]
    found = found.reindex(range(len(query)))
    found["schedule"] = found["schedule"].fillna("no program")
    return found.reset_index(drop=True)
