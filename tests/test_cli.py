"""The command line, tried as a user would."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner
from icalendar import Calendar

from hipanalytics.cli import main
from hipanalytics.config import notebooks_dir
from hipanalytics.synthetic import generate_clinic
from hipanalytics.store import Store

from .conftest import line_of


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_demo_writes_plan_handout_and_calendar_for_both_schedules_and_a_store(tmp_path):
    result = run("demo", "--out", str(tmp_path), "--start", "2026-01-05", "--reports", "0")
    assert result.exit_code == 0, result.output
    daily = tmp_path / "programs" / "DEMO-002-20260105-daily"
    three = tmp_path / "programs" / "DEMO-001-20260105-three-per-week"
    for folder in (daily, three):
        assert (folder / "handout.html").read_text().startswith("<!DOCTYPE html>")
        assert str(folder / "handout.html") in result.output
    assert int(pd.read_csv(three / "plan.csv")["breakouts"].sum()) == 18
    assert int(pd.read_csv(daily / "plan.csv")["breakouts"].sum()) == 42
    assert len(Calendar.from_ical((daily / "calendar.ics").read_bytes()).walk("VEVENT")) == 84
    assert "84 sessions, 18 with breakouts (per week: 3, 3, 3, 3, 3, 3)" in result.output
    rows = len(generate_clinic(40, seed=2026)["measurements"])  # the sample clinic the demo imports
    assert f"measurements: {rows} rows read, {rows} imported" in result.output
    assert len(Store(tmp_path / "clinic.sqlite").read("patients")) == 40


def test_program_command_writes_files_under_a_sanitised_folder(tmp_path):
    refused = CliRunner().invoke(main, ["program", "../../evil", "--schedule", "daily", "--start", "2026-01-05",
                                        "--weeks", "4", "--out", str(tmp_path)])
    assert refused.exit_code == 1 and "not a valid patient id" in refused.output and not any(tmp_path.iterdir())
    result = run("program", "Q/1", "--schedule", "three-per-week", "--start", "2026-01-05",
                 "--weeks", "4", "--out", str(tmp_path), "--choice", "ninety-ninety=ninety-ninety-ir-pails")
    assert result.exit_code == 0, result.output
    folders = [p.name for p in tmp_path.iterdir()]
    assert len(folders) == 1 and folders[0].startswith("Q_1-20260105-three-per-week-")  # hash: Q_1 differs
    assert "56 sessions, 12 with breakouts" in result.output
    html = (tmp_path / folders[0] / "handout.html").read_text()
    assert "contract-relax (PAILs)" in html


def test_program_command_refuses_bad_input_with_exit_code_1(tmp_path):
    result = run("program", "P1", "--schedule", "dialy", "--start", "2026-01-05", "--weeks", "4",
                 "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "error: program for patient 'P1': unknown schedule 'dialy'" in result.output
    assert "did you mean 'daily'?" in result.output
    assert not any(tmp_path.iterdir())


def test_program_command_usage_errors_exit_2(tmp_path):
    assert run("program", "P1", "--schedule", "daily", "--start", "05/01/2026").exit_code == 2
    assert run("program", "P1", "--schedule", "daily", "--start", "2026-01-05", "--weeks", "2",
               "--choice", "oops", "--out", str(tmp_path)).exit_code == 2


def test_check_protocol_reports_the_line_of_a_problem(tmp_path, edited_protocol):
    bad = edited_protocol(("          hold_s: 1-2", "          hold_s: 3-1"))
    result = run("check-protocol", str(bad))
    assert result.exit_code == 1
    line = line_of(bad, "hold_s: 3-1")
    assert f"line {line}: exercises[0].dose.phases[0].hold_s: reversed range 3-1" in result.output
    good = run("check-protocol", str(tmp_path.parent / "x.yaml"))
    assert good.exit_code == 2  # no such file: a usage error


def test_protocols_lists_shipped_and_invalid_files(tmp_path):
    assert "hip-ir-breakouts@1.0.0" in run("protocols").output
    (tmp_path / "broken.yaml").write_text("id: x\n")
    result = run("protocols", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "INVALID" in result.output and "missing required key 'version'" in result.output


def test_validate_import_and_export_as_a_user_would(tmp_path):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    db = str(tmp_path / "clinic.sqlite")
    assert run("import", str(sample / "patients.csv"), "--store", db).exit_code == 0
    first = run("import", str(sample / "measurements.csv"), "--store", db)
    assert first.exit_code == 0 and "imported, 0 quarantined" in first.output
    assert "already imported" in run("import", str(sample / "measurements.csv"), "--store", db).output

    bad = tmp_path / "measurements-new.csv"
    bad.write_text("patient_id,measured_on,side,motion,position,mode,instrument,degrees\n"
                   "SYN-00001,2026-03-02,L,IR,seated,active,gonio,32°\n"
                   "SYN-00001,2026-03-03,L,IR,seated_90,active,gonio,320\n")
    checked = run("validate", str(bad), "--store", db, "--report", str(tmp_path / "problems.csv"))
    assert checked.exit_code == 1
    assert "row      3  degrees: '320': hip IR outside -20..90 degrees" in checked.output
    assert "unit text removed; the value is in degrees" in checked.output
    strict = run("import", str(bad), "--store", db)
    assert strict.exit_code == 1 and "nothing was imported" in strict.output
    partial = run("import", str(bad), "--store", db, "--quarantine", "--quarantine-dir", str(tmp_path / "q"))
    assert partial.exit_code == 3 and "1 imported, 1 quarantined" in partial.output

    out = run("export", "measurements", "--out", str(tmp_path / "m.csv"), "--store", db)
    assert out.exit_code == 0
    exported = pd.read_csv(tmp_path / "m.csv")
    assert len(exported) == len(pd.read_csv(sample / "measurements.csv")) + 1
    key = tmp_path / "key"
    key.write_text("8f1c0e5b9a7d4c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e")
    research = run("export", "--deidentify", "--out", str(tmp_path / "research"), "--key-file", str(key), "--store", db)
    assert research.exit_code == 0 and (tmp_path / "research" / "README.md").exists()
    assert run("export", "--deidentify", "--out", str(tmp_path / "r2"), "--store", db).exit_code == 2


def test_table_is_guessed_from_the_file_name_or_asked_for(tmp_path):
    odd = tmp_path / "export.csv"
    odd.write_text("a,b\n1,2\n")
    result = run("validate", str(odd))
    assert result.exit_code == 2 and "give --table" in result.output


def test_app_refuses_a_missing_store_and_serves_an_existing_one_on_localhost(tmp_path, monkeypatch):
    import hipanalytics.apps.serve as serve

    missing = run("app", "builder", "--store", str(tmp_path / "none.sqlite"), "--no-browser", "--port", str(_free_port()))
    assert missing.exit_code == 1 and "no store at" in missing.output
    calls = []
    monkeypatch.setattr(serve, "run", lambda command, store=None, sample=False, token=None:
                        calls.append((command, store, sample, token)) or 0)
    Store(tmp_path / "clinic.sqlite").close()
    port = _free_port()
    result = run("app", "entry", "--store", str(tmp_path / "clinic.sqlite"), "--port", str(port), "--no-browser",
                 "--idle-minutes", "30")
    assert result.exit_code == 0, result.output
    assert "no login" in result.output and "authenticated deployment" in result.output
    (command, store, sample, token), = calls
    assert command[3].endswith("data_entry.ipynb") and store == str(tmp_path / "clinic.sqlite") and not sample
    assert len(token) >= 40 and f"/?token={token} " in result.output and token not in " ".join(command)
    assert {"--Voila.ip=127.0.0.1", f"--port={port}", "--MappingKernelManager.cull_idle_timeout=1800",
            "--no-browser"} <= set(command)
    exposed = run("app", "dashboard", "--sample", "--host", "0.0.0.0", "--port", str(_free_port()), "--no-browser")
    assert "WARNING: serving on 0.0.0.0" in exposed.output
    assert calls[-1][2] is True and "hipanalytics-app-sample-" in calls[-1][1]  # the apps are told it is the sample
    assert run("app", "dashboard", "--sample", "--store", "x.sqlite").exit_code == 2


def test_lab_opens_jupyterlab_at_the_notebooks_with_the_store_set(tmp_path, monkeypatch):
    import hipanalytics.apps.serve as serve

    calls = []
    monkeypatch.setattr(serve, "run", lambda command, store=None: calls.append((command, store)) or 0)
    result = run("lab", "--store", "clinic.sqlite", "--no-browser", "--allow-root", "--port", str(_free_port()))
    assert result.exit_code == 0, result.output
    (command, store), = calls
    assert command[2] == "jupyterlab" and command[3].endswith("/notebooks") and store == "clinic.sqlite"
    assert "--allow-root" in command and "--ServerApp.ip=127.0.0.1" in command


def test_lab_outside_a_checkout_copies_the_shipped_notebooks_into_a_folder_of_the_users(tmp_path, monkeypatch):
    import hipanalytics.apps.serve as serve

    calls = []
    monkeypatch.setattr(serve, "run", lambda command, store=None: calls.append(command) or 0)
    folder = tmp_path / "my-notebooks"
    (folder / "reports").mkdir(parents=True)
    (folder / "reports" / "patient_progress.ipynb").write_text("{}")  # the user's edited copy stays
    result = run("lab", "--dir", str(folder), "--no-browser", "--port", str(_free_port()))
    assert result.exit_code == 0, result.output
    shipped = len(list(notebooks_dir().rglob("*.ipynb")))  # 4 report templates, 3 apps, 1 tutorial
    assert shipped == 8 and f"copied {shipped - 1} notebooks into {folder}" in result.output
    assert (folder / "reports" / "patient_progress.ipynb").read_text() == "{}"
    assert (folder / "tutorials" / "01-quickstart.ipynb").is_file() and (folder / "apps" / "dashboard.ipynb").is_file()
    assert calls[0][3] == f"--ServerApp.root_dir={folder}"
    again = run("lab", "--dir", str(folder), "--no-browser", "--port", str(_free_port()))
    assert "copied" not in again.output


def test_patients_lists_side_program_last_measurement_and_who_is_active(tmp_path):
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "both",
                                         "display_name": "Jo Secret"},
                                        {"patient_id": "P002", "birth_year": 1980, "involved_side": "left"}])
        opened.add_records("programs", [{"program_id": "P001-a", "patient_id": "P001", "protocol_id": "hip-ir-breakouts",
                                         "protocol_version": "1.0.0", "schedule": "daily", "start_date": "2026-03-02",
                                         "end_date": "2026-04-12"},
                                        {"program_id": "P002-a", "patient_id": "P002", "protocol_id": "hip-ir-breakouts",
                                         "protocol_version": "1.0.0", "schedule": "three-per-week",
                                         "start_date": "2026-01-05", "end_date": "2026-02-01"}])
        opened.add_records("measurements", [{"patient_id": "P001", "measured_on": "2026-04-06", "side": "left",
                                             "motion": "internal_rotation", "position": "seated_90", "mode": "active",
                                             "instrument": "inclinometer", "degrees": 30}])
    result = run("patients", "--store", store, "--as-of", "2026-04-10")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 patients; current program as of 2026-04-10"
    assert lines[2].split() == ["P001", "both", "daily", "in", "force", "until", "2026-04-12", "1", "of", "1", "since",
                                "2026-03-02", "active", "2026-04-06", "1", "yes"]
    assert lines[3].split() == ["P002", "left", "three-per-week", "ended", "2026-02-01", "1", "of", "1", "since",
                                "2026-01-05", "programs", "ended,", "no", "discharge", "recorded", "0"]  # > 28 days ago
    assert "Jo Secret" not in result.output
    active = run("patients", "--store", store, "--as-of", "2026-04-10", "--active", "--csv")
    assert pd.read_csv(__import__("io").StringIO(active.output))["patient_id"].tolist() == ["P001"]


def test_key_writes_a_private_random_key_and_never_overwrites_one(tmp_path):
    import stat

    key = tmp_path / "secret.key"
    assert run("key", str(key)).exit_code == 0
    text = key.read_text().strip()
    assert len(text) == 64 and int(text, 16) and stat.S_IMODE(key.stat().st_mode) == 0o600
    again = CliRunner().invoke(main, ["key", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.output and key.read_text().strip() == text
    run("demo", "--out", str(tmp_path / "d"), "--reports", "0")
    out = run("export", "--deidentify", "--key-file", str(key), "--out", str(tmp_path / "research"),
              "--store", str(tmp_path / "d" / "clinic.sqlite"))
    assert out.exit_code == 0 and (tmp_path / "research" / "patients.csv").is_file()


def test_a_program_without_a_length_names_the_command_line_options(tmp_path):
    result = CliRunner().invoke(main, ["program", "P1", "--schedule", "daily", "--start", "2026-01-05",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--weeks N or --end YYYY-MM-DD" in result.output
    assert "weeks=" not in result.output


def test_program_side_is_printed_on_the_handout_and_calendar_and_a_missing_side_gets_a_hint(tmp_path):
    runner = CliRunner()
    args = ["program", "P1", "--schedule", "three-per-week", "--start", "2026-01-05", "--weeks", "1",
            "--out", str(tmp_path)]
    named = runner.invoke(main, args + ["--side", "left"], catch_exceptions=False)
    folder = tmp_path / "P1-20260105-three-per-week"
    assert named.exit_code == 0 and "hint" not in named.stderr
    assert "Your home exercise program: left hip" in (folder / "handout.html").read_text()
    events = Calendar.from_ical((folder / "calendar.ics").read_bytes()).walk("VEVENT")
    assert sum(str(e["summary"]).endswith(": left hip") for e in events) == 3
    unnamed = runner.invoke(main, args, catch_exceptions=False)
    assert unnamed.exit_code == 0
    assert unnamed.stderr.strip().splitlines() == ["hint: the handout does not name the hip (it has tick boxes "
                                                   "left/right/both to mark by hand); pass --side left, right or both "
                                                   "to print it"]
    assert 'class="box hip"' in (folder / "handout.html").read_text()
    assert runner.invoke(main, args + ["--side", "up"]).exit_code == 2


def test_consecutive_custom_breakout_days_are_refused_in_words_unless_allowed_with_a_reason(tmp_path):
    args = ["program", "P003", "--schedule", "mon,tue", "--start", "2026-12-07", "--weeks", "4", "--out", str(tmp_path)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and not any(tmp_path.iterdir())
    assert refused.stderr == ("error: program for patient 'P003': breakout days mon and tue are consecutive, but this "
                              "schedule needs a recovery day between breakout days; spread them out (e.g. mon, wed, "
                              "fri), or prescribe them anyway with --allow-consecutive --reason TEXT\n")
    no_reason = CliRunner().invoke(main, args + ["--allow-consecutive"])
    assert no_reason.exit_code == 2 and "--allow-consecutive needs --reason TEXT" in no_reason.stderr
    allowed = run(*args, "--allow-consecutive", "--reason", "works away Wednesday to Sunday", "--side", "right")
    assert allowed.exit_code == 0, allowed.output
    assert "8 with breakouts (per week: 2, 2, 2, 2); breakouts on consecutive days, because: works away" in allowed.output
    html = (tmp_path / "P003-20261207-custom-mon-tue" / "handout.html").read_text()
    assert "recovery day between breakout days" not in html
    assert "Your clinician has chosen breakout days back to back (Monday and Tuesday), so there is no recovery" in html


def _cli(*args: str, cwd) -> "subprocess.CompletedProcess":
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hipanalytics.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_no_python_warning_text_reaches_the_terminal(tmp_path):
    """Run as a clinician does (a real process, Python's own warning display): a caveat is one line in words."""
    import re

    refused = _cli("program", "P003", "--schedule", "mon,tue", "--start", "2026-12-07", "--weeks", "4",
                   "--out", str(tmp_path / "out"), cwd=tmp_path)
    store = tmp_path / "clinic.sqlite"
    with Store(store) as opened:  # a consecutive custom program stored without a reason (imported as it was)
        opened.add_records("patients", [{"patient_id": "P1", "birth_year": 1970, "involved_side": "left"}])
        opened.add_records("programs", [{"program_id": "P1-a", "patient_id": "P1", "protocol_id": "hip-ir-breakouts",
                                         "protocol_version": "1.0.0", "schedule": "custom:mon,tue",
                                         "start_date": "2026-01-05", "end_date": "2026-02-01"}])
    exported = _cli("fhir", "export", "--all", "--out", str(tmp_path / "fhir"), "--store", str(store), cwd=tmp_path)
    assert refused.returncode == 1 and exported.returncode == 0, exported.stderr
    assert "error: program for patient 'P003': breakout days mon and tue are consecutive" in refused.stderr
    assert ("warning: program for patient 'P1': breakout days mon and tue are consecutive, but this schedule needs a "
            "recovery day between breakout days") in exported.stderr
    for result in (refused, exported):
        assert "Warning" not in result.stderr and not re.search(r"\.py\b|line \d+|warnings\.warn", result.stderr)


def test_program_calendar_events_have_an_end_and_a_reminder_that_the_command_line_sets(tmp_path):
    from datetime import timedelta

    args = ["program", "P1", "--schedule", "daily", "--start", "2026-01-05", "--weeks", "1", "--side", "right",
            "--out", str(tmp_path)]
    ics = tmp_path / "P1-20260105-daily" / "calendar.ics"
    assert run(*args).exit_code == 0
    events = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert {e.decoded("dtend") - e.decoded("dtstart") for e in events} == {timedelta(minutes=20), timedelta(minutes=10)}
    assert {a.decoded("trigger") for e in events for a in e.walk("VALARM")} == {timedelta(minutes=-15)}
    assert run(*args, "--sequence-minutes", "20", "--reminder-minutes", "30").exit_code == 0
    events = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert {e.decoded("dtend") - e.decoded("dtstart") for e in events} == {timedelta(minutes=30), timedelta(minutes=20)}
    assert {a.decoded("trigger") for e in events for a in e.walk("VALARM")} == {timedelta(minutes=-30)}
    assert run(*args, "--no-reminder").exit_code == 0
    assert b"VALARM" not in ics.read_bytes()
    assert CliRunner().invoke(main, args + ["--reminder-minutes", "-5"]).exit_code == 2


def test_program_with_a_store_saves_the_prescription_where_reports_see_it(tmp_path):
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "left"}])
    out = tmp_path / "programs"
    first = run("program", "P001", "--schedule", "daily", "--start", "2026-12-07", "--weeks", "4", "--store", store,
                "--out", str(out))
    assert first.exit_code == 0, first.output
    assert f"saved in {store}: program P001-20261207-daily" in first.output
    assert "hint: the handout does not name the hip" not in first.output  # the side came from the patient record
    assert "left hip" in (out / "P001-20261207-daily" / "handout.html").read_text()
    stored = Store(store).read("programs")
    assert stored["program_id"].tolist() == ["P001-20261207-daily"]
    # a switch through `program` needs a reason, and a refused save writes no files
    refused = run("program", "P001", "--schedule", "three-per-week", "--start", "2026-12-21", "--weeks", "4",
                  "--store", store, "--out", str(out))
    assert refused.exit_code == 1 and "a schedule change needs a reason" in refused.output
    assert not (out / "P001-20261221-three-per-week").exists()
    switched = run("program", "P001", "--schedule", "three-per-week", "--start", "2026-12-21", "--weeks", "4",
                   "--reason", "pain after daily breakouts", "--store", store, "--out", str(out))
    assert switched.exit_code == 0, switched.output
    assert "P001-20261207-daily now ends 2026-12-20" in switched.output
    ends = Store(store).read("programs").set_index("program_id")["end_date"]
    assert ends["P001-20261207-daily"] == pd.Timestamp("2026-12-20")
    unknown = run("program", "NOBODY", "--schedule", "daily", "--start", "2026-12-07", "--weeks", "4", "--store", store,
                  "--out", str(out))
    assert unknown.exit_code == 1 and "patient 'NOBODY' is not in the store" in unknown.output


def test_import_quarantine_prints_the_rows_set_aside_with_their_reasons(tmp_path):
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "right"}])
    head = "patient_id,measured_on,side,motion,position,mode,instrument,degrees"
    good = "P001,2026-09-26,right,IR,seated_90,active,inclinometer,31"
    bad = [f"P001,2026-09-{day},right,IR,seated_90,active,inclinometer,{day}O" for day in range(10, 16)]
    visit = tmp_path / "visit.csv"
    visit.write_text("\n".join([head, good, "NEW-01,2026-09-26,rigth,IR,seated_90,active,inclinometer,24", *bad]) + "\n")
    result = run("import", str(visit), "--table", "measurements", "--quarantine", "--store", store)
    assert result.exit_code == 3, result.output
    listed = result.output.split("set aside 7 rows, not imported:\n")[1].splitlines()
    assert listed[:3] == [
        "  row 3  side 'rigth': unknown side 'rigth'; fix: use one of left, right (did you mean 'right'?)",
        "  row 3  patient_id 'NEW-01': unknown patient; fix: import the patient into the patients table first, or "
        "correct the id",
        "  row 4  degrees '10O': not a number of degrees; fix: write a plain number such as 32 or 32.5"]
    assert [line.split()[1] for line in listed[3:6]] == ["5", "6", "7"]  # the first five rows, every reason
    quarantine = next(tmp_path.glob("visit-measurements-quarantine-*.csv"))
    assert listed[6:] == [f"  ... and 2 more, see {quarantine}"]


def test_import_says_which_equal_trials_it_imported_once_and_how_to_keep_both(tmp_path):
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "right"}])
    rows = [f"P001,2026-09-26,right,IR,seated_90,active,inclinometer,{d}" for d in (20, 20, 23)]
    visit = tmp_path / "visit.csv"
    visit.write_text("\n".join(["patient_id,measured_on,side,motion,position,mode,instrument,degrees", *rows]) + "\n")
    once = run("import", str(visit), "--table", "measurements", "--store", store)
    assert once.exit_code == 0 and "3 rows read, 2 imported, 0 quarantined, 1 duplicates" in once.output, once.output
    assert once.output.split("suspected duplicates, imported once:\n")[1].splitlines()[0] == (
        "  row 3 (same as row 2): suspected duplicate: rows 2 and 3 hold the same values at the same visit and no "
        "trial number; imported once; if the file holds repeated trials with equal values, import it with "
        "--repeated-trials (or number the trials)")
    again = tmp_path / "visit2.csv"
    again.write_text(visit.read_text().replace("2026-09-26", "2026-09-27"))
    both = run("import", str(again), "--table", "measurements", "--repeated-trials", "--store", store)
    assert "3 imported" in both.output and "suspected" not in both.output, both.output
    with Store(store, create=False) as opened:
        trials = opened.read("measurements").groupby("measured_on")["degrees"].apply(sorted)
    assert [list(t) for t in trials] == [[20.0, 23.0], [20.0, 20.0, 23.0]]


def test_report_clinic_says_which_day_it_reports_on_and_how_many_patients_are_active_then(tmp_path):
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "right"},
                                        {"patient_id": "P002", "birth_year": 1980, "involved_side": "left"}])
        opened.add_records("programs", [{"program_id": "P001-a", "patient_id": "P001", "protocol_id": "hip-ir-breakouts",
                                         "protocol_version": "1.0.0", "schedule": "daily", "start_date": "2026-03-02",
                                         "end_date": "2026-04-12"}])
        opened.add_records("measurements", [
            {"patient_id": pid, "measured_on": day, "side": side, "motion": "internal_rotation",
             "position": "seated_90", "mode": "active", "instrument": "inclinometer", "degrees": 30}
            for pid, day, side in (("P001", "2026-03-02", "right"), ("P001", "2026-04-06", "right"),
                                   ("P002", "2026-06-30", "left"))])  # a late visit moves the report date
    out = str(tmp_path / "reports")
    late = run("report", "clinic", "--store", store, "--out", out)
    assert late.exit_code == 1
    assert late.output.splitlines()[0] == (
        "as of 2026-06-30 (the latest measurement or session in the store; --as-of DATE for another day): 0 active "
        "patients (a program in force or ended at most 28 days before, no discharge; `hipanalytics patients --active` "
        "lists them)")
    assert "no patients to report on" in late.output
    named = run("report", "clinic", "--store", store, "--out", out, "--as-of", "2026-04-10")
    assert named.exit_code == 0, named.output
    assert named.output.startswith("as of 2026-04-10 (--as-of): 1 active patient (a program in force")
    assert "1 report made, 0 failed" in named.output


def _patient_on_daily_breakouts(tmp_path) -> str:
    """A store with P101 on daily breakouts from Monday 2026-06-01 for six weeks."""
    store = str(tmp_path / "clinic.sqlite")
    with Store(store) as opened:
        opened.add_records("patients", [{"patient_id": "P101", "birth_year": 1978, "involved_side": "right"}])
        opened.add_records("programs", [{"program_id": "P101-20260601-daily", "patient_id": "P101",
                                         "protocol_id": "hip-ir-breakouts", "protocol_version": "1.0.0",
                                         "schedule": "daily", "start_date": "2026-06-01", "end_date": "2026-07-12"}])
    return store


def test_switch_ends_the_program_in_force_saves_the_new_one_and_writes_its_files(tmp_path):
    store, out = _patient_on_daily_breakouts(tmp_path), tmp_path / "programs"
    result = run("switch", "P101", "--to", "three-per-week", "--on", "2026-06-15", "--reason", "pain rise after daily "
                 "breakouts", "--who", "AB", "--store", store, "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:4] == [
        "P101: daily -> three-per-week from 2026-06-15 (pain rise after daily breakouts)",
        "  ended  P101-20260601-daily: now ends 2026-06-14 (was 2026-07-12); kept on record",
        "  new    P101-20260615-three-per-week: Breakouts 3x/week, 2026-06-15 to 2026-07-12, 56 sessions, 11 with "
        "breakouts (per week: 2, 3, 3, 3)",
        "  first breakout day: Wed 2026-06-17 (2 days without breakouts after the last daily one, Sun 2026-06-14)"]
    folder = out / "P101-20260615-three-per-week"
    assert sorted(p.name for p in out.iterdir()) == ["P101-20260615-three-per-week"]  # no scratch folder left
    assert {p.name for p in folder.iterdir()} == {"plan.csv", "handout.html", "handout.pdf", "calendar.ics"}
    assert f"  calendar    {folder / 'calendar.ics'}" in lines
    assert "Your home exercise program: right hip" in (folder / "handout.html").read_text()  # the patient's record
    planned = pd.read_csv(folder / "plan.csv")
    assert planned.loc[planned["breakouts"], "date"].iloc[0] == "2026-06-17"
    with Store(store, create=False) as opened:
        programs = opened.read("programs").set_index("program_id")
        history = opened.read("programs", history=True)
    assert programs["end_date"].dt.strftime("%Y-%m-%d").to_dict() == {
        "P101-20260601-daily": "2026-06-14", "P101-20260615-three-per-week": "2026-07-12"}
    assert programs.loc["P101-20260615-three-per-week", "reason"] == "pain rise after daily breakouts"
    assert set(history["recorded_by"]) == {"AB", history["recorded_by"].iloc[0]}
    assert history.loc[history["version"] == 2, "change_reason"].tolist() == [
        "replaced by P101-20260615-three-per-week from 2026-06-15: pain rise after daily breakouts"]


def test_switch_refuses_in_words_and_writes_nothing(tmp_path):
    store, out = _patient_on_daily_breakouts(tmp_path), tmp_path / "programs"

    def switch(*args):
        return CliRunner().invoke(main, ["switch", *args, "--store", store, "--out", str(out)])

    unknown = switch("p101", "--to", "three-per-week", "--on", "2026-06-15", "--reason", "pain")
    assert unknown.exit_code == 1 and "unknown patient 'p101'" in unknown.output and "did you mean 'P101'?" in unknown.output
    none = switch("P101", "--to", "three-per-week", "--on", "2026-08-03", "--reason", "pain")
    assert none.exit_code == 1 and "has no program in force on 2026-08-03" in none.output
    assert "P101-20260601-daily 2026-06-01 to 2026-07-12" in none.output
    same = switch("P101", "--to", "daily", "--on", "2026-06-15", "--reason", "pain")
    assert same.exit_code == 1 and "is on daily already (program 'P101-20260601-daily'" in same.output
    reasonless = switch("P101", "--to", "three-per-week", "--on", "2026-06-15")
    assert reasonless.exit_code == 2 and "a schedule change needs --reason TEXT" in reasonless.output
    assert not out.exists() or not any(out.iterdir())
    with Store(store) as opened:  # a program imported to start later, overlapping: the store refuses the switch
        opened.add_records("programs", [{"program_id": "P101-later", "patient_id": "P101", "protocol_id": "hip-ir-breakouts",
                                         "protocol_version": "1.0.0", "schedule": "daily", "start_date": "2026-06-20",
                                         "end_date": "2026-07-30"}])
    clash = switch("P101", "--to", "three-per-week", "--on", "2026-06-15", "--reason", "pain")
    assert clash.exit_code == 1 and "on or after the new start 2026-06-15" in clash.output
    assert not any(out.iterdir())  # the files were made aside and dropped with the refusal
    assert "Traceback" not in clash.output + same.output + none.output + unknown.output


def test_discharge_ends_the_episode_and_the_program_running_past_it(tmp_path):
    store = _patient_on_daily_breakouts(tmp_path)
    result = run("discharge", "P101", "--on", "2026-07-03", "--reason", "goals_met", "--note", "IR 38, back to tennis",
                 "--store", store)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "P101: episode of care P101-E20260601 (2026-06-01 to 2026-07-03) discharged on 2026-07-03 (goals met)",
        "  program P101-20260601-daily ended early on 2026-07-03 (was to 2026-07-12); kept on record",
        "  a program prescribed after this day starts a new episode of care"]
    with Store(store, create=False) as opened:
        episode = opened.read("episodes").iloc[0]
        assert opened.read("programs")["end_date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-07-03"]
    assert (episode["discharge_reason"], episode["notes"]) == ("goals_met", "IR 38, back to tennis")
    again = CliRunner().invoke(main, ["discharge", "P101", "--on", "2026-07-10", "--store", store])
    assert again.exit_code == 1 and "was discharged on 2026-07-03 already" in again.output
    ahead = CliRunner().invoke(main, ["discharge", "P102", "--on", "2026-07-10", "--store", store])
    assert ahead.exit_code == 1 and "unknown patient 'P102'" in ahead.output
    bad = CliRunner().invoke(main, ["discharge", "P101", "--on", "2026-07-10", "--reason", "cured", "--store", store])
    assert bad.exit_code == 2 and "'cured' is not one of 'goals_met', 'plateau'" in bad.output


def test_a_discharge_the_store_refuses_is_told_in_words_not_as_an_import(tmp_path):
    from datetime import date, timedelta

    store = _patient_on_daily_breakouts(tmp_path)
    later = date.today() + timedelta(days=30)
    ahead = CliRunner().invoke(main, ["discharge", "P101", "--on", f"{later}", "--store", store])
    assert ahead.exit_code == 1
    assert ahead.output.startswith(f"error: the discharge was refused, nothing saved: end_date '{later}': date in the "
                                   "future") and "--quarantine" not in ahead.output


def test_report_overview_names_the_patients_needing_attention_and_why(tmp_path):
    store = _patient_on_daily_breakouts(tmp_path)
    with Store(store) as opened:
        opened.add_records("measurements", [{"patient_id": "P101", "measured_on": "2026-06-01", "side": "right",
                                             "motion": "internal_rotation", "position": "seated_90", "mode": "active",
                                             "instrument": "inclinometer", "degrees": 22}])
        opened.add_records("sessions", [{"patient_id": "P101", "performed_on": f"2026-06-0{day}", "session": "breakouts",
                                         "completion": "full", "pain_before": 2, "pain_after": after}
                                        for day, after in ((2, 3), (3, 3), (4, 6))])
    result = run("report", "overview", "--store", store, "--out", str(tmp_path / "clinic"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "worklist on 2026-06-04: 1 active patient, 1 needing attention",
        "  P101: new pain flag; next: review tolerance before the next breakout session"]


def test_power_command_simulates_mar_drop_out_and_writes_its_files(tmp_path):
    result = run("power", "--per-arm", "10", "--trials", "10", "--dropout", "0.2", "--dropout-mechanism", "MAR",
                 "--workers", "1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "written to" in result.output and (tmp_path / "power.csv").is_file()
    assert "drop-out 20\\%, MAR" in (tmp_path / "power.tex").read_text()
    refused = CliRunner().invoke(main, ["power", "--dropout-mechanism", "MNAR"])
    assert refused.exit_code == 2 and "'MNAR' is not one of 'MCAR', 'MAR'" in refused.output
