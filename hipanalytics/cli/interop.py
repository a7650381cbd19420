"""Other systems: `redcap dictionary`, `fhir export`, `fhir import`, and `import --from-redcap`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
import pandas as pd

from ..config import default_store
from ..errors import DataValidationError
from . import EXIT_PARTIAL, _refusals, main
from .records import _store_option, _write_report


def _write_reports(label: str, reports: list, path: Path | None) -> None:
    """The reports of several tables (one import of another format) as one --report CSV."""
    from ..records import ValidationReport

    reports = [r for r in reports if r is not None]
    if path is not None and reports:
        _write_report(ValidationReport(label, "all", sum(r.rows_read for r in reports),
                                       pd.concat([r.problems for r in reports], ignore_index=True),
                                       pd.concat([r.normalisations for r in reports], ignore_index=True)), path)


@contextlib.contextmanager
def _refusal_reported(report_path: Path | None):
    """A refused import still writes its problems to --report before the refusal is shown."""
    try:
        yield
    except DataValidationError as exc:
        _write_report(exc.report, report_path)
        raise


def _echo_import(rows, summaries: dict) -> bool:
    """Print what an import of another format read and stored, with each table's problems; True
    when rows were set aside."""
    click.echo(str(rows))
    for summary in summaries.values():
        click.echo(str(summary))
        if summary.report is not None and not summary.report.problems.empty:
            click.echo("\n".join(str(summary.report).splitlines()[1:]))
    return any(s.quarantined for s in summaries.values())


def _import_redcap(export, dictionary, mapping, dates, report_path, quarantine, quarantine_dir, who,
                   store_path) -> None:
    from ..redcap import import_redcap
    from ..store import Store

    with Store(store_path or default_store()) as store, _refusal_reported(report_path):
        rows, summaries = import_redcap(store, export, dictionary, mapping, mode="quarantine" if quarantine else "strict",
                                        quarantine_dir=quarantine_dir, dates=dates, who=who)
    partial = _echo_import(rows, summaries)
    _write_reports(str(export), [s.report for s in summaries.values()], report_path)
    if partial:
        sys.exit(EXIT_PARTIAL)


@main.group("redcap")
def redcap_group() -> None:
    """REDCap projects: the data dictionary to build one from (see docs/redcap.md)."""


@redcap_group.command("dictionary")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The data dictionary CSV to upload in REDCap (Project Setup > Data Dictionary).")
def redcap_dictionary_command(out) -> None:
    """Write the REDCap data dictionary of hipanalytics' tables: instruments patient, program,
    rom_visit, session_log and episode (all but patient repeating), our codes as choices, our
    limits as validation, identifiers marked."""
    from ..redcap import redcap_dictionary

    dictionary = redcap_dictionary()
    dictionary.to_csv(out, index=False, encoding="utf-8")
    forms = dictionary["Form Name"].unique()
    click.echo(f"{out}: {len(dictionary)} fields on {len(forms)} instruments ({', '.join(forms)}); "
               f"make {', '.join(forms[1:-1])} and {forms[-1]} repeating instruments")


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
                                             "CarePlan.ndjson, EpisodeOfCare.ndjson (and Procedure.ndjson with --sessions).")
@click.option("--sessions", is_flag=True, help="Also the session log: each session a Procedure, its pain scores "
                                               "before, after and the next morning as NPRS Observations (LOINC 72514-3).")
@_store_option
@_refusals
def fhir_export_command(patient_ids, every, out, show_name, transaction, ndjson, sessions, store_path) -> None:
    """Write PATIENT_IDs' records (or --all) as FHIR R4: the Patient, one Observation per
    measurement (degrees, UCUM deg), each program as a CarePlan, each episode of care as an
    EpisodeOfCare and, with --sessions, the session log."""
    from ..fhir import write_fhir
    from ..store import Store

    if bool(patient_ids) == every:
        raise click.UsageError("name the PATIENT_IDs to export, or give --all (not both)")
    if transaction and ndjson:
        raise click.UsageError("--transaction makes Bundles; NDJSON files hold bare resources")
    with Store(store_path or default_store(), create=False) as store:
        tables = {t: store.read(t) for t in ("patients", "programs", "measurements", "sessions")}
    written = write_fhir(tables, out, list(patient_ids) or None, show_name=show_name, transaction=transaction,
                         ndjson=ndjson, sessions=sessions)
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
    """Import hip range-of-motion Observations, sessions (Procedures with their pain scores) and
    their Patients from FHIR Bundles or NDJSON files, through the same validation as any import.
    The FILES are read together, as one import (a bulk export's files refer to each other)."""
    from ..fhir import import_fhir
    from ..store import Store

    with Store(store_path or default_store()) as store, _refusal_reported(report_path):
        rows, summaries = import_fhir(store, list(files), mode="quarantine" if quarantine else "strict",
                                      quarantine_dir=quarantine_dir, who=who)
    partial = _echo_import(rows, summaries)
    _write_reports(rows.file, [s.report for s in summaries.values()], report_path)
    if partial:
        sys.exit(EXIT_PARTIAL)


