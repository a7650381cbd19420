"""Pain response and the tolerance flag, on hand-made session logs."""

from __future__ import annotations

import pandas as pd

from hipanalytics.analysis.tolerance import pain_response, tolerance_flags

PROGRAMS = pd.DataFrame({
    "program_id": ["A", "B"], "patient_id": ["P1", "P2"], "protocol_id": "hip-ir-breakouts",
    "protocol_version": "1.0.0", "schedule": ["daily", "three-per-week"],
    "start_date": "2026-01-05", "end_date": "2026-03-01"})


def sessions(patient, pains, session="breakouts", start="2026-01-05"):
    days = pd.date_range(start, periods=len(pains), freq="2D")
    return pd.DataFrame({"patient_id": patient, "performed_on": days, "session": session, "completion": "full",
                         "pain_before": [b for b, _ in pains], "pain_after": [a for _, a in pains]},
                        ).astype({"pain_before": "Int64", "pain_after": "Int64"})


def test_two_rises_of_two_points_after_breakouts_flag_a_daily_patient_with_evidence():
    log = sessions("P1", [(2, 4), (3, 3), (2, 5), (1, 2)])
    flag = tolerance_flags(log, PROGRAMS).iloc[0]
    assert flag["flagged"] and flag["rises"] == 2 and flag["breakout_sessions"] == 4
    assert flag["evidence"] == "2026-01-05: 2 -> 4; 2026-01-09: 2 -> 5"
    assert flag["schedule"] == "daily"
    assert "consider switching to the three-per-week schedule" in flag["message"]


def test_a_single_rise_or_rises_on_sequence_sessions_do_not_flag():
    log = pd.concat([sessions("P1", [(2, 4), (2, 3)]), sessions("P1", [(1, 5), (1, 5)], session="sequence")])
    flag = tolerance_flags(log, PROGRAMS).iloc[0]
    assert not flag["flagged"] and flag["rises"] == 1 and flag["message"] == ""


def test_only_the_last_window_of_breakout_sessions_counts():
    old_rises = [(1, 4), (1, 4)] + [(2, 2)] * 6
    assert not tolerance_flags(sessions("P1", old_rises), PROGRAMS)["flagged"].iloc[0]
    assert tolerance_flags(sessions("P1", old_rises), PROGRAMS, window=8)["flagged"].iloc[0]


def test_a_patient_already_on_three_per_week_gets_a_different_suggestion():
    flag = tolerance_flags(sessions("P2", [(2, 5), (2, 5)]), PROGRAMS).iloc[0]
    assert flag["schedule"] == "three-per-week" and "review the dose and technique" in flag["message"]


def test_sessions_without_pain_are_left_out_and_empty_input_is_an_empty_table():
    log = sessions("P1", [(2, 5), (None, None), (2, 5)])
    assert tolerance_flags(log, PROGRAMS)["breakout_sessions"].iloc[0] == 2
    empty = tolerance_flags(log.iloc[0:0], PROGRAMS)
    assert empty.empty and "flagged" in empty.columns


def test_pain_response_by_template():
    log = pd.concat([sessions("P1", [(2, 4), (2, 3)]), sessions("P1", [(2, 2), (None, None)], session="sequence")])
    r = pain_response(log).set_index("session")
    assert r.loc["breakouts", "pain_change_mean"] == 1.5 and r.loc["breakouts", "n_rises"] == 1
    assert r.loc["sequence", "n_sessions"] == 2 and r.loc["sequence", "n_with_pain"] == 1


def test_inputs_are_not_modified():
    log = sessions("P1", [(2, 4), (2, 5)])
    before = log.copy(), PROGRAMS.copy()
    tolerance_flags(log, PROGRAMS)
    pain_response(log)
    pd.testing.assert_frame_equal(log, before[0])
    pd.testing.assert_frame_equal(PROGRAMS, before[1])


SWITCHED = pd.DataFrame({
    "program_id": ["D", "T"], "patient_id": "P3", "protocol_id": "hip-ir-breakouts", "protocol_version": "1.0.0",
    "schedule": ["daily", "three-per-week"], "start_date": ["2026-01-05", "2026-01-19"],
    "end_date": ["2026-01-18", "2026-03-01"]})


def test_rises_before_a_switch_are_history_not_a_flag_on_the_new_schedule():
    daily = sessions("P3", [(2, 5), (2, 2), (1, 4), (2, 3)], start="2026-01-11")  # 11, 13, 15, 17 Jan: daily program
    one_day_after = pd.concat([daily, sessions("P3", [(2, 2)], start="2026-01-19")])  # the first 3x/week session
    flag = tolerance_flags(one_day_after, SWITCHED).iloc[0]
    assert not flag["flagged"] and flag["rises"] == 0 and flag["breakout_sessions"] == 1
    assert (flag["schedule"], flag["since"]) == ("three-per-week", pd.Timestamp("2026-01-19"))
    assert flag["history"] == ("Before the switch to three-per-week on 2026-01-19, pain rose by 2+ points after 2 "
                               "breakout sessions on daily (2026-01-11: 2 -> 5; 2026-01-15: 1 -> 4).")
    assert flag["message"].startswith("No repeated pain rise on three-per-week breakouts (since 2026-01-19). Before")
    assert "review the dose" not in flag["message"] and "consider switching" not in flag["message"]
    # rises on the new schedule still flag, with the advice for that schedule and the history after it
    later = pd.concat([one_day_after, sessions("P3", [(1, 4), (2, 5)], start="2026-01-21")])
    flag = tolerance_flags(later, SWITCHED).iloc[0]
    assert flag["flagged"] and flag["rises"] == 2 and "review the dose and technique" in flag["message"]
    assert flag["message"].endswith(flag["history"])
