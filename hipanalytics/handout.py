"""Printable home-program handout (self-contained HTML) and iCalendar export of a program.

The handout lists the exercises with steps in plain words and the doses this program prescribes,
says which hip to work (``side=``: the patient record's ``involved_side``; the program itself does not
hold it), shows which days carry the breakouts, and ends with a tick-sheet of every planned session.
It uses no external resources, so it opens and prints on an offline machine. All text is HTML-escaped.

Examples
--------
>>> from datetime import date
>>> from hipanalytics.program import Program
>>> prog = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="three-per-week",
...                start_date=date(2026, 1, 5), weeks=2)
>>> "<!DOCTYPE html>" in handout_html(prog)
True
>>> "Your home exercise program: right hip" in handout_html(prog, side="right")
True
>>> calendar_ics(prog).count(b"BEGIN:VEVENT")
28
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
import pandas as pd
from icalendar import Alarm, Calendar, Event
from markupsafe import Markup

from . import __version__
from .drawings import exercise_drawing
from .errors import ProgramError
from .pdf import html_to_pdf
from .program import SIDES, Program, check_side, plan, prescription, session_times
from .protocol import WEEKDAYS, Dose, Range

__all__ = ["SIDES", "handout_html", "handout_pdf", "write_handout", "calendar_ics", "write_calendar", "patient_dose",
           "recovery_day", "side_words", "session_lengths", "session_minutes", "SEQUENCE_MINUTES", "REMINDER_MINUTES",
           "CHANGE_MINUTES"]

SEQUENCE_MINUTES = 10
"""Default length of the Hip Movement Sequence in calendar events, in minutes. Its contents (and so
its length) are set by the clinic, not the protocol: pass ``sequence_minutes=`` (``hipanalytics
program --sequence-minutes``) for your clinic's."""

REMINDER_MINUTES = 15
"""Default reminder of a calendar event, in minutes before it starts (``None`` for no reminder)."""

CHANGE_MINUTES = 0.5
"""Calendar allowance for getting into position, per exercise per round (and per hip): setting up and
moving between exercises come on top of the holds."""

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


def side_words(side: str | None, rounds: int | None = None) -> dict[str, str | None]:
    """What a handout and calendar say about which hip to work.

    Parameters
    ----------
    side : {"left", "right", "both"} or None
        None when the side is not known: the printed handout then has tick boxes for the
        clinician, and the words refer to "the hip your clinician ticked".
    rounds : int, optional
        Rounds of the breakout circuit; with both hips every round is done for one hip, then
        every round for the other (fewer changes of set-up than alternating).

    Returns
    -------
    dict
        ``side``; ``heading`` ("right hip", "both hips", or None for the tick boxes);
        ``which`` (the line on each exercise card); ``order`` (the line in the breakout session);
        ``calendar`` (the line in each breakout event).

    Raises
    ------
    ProgramError
        When ``side`` is not one of :data:`SIDES` or None.

    Examples
    --------
    >>> side_words("right")["which"]
    'your right hip. Your right leg is the working leg in the steps below.'
    >>> side_words("both", rounds=3)["order"]
    'Both hips, one at a time: all 3 rounds for one hip, then all 3 rounds for the other hip, then the Hip Movement Sequence once.'
    """
    check_side(side)
    each = f"all {rounds} rounds" if rounds else "all the breakout exercises"
    in_turn = f"{each} for one hip, then {each} for the other hip"
    if side in ("left", "right"):
        return {"side": side, "heading": f"{side} hip",
                "which": f"your {side} hip. Your {side} leg is the working leg in the steps below.",
                "order": f"Work your {side} hip in every round.",
                "calendar": f"{side.capitalize()} hip."}
    if side == "both":
        return {"side": side, "heading": "both hips",
                "which": f"each hip in turn: {in_turn}. The working leg in the steps below is the leg of the hip "
                         "you are working on.",
                "order": f"Both hips, one at a time: {in_turn}, then the Hip Movement Sequence once.",
                "calendar": f"Both hips: {in_turn}."}
    return {"side": None, "heading": None,
            "which": "the hip your clinician ticked at the top of this handout: that side's leg is the working "
                     f"leg in the steps below. Both ticked: {in_turn}.",
            "order": f"Work the hip your clinician ticked at the top of this handout. Both ticked: {in_turn}, "
                     "then the Hip Movement Sequence once.",
            "calendar": "The hip your clinician ticked on your handout."}


def session_lengths(program: Program, side: str | None = None) -> dict[str, str]:
    """How long each session template takes, in a sentence for the patient.

    From :func:`~hipanalytics.program.session_times`: the hold time is what the doses add up to;
    setting up and moving between exercises come on top, and so does the Hip Movement Sequence,
    whose length the clinic sets. Both hips double the holds; an unknown side gives both.

    Returns
    -------
    dict
        Session template id -> sentence.

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=1)
    >>> session_lengths(p, "right")["breakouts"]
    'About 6-7 minutes of holds, plus setting up and moving between exercises, plus the Hip Movement Sequence (your clinic sets its length).'
    >>> session_lengths(p, "both")["breakouts"][:53]
    'About 12-14 minutes of holds (6-7 for each hip), plus'
    >>> session_lengths(p)["sequence"]
    'As long as your Hip Movement Sequence takes (your clinic sets its length).'
    """
    check_side(side)
    one, two = (session_times(program, s).set_index("session") for s in ("right", "both"))
    lengths = {}
    for session_id, t in one.iterrows():
        untimed = f", plus the {t.untimed} (your clinic sets its length)" if t.untimed else ""
        if t.minutes_high == 0:
            lengths[session_id] = f"As long as your {t.untimed} takes (your clinic sets its length)."
            continue
        holds = _minutes(t.minutes_low, t.minutes_high)
        both = _minutes(two.loc[session_id, "minutes_low"], two.loc[session_id, "minutes_high"])
        amount = {"both": f"About {both} minutes of holds ({holds} for each hip)",
                  None: f"About {holds} minutes of holds for one hip ({both} if both hips are ticked)"}.get(
            side, f"About {holds} minutes of holds")
        lengths[session_id] = f"{amount}, plus setting up and moving between exercises{untimed}."
    return lengths


def session_minutes(program: Program, side: str | None = None, *,
                    sequence_minutes: float = SEQUENCE_MINUTES) -> dict[str, int]:
    """Planned length of each session template for calendars, in whole minutes.

    The longest hold time of :func:`~hipanalytics.program.session_times` (both hips when ``side``
    is "both" or not known, so an event is never too short), plus :data:`CHANGE_MINUTES` for each
    exercise of each round, plus ``sequence_minutes`` for each untimed exercise (the Hip Movement
    Sequence), rounded up to 5 minutes.

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=1)
    >>> session_minutes(p, "right")  # 7 min of holds + 6 x 0.5 min + a 10-minute sequence
    {'breakouts': 20, 'sequence': 10}
    >>> session_minutes(p, "both", sequence_minutes=15)["breakouts"]  # 14 + 6 + 15
    35
    """
    check_side(side)
    if isinstance(sequence_minutes, bool) or not sequence_minutes >= 0:
        raise ProgramError(f"sequence_minutes must be a number of minutes >= 0, got {sequence_minutes!r}")
    hips = "both" if side in ("both", None) else side
    times = session_times(program, hips).set_index("session")
    rx = prescription(program)
    minutes = {}
    for session_id, t in times.iterrows():
        timed = rx[(rx["session"] == session_id) & (rx["kind"] != "movement_sequence")]
        changes = CHANGE_MINUTES * int(timed["rounds"].sum()) * (2 if hips == "both" else 1)
        untimed = len(t.untimed.split("; ")) if t.untimed else 0
        total = t.minutes_high + changes + sequence_minutes * untimed
        minutes[session_id] = max(5, 5 * math.ceil(total / 5 - 1e-9))
    return minutes


def _minutes(low: float, high: float) -> str:
    return f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}"


def _drawing(exercise_id: str, side: str | None) -> dict | None:
    drawing = exercise_drawing(exercise_id, side)
    if drawing is None:
        return None
    return {"svg": Markup(drawing.svg), "caption": drawing.caption}  # our own markup; its words are escaped


def _circuit_rounds(rx: pd.DataFrame) -> int | None:
    rounds = rx.loc[rx["in_circuit"], "rounds"]
    return int(rounds.max()) if len(rounds) else None


def handout_html(
    program: Program,
    *,
    side: str | None = None,
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
    side : {"left", "right", "both"} or None
        The hip(s) to work (the patient record's ``involved_side``). It is on the title, on every
        breakout exercise, on the tick sheet; None prints tick boxes "Hip: left / right / both"
        for the clinician to mark by hand (see :func:`side_words`).
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
    lengths = session_lengths(program, side)
    hip = side_words(side, _circuit_rounds(rx))
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
            "one_sided": exercise.kind != "movement_sequence",
            "drawing": _drawing(exercise_id, side),
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
            "length": lengths[s],
        }
        for s in session_ids
    ]
    week_pattern = _week_pattern(schedule)
    return _ENV.get_template("handout.html.j2").render(
        program=program,
        protocol=protocol,
        schedule=schedule,
        hip=hip,
        patient_label=patient_name or program.patient_id,
        clinician=clinician,
        notes=notes,
        exercises=exercises,
        templates=templates,
        week_pattern=week_pattern,
        weekdays=[_DAY_NAMES[d] for d in WEEKDAYS],
        tick_weeks=_tick_weeks(sessions),
        breakout_log=_breakout_log(sessions),
        circuit_rounds=_circuit_rounds(rx),
        breakouts_per_week=len(schedule.breakout_days),
        back_to_back=", ".join(f"{_DAY_NAMES[a]} and {_DAY_NAMES[b]}" for a, b in schedule.consecutive_breakout_days)
        if schedule.recovery_day_between else "",
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


def _breakout_log(sessions: pd.DataFrame) -> list[dict]:
    """One row per planned breakout session, for the patient to write rounds and pain scores; the
    first of each calendar week (Monday first) is marked, as the tick sheet's weeks."""
    days = sessions.loc[sessions["breakouts"], "date"]
    weeks = days.dt.to_period("W-SUN")
    return [{"date": day.date(), "new_week": i > 0 and week != previous}
            for i, (day, week, previous) in enumerate(zip(days, weeks, weeks.shift()))]


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


def write_handout(program: Program, path: str | Path, *, side: str | None = None, **kwargs) -> Path:
    """Write the handout to ``path``: PDF when it ends in ``.pdf``, else HTML (UTF-8).

    Parameters
    ----------
    program : Program
    path : str or Path
        Its folder is made when missing.
    side : {"left", "right", "both"} or None
        The hip(s) to work, see :func:`handout_html`.
    **kwargs
        The other keyword arguments of :func:`handout_html`.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile
    >>> from datetime import date
    >>> from hipanalytics.program import Program
    >>> prog = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="daily",
    ...                start_date=date(2026, 1, 5), weeks=1)
    >>> folder = tempfile.mkdtemp()
    >>> write_handout(prog, f"{folder}/handout.html", side="both").read_text().count("both hips") > 1
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        path.write_bytes(handout_pdf(program, side=side, **kwargs))
    else:
        path.write_text(handout_html(program, side=side, **kwargs), encoding="utf-8")
    return path


def calendar_ics(program: Program, *, side: str | None = None, stamp: datetime | None = None,
                 draft: bool = False, sequence_minutes: float = SEQUENCE_MINUTES,
                 reminder_minutes: int | None = REMINDER_MINUTES) -> bytes:
    """An iCalendar file with one event per planned session, each with its end and a reminder.

    Events start at the slot's suggested time in the device's local time zone ("floating" time,
    RFC 5545 section 3.3.5) and end after the session's planned length (:func:`session_minutes`:
    holds, getting into position, and the Hip Movement Sequence at ``sequence_minutes``, since its
    length is set by the clinic), which the description also gives. A display reminder (VALARM)
    fires ``reminder_minutes`` before the start. Event UIDs derive from the program, date and slot,
    so importing an updated calendar replaces events instead of duplicating them.

    Parameters
    ----------
    program : Program
    side : {"left", "right", "both"} or None
        The hip(s) to work: breakout events name it in their title and description (None: "the
        hip your clinician ticked on your handout").
    stamp : datetime, optional
        DTSTAMP of every event (UTC); defaults to now.
    draft : bool
        The program is not saved: the calendar's name and every event say "draft, not recorded".
    sequence_minutes : float
        Minutes the clinic's Hip Movement Sequence takes (default :data:`SEQUENCE_MINUTES`).
    reminder_minutes : int or None
        Minutes before each session that the reminder fires (default :data:`REMINDER_MINUTES`);
        0 at the start, None for no reminder.

    Returns
    -------
    bytes
        The ``.ics`` content.

    Raises
    ------
    ProgramError
        For a side that is not left, right, both or None, or a negative or non-whole number of
        minutes.

    Examples
    --------
    >>> from datetime import date
    >>> from icalendar import Calendar
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=1)
    >>> event = Calendar.from_ical(calendar_ics(p, side="left")).walk("VEVENT")[0]
    >>> event.decoded("dtend") - event.decoded("dtstart"), event.walk("VALARM")[0].decoded("trigger")
    (datetime.timedelta(seconds=1200), datetime.timedelta(days=-1, seconds=85500))
    >>> calendar_ics(p, reminder_minutes=None).count(b"VALARM")
    0
    """
    if reminder_minutes is not None and (isinstance(reminder_minutes, bool) or not isinstance(reminder_minutes, int)
                                         or reminder_minutes < 0):
        raise ProgramError(f"reminder_minutes must be a whole number of minutes >= 0 (or None), "
                           f"got {reminder_minutes!r}")
    lengths = session_minutes(program, side, sequence_minutes=sequence_minutes)
    sequence_note = f"the Hip Movement Sequence counted as {sequence_minutes:g} min"
    stamp = (stamp or datetime.now(timezone.utc)).astimezone(timezone.utc)
    cal = Calendar()
    cal.add("prodid", f"-//hipanalytics//{__version__}//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    draft_note = " (draft, not recorded)" if draft else ""
    hip = side_words(side, _circuit_rounds(prescription(program)))
    cal.add("x-wr-calname", f"{program.protocol.title} ({program.resolved_schedule.title}){draft_note}")
    for row in plan(program).itertuples():
        start = datetime.combine(row.date.date(), datetime.strptime(row.slot_time, "%H:%M").time())
        event = Event()
        event.add("uid", f"{program.program_id}-{row.date:%Y%m%d}-{row.slot}@hipanalytics")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=lengths[row.session]))
        on_side = f": {hip['heading']}" if row.breakouts and hip["heading"] else ""
        summary = row.session_title + on_side + draft_note
        event.add("summary", summary)
        length = f"About {lengths[row.session]} min ({sequence_note})."
        event.add("description", f"{hip['calendar']} {row.doses}. {length}" if row.breakouts else f"{row.doses}. {length}")
        event.add("categories", ["Breakouts" if row.breakouts else "Movement sequence"])
        if reminder_minutes is not None:
            event.add_component(Alarm.new_display(description=f"In {reminder_minutes} min: {summary}",
                                                  trigger=timedelta(minutes=-reminder_minutes)))
        cal.add_component(event)
    return cal.to_ical()


def write_calendar(program: Program, path: str | Path, **kwargs) -> Path:
    """Write :func:`calendar_ics` to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(calendar_ics(program, **kwargs))
    return path
