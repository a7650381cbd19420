"""What the report notebooks call: parameter checks, the synthetic-data banner, the patient's
report content, charts as embedded PNGs with alt text, escaped HTML pieces, the key figures."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import notebook_path
from ..errors import HipAnalyticsError, ReportError
from ..analysis.rom import PRIMARY_METHOD
from ..progress import REFERENCES, PatientProgress, iso_day, patient_progress

_SYNTHETIC_CSS = ("border: 3px solid #b3261e; background: #fdecea; color: #5c0f0a; padding: .6rem .9rem; "
                  "margin: .6rem 0 1rem; font-size: 1.05rem;")


def source_banner(store: str | None, patient_ids) -> str:
    """An unmissable banner when a report shows synthetic data, else an empty string.

    Synthetic data are the sample clinic a report falls back on when no store was given
    (``store`` is None, e.g. papermill run without ``-p store ...``), and any patient whose id is
    reserved for synthetic data (``SYN-nnnnn``, see :func:`hipanalytics.synthetic.is_synthetic`).

    Examples
    --------
    >>> "SYNTHETIC SAMPLE DATA" in source_banner(None, ["SYN-00004"]), source_banner("c.sqlite", ["P001"])
    (True, '')
    """
    from ..synthetic import is_synthetic

    if store is not None and not is_synthetic(patient_ids):
        return ""
    why = ("No store was given (the notebook's <code>store</code> parameter is empty), so this report shows "
           "the built-in synthetic sample clinic. " if store is None else "")
    return (f'<div class="synthetic" role="alert" style="{_SYNTHETIC_CSS}"><strong>SYNTHETIC SAMPLE DATA</strong>: '
            f"{why}The patients in this report are invented; it says nothing about a real patient.</div>")


def check_parameters(namespace: dict[str, Any], template: str) -> None:
    """Check a report notebook's parameters before it computes anything (called by its first cell).

    papermill only warns about a parameter the notebook does not declare (``-p stor clinic.sqlite``)
    and then runs with the defaults, which would make a report of the synthetic sample under the
    name of the clinic's store. Here every plain value defined by the parameters cell and the
    injected cell must be a declared parameter, and the values must make sense.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()``.
    template : str
        The template's name (``patient_progress``, ``cohort_comparison``, ``clinic_overview``).

    Raises
    ------
    ReportError
        Naming each unknown parameter (with the declared name it resembles) or wrong value.
    """
    import difflib

    from ..records import table_spec

    declared = _declared_parameters(template)
    hidden = set()
    try:
        hidden = set(namespace["get_ipython"]().user_ns_hidden)
    except (KeyError, AttributeError, TypeError):
        pass
    plain = (str, int, float, bool, list, dict, tuple, type(None))
    defined = {k for k, v in namespace.items() if not k.startswith("_") and k not in hidden and isinstance(v, plain)}
    problems = []
    for name in sorted(defined - set(declared)):
        close = difflib.get_close_matches(name, declared, n=1)
        problems.append(f"unknown parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    methods = {spec.name: spec.allowed for spec in table_spec("measurements") if spec.allowed}

    def check(name, ok, expected):
        if name in declared and name in namespace and not ok(namespace[name]):
            problems.append(f"parameter {name}={namespace[name]!r}: expected {expected}")

    check("store", lambda v: v is None or (isinstance(v, str) and v.strip()), "a SQLite path or database URL")
    check("patient_id", lambda v: isinstance(v, str) and v.strip(), "a patient id")
    check("show_name", lambda v: isinstance(v, bool), "True or False")
    check("everyone", lambda v: isinstance(v, bool), "True or False")
    check("report_files", lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(f, str)
                                                                and "/" not in f and "\\" not in f
                                                                for k, f in v.items()),
          "a dict of patient id -> report file name in the same folder")
    check("cohort", lambda v: v is None or isinstance(v, str), "a cohort name or None")
    check("week", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number of weeks >= 1")
    check("threshold", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
          "a share between 0 and 1")
    for name, allowed in methods.items():
        check(name, lambda v, allowed=allowed: v is None or v in allowed,
              f"one of {', '.join(allowed)}, or None (the patient's usual method)")
    if "as_of" in namespace and "as_of" in declared:
        try:
            iso_day(namespace["as_of"])
        except HipAnalyticsError as exc:
            problems.append(str(exc))
    if problems:
        raise ReportError(f"{template}: " + "; ".join(problems) + f". Declared parameters: {', '.join(declared)}")


def _declared_parameters(template: str) -> tuple[str, ...]:
    from .render import _template  # read once per process, like the batch reads it

    return _template(notebook_path("reports", template))[1]


def open_patient(store: str | None, patient_id: str, *, as_of=None, show_name: bool = False,
                 position: str | None = None, mode: str | None = None, instrument: str | None = None) -> PatientProgress:
    """A patient's report content from the store at ``store`` (used by the report notebook).

    ``position``, ``mode`` and ``instrument`` choose the method of the headline series; all None:
    the patient's usual method (the one with the most visits). Given in part, the rest are those of
    the usual seated 90/90, active, inclinometer method."""
    method = None
    if (position, mode, instrument) != (None, None, None):
        method = {**PRIMARY_METHOD, **{k: v for k, v in (("position", position), ("mode", mode),
                                                          ("instrument", instrument)) if v is not None}}
    return patient_progress(open_store(store), patient_id, as_of=as_of, method=method, show_name=show_name)


def show(figure, *, alt: str, dpi: int = 150):
    """Display a matplotlib Figure as an embedded PNG with its alt text (no pyplot or inline backend).

    ``alt`` says in one sentence what the chart shows; the HTML report puts it on the image for
    screen readers and for whoever reads the report without the pictures. The image is as wide as
    the figure (96 CSS pixels an inch), so it prints at the size it was drawn and a font of 9
    points in the figure is 9 points on paper; only a figure wider than the page is scaled down to
    fit. ``dpi`` sets the sharpness on paper and on high-resolution screens, not the size.
    """
    from IPython.display import Image, display

    from ..charts import png

    display(Image(data=png(figure, dpi=dpi), format="png", width=round(figure.get_figwidth() * 96),
                  metadata={"alt": alt}))


def open_store(store: str | None):
    """The store at ``store``, or with None the synthetic sample store (used by report notebooks,
    whose default parameters then run as they are)."""
    from ..store import Store
    from ..synthetic import sample_store

    return Store(store if store is not None else sample_store(), create=False)


def paragraph(text: str | list[str]) -> str:
    """Text as an escaped HTML paragraph, or a list of texts as one paragraph each."""
    return "".join(f"<p>{html.escape(t)}</p>" for t in ([text] if isinstance(text, str) else text))


def report_day(store, as_of=None) -> pd.Timestamp | None:
    """The day a report is made for: ``as_of`` (an ISO date), or the latest measurement or session
    in ``store``."""
    from ..progress import latest_date

    day = iso_day(as_of)
    return day if day is not None else latest_date(store)


def overview_heading(overview: pd.DataFrame, day, *, everyone: bool = False) -> str:
    """The worklist's first line (escaped): its date, how many patients, how many need attention.

    Examples
    --------
    >>> o = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "attention": ["pain flag", "pain flag", ""]})
    >>> overview_heading(o, pd.Timestamp("2026-12-02"))
    '<h2>Worklist on 2026-12-02: 2 active patients, 1 needing attention</h2>'
    """
    patients = overview["patient_id"].nunique()
    attention = overview.loc[overview["attention"] != "", "patient_id"].nunique()
    when = "no data yet" if day is None else f"{pd.Timestamp(day):%Y-%m-%d}"
    who = "patients" if everyone else "active patients"
    return (f"<h2>Worklist on {html.escape(when)}: {patients} {who if patients != 1 else who[:-1]}, "
            f"{attention} needing attention</h2>")


def table_html(df: pd.DataFrame) -> str:
    """A DataFrame as an escaped HTML table without the index."""
    return df.to_html(index=False, escape=True, border=0, na_rep="")


def history_html(progress: PatientProgress) -> str:
    """The earlier episodes of care under a heading (escaped), or nothing for a first episode."""
    earlier = progress.history_table()
    if earlier.empty:
        return ""
    return ("<h2>History: earlier episodes of care</h2><p>Each earlier episode had its own baseline, change and flags; "
            "this report's figures are of the current episode only.</p>" + table_html(earlier))


def references_html() -> str:
    """The references behind the report's thresholds."""
    return "<ol>" + "".join(f"<li>{html.escape(r)}</li>" for r in REFERENCES) + "</ol>"


def write_key_figures(figures: dict[str, Any], path: str) -> None:
    """Write the report's key figures as JSON (called by the notebook's last cell)."""
    Path(path).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
