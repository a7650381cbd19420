"""The clinic batch: every active patient's report, in parallel worker processes on this machine
(each with one warm kernel) or on a Dask cluster, with an index page."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ReportError
from ..progress import ACTIVE_GRACE_DAYS, iso_day, latest_date, patient_list
from ..records import TABLES
from .cells import source_banner
from .render import _html_document, _opened, render_patient

def active_patients(store, *, as_of=None, grace_days: int = ACTIVE_GRACE_DAYS) -> list[str]:
    """Patients with a program in force on ``as_of`` or ended within ``grace_days`` before it
    (a final report is still due). ``as_of`` defaults to the latest session or measurement date.
    See :func:`hipanalytics.progress.patient_list`, which shows the same rule per patient."""
    from ..store import Store

    if not hasattr(store, "read"):
        with Store(store, create=False) as opened:
            return active_patients(opened, as_of=as_of, grace_days=grace_days)
    listed = patient_list(store, as_of=as_of, grace_days=grace_days)
    return listed.loc[listed["active"], "patient_id"].tolist()


def render_clinic(store: str | Path, out_dir: str | Path, *, patients: list[str] | None = None, jobs: int = 2,
                  formats: tuple[str, ...] = ("html",), as_of=None, timeout: int = 600, retries: int = 1,
                  progress: bool = True, cluster=None) -> dict[str, Any]:
    """Progress reports for every active patient (or ``patients``), ``jobs`` at a time or on a cluster.

    Each worker keeps one kernel (IPC transport, so no port races) and runs report after report on
    it with an emptied namespace (see :class:`hipanalytics.reports.kernel.WarmKernel`), so kernel
    start-up and imports are paid once per worker, not once per report. A report has ``timeout``
    seconds. A failing patient is retried ``retries`` times (on a fresh kernel if the old one
    died), then recorded with its reason, and the others go on; the reports a dead worker process
    left are made by a new one. An ``index.html`` links every
    report with its headline figures and lists the failures.

    Every report is made as of one date: ``as_of``, or the latest measurement or session in the
    store (so a patient who stopped logging sessions is reported on the same day as the others,
    with the sessions missed since).

    Parameters
    ----------
    jobs : int
        Worker processes on this machine (ignored with ``cluster``).
    cluster : str or distributed.Client, optional
        Run on Dask distributed instead: ``"tcp://HOST:8786"`` (a running scheduler),
        ``"local:N"`` (a LocalCluster of N worker processes, closed at the end) or a connected
        ``Client``. Every worker must reach ``store`` (a database URL, or a SQLite file at the
        same path) and write to ``out_dir`` (a shared folder); a report whose worker died is
        run again on another one. See ``docs/cluster.md``.

    Returns
    -------
    dict
        ``done`` (patient -> outputs and figures), ``failed`` (patient -> reason), ``index``
        (path), ``as_of`` (the reports' date, ISO text; None for a store without a measurement
        or session) and ``active`` (how many patients are active on it).
    """
    from tqdm import tqdm

    with _opened(store) as opened:
        tables = {table: opened.read(table) for table in TABLES}
        fingerprint = opened.fingerprint()
    when = iso_day(as_of) if as_of is not None else latest_date(tables)
    listed = patient_list(tables, as_of=when)
    active = listed.loc[listed["active"], "patient_id"].tolist()
    ids = list(patients) if patients is not None else active
    if not ids:
        raise ReportError("no patients to report on: no program in force at the report date (give patient ids)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    failed: dict[str, str] = {}
    day = None if when is None else f"{when:%Y-%m-%d}"
    work = [(str(store), pid, str(out.resolve()), day, formats, timeout, retries) for pid in ids]
    if cluster is None:
        results = _run_here(work, jobs)
    else:
        from .cluster import run_on_cluster

        results = run_on_cluster(cluster, work)
    with tqdm(total=len(work), unit="report", desc="reports", disable=not progress, file=None) as bar:
        for patient_id, result, error in results:
            if result is not None:
                done[patient_id] = result
            else:
                failed[patient_id] = error or "unknown failure"
            bar.update(1)
    index = out / "index.html"
    index.write_text(_index_html(done, failed, fingerprint, out), encoding="utf-8")
    return {"done": done, "failed": failed, "index": index, "as_of": day, "active": len(active)}


def _run_here(work: list[tuple], jobs: int, *, lives: int = 3):
    """Results of ``work`` as they come, from ``jobs`` worker processes on this machine.

    A worker process that dies (killed, out of memory) breaks the pool and fails every report not
    yet made; those are run again on a new pool, each at most ``lives`` times, then reported as
    failed, so one lost process does not lose the batch.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    tries = dict.fromkeys((item[1] for item in work), 0)
    pending = list(work)
    while pending:
        again = []
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(render_one, item): item for item in pending}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    yield future.result()
                except BrokenProcessPool:
                    tries[item[1]] += 1
                    if tries[item[1]] < lives:
                        again.append(item)
                    else:
                        yield item[1], None, f"its worker process died {lives} times"
        pending = again


def render_one(item: tuple) -> tuple[str, dict | None, str | None]:
    """One patient's report on this process's warm kernel, retried; ``(patient, outputs, error)``
    with paths as text (the work unit of the local workers and of the cluster's)."""
    store, patient_id, out_dir, as_of, formats, timeout, retries = item
    error = None
    for _ in range(retries + 1):
        try:
            result = render_patient(store, patient_id, out_dir, as_of=as_of, formats=formats, timeout=timeout,
                                    warm=True)
            return patient_id, {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()}, None
        except ReportError as exc:
            error = str(exc)
            if "unknown patient" in error or "no measurements" in error:
                break  # not worth a retry
    return patient_id, None, error


def _index_html(done: dict[str, dict], failed: dict[str, str], fingerprint: str, out: Path) -> str:
    """The batch's index page: a row per involved hip of each report, linked; the failures listed."""
    from ..numbers import percent, signed, whole

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
    from ..synthetic import is_synthetic

    if is_synthetic(done):
        body = body.replace("</h1>", "</h1>" + source_banner("", list(done)), 1)
    stamp = {"data snapshot": fingerprint, "hipanalytics": __version__,
             "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return _html_document(body, "Clinic progress reports", stamp)

