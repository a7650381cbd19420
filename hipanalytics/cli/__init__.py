"""The ``hipanalytics`` command: a thin face over the package's functions.

Exit codes: 0 success; 1 the input was refused (protocol, program or data problem, message on
stderr; nothing was written); 2 the command line itself was wrong; 3 an import in quarantine mode
stored the good rows and set bad rows aside (the quarantine file says why); 4 an internal error
(a bug): one line on stderr, the traceback in a file it names. A warning (a caveat such as a small
cohort) is one line on stderr, ``warning: ...`` in words, never Python's form with a file path,
source line and class name.

The commands live in one module per group, each registering on :func:`main`: ``programs``
(protocols, programs, demo), ``care`` (switch, discharge), ``records`` (validate, import, export,
patients, key), ``interop`` (REDCap, FHIR), ``reports`` (report, power), ``apps`` (app, lab) and
``maintenance`` (store status, store upgrade).
"""

from __future__ import annotations

import functools
import sys
import warnings

import click

from .. import __version__
from ..errors import DataValidationError, HipAnalyticsError

EXIT_REFUSED = 1
EXIT_PARTIAL = 3
EXIT_BUG = 4


def _refusals(func):
    """Turn package errors into a message on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DataValidationError as exc:
            click.echo(str(exc.report), err=True)
            if exc.report.whole_file:
                click.echo("error: the file was refused as a whole (see above); nothing was imported", err=True)
            else:
                click.echo("error: nothing was imported; fix the rows above (or use --quarantine)", err=True)
            sys.exit(EXIT_REFUSED)
        except HipAnalyticsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_REFUSED)

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the terminal: the message alone, without file, line or class."""
    text = " ".join(str(message).split())
    click.echo(f"warning: {text}", err=True)


class _Command(click.Group):
    """The command group; an unexpected exception (a bug) becomes one line and exit code 4, with the
    traceback kept in a file, never a traceback on the terminal. Warnings are shown in words
    (:func:`_show_warning`)."""

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            import tempfile
            import traceback

            from ..store.faults import machine_fault

            fault = machine_fault(exc)
            if fault:  # the machine's fault, not a bug: said in words, exit 1
                click.echo(f"error: {fault}", err=True)
                sys.exit(EXIT_REFUSED)

            with tempfile.NamedTemporaryFile("w", prefix="hipanalytics-error-", suffix=".txt", delete=False) as f:
                traceback.print_exc(file=f)
            click.echo(f"internal error (a bug in hipanalytics {__version__}): {type(exc).__name__}: {exc}. "
                       f"The traceback is in {f.name}; please report it. An import is one transaction: "
                       "nothing of it was kept.", err=True)
            sys.exit(EXIT_BUG)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hipanalytics")
def main() -> None:
    """Hip IR mobility programs, patient records and progress reports."""


# the commands, registered on `main` by their modules
from . import apps, care, interop, maintenance, programs, records, reports  # noqa: E402,F401
