"""Protocol definitions: exercises, doses, session templates and schedules.

A protocol is a versioned YAML file (format in ``docs/protocol-format.md``). Loading validates it
completely and reports every problem with the file, the key path and the line. Ranges such as a
1-2 s hold are :class:`Range` values, never strings.

Examples
--------
>>> p = load_protocol("hip-ir-breakouts")
>>> p.exercise("quadruped-band-ir").dose.reps
Range(low=10, high=10)
>>> [s.id for s in p.schedules]
['daily', 'three-per-week']
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
import typing
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import core_schema

from .config import protocol_dirs
from .errors import ProtocolError, ProtocolProblem

__all__ = [
    "WEEKDAYS",
    "Range",
    "Phase",
    "Dose",
    "Exercise",
    "ExerciseBlock",
    "ChoiceBlock",
    "Circuit",
    "CircuitBlock",
    "SessionTemplate",
    "Slot",
    "Schedule",
    "Protocol",
    "load_protocol",
    "list_protocols",
    "parse_weekdays",
    "schedule_problems",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Canonical weekday names, Monday first (ISO 8601 order: index 0 is ISO day 1)."""

_WEEKDAY_ALIASES = {
    **{d: d for d in WEEKDAYS},
    "monday": "mon",
    "tues": "tue",
    "tuesday": "tue",
    "wednesday": "wed",
    "thur": "thu",
    "thurs": "thu",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}


# ----------------------------------------------------------------------------------------------
# Value types
# ----------------------------------------------------------------------------------------------

_RANGE_TEXT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:(?:-|–|—|to)\s*(-?\d+(?:\.\d+)?)\s*)?$")


@dataclass(frozen=True, order=True)
class Range:
    """A closed numeric range such as the 1-2 s of a hold; a fixed value has ``low == high``.

    Parsed from a number (``10``), text (``"1-2"``, ``"1–2"``, ``"10 to 30"``), a two-item list
    (``[1, 2]``) or a mapping (``{low: 1, high: 2}``). A reversed range is refused rather than
    silently swapped.

    Examples
    --------
    >>> Range.parse("1-2")
    Range(low=1, high=2)
    >>> str(Range.parse(30))
    '30'
    >>> Range.parse("3-1")
    Traceback (most recent call last):
    ...
    ValueError: reversed range 3-1: put the lower value first (1-3)
    """

    low: float
    high: float

    @classmethod
    def parse(cls, value: Any) -> Range:
        """Build a Range from any accepted spelling; raise ValueError naming what was wrong."""
        if isinstance(value, Range):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a number or a range like 1-2, got {value!r}")
        if isinstance(value, (int, float)):
            low = high = value
        elif isinstance(value, str):
            match = _RANGE_TEXT.match(value)
            if not match:
                raise ValueError(f"expected a number or a range like 1-2, got {value!r}")
            low = _number(match.group(1))
            high = _number(match.group(2)) if match.group(2) is not None else low
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            low, high = (cls.parse(v).low for v in value)
        elif isinstance(value, dict) and set(value) == {"low", "high"}:
            low, high = cls.parse(value["low"]).low, cls.parse(value["high"]).low
        else:
            raise ValueError(f"expected a number or a range like 1-2, got {value!r}")
        if low > high:
            raise ValueError(
                f"reversed range {_fmt(low)}-{_fmt(high)}: put the lower value first "
                f"({_fmt(high)}-{_fmt(low)})"
            )
        return cls(low, high)

    @property
    def is_fixed(self) -> bool:
        """True when the range is a single value."""
        return self.low == self.high

    def __str__(self) -> str:
        return _fmt(self.low) if self.is_fixed else f"{_fmt(self.low)}-{_fmt(self.high)}"

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.high + other.high)

    def __mul__(self, other: Range) -> Range:
        return Range(self.low * other.low, self.high * other.high)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounded(what: str, maximum: float, *, whole: bool):
    """Validator: a whole-number count >= 1, or a positive duration, no larger than ``maximum``."""

    def check(r: Range) -> Range:
        for v in (r.low, r.high):
            if whole and not float(v).is_integer():
                raise ValueError(f"{what} must be a whole number, got {r}")
            if whole and v < 1:
                raise ValueError(f"{what} must be at least 1, got {r}")
            if not whole and v <= 0:
                raise ValueError(f"{what} must be longer than 0 seconds, got {r}")
            if v > maximum:
                raise ValueError(f"{what} must be at most {_fmt(maximum)}, got {r}")
        return Range(int(r.low), int(r.high)) if whole else r

    return AfterValidator(check)


# Upper limits are sanity checks, not clinical advice: they catch slips such as 300 for 30.
Seconds = Annotated[Range, _bounded("a hold", 600, whole=False)]
Count = Annotated[Range, _bounded("a count", 100, whole=True)]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _slug(value: Any) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise ValueError(
            f"expected an id of lower-case letters, digits, '-' or '_' (like 'ninety-ninety'), "
            f"got {value!r}"
        )
    return value


Slug = Annotated[str, BeforeValidator(_slug)]


def _weekday(value: Any) -> str:
    key = str(value).strip().lower().rstrip(".")
    if key in _WEEKDAY_ALIASES:
        return _WEEKDAY_ALIASES[key]
    hint = difflib.get_close_matches(key, list(_WEEKDAY_ALIASES), n=1, cutoff=0.6)
    guess = f" (did you mean '{_WEEKDAY_ALIASES[hint[0]]}'?)" if hint else ""
    raise ValueError(f"unknown weekday {value!r}: expected one of {', '.join(WEEKDAYS)}{guess}")


Weekday = Annotated[str, BeforeValidator(_weekday)]


def parse_weekdays(days: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse weekday names into canonical, Monday-first order.

    Parameters
    ----------
    days : str or sequence of str
        ``"mon,wed,fri"``, ``"Mon Wed Fri"`` or ``["monday", "wednesday"]``.

    Returns
    -------
    tuple of str
        Canonical names in week order, each once.

    Raises
    ------
    ValueError
        On an unknown name (with a suggestion) or a repeated day.

    Examples
    --------
    >>> parse_weekdays("Fri, mon , Wednesday")
    ('mon', 'wed', 'fri')
    """
    items = re.split(r"[,\s/]+", days.strip()) if isinstance(days, str) else list(days)
    parsed = [_weekday(d) for d in items if str(d).strip()]
    if not parsed:
        raise ValueError("expected at least one weekday, got none")
    repeated = sorted({d for d in parsed if parsed.count(d) > 1}, key=WEEKDAYS.index)
    if repeated:
        raise ValueError(f"weekday listed twice: {', '.join(repeated)}")
    return tuple(sorted(parsed, key=WEEKDAYS.index))


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.match(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$", value)
        if match:
            return time(int(match.group(1)), int(match.group(2)))
    hint = " (YAML reads an unquoted 18:00 as a number: quote it, '18:00')" if isinstance(
        value, int
    ) else ""
    raise ValueError(f"expected a time of day like '08:00', got {value!r}{hint}")


Clock = Annotated[time, BeforeValidator(_clock)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------------
# Exercises and doses
# ----------------------------------------------------------------------------------------------


class Phase(_Model):
    """One held position within a repetition, e.g. 'turn the foot in against the band, 1-2 s'."""

    id: Slug = Field(description="short id of the phase, used by dose overrides")
    action: str = Field(min_length=1, description="what the patient does, in plain words")
    hold_s: Seconds = Field(description="how long the position is held, seconds (e.g. 1-2)")


class Dose(_Model):
    """How much of an exercise: sets, repetitions, and the holds inside each repetition.

    ``lead_in`` phases happen once before the first set (e.g. the initial stretch of a
    contract-relax); ``phases`` happen in every repetition, or once per set when there are no
    repetitions.
    """

    sets: Count = Field(default=Range(1, 1), description="times the exercise is repeated in a row")
    reps: Count | None = Field(default=None, description="repetitions in each set")
    lead_in: tuple[Phase, ...] = Field(default=(), description="phases done once, before set 1")
    phases: tuple[Phase, ...] = Field(default=(), description="phases of every repetition")

    @model_validator(mode="after")
    def _has_content(self) -> Dose:
        if not self.phases and self.reps is None:
            raise ValueError("a dose needs 'reps' or at least one entry in 'phases'")
        ids = [p.id for p in (*self.lead_in, *self.phases)]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"phase id used twice: {', '.join(dup)}")
        return self

    def phase(self, phase_id: str) -> Phase:
        """The lead-in or repeated phase with this id."""
        for p in (*self.lead_in, *self.phases):
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)

    def describe(self) -> str:
        """The dose in a clinician's shorthand.

        Examples
        --------
        >>> load_protocol("hip-ir-breakouts").exercise("ninety-ninety-ir-pails").dose.describe()
        'initial stretch 10-30 s; then 3-4 repetitions of: contract 10 s, relax and deepen 10 s'
        """
        parts = []
        if self.lead_in:
            parts.append("; ".join(f"{p.id.replace('-', ' ')} {p.hold_s} s" for p in self.lead_in))
        holds = ", ".join(f"{p.id.replace('-', ' ')} {p.hold_s} s" for p in self.phases)
        if self.reps is not None:
            count = f"{self.reps} reps" if self.sets.high == 1 else f"{self.sets} x {self.reps} reps"
            parts.append(f"{count}" + (f" ({holds})" if holds else ""))
        elif self.lead_in:
            parts.append(f"then {self.sets} repetitions of: {holds}")  # "rounds" are the circuit's
        else:
            parts.append(f"{self.sets} x ({holds})")
        return "; ".join(parts)


ExerciseKind = Literal["mobilization", "static_stretch", "contract_relax", "movement_sequence"]


class Exercise(_Model):
    """An exercise with its dose and patient-facing instructions."""

    id: Slug = Field(description="unique id of the exercise within the protocol")
    name: str = Field(min_length=1, description="name shown to clinicians and patients")
    kind: ExerciseKind = Field(description="mobilization, static_stretch, contract_relax or movement_sequence")
    summary: str = Field(default="", description="one line on what the exercise is for")
    equipment: tuple[str, ...] = Field(default=(), description="what the patient needs")
    dose: Dose | None = Field(default=None, description="sets, reps and holds (none for a movement sequence)")
    steps: tuple[str, ...] = Field(default=(), description="numbered instructions in plain words")
    cues: tuple[str, ...] = Field(default=(), description="safety and technique reminders")

    @model_validator(mode="after")
    def _dose_matches_kind(self) -> Exercise:
        if self.kind != "movement_sequence" and self.dose is None:
            raise ValueError(f"a {self.kind} exercise needs a 'dose'")
        return self


# ----------------------------------------------------------------------------------------------
# Session templates
# ----------------------------------------------------------------------------------------------


class ExerciseBlock(_Model):
    """A single exercise in a session."""

    exercise: Slug = Field(description="id of an exercise defined in 'exercises'")


class ChoiceBlock(_Model):
    """One exercise out of several alternatives, chosen per program (default: ``default``)."""

    id: Slug = Field(description="id of the choice, used by programs to pick an option")
    one_of: tuple[Slug, ...] = Field(min_length=2, description="ids of the alternative exercises")
    default: Slug | None = Field(default=None, description="option used unless a program picks another")

    @model_validator(mode="after")
    def _default_is_an_option(self) -> ChoiceBlock:
        if self.default is not None and self.default not in self.one_of:
            raise ValueError(f"default {self.default!r} is not one of {list(self.one_of)}")
        return self

    @property
    def chosen_by_default(self) -> str:
        """The option used when a program makes no choice."""
        return self.default or self.one_of[0]


def _block_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {ExerciseBlock: "exercise", ChoiceBlock: "one_of", CircuitBlock: "circuit"}.get(
            type(value)
        )
    if isinstance(value, dict):
        for key in ("circuit", "one_of", "exercise"):
            if key in value:
                return key
    return None


_TAG_PREFIX = "block:"

CircuitItem = Annotated[
    Union[
        Annotated[ExerciseBlock, Tag(_TAG_PREFIX + "exercise")],
        Annotated[ChoiceBlock, Tag(_TAG_PREFIX + "one_of")],
    ],
    Discriminator(
        lambda v: _TAG_PREFIX + t if (t := _block_tag(v)) in ("exercise", "one_of") else None,
        custom_error_type="block_kind",
        custom_error_message="expected a mapping with 'exercise' or 'one_of'",
    ),
]


class Circuit(_Model):
    """Exercises done one after the other, the whole series repeated ``rounds`` times."""

    rounds: int = Field(ge=1, le=100, description="times the circuit is repeated, a whole number >= 1")
    items: tuple[CircuitItem, ...] = Field(min_length=1, description="exercises of one round, in order")


class CircuitBlock(_Model):
    """A circuit inside a session."""

    circuit: Circuit


Block = Annotated[
    Union[
        Annotated[ExerciseBlock, Tag(_TAG_PREFIX + "exercise")],
        Annotated[ChoiceBlock, Tag(_TAG_PREFIX + "one_of")],
        Annotated[CircuitBlock, Tag(_TAG_PREFIX + "circuit")],
    ],
    Discriminator(
        lambda v: _TAG_PREFIX + t if (t := _block_tag(v)) else None,
        custom_error_type="block_kind",
        custom_error_message="expected a mapping with 'exercise', 'one_of' or 'circuit'",
    ),
]


class SessionTemplate(_Model):
    """What one session consists of, e.g. the breakout circuit then the movement sequence."""

    id: Slug = Field(description="unique id of the session template")
    title: str = Field(min_length=1, description="name shown in plans, handouts and calendars")
    description: str = Field(default="", description="one line on the purpose of the session")
    blocks: tuple[Block, ...] = Field(min_length=1, description="circuits and exercises, in order")

    def exercise_ids(self) -> list[str]:
        """Every exercise id the template can use, alternatives included, in order."""
        ids: list[str] = []
        for block in self.blocks:
            items = block.circuit.items if isinstance(block, CircuitBlock) else (block,)
            for item in items:
                ids += [item.exercise] if isinstance(item, ExerciseBlock) else list(item.one_of)
        return ids

    def choices(self) -> list[ChoiceBlock]:
        """The template's ``one_of`` choices, in order."""
        found = []
        for block in self.blocks:
            items = block.circuit.items if isinstance(block, CircuitBlock) else (block,)
            found += [item for item in items if isinstance(item, ChoiceBlock)]
        return found


# ----------------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------------


class Slot(_Model):
    """One of the day's sessions, e.g. the morning Hip Movement Sequence."""

    id: Slug = Field(description="slot name, e.g. morning")
    time: Clock = Field(description="suggested start time for calendars, quoted, e.g. '08:00'")
    session: Slug = Field(description="session template done in this slot on ordinary days")


class Schedule(_Model):
    """A weekly pattern: the day's slots and the weekdays whose breakout slot has the breakouts."""

    id: str = Field(min_length=1, description="unique id, e.g. three-per-week")
    title: str = Field(min_length=1, description="name shown to clinicians")
    description: str = Field(default="", description="when to choose this schedule")
    slots: tuple[Slot, ...] = Field(min_length=1, description="the sessions of every day, in order")
    breakout_days: tuple[Weekday, ...] = Field(min_length=1, description="weekdays with breakouts")
    breakout_slot: Slug = Field(description="slot that becomes the breakout session on those days")
    breakout_session: Slug = Field(description="session template with the breakouts")
    recovery_day_between: bool = Field(
        default=False, description="true when breakout days need a rest day between them"
    )

    @property
    def days_label(self) -> str:
        """Breakout days as text, e.g. 'mon, wed, fri'."""
        return ", ".join(self.breakout_days)

    @property
    def consecutive_breakout_days(self) -> list[tuple[str, str]]:
        """Pairs of breakout days that follow each other, Sunday to Monday included (the week repeats).

        Examples
        --------
        >>> s = load_protocol("hip-ir-breakouts").custom_schedule("sun,mon,wed")
        >>> s.consecutive_breakout_days
        [('sun', 'mon')]
        """
        index = sorted({WEEKDAYS.index(d) for d in self.breakout_days})
        return [(WEEKDAYS[a], WEEKDAYS[(a + 1) % 7]) for a in index if (a + 1) % 7 in index and len(index) > 1]


def schedule_problems(schedule: Schedule) -> list[tuple[str, str]]:
    """Programming-rule problems of a schedule, as ``(key, message)`` pairs.

    Checks that breakout days are listed once and, for a schedule with ``recovery_day_between``,
    that no two breakout days follow each other (Sunday to Monday counts, as the week repeats).

    Examples
    --------
    >>> s = load_protocol("hip-ir-breakouts").schedule("three-per-week")
    >>> schedule_problems(s)
    []
    >>> schedule_problems(s.model_copy(update={"breakout_days": ("mon", "tue", "thu")}))
    [('breakout_days', 'breakout days mon and tue are consecutive, but this schedule needs a recovery day between breakout days; spread them out (e.g. mon, wed, fri)')]
    """
    problems = []
    days = list(schedule.breakout_days)
    repeated = sorted({d for d in days if days.count(d) > 1}, key=WEEKDAYS.index)
    if repeated:
        problems.append(("breakout_days", f"weekday listed twice: {', '.join(repeated)}"))
    if schedule.recovery_day_between:
        for a, b in schedule.consecutive_breakout_days:
            problems.append((
                "breakout_days",
                f"breakout days {a} and {b} are consecutive, but this schedule needs a recovery day "
                "between breakout days; spread them out (e.g. mon, wed, fri)",
            ))
    return problems


# ----------------------------------------------------------------------------------------------
# Protocol
# ----------------------------------------------------------------------------------------------

_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def _version(value: Any) -> str:
    if isinstance(value, float):
        raise ValueError(
            f"expected a version in quotes like '1.0.0', got the number {value!r} "
            "(YAML reads 1.0 as a number: write version: '1.0')"
        )
    if not isinstance(value, (str, int)) or not _VERSION.match(str(value)):
        raise ValueError(f"expected a version like '1.0.0', got {value!r}")
    return str(value)


class Target(_Model):
    """What the protocol aims to change."""

    joint: str = Field(min_length=1, description="joint, e.g. hip")
    motion: str = Field(min_length=1, description="motion, e.g. internal_rotation")


class Protocol(_Model):
    """A validated protocol: exercises, session templates and schedules.

    Cross-references (an exercise named in a session, a slot's session, the breakout slot) are
    checked when the protocol is built, together with the programming rules of each schedule.
    """

    format: Literal[1] = Field(default=1, description="protocol file format version (1)")
    id: Slug = Field(description="protocol id, e.g. hip-ir-breakouts")
    version: Annotated[str, BeforeValidator(_version)] = Field(
        description="version of this protocol definition, quoted, e.g. '1.0.0'"
    )
    title: str = Field(min_length=1, description="protocol name")
    description: str = Field(default="", description="what the protocol is for")
    source: str = Field(default="", description="where the clinical content comes from")
    target: Target = Field(description="joint and motion the protocol targets")
    exercises: tuple[Exercise, ...] = Field(min_length=1, description="the exercises")
    sessions: tuple[SessionTemplate, ...] = Field(min_length=1, description="session templates")
    schedules: tuple[Schedule, ...] = Field(min_length=1, description="weekly schedules")
    custom_schedule_base: str | None = Field(
        default=None, description="schedule whose slots custom weekday sets reuse (default: first)"
    )

    _source_file: Path | None = PrivateAttr(default=None)
    _fingerprint: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_references(self) -> Protocol:
        problems = _reference_problems(self)
        if problems:
            raise ProtocolError([ProtocolProblem(path=p, message=m) for p, m in problems])
        return self

    @property
    def key(self) -> str:
        """``id@version``, the reference a program stores."""
        return f"{self.id}@{self.version}"

    @property
    def source_file(self) -> Path | None:
        """The file the protocol was loaded from, if any."""
        return self._source_file

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the file's bytes, if loaded from a file (stamps reports and plans)."""
        return self._fingerprint

    def exercise(self, exercise_id: str) -> Exercise:
        """The exercise with this id."""
        return _by_id(self.exercises, exercise_id, "exercise", self.id)

    def session(self, session_id: str) -> SessionTemplate:
        """The session template with this id."""
        return _by_id(self.sessions, session_id, "session", self.id)

    def schedule(self, schedule_id: str) -> Schedule:
        """The schedule with this id."""
        return _by_id(self.schedules, schedule_id, "schedule", self.id)

    def choice(self, choice_id: str) -> ChoiceBlock:
        """The ``one_of`` choice with this id."""
        return _by_id(self.choices(), choice_id, "choice", self.id)

    def choices(self) -> list[ChoiceBlock]:
        """Every distinct ``one_of`` choice in the protocol's sessions."""
        seen: dict[str, ChoiceBlock] = {}
        for session in self.sessions:
            for choice in session.choices():
                seen.setdefault(choice.id, choice)
        return list(seen.values())

    def has_breakouts(self, session_id: str) -> bool:
        """True when the session template contains any exercise other than a movement sequence."""
        return any(
            self.exercise(e).kind != "movement_sequence"
            for e in self.session(session_id).exercise_ids()
        )

    def custom_schedule(
        self, days: str | list[str] | tuple[str, ...], *, recovery_day_between: bool | None = None
    ) -> Schedule:
        """A schedule with the base schedule's slots and the given breakout weekdays.

        Parameters
        ----------
        days : str or sequence of str
            Breakout weekdays, e.g. ``"mon,thu"``.
        recovery_day_between : bool, optional
            Whether breakout days need a recovery day between them; by default taken from the
            base schedule (``custom_schedule_base``, else the first schedule).

        Returns
        -------
        Schedule
            Its id is ``custom:`` followed by the days, e.g. ``custom:mon,thu``.

        Examples
        --------
        >>> load_protocol("hip-ir-breakouts").custom_schedule("thu, mon").id
        'custom:mon,thu'
        """
        base = self.schedule(self.custom_schedule_base or self.schedules[0].id)
        parsed = parse_weekdays(days)
        recovery = base.recovery_day_between if recovery_day_between is None else recovery_day_between
        return base.model_copy(update={
            "id": "custom:" + ",".join(parsed),
            "title": "Breakouts on " + ", ".join(d.capitalize() for d in parsed),
            "description": f"Custom weekday set based on '{base.id}'.",
            "breakout_days": parsed,
            "recovery_day_between": recovery,
        })

    def resolve_schedule(self, schedule: str | Schedule) -> Schedule:
        """A named schedule, a ``custom:...`` / bare weekday set, or a Schedule object, as a Schedule."""
        if isinstance(schedule, Schedule):
            return schedule
        ids = [s.id for s in self.schedules]
        if schedule in ids:
            return self.schedule(schedule)
        text = schedule.removeprefix("custom:")
        try:
            return self.custom_schedule(text)
        except ValueError:
            if schedule.startswith("custom:"):
                raise
        return self.schedule(schedule)  # raises a KeyError naming the known schedules


def _did_you_mean(value: Any, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest known spelling, or ``""``."""
    hint = difflib.get_close_matches(str(value), known, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _by_id(items, wanted: str, what: str, protocol_id: str):
    for item in items:
        if item.id == wanted:
            return item
    known = [i.id for i in items]
    raise KeyError(
        f"protocol {protocol_id!r} has no {what} {wanted!r} (known: {', '.join(known)})"
        + _did_you_mean(wanted, known)
    )


def _reference_problems(p: Protocol) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for field in ("exercises", "sessions", "schedules"):
        ids = [item.id for item in getattr(p, field)]
        for i, item_id in enumerate(ids):
            if item_id in ids[:i]:
                problems.append((f"{field}[{i}].id", f"id {item_id!r} is used twice in {field}"))
    exercise_ids = [e.id for e in p.exercises]
    session_ids = [s.id for s in p.sessions]

    def check_ref(path: str, what: str, value: str, known: list[str]) -> None:
        if value not in known:
            problems.append((
                path,
                f"unknown {what} {value!r}: expected one of {', '.join(known)}"
                + _did_you_mean(value, known),
            ))

    choice_defs: dict[str, tuple[str, ChoiceBlock]] = {}
    for s, session in enumerate(p.sessions):
        for b, block in enumerate(session.blocks):
            base = f"sessions[{s}].blocks[{b}]"
            if isinstance(block, CircuitBlock):
                entries = [(f"{base}.circuit.items[{i}]", it) for i, it in enumerate(block.circuit.items)]
            else:
                entries = [(base, block)]
            for path, item in entries:
                if isinstance(item, ExerciseBlock):
                    check_ref(f"{path}.exercise", "exercise", item.exercise, exercise_ids)
                    continue
                for k, option in enumerate(item.one_of):
                    check_ref(f"{path}.one_of[{k}]", "exercise", option, exercise_ids)
                earlier = choice_defs.setdefault(item.id, (path, item))
                if earlier[1] != item:
                    problems.append((
                        f"{path}.id",
                        f"choice id {item.id!r} is already used at {earlier[0]} with other options; "
                        "give this choice its own id",
                    ))

    schedule_ids = [sc.id for sc in p.schedules]
    for k, sched in enumerate(p.schedules):
        base = f"schedules[{k}]"
        slot_ids = [sl.id for sl in sched.slots]
        for j, slot in enumerate(sched.slots):
            if slot.id in slot_ids[:j]:
                problems.append((f"{base}.slots[{j}].id", f"slot {slot.id!r} is listed twice"))
            check_ref(f"{base}.slots[{j}].session", "session", slot.session, session_ids)
        check_ref(f"{base}.breakout_slot", "slot", sched.breakout_slot, slot_ids)
        check_ref(f"{base}.breakout_session", "session", sched.breakout_session, session_ids)
        problems += [(f"{base}.{key}", message + (" or set recovery_day_between: false" if "consecutive" in message
                                                  else "")) for key, message in schedule_problems(sched)]
    if p.custom_schedule_base is not None:
        check_ref("custom_schedule_base", "schedule", p.custom_schedule_base, schedule_ids)
    if not problems:  # breakout checks need valid references
        for k, sched in enumerate(p.schedules):
            if not p.has_breakouts(sched.breakout_session):
                problems.append((
                    f"schedules[{k}].breakout_session",
                    f"session {sched.breakout_session!r} has no breakout exercise "
                    "(only movement sequences); name the session that holds the breakouts",
                ))
    return problems


# ----------------------------------------------------------------------------------------------
# Loading: YAML with line numbers, then validation
# ----------------------------------------------------------------------------------------------


def _load_yaml_with_lines(text: str, file: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML into plain data plus a map from key path to 1-based line."""
    loader = yaml.SafeLoader(text)
    lines: dict[tuple, int] = {}
    problems: list[ProtocolProblem] = []
    try:
        node = loader.get_single_node()

        def build(node: yaml.Node, path: tuple) -> Any:
            lines.setdefault(path, node.start_mark.line + 1)
            if isinstance(node, yaml.MappingNode):
                loader.flatten_mapping(node)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = loader.construct_object(key_node, deep=True)
                    if key in out:
                        problems.append(ProtocolProblem(
                            _path_text(path + (key,)),
                            f"key {key!r} appears twice in the same mapping; keep one",
                            key_node.start_mark.line + 1,
                        ))
                    lines[path + (key,)] = key_node.start_mark.line + 1
                    out[key] = build(value_node, path + (key,))
                return out
            if isinstance(node, yaml.SequenceNode):
                return [build(item, path + (i,)) for i, item in enumerate(node.value)]
            return loader.construct_object(node, deep=True)

        data = build(node, ()) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise ProtocolError(
            [ProtocolProblem("", f"not valid YAML: {what}; check indentation and quoting", line)],
            file=file,
        ) from None
    finally:
        loader.dispose()
    if problems:
        raise ProtocolError(problems, file=file)
    return data, lines


def _path_text(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


_TAGGED = {"exercise": ExerciseBlock, "one_of": ChoiceBlock, "circuit": CircuitBlock}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _walk(loc: tuple) -> tuple[type[BaseModel] | None, Any]:
    """The model that holds the last key of a pydantic error location, and that key's FieldInfo."""
    model: type[BaseModel] | None = Protocol
    parent, info = None, None
    for part in loc:
        if isinstance(part, str) and part.startswith(_TAG_PREFIX):
            model = _TAGGED[part.removeprefix(_TAG_PREFIX)]
        elif isinstance(part, str):
            parent = model
            info = model.model_fields.get(part) if model else None
            found = _models_in(info.annotation) if info else []
            model = found[0] if len(found) == 1 else None
    return parent, info


def _problem_from_pydantic(error: dict, lines: dict[tuple, int]) -> ProtocolProblem:
    raw_loc = tuple(error["loc"])
    loc = tuple(p for p in raw_loc if not (isinstance(p, str) and p.startswith(_TAG_PREFIX)))
    parent, info = _walk(raw_loc)
    what = f" ({info.description})" if info is not None and info.description else ""
    kind = error["type"]
    if kind == "missing":
        message = f"missing required key '{loc[-1]}'{what}"
    elif kind == "extra_forbidden":
        known = list(parent.model_fields) if parent else []
        message = f"unknown key '{loc[-1]}' (allowed here: {', '.join(known)})" + _did_you_mean(
            loc[-1], known
        )
    elif kind == "value_error":
        message = str(error["ctx"]["error"])
    else:
        received = repr(error.get("input"))
        received = received if len(received) <= 80 else received[:77] + "..."
        expected = error["msg"][0].lower() + error["msg"][1:]
        message = f"{expected}{what}; got {received}"
    return ProtocolProblem(_path_text(loc), message, _line_for(loc, lines))


def _parse_protocol(text: str, file: str) -> Protocol:
    data, lines = _load_yaml_with_lines(text, file)
    if not isinstance(data, dict):
        raise ProtocolError(
            [ProtocolProblem("", f"expected a mapping of protocol keys (id, version, ...), got {type(data).__name__}", 1)],
            file=file,
        )
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        failing = [e["loc"] for e in errors if e["type"] != "too_short"]
        errors = [  # a tuple whose items failed is also reported 'too short': keep the cause only
            e for e in errors
            if not (e["type"] == "too_short" and any(f[: len(e["loc"])] == e["loc"] for f in failing))
        ]
        problems = [_problem_from_pydantic(e, lines) for e in errors]
        raise ProtocolError(problems, file=file) from None
    except ProtocolError as exc:
        located = [
            ProtocolProblem(p.path, p.message, _line_for(_loc_from_text(p.path), lines))
            for p in exc.problems
        ]
        raise ProtocolError(located, file=file) from None
    return protocol


def _loc_from_text(path: str) -> tuple:
    loc: list[Any] = []
    for name, index in re.findall(r"([A-Za-z_][\w-]*)|\[(\d+)\]", path):
        loc.append(name if name else int(index))
    return tuple(loc)


@functools.lru_cache(maxsize=64)
def _load_file(path: Path, mtime_ns: int, size: int) -> Protocol:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"file is not UTF-8 text (byte {exc.start}); save it as UTF-8", file=path
        ) from None
    protocol = _parse_protocol(text, str(path))
    protocol._source_file = path
    protocol._fingerprint = hashlib.sha256(raw).hexdigest()
    return protocol


def _read(path: Path) -> Protocol:
    stat = path.stat()
    return _load_file(path.resolve(), stat.st_mtime_ns, stat.st_size)


def _protocol_files(dirs: list[Path]) -> list[Path]:
    files = []
    for d in dirs:
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return files


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def list_protocols(dirs: list[str | Path] | None = None) -> pd.DataFrame:
    """Every protocol file found on the search path, valid or not.

    Parameters
    ----------
    dirs : list of str or Path, optional
        Extra folders to search before ``$HIPANALYTICS_PROTOCOLS`` and the shipped protocols.

    Returns
    -------
    DataFrame
        One row per file: ``id``, ``version``, ``title``, ``path``, ``problem`` (empty when
        the file is valid; otherwise why it cannot be used, and ``id`` is missing).

    Examples
    --------
    >>> list_protocols()[["id", "version"]].to_dict("records")
    [{'id': 'hip-ir-breakouts', 'version': '1.0.0'}]
    """
    rows = []
    for path in _protocol_files(protocol_dirs(dirs)):
        try:
            p = _read(path)
            rows.append({"id": p.id, "version": p.version, "title": p.title, "path": str(path), "problem": ""})
        except ProtocolError as exc:
            rows.append({"id": None, "version": None, "title": None, "path": str(path), "problem": str(exc)})
    return pd.DataFrame(rows, columns=["id", "version", "title", "path", "problem"])


def load_protocol(ref: str | Path, *, dirs: list[str | Path] | None = None) -> Protocol:
    """Load and validate a protocol by file path, by id, or by ``id@version``.

    Parameters
    ----------
    ref : str or Path
        A path to a ``.yaml`` file, a protocol id (newest version found), or ``id@version``.
    dirs : list of str or Path, optional
        Extra folders to search (see :func:`list_protocols`).

    Returns
    -------
    Protocol

    Raises
    ------
    ProtocolError
        When the file is invalid (every problem with file, key path and line), when no
        protocol matches, or when two different files claim the same ``id@version``.

    Examples
    --------
    >>> load_protocol("hip-ir-breakouts@1.0.0").title
    'Hip Internal Rotation Mobility Breakouts'
    """
    text = str(ref)
    path = Path(ref)
    if isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        if not path.is_file():
            raise ProtocolError(f"protocol file not found: {path}", file=None)
        return _read(path)
    wanted_id, _, wanted_version = text.partition("@")
    found: list[Protocol] = []
    invalid: list[str] = []
    for file in _protocol_files(protocol_dirs(dirs)):
        try:
            p = _read(file)
        except ProtocolError as exc:
            invalid.append(str(exc))
            continue
        if p.id == wanted_id and (not wanted_version or p.version == wanted_version):
            found.append(p)
    if not found:
        known = sorted({f"{p.id}@{p.version}" for p in _valid_protocols(dirs)})
        message = f"no protocol {text!r} found (known: {', '.join(known) or 'none'})"
        if invalid:
            message += f"; {len(invalid)} protocol file(s) could not be read:\n" + "\n".join(invalid)
        raise ProtocolError(message)
    newest = max(_version_key(p.version) for p in found)
    candidates = [p for p in found if _version_key(p.version) == newest]
    if len({p.fingerprint for p in candidates}) > 1:
        files = ", ".join(str(p.source_file) for p in candidates)
        raise ProtocolError(
            f"{candidates[0].key} is defined by different files ({files}); "
            "give one of them a new version number"
        )
    return candidates[0]


def _valid_protocols(dirs):
    for file in _protocol_files(protocol_dirs(dirs)):
        try:
            yield _read(file)
        except ProtocolError:
            continue
