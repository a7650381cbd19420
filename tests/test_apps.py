"""The apps, driven as a clinician would (widget values and button clicks), asserting on the store."""

from __future__ import annotations

import base64
import json
import re
from datetime import date

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from hipanalytics.apps import Dashboard, EntryForm, ProgramBuilder, build_program  # noqa: E402
from hipanalytics.apps.builder import CUSTOM, breakout_items, preview_html, week_table  # noqa: E402
from hipanalytics.apps.entry import measurement_rows, recent_entries, session_row  # noqa: E402
from hipanalytics.config import SAMPLE_ENV, STORE_ENV  # noqa: E402
from hipanalytics.errors import EntryError, ProgramError  # noqa: E402
from hipanalytics.program import plan, plan_table, program_from_record  # noqa: E402
from hipanalytics.store import Store  # noqa: E402

TODAY = date(2026, 11, 23)
START = date(2026, 11, 30)  # a Monday


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "clinic.sqlite")
    s.add_records("patients", [
        {"patient_id": "P001", "birth_year": 1970, "sex": "female", "involved_side": "right"},
        {"patient_id": "P002", "birth_year": 1985, "sex": "male", "involved_side": "left",
         "display_name": "<b>Jo</b> Bloggs"},
    ], today=TODAY)
    yield s
    s.close()


# -- program builder: the plain function ---------------------------------------------------------

def test_build_program_turns_form_values_into_a_program_with_only_real_overrides(protocol):
    program = build_program(protocol, {
        "patient_id": "P001", "schedule": "three-per-week", "start_date": START, "weeks": 6,
        "breakout_slot": "morning", "alternatives": {"ninety-ninety": "ninety-ninety-ir-pails"},
        "doses": {"quadruped-band-ir": {"sets": "1", "reps": "12", "hold_s": {"inward": "1-2", "outward": "2-3"}},
                  "ninety-ninety-ir-pails": {"sets": "3-4", "hold_s": {"contract": "15"}},
                  "ninety-ninety-ir-stretch": {"sets": "5"}},  # not the chosen option: ignored
    })
    assert program.schedule == "three-per-week" and program.breakout_slot is None  # morning is the default
    assert program.choices == {"ninety-ninety": "ninety-ninety-ir-pails"}
    assert set(program.dose_overrides) == {"quadruped-band-ir", "ninety-ninety-ir-pails"}
    assert str(program.dose("quadruped-band-ir").reps) == "12"
    assert str(program.dose("ninety-ninety-ir-pails").phase("contract").hold_s) == "15"
    assert program.dose_overrides["ninety-ninety-ir-pails"].sets is None  # 3-4 is the protocol's own


def test_build_program_custom_days_unticked_items_and_clear_refusals(protocol):
    base = {"patient_id": "P001", "schedule": CUSTOM, "days": ["thu", "mon"], "start_date": START, "weeks": 2}
    program = build_program(protocol, base | {"exercises": {"quadruped-band-ir": False}})
    assert program.resolved_schedule.breakout_days == ("mon", "thu")
    assert program.omit == ("quadruped-band-ir",)
    with pytest.raises(ProgramError, match="at least one breakout weekday"):
        build_program(protocol, base | {"days": []})
    with pytest.raises(ProgramError, match="choose a patient"):
        build_program(protocol, base | {"patient_id": " "})
    with pytest.raises(ProgramError, match=r"90/90 hip internal rotation stretch: stretch: .*must be at most 600"):
        build_program(protocol, base | {"doses": {"ninety-ninety-ir-stretch": {"hold_s": {"stretch": "3000"}}}})
    with pytest.raises(ProgramError, match="sets: expected a number or a range like 1-2, got 'three'"):
        build_program(protocol, base | {"doses": {"ninety-ninety-ir-stretch": {"sets": "three"}}})
    hidden = {"doses": {"ninety-ninety-ir-pails": {"sets": "lots"}}}  # not the chosen option: not checked
    assert build_program(protocol, base | hidden).dose_overrides == {}
    with pytest.raises(ProgramError, match="every breakout exercise"):
        build_program(protocol, base | {"exercises": {"quadruped-band-ir": False, "ninety-ninety": False}})


def test_preview_shows_the_week_the_breakouts_per_week_and_a_warning_for_consecutive_days(protocol):
    program = build_program(protocol, {"patient_id": "P001", "schedule": CUSTOM, "days": ["mon", "tue"],
                                       "start_date": START, "weeks": 2})
    grid = week_table(program)
    assert grid.loc["morning 08:00", "mon"] == "IR breakouts + Hip Movement Sequence"
    assert grid.loc["morning 08:00", "wed"] == "Hip Movement Sequence"
    text = preview_html(program)
    assert "<tr><th>sessions</th><td>14</td><td>14</td><td>28</td></tr>" in text
    assert ('<tr><th>with breakouts</th><td class="hip-breakout">2</td><td class="hip-breakout">2</td>'
            "<td>4</td></tr>") in text
    assert "mon and tue are consecutive" in text and "recovery_day_between" not in text
    assert "About 6-7 minutes of holds for one hip (12-14 if both hips are ticked), plus setting up" in text
    assert "About 12-14 minutes of holds (6-7 for each hip)" in preview_html(program, "both")


# -- program builder: the widget ---------------------------------------------------------------

def _builder(store) -> ProgramBuilder:
    b = ProgramBuilder(store, today=TODAY, who="AB")
    b._patient.value = "P001"
    b._start.value = START
    return b


def test_builder_saves_a_three_per_week_program_with_the_chosen_exercise_and_dose(store):
    b = _builder(store)
    b._schedule.value = "three-per-week"
    b._weeks.value = 8
    b._alternatives["ninety-ninety"].value = "ninety-ninety-ir-pails"
    b._dose_inputs["ninety-ninety-ir-pails"]["sets"].value = "4"
    assert b._dose_rows["ninety-ninety-ir-pails"].layout.display == "flex"
    assert b._dose_rows["ninety-ninety-ir-stretch"].layout.display == "none"
    assert "Breakouts 3x/week" in b._preview.value and not b._save.disabled
    b._save.click()
    assert "Saved program P001-20261130-three-per-week" in b.status.value
    saved = store.read("programs")
    assert len(saved) == 1
    program = program_from_record(saved.iloc[0])
    assert (program.schedule, program.start_date, program.end_date) == ("three-per-week", START, date(2027, 1, 24))
    assert program.choices == {"ninety-ninety": "ninety-ninety-ir-pails"}
    assert str(program.dose("ninety-ninety-ir-pails").sets) == "4"
    assert store.read("programs", history=True)["recorded_by"].tolist() == ["AB"]
    assert "P001-20261130-three-per-week" in b._in_force.value


def test_builder_schedule_change_needs_a_reason_and_keeps_the_old_program(store):
    b = _builder(store)
    b._schedule.value = "daily"
    b._save.click()
    b._start.value = date(2026, 12, 14)
    b._schedule.value = "three-per-week"
    b._save.click()
    assert "needs a reason" in b.status.value  # refused: nothing changed, the form kept
    assert len(store.read("programs", history=True)) == 1 and b._schedule.value == "three-per-week"
    b._reason.value = "pain after daily breakouts"
    b._save.click()
    assert "ended P001-20261130-daily the day before" in b.status.value
    current = store.read("programs").set_index("program_id")
    assert current.loc["P001-20261130-daily", "end_date"] == pd.Timestamp("2026-12-13")
    assert current.loc["P001-20261214-three-per-week", "reason"] == "pain after daily breakouts"


def test_builder_custom_days_warn_and_an_invalid_form_cannot_be_saved(store):
    b = _builder(store)
    b._schedule.value = CUSTOM
    assert b._days_box.layout.display == "flex"
    assert b.value is None and b._save.disabled and "at least one breakout weekday" in b._preview.value
    b._days[0].value = b._days[1].value = True  # mon, tue
    assert b.value.resolved_schedule.breakout_days == ("mon", "tue")
    assert "consecutive" in b._preview.value and not b._save.disabled
    b._dose_inputs["quadruped-band-ir"]["reps"].value = "0"
    assert b._save.disabled and "a count must be at least 1" in b._preview.value
    b._save.click()
    assert store.read("programs").empty


def test_builder_saves_consecutive_breakout_days_only_when_confirmed_with_a_reason(store):
    b = _builder(store)
    assert b._confirm.layout.display == "none"
    b._schedule.value = CUSTOM
    b._days[0].value = b._days[1].value = True  # mon, tue
    assert b._confirm.layout.display == "flex" and not b._save.disabled
    b._save.click()
    assert "Not saved: mon and tue are consecutive breakout days" in b.status.value and store.read("programs").empty
    b._confirm.value = True
    b._save.click()
    assert "Not saved: give a reason for breakouts on consecutive days" in b.status.value
    assert store.read("programs").empty
    b._reason.value = "works away Wednesday to Sunday"
    b._save.click()
    assert "Saved program P001-20261130-custom-mon-tue" in b.status.value
    assert store.read("programs")["reason"].tolist() == ["works away Wednesday to Sunday"]
    b._prepare.click()
    html = next(v for k, v in _links(b).items() if k.endswith(".html")).decode()
    assert "back to back (Monday and Tuesday)" in html and "recovery day between breakout days" not in html
    b._days[1].value, b._days[2].value = False, True  # mon, wed: nothing to confirm
    assert b._confirm.layout.display == "none"


def _links(b) -> dict[str, bytes]:
    found = re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', b._downloads.value)
    return {name: base64.b64decode(data) for name, data in found}


def test_builder_downloads_are_embedded_files_named_from_the_sanitised_program_id(store):
    b = _builder(store)
    b._prepare.click()  # not saved yet: a draft, and it says so
    links = _links(b)
    assert set(links) == {"P001-20261130-daily-draft-handout.html", "P001-20261130-daily-draft-handout.pdf",
                          "P001-20261130-daily-draft.ics"}
    assert b"DRAFT, NOT RECORDED" in links["P001-20261130-daily-draft-handout.html"]
    from icalendar import Calendar

    calendar = Calendar.from_ical(links["P001-20261130-daily-draft.ics"])
    assert str(calendar["X-WR-CALNAME"]).endswith("(draft, not recorded)") and "not saved" in b.status.value
    assert all(str(e["SUMMARY"]).endswith("(draft, not recorded)") for e in calendar.walk("VEVENT"))
    b._save.click()
    b._prepare.click()  # saved: the recorded program's handout
    links = _links(b)
    assert set(links) == {"P001-20261130-daily-handout.html", "P001-20261130-daily-handout.pdf",
                          "P001-20261130-daily.ics"}
    assert links["P001-20261130-daily-handout.pdf"].startswith(b"%PDF-") and b"DRAFT" not in links[
        "P001-20261130-daily-handout.html"]
    assert b"BEGIN:VCALENDAR" in links["P001-20261130-daily.ics"] and b"draft" not in links["P001-20261130-daily.ics"]
    b._weeks.value = 4  # a changed form invalidates the prepared files
    assert b._downloads.value == ""


def test_builder_handout_and_calendar_name_the_hip_recorded_for_the_patient(store):
    b = _builder(store)  # P001: right hip on record
    assert "Hip: <b>right</b>" in b._in_force.value
    b._prepare.click()
    links = _links(b)
    html = next(v for k, v in links.items() if k.endswith(".html")).decode()
    assert "Your home exercise program: right hip" in html and 'class="box hip"' not in html
    assert b": right hip" in next(v for k, v in links.items() if k.endswith(".ics"))
    b._patient.value = "P002"  # left
    b._prepare.click()
    assert "Your home exercise program: left hip" in next(v for k, v in _links(b).items() if k.endswith(".html")).decode()


def test_a_program_the_store_refused_never_gets_a_clean_handout(store):
    b = _builder(store)
    b._save.click()  # daily from 30 Nov 2026
    b._start.value = date(2026, 12, 2)  # starts inside it, and no reason given: refused
    b._save.click()
    assert "Not saved" in b.status.value and len(store.read("programs")) == 1
    b._prepare.click()
    assert all("-draft" in name for name in _links(b)) and b"DRAFT, NOT RECORDED" in next(
        v for k, v in _links(b).items() if k.endswith(".html"))


def test_the_builder_keeps_a_recovery_day_after_the_running_programs_last_breakout(store):
    b = _builder(store)
    b._save.click()  # daily from Mon 30 Nov 2026
    b._schedule.value = "three-per-week"
    b._start.value = date(2026, 12, 14)  # a Monday: the daily program's last breakout is Sun 13 Dec
    b._reason.value = "pain after daily breakouts"
    assert b.value.previous_breakout == date(2026, 12, 13)
    assert "Mon 14 Dec is a recovery day" in b._preview.value
    sessions = plan(b.value)
    assert sessions.loc[sessions["breakouts"], "date"].min() == pd.Timestamp("2026-12-16")
    b._save.click()
    stored = plan_table(store.read("programs"))
    days = stored.loc[stored["breakouts"] & (stored["date"] >= "2026-12-12"), "date"].dt.strftime("%a %d").tolist()
    assert days[:4] == ["Sat 12", "Sun 13", "Wed 16", "Fri 18"]


def test_breakout_items_follow_the_protocol_file(protocol):
    items = breakout_items(protocol)
    assert [i.default for i in items] == ["quadruped-band-ir", "ninety-ninety-ir-stretch"]


# -- data entry ------------------------------------------------------------------------------

def test_measurement_rows_keep_trial_numbers_and_refuse_an_empty_form():
    rows = measurement_rows({"patient_id": "P001", "trials": ["", "30", " "]})
    assert [(r["trial"], r["degrees"]) for r in rows] == [(2, "30")]
    with pytest.raises(EntryError, match="at least one trial"):
        measurement_rows({"patient_id": "P001", "trials": ["", ""]})
    assert session_row({"pain_before": " ", "rounds_done": 0})["pain_before"] is None


def _entry(store) -> EntryForm:
    form = EntryForm(store, today=TODAY, who="AB")
    form._patient.value = "P001"
    return form


def test_entry_saves_trials_and_lists_them_and_a_bad_value_keeps_the_form(store):
    form = _entry(store)
    assert "Right hip<br>" in form.m_side_labels["right"].value and "(involved)" in form.m_side_labels["right"].value
    assert "Left hip" in form.m_side_labels["left"].value and "(involved)" not in form.m_side_labels["left"].value
    right = form.m_trials["right"]
    right[0].value, right[2].value = "31", "132"
    form.m_save.click()
    assert "Not saved" in form.status.value and "hip IR outside -20..90 degrees" in form.status.value
    assert "<td>Right hip, trial 3</td><td>132</td>" in form.status.value and "degrees</td>" not in form.status.value
    right[1].value, right[2].value = "132", ""
    assert [t.value for t in right] == ["31", "132", ""]
    assert store.read("measurements").empty
    right[1].value = "32,5"
    form.m_save.click()
    assert "Saved 2 trials of right hip IR: 31, 32.5 degrees" in form.status.value
    saved = store.read("measurements")
    assert saved[["side", "trial", "degrees", "instrument", "position"]].values.tolist() == [
        ["right", 1, 31.0, "inclinometer", "seated_90"], ["right", 2, 32.5, "inclinometer", "seated_90"]]
    assert [t.value for t in right] == ["", "", ""]
    assert "right IR 32.5 deg, trial 2" in form.recent.value


def test_entry_saves_both_hips_of_a_visit_in_one_transaction_and_names_the_box_at_fault(store):
    form = _entry(store)
    form.m_date.value = date(2026, 11, 20)
    left, right = form.m_trials["left"], form.m_trials["right"]
    left[0].value, left[1].value, left[2].value = "38", "39", "38,5"
    right[0].value, right[1].value = "31", "3l"
    form.m_save.click()
    assert "<td>Right hip, trial 2</td><td>3l</td>" in form.status.value
    assert store.read("measurements").empty and left[0].value == "38"  # nothing of the visit saved, the form kept
    right[1].value = "32"
    form.m_save.click()
    assert "Saved 5 trials of hip IR: left 38, 39, 38.5 degrees; right 31, 32 degrees." in form.status.value
    saved = store.read("measurements")
    assert saved[["side", "trial", "degrees"]].values.tolist() == [
        ["left", 1, 38.0], ["left", 2, 39.0], ["left", 3, 38.5], ["right", 1, 31.0], ["right", 2, 32.0]]
    assert store.audit().query("action == 'entry' and table_name == 'measurements'")["record_id"].str.count(",").tolist() == [4]  # one write
    assert all(box.value == "" for box in left + right)


def test_entry_session_log_with_pain_is_validated_inline(store):
    form = _entry(store)
    form.s_session.value = "breakouts"
    form.s_rounds.value, form.s_pain_before.value, form.s_pain_after.value = "3", "2", "11"
    form.s_save.click()
    assert "<td>Pain after</td>" in form.status.value and "must be at most 10" in form.status.value
    assert "pain_after" not in form.status.value
    assert store.read("sessions").empty and form.s_pain_after.value == "11"
    form.s_pain_after.value = "4"
    form.s_save.click()
    row = store.read("sessions").iloc[0]
    assert (row["session"], row["rounds_done"], row["pain_before"], row["pain_after"]) == ("breakouts", 3, 2, 4)


def test_entry_shows_a_pain_flag_as_soon_as_the_session_that_raises_it_is_saved(store, protocol):
    store.save_program(build_program(protocol, {"patient_id": "P001", "schedule": "daily",
                                                "start_date": date(2026, 11, 16), "weeks": 4}), today=TODAY)
    form = _entry(store)
    form.s_session.value, form.s_date.value = "breakouts", date(2026, 11, 20)
    form.s_pain_before.value, form.s_pain_after.value = "3", "8"
    form.s_save.click()
    status = form.status.value
    assert "Saved the" in status and '<div class="hip-flag" role="alert">' in status
    assert ("Pain flag on daily breakouts since 2026-11-16: a rise of 3 or more points after 1 breakout session "
            "(2026-11-20: 3 -&gt; 8); severe pain (7/10 or more) at 1 session (2026-11-20: before 3, after 8).") in status
    assert "consider switching to the three-per-week schedule" in status
    form._patient.value = "P002"  # no program yet, a mild session: saved, and told quietly, never as an alert
    form.s_session.value, form.s_date.value = "breakouts", date(2026, 11, 20)
    form.s_pain_before.value, form.s_pain_after.value = "2", "3"
    form.s_save.click()
    assert len(store.read("sessions", patient_id="P002")) == 1 and "Saved the" in form.status.value
    assert 'role="alert"' not in form.status.value and '<p class="hip-muted" role="status">Pain check: Too few ' \
        "breakout sessions with pain recorded outside any program to judge tolerance: 0 of the 3 " \
        "needed.</p>" in form.status.value


def test_entry_takes_next_morning_pain_and_adds_it_to_yesterdays_session_as_a_correction(store, protocol):
    store.save_program(build_program(protocol, {"patient_id": "P001", "schedule": "daily",
                                                "start_date": date(2026, 11, 16), "weeks": 4}), today=TODAY)
    form = _entry(store)
    form.s_session.value, form.s_date.value = "breakouts", date(2026, 11, 20)
    form.s_pain_before.value, form.s_pain_after.value, form.s_pain_next.value = "2", "3", "11"
    form.s_save.click()
    assert "<td>Pain next morning</td><td>11</td>" in form.status.value and store.read("sessions").empty
    form.s_pain_next.value = "2"
    form.s_save.click()
    assert store.read("sessions")["pain_next_day"].tolist() == [2]
    for day in (date(2026, 11, 22), TODAY):  # yesterday's, and today's: its next morning has not come
        form.s_date.value = day
        form.s_pain_before.value, form.s_pain_after.value = "2", "3"
        form.s_save.click()
    assert [label for label, _ in form.n_session.options] == [
        f"Sun 22 Nov 2026 {form.s_time.value}, IR breakouts + Hip Movement Sequence, pain 2 -> 3"]
    form.n_pain.value = "six"
    form.n_save.click()
    assert "<td>Pain next morning</td><td>six</td>" in form.status.value and form.n_pain.value == "six"
    form.n_pain.value = "6"
    form.n_save.click()
    status = form.status.value
    assert "Added next-morning pain 6 to Sun 22 Nov 2026" in status and "(a correction: version 2)" in status
    assert '<div class="hip-flag" role="alert">' in status
    assert ("pain 3 or more points above its starting level the next morning after 1 breakout session "
            "(2026-11-22: before 2, next morning 6)") in status  # 4 up: the rule that fires at once
    history = store.read("sessions", history=True)
    added = history[history["version"] == 2].iloc[0]
    assert (added["performed_on"], added["pain_next_day"], added["recorded_by"]) == (pd.Timestamp("2026-11-22"), 6, "AB")
    assert added["change_reason"] == "next-morning pain added on 2026-11-23 (entry form)"
    assert form.n_session.options == () and form.n_save.disabled
    assert "pain 2 -&gt; 3, next morning 6" in form.recent.value


def test_entry_corrections_and_voids_ask_for_a_reason_and_keep_history(store):
    form = _entry(store)
    form.m_trials["right"][0].value = "23"
    form.m_save.click()
    (label, record), = form.c_record.options
    form.c_record.value = record
    form.c_action.value = "correct"
    form.c_field.value, form.c_value.value = "degrees", "32"
    form.c_apply.click()
    assert "needs a reason" in form.status.value and form.c_value.value == "32"
    form.c_reason.value = "typed 23 for 32"
    form.c_apply.click()
    assert store.read("measurements")["degrees"].tolist() == [32.0]
    form.c_record.value = form.c_record.options[0][1]
    form.c_action.value = "void"
    form.c_reason.value = "wrong patient"
    form.c_apply.click()
    assert "Voided" in form.status.value and store.read("measurements").empty
    history = store.read("measurements", history=True)
    assert history["status"].tolist() == ["active", "active", "voided"]
    assert history["change_reason"].tolist()[1:] == ["typed 23 for 32", "wrong patient"]
    assert "Nothing recorded" in form.recent.value


def test_recent_entries_are_newest_first_and_leave_out_voided_records(store):
    form = _entry(store)
    for value in ("30", "31"):
        form.m_trials["right"][0].value = value
        form.m_date.value = date(2026, 11, 2) if value == "30" else date(2026, 11, 1)
        form.m_save.click()
    recent = recent_entries(store.read("measurements", history=True), store.read("sessions", history=True))
    assert recent["date"].tolist() == ["2026-11-01", "2026-11-02"]  # by when recorded, not visit date


# -- dashboard -----------------------------------------------------------------------------

def _png(image_html: str) -> bytes:
    """The PNG of a dashboard chart (an HTML image with a data URL)."""
    import base64
    import re

    return base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', image_html).group(1))


def test_dashboard_redraws_when_a_visit_is_saved(store, protocol):
    program = build_program(protocol, {"patient_id": "P001", "schedule": "three-per-week",
                                       "start_date": date(2026, 10, 5), "weeks": 8})
    store.save_program(program, today=TODAY)
    dash = Dashboard(store, today=TODAY)
    dash._patient.value = "P001"
    assert dash.rom.layout.display == "none" and dash._empty["rom"].layout.display == "block"
    assert _png(dash.adherence.value)[:4] == b"\x89PNG" and 'alt="Calendar of the program' in dash.adherence.value
    dash.entry.m_date.value = date(2026, 10, 5)
    dash.entry.m_trials["right"][0].value = "25"
    dash.entry.m_save.click()
    dash.entry.m_date.value = date(2026, 11, 9)
    dash.entry.m_trials["right"][0].value = "36"
    dash.entry.m_save.click()
    assert dash.rom.layout.display == "block" and _png(dash.rom.value)[:4] == b"\x89PNG"
    assert 'alt="Right hip IR rose from 25.0 to 36.0 degrees over 5 weeks, above the breakout sessions' in dash.rom.value
    assert dash._empty["rom"].layout.display == "none"
    assert "Right hip IR improved from 25.0 to 36.0 degrees (+11.0" in dash.summary.value


def test_dashboard_refresh_shows_entries_made_in_another_window(store):
    dash = Dashboard(store, today=TODAY)
    dash._patient.value = "P001"
    assert "No hip IR measurements" in dash.summary.value
    other = _entry(store)
    other.m_trials["right"][0].value = "28"
    other.m_save.click()
    dash.refresh_button.click()
    assert "measured once so far: 28.0 degrees" in dash.summary.value


def test_dashboard_watches_the_store_and_redraws_after_writes_elsewhere(store):
    import threading
    import time

    still = Dashboard(store, today=TODAY)
    assert still.check_for_changes() is False
    dash = Dashboard(store, today=TODAY, watch_seconds=0.1)
    dash._patient.value = "P001"
    other = _entry(store)
    other.m_trials["right"][0].value = "29"
    other.m_save.click()
    deadline = time.monotonic() + 10
    while "measured once so far: 29.0 degrees" not in dash.summary.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "measured once so far: 29.0 degrees" in dash.summary.value
    assert "29.0 degrees" not in still.summary.value  # not watching: redrawn only when asked
    assert still.check_for_changes() is True and "29.0 degrees" in still.summary.value
    assert still.check_for_changes() is False
    dash.close()
    time.sleep(0.3)
    assert not any(t.name == "hipanalytics-dashboard-watch" and t.is_alive() for t in threading.enumerate())


def test_dashboard_renders_the_report_as_downloads_without_the_patient_name(store):
    dash = Dashboard(store, today=TODAY)
    dash._patient.value = "P002"
    dash.entry.m_trials["left"][0].value = "30"
    dash.entry.m_save.click()
    dash.report_button.click()
    assert "ready" in dash.status.value, dash.status.value
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.report_links.value))
    assert set(links) == {"progress-P002.html", "progress-P002.pdf"}
    assert base64.b64decode(links["progress-P002.pdf"]).startswith(b"%PDF-")
    assert "<b>Jo</b>" not in base64.b64decode(links["progress-P002.html"]).decode()


def test_app_notebooks_are_thin_and_committed_without_outputs():
    from hipanalytics.apps.serve import APPS, APPS_DIR

    for name in APPS.values():
        nb = json.loads((APPS_DIR / name).read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] for c in code)
        assert sum(len(c["source"]) for c in code) <= 6


def test_served_apps_find_the_store_in_their_environment_as_an_absolute_path(tmp_path, monkeypatch):
    import sys

    from hipanalytics.apps.serve import run

    monkeypatch.chdir(tmp_path)
    check = f"import os, sys; sys.exit(0 if os.environ['HIPANALYTICS_STORE'] == {str(tmp_path / 'x.sqlite')!r} else 5)"
    assert run([sys.executable, "-c", check], store="x.sqlite") == 0
    assert run([sys.executable, "-c", "import sys; sys.exit(7)"]) == 7
    monkeypatch.setenv(SAMPLE_ENV, str(tmp_path / "x.sqlite"))  # left over in the shell: not for a named store
    unnamed = f"import os, sys; sys.exit(5 if {SAMPLE_ENV!r} in os.environ else 0)"
    assert run([sys.executable, "-c", unnamed], store="x.sqlite") == 0
    named = f"import os, sys; sys.exit(0 if os.environ[{SAMPLE_ENV!r}] == os.environ[{STORE_ENV!r}] else 5)"
    assert run([sys.executable, "-c", named], store="copy.sqlite", sample=True) == 0


def test_the_sample_banner_says_how_to_start_the_app_only_on_the_built_in_sample(store, tmp_path, monkeypatch):
    from hipanalytics.synthetic import sample_store

    monkeypatch.delenv(SAMPLE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert "invented" not in EntryForm(store, today=TODAY).header.value  # real records: no banner
    with Store(tmp_path / "demo.sqlite") as demo:  # started with --store on a store of synthetic patients
        demo.add_records("patients", [{"patient_id": "SYN-00001", "birth_year": 1970, "involved_side": "left"}])
        header = EntryForm(demo, today=TODAY).header.value
        assert "Synthetic patients" in header and "are invented" in header
        assert "--store" not in header and "start it with" not in header
        monkeypatch.setenv(SAMPLE_ENV, str(tmp_path / "demo.sqlite"))  # served by `hipanalytics app --sample`
        header = ProgramBuilder(demo, today=TODAY).header.value
        assert "runs on the built-in sample clinic" in header and "--store YOUR-STORE" in header
    monkeypatch.delenv(SAMPLE_ENV)
    with Store(sample_store(), create=False) as sample:  # no store named: the cached sample
        assert "runs on the built-in sample clinic" in Dashboard(sample, today=TODAY).header.value
