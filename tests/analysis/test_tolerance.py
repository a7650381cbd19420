"""Pain response and the tolerance flag, on hand-made session logs."""

from __future__ import annotations

import pandas as pd

from hipanalytics.analysis.tolerance import pain_response, tolerance_flags

PROGRAMS = pd.DataFrame({
    "program_id": ["A", "B"], "patient_id": ["P1", "P2"], "protocol_id": "hip-ir-breakouts",
    "protocol_version": "1.0.0", "schedule": ["daily", "three-per-week"],
    "start_date": "2026-01-05", "end_date": "2026-03-01"})


def sessions(patient, pains, session="breakouts", start="2026-01-05", freq="2D"):
    """Sessions every other day with (before, after) or (before, after, next morning) pain scores."""
    days = pd.date_range(start, periods=len(pains), freq=freq)
    return pd.DataFrame({"patient_id": patient, "performed_on": days, "session": session, "completion": "full",
                         "pain_before": [p[0] for p in pains], "pain_after": [p[1] for p in pains],
                         "pain_next_day": [p[2] if len(p) > 2 else None for p in pains]},
                        ).astype({"pain_before": "Int64", "pain_after": "Int64", "pain_next_day": "Int64"})


def test_two_rises_of_two_points_after_breakouts_flag_a_daily_patient_with_evidence():
    log = sessions("P1", [(2, 4), (3, 3), (2, 5), (1, 2)])
    flag = tolerance_flags(log, PROGRAMS).iloc[0]
    assert flag["flagged"] and flag["rises"] == 2 and flag["breakout_sessions"] == 4
    assert flag["evidence"] == "2026-01-05: 2 -> 4; 2026-01-09: 2 -> 5"
    assert flag["schedule"] == "daily"
    assert "consider switching to the three-per-week schedule" in flag["message"]


def test_a_single_rise_of_two_or_rises_on_sequence_sessions_do_not_flag():
    log = pd.concat([sessions("P1", [(2, 4), (2, 3), (2, 3)]), sessions("P1", [(1, 4), (1, 4)], session="sequence")])
    flag = tolerance_flags(log, PROGRAMS).iloc[0]
    assert not flag["flagged"] and flag["rises"] == 1 and flag["status"] == "ok"
    assert flag["message"] == ("No pain flag in the last 3 breakout sessions on daily breakouts since 2026-01-05: pain "
                               "before 2/10, after 3-4/10; no rise of 2 or more after 2 of them, none above 5/10.")


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
    assert flag["status"] == "too few"
    assert flag["message"].startswith("Too few breakout sessions with pain recorded on three-per-week breakouts since "
                                      "2026-01-19 to judge tolerance: 1 of the 3 needed. Before the switch")
    assert "review the dose" not in flag["message"] and "consider switching" not in flag["message"]
    # rises on the new schedule still flag, with the advice for that schedule and the history after it
    later = pd.concat([one_day_after, sessions("P3", [(1, 4), (2, 5)], start="2026-01-21")])
    flag = tolerance_flags(later, SWITCHED).iloc[0]
    assert flag["flagged"] and flag["rises"] == 2 and "review the dose and technique" in flag["message"]
    assert flag["message"].endswith(flag["history"])


# ----------------------------------------------------------------------------------------------
# The tolerance model: each rule on a hand-built log (these all read "stable" before)


def test_severe_pain_on_every_breakout_flags_even_without_a_rise():
    # 14 daily breakouts at 7 -> 8: no rise of 2, but pain above the 5/10 the pain-monitoring model accepts
    flag = tolerance_flags(sessions("P1", [(7, 8)] * 14, freq="D"), PROGRAMS).iloc[0]
    assert flag["flagged"] and flag["status"] == "flag" and flag["rises"] == 0
    assert flag["high_pain"] == flag["severe_pain"] == 6  # the sessions of the window: the last 6 breakouts
    assert flag["message"].startswith("Pain flag on daily breakouts since 2026-01-05: severe pain (7/10 or more) at 6 "
                                      "sessions since 2026-01-13, the last 6 breakout sessions (2026-01-13: before 7, "
                                      "after 8;")  # 6 of the window, said as such: all 14 were severe
    assert "review the hip before the next breakout session" in flag["message"]
    assert "stable" not in flag["message"]


def test_one_large_rise_flags_at_once():
    # a single breakout at 3 -> 8: a rise of 5 (beyond the NPRS's 2-point MDC) and 8/10 after
    flag = tolerance_flags(sessions("P1", [(3, 8)]), PROGRAMS).iloc[0]
    assert flag["flagged"] and flag["large_rises"] == 1 and flag["high_pain"] == 1 and flag["breakout_sessions"] == 1
    assert flag["reasons"] == ("a rise of 3 or more points after 1 breakout session (2026-01-05: 3 -> 8); severe pain "
                               "(7/10 or more) at 1 session (2026-01-05: before 3, after 8)")
    assert "consider switching to the three-per-week schedule" in flag["message"]


def test_one_severe_score_among_several_above_five_counts_each_as_what_it_is():
    # 5 -> 7 once (severe), 5 -> 6 twice more: the severe rule names its one session, the above-5 rule all three
    flag = tolerance_flags(sessions("P1", [(5, 7), (5, 6), (5, 6)]), PROGRAMS).iloc[0]
    assert flag["severe_pain"] == 1 and flag["high_pain"] == 3
    assert flag["reasons"] == ("severe pain (7/10 or more) at 1 session (2026-01-05: before 5, after 7); pain above "
                               "5/10 at 3 sessions (2026-01-05: before 5, after 7; 2026-01-07: before 5, after 6; "
                               "2026-01-09: before 5, after 6)")


def test_high_pain_at_a_movement_sequence_session_is_named_as_that_session():
    # severe pain at an evening movement-sequence session, breakouts mild: the flag says which session it was
    log = pd.concat([sessions("P1", [(2, 3), (2, 3), (2, 3)]),
                     sessions("P1", [(5, 7)], session="sequence", start="2026-01-08")], ignore_index=True)
    flag = tolerance_flags(log, PROGRAMS).iloc[0]
    assert flag["reasons"] == "severe pain (7/10 or more) at 1 session (2026-01-08 (Hip Movement Sequence): before 5, after 7)"


def test_the_window_of_the_last_six_breakouts_is_said_once_when_two_rules_count_in_it():
    log = sessions("P1", [(2, 3)] * 4 + [(5, 7), (5, 6), (5, 6), (2, 3), (2, 3), (2, 3)])
    reasons = tolerance_flags(log, PROGRAMS).iloc[0]["reasons"]
    assert reasons.startswith("severe pain (7/10 or more) at 1 session since 2026-01-13, the last 6 breakout sessions "
                              "(2026-01-13: before 5, after 7); pain above 5/10 at 3 sessions (2026-01-13:")
    assert reasons.count("the last 6 breakout sessions") == 1


def test_a_score_above_five_flags_when_it_comes_again_and_is_told_when_it_does_not():
    once = tolerance_flags(sessions("P1", [(4, 6), (4, 5), (4, 5)]), PROGRAMS).iloc[0]
    assert not once["flagged"] and once["high_pain"] == 1  # one 6/10: within the scale's error of a 5
    assert once["message"].endswith("no rise of 2 or more after 2 of them, 1 above 5/10.")
    twice = tolerance_flags(sessions("P1", [(4, 6), (4, 5), (5, 6)]), PROGRAMS).iloc[0]
    assert twice["flagged"] and twice["reasons"] == ("pain above 5/10 at 2 sessions (2026-01-05: before 4, after 6; "
                                                     "2026-01-09: before 5, after 6)")


def test_pain_that_has_not_settled_by_the_next_morning_flags():
    once = tolerance_flags(sessions("P1", [(2, 3, 2), (2, 3, 4), (2, 2, 2)]), PROGRAMS).iloc[0]
    assert not once["flagged"] and once["next_day_rises"] == 1  # 2 up once: within the scale's error
    flag = tolerance_flags(sessions("P1", [(2, 3, 4), (2, 3, 2), (2, 2, 4)]), PROGRAMS).iloc[0]
    assert flag["flagged"] and flag["next_day_rises"] == 2 and flag["rises"] == 0
    assert flag["reasons"] == ("pain 2 or more points above its starting level the next morning after 2 breakout "
                               "sessions (2026-01-05: before 2, next morning 4; 2026-01-09: before 2, next morning 4)")
    large = tolerance_flags(sessions("P1", [(2, 3, 2), (2, 3, 5), (2, 2, 2)]), PROGRAMS).iloc[0]
    assert large["flagged"] and large["next_day_rises"] == 1  # 3 up the next morning: at once, said as that rule
    assert large["reasons"] == ("pain 3 or more points above its starting level the next morning after 1 breakout "
                                "session (2026-01-07: before 2, next morning 5)")


def test_too_few_sessions_are_too_few_to_judge_never_stable():
    flag = tolerance_flags(sessions("P1", [(2, 3), (2, 2)]), PROGRAMS).iloc[0]
    assert not flag["flagged"] and flag["status"] == "too few"
    assert flag["message"] == ("Too few breakout sessions with pain recorded on daily breakouts since 2026-01-05 to "
                               "judge tolerance: 2 of the 3 needed.")


def test_a_renewal_of_the_same_schedule_is_not_a_switch():
    renewed = pd.DataFrame({
        "program_id": ["D1", "D2"], "patient_id": "P4", "protocol_id": "hip-ir-breakouts", "protocol_version": "1.0.0",
        "schedule": "daily", "start_date": ["2026-01-05", "2026-01-19"], "end_date": ["2026-01-18", "2026-02-15"]})
    log = sessions("P4", [(2, 4), (2, 2), (2, 5), (2, 2)], start="2026-01-13")  # 13, 15 Jan on D1; 17 on D1; 19 on D2
    flag = tolerance_flags(log, renewed).iloc[0]
    assert flag["flagged"] and flag["rises"] == 2 and flag["since"] == pd.Timestamp("2026-01-05")
    assert flag["history"] == ""


def test_a_new_episode_of_care_starts_afresh():
    # daily in April (rises), a new program in December, five months later: a new episode, not a switch
    episodes = pd.DataFrame({
        "program_id": ["A", "B"], "patient_id": "P5", "protocol_id": "hip-ir-breakouts", "protocol_version": "1.0.0",
        "schedule": ["daily", "three-per-week"], "start_date": ["2026-04-06", "2026-12-07"],
        "end_date": ["2026-07-12", "2027-01-17"]})
    log = pd.concat([sessions("P5", [(2, 5), (2, 5), (1, 4)], start="2026-04-06"),
                     sessions("P5", [(2, 2), (2, 3), (1, 2)], start="2026-12-07")])
    flag = tolerance_flags(log, episodes).iloc[0]
    assert flag["status"] == "ok" and flag["history"] == "" and flag["episode_id"] == "P5-E20261207"
    assert "switch" not in flag["message"]


def test_on_the_day_of_a_switch_the_new_schedule_is_judged():
    log = sessions("P3", [(2, 2)] * 4, start="2026-01-11")  # daily sessions only
    flag = tolerance_flags(log, SWITCHED, as_of="2026-01-19").iloc[0]
    assert (flag["schedule"], flag["status"], flag["breakout_sessions"]) == ("three-per-week", "too few", 0)


def test_a_patient_without_any_program_is_judged_not_a_crash(tmp_path):
    """One patient's records read from a store (typed string ids, an empty programs table), as the
    entry app reads them after a save: pandas refused to merge the empty programs' ids."""
    from hipanalytics.store import Store

    with Store(tmp_path / "clinic.sqlite") as store:
        store.add_records("patients", [{"patient_id": "P1", "birth_year": 1970, "involved_side": "right"}])
        store.add_records("sessions", [{"patient_id": "P1", "performed_on": "2026-01-05", "session": "breakouts",
                                        "completion": "full", "pain_before": 2, "pain_after": 3}])
        read = {t: store.read(t, patient_id="P1") for t in ("sessions", "programs", "episodes")}
    assert read["programs"].empty
    flag = tolerance_flags(read["sessions"], read["programs"], episodes=read["episodes"]).iloc[0]
    assert (flag["status"], flag["schedule"]) == ("too few", "no program")
    assert flag["message"] == ("Too few breakout sessions with pain recorded outside any program to judge tolerance: "
                               "0 of the 3 needed.")
