"""Progress reports: run a parameterised notebook with papermill and export it, self-contained.

The HTML has no code cells, no prompts, images embedded as data URIs and no external scripts or
styles, so it opens on an offline machine; the PDF is made from it by WeasyPrint (no TeX). Each
report is stamped with the data snapshot (store fingerprint), the package version, the parameters
and the generation time, and comes with a JSON of its key figures. A notebook that fails leaves
its executed copy for diagnosis and no report.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .config import notebook_path, notebooks_dir, safe_filename
from .errors import HipAnalyticsError, ReportError, StoreError
from .progress import ACTIVE_GRACE_DAYS, REFERENCES, PatientProgress, iso_day, patient_list, patient_progress

__all__ = ["TEMPLATES_DIR", "check_parameters", "source_banner", "open_patient", "show", "paragraph", "table_html",
           "references_html", "store_label", "write_key_figures", "render_notebook", "render_patient", "active_patients",
           "render_clinic", "open_store", "render_cohort", "render_overview", "render_power"]

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
"""


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
    from .synthetic import is_synthetic

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

    from .records import table_spec

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
    check("cohort", lambda v: v is None or isinstance(v, str), "a cohort name or None")
    check("week", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number of weeks >= 1")
    check("threshold", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
          "a share between 0 and 1")
    for name, allowed in methods.items():
        check(name, lambda v, allowed=allowed: v in allowed, f"one of {', '.join(allowed)}")
    if "as_of" in namespace and "as_of" in declared:
        try:
            iso_day(namespace["as_of"])
        except HipAnalyticsError as exc:
            problems.append(str(exc))
    if problems:
        raise ReportError(f"{template}: " + "; ".join(problems) + f". Declared parameters: {', '.join(declared)}")


@functools.lru_cache(maxsize=None)
def _declared_parameters(template: str) -> tuple[str, ...]:
    import papermill

    return tuple(papermill.inspect_notebook(str(notebook_path("reports", template))))


def open_patient(store: str | None, patient_id: str, *, as_of=None, show_name: bool = False,
                 position: str = "seated_90", mode: str = "active", instrument: str = "inclinometer") -> PatientProgress:
    """A patient's report content from the store at ``store`` (used by the report notebook)."""
    method = {"joint": "hip", "motion": "internal_rotation", "position": position, "mode": mode,
              "instrument": instrument}
    return patient_progress(open_store(store), patient_id, as_of=as_of, method=method, show_name=show_name)


def show(figure, *, alt: str, dpi: int = 110):
    """Display a matplotlib Figure as an embedded PNG with its alt text (no pyplot or inline backend).

    ``alt`` says in one sentence what the chart shows; the HTML report puts it on the image for
    screen readers and for whoever reads the report without the pictures.
    """
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    display(Image(data=buffer.getvalue(), format="png", metadata={"alt": alt}))


def open_store(store: str | None):
    """The store at ``store``, or with None the synthetic sample store (used by report notebooks,
    whose default parameters then run as they are)."""
    from .store import Store
    from .synthetic import sample_store

    return Store(store if store is not None else sample_store(), create=False)


def paragraph(text: str) -> str:
    """Text as an escaped HTML paragraph."""
    return f"<p>{html.escape(text)}</p>"


def table_html(df: pd.DataFrame) -> str:
    """A DataFrame as an escaped HTML table without the index."""
    return df.to_html(index=False, escape=True, border=0, na_rep="")


def references_html() -> str:
    """The references behind the report's thresholds."""
    return "<ol>" + "".join(f"<li>{html.escape(r)}</li>" for r in REFERENCES) + "</ol>"


def write_key_figures(figures: dict[str, Any], path: str) -> None:
    """Write the report's key figures as JSON (called by the notebook's last cell)."""
    Path(path).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")


def _socket_prefix() -> str:
    """An absolute path prefix for a kernel's IPC sockets, in a private folder (a relative prefix
    would resolve differently for a kernel started in another working folder)."""
    return str(Path(tempfile.mkdtemp(prefix="hipanalytics-ipc-")) / "kernel")


def _ipc_kernel_manager():
    """A kernel manager whose kernels talk over Unix sockets instead of TCP ports, so parallel
    report workers cannot race for the same port (a known failure of parallel papermill runs)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", _socket_prefix())
            super().__init__(**kwargs)

    return IPCKernelManager


_WARM: dict[str, Any] = {}


def _warm_kernel():
    """This process's long-lived report kernel (IPC transport), namespace cleared for the next report.

    A kernel that died (a crash, a timeout) is replaced. The kernel is shut down when the process
    exits.
    """
    import atexit

    from jupyter_client.manager import KernelManager

    km = _WARM.get("km")
    if km is None or not km.is_alive():
        km = KernelManager(kernel_name="python3", transport="ipc", ip=_socket_prefix())
        km.start_kernel(cwd=tempfile.mkdtemp(prefix="hipanalytics-kernel-"))
        if "km" not in _WARM:
            atexit.register(lambda: _WARM["km"].shutdown_kernel(now=True) if _WARM["km"].is_alive() else None)
        _WARM["km"] = km
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive("%reset -f", timeout=60)  # no variable survives from the last report
    finally:
        client.stop_channels()
    return km


def _warm_engine() -> str:
    """Register (once) and name a papermill engine for long-lived kernels.

    papermill's own engine, handed a kernel it did not start, leaves the kernel client's sockets
    open and an exit handler registered after every notebook; over a clinic's worth of reports
    that leaks file descriptors and memory. This engine closes and unregisters them.
    """
    import atexit

    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    name = "hipanalytics-warm"
    if name in papermill_engines._engines:
        return name

    class WarmKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                kc = getattr(client, "kc", None)
                if kc is not None:
                    kc.stop_channels()
                    if kc.context is not getattr(client.km, "context", None):
                        kc.context.destroy(linger=0)  # the client's own zmq context
                atexit.unregister(client._cleanup_kernel)

    papermill_engines.register(name, WarmKernelEngine)
    return name


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
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    unknown = set(formats) - {"html", "pdf"}
    if unknown:
        raise ReportError(f"unknown report format(s) {', '.join(sorted(unknown))}: use html and/or pdf")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = safe_filename(name)
    work = Path(tempfile.mkdtemp(prefix="hipanalytics-report-"))
    executed = work / f"{base}.ipynb"
    figures_path = work / "figures.json"
    files_path = work / "files"  # manuscript files (tables, figures) of templates that declare ``files_dir``
    extra = {"files_dir": str(files_path)} if "files_dir" in papermill.inspect_notebook(str(template)) else {}
    engine: dict[str, Any] = ({"km": _warm_kernel(), "engine_name": _warm_engine()} if warm
                              else {"kernel_manager_class": _ipc_kernel_manager()})
    # Every cell has ``timeout`` seconds; on a warm kernel the whole report has them too: a watchdog
    # interrupts the kernel when they run out.
    watchdog = threading.Timer(timeout, engine["km"].interrupt_kernel) if warm else None
    if watchdog:
        watchdog.daemon = True
        watchdog.start()
    try:
        papermill.execute_notebook(str(template), str(executed), parameters={**parameters, "figures_json": str(figures_path), **extra},
                                   kernel_name="python3", progress_bar=False, cwd=str(work),
                                   execution_timeout=timeout, log_output=False, **engine)
    except Exception as exc:  # noqa: BLE001 - any failure: keep the notebook, present no report
        kept = out / "failed" / f"{base}.ipynb"
        kept.parent.mkdir(parents=True, exist_ok=True)
        if executed.exists():
            shutil.copy(executed, kept)
        reason = getattr(exc, "evalue", None) or str(exc).strip().splitlines()[-1]
        if watchdog and not watchdog.is_alive():
            reason = f"took longer than {timeout} s and was stopped ({reason})"
        raise ReportError(f"report {base!r} failed: {reason}", notebook=str(kept) if kept.exists() else None) from None
    finally:
        if watchdog:
            watchdog.cancel()
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    shown = {**parameters, **({"store": store_label(parameters["store"])} if parameters.get("store") else {})}
    stamp = {**(stamp or {}), "hipanalytics": __version__,
             "parameters": json.dumps(shown, default=str, sort_keys=True),
             "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, exclude_anchor_links=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    document = _html_document(body, title, stamp)
    if _EXTERNAL.search(document):
        raise ReportError(f"report {base!r} would load something from outside the file; not written")
    paths: dict[str, Any] = {}
    if "html" in formats:
        paths["html"] = out / f"{base}.html"
        paths["html"].write_text(document, encoding="utf-8")
    if "pdf" in formats:
        from .pdf import html_to_pdf

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
    shutil.rmtree(work, ignore_errors=True)
    return {**paths, "figures": figures}


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


# ----------------------------------------------------------------------------------------------
# Batch: every active patient, in parallel worker processes
# ----------------------------------------------------------------------------------------------


def active_patients(store, *, as_of=None, grace_days: int = ACTIVE_GRACE_DAYS) -> list[str]:
    """Patients with a program in force on ``as_of`` or ended within ``grace_days`` before it
    (a final report is still due). ``as_of`` defaults to the latest session or measurement date.
    See :func:`hipanalytics.progress.patient_list`, which shows the same rule per patient."""
    from .store import Store

    if not hasattr(store, "read"):
        with Store(store, create=False) as opened:
            return active_patients(opened, as_of=as_of, grace_days=grace_days)
    listed = patient_list(store, as_of=as_of, grace_days=grace_days)
    return listed.loc[listed["active"], "patient_id"].tolist()


def _render_one(args: tuple) -> tuple[str, dict | None, str | None, int]:
    store, patient_id, out_dir, as_of, formats, timeout, retries = args
    error = None
    for attempt in range(1, retries + 2):
        try:
            result = render_patient(store, patient_id, out_dir, as_of=as_of, formats=formats, timeout=timeout,
                                    warm=True)
            return patient_id, {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()}, None, attempt
        except ReportError as exc:
            error = str(exc)
            if "unknown patient" in error or "no measurements" in error:
                break  # not worth a retry
    return patient_id, None, error, attempt


def render_clinic(store: str | Path, out_dir: str | Path, *, patients: list[str] | None = None, jobs: int = 2,
                  formats: tuple[str, ...] = ("html",), as_of=None, timeout: int = 600, retries: int = 1,
                  progress: bool = True) -> dict[str, Any]:
    """Progress reports for every active patient (or ``patients``), ``jobs`` at a time.

    ``jobs`` worker processes each keep one kernel (IPC transport, so no port races) and run
    report after report on it with a cleared namespace, so kernel start-up and imports are paid
    once per worker, not once per report. A failing patient is retried ``retries`` times (on a
    fresh kernel if the old one died), then recorded with its reason, and the others go on. An ``index.html``
    links every report with its headline figures and lists the failures.

    Returns
    -------
    dict
        ``done`` (patient -> outputs and figures), ``failed`` (patient -> reason), ``index`` (path).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    with _opened(store) as opened:
        ids = list(patients) if patients is not None else active_patients(opened, as_of=as_of)
        fingerprint = opened.fingerprint()
    if not ids:
        raise ReportError("no patients to report on: no program in force at the report date (give patient ids)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    failed: dict[str, str] = {}
    work = [(str(store), pid, str(out), None if as_of is None else str(pd.Timestamp(as_of).date()), formats,
             timeout, retries) for pid in ids]
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_render_one, item) for item in work]
        with tqdm(total=len(futures), unit="report", desc="reports", disable=not progress, file=None) as bar:
            for future in as_completed(futures):
                patient_id, result, error, _ = future.result()
                if result is not None:
                    done[patient_id] = result
                else:
                    failed[patient_id] = error or "unknown failure"
                bar.update(1)
    index = out / "index.html"
    index.write_text(_index_html(done, failed, fingerprint, out), encoding="utf-8")
    return {"done": done, "failed": failed, "index": index}


def _index_html(done: dict[str, dict], failed: dict[str, str], fingerprint: str, out: Path) -> str:
    """The batch's index page: a row per involved hip of each report, linked; the failures listed."""
    from .numbers import percent, signed, whole

    rows = []
    for patient_id in sorted(done):
        figures = done[patient_id]["figures"]
        link = Path(done[patient_id]["html"]).name if "html" in done[patient_id] else ""
        name = (f'<a href="{html.escape(link)}">{html.escape(patient_id)}</a>' if link else html.escape(patient_id))
        involved = figures.get("involved") or {"": {}}
        tolerance = "FLAG: pain rose after breakouts" if figures.get("flagged") else "none"
        for side, numbers in involved.items():
            gain = numbers.get("to_gain_deg")
            cells = [name, html.escape(side or "not measured"), whole(numbers.get("latest_deg"), "-"),
                     signed(numbers.get("change_deg"), missing="-"), html.escape(str(numbers.get("direction") or "-")),
                     html.escape(str(numbers.get("recent_trend") or "not judged")),
                     "-" if gain is None else ("reached" if gain == 0 else str(gain)),
                     percent(figures.get("breakout_adherence"), "-"), tolerance]
            rows.append("<tr>" + "".join(f'<td class="{"id" if i == 0 else ""}">{c}</td>' for i, c in enumerate(cells))
                        + "</tr>")
    head = ("<tr><th>patient</th><th>hip</th><th>latest IR (deg)</th><th>change (deg)</th><th>vs MDC</th>"
            "<th>last weeks</th><th>degrees still to gain</th><th>breakouts done</th><th>tolerance</th></tr>")
    failures = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in sorted(failed.items()))
    body = (f"<h1>Clinic progress reports</h1><p>{len(done)} reports made, {len(failed)} failed. A patient with "
            "both hips involved has a row per hip.</p>"
            f'<table class="index">{head}{"".join(rows)}</table>'
            + (f"<h2>Failed</h2><ul>{failures}</ul>" if failures else ""))
    from .synthetic import is_synthetic

    if is_synthetic(done):
        body = body.replace("</h1>", "</h1>" + source_banner("", list(done)), 1)
    stamp = {"data snapshot": fingerprint, "hipanalytics": __version__,
             "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return _html_document(body, "Clinic progress reports", stamp)


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
    from .store import Store

    try:
        return Store(store, create=False)
    except StoreError as exc:
        raise ReportError(str(exc)) from None


def render_cohort(store: str | Path, out_dir: str | Path, *, cohort: str | None = None, week: int = 6,
                  threshold: float = 0.7, formats: tuple[str, ...] = ("html",), timeout: int = 900) -> dict[str, Any]:
    """The cohort comparison report (``notebooks/reports/cohort_comparison.ipynb``)."""
    with _opened(store) as opened:
        if cohort and cohort not in set(opened.read("patients")["cohort"].dropna()):
            raise ReportError(f"empty cohort: no patients in cohort {cohort!r}")
        fingerprint = opened.fingerprint()
    parameters = {"store": _store_parameter(store), "cohort": cohort, "week": week, "threshold": threshold}
    return render_notebook(TEMPLATES_DIR / "cohort_comparison.ipynb", parameters, out_dir,
                           f"cohort-{cohort or 'all'}", formats=formats, title="Breakout schedules compared",
                           stamp={"data snapshot": fingerprint, "store": store_label(store)}, timeout=timeout)


def render_overview(store: str | Path, out_dir: str | Path, *, as_of=None, formats: tuple[str, ...] = ("html",),
                    timeout: int = 600) -> dict[str, Any]:
    """The clinic overview report (``notebooks/reports/clinic_overview.ipynb``)."""
    with _opened(store) as opened:
        fingerprint = opened.fingerprint()
    parameters = {"store": _store_parameter(store),
                  "as_of": None if as_of is None else str(pd.Timestamp(as_of).date())}
    return render_notebook(TEMPLATES_DIR / "clinic_overview.ipynb", parameters, out_dir, "clinic-overview",
                           formats=formats, title="Clinic overview",
                           stamp={"data snapshot": fingerprint, "store": store_label(store)},
                           timeout=timeout)


def render_power(out_dir: str | Path, *, effect: float = 3.0, sd: float = 6.0, gain_sd: float = 4.0,
                 day_sd: float = 1.6, dropout: float = 0.15, week: int = 6, followup_weeks: int = 8,
                 per_arm=(20, 30, 40, 60, 80), trials: int = 200, seed: int = 1,
                 formats: tuple[str, ...] = ("html",), timeout: int = 3600) -> dict[str, Any]:
    """The power report (``notebooks/reports/power.ipynb``): the simulation table, the power curve,
    and the table and curve as CSV, LaTeX, SVG and PDF beside it (see
    :func:`hipanalytics.analysis.power.simulate_power`)."""
    from .analysis.power import Scenario

    Scenario(effect=effect, sd=sd, gain_sd=gain_sd, day_sd=day_sd, dropout=dropout, week=week,
             followup_weeks=followup_weeks)  # refuse a bad scenario before starting a kernel
    parameters = {"effect": float(effect), "sd": float(sd), "gain_sd": float(gain_sd), "day_sd": float(day_sd),
                  "dropout": float(dropout), "week": int(week), "followup_weeks": int(followup_weeks),
                  "per_arm": [int(n) for n in per_arm], "trials": int(trials), "seed": int(seed)}
    return render_notebook(TEMPLATES_DIR / "power.ipynb", parameters, out_dir, "power", formats=formats,
                           title="Power and sample size", timeout=timeout)
