"""Printable home-program handout (self-contained HTML) and iCalendar export of a program.

The handout lists the exercises with steps in plain words and the doses this program prescribes,
shows which days carry the breakouts, and ends with a tick-sheet of every planned session. It uses
no external resources, so it opens and prints on an offline machine. All text is HTML-escaped.

Examples
--------
>>> from datetime import date
>>> from hipanalytics.program import Program
>>> prog = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="three-per-week",
...                start_date=date(2026, 1, 5), weeks=2)
>>> "<!DOCTYPE html>" in handout_html(prog)
True
>>> calendar_ics(prog).count(b"BEGIN:VEVENT")
28
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pandas as pd
from icalendar import Calendar, Event

from . import __version__
from .pdf import html_to_pdf
from .program import Program, plan, prescription
from .protocol import WEEKDAYS, Dose, Range

__all__ = ["handout_html", "handout_pdf", "write_handout", "calendar_ics", "write_calendar", "patient_dose",
           "recovery_day"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("hipanalytics", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                 "Saturday", "Sunday")))


def _times(r: Range) -> str:
    return "once" if r.is_fixed and r.low == 1 else f"{r} times"


def patient_dose(dose: Dose | None) -> list[str]:
    """A dose as short sentences a patient can follow.

    Parameters
    ----------
    dose : Dose or None
        None (a movement sequence) gives an empty list.

    Returns
    -------
    list of str
        First line: how many; then one line per held position.

    Examples
    --------
    >>> from hipanalytics.protocol import load_protocol
    >>> patient_dose(load_protocol("hip-ir-breakouts").exercise("quadruped-band-ir").dose)
    ['10 repetitions.', 'Turn the foot inward against the band, rotating from the hip: hold 1-2 seconds.', 'Let the band help the foot travel outward, then reach a little further: hold 2-3 seconds.']
    """
    if dose is None:
        return []

    def line(phase) -> str:
        return f"{phase.action[0].upper()}{phase.action[1:]}: hold {phase.hold_s} seconds."

    lines = []
    if dose.reps is not None:
        sets = "" if dose.sets.high == 1 else f" x {dose.sets} sets"
        lines.append(f"{dose.reps} repetitions{sets}.")
    elif dose.lead_in:
        lines += [f"First: {line(p)[0].lower()}{line(p)[1:]}" for p in dose.lead_in]
        lines.append(f"Then, {_times(dose.sets)}:")
    else:
        lines.append(f"{_times(dose.sets).capitalize()}.")
    lines += [line(p) for p in dose.phases]
    return lines


def handout_html(
    program: Program,
    *,
    patient_name: str | None = None,
    clinician: str | None = None,
    notes: str | None = None,
    generated: datetime | None = None,
    draft: bool = False,
) -> str:
    """A printable, self-contained HTML home program for the patient.

    Parameters
    ----------
    program : Program
    patient_name : str, optional
        Shown instead of the patient id (sensitive: only for the patient's own copy).
    clinician : str, optional
        Who prescribed it.
    notes : str, optional
        Free text from the clinician; escaped, line breaks kept.
    generated : datetime, optional
        Stamp shown in the footer; defaults to now.
    draft : bool
        The program is not (or not yet) saved in the store: the handout says "draft, not
        recorded" at the top and in the footer.

    Returns
    -------
    str
        A complete HTML document with inline CSS and no external references.
    """
    protocol = program.protocol
    schedule = program.resolved_schedule
    sessions = plan(program)
    rx = prescription(program)
    exercise_ids = list(dict.fromkeys(rx["exercise_id"]))
    exercises = []
    for number, exercise_id in enumerate(exercise_ids, start=1):
        exercise = protocol.exercise(exercise_id)
        dose = program.dose(exercise_id)
        exercises.append({
            "number": number,
            "exercise": exercise,
            "dose_lines": patient_dose(dose),
            "changed": dose != exercise.dose,
        })
    numbers = {e["exercise"].id: e["number"] for e in exercises}

    def session_outline(session_id: str) -> list[dict]:
        rows = rx[rx["session"] == session_id]
        outline = []
        for _, block in rows.groupby("block", sort=True):
            outline.append({
                "rounds": int(block["rounds"].iloc[0]),
                "in_circuit": bool(block["in_circuit"].iloc[0]),
                "exercises": [
                    {"number": numbers[r.exercise_id], "name": r.exercise_name}
                    for r in block.itertuples()
                ],
            })
        return outline

    session_ids = list(dict.fromkeys(rx["session"]))
    templates = [
        {
            "template": protocol.session(s),
            "breakouts": protocol.has_breakouts(s),
            "outline": session_outline(s),
        }
        for s in session_ids
    ]
    week_pattern = _week_pattern(schedule)
    return _ENV.get_template("handout.html.j2").render(
        program=program,
        protocol=protocol,
        schedule=schedule,
        patient_label=patient_name or program.patient_id,
        clinician=clinician,
        notes=notes,
        exercises=exercises,
        templates=templates,
        week_pattern=week_pattern,
        weekdays=[_DAY_NAMES[d] for d in WEEKDAYS],
        tick_weeks=_tick_weeks(sessions),
        breakouts_per_week=len(schedule.breakout_days),
        sequence_per_day={1: "once", 2: "twice"}.get(len(schedule.slots), f"{len(schedule.slots)} times"),
        recovery_day=recovery_day(program),
        draft=draft,
        generated=(generated or datetime.now()).strftime("%Y-%m-%d %H:%M"),
        version=__version__,
    )


def recovery_day(program: Program):
    """The day a breakout would fall on but that follows the previous program's last breakout, so it
    is a recovery day (see :class:`~hipanalytics.program.Program`), or None."""
    if program.previous_breakout is None or not program.resolved_schedule.recovery_day_between:
        return None
    day = program.previous_breakout + pd.Timedelta(days=1)
    if not program.start_date <= day <= program.end_date:
        return None
    weekday = WEEKDAYS[day.weekday()]
    return day if weekday in program.resolved_schedule.breakout_days else None


def _week_pattern(schedule) -> list[dict]:
    rows = []
    for slot in schedule.slots:
        cells = []
        for day in WEEKDAYS:
            breakout = day in schedule.breakout_days and slot.id == schedule.breakout_slot
            cells.append({"breakouts": breakout})
        rows.append({"slot": slot, "cells": cells})
    return rows


def _tick_weeks(sessions: pd.DataFrame) -> list[dict]:
    """Calendar weeks (Monday first) covering the program, each day with its planned sessions."""
    by_day = {
        day: list(group.itertuples())
        for day, group in sessions.groupby(sessions["date"].dt.date, sort=True)
    }
    first, last = min(by_day), max(by_day)
    monday = first - pd.Timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        days = []
        for offset in range(7):
            day = monday + pd.Timedelta(days=offset)
            day = day.date() if hasattr(day, "date") else day
            days.append({"date": day, "sessions": by_day.get(day, [])})
        weeks.append({"days": days})
        monday = monday + pd.Timedelta(days=7)
    return weeks


def handout_pdf(program: Program, **kwargs) -> bytes:
    """The handout of :func:`handout_html` as an A4 PDF (WeasyPrint; nothing is fetched).

    Takes the same keyword arguments as :func:`handout_html`.

    Examples
    --------
    >>> from datetime import date
    >>> from hipanalytics.program import Program
    >>> prog = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="daily",
    ...                start_date=date(2026, 1, 5), weeks=1)
    >>> handout_pdf(prog)[:5]
    b'%PDF-'
    """
    return html_to_pdf(handout_html(program, **kwargs))[0]


def write_handout(program: Program, path: str | Path, **kwargs) -> Path:
    """Write the handout to ``path``: PDF when it ends in ``.pdf``, else HTML (UTF-8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        path.write_bytes(handout_pdf(program, **kwargs))
    else:
        path.write_text(handout_html(program, **kwargs), encoding="utf-8")
    return path


def calendar_ics(program: Program, *, stamp: datetime | None = None, draft: bool = False) -> bytes:
    """An iCalendar file with one event per planned session.

    Events start at the slot's suggested time in the device's local time zone ("floating" time,
    RFC 5545 section 3.3.5) and carry no end: the length of the Hip Movement Sequence is set by the
    clinic, not the protocol. Event UIDs derive from the program, date and slot, so importing an
    updated calendar replaces events instead of duplicating them.

    Parameters
    ----------
    program : Program
    stamp : datetime, optional
        DTSTAMP of every event (UTC); defaults to now.
    draft : bool
        The program is not saved: the calendar's name and every event say "draft, not recorded".

    Returns
    -------
    bytes
        The ``.ics`` content.
    """
    stamp = (stamp or datetime.now(timezone.utc)).astimezone(timezone.utc)
    cal = Calendar()
    cal.add("prodid", f"-//hipanalytics//{__version__}//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    draft_note = " (draft, not recorded)" if draft else ""
    cal.add("x-wr-calname", f"{program.protocol.title} ({program.resolved_schedule.title}){draft_note}")
    for row in plan(program).itertuples():
        start = datetime.combine(row.date.date(), datetime.strptime(row.slot_time, "%H:%M").time())
        event = Event()
        event.add("uid", f"{program.program_id}-{row.date:%Y%m%d}-{row.slot}@hipanalytics")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("summary", row.session_title + draft_note)
        event.add("description", row.doses)
        event.add("categories", ["Breakouts" if row.breakouts else "Movement sequence"])
        cal.add_component(event)
    return cal.to_ical()


def write_calendar(program: Program, path: str | Path, **kwargs) -> Path:
    """Write :func:`calendar_ics` to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(calendar_ics(program, **kwargs))
    return path
