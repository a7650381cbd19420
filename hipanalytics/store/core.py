"""The Store: opening a database, checking and migrating its schema, and reading the records."""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.parse
import warnings
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from ..errors import HipAnalyticsWarning, StoreError
from ..records import TABLES
from ..records.columns import LATEST_DAY_COLUMNS
from .export import text_columns, write_table
from .faults import opening_error, read_only_message
from .history import HistoryMixin
from .imports import ImportMixin
from .integrity import QUICK_CHECK_SECONDS, damaged_message, quick_check
from .migrate import HEAD, describe, is_older, revision_of, upgrade
from .schema import HISTORY_COLUMNS, ID_COLUMN, metadata, sqlite_setup, typed

__all__ = ["Store"]


class Store(ImportMixin, HistoryMixin):
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
        self.path: Path | None = None
        """The SQLite file (None for a database server)."""
        self.read_only = False
        """Whether the store is opened for reading only (a SQLite file on read-only media or in a folder
        this user cannot write): reading works, writing is refused in words."""
        engine_url = text
        if not is_url:
            path = Path(location)
            if not path.exists() and not create:
                raise StoreError(f"no store at {path}; import data first or check the path")
            if not path.parent.exists():
                raise StoreError(f"folder {path.parent} does not exist; create it or choose another path")
            text = engine_url = f"sqlite:///{path}"
            self.path = path
            if path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                # SQLite's WAL needs to write beside the file even to read; a store closed cleanly has no
                # WAL left, so it is read as immutable (no locks, no -shm), else read-only through its WAL
                self.read_only = True
                wal = path.with_name(path.name + "-wal")
                options = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
                engine_url = f"sqlite:///file:{urllib.parse.quote(str(path.resolve()))}?{options}&uri=true"
        self.url = text
        self.engine = sa.create_engine(engine_url, future=True)
        if self.engine.dialect.name == "sqlite":
            sqlite_setup(self.engine, read_only=self.read_only)
        self.md = metadata()
        self._sound = False  # the integrity check before the first write has not run yet
        try:
            self._check_schema(create)
        except sa.exc.DatabaseError as exc:
            self.engine.dispose()
            raise StoreError(opening_error(text, exc)) from None
        except BaseException:
            self.engine.dispose()
            raise

    # -- set-up -----------------------------------------------------------------------------

    def _check_schema(self, create: bool) -> None:
        """Open at :data:`~hipanalytics.store.migrate.HEAD`, build a new store, upgrade an older
        SQLite store, or refuse (see :mod:`hipanalytics.store.migrate`)."""
        with self.engine.connect() as conn:
            found = revision_of(conn)
        if found == HEAD:
            return
        if self.read_only and found is not None:
            raise StoreError(f"the store {self.path} is at schema {describe(found)} and read-only here, so it cannot be "
                             f"upgraded to revision {HEAD}: copy it to a writable folder first")
        if found is None and not create:
            raise StoreError(f"{self.url} is not a hipanalytics store (no meta table)")
        if found is not None and self.engine.dialect.name != "sqlite" and is_older(found):
            raise StoreError(
                f"store {self.engine.url.render_as_string(hide_password=True)} is at schema {describe(found)}; this "
                f"hipanalytics needs revision {HEAD}. Back the database up, then upgrade it once for every "
                "workstation: hipanalytics store upgrade --store URL (or --sql to print the SQL for your "
                "database administrator); see docs/store.md")
        upgrade(self.engine, create=create)

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction, after the integrity check (once per Store: :mod:`.integrity`); a
        damaged store is refused before anything is written."""
        if self.read_only:
            raise StoreError(read_only_message(str(self.path)))
        if not self._sound:
            problems = quick_check(self)
            if problems:
                raise StoreError(damaged_message(str(self.path), problems))
            if problems is None and self.engine.dialect.name == "sqlite":
                warnings.warn(f"the store's integrity check did not finish within {QUICK_CHECK_SECONDS:g} s; writing "
                              "anyway (run `hipanalytics store check` when the store is not in use)", HipAnalyticsWarning,
                              stacklevel=3)
            self._sound = True
        with self.engine.begin() as conn:
            yield conn

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
                return typed(table, pd.read_sql(
                    sa.select(t).where(where).order_by(t.c[ID_COLUMN[table]], t.c.version), conn))
            return self._current(conn, table, patient_id).drop(columns=HISTORY_COLUMNS).reset_index(drop=True)

    def latest_day(self) -> pd.Timestamp | None:
        """The latest measurement, session or discharge date in the store's current records (None
        when there is none): the day a report is made for unless told otherwise."""
        days = []
        with self.engine.connect() as conn:
            for table, column in LATEST_DAY_COLUMNS:
                t = self.md.tables[table]
                id_col = t.c[ID_COLUMN[table]]
                latest = sa.select(id_col.label("rid"), sa.func.max(t.c.version).label("v")).group_by(id_col).subquery()
                query = (sa.select(sa.func.max(t.c[column])).join(latest, sa.and_(id_col == latest.c.rid,
                                                                                  t.c.version == latest.c.v))
                         .where(t.c.status == "active"))
                days.append(conn.execute(query).scalar())
        found = [pd.Timestamp(d) for d in days if d is not None]
        return max(found) if found else None

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
        return typed(table, pd.read_sql(query, conn))

    # -- exports ----------------------------------------------------------------------------

    def export(self, table: str, path: str | Path, *, history: bool = False) -> Path:
        """Write a table to ``.csv``, ``.xlsx`` or ``.parquet`` (by the path's suffix); return the path.

        CSV and Excel are spreadsheet-safe: a text cell that would run as a formula gets a leading
        ``'`` (see :func:`hipanalytics.store.spreadsheet_safe`); the stored values are unchanged.
        """
        return write_table(self.read(table, history=history), path, sheet=table, text_columns=text_columns(table))
