"""Charts: structure, labels and units, on hand-made data; every function draws into a given ax."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.collections import PatchCollection

from hipanalytics import charts
from hipanalytics.analysis.episodes import schedule_changes
from hipanalytics.analysis import cohort_visits, dose_response, patient_outcomes
from hipanalytics.synthetic import generate_clinic

PROGRAMS = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"], "protocol_id": "hip-ir-breakouts",
                         "protocol_version": "1.0.0", "schedule": ["three-per-week"],
                         "start_date": ["2026-01-05"], "end_date": ["2026-01-18"]})
PATIENTS = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})


def measurements() -> pd.DataFrame:
    rows = []
    for side, values in (("right", (20, 24, 27)), ("left", (33, 33, 34))):
        for day, value in zip((0, 7, 13), values):
            rows.append({"patient_id": "P1", "side": side, "joint": "hip", "motion": "internal_rotation",
                         "position": "seated_90", "mode": "active", "instrument": "inclinometer",
                         "measured_on": pd.Timestamp("2026-01-05") + pd.Timedelta(days=day), "degrees": value})
    return pd.DataFrame(rows)


def sessions() -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": "P1", "session": ["breakouts", "sequence", "sequence", "breakouts", "breakouts"],
        "performed_on": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-01-05", "2026-01-07", "2026-01-12"]),
        "completion": ["full", "full", "full", "partial", "full"],
        "pain_before": pd.array([2, 2, None, 3, 2], dtype="Int64"), "pain_after": pd.array([5, 2, None, 3, 4], dtype="Int64")})


def test_headline_chart_shows_both_sides_mdc_band_target_and_weekly_breakouts():
    fig = charts.rom_progress(measurements(), PROGRAMS, sessions(), "P1", patients=PATIENTS)
    top, bottom = fig.axes
    assert top.get_ylabel() == "hip IR (degrees)"
    labels = top.get_legend_handles_labels()[1]
    assert labels == ["left hip", "right hip (involved)", "right baseline +/- MDC (5.4 degrees)",
                      "target 33 degrees (uninvolved side's mean)"]  # mean of 33, 33, 34
    assert "breakout sessions" in bottom.get_ylabel()
    planned = [p.get_height() for p in bottom.patches if p.get_facecolor()[3] == 0]
    done = [p.get_height() for p in bottom.patches if p.get_facecolor()[3] > 0]
    assert planned == [3, 3] and done == [2, 1]


def _day_cells(ax) -> list:
    """The fill colour of each day cell of an adherence calendar (one collection of rectangles)."""
    (cells,) = [c for c in ax.collections if isinstance(c, PatchCollection)]
    return list(cells.get_facecolors()) if len(cells.get_paths()) else []


def test_adherence_calendar_colours_each_planned_day():
    fig = charts.adherence_calendar(PROGRAMS, sessions(), "P1")
    cells = _day_cells(fig.axes[0])
    assert len(cells) == 14
    colours = [tuple(round(c, 3) for c in colour[:3]) for colour in cells]
    green, yellow, red = ((0.0, 0.62, 0.451), (0.941, 0.894, 0.259), (0.835, 0.369, 0.0))
    assert colours[0] == green          # Mon 5 Jan: both sessions done
    assert colours[2] == yellow         # Wed 7 Jan: breakout partial, sequence not done
    assert colours[1] == red            # Tue 6 Jan: nothing done
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("B") == 6


def test_pain_chart_draws_rises_thick():
    fig = charts.pain_chart(sessions(), PROGRAMS, "P1")
    widths = [w for c in fig.axes[0].collections if hasattr(c, "get_linewidths") for w in c.get_linewidths()]
    assert widths.count(2.5) == 2  # the two breakout rises (2->5, 2->4)
    assert fig.axes[0].get_ylabel() == "pain (NPRS 0-10)"


def test_pain_chart_shows_the_next_morning_on_the_following_day_and_the_acceptable_limit():
    import matplotlib.dates as mdates

    log = sessions().assign(pain_next_day=pd.array([4] + [None] * (len(sessions()) - 1), dtype="Int64"))
    ax = charts.pain_chart(log, PROGRAMS, "P1").axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "breakout session: next morning" in labels
    diamonds = ax.collections[[i for i, c in enumerate(ax.collections) if c.get_label() == "breakout session: next morning"][0]]
    (x, y), = diamonds.get_offsets()
    first = pd.Timestamp(sessions()["performed_on"].min())
    assert mdates.num2date(x).replace(tzinfo=None) == first + pd.Timedelta(days=1) and y == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "above 5/10:\nover the pain-monitoring limit"
    assert not ax.texts  # the limit is named in the legend, never written over the points


def test_a_first_visit_alone_is_shown_on_a_few_weeks_not_years():
    import matplotlib.dates as mdates

    first = measurements().iloc[[0]]
    empty = PROGRAMS.iloc[:0]
    top, bottom = charts.rom_progress(first, empty, sessions().iloc[:0], "P1", patients=PATIENTS).axes
    low, high = (mdates.num2date(x).replace(tzinfo=None) for x in bottom.get_xlim())
    assert pd.Timedelta(weeks=4) <= high - low <= pd.Timedelta(weeks=5)  # matplotlib alone spreads it over years
    assert low < pd.Timestamp("2026-01-05") < high
    full = charts.rom_progress(measurements(), PROGRAMS, sessions(), "P1", patients=PATIENTS).axes[1]
    assert full.get_xlim()[1] - full.get_xlim()[0] < 40  # two weeks of data: padded to four, in days


def test_pain_chart_of_sessions_without_a_program():
    fig = charts.pain_chart(sessions(), PROGRAMS.iloc[:0], "P1")  # a session logged before any program
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["session (no program on record): after", "session (no program on record): before"]


def test_cohort_charts_and_forest_plot():
    c = generate_clinic(60, seed=2)
    v = cohort_visits(c["measurements"], c["patients"], c["programs"])
    fig = charts.cohort_trajectories(v)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["daily (n = 30): mean, 95% CI", "three-per-week (n = 30): mean, 95% CI"]
    assert "degrees" in fig.axes[0].get_ylabel()
    out = patient_outcomes(c["measurements"], c["patients"], c["programs"], c["sessions"])
    fig = charts.dose_response_chart(out)
    slope = dose_response(out).set_index("term").loc["breakouts_per_week_to_week", "estimate"]  # adjusted, as the table
    ax = fig.axes[0]
    assert f"adjusted fit, {slope:+.2f} degrees per breakout/week" in ax.get_title(loc="left")
    handles, labels = ax.get_legend_handles_labels()
    fits = [h for h, lab in zip(handles, labels) if lab.endswith(": adjusted fit")]
    assert len(fits) == 2 and all(len(h.get_xdata()) > 0 for h in fits)  # the legend names lines that are drawn


def test_forest_plot_keeps_labels_and_numbers_clear_of_the_plot():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    table = pd.DataFrame({"label": ["primary (cLDA, all visits)", "per protocol"], "estimate": [1.04, 1.5],
                          "ci_low": [0.2, -0.55], "ci_high": [1.84, 2.5]})
    fig = charts.forest_plot(table, unit="degrees")
    plot, names, numbers = fig.axes
    assert plot.get_xlabel() == "difference (degrees)"
    texts = {t.get_text(): t for axes in (names, numbers) for t in axes.texts}
    assert texts["primary (cLDA, all visits)"].get_position()[1] > texts["per protocol"].get_position()[1]
    assert {"1.0 (0.2 to 1.8)", "1.5 (-0.6 to 2.5)"} <= set(texts)  # 0.1 degree, half away from zero
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = plot.get_window_extent(renderer)
    for text in texts.values():  # no label or number is crossed by the axis or an error bar
        assert not text.get_window_extent(renderer).overlaps(box), text.get_text()
    plain = charts.forest_plot(table, unit="degrees", favours=("3x/week", "daily")).axes[0]
    sides = {t.get_text(): t.xy[0] for t in plain.texts}
    assert sides == {"<- favours 3x/week": 0, "favours daily ->": 0}  # each side of the line of no difference
    assert [t.get_horizontalalignment() for t in plain.texts] == ["right", "left"]


def test_every_chart_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert charts.pain_chart(sessions(), PROGRAMS, "P1", ax=ax) is fig
    assert charts.adherence_calendar(PROGRAMS, sessions(), "P1", ax=fig.add_subplot(2, 1, 2)) is fig
    top, bottom = Figure().subplots(2, 1)
    assert charts.rom_progress(measurements(), PROGRAMS, sessions(), "P1", axes=(top, bottom)) is top.figure
    times = pd.DataFrame({"arm": ["daily", "daily", "three-per-week"], "days": [4.0, 9.0, 12.0],
                          "event": [True, False, False]})
    km = Figure().add_subplot()
    assert charts.time_to_event_chart(times, ax=km) is km.figure
    steps = {line.get_label().split(" (")[0]: line.get_ydata().tolist() for line in km.get_lines()}
    assert steps == {"daily": [1.0, 0.5, 0.5], "three-per-week": [1.0, 1.0]}  # 1 of 2 by day 4; none of 1


def test_empty_inputs_draw_an_explanation_instead_of_failing():
    fig = charts.rom_progress(measurements().iloc[0:0], PROGRAMS, sessions(), "P1")
    assert "no measurements on this method yet" in [t.get_text() for t in fig.axes[0].texts]
    fig = charts.adherence_calendar(PROGRAMS.iloc[0:0], sessions(), "P1")
    assert "no program" in [t.get_text() for t in fig.axes[0].texts]
    fig = charts.pain_chart(sessions().iloc[0:0], PROGRAMS, "P1")
    assert "no pain scores recorded" in [t.get_text() for t in fig.axes[0].texts]


@pytest.mark.parametrize("draw", [
    lambda m, p, s: charts.rom_progress(m, p, s, "P1", patients=PATIENTS),
    lambda m, p, s: charts.adherence_calendar(p, s, "P1"),
    lambda m, p, s: charts.pain_chart(s, p, "P1"),
])
def test_charts_do_not_modify_their_inputs(draw):
    m, p, s = measurements(), PROGRAMS.copy(), sessions()
    before = m.copy(), p.copy(), s.copy()
    draw(m, p, s)
    for now, then in zip((m, p, s), before):
        pd.testing.assert_frame_equal(now, then)


def _overlapping_labels(fig) -> list[tuple[str, str]]:
    """Pairs of tick labels whose drawn boxes overlap, at the figure's own size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    if boxes[i].overlaps(boxes[j]):
                        pairs.append((labels[i].get_text(), labels[j].get_text()))
    return pairs


def test_both_hips_involved_are_two_series_each_with_its_own_colour_marker_and_legend_entry():
    both = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["both"]})
    fig = charts.rom_progress(measurements(), PROGRAMS, sessions(), "P1", patients=both)
    top = fig.axes[0]
    lines = {line.get_label(): line for line in top.get_lines() if line.get_label().endswith("(involved)")}
    assert set(lines) == {"left hip (involved)", "right hip (involved)"}
    left, right = lines["left hip (involved)"], lines["right hip (involved)"]
    assert left.get_color() != right.get_color() and left.get_marker() != right.get_marker()
    labels = top.get_legend_handles_labels()[1]
    assert len(labels) == len(set(labels))  # no entry twice
    assert labels.count("target 29 degrees (normative band, low end)") == 1


def test_no_chart_has_tick_labels_running_into_each_other():
    clinic = generate_clinic(6, seed=2)
    m, p, pr, s = (clinic[t] for t in ("measurements", "patients", "programs", "sessions"))
    pid = pr["patient_id"].iloc[0]
    figures = [charts.rom_progress(m, pr, s, pid, patients=p), charts.pain_chart(s, pr, pid),
               charts.adherence_calendar(pr, s, pid)]
    for fig in figures:
        assert _overlapping_labels(fig) == [], fig.axes[0].get_title()
    pain = figures[1].axes[0]
    assert type(pain.xaxis.get_major_formatter()).__name__ == "ConciseDateFormatter"


def test_the_adherence_calendar_draws_only_weeks_with_a_plan_and_marks_the_break_between_programs():
    later = pd.DataFrame({"program_id": ["A", "B"], "patient_id": ["P1", "P1"], "protocol_id": "hip-ir-breakouts",
                          "protocol_version": "1.0.0", "schedule": ["three-per-week", "three-per-week"],
                          "start_date": ["2026-01-05", "2026-12-07"], "end_date": ["2026-01-18", "2026-12-20"]})
    fig = charts.adherence_calendar(later, sessions(), "P1")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["05 Jan 26", "12 Jan 26", "07 Dec 26", "14 Dec 26"]
    assert any(t.get_text() == "46 weeks without a program" for t in ax.texts)  # 19 Jan to 30 Nov
    assert len(_day_cells(ax)) == 28
    assert _overlapping_labels(fig) == []


def _programs(*rows) -> pd.DataFrame:
    """Stored programs of patient P1 from (schedule, start, end) rows."""
    return pd.DataFrame({"program_id": [f"P1-{start}-{schedule}" for schedule, start, _ in rows], "patient_id": "P1",
                         "protocol_id": "hip-ir-breakouts", "protocol_version": "1.0.0",
                         "schedule": [r[0] for r in rows], "start_date": [r[1] for r in rows],
                         "end_date": [r[2] for r in rows]})


SWITCHED = _programs(("daily", "2026-01-05", "2026-01-11"), ("three-per-week", "2026-01-12", "2026-01-25"))
"""Daily breakouts for a week, then 3x/week from Monday 12 January (as switch_schedule stores it)."""


def test_schedule_changes_tells_a_switch_from_a_new_program_after_a_gap():
    programs = pd.concat([
        _programs(("three-per-week", "2026-02-28", "2026-03-29"),  # 3x/week, five days after daily ended
                  ("daily", "2026-01-05", "2026-02-01"),
                  ("daily", "2026-02-02", "2026-02-22"),  # the same schedule carried on: no change
                  ("three-per-week", "2026-03-30", "2026-04-12"),
                  ("daily", "2026-09-07", "2026-10-04")),  # months later: a new course, not a switch
        _programs(("three-per-week", "2026-01-19", "2026-02-01")).assign(patient_id="P2")])
    before = programs.copy()
    changes = schedule_changes(programs, "P1")
    assert changes.to_dict("list") == {
        "date": [pd.Timestamp("2026-02-28"), pd.Timestamp("2026-09-07")],
        "from_schedule": ["daily", "three-per-week"], "to_schedule": ["three-per-week", "daily"],
        "kind": ["switch", "new program after a gap"]}
    assert schedule_changes(programs, "P1", max_gap_days=4)["kind"].tolist() == [
        "new program after a gap", "new program after a gap"]
    assert schedule_changes(programs, "P2").empty and schedule_changes(programs, "nobody").empty
    pd.testing.assert_frame_equal(programs, before)


def _vertical_lines(ax) -> dict[pd.Timestamp, object]:
    """The vertical lines of an axes by their date."""
    import matplotlib.dates as mdates

    return {pd.Timestamp(mdates.num2date(mdates.date2num(line.get_xdata()[0]))).tz_localize(None): line
            for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2}


def test_the_ir_chart_marks_a_schedule_switch_on_both_panels_with_a_label():
    top, bottom = charts.rom_progress(measurements(), SWITCHED, sessions(), "P1", patients=PATIENTS).axes
    switch = pd.Timestamp("2026-01-12")
    for ax in (top, bottom):
        line = _vertical_lines(ax)[switch]
        assert line.get_color() == charts.PALETTE["black"] and line.get_linestyle() == "-."
    assert "switched to breakouts 3x/week\n12 Jan 2026" in [t.get_text() for t in top.texts]
    later = _programs(("daily", "2026-01-05", "2026-01-18"), ("three-per-week", "2026-03-02", "2026-03-15"))
    top, bottom = charts.rom_progress(measurements(), later, sessions(), "P1", patients=PATIENTS).axes
    line = _vertical_lines(bottom)[pd.Timestamp("2026-03-02")]
    assert line.get_color() == charts.PALETTE["grey"] and line.get_linestyle() == ":"  # not drawn as a switch
    assert [t.get_text() for t in top.texts] == ["new program after a gap:\nbreakouts 3x/week\n02 Mar 2026"]
    assert not _vertical_lines(charts.rom_progress(measurements(), PROGRAMS, sessions(), "P1").axes[0])
    before = charts.rom_progress(measurements(), SWITCHED, sessions(), "P1", patients=PATIENTS, as_of="2026-01-11")
    assert not _vertical_lines(before.axes[0]) and not before.axes[0].texts  # planned, not yet happened


def test_the_calendar_draws_a_line_before_the_first_day_of_the_new_schedule_and_names_it():
    switched = _programs(("daily", "2026-01-05", "2026-01-14"), ("three-per-week", "2026-01-15", "2026-01-25"))
    ax = charts.adherence_calendar(switched, sessions(), "P1").axes[0]
    assert "switched to breakouts 3x/week\n15 Jan 2026" in [t.get_text() for t in ax.texts]
    (edge,) = [line for line in ax.get_lines() if line.get_color() == charts.PALETTE["black"]]
    # Thursday 15 January, second row: under Mon-Wed of that row, then up before Thursday, then over Thu-Sun
    assert [*edge.get_xdata(), *edge.get_ydata()] == pytest.approx([-0.04, 2.96, 2.96, 6.96, 1.96, 1.96, 0.96, 0.96])
    monday = charts.adherence_calendar(SWITCHED, sessions(), "P1").axes[0]
    (edge,) = [line for line in monday.get_lines() if line.get_color() == charts.PALETTE["black"]]
    assert list(edge.get_ydata()) == pytest.approx([0.96, 0.96])  # a Monday: the line between the two weeks
    assert _overlapping_labels(monday.figure) == []


def test_the_report_charts_draw_no_text_under_8_5_points():
    from matplotlib.text import Text

    figures = [charts.rom_progress(measurements(), SWITCHED, sessions(), "P1", patients=PATIENTS),
               charts.adherence_calendar(SWITCHED, sessions(), "P1"), charts.pain_chart(sessions(), SWITCHED, "P1")]
    for fig in figures:
        charts.png(fig)  # tick labels are made when the figure is drawn
        sizes = {t.get_text(): t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()}
        smallest = sorted(sizes.items(), key=lambda kv: kv[1])[:3]
        assert len(sizes) > 10 and min(sizes.values()) >= charts.LEGIBLE_PT >= 8.5, smallest
