"""Patient dashboard: one patient's IR trend, sessions done, pain response and flags, live.

:func:`patient_panels` gathers what the dashboard shows (the same content as the progress
report, from :func:`hipanalytics.progress.patient_progress`), and :class:`Dashboard` displays
it, redraws it whenever the embedded visit form saves, and renders the progress report on demand.
"""

from __future__ import annotations

import base64
import html
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .. import charts
from ..config import safe_filename
from ..progress import PatientProgress, patient_progress

__all__ = ["Panels", "patient_panels", "Dashboard"]

EMPTY = {"rom": "No hip IR measurements yet: record a visit below.",
         "adherence": "No program on record: prescribe one with the program builder (hipanalytics app builder).",
         "pain": "No sessions logged yet."}
"""What a dashboard panel says while there is nothing to draw."""


@dataclass
class Panels:
    """What the dashboard shows for one patient: the report content and its charts as PNG bytes."""

    progress: PatientProgress
    charts: dict[str, bytes]
    """``rom``, ``adherence``, ``pain``: PNG images (absent when there is nothing to draw)."""

    def alt(self, name: str) -> str:
        """The chart's alt text: one sentence saying what it shows (the report's own)."""
        p = self.progress
        return {"rom": p.chart_alt, "adherence": p.calendar_alt, "pain": p.pain_alt}[name]()

    def image_html(self, name: str) -> str:
        """The chart as an HTML image with its alt text (screen readers read it; ipywidgets' Image
        has no alt attribute)."""
        data = base64.b64encode(self.charts[name]).decode()
        return (f'<img class="hip-chart" alt="{html.escape(self.alt(name))}" src="data:image/png;base64,{data}" '
                'style="max-width: 100%; height: auto">')


_DPI = 96  # the dashboard shows its charts at screen size

def patient_panels(store, patient_id: str, *, as_of=None) -> Panels:
    """The dashboard's content for a patient, read fresh from the store.

    Parameters
    ----------
    store : Store
    patient_id : str
    as_of : date-like, optional
        Leave out data after this date (default: everything recorded).

    Returns
    -------
    Panels

    Raises
    ------
    ReportError
        When the patient is unknown.
    """
    p = patient_progress(store, patient_id, as_of=as_of)
    drawn: dict[str, bytes] = {}
    if len(p.measurements):
        drawn["rom"] = charts.png(charts.rom_progress(p.measurements, p.programs, p.sessions, patient_id,
                                                      patients=p.patient.to_frame().T, method=p.method,
                                                      as_of=p.as_of, trends=p.trends), dpi=_DPI)
    if len(p.programs):
        drawn["adherence"] = charts.png(charts.adherence_calendar(p.programs, p.sessions, patient_id, as_of=p.as_of),
                                        dpi=_DPI)
    if len(p.sessions):
        drawn["pain"] = charts.png(charts.pain_chart(p.sessions, p.programs, patient_id), dpi=_DPI)
    return Panels(p, drawn)


# ----------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------

from . import _ui  # noqa: E402 - widgets only after the plain functions they wire


class Dashboard(_ui.App):
    """Pick a patient; see the headline chart, the sessions done, pain and flags; record a visit.

    Parameters
    ----------
    store : Store
    today : date, optional
        Passed to the embedded visit form (default visit date).
    who : str, optional
        Recorded with entries made in the embedded form.
    watch_seconds : float, default 0
        When above 0, a background thread checks the store this often and redraws when anything
        was written (entries made in another window or app); :meth:`close` stops it.
    """

    def __init__(self, store, *, today: date | None = None, who: str | None = None, watch_seconds: float = 0):
        import ipywidgets as w

        from .entry import EntryForm

        super().__init__(store, "Patient dashboard", "Hip IR progress against breakout frequency; updates when a "
                                                     "visit is saved.")
        self._patient = self.patient_picker()
        self._patient.layout.margin = "0 0 0 12px"
        self.summary = w.HTML()
        self.rom = w.HTML(layout=w.Layout(max_width="900px"))
        self.adherence = w.HTML(layout=w.Layout(max_width="900px"))
        self.pain = w.HTML(layout=w.Layout(max_width="600px"))
        self.flags = w.HTML()
        self._empty = {name: w.HTML(f'<p class="hip-muted">{html.escape(text)}</p>') for name, text in EMPTY.items()}
        self.report_button = w.Button(description="Progress report", icon="file", button_style="primary",
                                      layout=w.Layout(width="auto"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="auto"),
                                       tooltip="Read the store again (e.g. after entries made in another window)")
        self.report_links = w.HTML()
        self.entry = EntryForm(store, today=today, who=who, patient_id=self._patient.value, title="Record a visit")
        self.entry._patient.layout.display = "none"  # the dashboard's picker chooses the patient
        visit = w.Accordion(children=[self.entry], titles=("Record a visit",))
        self.children = [
            self.header, self._patient,
            _ui.section("Summary", [self.summary]),
            _ui.section("Hip IR and breakout sessions", [self.rom, self._empty["rom"]]),
            _ui.section("Sessions done", [self.adherence, self._empty["adherence"]]),
            _ui.section("Pain before and after sessions", [self.pain, self._empty["pain"], self.flags]),
            w.HBox([self.report_button, self.refresh_button]), self.status, self.report_links,
            visit,
        ]
        self._patient.observe(self._patient_changed, "value")
        self.entry.on_saved(lambda table: self.refresh())
        self.report_button.on_click(self._report_clicked)
        self.refresh_button.on_click(lambda _button: self.refresh())
        self._lock = threading.Lock()
        self._seen: str | None = None
        self._stop = threading.Event()
        self.refresh()
        if watch_seconds > 0:
            threading.Thread(target=self._watch, args=(watch_seconds,), daemon=True,
                             name="hipanalytics-dashboard-watch").start()

    def check_for_changes(self) -> bool:
        """Redraw when the store was written since the last redraw; True when it was."""
        if self.store.fingerprint() == self._seen:
            return False
        self.refresh()
        return True

    def _watch(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.check_for_changes()
            except Exception as exc:  # noqa: BLE001 - say it on the page; keep watching
                self.status.value = _ui.problem_html(f"Could not re-read the store ({type(exc).__name__}): {exc}")

    def close(self) -> None:
        """Stop watching the store and close the widgets."""
        self._stop.set()
        super().close()

    @property
    def patient_id(self) -> str | None:
        """The patient shown."""
        return self._patient.value

    def _patient_changed(self, change=None) -> None:
        self.entry._patient.value = self.patient_id
        self.report_links.value = ""
        self.refresh()

    def refresh(self) -> None:
        """Read the patient's records again and redraw every panel."""
        with self._lock:  # the watch thread and a click may ask at once
            self._seen = self.store.fingerprint()
            self._redraw()

    def _redraw(self) -> None:
        if not self.patient_id:
            self.summary.value = self.programs_in_force_html(None)
            return
        panels = patient_panels(self.store, self.patient_id)
        p = panels.progress
        self.summary.value = p.header_html() + "".join(f"<p>{html.escape(t)}</p>" for t in p.summary_parts)
        for name in ("rom", "adherence", "pain"):
            image = getattr(self, name)
            image.value = panels.image_html(name) if name in panels.charts else ""
            image.layout.display = "block" if name in panels.charts else "none"
            self._empty[name].layout.display = "none" if name in panels.charts else "block"
        self.flags.value = p.flags_html()

    def _report_clicked(self, _button=None) -> None:
        from ..reports import render_patient

        if not self.patient_id:
            return
        with self.saving("Rendering the progress report (this takes a few seconds)"):
            with tempfile.TemporaryDirectory(prefix="hipanalytics-report-") as folder:
                paths = render_patient(self.store.url, self.patient_id, folder, formats=("html", "pdf"))
                base = safe_filename(f"progress-{self.patient_id}")
                links = ""
                for kind, mime in (("html", "text/html"), ("pdf", "application/pdf")):
                    data = base64.b64encode(Path(paths[kind]).read_bytes()).decode()
                    links += (f'<a class="hip-download" download="{html.escape(base)}.{kind}" '
                              f'href="data:{mime};base64,{data}">&#8681; Progress report ({kind.upper()})</a>')
            self.report_links.value = f'<div class="hip-downloads">{links}</div>'
            self.say_saved(f"Progress report for {self.patient_id} ready: use the links below.")
