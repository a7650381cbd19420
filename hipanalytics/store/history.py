"""Corrections, voids and schedule changes: new versions of records, the old ones kept.

Rows are never updated or deleted. A correction adds a version with a reason; a void adds a
version marked ``voided``; saving a program that starts while another runs ends the running one
the day before (a correction) in the same transaction.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from ..errors import StoreError
from ..records import ID_COLUMN, SOURCE_ROW, read_records, table_spec
from .imports import as_csv
from .schema import now, typed, user

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["HistoryMixin"]


class HistoryMixin:
    """The store's correction, void and program-saving methods (mixed into :class:`hipanalytics.store.Store`)."""

    def correct(self, table: str, record_id: str, changes: dict[str, Any], *, reason: str,
                who: str | None = None) -> int:
        """Record a corrected version of a record; the old version stays in the history.

        Parameters
        ----------
        table, record_id : str
            The table and the record's id (e.g. a measurement_id).
        changes : dict
            Column -> new value, validated with the same rules as an import.
        reason : str
            Why (required), kept with the new version and in the audit trail.

        Returns
        -------
        int
            The new version number.
        """
        return self._new_version(table, record_id, changes, reason=reason, who=who, status="active")

    def void(self, table: str, record_id: str, *, reason: str, who: str | None = None) -> int:
        """Mark a record void (e.g. entered for the wrong patient); it disappears from current reads."""
        return self._new_version(table, record_id, {}, reason=reason, who=who, status="voided")

    def _new_version(self, table, record_id, changes, *, reason, who, status) -> int:
        with self._writing() as conn:
            return self._new_version_in(conn, table, record_id, changes, reason=reason, who=who, status=status)

    def _new_version_in(self, conn, table, record_id, changes, *, reason, who, status) -> int:
        if not reason or not str(reason).strip():
            raise StoreError("a correction or void needs a reason")
        t = self._table(table)
        id_col = ID_COLUMN[table]
        if id_col in changes:
            raise StoreError(f"{id_col} cannot be corrected; void the record and import it under the right id")
        who = user(who)
        history = typed(table, pd.read_sql(sa.select(t).where(t.c[id_col] == record_id).order_by(t.c.version), conn))
        if history.empty:
            raise StoreError(f"no {table} record {record_id!r}")
        last = history.iloc[[-1]]
        if last["status"].iloc[0] == "voided":
            raise StoreError(f"{table} record {record_id!r} is void; it cannot be changed")
        unknown = set(changes) - {c.name for c in table_spec(table)}
        if unknown:
            raise StoreError(f"unknown column(s) for {table}: {', '.join(sorted(unknown))}")
        content = last[[c.name for c in table_spec(table)]].copy()
        for col, value in changes.items():
            content[col] = value
        checked = validate_row(table, content)
        version = int(last["version"].iloc[0]) + 1
        checked[SOURCE_ROW] = pd.NA
        self._insert(conn, table, checked, import_id=None, who=who, version=version,
                     supersedes=int(last["row_id"].iloc[0]), reason=reason, status=status)
        conn.execute(self.md.tables["audit"].insert().values(
            at=now(), who=who, action="void" if status == "voided" else "correct", table_name=table,
            record_id=record_id, reason=reason, details=json.dumps({k: str(v) for k, v in changes.items()})))
        return version


    def save_program(self, program: Program, *, who: str | None = None, today: date | None = None) -> list[str]:
        """Save a program; a program already in force for the patient is ended the day before.

        A schedule change is a new program from a date: the running program's ``end_date`` is
        corrected (a new version, so its prescription stays on record) and the new program is
        added, in one transaction. The new program's ``reason`` is required then, and is kept
        with both.

        Returns
        -------
        list of str
            The ids of the programs written: the ended one (if any), then the new one.

        Raises
        ------
        StoreError
            When a stored program of the patient starts on or after the new start date (void
            it first), or a change has no reason.
        DataValidationError
            When the program fails the import rules (e.g. an unknown patient).
        """
        from ..program import program_record

        record = program_record(program)
        who = user(who)
        with self._writing() as conn:
            current = self._current(conn, "programs", program.patient_id)
            current = current[current["program_id"] != program.program_id]
            start, end = pd.Timestamp(program.start_date), pd.Timestamp(program.end_date)
            overlapping = current[(current["start_date"] <= end) & (current["end_date"] >= start)]
            later = overlapping[overlapping["start_date"] >= start]
            if not later.empty:
                first = later.iloc[0]
                raise StoreError(
                    f"program {first['program_id']!r} of patient {program.patient_id!r} runs "
                    f"{first['start_date']:%Y-%m-%d} to {first['end_date']:%Y-%m-%d}, on or after the new start "
                    f"{program.start_date}; void it (with a reason) or start the new program later")
            if not overlapping.empty and not program.reason:
                raise StoreError("a schedule change needs a reason (kept with the new program and the old one's "
                                 "correction), e.g. 'pain after daily breakouts'")
            written = []
            for old in overlapping.itertuples():
                self._new_version_in(conn, "programs", old.program_id,
                                     {"end_date": program.start_date - timedelta(days=1)},
                                     reason=f"replaced by {program.program_id} from {program.start_date}: "
                                            f"{program.reason}", who=who, status="active")
                written.append(old.program_id)
            self._add_records_in(conn, "programs", [record], who=who, today=today,
                                 label=f"program {program.program_id}")
        return [*written, program.program_id]


    def discharge(self, patient_id: str, on: date, *, reason: str | None = None, notes: str | None = None,
                  who: str | None = None, today: date | None = None, gap_days: int | None = None) -> str:
        """Discharge a patient on ``on``: the episode of care that has started by then ends.

        The episode is the one :func:`~hipanalytics.analysis.episodes.episodes_of_care` finds from
        the stored programs and episodes; it is stored with its ``end_date`` (a new episodes
        record, or a new version of a stored one), and a program running past ``on`` is ended on
        that day (a correction), in one transaction. A program that starts later begins a new
        episode.

        Parameters
        ----------
        reason : str, optional
            Why the episode ended: one of the ``discharge_reason`` codes (``goals_met``,
            ``plateau``, ``patient_choice``, ``referred_on``, ``did_not_return``, ``other``) or
            their usual words.

        Returns
        -------
        str
            The id of the episode discharged.

        Raises
        ------
        StoreError
            When the patient has no episode that has started by ``on``, or it is already discharged.
        """
        from ..analysis.episodes import EPISODE_GAP_DAYS, episodes_of_care, program_episodes

        gap = EPISODE_GAP_DAYS if gap_days is None else gap_days
        who = user(who)
        day = pd.Timestamp(on)
        with self._writing() as conn:
            programs = self._current(conn, "programs", patient_id)
            stored = self._current(conn, "episodes", patient_id)
            episodes = episodes_of_care(programs, stored, gap_days=gap, as_of=day)
            started = episodes[episodes["start_date"] <= day]
            if started.empty:
                raise StoreError(f"patient {patient_id!r} has no episode of care that has started by {day:%Y-%m-%d}: "
                                 "nothing to discharge (prescribe a program first, or check the date)")
            episode = started.iloc[-1]
            if pd.notna(episode["end_date"]):
                raise StoreError(f"episode {episode['episode_id']!r} of patient {patient_id!r} was discharged on "
                                 f"{episode['end_date']:%Y-%m-%d} already")
            why = f"discharged on {day:%Y-%m-%d}" + (f" ({reason})" if reason else "")
            if episode["stored"]:
                changes = {"end_date": day.date(), **({"discharge_reason": reason} if reason else {}),
                           **({"notes": notes} if notes else {})}
                self._new_version_in(conn, "episodes", episode["episode_id"], changes, reason=why, who=who,
                                     status="active")
            else:
                record = {"episode_id": episode["episode_id"], "patient_id": patient_id,
                          "start_date": episode["start_date"].date(), "end_date": day.date(),
                          "discharge_reason": reason, "notes": notes}
                self._add_records_in(conn, "episodes", [record], who=who, today=today,
                                     label=f"discharge of {patient_id}")
            members = program_episodes(programs, stored, gap_days=gap)
            running = members[(members["episode_id"] == episode["episode_id"]) & (members["end_date"] > day)
                              & (members["start_date"] <= day)]
            for program in running.itertuples():
                self._new_version_in(conn, "programs", program.program_id, {"end_date": day.date()},
                                     reason=f"ended by the discharge on {day:%Y-%m-%d}", who=who, status="active")
        return str(episode["episode_id"])


def validate_row(table: str, content: pd.DataFrame) -> pd.DataFrame:
    """Validate corrected values with the import rules; raise DataValidationError on errors."""
    result = read_records(as_csv(content, "<correction>"), table)
    result.raise_for_errors()
    return result.data

