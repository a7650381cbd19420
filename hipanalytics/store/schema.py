"""The store's tables as hipanalytics reads and writes them, and how values travel to SQL.

The tables are built and upgraded by the Alembic revisions of :mod:`hipanalytics.store.migrate`;
:func:`metadata` describes the newest one (a test checks that the two agree).

Every record table holds the columns of :func:`hipanalytics.records.table_spec` plus the history
columns (:data:`HISTORY_COLUMNS`): rows are only ever added, so each version of a record stays.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event

from ..records import DTYPES, ID_COLUMN, TABLES, table_spec

__all__ = ["ID_COLUMN", "HISTORY_COLUMNS", "metadata", "now", "user", "sqlite_setup",
           "db_values", "sql_literal", "typed"]

_SQL_TYPES = {"id": sa.String, "text": sa.Text, "enum": sa.String, "date": sa.Date,
              "int": sa.Integer, "year": sa.Integer, "float": sa.Float}
HISTORY_COLUMNS = ["row_id", "version", "status", "supersedes", "change_reason", "import_id",
                   "source_row", "recorded_at", "recorded_by"]


def metadata() -> sa.MetaData:
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
        sa.Column("skipped", sa.Integer),  # blank and summary rows (schema 3; empty for older imports)
        sa.Column("origin", sa.Text),  # a corrected quarantine file: the file its rows first came from
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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def user(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def db_values(values: pd.Series, kind: str) -> list:
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


def sql_literal(value: Any) -> str:
    """A constant as an SQL literal: integers as digits, text quoted with quotes doubled, None as NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def sqlite_setup(engine: sa.Engine, *, read_only: bool = False) -> None:
    """WAL journal, a generous busy timeout and BEGIN IMMEDIATE, so concurrent writers queue (read
    only: the journal left as it is and a plain BEGIN)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below start transactions
        cursor = dbapi_conn.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MB page cache: index upkeep on big imports
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def typed(table: str, df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for spec in table_spec(table):
        if spec.name not in out:
            continue
        col = out[spec.name]
        if spec.kind == "date":
            out[spec.name] = pd.to_datetime(col).astype("datetime64[s]")
        else:
            out[spec.name] = col.astype(DTYPES[spec.kind])
    return out

