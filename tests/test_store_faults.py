"""Faults of the machine and of the store file: a damaged store refuses writes, `store check` and
`store backup`, a full disk, a read-only store that still reads, a file that is not a store."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.records import TABLES
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store

PATIENTS = Path(__file__).parent / "data" / "patients.csv"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    return clinic_store(generate_clinic(30, seed=6), tmp_path_factory.mktemp("faults"))


@pytest.fixture
def copy(clinic, tmp_path) -> Path:
    path = tmp_path / "clinic.sqlite"
    shutil.copy(clinic, path)
    return path


def damage(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        for offset in (size // 3, size // 2, 2 * size // 3):
            f.seek(offset // 4096 * 4096)
            f.write(bytes(range(256)) * 16)


def test_a_damaged_store_refuses_writes_and_says_how_to_recover(copy):
    damage(copy)
    before = digest(copy)
    imported = run("import", PATIENTS, "--table", "patients", "--store", copy)
    assert imported.exit_code == 1 and "is damaged" in imported.output and "nothing was written" in imported.output
    assert "store backup" in imported.output and ".recover" in imported.output and "internal error" not in imported.output
    assert digest(copy) == before  # not one byte written
    listed = run("patients", "--store", copy)
    assert listed.exit_code == 1 and "damaged" in listed.output and "internal error" not in listed.output
    checked = run("store", "check", "--store", copy)
    assert checked.exit_code == 1 and "integrity: DAMAGED" in checked.output
    refused = run("store", "backup", copy.with_name("b.sqlite"), "--store", copy)
    assert refused.exit_code == 1 and "no backup was made" in refused.output and not copy.with_name("b.sqlite").exists()


def test_store_check_reports_counts_and_the_history_of_a_sound_store(copy):
    checked = run("store", "check", "--store", copy)
    assert checked.exit_code == 0, checked.output
    with Store(copy) as store:
        counts = {t: len(store.read(t)) for t in TABLES}
    assert "integrity: ok" in checked.output and f"patients {counts['patients']}/{counts['patients']}" in checked.output
    assert "history: every version chain and import is whole" in checked.output
    with Store(copy) as store:  # a version lost: the chain has a gap
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM measurements WHERE row_id = (SELECT MIN(row_id) FROM measurements)")
            conn.exec_driver_sql("UPDATE measurements SET version = 2 WHERE row_id = (SELECT MIN(row_id) FROM measurements)")
            conn.exec_driver_sql("DELETE FROM audit WHERE action = 'import' AND table_name = 'sessions'")
    broken = run("store", "check", "--store", copy)
    assert broken.exit_code == 1 and "versions 2..2 but 1 stored (a version is missing)" in broken.output
    assert "has no entry in the audit trail" in broken.output


def test_store_backup_is_a_checked_copy_that_restores_by_copying_back(copy, tmp_path):
    missing = run("store", "backup", tmp_path / "nowhere" / "b.sqlite", "--store", copy)
    assert missing.exit_code == 1 and "does not exist" in missing.output
    made = run("store", "backup", f"{tmp_path / 'backups'}/", "--store", copy)  # a folder, made
    assert made.exit_code == 0 and "and checked" in made.output, made.output
    (backup,) = (tmp_path / "backups").glob("clinic-backup-*.sqlite")
    again = run("store", "backup", backup, "--store", copy)
    assert again.exit_code == 1 and "never overwrites" in again.output
    with Store(copy) as original, Store(backup, create=False) as saved:
        for table in TABLES:
            pd.testing.assert_frame_equal(original.read(table, history=True), saved.read(table, history=True))
    damage(copy)
    shutil.copy(backup, copy)  # restore: copy the backup back in place
    assert run("store", "check", "--store", copy).exit_code == 0
    assert run("import", PATIENTS, "--table", "patients", "--store", copy).exit_code == 0


def test_a_file_that_is_not_a_store_is_named_as_such(tmp_path):
    noise = tmp_path / "clinic.sqlite"
    noise.write_bytes(os.urandom(8192))
    for args in (("patients",), ("import", PATIENTS, "--table", "patients")):
        result = run(*args, "--store", noise)
        assert result.exit_code == 1 and "is not a hipanalytics store" in result.output, result.output
        assert "internal error" not in result.output


def test_a_full_disk_is_named_and_leaves_the_store_as_it_was(copy, monkeypatch):
    from hipanalytics.store import core, schema

    original = schema.sqlite_setup

    def tiny(engine, **kw):  # SQLite reports SQLITE_FULL when the file may not grow: a full disk, as SQLite sees it
        original(engine, **kw)

        @schema.event.listens_for(engine, "connect")
        def _limit(dbapi_conn, _record):
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    more = generate_clinic(60, seed=9)
    for table in ("patients", "measurements"):
        more[table].assign(patient_id=more[table]["patient_id"].str.replace("SYN-", "NEW-")).to_csv(
            copy.with_name(f"{table}.csv"), index=False)
    assert run("import", copy.with_name("patients.csv"), "--store", copy).exit_code == 0
    with Store(copy) as store:
        before = {t: len(store.read(t, history=True)) for t in TABLES}
    monkeypatch.setattr(core, "sqlite_setup", tiny)
    result = run("import", copy.with_name("measurements.csv"), "--store", copy)
    assert result.exit_code == 1 and "the disk is full" in result.output and "internal error" not in result.output, result.output
    monkeypatch.setattr(core, "sqlite_setup", original)
    with Store(copy) as store:
        after = {t: len(store.read(t, history=True)) for t in TABLES}
    assert after["measurements"] == before["measurements"]


def _read_only_runner(folder: Path):
    """Run the command line with ``folder`` read-only: a read-only bind mount in a private mount
    namespace when root (root writes through file permissions), else the permissions."""
    if os.geteuid() != 0:
        def run_here(*args):
            return subprocess.run([sys.executable, "-m", "hipanalytics.cli", *map(str, args)], capture_output=True,
                                  text=True)
        return run_here, lambda: (os.chmod(folder / "clinic.sqlite", 0o444), os.chmod(folder, 0o555))
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode != 0:
        pytest.skip("LOUD SKIP: cannot make a read-only mount here (unshare --mount needs CAP_SYS_ADMIN)")

    def run_mounted(*args):
        command = " ".join(f"'{a}'" for a in map(str, args))
        script = (f"mount --bind '{folder}' '{folder}' && mount -o remount,ro,bind '{folder}' && "
                  f"touch '{folder}/probe' 2>/dev/null && exit 99; '{sys.executable}' -m hipanalytics.cli {command}")
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True)
    return run_mounted, lambda: None


def test_a_read_only_store_still_reads_and_refuses_writes_in_words(copy, tmp_path):
    folder = copy.parent
    run_ro, protect = _read_only_runner(folder)
    protect()
    out = tmp_path.parent / f"{tmp_path.name}-out"
    out.mkdir()
    try:
        listed = run_ro("patients", "--store", copy)
        assert listed.returncode == 0 and "30 patients" in listed.stdout, listed.stderr
        exported = run_ro("export", "patients", "--out", out / "p.csv", "--store", copy)
        assert exported.returncode == 0 and len(pd.read_csv(out / "p.csv")) == 30, exported.stderr
        report = run_ro("report", "patient", "SYN-00001", "--store", copy, "--out", out, "--format", "html")
        assert report.returncode == 0 and (out / "progress-SYN-00001.html").is_file(), report.stderr
        imported = run_ro("import", PATIENTS, "--table", "patients", "--store", copy)
        assert imported.returncode == 1 and "is read-only here" in imported.stderr and "internal error" not in imported.stderr
    finally:
        os.chmod(folder, 0o755)
        os.chmod(copy, 0o644)
        shutil.rmtree(out)
