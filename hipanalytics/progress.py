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
from .analysis.rom import METHOD_KEYS, PRIMARY_METHOD, method_in_words, select_method, usual_method, usual_methods
from .numbers import fixed, percent, rounded, signed, to_gain, whole
from .errors import ReportError
from .synthetic import is_synthetic

__all__ = ["PatientProgress", "patient_progress", "REFERENCES", "ACTIVE_GRACE_DAYS", "iso_day", "latest_date", "patient_list",
           "clinic_overview", "overview_key_figures", "overview_table", "CohortComparison", "cohort_comparison"]

REFERENCES = [
    "Krause DA, Hollman JH, Krych AJ, Kalisvaart MM, Levy BA. Reliability of hip internal rotation range "
    "of motion measurement using a digital inclinometer. Knee Surg Sports Traumatol Arthrosc "
    "2015;23(9):2562-2567: seated, single-leg active IR, MDC 5.4 degrees.",
    "Gradoz MC et al. J Sport Rehabil 2018: MDC95 of hip rotation 6.1-8.6 degrees across positions.",
    "Simoneau GG et al. JOSPT 1998; Kouyoumdjian P et al. OTSR 2012: hip IR differs by test position.",
    "Roach S et al. IJSPT 2013: digital inclinometer reads about 4.5 degrees more IR than a goniometer.",
    "Normative hip IR: compiled in J Athl Train 2018;53(6):560, Table 1 (adult means about 29-50 degrees).",
    "Farrar JT et al. Pain 2001: a 2-point NPRS change is clinically important.",
]


@dataclass
class PatientProgress:
    """Everything one patient's progress report shows."""

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
    key_figures: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """A few sentences a clinician can read aloud: one per involved side, then sessions and pain."""
        return _summary(self)

    def sides_table(self) -> pd.DataFrame:
        """One row per involved side: latest, change, slope with its 95 % CI, recent trend, the
        side-to-side difference (one visit) and the target, in words and rounded as shown."""
        rows = []
        for r in _involved(self.trends).itertuples():
            slope = (f"{fixed(r.slope_deg_per_week)} ({fixed(r.slope_ci_low)} to {fixed(r.slope_ci_high)})"
                     if pd.notna(r.slope_ci_low) else fixed(r.slope_deg_per_week, missing="-"))
            other = ("-" if pd.isna(r.asymmetry_deg) else
                     f"{signed(r.asymmetry_deg)} on {pd.Timestamp(r.asymmetry_on):%Y-%m-%d}")
            gain = to_gain(r.target_deg, r.latest_deg)
            target = "-" if gain is None else (f"{whole(r.target_deg)} ({'reached' if gain == 0 else f'{gain} to gain'})")
            rows.append({"side": r.side, "baseline (deg)": whole(r.baseline_deg), "latest (deg)": whole(r.latest_deg),
                         "change (deg)": signed(r.change_deg), "vs MDC": r.direction,
                         "deg/week (95% CI)": slope,
                         f"last {r.recent_weeks} weeks": r.recent_trend if isinstance(r.recent_trend, str) else "not judged",
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
        """Every trial of every measurement, with its method in words (the report's appendix)."""
        m = self.measurements.sort_values(["measured_on", "side", "position", "trial"])
        return pd.DataFrame({
            "date": pd.to_datetime(m["measured_on"]).dt.strftime("%Y-%m-%d"), "side": m["side"],
            "method": [method_in_words({"position": a, "mode": b, "instrument": c})
                       for a, b, c in zip(m["position"], m["mode"], m["instrument"])],
            "trial": m["trial"].astype("Int64"), "IR (deg)": m["degrees"].map(fixed),
        }).reset_index(drop=True)

    def header_html(self) -> str:
        """Header block (escaped): patient, involved side(s), method, programs, dates."""
        side = str(self.patient.get("involved_side", ""))
        rows = [("Patient", self.label), ("Report date", self.as_of.strftime("%Y-%m-%d")),
                ("Involved side", "both hips" if side == "both" else f"{side} hip"),
                ("Measured", f"hip internal rotation, {method_in_words(self.method)}{self._other_methods()}")]
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
        """The tolerance flags with their reasons, and pain rises before a schedule switch as history
        (escaped); or a line saying there are none."""
        told = self.flags[self.flags["message"] != ""] if len(self.flags) else self.flags
        if told.empty:
            return "<p>No flags: pain did not rise by 2 or more points after repeated breakout sessions.</p>"
        return "".join(f"<p class='{'flag' if f else 'history'}'>{html.escape(m)}</p>"
                       for f, m in zip(told["flagged"], told["message"]))

    def chart_alt(self) -> str:
        """One sentence saying what the headline chart shows (its alt text)."""
        parts = []
        for r in _involved(self.trends).itertuples():
            if r.n_visits < 2:
                parts.append(f"{r.side.capitalize()} hip IR measured once: {whole(r.latest_deg)} degrees")
            else:
                verb = "rose" if rounded(r.change_deg) > 0 else "fell" if rounded(r.change_deg) < 0 else "stayed"
                span = f"over {whole(r.weeks_followed)} weeks"
                parts.append(f"{r.side.capitalize()} hip IR {verb} from {whole(r.baseline_deg)} to "
                             f"{whole(r.latest_deg)} degrees {span}" if verb != "stayed" else
                             f"{r.side.capitalize()} hip IR stayed at {whole(r.latest_deg)} degrees {span}")
        text = "; ".join(parts) or "No hip IR measurements on this method yet"
        return f"{text}, above the breakout sessions planned and done each week."

    def calendar_alt(self) -> str:
        """One sentence saying what the sessions calendar shows (its alt text)."""
        a = self.adherence
        if a is None or pd.isna(a["adherence"]):
            return "Calendar of planned sessions: no program, or nothing planned yet."
        return (f"Calendar of the program's days: {percent(a['adherence'])} of planned sessions and "
                f"{percent(a['breakout_adherence'])} of planned breakout sessions done up to {self.as_of:%d %b %Y}.")

    def pain_alt(self) -> str:
        """One sentence saying what the pain chart shows (its alt text)."""
        s = self.sessions
        both = s[s["pain_before"].notna() & s["pain_after"].notna()]
        if both.empty:
            return "Pain before and after sessions: no pain scores recorded."
        rises = int(((both["pain_after"] - both["pain_before"]) >= 2).sum())
        return (f"Pain (NPRS 0-10) before and after {len(both)} sessions from {pd.Timestamp(both['performed_on'].min()):%d %b} "
                f"to {pd.Timestamp(both['performed_on'].max()):%d %b %Y}: {rises} rise{'s' if rises != 1 else ''} of 2 "
                "or more points.")


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


_TABLES = ("patients", "programs", "measurements", "sessions")


def _tables(source, patient_id: str | None = None) -> dict[str, pd.DataFrame]:
    """The four record tables from a Store or a dict of frames, for one patient or everyone."""
    if isinstance(source, dict):
        return {k: source[k] if patient_id is None else source[k][source[k]["patient_id"] == patient_id]
                for k in _TABLES}
    return {t: source.read(t, patient_id=patient_id) for t in _TABLES}


def patient_progress(source, patient_id: str, *, as_of=None, method: dict | None = None,
                     show_name: bool = False) -> PatientProgress:
    """Gather one patient's report content from a store (or a dict of tables).

    Parameters
    ----------
    source : Store or dict of DataFrame
    patient_id : str
    as_of : date-like, optional
        The report date; data after it are left out. Default: the latest recorded date.
    method : dict, optional
        Measurement method of the headline series. Default: the patient's usual method up to the
        report date (:func:`hipanalytics.analysis.rom.usual_method`: the most visits; seated 90/90,
        active, inclinometer for a patient not measured yet).
    show_name : bool
        Use the patient's display name in the header (sensitive) instead of the id.

    Raises
    ------
    ReportError
        When the patient is unknown.
    """
    tables = _tables(source, patient_id)
    if tables["patients"].empty:
        raise ReportError(f"unknown patient {patient_id!r}: not in the store's patients table")
    m, s = tables["measurements"], tables["sessions"]
    latest = latest_date(tables)
    cut = iso_day(as_of)
    if cut is None:
        cut = latest if latest is not None else pd.Timestamp.today().normalize()
    m = m[pd.to_datetime(m["measured_on"]) <= cut]
    s = s[pd.to_datetime(s["performed_on"]) <= cut]
    method = method or usual_method(m, patient_id)
    patient = tables["patients"].iloc[0]
    name = patient.get("display_name") if show_name else None
    label = str(name) if name is not None and pd.notna(name) and str(name).strip() else patient_id
    primary = select_method(m, method)
    trends = rom_trends(primary, patients=tables["patients"]) if len(primary) else rom_trends(m.iloc[0:0])
    adh = adherence_summary(tables["programs"], s, as_of=cut) if len(tables["programs"]) else pd.DataFrame()
    flags = tolerance_flags(s, tables["programs"], as_of=cut) if len(tables["programs"]) else tolerance_flags(
        s.iloc[0:0], tables["programs"])
    progress = PatientProgress(patient_id, label, cut, method, patient, tables["programs"], m, s, trends,
                               adh.iloc[0] if len(adh) else None, flags)
    progress.key_figures = _key_figures(progress)
    return progress


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
            "asymmetry_deg": _number(row.asymmetry_deg),
            "asymmetry_on": None if pd.isna(row.asymmetry_on) else f"{pd.Timestamp(row.asymmetry_on):%Y-%m-%d}",
            "target_deg": _number(row.target_deg), "target_source": row.target_source,
            "to_gain_deg": to_gain(row.target_deg, row.latest_deg),
        }
    a = p.adherence
    return {
        "patient_id": p.patient_id, "as_of": p.as_of.strftime("%Y-%m-%d"), "hipanalytics_version": __version__,
        "synthetic_data": is_synthetic([p.patient_id]),
        "method": p.method, "involved": sides,
        "adherence": None if a is None else _number(a["adherence"]),
        "breakout_adherence": None if a is None else _number(a["breakout_adherence"]),
        "breakouts_per_week_done": None if a is None else _number(a["breakouts_per_week_done"]),
        "flagged": bool(p.flags["flagged"].any()) if len(p.flags) else False,
        "n_measurements": int(len(p.measurements)), "n_sessions": int(len(p.sessions)),
    }


_RECENT = {"gaining": "still a reliable gain", "plateau": "no reliable change (plateau)",
           "worsening": "a reliable loss (worsening)"}


def side_sentence(row) -> str:
    """One involved side's progress in a sentence, every number rounded once and compared as shown."""
    side = row.side.capitalize()
    if row.n_visits < 2:
        return f"{side} hip IR measured once so far: {whole(row.latest_deg)} degrees."
    mdc = f"{row.mdc_deg:g}"
    verdict = {"improved": f"beyond the {mdc}-degree MDC", "worse": f"a loss beyond the {mdc}-degree MDC",
               "no reliable change": f"within the {mdc}-degree MDC, so not a reliable change"}[row.direction]
    verb = {"improved": "improved", "worse": "fell"}.get(row.direction, "changed")
    text = (f"{side} hip IR {verb} from {whole(row.baseline_deg)} to {whole(row.latest_deg)} degrees "
            f"({signed(row.change_deg)}, {verdict}) over {whole(row.weeks_followed)} weeks")
    if pd.notna(row.slope_ci_low):
        text += (f", {fixed(row.slope_deg_per_week)} degrees a week (95% CI {fixed(row.slope_ci_low)} to "
                 f"{fixed(row.slope_ci_high)})")
    if isinstance(row.recent_trend, str):
        text += f"; over the last {row.recent_weeks} weeks, {_RECENT[row.recent_trend]}"
    gain = to_gain(row.target_deg, row.latest_deg)
    if gain is not None:
        target = whole(row.target_deg)
        source = ("the uninvolved side's mean" if str(row.target_source).startswith("uninvolved")
                  else "the low end of the normal range")
        text += (f"; {gain} degree{'s' if gain != 1 else ''} short of the target of {target} ({source})" if gain > 0
                 else f"; at or above the target of {target} ({source})")
    if pd.notna(row.asymmetry_deg):
        text += (f"; {whole(abs(row.asymmetry_deg))} degrees {'less' if rounded(row.asymmetry_deg) < 0 else 'more'} "
                 f"than the other side on {pd.Timestamp(row.asymmetry_on):%d %b %Y}"
                 if rounded(row.asymmetry_deg) != 0 else
                 f"; level with the other side on {pd.Timestamp(row.asymmetry_on):%d %b %Y}")
    return text + "."


def _summary(p: PatientProgress) -> str:
    involved = _involved(p.trends)
    parts = [side_sentence(row) for row in involved.itertuples()]
    if involved.empty:
        parts.append("No hip IR measurements on the report's method yet for the involved side.")
    a = p.adherence
    if a is not None and pd.notna(a["breakout_adherence"]):
        parts.append(f"{percent(a['breakout_adherence'])} of planned breakout sessions done "
                     f"({fixed(a['breakouts_per_week_done'])} per week); {percent(a['adherence'])} of all planned "
                     "sessions.")
    flagged = p.flags[p.flags["flagged"]] if len(p.flags) else p.flags
    if len(flagged):
        parts.append("Pain rose after repeated breakout sessions: see the flags.")
    elif len(p.flags):
        parts.append("Pain stable after breakout sessions" + (" since the schedule switch; earlier rises are in the "
                                                              "flags section." if (p.flags["history"] != "").any()
                                                              else "."))
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------
# Clinic overview and cohort comparison
# ----------------------------------------------------------------------------------------------


ACTIVE_GRACE_DAYS = 28
"""A patient is *active* on a date when a program is in force then or ended at most this many days
before it: a final progress report is still due. The clinic batch reports on active patients."""


def latest_date(tables: dict[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The latest measurement or session date in ``tables`` (None when there is neither)."""
    dates = [pd.to_datetime(tables[t][c]).max() for t, c in (("measurements", "measured_on"),
                                                              ("sessions", "performed_on"))]
    return max((d for d in dates if pd.notna(d)), default=None)


def patient_list(source, *, as_of=None, grace_days: int = ACTIVE_GRACE_DAYS) -> pd.DataFrame:
    """One row per patient: involved side, the program in force, the last measurement, and whether
    the patient is active (see :data:`ACTIVE_GRACE_DAYS`).

    Parameters
    ----------
    source : Store or dict of DataFrame
    as_of : date-like, optional
        The day to judge "current" on; default the latest measurement or session date.

    Returns
    -------
    DataFrame
        ``patient_id``, ``involved_side``, ``program_id``, ``schedule``, ``program`` (in words:
        "in force until ...", "ended ...", "starts ...", "none"), ``last_measured_on``,
        ``n_visits``, ``active``, sorted by id. The display name is never included.

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
    m = t["measurements"]
    visits = (m.assign(day=pd.to_datetime(m["measured_on"])).groupby("patient_id")["day"].agg(["max", "nunique"])
              if len(m) else pd.DataFrame(columns=["max", "nunique"]))
    rows = []
    for pid, side in zip(patients["patient_id"], patients["involved_side"]):
        own = programs[programs["patient_id"] == pid].sort_values("start_date")
        current, words, active = None, "none", False
        if day is not None and len(own):
            live = own[(own["start_date"] <= day) & (own["end_date"] >= day)]
            ended = own[own["end_date"] < day]
            coming = own[own["start_date"] > day]
            if len(live):
                current = live.iloc[-1]
                words = f"in force until {current['end_date']:%Y-%m-%d}"
            elif len(ended):
                current = ended.iloc[-1]
                words = f"ended {current['end_date']:%Y-%m-%d}"
            elif len(coming):
                current = coming.iloc[0]
                words = f"starts {current['start_date']:%Y-%m-%d}"
            active = bool(((own["start_date"] <= day)
                           & (own["end_date"] >= day - pd.Timedelta(days=grace_days))).any())
        last = visits["max"].get(pid) if pid in visits.index else None
        rows.append({"patient_id": pid, "involved_side": side,
                     "program_id": None if current is None else current["program_id"],
                     "schedule": None if current is None else current["schedule"], "program": words,
                     "last_measured_on": None if last is None or pd.isna(last) else last.strftime("%Y-%m-%d"),
                     "n_visits": int(visits["nunique"].get(pid, 0)) if pid in visits.index else 0,
                     "active": active})
    return pd.DataFrame(rows, columns=["patient_id", "involved_side", "program_id", "schedule", "program",
                                       "last_measured_on", "n_visits", "active"])


def clinic_overview(source, *, as_of=None, patients: list[str] | None = None) -> pd.DataFrame:
    """Every involved hip of every patient (or ``patients``): latest IR, change against the MDC,
    recent trend, degrees still to gain, adherence and tolerance flag, who needs attention first.

    A patient with both hips involved has a row per hip. Attention order: a tolerance flag, then a
    loss beyond the MDC (or a reliable loss over the recent weeks), then a plateau short of the
    target, then breakout adherence under 50 %, then everyone else by smallest change.

    Each patient is shown on their usual hip IR method (:func:`hipanalytics.analysis.rom.usual_methods`),
    so a clinic measuring prone with a goniometer sees its patients; a series never mixes methods.

    Returns
    -------
    DataFrame
        ``patient_id``, ``side``, ``latest_deg``, ``change_deg``, ``direction``, ``recent_trend``,
        ``plateau``, ``to_target_deg``, ``method`` (in words), ``to_gain_deg`` (whole degrees still
        to gain, from the rounded numbers shown; 0 once reached), ``breakout_adherence``,
        ``flagged``, ``attention`` (the reason, or empty), sorted.
    """
    t = _tables(source)
    if patients is not None:
        t = {k: v[v["patient_id"].isin(patients)] for k, v in t.items()}
    cut = iso_day(as_of)
    m = t["measurements"]
    upto = m[pd.to_datetime(m["measured_on"]) <= cut] if cut is not None else m
    usual = usual_methods(upto)[["patient_id", "joint", "motion", *METHOD_KEYS]]  # each patient's own series
    m = m.merge(usual, on=list(usual.columns))
    trends = _involved(rom_trends(m, patients=t["patients"], as_of=cut))
    adh = adherence_summary(t["programs"], t["sessions"], as_of=cut).set_index("patient_id")
    flags = tolerance_flags(t["sessions"], t["programs"], as_of=cut).set_index("patient_id")
    out = trends[["patient_id", "side", "latest_deg", "change_deg", "direction", "recent_trend", "plateau",
                  "to_target_deg"]].copy()
    out["method"] = [method_in_words(dict(zip(METHOD_KEYS, r))) for r in trends[list(METHOD_KEYS)].itertuples(index=False)]
    out["to_gain_deg"] = [to_gain(target, latest) for target, latest in zip(trends["target_deg"], trends["latest_deg"])]
    out["breakout_adherence"] = out["patient_id"].map(adh["breakout_adherence"]) if len(adh) else np.nan
    out["flagged"] = out["patient_id"].map(flags["flagged"]).fillna(False).astype(bool) if len(flags) else False
    reasons = [
        (out["flagged"], "pain rose after repeated breakouts"),
        ((out["direction"] == "worse") | (out["recent_trend"] == "worsening"), "IR fell beyond the MDC"),
        (out["plateau"].fillna(False).astype(bool) & (out["to_gain_deg"].fillna(0) > 0), "plateau short of target"),
        (out["breakout_adherence"] < 0.5, "under half of breakouts done"),
    ]
    out["attention"] = ""
    out["rank"] = len(reasons)
    for rank, (mask, reason) in reversed(list(enumerate(reasons))):
        mask = mask.fillna(False).astype(bool)
        out.loc[mask, "attention"] = reason
        out.loc[mask, "rank"] = rank
    out = out.sort_values(["rank", "change_deg", "patient_id", "side"], kind="stable").drop(columns="rank")
    return out.reset_index(drop=True)


def overview_key_figures(overview: pd.DataFrame) -> dict[str, Any]:
    """The overview report's key figures: patients, how many need attention, how many are flagged."""
    by_patient = overview.groupby("patient_id").agg(attention=("attention", lambda a: (a != "").any()),
                                                    flagged=("flagged", "any"))
    return {"patients": int(len(by_patient)), "hips": int(len(overview)),
            "need_attention": int(by_patient["attention"].sum()), "flagged": int(by_patient["flagged"].sum()),
            "synthetic_data": is_synthetic(overview["patient_id"]), "hipanalytics_version": __version__}


def overview_table(overview: pd.DataFrame) -> pd.DataFrame:
    """:func:`clinic_overview` with readable headings and values, for a printed page."""
    gain = overview["to_gain_deg"].map(lambda g: "" if g is None or pd.isna(g) else ("reached" if g == 0 else str(int(g))))
    # the method column only when patients differ in it, or all share one other than the usual
    shown = set(overview["method"]) - {method_in_words(PRIMARY_METHOD)} if "method" in overview else set()
    method = {"measured": overview["method"]} if shown else {}
    return pd.DataFrame({
        "patient": overview["patient_id"], "hip": overview["side"], **method,
        "latest IR (deg)": overview["latest_deg"].map(whole),
        "change (deg)": overview["change_deg"].map(signed),
        "vs MDC": overview["direction"],
        "last weeks": overview["recent_trend"].map(lambda t: t if isinstance(t, str) else "not judged"),
        "degrees still to gain": gain,
        "breakouts done": overview["breakout_adherence"].map(percent),
        "needs attention": overview["attention"],
    })


from .study import CohortComparison, cohort_comparison  # noqa: E402  (kept here: the names are public)
