"""The shipped protocol against the clinical source, the file format, and every bad-input case."""

from __future__ import annotations

import shutil

import pytest

from hipanalytics.errors import ProtocolError
from hipanalytics.protocol import (
    CircuitBlock,
    ChoiceBlock,
    ExerciseBlock,
    Range,
    list_protocols,
    load_protocol,
    parse_weekdays,
)

from .conftest import SHIPPED_FILE, line_of


# --- the shipped protocol encodes the source exactly ------------------------------------------


def test_quadruped_mobilization_is_10_reps_holding_in_1_to_2_s_and_out_2_to_3_s(protocol):
    ex = protocol.exercise("quadruped-band-ir")
    assert ex.kind == "mobilization"
    assert "resistance band" in ex.equipment
    assert ex.dose.reps == Range(10, 10) and ex.dose.sets == Range(1, 1)
    assert [(p.id, p.hold_s) for p in ex.dose.phases] == [
        ("inward", Range(1, 2)),
        ("outward", Range(2, 3)),
    ]
    assert ex.dose.lead_in == ()


def test_ninety_ninety_stretch_is_three_holds_of_30_s(protocol):
    ex = protocol.exercise("ninety-ninety-ir-stretch")
    assert ex.kind == "static_stretch"
    assert ex.dose.sets == Range(3, 3) and ex.dose.reps is None
    assert [(p.id, p.hold_s) for p in ex.dose.phases] == [("stretch", Range(30, 30))]


def test_pails_is_initial_stretch_then_3_to_4_rounds_of_10_s_contract_and_10_s_relax(protocol):
    ex = protocol.exercise("ninety-ninety-ir-pails")
    assert ex.kind == "contract_relax"
    assert [(p.id, p.hold_s) for p in ex.dose.lead_in] == [("initial-stretch", Range(10, 30))]
    assert [(p.id, p.hold_s) for p in ex.dose.phases] == [
        ("contract", Range(10, 10)),
        ("relax-and-deepen", Range(10, 10)),
    ]
    assert ex.dose.sets == Range(3, 4)


def test_breakout_session_is_a_three_round_circuit_then_the_movement_sequence(protocol):
    session = protocol.session("breakouts")
    circuit, after = session.blocks
    assert isinstance(circuit, CircuitBlock) and circuit.circuit.rounds == 3
    first, second = circuit.circuit.items
    assert isinstance(first, ExerciseBlock) and first.exercise == "quadruped-band-ir"
    assert isinstance(second, ChoiceBlock)
    assert second.one_of == ("ninety-ninety-ir-stretch", "ninety-ninety-ir-pails")
    assert isinstance(after, ExerciseBlock) and after.exercise == "hip-movement-sequence"
    assert protocol.exercise("hip-movement-sequence").kind == "movement_sequence"
    assert protocol.has_breakouts("breakouts") and not protocol.has_breakouts("sequence")


def test_daily_schedule_is_sequence_twice_a_day_with_breakouts_in_one_session_every_day(protocol):
    s = protocol.schedule("daily")
    assert [slot.session for slot in s.slots] == ["sequence", "sequence"]
    assert s.breakout_days == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert s.breakout_slot in [slot.id for slot in s.slots]
    assert s.breakout_session == "breakouts"
    assert not s.recovery_day_between


def test_three_per_week_schedule_has_recovery_days_and_defaults_to_mon_wed_fri(protocol):
    s = protocol.schedule("three-per-week")
    assert [slot.session for slot in s.slots] == ["sequence", "sequence"]
    assert s.breakout_days == ("mon", "wed", "fri")
    assert s.recovery_day_between
    assert s.breakout_session == "breakouts"


def test_every_exercise_has_patient_instructions(protocol):
    for ex in protocol.exercises:
        assert ex.steps, ex.id
        assert ex.name and ex.summary


# --- values and lookups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-2", Range(1, 2)), ("10–30", Range(10, 30)), ("10 to 30", Range(10, 30)), (30, Range(30, 30)),
     ([2, 3], Range(2, 3)), ({"low": 1, "high": 2}, Range(1, 2)), ("2.5", Range(2.5, 2.5))],
)
def test_range_parses_the_usual_spellings(text, expected):
    assert Range.parse(text) == expected


@pytest.mark.parametrize("bad", ["1-", "ten", True, [1, 2, 3], None])
def test_range_refuses_what_is_not_a_range(bad):
    with pytest.raises(ValueError, match="expected a number or a range like 1-2"):
        Range.parse(bad)


def test_weekdays_parse_in_week_order_and_suggest_a_fix_for_typos():
    assert parse_weekdays(["Friday", "mon"]) == ("mon", "fri")
    with pytest.raises(ValueError, match=r"unknown weekday 'wendesday'.*did you mean 'wed'"):
        parse_weekdays("mon, wendesday")
    with pytest.raises(ValueError, match="weekday listed twice: mon"):
        parse_weekdays("mon,monday")


def test_load_by_id_and_version_and_by_path_give_the_same_protocol(protocol):
    assert load_protocol("hip-ir-breakouts@1.0.0") == protocol
    assert load_protocol(SHIPPED_FILE) == protocol
    assert protocol.fingerprint and len(protocol.fingerprint) == 64


def test_unknown_protocol_id_lists_the_known_ones():
    with pytest.raises(ProtocolError, match=r"no protocol 'hip-er' found \(known: hip-ir-breakouts@1.0.0\)"):
        load_protocol("hip-er")
    with pytest.raises(ProtocolError, match="no protocol 'hip-ir-breakouts@9.9.9' found"):
        load_protocol("hip-ir-breakouts@9.9.9")


def test_missing_protocol_file_is_named():
    with pytest.raises(ProtocolError, match="protocol file not found: nowhere/x.yaml"):
        load_protocol("nowhere/x.yaml")


def test_users_add_protocols_in_their_own_folder_and_the_newest_version_wins(edited_protocol, tmp_path):
    edited_protocol(('version: "1.0.0"', 'version: "1.1.0"'), ('title: Hip Internal Rotation Mobility Breakouts',
                    'title: Clinic variant'), name="clinic.yaml")
    assert load_protocol("hip-ir-breakouts", dirs=[tmp_path]).title == "Clinic variant"
    assert load_protocol("hip-ir-breakouts@1.0.0", dirs=[tmp_path]).version == "1.0.0"
    table = list_protocols([tmp_path])
    assert sorted(table["version"]) == ["1.0.0", "1.1.0"]
    assert (table["problem"] == "").all()


def test_protocol_folders_from_the_environment_are_searched(edited_protocol, tmp_path, monkeypatch):
    edited_protocol(('version: "1.0.0"', 'version: "2.0.0"'))
    monkeypatch.setenv("HIPANALYTICS_PROTOCOLS", str(tmp_path))
    assert load_protocol("hip-ir-breakouts").version == "2.0.0"


def test_two_different_files_claiming_one_version_are_refused(edited_protocol, tmp_path):
    edited_protocol(("title: Hip Internal Rotation Mobility Breakouts", "title: Impostor"))
    with pytest.raises(ProtocolError, match=r"hip-ir-breakouts@1.0.0 is defined by different files"):
        load_protocol("hip-ir-breakouts", dirs=[tmp_path])


def test_an_invalid_file_in_a_protocol_folder_is_listed_with_its_problem(tmp_path):
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    table = list_protocols([tmp_path])
    broken = table[table["path"].str.endswith("broken.yaml")]
    assert len(broken) == 1 and "not valid YAML" in broken["problem"].iloc[0]
    assert load_protocol("hip-ir-breakouts", dirs=[tmp_path]).id == "hip-ir-breakouts"


def test_identical_copy_in_two_folders_is_not_ambiguous(tmp_path, protocol):
    shutil.copy(SHIPPED_FILE, tmp_path / "copy.yaml")
    found = load_protocol("hip-ir-breakouts", dirs=[tmp_path])
    assert found.fingerprint == protocol.fingerprint
    assert found.model_dump() == protocol.model_dump()


# --- bad input: every message names the file, the key path, the line and what was expected -----

BAD_CASES = {
    "unknown exercise in a session": (
        [("            - exercise: quadruped-band-ir", "            - exercise: quadruped-band-irr")],
        "quadruped-band-irr",
        "sessions[0].blocks[0].circuit.items[0].exercise: unknown exercise 'quadruped-band-irr': "
        "expected one of quadruped-band-ir, ninety-ninety-ir-stretch, ninety-ninety-ir-pails, "
        "hip-movement-sequence; did you mean 'quadruped-band-ir'?",
    ),
    "zero hold": (
        [("          hold_s: 30\n", "          hold_s: 0\n")],
        "hold_s: 0",
        "exercises[1].dose.phases[0].hold_s: a hold must be longer than 0 seconds, got 0",
    ),
    "negative hold": (
        [("          hold_s: 2-3", "          hold_s: -3")],
        "hold_s: -3",
        "exercises[0].dose.phases[1].hold_s: a hold must be longer than 0 seconds, got -3",
    ),
    "reversed range": (
        [("          hold_s: 1-2", "          hold_s: 3-1")],
        "hold_s: 3-1",
        "exercises[0].dose.phases[0].hold_s: reversed range 3-1: put the lower value first (1-3)",
    ),
    "missing field": (
        [("          rounds: 3\n", "")],
        "- circuit:",
        "sessions[0].blocks[0].circuit.rounds: missing required key 'rounds' "
        "(times the circuit is repeated, a whole number >= 1)",
    ),
    "misspelt schedule day": (
        [("breakout_days: [mon, wed, fri]", "breakout_days: [mon, wendesday, fri]")],
        "wendesday",
        "schedules[1].breakout_days[1]: unknown weekday 'wendesday': expected one of "
        "mon, tue, wed, thu, fri, sat, sun (did you mean 'wed'?)",
    ),
    "invalid YAML": (
        [("  joint: hip", "  joint: [hip")],
        "  motion: internal_rotation",
        "(top level): not valid YAML: while parsing a flow sequence expected ',' or ']', but got ':'",
    ),
    "consecutive breakout days in a recovery schedule": (
        [("breakout_days: [mon, wed, fri]", "breakout_days: [mon, tue, fri]")],
        "breakout_days: [mon, tue, fri]",
        "schedules[1].breakout_days: breakout days mon and tue are consecutive, but this schedule "
        "needs a recovery day between breakout days",
    ),
    "recovery broken across the week boundary": (
        [("breakout_days: [mon, wed, fri]", "breakout_days: [mon, wed, fri, sun]")],
        "breakout_days: [mon, wed, fri, sun]",
        "schedules[1].breakout_days: breakout days sun and mon are consecutive",
    ),
    "misspelt key": (
        [("          rounds: 3", "          roudns: 3")],
        "roudns",
        "sessions[0].blocks[0].circuit.roudns: unknown key 'roudns' (allowed here: rounds, items); "
        "did you mean 'rounds'?",
    ),
    "unquoted time read as a number": (
        [('{id: evening, time: "18:00", session: sequence}\n    breakout_days: [mon, tue',
          "{id: evening, time: 18:00, session: sequence}\n    breakout_days: [mon, tue")],
        "time: 18:00",
        "schedules[0].slots[1].time: expected a time of day like '08:00', got 1080 "
        "(YAML reads an unquoted 18:00 as a number: quote it, '18:00')",
    ),
    "version written as a number": (
        [('version: "1.0.0"', "version: 1.0")],
        "version: 1.0",
        "version: expected a version in quotes like '1.0.0', got the number 1.0",
    ),
    "duplicate key": (
        [("  motion: internal_rotation", "  motion: internal_rotation\n  motion: external_rotation")],
        "motion: external_rotation",
        "target.motion: key 'motion' appears twice in the same mapping; keep one",
    ),
    "circuit rounds given as a range": (
        [("          rounds: 3", "          rounds: 2-3")],
        "rounds: 2-3",
        "sessions[0].blocks[0].circuit.rounds: input should be a valid integer, unable to parse "
        "string as an integer (times the circuit is repeated, a whole number >= 1); got '2-3'",
    ),
    "fractional repetitions": (
        [("      reps: 10", "      reps: 7.5")],
        "reps: 7.5",
        "exercises[0].dose.reps: a count must be a whole number, got 7.5",
    ),
    "unknown session in a slot": (
        [('- {id: morning, time: "08:00", session: sequence}\n      - {id: evening, time: "18:00", '
          'session: sequence}\n    breakout_days: [mon, tue',
          '- {id: morning, time: "08:00", session: sequense}\n      - {id: evening, time: "18:00", '
          'session: sequence}\n    breakout_days: [mon, tue')],
        "session: sequense",
        "schedules[0].slots[0].session: unknown session 'sequense': expected one of breakouts, sequence; "
        "did you mean 'sequence'?",
    ),
    "breakout slot that is not a slot": (
        [("    breakout_slot: morning\n    breakout_session: breakouts\n    recovery_day_between: true",
          "    breakout_slot: noon\n    breakout_session: breakouts\n    recovery_day_between: true")],
        "breakout_slot: noon",
        "schedules[1].breakout_slot: unknown slot 'noon': expected one of morning, evening",
    ),
    "block that is neither exercise, choice nor circuit": (
        [("      - exercise: hip-movement-sequence\n  - id: sequence",
          "      - exersise: hip-movement-sequence\n  - id: sequence")],
        "exersise",
        "sessions[0].blocks[1]: expected a mapping with 'exercise', 'one_of' or 'circuit'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_bad_protocol_is_refused_naming_file_key_path_line_and_expectation(case, edited_protocol):
    edits, line_fragment, expected = BAD_CASES[case]
    path = edited_protocol(*edits)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    line = line_of(path, line_fragment)
    assert f"{path}, line {line}: {expected}" in str(info.value)
    matching = [p for p in info.value.problems if expected.startswith(f"{p.path or '(top level)'}: ")]
    assert [(p.file, p.line) for p in matching] == [(str(path), line)]


def test_every_problem_in_a_file_is_reported_at_once(edited_protocol):
    path = edited_protocol(
        ("          hold_s: 1-2", "          hold_s: 3-1"),
        ("breakout_days: [mon, wed, fri]", "breakout_days: [mon, wendesday, fri]"),
    )
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert len(info.value.problems) == 2
    assert str(info.value).startswith("invalid protocol: 2 problems")


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ProtocolError, match=r"line 1: \(top level\): expected a mapping of protocol keys"):
        load_protocol(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Hüfte\n".encode("latin-1"))
    with pytest.raises(ProtocolError, match="file is not UTF-8 text"):
        load_protocol(path)
