"""Schema migrations (Alembic): a store made by the previous version upgrades and keeps every row;
the revisions build exactly the tables hipanalytics reads; servers are upgraded only on command."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.errors import StoreError
from hipanalytics.store import Store
from hipanalytics.store.migrate import HEAD, SCHEMA_VERSION, alembic_config
from hipanalytics.store.schema import metadata

from .stores import location, postgres_location  # noqa: F401 - fixtures

PREVIOUS = Path(__file__).parent / "data" / "stores" / "store-schema3.sqlite"
"""A store written by hipanalytics at commit 562a557 (schema 3, before Alembic): two patients,
programs with a schedule switch, measurements with a correction, sessions with a void, four
imports, their audit."""

OLD_TABLES = ("patients", "programs", "measurements", "sessions", "imports", "audit")


def rows_of(path: Path, table: str) -> list[dict]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]


def test_head_is_the_newest_revision_file():
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == HEAD
    module = script.get_revision(HEAD).module
    assert module.SCHEMA_VERSION == SCHEMA_VERSION


def test_a_store_made_by_the_previous_version_upgrades_on_open_and_keeps_every_row(tmp_path):
    path = tmp_path / "clinic.sqlite"
    shutil.copy(PREVIOUS, path)
    before = {t: rows_of(path, t) for t in OLD_TABLES}
    with Store(path, create=False) as store:
        sessions = store.read("sessions", history=True)
        assert sessions["pain_next_day"].isna().all() and len(sessions) == 5  # 4 imported, 1 void version
        assert store.read("episodes").empty and store.read("programs")["episode_id"].isna().all()
        assert sorted(store.read("measurements")["degrees"]) == [20.0, 21.0, 22.0, 24.0, 28.5, 33.0]
        migration = store.audit().query("action == 'migrate'")
        assert migration["reason"].tolist() == [f"schema version 3 (before Alembic) -> revision {HEAD}"]
        assert "episodes of care" in migration["details"].iloc[0]
    for table in OLD_TABLES:  # every old row and value as it was; only new columns (empty) added
        after = rows_of(path, table)
        if table == "audit":
            after = after[:len(before[table])]
        assert [{k: r[k] for k in old} for r, old in zip(after, before[table])] == before[table], table
        assert len(after) == len(before[table])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [(str(SCHEMA_VERSION),)]
    with Store(path) as again:  # opened again: nothing more to do, nothing more audited
        assert len(again.audit().query("action == 'migrate'")) == 1


def test_the_upgraded_store_takes_the_new_columns(tmp_path):
    path = tmp_path / "clinic.sqlite"
    shutil.copy(PREVIOUS, path)
    with Store(path) as store:
        store.import_file(io.StringIO("patient_id,performed_on,session,completion,pain_before,pain_after,pain_next_day\n"
                                      "P1,2026-05-06,breakouts,full,2,3,4\n"), "sessions")
        sessions = store.read("sessions")
        assert sessions.loc[sessions["performed_on"] == "2026-05-06", "pain_next_day"].tolist() == [4]


def _store_at_0004(location: str) -> None:
    """A store as the previous version (revision 0004) left it: patients whose cohort names a schedule
    (the randomised arm, as that version read it), one with another label, one without, and a
    corrected patient (two versions)."""
    engine = sa.create_engine(location if location.startswith("postgresql") else f"sqlite:///{location}")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        now = "2026-06-01T00:00:00+00:00"
        for row_id, pid, cohort, version, supersedes in ((1, "P1", "daily", 1, None), (2, "P2", "three-per-week", 1, None),
                                                         (3, "P3", "trial-A", 1, None), (4, "P4", None, 1, None),
                                                         (5, "P1", "daily", 2, 1)):
            conn.execute(sa.text(
                "INSERT INTO patients (row_id, patient_id, birth_year, involved_side, cohort, version, status, "
                "supersedes, recorded_at, recorded_by) VALUES (:row_id, :pid, 1970, 'right', :cohort, :version, "
                "'active', :supersedes, :now, 'someone')"),
                {"row_id": row_id, "pid": pid, "cohort": cohort, "version": version, "supersedes": supersedes, "now": now})
    engine.dispose()


def test_a_revision_4_store_upgrades_with_a_cohort_naming_a_schedule_as_the_allocation(location):  # noqa: F811
    # the previous version read a cohort of exactly 'daily' or 'three-per-week' as the randomised
    # arm; the upgrade copies it into allocation, so the store's analysis does not change
    _store_at_0004(location)
    if location.startswith("postgresql"):  # a server store: upgraded by the command only
        with pytest.raises(StoreError, match=r"at schema revision 0004; this hipanalytics needs revision 0005.*store upgrade"):
            Store(location)
        sql = CliRunner().invoke(main, ["store", "upgrade", "--store", location, "--sql"])
        assert "ALTER TABLE patients ADD COLUMN allocation" in sql.output, sql.output
        assert "SET allocation=patients.cohort WHERE patients.cohort IN ('daily', 'three-per-week')" in sql.output
        done = CliRunner().invoke(main, ["store", "upgrade", "--store", location])
        assert done.exit_code == 0 and f"upgraded from schema revision 0004 to revision {HEAD}" in done.output, done.output
    with Store(location, create=False) as store:  # SQLite: upgraded on open
        history = store.read("patients", history=True).sort_values("row_id")
        assert history["allocation"].fillna("").tolist() == ["daily", "three-per-week", "", "", "daily"]
        assert history["allocated_on"].isna().all() and history["cohort"].tolist()[:3] == ["daily", "three-per-week",
                                                                                          "trial-A"]
        current = store.read("patients").set_index("patient_id")
        assert current["allocation"].fillna("").to_dict() == {"P1": "daily", "P2": "three-per-week", "P3": "", "P4": ""}
        migration = store.audit().query("action == 'migrate'")
        assert migration["reason"].tolist() == [f"schema revision 0004 -> revision {HEAD}"]
        assert "the randomised arm of a patient" in migration["details"].iloc[0]


def test_the_revisions_build_exactly_the_tables_hipanalytics_reads(location):  # noqa: F811
    with Store(location) as store, store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata())
    assert differences == []


def test_a_schema_1_store_is_brought_up_to_date_on_open(tmp_path):
    path = tmp_path / "v1.sqlite"
    shutil.copy(PREVIOUS, path)
    with sqlite3.connect(path) as conn:  # what version 1 looked like
        for column in ("breakout_slot", "choices", "dose_overrides", "omit"):
            conn.execute(f"ALTER TABLE programs DROP COLUMN {column}")
        for column in ("skipped", "origin"):  # added by version 3
            conn.execute(f"ALTER TABLE imports DROP COLUMN {column}")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store(path) as store:
        assert store.read("programs")["program_id"].tolist() == ["P1-A", "P1-B", "P2-A"]
        assert store.read("programs")["breakout_slot"].isna().all()
        assert store.imports()["skipped"].isna().all()  # older imports: not counted then
        migration = store.audit().query("action == 'migrate'")
        assert migration["reason"].tolist() == [f"schema version 1 (before Alembic) -> revision {HEAD}"]
        assert "imports.skipped" in migration["details"].iloc[0] and "programs.omit" in migration["details"].iloc[0]


@pytest.mark.parametrize("version_table, value, words", [
    ("alembic_version", "9999", "revision 9999, written by a newer hipanalytics"),
    ("meta", "99", "schema version 99, written by a newer hipanalytics"),
])
def test_a_store_written_by_a_newer_version_is_refused_and_left_as_it_is(tmp_path, version_table, value, words):
    path = tmp_path / "newer.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        if version_table == "meta":
            conn.execute("DROP TABLE alembic_version")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
        else:
            conn.execute("UPDATE alembic_version SET version_num = ?", (value,))
    before = path.read_bytes()
    with pytest.raises(StoreError, match=words):
        Store(path)
    assert path.read_bytes() == before


def test_a_server_store_is_upgraded_only_by_the_command_and_keeps_its_rows(postgres_location):  # noqa: F811
    location = postgres_location
    engine = sa.create_engine(location)
    config = alembic_config()
    with engine.begin() as conn:  # the previous version's store: revision 0003 with rows
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.execute(sa.text("DROP TABLE alembic_version"))  # made before Alembic: no version table
        now = "2026-06-01T00:00:00+00:00"
        conn.execute(sa.text(
            "INSERT INTO patients (patient_id, birth_year, involved_side, version, status, recorded_at, recorded_by) "
            "VALUES ('P1', 1970, 'right', 1, 'active', :now, 'someone')"), {"now": now})
    engine.dispose()
    with pytest.raises(StoreError, match=r"is at schema version 3 \(before Alembic\).*hipanalytics store upgrade"):
        Store(location)
    runner = CliRunner()
    sql = runner.invoke(main, ["store", "upgrade", "--store", location, "--sql"])
    assert sql.exit_code == 0, sql.output
    assert "CREATE TABLE episodes" in sql.output and "ALTER TABLE sessions ADD COLUMN pain_next_day" in sql.output
    assert "BEGIN;" in sql.output and "COMMIT;" in sql.output
    done = runner.invoke(main, ["store", "upgrade", "--store", location])
    assert done.exit_code == 0, done.output
    assert f"upgraded from schema version 3 (before Alembic) to revision {HEAD}" in done.output
    with Store(location, create=False) as store:
        assert store.read("patients")["patient_id"].tolist() == ["P1"]
        assert store.read("sessions").columns.tolist()[-2:] == ["pain_next_day", "notes"]
    status = runner.invoke(main, ["store", "status", "--store", location])
    assert f"revision {HEAD}, up to date" in status.output


def test_store_status_and_upgrade_through_the_cli(tmp_path):
    path = tmp_path / "clinic.sqlite"
    shutil.copy(PREVIOUS, path)
    runner = CliRunner()
    status = runner.invoke(main, ["store", "status", "--store", str(path)])
    assert status.exit_code == 0
    assert f"at schema version 3 (before Alembic); this hipanalytics needs revision {HEAD}" in status.output
    sql = runner.invoke(main, ["store", "upgrade", "--sql", "--store", str(path)])
    assert "INSERT INTO alembic_version (version_num) VALUES ('0003')" in sql.output
    assert path.read_bytes() == PREVIOUS.read_bytes()  # --sql changes nothing
    done = runner.invoke(main, ["store", "upgrade", "--store", str(path)])
    assert done.exit_code == 0 and f"to revision {HEAD}" in done.output
    again = runner.invoke(main, ["store", "upgrade", "--store", str(path)])
    assert f"already at revision {HEAD}" in again.output
    missing = runner.invoke(main, ["store", "upgrade", "--store", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "is not a hipanalytics store" in missing.output


def test_the_newest_revision_can_be_undone_for_a_rollback(tmp_path):
    path = tmp_path / "clinic.sqlite"
    shutil.copy(PREVIOUS, path)
    Store(path).close()
    engine = sa.create_engine(f"sqlite:///{path}")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    engine.dispose()
    with sqlite3.connect(path) as conn:
        assert "pain_next_day" not in [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]
        assert "allocation" not in [r[1] for r in conn.execute("PRAGMA table_info(patients)")]
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    assert sorted(pd.DataFrame(rows_of(path, "measurements"))["degrees"]) == [20.0, 21.0, 22.0, 24.0, 27.5, 28.5, 33.0]
