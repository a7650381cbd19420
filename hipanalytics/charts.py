"""Charts for reports and notebooks: matplotlib figures, returned and never shown.

Figures are built without pyplot (no global state, no backend to choose, safe in worker processes).
Every function takes ``ax=None`` (or ``axes=None``) and returns the Figure, uses the Okabe-Ito
colour-blind-safe palette, and labels units. Data preparation is done by the analysis functions;
these only draw.

Examples
--------
>>> t = pd.DataFrame({"label": ["daily - 3x/week"], "estimate": [1.4], "ci_low": [0.8], "ci_high": [2.1]})
>>> fig = forest_plot(t, unit="degrees")
>>> fig.axes[0].get_xlabel()
'difference (degrees)'
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.collections import PatchCollection
from matplotlib.patches import Patch, Rectangle

from .analysis.adherence import adherence
from .analysis.episodes import schedule_changes
from .analysis.rom import PRIMARY_METHOD, method_in_words, rom_trends, select_method, visits
from .numbers import fixed, whole
from .program import breakout_templates, plan_table

__all__ = ["PALETTE", "png", "lay_out_once", "date_axis", "rom_progress", "adherence_calendar",
           "pain_chart", "cohort_trajectories", "dose_response_chart", "forest_plot", "time_to_event_chart", "tipping_point_chart", "consort_flow",
           "power_curve"]

PALETTE = {  # Okabe & Ito (2008), distinguishable with the common colour-vision deficiencies
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999",
}
SCHEDULE_COLOURS = {"daily": PALETTE["vermillion"], "three-per-week": PALETTE["blue"]}
SIDE_STYLES = {"left": (PALETTE["vermillion"], "o"), "right": (PALETTE["blue"], "s")}
"""Each side its own colour and marker, so two involved hips never look alike; the uninvolved side is
drawn dashed with hollow markers in its side's colour."""
CHANGE_STYLES = {"switch": {"color": PALETTE["black"], "linestyle": "-.", "linewidth": 1.3},
                 "new program after a gap": {"color": PALETTE["grey"], "linestyle": ":", "linewidth": 1.6}}
"""How a change of program is marked on a time axis (see :func:`hipanalytics.analysis.episodes.schedule_changes`): a schedule
switch dash-dotted in black, a new program after a gap dotted in grey (told apart by the line
style as well as the colour)."""
LEGIBLE_PT = 8.5
"""The smallest font of the patient report's charts (legends, tick labels, labels in the chart):
they print at their drawn size (see :func:`hipanalytics.reports.show`), so this is the size on paper."""


def lay_out_once(figure: Figure, dpi: float) -> None:
    """Run the figure's layout engine once at ``dpi`` and fix the result, so the next save draws once.

    With a layout engine (``layout="constrained"``) ``savefig`` draws the figure twice: once to lay
    it out, once to render. Laying out first and switching the engine off gives the same pixels for
    one draw.
    """
    engine = figure.get_layout_engine()
    if engine is None:
        return
    figure.set_dpi(dpi)
    engine.execute(figure)
    with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        figure.set_layout_engine(None)


def png(figure: Figure, *, dpi: float = 110) -> bytes:
    """A figure as PNG bytes, laid out once and drawn once (see :func:`lay_out_once`)."""
    import io

    lay_out_once(figure, dpi)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def date_axis(ax: Axes) -> None:
    """Concise date ticks (no labels running together), as every time axis here uses."""
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _figure(ax, **kwargs) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(**kwargs)
    return fig, fig.add_subplot()


def _primary(measurements: pd.DataFrame, patient_id: str, method: dict | None) -> pd.DataFrame:
    m = select_method(measurements[measurements["patient_id"] == patient_id], method)
    return m.assign(measured_on=pd.to_datetime(m["measured_on"]))


def _change_labels(changes: pd.DataFrame, programs: pd.DataFrame) -> list[str]:
    """Each change in words with its date: "switched to breakouts 3x/week", "new program after a
    gap: daily breakouts", the schedules named by their protocol's titles."""
    labels = []
    for row in changes.itertuples():
        title = _schedule_title(row.to_schedule, programs)
        words = f"switched to {title}" if row.kind == "switch" else f"new program after a gap:\n{title}"
        labels.append(f"{words}\n{row.date:%d %b %Y}")
    return labels


def _schedule_title(schedule: str, programs: pd.DataFrame) -> str:
    """A schedule as its protocol titles it, first letter in lower case ("breakouts 3x/week");
    its id where the protocol is not known."""
    from .protocol import load_protocol

    rows = programs[programs["schedule"] == schedule]
    if rows.empty or not {"protocol_id", "protocol_version"} <= set(rows.columns):
        return str(schedule)
    try:
        title = load_protocol(f"{rows['protocol_id'].iloc[0]}@{rows['protocol_version'].iloc[0]}").resolve_schedule(
            schedule).title
    except (KeyError, ValueError, OSError):
        return str(schedule)
    return title[:1].lower() + title[1:]


def _mark_changes(top: Axes, bottom: Axes, changes: pd.DataFrame, labels: list[str]) -> None:
    """Vertical lines at each change through both panels of :func:`rom_progress`, labelled at the
    top of the IR panel (left of a line in the right part of the chart, else right of it), in a
    band added above the data so no label covers a point."""
    import matplotlib.transforms as mtransforms

    if changes.empty:
        return
    low, high = top.get_ylim()
    top.set_ylim(low, high + 0.28 * (high - low))
    left, right = top.get_xlim()
    for i, (row, label) in enumerate(zip(changes.itertuples(), labels)):
        style = CHANGE_STYLES[row.kind]
        for ax in (top, bottom):
            ax.axvline(row.date, zorder=1, **style)
        x = mpl.dates.date2num(row.date)
        on_right = (x - left) > 0.62 * (right - left)
        top.annotate(label, xy=(x, 1), xycoords=mtransforms.blended_transform_factory(top.transData, top.transAxes),
                     xytext=(-4 if on_right else 4, -3 - 30 * (i % 2)), textcoords="offset points",
                     ha="right" if on_right else "left", va="top", fontsize=LEGIBLE_PT, linespacing=1.15,
                     bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def rom_progress(measurements: pd.DataFrame, programs: pd.DataFrame, sessions: pd.DataFrame,
                 patient_id: str, *, patients: pd.DataFrame | None = None, method: dict | None = None,
                 mdc: float | None = None, as_of=None, axes=None, trends: pd.DataFrame | None = None) -> Figure:
    """The headline chart: hip IR over time per side, above weekly breakout sessions planned vs done.

    The top panel shows the visit values (mean of trials) of each side on one measurement method,
    the involved side in vermillion, the other side in blue (dashed); a band of +/- MDC around the
    involved side's baseline marks changes within measurement error, and a dotted line the target
    (the other side's latest value, or the normative band's low end when both hips are involved).
    The bottom panel shows, per week, the breakout sessions planned (outline) and done (filled).
    A change of program (:func:`~hipanalytics.analysis.episodes.schedule_changes`: a schedule switch, or a new program after a
    gap) is a vertical line through both panels, labelled at the top. The legend stands under the
    panels, so it covers no point; the figure is as wide as an A4 page's text and its fonts are
    :data:`LEGIBLE_PT` or more, printed at that size.

    Parameters
    ----------
    axes : (Axes, Axes), optional
        Where to draw; by default a new two-panel figure.
    trends : DataFrame, optional
        :func:`~hipanalytics.analysis.rom.rom_trends` of these measurements (on ``method``, up to
        ``as_of``, with ``patients`` and ``mdc``) when the caller has it already, as a report does.
    """
    m = _primary(measurements, patient_id, method)
    if as_of is not None:
        m = m[m["measured_on"] <= pd.Timestamp(as_of)]
    if axes is None:
        fig = Figure(figsize=(7.1, 4.4), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    else:
        top, bottom = axes
        fig = top.figure
    pats = patients if patients is not None else pd.DataFrame({"patient_id": [], "involved_side": []})
    involved_side = pats.set_index("patient_id")["involved_side"].get(patient_id) if len(pats) else None
    if trends is None and len(m):
        trends = rom_trends(m, patients=patients, mdc=mdc)
    v = visits(m) if len(m) else m
    targets = {}
    for side in ("left", "right"):
        points = v[v["side"] == side] if len(v) else v
        if points is None or points.empty:
            continue
        involved = involved_side in (side, "both")
        colour, marker = SIDE_STYLES[side]
        top.plot(pd.to_datetime(points["measured_on"]), points["degrees"], marker=marker, color=colour,
                 markerfacecolor=colour if involved else "white", linestyle="-" if involved else "--",
                 linewidth=2 if involved else 1.3, label=f"{side} hip" + (" (involved)" if involved else ""))
        if involved and trends is not None:
            row = trends[trends["side"] == side].iloc[0]
            low, high = row["baseline_deg"] - row["mdc_deg"], row["baseline_deg"] + row["mdc_deg"]
            label = f"{side} baseline +/- MDC ({row['mdc_deg']:g} degrees)"
            if involved_side == "both":  # two filled bands would blend: each band's edges in its side's colour
                top.axhline(low, color=colour, linestyle=(0, (4, 3)), linewidth=0.9, alpha=0.8, label=label)
                top.axhline(high, color=colour, linestyle=(0, (4, 3)), linewidth=0.9, alpha=0.8)
            else:
                top.axhspan(low, high, color=colour, alpha=0.10, label=label)
            if pd.notna(row["target_deg"]):
                targets[whole(row["target_deg"])] = row["target_source"]
    for value, source in targets.items():  # one line per distinct target: both hips share the normative one
        kind = "uninvolved side's mean" if source.startswith("uninvolved") else "normative band, low end"
        top.axhline(float(value), color=PALETTE["green"], linestyle=":", linewidth=1.5,
                    label=f"target {value} degrees ({kind})")
    if v is None or len(v) == 0:
        top.text(0.5, 0.5, "no measurements on this method yet", transform=top.transAxes, ha="center",
                 color=PALETTE["grey"])
    top.set_ylabel("hip IR (degrees)")
    top.set_title(f"{patient_id}: hip IR ({method_in_words(method or PRIMARY_METHOD)})", loc="left")
    top.grid(alpha=0.3)

    progs = programs[programs["patient_id"] == patient_id]
    logged = sessions[sessions["patient_id"] == patient_id]
    weekly = (adherence(progs, logged, as_of=as_of) if len(progs) else pd.DataFrame())
    if len(weekly):
        b = weekly[weekly["breakouts"]].groupby("week_start")[["planned", "done"]].sum()
        x = pd.to_datetime(b.index) + pd.Timedelta(days=3.5)
        bottom.bar(x, b["done"], width=5, color=PALETTE["orange"], alpha=0.9, label="breakout sessions done")
        bottom.bar(x, b["planned"], width=5, facecolor="none", edgecolor=PALETTE["black"],
                   label="breakout sessions planned", zorder=3)  # outline on top, visible where all was done
        bottom.set_ylim(0, max(b["planned"].max(), b["done"].max(), 1) * 1.15)
    bottom.set_ylabel("breakout sessions\nper week")
    bottom.grid(axis="y", alpha=0.3)
    date_axis(bottom)
    shown = [pd.to_datetime(v["measured_on"])] if len(v) else []
    if len(weekly):
        shown.append(pd.Series(x))
    if shown:
        _at_least_weeks(bottom, pd.concat(shown), weeks=4)
    changes = schedule_changes(progs, patient_id)
    if as_of is not None:  # a switch planned after the report date has not happened
        changes = changes[changes["date"] <= pd.Timestamp(as_of)]
    _mark_changes(top, bottom, changes, _change_labels(changes, progs))
    handles, labels = (sum(pair, []) for pair in zip(top.get_legend_handles_labels(),
                                                      bottom.get_legend_handles_labels()))
    if handles and axes is None:  # under both panels, in two columns
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=LEGIBLE_PT, frameon=False)
    elif handles:
        top.legend(handles, labels, fontsize=LEGIBLE_PT, framealpha=0.85, edgecolor="none")
    return fig


def _at_least_weeks(ax: Axes, dates: pd.Series, *, weeks: int) -> None:
    """Show at least ``weeks`` weeks around ``dates``: a first visit alone would otherwise sit on an
    axis matplotlib spreads over years (its default for a single date)."""
    first, last = dates.min(), dates.max()
    if last - first >= pd.Timedelta(weeks=weeks):
        return
    middle = first + (last - first) / 2
    half = pd.Timedelta(weeks=weeks) / 2 + pd.Timedelta(days=2)
    ax.set_xlim(middle - half, middle + half)


def adherence_calendar(programs: pd.DataFrame, sessions: pd.DataFrame, patient_id: str, *, as_of=None,
                       ax=None) -> Figure:
    """A day grid of the programs: each day coloured by what was done of what was planned.

    Colours: all planned sessions done (green), some done or partial (yellow), none done (vermillion),
    future (light grey). Breakout days carry a "B". Rows are ISO weeks (Monday first); only weeks with
    a plan or a logged session are drawn, and a gap between programs shows as a labelled break. A
    change of program (:func:`~hipanalytics.analysis.episodes.schedule_changes`) is a line between the last day of the old program
    and the first of the new one, named with its date right of the grid. A row is a line of text
    high, so twelve weeks fit half an A4 page; every font is :data:`LEGIBLE_PT` or more.
    """
    own = ax is None
    fig, ax = _figure(ax, figsize=(6.6, 5), layout="constrained")
    progs = programs[programs["patient_id"] == patient_id]
    plan = plan_table(progs)
    if plan.empty:
        ax.text(0.5, 0.5, "no program", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    logged = sessions[sessions["patient_id"] == patient_id].assign(
        performed_on=lambda d: pd.to_datetime(d["performed_on"]))
    done = logged[logged["completion"] == "full"].groupby("performed_on").size()
    partial = logged[logged["completion"] == "partial"].groupby("performed_on").size()
    per_day = plan.groupby("date").agg(planned=("session", "size"), breakout=("breakouts", "any"))
    per_day["full"] = done.reindex(per_day.index).fillna(0)
    per_day["partial"] = partial.reindex(per_day.index).fillna(0)
    cut = pd.Timestamp(as_of) if as_of is not None else None
    monday = lambda day: day - pd.Timedelta(days=day.weekday())  # noqa: E731
    weeks = sorted({monday(d) for d in per_day.index} | {monday(d) for d in logged["performed_on"]})
    rows: dict[pd.Timestamp, float] = {}
    labels, y, gaps = [], 0.0, []
    for i, week in enumerate(weeks):
        if i and (week - weeks[i - 1]).days > 7:  # a break: weeks with neither a plan nor a session
            skipped = (week - weeks[i - 1]).days // 7 - 1
            gaps.append((y, skipped))
            y += 0.6
        rows[week] = y
        labels.append((y, week.strftime("%d %b %y")))
        y += 1
    colours = {"all": PALETTE["green"], "some": PALETTE["yellow"], "none": PALETTE["vermillion"],
               "future": "#EEEEEE"}
    cells, fills = [], []  # one collection of day cells: drawn at once, no per-patch bookkeeping
    for day, row in per_day.iterrows():
        top = rows[monday(day)]
        if cut is not None and day > cut:
            state = "future"
        elif row["full"] >= row["planned"]:
            state = "all"
        elif row["full"] + row["partial"] > 0:
            state = "some"
        else:
            state = "none"
        cells.append(Rectangle((day.weekday(), top), 0.92, 0.92))
        fills.append(colours[state])
        # inside the axes (clipped to them), so the layout need not measure each one; the day and
        # its "B" side by side, so a week is one line of text high
        ax.text(day.weekday() + 0.3, top + 0.48, f"{day.day}", ha="center", va="center", fontsize=LEGIBLE_PT,
                clip_on=True)
        if row["breakout"]:
            ax.text(day.weekday() + 0.68, top + 0.48, "B", ha="center", va="center", fontsize=LEGIBLE_PT,
                    weight="bold", clip_on=True)
    ax.add_collection(PatchCollection(cells, facecolors=fills, edgecolors=fills), autolim=False)
    for top, skipped in gaps:
        ax.text(3.46, top + 0.3, f"{skipped} week{'s' if skipped != 1 else ''} without a program",
                ha="center", va="center", fontsize=LEGIBLE_PT, style="italic")
        ax.axhline(top + 0.3, xmin=0.0, xmax=0.25, color=PALETTE["grey"], linewidth=0.8, linestyle=(0, (2, 2)))
        ax.axhline(top + 0.3, xmin=0.75, xmax=1.0, color=PALETTE["grey"], linewidth=0.8, linestyle=(0, (2, 2)))
    changes = schedule_changes(progs, patient_id)
    for change, label in zip(changes.itertuples(), _change_labels(changes, progs)):
        top, k = rows[monday(change.date)], change.date.weekday()
        edge = [(-0.04, top - 0.04), (6.96, top - 0.04)] if k == 0 else [
            (-0.04, top + 0.96), (k - 0.04, top + 0.96), (k - 0.04, top - 0.04), (6.96, top - 0.04)]
        style = {**CHANGE_STYLES[change.kind], "linewidth": 2.2}
        if change.kind == "switch":
            style["linestyle"] = "-"  # solid: a dash pattern would break up on the gaps between the cells
        ax.plot(*zip(*edge), solid_capstyle="butt", clip_on=False, **style)
        ax.annotate(label, xy=(6.98, top - 0.04), xytext=(7.3, top - 0.04), va="center", ha="left",
                    fontsize=LEGIBLE_PT, linespacing=1.15, annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": style["color"], "linewidth": 1.2})
    ax.set_xlim(-0.1, 7)
    ax.set_ylim(y, -0.1)
    ax.set_xticks(np.arange(7) + 0.46, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], fontsize=LEGIBLE_PT + 0.5)
    ax.set_yticks([t + 0.46 for t, _ in labels], [text for _, text in labels], fontsize=LEGIBLE_PT)
    ax.tick_params(length=0, top=False, labeltop=True, bottom=False, labelbottom=False)  # weekdays on top
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{patient_id}: sessions done per day (B = breakout day)", loc="left")
    ax.legend(handles=[Patch(color=colours[k], label=t) for k, t in
                       (("all", "all done"), ("some", "some / partial"), ("none", "none done"), ("future", "to come"))],
              loc="upper center", bbox_to_anchor=(0.5, -0.01), ncols=4, fontsize=LEGIBLE_PT, frameon=False)
    if own:  # the grid sets the height: a row per week drawn
        fig.set_figheight(max(2.2, 0.24 * y + 1.1))
    return fig


def pain_chart(sessions: pd.DataFrame, programs: pd.DataFrame, patient_id: str, *, ax=None) -> Figure:
    """Pain (NPRS 0-10) before and after each session, and the next morning: a segment from before
    to after, breakout sessions in vermillion, others in grey; a rise of 2 or more points drawn
    solid and thick; the next-morning score a diamond on the following day, dotted from the score
    after; the band above 5/10, more than the pain-monitoring model accepts with exercise
    (:data:`hipanalytics.analysis.tolerance.ACCEPTABLE_PAIN_NPRS`), shaded."""
    from .analysis.tolerance import ACCEPTABLE_PAIN_NPRS

    fig, ax = _figure(ax, figsize=(7.1, 3.4), layout="constrained")  # the width of an A4 page's text
    s = sessions[(sessions["patient_id"] == patient_id) & sessions["pain_before"].notna() & sessions["pain_after"].notna()]
    s = s.assign(performed_on=pd.to_datetime(s["performed_on"]))
    mine = programs[programs["patient_id"] == patient_id] if len(programs) else programs
    # without a program no session is known to be a breakout (its templates come from the programs)
    breakout = s["session"].isin(breakout_templates(mine)) if len(mine) else pd.Series(False, index=s.index)
    other = "movement sequence" if len(mine) else "session (no program on record)"
    band = f"above {ACCEPTABLE_PAIN_NPRS:g}/10:\nover the pain-monitoring limit"  # in the legend: never over a point
    ax.axhspan(ACCEPTABLE_PAIN_NPRS + 0.5, 10.5, color=PALETTE["vermillion"], alpha=0.07, lw=0)
    ax.axhline(ACCEPTABLE_PAIN_NPRS + 0.5, color=PALETTE["vermillion"], lw=0.8, ls="--", alpha=0.6)
    for is_breakout, colour, label in ((False, PALETTE["grey"], other), (True, PALETTE["vermillion"], "breakout session")):
        part = s[breakout == is_breakout] if len(s) else s
        if part.empty:
            continue
        rise = (part["pain_after"] - part["pain_before"]) >= 2
        ax.vlines(part["performed_on"], part["pain_before"], part["pain_after"], color=colour,
                  linewidth=np.where(rise, 2.5, 1.0), alpha=0.9)
        ax.scatter(part["performed_on"], part["pain_after"], color=colour, s=14, label=f"{label}: after", zorder=3)
        ax.scatter(part["performed_on"], part["pain_before"], facecolor="white", edgecolor=colour, s=14,
                   label=f"{label}: before", zorder=3)
        if "pain_next_day" in part:
            morning = part[part["pain_next_day"].notna()]
            if len(morning):
                next_day = morning["performed_on"] + pd.Timedelta(days=1)
                for x0, y0, x1, y1 in zip(morning["performed_on"], morning["pain_after"], next_day,
                                          morning["pain_next_day"]):
                    ax.plot([x0, x1], [y0, y1], color=colour, lw=0.8, ls=":", alpha=0.9)
                ax.scatter(next_day, morning["pain_next_day"], marker="D", color=colour, s=16,
                           label=f"{label}: next morning", zorder=3)
    if s.empty:
        ax.text(0.5, 0.5, "no pain scores recorded", ha="center", transform=ax.transAxes, color=PALETTE["grey"])
    ax.set_ylim(-0.5, 10.5)
    ax.set_ylabel("pain (NPRS 0-10)", fontsize=LEGIBLE_PT + 0.5)
    date_axis(ax)
    ax.tick_params(labelsize=LEGIBLE_PT)
    if len(s):
        _at_least_weeks(ax, s["performed_on"], weeks=4)
    ax.set_title(f"{patient_id}: pain before -> after sessions, and the next morning (thick: rise of 2+ points)",
                 loc="left", fontsize=LEGIBLE_PT + 1)
    if ax.get_legend_handles_labels()[0]:  # below the plot: points reach every height
        from matplotlib.patches import Patch

        handles, labels = ax.get_legend_handles_labels()
        handles.append(Patch(facecolor=PALETTE["vermillion"], alpha=0.25, edgecolor=PALETTE["vermillion"], ls="--"))
        ax.legend(handles, [*labels, band], fontsize=LEGIBLE_PT, frameon=False, ncols=3, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16))
    ax.grid(alpha=0.3)
    return fig


def cohort_trajectories(cohort_visits_df: pd.DataFrame, *, ax=None, max_lines: int = 200) -> Figure:
    """Hip IR over weeks by schedule: thin individual lines under the weekly mean with its 95 % CI.

    Parameters
    ----------
    cohort_visits_df : DataFrame
        Output of :func:`hipanalytics.analysis.cohort_visits`.
    max_lines : int
        At most this many individual lines per schedule (a random, seeded sample) to keep it legible.
    """
    from scipy import stats

    fig, ax = _figure(ax, figsize=(7, 4.5), layout="constrained")
    d = cohort_visits_df.assign(week=np.rint(cohort_visits_df["weeks"]))
    rng = np.random.default_rng(0)
    for schedule, group in d.groupby("schedule"):
        colour = SCHEDULE_COLOURS.get(schedule, PALETTE["purple"])
        ids = group["patient_id"].unique()
        for pid in rng.choice(ids, size=min(max_lines, len(ids)), replace=False):
            one = group[group["patient_id"] == pid].sort_values("weeks")
            for _, side in one.groupby("side"):
                ax.plot(side["weeks"], side["degrees"], color=colour, alpha=0.08, linewidth=0.8)
        summary = group.groupby("week")["degrees"].agg(["mean", "std", "count"])
        summary = summary[summary["count"] >= 3]
        half = stats.t.ppf(0.975, summary["count"] - 1) * summary["std"] / np.sqrt(summary["count"])
        ax.fill_between(summary.index, summary["mean"] - half, summary["mean"] + half, color=colour, alpha=0.25)
        ax.plot(summary.index, summary["mean"], color=colour, linewidth=2.5,
                label=f"{schedule} (n = {len(ids)}): mean, 95% CI")
    ax.set_xlabel("weeks since time zero (allocation, else the program start)")
    ax.set_ylabel("hip internal rotation, involved side (degrees)")
    ax.set_title("IR trajectories by breakout schedule", loc="left")
    ax.legend(frameon=False, fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def dose_response_chart(outcomes: pd.DataFrame, *, value: str = "change_deg",
                        dose: str = "breakouts_per_week_to_week", ax=None) -> Figure:
    """Scatter of each patient's IR change at week N against the breakouts per week done up to it,
    by schedule, with the fit of :func:`hipanalytics.analysis.dose_response` (adjusted for arm and
    baseline IR): one line per arm over its range of doses, at the cohort's mean baseline, so the
    lines are parallel and their slope is the adjusted dose effect the table reports."""
    from .analysis.cohort import dose_response

    fig, ax = _figure(ax, figsize=(6.5, 4.5), layout="constrained")
    d = outcomes[[value, dose, "schedule", "baseline_deg"]].dropna()
    for schedule, group in d.groupby("schedule"):
        ax.scatter(group[dose], group[value], s=14, alpha=0.6, color=SCHEDULE_COLOURS.get(schedule, PALETTE["purple"]),
                   label=schedule)
    title = "Dose-response: breakouts done and IR gain"
    if len(d) >= 6 and d["schedule"].nunique() == 2:
        fit = dose_response(d, value=value, dose=dose).set_index("term")["estimate"]
        for schedule, group in d.groupby("schedule"):
            x = np.linspace(group[dose].min(), group[dose].max(), 20)
            y = (fit["intercept"] + fit[dose] * x + fit.get(f"schedule={schedule}", 0.0)
                 + fit["baseline_deg"] * d["baseline_deg"].mean())
            ax.plot(x, y, color=SCHEDULE_COLOURS.get(schedule, PALETTE["purple"]), linewidth=2,
                    label=f"{schedule}: adjusted fit")
        title += f"\nlines: adjusted fit, {fit[dose]:+.2f} degrees per breakout/week"
    ax.set_xlabel("breakout sessions done per week, time zero to the comparison week")
    ax.set_ylabel("IR change at the comparison week (degrees)")
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def forest_plot(table: pd.DataFrame, *, label: str = "label", unit: str = "", digits: int = 1,
                favours: tuple[str, str] | None = None, ax=None) -> Figure:
    """Estimates with 95 % CIs as a forest plot; a vertical line marks no difference (0).

    The labels and the numbers stand in their own columns left and right of the plot, so neither
    an axis nor an error bar crosses them.

    Parameters
    ----------
    table : DataFrame
        ``estimate``, ``ci_low``, ``ci_high`` and a label column (one row per estimate).
    unit : str
        Shown on the x axis, e.g. ``degrees``.
    digits : int
        Decimals of the numbers printed (0.1 degree by default).
    favours : (str, str), optional
        What a difference below and above 0 favours, written under the axis on each side of the
        line, e.g. ``("3x/week", "daily")`` for daily minus 3x/week.
    ax : Axes, optional
        Draw only the estimates into this axes (labels as tick labels, numbers in them).
    """
    n = len(table)
    y = np.arange(n)[::-1]
    numbers = [f"{fixed(r.estimate, digits)} ({fixed(r.ci_low, digits)} to {fixed(r.ci_high, digits)})"
               for r in table[["estimate", "ci_low", "ci_high"]].itertuples()]
    if ax is not None:
        fig = ax.figure
        ax.set_yticks(y, [f"{lab}: {num}" for lab, num in zip(table[label], numbers)])
    else:
        fig = Figure(figsize=(8, 0.5 * n + 1.3), layout="constrained")
        grid = fig.add_gridspec(1, 3, width_ratios=[2.6, 3.0, 1.7], wspace=0.02)
        ax = fig.add_subplot(grid[1])  # the plot first: fig.axes[0]
        names, values = fig.add_subplot(grid[0]), fig.add_subplot(grid[2])
        for side, texts, title, x, align in ((names, table[label], "analysis", 0.0, "left"),
                                             (values, numbers, "estimate (95% CI)", 0.0, "left")):
            side.set_axis_off()
            side.set_ylim(-0.7, n - 0.3)
            side.set_xlim(0, 1)
            for yi, text in zip(y, texts):
                side.text(x, yi, str(text), ha=align, va="center", fontsize=9)
            side.text(x, n - 0.35, title, ha=align, va="bottom", fontsize=9, fontweight="bold")
        ax.set_yticks([])
    ax.errorbar(table["estimate"], y, xerr=[table["estimate"] - table["ci_low"], table["ci_high"] - table["estimate"]],
                fmt="s", color=PALETTE["blue"], ecolor=PALETTE["black"], capsize=4, markersize=7)
    ax.axvline(0, color=PALETTE["grey"], linestyle="--", linewidth=1)
    ax.set_xlabel(f"difference ({unit})" if unit else "difference")
    ax.set_ylim(-0.7, n - 0.3)
    if favours is not None:
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, -0.05 * (high - low)), max(high, 0.05 * (high - low)))  # 0 in view, a side each
        for shift, text, align in ((-4, f"<- favours {favours[0]}", "right"), (4, f"favours {favours[1]} ->", "left")):
            ax.annotate(text, xy=(0, 1.0), xycoords=("data", "axes fraction"), xytext=(shift, 3),
                        textcoords="offset points", ha=align, va="bottom", fontsize=LEGIBLE_PT, color=PALETTE["grey"])
    ax.grid(axis="x", alpha=0.3)
    return fig


def time_to_event_chart(times: pd.DataFrame, *, event: str = "a pain rise", ax=None) -> Figure:
    """Kaplan-Meier curves by arm: the share of patients still without ``event`` over the days since
    the program start, with pointwise 95 % CIs and ``+`` where patients were censored.

    Parameters
    ----------
    times : DataFrame
        ``arm``, ``days``, ``event``, as :func:`hipanalytics.analysis.trial.time_to_first_rise`.
    """
    from .analysis.survival import kaplan_meier

    fig, ax = _figure(ax, figsize=(6.5, 3.6), layout="constrained")
    for arm, group in times.groupby("arm"):
        colour = SCHEDULE_COLOURS.get(arm, PALETTE["purple"])
        curve = kaplan_meier(group["days"], group["event"])
        x = np.concatenate([[0.0], curve["time"], [group["days"].max()]])
        y = np.concatenate([[1.0], curve["survival"], [curve["survival"].iloc[-1] if len(curve) else 1.0]])
        ax.step(x, y, where="post", color=colour, linewidth=2,
                label=f"{arm} (n = {len(group)}, {int(group['event'].sum())} with {event})")
        if len(curve):
            band = curve[["ci_low", "ci_high"]].ffill()  # none once S = 0: the band ends at the last defined one
            ax.fill_between(np.concatenate([[0.0], curve["time"]]), np.concatenate([[1.0], band["ci_low"]]),
                            np.concatenate([[1.0], band["ci_high"]]), step="post", color=colour, alpha=0.15, lw=0)
        censored = group[~group["event"]]
        steps = pd.Series(y[:-1], index=x[:-1])
        at = [steps[steps.index <= d].iloc[-1] for d in censored["days"]]
        ax.scatter(censored["days"], at, marker="+", color=colour, s=30, zorder=3)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(left=0)
    ax.set_xlabel("days since time zero (allocation, else the program start)")
    ax.set_ylabel(f"share without {event}")
    ax.set_title(f"Time to the first {event.removeprefix('a ')} (Kaplan-Meier, 95% CI; +: censored)", loc="left",
                 fontsize=LEGIBLE_PT + 1)
    ax.tick_params(labelsize=LEGIBLE_PT)
    ax.legend(frameon=False, fontsize=LEGIBLE_PT, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(alpha=0.3)
    return fig


def tipping_point_chart(grid: pd.DataFrame, tipping: dict, *, week: int, alpha: float = 0.05, ax=None) -> Figure:
    """The delta-adjusted tipping point: the pooled difference at each pair of shifts of the imputed
    week-N values (daily arm across, 3x/week arm up), shaded where it is significant at ``alpha``,
    the boundary where the conclusion changes drawn, and missing at random (0, 0) marked.

    Parameters
    ----------
    grid, tipping
        :func:`hipanalytics.analysis.trial.tipping_point`.
    """
    fig, ax = _figure(ax, figsize=(6.5, 5.0), layout="constrained")
    a = np.sort(grid["delta_daily"].unique())
    b = np.sort(grid["delta_three"].unique())
    table = grid.pivot(index="delta_three", columns="delta_daily")
    estimate, p = table["estimate"].to_numpy(), table["p_value"].to_numpy()
    limit = max(np.nanmax(np.abs(estimate)), 1e-9)
    mesh = ax.pcolormesh(a, b, estimate, cmap="PuOr_r", vmin=-limit, vmax=limit, shading="nearest")
    bar = fig.colorbar(mesh, ax=ax, shrink=0.85)
    bar.set_label(f"difference at week {week}, daily minus 3x/week (degrees)", fontsize=LEGIBLE_PT)
    bar.ax.tick_params(labelsize=LEGIBLE_PT)
    ax.contourf(a, b, (p < alpha).astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"])
    ax.contour(a, b, p, levels=[alpha], colors=PALETTE["black"], linewidths=1.6)
    ax.plot([0], [0], marker="o", color=PALETTE["black"], markersize=7, linestyle="none")
    ax.annotate("MAR", (0, 0), xytext=(6, 6), textcoords="offset points", fontsize=LEGIBLE_PT)
    for name, (x, y) in (("daily", (1, 0)), ("three-per-week", (0, 1))):
        d = tipping.get(name, np.nan)
        if np.isfinite(d):
            ax.plot([d * x], [d * y], marker="D", color=PALETTE["orange"], markeredgecolor=PALETTE["black"],
                    markersize=7, linestyle="none")
            ax.annotate(f"tips at {d:+.1f}", (d * x, d * y), xytext=(6, -12), textcoords="offset points",
                        fontsize=LEGIBLE_PT)
    ax.set_xlabel("shift of the daily arm's imputed values (degrees)", fontsize=LEGIBLE_PT + 0.5)
    ax.set_ylabel("shift of the 3x/week arm's imputed values (degrees)", fontsize=LEGIBLE_PT + 0.5)
    ax.set_title(f"Tipping point: hatched where p < {alpha:g};\nthe black line is where the conclusion changes",
                 loc="left", fontsize=LEGIBLE_PT + 1)
    ax.tick_params(labelsize=LEGIBLE_PT)
    ax.set_aspect("equal")
    return fig


def consort_flow(flow: pd.DataFrame, *, ax=None) -> Figure:
    """The CONSORT 2010 flow diagram: assigned per arm, schedule switches, drop-outs, analysed.

    Parameters
    ----------
    flow : DataFrame
        :func:`hipanalytics.analysis.trial.consort_flow` (one row per arm).
    """
    from matplotlib.patches import FancyBboxPatch

    fig, ax = _figure(ax, figsize=(8, 6.2), layout="constrained")
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    total = int(flow["assigned"].sum())

    def box(x, y, text, width=0.42, height=0.13, colour=PALETTE["grey"]):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.005",
                                    facecolor="white", edgecolor=colour, linewidth=1.2))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, wrap=True)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": PALETTE["black"], "lw": 1})

    box(0.5, 0.93, f"Assigned a breakout schedule\n(n = {total})", width=0.5, height=0.08)
    labels = {"daily": "daily breakouts", "three-per-week": "3x/week breakouts"}
    for x, row in zip((0.25, 0.75), flow.itertuples()):
        colour = SCHEDULE_COLOURS.get(row.arm, PALETTE["purple"])
        arrow(0.5, 0.89, x, 0.82)
        box(x, 0.77, f"Assigned to {labels.get(row.arm, row.arm)}\n(n = {row.assigned})", height=0.09,
            colour=colour)
        switched = f"Switched schedule: n = {row.switched}" + (
            f"\n(at week {row.switch_weeks})" if row.switched else "")
        box(x, 0.6, switched, height=0.11)
        dropped = f"No IR value at week {row.week}: n = {row.dropped_out}" + (
            f"\n(last visit: week {row.dropout_weeks})" if row.dropped_out else "")
        if row.no_baseline:
            dropped += f"\nNo baseline visit: n = {row.no_baseline}"
        box(x, 0.42, dropped, height=0.13)
        box(x, 0.22, f"Analysed, primary analysis\n(all visits): n = {row.analysed_primary}\n"
                     f"Complete cases at week {row.week}: n = {row.analysed_complete}", height=0.14, colour=colour)
        box(x, 0.05, f"Analysed per protocol: n = {row.analysed_per_protocol}", height=0.07)
        for y0, y1 in ((0.725, 0.655), (0.545, 0.485), (0.355, 0.29), (0.15, 0.085)):
            arrow(x, y0, x, y1)
    ax.set_title("Flow of patients (CONSORT 2010)", loc="left")
    return fig


def power_curve(table: pd.DataFrame, *, ax=None) -> Figure:
    """Power against patients per arm: the simulation with its 95 % CI and, where given, the closed form.

    Parameters
    ----------
    table : DataFrame
        :func:`hipanalytics.analysis.power.simulate_power` output: ``per_arm``, ``power``,
        ``ci_low``, ``ci_high`` and optionally ``closed_form``.
    """
    fig, ax = _figure(ax, figsize=(7, 4.5), layout="constrained")
    ax.fill_between(table["per_arm"], table["ci_low"], table["ci_high"], color=PALETTE["blue"], alpha=0.2,
                    label="simulation: 95% CI")
    ax.plot(table["per_arm"], table["power"], "o-", color=PALETTE["blue"], label="simulation (primary analysis)")
    if "closed_form" in table and table["closed_form"].notna().any():
        ax.plot(table["per_arm"], table["closed_form"], "--", color=PALETTE["black"],
                label="closed form: t test, no drop-out")
    ax.axhline(0.8, color=PALETTE["grey"], linestyle=":", linewidth=1)
    ax.text(table["per_arm"].min(), 0.81, "80%", fontsize=8, color=PALETTE["grey"], va="bottom")
    ax.set_ylim(0, 1)
    ax.set_xlabel("patients per arm")
    ax.set_ylabel("power (share of trials with p < 0.05)")
    ax.set_title("Power of the primary analysis", loc="left")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    ax.grid(alpha=0.3)
    return fig
