"""Importing into the store: files (strict or quarantine, in one transaction) and form entries.

Every row read is accounted for: ``rows_read == imported + quarantined + duplicates + skipped``.
Importing the same file again adds nothing; if some of its rows were set aside the first time,
those rows are tried again (the rows already stored count as duplicates). A quarantine file,
once corrected, imports directly, its rows keeping their row numbers in the file first imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..config import safe_filename
from ..errors import DataValidationError, StoreError
from ..records import ID_COLUMN, ORIGINAL_ROW, SOURCE_ROW, TABLES, ReadResult, ValidationReport, read_records, table_spec
from ..records.read import label_of, source_bytes
from .export import spreadsheet_safe
from .schema import db_values, now, sql_literal, typed, user

__all__ = ["ImportSummary", "ImportMixin", "import_derived"]


@dataclass(frozen=True)
class ImportSummary:
    """What one import did. ``rows_read == imported + quarantined + duplicates + skipped`` always.

    ``normalised`` counts the values changed per normalisation rule; ``retry_of`` names the
    earlier import of the same file whose set-aside rows this one tried again; ``origin`` the
    file a corrected quarantine file's rows first came from.
    """

    file: str
    table: str
    mode: str
    rows_read: int
    imported: int
    quarantined: int
    duplicates: int
    warnings: int
    already_imported: bool
    import_id: int | None
    quarantine_file: str | None
    skipped: int = 0
    normalised: dict[str, int] = field(default_factory=dict)
    retry_of: int | None = None
    origin: str | None = None
    report: ValidationReport | None = field(default=None, repr=False, compare=False)
    """The full validation report (every problem and normalisation); not kept in the audit."""

    def __str__(self) -> str:
        if self.already_imported:
            return f"{self.file}: already imported (same content); nothing added"
        text = (f"{self.file} -> {self.table}: {self.rows_read} rows read, {self.imported} imported, "
                f"{self.quarantined} quarantined, {self.duplicates} duplicates, {self.skipped} skipped, "
                f"{self.warnings} warnings")
        if self.retry_of is not None:
            text += (f"\n  imported before (import {self.retry_of}) with rows set aside: those rows were tried "
                     "again; rows already stored count as duplicates")
        if self.origin:
            text += f"\n  rows taken from {self.origin} (their row numbers there are kept)"
        for rule, count in self.normalised.items():
            text += f"\n  normalised {count:>7}  {rule}"
        if self.quarantine_file:
            text += f"\n  bad rows with reasons: {self.quarantine_file}"
        return text


def _check_mode(mode: str) -> None:
    if mode not in ("strict", "quarantine"):
        raise StoreError(f"mode must be 'strict' or 'quarantine', got {mode!r}")


@dataclass(frozen=True)
class _Validated:
    """A file read and validated, waiting to be stored: its table, label, fingerprint and rows."""

    table: str
    label: str
    sha: str
    result: ReadResult


class ImportMixin:
    """The store's import methods (mixed into :class:`hipanalytics.store.Store`)."""

    def import_file(
        self,
        source: str | Path | io.IOBase,
        table: str,
        *,
        mode: Literal["strict", "quarantine"] = "strict",
        quarantine_dir: str | Path | None = None,
        sheet: str | int | None = None,
        dates: str | None = None,
        encoding: str | None = None,
        repeated_trials: bool = False,
        who: str | None = None,
        today: date | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        origin: str | None = None,
    ) -> ImportSummary:
        """Validate a file and import it in one transaction.

        Parameters
        ----------
        source : str, Path or file-like
            See :func:`hipanalytics.records.read_records`.
        table : str
            ``patients``, ``programs``, ``measurements`` or ``sessions``.
        mode : {"strict", "quarantine"}
            ``strict`` imports nothing if any row has an error (raises DataValidationError);
            ``quarantine`` imports the good rows and writes the bad ones, unchanged and with
            reasons, to a CSV in ``quarantine_dir`` (default: beside the file, or the current
            folder). A file that cannot be read as the table at all (not a table, empty, a
            required column missing or given twice, dates in mixed orders) is refused whole in
            both modes.
        sheet, dates, encoding, repeated_trials, today
            Passed to :func:`hipanalytics.records.read_records`.
        who : str, optional
            Recorded in the audit trail (default: the login name).
        progress : callable, optional
            Called as ``progress(stage, done, total)`` while reading and writing (for a bar).
        origin : str, optional
            The file the rows were taken from when ``source`` is derived from another file (a
            REDCap export): its row numbers, in the ``source_row`` column, are what the audit and
            any quarantine file keep. By default a ``source_row`` column marks a corrected
            quarantine file and the origin is looked up.

        Returns
        -------
        ImportSummary
        """
        _check_mode(mode)
        report = progress or (lambda stage, done, total: None)
        patients = self.read("patients")[["patient_id", "birth_year"]]
        ready = self._validated(source, table, patients, report, sheet=sheet, dates=dates, encoding=encoding,
                                repeated_trials=repeated_trials, today=today)
        with self._writing() as conn:
            return self._store_validated(conn, ready, mode, quarantine_dir, user(who), origin, report)

    def import_tables(
        self,
        sources: list[tuple[io.IOBase, str]],
        *,
        mode: Literal["strict", "quarantine"] = "strict",
        quarantine_dir: str | Path | None = None,
        dates: dict[str, str] | None = None,
        who: str | None = None,
        origin: str | None = None,
    ) -> list[ImportSummary]:
        """Import several tables read from one file (a REDCap export, a FHIR Bundle) in one
        transaction: in strict mode an error in any table imports nothing of any.

        Parameters
        ----------
        sources : list of (file-like, table)
            In the order to store them (patients first); a later table's rows may refer to the
            patients of an earlier one.
        mode, quarantine_dir, who, origin
            As for :meth:`import_file`.
        dates : dict, optional
            ``table -> "day-first" | "month-first"``.

        Returns
        -------
        list of ImportSummary
            One per table, in order.
        """
        _check_mode(mode)
        quiet = lambda stage, done, total: None  # noqa: E731
        patients = self.read("patients")[["patient_id", "birth_year"]]
        ready = []
        for source, table in sources:  # everything validated before the transaction starts
            ready.append(self._validated(source, table, patients, quiet, dates=(dates or {}).get(table)))
            if table == "patients":  # the patients this import will store, for the tables after it
                new = ready[-1].result.valid()[["patient_id", "birth_year"]]  # (a stored patient stays as stored)
                patients = pd.concat([patients, new], ignore_index=True).drop_duplicates("patient_id", keep="first")
        who = user(who)
        with self._writing() as conn:
            return [self._store_validated(conn, r, mode, quarantine_dir, who, origin, quiet) for r in ready]

    def _validated(self, source, table: str, patients, report, **read) -> _Validated:
        """Read and validate ``source`` (outside any transaction); a file refused whole raises."""
        self._table(table)
        try:
            content = source_bytes(source)
        except FileNotFoundError as exc:
            raise StoreError(str(exc)) from None
        label = label_of(source)
        exact = io.BytesIO(content)  # validate the very bytes that are fingerprinted
        exact.name = label
        report("reading and validating", 0, 0)
        result = read_records(exact, table, patients=patients, **read)
        if result.report.whole_file:  # no usable table: refused whole, in either mode
            raise DataValidationError(result.report)
        return _Validated(table, label, hashlib.sha256(content).hexdigest(), result)

    def _store_validated(self, conn, ready: _Validated, mode: str, quarantine_dir, who: str, origin: str | None,
                         report) -> ImportSummary:
        """Store what :meth:`_validated` read, inside the caller's transaction (strict mode raises
        DataValidationError, which rolls it back)."""
        table, label, sha, result = ready.table, ready.label, ready.sha, ready.result
        imports = self.md.tables["imports"]
        before = conn.execute(sa.select(imports.c.import_id, imports.c.quarantined).where(
            imports.c.table_name == table, imports.c.file_sha256 == sha).order_by(imports.c.import_id)).all()
        if before and not before[-1].quarantined:
            n = result.report.rows_read
            return ImportSummary(label, table, mode, n, 0, 0, n, 0, True, before[-1].import_id, None)
        conflicts, same_as_stored = self._compare_with_store(conn, table, result)
        bad_rows = result.report.rows_with("error") | set(conflicts)
        if bad_rows and mode == "strict":
            raise DataValidationError(_with_problems(result, conflicts).report)
        stored_dupes = same_as_stored - bad_rows
        file_dupes = result.report.rows_with("duplicate") - bad_rows
        skip = bad_rows | file_dupes | stored_dupes
        good = result.data[~result.data[SOURCE_ROW].isin(skip)]
        quarantine_file = None
        if bad_rows:
            result = _with_problems(result, conflicts)
            quarantine_file = _write_quarantine(result, bad_rows, label, table, quarantine_dir)
        if origin is None and ORIGINAL_ROW in result.data:
            origin = self._quarantine_origin(conn, label)
        summary = ImportSummary(
            label, table, mode, result.report.rows_read, len(good), len(bad_rows),
            len(file_dupes) + len(stored_dupes), len(result.report.warnings), False, None,
            str(quarantine_file) if quarantine_file else None, skipped=len(result.report.rows_with("skipped")),
            normalised={str(k): int(v) for k, v in result.report.normalisation_counts().items()},
            retry_of=before[-1].import_id if before else None, origin=origin, report=result.report,
        )
        accounted = summary.imported + summary.quarantined + summary.duplicates + summary.skipped
        if accounted != summary.rows_read:
            raise StoreError(f"row accounting failed for {label}: {summary}")  # never expected
        import_id = conn.execute(imports.insert().values(
            table_name=table, file=label, file_sha256=sha, mode=mode, rows_read=summary.rows_read,
            imported=summary.imported, quarantined=summary.quarantined, duplicates=summary.duplicates,
            skipped=summary.skipped, origin=origin, imported_at=now(), imported_by=who)).inserted_primary_key[0]
        if ORIGINAL_ROW in good:  # the audit keeps each row's number in the file it first came from
            good = good.assign(**{SOURCE_ROW: good[ORIGINAL_ROW]}).drop(columns=ORIGINAL_ROW)
        self._insert(conn, table, good, import_id=import_id, who=who, progress=report)
        conn.execute(self.md.tables["audit"].insert().values(
            at=now(), who=who, action="import", table_name=table, import_id=import_id,
            reason=f"import of {label}", details=json.dumps({f.name: getattr(summary, f.name) for f in fields(summary)
                                                             if f.name not in ("file", "report")})))
        return dataclasses.replace(summary, import_id=import_id)

    def _quarantine_origin(self, conn, label: str) -> str:
        """The file whose set-aside rows a quarantine file holds: found from the import that wrote
        it (its audit names the file), else from the quarantine file's name."""
        name = Path(label).name
        audit = self.md.tables["audit"]
        found = conn.execute(sa.select(audit.c.reason, audit.c.details).where(
            audit.c.action == "import", audit.c.details.contains(json.dumps(name)[1:-1], autoescape=True))
            .order_by(audit.c.audit_id.desc())).first()
        if found is not None and name in str(json.loads(found.details).get("quarantine_file") or ""):
            return found.reason.removeprefix("import of ")
        parsed = re.fullmatch(r"(.+)-(?:patients|programs|measurements|sessions)-quarantine-\d{8}T\d{6}Z(?:-\d+)?",
                              Path(label).stem)
        return f"{parsed.group(1)} (from the quarantine file's name)" if parsed else "an earlier import (unknown file)"

    def _stored_versions(self, conn, table: str, ids: pd.Series) -> pd.DataFrame:
        """Current stored rows whose id is among ``ids`` (one query through a temporary id table)."""
        t = self.md.tables[table]
        id_col = ID_COLUMN[table]
        if conn.execute(sa.select(t.c.row_id).limit(1)).first() is None:
            return pd.DataFrame()
        wanted = pd.Series(pd.unique(ids.dropna()))
        if wanted.empty:  # no row has an id (every one refused): nothing to look up
            return pd.DataFrame()
        conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS incoming_ids (rid TEXT PRIMARY KEY)")
        conn.exec_driver_sql("DELETE FROM incoming_ids")
        incoming = sa.table("incoming_ids", sa.column("rid"))
        conn.execute(incoming.insert(), [{"rid": i} for i in wanted.tolist()])
        latest = (sa.select(t.c[id_col].label("rid"), sa.func.max(t.c.version).label("v"))
                  .where(t.c[id_col].in_(sa.select(incoming.c.rid))).group_by(t.c[id_col]).subquery())
        query = sa.select(t).join(latest, sa.and_(t.c[id_col] == latest.c.rid, t.c.version == latest.c.v))
        stored = typed(table, pd.read_sql(query, conn))
        conn.exec_driver_sql("DELETE FROM incoming_ids")
        return stored[stored["status"] == "active"]

    def check_against_store(self, result: ReadResult) -> ReadResult:
        """``result`` (of :func:`~hipanalytics.records.read_records`) with the errors an import of it
        would add: rows whose id is already stored with other values. Nothing is written."""
        if result.report.whole_file or result.data.empty or ID_COLUMN[result.report.table] not in result.data:
            return result
        with self.engine.connect() as conn:
            conflicts, _ = self._compare_with_store(conn, result.report.table, result)
            conn.rollback()
        return _with_problems(result, conflicts)

    def _compare_with_store(self, conn, table: str, result: ReadResult) -> tuple[dict[int, str], set[int]]:
        """Rows whose id is stored with different content (conflicts) and with the same (duplicates)."""
        id_col = ID_COLUMN[table]
        stored = self._stored_versions(conn, table, result.data[id_col])
        if stored.empty:
            return {}, set()
        content = [c.name for c in table_spec(table)]
        merged = result.data.merge(stored[content], on=id_col, how="inner", suffixes=("", "__stored"))
        differs = np.zeros(len(merged), dtype=bool)
        for col in content:
            if col == id_col:
                continue
            a, b = merged[col], merged[f"{col}__stored"]
            differs |= ~((a == b).fillna(False) | (a.isna() & b.isna())).to_numpy()
        conflicts = {int(r): f"{id_col} {i!r} is already stored with different values"
                     for r, i in zip(merged.loc[differs, SOURCE_ROW], merged.loc[differs, id_col])}
        same = set(merged.loc[~differs, SOURCE_ROW].astype(int))
        return conflicts, same

    def _insert(self, conn, table: str, frame: pd.DataFrame, *, import_id: int | None, who: str,
                version: int = 1, supersedes: int | None = None, reason: str | None = None,
                status: str = "active", progress: Callable[[str, int, int], None] | None = None) -> None:
        if frame.empty:
            return
        if progress:
            progress("writing", 0, len(frame))  # the write phase starts here, conversion included
        spec = table_spec(table)
        names = [c.name for c in spec] + ["source_row"]
        columns = [db_values(frame[c.name], c.kind) for c in spec]
        columns.append(db_values(frame[SOURCE_ROW], "int") if SOURCE_ROW in frame else [None] * len(frame))
        constants = {"version": version, "status": status, "supersedes": supersedes, "change_reason": reason,
                     "import_id": import_id, "recorded_at": now(), "recorded_by": who}
        rows = list(zip(*columns))
        n = len(rows)
        chunk = 50_000
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:  # the driver's executemany inside SQLAlchemy's transaction; constants as literals
            cursor = conn.connection.driver_connection.cursor()
            sql = (f'INSERT INTO "{table}" ({", ".join(names + list(constants))}) VALUES '
                   f'({", ".join(["?"] * len(names) + [sql_literal(v) for v in constants.values()])})')
        for start in range(0, n, chunk):
            part = rows[start:start + chunk]
            if sqlite:
                cursor.executemany(sql, part)
            else:
                conn.execute(self.md.tables[table].insert(), [dict(zip(names, r), **constants) for r in part])
            if progress:
                progress("writing", min(start + chunk, n), n)
        if sqlite:
            cursor.close()

    # -- entries from forms -----------------------------------------------------------------

    def add_records(self, table: str, rows: pd.DataFrame | list[dict[str, Any]], *, who: str | None = None,
                    today: date | None = None, label: str = "entry form") -> pd.DataFrame:
        """Save rows typed into a form, validated with the same rules as a file import.

        All rows are saved in one transaction, or none: any error (including a row whose id is
        already stored, with the same or different values) raises and saves nothing, so the
        caller can keep the form filled in.

        Parameters
        ----------
        table : str
            ``patients``, ``programs``, ``measurements`` or ``sessions``.
        rows : DataFrame or list of dict
            Columns as in the data dictionary; ids are derived when left out, as on import.
        who : str, optional
            Recorded in the audit trail (default: the login name).
        today : date, optional
            Reference for "date in the future".
        label : str
            Names the source in problems and in the audit trail.

        Returns
        -------
        DataFrame
            The rows as saved (normalised, with their ids).

        Raises
        ------
        DataValidationError
            With every problem; the report's ``row`` counts the first entry as row 2, as a
            spreadsheet with a header would.
        """
        with self._writing() as conn:
            return self._add_records_in(conn, table, rows, who=user(who), today=today, label=label)

    def _add_records_in(self, conn, table, rows, *, who, today, label) -> pd.DataFrame:
        self._table(table)
        frame = pd.DataFrame(rows)
        patients = None
        if table != "patients":
            patients = typed("patients", pd.read_sql(sa.select(self.md.tables["patients"].c.patient_id,
                                                               self.md.tables["patients"].c.birth_year), conn))
        result = read_records(as_csv(frame, label), table, today=today, patients=patients)
        conflicts, same = self._compare_with_store(conn, table, result)
        conflicts |= {r: f"{ID_COLUMN[table]} {i!r} is already stored with these values; nothing new to save"
                      for r, i in zip(result.data[SOURCE_ROW], result.data[ID_COLUMN[table]]) if r in same}
        result = _with_problems(result, conflicts)
        if not result.report.ok or result.report.rows_with("duplicate"):
            raise DataValidationError(result.report)
        saved = result.data.assign(**{SOURCE_ROW: pd.NA})
        self._insert(conn, table, saved, import_id=None, who=who)
        conn.execute(self.md.tables["audit"].insert().values(
            at=now(), who=who, action="entry", table_name=table,
            record_id=", ".join(saved[ID_COLUMN[table]].astype(str)), reason=label,
            details=json.dumps({"rows": len(saved)})))
        return saved.drop(columns=SOURCE_ROW).reset_index(drop=True)


def import_derived(store, rows, labels: dict[str, str], *, origin: str | None = None, mode: str = "strict",
                   quarantine_dir: str | Path | None = None, dates: str | None = None,
                   who: str | None = None) -> dict[str, ImportSummary]:
    """Import tables read out of another format (a REDCap export, a FHIR Bundle), patients first,
    in one transaction (:meth:`Store.import_tables`), through the same validation, quarantine and
    row accounting as any file. In strict mode an error anywhere imports nothing.

    Parameters
    ----------
    store : Store
    rows
        What was read: ``file``, ``tables`` (our columns as text; with ``origin``, also
        ``source_row``: the row in ``origin``), ``dates`` (``table -> date order``) and
        ``translate(report, table)``, which turns a report of the derived rows into one naming the
        original file's rows and fields.
    labels : dict
        ``table -> label`` of the derived file (audit, messages).
    origin : str, optional
        The original file whose row numbers ``source_row`` holds (kept by the audit and
        quarantine files); without it the rows are numbered as the derived table's.
    mode, quarantine_dir, dates, who
        As for :meth:`Store.import_file`; ``dates`` overrides ``rows.dates``.

    Returns
    -------
    dict
        ``table -> ImportSummary`` with its report translated.
    """
    tables = sorted((t for t, f in rows.tables.items() if len(f)), key=TABLES.index)  # patients first
    sources = [(as_csv(rows.tables[t], labels[t]), t) for t in tables]
    try:
        summaries = store.import_tables(sources, mode=mode, quarantine_dir=quarantine_dir, who=who, origin=origin,
                                        dates={t: dates or rows.dates.get(t) for t in tables})
    except DataValidationError as exc:
        raise DataValidationError(rows.translate(exc.report, exc.report.table)) from None
    return {t: dataclasses.replace(s, report=rows.translate(s.report, t) if s.report is not None else None)
            for t, s in zip(tables, summaries)}


def as_csv(frame: pd.DataFrame, label: str) -> io.StringIO:
    """Values from code or a form as a CSV file, so they pass through the import rules."""
    text = frame.copy()
    for column in text.columns:
        if pd.api.types.is_datetime64_any_dtype(text[column]):
            text[column] = text[column].dt.strftime("%Y-%m-%d")
        elif text[column].dtype == object:
            text[column] = text[column].map(lambda v: v.isoformat() if isinstance(v, date) else v)
    buffer = io.StringIO()
    text.to_csv(buffer, index=False)
    buffer.seek(0)
    buffer.name = label
    return buffer


def _with_problems(result: ReadResult, conflicts: dict[int, str]) -> ReadResult:
    if not conflicts:
        return result
    report = result.report
    id_col = ID_COLUMN[report.table]
    ids = result.data.set_index(SOURCE_ROW)[id_col]
    extra = pd.DataFrame({
        "severity": "error", "file": report.file, "row": pd.Series(list(conflicts), dtype="Int64"),
        "column": id_col, "value": [ids[r] for r in conflicts], "rule": list(conflicts.values()),
        "fix": "to change a stored record use a correction (with a reason); otherwise fix this row",
    })
    problems = pd.concat([report.problems, extra], ignore_index=True)
    return ReadResult(result.data, dataclasses.replace(report, problems=problems), result.raw)


def _write_quarantine(result: ReadResult, bad_rows: set[int], label: str, table: str,
                      folder: str | Path | None) -> Path:
    """The bad rows, cells exactly as read, with a ``problems`` column: correct them and import the file."""
    if folder is None:
        folder = Path(label).parent if Path(label).exists() else Path.cwd()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{safe_filename(Path(label).stem)}-{table}-quarantine-{stamp}"
    path, n = folder / f"{base}.csv", 1
    while path.exists():  # two imports in one second never share a quarantine file
        n += 1
        path = folder / f"{base}-{n}.csv"
    errors = result.report.errors
    located = errors["column"].isna()
    text = (errors["column"].fillna("row") + ": " + errors["rule"]
            + np.where(located, " (the row as written: " + errors["value"] + ")", "")
            + " (fix: " + errors["fix"] + ")")
    reasons = errors.assign(text=text).groupby("row")["text"].agg(" | ".join)
    bad = result.raw[result.raw[SOURCE_ROW].isin(bad_rows)].copy()
    bad["problems"] = bad[SOURCE_ROW].map(reasons)
    if ORIGINAL_ROW in bad:  # a quarantine file quarantined again keeps the first file's row numbers
        bad[SOURCE_ROW] = bad.pop(ORIGINAL_ROW)
    spreadsheet_safe(bad).to_csv(path, index=False)
    return path
