"""What the apps share: the page frame, the patient picker, status lines and error display.

Only wiring lives here; every decision is made by the plain functions of the app modules and
the store.
"""

from __future__ import annotations

import getpass
import html
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as w
import pandas as pd

from ..errors import DataValidationError, HipAnalyticsError

_CSS = """
<style>
.hip-app { max-width: 1100px; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b; }
.hip-app h2 { color: #0b4f8a; margin: 0 0 2px 0; font-size: 1.5em; }
.hip-app .hip-sub { color: #555; margin: 0 0 10px 0; }
.hip-section { border: 1px solid #d6dbe1; border-radius: 6px; padding: 6px 12px 10px 12px; margin: 6px 0; }
.hip-section h3 { font-size: 1.05em; color: #0b4f8a; margin: 4px 0 6px 0; }
.hip-week { border-collapse: collapse; margin: 6px 0; font-size: 0.92em; }
.hip-week th, .hip-week td { border: 1px solid #c9ced6; padding: 4px 6px; text-align: center; vertical-align: middle;
                             line-height: 1.25; }
.hip-week th { background: #f2f4f7; }
.hip-week td.hip-breakout { background: #dcebf7; color: #0b4f8a; font-weight: 600; }
.hip-warning { background: #fff4e5; border-left: 4px solid #e69f00; padding: 6px 10px; margin: 6px 0; }
.hip-problem { background: #fdecea; border-left: 4px solid #b3261e; padding: 6px 10px; margin: 6px 0; }
.hip-flag { background: #fdecea; border: 2px solid #b3261e; border-left-width: 8px; padding: 8px 12px; margin: 8px 0;
            color: #5c0f0b; }
.hip-ok { background: #e8f5e9; border-left: 4px solid #009e73; padding: 6px 10px; margin: 6px 0; }
.hip-problems { border-collapse: collapse; font-size: 0.9em; margin-top: 4px; }
.hip-problems td, .hip-problems th { border: 1px solid #e3c4c1; padding: 3px 6px; text-align: left; }
.hip-table { border-collapse: collapse; font-size: 0.9em; }
.hip-table th, .hip-table td { border-bottom: 1px solid #e0e3e8; padding: 3px 8px; text-align: left; }
.hip-download { display: inline-block; margin: 4px 12px 4px 0; padding: 6px 12px; border: 1px solid #0b4f8a;
                border-radius: 4px; color: #0b4f8a; text-decoration: none; }
.hip-muted { color: #666; }
</style>
"""


def on_sample_store(store) -> bool:
    """Whether ``store`` is the built-in synthetic sample store: the one apps open when no store is
    named (:func:`hipanalytics.synthetic.sample_store`), or the private copy ``hipanalytics app
    --sample`` serves (named by ``$HIPANALYTICS_SAMPLE_STORE``).

    Parameters
    ----------
    store : Store

    Returns
    -------
    bool
        True only for those SQLite files; a store named by the user never is, whatever it holds.
    """
    import os

    from ..config import SAMPLE_ENV
    from ..synthetic import sample_store_path

    if store.path is None:
        return False
    here = store.path.resolve()
    known = [os.environ.get(SAMPLE_ENV), sample_store_path(create=False)]  # never makes a cache folder
    return any(path and Path(path).resolve() == here for path in known)


def sample_banner(store) -> str:
    """The banner over an app whose patients are synthetic (HTML), or "" for real records.

    On the built-in sample store it says how to start the app on the clinic's own store; on a
    store named with ``--store`` that holds synthetic patients (ids ``SYN-nnnnn``, e.g. the demo's
    store), only that those patients are invented: the app was started as it should be.

    Parameters
    ----------
    store : Store

    Returns
    -------
    str
        A ``hip-warning`` box, or "" when the store holds no synthetic patient.
    """
    from ..synthetic import is_synthetic

    if on_sample_store(store):
        return ('<div class="hip-warning">Synthetic sample data: the app runs on the built-in sample clinic, whose '
                "patients are invented. To work on your clinic's records, start it with <code>hipanalytics app "
                "... --store YOUR-STORE</code>.</div>")
    if is_synthetic(store.read("patients")["patient_id"]):
        return ('<div class="hip-warning">Synthetic patients: the patients of this store with ids SYN-nnnnn are '
                "invented (generated test data), not real people.</div>")
    return ""


def login_name() -> str:
    """The operating-system login, the default 'who' of saved records."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def section(title: str, children: list) -> w.VBox:
    """A titled, bordered group of controls."""
    box = w.VBox([w.HTML(f"<h3>{html.escape(title)}</h3>"), *children])
    box.add_class("hip-section")
    return box


BUTTON_BELOW_FORM = dict(width="auto", align_self="flex-start", margin="8px 0 0 122px")
"""Layout of a form's button: its own width, lined up with the inputs."""


def labelled(text: str, control: w.Widget, width: str = "114px") -> w.HBox:
    """A control with its label on the left, aligned with the ``description`` of text inputs."""
    label = w.Label(text, layout=w.Layout(width=width, justify_content="flex-end", margin="0 8px 0 0"))
    return w.HBox([label, control])


def problem_html(message: str) -> str:
    return f'<div class="hip-problem">{html.escape(message)}</div>'


def ok_html(message: str) -> str:
    return f'<div class="hip-ok">{html.escape(message)}</div>'


def warning_html(message: str) -> str:
    return f'<div class="hip-warning">{html.escape(message)}</div>'


def report_html(error: DataValidationError, label=None) -> str:
    """A validation report as an inline table: field, value, what is wrong, how to fix it.

    ``label(row, column)`` names the form field a problem belongs to (e.g. "Trial 2", "Pain after");
    by default the column name.
    """
    def field(p) -> str:
        column = p.column if isinstance(p.column, str) else ""
        return label(p.row, column) if label is not None else column

    rows = "".join(
        f"<tr><td>{html.escape(field(p))}</td>"
        f"<td>{html.escape(str(p.value) or '(empty)')}</td><td>{html.escape(str(p.rule))}</td>"
        f"<td>{html.escape(str(p.fix))}</td></tr>"
        for p in error.report.errors.itertuples())
    return ('<div class="hip-problem">Not saved; the form keeps what you typed. Please correct:'
            '<table class="hip-problems"><tr><th>field</th><th>value</th><th>problem</th><th>fix</th></tr>'
            f"{rows}</table></div>")


def table_html(df: pd.DataFrame, *, empty: str) -> str:
    if df.empty:
        return f'<p class="hip-muted">{html.escape(empty)}</p>'
    return df.to_html(index=False, classes="hip-table", border=0, escape=True, na_rep="")


class App(w.VBox):
    """Base of the apps: a store, a title, a status line and the patient picker."""

    def __init__(self, store, title: str, subtitle: str):
        super().__init__()
        self.add_class("hip-app")
        self.store = store
        self.header = w.HTML(f"{_CSS}<h2>{html.escape(title)}</h2><p class='hip-sub'>{html.escape(subtitle)}</p>"
                             f"{sample_banner(store)}")
        self.status = w.HTML()

    def patients(self) -> pd.DataFrame:
        return self.store.read("patients")

    def patient_picker(self, description: str = "Patient") -> w.Dropdown:
        """A dropdown of the store's patients, labelled by id and, when recorded, display name."""
        patients = self.patients()
        options = []
        for p in patients.itertuples():
            name = getattr(p, "display_name", None)
            label = f"{p.patient_id} - {name}" if isinstance(name, str) and name.strip() else p.patient_id
            options.append((label, p.patient_id))
        picker = w.Dropdown(description=description, options=options, layout=w.Layout(width="420px"))
        picker.add_class("hip-patient")
        return picker

    def programs_in_force_html(self, patient_id: str | None) -> str:
        if not patient_id:
            return '<p class="hip-muted">No patients in the store yet: import the patients table first.</p>'
        programs = self.store.read("programs", patient_id=patient_id).sort_values("start_date")
        if programs.empty:
            return '<p class="hip-muted">No program on record for this patient.</p>'
        lines = "".join(
            f"<li>{html.escape(p.program_id)}: {html.escape(p.schedule)}, "
            f"{p.start_date:%Y-%m-%d} to {p.end_date:%Y-%m-%d}</li>" for p in programs.itertuples())
        return (f'<p class="hip-muted">Programs on record (a new program that starts inside one ends it the day '
                f"before, with your reason):</p><ul>{lines}</ul>")

    @contextmanager
    def saving(self, doing: str, label=None):
        """Run a save; on failure say why in the status line (naming form fields with ``label``, see
        :func:`report_html`) and leave the form as it is."""
        self.status.value = f'<p class="hip-muted">{html.escape(doing)}...</p>'
        try:
            yield
        except DataValidationError as exc:
            self.status.value = report_html(exc, label)
        except HipAnalyticsError as exc:
            self.status.value = problem_html(f"Not saved: {exc}")
        except Exception as exc:  # noqa: BLE001 - a clinician sees the reason; the form keeps its values
            self.status.value = problem_html(f"Not saved, unexpected error ({type(exc).__name__}): {exc}")

    def say_saved(self, message: str) -> None:
        self.status.value = ok_html(message)
