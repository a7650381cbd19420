"""The store's upkeep: `store status`, `store upgrade`."""

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
    """The store's schema: which revision it is at, and upgrading it (docs/store.md)."""


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
