"""The store: transactional imports, quarantine, re-imports, corrections, voids, audit, concurrency."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hipanalytics.errors import DataValidationError, StoreError
from hipanalytics.store import Store

from .stores import location  # noqa: F401 - a fixture

TODAY = date(2026, 11, 1)
KEY = hashlib.sha256(b"hipanalytics test key").hexdigest().encode()  # 64 hex digits: 256 bits
PATIENTS = "patient_id,birth_year,sex,involved_side\nP001,1970,female,right\nP002,1985,male,left\n"
M_HEADER = "patient_id,measured_on,side,joint,motion,position,mode,instrument,degrees,trial"


def m_row(patient="P001", day="2026-01-05", side="right", degrees="30", trial="1"):
    return f"{patient},{day},{side},hip,internal_rotation,seated_90,active,inclinometer,{degrees},{trial}"


def write(path: Path, *rows: str, header: str = M_HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path




@pytest.fixture
def store(location, tmp_path):
    s = Store(location)
    s.import_file(write(tmp_path / "patients.csv", *PATIENTS.splitlines()[1:], header=PATIENTS.splitlines()[0]),
                  "patients", today=TODAY)
    yield s
    s.close()


def counts(store: Store) -> dict:
    return {t: len(store.read(t, history=True)) for t in ("patients", "measurements")} | {
        "imports": len(store.imports()), "audit": len(store.audit())}


def test_strict_import_of_a_file_with_one_bad_row_imports_nothing(store, tmp_path):
    before = counts(store)
    path = write(tmp_path / "m.csv", m_row(), m_row(degrees="300", trial="2"))
    with pytest.raises(DataValidationError) as info:
        store.import_file(path, "measurements", today=TODAY)
    assert info.value.report.rows_with("error") == {3}
    assert counts(store) == before


def test_quarantine_imports_good_rows_and_writes_bad_rows_unchanged_with_reasons(store, tmp_path):
    path = write(tmp_path / "m.csv", m_row(), m_row(degrees="3O", trial="2"), m_row(patient="P404", trial="3"),
                 m_row())
    summary = store.import_file(path, "measurements", mode="quarantine", quarantine_dir=tmp_path / "q", today=TODAY)
    assert (summary.rows_read, summary.imported, summary.quarantined, summary.duplicates) == (4, 1, 2, 1)
    assert summary.rows_read == summary.imported + summary.quarantined + summary.duplicates
    bad = pd.read_csv(summary.quarantine_file, dtype=str)
    assert bad["source_row"].tolist() == ["3", "4"]
    assert bad["degrees"].tolist() == ["3O", "30"]  # as written in the file
    assert "degrees: not a number of degrees" in bad["problems"].iloc[0]
    assert "patient_id: unknown patient" in bad["problems"].iloc[1]
    assert len(store.read("measurements")) == 1


def test_allocations_are_stored_read_back_and_every_row_of_their_file_is_accounted_for(store, tmp_path):
    path = write(tmp_path / "allocated.csv", "P101,1970,right,trial-A,daily,2026-01-05",
                 "P102,1971,left,,three per week,", "P103,1972,left,,,2026-01-05", "P104,1973,left,,weekly,",
                 "", "P101,1970,right,trial-A,daily,2026-01-05",
                 header="patient_id,birth_year,involved_side,cohort,allocation,allocated_on")
    summary = store.import_file(path, "patients", mode="quarantine", quarantine_dir=tmp_path / "q", today=TODAY)
    assert (summary.rows_read, summary.imported, summary.quarantined, summary.duplicates, summary.skipped) == (6, 2, 2, 1, 1)
    assert summary.rows_read == summary.imported + summary.quarantined + summary.duplicates + summary.skipped
    bad = pd.read_csv(summary.quarantine_file, dtype=str, keep_default_na=False)
    assert bad["source_row"].tolist() == ["4", "5"] and bad["allocation"].tolist() == ["", "weekly"]
    assert "allocated_on: allocation date without an allocation" in bad["problems"].iloc[0]
    assert "allocation: unknown allocation 'weekly'" in bad["problems"].iloc[1]
    stored = store.read("patients").set_index("patient_id")
    assert stored.loc[["P101", "P102"], "allocation"].tolist() == ["daily", "three-per-week"]
    assert stored.loc["P101", "allocated_on"] == pd.Timestamp("2026-01-05") and pd.isna(stored.loc["P102", "allocated_on"])
    assert stored.loc[["P001", "P002"], "allocation"].isna().all()  # imported without the columns: no allocation


def test_reimporting_the_same_file_adds_nothing(store, tmp_path):
    path = write(tmp_path / "m.csv", m_row(), m_row(trial="2", degrees="31"))
    first = store.import_file(path, "measurements", today=TODAY)
    again = store.import_file(path, "measurements", today=TODAY)
    assert first.imported == 2
    assert again.already_imported and again.imported == 0 and again.duplicates == 2
    assert len(store.read("measurements", history=True)) == 2


def test_a_later_export_with_old_and_new_rows_imports_only_the_new_ones(store, tmp_path):
    store.import_file(write(tmp_path / "week1.csv", m_row()), "measurements", today=TODAY)
    summary = store.import_file(write(tmp_path / "week2.csv", m_row(), m_row(day="2026-01-12", degrees="33")),
                                "measurements", today=TODAY)
    assert (summary.imported, summary.duplicates) == (1, 1)
    assert len(store.read("measurements")) == 2


def test_a_row_that_contradicts_the_stored_record_is_refused(store, tmp_path):
    store.import_file(write(tmp_path / "a.csv", m_row()), "measurements", today=TODAY)
    with pytest.raises(DataValidationError) as info:
        store.import_file(write(tmp_path / "b.csv", m_row(degrees="35")), "measurements", today=TODAY)
    errors = info.value.report.errors
    assert errors["rule"].iloc[0].endswith("is already stored with different values")
    assert "use a correction" in errors["fix"].iloc[0]
    assert store.read("measurements")["degrees"].tolist() == [30.0]


def test_patient_ids_may_not_differ_only_in_letter_case(store, tmp_path):
    # ids name report and FHIR files: progress-p001.html and progress-P001.html are one file on
    # Windows and macOS, so one patient's report would overwrite the other's
    header = "patient_id,birth_year,involved_side"
    with pytest.raises(DataValidationError) as info:
        store.import_file(write(tmp_path / "p.csv", "p001,1990,left", "Q7,1980,right", "q7,1981,right",
                                header=header), "patients", today=TODAY)
    errors = info.value.report.errors.set_index("row")
    assert errors.loc[2, "rule"].startswith("differs from patient id 'P001' (already stored) only in letter case")
    assert errors.loc[4, "rule"].startswith("differs from patient id 'Q7' (row 3) only in letter case")
    assert 3 not in errors.index and len(store.read("patients")) == 2
    with pytest.raises(DataValidationError) as info:
        store.import_file(write(tmp_path / "m.csv", m_row(patient="p001")), "measurements", today=TODAY)
    assert info.value.report.errors["fix"].tolist() == ["ids are case-sensitive: did you mean 'P001'?"]


def test_corrections_supersede_with_a_reason_and_keep_history(store, tmp_path):
    store.import_file(write(tmp_path / "a.csv", m_row()), "measurements", today=TODAY)
    mid = store.read("measurements")["measurement_id"].iloc[0]
    assert store.correct("measurements", mid, {"degrees": 32.5}, reason="transcription error", who="AB") == 2
    current = store.read("measurements")
    assert current["degrees"].tolist() == [32.5] and len(current) == 1
    history = store.read("measurements", history=True)
    assert history["version"].tolist() == [1, 2] and history["degrees"].tolist() == [30.0, 32.5]
    assert history["change_reason"].iloc[1] == "transcription error"
    assert history["supersedes"].iloc[1] == history["row_id"].iloc[0]
    audit = store.audit()
    assert audit[["action", "who", "reason"]].iloc[-1].tolist() == ["correct", "AB", "transcription error"]


def test_corrections_are_validated_and_need_a_reason(store, tmp_path):
    store.import_file(write(tmp_path / "a.csv", m_row()), "measurements", today=TODAY)
    mid = store.read("measurements")["measurement_id"].iloc[0]
    with pytest.raises(StoreError, match="needs a reason"):
        store.correct("measurements", mid, {"degrees": 31}, reason=" ")
    with pytest.raises(DataValidationError, match="hip IR outside -20..90"):
        store.correct("measurements", mid, {"degrees": 310}, reason="typo")
    with pytest.raises(StoreError, match="no measurements record 'nope'"):
        store.correct("measurements", "nope", {"degrees": 31}, reason="x")
    assert store.read("measurements", history=True)["version"].tolist() == [1]


def test_voided_records_leave_current_reads_but_stay_in_history(store, tmp_path):
    store.import_file(write(tmp_path / "a.csv", m_row(), m_row(trial="2")), "measurements", today=TODAY)
    mid = store.read("measurements")["measurement_id"].iloc[0]
    store.void("measurements", mid, reason="wrong patient", who="AB")
    assert mid not in store.read("measurements")["measurement_id"].tolist()
    history = store.read("measurements", history=True)
    assert history.loc[history["measurement_id"] == mid, "status"].tolist() == ["active", "voided"]
    with pytest.raises(StoreError, match="is void"):
        store.void("measurements", mid, reason="again")


def test_a_failure_mid_import_leaves_the_store_unchanged(store, tmp_path, monkeypatch):
    before = counts(store)
    original = Store._insert

    def insert_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(Store, "_insert", insert_then_fail)
    with pytest.raises(RuntimeError, match="disk pulled out"):
        store.import_file(write(tmp_path / "a.csv", m_row(), m_row(trial="2")), "measurements", today=TODAY)
    monkeypatch.undo()
    assert counts(store) == before
    assert store.import_file(tmp_path / "a.csv", "measurements", today=TODAY).imported == 2


def test_missing_store_is_refused_when_not_creating(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "none.sqlite", create=False)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "no-folder" / "x.sqlite")


def test_exports_round_trip(store, tmp_path):
    store.import_file(write(tmp_path / "a.csv", m_row(), m_row(trial="2", degrees="31.5")), "measurements", today=TODAY)
    current = store.read("measurements")
    back = pd.read_parquet(store.export("measurements", tmp_path / "m.parquet"))
    pd.testing.assert_frame_equal(back, current, check_dtype=False)  # parquet keeps dates in ms
    back = pd.read_csv(store.export("measurements", tmp_path / "m.csv"))
    assert sorted(back["degrees"]) == [30.0, 31.5] and back["measured_on"].tolist() == ["2026-01-05"] * 2
    with pytest.raises(StoreError, match=r"use \.csv, \.xlsx, \.parquet"):
        store.export("measurements", tmp_path / "m.xls")


def _import_many(path: str, folder: str, worker: int, files: int) -> int:
    store = Store(path)  # a SQLite path or a database URL
    total = 0
    for k in range(files):
        side = "right" if worker == 1 else "left"
        rows = [m_row(day=f"2026-{1 + k % 10:02d}-{1 + j:02d}", side=side, trial=str(1 + k // 10))
                for j in range(25)]
        total += store.import_file(write(Path(folder) / f"w{worker}-{k}.csv", *rows), "measurements",
                                   today=TODAY, who=f"worker{worker}").imported
    store.close()
    return total


def test_two_processes_importing_at_once_lose_nothing(store, tmp_path):
    path = store.url
    store.close()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        imported = pool.starmap(_import_many, [(path, str(tmp_path), w, 20) for w in (1, 2)])
    assert imported == [500, 500]
    again = Store(path)
    assert len(again.read("measurements")) == 1000
    assert len(again.imports()) == 1 + 40


def test_deidentified_export_keeps_intervals_and_weekdays_and_drops_identifiers(store, tmp_path):
    from hipanalytics.store import deidentify, export_research

    store.import_file(write(tmp_path / "a.csv", m_row(day="2026-01-05"), m_row(day="2026-01-19", trial="2")),
                      "measurements", today=TODAY)
    key = KEY
    tables = {t: store.read(t) for t in ("patients", "measurements")}
    before = {t: df.copy() for t, df in tables.items()}
    out = deidentify(tables, key)
    for t in tables:
        pd.testing.assert_frame_equal(tables[t], before[t])  # inputs untouched
    m = out["measurements"].sort_values("measured_on").reset_index(drop=True)
    assert m["patient_id"].str.match(r"^R-[0-9a-f]{12}$").all() and "P001" not in m.to_string()
    gap = (m["measured_on"].iloc[1] - m["measured_on"].iloc[0]).days
    assert gap == 14 and {d.weekday() for d in m["measured_on"]} == {0}
    p = out["patients"]
    assert "birth_year" not in p and p.set_index(p["patient_id"])["age_band"].dropna().tolist() == ["55-59"]  # 56
    assert set(deidentify(tables, key)["measurements"]["patient_id"]) == set(m["patient_id"])
    other = hashlib.sha256(b"another key").hexdigest().encode()
    assert deidentify(tables, other)["measurements"]["patient_id"].iloc[0] != m["patient_id"].iloc[0]
    with pytest.raises(StoreError, match="too short"):
        deidentify(tables, b"short")
    paths = export_research(store, tmp_path / "research", key).paths
    assert "notes" not in pd.read_csv(paths["measurements"]).columns
    assert "Dropped" in paths["README"].read_text()


def test_deidentified_episodes_hide_the_patient_id_and_dates_in_their_ids(store, tmp_path):
    from hipanalytics.store import deidentify

    store.import_file(io.StringIO(
        "program_id,patient_id,protocol_id,protocol_version,schedule,start_date,end_date\n"
        "A,P001,hip-ir-breakouts,1.0.0,daily,2026-04-06,2026-05-31\n"), "programs", today=TODAY)
    store.discharge("P001", date(2026, 5, 20), reason="goals_met", notes="moved to Leeds")
    episodes = store.read("episodes")
    assert episodes["episode_id"].tolist() == ["P001-E20260406"]  # the patient id and the start date
    tables = {t: store.read(t) for t in ("patients", "programs", "episodes")}
    tables["programs"]["episode_id"] = "P001-E20260406"  # as a clinic that gives its own episode ids
    out = deidentify(tables, KEY)
    text = out["episodes"].to_string() + out["programs"].to_string()
    assert "P001" not in text and "20260406" not in text and "Leeds" not in text
    assert out["episodes"]["episode_id"].str.match(r"^RE-[0-9a-f]{12}$").all()
    assert out["programs"]["episode_id"].tolist() == out["episodes"]["episode_id"].tolist()  # still linked
    assert out["episodes"]["discharge_reason"].tolist() == ["goals_met"]
    shift = out["episodes"]["start_date"].iloc[0] - episodes["start_date"].iloc[0]
    assert out["episodes"]["end_date"].iloc[0] - episodes["end_date"].iloc[0] == shift  # one shift per patient


@pytest.mark.parametrize("values", [
    pd.Series(["a", None, "c"] * 700, dtype="str"),
    pd.Series([f"id{i}" for i in range(2100)], dtype="str"),
    pd.Series(list(range(2100)), dtype="Int64"),
    pd.Series([1, None, 3] * 700, dtype="Int64"),
    pd.Series([1.5, np.nan] * 1050, dtype="float64"),
    pd.Series([float(i) for i in range(2100)], dtype="float64"),
    pd.Series(pd.to_datetime(["2026-01-05", None] * 1050)).astype("datetime64[s]"),
])
def test_values_for_the_driver_are_plain_python_with_none_for_missing(values):
    from hipanalytics.store.schema import db_values as _db_values

    kind = {"str": "text", "Int64": "int", "float64": "float"}.get(str(values.dtype), "date")
    out = _db_values(values, kind)
    assert len(out) == len(values)
    for got, want in zip(out, values):
        if pd.isna(want):
            assert got is None
        elif kind == "date":
            assert got == want.strftime("%Y-%m-%d")
        else:
            assert got == want and type(got) in (str, int, float)


# -- entries from forms and programs from the builder ------------------------------------------

MEASUREMENT = {"patient_id": "P001", "measured_on": date(2026, 1, 5), "side": "right", "joint": "hip",
               "motion": "internal_rotation", "position": "seated_90", "mode": "active",
               "instrument": "inclinometer", "degrees": 31.5, "trial": 1}


def test_entries_are_validated_like_imports_and_saved_with_an_audit_row(store):
    saved = store.add_records("measurements", [MEASUREMENT, MEASUREMENT | {"trial": 2, "degrees": 33}],
                              who="AB", today=TODAY)
    assert saved["degrees"].tolist() == [31.5, 33.0]
    assert store.read("measurements")["measurement_id"].tolist() == saved["measurement_id"].tolist()
    entry = store.audit().query("action == 'entry'")
    assert entry[["who", "table_name"]].values.tolist() == [["AB", "measurements"]]


def test_a_bad_entry_saves_nothing_and_says_why(store):
    with pytest.raises(DataValidationError) as caught:
        store.add_records("measurements", [MEASUREMENT, MEASUREMENT | {"trial": 2, "degrees": 130,
                                                                      "patient_id": "P404"}], today=TODAY)
    errors = caught.value.report.errors
    assert set(errors["column"]) == {"degrees", "patient_id"} and set(errors["row"]) == {3}
    assert store.read("measurements").empty


def test_entering_the_same_measurement_twice_is_refused_not_doubled(store):
    store.add_records("measurements", [MEASUREMENT], today=TODAY)
    with pytest.raises(DataValidationError, match="already stored with these values"):
        store.add_records("measurements", [MEASUREMENT], today=TODAY)
    assert len(store.read("measurements")) == 1


def _program(schedule, start, weeks=8, **kw):
    from hipanalytics.program import Program

    return Program(patient_id="P001", protocol="hip-ir-breakouts", schedule=schedule, start_date=start,
                   weeks=weeks, **kw)


def test_saved_programs_keep_slot_choices_doses_and_omissions(store):
    from hipanalytics.program import program_from_record

    program = _program("mon,thu", date(2026, 1, 5), breakout_slot="evening", omit=("quadruped-band-ir",),
                       choices={"ninety-ninety": "ninety-ninety-ir-pails"},
                       dose_overrides={"ninety-ninety-ir-pails": {"sets": 4}})
    assert store.save_program(program, today=TODAY) == [program.program_id]
    row = store.read("programs").iloc[0]
    back = program_from_record(row)
    assert (back.breakout_slot, back.omit, back.choices) == (
        "evening", ("quadruped-band-ir",), {"ninety-ninety": "ninety-ninety-ir-pails"})
    assert back.schedule == "custom:mon,thu" and back.end_date == program.end_date
    assert str(back.dose("ninety-ninety-ir-pails").sets) == "4"


def test_a_schedule_change_ends_the_running_program_and_keeps_it_on_record(store):
    daily = _program("daily", date(2026, 1, 5))
    store.save_program(daily, today=TODAY)
    change = _program("three-per-week", date(2026, 1, 19), weeks=6, reason="pain after daily breakouts")
    assert store.save_program(change, who="AB", today=TODAY) == [daily.program_id, change.program_id]
    current = store.read("programs").set_index("program_id")
    assert current.loc[daily.program_id, "end_date"] == pd.Timestamp("2026-01-18")
    assert current.loc[change.program_id, "start_date"] == pd.Timestamp("2026-01-19")
    history = store.read("programs", history=True)
    old = history[history["program_id"] == daily.program_id]
    assert old["end_date"].tolist() == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-01-18")]
    assert "pain after daily breakouts" in old["change_reason"].iloc[-1]


def test_a_schedule_change_needs_a_reason_and_cannot_start_before_the_running_program(store):
    store.save_program(_program("daily", date(2026, 1, 5)), today=TODAY)
    with pytest.raises(StoreError, match="needs a reason"):
        store.save_program(_program("three-per-week", date(2026, 1, 19)), today=TODAY)
    with pytest.raises(StoreError, match="on or after the new start 2026-01-01; void it"):
        store.save_program(_program("three-per-week", date(2026, 1, 1), reason="x"), today=TODAY)
    assert len(store.read("programs", history=True)) == 1


def test_a_program_for_an_unknown_patient_is_refused(store):
    from hipanalytics.program import Program

    stranger = Program(patient_id="P404", protocol="hip-ir-breakouts", schedule="daily",
                       start_date=date(2026, 1, 5), weeks=4)
    with pytest.raises(DataValidationError, match="unknown patient"):
        store.save_program(stranger, today=TODAY)


def test_a_record_corrected_to_another_patient_moves_with_the_correction(store):
    saved = store.add_records("measurements", [MEASUREMENT], today=TODAY)
    store.correct("measurements", saved["measurement_id"].iloc[0], {"patient_id": "P002"},
                  reason="entered under the wrong patient")
    assert store.read("measurements", patient_id="P001").empty
    assert store.read("measurements", patient_id="P002")["degrees"].tolist() == [31.5]
    assert len(store.read("measurements", patient_id="P001", history=True)) == 1


def test_a_discharge_stores_the_episode_and_ends_the_running_program(location, tmp_path):  # noqa: F811
    from hipanalytics.analysis.episodes import episodes_of_care

    store = Store(location)
    store.import_file(write(tmp_path / "p.csv", *PATIENTS.splitlines()[1:], header=PATIENTS.splitlines()[0]),
                      "patients", today=TODAY)
    store.import_file(io.StringIO(
        "program_id,patient_id,protocol_id,protocol_version,schedule,start_date,end_date\n"
        "A,P001,hip-ir-breakouts,1.0.0,daily,2026-04-06,2026-05-31\n"), "programs", today=TODAY)
    assert store.discharge("P001", date(2026, 5, 20), reason="goals met", who="AB") == "P001-E20260406"
    episode = store.read("episodes").iloc[0]
    assert (episode["start_date"], episode["end_date"], episode["discharge_reason"]) == (
        pd.Timestamp("2026-04-06"), pd.Timestamp("2026-05-20"), "goals_met")
    assert store.read("programs")["end_date"].tolist() == [pd.Timestamp("2026-05-20")]
    assert store.read("programs", history=True)["change_reason"].tolist()[-1] == "ended by the discharge on 2026-05-20"
    with pytest.raises(StoreError, match="was discharged on 2026-05-20 already"):
        store.discharge("P001", date(2026, 5, 25))
    with pytest.raises(StoreError, match="has no episode of care that has started by 2026-01-01"):
        store.discharge("P002", date(2026, 1, 1))
    # a program ten days later is a new episode: the discharge ended the first
    store.import_file(io.StringIO(
        "program_id,patient_id,protocol_id,protocol_version,schedule,start_date,end_date\n"
        "B,P001,hip-ir-breakouts,1.0.0,three-per-week,2026-05-30,2026-07-05\n"), "programs", today=TODAY)
    episodes = episodes_of_care(store.read("programs"), store.read("episodes"), as_of="2026-06-10")
    assert episodes[["episode_id", "status"]].values.tolist() == [["P001-E20260406", "discharged"],
                                                                   ["P001-E20260530", "active"]]
    audit = store.audit()
    assert audit.query("table_name == 'episodes'")["who"].tolist() == ["AB"]
    store.close()
