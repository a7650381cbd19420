"""Program builder: a clinician prescribes a protocol to a patient without writing code.

The logic is in plain functions that tests call directly: :func:`breakout_items` lists what the
builder shows, :func:`build_program` turns the form's values into a validated
:class:`~hipanalytics.program.Program`, and :func:`preview_html` draws the live preview.
:class:`ProgramBuilder` only wires ipywidgets controls to them and to the store.

Examples
--------
>>> from datetime import date
>>> from hipanalytics.protocol import load_protocol
>>> protocol = load_protocol("hip-ir-breakouts")
>>> program = build_program(protocol, {"patient_id": "P001", "schedule": "three-per-week",
...                                    "start_date": date(2026, 1, 5), "weeks": 6,
...                                    "alternatives": {"ninety-ninety": "ninety-ninety-ir-pails"},
...                                    "doses": {"ninety-ninety-ir-pails": {"sets": "4"}}})
>>> program.program_id, str(program.dose("ninety-ninety-ir-pails").sets)
('P001-20260105-three-per-week', '4')
"""

from __future__ import annotations

import base64
import html
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ..config import safe_filename
from ..errors import HipAnalyticsError, ProgramError, ScheduleWarning
from ..program import DoseOverride, Program, breakouts_per_week, plan
from ..protocol import WEEKDAYS, ChoiceBlock, CircuitBlock, Protocol, Range, schedule_problems

__all__ = ["BreakoutItem", "breakout_items", "dose_fields", "build_program", "program_warnings", "save_refusal",
           "previous_breakout", "patient_side", "week_table", "preview_html", "download_links", "ProgramBuilder"]

CUSTOM = "custom"
"""The ``schedule`` value that means: the weekdays in ``days``."""


@dataclass(frozen=True)
class BreakoutItem:
    """One line of the breakout circuit as the builder shows it: an exercise, or a one-of choice."""

    key: str
    """Exercise id, or the choice id for a one-of item."""
    label: str
    options: tuple[tuple[str, str], ...]
    """(exercise id, name) pairs; one pair for a plain exercise."""
    default: str
    """Exercise id used when nothing is chosen."""


def breakout_items(protocol: Protocol, schedule: str | None = None) -> list[BreakoutItem]:
    """The exercises of a schedule's breakout session that a clinician may tick, in order.

    The movement sequence is not listed: the protocol always follows the circuit with it.

    Examples
    --------
    >>> from hipanalytics.protocol import load_protocol
    >>> [(i.key, i.label) for i in breakout_items(load_protocol("hip-ir-breakouts"))]
    [('quadruped-band-ir', 'Band-assisted quadruped hip internal rotation'), ('ninety-ninety', '90/90 hip internal rotation: one of')]
    """
    sched = protocol.resolve_schedule(schedule or protocol.schedules[0].id)
    items = []
    for block in protocol.session(sched.breakout_session).blocks:
        for item in block.circuit.items if isinstance(block, CircuitBlock) else (block,):
            if isinstance(item, ChoiceBlock):
                options = tuple((e, protocol.exercise(e).name) for e in item.one_of)
                shared = os.path.commonprefix([name for _, name in options]).strip(" -(:")
                label = f"{shared}: one of" if shared else "One of"
                items.append(BreakoutItem(item.id, label, options, item.chosen_by_default))
            elif protocol.exercise(item.exercise).kind != "movement_sequence":
                name = protocol.exercise(item.exercise).name
                items.append(BreakoutItem(item.exercise, name, ((item.exercise, name),), item.exercise))
    return items


def dose_fields(protocol: Protocol, exercise_id: str) -> list[tuple[str, str, str]]:
    """The dose fields a clinician may change for an exercise: (field, label, protocol value).

    ``field`` is ``sets``, ``reps`` or ``hold_s.<phase id>``.

    Examples
    --------
    >>> from hipanalytics.protocol import load_protocol
    >>> dose_fields(load_protocol("hip-ir-breakouts"), "ninety-ninety-ir-stretch")
    [('sets', 'sets', '3'), ('hold_s.stretch', 'stretch hold (s)', '30')]
    """
    dose = protocol.exercise(exercise_id).dose
    if dose is None:
        return []
    fields = [("sets", "sets", str(dose.sets))]
    if dose.reps is not None:
        fields.append(("reps", "reps", str(dose.reps)))
    for phase in (*dose.lead_in, *dose.phases):
        fields.append((f"hold_s.{phase.id}", f"{phase.id.replace('-', ' ')} hold (s)", str(phase.hold_s)))
    return fields


def build_program(protocol: Protocol, choices: Mapping[str, Any]) -> Program:
    """A validated program from the builder's values.

    Parameters
    ----------
    protocol : Protocol
    choices : mapping
        - ``patient_id``, ``start_date`` (date), ``weeks`` (int): required;
        - ``schedule``: a schedule id of the protocol, or ``"custom"`` with ``days`` (weekday
          ids such as ``["mon", "thu"]``);
        - ``breakout_slot``: slot id, optional (default: the schedule's);
        - ``exercises``: item key (see :func:`breakout_items`) -> bool, ticked or not
          (default: all ticked);
        - ``alternatives``: one-of choice id -> exercise id;
        - ``doses``: exercise id -> {``sets``, ``reps``, ``hold_s`` -> {phase: value}} as
          numbers or text such as ``"3-4"``; values equal to the protocol's are not overrides;
        - ``reason``, ``program_id``: optional text;
        - ``previous_breakout``: the last breakout day of the program this one replaces (the
          builder finds it in the store): a recovery schedule then keeps a recovery day after it.

    Returns
    -------
    Program

    Raises
    ------
    ProgramError
        Naming the field and what is expected (e.g. an empty patient, a dose of 0, no weekday).
    """
    patient = str(choices.get("patient_id") or "").strip()
    if not patient:
        raise ProgramError("choose a patient")
    start = choices.get("start_date")
    if not isinstance(start, date):
        raise ProgramError("choose a start date")
    schedule = choices.get("schedule") or protocol.schedules[0].id
    if schedule == CUSTOM:
        days = [d for d in WEEKDAYS if d in set(choices.get("days") or ())]
        if not days:
            raise ProgramError("a custom schedule needs at least one breakout weekday")
        schedule = "custom:" + ",".join(days)
    ticked = dict(choices.get("exercises") or {})
    alternatives = dict(choices.get("alternatives") or {})
    items = breakout_items(protocol, schedule)
    chosen = {i.key: alternatives.get(i.key, i.default) for i in items}
    omit = tuple(chosen[i.key] for i in items if not ticked.get(i.key, True))
    overrides = {}
    for exercise_id, values in (choices.get("doses") or {}).items():
        if exercise_id in chosen.values() and exercise_id not in omit:  # others are not prescribed
            override = _override(protocol, exercise_id, values)
            if override:
                overrides[exercise_id] = override
    slot = choices.get("breakout_slot") or None
    if slot == protocol.resolve_schedule(schedule).breakout_slot:
        slot = None  # the schedule's own: nothing to override
    with warnings.catch_warnings():  # the preview lists schedule problems itself (program_warnings)
        warnings.simplefilter("ignore", ScheduleWarning)
        return Program(
            patient_id=patient, protocol=protocol, schedule=schedule, start_date=start,
            weeks=choices.get("weeks"), breakout_slot=slot,
            choices={i.key: chosen[i.key] for i in items if len(i.options) > 1 and i.key in alternatives},
            dose_overrides=overrides, omit=omit, reason=str(choices.get("reason") or "").strip(),
            previous_breakout=choices.get("previous_breakout"),
            **({"program_id": choices["program_id"]} if choices.get("program_id") else {}),
        )


def _override(protocol: Protocol, exercise_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``values`` that differ from the protocol's dose, parsed as ranges."""
    name = protocol.exercise(exercise_id).name
    base = {f: v for f, _, v in dose_fields(protocol, exercise_id)}
    flat = {k: v for k, v in values.items() if k != "hold_s"}
    flat |= {f"hold_s.{phase}": v for phase, v in (values.get("hold_s") or {}).items()}
    override: dict[str, Any] = {}
    for field, value in flat.items():
        if field not in base:
            raise ProgramError(f"{name} has no dose field {field!r} (fields: {', '.join(base)})")
        text = str(value).strip()
        if not text:
            raise ProgramError(f"{name}: {field.replace('hold_s.', '')} is empty; type a number such as {base[field]}")
        try:
            parsed = Range.parse(float(text) if text.replace(".", "", 1).isdigit() else text)
        except ValueError as exc:
            raise ProgramError(f"{name}: {field.replace('hold_s.', '')}: {exc}") from None
        if str(parsed) == base[field]:
            continue
        one = {"hold_s": {field.removeprefix("hold_s."): parsed}} if field.startswith("hold_s.") else {field: parsed}
        try:
            DoseOverride(**one)  # the same bounds as a protocol file
        except ValidationError as exc:
            message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            raise ProgramError(f"{name}: {field.replace('hold_s.', '')}: {message}") from None
        if field.startswith("hold_s."):
            override.setdefault("hold_s", {})[field.removeprefix("hold_s.")] = parsed
        else:
            override[field] = parsed
    return override


def program_warnings(program: Program) -> list[str]:
    """Programming-rule problems of the program's schedule, e.g. consecutive breakout days.

    Examples
    --------
    >>> from datetime import date
    >>> from hipanalytics.protocol import load_protocol
    >>> p = build_program(load_protocol("hip-ir-breakouts"), {"patient_id": "P1", "schedule": "custom",
    ...     "days": ["mon", "tue"], "start_date": date(2026, 1, 5), "weeks": 2})
    >>> program_warnings(p)[0][:36]
    'breakout days mon and tue are consec'
    """
    from ..handout import recovery_day

    messages = [message for _, message in schedule_problems(program.resolved_schedule)]
    day = recovery_day(program)
    if day is not None:
        messages.append(f"{day:%a %d %b} is a recovery day: the program in force has its last breakout on "
                        f"{program.previous_breakout:%a %d %b}, so the first breakouts of this program wait a day")
    return messages


def save_refusal(program: Program, confirmed: bool) -> str | None:
    """Why the builder must not save the program yet, or None.

    Breakouts on consecutive days in a schedule that asks for a recovery day between them (a
    custom weekday set based on 3x/week) are saved only when the clinician confirms them and gives
    a reason, which is kept with the program.

    Examples
    --------
    >>> from datetime import date
    >>> from hipanalytics.protocol import load_protocol
    >>> form = {"patient_id": "P1", "schedule": "custom", "days": ["mon", "tue"], "start_date": date(2026, 1, 5),
    ...         "weeks": 2}
    >>> p = build_program(load_protocol("hip-ir-breakouts"), form)
    >>> save_refusal(p, confirmed=False)[:45]
    'Not saved: mon and tue are consecutive breako'
    >>> save_refusal(p.model_copy(update={"reason": "works away Wed-Sun"}), confirmed=True) is None
    True
    """
    pairs = program.resolved_schedule.consecutive_breakout_days
    if not pairs or not schedule_problems(program.resolved_schedule):
        return None
    days = "; ".join(f"{a} and {b}" for a, b in pairs)
    if not confirmed:
        return (f"Not saved: {days} are consecutive breakout days, but this schedule asks for a recovery day between "
                "them. Tick 'Breakouts on consecutive days' and give a reason to save it anyway, or choose other days.")
    if not program.reason:
        return f"Not saved: give a reason for breakouts on consecutive days ({days}); it is kept with the program."
    return None


def previous_breakout(programs: pd.DataFrame, start: date) -> date | None:
    """The last breakout day before ``start`` of the patient's program in force the day before it
    (the one a new program from ``start`` replaces), from the stored ``programs``; None if none.

    Examples
    --------
    >>> programs = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"], "protocol_id": ["hip-ir-breakouts"],
    ...     "protocol_version": ["1.0.0"], "schedule": ["daily"], "start_date": [pd.Timestamp("2026-01-05")],
    ...     "end_date": [pd.Timestamp("2026-02-01")]})
    >>> previous_breakout(programs, date(2026, 1, 19))
    datetime.date(2026, 1, 18)
    >>> previous_breakout(programs, date(2026, 3, 2)) is None
    True
    """
    from ..program import plan_table

    day_before = pd.Timestamp(start) - pd.Timedelta(days=1)
    running = programs[(programs["start_date"] <= day_before) & (programs["end_date"] >= day_before)]
    if running.empty:
        return None
    ended = running.assign(end_date=day_before)
    planned = plan_table(ended)
    done = planned.loc[planned["breakouts"], "date"]
    return done.max().date() if len(done) else None


def patient_side(patients: pd.DataFrame, patient_id: str | None) -> str | None:
    """The patient's involved hip (``left``, ``right`` or ``both``) from the stored patients, or None
    when the patient or the side is not on record (the handout then has tick boxes for it).

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["P1", "P2"], "involved_side": ["both", None]})
    >>> patient_side(patients, "P1"), patient_side(patients, "P2"), patient_side(patients, "P9")
    ('both', None, None)
    """
    from ..handout import SIDES

    if "involved_side" not in patients:
        return None
    found = patients.loc[patients["patient_id"] == patient_id, "involved_side"]
    side = found.iloc[0] if len(found) else None
    return side if side in SIDES else None


def week_table(program: Program) -> pd.DataFrame:
    """The program's week at a glance: one row per slot, one column per weekday, session titles.

    Examples
    --------
    >>> from datetime import date
    >>> from hipanalytics.protocol import load_protocol
    >>> p = build_program(load_protocol("hip-ir-breakouts"), {"patient_id": "P1", "schedule": "three-per-week",
    ...     "start_date": date(2026, 1, 7), "weeks": 1})
    >>> week_table(p).loc["morning 08:00", ["mon", "tue"]].tolist()
    ['IR breakouts + Hip Movement Sequence', 'Hip Movement Sequence']
    """
    return _week_grid(program, plan(program))


def _week_grid(program: Program, sessions: pd.DataFrame) -> pd.DataFrame:
    first_week = sessions.head(7 * len(program.resolved_schedule.slots))
    first_week = first_week.assign(row=first_week["slot"] + " " + first_week["slot_time"])
    table = first_week.pivot(index="row", columns="weekday", values="session_title")
    order = [f"{s.id} {s.time:%H:%M}" for s in program.resolved_schedule.slots]
    return table.reindex(index=order, columns=[d for d in WEEKDAYS if d in table.columns])


def preview_html(program: Program, side: str | None = None) -> str:
    """The live preview: week grid, breakouts per week, estimated session times (for ``side``, the
    hip(s) on the patient's record, as the handout gives them), warnings (escaped)."""
    from ..handout import session_lengths

    schedule = program.resolved_schedule
    breakout_title = program.protocol.session(schedule.breakout_session).title
    sessions = plan(program)
    grid = _week_grid(program, sessions)
    head = "".join(f"<th>{d.capitalize()}</th>" for d in grid.columns)
    body = ""
    for row, values in grid.iterrows():
        cells = "".join(
            f'<td class="{"hip-breakout" if v == breakout_title else ""}">{html.escape(str(v))}</td>' for v in values)
        body += f"<tr><th>{html.escape(str(row))}</th>{cells}</tr>"
    per_week = breakouts_per_week(sessions)
    weeks = "".join(f"<th>{w.week}</th>" for w in per_week.itertuples())
    sessions = "".join(f"<td>{w.sessions}</td>" for w in per_week.itertuples())
    breakouts = "".join(f'<td class="hip-breakout">{w.breakouts}</td>' for w in per_week.itertuples())
    lengths = session_lengths(program, side)
    times = "".join(f"<li><b>{html.escape(program.protocol.session(s).title)}</b>: {html.escape(text)}</li>"
                    for s, text in lengths.items())
    problems = "".join(f'<p class="hip-warning">&#9888; {html.escape(m)}</p>' for m in program_warnings(program))
    rx_note = ""
    if program.omit:
        names = ", ".join(program.protocol.exercise(e).name for e in program.omit)
        rx_note = f"<p>Left out: {html.escape(names)}.</p>"
    return (
        f'<div class="hip-preview"><h4>{html.escape(schedule.title)}: '
        f'{program.start_date:%a %d %b %Y} to {program.end_date:%a %d %b %Y}</h4>{problems}'
        f'<table class="hip-week"><tr><th></th>{head}</tr>{body}</table>'
        f'<table class="hip-week"><tr><th>week</th>{weeks}<th>in all</th></tr>'
        f"<tr><th>sessions</th>{sessions}<td>{int(per_week['sessions'].sum())}</td></tr>"
        f"<tr><th>with breakouts</th>{breakouts}<td>{int(per_week['breakouts'].sum())}</td></tr></table>"
        f"<ul>{times}</ul>{rx_note}</div>"
    )


def download_links(program: Program, *, side: str | None = None, patient_name: str | None = None,
                   draft: bool = False) -> str:
    """Links that download the handout (HTML and PDF) and the calendar, embedded as data URIs.

    Nothing is served or fetched: the files travel inside the page, so the links work in
    JupyterLab and in Voilà alike. File names derive from the program id, sanitised. A ``draft``
    (a program not saved in the store) says "draft, not recorded" on the handout and in the
    calendar's name, and its file names end in ``-draft``. ``side`` is the hip(s) to work, as
    :func:`~hipanalytics.handout.handout_html` takes it (the builder passes the patient record's).
    """
    from ..handout import calendar_ics, handout_html
    from ..pdf import html_to_pdf

    base = safe_filename(program.program_id) + ("-draft" if draft else "")
    document = handout_html(program, side=side, patient_name=patient_name, draft=draft)
    label = " (draft, not recorded)" if draft else ""
    files = [
        (f"{base}-handout.html", "text/html", document.encode("utf-8"), f"Handout (HTML){label}"),
        (f"{base}-handout.pdf", "application/pdf", html_to_pdf(document)[0], f"Handout (PDF){label}"),
        (f"{base}.ics", "text/calendar", calendar_ics(program, side=side, draft=draft), f"Calendar (.ics){label}"),
    ]
    links = "".join(
        f'<a class="hip-download" download="{html.escape(name)}" '
        f'href="data:{kind};base64,{base64.b64encode(content).decode()}">&#8681; {label}</a>'
        for name, kind, content, label in files)
    return f'<div class="hip-downloads">{links}</div>'


# ----------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------

from . import _ui  # noqa: E402 - widgets only after the plain functions they wire


class ProgramBuilder(_ui.App):
    """The program builder app: patient, protocol, exercises and doses, schedule, dates -> store.

    Parameters
    ----------
    store : Store
        Patients are chosen from it and programs saved to it.
    today : date, optional
        Default start date and reference for "date in the future" (default: today).
    who : str, optional
        Recorded with saved programs (default: the login name); the form lets it be changed.

    Attributes
    ----------
    value : Program or None
        The program the form describes now, or None while the form has a problem.
    """

    def __init__(self, store, *, today: date | None = None, who: str | None = None):
        import ipywidgets as w

        from ..protocol import list_protocols, load_protocol

        super().__init__(store, "Program builder", "Prescribe the hip IR breakouts; the preview updates as you go.")
        self.today = today or date.today()
        self.value: Program | None = None
        self.saved: Program | None = None
        """The program last saved from this form (handouts of anything else are drafts)."""
        self._load_protocol = load_protocol
        self.protocol: Protocol | None = None
        """The protocol chosen in the form."""
        self._items: list[BreakoutItem] = []
        protocols = list_protocols()
        self._patient = self.patient_picker()
        wide = {"description_width": "110px"}
        self._protocol = w.Dropdown(description="Protocol", style=wide, layout=w.Layout(width="480px"), options=[
            (f"{r.title} (v{r.version})", f"{r.id}@{r.version}") for r in protocols.itertuples()])
        self._schedule = w.ToggleButtons(style={"button_width": "auto"})
        self._schedule.add_class("hip-schedule")
        self._days = [w.ToggleButton(description=d.capitalize(), layout=w.Layout(width="52px")) for d in WEEKDAYS]
        self._days_box = w.HBox([w.Label("Breakout days", layout=w.Layout(width="114px")), *self._days])
        self._slot = w.Dropdown(description="Breakouts in", style=wide, layout=w.Layout(width="320px"))
        self._start = w.DatePicker(description="Start", value=self.today, style=wide)
        self._start.add_class("hip-start")
        self._weeks = w.BoundedIntText(description="Weeks", value=6, min=1, max=52, layout=w.Layout(width="180px"))
        self._weeks.add_class("hip-weeks")
        self._reason = w.Text(description="Reason", placeholder="why this program (needed for a change of schedule)",
                              style=wide, layout=w.Layout(width="560px"))
        self._confirm = w.Checkbox(value=False, indent=False, layout=w.Layout(width="auto", margin="0 0 0 114px"),
                                   description="Breakouts on consecutive days: I confirm them, for the reason above")
        self._confirm.add_class("hip-confirm")
        self._who = w.Text(description="Clinician", value=who or _ui.login_name(), style=wide,
                           layout=w.Layout(width="320px"))
        self._exercises = w.VBox()
        self._in_force = w.HTML()
        self._preview = w.HTML()
        self._save = w.Button(description="Save program", button_style="primary", icon="save",
                              layout=w.Layout(width="auto"))
        self._prepare = w.Button(description="Handout and calendar", icon="download", layout=w.Layout(width="auto"))
        self._downloads = w.HTML()
        self._ticks: dict[str, Any] = {}
        self._alternatives: dict[str, Any] = {}
        self._dose_inputs: dict[str, dict[str, Any]] = {}
        self._dose_rows: dict[str, Any] = {}
        self._building = False

        self.children = [
            self.header,
            _ui.section("Patient and protocol", [self._patient, self._in_force, self._protocol]),
            _ui.section("Exercises and doses", [self._exercises]),
            _ui.section("Schedule", [self._schedule, self._days_box, self._slot,
                                     w.HBox([self._start, self._weeks]), self._reason, self._confirm, self._who]),
            _ui.section("Preview", [self._preview]),
            w.HBox([self._save, self._prepare]),
            self.status,
            self._downloads,
        ]
        self._protocol.observe(self._protocol_changed, "value")
        self._patient.observe(self._patient_changed, "value")
        for control in (self._schedule, self._slot, self._start, self._weeks, self._reason, self._confirm,
                        *self._days):
            control.observe(self._changed, "value")
        self._save.on_click(self._save_clicked)
        self._prepare.on_click(self._prepare_clicked)
        self._protocol_changed()
        self._patient_changed()

    # -- reading the form ---------------------------------------------------------------------

    def choices(self) -> dict[str, Any]:
        """The form's values, as :func:`build_program` takes them."""
        return {
            "patient_id": self._patient.value,
            "schedule": self._schedule.value,
            "days": [d for d, b in zip(WEEKDAYS, self._days) if b.value],
            "breakout_slot": self._slot.value,
            "start_date": self._start.value,
            "weeks": self._weeks.value,
            "exercises": {k: box.value for k, box in self._ticks.items()},
            "alternatives": {k: radio.value for k, radio in self._alternatives.items()},
            "doses": {e: {**{f: t.value for f, t in fields.items() if not f.startswith("hold_s.")},
                          "hold_s": {f.removeprefix("hold_s."): t.value for f, t in fields.items()
                                     if f.startswith("hold_s.")}}
                      for e, fields in self._dose_inputs.items()},
            "reason": self._reason.value,
            "previous_breakout": self._previous_breakout(),
        }

    def side(self) -> str | None:
        """The chosen patient's involved hip, as recorded in the store (None if not recorded)."""
        return patient_side(self.patients(), self._patient.value)

    def _previous_breakout(self) -> date | None:
        patient, start = self._patient.value, self._start.value
        if not patient or not isinstance(start, date):
            return None
        return previous_breakout(self.store.read("programs", patient_id=patient), start)

    # -- handlers -----------------------------------------------------------------------------

    def _protocol_changed(self, change=None) -> None:
        import ipywidgets as w

        protocol = self.protocol = self._load_protocol(self._protocol.value)
        self._items = breakout_items(protocol)
        self._building = True  # the controls below are rebuilt: no preview until they all exist
        self._schedule.options = [(s.title, s.id) for s in protocol.schedules] + [("Custom days", CUSTOM)]
        self._schedule.value = protocol.schedules[0].id
        base = protocol.resolve_schedule(protocol.custom_schedule_base or protocol.schedules[0].id)
        self._slot.options = [(f"{s.id} ({s.time:%H:%M})", s.id) for s in base.slots]
        self._slot.value = base.breakout_slot
        self._ticks, self._alternatives, self._dose_inputs, self._dose_rows = {}, {}, {}, {}
        rows = []
        for item in self._items:
            tick = w.Checkbox(value=True, description=item.label, indent=False, layout=w.Layout(width="auto"))
            tick.add_class(f"hip-tick-{item.key}")
            tick.observe(self._changed, "value")
            self._ticks[item.key] = tick
            line = [tick]
            if len(item.options) > 1:
                radio = w.RadioButtons(options=[(n, e) for e, n in item.options], value=item.default,
                                       layout=w.Layout(width="auto"))
                radio.observe(self._changed, "value")
                self._alternatives[item.key] = radio
                line.append(radio)
            rows.append(w.HBox(line))
            for exercise_id, name in item.options:
                inputs, line = {}, [w.Label("Dose", layout=w.Layout(width="60px", margin="0 0 0 24px"))]
                for field, label, value in dose_fields(protocol, exercise_id):
                    box = w.Text(value=value, layout=w.Layout(width="64px"))
                    box.add_class(f"hip-dose-{exercise_id}-{field.replace('.', '-')}")
                    box.observe(self._changed, "value")
                    inputs[field] = box
                    line += [w.Label(label, layout=w.Layout(margin="0 4px 0 12px")), box]
                self._dose_inputs[exercise_id] = inputs
                row = w.HBox(line)
                row.add_class("hip-dose")
                self._dose_rows[exercise_id] = row
                rows.append(row)
        self._exercises.children = rows
        self._building = False
        self._changed()

    def _show_patient(self) -> None:
        side = self.side()
        hip = (f"<p>Hip: <b>{html.escape(side)}</b> (the patient record's involved side; printed on the handout)</p>"
               if side else '<p class="hip-muted">No involved side on record: the handout has tick boxes for the hip.</p>')
        self._in_force.value = hip + self.programs_in_force_html(self._patient.value)

    def _patient_changed(self, change=None) -> None:
        self._show_patient()
        self._changed()

    def _changed(self, change=None) -> None:
        if self._building:
            return
        self._days_box.layout.display = "flex" if self._schedule.value == CUSTOM else "none"
        for item in self._items:
            chosen = self._alternatives[item.key].value if item.key in self._alternatives else item.default
            for exercise_id, _ in item.options:
                shown = exercise_id == chosen and self._ticks[item.key].value
                self._dose_rows[exercise_id].layout.display = "flex" if shown else "none"
        self._downloads.value = ""
        try:
            self.value = build_program(self.protocol, self.choices())
        except HipAnalyticsError as exc:
            self.value = None
            self._preview.value = _ui.problem_html(str(exc))
            self._save.disabled = self._prepare.disabled = True
            return
        self._preview.value = preview_html(self.value, self.side())
        needs = save_refusal(self.value, confirmed=False) is not None
        self._confirm.layout.display = "flex" if needs else "none"
        self._save.disabled = self._prepare.disabled = False

    def _save_clicked(self, _button=None) -> None:
        if self.value is None:
            return
        program = self.value
        refusal = save_refusal(program, self._confirm.value)
        if refusal:
            self.status.value = _ui.problem_html(refusal)
            return
        with self.saving("Saving the program"):
            written = self.store.save_program(program, who=self._who.value.strip() or None, today=self.today)
            self.saved = program
            ended = [p for p in written if p != program.program_id]
            note = f"; ended {', '.join(ended)} the day before" if ended else ""
            self.say_saved(f"Saved program {program.program_id}{note}.")
            self._show_patient()

    def _prepare_clicked(self, _button=None) -> None:
        if self.value is None:
            return
        draft = self.value != self.saved
        with self.saving("Preparing the handout"):
            self._downloads.value = download_links(self.value, side=self.side(), draft=draft)
            if draft:
                self.status.value = _ui.warning_html(
                    "Draft handout and calendar: this program is not saved, so they say 'draft, not recorded'. "
                    "Save the program first to give the patient the recorded version.")
            else:
                self.say_saved("Handout and calendar ready: use the links below.")
