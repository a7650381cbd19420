"""Episodes of care: which of a patient's programs, visits and sessions belong together.

A patient treated in April and again after a summer away has two episodes of care, each with its
own baseline, change, adherence and pain flags; the first is history when the second is reported.
An episode starts with the patient's first program, and again with a program that starts

- more than :data:`EPISODE_GAP_DAYS` days after the previous program ended, or
- after a discharge (a stored episode with an ``end_date``: ``hipanalytics discharge``).

A clinic may also say which episode a program belongs to (the programs table's optional
``episode_id`` column) or store episodes outright (the ``episodes`` table); what is stored wins
over what the dates suggest. An outpatient therapy episode runs "from the first day the patient is
under the care of the clinician ... until the last date of service" (CMS, Medicare Benefit Policy
Manual, chapter 15, section 220.1); no standard says how long a pause ends one, so the gap is
hipanalytics' default, to be set by each clinic.

Measurements and sessions belong to the latest episode that has started by their date; a
baseline visit up to :data:`BASELINE_LOOKBACK_DAYS` days before an episode's first program is
that episode's baseline, not the end of the previous one.

Examples
--------
>>> programs = pd.DataFrame({"program_id": ["A", "B", "C"], "patient_id": "P1",
...     "schedule": ["daily", "three-per-week", "daily"],
...     "start_date": pd.to_datetime(["2026-04-06", "2026-04-20", "2026-12-07"]),
...     "end_date": pd.to_datetime(["2026-04-19", "2026-07-12", "2027-01-17"])})
>>> e = episodes_of_care(programs, as_of="2026-12-20")
>>> e[["episode", "start_date", "programs", "status"]].astype(str).values.tolist()
[['1', '2026-04-06', 'A, B', 'ended'], ['2', '2026-12-07', 'C', 'active']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["EPISODE_GAP_DAYS", "SWITCH_GAP_DAYS", "BASELINE_LOOKBACK_DAYS", "schedule_changes", "EPISODE_COLUMNS", "episodes_of_care", "program_episodes",
           "episode_of", "episode_id_for", "joined_by"]

EPISODE_GAP_DAYS = 60
"""A program that starts more than this many days after the patient's previous program ended
starts a new episode of care. Not a published standard (none sets one): hipanalytics' default,
twice the 28 days after a program in which a final report is still due
(:data:`hipanalytics.progress.ACTIVE_GRACE_DAYS`). Pass ``gap_days`` to change it."""

SWITCH_GAP_DAYS = 6
"""A program on another schedule that starts at most this many days after the previous one ended
(the day after, as :func:`hipanalytics.program.switch_schedule` makes it) is a schedule switch;
one that starts later is a new program after a gap (see :func:`schedule_changes`)."""

BASELINE_LOOKBACK_DAYS = 14
"""A measurement up to this many days before an episode's first program (the evaluation visit
that led to the prescription) is the episode's baseline."""

EPISODE_COLUMNS = ["patient_id", "episode_id", "episode", "start_date", "end_date", "first_program", "last_day",
                   "programs", "schedules", "discharge_reason", "status", "stored", "window_start", "window_end"]


def episode_id_for(patient_id: str, start) -> str:
    """The id of an episode found from the dates: the patient's id and the start date.

    Examples
    --------
    >>> episode_id_for("P001", "2026-04-06")
    'P001-E20260406'
    """
    return f"{patient_id}-E{pd.Timestamp(start):%Y%m%d}"


def joined_by(keys: pd.Series, texts: pd.Series, sep: str = "; ") -> pd.Series:
    """``texts`` joined by ``sep`` per key, in their order (a plain loop: pandas' groupby of a
    string join runs Python once per group, far slower for many small groups).

    Examples
    --------
    >>> joined_by(pd.Series(["a", "b", "a"]), pd.Series(["1", "2", "3"])).to_dict()
    {'a': '1; 3', 'b': '2'}
    """
    grouped: dict = {}
    for key, text in zip(keys.tolist(), texts.tolist()):
        grouped.setdefault(key, []).append(text)
    return pd.Series({k: sep.join(v) for k, v in grouped.items()}, dtype="object")


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in EPISODE_COLUMNS})


def _prepared(programs: pd.DataFrame, episodes: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = programs.copy()
    for column in ("start_date", "end_date"):
        p[column] = pd.to_datetime(p[column])
    if "episode_id" not in p:
        p["episode_id"] = None
    stored = (episodes.copy() if episodes is not None and len(episodes) else
              pd.DataFrame(columns=["episode_id", "patient_id", "start_date", "end_date", "discharge_reason"]))
    for column in ("start_date", "end_date"):
        stored[column] = pd.to_datetime(stored[column])
    return p.sort_values(["patient_id", "start_date", "program_id"], kind="stable"), stored.sort_values("start_date")


_ROW_COLUMNS = ["patient_id", "episode_id", "start_date", "end_date", "first_program", "last_day", "programs",
                "schedules", "discharge_reason", "stored"]


def _grouped(programs: pd.DataFrame, episodes: pd.DataFrame | None, gap_days: int) -> tuple[pd.DataFrame, pd.Series]:
    """Every patient's episodes (one row each, :data:`_ROW_COLUMNS`) and the episode of each
    program (a Series by program id).

    Patients with neither stored episodes nor episode ids on their programs (most) are grouped
    by the gap rule for all of them at once; the others one by one."""
    p, stored = _prepared(programs, episodes)
    named = p["episode_id"].notna() & (p["episode_id"].astype("str").str.strip() != "")
    special = set(stored["patient_id"]) | set(p.loc[named, "patient_id"])
    plain = p[~p["patient_id"].isin(special)]
    by_gaps, members = _by_gaps(plain, gap_days)
    frames = [by_gaps]
    by_patient = dict(tuple(stored.groupby("patient_id"))) if len(stored) else {}
    rows: list[dict] = []
    membership: dict[str, str] = {}
    for pid, group in p[p["patient_id"].isin(special)].groupby("patient_id", sort=True):
        rows += _patient_episodes(pid, group, by_patient.pop(pid, stored.iloc[0:0]), gap_days, membership)
    for pid, group in by_patient.items():  # stored episodes of patients without programs
        rows += _patient_episodes(pid, p.iloc[0:0], group, gap_days, membership)
    frames.append(pd.DataFrame(rows, columns=_ROW_COLUMNS))
    filled = [f for f in frames if len(f)]
    out = pd.concat(filled, ignore_index=True) if filled else frames[-1]
    return out, pd.concat([members, pd.Series(membership, dtype="object")])


def _by_gaps(p: pd.DataFrame, gap_days: int) -> tuple[pd.DataFrame, pd.Series]:
    """The gap rule, vectorised: a program starting more than ``gap_days`` after every earlier
    program of the patient has ended starts a new episode. Returns the episodes and each
    program's episode id (by program id)."""
    if p.empty:
        return pd.DataFrame(columns=_ROW_COLUMNS), pd.Series(dtype="object")
    ended = p.groupby("patient_id")["end_date"].cummax()
    before = ended.groupby(p["patient_id"]).shift()
    new = before.isna() | ((p["start_date"] - before).dt.days > gap_days)
    number = new.astype(int).groupby(p["patient_id"]).cumsum()
    first = p["start_date"].where(new).groupby([p["patient_id"], number]).transform("first")
    ids = p["patient_id"] + "-E" + first.dt.strftime("%Y%m%d")
    g = p.assign(episode_id=ids).groupby("episode_id", sort=False)
    out = pd.DataFrame({
        "patient_id": g["patient_id"].first(), "episode_id": g["episode_id"].first(),
        "start_date": g["start_date"].min(), "end_date": pd.NaT, "first_program": g["start_date"].min(),
        "last_day": g["end_date"].max(), "programs": joined_by(ids, p["program_id"], ", "),
        "schedules": joined_by(ids, p["schedule"], " -> "), "discharge_reason": None, "stored": False,
    }).reset_index(drop=True)
    return out, pd.Series(ids.to_numpy(), index=p["program_id"].to_numpy(), dtype="object")


def program_episodes(programs: pd.DataFrame, episodes: pd.DataFrame | None = None, *,
                     gap_days: int = EPISODE_GAP_DAYS) -> pd.DataFrame:
    """The programs with the ``episode_id`` of the episode of care each belongs to (the clinic's
    own, a stored episode's, or one found from the dates: :func:`episode_id_for`).

    Examples
    --------
    >>> p = pd.DataFrame({"program_id": ["A", "B"], "patient_id": "P1", "schedule": "daily",
    ...     "start_date": ["2026-01-05", "2026-06-01"], "end_date": ["2026-02-01", "2026-07-01"]})
    >>> program_episodes(p)["episode_id"].tolist()
    ['P1-E20260105', 'P1-E20260601']
    """
    _, membership = _grouped(programs, episodes, gap_days)
    out = programs.copy()
    for column in ("start_date", "end_date"):
        out[column] = pd.to_datetime(out[column])
    out["episode_id"] = out["program_id"].map(membership)
    return out


def episodes_of_care(programs: pd.DataFrame, episodes: pd.DataFrame | None = None, *, gap_days: int = EPISODE_GAP_DAYS,
                     as_of=None, grace_days: int = 28) -> pd.DataFrame:
    """Each patient's episodes of care, from the programs and any stored episodes.

    Parameters
    ----------
    programs : DataFrame
        ``patient_id``, ``program_id``, ``schedule``, ``start_date``, ``end_date`` and optionally
        ``episode_id`` (a clinic's own grouping).
    episodes : DataFrame, optional
        Stored episodes: ``episode_id``, ``patient_id``, ``start_date``, ``end_date`` (the
        discharge date, or empty), ``discharge_reason``.
    gap_days : int, default :data:`EPISODE_GAP_DAYS`
        A longer pause between one program's end and the next one's start begins a new episode.
    as_of : date-like, optional
        The day the status is judged on (default: today).
    grace_days : int, default 28
        After its last program ends an episode is still ``active`` for this many days (a final
        report is due), then ``ended`` unless discharged.

    Returns
    -------
    DataFrame
        One row per episode, in order per patient: ``patient_id``, ``episode_id``, ``episode``
        (1, 2, ... per patient), ``start_date``, ``end_date`` (the discharge date, or NaT while not
        discharged), ``first_program`` (start of its first program), ``last_day`` (end of its last
        program), ``programs`` (their ids, ", "-joined), ``schedules`` (in order, " -> "-joined),
        ``discharge_reason``, ``status`` (``planned``: not started on ``as_of``; ``active``;
        ``ended``: its programs are over and no discharge was recorded; ``discharged``),
        ``stored`` (bool: from the episodes table), ``window_start`` and ``window_end`` (the
        dates whose measurements and sessions belong to it: from ``start_date`` minus
        :data:`BASELINE_LOOKBACK_DAYS` up to the day before the next episode's window).
    """
    day = pd.Timestamp(as_of).normalize() if as_of is not None else pd.Timestamp.today().normalize()
    if programs.empty and (episodes is None or episodes.empty):
        return _empty()
    out, _ = _grouped(programs, episodes, gap_days)
    out = out.sort_values(["patient_id", "start_date"], kind="stable").reset_index(drop=True)
    out["episode"] = out.groupby("patient_id").cumcount() + 1
    lookback = pd.Timedelta(days=BASELINE_LOOKBACK_DAYS)
    out["window_start"] = out["start_date"] - lookback
    following = out.groupby("patient_id")["window_start"].shift(-1)
    out["window_end"] = following - pd.Timedelta(days=1)
    started = out["start_date"] <= day
    over = out["last_day"].notna() & (out["last_day"] + pd.Timedelta(days=grace_days) < day)
    discharged = out["end_date"].notna() & (out["end_date"] <= day)
    out["status"] = np.select([~started, discharged, over], ["planned", "discharged", "ended"], "active")
    return out[EPISODE_COLUMNS]


def _patient_episodes(pid: str, programs: pd.DataFrame, stored: pd.DataFrame, gap_days: int,
                      membership: dict[str, str]) -> list[dict]:
    """One patient's episodes: stored ones claim the programs in their period (or named by id);
    the other programs are grouped by their own episode ids, then by the gap rule."""
    episodes = [{"patient_id": pid, "episode_id": r.episode_id, "start_date": r.start_date, "end_date": r.end_date,
                 "discharge_reason": getattr(r, "discharge_reason", None), "stored": True, "members": []}
                for r in stored.itertuples()]
    by_id = {e["episode_id"]: e for e in episodes}
    current = None
    previous_end = None
    for prog in programs.itertuples():
        named = prog.episode_id if isinstance(prog.episode_id, str) and prog.episode_id else None
        home = by_id.get(named) if named else next(
            (e for e in episodes if e["stored"] and e["start_date"] <= prog.start_date
             and (pd.isna(e["end_date"]) or prog.start_date <= e["end_date"])), None)
        if home is None and named is None and current is not None and not current["stored"]:
            gap = (prog.start_date - previous_end).days if previous_end is not None else 0
            if gap <= gap_days:
                home = current
        if home is None:
            home = {"patient_id": pid, "episode_id": named or episode_id_for(pid, prog.start_date),
                    "start_date": prog.start_date, "end_date": pd.NaT, "discharge_reason": None, "stored": False,
                    "members": []}
            episodes.append(home)
            by_id[home["episode_id"]] = home
        home["members"].append(prog)
        membership[prog.program_id] = home["episode_id"]
        current = home
        previous_end = prog.end_date if previous_end is None else max(previous_end, prog.end_date)
    rows = []
    for e in episodes:
        members = e.pop("members")
        first = min((m.start_date for m in members), default=pd.NaT)
        start = e["start_date"] if pd.notna(e["start_date"]) else first
        rows.append({**e, "start_date": min(start, first) if pd.notna(first) else start, "first_program": first,
                     "last_day": max((m.end_date for m in members), default=pd.NaT),
                     "programs": ", ".join(m.program_id for m in members),
                     "schedules": " -> ".join(m.schedule for m in members)})
    return rows


def episode_of(episodes: pd.DataFrame, patient_ids: pd.Series, dates: pd.Series) -> pd.Series:
    """The ``episode_id`` each (patient, date) belongs to: the latest episode whose window has
    started by then (see :func:`episodes_of_care`); missing before a patient's first episode.

    Examples
    --------
    >>> e = pd.DataFrame({"patient_id": ["P1", "P1"], "episode_id": ["E1", "E2"],
    ...                   "window_start": pd.to_datetime(["2026-03-23", "2026-11-23"])})
    >>> episode_of(e, pd.Series(["P1", "P1", "P1"]), pd.to_datetime(pd.Series(["2026-03-01", "2026-05-01",
    ...            "2026-12-01"]))).tolist()
    [nan, 'E1', 'E2']
    """
    query = pd.DataFrame({"patient_id": patient_ids.to_numpy(), "date": pd.to_datetime(dates).astype("datetime64[ns]"),
                          "order": np.arange(len(patient_ids))})
    if episodes.empty or query.empty:
        return pd.Series(np.nan, index=patient_ids.index, dtype="object")
    windows = episodes[["patient_id", "episode_id", "window_start"]].sort_values("window_start")
    windows = windows.assign(window_start=windows["window_start"].astype("datetime64[ns]"))
    found = pd.merge_asof(query.sort_values("date"), windows.rename(columns={"window_start": "date"}),
                          on="date", by="patient_id", direction="backward").set_index("order").sort_index()
    return pd.Series(found["episode_id"].to_numpy(dtype=object), index=patient_ids.index)


def schedule_changes(programs: pd.DataFrame, patient_id: str, *, max_gap_days: int = SWITCH_GAP_DAYS) -> pd.DataFrame:
    """When a patient's programs change: a schedule switch, or a new program after a gap.

    The patient's programs are taken in order of their start. A program that starts less than a
    week after the previous one ended (at most ``max_gap_days`` days without a program, e.g. the
    day after, as :func:`hipanalytics.program.switch_schedule` makes it) on another schedule is a
    ``"switch"``; one that starts later is a ``"new program after a gap"`` (whatever its schedule:
    a course of care taken up again, not a switch). A program that continues the previous one on
    the same schedule is no change.

    Parameters
    ----------
    programs : DataFrame
        ``patient_id``, ``schedule``, ``start_date``, ``end_date`` (dates or ISO text), as stored.
    patient_id : str
    max_gap_days : int
        The most days without a program between two programs for a change of schedule to be a switch.

    Returns
    -------
    DataFrame
        One row per change, in date order: ``date`` (the new program's first day, datetime64),
        ``from_schedule``, ``to_schedule``, ``kind`` (``"switch"`` or ``"new program after a gap"``).

    Examples
    --------
    >>> programs = pd.DataFrame({"patient_id": "P1", "schedule": ["daily", "three-per-week", "three-per-week"],
    ...                          "start_date": ["2026-01-05", "2026-01-19", "2026-06-01"],
    ...                          "end_date": ["2026-01-18", "2026-02-15", "2026-07-12"]})
    >>> schedule_changes(programs, "P1")
            date   from_schedule     to_schedule                     kind
    0 2026-01-19           daily  three-per-week                   switch
    1 2026-06-01  three-per-week  three-per-week  new program after a gap
    """
    own = programs[programs["patient_id"] == patient_id]
    own = pd.DataFrame({"schedule": own["schedule"], "start": pd.to_datetime(own["start_date"]),
                        "end": pd.to_datetime(own["end_date"])}).sort_values("start", kind="stable")
    before = own.shift()
    gap_days = (own["start"] - before["end"]).dt.days - 1
    kind = np.where(gap_days > max_gap_days, "new program after a gap", "switch")
    changed = before["schedule"].notna() & ((gap_days > max_gap_days) | (own["schedule"] != before["schedule"]))
    out = pd.DataFrame({"date": own["start"], "from_schedule": before["schedule"], "to_schedule": own["schedule"],
                        "kind": kind})
    return out[changed].reset_index(drop=True)
