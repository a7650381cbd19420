"""Tolerance: how the hip takes the breakouts, from pain before, after and the morning after sessions.

The breakouts stress the hip more than the Hip Movement Sequence; the protocol's author moves
patients who do not tolerate them daily to breakouts 3x/week with a recovery day between. Four
rules, each a flag a clinician recognises, read the session log (NPRS 0-10):

(a) **a large rise after one breakout session**: pain after at least :data:`LARGE_RISE_NPRS`
    points above pain before, beyond the NPRS's minimal detectable change of 2 points (Childs et
    al., Spine 2005;30(11):1331-1334), flags at once;
(b) **high pain**: severe pain, a score of :data:`SEVERE_PAIN_NPRS` or more before, after or the
    morning after any session (7-10 is severe pain: Serlin et al., Pain 1995;61(2):277-284), flags
    at once; a score above :data:`ACCEPTABLE_PAIN_NPRS`, more than the pain-monitoring model
    accepts with exercise (pain may reach 5/10 and must settle by the next morning: Silbernagel et
    al., Am J Sports Med 2007;35(6):897-906), flags when it comes again (``repeats`` sessions of
    the window: one score of 6 may be the scale's error of about a point);
(c) **repeated rises**: a rise of :data:`PAIN_RISE_NPRS` points, the usual clinically important
    change in pain (Farrar et al., Pain 2001), after ``repeats`` of the last ``window`` breakout
    sessions;
(d) **pain not settled by the next morning** (the pain-monitoring model's 24-hour rule):
    next-day pain at least :data:`LARGE_RISE_NPRS` points above the pain before the session flags
    at once, at least :data:`PAIN_RISE_NPRS` points above after ``repeats`` of the window's
    breakout sessions.

With fewer than :data:`MIN_SESSIONS` breakout sessions with pain recorded and no flag, tolerance
is "too few sessions to judge", never "no flag". Only the sessions of the schedule a patient
follows now count, within the current episode of care (:mod:`hipanalytics.analysis.episodes`):
what happened before a switch is told as history (the switch was the answer to it). Flags explain
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
>>> flags[["status", "rises", "large_rises"]].values.tolist()
[['flag', 2, 1]]
>>> print(flags["reasons"].iloc[0])
a rise of 3 or more points after 1 breakout session (2026-01-05: 2 -> 5); a rise of 2 or more points after 2 of the last 3 breakout sessions (2026-01-05: 2 -> 5; 2026-01-07: 2 -> 4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..program import breakout_templates, session_titles
from .episodes import EPISODE_GAP_DAYS, joined_by, program_episodes

__all__ = ["PAIN_RISE_NPRS", "LARGE_RISE_NPRS", "ACCEPTABLE_PAIN_NPRS", "SEVERE_PAIN_NPRS", "MIN_SESSIONS",
           "PAIN_COLUMNS",
           "FLAG_COLUMNS", "pain_response", "tolerance_flags", "schedule_periods"]

PAIN_RISE_NPRS = 2
"""Pain rise (NPRS points) treated as clinically important (Farrar et al., Pain 2001; Childs et al.,
Spine 2005: 2 points exceed the NPRS's measurement error)."""

LARGE_RISE_NPRS = 3
"""A rise after one session that flags at once: beyond the NPRS's minimal detectable change of 2
points (Childs JD, Piva SR, Fritz JM. Spine 2005;30(11):1331-1334: SEM 1.02, MDC 2)."""

ACCEPTABLE_PAIN_NPRS = 5
"""The highest pain the pain-monitoring model accepts with exercise (Silbernagel KG, Thomee R,
Eriksson BI, Karlsson J. Am J Sports Med 2007;35(6):897-906; Thomee R. Phys Ther 1997;77(12):
1690-1703): scores above it before, after or the morning after repeated sessions flag."""

SEVERE_PAIN_NPRS = 7
"""Severe pain on the NPRS, 7 to 10 (Serlin RC, Mendoza TR, Nakamura Y, Edwards KR, Cleeland CS.
Pain 1995;61(2):277-284): one such score before, after or the morning after a session flags."""

MIN_SESSIONS = 3
"""Fewer breakout sessions with pain recorded than this (and no flag) are too few to judge
tolerance: two sessions cannot show a rise repeated."""

PAIN_COLUMNS = ("pain_before", "pain_after", "pain_next_day")
"""The session log's NPRS columns (0-10)."""

FLAG_COLUMNS = ["patient_id", "status", "flagged", "flag_day", "breakout_sessions", "rises", "large_rises", "high_pain",
                "severe_pain", "next_day_rises", "schedule", "since", "episode_id", "evidence", "reasons", "history",
                "message"]


def pain_response(sessions: pd.DataFrame) -> pd.DataFrame:
    """Pain before, after and the next morning, by patient and session template.

    Parameters
    ----------
    sessions : DataFrame
        ``patient_id``, ``session``, ``pain_before``, ``pain_after`` and optionally
        ``pain_next_day`` (NPRS 0-10, may be empty).

    Returns
    -------
    DataFrame
        ``patient_id``, ``session``, ``n_sessions``, ``n_with_pain`` (before and after recorded),
        ``pain_before_mean``, ``pain_after_mean``, ``pain_change_mean`` (after minus before),
        ``n_rises`` (change of at least :data:`PAIN_RISE_NPRS`), ``n_next_day`` (next-day pain
        recorded) and ``pain_next_day_mean``.
    """
    both = sessions["pain_before"].notna() & sessions["pain_after"].notna()
    change = (sessions["pain_after"] - sessions["pain_before"]).where(both).astype("float64")
    next_day = (sessions["pain_next_day"] if "pain_next_day" in sessions
                else pd.Series(np.nan, index=sessions.index)).astype("float64")
    data = sessions[["patient_id", "session"]].assign(
        before=sessions["pain_before"].where(both).astype("float64"),
        after=sessions["pain_after"].where(both).astype("float64"),
        change=change, has=both, rise=change >= PAIN_RISE_NPRS, next_day=next_day, has_next=next_day.notna())
    out = data.groupby(["patient_id", "session"]).agg(
        n_sessions=("has", "size"), n_with_pain=("has", "sum"), pain_before_mean=("before", "mean"),
        pain_after_mean=("after", "mean"), pain_change_mean=("change", "mean"), n_rises=("rise", "sum"),
        n_next_day=("has_next", "sum"), pain_next_day_mean=("next_day", "mean"))
    return out.reset_index()


def schedule_periods(programs: pd.DataFrame, episodes: pd.DataFrame | None = None, *,
                     gap_days: int = EPISODE_GAP_DAYS) -> pd.DataFrame:
    """The programs with their episode and *period*: consecutive programs of one episode on one
    schedule (a renewal of the same schedule is not a switch).

    Returns
    -------
    DataFrame
        ``program_id``, ``patient_id``, ``schedule``, ``start_date``, ``end_date``,
        ``episode_id``, ``since`` (first day of the period), ``period`` (a number per patient).

    Examples
    --------
    >>> p = pd.DataFrame({"program_id": ["A", "B", "C"], "patient_id": "P1",
    ...     "schedule": ["daily", "daily", "three-per-week"],
    ...     "start_date": ["2026-01-05", "2026-01-19", "2026-02-02"],
    ...     "end_date": ["2026-01-18", "2026-02-01", "2026-03-01"]})
    >>> schedule_periods(p)[["program_id", "since", "period"]].astype(str).values.tolist()
    [['A', '2026-01-05', '0'], ['B', '2026-01-05', '0'], ['C', '2026-02-02', '1']]
    """
    p = program_episodes(programs, episodes, gap_days=gap_days)
    p = p.sort_values(["patient_id", "start_date", "program_id"], kind="stable").reset_index(drop=True)
    same = ((p["patient_id"] == p["patient_id"].shift()) & (p["episode_id"] == p["episode_id"].shift())
            & (p["schedule"] == p["schedule"].shift()))
    p["period"] = (~same).astype(int).groupby(p["patient_id"]).cumsum() - 1
    p["since"] = p.groupby(["patient_id", "period"])["start_date"].transform("min")
    return p[["program_id", "patient_id", "schedule", "start_date", "end_date", "episode_id", "since", "period"]]


def _in_force(periods: pd.DataFrame, patients: pd.Series, dates: pd.Series) -> pd.DataFrame:
    """The period of the program in force for each (patient, date): schedule, since, episode and
    period number ('no program' and NaN outside every program). Of overlapping programs, the one
    that started last."""
    query = pd.DataFrame({"patient_id": patients.to_numpy(), "date": pd.to_datetime(dates).astype("datetime64[ns]"),
                          "order": np.arange(len(patients))}).sort_values("date", kind="stable")
    programs = periods.assign(date=pd.to_datetime(periods["start_date"]).astype("datetime64[ns]"))
    programs = programs.sort_values("date", kind="stable")
    found = pd.merge_asof(query, programs.drop(columns=["patient_id"]).assign(patient_id=programs["patient_id"]),
                          on="date", by="patient_id", direction="backward")
    found = found.set_index("order").sort_index()
    outside = ~(found["date"] <= found["end_date"])
    for column in ("schedule", "since", "episode_id", "period"):
        found[column] = found[column].mask(outside)
    found["schedule"] = found["schedule"].fillna("no program")
    return found[["schedule", "since", "episode_id", "period"]].reset_index(drop=True)


def _later(a, b):
    return b if pd.isna(a) or (pd.notna(b) and b > a) else a


def _score(values: pd.Series) -> pd.Series:
    return values.astype("Int64").astype("str").replace("<NA>", "?")


def _text(days: pd.Series, before, after) -> pd.Series:
    """'2026-01-05: 2 -> 5' per session."""
    return days.dt.strftime("%Y-%m-%d") + ": " + _score(before) + " -> " + _score(after)


def _joined(mask: pd.Series, text: pd.Series, by: pd.Series) -> pd.Series:
    """Per patient, the texts of the rows in ``mask`` joined by '; '."""
    return joined_by(by[mask], text[mask])


def _times(n: int) -> str:
    return f"{n} session{'s' if n != 1 else ''}"


def _sessions(n: int) -> str:
    return f"{n} breakout session{'s' if n != 1 else ''}"


def tolerance_flags(
    sessions: pd.DataFrame,
    programs: pd.DataFrame,
    *,
    episodes: pd.DataFrame | None = None,
    rise: float = PAIN_RISE_NPRS,
    repeats: int = 2,
    window: int = 6,
    large_rise: float = LARGE_RISE_NPRS,
    acceptable: float = ACCEPTABLE_PAIN_NPRS,
    severe: float = SEVERE_PAIN_NPRS,
    min_sessions: int = MIN_SESSIONS,
    gap_days: int = EPISODE_GAP_DAYS,
    as_of=None,
) -> pd.DataFrame:
    """Each patient's pain tolerance of the breakouts on the schedule they follow now (see the
    module's rules (a)-(d)).

    Parameters
    ----------
    sessions : DataFrame
        Logged sessions: ``patient_id``, ``performed_on``, ``session``, ``pain_before``,
        ``pain_after`` and optionally ``pain_next_day``.
    programs : DataFrame
        Stored programs: which templates hold the breakouts, the schedule in force, the episodes.
    episodes : DataFrame, optional
        Stored episodes of care (discharges), see :func:`~hipanalytics.analysis.episodes.episodes_of_care`.
    rise, repeats, window
        Rule (c): a rise of ``rise`` NPRS points after ``repeats`` of the last ``window``
        breakout sessions with pain recorded (2, 2, 6). Rule (d) uses ``rise`` too.
    large_rise : float, default :data:`LARGE_RISE_NPRS`
        Rule (a): one rise this large flags.
    acceptable, severe : float, default :data:`ACCEPTABLE_PAIN_NPRS`, :data:`SEVERE_PAIN_NPRS`
        Rule (b): scores above ``acceptable`` at ``repeats`` sessions, or one of ``severe`` or
        more, flag.
    min_sessions : int, default :data:`MIN_SESSIONS`
        Fewer breakout sessions with pain recorded are too few to judge.
    gap_days : int
        The episode rule (:data:`~hipanalytics.analysis.episodes.EPISODE_GAP_DAYS`).
    as_of : date-like, optional
        Ignore sessions after this date; the schedule judged is the one in force that day
        (default: on the patient's last session).

    Returns
    -------
    DataFrame
        One row per patient with sessions logged: ``patient_id``, ``status`` (``flag``, ``ok``:
        judged and no flag, ``too few``: fewer than ``min_sessions`` breakout sessions with pain
        recorded and no flag), ``flagged``, ``flag_day`` (the latest session behind a flag),
        ``breakout_sessions`` (with pain recorded, in the
        window), ``rises``, ``large_rises``, ``high_pain`` (sessions above ``acceptable``),
        ``severe_pain`` (sessions at ``severe`` or more),
        ``next_day_rises``, ``schedule`` and ``since`` (the schedule judged and when it started),
        ``episode_id``, ``evidence`` (the rises of rule (c): date: before -> after), ``reasons``
        (each rule that flags, with its sessions), ``history`` (flags before a switch in this
        episode, in words, or empty) and ``message`` (what to tell the clinician; never empty).
    """
    data = sessions
    if as_of is not None:
        data = data[pd.to_datetime(data["performed_on"]) <= pd.Timestamp(as_of)]
    if data.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FLAG_COLUMNS})
    patients = pd.Index(sorted(data["patient_id"].unique()), name="patient_id")  # a row for each, scored or not
    s = data[["patient_id", "performed_on", "session", *[c for c in PAIN_COLUMNS if c in data]]].copy()
    for column in PAIN_COLUMNS:
        s[column] = s[column].astype("Float64") if column in s else pd.array([pd.NA] * len(s), dtype="Float64")
    s = s[s[list(PAIN_COLUMNS)].notna().any(axis=1)]  # only scored sessions can raise or clear a flag
    s["performed_on"] = pd.to_datetime(s["performed_on"])
    s = s.sort_values(["patient_id", "performed_on"], kind="stable").reset_index(drop=True)
    periods = schedule_periods(programs, episodes, gap_days=gap_days) if len(programs) else pd.DataFrame({
        "program_id": pd.Series(dtype="str"), "patient_id": pd.Series(dtype=s["patient_id"].dtype),
        "schedule": pd.Series(dtype="str"), "start_date": pd.Series(dtype="datetime64[ns]"),
        "end_date": pd.Series(dtype="datetime64[ns]"), "episode_id": pd.Series(dtype="str"),
        "since": pd.Series(dtype="datetime64[ns]"), "period": pd.Series(dtype="int64")})  # typed: merged below
    on = _in_force(periods, s["patient_id"], s["performed_on"])
    for column in ("schedule", "since", "episode_id", "period"):
        s[column] = on[column].to_numpy()
    current = _current_period(data, s, periods, as_of)
    s["current"] = (s["period"].fillna(-1).to_numpy() == s["patient_id"].map(current).fillna(-2).to_numpy())
    s["breakout"] = s["session"].isin(breakout_templates(programs)).to_numpy()
    s["both"] = (s["pain_before"].notna() & s["pain_after"].notna()).to_numpy(dtype=bool)
    change = (s["pain_after"] - s["pain_before"]).astype("float64")
    settled = (s["pain_next_day"] - s["pain_before"]).astype("float64")
    s["rise"] = s["breakout"] & s["both"] & (change >= rise)
    s["large"] = s["breakout"] & s["both"] & (change >= large_rise)
    worst = s[list(PAIN_COLUMNS)].astype("float64").max(axis=1, skipna=True)
    s["high"], s["severe"] = worst > acceptable, worst >= severe
    s["unsettled"] = s["breakout"] & (settled >= rise)
    s["unsettled_large"] = s["breakout"] & (settled >= large_rise)
    told = s["rise"] | s["high"] | s["unsettled"]  # the sessions a flag or the history names: their words
    t = s[told]
    day = t["performed_on"].dt.strftime("%Y-%m-%d")
    s.loc[told, "text"] = _text(t["performed_on"], t["pain_before"], t["pain_after"])
    s.loc[told, "next_text"] = (day + ": before " + _score(t["pain_before"]) + ", next morning "
                                + _score(t["pain_next_day"]))
    title = t["session"].astype(str).map(session_titles(programs) if len(programs) else {}).fillna(t["session"].astype(str))
    kind = pd.Series(np.where(t["breakout"], "", " (" + title + ")"), index=t.index)
    s.loc[told, "high_text"] = day + kind + ": " + _scores(t)  # a session without breakouts is named as such

    now = s[s["current"]]
    judgeable = now[now["breakout"] & now["both"]]
    judged = judgeable[judgeable.groupby("patient_id").cumcount(ascending=False) < window]
    start = judged.groupby("patient_id")["performed_on"].min()
    first = (now["patient_id"].map(start) if len(start)  # the window's first day; all of the period without one
             else pd.Series(pd.NaT, index=now.index, dtype="datetime64[ns]"))
    recent = now[first.isna() | (now["performed_on"] >= first)]
    out = pd.DataFrame(index=patients)
    out["breakout_sessions"] = judged.groupby("patient_id").size().reindex(patients, fill_value=0)
    out["rises"] = judged.groupby("patient_id")["rise"].sum().reindex(patients, fill_value=0).astype("int64")
    out["large_rises"] = judged.groupby("patient_id")["large"].sum().reindex(patients, fill_value=0).astype("int64")
    out["high_pain"] = recent.groupby("patient_id")["high"].sum().reindex(patients, fill_value=0).astype("int64")
    out["severe_pain"] = recent.groupby("patient_id")["severe"].sum().reindex(patients, fill_value=0).astype("int64")
    out["next_day_rises"] = recent.groupby("patient_id")["unsettled"].sum().reindex(patients, fill_value=0).astype("int64")
    large_next = recent.groupby("patient_id")["unsettled_large"].sum().reindex(patients, fill_value=0)
    described = periods.drop_duplicates(["patient_id", "period"]).set_index(["patient_id", "period"])
    key = pd.MultiIndex.from_arrays([patients, patients.map(current)])
    out["schedule"] = described["schedule"].reindex(key).to_numpy()
    out["since"] = described["since"].reindex(key).to_numpy()
    out["episode_id"] = described["episode_id"].reindex(key).to_numpy()
    out["schedule"] = out["schedule"].fillna("no program")
    out["evidence"] = _joined(judged["rise"], judged["text"], judged["patient_id"]).reindex(patients).fillna("")
    n = out["breakout_sessions"].astype(str)
    earlier = judgeable.groupby("patient_id").size().reindex(patients, fill_value=0) > out["breakout_sessions"]
    since = pd.to_datetime(start.reindex(patients)).dt.strftime("%Y-%m-%d")
    within = (" since " + since + ", the last " + n + " breakout sessions").where(earlier, "")
    # counts of the window, said as such when breakout sessions of this schedule before it are not counted
    rules = [  # (fires, the sessions that make it fire, their text column, the rule in words)
        (out["large_rises"] >= 1, judged, "large", "text",
         f"a rise of {large_rise:g} or more points after " + out["large_rises"].map(_sessions)),
        (out["rises"] >= repeats, judged, "rise", "text",
         f"a rise of {rise:g} or more points after " + out["rises"].astype(str) + " of the last " + n
         + " breakout sessions"),
        (out["severe_pain"] >= 1, recent, "severe", "high_text",
         f"severe pain ({severe:g}/10 or more) at " + out["severe_pain"].map(_times)),
        ((out["high_pain"] >= repeats) & (out["high_pain"] > out["severe_pain"]), recent, "high", "high_text",
         f"pain above {acceptable:g}/10 at " + out["high_pain"].map(_times)),  # more than the severe ones
        (large_next >= 1, recent, "unsettled_large", "next_text",
         f"pain {large_rise:g} or more points above its starting level the next morning after "
         + large_next.map(_sessions)),
        ((out["next_day_rises"] >= repeats) & (out["next_day_rises"] > large_next), recent, "unsettled", "next_text",
         f"pain {rise:g} or more points above its starting level the next morning after "
         + out["next_day_rises"].map(_sessions)),  # more than the large ones
    ]
    reasons = pd.Series("", index=patients, dtype="object")
    out["flag_day"] = pd.Series(pd.NaT, index=patients, dtype="datetime64[ns]")
    windowed = pd.Series(False, index=patients)  # the window is said once, at the first rule that counts in it
    for fires, frame, mask, column, words in rules:
        listed = _joined(frame[mask], frame[column], frame["patient_id"]).reindex(patients).fillna("")
        if frame is recent:
            words = words + within.where(~windowed, "")
            windowed |= fires
        told = (words + " (" + listed + ")").where(fires, "")
        reasons = reasons.str.cat(told, sep="; ").str.strip("; ")
        latest = frame.loc[frame[mask], "performed_on"].groupby(frame.loc[frame[mask], "patient_id"]).max()
        out["flag_day"] = out["flag_day"].combine(latest.reindex(patients).where(fires), _later)
    out["reasons"] = reasons
    out["flagged"] = reasons != ""
    out["status"] = np.where(out["flagged"], "flag", np.where(out["breakout_sessions"] < min_sessions, "too few", "ok"))
    out["history"] = _history(s, out, rise)
    ranges = _ranges(recent[recent["breakout"]]).reindex(patients).fillna("")
    out["message"] = [_message(r, rise, repeats, acceptable, min_sessions, ranges.get(r["patient_id"], ""))
                      for r in out.reset_index().to_dict("records")]
    return out.reset_index()[FLAG_COLUMNS]


def _scores(s: pd.DataFrame) -> pd.Series:
    """'before 2, after 8, next morning 6' from the recorded scores (vectorised)."""
    joined = pd.Series("", index=s.index, dtype="object")
    for column, word in zip(PAIN_COLUMNS, ("before", "after", "next morning")):
        part = (word + " " + s[column].astype("Int64").astype("str")).where(s[column].notna(), "")
        joined = joined.where(part == "", joined.where(joined == "", joined + ", ") + part)
    return joined


def _current_period(data: pd.DataFrame, scored: pd.DataFrame, periods: pd.DataFrame, as_of) -> pd.Series:
    """Per patient, the period judged: the latest one started by ``as_of`` (default: each patient's
    last session), or else the period of the last scored session."""
    last_day = pd.to_datetime(data["performed_on"]).groupby(data["patient_id"]).max()
    day = last_day if as_of is None else pd.Series(pd.Timestamp(as_of), index=last_day.index)
    started = periods.assign(day=periods["patient_id"].map(day))
    started = started[started["start_date"] <= started["day"]]
    by_programs = started.sort_values("start_date").groupby("patient_id")["period"].last()
    by_sessions = scored.groupby("patient_id")["period"].last()
    return by_programs.reindex(last_day.index).fillna(by_sessions)


def _history(s: pd.DataFrame, out: pd.DataFrame, rise: float) -> pd.Series:
    """Rises before a switch within the current episode, told in words."""
    earlier = s[~s["current"] & s["rise"] & (s["episode_id"].to_numpy() == s["patient_id"].map(out["episode_id"]).to_numpy())]
    history = pd.Series("", index=out.index, dtype="object")
    if earlier.empty:
        return history
    counts = earlier.groupby("patient_id").size()
    schedule = earlier.groupby("patient_id")["schedule"].last()
    texts = joined_by(earlier["patient_id"], earlier["text"])
    for pid in counts.index.intersection(out.index[out["since"].notna()]):
        n = int(counts[pid])
        history[pid] = (f"Before the switch to {out.at[pid, 'schedule']} on {pd.Timestamp(out.at[pid, 'since']):%Y-%m-%d}, "
                        f"pain rose by {rise:g}+ points after {n} breakout session{'s' if n != 1 else ''} on "
                        f"{schedule[pid]} ({texts[pid]}).")
    return history


def _ranges(recent: pd.DataFrame) -> pd.Series:
    """Per patient, the pain scores of the window as ranges: 'before 1-2/10, after 3/10'."""
    if recent.empty:
        return pd.Series(dtype="object")
    joined = None
    for column, word in zip(PAIN_COLUMNS, ("before", "after", "the next morning")):
        g = recent[column].astype("float64").groupby(recent["patient_id"])
        low, high = g.min(), g.max()
        text = (word + " " + low.map("{:.0f}".format) + np.where(low == high, "", "-" + high.map("{:.0f}".format))
                + "/10").where(low.notna(), "")
        joined = text if joined is None else joined.where(text == "", joined.where(joined == "", joined + ", ") + text)
    return joined


def _message(r: pd.Series, rise: float, repeats: int, acceptable: float, min_sessions: int, ranges: str) -> str:
    """What the clinician reads: the flag and its advice, too few to judge, or no flag with the
    scores it rests on; then the history before a switch."""
    since = f" since {pd.Timestamp(r['since']):%Y-%m-%d}" if pd.notna(r["since"]) else ""
    on = f"on {r['schedule']} breakouts{since}" if r["schedule"] != "no program" else "outside any program"
    history = f" {r['history']}" if r["history"] else ""
    if r["status"] == "flag":
        text = f"Pain flag {on}: {r['reasons']}."
        load = r["rises"] or r["large_rises"] or r["next_day_rises"]
        if load and r["schedule"] == "daily":
            text += (" The breakouts stress the hip more than the movement sequence; for patients who do not "
                     "tolerate them daily the protocol suggests breakouts 3x/week with a recovery day between: "
                     "consider switching to the three-per-week schedule.")
        elif load:
            text += " The schedule already leaves recovery days: review the dose and technique with the patient."
        if r["severe_pain"] or r["high_pain"] >= repeats:
            text += (f" Pain above {acceptable:g}/10 is more than the pain-monitoring model accepts with exercise: "
                     "review the hip before the next breakout session.")
        return text + history
    if r["status"] == "too few":
        return (f"Too few breakout sessions with pain recorded {on} to judge tolerance: {int(r['breakout_sessions'])} "
                f"of the {min_sessions} needed.{history}")
    above = ("none above" if not r["high_pain"] else f"{int(r['high_pain'])} above") + f" {acceptable:g}/10"
    return (f"No pain flag in the last {int(r['breakout_sessions'])} breakout sessions {on}: pain {ranges}; no rise "
            f"of {rise:g} or more after {repeats} of them, {above}.{history}")
