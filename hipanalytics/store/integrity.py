"""The store's health: the integrity check before every write, ``store check`` and ``store backup``.

SQLite keeps a store in one file, which a failing disk, a copy taken mid-write or a program that
writes into it can damage. A damaged file may still open and even accept an import while other
pages are unreadable, so every :class:`~hipanalytics.store.Store` runs SQLite's ``quick_check``
(bounded in time: :data:`QUICK_CHECK_SECONDS`) before its first write, and refuses to write to a
damaged store with the recovery steps. PostgreSQL checks its own pages (data checksums) and is
backed up with ``pg_dump``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import StoreError
from ..records import TABLES
from .migrate import revision_of
from .schema import ID_COLUMN

if TYPE_CHECKING:
    from .core import Store

__all__ = ["QUICK_CHECK_SECONDS", "StoreCheck", "backup", "check_store", "damaged_message", "quick_check"]

QUICK_CHECK_SECONDS = 20.0
"""The longest the check before a write may take; a store too big to check in that time is written
to after a warning (``hipanalytics store check`` checks it whole)."""


def _sqlite_path(store: Store) -> Path | None:
    return store.path


def quick_check(store: Store, *, seconds: float | None = QUICK_CHECK_SECONDS, full: bool = False) -> list[str] | None:
    """SQLite's ``quick_check`` (``integrity_check`` with ``full``) of the store: the problems found
    (empty when the file is sound), or None when it did not finish within ``seconds`` (or the store
    is not SQLite: PostgreSQL checks its own pages)."""
    if _sqlite_path(store) is None:
        return [] if full else None
    raw = store.engine.raw_connection()
    try:
        connection = raw.driver_connection
        if seconds is not None:
            deadline = time.monotonic() + seconds
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = connection.execute(f"PRAGMA {'integrity_check' if full else 'quick_check'}(20)").fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                return None
            return [str(exc)]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        finally:
            connection.set_progress_handler(None, 0)
    finally:
        raw.close()
    lines = [line for row in rows for line in str(row[0]).splitlines()]
    return [] if lines == ["ok"] else [line for line in lines if not line.startswith("*** in database")]


def damaged_message(where: str, problems: list[str]) -> str:
    """The refusal for a damaged store, with what to do."""
    return (f"the store {where} is damaged ({problems[0]}{'; and more' if len(problems) > 1 else ''}"
            "): nothing was written to it. Keep the damaged file as it is and work on a copy: restore the latest "
            "backup (`hipanalytics store backup` makes one; restoring is copying it back in place, see "
            "docs/store.md), or try SQLite's own recovery: sqlite3 DAMAGED .recover | sqlite3 RECOVERED.sqlite, then "
            "`hipanalytics store check --store RECOVERED.sqlite`; then import the files received since the backup "
            "again (re-importing a file adds nothing twice)")


@dataclass
class StoreCheck:
    """What :func:`check_store` found."""

    where: str
    revision: str | None
    integrity: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.history

    def lines(self) -> list[str]:
        """The findings in words."""
        if self.integrity:
            many = f"{len(self.integrity)}{' or more' if len(self.integrity) >= 20 else ''}"
            return [f"{self.where}: integrity: DAMAGED ({many} problems; the records were not read)",
                    *(f"  {p}" for p in self.integrity[:10])]
        out = [f"{self.where}: schema revision {self.revision}", "integrity: ok"]
        if self.counts:
            out.append("records (current / every version): " + ", ".join(
                f"{t} {self.counts[t]}/{self.counts[t + ' versions']}" for t in TABLES))
            out.append(f"imports {self.counts['imports']}, audit entries {self.counts['audit']}")
        out.append("history: every version chain and import is whole" if not self.history
                   else f"history: {len(self.history)} problem(s)")
        out += [f"  {p}" for p in self.history[:10]]
        return out


def check_store(store: Store) -> StoreCheck:
    """The store's full check: SQLite's ``integrity_check``, the schema revision, the records
    (current and every version) of each table, and the history: each record's versions numbered
    1, 2, ... without a gap, each version's import known, each import in the audit trail."""
    where = store.engine.url.render_as_string(hide_password=True)
    integrity = quick_check(store, seconds=None, full=True) or []
    if integrity:
        return StoreCheck(where, None, integrity)
    with store.engine.connect() as conn:
        revision = revision_of(conn)
        counts, history = {}, []
        imports = store.md.tables["imports"]
        audit = store.md.tables["audit"]
        known_imports = {r[0] for r in conn.execute(sa.select(imports.c.import_id))}
        audited = set(conn.execute(sa.select(audit.c.import_id).where(audit.c.action == "import")).scalars())
        for table in TABLES:
            t = store.md.tables[table]
            id_col = t.c[ID_COLUMN[table]]
            counts[f"{table} versions"] = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            counts[table] = len(store._current(conn, table))
            gaps = conn.execute(sa.select(id_col, sa.func.count(), sa.func.max(t.c.version), sa.func.min(t.c.version))
                                .group_by(id_col).having(sa.or_(sa.func.count() != sa.func.max(t.c.version),
                                                                sa.func.min(t.c.version) != 1))).all()
            history += [f"{table} {r[0]!r}: versions {r[3]}..{r[2]} but {r[1]} stored (a version is missing)"
                        for r in gaps]
            orphans = conn.execute(sa.select(t.c.import_id).distinct().where(t.c.import_id.is_not(None))).scalars()
            history += [f"{table}: rows of import {i}, which the imports table does not hold"
                        for i in orphans if i not in known_imports]
        counts["imports"] = len(known_imports)
        counts["audit"] = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
        history += [f"import {i} has no entry in the audit trail" for i in sorted(known_imports - audited)[:20]]
    return StoreCheck(where, revision, [], counts, history)


def backup(store: Store, destination: str | Path) -> Path:
    """A consistent copy of a SQLite store, made with SQLite's online backup API while others may
    be writing (the copy is one snapshot), then checked; PostgreSQL is backed up with ``pg_dump``."""
    source = _sqlite_path(store)
    if source is None:
        raise StoreError("a store on a database server is backed up by the server's own tools: "
                         "pg_dump --format=custom --file clinic.dump DBNAME (restore with pg_restore); "
                         "ask the database administrator, who may already run it nightly")
    named_folder = str(destination).endswith(("/", "\\"))
    destination = Path(destination)
    if named_folder and destination.parent.is_dir():
        destination.mkdir(exist_ok=True)  # "backups/": a folder, made when its parent exists
    if destination.is_dir():
        destination = destination / f"{source.stem}-backup-{time.strftime('%Y%m%dT%H%M%S')}.sqlite"
    if destination.exists():
        raise StoreError(f"{destination} exists; a backup never overwrites a file (choose another name)")
    if not destination.parent.is_dir():
        raise StoreError(f"folder {destination.parent} does not exist; create it or choose another path")
    problems = quick_check(store, seconds=None)
    if problems:
        raise StoreError(damaged_message(str(source), problems).replace("nothing was written to it",
                                                                        "no backup was made of it"))
    raw = store.engine.raw_connection()
    try:
        target = sqlite3.connect(destination)
        try:
            raw.driver_connection.backup(target)
        finally:
            target.close()
    finally:
        raw.close()
    with type(store)(destination, create=False) as copy:
        found = quick_check(copy, seconds=None, full=True)
    if found:
        raise StoreError(f"the backup {destination} failed its integrity check ({found[0]}); keep the store as it is "
                         "and try again")
    return destination
