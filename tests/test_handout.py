"""The printable handout and the iCalendar export."""

from __future__ import annotations

import re
import subprocess
from datetime import date, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from hipanalytics.handout import calendar_ics, handout_html, patient_dose, write_calendar, write_handout
from hipanalytics.program import Program, plan

from .conftest import MONDAY
from .system import chromium


@pytest.fixture
def program() -> Program:
    return Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="three-per-week",
                   start_date=MONDAY, weeks=4)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_handout_is_self_contained(program):
    html = handout_html(program)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html.replace("<!DOCTYPE html>", ""))
    assert not re.search(r"(?i)<(script|link|img|iframe)\b", html)
    assert "@import" not in html and "url(" not in html


def test_handout_shows_every_exercise_with_its_dose_and_steps(program, protocol):
    text = text_of(handout_html(program))
    for exercise_id in ("quadruped-band-ir", "ninety-ninety-ir-stretch", "hip-movement-sequence"):
        exercise = protocol.exercise(exercise_id)
        assert exercise.name in text
        for step in exercise.steps:
            assert step.replace("&", "&amp;") in text
    assert "10 repetitions." in text and "hold 1-2 seconds" in text and "hold 2-3 seconds" in text
    assert "3 times." in text and "hold 30 seconds" in text
    assert "Repeat 3 rounds, one exercise after the other" in text
    assert protocol.exercise("ninety-ninety-ir-pails").name not in text  # not chosen


def test_handout_uses_the_chosen_alternative_and_overridden_dose():
    p = Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY,
                weeks=1, choices={"ninety-ninety": "ninety-ninety-ir-pails"},
                dose_overrides={"ninety-ninety-ir-pails": {"sets": 2}})
    text = text_of(handout_html(p))
    assert "90/90 hip internal rotation contract-relax (PAILs)" in text
    assert "Then, 2 times:" in text and "hold 10-30 seconds" in text
    assert "90/90 hip internal rotation stretch" not in text
    assert text.count("Your clinician set your own dose") == 1  # the PAILs only; the band work is as written


def test_handout_pdf_is_a_printable_document(program, tmp_path):
    from hipanalytics.handout import write_handout

    path = write_handout(program, tmp_path / "handout.pdf")
    content = path.read_bytes()
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF") and len(content) > 20_000


def test_week_grid_marks_the_breakout_days(program):
    html = handout_html(program)
    grid = html[html.index("Your week at a glance"):html.index("Your sessions")]
    rows = re.findall(r"<tr>(.*?)</tr>", grid, flags=re.S)
    morning = re.findall(r"<td( class=\"b\")?>", rows[1])
    evening = re.findall(r"<td( class=\"b\")?>", rows[2])
    assert [bool(c) for c in morning] == [True, False, True, False, True, False, False]
    assert not any(evening)
    assert "with a recovery day between breakout days" in text_of(grid)


def test_tick_sheet_has_one_box_per_planned_session(program):
    html = handout_html(program)
    sheet = html[html.index("Tick sheet"):]
    assert sheet.count('class="box"') == len(plan(program)) == 56
    assert sheet.count(" B</span>") == 12


def test_user_text_is_escaped_in_the_handout(program):
    html = handout_html(program, patient_name="<b>Zoë</b>", clinician="Dr <i>X</i>",
                        notes="Ice after.\n<script>alert(1)</script>")
    assert "<script>" not in html and "<b>Zoë" not in html and "<i>X" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;Zoë&lt;/b&gt;" in html


def test_patient_name_replaces_the_id_only_when_given(program):
    assert "P001" in text_of(handout_html(program))
    text = text_of(handout_html(program, patient_name="Jo Bloggs"))
    assert "For Jo Bloggs" in text


def test_patient_dose_for_a_movement_sequence_is_empty(protocol):
    assert patient_dose(protocol.exercise("hip-movement-sequence").dose) == []


def test_calendar_parses_back_to_the_same_sessions(program, tmp_path):
    path = write_calendar(program, tmp_path / "p.ics", side="left", stamp=datetime(2026, 1, 1, tzinfo=timezone.utc))
    cal = Calendar.from_ical(path.read_bytes())
    events = cal.walk("VEVENT")
    df = plan(program)
    assert len(events) == len(df) == 56
    parsed = sorted((e.decoded("dtstart"), str(e["summary"]), str(e["description"])) for e in events)
    expected = sorted(
        (datetime.combine(r.date.date(), datetime.strptime(r.slot_time, "%H:%M").time()),
         r.session_title + (": left hip" if r.breakouts else ""),
         ("Left hip. " if r.breakouts else "") + r.doses
         + f". About {20 if r.breakouts else 10} min (the Hip Movement Sequence counted as 10 min).")
        for r in df.itertuples()
    )
    assert parsed == expected
    assert all(e.decoded("dtstart").tzinfo is None for e in events)  # floating local time
    assert len({str(e["uid"]) for e in events}) == 56
    breakout_events = [e for e in events if "Breakouts" in e.get("categories").cats]
    assert len(breakout_events) == 12


def test_calendar_uids_are_stable_across_exports(program):
    first = calendar_ics(program, stamp=datetime(2026, 1, 1, tzinfo=timezone.utc))
    again = calendar_ics(program, stamp=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert first == again


def test_handout_prints_from_a_real_browser(program, tmp_path):
    browser = chromium()
    html = write_handout(program, tmp_path / "handout.html", patient_name="Test Patient")
    pdf = tmp_path / "handout.pdf"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 3  # program pages, then the tick sheet on a page of its own


HANDOUT_FONTS = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono")  # a wide one shows what a narrow one hides


@pytest.mark.parametrize("schedule", ["daily", "three-per-week", "mon,wed,sat", "switched"])
def test_every_handout_fits_the_page_width_whatever_the_font(schedule):
    from hipanalytics.pdf import layout_overflow
    from hipanalytics.program import switch_schedule

    program = Program(patient_id="P-0001/long-id", protocol="hip-ir-breakouts", schedule=schedule.replace(
        "switched", "daily"), start_date=MONDAY, weeks=4, choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    if schedule == "switched":
        program = switch_schedule(program, "three-per-week", on=MONDAY + timedelta(days=14), reason="pain")[1]
    document = handout_html(program, patient_name="Maria-Antonia Fernández-Villaverde", clinician="Dr A. B.",
                            draft=schedule == "switched")
    for font in HANDOUT_FONTS:
        assert max(layout_overflow(document, font=font)) == pytest.approx(0.0, abs=1e-6), font  # pages vary by font


def test_a_draft_handout_says_so_and_a_switch_names_its_recovery_day():
    from hipanalytics.program import switch_schedule

    daily = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY, weeks=4)
    _, new = switch_schedule(daily, "three-per-week", on=MONDAY + timedelta(days=14), reason="pain")  # Mon 19 Jan
    document = handout_html(new, draft=True)
    assert "DRAFT, NOT RECORDED" in document and "<strong>Draft, not recorded.</strong>" in document
    assert "Monday 19 January is a recovery day:</strong> your last breakout" in document
    assert "Sunday 18 January" in document
    assert "DRAFT" not in handout_html(new) and "recovery day:" not in handout_html(daily)


# What each exercise is called when another exercise's text points to it, and the phrases of a pointer.
EXERCISE_MENTIONS = {
    "quadruped-band-ir": ("band-assisted", "quadruped", "band exercise"),
    "ninety-ninety-ir-stretch": ("90/90 stretch", "90/90 hip internal rotation stretch"),
    "ninety-ninety-ir-pails": ("pails", "contract-relax"),
}
POINTERS = ("as for the", "exactly as", "same as", "see exercise", "as in exercise", "described above",
            "described below")


def _exercise_texts(document: str) -> dict[str, str]:
    """Each exercise card of a handout as plain text, keyed by its heading."""
    cards = re.findall(r'<article class="exercise[^"]*">(.*?)</article>', document, flags=re.S)
    return {text_of(re.search(r"<h3>(.*?)</h3>", c, flags=re.S).group(1)).strip(): text_of(c) for c in cards}


@pytest.mark.parametrize("choice", ["ninety-ninety-ir-stretch", "ninety-ninety-ir-pails"])
@pytest.mark.parametrize("omit", ["nothing", "band", "ninety-ninety"])
def test_no_exercise_on_a_handout_refers_to_an_exercise_it_does_not_hold(protocol, choice, omit):
    left_out = {"nothing": (), "band": ("quadruped-band-ir",), "ninety-ninety": (choice,)}[omit]
    program = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="three-per-week", start_date=MONDAY,
                      weeks=1, choices={"ninety-ninety": choice}, omit=left_out)
    cards = _exercise_texts(handout_html(program))
    held = {e.id for e in protocol.exercises if e.name in " ".join(cards)}
    assert held == {"quadruped-band-ir", choice, "hip-movement-sequence"} - set(left_out)
    for title, text in cards.items():
        lowered = text.lower()
        assert not [p for p in POINTERS if p in lowered], (title, text)
        for other in set(EXERCISE_MENTIONS) - held:
            assert not [m for m in EXERCISE_MENTIONS[other] if m in lowered], (title, other, text)


def test_rounds_are_only_the_circuits_and_pails_presses_are_repetitions_in_plan_calendar_and_handout():
    program = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY, weeks=1,
                      choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    doses = plan(program).query("breakouts")["doses"].iloc[0]
    assert re.findall(r"\S+ rounds?\b", doses) == ["3 rounds"], doses
    assert "then 3-4 repetitions of: contract 10 s" in doses
    events = Calendar.from_ical(calendar_ics(program)).walk("VEVENT")
    descriptions = {str(e["description"]) for e in events if "Breakouts" in e.get("categories").cats}
    assert [re.findall(r"\S+ rounds?\b", d) for d in descriptions] == [["3 rounds"]]
    pails = _exercise_texts(handout_html(program))["2 90/90 hip internal rotation contract-relax (PAILs)"]
    assert set(re.findall(r"\S+ rounds?\b", pails)) <= {"3 rounds"} and "3-4 times" in pails


def test_no_numbered_list_of_one_item_and_the_session_outline_numbers_match_the_exercise_cards(program):
    document = handout_html(program)
    lists = re.findall(r"<ol[^>]*>(.*?)</ol>", document, flags=re.S)
    assert lists and all(len(re.findall(r"<li\b", items)) > 1 for items in lists)
    assert "value=" not in document
    sessions = text_of(document[document.index("Your sessions"):document.index("The exercises")])
    assert "Then: 3 Hip Movement Sequence" in sessions
    assert "one exercise after the other: 1 Band-assisted quadruped hip internal rotation 2 90/90" in sessions
    assert "3 Hip Movement Sequence" in _exercise_texts(document)


def test_the_legend_says_the_movement_sequence_is_still_done_on_recovery_days(program):
    html = handout_html(program)
    legend = text_of(html[html.index('class="legend"'):html.index("Your sessions")])
    assert "a day without them lets your hip recover. On those days, still do the Hip Movement Sequence twice." in legend
    assert "day off" not in legend


def _breakout_events(program, **kwargs):
    return [e for e in Calendar.from_ical(calendar_ics(program, **kwargs)).walk("VEVENT")
            if "Breakouts" in e.get("categories").cats]


def test_a_one_hip_handout_names_the_hip_on_its_title_every_breakout_exercise_tick_sheet_and_calendar(program):
    document = handout_html(program, side="right")
    text = text_of(document)
    assert "Your home exercise program: right hip" in text and "Hip Right hip" in text
    cards = _exercise_texts(document)
    for title in ("1 Band-assisted quadruped hip internal rotation", "2 90/90 hip internal rotation stretch"):
        assert "Which hip: your right hip. Your right leg is the working leg in the steps below." in cards[title]
    assert "Which hip" not in cards["3 Hip Movement Sequence"]
    assert "Which hip: Work your right hip in every round." in text
    assert "Tick sheet: right hip" in text and "left hip" not in text and 'class="box hip"' not in document
    events = _breakout_events(program, side="right")
    assert len(events) == 12 and all(str(e["summary"]).endswith(": right hip") for e in events)
    assert all(str(e["description"]).startswith("Right hip. 3 rounds of [") for e in events)


def test_a_both_hips_handout_says_each_hip_in_turn_all_rounds_on_one_then_the_other(program):
    document = handout_html(program, side="both")
    text = text_of(document)
    assert "Your home exercise program: both hips" in text and "Tick sheet: both hips" in text
    in_turn = "all 3 rounds for one hip, then all 3 rounds for the other hip"
    assert f"Which hip: Both hips, one at a time: {in_turn}, then the Hip Movement Sequence once." in text
    band = _exercise_texts(document)["1 Band-assisted quadruped hip internal rotation"]
    assert f"Which hip: each hip in turn: {in_turn}." in band
    assert all(str(e["description"]).startswith(f"Both hips: {in_turn}. ") for e in _breakout_events(program, side="both"))


def test_an_unknown_side_prints_tick_boxes_for_the_clinician_and_refers_to_them(program):
    document = handout_html(program)
    assert document.count('class="box hip"') == 6  # on the first page and on the tick sheet
    text = text_of(document)
    assert "Hip left right both (your clinician ticks)" in text and "Tick sheet Hip: left right both" in text
    assert "Your home exercise program Hip" in text  # no side in the title
    band = _exercise_texts(document)["1 Band-assisted quadruped hip internal rotation"]
    assert "Which hip: the hip your clinician ticked at the top of this handout" in band
    assert all(str(e["summary"]) == "IR breakouts + Hip Movement Sequence" for e in _breakout_events(program))


def test_a_side_that_is_not_left_right_or_both_is_refused(program):
    from hipanalytics.errors import ProgramError

    with pytest.raises(ProgramError, match="side must be one of left, right, both"):
        handout_html(program, side="Right")


def test_each_session_says_how_long_its_holds_take_and_that_set_up_and_the_sequence_come_on_top(program):
    sessions = text_of(handout_html(program, side="right"))
    assert ("How long: About 6-7 minutes of holds, plus setting up and moving between exercises, plus the Hip "
            "Movement Sequence (your clinic sets its length).") in sessions
    assert "How long: As long as your Hip Movement Sequence takes (your clinic sets its length)." in sessions
    assert "How long: About 12-14 minutes of holds (6-7 for each hip), plus" in text_of(handout_html(program, side="both"))
    pails = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY, weeks=1,
                    choices={"ninety-ninety": "ninety-ninety-ir-pails"})  # 3 x (30-50 + 10-30 + 3-4 x 20 s)
    assert "How long: About 5-8 minutes of holds for one hip (10-16 if both hips are ticked)" in text_of(
        handout_html(pails))


def test_a_handout_with_breakouts_back_to_back_does_not_claim_a_recovery_day_between_them():
    program = Program(patient_id="P3", protocol="hip-ir-breakouts", schedule="mon,tue", start_date=MONDAY, weeks=2,
                      reason="works away Wednesday to Sunday")
    html = handout_html(program, side="right")
    grid = html[html.index("Your week at a glance"):html.index("Your sessions")]
    morning = re.findall(r"<td( class=\"b\")?>", re.findall(r"<tr>(.*?)</tr>", grid, flags=re.S)[1])
    assert [bool(c) for c in morning] == [True, True, False, False, False, False, False]
    legend = text_of(grid)
    assert "with a recovery day between" not in legend and "lets your hip recover" not in legend
    assert ("on 2 days a week only. Your clinician has chosen breakout days back to back (Monday and Tuesday), so "
            "there is no recovery day between them.") in legend
    spread = Program(patient_id="P3", protocol="hip-ir-breakouts", schedule="mon,thu", start_date=MONDAY, weeks=2)
    assert "with a recovery day between breakout days" in text_of(handout_html(spread))


def test_the_band_card_says_where_the_band_is_anchored_and_that_the_foot_going_out_turns_the_hip_in(program):
    band = _exercise_texts(handout_html(program, side="right"))["1 Band-assisted quadruped hip internal rotation"]
    assert "on the outside of your working leg" in band
    assert "The band now pulls your ankle outward, away from the middle of your body." in band
    assert "Pull your foot inward, toward your other leg, against the band." in band
    assert "This outward turn of the foot is the inward turn (internal rotation) of your hip." in band


def _drawings(document: str) -> dict[str, str]:
    cards = re.findall(r'<article class="exercise[^"]*">(.*?)</article>', document, flags=re.S)
    return {text_of(re.search(r"<h3>(.*?)</h3>", c, flags=re.S).group(1)).strip(): (re.search(r"<svg.*?</svg>", c, re.S)
                                                                                  or [""])[0] for c in cards}


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]


@pytest.mark.parametrize("side", ["right", "left"])
def test_each_breakout_exercise_has_a_labelled_drawing_with_the_working_leg_anchor_and_foot_on_the_right_side(side):
    program = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY, weeks=1,
                      choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    drawings = _drawings(handout_html(program, side=side))
    assert drawings["3 Hip Movement Sequence"] == ""  # the clinic sets its contents: nothing to draw
    outward = 1 if side == "right" else -1  # seen from above, head up: the patient's right is on the right
    band = drawings["1 Band-assisted quadruped hip internal rotation"]
    title = re.search(r"<title[^>]*>(.*?)</title>", band).group(1)
    assert re.search(r'<svg class="drawing" viewBox="[^"]+" role="img" aria-labelledby="([^"]+)"><title id="\1">', band)
    assert f"a band loops around the {side} ankle and runs to a post on the outside of the {side} leg" in title
    assert f"which turns the {side} hip inward" in title and f"{side} knee stays on the floor" in band
    midline = _numbers(re.search(r'<circle cx="([\d.]+)" cy="[\d.]+" r="11"', band).group(1))[0]  # the head
    knee_x, _, foot_x, _ = _numbers(re.search(r'<polyline points="([^"]+)" fill="none" stroke="#0b5394" '
                                              r'stroke-width="4"', band).group(1))
    post_x, _, post_w = _numbers(re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', band).group(0))[:3]
    assert outward * (knee_x - midline) > 0  # the working knee on that side of the body
    assert outward * (foot_x - knee_x) > 0  # the foot turned outward, away from the middle
    assert outward * (post_x + post_w / 2 - foot_x) > 0  # the post outside the working leg
    stretch = _drawings(handout_html(program.model_copy(update={"choices": {}}), side=side))
    for svg, press in ((drawings["2 90/90 hip internal rotation contract-relax (PAILs)"], True),
                       (stretch["2 90/90 hip internal rotation stretch"], False)):
        assert f"the {side} thigh points out to the {side} side with the {side} foot behind" in svg
        assert ("press foot" in svg) == press and f"toward your {side} ankle" in svg
        midline = _numbers(re.search(r'<circle cx="([\d.]+)" cy="[\d.]+" r="11"', svg).group(1))[0]
        hip_x, hip_y, knee_x, knee_y = _numbers(re.search(r'<polyline points="([^"]+)" fill="none" stroke="#0b5394" '
                                                          r'stroke-width="4"', svg).group(1))
        assert outward * (knee_x - midline) > 0 and knee_y == hip_y  # the back thigh out to its own side


def test_the_tick_sheet_has_a_row_per_breakout_session_for_rounds_and_pain_before_after_and_next_morning(program):
    document = handout_html(program, side="both")
    sheet = document[document.index("Tick sheet"):]
    log = sheet[sheet.index('<table class="log">'):]
    log = log[:log.index("</table>")]
    header = text_of(log[:log.index("</thead>")])
    assert "&#8209;" not in document and "\u2011" not in document  # the printed fonts draw no non-breaking hyphen
    assert header.split() == ("Breakout session Circuit rounds done (of 3 per hip) Pain before (0-10) Pain after "
                              "(0-10) Pain the next morning (0-10)").split()
    rows = re.findall(r"<tr[^>]*><th class=\"day\">([^<]+)</th>((?:<td></td>){4})</tr>", log)
    breakout_days = plan(program).query("breakouts")["date"]
    assert [day for day, _ in rows] == [f"{d:%a %d %b}" for d in breakout_days] and len(rows) == 12
    assert log.count('<tr class="week">') == 3  # weeks 2-4 start with a rule
    assert "Pain: 0 = no pain, 10 = the worst pain you can imagine." in text_of(sheet)
    assert '"Next morning" is your pain the morning after that session' in text_of(sheet)


LAYOUT_FONTS = ("Liberation Sans", "DejaVu Sans")  # Arial's stand-in on Linux, and the wider usual fallback


def _layout_cases() -> dict[str, str]:
    from hipanalytics.program import switch_schedule

    start = date(2026, 11, 30)
    pails = {"ninety-ninety": "ninety-ninety-ir-pails"}
    daily_pails = Program(patient_id="P4", protocol="hip-ir-breakouts", schedule="daily", start_date=start, weeks=6,
                          choices=pails)
    return {
        "one hip, 3x/week": handout_html(Program(patient_id="P1", protocol="hip-ir-breakouts",
                                                 schedule="three-per-week", start_date=start, weeks=6), side="right"),
        "both hips, daily": handout_html(Program(patient_id="P2", protocol="hip-ir-breakouts", schedule="daily",
                                                 start_date=start, weeks=6), side="both"),
        "PAILs only": handout_html(Program(patient_id="P3", protocol="hip-ir-breakouts", schedule="three-per-week",
                                           start_date=start, weeks=6, choices=pails), side="left"),
        "switched, draft": handout_html(switch_schedule(daily_pails, "three-per-week", on=date(2026, 12, 14),
                                                        reason="pain after daily breakouts")[1], draft=True),
    }


@pytest.mark.parametrize("font", LAYOUT_FONTS)
def test_every_handout_fills_its_pages_keeps_headings_with_their_content_and_hyphenates_nothing(font):
    from hipanalytics.pdf import printed_pages

    for case, document in _layout_cases().items():
        pages = printed_pages(document, font=font)
        where = f"{case}, {font}: " + ", ".join(f"p{i}={p.filled:.2f}" for i, p in enumerate(pages, start=1))
        for number, page in enumerate(pages, start=1):
            if number < len(pages) and not page.forced_break_after:  # the tick sheet is a sheet of its own
                assert page.filled >= 2 / 3, f"page {number} leaves a gap: {where}"
            assert page.filled >= 0.1, f"page {number} holds only a spill: {where}"
            assert page.heading_at_bottom is None, f"page {number} ends with a heading: {where}"
            assert not page.hyphenated, f"page {number} hyphenates {page.hyphenated}: {where}"
            assert not page.broken_words, f"page {number} splits words {page.broken_words}: {where}"
        assert sum(p.forced_break_after for p in pages) == 1, where  # before the tick sheet, and only there


def _valid_calendar(data: bytes) -> Calendar:
    """The calendar parsed back, after RFC 5545's rules as icalendar knows them: no property it could
    not read, required properties present, singletons once, exclusive ones not together, ends after starts."""
    calendar = Calendar.from_ical(data)
    for component in calendar.walk():
        assert component.errors == [], (component.name, component.errors)
        assert all(name in component for name in component.required), component.name
        assert not [n for n in component.singletons if isinstance(component.get(n), list)], component.name
        assert sum(name in component for name in component.exclusive) <= 1, component.name
    for event in calendar.walk("VEVENT"):
        assert event.decoded("dtend") > event.decoded("dtstart")
        for alarm in event.walk("VALARM"):
            assert str(alarm["action"]) == "DISPLAY" and str(alarm["description"])
    return calendar


def test_calendar_events_end_after_their_planned_length_and_remind_before_they_start(program):
    daily = Program(patient_id="P1", protocol="hip-ir-breakouts", schedule="daily", start_date=MONDAY, weeks=1,
                    choices={"ninety-ninety": "ninety-ninety-ir-pails"})
    # one hip: 3 x (50 s band + 110 s PAILs) = 8 min of holds, + 6 x 0.5 min to get into position, + 10 min sequence
    events = _valid_calendar(calendar_ics(daily, side="right")).walk("VEVENT")
    lengths = {(str(e["summary"]), e.decoded("dtend") - e.decoded("dtstart")) for e in events}
    assert lengths == {("IR breakouts + Hip Movement Sequence: right hip", timedelta(minutes=25)),
                       ("Hip Movement Sequence", timedelta(minutes=10))}
    both = _valid_calendar(calendar_ics(daily, side="both", sequence_minutes=20)).walk("VEVENT")
    breakout = next(e for e in both if "Breakouts" in e.get("categories").cats)  # 16 + 6 + 20 min
    assert breakout.decoded("dtend") - breakout.decoded("dtstart") == timedelta(minutes=45)
    assert "About 45 min (the Hip Movement Sequence counted as 20 min)." in str(breakout["description"])
    alarms = [a for e in events for a in e.walk("VALARM")]
    assert len(alarms) == len(events) == 14
    assert {a.decoded("trigger") for a in alarms} == {timedelta(minutes=-15)}
    assert str(alarms[0]["description"]) == "In 15 min: IR breakouts + Hip Movement Sequence: right hip"
    five = _valid_calendar(calendar_ics(daily, reminder_minutes=5)).walk("VALARM")
    assert {a.decoded("trigger") for a in five} == {timedelta(minutes=-5)}
    assert _valid_calendar(calendar_ics(daily, reminder_minutes=None)).walk("VALARM") == []
    from hipanalytics.errors import ProgramError

    with pytest.raises(ProgramError, match="reminder_minutes must be a whole number of minutes >= 0"):
        calendar_ics(daily, reminder_minutes=-5)
    with pytest.raises(ProgramError, match="sequence_minutes must be a number of minutes >= 0"):
        calendar_ics(daily, sequence_minutes=-1)
