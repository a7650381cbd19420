"""Reports: `report patient|cohort|power|overview|clinic` and `power`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import default_reports_dir, default_store
from . import EXIT_REFUSED, _refusals, main
from .records import _store_option


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------


@main.group("report")
def report_group() -> None:
    """Progress reports (HTML, PDF) from parameterised notebooks."""


_format_option = click.option("--format", "formats", default="html", show_default=True,
                              callback=lambda ctx, param, value: tuple(f.strip() for f in value.split(",") if f.strip()),
                              help="Comma-separated: html, pdf.")
_as_of_option = click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]),
                             help="Report date [default: latest data].")


def _echo_outputs(result: dict) -> None:
    for kind in ("html", "pdf", "json", "files"):
        if kind in result:
            click.echo(f"  {kind:5} {result[kind]}")


def _sizes(ctx, param, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: give whole numbers separated by commas, e.g. 20,30,40") from None
    if not sizes or min(sizes) < 4:
        raise click.BadParameter(f"{value!r}: give sample sizes of at least 4 patients per arm")
    return sizes


def _power_options(func):
    """The power scenario's options, shared by `power` and `report power`."""
    options = [
        click.option("--effect", type=float, default=3.0, show_default=True,
                     help="True difference in IR at the comparison week, daily minus 3x/week (degrees)."),
        click.option("--sd", type=click.FloatRange(min=0), default=6.0, show_default=True,
                     help="Between-patient SD of baseline IR (degrees)."),
        click.option("--gain-sd", type=click.FloatRange(min=0), default=4.0, show_default=True,
                     help="Between-patient SD of the gain (degrees)."),
        click.option("--day-sd", type=click.FloatRange(min=0), default=1.6, show_default=True,
                     help="Between-day measurement noise (degrees; 1.6 matches the 1.95-degree SEM of Krause 2015)."),
        click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.15, show_default=True,
                     help="Share of patients without a value at the comparison week."),
        click.option("--dropout-mechanism", "mechanism", type=click.Choice(["MCAR", "MAR"]), default="MCAR",
                     show_default=True,
                     help="MCAR: drop-out unrelated to the outcome; MAR: after a visit without visible progress "
                          "(observed gain under the MDC), the primary analysis's assumption."),
        click.option("--week", type=click.IntRange(min=2), default=6, show_default=True,
                     help="Comparison week (even: visits are 2-weekly)."),
        click.option("--weeks", "followup_weeks", type=click.IntRange(min=2), default=8, show_default=True,
                     help="Program length in weeks."),
        click.option("--per-arm", default="20,30,40,60,80", show_default=True, callback=_sizes,
                     help="Patients per arm to try, comma-separated."),
        click.option("--trials", type=click.IntRange(min=10), default=200, show_default=True,
                     help="Simulated trials per sample size."),
        click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same table."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command("power")
@_power_options
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes [default: every core].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for power.csv, power.tex and the power curve (SVG, PDF) [default: ./reports/power].")
@_refusals
def power_command(effect, sd, gain_sd, day_sd, dropout, mechanism, week, followup_weeks, per_arm, trials, seed,
                  workers, out) -> None:
    """Power of the primary analysis by simulation, for each number of patients per arm.

    Every simulated trial is a synthetic clinic with the given effect, spread, noise, drop-out and
    follow-up, analysed by the primary analysis (cLDA); power is the share of trials with p < 0.05.
    The closed form beside it (ANCOVA approximation, no drop-out) is a check. For a report with the
    curve, use `hipanalytics report power`.
    """
    from ..analysis.power import Scenario, simulate_power
    from ..study import power_files, power_table

    scenario = Scenario(effect=effect, sd=sd, gain_sd=gain_sd, day_sd=day_sd, dropout=dropout, mechanism=mechanism,
                        week=week, followup_weeks=followup_weeks)
    table = simulate_power(scenario, per_arm, trials=trials, seed=seed, workers=workers)
    click.echo(power_table(table).to_string(index=False))
    folder = out or default_reports_dir() / "power"
    written = power_files(table, folder)
    click.echo(f"written to {folder}: {', '.join(written)}")


@report_group.command("patient")
@click.argument("patient_id")
@_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/patients].")
@_format_option
@_as_of_option
@click.option("--show-name", is_flag=True, help="Print the display name (sensitive) instead of the patient id.")
@_refusals
def report_patient_command(patient_id, store_path, out, formats, as_of, show_name) -> None:
    """Render PATIENT_ID's progress report."""
    from ..reports import render_patient

    result = render_patient(store_path or default_store(), patient_id, out or default_reports_dir() / "patients",
                            as_of=as_of.date() if as_of else None,
                            formats=formats, show_name=show_name)
    _echo_outputs(result)


@report_group.command("cohort")
@_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/cohort].")
@click.option("--cohort", help="Only patients whose cohort column has this value [default: everyone].")
@click.option("--week", type=click.IntRange(min=2), default=6, show_default=True,
              help="Comparison week (even: visits are 2-weekly).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Share of the assigned schedule's breakouts needed for the per-protocol analysis.")
@_format_option
@_refusals
def report_cohort_command(store_path, out, cohort, week, threshold, formats) -> None:
    """Compare daily and 3x/week breakouts as a trial reports it: estimand, primary analysis (cLDA on
    every visit), missing data, per protocol, secondary outcomes, harms, CONSORT flow; the tables
    (CSV, LaTeX) and figures (SVG, PDF) for the manuscript beside the report."""
    from ..reports import render_cohort

    result = render_cohort(store_path or default_store(), out or default_reports_dir() / "cohort", cohort=cohort,
                           week=week, threshold=threshold,
                           formats=formats)
    _echo_outputs(result)


@report_group.command("power")
@_power_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/power].")
@_format_option
@_refusals
def report_power_command(effect, sd, gain_sd, day_sd, dropout, mechanism, week, followup_weeks, per_arm, trials, seed,
                         out, formats) -> None:
    """The power report: simulated power by sample size, the power curve, the closed-form check."""
    from ..reports import render_power

    result = render_power(out or default_reports_dir() / "power", effect=effect, sd=sd, gain_sd=gain_sd,
                          day_sd=day_sd, dropout=dropout, mechanism=mechanism, week=week,
                          followup_weeks=followup_weeks, per_arm=per_arm,
                          trials=trials, seed=seed, formats=formats)
    _echo_outputs(result)


@report_group.command("overview")
@_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/clinic, where report clinic writes the reports it links to].")
@_as_of_option
@click.option("--all", "everyone", is_flag=True, help="Every patient, not only the active ones.")
@_format_option
@_refusals
def report_overview_command(store_path, out, as_of, everyone, formats) -> None:
    """The clinic's worklist: each active patient's latest IR, trend, pain, program and next action,
    the most urgent first, linked to their progress reports."""
    from ..reports import render_overview

    result = render_overview(store_path or default_store(), out or default_reports_dir() / "clinic",
                             as_of=as_of.date() if as_of else None, everyone=everyone,
                             formats=formats)
    figures = result.get("figures") or {}
    n = figures.get("patients", 0)
    who = "patient" if everyone else "active patient"
    click.echo(f"worklist on {figures.get('as_of') or 'no data yet'}: {n} {who}{'s' if n != 1 else ''}, "
               f"{figures.get('need_attention', 0)} needing attention")
    _echo_attention(store_path or default_store(), figures.get("as_of"), everyone)
    _echo_outputs(result)


def _echo_attention(location: str, as_of: str | None, everyone: bool, most: int = 10) -> None:
    """The worklist's patients needing attention, the most urgent first: why, and what to do."""
    from ..progress import clinic_overview
    from ..store import Store

    if as_of is None:
        return
    with Store(location, create=False) as store:
        overview = clinic_overview(store, as_of=as_of, everyone=everyone)
    urgent = overview[overview["attention"] != ""].drop_duplicates("patient_id")  # a patient's most urgent hip
    for row in urgent.head(most).itertuples():
        click.echo(f"  {row.patient_id}: {row.attention}; next: {row.action}")
    if len(urgent) > most:
        click.echo(f"  ... and {len(urgent) - most} more in the worklist")


def _patients_on(location: str, as_of) -> tuple:
    """The store's patient list on ``as_of`` (default its latest date), and that day as text."""
    from ..progress import latest_date, patient_list
    from ..records import TABLES
    from ..store import Store

    with Store(location, create=False) as store:
        tables = {t: store.read(t) for t in TABLES}
    day = as_of or latest_date(tables)
    return patient_list(tables, as_of=as_of), None if day is None else f"{day:%Y-%m-%d}"


@report_group.command("clinic")
@_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/clinic].")
@click.option("--patients", help="Comma-separated patient ids [default: every active patient].")
@click.option("--all", "everyone", is_flag=True, help="Every patient with a measurement, active or not.")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Reports made at once on this machine (worker processes).")
@click.option("--cluster", metavar="ADDRESS",
              help="Run on Dask distributed instead: a scheduler (tcp://HOST:8786) or local:N for N worker "
                   "processes here. Workers must reach the store and the output folder (docs/cluster.md).")
@_format_option
@_as_of_option
@click.option("--timeout", type=click.IntRange(min=10), default=600, show_default=True,
              help="Seconds a report may run.")
@_refusals
def report_clinic_command(store_path, out, patients, everyone, jobs, cluster, formats, as_of, timeout) -> None:
    """Render progress reports for every active patient in parallel, with an index page.

    A patient is active when a program is in force on the report date (--as-of, default the latest
    measurement or session) or ended at most 28 days before it, so a final report is still due.
    `hipanalytics patients` shows who is active; --all reports on every patient with measurements.
    """
    from ..progress import ACTIVE_GRACE_DAYS
    from ..reports import render_clinic

    if patients and everyone:
        raise click.UsageError("give --patients or --all, not both")
    location = store_path or default_store()
    ids = [p.strip() for p in patients.split(",")] if patients else None
    listed, day = _patients_on(location, as_of)
    if everyone:
        ids = listed.loc[listed["n_visits"] > 0, "patient_id"].tolist()
    when = (f"as of {day} ({'--as-of' if as_of else 'the latest measurement or session in the store; --as-of DATE for another day'})"
            if day else "no measurements or sessions in the store yet")
    if ids is None:
        n = int(listed["active"].sum())
        click.echo(f"{when}: {n} active patient{'s' if n != 1 else ''} (a program in force or ended at most "
                   f"{ACTIVE_GRACE_DAYS} days before, no discharge; `hipanalytics patients --active` lists them)")
    else:
        click.echo(f"{when}: {len(ids)} patient{'s' if len(ids) != 1 else ''} "
                   f"{'with measurements (--all)' if everyone else 'named'}")
    result = render_clinic(location, out or default_reports_dir() / "clinic", patients=ids, jobs=jobs,
                           formats=formats, as_of=as_of.date() if as_of else None, timeout=timeout,
                           cluster=cluster)
    made = len(result["done"])
    click.echo(f"{made} report{'s' if made != 1 else ''} made, {len(result['failed'])} failed; index: {result['index']}")
    for patient_id, reason in sorted(result["failed"].items()):
        click.echo(f"  FAILED {patient_id}: {reason}", err=True)
    if result["failed"]:
        sys.exit(EXIT_REFUSED)


