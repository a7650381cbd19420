"""What a clinician reads in a progress report, on small hand-built patients: pain flags never
called stable, trends only as sure as the data, targets never below the normal range, no two
sentences that contradict, differences that add up, and episodes of care."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from hipanalytics.progress import clinic_overview, overview_html, overview_table, patient_list, patient_progress

METHOD = {"joint": "hip", "motion": "internal_rotation", "position": "seated_90", "mode": "active",
          "instrument": "inclinometer"}


def patient(side="right", pid="P1"):
    return pd.DataFrame({"patient_id": [pid], "birth_year": [1975], "sex": ["female"], "involved_side": [side]})


def program(pid="P1", schedule="daily", start="2026-01-05", end="2026-03-01", program_id=None):
    return {"program_id": program_id or f"{pid}-{start}", "patient_id": pid, "protocol_id": "hip-ir-breakouts",
            "protocol_version": "1.0.0", "schedule": schedule, "start_date": pd.Timestamp(start),
            "end_date": pd.Timestamp(end)}


def visits(rows, pid="P1"):
    """rows: (date, side, degrees)."""
    return pd.DataFrame([{"patient_id": pid, "measured_on": pd.Timestamp(d), "side": s, **METHOD, "degrees": float(v),
                          "trial": 1} for d, s, v in rows])


def sessions(rows, pid="P1"):
    """rows: (date, before, after[, next morning]) breakout sessions."""
    columns = ["patient_id", "performed_on", "session", "completion", "pain_before", "pain_after", "pain_next_day"]
    data = [(pid, pd.Timestamp(r[0]), "breakouts", "full", r[1], r[2], r[3] if len(r) > 3 else None) for r in rows]
    frame = pd.DataFrame(data, columns=columns)
    return frame.astype({"performed_on": "datetime64[s]", "pain_before": "Int64", "pain_after": "Int64",
                         "pain_next_day": "Int64"})


def tables(m, s=None, programs=None, side="right", episodes=None):
    return {"patients": patient(side), "programs": pd.DataFrame(programs or [program()]), "measurements": m,
            "sessions": s if s is not None else sessions([]).iloc[0:0],
            **({"episodes": episodes} if episodes is not None else {})}


WEEKLY_RIGHT = [("2026-01-05", "right", 20), ("2026-01-19", "right", 24), ("2026-02-02", "right", 27),
                ("2026-02-16", "right", 30), ("2026-01-05", "left", 35), ("2026-02-16", "left", 36)]


# ----------------------------------------------------------------------------------------------
# 1. pain


def test_one_painful_breakout_is_a_flag_in_the_summary_never_stable():
    p = patient_progress(tables(visits(WEEKLY_RIGHT), sessions([("2026-02-16", 3, 8)])), "P1")
    assert "Pain flag: a rise of 3 or more points after 1 breakout session (2026-02-16: 3 -> 8)" in p.summary
    assert "stable" not in p.summary and "stable" not in p.flags_html()
    assert p.key_figures["tolerance"] == "flag"


def test_severe_pain_without_a_rise_is_a_flag():
    log = sessions([(f"2026-02-{d:02d}", 7, 8) for d in range(1, 15)])
    p = patient_progress(tables(visits(WEEKLY_RIGHT), log), "P1")
    assert "Pain flag: severe pain (7/10 or more) at 6 sessions" in p.summary


def test_too_few_sessions_say_so_and_no_sessions_say_so():
    few = patient_progress(tables(visits(WEEKLY_RIGHT), sessions([("2026-02-10", 2, 2)])), "P1")
    assert "Too few breakout sessions with pain recorded to judge tolerance (1 of the 3 needed)." in few.summary
    none = patient_progress(tables(visits(WEEKLY_RIGHT)), "P1")
    assert "No sessions logged yet, so pain tolerance cannot be judged." in none.summary
    assert none.key_figures["tolerance"] == "no sessions"


def test_next_day_pain_that_has_not_settled_is_a_flag():
    log = sessions([("2026-02-09", 2, 3, 2), ("2026-02-11", 2, 3, 5), ("2026-02-13", 2, 2, 2)])
    p = patient_progress(tables(visits(WEEKLY_RIGHT), log), "P1")
    assert ("pain 3 or more points above its starting level the next morning after 1 breakout session (2026-02-11: "
            "before 2, next morning 5)") in p.summary  # 3 up: the rule that fires at once


# ----------------------------------------------------------------------------------------------
# 2. trends in words


def test_a_gain_seen_on_few_scattered_visits_is_not_called_a_plateau():
    m = visits([("2026-01-05", "right", 24.6), ("2026-01-19", "right", 30.0), ("2026-02-02", "right", 31.4),
                ("2026-01-05", "left", 35), ("2026-02-02", "left", 36)])
    text = patient_progress(tables(m), "P1").summary
    assert "plateau" not in text
    assert "over the last 6 weeks, not yet clear whether the gain goes on: about 7 visits in 6 weeks" in text


def test_a_hip_that_never_gained_has_no_response_yet():
    m = visits([("2026-01-05", "right", 26), ("2026-01-19", "right", 29), ("2026-02-02", "right", 24),
                ("2026-02-16", "right", 27), ("2026-01-05", "left", 35), ("2026-02-16", "left", 36)])
    text = patient_progress(tables(m), "P1").summary
    assert "no gain beyond the MDC since the baseline yet" in text and "plateau" not in text


def test_a_gain_lost_again_is_worsening_not_no_response_yet():
    # 20.1 -> 28.2 (+8.1, beyond the MDC) -> 22.1 (6.1 below the best, also beyond it): the hip lost range
    m = visits([("2026-01-05", "right", 20.1), ("2026-01-19", "right", 28.2), ("2026-02-02", "right", 22.1),
                ("2026-01-05", "left", 35), ("2026-02-02", "left", 36)])
    p = patient_progress(tables(m), "P1")
    assert ("over the last 6 weeks, worsening: 6.1 degrees below the best of 28.2 on 19 Jan 2026, a loss beyond "
            "the MDC") in p.summary and "no response yet" not in p.summary
    assert p.sides_table()["last 6 weeks"].iloc[0] == "worsening"
    assert clinic_overview(tables(m), as_of="2026-02-02")["attention"].iloc[0].startswith("IR worsening")


def test_a_recent_trend_from_visits_long_before_the_report_says_when_it_ended():
    m = visits(WEEKLY_RIGHT)
    soon = patient_progress(tables(m), "P1", as_of="2026-02-20").summary
    late = patient_progress(tables(m), "P1", as_of="2026-04-01").summary
    assert "over the last 6 weeks, still gaining" in soon
    assert "over the 6 weeks to the last visit, 16 Feb 2026, still gaining" in late and "last 6 weeks" not in late


def test_the_worklist_shows_the_change_the_report_prints():
    # 22.44 -> 26.42: the report prints 22.4 -> 26.4 (+4.0); 22.46 -> 26.44 prints 22.5 -> 26.4 (+3.9), not +4.0
    m = visits([("2026-01-05", "right", 22.46), ("2026-02-16", "right", 26.44), ("2026-01-05", "left", 35)])
    p = patient_progress(tables(m), "P1")
    assert "from 22.5 to 26.4 degrees (+3.9" in p.summary
    assert overview_table(clinic_overview(tables(m), as_of="2026-02-16"))["change (deg)"].tolist() == ["+3.9"]


# ----------------------------------------------------------------------------------------------
# 3. target and the other side


def test_the_target_is_never_below_the_normal_range_and_the_sentence_names_both_references():
    # as SYN-00021: right IR 22 with the left side's recent mean also 22: both below the normal range's 29
    m = visits([("2026-01-05", "right", 16), ("2026-01-19", "right", 18), ("2026-02-02", "right", 20),
                ("2026-02-16", "right", 22), ("2026-01-05", "left", 21), ("2026-02-16", "left", 23)])
    p = patient_progress(tables(m), "P1")
    assert ("7.0 degrees short of the target of 29.0 (the low end of the normal range; the uninvolved side's recent "
            "mean, 22.0, is below it too)") in p.summary
    assert "reached" not in p.sides_table()["target (deg)"].iloc[0]


def test_the_uninvolved_sides_recent_values_set_the_target_with_the_normal_range_named():
    m = visits([("2026-01-05", "right", 20), ("2026-02-16", "right", 30), ("2025-11-01", "left", 40),
                ("2026-01-05", "left", 31), ("2026-02-16", "left", 31)])
    text = patient_progress(tables(m), "P1").summary
    assert "1.0 degrees short of the target of 31.0 (the uninvolved side's recent mean; the normal range starts at 29)" in text


def test_a_reached_target_and_a_lower_value_than_the_other_side_are_told_together_not_as_a_contradiction():
    # the left side's recent mean is 30 (28 and 32), the right reaches 31, yet the last visit read 31 vs 32
    m = visits([("2026-01-05", "right", 22), ("2026-01-19", "right", 26), ("2026-02-02", "right", 29),
                ("2026-02-16", "right", 31), ("2026-02-02", "left", 28), ("2026-02-16", "left", 32)])
    text = patient_progress(tables(m), "P1").summary
    assert "at or above the target of 30.0" in text
    assert ("; though 1.0 degrees less than the other side on 16 Feb 2026 (31.0 vs 32.0), within the 5.4-degree MDC: "
            "not a reliable difference") in text


# ----------------------------------------------------------------------------------------------
# 5. numbers that add up


def test_every_difference_is_taken_from_the_numbers_printed():
    m = visits([("2026-01-05", "right", 16.44), ("2026-01-19", "right", 17.0), ("2026-02-02", "right", 18.46),
                ("2026-01-05", "left", 30.04), ("2026-02-02", "left", 34.96)])
    p = patient_progress(tables(m), "P1")
    assert "from 16.4 to 18.5 degrees (+2.1," in p.summary  # 18.46 - 16.44 = 2.02 would print as +2.0
    assert p.sides_table()["change (deg)"].iloc[0] == "+2.1"
    assert "16.5 degrees less than the other side on 02 Feb 2026 (18.5 vs 35.0)" in p.summary


def test_differences_add_up_in_every_sentence_of_the_sample_clinic():
    from hipanalytics.store import Store
    from hipanalytics.synthetic import sample_store

    store = Store(sample_store())
    for pid in store.read("patients")["patient_id"]:
        text = patient_progress(store, pid).summary
        for start, end, change in re.findall(r"from (\d+\.\d) to (\d+\.\d) degrees \(([+-]?\d+\.\d)", text):
            assert round(float(end) - float(start), 1) == float(change), (pid, text)
        for gap, this, other in re.findall(r"(\d+\.\d) degrees (?:less|more) than the other side on [^(]+\((\d+\.\d) vs "
                                           r"(\d+\.\d)\)", text):
            assert round(abs(float(this) - float(other)), 1) == float(gap), (pid, text)


def test_a_single_measurement_shows_a_dash_for_the_change():
    m = visits([("2026-01-05", "right", 20), ("2026-01-05", "left", 30)])
    row = patient_progress(tables(m), "P1").sides_table().iloc[0]
    assert (row["change (deg)"], row["vs MDC"], row["baseline (deg)"]) == ("-", "-", "-")
    overview = overview_table(clinic_overview(tables(m), as_of="2026-01-05")).iloc[0]
    assert (overview["change (deg)"], overview["last 6 weeks"]) == ("-", "measured once")


# ----------------------------------------------------------------------------------------------
# 4. episodes of care


def two_episodes():
    """Programs April-July, then a new one five months later, with rises in April."""
    programs = [program(schedule="daily", start="2026-04-06", end="2026-04-26"),
                program(schedule="three-per-week", start="2026-04-27", end="2026-07-12"),
                program(schedule="daily", start="2026-12-07", end="2027-01-17")]
    m = visits([("2026-04-06", "right", 15), ("2026-05-04", "right", 20), ("2026-07-06", "right", 26),
                ("2026-04-06", "left", 31), ("2026-07-06", "left", 31),
                ("2026-12-01", "right", 21), ("2026-12-15", "right", 23), ("2026-12-29", "right", 27),
                ("2026-12-01", "left", 32)])
    s = sessions([("2026-04-07", 2, 5), ("2026-04-09", 2, 5), ("2026-12-08", 2, 2), ("2026-12-10", 2, 3),
                  ("2026-12-12", 1, 2)])
    return m, s, programs


def test_a_new_program_months_later_is_a_new_episode_with_its_own_baseline_and_flags():
    m, s, programs = two_episodes()
    p = patient_progress(tables(m, s, programs), "P1", as_of="2026-12-30")
    assert p.episode["episode"] == 2 and p.episode["start_date"] == pd.Timestamp("2026-12-07")
    assert "from 21.0 to 27.0 degrees (+6.0," in p.summary  # December's baseline, not April's 15
    assert "Before the switch" not in p.flags_html() and "switch" not in p.summary
    assert p.programs["start_date"].tolist() == [pd.Timestamp("2026-12-07")]
    history = p.history_table()
    assert history[["episode", "from", "programs to", "schedules"]].values.tolist() == [
        [1, "2026-04-06", "2026-07-12", "daily -> three-per-week"]]
    assert history["hip IR (deg)"].iloc[0] == "right 15.0 -> 26.0"
    assert history["ended"].iloc[0] == "no discharge recorded"
    assert p.key_figures["episode"]["number"] == 2 and p.key_figures["episode"]["of"] == 2
    assert "episode 2 of 2, from 2026-12-07" in p.header_html()


def test_a_discharge_ends_an_episode_and_the_next_program_starts_another_even_soon_after():
    m, s, programs = two_episodes()
    programs[2] = program(schedule="daily", start="2026-07-20", end="2026-08-30")  # 8 days after the last one
    episodes = pd.DataFrame({"episode_id": ["P1-E1"], "patient_id": ["P1"], "start_date": [pd.Timestamp("2026-04-06")],
                             "end_date": [pd.Timestamp("2026-07-12")], "discharge_reason": ["goals_met"],
                             "notes": [None]})
    p = patient_progress(tables(m, s, programs, episodes=episodes), "P1", as_of="2026-08-01")
    assert p.episode["episode"] == 2
    assert p.history_table()["ended"].iloc[0] == "discharged 2026-07-12 (goals met)"
    without = patient_progress(tables(m, s, programs), "P1", as_of="2026-08-01")
    assert without.episode["episode"] == 1  # 8 days: the same episode when no discharge was recorded


def test_the_overview_lists_active_patients_and_a_discharged_patient_is_not_active():
    m, s, programs = two_episodes()
    t = tables(m, s, programs)
    listed = patient_list(t, as_of="2026-12-30")
    assert listed[["active", "episode", "episode_status"]].values.tolist() == [[True, "2 of 2 since 2026-12-07", "active"]]
    discharged = dict(t, episodes=pd.DataFrame({"episode_id": ["P1-E20261207"], "patient_id": ["P1"],
                                                "start_date": [pd.Timestamp("2026-12-07")],
                                                "end_date": [pd.Timestamp("2026-12-20")],
                                                "discharge_reason": ["goals_met"], "notes": [None]}))
    assert not patient_list(discharged, as_of="2026-12-30")["active"].iloc[0]
    assert clinic_overview(discharged, as_of="2026-12-30").empty
    assert len(clinic_overview(discharged, as_of="2026-12-30", everyone=True)) == 1
    row = overview_table(clinic_overview(t, as_of="2026-12-30")).iloc[0]
    assert row["program"] == "in force until 2027-01-17; episode 2 of 2 since 2026-12-07"


# ----------------------------------------------------------------------------------------------
# 11. the overview is a worklist


def worklist():
    """Three active patients: a pain flag raised yesterday, one that has not gained in 6 weeks, one doing well."""
    rows = []
    for pid, values in (("A", (20, 21, 20, 21)), ("B", (20, 24, 28, 32)), ("C", (20, 24, 28, 32))):
        rows += [(d, "right", v) for d, v in zip(("2026-01-05", "2026-01-19", "2026-02-02", "2026-02-16"), values)]
    m = pd.concat([visits([r for r in rows[k * 4:(k + 1) * 4]], pid) for k, pid in enumerate("ABC")])
    s = pd.concat([sessions([("2026-02-01", 2, 2), ("2026-02-03", 2, 2), ("2026-02-05", 2, 2)], pid) for pid in "AB"]
                  + [sessions([("2026-02-10", 2, 2), ("2026-02-12", 2, 3), ("2026-02-16", 3, 8)], "C")])
    patients = pd.concat([patient("right", pid) for pid in "ABC"])
    return {"patients": patients, "programs": pd.DataFrame([program(pid) for pid in "ABC"]), "measurements": m,
            "sessions": s}


def test_the_overview_is_a_worklist_sorted_by_urgency_with_next_actions():
    o = clinic_overview(worklist(), as_of="2026-02-17")
    assert o["patient_id"].tolist() == ["C", "A", "B"]
    c, a, b = (o.iloc[i] for i in range(3))
    # few sessions were logged for anyone: under half of the breakouts done comes after the main reason
    assert c["attention"] == "new pain flag; under half of the breakouts done"
    assert c["action"] == "review tolerance before the next breakout session"
    assert a["attention"] == "no response yet; under half of the breakouts done"
    assert a["action"] == "review the program: dose, adherence, technique"
    assert b["attention"] == "under half of the breakouts done"
    assert b["action"] == "talk the home program through with the patient"
    assert (b["last_visit"], b["next_visit"], b["program"]) == ("2026-02-16", "2026-03-02", "in force until 2026-03-01")
    later = clinic_overview(worklist(), as_of="2026-02-28").set_index("patient_id")
    assert later.loc["C", "attention"].startswith("pain flag")  # eleven days on: no longer new


def test_the_overview_links_each_patient_to_their_report_and_escapes_everything():
    o = clinic_overview(worklist(), as_of="2026-02-17")
    page = overview_html(o, {"C": "progress-C.html"})
    assert '<a href="progress-C.html">C</a>' in page and page.count("<a ") == 1
    assert "<th>next action</th>" in page and "<th>re-measure by</th>" in page


@pytest.mark.parametrize("pid", ["<b>x</b>"])
def test_overview_html_escapes_ids(pid):
    o = pd.DataFrame({"patient_id": [pid], "side": ["right"], "method": ["seated 90/90, active, inclinometer"],
                      "latest_deg": [20.0], "change_deg": [1.0], "recent_trend": ["gaining"], "to_gain_deg": [1.0],
                      "breakout_adherence": [0.8], "tolerance": ["ok"], "program": ["x"], "last_visit": ["2026-01-01"],
                      "next_visit": ["2026-01-15"], "attention": [""], "action": ["continue"]})
    page = overview_html(o, {pid: "progress-x.html"})
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_chart_and_calendar_alt_texts_name_a_schedule_switch():
    m = visits(WEEKLY_RIGHT)
    programs = [program(schedule="daily", start="2026-01-05", end="2026-01-25"),
                program(schedule="three-per-week", start="2026-01-26", end="2026-03-01")]
    p = patient_progress(tables(m, sessions([("2026-01-06", 2, 2)]), programs), "P1", as_of="2026-02-16")
    assert p.chart_alt().endswith("; switched from daily to three-per-week on 26 Jan 2026 (a vertical line).")
    assert p.calendar_alt().endswith("; switched from daily to three-per-week on 26 Jan 2026 (a line across the calendar).")
    before = patient_progress(tables(m, sessions([("2026-01-06", 2, 2)]), programs), "P1", as_of="2026-01-20")
    assert "switched" not in before.chart_alt()  # not yet on the report date


def test_a_report_made_alone_is_as_of_the_stores_latest_date_like_the_batch():
    t = tables(visits(WEEKLY_RIGHT))
    t["patients"] = pd.concat([patient(), patient(pid="P2")])
    t["measurements"] = pd.concat([t["measurements"], visits([("2026-03-30", "right", 25)], pid="P2")])
    assert patient_progress(t, "P1").as_of == pd.Timestamp("2026-03-30")
