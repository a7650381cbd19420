"""Protocols, programs and the demo: `protocols`, `check-protocol`, `program`, `demo`."""

from __future__ import annotations

import sys
import warnings
from datetime import date, timedelta
from pathlib import Path

import click

from ..config import default_reports_dir, safe_filename
from ..errors import ProgramError, ScheduleWarning
from ..handout import REMINDER_MINUTES, SEQUENCE_MINUTES, SIDES, write_calendar, write_handout
from ..program import Program, breakouts_per_week, plan
from ..protocol import list_protocols, load_protocol, schedule_problems
from . import EXIT_REFUSED, _refusals, main


@main.command("protocols")
@click.option("--dir", "dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Extra folder of protocol files (repeatable).")
def protocols_command(dirs: tuple[Path, ...]) -> None:
    """List the protocols found, and any protocol file that cannot be used."""
    table = list_protocols(list(dirs))
    for row in table.itertuples():
        if row.problem:
            click.echo(f"INVALID  {row.path}\n  {row.problem}")
        else:
            click.echo(f"{row.id}@{row.version}  {row.title}  ({row.path})")
    if (table["problem"] != "").any():
        sys.exit(EXIT_REFUSED)


@main.command("check-protocol")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_refusals
def check_protocol_command(file: Path) -> None:
    """Validate a protocol FILE and report every problem with its line."""
    protocol = load_protocol(file)
    click.echo(
        f"ok: {protocol.key} - {len(protocol.exercises)} exercises, {len(protocol.sessions)} "
        f"session templates, schedules: {', '.join(s.id for s in protocol.schedules)}"
    )


def _write_program_files(program: Program, out: Path, *, side: str | None, calendar: dict | None = None,
                         **handout_kwargs) -> dict[str, Path]:
    folder = out / safe_filename(program.program_id)
    folder.mkdir(parents=True, exist_ok=True)
    sessions = plan(program)
    sessions.to_csv(folder / "plan.csv", index=False)
    return {
        "plan": folder / "plan.csv",
        "handout": write_handout(program, folder / "handout.html", side=side, **handout_kwargs),
        "handout_pdf": write_handout(program, folder / "handout.pdf", side=side, **handout_kwargs),
        "calendar": write_calendar(program, folder / "calendar.ics", side=side, **(calendar or {})),
    }


def _summary(program: Program) -> str:
    weekly = breakouts_per_week(plan(program))
    per_week = ", ".join(str(b) for b in weekly["breakouts"])
    return (
        f"{program.program_id}: {program.resolved_schedule.title}, {program.start_date} to "
        f"{program.end_date}, {int(weekly['sessions'].sum())} sessions, "
        f"{int(weekly['breakouts'].sum())} with breakouts (per week: {per_week})"
    )


@main.command("program")
@click.argument("patient_id")
@click.option("--schedule", required=True,
              help="Schedule id (daily, three-per-week) or custom weekdays such as mon,thu.")
@click.option("--start", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day, YYYY-MM-DD.")
@click.option("--weeks", type=click.IntRange(min=1), help="Length in weeks.")
@click.option("--end", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day, YYYY-MM-DD.")
@click.option("--protocol", "protocol_ref", default="hip-ir-breakouts", show_default=True,
              help="Protocol id, id@version, or a protocol file.")
@click.option("--choice", "choices", multiple=True, metavar="CHOICE=EXERCISE",
              help="Pick an alternative, e.g. ninety-ninety=ninety-ninety-ir-pails.")
@click.option("--allow-consecutive", is_flag=True,
              help="Prescribe custom breakout days that follow each other although the schedule asks for a "
                   "recovery day between them (needs --reason).")
@click.option("--reason", default="", help="Why this program (kept with it); required with --allow-consecutive.")
@click.option("--side", type=click.Choice(SIDES),
              help="The hip(s) to work, printed on the handout and calendar [default: tick boxes on the handout "
                   "for you to mark].")
@click.option("--sequence-minutes", type=click.FloatRange(min=0), default=SEQUENCE_MINUTES, show_default=True,
              help="How long your clinic's Hip Movement Sequence takes; calendar events end after it.")
@click.option("--reminder-minutes", type=click.IntRange(min=0), default=REMINDER_MINUTES, show_default=True,
              help="Calendar reminder, minutes before each session.")
@click.option("--no-reminder", is_flag=True, help="Calendar events without a reminder.")
@click.option("--name", "patient_name", help="Name printed on the handout instead of the id.")
@click.option("--clinician", help="Prescriber printed on the handout.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/programs].")
@click.option("--store", "store_path", default=None,
              help="Also save the program in this store (SQLite file or database URL), where reports, the "
                   "dashboard and the worklist see it; a program in force from before ends the day before "
                   "(give --reason). The hip defaults to the patient's involved side there.")
@_refusals
def program_command(patient_id, schedule, start, weeks, end, protocol_ref, choices, allow_consecutive, reason,
                    side, sequence_minutes, reminder_minutes, no_reminder, patient_name, clinician, out,
                    store_path) -> None:
    """Prescribe a program to PATIENT_ID: write its plan (CSV), handout (HTML) and calendar (.ics), and
    with --store save it in the store."""
    picked = {}
    for item in choices:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected CHOICE=EXERCISE, got {item!r}", param_hint="--choice")
        picked[key.strip()] = value.strip()
    if not weeks and not end:
        raise click.UsageError("give the program's length: --weeks N or --end YYYY-MM-DD")
    if allow_consecutive and not reason.strip():
        raise click.UsageError("--allow-consecutive needs --reason TEXT: why breakouts on consecutive days "
                               "(it is kept with the program)")
    with warnings.catch_warnings():  # the schedule's problems are refused below, in words
        warnings.simplefilter("ignore", ScheduleWarning)
        program = Program(
            patient_id=patient_id,
            protocol=load_protocol(protocol_ref),
            schedule=schedule,
            start_date=start.date(),
            **({"weeks": weeks} if weeks else {}),
            **({"end_date": end.date()} if end else {}),
            choices=picked,
            reason=reason,
        )
    problems = [message for _, message in schedule_problems(program.resolved_schedule)]
    if problems and not allow_consecutive:
        raise ProgramError(f"program for patient {patient_id!r}: {'; '.join(problems)}, or prescribe them anyway "
                           "with --allow-consecutive --reason TEXT")
    saved = None
    if store_path:  # saved first: a refused save leaves no files behind
        side, saved = _save_program(program, store_path, side)
    calendar = {"sequence_minutes": sequence_minutes, "reminder_minutes": None if no_reminder else reminder_minutes}
    files = _write_program_files(program, out or default_reports_dir() / "programs", side=side, calendar=calendar,
                                 patient_name=patient_name, clinician=clinician)
    click.echo(_summary(program) + (f"; breakouts on consecutive days, because: {reason.strip()}" if problems else ""))
    if saved is not None:
        click.echo(saved)
    for kind, path in files.items():
        click.echo(f"  {kind:11} {path}")
    if side is None:
        click.echo("hint: the handout does not name the hip (it has tick boxes left/right/both to mark by hand); "
                   "pass --side left, right or both to print it", err=True)


def _save_program(program: Program, store_path: str, side: str | None) -> tuple[str | None, str]:
    """Save ``program`` in the store; return the side (the patient's involved side unless given)
    and a line saying what was saved."""
    from ..store import Store

    with Store(store_path, create=False) as store:
        patients = store.read("patients", patient_id=program.patient_id)
        if patients.empty:
            raise ProgramError(f"patient {program.patient_id!r} is not in the store {store_path}: import the patient "
                               "first (hipanalytics import patients.csv)")
        written = store.save_program(program)
    ended = [w for w in written if w != program.program_id]
    line = f"saved in {store_path}: program {program.program_id}"
    if ended:
        line += (f"; {', '.join(ended)} now ends {program.start_date - timedelta(days=1)} (kept on record, with the "
                 "reason)")
    return side or str(patients["involved_side"].iloc[0]), line


def _next_monday(today: date) -> date:
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


@main.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/demo].")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]),
              help="First day of the demo programs [default: next Monday].")
@click.option("--reports", "n_reports", type=click.IntRange(min=0), default=4, show_default=True,
              help="How many synthetic patients get a progress report.")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="Reports made at once.")
@_refusals
def demo_command(out: Path | None, start, n_reports: int, jobs: int) -> None:
    """Run the main jobs on synthetic data: programs with handouts and calendars, a store built
    from the synthetic clinic, and progress reports with an index page."""
    from ..reports import render_clinic, render_cohort, render_overview
    from ..store import Store
    from ..synthetic import generate_clinic, write_clinic

    out = out or default_reports_dir() / "demo"
    first = start.date() if start else _next_monday(date.today())
    protocol = load_protocol("hip-ir-breakouts")
    click.echo(f"Protocol {protocol.key}: {protocol.title} ({protocol.source_file})")
    programs = {
        "right": Program(patient_id="DEMO-001", protocol=protocol, schedule="three-per-week",
                         start_date=first, weeks=6, reason="demo: breakouts 3x/week"),
        "both": Program(patient_id="DEMO-002", protocol=protocol, schedule="daily", start_date=first,
                        weeks=6, choices={"ninety-ninety": "ninety-ninety-ir-pails"},
                        reason="demo: daily breakouts with the contract-relax variant"),
    }
    for side, program in programs.items():
        files = _write_program_files(program, out / "programs", side=side,
                                     patient_name=f"Demo patient {program.patient_id}")
        click.echo(_summary(program))
        for kind, path in files.items():
            click.echo(f"  {kind:11} {path}")

    click.echo("\nSynthetic clinic (40 invented patients, the same as data/sample) into a store:")
    paths = write_clinic(generate_clinic(40, seed=2026), out / "synthetic-data")
    store_path = out / "clinic.sqlite"
    store = Store(store_path)
    for table in ("patients", "programs", "measurements", "sessions"):
        click.echo(f"  {store.import_file(paths[table], table, who='demo')}")
    if n_reports:
        ids = sorted(store.read("measurements")["patient_id"].unique())[:n_reports]
        result = render_clinic(store_path, out / "reports", patients=ids, jobs=jobs)
        click.echo(f"  {len(result['done'])} patient progress reports, {len(result['failed'])} failed")
        cohort = render_cohort(store_path, out / "reports", formats=("html", "pdf"))
        overview = render_overview(store_path, out / "reports")
        click.echo(f"  cohort comparison: {cohort['html']} (and PDF)")
        click.echo(f"  clinic overview:   {overview['html']}")
        click.echo(f"\nOpen {result['index']} for the patient reports,")
    store.close()
    click.echo(f"and {out / 'programs' / safe_filename(programs['right'].program_id) / 'handout.html'} for a patient "
               "handout.")
    click.echo(f"Try the apps on this store: hipanalytics app builder --store {store_path} "
               "(or entry, dashboard).")


