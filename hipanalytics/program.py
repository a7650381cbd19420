"""Programs (a protocol prescribed to one patient) and their day-by-day plans.

A :class:`Program` names the patient, the protocol (id and version), the schedule (a named one or a
custom weekday set), the dates and any dose overrides. :func:`plan` turns one or more programs into
one row per planned session. A schedule change mid-course is a new program from a date
(:func:`switch_schedule`), so the old program stays on record as it was prescribed.

Examples
--------
>>> from datetime import date
>>> prog = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="three-per-week",
...                start_date=date(2026, 1, 5), weeks=4)
>>> sessions = plan(prog)
>>> len(sessions), int(sessions["breakouts"].sum())
(56, 12)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    StringConstraints,
    computed_field,
    model_validator,
)

from .errors import ProgramError, ProtocolError, ScheduleWarning
from .protocol import (
    WEEKDAYS,
    ChoiceBlock,
    CircuitBlock,
    Count,
    Dose,
    Protocol,
    Schedule,
    Seconds,
    load_protocol,
    schedule_problems,
)

__all__ = [
    "SIDES",
    "DoseOverride",
    "Program",
    "PLAN_COLUMNS",
    "plan",
    "plan_table",
    "breakout_templates",
    "session_titles",
    "prescription",
    "breakouts_per_week",
    "switch_schedule",
    "session_times",
    "program_record",
    "program_from_record",
]


SIDES = ("left", "right", "both")
"""The hip(s) a program works, as the patients table's ``involved_side``. A program does not hold
it (the patient record does): handouts, calendars and session times take it as ``side=``."""


class DoseOverride(BaseModel):
    """A clinician's change to one exercise's dose; unset fields keep the protocol's value.

    Examples
    --------
    >>> DoseOverride(sets=4, hold_s={"stretch": 45}).hold_s["stretch"]
    Range(low=45, high=45)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sets: Count | None = Field(default=None, description="new number of sets")
    reps: Count | None = Field(default=None, description="new repetitions per set")
    hold_s: dict[str, Seconds] = Field(default_factory=dict, description="phase id -> new hold, seconds")


class Program(BaseModel):
    """A protocol prescribed to one patient over a date range.

    Parameters
    ----------
    patient_id : str
        The patient's id in the clinic's records.
    protocol : Protocol or str
        A loaded protocol, or a reference (``"hip-ir-breakouts"`` or ``"hip-ir-breakouts@1.0.0"``).
        Instead, ``protocol_id`` and ``protocol_version`` may be given (as stored).
    schedule : str
        A schedule id of the protocol (``"daily"``, ``"three-per-week"``) or a custom weekday set
        (``"mon,thu"`` or ``"custom:mon,thu"``), which reuses the protocol's base schedule slots.
    start_date : date
        First day of the program.
    weeks : int, optional
        Length in weeks; give this or ``end_date``.
    end_date : date, optional
        Last day of the program (inclusive).
    program_id : str, optional
        Defaults to ``{patient_id}-{start:%Y%m%d}-{schedule}``.
    breakout_slot : str, optional
        Which of the day's slots carries the breakouts (default: the schedule's).
    choices : dict, optional
        Choice id -> exercise id, e.g. ``{"ninety-ninety": "ninety-ninety-ir-pails"}``.
    dose_overrides : dict, optional
        Exercise id -> :class:`DoseOverride` (or a mapping of its fields).
    omit : tuple of str, optional
        Breakout exercises left out (e.g. the band mobilisation when the patient has no band).
        The Hip Movement Sequence cannot be left out, and each breakout session keeps at least
        one breakout exercise.
    reason : str, optional
        Why the program was prescribed or changed (e.g. "pain after daily breakouts"). A custom
        weekday set with breakouts on consecutive days needs one (see Warns).
    previous_breakout : date, optional
        The last breakout day of the program this one follows (set by :func:`switch_schedule` and
        by the program builder). With a schedule that needs a recovery day between breakout days
        (3x/week), a breakout planned for the next day becomes a recovery day: the protocol's
        recovery day holds across a switch, not only within a week. Not stored: :func:`plan_table`
        finds it from the stored programs themselves.

    Raises
    ------
    ProgramError
        When the dates are reversed, the protocol, schedule, slot, choice, exercise or phase is
        unknown, or a value is invalid; the message says what was expected.

    Warns
    -----
    ScheduleWarning
        When a custom weekday set puts breakouts on consecutive days although the schedule it is
        based on needs a recovery day between them, and no ``reason`` says why. The reason records
        that the clinician chose it: ``hipanalytics program`` refuses such days unless given
        ``--allow-consecutive --reason``, the program builder asks for a confirmation and a reason,
        and a stored program read back (with its reason) does not warn again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    program_id: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        default="", description="defaults to patient-start-schedule"
    )
    protocol: Protocol = Field(exclude=True, repr=False)
    schedule: str = Field(min_length=1)
    start_date: date
    end_date: date
    breakout_slot: str | None = None
    choices: dict[str, str] = Field(default_factory=dict)
    dose_overrides: dict[str, DoseOverride] = Field(default_factory=dict)
    omit: tuple[str, ...] = ()
    reason: Annotated[str, StringConstraints(strip_whitespace=True)] = ""
    previous_breakout: date | None = None

    _schedule: Schedule = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ProgramError(_describe_validation(exc, data)) from None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def protocol_id(self) -> str:
        """Id of the protocol prescribed."""
        return self.protocol.id

    @computed_field  # type: ignore[prop-decorator]
    @property
    def protocol_version(self) -> str:
        """Version of the protocol prescribed."""
        return self.protocol.version

    @model_validator(mode="before")
    @classmethod
    def _resolve_inputs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ref = data.pop("protocol", None)
        pid, version = data.pop("protocol_id", None), data.pop("protocol_version", None)
        if ref is None and pid is not None:
            ref = f"{pid}@{version}" if version else pid
        if ref is None:
            raise ProgramError("a program needs a protocol: give protocol= (id or Protocol)")
        if not isinstance(ref, Protocol):
            try:
                ref = load_protocol(str(ref))
            except ProtocolError as exc:
                patient = data.get("patient_id", "?")
                raise ProgramError(
                    f"program for patient {patient!r} refers to protocol {str(ref)!r}, "
                    f"which cannot be loaded: {exc}"
                ) from None
        data["protocol"] = ref
        weeks = data.pop("weeks", None)
        if weeks is not None:
            if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks < 1:
                raise ProgramError(f"weeks must be a whole number of at least 1, got {weeks!r}")
            start = _as_date(data.get("start_date"), "start_date")
            end = start + timedelta(days=7 * weeks - 1)
            given = data.get("end_date")
            if given is not None and _as_date(given, "end_date") != end:
                raise ProgramError(
                    f"weeks={weeks} from {start} ends on {end}, but end_date={given} was also "
                    "given; give one of them"
                )
            data["end_date"] = end
        elif data.get("end_date") is None:
            raise ProgramError("a program needs an end: give weeks= or end_date=")
        return data

    @model_validator(mode="after")
    def _check(self) -> Program:
        from .records.columns import ID_RULE, valid_id

        who = f"program for patient {self.patient_id!r}"
        if not valid_id(self.patient_id):
            raise ProgramError(f"{who}: not a valid patient id: ids have 1-64 characters, {ID_RULE}")
        if self.program_id and not valid_id(self.program_id, 128):
            raise ProgramError(f"{who}: program id {self.program_id!r} is not valid: ids have 1-128 characters, "
                               f"{ID_RULE}")
        if self.start_date > self.end_date:
            raise ProgramError(
                f"{who}: start date {self.start_date} is after end date {self.end_date}; "
                "swap them or correct the dates"
            )
        try:
            schedule = self.protocol.resolve_schedule(self.schedule)
        except (KeyError, ValueError) as exc:
            raise ProgramError(f"{who}: unknown schedule {self.schedule!r}: {_reason(exc)}") from None
        slot_ids = [s.id for s in schedule.slots]
        if self.breakout_slot is not None:
            if self.breakout_slot not in slot_ids:
                raise ProgramError(
                    f"{who}: breakout_slot {self.breakout_slot!r} is not a slot of schedule "
                    f"{schedule.id!r} (slots: {', '.join(slot_ids)})"
                )
            schedule = schedule.model_copy(update={"breakout_slot": self.breakout_slot})
        if schedule.id.startswith("custom:") and not self.reason:
            for _, message in schedule_problems(schedule):
                warnings.warn(f"{who}: {message}, or give a reason to prescribe them anyway", ScheduleWarning,
                              stacklevel=4)
        self._check_choices(who)
        self._check_overrides(who)
        self._check_omit(who, schedule)
        object.__setattr__(self, "_schedule", schedule)
        if not self.program_id:
            slug = schedule.id.replace("custom:", "custom-").replace(",", "-")
            object.__setattr__(self, "program_id", f"{self.patient_id}-{self.start_date:%Y%m%d}-{slug}")
        return self

    def _check_choices(self, who: str) -> None:
        known = {c.id: c for c in self.protocol.choices()}
        for choice_id, exercise_id in self.choices.items():
            if choice_id not in known:
                raise ProgramError(
                    f"{who}: unknown choice {choice_id!r} (protocol choices: {', '.join(known) or 'none'})"
                )
            if exercise_id not in known[choice_id].one_of:
                raise ProgramError(
                    f"{who}: choice {choice_id!r} must be one of "
                    f"{', '.join(known[choice_id].one_of)}, got {exercise_id!r}"
                )

    def _check_overrides(self, who: str) -> None:
        for exercise_id, override in self.dose_overrides.items():
            try:
                exercise = self.protocol.exercise(exercise_id)
            except KeyError as exc:
                raise ProgramError(f"{who}: dose override for {_reason(exc)}") from None
            if exercise.dose is None:
                raise ProgramError(f"{who}: {exercise.name} has no dose to override")
            if override.reps is not None and exercise.dose.reps is None:
                raise ProgramError(f"{who}: {exercise.name} is dosed by holds, not reps; override sets or hold_s")
            phase_ids = [p.id for p in (*exercise.dose.lead_in, *exercise.dose.phases)]
            for phase_id in override.hold_s:
                if phase_id not in phase_ids:
                    raise ProgramError(
                        f"{who}: {exercise.name} has no phase {phase_id!r} "
                        f"(phases: {', '.join(phase_ids)})"
                    )

    def _check_omit(self, who: str, schedule: Schedule) -> None:
        known = {e.id: e for e in self.protocol.exercises}
        for exercise_id in self.omit:
            if exercise_id not in known:
                raise ProgramError(f"{who}: cannot leave out unknown exercise {exercise_id!r} "
                                   f"(exercises: {', '.join(known)})")
            if known[exercise_id].kind == "movement_sequence":
                raise ProgramError(f"{who}: {known[exercise_id].name} cannot be left out; the protocol "
                                   "follows every breakout circuit with it")
        template = self.protocol.session(schedule.breakout_session)
        kept = [e for e in self._session_exercises(template)
                if e not in self.omit and self.protocol.exercise(e).kind != "movement_sequence"]
        if not kept:
            raise ProgramError(f"{who}: every breakout exercise of {template.title!r} is left out; keep at "
                               "least one, or prescribe the movement sequence without breakouts")

    def _session_exercises(self, template) -> list[str]:
        out = []
        for block in template.blocks:
            for item in (block.circuit.items if isinstance(block, CircuitBlock) else (block,)):
                out.append(self.chosen(item) if isinstance(item, ChoiceBlock) else item.exercise)
        return out

    @property
    def resolved_schedule(self) -> Schedule:
        """The schedule in force, with any ``breakout_slot`` override applied."""
        return self._schedule

    @property
    def weeks(self) -> float:
        """Length in weeks (fractional when the end date is not a whole number of weeks)."""
        return ((self.end_date - self.start_date).days + 1) / 7

    def dose(self, exercise_id: str) -> Dose | None:
        """The exercise's dose for this program, overrides applied."""
        base = self.protocol.exercise(exercise_id).dose
        override = self.dose_overrides.get(exercise_id)
        if base is None or override is None:
            return base

        def held(phases):
            return tuple(
                p.model_copy(update={"hold_s": override.hold_s[p.id]}) if p.id in override.hold_s else p
                for p in phases
            )

        return base.model_copy(update={
            "sets": override.sets or base.sets,
            "reps": override.reps or base.reps,
            "lead_in": held(base.lead_in),
            "phases": held(base.phases),
        })

    def chosen(self, choice: ChoiceBlock) -> str:
        """The exercise this program uses for a ``one_of`` choice."""
        return self.choices.get(choice.id, choice.chosen_by_default)


def _as_date(value: Any, name: str) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ProgramError(f"{name} must be a date like 2026-01-05, got {value!r}") from None


def _reason(exc: Exception) -> str:
    return exc.args[0] if exc.args else str(exc)


def _describe_validation(exc: ValidationError, data: dict) -> str:
    who = f"program for patient {data.get('patient_id', '?')!r}"
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "program"
        parts.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return f"{who}: " + "; ".join(parts)


PLAN_COLUMNS = [
    "patient_id", "program_id", "protocol_id", "protocol_version", "schedule", "date", "week",
    "weekday", "slot", "slot_time", "session", "session_title", "breakouts", "doses",
]


def plan(programs: Program | Iterable[Program]) -> pd.DataFrame:
    """One row per planned session of one or more programs.

    Parameters
    ----------
    programs : Program or iterable of Program
        Several programs of one patient must not overlap in time (a schedule change is a new
        program from a date: see :func:`switch_schedule`).

    Returns
    -------
    DataFrame
        Sorted by patient, date and slot, with columns:

        - ``patient_id``, ``program_id``, ``protocol_id``, ``protocol_version``, ``schedule``
        - ``date`` (datetime64, day precision), ``week`` (1-based week of the program),
          ``weekday`` (``mon``..``sun``)
        - ``slot`` (e.g. ``morning``), ``slot_time`` (``HH:MM``, suggested start)
        - ``session`` (template id), ``session_title``, ``breakouts`` (bool: the session
          contains the breakout exercises)
        - ``doses`` (the session's exercises and doses in clinician shorthand)

    Raises
    ------
    ProgramError
        When programs of the same patient overlap.

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=4)
    >>> df = plan(p)
    >>> len(df), int(df["breakouts"].sum())
    (56, 28)
    """
    items = [programs] if isinstance(programs, Program) else list(programs)
    _check_no_overlap(items)
    frames = []
    last_breakout: dict[str, date] = {}
    for p in sorted(items, key=lambda p: (p.patient_id, p.start_date)):
        before = last_breakout.get(p.patient_id)
        if before is not None and before < p.start_date and p.previous_breakout is None:
            p = p.model_copy(update={"previous_breakout": before})
        frame = _plan_one(p)
        frames.append(frame)
        done = frame.loc[frame["breakouts"], "date"]
        if len(done):
            last_breakout[p.patient_id] = done.max().date()
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=_PLAN_DTYPES.get(c, "str")) for c in PLAN_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["patient_id", "date", "slot_order"], kind="stable").drop(
        columns="slot_order"
    ).reset_index(drop=True)


_PLAN_DTYPES = {"date": "datetime64[s]", "week": "int64", "breakouts": "bool"}


PLAN_TABLE_COLUMNS = ["patient_id", "program_id", "schedule", "date", "weekday", "slot", "slot_time",
                      "session", "breakouts"]


def plan_table(programs: pd.DataFrame) -> pd.DataFrame:
    """Planned sessions of many stored programs at once, vectorised over programs and days.

    The frame counterpart of :func:`plan` for analysis at clinic or registry scale: same sessions,
    without the dose text, and without building a :class:`Program` per row.

    Parameters
    ----------
    programs : DataFrame
        ``program_id``, ``patient_id``, ``protocol_id``, ``protocol_version``, ``schedule``,
        ``start_date``, ``end_date`` (dates or ISO text), as stored; optionally ``breakout_slot``
        (empty: the schedule's own).

    Returns
    -------
    DataFrame
        ``patient_id``, ``program_id``, ``schedule``, ``date`` (datetime64[s]), ``weekday``,
        ``slot``, ``slot_time``, ``session``, ``breakouts`` (bool), sorted by patient, date, slot.

    Examples
    --------
    >>> programs = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"],
    ...     "protocol_id": ["hip-ir-breakouts"], "protocol_version": ["1.0.0"],
    ...     "schedule": ["three-per-week"], "start_date": ["2026-01-05"], "end_date": ["2026-02-01"]})
    >>> t = plan_table(programs)
    >>> len(t), int(t["breakouts"].sum())
    (56, 12)
    """
    frames = []
    keys = ["protocol_id", "protocol_version", "schedule", "breakout_slot"]
    if "breakout_slot" not in programs:
        programs = programs.assign(breakout_slot=None)
    slot_given = programs["breakout_slot"].fillna("")
    for (protocol_id, version, schedule_id, slot_id), group in programs.assign(breakout_slot=slot_given).groupby(
            keys, sort=False):
        protocol = load_protocol(f"{protocol_id}@{version}")
        schedule = protocol.resolve_schedule(schedule_id)
        if slot_id:
            schedule = schedule.model_copy(update={"breakout_slot": slot_id})
        starts = pd.to_datetime(group["start_date"]).to_numpy().astype("datetime64[D]")
        ends = pd.to_datetime(group["end_date"]).to_numpy().astype("datetime64[D]")
        lengths = np.maximum((ends - starts).astype("int64") + 1, 0)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        days = np.repeat(starts, lengths) + offsets.astype("timedelta64[D]")
        weekday = (days.view("int64") + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
        breakout_day = np.isin(weekday, [WEEKDAYS.index(d) for d in schedule.breakout_days])
        for order, slot in enumerate(schedule.slots):
            is_breakout = breakout_day & (slot.id == schedule.breakout_slot)
            frames.append(pd.DataFrame({
                "patient_id": np.repeat(group["patient_id"].to_numpy(), lengths),
                "program_id": np.repeat(group["program_id"].to_numpy(), lengths),
                "schedule": schedule.id, "date": days.astype("datetime64[s]"),
                "weekday": np.array(WEEKDAYS, dtype=object)[weekday], "slot": slot.id,
                "slot_time": slot.time.strftime("%H:%M"),
                "session": np.where(is_breakout, schedule.breakout_session, slot.session),
                "breakouts": is_breakout, "slot_order": order, "plain_session": slot.session,
                "recovery": schedule.recovery_day_between,
            }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=_PLAN_DTYPES.get(c, "str")) for c in PLAN_TABLE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["patient_id", "date", "slot_order"], kind="stable").reset_index(drop=True)
    _recovery_across_programs(out)
    return out[PLAN_TABLE_COLUMNS].reset_index(drop=True)


def _recovery_across_programs(out: pd.DataFrame) -> None:
    """In place: a breakout of a recovery schedule on the day after the previous program's last
    breakout becomes a recovery day (the plain session of its slot), as :func:`plan` does."""
    b = out[out["breakouts"]]
    if b.empty:
        return
    prev_date = b.groupby("patient_id")["date"].shift()
    prev_program = b.groupby("patient_id")["program_id"].shift()
    drop = (b["recovery"] & prev_program.notna() & (prev_program != b["program_id"])
            & ((b["date"] - prev_date) == pd.Timedelta(days=1)))
    if drop.any():
        index = drop[drop].index
        out.loc[index, "breakouts"] = False
        out.loc[index, "session"] = out.loc[index, "plain_session"]


def breakout_templates(programs: pd.DataFrame) -> set[str]:
    """Ids of the session templates that hold breakouts, in the protocols the programs use.

    Examples
    --------
    >>> breakout_templates(pd.DataFrame({"protocol_id": ["hip-ir-breakouts"], "protocol_version": ["1.0.0"]}))
    {'breakouts'}
    """
    templates: set[str] = set()
    for protocol_id, version in programs[["protocol_id", "protocol_version"]].drop_duplicates().itertuples(index=False):
        protocol = load_protocol(f"{protocol_id}@{version}")
        templates |= {s.id for s in protocol.sessions if protocol.has_breakouts(s.id)}
    return templates


def session_titles(programs: pd.DataFrame) -> dict[str, str]:
    """Title of each session template, by id, in the protocols the programs use.

    Examples
    --------
    >>> session_titles(pd.DataFrame({"protocol_id": ["hip-ir-breakouts"], "protocol_version": ["1.0.0"]}))["sequence"]
    'Hip Movement Sequence'
    """
    titles: dict[str, str] = {}
    for protocol_id, version in programs[["protocol_id", "protocol_version"]].drop_duplicates().itertuples(index=False):
        titles.update({s.id: s.title for s in load_protocol(f"{protocol_id}@{version}").sessions})
    return titles


def _check_no_overlap(programs: list[Program]) -> None:
    by_patient: dict[str, list[Program]] = {}
    for p in programs:
        by_patient.setdefault(p.patient_id, []).append(p)
    for patient, progs in by_patient.items():
        progs = sorted(progs, key=lambda p: p.start_date)
        for a, b in zip(progs, progs[1:]):
            if b.start_date <= a.end_date:
                raise ProgramError(
                    f"programs {a.program_id!r} ({a.start_date} to {a.end_date}) and "
                    f"{b.program_id!r} ({b.start_date} to {b.end_date}) of patient {patient!r} "
                    "overlap; end the first the day before the second starts (switch_schedule does this)"
                )


def _plan_one(program: Program) -> pd.DataFrame:
    schedule = program.resolved_schedule
    protocol = program.protocol
    days = pd.date_range(program.start_date, program.end_date, freq="D", unit="s")
    n_days, n_slots = len(days), len(schedule.slots)
    weekday_index = days.day_of_week.to_numpy()
    is_breakout_day = np.isin(weekday_index, [WEEKDAYS.index(d) for d in schedule.breakout_days])
    slot_ids = [s.id for s in schedule.slots]
    breakout_slot = slot_ids.index(schedule.breakout_slot)
    # sessions[d, s]: the template done on day d in slot s
    if schedule.recovery_day_between and program.previous_breakout is not None:
        is_breakout_day &= days.date != program.previous_breakout + timedelta(days=1)  # a recovery day first
    sessions = np.tile(np.array([s.session for s in schedule.slots], dtype=object), (n_days, 1))
    sessions[is_breakout_day, breakout_slot] = schedule.breakout_session
    templates = {t: protocol.session(t) for t in set(sessions.ravel())}
    doses = {t: _session_doses(program, t) for t in templates}
    flat = sessions.ravel()
    day_pos = np.repeat(np.arange(n_days), n_slots)
    return pd.DataFrame({
        "patient_id": program.patient_id,
        "program_id": program.program_id,
        "protocol_id": protocol.id,
        "protocol_version": protocol.version,
        "schedule": schedule.id,
        "date": days[day_pos],
        "week": day_pos // 7 + 1,
        "weekday": np.array(WEEKDAYS, dtype=object)[weekday_index[day_pos]],
        "slot": np.tile(np.array(slot_ids, dtype=object), n_days),
        "slot_time": np.tile(np.array([s.time.strftime("%H:%M") for s in schedule.slots], dtype=object), n_days),
        "session": flat,
        "session_title": [templates[t].title for t in flat],
        "breakouts": np.array([protocol.has_breakouts(t) for t in flat], dtype=bool),
        "doses": [doses[t] for t in flat],
        "slot_order": np.tile(np.arange(n_slots), n_days),
    })


def _session_doses(program: Program, session_id: str) -> str:
    rows = prescription(program, session_id)
    parts = []
    for (_, rounds), group in rows.groupby(["block", "rounds"], sort=False):
        text = " + ".join(
            f"{r.exercise_name} ({r.dose})" if r.dose else r.exercise_name for r in group.itertuples()
        )
        parts.append(f"{rounds} rounds of [{text}]" if group["in_circuit"].iloc[0] else text)
    return "; then ".join(parts)


def prescription(program: Program, session: str | None = None) -> pd.DataFrame:
    """The exercises of each session template as this program prescribes them.

    Choices are resolved (e.g. the 90/90 stretch or its contract-relax variant) and dose
    overrides applied.

    Parameters
    ----------
    program : Program
    session : str, optional
        Only this session template; by default every template the program's schedule uses.

    Returns
    -------
    DataFrame
        One row per exercise, in order: ``session``, ``block`` (position of the block in the
        session), ``in_circuit`` (bool), ``rounds`` (circuit rounds, 1 outside a circuit),
        ``exercise_id``, ``exercise_name``, ``kind``, ``sets``, ``reps``, ``dose`` (shorthand;
        empty for a movement sequence), ``alternative_to`` (the choice id, when chosen from a
        ``one_of``).

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=1,
    ...             choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    >>> prescription(p, "breakouts")[["exercise_id", "rounds"]].values.tolist()
    [['quadruped-band-ir', 3], ['ninety-ninety-ir-pails', 3], ['hip-movement-sequence', 1]]
    """
    schedule = program.resolved_schedule
    if session is None:
        ids = list(dict.fromkeys([schedule.breakout_session] + [s.session for s in schedule.slots]))
    else:
        ids = [session]
    rows = []
    for session_id in ids:
        template = program.protocol.session(session_id)
        for b, block in enumerate(template.blocks, start=1):
            in_circuit = isinstance(block, CircuitBlock)
            items = block.circuit.items if in_circuit else (block,)
            rounds = block.circuit.rounds if in_circuit else 1
            for item in items:
                choice = item if isinstance(item, ChoiceBlock) else None
                exercise_id = program.chosen(choice) if choice else item.exercise
                if exercise_id in program.omit:
                    continue
                exercise = program.protocol.exercise(exercise_id)
                dose = program.dose(exercise_id)
                rows.append({
                    "session": session_id,
                    "block": b,
                    "in_circuit": in_circuit,
                    "rounds": rounds,
                    "exercise_id": exercise_id,
                    "exercise_name": exercise.name,
                    "kind": exercise.kind,
                    "sets": str(dose.sets) if dose else "",
                    "reps": str(dose.reps) if dose and dose.reps else "",
                    "dose": dose.describe() if dose else "",
                    "alternative_to": choice.id if choice else "",
                })
    return pd.DataFrame(rows)


def breakouts_per_week(plan_df: pd.DataFrame) -> pd.DataFrame:
    """Planned sessions and breakout sessions per week of each patient's course.

    Weeks count from the patient's first planned day, so a schedule switch mid-course keeps one
    continuous week count. A last, shorter week is marked by ``days`` < 7.

    Parameters
    ----------
    plan_df : DataFrame
        Output of :func:`plan`.

    Returns
    -------
    DataFrame
        ``patient_id``, ``week``, ``week_start``, ``week_end``, ``days`` (days planned that
        week), ``sessions``, ``breakouts``, ``schedule`` (schedules in force, ``+``-joined).

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="three-per-week",
    ...             start_date=date(2026, 1, 7), weeks=2)
    >>> breakouts_per_week(plan(p))[["week", "sessions", "breakouts"]].values.tolist()
    [[1, 14, 3], [2, 14, 3]]
    """
    if plan_df.empty:
        return pd.DataFrame({
            "patient_id": pd.Series(dtype="str"), "week": pd.Series(dtype="int64"),
            "week_start": pd.Series(dtype="datetime64[s]"), "week_end": pd.Series(dtype="datetime64[s]"),
            "days": pd.Series(dtype="int64"), "sessions": pd.Series(dtype="int64"),
            "breakouts": pd.Series(dtype="int64"), "schedule": pd.Series(dtype="str"),
        })
    df = plan_df[["patient_id", "date", "schedule", "breakouts"]]
    first = df.groupby("patient_id")["date"].transform("min")
    week = (df["date"] - first).dt.days // 7 + 1
    grouped = df.assign(week=week).groupby(["patient_id", "week"], sort=True)
    out = grouped.agg(
        days=("date", "nunique"),
        sessions=("date", "size"),
        breakouts=("breakouts", "sum"),
        schedule=("schedule", lambda s: "+".join(dict.fromkeys(s))),
    ).reset_index()
    starts = first.groupby(df["patient_id"]).first()
    out["week_start"] = out["patient_id"].map(starts) + pd.to_timedelta((out["week"] - 1) * 7, unit="D")
    out["week_end"] = out["week_start"] + pd.Timedelta(days=6)
    out["breakouts"] = out["breakouts"].astype("int64")
    return out[["patient_id", "week", "week_start", "week_end", "days", "sessions", "breakouts", "schedule"]]


def switch_schedule(
    program: Program, schedule: str, *, on: date, reason: str, weeks: int | None = None
) -> tuple[Program, Program]:
    """Change a program's schedule from a date: the old program ends the day before.

    Parameters
    ----------
    program : Program
        The program in force.
    schedule : str
        The new schedule (id or weekday set).
    on : date
        First day of the new schedule; must fall after the program's start and on or before its end.
    reason : str
        Why (kept with the new program), e.g. "pain rise after daily breakouts".
    weeks : int, optional
        Length of the new program; by default it ends when the old one would have.

    Returns
    -------
    (Program, Program)
        The old program cut short, and the new one.

    Examples
    --------
    >>> from datetime import date
    >>> daily = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...                 start_date=date(2026, 1, 5), weeks=4)
    >>> old, new = switch_schedule(daily, "three-per-week", on=date(2026, 1, 19),
    ...                            reason="pain after daily breakouts")
    >>> old.end_date, new.start_date, new.end_date
    (datetime.date(2026, 1, 18), datetime.date(2026, 1, 19), datetime.date(2026, 2, 1))

    The last daily breakout is on Sunday 18; Monday 19 becomes a recovery day, so the new
    schedule's first breakout is on Wednesday 21:

    >>> both = plan([old, new])
    >>> [f"{d:%a %d}" for d in both.loc[both["breakouts"] & (both["date"] >= "2026-01-17"), "date"]][:4]
    ['Sat 17', 'Sun 18', 'Wed 21', 'Fri 23']
    >>> int(both["breakouts"].sum()), int(plan(new)["breakouts"].sum())
    (19, 5)
    """
    if not program.start_date < on <= program.end_date:
        raise ProgramError(
            f"switch date {on} must fall after the start ({program.start_date}) and on or before "
            f"the end ({program.end_date}) of program {program.program_id!r}"
        )
    if not reason or not reason.strip():
        raise ProgramError("a schedule change needs a reason (it is kept with the new program)")
    old = program.model_copy(update={"end_date": on - timedelta(days=1)})
    fields = program.model_dump(exclude={"program_id", "start_date", "end_date", "schedule", "reason",
                                         "previous_breakout"})
    done = plan(old).loc[lambda d: d["breakouts"], "date"]
    new = Program(
        **fields,
        protocol=program.protocol,
        schedule=schedule,
        start_date=on,
        **({"weeks": weeks} if weeks is not None else {"end_date": program.end_date}),
        reason=reason,
        previous_breakout=done.max().date() if len(done) else None,
    )
    return old, new


def check_side(side: str | None) -> None:
    """Refuse a ``side`` that is not one of :data:`SIDES` or None, with a :class:`ProgramError`.

    Examples
    --------
    >>> check_side("both")
    >>> check_side("L")
    Traceback (most recent call last):
    ...
    hipanalytics.errors.ProgramError: side must be one of left, right, both (or None when not known), got 'L'
    """
    if side is not None and side not in SIDES:
        raise ProgramError(f"side must be one of {', '.join(SIDES)} (or None when not known), got {side!r}")


def session_times(program: Program, side: str | None = None) -> pd.DataFrame:
    """Estimated time of each session template the program uses, from its doses.

    The estimate adds up the holds: lead-in holds once, then sets x reps x the holds of one
    repetition, times the circuit's rounds, and twice over for both hips (every dosed exercise
    works one hip). Setting up, changing sides of the room and moving between exercises come on
    top, and an exercise without a dose (the Hip Movement Sequence, whose contents the clinic
    sets) is listed as untimed rather than guessed.

    Parameters
    ----------
    program : Program
    side : {"left", "right", "both"} or None
        ``"both"`` doubles the holds; one hip or None (not known) counts one hip.

    Returns
    -------
    DataFrame
        One row per template: ``session``, ``session_title``, ``minutes_low``, ``minutes_high``
        (floats, hold time only), ``untimed`` (names of exercises without a dose, ``"; "``-joined).

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily",
    ...             start_date=date(2026, 1, 5), weeks=1)
    >>> t = session_times(p).set_index("session")
    >>> t.loc["breakouts", ["minutes_low", "minutes_high"]].tolist()  # 3 x (10 x 3-5 s + 3 x 30 s)
    [6.0, 7.0]
    >>> t.loc["breakouts", "untimed"]
    'Hip Movement Sequence'
    >>> float(session_times(p, side="both").set_index("session").loc["breakouts", "minutes_high"])
    14.0
    """
    check_side(side)
    hips = 2 if side == "both" else 1
    rows = []
    rx = prescription(program)
    for session_id, group in rx.groupby("session", sort=False):
        low = high = 0.0
        untimed = []
        for item in group.itertuples():
            dose = program.dose(item.exercise_id)
            if dose is None:
                untimed.append(item.exercise_name)
                continue
            lead_lo = sum(p.hold_s.low for p in dose.lead_in)
            lead_hi = sum(p.hold_s.high for p in dose.lead_in)
            rep_lo = sum(p.hold_s.low for p in dose.phases)
            rep_hi = sum(p.hold_s.high for p in dose.phases)
            reps_lo, reps_hi = (dose.reps.low, dose.reps.high) if dose.reps else (1, 1)
            low += hips * item.rounds * (lead_lo + dose.sets.low * reps_lo * rep_lo)
            high += hips * item.rounds * (lead_hi + dose.sets.high * reps_hi * rep_hi)
        rows.append({"session": session_id, "session_title": program.protocol.session(session_id).title,
                     "minutes_low": low / 60, "minutes_high": high / 60, "untimed": "; ".join(untimed)})
    return pd.DataFrame(rows, columns=["session", "session_title", "minutes_low", "minutes_high", "untimed"])


def program_record(program: Program) -> dict[str, Any]:
    """A program as one row of the store's ``programs`` table.

    Choices are written ``choice=exercise`` joined by ``"; "``, left-out exercises comma-separated
    and dose overrides as JSON (doses as text such as ``"3-4"``); empty fields are None.
    :func:`program_from_record` reads the row back into the same program.

    Examples
    --------
    >>> from datetime import date
    >>> p = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="wed, mon, fri",
    ...             start_date=date(2026, 1, 5), weeks=2, dose_overrides={"ninety-ninety-ir-stretch": {"sets": 4}})
    >>> row = program_record(p)
    >>> row["schedule"], row["dose_overrides"]
    ('custom:mon,wed,fri', '{"ninety-ninety-ir-stretch": {"sets": "4"}}')
    >>> program_from_record(row) == p.model_copy(update={"schedule": "custom:mon,wed,fri"})
    True
    """
    overrides = {
        exercise: {k: (str(v) if k != "hold_s" else {ph: str(r) for ph, r in v.items()})
                   for k, v in o.model_dump(exclude_none=True).items() if v not in ({}, None)}
        for exercise, o in sorted(program.dose_overrides.items())
    }
    return {
        "program_id": program.program_id,
        "patient_id": program.patient_id,
        "protocol_id": program.protocol.id,
        "protocol_version": program.protocol.version,
        "schedule": program.resolved_schedule.id,
        "start_date": program.start_date,
        "end_date": program.end_date,
        "breakout_slot": program.breakout_slot,
        "choices": "; ".join(f"{k}={v}" for k, v in sorted(program.choices.items())) or None,
        "dose_overrides": json.dumps(overrides) if overrides else None,
        "omit": ", ".join(program.omit) or None,
        "reason": program.reason or None,
    }


def program_from_record(row: Mapping[str, Any], *, protocol: Protocol | None = None) -> Program:
    """The :class:`Program` of a stored ``programs`` row (see :func:`program_record`).

    Raises
    ------
    ProgramError
        When a field cannot be read (the message names it) or the program is not valid for its
        protocol.
    """
    def text(name: str) -> str:
        value = row.get(name)
        return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()

    who = f"program {text('program_id')!r}"
    choices = {}
    for part in filter(None, (p.strip() for p in text("choices").split(";"))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ProgramError(f"{who}: choices must be written choice=exercise (e.g. "
                               f"ninety-ninety=ninety-ninety-ir-pails), got {part!r}")
        choices[key.strip()] = value.strip()
    overrides = {}
    if text("dose_overrides"):
        try:
            overrides = json.loads(text("dose_overrides"))
        except json.JSONDecodeError as exc:
            raise ProgramError(f"{who}: dose_overrides is not valid JSON ({exc.msg}); write e.g. "
                               '{"ninety-ninety-ir-stretch": {"sets": "4"}}') from None
        if not isinstance(overrides, dict):
            raise ProgramError(f"{who}: dose_overrides must be a JSON object keyed by exercise id")
    ref = {"protocol": protocol} if protocol is not None else {
        "protocol_id": text("protocol_id"), "protocol_version": text("protocol_version") or None}
    return Program(
        **ref,
        program_id=text("program_id"),
        patient_id=text("patient_id"),
        schedule=text("schedule"),
        start_date=_as_date(row.get("start_date"), "start_date"),
        end_date=_as_date(row.get("end_date"), "end_date"),
        breakout_slot=text("breakout_slot") or None,
        choices=choices,
        dose_overrides=overrides,
        omit=tuple(filter(None, (e.strip() for e in text("omit").split(",")))),
        reason=text("reason"),
    )
