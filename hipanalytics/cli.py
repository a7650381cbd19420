"""The ``hipanalytics`` command: a thin face over the package's functions.

Exit codes: 0 success; 1 the input was refused (protocol, program or data problem, message on
stderr; nothing was written); 2 the command line itself was wrong; 3 an import in quarantine mode
stored the good rows and set bad rows aside (the quarantine file says why); 4 an internal error
(a bug): one line on stderr, the traceback in a file it names.
"""

from __future__ import annotations

import functools
import sys
from datetime import date, timedelta
from pathlib import Path

import click
import pandas as pd

from . import __version__
from .config import default_reports_dir, default_store, safe_filename
from .errors import DataValidationError, HipAnalyticsError
from .handout import write_calendar, write_handout
from .program import Program, breakouts_per_week, plan
from .protocol import list_protocols, load_protocol

EXIT_REFUSED = 1
EXIT_PARTIAL = 3
EXIT_BUG = 4


def _refusals(func):
    """Turn package errors into a message on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DataValidationError as exc:
            click.echo(str(exc.report), err=True)
            if exc.report.whole_file:
                click.echo("error: the file was refused as a whole (see above); nothing was imported", err=True)
            else:
                click.echo("error: nothing was imported; fix the rows above (or use --quarantine)", err=True)
            sys.exit(EXIT_REFUSED)
        except HipAnalyticsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_REFUSED)

    return wrapper


class _Command(click.Group):
    """The command group; an unexpected exception (a bug) becomes one line and exit code 4, with the
    traceback kept in a file, never a traceback on the terminal."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            import tempfile
            import traceback

            with tempfile.NamedTemporaryFile("w", prefix="hipanalytics-error-", suffix=".txt", delete=False) as f:
                traceback.print_exc(file=f)
            click.echo(f"internal error (a bug in hipanalytics {__version__}): {type(exc).__name__}: {exc}. "
                       f"The traceback is in {f.name}; please report it. An import is one transaction: "
                       "nothing of it was kept.", err=True)
            sys.exit(EXIT_BUG)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hipanalytics")
def main() -> None:
    """Hip IR mobility programs, patient records and progress reports."""


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


def _write_program_files(program: Program, out: Path, **handout_kwargs) -> dict[str, Path]:
    folder = out / safe_filename(program.program_id)
    folder.mkdir(parents=True, exist_ok=True)
    sessions = plan(program)
    sessions.to_csv(folder / "plan.csv", index=False)
    return {
        "plan": folder / "plan.csv",
        "handout": write_handout(program, folder / "handout.html", **handout_kwargs),
        "handout_pdf": write_handout(program, folder / "handout.pdf", **handout_kwargs),
        "calendar": write_calendar(program, folder / "calendar.ics"),
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
@click.option("--name", "patient_name", help="Name printed on the handout instead of the id.")
@click.option("--clinician", help="Prescriber printed on the handout.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/programs].")
@_refusals
def program_command(patient_id, schedule, start, weeks, end, protocol_ref, choices, patient_name,
                    clinician, out) -> None:
    """Prescribe a program to PATIENT_ID: write its plan (CSV), handout (HTML) and calendar (.ics)."""
    picked = {}
    for item in choices:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected CHOICE=EXERCISE, got {item!r}", param_hint="--choice")
        picked[key.strip()] = value.strip()
    if not weeks and not end:
        raise click.UsageError("give the program's length: --weeks N or --end YYYY-MM-DD")
    program = Program(
        patient_id=patient_id,
        protocol=load_protocol(protocol_ref),
        schedule=schedule,
        start_date=start.date(),
        **({"weeks": weeks} if weeks else {}),
        **({"end_date": end.date()} if end else {}),
        choices=picked,
    )
    files = _write_program_files(program, out or default_reports_dir() / "programs",
                                 patient_name=patient_name, clinician=clinician)
    click.echo(_summary(program))
    for kind, path in files.items():
        click.echo(f"  {kind:11} {path}")


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
    from .reports import render_clinic, render_cohort, render_overview
    from .store import Store
    from .synthetic import generate_clinic, write_clinic

    out = out or default_reports_dir() / "demo"
    first = start.date() if start else _next_monday(date.today())
    protocol = load_protocol("hip-ir-breakouts")
    click.echo(f"Protocol {protocol.key}: {protocol.title} ({protocol.source_file})")
    programs = [
        Program(patient_id="DEMO-001", protocol=protocol, schedule="three-per-week",
                start_date=first, weeks=6, reason="demo: breakouts 3x/week"),
        Program(patient_id="DEMO-002", protocol=protocol, schedule="daily", start_date=first,
                weeks=6, choices={"ninety-ninety": "ninety-ninety-ir-pails"},
                reason="demo: daily breakouts with the contract-relax variant"),
    ]
    for program in programs:
        files = _write_program_files(program, out / "programs", patient_name=f"Demo patient {program.patient_id}")
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
    click.echo(f"and {out / 'programs' / safe_filename(programs[0].program_id) / 'handout.html'} for a patient handout.")
    click.echo(f"Try the apps on this store: hipanalytics app builder --store {store_path} "
               "(or entry, dashboard).")


# ----------------------------------------------------------------------------------------------
# Records: validate, import, export
# ----------------------------------------------------------------------------------------------

_TABLE = click.Choice(["patients", "programs", "measurements", "sessions"])
_store_option = click.option("--store", "store_path", default=None,
                             help="SQLite file or database URL [default: $HIPANALYTICS_STORE or ./hipanalytics.sqlite].")
_read_options = [
    click.option("--sheet", default=None, help="Excel sheet holding the table (default: the first)."),
    click.option("--dates", type=click.Choice(["day-first", "month-first"]), default=None,
                 help="How to read dates such as 03/04/2026 (refused unless declared; then enforced)."),
    click.option("--encoding", default=None,
                 help="Text encoding of the file, e.g. utf-16-le or cp1252 [default: detected]."),
    click.option("--repeated-trials", is_flag=True,
                 help="The file holds repeated trials: identical measurements at one visit without trial "
                      "numbers are trials, not suspected duplicates."),
    click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
                 help="Also write every problem and every normalisation (row, column, value before and "
                      "after, rule, fix) to this CSV."),
]


def _with(options):
    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func
    return apply


def _guess_table(path: Path, table: str | None) -> str:
    if table:
        return table
    stem = path.stem.lower()
    for name in ("patients", "programs", "measurements", "sessions"):
        if stem.startswith(name):
            return name
    raise click.UsageError(f"cannot tell the table from the file name {path.name!r}; give --table")


@main.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", type=_TABLE, help="Table in the file (guessed from a file name such as measurements.csv).")
@_with(_read_options)
@_store_option
@_refusals
def validate_command(file, table, sheet, dates, encoding, repeated_trials, report_path, store_path) -> None:
    """Check FILE without importing it: every problem with its row, column, value and fix."""
    from .records import read_records
    from .store import Store

    table = _guess_table(file, table)
    patients = None
    location = store_path or default_store()
    if table != "patients" and ("://" in location or Path(location).exists()):
        with Store(location, create=False) as store:
            patients = store.read("patients")[["patient_id", "birth_year"]]
    result = read_records(file, table, sheet=sheet, dates=dates, encoding=encoding, repeated_trials=repeated_trials,
                          patients=patients)
    click.echo(str(result.report))
    if not result.report.whole_file:
        _echo_normalised(result.report.normalisation_counts().to_dict())
    _write_report(result.report, report_path)
    if not result.report.ok:
        sys.exit(EXIT_REFUSED)


def _echo_normalised(counts: dict[str, int]) -> None:
    if counts:
        click.echo("normalised (unambiguous, imported as shown; --report lists every change):")
        for rule, count in counts.items():
            click.echo(f"  {count:>8}  {rule}")


def _write_report(report, path: Path | None) -> None:
    if path is not None:
        report.to_csv(path)
        click.echo(f"every problem and normalisation written to {path}")


def _write_reports(label: str, reports: list, path: Path | None) -> None:
    """The reports of several tables (one import of another format) as one --report CSV."""
    from .records import ValidationReport

    reports = [r for r in reports if r is not None]
    if path is not None and reports:
        _write_report(ValidationReport(label, "all", sum(r.rows_read for r in reports),
                                       pd.concat([r.problems for r in reports], ignore_index=True),
                                       pd.concat([r.normalisations for r in reports], ignore_index=True)), path)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--table", type=_TABLE, help="Table in the file (guessed from a file name such as measurements.csv).")
@_with(_read_options)
@click.option("--quarantine", is_flag=True, help="Import the good rows; write bad rows with reasons to a file.")
@click.option("--quarantine-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where quarantine files go [default: beside FILE].")
@click.option("--who", help="Name recorded in the audit trail [default: login name].")
@click.option("--from-redcap", "redcap_export", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Import a REDCap export (CSV, raw data) instead of FILE: every table it holds.")
@click.option("--dictionary", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The REDCap project's data dictionary (with --from-redcap).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML mapping of a REDCap project whose field names differ from ours (docs/redcap.md).")
@_store_option
@_refusals
def import_command(file, table, sheet, dates, encoding, repeated_trials, report_path, quarantine, quarantine_dir,
                   who, redcap_export, dictionary, mapping, store_path) -> None:
    """Validate FILE and import it into the store in one transaction.

    Rows read = imported + quarantined + duplicates + skipped (blank and total rows). Importing a
    file again adds nothing, but tries again the rows it set aside; a corrected quarantine file
    imports directly. Exit code 0: imported; 1: refused, nothing imported; 3: good rows imported,
    bad rows in the quarantine file. With --from-redcap EXPORT --dictionary DICT, a REDCap export
    is imported table by table (messages name the export's rows and the REDCap fields).
    """
    from tqdm import tqdm

    from .store import Store

    if redcap_export is not None:
        if file is not None or table or sheet or encoding:
            raise click.UsageError("--from-redcap imports the export's tables: no FILE, --table, --sheet or --encoding")
        if dictionary is None:
            raise click.UsageError("--from-redcap needs the project's --dictionary (its data dictionary CSV)")
        _import_redcap(redcap_export, dictionary, mapping, dates, report_path, quarantine, quarantine_dir, who,
                       store_path)
        return
    if file is None:
        raise click.UsageError("give the FILE to import (or --from-redcap EXPORT)")
    if dictionary or mapping:
        raise click.UsageError("--dictionary and --mapping go with --from-redcap")
    table = _guess_table(file, table)
    store = Store(store_path or default_store())
    with tqdm(total=0, unit=" rows", desc="reading and validating", disable=None, file=sys.stderr) as bar:
        def progress(stage, done, total):
            bar.set_description(stage)
            if total:
                bar.total = total
                bar.n = done
            bar.refresh()

        try:
            summary = store.import_file(file, table, mode="quarantine" if quarantine else "strict",
                                        quarantine_dir=quarantine_dir, sheet=sheet, dates=dates, encoding=encoding,
                                        repeated_trials=repeated_trials, who=who, progress=progress)
        except DataValidationError as exc:
            bar.close()
            _write_report(exc.report, report_path)
            raise
        finally:
            store.close()
    click.echo(str(summary))
    if summary.report is not None:
        _write_report(summary.report, report_path)
    if summary.quarantined:
        sys.exit(EXIT_PARTIAL)


def _import_redcap(export, dictionary, mapping, dates, report_path, quarantine, quarantine_dir, who,
                   store_path) -> None:
    from .redcap import import_redcap
    from .store import Store

    with Store(store_path or default_store()) as store:
        try:
            rows, summaries = import_redcap(store, export, dictionary, mapping,
                                            mode="quarantine" if quarantine else "strict",
                                            quarantine_dir=quarantine_dir, dates=dates, who=who)
        except DataValidationError as exc:
            _write_report(exc.report, report_path)
            raise
    click.echo(str(rows))
    for summary in summaries.values():
        click.echo(str(summary))
        if summary.report is not None and not summary.report.problems.empty:
            click.echo("\n".join(str(summary.report).splitlines()[1:]))
    _write_reports(str(export), [s.report for s in summaries.values()], report_path)
    if any(s.quarantined for s in summaries.values()):
        sys.exit(EXIT_PARTIAL)


@main.command("export")
@click.argument("table", type=_TABLE, required=False)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="File (.csv/.parquet) for one table, or a folder with --deidentify.")
@click.option("--history", is_flag=True, help="Every version of every record, not only the current state.")
@click.option("--deidentify", is_flag=True, help="De-identified research export of all tables.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Secret key for pseudonyms and date shifts [default: $HIPANALYTICS_DEID_KEY].")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--to-redcap", "to_redcap", is_flag=True,
              help="Every table as one REDCap import file (CSV, raw data) for the dictionary of "
                   "`hipanalytics redcap dictionary`.")
@_store_option
@_refusals
def export_command(table, out, history, deidentify, key_file, fmt, to_redcap, store_path) -> None:
    """Export TABLE to a file, or (--deidentify) every table de-identified for research, or
    (--to-redcap) every table in REDCap's import format."""
    import os

    from .store import Store, export_research

    store = Store(store_path or default_store(), create=False)
    if to_redcap:
        from .redcap import redcap_records

        if table or deidentify or history:
            raise click.UsageError("--to-redcap exports every table's current records: no TABLE, --history "
                                   "or --deidentify with it")
        records = redcap_records({name: store.read(name) for name in ("patients", "programs", "measurements",
                                                                      "sessions")})
        records.to_csv(out, index=False, encoding="utf-8")
        patients = records["redcap_repeat_instrument"].eq("").sum()
        click.echo(f"{out}: {len(records)} REDCap rows ({patients} patients and their repeating instruments)")
        return
    if deidentify:
        key = key_file.read_bytes().strip() if key_file else os.environ.get("HIPANALYTICS_DEID_KEY", "").encode()
        if not key:
            raise click.UsageError("--deidentify needs a secret key: --key-file FILE or $HIPANALYTICS_DEID_KEY")
        for name, path in export_research(store, out, key, fmt=fmt).items():
            click.echo(f"  {name:13} {path}")
        return
    if table is None:
        raise click.UsageError("name the TABLE to export, or use --deidentify")
    click.echo(store.export(table, out, history=history))


@main.group("redcap")
def redcap_group() -> None:
    """REDCap projects: the data dictionary to build one from (see docs/redcap.md)."""


@redcap_group.command("dictionary")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The data dictionary CSV to upload in REDCap (Project Setup > Data Dictionary).")
def redcap_dictionary_command(out) -> None:
    """Write the REDCap data dictionary of hipanalytics' tables: instruments patient, program,
    rom_visit and session_log (the last three repeating), our codes as choices, our limits as
    validation, identifiers marked."""
    from .redcap import redcap_dictionary

    dictionary = redcap_dictionary()
    dictionary.to_csv(out, index=False, encoding="utf-8")
    forms = dictionary["Form Name"].unique()
    click.echo(f"{out}: {len(dictionary)} fields on {len(forms)} instruments ({', '.join(forms)}); "
               "make program, rom_visit and session_log repeating instruments")


@main.group("fhir")
def fhir_group() -> None:
    """HL7 FHIR R4: Bundles for a clinic's record system, and hip ROM Observations back in
    (see docs/fhir.md)."""


@fhir_group.command("export")
@click.argument("patient_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every patient in the store.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the Bundles (one JSON file per patient, named by the id).")
@click.option("--show-name", is_flag=True, help="Put the patient's display name in Patient.name "
                                                "(by default the Patient carries only the clinic's id).")
@click.option("--transaction", is_flag=True, help="Transaction Bundles of conditional updates: a FHIR server "
                                                  "stores each record once however often it is sent.")
@click.option("--ndjson", is_flag=True, help="The bulk-data layout instead: Patient.ndjson, Observation.ndjson, "
                                             "CarePlan.ndjson.")
@_store_option
@_refusals
def fhir_export_command(patient_ids, every, out, show_name, transaction, ndjson, store_path) -> None:
    """Write PATIENT_IDs' records (or --all) as FHIR R4: the Patient, one Observation per
    measurement (degrees, UCUM deg) and each program as a CarePlan."""
    from .fhir import write_fhir
    from .store import Store

    if bool(patient_ids) == every:
        raise click.UsageError("name the PATIENT_IDs to export, or give --all (not both)")
    if transaction and ndjson:
        raise click.UsageError("--transaction makes Bundles; NDJSON files hold bare resources")
    with Store(store_path or default_store(), create=False) as store:
        tables = {t: store.read(t) for t in ("patients", "programs", "measurements")}
    unknown = sorted(set(patient_ids) - set(tables["patients"]["patient_id"]))
    if unknown:
        raise click.BadParameter(f"not in the store: {', '.join(unknown)}", param_hint="PATIENT_IDS")
    written = write_fhir(tables, out, list(patient_ids) or None, show_name=show_name, transaction=transaction,
                         ndjson=ndjson)
    n = len(tables["patients"]) if every else len(patient_ids)
    shown = "names included" if show_name else "pseudonymous: ids only, no names"
    click.echo(f"{out}: {len(written)} files for {n} patients ({shown})")


@fhir_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quarantine", is_flag=True, help="Import the good rows; write bad rows with reasons to a file.")
@click.option("--quarantine-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where quarantine files go [default: beside each file].")
@click.option("--who", help="Name recorded in the audit trail [default: login name].")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every problem and normalisation to this CSV.")
@_store_option
@_refusals
def fhir_import_command(files, quarantine, quarantine_dir, who, report_path, store_path) -> None:
    """Import hip range-of-motion Observations (and their Patients) from FHIR Bundles or NDJSON
    files, through the same validation as any import. Files holding Patients go first."""
    from .fhir import import_fhir, read_fhir
    from .store import Store

    order = sorted(files, key=lambda f: read_fhir(f).tables["patients"].empty)
    reports, partial = [], False
    with Store(store_path or default_store()) as store:
        for file in order:
            try:
                rows, summaries = import_fhir(store, file, mode="quarantine" if quarantine else "strict",
                                              quarantine_dir=quarantine_dir, who=who)
            except DataValidationError as exc:
                _write_report(exc.report, report_path)
                raise
            click.echo(str(rows))
            for summary in summaries.values():
                click.echo(str(summary))
                if summary.report is not None and not summary.report.problems.empty:
                    click.echo("\n".join(str(summary.report).splitlines()[1:]))
                reports.append(summary.report)
                partial |= bool(summary.quarantined)
    _write_reports(", ".join(map(str, files)), reports, report_path)
    if partial:
        sys.exit(EXIT_PARTIAL)


@main.command("patients")
@_store_option
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]),
              help="Day to judge the current program on [default: the latest measurement or session].")
@click.option("--active", "only_active", is_flag=True, help="Only active patients (those `report clinic` reports on).")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output instead of a table.")
@_refusals
def patients_command(store_path, as_of, only_active, as_csv) -> None:
    """List the patients in the store: involved side, current program, last measurement, active.

    A patient is active when a program is in force on the day or ended at most 28 days before it
    (a final report is still due). Display names are never listed.
    """
    from .progress import latest_date, patient_list
    from .store import Store

    with Store(store_path or default_store(), create=False) as store:
        tables = {t: store.read(t) for t in ("patients", "programs", "measurements", "sessions")}
    listed = patient_list(tables, as_of=as_of)
    day = as_of or latest_date(tables)
    if only_active:
        listed = listed[listed["active"]]
    if as_csv:
        click.echo(listed.to_csv(index=False), nl=False)
        return
    shown = listed.assign(active=listed["active"].map({True: "yes", False: ""})).fillna("")
    shown = shown.drop(columns=["program_id"]).rename(columns={
        "patient_id": "patient", "involved_side": "involved", "last_measured_on": "last measured",
        "n_visits": "visits"})
    click.echo(f"{len(listed)} patients; current program as of "
               f"{'no data yet' if day is None else pd.Timestamp(day).strftime('%Y-%m-%d')}")
    if len(shown):
        click.echo(shown.to_string(index=False))


@main.command("key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def key_command(path: Path) -> None:
    """Write a new secret key for `export --deidentify --key-file PATH` (256 random bits, readable
    only by you). Keep it apart from the exports: with it, pseudonyms can be linked back to patients.
    Use the same key again to give a patient the same pseudonym in a later export."""
    import os
    import secrets

    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{path} exists; a key is never overwritten (choose another name)") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    click.echo(f"key written to {path} (keep it secret; back it up: without it, later exports get new pseudonyms)")


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
def power_command(effect, sd, gain_sd, day_sd, dropout, week, followup_weeks, per_arm, trials, seed, workers,
                  out) -> None:
    """Power of the primary analysis by simulation, for each number of patients per arm.

    Every simulated trial is a synthetic clinic with the given effect, spread, noise, drop-out and
    follow-up, analysed by the primary analysis (cLDA); power is the share of trials with p < 0.05.
    The closed form beside it (ANCOVA approximation, no drop-out) is a check. For a report with the
    curve, use `hipanalytics report power`.
    """
    from .analysis.power import Scenario, simulate_power
    from .study import power_files, power_table

    scenario = Scenario(effect=effect, sd=sd, gain_sd=gain_sd, day_sd=day_sd, dropout=dropout, week=week,
                        followup_weeks=followup_weeks)
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
    from .reports import render_patient

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
    from .reports import render_cohort

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
def report_power_command(effect, sd, gain_sd, day_sd, dropout, week, followup_weeks, per_arm, trials, seed, out,
                         formats) -> None:
    """The power report: simulated power by sample size, the power curve, the closed-form check."""
    from .reports import render_power

    result = render_power(out or default_reports_dir() / "power", effect=effect, sd=sd, gain_sd=gain_sd,
                          day_sd=day_sd, dropout=dropout, week=week, followup_weeks=followup_weeks, per_arm=per_arm,
                          trials=trials, seed=seed, formats=formats)
    _echo_outputs(result)


@report_group.command("overview")
@_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: ./reports/clinic].")
@_as_of_option
@_format_option
@_refusals
def report_overview_command(store_path, out, as_of, formats) -> None:
    """Every patient's latest IR, change vs MDC, adherence and flags, who needs attention first."""
    from .reports import render_overview

    result = render_overview(store_path or default_store(), out or default_reports_dir() / "clinic",
                             as_of=as_of.date() if as_of else None,
                             formats=formats)
    _echo_outputs(result)


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
    from .progress import patient_list
    from .reports import render_clinic
    from .store import Store

    if patients and everyone:
        raise click.UsageError("give --patients or --all, not both")
    location = store_path or default_store()
    ids = [p.strip() for p in patients.split(",")] if patients else None
    if everyone:
        with Store(location, create=False) as store:
            listed = patient_list(store, as_of=as_of)
        ids = listed.loc[listed["n_visits"] > 0, "patient_id"].tolist()
    result = render_clinic(location, out or default_reports_dir() / "clinic", patients=ids, jobs=jobs,
                           formats=formats, as_of=as_of.date() if as_of else None, timeout=timeout,
                           cluster=cluster)
    click.echo(f"{len(result['done'])} reports made, {len(result['failed'])} failed; index: {result['index']}")
    for patient_id, reason in sorted(result["failed"].items()):
        click.echo(f"  FAILED {patient_id}: {reason}", err=True)
    if result["failed"]:
        sys.exit(EXIT_REFUSED)


# ----------------------------------------------------------------------------------------------
# Apps


def _serve_options(default_port: int):
    return _with([
        click.option("--port", type=click.IntRange(1, 65535), default=default_port, show_default=True),
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on; anything but localhost exposes patient data (see the warning)."),
        click.option("--no-browser", is_flag=True, help="Do not open a browser tab."),
    ])


@main.command("app")
@click.argument("app", type=click.Choice(["builder", "entry", "dashboard"]))
@_store_option
@click.option("--sample", is_flag=True, help="Work on a copy of the synthetic sample clinic instead of a store.")
@click.option("--idle-minutes", type=click.IntRange(min=1), default=60, show_default=True,
              help="Shut down the kernel of a closed page after this long without activity.")
@_serve_options(8866)
@_refusals
def app_command(app, store_path, sample, idle_minutes, port, host, no_browser) -> None:
    """Serve an app with Voilà: builder (programs), entry (visits) or dashboard (one patient)."""
    import shutil
    import tempfile

    from .apps.serve import check_port, exposure_warning, run, voila_command
    from .store import Store

    if sample and store_path:
        raise click.UsageError("give --store or --sample, not both")
    check_port(host, port)
    scratch = None
    if sample:  # a fresh private copy for this run: what is saved in it goes when the app stops
        from .synthetic import sample_store

        scratch = Path(tempfile.mkdtemp(prefix="hipanalytics-app-sample-"))
        location = str(sample_store(scratch / "sample.sqlite"))
    else:
        location = store_path or default_store()
        Store(location, create=False).close()  # refuses a missing store or a wrong schema, with the reason
    click.echo(exposure_warning(host), err=True)
    click.echo(f"store: {location}{' (synthetic sample, deleted when the app stops)' if sample else ''}\n"
               f"open http://{'localhost' if host == '127.0.0.1' else host}:{port}/ (Ctrl-C stops the app)", err=True)
    try:
        code = run(voila_command(app, port=port, host=host, idle_minutes=idle_minutes, open_browser=not no_browser),
                   store=location)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(code)


@main.command("lab")
@_store_option
@_serve_options(8888)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to open; the shipped notebooks are copied into it where missing "
                   "[default: notebooks/ of a source checkout, else ./hipanalytics-notebooks].")
@click.option("--allow-root", is_flag=True, help="Let JupyterLab run as root (it refuses otherwise; e.g. in a container).")
@_refusals
def lab_command(store_path, port, host, no_browser, folder, allow_root) -> None:
    """Open JupyterLab at the notebooks (reports, tutorials, apps), with the store set for them."""
    from .apps.serve import check_port, exposure_warning, lab_command as command, lab_folder, run

    check_port(host, port)
    folder, copied = lab_folder(folder)
    if copied:
        click.echo(f"copied {len(copied)} notebooks into {folder}", err=True)
    click.echo(exposure_warning(host), err=True)
    sys.exit(run(command(folder, port=port, host=host, open_browser=not no_browser, allow_root=allow_root),
                 store=store_path))


if __name__ == "__main__":  # pragma: no cover
    main()

