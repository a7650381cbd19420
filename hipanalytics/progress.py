"""What a patient's progress report says: figures, a plain-language summary, tables and flags.

Report notebooks call :func:`patient_progress` and display what it returns; the logic lives here
and is tested without a notebook.

Examples
--------
>>> from hipanalytics.synthetic import generate_clinic
>>> c = generate_clinic(5, seed=3)
>>> tables = {k: c[k] for k in ("patients", "programs", "measurements", "sessions")}
>>> p = patient_progress(tables, "SYN-00001", as_of="2026-12-31")
>>> p.key_figures["patient_id"]
'SYN-00001'
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .analysis import adherence_summary, rom_trends, tolerance_flags
from .analysis.episodes import EPISODE_GAP_DAYS, episodes_of_care, program_episodes, schedule_changes
from .analysis.rom import (METHOD_KEYS, NORMATIVE_IR, PRIMARY_METHOD, method_in_words, select_method, usual_method,
                           usual_methods)
from .analysis.tolerance import MIN_SESSIONS, PAIN_COLUMNS
from .numbers import difference, fixed, percent, signed, to_gain, whole
from .records import table_spec
from .records.columns import LATEST_DAY_COLUMNS
from .errors import ReportError
from .synthetic import is_synthetic

__all__ = ["PatientProgress", "patient_progress", "REFERENCES", "ACTIVE_GRACE_DAYS", "iso_day", "latest_date", "patient_list",
           "episode_in_words", "side_sentence", "REMEASURE_DAYS", "NEW_FLAG_DAYS", "clinic_overview",
           "overview_key_figures", "overview_table", "overview_html",
           "CohortComparison", "cohort_comparison"]

REFERENCES = [
    "Krause DA, Hollman JH, Krych AJ, Kalisvaart MM, Levy BA. Reliability of hip internal rotation range "
    "of motion measurement using a digital inclinometer. Knee Surg Sports Traumatol Arthrosc "
    "2015;23(9):2562-2567: seated, single-leg active IR, MDC 5.4 degrees.",
    "Gradoz MC et al. J Sport Rehabil 2018: MDC95 of hip rotation 6.1-8.6 degrees across positions.",
    "Simoneau GG et al. JOSPT 1998; Kouyoumdjian P et al. OTSR 2012: hip IR differs by test position.",
    "Roach S et al. IJSPT 2013: digital inclinometer reads about 4.5 degrees more IR than a goniometer.",
    "Normative hip IR: compiled in J Athl Train 2018;53(6):560, Table 1 (adult means about 29-50 degrees).",
    "Farrar JT et al. Pain 2001: a 2-point NPRS change is clinically important.",
    "Childs JD, Piva SR, Fritz JM. Spine 2005;30(11):1331-1334: NPRS SEM 1.02, minimal detectable change 2 points "
    "(a rise of 3 or more after one session is beyond measurement error).",
    "Silbernagel KG et al. Am J Sports Med 2007;35(6):897-906 (pain-monitoring model): pain with exercise may reach "
    "5/10 and must settle by the next morning.",
    "Serlin RC et al. Pain 1995;61(2):277-284: NPRS 7-10 is severe pain.",
    "Bandy WD, Irion JM. Phys Ther 1994;74(9):845-850: stretching gains level off by weeks 4-6 (the 6-week trend window).",
]


@dataclass
class PatientProgress:
    """Everything one patient's progress report shows: the current episode of care, and the
    earlier ones as history."""

    patient_id: str
    label: str
    as_of: pd.Timestamp
    method: dict
    patient: pd.Series
    programs: pd.DataFrame
    measurements: pd.DataFrame
    sessions: pd.DataFrame
    trends: pd.DataFrame
    adherence: pd.Series | None
    flags: pd.DataFrame
    episode: pd.Series | None = None
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    earlier: pd.DataFrame = field(default_factory=pd.DataFrame)
    key_figures: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """A few sentences a clinician can read aloud: the episode, one per involved side, then
        sessions and pain."""
        return " ".join(self.summary_parts)

    @property
    def summary_parts(self) -> list[str]:
        """:attr:`summary` as its parts, one paragraph each: the episode (when there were earlier
        ones), each involved side, sessions, pain."""
        return _summary(self)

    def sides_table(self) -> pd.DataFrame:
        """One row per involved side: latest, change, slope with its 95 % CI, recent trend, the
        side-to-side difference (one visit) and the target, rounded as shown and differences taken
        from the numbers shown."""
        rows = []
        for r in _involved(self.trends).itertuples():
            once = r.n_visits < 2
            slope = (f"{fixed(r.slope_deg_per_week)} ({fixed(r.slope_ci_low)} to {fixed(r.slope_ci_high)})"
                     if pd.notna(r.slope_ci_low) else fixed(r.slope_deg_per_week, missing="-"))
            asymmetry = difference(r.other_side_deg + r.asymmetry_deg, r.other_side_deg) if pd.notna(r.asymmetry_deg) else None
            other = "-" if asymmetry is None else f"{signed(asymmetry, 1)} on {pd.Timestamp(r.asymmetry_on):%Y-%m-%d}"
            gain = to_gain(r.target_deg, r.latest_deg, 1)
            target = "-" if gain is None else (f"{fixed(r.target_deg)} ({'reached' if gain == 0 else f'{fixed(gain)} to gain'})")
            rows.append({"side": r.side, "baseline (deg)": "-" if once else fixed(r.baseline_deg),
                         "latest (deg)": fixed(r.latest_deg),
                         "change (deg)": "-" if once else signed(difference(r.latest_deg, r.baseline_deg), 1),
                         "vs MDC": "-" if once else _verdict(r)[0],
                         "deg/week (95% CI)": slope,
                         f"last {r.recent_weeks} weeks": r.recent_trend if isinstance(r.recent_trend, str) else "-",
                         "vs other side (deg)": other, "target (deg)": target})
        return pd.DataFrame(rows)

    def measurement_table(self) -> pd.DataFrame:
        """One row per visit and side on the report's method: mean of the trials, their number and range."""
        m = select_method(self.measurements, self.method)
        if m.empty:
            return pd.DataFrame(columns=["date", "side", "IR, mean of trials (deg)", "trials", "range (deg)"])
        m = m.assign(measured_on=pd.to_datetime(m["measured_on"]))
        g = m.groupby(["measured_on", "side"])["degrees"]
        v = g.agg(["mean", "size", "min", "max"]).reset_index().sort_values(["measured_on", "side"])
        return pd.DataFrame({
            "date": v["measured_on"].dt.strftime("%Y-%m-%d"), "side": v["side"],
            "IR, mean of trials (deg)": v["mean"].map(fixed), "trials": v["size"].astype(int),
            "range (deg)": [fixed(a) if a == b else f"{fixed(a)} to {fixed(b)}" for a, b in zip(v["min"], v["max"])],
        }).reset_index(drop=True)

    def trials_table(self) -> pd.DataFrame:
        """Every trial of every measurement of this episode, with its method in words (the appendix)."""
        m = self.measurements.sort_values(["measured_on", "side", "position", "trial"])
        return pd.DataFrame({
            "date": pd.to_datetime(m["measured_on"]).dt.strftime("%Y-%m-%d"), "side": m["side"],
            "method": [method_in_words({"position": a, "mode": b, "instrument": c})
                       for a, b, c in zip(m["position"], m["mode"], m["instrument"])],
            "trial": m["trial"].astype("Int64"), "IR (deg)": m["degrees"].map(fixed),
        }).reset_index(drop=True)

    def header_html(self) -> str:
        """Header block (escaped): patient, involved side(s), method, episode of care, programs, dates."""
        side = str(self.patient.get("involved_side", ""))
        rows = [("Patient", self.label), ("Report date", self.as_of.strftime("%Y-%m-%d")),
                ("Involved side", "both hips" if side == "both" else f"{side} hip"),
                ("Measured", f"hip internal rotation, {method_in_words(self.method)}{self._other_methods()}")]
        if self.episode is not None:
            rows.append(("Episode of care", episode_in_words(self.episode, len(self.episodes))))
        for p in self.programs.sort_values("start_date").itertuples():
            rows.append(("Program", f"{p.protocol_id} {p.protocol_version}, {p.schedule}, "
                                    f"{pd.Timestamp(p.start_date):%Y-%m-%d} to {pd.Timestamp(p.end_date):%Y-%m-%d}"))
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f'<table class="header">{cells}</table>'

    def _other_methods(self) -> str:
        """A note naming the patient's hip IR series by other methods, which are not shown here."""
        m = self.measurements
        ir = m[(m["joint"] == self.method["joint"]) & (m["motion"] == self.method["motion"])]
        others = ir.drop(select_method(ir, self.method).index)[list(METHOD_KEYS)].drop_duplicates()
        if others.empty:
            return ""
        named = "; ".join(method_in_words(dict(zip(METHOD_KEYS, r))) for r in others.itertuples(index=False))
        return f" (also measured {named}: a separate series, not mixed in)"

    def flags_html(self) -> str:
        """The pain flags with their reasons, what is too few to judge, and pain rises before a
        schedule switch as history (escaped)."""
        if self.sessions.empty:
            return "<p>No sessions logged in this episode of care yet: pain tolerance cannot be judged.</p>"
        if self.flags.empty:
            return "<p>No pain scores recorded in this episode of care: pain tolerance cannot be judged.</p>"
        return "".join(f"<p class='{'flag' if s == 'flag' else 'note'}'>{html.escape(m)}</p>"
                       for s, m in zip(self.flags["status"], self.flags["message"]))

    def history_table(self) -> pd.DataFrame:
        """The earlier episodes of care, one row each: dates, schedules, how each ended, each
        involved hip's IR over it (on the report's method) and the breakouts done."""
        return self.earlier

    def chart_alt(self) -> str:
        """One sentence saying what the headline chart shows (its alt text)."""
        parts = []
        for r in _involved(self.trends).itertuples():
            if r.n_visits < 2:
                parts.append(f"{r.side.capitalize()} hip IR measured once: {fixed(r.latest_deg)} degrees")
                continue
            change = difference(r.latest_deg, r.baseline_deg)
            span = f"over {whole(r.weeks_followed)} weeks"
            if change == 0:
                parts.append(f"{r.side.capitalize()} hip IR stayed at {fixed(r.latest_deg)} degrees {span}")
            else:
                verb = "rose" if change > 0 else "fell"
                parts.append(f"{r.side.capitalize()} hip IR {verb} from {fixed(r.baseline_deg)} to "
                             f"{fixed(r.latest_deg)} degrees {span}")
        text = "; ".join(parts) or "No hip IR measurements on this method yet"
        return f"{text}, above the breakout sessions planned and done each week{self._changes_words()}."

    def _changes_words(self) -> str:
        """The changes of program up to the report date, as the charts mark them (vertical lines)."""
        changes = schedule_changes(self.programs, self.patient_id)
        changes = changes[changes["date"] <= self.as_of]
        words = [f"{'switched from ' + r.from_schedule + ' to ' + r.to_schedule if r.kind == 'switch' else 'a new program'}"
                 f" on {r.date:%d %b %Y}" for r in changes.itertuples()]
        return f"; {', '.join(words)} (a vertical line)" if words else ""

    def calendar_alt(self) -> str:
        """One sentence saying what the sessions calendar shows (its alt text)."""
        a = self.adherence
        if a is None or pd.isna(a["adherence"]):
            return "Calendar of planned sessions: no program, or nothing planned yet."
        return (f"Calendar of the program's days: {percent(a['adherence'])} of planned sessions and "
                f"{percent(a['breakout_adherence'])} of planned breakout sessions done up to {self.as_of:%d %b %Y}"
                f"{self._changes_words().replace('(a vertical line)', '(a line across the calendar)')}.")

    def pain_alt(self) -> str:
        """One sentence saying what the pain chart shows (its alt text)."""
        s = self.sessions
        scored = s[s[[c for c in PAIN_COLUMNS if c in s]].notna().any(axis=1)] if len(s) else s
        if scored.empty:
            return "Pain before and after sessions: no pain scores recorded."
        flagged = self.flags[self.flags["status"] == "flag"] if len(self.flags) else self.flags
        verdict = (f"pain flags: {flagged['reasons'].iloc[0]}" if len(flagged) else
                   self.flags["message"].iloc[0] if len(self.flags) else "tolerance not judged")
        return (f"Pain (NPRS 0-10) before, after and the morning after {len(scored)} sessions from "
                f"{pd.Timestamp(scored['performed_on'].min()):%d %b} to "
                f"{pd.Timestamp(scored['performed_on'].max()):%d %b %Y}; {verdict[0].lower()}{verdict[1:]}")


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_day(value, name: str = "as_of") -> pd.Timestamp | None:
    """A report date given as an ISO date (``YYYY-MM-DD``), a date or a Timestamp; None stays None.

    Text in any other form is refused: ``07/01/2026`` is 7 January to some readers and 1 July to
    others, and a report must not guess.

    Examples
    --------
    >>> iso_day("2026-07-01")
    Timestamp('2026-07-01 00:00:00')
    >>> iso_day("07/01/2026")
    Traceback (most recent call last):
    ...
    hipanalytics.errors.ReportError: as_of must be an ISO date YYYY-MM-DD (e.g. 2026-07-01), got '07/01/2026'
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_DAY.fullmatch(text):
            raise ReportError(f"{name} must be an ISO date YYYY-MM-DD (e.g. 2026-07-01), got {value!r}")
        try:
            return pd.Timestamp(date.fromisoformat(text))
        except ValueError:
            raise ReportError(f"{name} {value!r} is not a calendar date") from None
    if isinstance(value, (date, pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).normalize()
    raise ReportError(f"{name} must be an ISO date YYYY-MM-DD, got {value!r} ({type(value).__name__})")


_TABLES = ("patients", "programs", "measurements", "sessions", "episodes")


def _tables(source, patient_id: str | None = None) -> dict[str, pd.DataFrame]:
    """The record tables from a Store or a dict of frames (a dict may lack ``episodes``), for one
    patient or everyone."""
    if isinstance(source, dict):
        tables = {k: source[k] if k in source else pd.DataFrame(columns=[c.name for c in table_spec(k)])
                  for k in _TABLES}
        return {k: v if patient_id is None else v[v["patient_id"] == patient_id] for k, v in tables.items()}
    return {t: source.read(t, patient_id=patient_id) for t in _TABLES}


def episode_in_words(episode: pd.Series, count: int = 1) -> str:
    """An episode of care in a line: its number, dates, schedules and status.

    Examples
    --------
    >>> e = pd.Series({"episode": 2, "start_date": pd.Timestamp("2026-12-07"), "end_date": pd.NaT,
    ...                "last_day": pd.Timestamp("2027-01-17"), "schedules": "daily -> three-per-week",
    ...                "status": "active", "discharge_reason": None})
    >>> episode_in_words(e, 2)
    'episode 2 of 2, from 2026-12-07 (programs to 2027-01-17; daily -> three-per-week), active'
    """
    where = f"episode {int(episode['episode'])} of {count}" if count > 1 else "episode 1"
    text = f"{where}, from {pd.Timestamp(episode['start_date']):%Y-%m-%d}"
    if pd.notna(episode.get("last_day")):
        text += f" (programs to {pd.Timestamp(episode['last_day']):%Y-%m-%d}; {episode['schedules']})"
    return f"{text}, {_status_words(episode)}"


def _status_words(episode) -> str:
    status = episode["status"]
    if status == "discharged":
        reason = episode.get("discharge_reason")
        return (f"discharged {pd.Timestamp(episode['end_date']):%Y-%m-%d}"
                + (f" ({str(reason).replace('_', ' ')})" if isinstance(reason, str) and reason else ""))
    return "programs ended, no discharge recorded" if status == "ended" else status


def _in_window(frame: pd.DataFrame, column: str, episode: pd.Series | None) -> pd.DataFrame:
    if episode is None or frame.empty:
        return frame
    day = pd.to_datetime(frame[column])
    keep = day >= episode["window_start"]
    if pd.notna(episode["window_end"]):
        keep &= day <= episode["window_end"]
    return frame[keep]


def patient_progress(source, patient_id: str, *, as_of=None, method: dict | None = None,
                     show_name: bool = False, gap_days: int = EPISODE_GAP_DAYS) -> PatientProgress:
    """Gather one patient's report content from a store (or a dict of tables).

    The report is on the current episode of care (the latest one started by the report date; see
    :mod:`hipanalytics.analysis.episodes`): its baseline, change, adherence and pain flags. The
    earlier episodes are history (:meth:`PatientProgress.history_table`).

    Parameters
    ----------
    source : Store or dict of DataFrame
    patient_id : str
    as_of : date-like, optional
        The report date; data after it are left out. Default: the latest measurement or session
        date in ``source`` (of any patient: as the clinic batch reports, so the sessions a patient
        stopped logging count as missed).
    method : dict, optional
        Measurement method of the headline series. Default: the patient's usual method up to the
        report date (:func:`hipanalytics.analysis.rom.usual_method`: the most visits; seated 90/90,
        active, inclinometer for a patient not measured yet).
    show_name : bool
        Use the patient's display name in the header (sensitive) instead of the id.
    gap_days : int
        A pause between programs longer than this starts a new episode of care
        (:data:`~hipanalytics.analysis.episodes.EPISODE_GAP_DAYS`).

    Raises
    ------
    ReportError
        When the patient is unknown.
    """
    tables = _tables(source, patient_id)
    if tables["patients"].empty:
        raise ReportError(f"unknown patient {patient_id!r}: not in the store's patients table")
    cut = iso_day(as_of)
    if cut is None:  # the store's latest date, as the clinic batch uses: a patient who stopped logging is late
        latest = latest_date(source)
        cut = latest if latest is not None else pd.Timestamp.today().normalize()
    m_all = tables["measurements"][pd.to_datetime(tables["measurements"]["measured_on"]) <= cut]
    s_all = tables["sessions"][pd.to_datetime(tables["sessions"]["performed_on"]) <= cut]
    episodes = episodes_of_care(tables["programs"], tables["episodes"], gap_days=gap_days, as_of=cut)
    started = episodes[episodes["window_start"] <= cut]
    episode = started.iloc[-1] if len(started) else (episodes.iloc[0] if len(episodes) else None)
    members = program_episodes(tables["programs"], tables["episodes"], gap_days=gap_days) if len(tables["programs"]) else tables["programs"].assign(episode_id=None)
    programs = (tables["programs"][members["episode_id"].to_numpy() == episode["episode_id"]]
                if episode is not None else tables["programs"])
    m, s = _in_window(m_all, "measured_on", episode), _in_window(s_all, "performed_on", episode)
    method = method or usual_method(m_all, patient_id)
    patient = tables["patients"].iloc[0]
    name = patient.get("display_name") if show_name else None
    label = str(name) if name is not None and pd.notna(name) and str(name).strip() else patient_id
    trends = _trends(m, method, tables["patients"])
    adh = adherence_summary(programs, s, as_of=cut) if len(programs) else pd.DataFrame()
    flags = tolerance_flags(s, programs, episodes=tables["episodes"], gap_days=gap_days, as_of=cut)
    earlier = episodes[episodes["episode_id"] != episode["episode_id"]] if episode is not None else episodes.iloc[0:0]
    history = _history_table(earlier[earlier["start_date"] <= cut], m_all, s_all, members, method, tables["patients"],
                             cut)
    progress = PatientProgress(patient_id, label, cut, method, patient, programs, m, s, trends,
                               adh.iloc[0] if len(adh) else None, flags, episode, episodes, history)
    progress.key_figures = _key_figures(progress)
    return progress


def _trends(m: pd.DataFrame, method: dict, patients: pd.DataFrame) -> pd.DataFrame:
    primary = select_method(m, method)
    return rom_trends(primary, patients=patients) if len(primary) else rom_trends(m.iloc[0:0])


def _history_table(earlier: pd.DataFrame, m: pd.DataFrame, s: pd.DataFrame, members: pd.DataFrame, method: dict,
                   patients: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """One row per earlier episode: dates, schedules, how it ended, each involved side's IR from its
    first to its last visit on the report's method, and breakouts done."""
    rows = []
    for e in earlier.itertuples():
        window = pd.Series({"window_start": e.window_start, "window_end": e.window_end})
        trends = _involved(_trends(_in_window(m, "measured_on", window), method, patients))
        ir = "; ".join(f"{r.side} {fixed(r.baseline_deg)} -> {fixed(r.latest_deg)}" if r.n_visits > 1 else
                       f"{r.side} {fixed(r.latest_deg)} (once)" for r in trends.itertuples()) or "not measured"
        programs = members[members["episode_id"] == e.episode_id]
        adh = adherence_summary(programs, _in_window(s, "performed_on", window), as_of=cut) if len(programs) else None
        done = percent(adh["breakout_adherence"].iloc[0], missing="-") if adh is not None and len(adh) else "-"
        ended = (f"discharged {pd.Timestamp(e.end_date):%Y-%m-%d}" if pd.notna(e.end_date) else
                 "no discharge recorded")
        if isinstance(e.discharge_reason, str) and e.discharge_reason:
            ended += f" ({e.discharge_reason.replace('_', ' ')})"
        rows.append({"episode": int(e.episode), "from": f"{pd.Timestamp(e.start_date):%Y-%m-%d}",
                     "programs to": "-" if pd.isna(e.last_day) else f"{pd.Timestamp(e.last_day):%Y-%m-%d}",
                     "schedules": e.schedules or "-", "ended": ended, "hip IR (deg)": ir, "breakouts done": done})
    return pd.DataFrame(rows, columns=["episode", "from", "programs to", "schedules", "ended", "hip IR (deg)",
                                       "breakouts done"])


def _involved(trends: pd.DataFrame) -> pd.DataFrame:
    return trends[trends["involved"].fillna(False).astype(bool)]


def _number(x) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or pd.isna(x) else round(float(x), 2)


def _key_figures(p: PatientProgress) -> dict[str, Any]:
    involved = _involved(p.trends)
    sides = {}
    for row in involved.itertuples():
        sides[row.side] = {
            "baseline_deg": _number(row.baseline_deg), "latest_deg": _number(row.latest_deg),
            "change_deg": _number(row.change_deg), "slope_deg_per_week": _number(row.slope_deg_per_week),
            "slope_ci": [_number(row.slope_ci_low), _number(row.slope_ci_high)],
            "mdc_deg": _number(row.mdc_deg), "beyond_mdc": bool(row.beyond_mdc), "direction": row.direction,
            "recent_trend": row.recent_trend if isinstance(row.recent_trend, str) else None,
            "plateau": None if pd.isna(row.plateau) else bool(row.plateau), "weeks_followed": _number(row.weeks_followed),
            "to_decide": row.to_decide or None,
            "asymmetry_deg": _number(row.asymmetry_deg),
            "asymmetry_on": None if pd.isna(row.asymmetry_on) else f"{pd.Timestamp(row.asymmetry_on):%Y-%m-%d}",
            "target_deg": _number(row.target_deg), "target_source": row.target_source,
            "target_reference": row.target_reference if isinstance(row.target_reference, str) else None,
            "to_gain_deg": to_gain(row.target_deg, row.latest_deg, 1),
        }
    a = p.adherence
    e = p.episode
    tolerance = p.flags["status"].iloc[0] if len(p.flags) else ("no pain recorded" if len(p.sessions) else "no sessions")
    return {
        "patient_id": p.patient_id, "as_of": p.as_of.strftime("%Y-%m-%d"), "hipanalytics_version": __version__,
        "synthetic_data": is_synthetic([p.patient_id]),
        "method": p.method, "involved": sides,
        "episode": None if e is None else {"episode_id": e["episode_id"], "number": int(e["episode"]),
                                           "of": int(len(p.episodes)), "start_date": f"{pd.Timestamp(e['start_date']):%Y-%m-%d}",
                                           "status": e["status"]},
        "adherence": None if a is None else _number(a["adherence"]),
        "breakout_adherence": None if a is None else _number(a["breakout_adherence"]),
        "breakouts_per_week_done": None if a is None else _number(a["breakouts_per_week_done"]),
        "flagged": bool(p.flags["flagged"].any()) if len(p.flags) else False, "tolerance": tolerance,
        "n_measurements": int(len(p.measurements)), "n_sessions": int(len(p.sessions)),
    }


def _verdict(row) -> tuple[str, float]:
    """The change since baseline against the MDC, judged on the printed change (one decimal), so
    that "+5.4, beyond the 5.4-degree MDC" never appears: (direction word, printed change)."""
    change = difference(row.latest_deg, row.baseline_deg)
    if change > row.mdc_deg:
        return "improved", change
    if change < -row.mdc_deg:
        return "worse", change
    return "no reliable change", change


def _trend_words(row, as_of=None) -> str:
    weeks = row.recent_weeks
    worsening = "worsening"
    lost = difference(row.best_deg, row.latest_deg)
    if lost > row.mdc_deg and difference(row.best_deg, row.baseline_deg) > row.mdc_deg:
        worsening = (f"worsening: {fixed(lost)} degrees below the best of {fixed(row.best_deg)} on "
                     f"{pd.Timestamp(row.best_on):%d %b %Y}, a loss beyond the MDC")
    words = {
        "gaining": "still gaining",
        "levelled off": (f"levelled off after the gain: the change over them is within the MDC "
                         f"({signed(row.recent_change_low, 1)} to {signed(row.recent_change_high, 1)} degrees, 95% CI)"),
        "no response yet": "no gain beyond the MDC since the baseline yet",
        "worsening": worsening,
        "uncertain": f"not yet clear whether the gain goes on: {row.to_decide}",
    }[row.recent_trend]
    last = pd.Timestamp(row.last_visit)
    if as_of is not None and pd.Timestamp(as_of) - last > pd.Timedelta(days=REMEASURE_DAYS):
        return f"over the {weeks} weeks to the last visit, {last:%d %b %Y}, {words}"  # the window ends there
    return f"over the last {weeks} weeks, {words}"


def side_sentence(row, as_of=None) -> str:
    """One involved side's progress in a sentence: every number rounded once (one decimal) and
    every difference taken from the numbers printed, so what it says matches what it shows. With
    ``as_of`` (the report's date) a last visit more than :data:`REMEASURE_DAYS` before it is named:
    the recent window ends at the last visit, not at the report."""
    side = row.side.capitalize()
    if row.n_visits < 2:
        text = f"{side} hip IR measured once so far: {fixed(row.latest_deg)} degrees"
    else:
        mdc = f"{row.mdc_deg:g}"
        direction, change = _verdict(row)
        verdict = {"improved": f"beyond the {mdc}-degree MDC", "worse": f"a loss beyond the {mdc}-degree MDC",
                   "no reliable change": f"within the {mdc}-degree MDC, so not a reliable change"}[direction]
        verb = {"improved": "improved", "worse": "fell"}.get(direction, "changed")
        text = (f"{side} hip IR {verb} from {fixed(row.baseline_deg)} to {fixed(row.latest_deg)} degrees "
                f"({signed(change, 1)}, {verdict}) over {whole(row.weeks_followed)} weeks")
        if pd.notna(row.slope_ci_low):
            text += (f", {fixed(row.slope_deg_per_week)} degrees a week (95% CI {fixed(row.slope_ci_low)} to "
                     f"{fixed(row.slope_ci_high)})")
        if isinstance(row.recent_trend, str):
            text += f"; {_trend_words(row, as_of)}"
    gain = to_gain(row.target_deg, row.latest_deg, 1)
    if gain is not None:
        text += f"; {_target_words(row, gain)}"
    if pd.notna(row.asymmetry_deg):
        text += f"; {_asymmetry_words(row, reached=gain == 0)}"
    return text + "."


def _target_words(row, gain: float) -> str:
    """The target and both of its references: the uninvolved side's recent values and the normal
    range's low end, which the target never falls below."""
    low = NORMATIVE_IR[0]
    if row.target_reference == "uninvolved side":
        source = f"the uninvolved side's recent mean; the normal range starts at {low:g}"
    elif pd.notna(row.uninvolved_recent_deg):
        source = (f"the low end of the normal range; the uninvolved side's recent mean, "
                  f"{fixed(row.uninvolved_recent_deg)}, is below it too")
    else:
        source = "the low end of the normal range"
    target = fixed(row.target_deg)
    return (f"{fixed(gain)} degrees short of the target of {target} ({source})" if gain > 0
            else f"at or above the target of {target} ({source})")


def _asymmetry_words(row, *, reached: bool) -> str:
    """The side-to-side difference at one visit, from the numbers printed; when the target is
    reached but this side is still lower, said so rather than left to look like a contradiction."""
    this = row.other_side_deg + row.asymmetry_deg
    gap = difference(this, row.other_side_deg)
    on = f"{pd.Timestamp(row.asymmetry_on):%d %b %Y}"
    if gap == 0:
        return f"level with the other side on {on} ({fixed(this)} and {fixed(row.other_side_deg)})"
    text = (f"{fixed(abs(gap))} degrees {'less' if gap < 0 else 'more'} than the other side on {on} "
            f"({fixed(this)} vs {fixed(row.other_side_deg)})")
    if gap < 0 and reached:
        text = "though " + text + (f", within the {row.mdc_deg:g}-degree MDC: not a reliable difference"
                                   if abs(gap) <= row.mdc_deg else
                                   f", beyond the {row.mdc_deg:g}-degree MDC: the uninvolved side's values vary; "
                                   "re-measure both sides at one visit")
    return text


def _summary(p: PatientProgress) -> list[str]:
    involved = _involved(p.trends)
    parts = []
    if p.episode is not None and len(p.episodes) > 1:
        parts.append(f"This report covers {episode_in_words(p.episode, len(p.episodes))}; earlier episodes are "
                     "under History.")
    parts += [side_sentence(row, p.as_of) for row in involved.itertuples()]
    if involved.empty:
        parts.append("No hip IR measurements on the report's method yet for the involved side.")
    a = p.adherence
    if a is not None and pd.notna(a["breakout_adherence"]):
        parts.append(f"{percent(a['breakout_adherence'])} of planned breakout sessions done "
                     f"({fixed(a['breakouts_per_week_done'])} per week); {percent(a['adherence'])} of all planned "
                     "sessions.")
    parts.append(_pain_sentence(p))
    return parts


def _pain_sentence(p: PatientProgress) -> str:
    if p.sessions.empty:
        return "No sessions logged yet, so pain tolerance cannot be judged."
    if p.flags.empty:
        return "No pain scores recorded, so pain tolerance cannot be judged."
    f = p.flags.iloc[0]
    if f["status"] == "flag":
        return f"Pain flag: {f['reasons']} (see Flags)."
    if f["status"] == "too few":
        n = int(f["breakout_sessions"])
        return (f"Too few breakout sessions with pain recorded to judge tolerance ({n} of the "
                f"{MIN_SESSIONS} needed).")
    return (f"No pain flag in the last {int(f['breakout_sessions'])} breakout sessions"
            + ("; pain rose before the schedule switch (see Flags)." if f["history"] else "."))


# ----------------------------------------------------------------------------------------------
# Clinic overview and cohort comparison
# ----------------------------------------------------------------------------------------------


ACTIVE_GRACE_DAYS = 28
"""A patient is *active* on a date when a program is in force then or ended at most this many days
before it: a final progress report is still due. The clinic batch reports on active patients."""


def latest_date(source) -> pd.Timestamp | None:
    """The latest measurement, session or discharge date in a Store or a dict of tables (None when
    there is none): the day a report is made for unless told otherwise, for every patient alike."""
    if not isinstance(source, dict):
        return source.latest_day()
    dates = [pd.to_datetime(source[t][c]).max() for t, c in LATEST_DAY_COLUMNS if t in source and len(source[t])]
    return max((d for d in dates if pd.notna(d)), default=None)


def patient_list(source, *, as_of=None, grace_days: int = ACTIVE_GRACE_DAYS,
                 gap_days: int = EPISODE_GAP_DAYS) -> pd.DataFrame:
    """One row per patient: involved side, the program in force, the episode of care, the last
    measurement, and whether the patient is active (see :data:`ACTIVE_GRACE_DAYS`).

    Parameters
    ----------
    source : Store or dict of DataFrame
    as_of : date-like, optional
        The day to judge "current" on; default the latest measurement or session date.

    Returns
    -------
    DataFrame
        ``patient_id``, ``involved_side``, ``program_id``, ``schedule``, ``program`` (in words:
        "in force until ...", "ended ...", "starts ...", "none"), ``episode`` (the current episode
        of care: "2 of 2 since 2026-12-07"), ``episode_status`` (active | ended | discharged ... |
        planned), ``last_measured_on``, ``n_visits``, ``active`` (the current episode has a program
        in force, or one that ended at most ``grace_days`` before, and no discharge), sorted by
        id. The display name is never included.

    Examples
    --------
    >>> from hipanalytics.synthetic import generate_clinic
    >>> c = generate_clinic(3, seed=3)
    >>> patient_list(c, as_of="2026-02-01")[["patient_id", "involved_side", "active"]].values.tolist()
    [['SYN-00001', 'right', False], ['SYN-00002', 'left', True], ['SYN-00003', 'right', True]]
    """
    t = _tables(source)
    day = iso_day(as_of) if as_of is not None else latest_date(t)
    patients = t["patients"].sort_values("patient_id")
    programs = t["programs"].copy()
    for column in ("start_date", "end_date"):
        programs[column] = pd.to_datetime(programs[column])
    episodes = episodes_of_care(programs, t["episodes"], gap_days=gap_days, grace_days=grace_days,
                                as_of=day if day is not None else None)
    counts = episodes.groupby("patient_id").size()
    current = _current_episodes(episodes, day)
    m = t["measurements"]
    visits = (m.assign(day=pd.to_datetime(m["measured_on"])).groupby("patient_id")["day"].agg(["max", "nunique"])
              if len(m) else pd.DataFrame(columns=["max", "nunique"]))
    by_patient = dict(tuple(programs.sort_values("start_date").groupby("patient_id"))) if len(programs) else {}
    rows = []
    for pid, side in zip(patients["patient_id"], patients["involved_side"]):
        own = by_patient.get(pid, programs.iloc[0:0])
        chosen, words = None, "none"
        if day is not None and len(own):
            live = own[(own["start_date"] <= day) & (own["end_date"] >= day)]
            ended = own[own["end_date"] < day]
            coming = own[own["start_date"] > day]
            if len(live):
                chosen = live.iloc[-1]
                words = f"in force until {chosen['end_date']:%Y-%m-%d}"
            elif len(ended):
                chosen = ended.iloc[-1]
                words = f"ended {chosen['end_date']:%Y-%m-%d}"
            elif len(coming):
                chosen = coming.iloc[0]
                words = f"starts {chosen['start_date']:%Y-%m-%d}"
        episode = current.loc[pid] if pid in current.index else None
        last = visits["max"].get(pid) if pid in visits.index else None
        rows.append({"patient_id": pid, "involved_side": side,
                     "program_id": None if chosen is None else chosen["program_id"],
                     "schedule": None if chosen is None else chosen["schedule"], "program": words,
                     "episode": "" if episode is None else (f"{int(episode['episode'])} of {int(counts.get(pid, 1))} "
                                                            f"since {episode['start_date']:%Y-%m-%d}"),
                     "episode_status": "" if episode is None else _status_words(episode),
                     "last_measured_on": None if last is None or pd.isna(last) else last.strftime("%Y-%m-%d"),
                     "n_visits": int(visits["nunique"].get(pid, 0)) if pid in visits.index else 0,
                     "active": bool(episode is not None and episode["status"] == "active" and day is not None)})
    return pd.DataFrame(rows, columns=["patient_id", "involved_side", "program_id", "schedule", "program", "episode",
                                       "episode_status", "last_measured_on", "n_visits", "active"])


def _current_episodes(episodes: pd.DataFrame, day) -> pd.DataFrame:
    """Each patient's current episode on ``day``: the latest one started by then, else the first
    (a planned one), indexed by patient."""
    if episodes.empty:
        return episodes.set_index("patient_id")
    started = episodes[episodes["window_start"] <= day] if day is not None else episodes.iloc[0:0]
    latest = started.groupby("patient_id").tail(1)
    first = episodes[~episodes["patient_id"].isin(latest["patient_id"])].groupby("patient_id").head(1)
    return pd.concat([latest, first]).set_index("patient_id")


REMEASURE_DAYS = 14
"""Re-measure hip IR every two weeks by default: the 6-week trend window then holds 3-4 visits,
enough to judge the recent trend (:data:`hipanalytics.analysis.rom.MIN_RECENT_VISITS`)."""

NEW_FLAG_DAYS = 7
"""A pain flag raised by a session in the last week before the overview date is *new* and goes
first."""

_ATTENTION = [  # reason -> what to do, in order of urgency
    ("new pain flag", "review tolerance before the next breakout session"),
    ("pain flag", "review tolerance before the next breakout session"),
    ("IR worsening", "re-assess the hip; check the measurement method"),
    ("no response yet", "review the program: dose, adherence, technique"),
    ("levelled off short of the target", "progress the program, or plan the discharge"),
    ("levelled off at the target", "plan the discharge"),
    ("under half of the breakouts done", "talk the home program through with the patient"),
    ("program ended", "write the final report and discharge (hipanalytics discharge)"),
    ("re-measure overdue", "re-measure hip IR"),
]


def clinic_overview(source, *, as_of=None, patients: list[str] | None = None, everyone: bool = False,
                    gap_days: int = EPISODE_GAP_DAYS) -> pd.DataFrame:
    """The clinic's worklist: every involved hip of every active patient (or ``everyone``, or
    ``patients``) on the current episode of care, with its status and the next action, the most
    urgent first.

    A patient with both hips involved has a row per hip, together. Urgency: a pain flag raised in
    the last :data:`NEW_FLAG_DAYS` days, an older pain flag, IR worsening, no response yet after
    4 weeks or more, levelled off short of the target, levelled off at it, under half of the
    breakouts done, a program that ended without a discharge, a re-measurement overdue; then
    everyone else. Each patient is shown on their usual hip IR method
    (:func:`hipanalytics.analysis.rom.usual_methods`); a series never mixes methods.

    Returns
    -------
    DataFrame
        ``patient_id``, ``side``, ``method`` (in words), ``n_visits``, ``latest_deg``, ``change_deg``
        (latest minus baseline as the progress report prints them, one decimal), ``direction``, ``recent_trend``, ``plateau``, ``to_target_deg``, ``to_gain_deg``
        (degrees still to gain, one decimal, from the numbers shown; 0 once reached),
        ``breakout_adherence``, ``flagged``, ``tolerance`` (flag | ok | too few | no pain
        recorded), ``program`` and ``episode`` (in words), ``last_visit``, ``next_visit`` (when
        to re-measure), ``attention`` (every reason, the most urgent first, "; "-joined, or
        empty), ``action`` (what to do about the most urgent), sorted by urgency, then patient
        and hip.
    """
    t = _tables(source)
    cut = iso_day(as_of)
    day = cut if cut is not None else latest_date(t)
    listed = patient_list(t, as_of=day, gap_days=gap_days)
    keep = set(listed["patient_id"] if everyone else listed.loc[listed["active"], "patient_id"])
    if patients is not None:
        keep &= set(patients)
    t = {k: v[v["patient_id"].isin(keep)] for k, v in t.items()}
    episodes = episodes_of_care(t["programs"], t["episodes"], gap_days=gap_days, as_of=day)
    current = _current_episodes(episodes, day)
    m = t["measurements"]
    m = m[pd.to_datetime(m["measured_on"]) <= day] if day is not None else m
    m = m[_in_current(m, "measured_on", current)]
    usual = usual_methods(m)[["patient_id", "joint", "motion", *METHOD_KEYS]]  # each patient's own series
    m = m.merge(usual, on=list(usual.columns))
    trends = _involved(rom_trends(m, patients=t["patients"]))
    members = program_episodes(t["programs"], t["episodes"], gap_days=gap_days) if len(t["programs"]) else None
    programs = (t["programs"][members["episode_id"].to_numpy() == members["patient_id"].map(current["episode_id"]).to_numpy()]
                if members is not None else t["programs"])
    s = t["sessions"][_in_current(t["sessions"], "performed_on", current)]
    adh = adherence_summary(programs, s, as_of=day).set_index("patient_id")
    flags = tolerance_flags(s, programs, episodes=t["episodes"], gap_days=gap_days, as_of=day).set_index("patient_id")
    columns = ["patient_id", "side", "method", "n_visits", "latest_deg", "change_deg", "direction", "recent_trend",
               "plateau", "to_target_deg", "to_gain_deg", "breakout_adherence", "flagged", "tolerance", "program",
               "episode", "last_visit", "next_visit", "attention", "action"]
    if trends.empty:
        return pd.DataFrame(columns=columns)
    out = trends[["patient_id", "side", "n_visits", "latest_deg", "change_deg", "direction", "recent_trend", "plateau",
                  "to_target_deg", "to_decide", "weeks_followed", "last_visit"]].copy()
    out["method"] = [method_in_words(dict(zip(METHOD_KEYS, r))) for r in trends[list(METHOD_KEYS)].itertuples(index=False)]
    out["change_deg"] = [difference(latest, first) for latest, first in zip(trends["latest_deg"], trends["baseline_deg"])]
    out["to_gain_deg"] = [to_gain(target, latest, 1) for target, latest in zip(trends["target_deg"], trends["latest_deg"])]
    out["breakout_adherence"] = out["patient_id"].map(adh["breakout_adherence"]) if len(adh) else np.nan
    out["flagged"] = out["patient_id"].map(flags["flagged"]).fillna(False).astype(bool) if len(flags) else False
    out["tolerance"] = out["patient_id"].map(flags["status"]).fillna("no pain recorded") if len(flags) else "no pain recorded"
    flag_day = (flags["flag_day"] if len(flags) else pd.Series(dtype="datetime64[ns]")).reindex(out["patient_id"])
    out["new_flag"] = out["flagged"] & (flag_day.to_numpy() >= day - pd.Timedelta(days=NEW_FLAG_DAYS))
    info = listed.set_index("patient_id")
    out["program"] = out["patient_id"].map(info["program"])
    out["episode"] = out["patient_id"].map(info["episode"])
    due = pd.to_datetime(out["last_visit"]) + pd.Timedelta(days=REMEASURE_DAYS)
    ended = out["program"].str.startswith("ended")
    reasons = [
        out["new_flag"],
        out["flagged"],
        out["recent_trend"] == "worsening",
        (out["recent_trend"] == "no response yet") & (out["weeks_followed"] >= 4),
        (out["recent_trend"] == "levelled off") & (out["to_gain_deg"].fillna(0) > 0),
        (out["recent_trend"] == "levelled off"),
        out["breakout_adherence"] < 0.5,
        ended,
        due < day,
    ]
    reasons[1] = reasons[1] & ~reasons[0]  # a new flag is not told twice
    masks = [pd.Series(mask, index=out.index).fillna(False).astype(bool).to_numpy() for mask in reasons]
    found = [[_ATTENTION[k][0] for k, mask in enumerate(masks) if mask[i]] for i in range(len(out))]
    out["attention"] = ["; ".join(f) for f in found]  # every reason, the most urgent first
    out["action"] = [_ATTENTION[[a for a, _ in _ATTENTION].index(f[0])][1] if f else "" for f in found]
    out["rank"] = [[a for a, _ in _ATTENTION].index(f[0]) if f else len(_ATTENTION) for f in found]
    out["rank"] = out.groupby("patient_id")["rank"].transform("min")  # a patient's hips stay together
    out["next_visit"] = [_next_visit(d, decide, day) for d, decide in zip(due, out["to_decide"])]
    out["action"] = [a or f"continue; re-measure hip IR by {n}" for a, n in zip(out["action"], out["next_visit"])]
    out["last_visit"] = pd.to_datetime(out["last_visit"]).dt.strftime("%Y-%m-%d")
    out = out.sort_values(["rank", "patient_id", "side"], kind="stable")
    return out[columns].reset_index(drop=True)


def _in_current(frame: pd.DataFrame, column: str, current: pd.DataFrame) -> np.ndarray:
    """Rows of ``frame`` dated within their patient's current episode window."""
    if frame.empty or current.empty:
        return np.zeros(len(frame), dtype=bool) if not current.empty or frame.empty else np.ones(len(frame), dtype=bool)
    dates = pd.to_datetime(frame[column])
    start = frame["patient_id"].map(current["window_start"])
    end = frame["patient_id"].map(current["window_end"])
    return ((start.isna() | (dates >= start)) & (end.isna() | (dates <= end))).to_numpy()


def _next_visit(due, to_decide: str, day) -> str:
    """When to re-measure: two weeks after the last visit, or the date an uncertain trend names."""
    named = re.search(r"by (\d{4}-\d{2}-\d{2})", to_decide or "")
    when = pd.Timestamp(named.group(1)) if named else due
    return f"{when:%Y-%m-%d}" + (" (overdue)" if day is not None and when < day else "")


def overview_key_figures(overview: pd.DataFrame, *, as_of=None) -> dict[str, Any]:
    """The overview report's key figures: patients, how many need attention, how many are flagged."""
    by_patient = overview.groupby("patient_id").agg(attention=("attention", lambda a: (a != "").any()),
                                                    flagged=("flagged", "any"))
    return {"patients": int(len(by_patient)), "hips": int(len(overview)),
            "need_attention": int(by_patient["attention"].sum()), "flagged": int(by_patient["flagged"].sum()),
            "as_of": None if as_of is None else f"{pd.Timestamp(as_of):%Y-%m-%d}",
            "synthetic_data": is_synthetic(overview["patient_id"]), "hipanalytics_version": __version__}


def overview_table(overview: pd.DataFrame) -> pd.DataFrame:
    """:func:`clinic_overview` with readable headings and values, for a printed page."""
    gain = overview["to_gain_deg"].map(lambda g: "" if g is None or pd.isna(g) else ("reached" if g == 0 else fixed(g)))
    # the method column only when patients differ in it, or all share one other than the usual
    shown = set(overview["method"]) - {method_in_words(PRIMARY_METHOD)} if "method" in overview else set()
    method = {"measured": overview["method"]} if shown else {}
    return pd.DataFrame({
        "patient": overview["patient_id"], "hip": overview["side"], **method,
        "latest IR (deg)": overview["latest_deg"].map(fixed),
        "change (deg)": [signed(c, 1) if n is None or n > 1 else "-"
                         for c, n in zip(overview["change_deg"], overview.get("n_visits", pd.Series(None, index=overview.index)))],
        "last 6 weeks": overview["recent_trend"].map(lambda t: t if isinstance(t, str) else "measured once"),
        "to gain (deg)": gain,
        "breakouts done": overview["breakout_adherence"].map(percent),
        "pain": overview["tolerance"],
        "program": [p if not isinstance(e, str) or e.startswith("1 of 1") else f"{p}; episode {e}"
                    for p, e in zip(overview["program"], overview.get("episode", pd.Series(None, index=overview.index)))],
        "last visit": overview["last_visit"],
        "re-measure by": overview["next_visit"],
        "needs attention": overview["attention"],
        "next action": overview["action"],
    })


def overview_html(overview: pd.DataFrame, reports: dict[str, str] | None = None) -> str:
    """The worklist as an HTML table (escaped), each patient's id linking to their progress report
    when ``reports`` (patient id -> file name, relative) has it."""
    table = overview_table(overview)
    widths = {"patient": 9, "hip": 4.5, "measured": 9, "latest IR (deg)": 6, "change (deg)": 6.5, "last 6 weeks": 8,
              "to gain (deg)": 6, "breakouts done": 8, "pain": 4.5, "program": 9, "last visit": 8, "re-measure by": 9,
              "needs attention": 12, "next action": 13}  # a header's longest word fits its column
    whole = {"patient", "hip", "latest IR (deg)", "change (deg)", "to gain (deg)", "breakouts done", "pain",
             "last visit"}  # never broken inside
    total = sum(widths[c] for c in table.columns)
    cols = "".join(f'<col style="width: {100 * widths[c] / total:.1f}%">' for c in table.columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for pid, row in zip(overview["patient_id"], table.itertuples(index=False)):
        cells = [html.escape(str(v)) for v in row]
        if reports and pid in reports:
            cells[0] = f'<a href="{html.escape(reports[pid], quote=True)}">{cells[0]}</a>'
        urgent = " class='urgent'" if row[-2] else ""
        body.append(f"<tr{urgent}>" + "".join(f"<td class='nowrap'>{c}</td>" if name in whole else f"<td>{c}</td>"
                                              for name, c in zip(table.columns, cells)) + "</tr>")
    return (_WORKLIST_CSS + f'<table class="worklist"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


_WORKLIST_CSS = """<style>
@page { size: A4 landscape; }
body { max-width: none; }
table.worklist { table-layout: fixed; width: 100%; font-size: 8.5pt; }
table.worklist th, table.worklist td { overflow-wrap: break-word; hyphens: none; vertical-align: top;
  padding: .15rem .3rem; }
table.worklist td.nowrap { white-space: nowrap; }
table.worklist thead { display: table-header-group; }
table.worklist tr { break-inside: avoid; }
table.worklist tr.urgent td:first-child { border-left: 4px solid #b3261e; }
ol { font-size: 8.5pt; line-height: 1.3; }
footer { margin-top: 1rem; }
</style>"""
"""A worklist has many columns: it is printed on landscape pages, in a smaller type, rows unbroken."""


from .study import CohortComparison, cohort_comparison  # noqa: E402  (kept here: the names are public)
