"""The store's upkeep: `store status`, `store upgrade`, `store check`, `store backup`."""

from __future__ import annotations

import click
import sqlalchemy as sa

from ..config import default_store
from ..errors import StoreError
from ..store.migrate import HEAD, describe, history, is_older, revision_of, upgrade, upgrade_sql
from . import _refusals, main
from .records import _store_option


def _url(store_path: str | None) -> str:
    location = str(store_path or default_store())
    return location if "://" in location else f"sqlite:///{location}"


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return revision_of(conn)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot open {engine.url.render_as_string(hide_password=True)}: {exc.orig}") from None
    finally:
        engine.dispose()


@main.group("store")
def store_group() -> None:
    """The store's upkeep: its schema revision and upgrades, its health, its backups (docs/store.md)."""


@store_group.command("status")
@_store_option
@_refusals
def status_command(store_path) -> None:
    """Say which schema revision the store is at and whether it needs an upgrade."""
    url = _url(store_path)
    found = _revision(url)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if found is None:
        click.echo(f"{shown}: no hipanalytics store here")
    elif found == HEAD:
        click.echo(f"{shown}: revision {HEAD}, up to date")
    elif is_older(found):
        click.echo(f"{shown}: at schema {describe(found)}; this hipanalytics needs revision {HEAD}: back it up, then run "
                   "hipanalytics store upgrade")
    else:
        click.echo(f"{shown}: at {found}, written by a newer hipanalytics (this one knows up to {HEAD})")
    for revision, words in history():
        click.echo(f"  {revision}  {words}")


@store_group.command("upgrade")
@_store_option
@click.option("--sql", "as_sql", is_flag=True,
              help="Print the SQL of the upgrade for a database administrator instead of running it.")
@_refusals
def upgrade_command(store_path, as_sql) -> None:
    """Upgrade the store's schema to this hipanalytics' revision, in one transaction (back it up first).

    A SQLite store is upgraded when it is opened anyway; a store on a database server is only
    upgraded by this command, once, for every workstation.
    """
    url = _url(store_path)
    if as_sql:
        found = _revision(url)
        if found == HEAD:
            click.echo(f"-- already at revision {HEAD}: nothing to do")
            return
        click.echo(upgrade_sql(url, found=found), nl=False)
        return
    engine = sa.create_engine(url)
    try:
        before, after = upgrade(engine, create=False)
    finally:
        engine.dispose()
    shown = engine.url.render_as_string(hide_password=True)
    click.echo(f"{shown}: already at revision {after}" if before == after else
               f"{shown}: upgraded from schema {describe(before)} to revision {after}")


@store_group.command("check")
@_store_option
@_refusals
def check_command(store_path) -> None:
    """Check the store whole: SQLite's integrity check, the schema revision, the records of every
    table (current and every version), and the history (every record's versions, every import in
    the audit trail). Exit code 1 when anything is wrong."""
    from ..store import Store
    from ..store.integrity import check_store

    with Store(store_path or default_store(), create=False) as store:
        found = check_store(store)
    for line in found.lines():
        click.echo(line)
    if not found.ok:
        click.echo("error: the store needs repair: see docs/store.md (Backup and restore)", err=True)
        raise SystemExit(1)


@store_group.command("backup")
@click.argument("destination", type=click.Path())  # text: a trailing / says "a folder"
@_store_option
@_refusals
def backup_command(destination, store_path) -> None:
    """Copy the store to DESTINATION (a new file, or a folder to put a dated copy in: a name ending in
    / is made a folder) with SQLite's
    online backup, safe while others use the store; the copy is checked. Restore by copying a backup
    back in place of the store (docs/store.md). A store on a database server is backed up with pg_dump."""
    from ..store import Store
    from ..store.integrity import backup

    with Store(store_path or default_store(), create=False) as store:
        written = backup(store, destination)
    click.echo(f"backup written to {written} ({written.stat().st_size:,} bytes) and checked")
