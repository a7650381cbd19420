"""The store: transactional imports, quarantine, re-imports, corrections, voids, audit, concurrency."""

from __future__ import annotations

import gc
import multiprocessing
import os
import warnings
import sqlite3
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hipanalytics.errors import DataValidationError, StoreError
from hipanalytics.store import Store

TODAY = date(2026, 11, 1)
PATIENTS = "patient_id,birth_year,sex,involved_side\nP001,1970,female,right\nP002,1985,male,left\n"
M_HEADER = "patient_id,measured_on,side,joint,motion,position,mode,instrument,degrees,trial"


def m_row(patient="P001", day="2026-01-05", side="right", degrees="30", trial="1"):
    return f"{patient},{day},{side},hip,internal_rotation,seated_90,active,inclinometer,{degrees},{trial}"


def write(path: Path, *rows: str, header: str = M_HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


POSTGRES_ENV = "HIPANALYTICS_TEST_POSTGRES"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A new, empty store location: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "clinic.sqlite")
        return
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip(f"LOUD SKIP: set {POSTGRES_ENV}=postgresql+psycopg://user@host:port/db to test PostgreSQL")
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(server)
    name = f"hipanalytics_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with warnings.catch_warnings():  # pools of stores a test left open are dropped with the database
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def test_schema_version_is_checked_on_open(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="has schema version 0, but this hipanalytics uses 1"):
        Store(path)


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
    with pytest.raises(StoreError, match="use .csv or .parquet"):
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
    key = b"k" * 32
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
    assert "birth_year" not in p and p.set_index(p["patient_id"])["age_at_start"].dropna().tolist() == [56]
    assert set(deidentify(tables, key)["measurements"]["patient_id"]) == set(m["patient_id"])
    assert deidentify(tables, b"x" * 32)["measurements"]["patient_id"].iloc[0] != m["patient_id"].iloc[0]
    with pytest.raises(StoreError, match="at least 16 bytes"):
        deidentify(tables, b"short")
    paths = export_research(store, tmp_path / "research", key)
    assert "notes" not in pd.read_csv(paths["measurements"]).columns
    assert "Dropped" in paths["README"].read_text()


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
    from hipanalytics.store import _db_values

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
