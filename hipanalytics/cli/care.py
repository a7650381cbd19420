"""Care of one patient over time: `switch` (a schedule change from a date) and `discharge` (the
end of an episode of care). Both write to the store and say what changed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from ..config import default_reports_dir, default_store, safe_filename
from ..errors import DataValidationError, StoreError
from ..records import table_spec
from . import _refusals, main
from .programs import _summary, _write_program_files
from .records import _store_option

_DISCHARGE_REASONS = next(c.allowed for c in table_spec("episodes") if c.name == "discharge_reason")
_DATE = click.DateTime(["%Y-%m-%d"])
_who_option = click.option("--who", help="Name recorded in the audit trail [default: login name].")


def _known_patient(store, patient_id: str):
    """The stored record of ``patient_id`` (a row); refuse a patient the store does not hold, naming a
    stored id that differs only in case."""
    patients = store.read("patients")
    ids = patients["patient_id"].tolist()
    if patient_id in ids:
        return patients[patients["patient_id"] == patient_id].iloc[0]
    same = [p for p in ids if p.casefold() == patient_id.casefold()]
    hint = (f"ids are case-sensitive: did you mean {same[0]!r}?" if same
            else "`hipanalytics patients` lists the patients (import a new patient first)")
    raise StoreError(f"unknown patient {patient_id!r}: not in the store's patients table; {hint}")


@contextlib.contextmanager
def _in_words(what: str):
    """A record the store refuses (e.g. a date in the future) as one sentence naming each problem,
    not as a refused import."""
    from ..records.report import shown

    try:
        yield
    except DataValidationError as exc:
        problems = "; ".join(f"{p.column} {shown(p.value)}: {p.rule} ({p.fix})" for p in exc.report.errors.itertuples())
        raise StoreError(f"{what} was refused, nothing saved: {problems}") from None


def _program_in_force(store, patient_id: str, day):
    """The stored program of ``patient_id`` in force on ``day`` (the latest started, if several)."""
    import pandas as pd

    from ..program import program_from_record

    programs = store.read("programs", patient_id=patient_id).sort_values("start_date", kind="stable")
    on = pd.Timestamp(day)
    live = programs[(programs["start_date"] <= on) & (programs["end_date"] >= on)]
    if live.empty:
        stored = "; ".join(f"{p.program_id} {p.start_date:%Y-%m-%d} to {p.end_date:%Y-%m-%d}"
                           for p in programs.itertuples()) or "none stored"
        raise StoreError(f"patient {patient_id!r} has no program in force on {day}: nothing to switch (programs: "
                         f"{stored}); check the date, or prescribe a program first")
    return program_from_record(live.iloc[-1])


@main.command("switch")
@click.argument("patient_id")
@click.option("--to", "schedule", required=True,
              help="The new schedule: daily, three-per-week, or custom weekdays such as mon,thu.")
@click.option("--on", "on", required=True, type=_DATE, help="First day of the new schedule, YYYY-MM-DD.")
@click.option("--reason", help="Why (required; kept with both programs), e.g. 'pain rise after daily breakouts'.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the new program's plan, handout and calendar [default: ./reports/programs].")
@_who_option
@_store_option
@_refusals
def switch_command(patient_id, schedule, on, reason, out, who, store_path) -> None:
    """Switch PATIENT_ID to another breakout schedule from a date.

    The program in force on --on ends the day before (a correction: it stays on record) and a new
    program on the --to schedule runs from --on to the old program's end; across a move to a
    schedule with recovery days, the first new breakout waits a recovery day after the last old
    one. Writes the new program's plan (CSV), handout (HTML, PDF) and calendar (.ics).
    """
    from ..program import plan, switch_schedule
    from ..store import Store

    if not reason or not reason.strip():
        raise click.UsageError("a schedule change needs --reason TEXT (kept with the new program and the old one's "
                               "correction), e.g. --reason 'pain rise after daily breakouts'")
    day = on.date()
    folder = out or default_reports_dir() / "programs"
    with Store(store_path or default_store(), create=False) as store:
        patient = _known_patient(store, patient_id)
        current = _program_in_force(store, patient_id, day)
        old, new = switch_schedule(current, schedule, on=day, reason=reason.strip())
        if new.resolved_schedule.id == current.resolved_schedule.id:
            raise StoreError(f"patient {patient_id!r} is on {current.resolved_schedule.id} already (program "
                             f"{current.program_id!r}, {current.start_date} to {current.end_date}): nothing to switch")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".switch-", dir=folder) as scratch:  # nothing is left if refused
            written = _write_program_files(new, Path(scratch), side=patient["involved_side"])
            with _in_words("the new program"):
                store.save_program(new, who=who)
            target = folder / safe_filename(new.program_id)
            target.mkdir(exist_ok=True)
            files = {}
            for kind, path in written.items():
                files[kind] = target / path.name
                os.replace(path, files[kind])
    breakouts = plan(new).loc[lambda d: d["breakouts"], "date"]
    click.echo(f"{patient_id}: {current.resolved_schedule.id} -> {new.resolved_schedule.id} from {day} ({new.reason})")
    click.echo(f"  ended  {old.program_id}: now ends {old.end_date} (was {current.end_date}); kept on record")
    click.echo(f"  new    {_summary(new)}")
    if len(breakouts):
        first = breakouts.min().date()
        text = f"  first breakout day: {first:%a %Y-%m-%d}"
        if new.previous_breakout is not None:
            rest = (first - new.previous_breakout).days - 1
            text += (f" ({rest} day{'s' if rest != 1 else ''} without breakouts after the last "
                     f"{current.resolved_schedule.id} one, {new.previous_breakout:%a %Y-%m-%d})")
        click.echo(text)
    for kind, path in files.items():
        click.echo(f"  {kind:11} {path}")


@main.command("discharge")
@click.argument("patient_id")
@click.option("--on", "on", required=True, type=_DATE, help="Day of the discharge, YYYY-MM-DD.")
@click.option("--reason", type=click.Choice(_DISCHARGE_REASONS), help="Why the episode of care ended.")
@click.option("--note", "note", help="Free text kept with the episode (e.g. the final IR and the patient's goal).")
@_who_option
@_store_option
@_refusals
def discharge_command(patient_id, on, reason, note, who, store_path) -> None:
    """Discharge PATIENT_ID on a day: their current episode of care ends.

    A program running past that day is ended on it (a correction: it stays on record); a program
    prescribed later starts a new episode of care, with its own baseline. The patient stops being
    active (reports, worklist) from the discharge.
    """
    import pandas as pd

    from ..store import Store

    day = on.date()
    with Store(store_path or default_store(), create=False) as store:
        _known_patient(store, patient_id)
        before = store.read("programs", patient_id=patient_id).set_index("program_id")["end_date"]
        with _in_words("the discharge"):
            episode_id = store.discharge(patient_id, day, reason=reason, notes=note, who=who)
        after = store.read("programs", patient_id=patient_id).set_index("program_id")["end_date"]
        episode = store.read("episodes", patient_id=patient_id).set_index("episode_id").loc[episode_id]
    why = f" ({reason.replace('_', ' ')})" if reason else ""
    click.echo(f"{patient_id}: episode of care {episode_id} ({pd.Timestamp(episode['start_date']):%Y-%m-%d} to {day}) "
               f"discharged on {day}{why}")
    ended = [p for p in after.index if p in before.index and after[p] != before[p]]
    for program_id in ended:
        click.echo(f"  program {program_id} ended early on {day} (was to {before[program_id]:%Y-%m-%d}); kept on record")
    if not ended:
        click.echo(f"  no program ran past {day}")
    click.echo("  a program prescribed after this day starts a new episode of care")
