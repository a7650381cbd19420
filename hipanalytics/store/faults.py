"""Faults of the machine, not of hipanalytics, in words: a full disk, a read-only store or folder, a
file that is not a store, a damaged one. The command line shows these instead of "internal error"
(exit 1); an import is one transaction, so none of them leaves half an import behind."""

from __future__ import annotations

import errno
import sqlite3

import sqlalchemy as sa

__all__ = ["machine_fault", "opening_error", "read_only_message"]

_FULL = ("the disk is full (or the user's disk quota is used up): nothing of this command's writing was kept. "
         "Free some space on the disk that holds the store and the output folder, then run the command again")
_READ_ONLY = ("the store {where}is read-only here (the file, its folder, or the medium it is on): nothing was "
              "written. Reading commands (patients, export, reports) still work; to write, copy the store to a "
              "writable folder or ask for write permission (SQLite also needs to write in the store's folder)")
_NOT_A_STORE = ("{where}is not a hipanalytics store: the file is not an SQLite database (is it another kind of file, "
                "or encrypted?). Check the --store path, or $HIPANALYTICS_STORE")
_DAMAGED = ("the store {where}is damaged (SQLite: {detail}). Keep the file as it is; `hipanalytics store check` "
            "says what is wrong, and docs/store.md how to restore the latest backup (`hipanalytics store backup` "
            "makes one)")


def _where(location: str | None) -> str:
    if not location:
        return ""
    return f"{location.removeprefix('sqlite:///')} "


def read_only_message(location: str | None) -> str:
    """The refusal to write to a read-only store, with what still works and what to do."""
    return _READ_ONLY.format(where=_where(location))


def _message(text: str, location: str | None) -> str | None:
    lowered = text.lower()
    where = _where(location)
    if "database or disk is full" in lowered or "no space left" in lowered or "disk quota" in lowered:
        return _FULL
    if "readonly database" in lowered or "read-only" in lowered or "unable to open database file" in lowered:
        return read_only_message(location)
    if "file is not a database" in lowered:
        return _NOT_A_STORE.format(where=where)
    if "malformed" in lowered or "disk i/o error" in lowered:
        return _DAMAGED.format(where=where, detail=text.strip().splitlines()[0])
    return None


def opening_error(location: str, exc: sa.exc.DatabaseError) -> str:
    """Why a store could not be opened, in words."""
    return _message(str(exc.orig), location) or f"cannot open the store {_where(location)}: {exc.orig}"


def machine_fault(exc: BaseException) -> str | None:
    """The words for an exception that is a fault of the machine (disk full, read-only, not a
    database, damaged), or None for anything else (which is a bug).

    Examples
    --------
    >>> machine_fault(OSError(errno.ENOSPC, "No space left on device"))[:17]
    'the disk is full '
    >>> machine_fault(ValueError("x")) is None
    True
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _FULL
        if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return (f"{exc.filename or 'a file'} cannot be written: the file, its folder or the medium is read-only "
                    "(or not yours). Choose a writable folder (--out), or ask for write permission")
        driver = isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg")
        if isinstance(exc, sa.exc.DBAPIError) or driver:  # SQLAlchemy's, or the driver's own (raw cursors)
            found = _message(str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc), None)
            if found:
                return found
        exc = exc.__cause__ or exc.__context__
    return None
