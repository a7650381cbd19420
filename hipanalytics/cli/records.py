"""Records: `validate`, `import`, `export`, `patients`, `key`, and the options they share."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from ..config import default_store
from ..errors import DataValidationError
from ..records import TABLES
from . import EXIT_PARTIAL, EXIT_REFUSED, _refusals, main


# ----------------------------------------------------------------------------------------------
# Records: validate, import, export
# ----------------------------------------------------------------------------------------------

_TABLE = click.Choice(list(TABLES))
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
    for name in TABLES:
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
    from ..records import read_records
    from ..store import Store

    table = _guess_table(file, table)
    patients = None
    location = store_path or default_store()
    found = "://" in location or Path(location).exists()
    if found:  # known patients (for patients: ids in another case)
        with Store(location, create=False) as store:
            patients = store.read("patients")[["patient_id", "birth_year"]]
    result = read_records(file, table, sheet=sheet, dates=dates, encoding=encoding, repeated_trials=repeated_trials,
                          patients=patients)
    if found:  # as an import would: ids already stored with other values
        with Store(location, create=False) as store:
            result = store.check_against_store(result)
    click.echo(str(result.report))
    if not found:
        click.echo(f"warning: no store at {location}, so the file was checked on its own: unknown patients and ids "
                   "already stored were not looked for (give --store, or set $HIPANALYTICS_STORE)", err=True)
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

    from ..store import Store

    if redcap_export is not None:
        if file is not None or table or sheet or encoding:
            raise click.UsageError("--from-redcap imports the export's tables: no FILE, --table, --sheet or --encoding")
        if dictionary is None:
            raise click.UsageError("--from-redcap needs the project's --dictionary (its data dictionary CSV)")
        from .interop import _import_redcap

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
    _echo_set_aside(summary)
    _echo_worth_a_look(summary)
    if summary.report is not None:
        _write_report(summary.report, report_path)
    if summary.quarantined:
        sys.exit(EXIT_PARTIAL)


def _echo_set_aside(summary, first: int = 5) -> None:
    """The rows an import set aside, with why: the first ``first`` rows (each problem with its row,
    column and value), then how many more and the file that lists them all."""
    from ..records.report import shown

    if not summary.quarantined or summary.report is None:
        return
    errors = summary.report.errors
    rows = sorted({int(r) for r in errors["row"].dropna()})
    click.echo(f"set aside {summary.quarantined} row{'s' if summary.quarantined != 1 else ''}, not imported:")
    for p in errors[errors["row"].isin(rows[:first])].sort_values("row", kind="stable").itertuples():
        column = p.column if isinstance(p.column, str) else "the row"
        click.echo(f"  row {int(p.row)}  {column} {shown(p.value)}: {p.rule}; fix: {p.fix}")
    if len(rows) > first:
        click.echo(f"  ... and {len(rows) - first} more, see {summary.quarantine_file}")


def _echo_worth_a_look(summary, first: int = 5) -> None:
    """Rows imported with a caveat, and rows imported once that may have been meant twice (equal
    trials without trial numbers): the first ``first`` of each, with the fix, then how many more."""
    from ..records.report import shown

    if summary.report is None:
        return
    problems = summary.report.problems
    suspected = problems[(problems["severity"] == "duplicate") & problems["rule"].str.startswith("suspected")]
    for label, found in (("suspected duplicates, imported once", suspected),
                         ("warnings (imported)", problems[problems["severity"] == "warning"])):
        if found.empty:
            continue
        click.echo(f"{label}:")
        for p in found.head(first).itertuples():
            what = f"{p.column} {shown(p.value)}" if isinstance(p.column, str) else p.value
            where = "the file" if pd.isna(p.row) else f"row {int(p.row)}"  # a warning about the whole file
            click.echo(f"  {where} ({what}): {p.rule}; {p.fix}")
        if len(found) > first:
            click.echo(f"  ... and {len(found) - first} more (--report FILE lists them all)")


@main.command("export")
@click.argument("table", type=_TABLE, required=False)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="File (.csv/.parquet) for one table, or a folder with --deidentify.")
@click.option("--history", is_flag=True, help="Every version of every record, not only the current state.")
@click.option("--deidentify", is_flag=True, help="De-identified research export of all tables.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Secret key for pseudonyms and date shifts [default: $HIPANALYTICS_DEID_KEY].")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--k", "k", type=click.IntRange(min=2), default=5, show_default=True,
              help="With --deidentify: warn about combinations of age band, sex, side, site and cohort shared "
                   "by fewer than K patients.")
@click.option("--generalise", is_flag=True,
              help="With --deidentify: widen the age bands, then suppress site and cohort, until every such "
                   "group has K patients or more.")
@click.option("--to-redcap", "to_redcap", is_flag=True,
              help="Every table as one REDCap import file (CSV, raw data) for the dictionary of "
                   "`hipanalytics redcap dictionary`.")
@_store_option
@_refusals
def export_command(table, out, history, deidentify, key_file, fmt, k, generalise, to_redcap, store_path) -> None:
    """Export TABLE to a file, or (--deidentify) every table de-identified for research, or
    (--to-redcap) every table in REDCap's import format."""
    import os

    from ..store import Store, export_research

    store = Store(store_path or default_store(), create=False)
    if to_redcap:
        from ..redcap import redcap_records

        if table or deidentify or history:
            raise click.UsageError("--to-redcap exports every table's current records: no TABLE, --history "
                                   "or --deidentify with it")
        records = redcap_records({name: store.read(name) for name in TABLES})
        records.to_csv(out, index=False, encoding="utf-8")
        patients = records["redcap_repeat_instrument"].eq("").sum()
        click.echo(f"{out}: {len(records)} REDCap rows ({patients} patients and their repeating instruments)")
        return
    if deidentify:
        key = key_file.read_bytes().strip() if key_file else os.environ.get("HIPANALYTICS_DEID_KEY", "").encode()
        if not key:
            raise click.UsageError("--deidentify needs a secret key: --key-file FILE or $HIPANALYTICS_DEID_KEY")
        result = export_research(store, out, key, fmt=fmt, k=k, generalise=generalise)
        for name, path in result.paths.items():
            click.echo(f"  {name:13} {path}")
        if result.generalised:
            click.echo(f"generalised: {'; '.join(result.generalised)}")
        if result.warning():
            click.echo(f"warning: {result.warning()}", err=True)
        return
    if generalise:
        raise click.UsageError("--generalise is for the research export: add --deidentify")
    if table is None:
        raise click.UsageError("name the TABLE to export, or use --deidentify")
    click.echo(store.export(table, out, history=history))


@main.command("patients")
@_store_option
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]),
              help="Day to judge the current program on [default: the latest measurement or session].")
@click.option("--active", "only_active", is_flag=True, help="Only active patients (those `report clinic` reports on).")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output instead of a table.")
@_refusals
def patients_command(store_path, as_of, only_active, as_csv) -> None:
    """List the patients in the store: involved side, current program, episode of care, last
    measurement, active.

    A patient is active when a program of the current episode of care is in force on the day or
    ended at most 28 days before it (a final report is still due), and the episode was not
    discharged. Display names are never listed.
    """
    from ..progress import latest_date, patient_list
    from ..store import Store

    with Store(store_path or default_store(), create=False) as store:
        tables = {t: store.read(t) for t in TABLES}
    listed = patient_list(tables, as_of=as_of)
    day = as_of or latest_date(tables)
    if only_active:
        listed = listed[listed["active"]]
    if as_csv:
        click.echo(listed.to_csv(index=False), nl=False)
        return
    shown = listed.assign(active=listed["active"].map({True: "yes", False: ""})).fillna("")
    shown = shown.drop(columns=["program_id"]).rename(columns={
        "patient_id": "patient", "involved_side": "involved", "episode_status": "episode status",
        "last_measured_on": "last measured", "n_visits": "visits"})
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


