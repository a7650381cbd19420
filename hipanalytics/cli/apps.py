"""Apps: `app builder|entry|dashboard` (Voilà) and `lab` (JupyterLab)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import default_store
from . import _refusals, main
from .records import _store_option, _with


# ----------------------------------------------------------------------------------------------
# Apps


def _serve_options(default_port: int):
    return _with([
        click.option("--port", type=click.IntRange(1, 65535), default=default_port, show_default=True),
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on; anything but localhost exposes patient data (see the warning)."),
        click.option("--no-browser", is_flag=True, help="Do not open a browser tab."),
    ])


@main.command("app")
@click.argument("app", type=click.Choice(["builder", "entry", "dashboard"]))
@_store_option
@click.option("--sample", is_flag=True, help="Work on a copy of the synthetic sample clinic instead of a store.")
@click.option("--idle-minutes", type=click.IntRange(min=1), default=60, show_default=True,
              help="Shut down the kernel of a closed page after this long without activity.")
@_serve_options(8866)
@_refusals
def app_command(app, store_path, sample, idle_minutes, port, host, no_browser) -> None:
    """Serve an app with Voilà: builder (programs), entry (visits) or dashboard (one patient)."""
    import shutil
    import tempfile

    from ..apps.serve import check_port, exposure_warning, new_token, run, voila_command
    from ..store import Store

    if sample and store_path:
        raise click.UsageError("give --store or --sample, not both")
    check_port(host, port)
    scratch = None
    if sample:  # a fresh private copy for this run: what is saved in it goes when the app stops
        from ..synthetic import sample_store

        scratch = Path(tempfile.mkdtemp(prefix="hipanalytics-app-sample-"))
        location = str(sample_store(scratch / "sample.sqlite"))
    else:
        location = store_path or default_store()
        Store(location, create=False).close()  # refuses a missing store or a wrong schema, with the reason
    click.echo(exposure_warning(host), err=True)
    token = new_token()
    click.echo(f"store: {location}{' (synthetic sample, deleted when the app stops)' if sample else ''}\n"
               f"open http://{'localhost' if host == '127.0.0.1' else host}:{port}/?token={token} (the token is this "
               "launch's key: keep the address to yourself; Ctrl-C stops the app)", err=True)
    try:
        code = run(voila_command(app, port=port, host=host, idle_minutes=idle_minutes, open_browser=not no_browser),
                   store=location, sample=sample, token=token)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(code)


@main.command("lab")
@_store_option
@_serve_options(8888)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to open; the shipped notebooks are copied into it where missing "
                   "[default: notebooks/ of a source checkout, else ./hipanalytics-notebooks].")
@click.option("--allow-root", is_flag=True, help="Let JupyterLab run as root (it refuses otherwise; e.g. in a container).")
@_refusals
def lab_command(store_path, port, host, no_browser, folder, allow_root) -> None:
    """Open JupyterLab at the notebooks (reports, tutorials, apps), with the store set for them."""
    from ..apps.serve import check_port, exposure_warning, lab_command as command, lab_folder, run

    check_port(host, port)
    folder, copied = lab_folder(folder)
    if copied:
        click.echo(f"copied {len(copied)} notebooks into {folder}", err=True)
    click.echo(exposure_warning(host), err=True)
    sys.exit(run(command(folder, port=port, host=host, open_browser=not no_browser, allow_root=allow_root),
                 store=store_path))


