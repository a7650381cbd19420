"""One report: run a notebook template (a new kernel, or this worker's warm one) and export it,
self-contained, as HTML and PDF with its key figures; the patient, cohort, overview and power
reports."""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..config import notebooks_dir, safe_filename
from ..errors import ReportError, StoreError

TEMPLATES_DIR = notebooks_dir() / "reports"
"""Report notebook templates, shipped in the package (``notebooks/reports`` in a checkout links here)."""

_CSS = """
body { font: 11pt/1.45 "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #1b1b1b; max-width: 52rem;
       margin: 0 auto; padding: 1.2rem; }
h1 { color: #0b5394; font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 2px solid #0b5394; }
table { border-collapse: collapse; margin: .4rem 0; font-size: .82rem; }
th, td { border: 1px solid #ccc; padding: .2rem .45rem; text-align: left; overflow-wrap: normal; }
table.header th { background: #f3f3f3; }
tr { break-inside: avoid; }
img { max-width: 100%; height: auto; }
.flag { border-left: 4px solid #D55E00; padding-left: .6rem; }
footer { margin-top: 2rem; font-size: .75rem; color: #555; border-top: 1px solid #ccc; padding-top: .4rem; }
td.id, td.id a { white-space: nowrap; }
.history { border-left: 4px solid #999; padding-left: .6rem; color: #333; }
table { max-width: 100%; }
table.dataframe, table.index { width: 100%; }
@page { size: A4; margin: 14mm; }
/* On paper: the page margin is the margin, the text a little smaller; a heading, and the text of a
   notebook's markdown cell, stay with what follows them; a table that runs onto the next page repeats
   its header row there; a chart is never cut (it prints at its drawn size: see reports.show); the
   footer stays with the end of the report. */
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  h1 { margin: 0 0 .5rem; } h2 { margin: 1.1rem 0 .45rem; }
  table { font-size: 8.5pt; line-height: 1.3; } th, td { padding: .15rem .4rem; }
}
h1, h2, h3, .text_cell_render > :last-child { break-after: avoid; }
thead { display: table-header-group; }
img { break-inside: avoid; }
footer { break-before: avoid; }
"""


_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", re.I)


def _html_document(body: str, title: str, stamp: dict[str, Any]) -> str:
    footer = " &middot; ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in stamp.items())
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>{body}<footer>{footer}</footer></body></html>")


def render_notebook(template: str | Path, parameters: dict[str, Any], out_dir: str | Path, name: str, *,
                    formats: tuple[str, ...] = ("html",), title: str = "hipanalytics report",
                    stamp: dict[str, Any] | None = None, timeout: int = 600, warm: bool = False) -> dict[str, Any]:
    """Execute ``template`` with ``parameters`` and export it.

    Parameters
    ----------
    template : path
        A notebook with a cell tagged ``parameters``; its last cell writes ``figures_json``.
    name : str
        Base name of the outputs (sanitised).
    formats : tuple of {"html", "pdf"}
    stamp : dict, optional
        Added to the footer and the JSON (e.g. the store fingerprint).
    warm : bool
        Run on this process's long-lived kernel (started on first use, its namespace cleared
        before every notebook) instead of a new kernel: the imports are paid once per worker.

    Returns
    -------
    dict
        ``html`` / ``pdf`` / ``json`` paths (those made), ``files`` (the folder of manuscript
        tables and figures, for templates with a ``files_dir`` parameter), ``pdf_pages``, and
        ``figures`` (the key figures).

    Raises
    ------
    ReportError
        When the notebook fails (its executed copy is kept under ``out_dir/failed``) or the HTML
        would reference anything outside itself.
    """
    unknown = set(formats) - {"html", "pdf"}
    if unknown:
        raise ReportError(f"unknown report format(s) {', '.join(sorted(unknown))}: use html and/or pdf")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = safe_filename(name)
    work = Path(tempfile.mkdtemp(prefix="hipanalytics-report-"))
    try:
        return _render(Path(template), parameters, out, base, work, formats=formats, title=title, stamp=stamp,
                       timeout=timeout, warm=warm)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _render(template: Path, parameters: dict[str, Any], out: Path, base: str, work: Path, *, formats, title, stamp,
            timeout, warm) -> dict[str, Any]:
    figures_path = work / "figures.json"
    files_path = work / "files"  # manuscript files (tables, figures) of templates that declare ``files_dir``
    extra = {"files_dir": str(files_path)} if "files_dir" in _template(template)[1] else {}
    nb = _execute(template, {**parameters, "figures_json": str(figures_path), **extra}, out, base, work,
                  timeout=timeout, warm=warm)
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    shown = {**parameters, **({"store": store_label(parameters["store"])} if parameters.get("store") else {})}
    stamp = {**(stamp or {}), "hipanalytics": __version__,
             "parameters": json.dumps(shown, default=str, sort_keys=True),
             "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    body, _ = _exporter().from_notebook_node(_shown_cells(nb))
    document = _html_document(body, title, stamp)
    if _EXTERNAL.search(document):
        raise ReportError(f"report {base!r} would load something from outside the file; not written")
    paths: dict[str, Any] = {}
    if "html" in formats:
        paths["html"] = out / f"{base}.html"
        paths["html"].write_text(document, encoding="utf-8")
    if "pdf" in formats:
        from ..pdf import html_to_pdf

        pdf, paths["pdf_pages"] = html_to_pdf(document)
        paths["pdf"] = out / f"{base}.pdf"
        paths["pdf"].write_bytes(pdf)
    if files_path.is_dir():  # next to the report, listed in its key figures by their paths from there
        paths["files"] = out / f"{base}-files"
        shutil.rmtree(paths["files"], ignore_errors=True)
        shutil.copytree(files_path, paths["files"])
        figures["files"] = [f"{paths['files'].name}/{name}" for name in figures.get("files", [])]
    paths["json"] = out / f"{base}.json"
    paths["json"].write_text(json.dumps({**figures, "stamp": stamp}, indent=2, default=str), encoding="utf-8")
    return {**paths, "figures": figures}


def _execute(template: Path, parameters: dict[str, Any], out: Path, base: str, work: Path, *, timeout: int,
             warm: bool):
    """The executed notebook: on this process's warm kernel (every cell and the whole report within
    ``timeout`` seconds), or by papermill on a new kernel (every cell within ``timeout``). A failure
    keeps the notebook as far as it ran under ``out/failed`` and raises ReportError."""
    import nbformat
    import papermill

    from .kernel import NotebookFailed, ipc_kernel_manager, worker_kernel

    executed = None
    try:
        if warm:
            return worker_kernel().run(_template(template)[0], parameters, timeout=timeout, cwd=work)
        return papermill.execute_notebook(str(template), str(work / f"{base}.ipynb"), parameters=parameters,
                                          kernel_name="python3", progress_bar=False, cwd=str(work),
                                          execution_timeout=timeout, log_output=False,
                                          kernel_manager_class=ipc_kernel_manager(work / "kernel"))
    except NotebookFailed as exc:
        executed = exc.executed
        reason = f"took longer than {timeout} s and was stopped" if exc.timed_out else str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure: keep the notebook, present no report
        if (work / f"{base}.ipynb").exists():
            executed = nbformat.read(work / f"{base}.ipynb", as_version=4)
        reason = getattr(exc, "evalue", None) or str(exc).strip().splitlines()[-1]
    kept = out / "failed" / f"{base}.ipynb"
    if executed is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, kept)
    raise ReportError(f"report {base!r} failed: {reason}", notebook=str(kept) if executed is not None else None)


@functools.lru_cache(maxsize=16)
def _read_template(path: str, modified: int):
    import papermill
    from papermill.iorw import load_notebook_node  # as papermill reads it: every cell with its tags list

    return load_notebook_node(path), tuple(papermill.inspect_notebook(path))


def _template(path: Path):
    """A template notebook and its declared parameters, read once per process (again when it changes)."""
    return _read_template(str(path), path.stat().st_mtime_ns)


def _shown_cells(nb):
    """The executed notebook as the report shows it: a code cell that displays nothing is left out
    (its code is never shown), so it leaves no empty block on the page, such as one that the
    footer would keep with on a page of its own."""
    from nbformat import NotebookNode

    return NotebookNode({**nb, "cells": [c for c in nb.cells if c.cell_type != "code" or c.get("outputs")]})


@functools.lru_cache(maxsize=1)
def _exporter():
    """The HTML exporter, its templates loaded once per process: no code, no prompts, no anchors."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                        exclude_output_prompt=True, exclude_anchor_links=True)


def render_patient(store: str | Path, patient_id: str, out_dir: str | Path, *, as_of=None,
                   formats: tuple[str, ...] = ("html",), show_name: bool = False, timeout: int = 600,
                   warm: bool = False) -> dict[str, Any]:
    """A patient's progress report from ``notebooks/reports/patient_progress.ipynb``.

    Checks the store and the patient before starting a kernel, so the common mistakes answer at
    once with a clear message.
    """

    with _opened(store) as opened:
        if opened.read("patients", patient_id=patient_id).empty:
            raise ReportError(f"unknown patient {patient_id!r}: not in the store's patients table")
        if opened.read("measurements", patient_id=patient_id).empty:
            raise ReportError(f"patient {patient_id!r} has no measurements yet: nothing to report")
        fingerprint = opened.fingerprint()
    template = TEMPLATES_DIR / "patient_progress.ipynb"
    parameters = {"store": _store_parameter(store), "patient_id": patient_id,
                  "as_of": None if as_of is None else str(pd.Timestamp(as_of).date()), "show_name": show_name}
    return render_notebook(template, parameters, out_dir, f"progress-{patient_id}", formats=formats,
                           title=f"Hip IR progress: {patient_id}",
                           stamp={"data snapshot": fingerprint, "store": store_label(store)},
                           timeout=timeout, warm=warm)


def store_label(store) -> str:
    """How a report names its store: the file name of a SQLite store, the database name of a server
    (never a folder path, a host or a password: the footer of a report travels).

    Examples
    --------
    >>> store_label("/home/clinic/records/clinic.sqlite"), store_label("postgresql+psycopg://u:pw@db.local/rehab")
    ('clinic.sqlite', 'rehab (postgresql)')
    """
    text = str(store)
    if "://" in text:
        import sqlalchemy as sa

        url = sa.make_url(text)
        return f"{url.database} ({url.get_backend_name()})"
    return Path(text).name


def _store_parameter(store) -> str:
    """The store as the report kernel must see it: URLs as given, file paths made absolute (the
    kernel runs in its own working folder)."""
    text = str(store)
    return text if "://" in text else str(Path(text).resolve())


def _opened(store):
    from ..store import Store

    try:
        return Store(store, create=False)
    except StoreError as exc:
        raise ReportError(str(exc)) from None


def render_cohort(store: str | Path, out_dir: str | Path, *, cohort: str | None = None, week: int = 6,
                  threshold: float = 0.7, formats: tuple[str, ...] = ("html",), timeout: int = 900) -> dict[str, Any]:
    """The cohort comparison report (``notebooks/reports/cohort_comparison.ipynb``); a clinic
    batch's index page in the same folder is written again to link it."""
    from ..study import check_arms

    with _opened(store) as opened:
        patients = opened.read("patients")
        if cohort and cohort not in set(patients["cohort"].dropna()):
            raise ReportError(f"empty cohort: no patients in cohort {cohort!r}")
        check_arms(patients, opened.read("programs"), cohort)  # before a kernel starts
        fingerprint = opened.fingerprint()
    parameters = {"store": _store_parameter(store), "cohort": cohort, "week": week, "threshold": threshold}
    result = render_notebook(TEMPLATES_DIR / "cohort_comparison.ipynb", parameters, out_dir,
                             f"cohort-{cohort or 'all'}", formats=formats, title="Breakout schedules compared",
                             stamp={"data snapshot": fingerprint, "store": store_label(store)}, timeout=timeout)
    _link_from_index(out_dir)
    return result


def render_overview(store: str | Path, out_dir: str | Path, *, as_of=None, formats: tuple[str, ...] = ("html",),
                    everyone: bool = False, timeout: int = 600) -> dict[str, Any]:
    """The clinic overview report (``notebooks/reports/clinic_overview.ipynb``): the worklist of
    active patients (``everyone``: every patient) on ``as_of`` (default: the latest date in the
    store), titled with that date, each patient linked to their progress report when ``out_dir``
    holds it (as ``report clinic`` writes them); a clinic batch's index page in the same folder is
    written again to link it."""
    from ..progress import latest_date

    with _opened(store) as opened:
        fingerprint = opened.fingerprint()
        day = pd.Timestamp(as_of) if as_of is not None else latest_date(opened)
        ids = opened.read("patients")["patient_id"]
    out = Path(out_dir)
    files = {pid: f"{safe_filename(f'progress-{pid}')}.html" for pid in ids}
    linked = {pid: name for pid, name in files.items() if (out / name).is_file()}
    parameters = {"store": _store_parameter(store), "as_of": None if day is None else str(day.date()),
                  "everyone": everyone, "report_files": linked}
    title = "Clinic overview" + ("" if day is None else f", {day:%Y-%m-%d}")
    result = render_notebook(TEMPLATES_DIR / "clinic_overview.ipynb", parameters, out_dir, "clinic-overview",
                             formats=formats, title=title,
                             stamp={"data snapshot": fingerprint, "store": store_label(store)},
                             timeout=timeout)
    _link_from_index(out_dir)
    return result


def _link_from_index(out_dir) -> None:
    """Write the index page of a clinic batch in ``out_dir`` again, if there is one, so it links
    the clinic report just made beside the patient reports."""
    from .batch import INDEX_JSON, write_index

    if (Path(out_dir) / INDEX_JSON).is_file():
        write_index(out_dir)


def render_power(out_dir: str | Path, *, effect: float = 3.0, sd: float = 6.0, gain_sd: float = 4.0,
                 day_sd: float = 1.6, dropout: float = 0.15, mechanism: str = "MCAR", week: int = 6,
                 followup_weeks: int = 8,
                 per_arm=(20, 30, 40, 60, 80), trials: int = 200, seed: int = 1,
                 formats: tuple[str, ...] = ("html",), timeout: int = 3600) -> dict[str, Any]:
    """The power report (``notebooks/reports/power.ipynb``): the simulation table, the power curve,
    and the table and curve as CSV, LaTeX, SVG and PDF beside it (see
    :func:`hipanalytics.analysis.power.simulate_power`)."""
    from ..analysis.power import Scenario

    Scenario(effect=effect, sd=sd, gain_sd=gain_sd, day_sd=day_sd, dropout=dropout, mechanism=mechanism, week=week,
             followup_weeks=followup_weeks)  # refuse a bad scenario before starting a kernel
    parameters = {"effect": float(effect), "sd": float(sd), "gain_sd": float(gain_sd), "day_sd": float(day_sd),
                  "dropout": float(dropout), "mechanism": str(mechanism), "week": int(week), "followup_weeks": int(followup_weeks),
                  "per_arm": [int(n) for n in per_arm], "trials": int(trials), "seed": int(seed)}
    return render_notebook(TEMPLATES_DIR / "power.ipynb", parameters, out_dir, "power", formats=formats,
                           title="Power and sample size", timeout=timeout)
