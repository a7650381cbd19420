"""The clinic batch: every active patient's report, in parallel worker processes on this machine
(each with one warm kernel) or on a Dask cluster, with an index page."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..errors import ReportError
from ..progress import ACTIVE_GRACE_DAYS, iso_day, latest_date, patient_list
from ..records import TABLES
from .cells import source_banner
from .render import _html_document, _opened, render_patient

INDEX_JSON = "index.json"
"""What a clinic batch's index page shows, kept beside it (``index.html``) so the page can be
written again when another report is made in the folder (see :func:`write_index`)."""


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
    left are made by a new one.

    Every report is made as of one date: ``as_of``, or the latest measurement or session in the
    store (so a patient who stopped logging sessions is reported on the same day as the others,
    with the sessions missed since). An ``index.html`` says that date and how many patients are
    active on it, links each report (HTML and PDF, as made) with its headline figures, links the
    clinic overview and cohort reports made in the same folder (before or after: making one
    there writes the index again) and lists the failures.

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
    shown = {"as_of": day, "active": len(active), "chosen": patients is not None, "data snapshot": fingerprint,
             "reports": {pid: {**{k: Path(r[k]).name for k in ("html", "pdf") if k in r}, "figures": r["figures"]}
                         for pid, r in sorted(done.items())},
             "failed": dict(sorted(failed.items()))}
    (out / INDEX_JSON).write_text(json.dumps(shown, indent=2, default=str), encoding="utf-8")
    return {"done": done, "failed": failed, "index": write_index(out), "as_of": day, "active": len(active)}


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


def write_index(out_dir: str | Path) -> Path:
    """Write the index page of the clinic batch in ``out_dir`` (again) from its ``index.json``,
    linking the clinic overview and cohort reports in the folder as it holds them now (the
    overview and cohort reports call it when made into a batch's folder). Returns its path."""
    out = Path(out_dir)
    batch = json.loads((out / INDEX_JSON).read_text(encoding="utf-8"))
    index = out / "index.html"
    index.write_text(_index_html(batch, out), encoding="utf-8")
    return index


def _link(name: str, text: str) -> str:
    """A link to a file in the same folder, its name quoted for a URL and both escaped."""
    return f'<a href="{html.escape(quote(name))}">{html.escape(text)}</a>'


def _index_html(batch: dict[str, Any], out: Path) -> str:
    """The batch's index page: the date and the active patients, the clinic reports in the folder,
    a row per involved hip of each report (linked, HTML and PDF), the failures."""
    from ..numbers import percent, signed, whole

    rows = []
    for patient_id, made in batch["reports"].items():
        figures = made["figures"]
        first = made.get("html") or made.get("pdf")
        name = _link(first, patient_id) if first else html.escape(patient_id)
        if made.get("html") and made.get("pdf"):
            name += " &middot; " + _link(made["pdf"], "PDF")
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
    head = ("<thead><tr><th>patient</th><th>hip</th><th>latest IR (deg)</th><th>change (deg)</th><th>vs MDC</th>"
            "<th>last weeks</th><th>degrees still to gain</th><th>breakouts done</th><th>tolerance</th></tr></thead>")
    failures = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in batch["failed"].items())
    day = batch["as_of"]
    title = "Clinic progress reports" + (f", as of {day}" if day else "")
    active = (f"{batch['active']} patient{'s' if batch['active'] != 1 else ''} active on {day} (a program in force, "
              f"or ended at most {ACTIVE_GRACE_DAYS} days before)" if day else "No measurement or session yet")
    asked = " (of the patients asked for)" if batch["chosen"] else ""
    others = _clinic_reports(out, batch["data snapshot"])
    body = (f"<h1>{html.escape(title)}</h1><p>{html.escape(active)}. {len(batch['reports'])} reports made, "
            f"{len(batch['failed'])} failed{asked}. A patient with both hips involved has a row per hip.</p>"
            + (f"<h2>Clinic reports</h2><ul>{others}</ul>" if others else "")
            + f'<h2>Patients</h2><table class="index">{head}<tbody>{"".join(rows)}</tbody></table>'
            + (f"<h2>Failed</h2><ul>{failures}</ul>" if failures else ""))
    from ..synthetic import is_synthetic

    if is_synthetic(batch["reports"]):
        body = body.replace("</h1>", "</h1>" + source_banner("", list(batch["reports"])), 1)
    stamp = {"data snapshot": batch["data snapshot"], "hipanalytics": __version__,
             "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return _html_document(body, title, stamp)


def _clinic_reports(out: Path, fingerprint: str) -> str:
    """List items linking the clinic overview and the cohort reports in ``out`` (HTML and PDF, as
    made), each with when it was made, and a warning when it shows another data snapshot than
    the patient reports."""
    found = [("clinic-overview", "Clinic overview: who needs attention first")]
    cohorts = sorted({path.stem.removeprefix("cohort-") for kind in ("html", "pdf") for path in out.glob(f"cohort-*.{kind}")})
    found += [(f"cohort-{name}", "Cohort comparison, daily vs 3x/week breakouts: "
               + ("all patients" if name == "all" else f"cohort {name}")) for name in cohorts]
    items = []
    for base, text in found:
        made = [kind for kind in ("html", "pdf") if (out / f"{base}.{kind}").is_file()]
        if not made:
            continue
        links = _link(f"{base}.{made[0]}", text) + "".join(
            " &middot; " + _link(f"{base}.{kind}", kind.upper()) for kind in made[1:])
        try:
            stamp = json.loads((out / f"{base}.json").read_text(encoding="utf-8")).get("stamp", {})
        except (OSError, ValueError, AttributeError):
            stamp = {}
        note = f" (made {html.escape(str(stamp['generated']))})" if stamp.get("generated") else ""
        if stamp.get("data snapshot") not in (None, fingerprint):
            note += " <strong>from another data snapshot than the patient reports</strong>"
        items.append(f"<li>{links}{note}</li>")
    return "".join(items)
