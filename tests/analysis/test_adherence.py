"""Adherence across a schedule switch, partial sessions, unplanned sessions, and the input rule."""

from __future__ import annotations

import pandas as pd
import pytest

from hipanalytics.analysis.adherence import adherence, adherence_summary, breakout_frequency


def programs_with_switch() -> pd.DataFrame:
    # Daily breakouts in ISO week 2 of 2026 (Mon 5 - Sun 11 Jan), then 3x/week in week 3 (12-18 Jan).
    # Mon 12 follows Sun 11's daily breakout, so it is a recovery day: week 3 plans Wed 14 and Fri 16.
    return pd.DataFrame({
        "program_id": ["A", "B"], "patient_id": ["P1", "P1"], "protocol_id": "hip-ir-breakouts",
        "protocol_version": "1.0.0", "schedule": ["daily", "three-per-week"],
        "start_date": ["2026-01-05", "2026-01-12"], "end_date": ["2026-01-11", "2026-01-18"]})


def log(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["patient_id", "performed_on", "session", "completion"]).assign(
        performed_on=lambda d: pd.to_datetime(d["performed_on"]))


def test_adherence_counts_across_a_schedule_switch():
    sessions = log(
        [("P1", f"2026-01-{d:02d}", "breakouts", "full") for d in (5, 6, 7, 8)]      # 4 of 7 daily breakouts
        + [("P1", "2026-01-09", "breakouts", "partial")]                                # a 5th, partial
        + [("P1", f"2026-01-{d:02d}", "sequence", "full") for d in range(5, 12)]       # 7 of 7 sequences
        + [("P1", "2026-01-12", "breakouts", "full"), ("P1", "2026-01-15", "breakouts", "full")]  # 2, neither on a planned day
        + [("P1", "2026-01-14", "breakouts", "skipped")]
        + [("P1", f"2026-01-{d:02d}", "sequence", "full") for d in range(12, 19) for _ in (1, 2)]  # 14 of 12 planned
    )
    t = adherence(programs_with_switch(), sessions).set_index(["iso_week", "session"])
    week2_b, week2_s = t.loc[(2, "breakouts")], t.loc[(2, "sequence")]
    assert (week2_b["planned"], week2_b["full"], week2_b["partial"], week2_b["done"]) == (7, 4, 1, 5)
    assert week2_b["adherence"] == pytest.approx(5 / 7) and week2_b["breakouts"]
    assert (week2_s["planned"], week2_s["done"], week2_s["adherence"]) == (7, 7, 1.0)
    week3_b, week3_s = t.loc[(3, "breakouts")], t.loc[(3, "sequence")]
    assert (week3_b["planned"], week3_b["done"], week3_b["skipped"]) == (2, 2, 1)
    assert (week3_s["planned"], week3_s["done"], week3_s["unplanned"], week3_s["adherence"]) == (12, 14, 2, 1.0)

    weekly = breakout_frequency(programs_with_switch(), sessions)
    assert weekly[["iso_week", "breakouts_planned", "breakouts_done", "breakouts_partial"]].values.tolist() == [
        [2, 7, 5, 1], [3, 2, 2, 0]]

    summary = adherence_summary(programs_with_switch(), sessions).iloc[0]
    assert (summary["planned"], summary["breakouts_planned"], summary["breakouts_done"]) == (28, 9, 7)
    assert summary["adherence"] == pytest.approx((5 + 7 + 2 + 12) / 28)
    assert summary["breakout_adherence"] == pytest.approx(7 / 9)
    assert summary["weeks"] == 2 and summary["breakouts_per_week_done"] == 3.5


def test_as_of_cuts_the_plan_and_the_log():
    sessions = log([("P1", "2026-01-05", "breakouts", "full"), ("P1", "2026-01-13", "breakouts", "full")])
    t = adherence(programs_with_switch(), sessions, as_of="2026-01-06")
    assert t.loc[t["session"] == "breakouts", ["planned", "done"]].values.tolist() == [[2, 1]]


def test_a_patient_with_nothing_logged_has_zero_adherence_not_a_gap():
    t = adherence(programs_with_switch(), log([]))
    assert (t["done"] == 0).all() and (t["adherence"] == 0).all() and t["planned"].sum() == 28


def test_sessions_logged_without_a_program_are_unplanned():
    t = adherence(programs_with_switch(), log([("P2", "2026-01-05", "breakouts", "full")]))
    row = t[t["patient_id"] == "P2"].iloc[0]
    assert (row["planned"], row["done"], row["unplanned"]) == (0, 1, 1) and pd.isna(row["adherence"])


def test_inputs_are_not_modified():
    programs, sessions = programs_with_switch(), log([("P1", "2026-01-05", "breakouts", "full")])
    before = programs.copy(), sessions.copy()
    adherence(programs, sessions)
    adherence_summary(programs, sessions)
    breakout_frequency(programs, sessions)
    pd.testing.assert_frame_equal(programs, before[0])
    pd.testing.assert_frame_equal(sessions, before[1])
