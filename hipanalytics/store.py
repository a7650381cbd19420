"""The store: patient records in SQLite (default) or PostgreSQL, append-only, with an audit trail.

Rows are never updated or deleted. A correction adds a new version of a record with a reason; a
void adds a version marked ``voided`` with a reason. Reads return the current state (the latest
version of each record, unless voided) by default, or the full history on request. Every write
(import, correction, void) is recorded in the ``audit`` table with when, who, what and why.

Imports run in one transaction. In ``strict`` mode nothing is imported when any row has an error;
in ``quarantine`` mode the good rows are imported and the bad rows, unchanged and with their
reasons, go to a quarantine CSV. Either way ``rows_read == imported + quarantined + duplicates``.
Importing the same file again adds nothing.

Examples
--------
>>> import io, tempfile
>>> store = Store(tempfile.mkdtemp() + "/clinic.sqlite")
>>> csv = io.StringIO("patient_id,birth_year,involved_side\\nP001,1970,right\\n")
>>> store.import_file(csv, "patients").imported
1
>>> store.read("patients")["involved_side"].tolist()
['right']
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import hmac
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from .config import safe_filename
from .errors import DataValidationError, StoreError
from .records import _DTYPES, SOURCE_ROW, TABLES, ReadResult, read_records, table_spec

if TYPE_CHECKING:
    from .program import Program

__all__ = ["SCHEMA_VERSION", "DEIDENTIFY_NOTE", "ImportSummary", "Store", "deidentify", "export_research"]

SCHEMA_VERSION = 2
"""Version of the store's table layout. An older store is migrated on open (each step adds columns
only, and is audited); a store written by a newer version is refused."""

_MIGRATIONS = {  # from version -> (table, column) pairs added
    1: [("programs", "breakout_slot"), ("programs", "choices"), ("programs", "dose_overrides"),
        ("programs", "omit")],
}

ID_COLUMN = {"patients": "patient_id", "programs": "program_id", "measurements": "measurement_id",
             "sessions": "session_id"}
_SQL_TYPES = {"id": sa.String, "text": sa.Text, "enum": sa.String, "date": sa.Date,
              "int": sa.Integer, "year": sa.Integer, "float": sa.Float}
HISTORY_COLUMNS = ["row_id", "version", "status", "supersedes", "change_reason", "import_id",
                   "source_row", "recorded_at", "recorded_by"]


@dataclass(frozen=True)
class ImportSummary:
    """What one import did. ``rows_read == imported + quarantined + duplicates`` always."""

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

    def __str__(self) -> str:
        if self.already_imported:
            return f"{self.file}: already imported (same content); nothing added"
        text = (f"{self.file} -> {self.table}: {self.rows_read} rows read, {self.imported} imported, "
                f"{self.quarantined} quarantined, {self.duplicates} duplicates, {self.warnings} warnings")
        if self.quarantine_file:
            text += f"\n  bad rows with reasons: {self.quarantine_file}"
        return text


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table("meta", md, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
    sa.Table(
        "imports", md,
        sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("imported", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.String(32), nullable=False),
        sa.Column("imported_by", sa.Text, nullable=False),
        sa.Index("ix_imports_sha", "table_name", "file_sha256"),
    )
    sa.Table(
        "audit", md,
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("record_id", sa.Text),
        sa.Column("row_id", sa.Integer),
        sa.Column("import_id", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("details", sa.Text),
    )
    for table in TABLES:
        id_col = ID_COLUMN[table]
        columns = [sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True)]
        for spec in table_spec(table):
            columns.append(sa.Column(spec.name, _SQL_TYPES[spec.kind], nullable=spec.name != id_col and spec.nullable))
        columns += [
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("status", sa.String(8), nullable=False),
            sa.Column("supersedes", sa.Integer),
            sa.Column("change_reason", sa.Text),
            sa.Column("import_id", sa.Integer),
            sa.Column("source_row", sa.Integer),
            sa.Column("recorded_at", sa.String(32), nullable=False),
            sa.Column("recorded_by", sa.Text, nullable=False),
        ]
        sa.Table(table, md, *columns, sa.UniqueConstraint(id_col, "version", name=f"uq_{table}_version"),
                 *([sa.Index(f"ix_{table}_patient", "patient_id")] if table != "patients" else []))
    return md


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


class Store:
    """A patient-records store.

    Parameters
    ----------
    location : str or Path
        A SQLite file path (created if missing) or a SQLAlchemy database URL such as
        ``postgresql+psycopg://user@host/clinic``.
    create : bool, default True
        Create the tables in a new, empty database; with False a missing store is an error.

    Raises
    ------
    StoreError
        When the store does not exist (and ``create`` is False), or was written by a different
        schema version.
    """

    def __init__(self, location: str | Path, *, create: bool = True):
        text = str(location)
        is_url = "://" in text
        if not is_url:
            path = Path(location)
            if not path.exists() and not create:
                raise StoreError(f"no store at {path}; import data first or check the path")
            if not path.parent.exists():
                raise StoreError(f"folder {path.parent} does not exist; create it or choose another path")
            text = f"sqlite:///{path}"
        self.url = text
        self.engine = sa.create_engine(text, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_setup(self.engine)
        self.md = _metadata()
        self._check_schema(create)

    # -- set-up -----------------------------------------------------------------------------

    def _check_schema(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        if not inspector.has_table("meta"):
            if not create:
                raise StoreError(f"{self.url} is not a hipanalytics store (no meta table)")
            with self.engine.begin() as conn:  # a second process creating the store waits, then finds it
                self.md.create_all(conn)
                meta = self.md.tables["meta"]
                if conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first() is None:
                    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        meta = self.md.tables["meta"]
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if found is not None and found.isdigit() and int(found) in _MIGRATIONS:
            self._migrate(int(found))
            return
        if found != str(SCHEMA_VERSION):
            raise StoreError(
                f"store {self.url} has schema version {found}, but this hipanalytics uses "
                f"{SCHEMA_VERSION}; open it with the matching hipanalytics version or migrate it"
            )

    def _migrate(self, found: int) -> None:
        """Bring an older store up to SCHEMA_VERSION in one transaction, adding columns only."""
        preparer = self.engine.dialect.identifier_preparer
        with self.engine.begin() as conn:
            meta = self.md.tables["meta"]
            now = int(conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar())
            if now >= SCHEMA_VERSION:  # another process migrated it while we waited
                return
            for version in range(now, SCHEMA_VERSION):
                for table, name in _MIGRATIONS[version]:
                    column = self.md.tables[table].c[name]
                    kind = column.type.compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} {kind}")
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
            conn.execute(self.md.tables["audit"].insert().values(
                at=_now(), who=_user(None), action="migrate", table_name="meta",
                reason=f"schema version {found} -> {SCHEMA_VERSION}",
                details=json.dumps({"added": [f"{t}.{c}" for v in range(found, SCHEMA_VERSION)
                                              for t, c in _MIGRATIONS[v]]})))

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def read(self, table: str, *, history: bool = False, patient_id: str | None = None) -> pd.DataFrame:
        """Rows of a table: the current state by default, every version with ``history=True``.

        Returns
        -------
        DataFrame
            The table's columns (dates as datetime64[s]); with ``history=True`` also
            ``row_id``, ``version``, ``status``, ``supersedes``, ``change_reason``, ``import_id``,
            ``source_row``, ``recorded_at``, ``recorded_by``.
        """
        t = self._table(table)
        with self.engine.connect() as conn:
            if history:
                where = t.c.patient_id == patient_id if patient_id is not None else sa.true()
                return _typed(table, pd.read_sql(
                    sa.select(t).where(where).order_by(t.c[ID_COLUMN[table]], t.c.version), conn))
            return self._current(conn, table, patient_id).drop(columns=HISTORY_COLUMNS).reset_index(drop=True)

    def imports(self) -> pd.DataFrame:
        """Every import: file, content hash, mode, counts, when and by whom."""
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(self.md.tables["imports"]).order_by("import_id"), conn)

    def audit(self) -> pd.DataFrame:
        """Every write: ``at``, ``who``, ``action`` (import | entry | correct | void | migrate), table,
        record, reason, details."""
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(self.md.tables["audit"]).order_by("audit_id"), conn)

    def fingerprint(self) -> str:
        """A short hash of the store's write history: equal fingerprints mean the same data snapshot."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.count(), sa.func.max(self.md.tables["audit"].c.audit_id),
                                          sa.func.max(self.md.tables["audit"].c.at))).one()
        return hashlib.sha256(repr(tuple(last)).encode()).hexdigest()[:16]

    def _table(self, table: str) -> sa.Table:
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
        return self.md.tables[table]

    # -- importing --------------------------------------------------------------------------

    def import_file(
        self,
        source: str | Path | io.IOBase,
        table: str,
        *,
        mode: Literal["strict", "quarantine"] = "strict",
        quarantine_dir: str | Path | None = None,
        sheet: str | int | None = None,
        dates: str | None = None,
        who: str | None = None,
        today: date | None = None,
        progress: Callable[[str, int, int], None] | None = None,
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
            ``quarantine`` imports the good rows and writes the bad ones, with reasons, to a
            CSV in ``quarantine_dir`` (default: beside the file, or the current folder).
            A file that cannot be read as the table at all (empty, a required column missing,
            the data on another sheet) is refused whole in both modes.
        sheet, dates, today
            Passed to :func:`hipanalytics.records.read_records`.
        who : str, optional
            Recorded in the audit trail (default: the login name).
        progress : callable, optional
            Called as ``progress(stage, done, total)`` while reading and writing (for a bar).

        Returns
        -------
        ImportSummary
        """
        if mode not in ("strict", "quarantine"):
            raise StoreError(f"mode must be 'strict' or 'quarantine', got {mode!r}")
        self._table(table)
        content = _content_bytes(source)
        sha = hashlib.sha256(content).hexdigest()
        label = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<data>")
        patients = self.read("patients")[["patient_id", "birth_year"]] if table != "patients" else None
        exact = io.BytesIO(content)  # validate the very bytes that were fingerprinted
        exact.name = label
        report = progress or (lambda stage, done, total: None)
        report("reading and validating", 0, 0)
        result = read_records(exact, table, sheet=sheet, dates=dates, today=today, patients=patients)
        whole_file = result.report.errors["row"].isna() | (result.report.errors["row"] == 1)
        if whole_file.any():  # no usable table (empty, missing column, wrong sheet): refused whole
            raise DataValidationError(result.report)
        who = _user(who)
        with self.engine.begin() as conn:
            done = conn.execute(sa.select(self.md.tables["imports"].c.import_id).where(
                self.md.tables["imports"].c.table_name == table,
                self.md.tables["imports"].c.file_sha256 == sha)).first()
            if done is not None:
                n = result.report.rows_read
                return ImportSummary(label, table, mode, n, 0, 0, n, 0, True, done[0], None)
            conflicts, same_as_stored = self._compare_with_store(conn, table, result)
            bad_rows = result.report.rows_with("error") | set(conflicts)
            if bad_rows and mode == "strict":
                if conflicts:
                    result = _with_problems(result, conflicts)
                raise DataValidationError(result.report)
            stored_dupes = same_as_stored - bad_rows
            file_dupes = result.report.rows_with("duplicate") - bad_rows
            skip = bad_rows | file_dupes | stored_dupes
            good = result.data[~result.data[SOURCE_ROW].isin(skip)]
            quarantine_file = None
            if bad_rows:
                result = _with_problems(result, conflicts)
                quarantine_file = _write_quarantine(result, bad_rows, label, table, quarantine_dir)
            summary = ImportSummary(
                label, table, mode, result.report.rows_read, len(good), len(bad_rows),
                len(file_dupes) + len(stored_dupes), len(result.report.warnings), False, None,
                str(quarantine_file) if quarantine_file else None,
            )
            if summary.imported + summary.quarantined + summary.duplicates != summary.rows_read:
                raise StoreError(f"row accounting failed for {label}: {summary}")  # never expected
            import_id = conn.execute(self.md.tables["imports"].insert().values(
                table_name=table, file=label, file_sha256=sha, mode=mode, rows_read=summary.rows_read,
                imported=summary.imported, quarantined=summary.quarantined, duplicates=summary.duplicates,
                imported_at=_now(), imported_by=who)).inserted_primary_key[0]
            self._insert(conn, table, good, import_id=import_id, who=who, progress=report)
            conn.execute(self.md.tables["audit"].insert().values(
                at=_now(), who=who, action="import", table_name=table, import_id=import_id,
                reason=f"import of {label}", details=json.dumps({k: v for k, v in asdict(summary).items()
                                                                 if k != "file"})))
        return ImportSummary(**{**asdict(summary), "import_id": import_id})

    def _stored_versions(self, conn, table: str, ids: pd.Series) -> pd.DataFrame:
        """Current stored rows whose id is among ``ids`` (one query through a temporary id table)."""
        t = self.md.tables[table]
        id_col = ID_COLUMN[table]
        if conn.execute(sa.select(t.c.row_id).limit(1)).first() is None:
            return pd.DataFrame()
        wanted = pd.Series(pd.unique(ids.dropna()))
        conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS incoming_ids (rid TEXT PRIMARY KEY)")
        conn.exec_driver_sql("DELETE FROM incoming_ids")
        incoming = sa.table("incoming_ids", sa.column("rid"))
        conn.execute(incoming.insert(), [{"rid": i} for i in wanted.tolist()])
        latest = (sa.select(t.c[id_col].label("rid"), sa.func.max(t.c.version).label("v"))
                  .where(t.c[id_col].in_(sa.select(incoming.c.rid))).group_by(t.c[id_col]).subquery())
        query = sa.select(t).join(latest, sa.and_(t.c[id_col] == latest.c.rid, t.c.version == latest.c.v))
        stored = _typed(table, pd.read_sql(query, conn))
        conn.exec_driver_sql("DELETE FROM incoming_ids")
        return stored[stored["status"] == "active"]

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
        spec = table_spec(table)
        names = [c.name for c in spec] + ["source_row"]
        columns = [_db_values(frame[c.name], c.kind) for c in spec]
        columns.append(_db_values(frame[SOURCE_ROW], "int") if SOURCE_ROW in frame else [None] * len(frame))
        constants = {"version": version, "status": status, "supersedes": supersedes, "change_reason": reason,
                     "import_id": import_id, "recorded_at": _now(), "recorded_by": who}
        rows = list(zip(*columns))
        n = len(rows)
        chunk = 50_000
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:  # the driver's executemany inside SQLAlchemy's transaction; constants as literals
            cursor = conn.connection.driver_connection.cursor()
            sql = (f'INSERT INTO "{table}" ({", ".join(names + list(constants))}) VALUES '
                   f'({", ".join(["?"] * len(names) + [_sql_literal(v) for v in constants.values()])})')
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

    # -- corrections and voids -------------------------------------------------------------

    def correct(self, table: str, record_id: str, changes: dict[str, Any], *, reason: str,
                who: str | None = None) -> int:
        """Record a corrected version of a record; the old version stays in the history.

        Parameters
        ----------
        table, record_id : str
            The table and the record's id (e.g. a measurement_id).
        changes : dict
            Column -> new value, validated with the same rules as an import.
        reason : str
            Why (required), kept with the new version and in the audit trail.

        Returns
        -------
        int
            The new version number.
        """
        return self._new_version(table, record_id, changes, reason=reason, who=who, status="active")

    def void(self, table: str, record_id: str, *, reason: str, who: str | None = None) -> int:
        """Mark a record void (e.g. entered for the wrong patient); it disappears from current reads."""
        return self._new_version(table, record_id, {}, reason=reason, who=who, status="voided")

    def _new_version(self, table, record_id, changes, *, reason, who, status) -> int:
        with self.engine.begin() as conn:
            return self._new_version_in(conn, table, record_id, changes, reason=reason, who=who, status=status)

    def _new_version_in(self, conn, table, record_id, changes, *, reason, who, status) -> int:
        if not reason or not str(reason).strip():
            raise StoreError("a correction or void needs a reason")
        t = self._table(table)
        id_col = ID_COLUMN[table]
        if id_col in changes:
            raise StoreError(f"{id_col} cannot be corrected; void the record and import it under the right id")
        who = _user(who)
        history = _typed(table, pd.read_sql(sa.select(t).where(t.c[id_col] == record_id).order_by(t.c.version), conn))
        if history.empty:
            raise StoreError(f"no {table} record {record_id!r}")
        last = history.iloc[[-1]]
        if last["status"].iloc[0] == "voided":
            raise StoreError(f"{table} record {record_id!r} is void; it cannot be changed")
        unknown = set(changes) - {c.name for c in table_spec(table)}
        if unknown:
            raise StoreError(f"unknown column(s) for {table}: {', '.join(sorted(unknown))}")
        content = last[[c.name for c in table_spec(table)]].copy()
        for col, value in changes.items():
            content[col] = value
        checked = _validate_row(table, content)
        version = int(last["version"].iloc[0]) + 1
        checked[SOURCE_ROW] = pd.NA
        self._insert(conn, table, checked, import_id=None, who=who, version=version,
                     supersedes=int(last["row_id"].iloc[0]), reason=reason, status=status)
        conn.execute(self.md.tables["audit"].insert().values(
            at=_now(), who=who, action="void" if status == "voided" else "correct", table_name=table,
            record_id=record_id, reason=reason, details=json.dumps({k: str(v) for k, v in changes.items()})))
        return version

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
        with self.engine.begin() as conn:
            return self._add_records_in(conn, table, rows, who=_user(who), today=today, label=label)

    def _add_records_in(self, conn, table, rows, *, who, today, label) -> pd.DataFrame:
        self._table(table)
        frame = pd.DataFrame(rows)
        patients = None
        if table != "patients":
            patients = _typed("patients", pd.read_sql(sa.select(self.md.tables["patients"].c.patient_id,
                                                                self.md.tables["patients"].c.birth_year), conn))
        result = read_records(_as_csv(frame, label), table, today=today, patients=patients)
        conflicts, same = self._compare_with_store(conn, table, result)
        conflicts |= {r: f"{ID_COLUMN[table]} {i!r} is already stored with these values; nothing new to save"
                      for r, i in zip(result.data[SOURCE_ROW], result.data[ID_COLUMN[table]]) if r in same}
        result = _with_problems(result, conflicts)
        if not result.report.ok or result.report.rows_with("duplicate"):
            raise DataValidationError(result.report)
        saved = result.data.assign(**{SOURCE_ROW: pd.NA})
        self._insert(conn, table, saved, import_id=None, who=who)
        conn.execute(self.md.tables["audit"].insert().values(
            at=_now(), who=who, action="entry", table_name=table,
            record_id=", ".join(saved[ID_COLUMN[table]].astype(str)), reason=label,
            details=json.dumps({"rows": len(saved)})))
        return saved.drop(columns=SOURCE_ROW).reset_index(drop=True)

    def save_program(self, program: Program, *, who: str | None = None, today: date | None = None) -> list[str]:
        """Save a program; a program already in force for the patient is ended the day before.

        A schedule change is a new program from a date: the running program's ``end_date`` is
        corrected (a new version, so its prescription stays on record) and the new program is
        added, in one transaction. The new program's ``reason`` is required then, and is kept
        with both.

        Returns
        -------
        list of str
            The ids of the programs written: the ended one (if any), then the new one.

        Raises
        ------
        StoreError
            When a stored program of the patient starts on or after the new start date (void
            it first), or a change has no reason.
        DataValidationError
            When the program fails the import rules (e.g. an unknown patient).
        """
        from .program import program_record

        record = program_record(program)
        who = _user(who)
        with self.engine.begin() as conn:
            current = self._current(conn, "programs", program.patient_id)
            current = current[current["program_id"] != program.program_id]
            start, end = pd.Timestamp(program.start_date), pd.Timestamp(program.end_date)
            overlapping = current[(current["start_date"] <= end) & (current["end_date"] >= start)]
            later = overlapping[overlapping["start_date"] >= start]
            if not later.empty:
                first = later.iloc[0]
                raise StoreError(
                    f"program {first['program_id']!r} of patient {program.patient_id!r} runs "
                    f"{first['start_date']:%Y-%m-%d} to {first['end_date']:%Y-%m-%d}, on or after the new start "
                    f"{program.start_date}; void it (with a reason) or start the new program later")
            if not overlapping.empty and not program.reason:
                raise StoreError("a schedule change needs a reason (kept with the new program and the old one's "
                                 "correction), e.g. 'pain after daily breakouts'")
            written = []
            for old in overlapping.itertuples():
                self._new_version_in(conn, "programs", old.program_id,
                                     {"end_date": program.start_date - timedelta(days=1)},
                                     reason=f"replaced by {program.program_id} from {program.start_date}: "
                                            f"{program.reason}", who=who, status="active")
                written.append(old.program_id)
            self._add_records_in(conn, "programs", [record], who=who, today=today,
                                 label=f"program {program.program_id}")
        return [*written, program.program_id]

    def _current(self, conn, table: str, patient_id: str | None = None) -> pd.DataFrame:
        """Current (latest, active) rows of ``table``, of one patient or all, inside ``conn``'s transaction.

        For one patient the latest versions are looked up only among the ids that patient has
        ever had (through the patient index), and the patient is matched on the latest version,
        so a record corrected to another patient moves with the correction.
        """
        t = self.md.tables[table]
        id_col = t.c[ID_COLUMN[table]]
        latest = sa.select(id_col.label("rid"), sa.func.max(t.c.version).label("v"))
        if patient_id is not None:
            latest = latest.where(id_col.in_(sa.select(id_col).where(t.c.patient_id == patient_id)))
        latest = latest.group_by(id_col).subquery()
        query = (sa.select(t).join(latest, sa.and_(id_col == latest.c.rid, t.c.version == latest.c.v))
                 .where(t.c.status == "active").order_by(id_col))
        if patient_id is not None:
            query = query.where(t.c.patient_id == patient_id)
        return _typed(table, pd.read_sql(query, conn))

    # -- exports ----------------------------------------------------------------------------

    def export(self, table: str, path: str | Path, *, history: bool = False) -> Path:
        """Write a table to ``.csv`` or ``.parquet`` (by the path's suffix) and return the path."""
        path = Path(path)
        df = self.read(table, history=history)
        if path.suffix.lower() == ".parquet":
            df.to_parquet(path, index=False)
        elif path.suffix.lower() == ".csv":
            df.to_csv(path, index=False, date_format="%Y-%m-%d")
        else:
            raise StoreError(f"export format not recognised from {path.name!r}: use .csv or .parquet")
        return path


def _db_values(values: pd.Series, kind: str) -> list:
    """A column as plain Python values for the driver (dates as ISO text, missing as None).

    Columns that repeat their values (most of them) are converted once per distinct value; for
    mostly distinct columns (ids, row numbers) a direct conversion is faster. A sample decides.
    """
    sample = values.iloc[:1000]
    if len(sample) and sample.nunique(dropna=False) > len(sample) // 2:
        if kind == "date":
            values = values.dt.strftime("%Y-%m-%d")
        arrow = getattr(values.array, "_pa_array", None)
        if arrow is not None:
            return arrow.to_pylist()  # nulls become None
        if kind in ("int", "year") and not values.isna().any():
            return values.to_numpy(dtype="int64").tolist()
        if kind == "float":
            return [None if np.isnan(v) else v for v in values.to_numpy(dtype="float64").tolist()]
        return [None if v is pd.NA else v for v in values.to_numpy(dtype=object).tolist()]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if kind == "date":
        distinct = [d.strftime("%Y-%m-%d") for d in uniques]
    else:
        distinct = [v.item() if isinstance(v, np.generic) else v for v in uniques]
    return np.array(distinct + [None], dtype=object)[codes].tolist()


def _sql_literal(value: Any) -> str:
    """A constant as an SQL literal: integers as digits, text quoted with quotes doubled, None as NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def _sqlite_setup(engine: sa.Engine) -> None:
    """WAL journal, a generous busy timeout and BEGIN IMMEDIATE, so concurrent writers queue."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below start transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MB page cache: index upkeep on big imports
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _typed(table: str, df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for spec in table_spec(table):
        if spec.name not in out:
            continue
        col = out[spec.name]
        if spec.kind == "date":
            out[spec.name] = pd.to_datetime(col).astype("datetime64[s]")
        else:
            out[spec.name] = col.astype(_DTYPES[spec.kind])
    return out


def _as_csv(frame: pd.DataFrame, label: str) -> io.StringIO:
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


def _validate_row(table: str, content: pd.DataFrame) -> pd.DataFrame:
    """Validate corrected values with the import rules; raise DataValidationError on errors."""
    result = read_records(_as_csv(content, "<correction>"), table)
    result.raise_for_errors()
    return result.data


def _content_bytes(source) -> bytes:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise StoreError(f"no such file: {path}")
        return path.read_bytes()
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def _with_problems(result: ReadResult, conflicts: dict[int, str]) -> ReadResult:
    if not conflicts:
        return result
    report = result.report
    id_col = ID_COLUMN[report.table]
    extra = pd.DataFrame({
        "severity": "error", "file": report.file, "row": pd.Series(list(conflicts), dtype="Int64"),
        "column": id_col,
        "value": [result.data.loc[result.data[SOURCE_ROW] == r, id_col].iloc[0] for r in conflicts],
        "rule": list(conflicts.values()),
        "fix": "to change a stored record use a correction (with a reason); otherwise fix this row",
    })
    problems = pd.concat([report.problems, extra], ignore_index=True)
    return ReadResult(result.data, dataclasses.replace(report, problems=problems), result.raw)


def _write_quarantine(result: ReadResult, bad_rows: set[int], label: str, table: str,
                      folder: str | Path | None) -> Path:
    if folder is None:
        folder = Path(label).parent if Path(label).exists() else Path.cwd()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{safe_filename(Path(label).stem)}-{table}-quarantine-{stamp}.csv"
    errors = result.report.errors
    reasons = (errors.assign(text=errors["column"].fillna("-") + ": " + errors["rule"] + " (fix: " + errors["fix"] + ")")
               .groupby("row")["text"].agg(" | ".join))
    bad = result.raw[result.raw[SOURCE_ROW].isin(bad_rows)].copy()
    bad["problems"] = bad[SOURCE_ROW].map(reasons)
    bad.to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------------------------
# De-identified research export
# ----------------------------------------------------------------------------------------------

DEIDENTIFY_NOTE = """\
# De-identified research export

Made by hipanalytics from a clinic store. What was done to every table:

- **Patient ids** are replaced by keyed-hash pseudonyms (HMAC-SHA256 with the exporter's secret
  key, first 12 hex digits, prefix `R-`). The same key gives the same pseudonyms in every export,
  so exports can be linked; without the key the mapping cannot be recomputed or reversed.
- **Record ids** (program, measurement, session) are re-keyed the same way, because the clinic's
  ids may contain patient ids or dates. Site names are pseudonymised likewise.
- **Dates** of each patient are shifted by one random whole number of weeks between -26 and +26
  (derived from the key), the same shift in every table: intervals between a patient's dates and
  the weekday of every date are kept (schedules such as Mon/Wed/Fri stay visible), calendar dates
  are not.
- **Birth year** is replaced by `age_at_start` (whole years at the patient's first program start,
  or first record when there is no program), with ages of 90 and above reported as 90.
- **Dropped**: `display_name`, free-text `notes`, program `reason`, and `assessor`.
- Only the current state is exported: superseded and voided versions are left out.

Keep the key apart from the export; anyone holding both could re-identify patients whose ids they know.
"""

_FREE_TEXT = {"display_name", "notes", "reason", "assessor"}


def _keyed(key: bytes, label: str, values: pd.Series, prefix: str) -> pd.Series:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        return prefix + hmac.new(key, f"{label}:{v}".encode(), "sha256").hexdigest()[:12]

    return values.map(one).astype("str")


def deidentify(tables: dict[str, pd.DataFrame], key: bytes) -> dict[str, pd.DataFrame]:
    """De-identify current-state tables for research (see ``DEIDENTIFY_NOTE``).

    Parameters
    ----------
    tables : dict of DataFrame
        Any of ``patients``, ``programs``, ``measurements``, ``sessions`` as read from the store.
    key : bytes
        The exporter's secret (at least 16 bytes).

    Returns
    -------
    dict of DataFrame
        New frames; the inputs are not modified.
    """
    if len(key) < 16:
        raise StoreError("the de-identification key must be at least 16 bytes; keep it secret and apart from the export")

    all_ids = pd.concat([t["patient_id"] for t in tables.values() if "patient_id" in t], ignore_index=True)
    patient_ids = pd.unique(all_ids.dropna())
    shift_weeks = {
        pid: int.from_bytes(hmac.new(key, f"shift:{pid}".encode(), "sha256").digest()[:4], "big") % 53 - 26
        for pid in patient_ids
    }
    first_dates: dict[str, pd.Timestamp] = {}
    for name, date_col in (("programs", "start_date"), ("measurements", "measured_on"), ("sessions", "performed_on")):
        if name in tables and not tables[name].empty:  # program start first; records only as a fallback
            for pid, d in tables[name].groupby("patient_id")[date_col].min().items():
                first_dates.setdefault(pid, d)
    out = {}
    for name, frame in tables.items():
        df = frame.drop(columns=[c for c in frame.columns if c in _FREE_TEXT]).copy()
        if "patient_id" in df:
            shift = pd.to_timedelta(df["patient_id"].map(shift_weeks).astype("int64") * 7, unit="D")
            for spec in table_spec(name):
                if spec.kind == "date" and spec.name in df:
                    df[spec.name] = (df[spec.name] + shift).astype("datetime64[s]")
        if name == "patients" and "birth_year" in df:
            start_year = df["patient_id"].map(lambda p: first_dates[p].year if p in first_dates else np.nan)
            age = (start_year - df["birth_year"].astype("float64")).clip(upper=90)
            df.insert(df.columns.get_loc("birth_year"), "age_at_start", pd.array(age.round(), dtype="Int64"))
            df = df.drop(columns="birth_year")
        if "site" in df:
            df["site"] = _keyed(key, "site", df["site"], "site-")
        for id_col, prefix in (("program_id", "RP-"), ("measurement_id", "RM-"), ("session_id", "RS-")):
            if id_col in df:
                df[id_col] = _keyed(key, id_col, df[id_col], prefix)
        if "patient_id" in df:
            df["patient_id"] = _keyed(key, "patient", df["patient_id"], "R-")
        out[name] = df.reset_index(drop=True)
    return out


def export_research(store: Store, folder: str | Path, key: bytes, *, fmt: str = "csv") -> dict[str, Path]:
    """Write a de-identified copy of every table, and a README saying what was removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = deidentify({t: store.read(t) for t in TABLES}, key)
    paths = {}
    for name, df in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        elif fmt == "csv":
            df.to_csv(path, index=False, date_format="%Y-%m-%d")
        else:
            raise StoreError(f"unknown export format {fmt!r}: use csv or parquet")
        paths[name] = path
    (folder / "README.md").write_text(DEIDENTIFY_NOTE, encoding="utf-8")
    paths["README"] = folder / "README.md"
    return paths
