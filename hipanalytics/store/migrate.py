"""Schema versions and upgrades of the store, with Alembic.

Every store carries the Alembic revision of its layout (table ``alembic_version``; the revision
files are in ``hipanalytics/store/migrations/versions/``). Opening a store compares it with
:data:`HEAD`:

- a new, empty database is built by running every revision from the first;
- a SQLite store (one machine, one clinician's files) at an older revision is upgraded when it is
  opened, in one transaction, and the upgrade is audited;
- a store on a database server (PostgreSQL) at an older revision is refused with the command that
  upgrades it, ``hipanalytics store upgrade --store URL`` (or ``--sql`` to print the SQL for a
  database administrator), so IT backs it up and upgrades it once, while every workstation
  waits, rather than the first clinician to start a newer version changing a shared database;
- a store written by a newer hipanalytics (a revision this version does not know) is refused.

Stores made before Alembic (``meta.schema_version`` 1 to 3, no ``alembic_version`` table) are
brought to schema 3 with the column additions of those versions (:func:`legacy_to_3`), stamped
with revision ``0003`` and upgraded from there. ``meta.schema_version`` is kept up to date as
well, so that a hipanalytics from before Alembic refuses a newer store instead of misreading it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import StoreError
from .schema import now, user

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "SCHEMA_VERSION", "MIGRATIONS_DIR", "LEGACY_COLUMNS", "alembic_config", "revision_of",
           "is_older", "describe", "upgrade", "upgrade_sql", "history", "legacy_to_3"]

HEAD = "0005"
"""The newest revision, the one this version of hipanalytics reads and writes (a test checks it
against the revision files)."""

SCHEMA_VERSION = 5
"""``meta.schema_version`` at :data:`HEAD` (the number hipanalytics used before Alembic)."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

LEGACY_COLUMNS = {  # schema version before Alembic -> (table, column, SQL type) added by the next one
    1: [("programs", "breakout_slot", "TEXT"), ("programs", "choices", "TEXT"), ("programs", "dose_overrides", "TEXT"),
        ("programs", "omit", "TEXT")],
    2: [("imports", "skipped", "INTEGER"), ("imports", "origin", "TEXT")],
}
"""How schema versions 1 and 2 became 3: columns added, nothing else."""

_VERSION_TABLE = "alembic_version"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the store's revisions (and ``url``, for a database URL)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def revision_of(conn: sa.Connection) -> str | None:
    """The store's revision: from ``alembic_version``, or ``legacy-N`` for a store made before
    Alembic (schema version N), or None for a database without a store."""
    inspector = sa.inspect(conn)
    if inspector.has_table(_VERSION_TABLE):
        return conn.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalar()
    if inspector.has_table("meta"):
        found = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
        return f"legacy-{found}"
    return None


def _known() -> dict[str, str]:
    """Revision -> its one-line description, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {r.revision: (r.doc or "").split("\n")[0] for r in reversed(list(script.walk_revisions()))}


def history() -> list[tuple[str, str]]:
    """Every revision this hipanalytics knows, oldest first, with its description.

    Examples
    --------
    >>> history()[0][0], history()[-1][0] == HEAD
    ('0003', True)
    """
    return list(_known().items())


def _lock(conn: sa.Connection) -> None:
    """Serialise creation and upgrades: SQLite's BEGIN IMMEDIATE already does; PostgreSQL takes an
    advisory lock for the transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(4711170420)"))


def _run(conn: sa.Connection, command: str, target: str) -> None:
    from alembic import command as commands

    config = alembic_config()
    config.attributes["connection"] = conn
    getattr(commands, command)(config, target)


def legacy_to_3(conn: sa.Connection, found: int) -> list[str]:
    """Bring a store of schema version 1 or 2 (before Alembic) to schema 3; the columns added."""
    preparer = conn.dialect.identifier_preparer
    added = []
    for version in range(found, 3):
        for table, name, kind in LEGACY_COLUMNS[version]:
            conn.exec_driver_sql(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} {kind}")
            added.append(f"{table}.{name}")
    conn.exec_driver_sql("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    return added


def upgrade(engine: sa.Engine, *, create: bool = True, who: str | None = None) -> tuple[str | None, str]:
    """Bring the store at ``engine`` to :data:`HEAD` in one transaction; return (from, to).

    A database without a store is built when ``create`` is true. An upgrade of an existing store
    is written to its audit table (``action`` ``migrate``, the revisions applied in ``details``).

    Raises
    ------
    StoreError
        For a store written by a newer hipanalytics, or an unreadable version.
    """
    with engine.begin() as conn:
        _lock(conn)
        found = revision_of(conn)  # again, inside the lock: another process may have done it
        if found == HEAD:
            return found, HEAD
        if found is None:
            if not create:
                raise StoreError(f"{engine.url.render_as_string(hide_password=True)} is not a hipanalytics store")
            _run(conn, "upgrade", "head")
            return None, HEAD
        known = _known()
        added: list[str] = []
        if found.startswith("legacy-"):
            number = found.removeprefix("legacy-")
            if number not in {"1", "2", "3"}:
                raise _newer(engine, f"schema version {number}")
            if number != "3":
                added = legacy_to_3(conn, int(number))
            _run(conn, "stamp", "0003")
        elif found not in known:
            raise _newer(engine, f"revision {found}")
        start = "0003" if found.startswith("legacy-") else found
        applied = list(known)[list(known).index(start) + 1:]
        _run(conn, "upgrade", "head")
        conn.execute(sa.text(
            "INSERT INTO audit (at, who, action, table_name, reason, details) "
            "VALUES (:at, :who, 'migrate', 'meta', :reason, :details)"),
            {"at": now(), "who": user(who), "reason": f"schema {describe(found)} -> revision {HEAD}",
             "details": json.dumps({"added": added, "revisions": {r: known[r] for r in applied}})})
        return found, HEAD


def is_older(found: str) -> bool:
    """Whether revision ``found`` (or ``legacy-N``) is one this hipanalytics can upgrade from
    (False for a store written by a newer version)."""
    if found.startswith("legacy-"):
        return found.removeprefix("legacy-") in {"1", "2", "3"}
    return found in _known() and found != HEAD


def describe(found: str) -> str:
    """A revision in words: ``revision 0004``, or ``version 3 (before Alembic)`` for ``legacy-3``."""
    return f"version {found.removeprefix('legacy-')} (before Alembic)" if found.startswith("legacy-") else f"revision {found}"


def _newer(engine: sa.Engine, what: str) -> StoreError:
    return StoreError(f"store {engine.url.render_as_string(hide_password=True)} has {what}, written by a newer "
                      f"hipanalytics (this one knows revisions up to {HEAD}); open it with that version or upgrade "
                      "hipanalytics")


def upgrade_sql(url: str, *, found: str | None = None) -> str:
    """The SQL that upgrades a store at ``found`` (a revision, ``legacy-3`` for a schema-3 store
    made before Alembic, or None for an empty database) to :data:`HEAD`, for a database
    administrator to review and run (Alembic's offline mode).

    Raises
    ------
    StoreError
        For a store of schema 1 or 2 (upgraded only by :func:`upgrade`) or a newer store.
    """
    import contextlib
    import io

    from alembic import command as commands

    if found is not None and found.startswith("legacy-") and found != "legacy-3":
        raise StoreError(f"a store of schema {found.removeprefix('legacy-')} (before Alembic) is upgraded by "
                         "hipanalytics store upgrade, not by an SQL script")
    if found is not None and not found.startswith("legacy-") and found not in _known():
        raise StoreError(f"the store is at revision {found}, written by a newer hipanalytics")
    out = io.StringIO()
    config = alembic_config(url)
    config.output_buffer = out
    with contextlib.redirect_stdout(out):
        if found == "legacy-3":  # made before Alembic: record revision 0003 first
            commands.stamp(config, "0003", sql=True)
            commands.upgrade(config, "0003:head", sql=True)
        else:
            commands.upgrade(config, f"{found}:head" if found else "head", sql=True)
    return out.getvalue()
