"""Data entry: ROM measurements and session logs typed in at the visit, saved to the store.

Entries pass through exactly the rules of a file import (:meth:`Store.add_records`), so a value
refused in a spreadsheet is refused in the form, with the same message. The plain functions
build the rows from the form's values (:func:`measurement_rows`, :func:`session_row`) and list
what was saved (:func:`recent_entries`); :class:`EntryForm` wires them to widgets.

Examples
--------
>>> from datetime import date
>>> rows = measurement_rows({"patient_id": "P001", "measured_on": date(2026, 1, 5), "side": "right",
...                          "position": "seated_90", "mode": "active", "instrument": "inclinometer",
...                          "trials": ["31", "", "32,5"]})
>>> [(r["trial"], r["degrees"]) for r in rows]
[(1, '31'), (3, '32,5')]

Both hips at one visit, saved together:

>>> rows = measurement_rows({"patient_id": "P001", "measured_on": date(2026, 1, 5), "position": "seated_90",
...                          "mode": "active", "instrument": "inclinometer",
...                          "trials": {"left": ["38", "39", ""], "right": ["31", "", ""]}})
>>> [(r["side"], r["trial"], r["degrees"]) for r in rows]
[('left', 1, '38'), ('left', 2, '39'), ('right', 1, '31')]
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd

from ..analysis.rom import PRIMARY_METHOD
from ..errors import EntryError
from ..records import table_spec

__all__ = ["measurement_rows", "saved_message", "session_row", "recent_entries", "next_morning_sessions", "pain_check", "pain_check_html",
           "allowed_values", "POSITION_LABELS", "EntryForm"]


def allowed_values(table: str, column: str) -> tuple[str, ...]:
    """The values a coded column accepts (from the data dictionary).

    Examples
    --------
    >>> allowed_values("measurements", "mode")
    ('active', 'passive')
    """
    return next(c.allowed for c in table_spec(table) if c.name == column)


POSITION_LABELS = {"seated_90": "seated, hip and knee at 90 degrees", "supine_90": "supine, hip and knee at 90 degrees",
                   "prone": "prone, hip neutral, knee at 90 degrees"}
"""How the form names the test positions (the stored values stay the data dictionary's)."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


MEASUREMENT_LABELS = {"patient_id": "Patient", "measured_on": "Visit date", "side": "Side", "position": "Position",
                      "mode": "Mode", "instrument": "Instrument", "degrees": "Trial", "trial": "Trial",
                      "assessor": "Assessor", "notes": "Notes", "measurement_id": "This visit"}
"""The measurement form's field labels, by column: problems are shown with the labels the form uses."""

SESSION_LABELS = {"patient_id": "Patient", "performed_on": "Date", "performed_at": "Time (HH:MM)", "session": "Session",
                  "completion": "Completion", "rounds_done": "Rounds done", "pain_before": "Pain before",
                  "pain_after": "Pain after", "pain_next_day": "Pain next morning", "notes": "Notes",
                  "session_id": "This session"}
"""The session form's field labels, by column."""


def measurement_rows(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One measurements row per trial typed in, of one hip or both; a blank trial box is not a
    measurement.

    Parameters
    ----------
    values : mapping
        ``patient_id``, ``measured_on``, ``position``, ``mode``, ``instrument``, ``trials``: the
        trial boxes in order (text or numbers; blanks skipped, the others keep their box number
        as ``trial``), either of the hip named by ``side``, or a mapping side -> trial boxes for
        several hips at one visit (rows in the mapping's order); optional ``motion`` (default
        internal rotation), ``assessor``, ``notes``.

    Returns
    -------
    list of dict
        Rows for :meth:`Store.add_records`; the values are passed on as typed, so the import
        rules normalise (``32,5``) or refuse (``132``) them with their usual messages.

    Raises
    ------
    EntryError
        When no trial was typed in.
    """
    boxes = values.get("trials") or ()
    by_side = boxes if isinstance(boxes, Mapping) else {values.get("side"): boxes}
    typed = [(side, n, _text(v)) for side, trials in by_side.items() for n, v in enumerate(trials or (), start=1)
             if _text(v)]
    if not typed:
        raise EntryError("type the degrees of at least one trial")
    common = {
        "patient_id": values.get("patient_id"), "measured_on": values.get("measured_on"),
        "joint": "hip", "motion": values.get("motion") or "internal_rotation",
        "position": values.get("position"), "mode": values.get("mode"), "instrument": values.get("instrument"),
        "assessor": _text(values.get("assessor")) or None, "notes": _text(values.get("notes")) or None,
    }
    return [common | {"side": side, "degrees": v, "trial": n} for side, n, v in typed]


def saved_message(saved: pd.DataFrame) -> str:
    """What the measurement form says after a save: the trials of each hip, in degrees.

    Parameters
    ----------
    saved : DataFrame
        The rows saved (``Store.add_records``' result): ``side``, ``degrees``.

    Returns
    -------
    str

    Examples
    --------
    >>> saved_message(pd.DataFrame({"side": ["right"], "degrees": [31.0]}))
    'Saved trial of right hip IR: 31 degrees.'
    >>> saved_message(pd.DataFrame({"side": ["left", "left", "right"], "degrees": [38.0, 39.5, 31.0]}))
    'Saved 3 trials of hip IR: left 38, 39.5 degrees; right 31 degrees.'
    """
    trials = "trial" if len(saved) == 1 else f"{len(saved)} trials"
    sides = {side: ", ".join(f"{d:g}" for d in group["degrees"]) for side, group in saved.groupby("side", sort=False)}
    if len(sides) == 1:
        (side, values), = sides.items()
        return f"Saved {trials} of {side} hip IR: {values} degrees."
    return f"Saved {trials} of hip IR: " + "; ".join(f"{side} {values} degrees" for side, values in sides.items()) + "."


def session_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A sessions row from the session-log form (blank numbers stay empty, not zero).

    Examples
    --------
    >>> from datetime import date
    >>> row = session_row({"patient_id": "P001", "performed_on": date(2026, 1, 5), "performed_at": "08:10",
    ...                    "session": "breakouts", "completion": "full", "rounds_done": "3",
    ...                    "pain_before": "2", "pain_after": ""})
    >>> row["rounds_done"], row["pain_after"]
    ('3', None)
    """
    row = {k: values.get(k) for k in ("patient_id", "performed_on", "session", "completion")}
    for k in ("performed_at", "rounds_done", "pain_before", "pain_after", "pain_next_day", "notes"):
        row[k] = _text(values.get(k)) or None
    return row


def next_morning_sessions(sessions: pd.DataFrame, *, today: date, titles: Mapping[str, str] | None = None,
                          n: int = 14) -> pd.DataFrame:
    """The logged sessions a next-morning pain score can be added to: those without one, done
    before ``today`` (the morning after has come), newest first.

    Patients report the morning after a session at their next contact, so the score is added to
    a session already stored (a correction, see :meth:`EntryForm`), most often yesterday's.

    Parameters
    ----------
    sessions : DataFrame
        One patient's current sessions (``Store.read("sessions", patient_id=...)``).
    today : date
    titles : mapping, optional
        Session template id -> title, for the labels (default: the ids).
    n : int
        At most this many.

    Returns
    -------
    DataFrame
        ``session_id``, ``performed_on``, ``label`` (date, session, pain before and after).

    Examples
    --------
    >>> s = pd.DataFrame({"session_id": ["a", "b", "c"], "session": "breakouts",
    ...                   "performed_on": pd.to_datetime(["2026-11-21", "2026-11-22", "2026-11-23"]),
    ...                   "performed_at": ["08:00", "08:00", "08:00"], "pain_before": [2, 3, 2],
    ...                   "pain_after": [3, 8, None], "pain_next_day": [2, None, None]})
    >>> next_morning_sessions(s, today=date(2026, 11, 23))["label"].tolist()
    ['Sun 22 Nov 2026 08:00, breakouts, pain 3 -> 8']
    """
    columns = ["session_id", "performed_on", "label"]
    if sessions.empty:
        return pd.DataFrame(columns=columns)
    day = pd.to_datetime(sessions["performed_on"])
    waiting = sessions[sessions["pain_next_day"].isna() & (day < pd.Timestamp(today))]
    waiting = waiting.assign(_day=pd.to_datetime(waiting["performed_on"]),
                             _at=waiting["performed_at"].fillna("")).sort_values(["_day", "_at"], ascending=False).head(n)
    named = waiting["session"].map(lambda s: (titles or {}).get(s, s))
    pain = (waiting["pain_before"].astype("Int64").astype("string").fillna("-") + " -> "
            + waiting["pain_after"].astype("Int64").astype("string").fillna("-"))
    at = waiting["_at"].where(waiting["_at"] == "", " " + waiting["_at"])
    label = waiting["_day"].dt.strftime("%a %d %b %Y") + at + ", " + named + ", pain " + pain
    return pd.DataFrame({"session_id": waiting["session_id"], "performed_on": waiting["_day"],
                         "label": label}).reset_index(drop=True)


def pain_check(sessions: pd.DataFrame, programs: pd.DataFrame, episodes: pd.DataFrame | None = None) -> pd.Series | None:
    """One patient's pain tolerance now, from their stored sessions, programs and episodes.

    The tolerance model of the reports (:func:`hipanalytics.analysis.tolerance.tolerance_flags`)
    run on the patient's records as they are after a save, so a session that raises a flag shows
    it at once.

    Parameters
    ----------
    sessions, programs, episodes : DataFrame
        The patient's current records (``Store.read(table, patient_id=...)``).

    Returns
    -------
    Series or None
        The patient's row of :func:`~hipanalytics.analysis.tolerance.tolerance_flags`
        (``status``: flag | ok | too few, ``message``: a sentence to show, ...), or None when no
        session of the patient has a pain score.

    Examples
    --------
    >>> s = pd.DataFrame({"patient_id": ["P1"], "performed_on": pd.to_datetime(["2026-01-05"]),
    ...                   "session": ["breakouts"], "pain_before": [3], "pain_after": [8]})
    >>> p = pd.DataFrame({"program_id": ["A"], "patient_id": ["P1"], "protocol_id": ["hip-ir-breakouts"],
    ...                   "protocol_version": ["1.0.0"], "schedule": ["daily"],
    ...                   "start_date": pd.to_datetime(["2026-01-05"]), "end_date": pd.to_datetime(["2026-02-01"])})
    >>> pain_check(s, p)["status"]
    'flag'
    """
    from ..analysis.tolerance import tolerance_flags

    if sessions.empty:
        return None
    flags = tolerance_flags(sessions, programs, episodes=episodes)
    return None if flags.empty else flags.iloc[0]


def pain_check_html(check: pd.Series | None) -> str:
    """The pain check as the entry form shows it after a save (escaped): a flag as an alert box
    (``role="alert"``, read out by screen readers at once), anything else as a quiet line.

    Parameters
    ----------
    check : Series or None
        From :func:`pain_check`: its ``status`` and ``message``.

    Returns
    -------
    str
        HTML, "" for no check.

    Examples
    --------
    >>> pain_check_html(pd.Series({"status": "flag", "message": "Pain flag on daily breakouts: a <rise>."}))
    '<div class="hip-flag" role="alert"><strong>Pain check:</strong> Pain flag on daily breakouts: a &lt;rise&gt;.</div>'
    >>> pain_check_html(pd.Series({"status": "too few", "message": "Too few sessions."}))
    '<p class="hip-muted" role="status">Pain check: Too few sessions.</p>'
    >>> pain_check_html(None)
    ''
    """
    if check is None:
        return ""
    if check["status"] == "flag":
        return f'<div class="hip-flag" role="alert"><strong>Pain check:</strong> {html.escape(check["message"])}</div>'
    return f'<p class="hip-muted" role="status">Pain check: {html.escape(check["message"])}</p>'


def recent_entries(measurements: pd.DataFrame, sessions: pd.DataFrame, *, n: int = 10) -> pd.DataFrame:
    """The latest saved records of a patient, newest first, from ``Store.read(..., history=True)``.

    Returns
    -------
    DataFrame
        ``table``, ``id``, ``date``, ``what``, ``recorded_at``, ``recorded_by``, ``version``:
        current versions only (voided records left out), ordered by when they were recorded.
    """
    frames = []
    for table, frame, id_col, date_col in (("measurements", measurements, "measurement_id", "measured_on"),
                                           ("sessions", sessions, "session_id", "performed_on")):
        if frame.empty:
            continue
        latest = frame.sort_values("version").groupby(id_col).tail(1)
        latest = latest[latest["status"] == "active"]
        if latest.empty:
            continue
        if table == "measurements":
            what = (latest["side"] + " IR " + latest["degrees"].map("{:g}".format) + " deg, trial "
                    + latest["trial"].astype(str) + " (" + latest["position"] + ", " + latest["mode"] + ", "
                    + latest["instrument"] + ")")
        else:
            pain = latest["pain_before"].astype("string").fillna("-") + " -> " + \
                latest["pain_after"].astype("string").fillna("-")
            if "pain_next_day" in latest:
                pain = pain + (", next morning " + latest["pain_next_day"].astype("string")).fillna("")
            what = (latest["session"] + ", " + latest["completion"] + ", rounds "
                    + latest["rounds_done"].astype("string").fillna("-") + ", pain " + pain)
        frames.append(pd.DataFrame({
            "table": table, "id": latest[id_col], "date": pd.to_datetime(latest[date_col]).dt.strftime("%Y-%m-%d"),
            "what": what, "recorded_at": latest["recorded_at"], "recorded_by": latest["recorded_by"],
            "version": latest["version"], "_order": latest["row_id"],
        }))
    columns = ["table", "id", "date", "what", "recorded_at", "recorded_by", "version"]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True).sort_values(["recorded_at", "_order"], ascending=False)
    return out[columns].head(n).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------

from . import _ui  # noqa: E402 - widgets only after the plain functions they wire


class EntryForm(_ui.App):
    """Forms for a visit's ROM measurements (both hips, 1-3 trials each, saved together) and a
    session log, recent entries, corrections and voids.

    Parameters
    ----------
    store : Store
    today : date, optional
        Default visit date and reference for "date in the future" (default: today).
    who : str, optional
        Recorded with each entry (default: the login name); the form lets it be changed.
    patient_id : str, optional
        Patient selected at start.

    Notes
    -----
    The session log takes the pain the next morning when it is known; for a session logged
    before, :func:`next_morning_sessions` lists those waiting for it and the score is added as a
    correction (with the date as its reason). A failed save keeps every field as typed and lists the problems under the form. After a
    successful save the trial boxes (or pain and notes) are cleared, so the next entry starts
    fresh, and the callbacks registered with :meth:`on_saved` run. After a session is saved,
    corrected or voided, the patient's pain tolerance is checked again with the reports' model: a
    pain flag shows as an alert under the saved message, anything else as a quiet line.
    """

    def __init__(self, store, *, today: date | None = None, who: str | None = None,
                 patient_id: str | None = None, title: str = "Record a visit"):
        import ipywidgets as w

        super().__init__(store, title, "ROM measurements and session logs, checked with the same rules as a file "
                                       "import.")
        self.today = today or date.today()
        self._callbacks: list = []
        self._patient = self.patient_picker()
        if patient_id is not None:
            self._patient.value = patient_id
        self._who = w.Text(description="Entered by", value=who or _ui.login_name(), layout=w.Layout(width="300px"))
        wide = {"description_width": "110px"}

        # measurement form
        self.m_date = w.DatePicker(description="Visit date", value=self.today, style=wide)
        self.m_position = w.Dropdown(description="Position", options=[
            (POSITION_LABELS.get(p, p), p) for p in allowed_values("measurements", "position")],
            value=PRIMARY_METHOD["position"], style=wide, layout=w.Layout(width="420px"))
        self.m_mode = w.ToggleButtons(options=list(allowed_values("measurements", "mode")),
                                      style={"button_width": "80px"})
        self.m_instrument = w.Dropdown(description="Instrument", style=wide,
                                       options=list(allowed_values("measurements", "instrument")),
                                       value=PRIMARY_METHOD["instrument"])
        # both hips at one visit: a row of trial boxes per side (degrees), saved together
        self.m_trials = {side: [w.Text(description=f"trial {n}", placeholder="e.g. 32.5",
                                       style={"description_width": "44px"}, layout=w.Layout(width="170px"))
                                for n in (1, 2, 3)] for side in allowed_values("measurements", "side")}
        for side, boxes in self.m_trials.items():
            for n, box in enumerate(boxes, start=1):
                box.add_class(f"hip-trial-{side}-{n}")
        self.m_side_labels = {side: w.HTML(layout=w.Layout(width="114px", margin="0 8px 0 0"))
                              for side in self.m_trials}
        trial_rows = [w.HBox([self.m_side_labels[side], *boxes], layout=w.Layout(align_items="center"))
                      for side, boxes in self.m_trials.items()]
        self.m_assessor = w.Text(description="Assessor", style=wide, layout=w.Layout(width="300px"))
        self.m_notes = w.Textarea(description="Notes", style=wide, layout=w.Layout(width="520px", height="48px"))
        self.m_save = w.Button(description="Save measurement", button_style="primary", icon="save",
                               layout=_ui.BUTTON_BELOW_FORM)
        measurement = w.VBox([self.m_date, self.m_position, _ui.labelled("Mode", self.m_mode), self.m_instrument,
                              w.HTML('<p class="hip-muted">Hip IR in degrees, 1-3 trials of each hip measured '
                                     "(leave the other hip blank if not measured):</p>"),
                              *trial_rows, self.m_assessor, self.m_notes, self.m_save])

        # session form
        templates = self._templates()
        self.s_date = w.DatePicker(description="Date", value=self.today, style=wide)
        self.s_time = w.Text(description="Time (HH:MM)", value=datetime.now().strftime("%H:%M"), style=wide,
                             layout=w.Layout(width="220px"))
        self.s_session = w.Dropdown(description="Session", options=templates, style=wide, layout=w.Layout(width="460px"))
        self.s_completion = w.ToggleButtons(style={"button_width": "80px"},
                                            options=list(allowed_values("sessions", "completion")))
        self.s_rounds = w.Text(description="Rounds done", placeholder="0-3", style=wide, layout=w.Layout(width="220px"))
        self.s_pain_before = w.Text(description="Pain before", placeholder="0-10", style=wide,
                                    layout=w.Layout(width="220px"))
        self.s_pain_after = w.Text(description="Pain after", placeholder="0-10", style=wide,
                                   layout=w.Layout(width="220px"))
        self.s_pain_next = w.Text(description="Pain next morning", placeholder="0-10, if known",
                                  style={"description_width": "130px"}, layout=w.Layout(width="250px"))
        self.s_notes = w.Textarea(description="Notes", style=wide, layout=w.Layout(width="520px", height="48px"))
        self.s_save = w.Button(description="Save session", button_style="primary", icon="save",
                               layout=_ui.BUTTON_BELOW_FORM)
        # the next-morning pain of a session logged before (the patient reports it the next day)
        self.n_session = w.Dropdown(description="Session", style=wide, layout=w.Layout(width="520px"))
        self.n_pain = w.Text(description="Pain next morning", placeholder="0-10", style={"description_width": "130px"},
                             layout=w.Layout(width="250px"))
        self.n_save = w.Button(description="Add next-morning pain", button_style="primary", icon="plus",
                               layout=_ui.BUTTON_BELOW_FORM)
        next_morning = _ui.section("Pain the next morning, for a session logged before", [
            w.HTML('<p class="hip-muted">Sessions without it, newest first; added as a correction with the date, '
                   "kept in the history.</p>"), self.n_session, self.n_pain, self.n_save])
        session = w.VBox([self.s_date, self.s_time, self.s_session, _ui.labelled("Completion", self.s_completion),
                          self.s_rounds, w.HBox([self.s_pain_before, self.s_pain_after, self.s_pain_next]),
                          self.s_notes, self.s_save, next_morning])

        # corrections and voids
        self.c_record = w.Dropdown(description="Record", style=wide, layout=w.Layout(width="640px"))
        self.c_action = w.ToggleButtons(options=["correct", "void"])
        self.c_field = w.Dropdown(description="Field", style=wide)
        self.c_value = w.Text(description="New value", style=wide)
        self.c_reason = w.Text(description="Reason", placeholder="required, e.g. typed 23 for 32", style=wide,
                               layout=w.Layout(width="520px"))
        self.c_apply = w.Button(description="Apply", button_style="warning", icon="pencil",
                                layout=_ui.BUTTON_BELOW_FORM)
        correction = w.VBox([self.c_record, _ui.labelled("Action", self.c_action), self.c_field, self.c_value,
                             self.c_reason, self.c_apply])

        self.tabs = w.Tab(children=[measurement, session, correction])
        for i, title in enumerate(["ROM measurement", "Session log", "Correct or void"]):
            self.tabs.set_title(i, title)
        self.recent = w.HTML()
        self.children = [self.header, w.HBox([self._patient, self._who]), self.tabs, self.status,
                         _ui.section("Recent entries for this patient", [self.recent])]

        self._patient.observe(self._patient_changed, "value")
        self.c_record.observe(self._record_changed, "value")
        self.c_action.observe(self._record_changed, "value")
        self.m_save.on_click(self._save_measurement)
        self.s_save.on_click(self._save_session)
        self.n_save.on_click(self._add_next_morning)
        self.c_apply.on_click(self._apply_correction)
        self._patient_changed()

    @staticmethod
    def _templates() -> list[tuple[str, str]]:
        """Session templates of every protocol, as (title, id) options."""
        from ..protocol import list_protocols, load_protocol

        options: dict[str, str] = {}
        for ref in list_protocols().itertuples():
            for s in load_protocol(f"{ref.id}@{ref.version}").sessions:
                options.setdefault(s.id, s.title)
        return [(title, sid) for sid, title in options.items()]

    @property
    def patient_id(self) -> str | None:
        """The patient selected."""
        return self._patient.value

    def pain_check(self) -> pd.Series | None:
        """The selected patient's pain tolerance from their stored records (see :func:`pain_check`)."""
        read = {t: self.store.read(t, patient_id=self.patient_id) for t in ("sessions", "programs", "episodes")}
        return pain_check(read["sessions"], read["programs"], read["episodes"])

    def on_saved(self, callback) -> None:
        """Call ``callback(table)`` after every successful save, correction or void."""
        self._callbacks.append(callback)

    # -- handlers -----------------------------------------------------------------------------

    def _patient_changed(self, change=None) -> None:
        patient = self.patients().set_index("patient_id")
        involved = patient.loc[self.patient_id, "involved_side"] if self.patient_id in patient.index else None
        for side, label in self.m_side_labels.items():
            marked = '<br><span class="hip-muted">(involved)</span>' if involved in (side, "both") else ""
            label.value = f'<div style="text-align: right; line-height: 1.2">{side.capitalize()} hip{marked}</div>'
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        if not self.patient_id:
            self.recent.value = _ui.table_html(pd.DataFrame(), empty="No patient selected.")
            self.c_record.options = self.n_session.options = []
            self.n_save.disabled = True
            return
        entries = recent_entries(self.store.read("measurements", history=True, patient_id=self.patient_id),
                                 self.store.read("sessions", history=True, patient_id=self.patient_id), n=15)
        shown = (entries.drop(columns="id").assign(recorded_at=entries["recorded_at"].str[:16].str.replace("T", " "))
                 .rename(columns={"table": "record", "recorded_at": "recorded (UTC)", "recorded_by": "by"}))
        self.recent.value = _ui.table_html(shown, empty="Nothing recorded for this patient yet.")
        self.c_record.options = [(f"{e.date} {e.what}", (e.table, e.id)) for e in entries.itertuples()]
        self._record_changed()
        waiting = next_morning_sessions(self.store.read("sessions", patient_id=self.patient_id), today=self.today,
                                        titles={sid: title for title, sid in self.s_session.options})
        self.n_session.options = list(zip(waiting["label"], waiting["session_id"]))
        self.n_session.value = waiting["session_id"].iloc[0] if len(waiting) else None  # the latest: yesterday's
        self.n_save.disabled = waiting.empty

    def _record_changed(self, change=None) -> None:
        record = self.c_record.value
        editable = []
        if record:
            table, _ = record
            id_col = {"measurements": "measurement_id", "sessions": "session_id"}[table]
            editable = [c.name for c in table_spec(table) if c.name not in (id_col, "patient_id")]
        self.c_field.options = editable
        for control in (self.c_field, self.c_value):
            control.layout.display = "flex" if self.c_action.value == "correct" else "none"

    def _saved(self, table: str, message: str) -> None:
        self.say_saved(message)
        if table == "sessions":  # a session saved, corrected or voided: does the patient's pain flag now?
            try:
                check = pain_check_html(self.pain_check())
            except Exception as exc:  # noqa: BLE001 - the save is done: never let a failed check say "Not saved"
                check = _ui.warning_html(f"The pain check could not run ({type(exc).__name__}: {exc}); the dashboard "
                                         "and the progress report show the pain scores.")
            self.status.value += check
        self._refresh_recent()
        for callback in self._callbacks:
            callback(table)

    def _save_measurement(self, _button=None) -> None:
        rows: list[dict] = []

        def label(row, column: str) -> str:  # entry row 2 is the first trial typed in: named as the form does
            if column in ("degrees", "trial") and pd.notna(row) and 2 <= int(row) < 2 + len(rows):
                typed = rows[int(row) - 2]
                return f"{typed['side'].capitalize()} hip, trial {typed['trial']}"
            return MEASUREMENT_LABELS.get(column, column)

        with self.saving("Saving the measurement", label):
            rows += measurement_rows({
                "patient_id": self.patient_id, "measured_on": self.m_date.value,
                "position": self.m_position.value, "mode": self.m_mode.value, "instrument": self.m_instrument.value,
                "trials": {side: [box.value for box in boxes] for side, boxes in self.m_trials.items()},
                "assessor": self.m_assessor.value, "notes": self.m_notes.value})
            saved = self.store.add_records("measurements", rows, who=self._who.value.strip() or None,
                                           today=self.today, label="measurement form")  # both hips: one transaction
            for boxes in self.m_trials.values():
                for box in boxes:
                    box.value = ""
            self.m_notes.value = ""
            self._saved("measurements", saved_message(saved))

    def _save_session(self, _button=None) -> None:
        with self.saving("Saving the session", lambda row, column: SESSION_LABELS.get(column, column)):
            row = session_row({
                "patient_id": self.patient_id, "performed_on": self.s_date.value, "performed_at": self.s_time.value,
                "session": self.s_session.value, "completion": self.s_completion.value,
                "rounds_done": self.s_rounds.value, "pain_before": self.s_pain_before.value,
                "pain_after": self.s_pain_after.value, "pain_next_day": self.s_pain_next.value,
                "notes": self.s_notes.value})
            self.store.add_records("sessions", [row], who=self._who.value.strip() or None, today=self.today,
                                   label="session form")
            for box in (self.s_rounds, self.s_pain_before, self.s_pain_after, self.s_pain_next, self.s_notes):
                box.value = ""
            self._saved("sessions", f"Saved the {self.s_session.label} session of {self.s_date.value}.")

    def _add_next_morning(self, _button=None) -> None:
        with self.saving("Adding the next-morning pain", lambda row, column: SESSION_LABELS.get(column, column)):
            if not self.n_session.value:
                raise EntryError("choose the session the next-morning pain belongs to")
            score = _text(self.n_pain.value)
            if not score:
                raise EntryError("type the pain score of the next morning (0-10)")
            what = self.n_session.label
            version = self.store.correct("sessions", self.n_session.value, {"pain_next_day": score},
                                         reason=f"next-morning pain added on {self.today:%Y-%m-%d} (entry form)",
                                         who=self._who.value.strip() or None)
            self.n_pain.value = ""
            self._saved("sessions", f"Added next-morning pain {score} to {what} (a correction: version {version}).")

    def _apply_correction(self, _button=None) -> None:
        if not self.c_record.value:
            self.status.value = _ui.problem_html("Choose a record to correct or void.")
            return
        table, record_id = self.c_record.value
        what = self.c_record.label
        with self.saving("Saving the change"):
            who = self._who.value.strip() or None
            if self.c_action.value == "void":
                self.store.void(table, record_id, reason=self.c_reason.value, who=who)
                message = f"Voided {what}; it stays in the history with your reason."
            else:
                version = self.store.correct(table, record_id, {self.c_field.value: self.c_value.value},
                                             reason=self.c_reason.value, who=who)
                message = f"Corrected {self.c_field.value} of {what} (now version {version})."
            self.c_reason.value = self.c_value.value = ""
            self._saved(table, message)
