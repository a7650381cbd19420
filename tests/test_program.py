"""Programs, plans, schedule switches and breakout frequency."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import pandas as pd
import pytest

from hipanalytics.errors import ProgramError, ScheduleWarning
from hipanalytics.program import (
    PLAN_COLUMNS,
    DoseOverride,
    Program,
    breakouts_per_week,
    plan,
    plan_table,
    prescription,
    program_record,
    switch_schedule,
)
from hipanalytics.protocol import Range

from .conftest import MONDAY


def make(schedule="three-per-week", start=MONDAY, **kwargs) -> Program:
    kwargs.setdefault("weeks", 4)
    return Program(patient_id="P001", protocol="hip-ir-breakouts", schedule=schedule,
                   start_date=start, **kwargs)


def test_daily_plan_over_four_weeks_has_56_sessions_and_28_breakouts():
    df = plan(make("daily"))
    assert len(df) == 56 and int(df["breakouts"].sum()) == 28
    per_day = df.groupby("date")["breakouts"].agg(["size", "sum"])
    assert (per_day["size"] == 2).all() and (per_day["sum"] == 1).all()
    assert df.loc[df["breakouts"], "session"].eq("breakouts").all()
    assert df.loc[~df["breakouts"], "session"].eq("sequence").all()


@pytest.mark.parametrize("start_offset", range(7))
def test_three_per_week_plan_has_56_sessions_12_breakouts_and_never_two_breakout_days_in_a_row(start_offset):
    df = plan(make(start=MONDAY + timedelta(days=start_offset)))
    assert len(df) == 56 and int(df["breakouts"].sum()) == 12
    days = sorted(df.loc[df["breakouts"], "date"].dt.date)
    gaps = [(b - a).days for a, b in zip(days, days[1:])]
    assert min(gaps) >= 2
    assert set(df.loc[df["breakouts"], "weekday"]) == {"mon", "wed", "fri"}


def test_plan_rows_are_dated_slotted_and_carry_the_doses():
    df = plan(make())
    assert list(df.columns) == PLAN_COLUMNS
    first = df.iloc[0]
    assert first["date"] == pd.Timestamp("2026-01-05") and first["weekday"] == "mon"
    assert (first["slot"], first["slot_time"], first["session"]) == ("morning", "08:00", "breakouts")
    assert first["doses"].startswith("3 rounds of [Band-assisted quadruped hip internal rotation "
                                      "(10 reps (inward 1-2 s, outward 2-3 s)) + 90/90 hip internal "
                                      "rotation stretch (3 x (stretch 30 s))]")
    assert first["doses"].endswith("; then Hip Movement Sequence")
    assert df["week"].tolist() == [w for w in (1, 2, 3, 4) for _ in range(14)]
    assert df["date"].dtype == "datetime64[s]"
    assert df.iloc[-1]["date"] == pd.Timestamp("2026-02-01")


def test_program_weeks_and_end_date_agree():
    p = make(weeks=6)
    assert p.end_date == date(2026, 2, 15) and p.weeks == 6
    assert make(weeks=None, end_date=date(2026, 2, 15)) == p
    assert make(weeks=6, end_date=date(2026, 2, 15)) == p


def test_program_round_trips_through_its_stored_form():
    p = make(choices={"ninety-ninety": "ninety-ninety-ir-pails"},
             dose_overrides={"ninety-ninety-ir-pails": {"sets": 2}})
    stored = p.model_dump(mode="json")
    assert stored["protocol_id"] == "hip-ir-breakouts" and stored["protocol_version"] == "1.0.0"
    assert "protocol" not in stored
    assert Program(**stored) == p


def test_program_id_defaults_to_patient_start_and_schedule():
    assert make().program_id == "P001-20260105-three-per-week"
    assert make("thu,mon").program_id == "P001-20260105-custom-mon-thu"
    assert make(program_id="RX-9").program_id == "RX-9"


def test_custom_weekday_set_reuses_the_base_schedule():
    df = plan(make("Tue, Fri"))
    assert df["schedule"].iloc[0] == "custom:tue,fri"
    assert set(df.loc[df["breakouts"], "weekday"]) == {"tue", "fri"}
    assert len(df) == 56 and int(df["breakouts"].sum()) == 8


def test_custom_consecutive_breakout_days_warn_that_a_recovery_day_is_missing():
    with pytest.warns(ScheduleWarning, match="breakout days mon and tue are consecutive"):
        make("mon,tue,thu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make("mon,wed,fri")
        make("mon,tue,thu", reason="works away Wednesdays")  # the reason records the clinician's choice


def test_breakout_slot_can_be_moved_to_the_evening():
    df = plan(make(breakout_slot="evening"))
    assert set(df.loc[df["breakouts"], "slot"]) == {"evening"}
    with pytest.raises(ProgramError, match="breakout_slot 'noon' is not a slot of schedule 'three-per-week' "
                                           r"\(slots: morning, evening\)"):
        make(breakout_slot="noon")


def test_start_after_end_is_refused():
    with pytest.raises(ProgramError, match="start date 2026-01-05 is after end date 2026-01-01; swap them"):
        make(weeks=None, end_date=date(2026, 1, 1))


def test_unknown_protocol_is_refused():
    with pytest.raises(ProgramError, match=r"refers to protocol 'hip-er', which cannot be loaded: .*no protocol 'hip-er' found"):
        Program(patient_id="P001", protocol="hip-er", schedule="daily", start_date=MONDAY, weeks=4)


def test_unknown_stored_protocol_version_is_refused():
    with pytest.raises(ProgramError, match="refers to protocol 'hip-ir-breakouts@0.9.0'"):
        Program(patient_id="P001", protocol_id="hip-ir-breakouts", protocol_version="0.9.0",
                schedule="daily", start_date=MONDAY, weeks=4)


def test_unknown_schedule_is_refused_with_a_suggestion():
    with pytest.raises(ProgramError, match=r"unknown schedule 'dialy': .*known: daily, three-per-week\); did you mean 'daily'\?"):
        make("dialy")
    with pytest.raises(ProgramError, match=r"unknown schedule 'custom:mon,wensday'.*did you mean 'wed'"):
        make("custom:mon,wensday")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weeks": 0}, "weeks must be a whole number of at least 1, got 0"),
    ({"weeks": None}, "a program needs an end: give weeks= or end_date="),
    ({"weeks": 2, "end_date": date(2026, 3, 1)}, "weeks=2 from 2026-01-05 ends on 2026-01-18, but end_date=2026-03-01"),
    ({"patient_id": " "}, "patient_id"),
    ({"start": "5/1/2026"}, r"start_date must be a date like 2026-01-05, got '5/1/2026'"),
    ({"choices": {"ninety-ninety": "quadruped-band-ir"}}, "choice 'ninety-ninety' must be one of ninety-ninety-ir-stretch, ninety-ninety-ir-pails"),
    ({"choices": {"stretch": "x"}}, r"unknown choice 'stretch' \(protocol choices: ninety-ninety\)"),
    ({"dose_overrides": {"nope": {"sets": 2}}}, "dose override for protocol 'hip-ir-breakouts' has no exercise 'nope'"),
    ({"dose_overrides": {"ninety-ninety-ir-stretch": {"reps": 5}}}, "is dosed by holds, not reps"),
    ({"dose_overrides": {"ninety-ninety-ir-stretch": {"hold_s": {"hold": 45}}}}, r"has no phase 'hold' \(phases: stretch\)"),
    ({"dose_overrides": {"ninety-ninety-ir-stretch": {"hold_s": {"stretch": "40-20"}}}}, "reversed range 40-20"),
    ({"dose_overrides": {"hip-movement-sequence": {"sets": 2}}}, "Hip Movement Sequence has no dose to override"),
])
def test_invalid_programs_are_refused_with_a_clear_message(kwargs, message):
    args = {"patient_id": "P001", "protocol": "hip-ir-breakouts", "schedule": "daily",
            "start_date": MONDAY, "weeks": 4}
    if "start" in kwargs:
        args["start_date"] = kwargs.pop("start")
    args.update(kwargs)
    if args["weeks"] is None:
        del args["weeks"]
    with pytest.raises(ProgramError, match=message):
        Program(**args)


def test_dose_overrides_and_choices_change_the_prescription_not_the_protocol(protocol):
    p = make(choices={"ninety-ninety": "ninety-ninety-ir-pails"},
             dose_overrides={"ninety-ninety-ir-pails": DoseOverride(sets=2, hold_s={"initial-stretch": 45})})
    dose = p.dose("ninety-ninety-ir-pails")
    assert dose.sets == Range(2, 2) and dose.phase("initial-stretch").hold_s == Range(45, 45)
    assert protocol.exercise("ninety-ninety-ir-pails").dose.sets == Range(3, 4)
    rx = prescription(p, "breakouts")
    assert rx["exercise_id"].tolist() == ["quadruped-band-ir", "ninety-ninety-ir-pails", "hip-movement-sequence"]
    assert rx["alternative_to"].tolist() == ["", "ninety-ninety", ""]
    assert rx.loc[1, "dose"] == "initial stretch 45 s; then 2 repetitions of: contract 10 s, relax and deepen 10 s"
    assert "ninety-ninety-ir-pails" not in prescription(make())["exercise_id"].tolist()


def test_switching_schedule_mid_course_keeps_the_old_program_and_one_week_count():
    daily = make("daily", weeks=4)
    old, new = switch_schedule(daily, "three-per-week", on=date(2026, 1, 19), reason="pain after daily breakouts")
    assert (old.end_date, old.schedule) == (date(2026, 1, 18), "daily")
    assert (new.start_date, new.end_date, new.schedule) == (date(2026, 1, 19), date(2026, 2, 1), "three-per-week")
    assert new.reason == "pain after daily breakouts" and new.program_id != old.program_id
    df = plan([old, new])
    assert len(df) == 56 and int(df["breakouts"].sum()) == 14 + 5  # Mon 19 follows Sun 18's breakout: recovery
    weekly = breakouts_per_week(df)
    assert weekly["breakouts"].tolist() == [7, 7, 2, 3]
    assert weekly["schedule"].tolist() == ["daily", "daily", "three-per-week", "three-per-week"]


def _breakout_days(*programs) -> list[date]:
    df = plan(list(programs))
    return [d.date() for d in df.loc[df["breakouts"], "date"]]


@pytest.mark.parametrize("weekday", range(7), ids=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
def test_a_switch_from_daily_to_three_per_week_keeps_a_recovery_day_on_every_weekday(weekday):
    daily = make("daily", weeks=4)
    on = date(2026, 1, 19) + timedelta(days=weekday)  # Mon 19 .. Sun 25 Jan
    old, new = switch_schedule(daily, "three-per-week", on=on, reason="pain")
    days = _breakout_days(old, new)
    last_daily = on - timedelta(days=1)
    assert max(d for d in days if d < on) == last_daily  # daily breakouts up to the day before the switch
    first_three = min(d for d in days if d >= on)
    assert (first_three - last_daily).days >= 2, (on, first_three)
    assert first_three.strftime("%a") in ("Mon", "Wed", "Fri")
    gaps = [(b - a).days for a, b in zip(days, days[1:]) if a >= last_daily]
    assert min(gaps) >= 2  # from the last daily breakout on, never two breakout days in a row
    assert _breakout_days(new) == [d for d in days if d >= on]  # the new program's own handout agrees
    table = plan_table(pd.DataFrame([program_record(old), program_record(new)]))  # and the stored programs
    assert [d.date() for d in table.loc[table["breakouts"], "date"]] == days


@pytest.mark.parametrize("weekday", range(7), ids=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
def test_a_switch_from_three_per_week_to_daily_starts_daily_breakouts_on_the_switch_day(weekday):
    three = make("three-per-week", weeks=4)
    on = date(2026, 1, 19) + timedelta(days=weekday)
    old, new = switch_schedule(three, "daily", on=on, reason="tolerating well")
    days = _breakout_days(old, new)
    assert [d for d in days if d >= on] == [on + timedelta(days=i) for i in range((new.end_date - on).days + 1)]
    assert [d for d in days if d < on] == [d.date() for d in pd.date_range(three.start_date, on - timedelta(days=1))
                                           if d.strftime("%a") in ("Mon", "Wed", "Fri")]


def test_a_new_program_after_a_gap_needs_no_recovery_adjustment():
    first = make("daily", weeks=1)  # 5-11 Jan
    second = make("three-per-week", start=date(2026, 1, 19), weeks=1)  # a week later
    assert _breakout_days(first, second)[-3:] == [date(2026, 1, 19), date(2026, 1, 21), date(2026, 1, 23)]


def test_switching_needs_a_date_inside_the_program_and_a_reason():
    daily = make("daily")
    with pytest.raises(ProgramError, match="switch date 2026-01-05 must fall after the start"):
        switch_schedule(daily, "three-per-week", on=MONDAY, reason="x")
    with pytest.raises(ProgramError, match="a schedule change needs a reason"):
        switch_schedule(daily, "three-per-week", on=MONDAY + timedelta(days=3), reason=" ")


def test_overlapping_programs_of_one_patient_are_refused():
    with pytest.raises(ProgramError, match="overlap; end the first the day before the second starts"):
        plan([make("daily"), make("three-per-week", start=MONDAY + timedelta(days=7))])


def test_breakouts_per_week_marks_a_short_last_week():
    p = make(weeks=None, end_date=MONDAY + timedelta(days=9))
    weekly = breakouts_per_week(plan(p))
    assert weekly[["week", "days", "sessions", "breakouts"]].values.tolist() == [[1, 7, 14, 3], [2, 3, 6, 2]]
    assert weekly["week_start"].tolist() == [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-12")]
    assert weekly["week_end"].iloc[0] == pd.Timestamp("2026-01-11")


def test_breakouts_per_week_counts_each_patient_separately():
    a = make("daily", weeks=2)
    b = Program(patient_id="P002", protocol="hip-ir-breakouts", schedule="three-per-week",
                start_date=MONDAY + timedelta(days=2), weeks=2)
    weekly = breakouts_per_week(plan([a, b]))
    assert weekly[["patient_id", "week", "breakouts"]].values.tolist() == [
        ["P001", 1, 7], ["P001", 2, 7], ["P002", 1, 3], ["P002", 2, 3]]


def test_breakouts_per_week_does_not_modify_its_input():
    df = plan(make())
    before = df.copy()
    breakouts_per_week(df)
    pd.testing.assert_frame_equal(df, before)


def test_empty_plans_keep_their_columns():
    empty = plan([])
    assert list(empty.columns) == PLAN_COLUMNS and empty.empty
    weekly = breakouts_per_week(empty)
    assert weekly.empty and "breakouts" in weekly.columns


def test_an_omitted_exercise_leaves_the_prescription_but_the_movement_sequence_cannot():
    from hipanalytics.program import prescription

    rx = prescription(make(omit=("quadruped-band-ir",)), "breakouts")
    assert rx["exercise_id"].tolist() == ["ninety-ninety-ir-stretch", "hip-movement-sequence"]
    with pytest.raises(ProgramError, match="Hip Movement Sequence cannot be left out"):
        make(omit=("hip-movement-sequence",))
    with pytest.raises(ProgramError, match="every breakout exercise .* is left out; keep at least one"):
        make(omit=("quadruped-band-ir", "ninety-ninety-ir-stretch"))
    with pytest.raises(ProgramError, match="unknown exercise 'band'"):
        make(omit=("band",))


def test_session_times_add_up_the_holds_of_the_chosen_exercises_and_overrides():
    from hipanalytics.program import session_times

    # PAILs: lead-in 10-30 s, then 3-4 x (10 s + 10 s) = 70-110 s; band: 10 x (1-2 + 2-3) = 30-50 s;
    # 3 rounds of both: 300-480 s
    pails = make(choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    row = session_times(pails).set_index("session").loc["breakouts"]
    assert (row["minutes_low"], row["minutes_high"]) == (5.0, 8.0)
    longer = make(dose_overrides={"ninety-ninety-ir-stretch": {"hold_s": {"stretch": 60}}})
    row = session_times(longer).set_index("session").loc["breakouts"]  # 3 x (30-50 + 3 x 60) s
    assert (row["minutes_low"], row["minutes_high"]) == (10.5, 11.5)
    sequence = session_times(longer).set_index("session").loc["sequence"]
    assert (sequence["minutes_low"], sequence["untimed"]) == (0.0, "Hip Movement Sequence")


def test_session_times_for_both_hips_double_the_holds_but_not_the_untimed_sequence():
    from hipanalytics.program import session_times

    pails = make(choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    both = session_times(pails, side="both").set_index("session")
    assert both.loc["breakouts", ["minutes_low", "minutes_high"]].tolist() == [10.0, 16.0]
    assert both.loc["sequence", "minutes_high"] == 0.0
    assert session_times(pails, side="left").equals(session_times(pails))
    with pytest.raises(ProgramError, match="side must be one of left, right, both"):
        session_times(pails, side="bilateral")


def test_plan_table_moves_breakouts_to_the_stored_breakout_slot_as_plan_does():
    from hipanalytics.program import plan_table, program_record

    program = make(breakout_slot="evening")
    table = plan_table(pd.DataFrame([program_record(program)]))
    expected = plan(program)
    assert table.loc[table["breakouts"], "slot"].eq("evening").all()
    assert table[["date", "slot", "breakouts"]].equals(expected[["date", "slot", "breakouts"]])


def test_program_records_with_unreadable_fields_name_the_field():
    from hipanalytics.program import program_from_record, program_record

    row = program_record(make())
    with pytest.raises(ProgramError, match="choices must be written choice=exercise"):
        program_from_record(row | {"choices": "pails"})
    with pytest.raises(ProgramError, match="dose_overrides is not valid JSON"):
        program_from_record(row | {"dose_overrides": "{sets: 4"})
    with pytest.raises(ProgramError, match="choice 'ninety-ninety' must be one of"):
        program_from_record(row | {"choices": "ninety-ninety=pigeon"})
