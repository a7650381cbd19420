"""REDCap: the data dictionary generated from our tables, and our records in REDCap's import format."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.records import TABLES, table_spec
from hipanalytics.redcap import DICTIONARY_COLUMNS, field_map, redcap_dictionary, redcap_records
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store

# REDCap's own names for field types and text validations (Project Setup > Data Dictionary)
FIELD_TYPES = {"text", "notes", "radio", "dropdown", "checkbox", "yesno", "truefalse", "calc", "file", "descriptive",
               "slider", "sql"}
VALIDATIONS = {"", "date_ymd", "date_mdy", "date_dmy", "datetime_ymd", "time", "integer", "number", "email", "phone"}


def test_the_dictionary_has_redcaps_columns_and_a_field_per_column_of_ours():
    d = redcap_dictionary()
    assert tuple(d.columns) == DICTIONARY_COLUMNS
    names = d["Variable / Field Name"]
    assert names.iloc[0] == "patient_id" and d["Form Name"].iloc[0] == "patient"  # the record id first
    assert names.is_unique and all(re.fullmatch(r"[a-z][a-z0-9_]{0,25}", n) for n in names)
    assert set(d["Field Type"]) <= FIELD_TYPES
    assert set(d["Text Validation Type OR Show Slider Number"]) <= VALIDATIONS
    assert list(d["Form Name"].unique()) == ["patient", "program", "rom_visit", "session_log", "episode"]
    expected = sum(len(table_spec(t)) for t in TABLES) - (len(TABLES) - 1)
    assert len(d) == expected  # every column once; patient_id only as the record id
    annotations = d.set_index("Variable / Field Name")["Field Annotation"]
    assert annotations["rom_degrees"] == "hipanalytics: measurements.degrees"
    assert annotations["ses_notes"] == "hipanalytics: sessions.notes"


def test_choices_are_our_codes_and_limits_our_plausibility_bounds():
    d = redcap_dictionary().set_index("Variable / Field Name")
    for spec in table_spec("measurements"):
        if spec.kind == "enum":
            choices = d.loc[f"rom_{spec.name}", "Choices, Calculations, OR Slider Labels"]
            assert [c.split(",")[0].strip() for c in choices.split("|")] == list(spec.allowed)
            assert d.loc[f"rom_{spec.name}", "Field Type"] == "radio"
    degrees = d.loc["rom_degrees"]
    assert (degrees["Text Validation Type OR Show Slider Number"], degrees["Text Validation Min"],
            degrees["Text Validation Max"]) == ("number", "-20", "90")  # HIP_IR_ERROR_RANGE
    pain = d.loc["ses_pain_after"]
    assert (pain["Text Validation Type OR Show Slider Number"], pain["Text Validation Min"],
            pain["Text Validation Max"]) == ("integer", "0", "10")
    assert d.loc["ses_performed_at", "Text Validation Type OR Show Slider Number"] == "time"
    assert d.loc["rom_measured_on", "Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert set(d.index[d["Identifier?"] == "y"]) == {"display_name", "rom_notes", "ses_notes", "epi_notes"}
    assert d.loc["rom_measured_on", "Required Field?"] == "y" and d.loc["rom_trial", "Required Field?"] == ""
    assert d.loc["allocation", "Choices, Calculations, OR Slider Labels"] == "daily, daily | three-per-week, three-per-week"
    assert (d.loc["allocated_on", "Text Validation Type OR Show Slider Number"],
            d.loc["allocated_on", "Branching Logic (Show field only if...)"]) == ("date_ymd", "[allocation] <> ''")
    assert set(d.index[d["Branching Logic (Show field only if...)"] != ""]) == {"allocated_on"}


def test_records_out_are_one_row_per_patient_and_an_instance_per_record():
    clinic = generate_clinic(3, seed=5)
    out = redcap_records(clinic)
    fields = set(field_map()["field"])
    assert list(out.columns[:3]) == ["patient_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    assert set(out.columns[3:]) == (fields - {"patient_id"}) | {
        "patient_complete", "program_complete", "rom_visit_complete", "session_log_complete", "episode_complete"}
    counts = out.groupby("redcap_repeat_instrument").size()
    assert counts.to_dict() == {"": 3, "program": len(clinic["programs"]), "rom_visit": len(clinic["measurements"]),
                                "session_log": len(clinic["sessions"])}
    assert out["patient_id"].is_monotonic_increasing  # each patient's rows together, the patient row first
    assert (out.groupby("patient_id")["redcap_repeat_instrument"].first() == "").all()
    visits = out[out["redcap_repeat_instrument"] == "rom_visit"]
    for patient_id, group in visits.groupby("patient_id"):
        assert group["redcap_repeat_instance"].astype(int).tolist() == list(range(1, len(group) + 1))
    m = clinic["measurements"].reset_index(drop=True)
    first = visits[visits["patient_id"] == m.loc[0, "patient_id"]].iloc[0]
    assert (first["rom_measured_on"], first["rom_side"], first["rom_degrees"]) == (
        pd.Timestamp(m.loc[0, "measured_on"]).strftime("%Y-%m-%d"), m.loc[0, "side"], f"{m.loc[0, 'degrees']:g}")
    assert first["rom_visit_complete"] == "2" and first["patient_complete"] == ""
    patient_rows = out[out["redcap_repeat_instrument"] == ""]
    assert (patient_rows["rom_degrees"] == "").all()  # a row holds only its own instrument's fields


def test_cli_writes_the_dictionary_and_the_store_as_redcap_records(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["redcap", "dictionary", "--out", str(tmp_path / "dict.csv")])
    assert result.exit_code == 0 and "48 fields on 5 instruments" in result.output, result.output
    assert pd.read_csv(tmp_path / "dict.csv", dtype=str).columns.tolist() == list(DICTIONARY_COLUMNS)
    store = Store(clinic_store(generate_clinic(2, seed=3), tmp_path, "s.sqlite"))
    result = runner.invoke(main, ["export", "--to-redcap", "--out", str(tmp_path / "records.csv"),
                                  "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0 and "(2 patients and their repeating instruments)" in result.output, result.output
    written = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    assert len(written) == 2 + sum(len(store.read(t)) for t in ("programs", "measurements", "sessions"))
    refused = runner.invoke(main, ["export", "measurements", "--to-redcap", "--out", str(tmp_path / "x.csv"),
                                   "--store", str(tmp_path / "s.sqlite")])
    assert refused.exit_code == 2 and "--to-redcap exports every table" in refused.output


def test_the_mapping_document_lists_every_field_as_the_code_makes_it():
    text = (Path(__file__).resolve().parents[1] / "docs" / "redcap.md").read_text()
    d = redcap_dictionary().set_index("Variable / Field Name")
    for item in field_map().itertuples():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{item.field}` |"))
        assert f"`{item.table}.{item.column}`" in row and f"| {item.form} |" in row
        assert row.split("|")[4].strip().startswith(d.loc[item.field, "Field Type"])


# ----------------------------------------------------------------------------------------------
# Reading REDCap exports back (fixtures in tests/data/redcap, built by hand from REDCap's formats)

REDCAP = Path(__file__).resolve().parent / "data" / "redcap"
SPEC_COLUMNS = {t: [s.name for s in table_spec(t)] for t in ("patients", "programs", "measurements", "sessions")}


def test_the_round_trip_dictionary_records_out_records_in_gives_back_the_store(tmp_path):
    source = clinic_store(generate_clinic(4, seed=8), tmp_path, "a.sqlite")
    runner = CliRunner()
    assert runner.invoke(main, ["redcap", "dictionary", "--out", str(tmp_path / "dict.csv")]).exit_code == 0
    out = runner.invoke(main, ["export", "--to-redcap", "--out", str(tmp_path / "records.csv"), "--store", str(source)])
    assert out.exit_code == 0, out.output
    back = runner.invoke(main, ["import", "--from-redcap", str(tmp_path / "records.csv"), "--dictionary",
                                str(tmp_path / "dict.csv"), "--store", str(tmp_path / "b.sqlite")])
    assert back.exit_code == 0, back.output
    a, b = Store(source), Store(tmp_path / "b.sqlite")
    for table, columns in SPEC_COLUMNS.items():
        left, right = a.read(table)[columns].reset_index(drop=True), b.read(table)[columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_dtype=True)
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    stored = b.read("measurements", history=True).iloc[0]  # the audit keeps the export's row (header = row 1)
    row = records.iloc[int(stored["source_row"]) - 2]
    assert (row["patient_id"], row["rom_measured_on"], row["rom_side"]) == (
        stored["patient_id"], stored["measured_on"].strftime("%Y-%m-%d"), stored["side"])
    total = len(records)
    assert f"{total} REDCap rows read: {total} gave" in back.output and "0 blank rows skipped" in back.output


def test_a_classic_project_with_repeating_instruments(tmp_path):
    result = CliRunner().invoke(main, ["import", "--from-redcap", str(REDCAP / "classic-repeating.csv"), "--dictionary",
                                       str(PREVIOUS_DICTIONARY), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0, result.output
    assert ("10 REDCap rows read: 9 gave 2 patients, 1 programs, 4 measurements, 2 sessions; 1 blank rows skipped; "
            "0 held data only in columns not mapped") in result.output  # the emptied rom_visit instance
    store = Store(tmp_path / "s.sqlite")
    m = store.read("measurements")
    assert sorted(m["degrees"].tolist()) == [17.0, 21.0, 24.0, 33.5] and set(m["assessor"]) == {"AB", "CD"}
    s = store.read("sessions").sort_values("performed_on")
    assert s["performed_at"].tolist()[0] == "18:30" and s["notes"].tolist()[1] == "stopped: groin pinch"
    assert store.read("programs")["schedule"].tolist() == ["daily"]


def test_a_longitudinal_project_with_visit_events(tmp_path):
    result = CliRunner().invoke(main, ["import", "--from-redcap", str(REDCAP / "longitudinal.csv"), "--dictionary",
                                       str(PREVIOUS_DICTIONARY), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0, result.output
    assert "6 REDCap rows read: 5 gave 1 patients, 2 measurements, 2 sessions; 1 blank rows skipped" in result.output
    store = Store(tmp_path / "s.sqlite")
    m = store.read("measurements", history=True).sort_values("measured_on")
    assert m["degrees"].tolist() == [19.0, 22.0] and m["source_row"].tolist() == [3, 4]
    assert store.read("patients")["involved_side"].tolist() == ["both"]
    assert sorted(store.read("sessions")["completion"]) == ["full", "skipped"]


def _dictionary(tmp_path) -> Path:
    redcap_dictionary().to_csv(tmp_path / "dict.csv", index=False)
    return tmp_path / "dict.csv"


PREVIOUS_DICTIONARY = REDCAP / "dictionary-schema3.csv"
"""Our dictionary as hipanalytics wrote it before episodes and next-day pain (schema 3): the
fixture exports come from projects built with it."""


def test_another_projects_export_through_a_mapping_with_checkboxes_wide_rows_and_day_first_dates(tmp_path):
    args = ["import", "--from-redcap", str(REDCAP / "other-export.csv"), "--dictionary",
            str(REDCAP / "other-dictionary.csv"), "--mapping", str(REDCAP / "other-mapping.yaml"),
            "--store", str(tmp_path / "s.sqlite")]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1  # strict: the bad cell refuses everything, named as the export names it
    assert "row      8  degrees (REDCap field ir_left): '4O'" in refused.output, refused.output
    assert Store(tmp_path / "s.sqlite").read("patients").empty
    partial = CliRunner().invoke(main, [*args, "--quarantine", "--quarantine-dir", str(tmp_path / "q")])
    assert partial.exit_code == 3, partial.output
    assert "7 REDCap rows read: 6 gave 2 patients, 7 measurements; 1 blank rows skipped" in partial.output
    store = Store(tmp_path / "s.sqlite")
    patients = store.read("patients").set_index("patient_id")
    assert patients["involved_side"].to_dict() == {"101": "right", "102": "both"}  # checkboxes 2, and 1+2
    assert patients["sex"].to_dict() == {"101": "female", "102": "male"}
    m = store.read("measurements", history=True)
    assert len(m) == 6 and set(m["position"]) == {"seated_90"} and set(m["instrument"]) == {"inclinometer"}
    first = m[(m["patient_id"] == "101") & (m["measured_on"] == pd.Timestamp("2026-01-05"))]  # 05/01/2026, D-M-Y
    assert first.set_index("side")["degrees"].to_dict() == {"left": 30.0, "right": 22.0}
    assert first["source_row"].tolist() == [3, 3]  # one REDCap row, two measurements
    quarantined = pd.read_csv(next((tmp_path / "q").glob("*.csv")), dtype=str)
    assert quarantined["source_row"].tolist() == ["8"] and quarantined["degrees"].tolist() == ["4O"]


def test_files_that_do_not_fit_together_are_refused_with_the_reason(tmp_path):
    from hipanalytics.redcap import RedcapError, read_redcap

    with pytest.raises(RedcapError, match="no record id column 'patient_id'"):
        read_redcap(REDCAP / "other-export.csv", _dictionary(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("record_id: study_id\ntables:\n  measurements:\n    form: hip_rom\n"
                   "    columns: {degrees: ir_middle}\n")
    with pytest.raises(RedcapError, match="field\\(s\\) 'ir_middle' of measurements are not in the data dictionary"):
        read_redcap(REDCAP / "other-export.csv", REDCAP / "other-dictionary.csv", bad)
    bad.write_text("record_id: study_id\ntables:\n  measurements:\n    columns: {angle: ir_left}\n")
    with pytest.raises(RedcapError, match="measurements has no column 'angle'"):
        read_redcap(REDCAP / "other-export.csv", REDCAP / "other-dictionary.csv", bad)


def test_a_blank_line_in_an_export_is_a_blank_row_and_later_rows_keep_their_numbers(tmp_path):
    from hipanalytics.redcap import read_redcap

    lines = (REDCAP / "other-export.csv").read_text().splitlines()
    export = tmp_path / "export.csv"
    export.write_text("\n".join([*lines[:3], "", *lines[3:]]) + "\n")  # a blank line as row 4
    rows = read_redcap(export, REDCAP / "other-dictionary.csv", REDCAP / "other-mapping.yaml")
    assert (rows.rows_read, rows.used, rows.blank, rows.unmapped) == (8, 6, 2, 0)
    bad = rows.tables["measurements"]
    assert bad.loc[bad["degrees"] == "4O", "source_row"].tolist() == [9]


def _redcap_import(tmp_path, export, dictionary):
    return CliRunner().invoke(main, ["import", "--from-redcap", str(export), "--dictionary", str(dictionary),
                                     "--store", str(tmp_path / "s.sqlite")])


def test_the_dictionary_is_checked_against_the_export_and_our_columns(tmp_path):
    export = REDCAP / "classic-repeating.csv"
    field = "Variable / Field Name"
    # a dictionary that lacks a field our tables require
    missing = pd.read_csv(PREVIOUS_DICTIONARY, dtype=str, keep_default_na=False)
    missing[missing[field] != "rom_degrees"].to_csv(tmp_path / "missing.csv", index=False)
    result = _redcap_import(tmp_path, export, tmp_path / "missing.csv")
    assert result.exit_code == 1 and "no field 'rom_degrees', which our tables require" in result.output
    # a tampered one: the degrees field made a date, the side moved to another instrument
    tampered = pd.read_csv(PREVIOUS_DICTIONARY, dtype=str, keep_default_na=False)
    at = tampered[field] == "rom_degrees"
    tampered.loc[at, "Text Validation Type OR Show Slider Number"] = "date_ymd"
    tampered.loc[tampered[field] == "rom_side", "Form Name"] = "patient"
    tampered.to_csv(tmp_path / "tampered.csv", index=False)
    result = _redcap_import(tmp_path, export, tmp_path / "tampered.csv")
    assert result.exit_code == 1 and "field 'rom_degrees' is text (date_ymd) in the dictionary, but " \
                                     "measurements.degrees needs a number" in result.output
    assert "field 'rom_side' is on instrument 'patient' in the dictionary, not 'rom_visit'" in result.output
    # another project's dictionary
    result = _redcap_import(tmp_path, export, REDCAP / "other-dictionary.csv")
    assert result.exit_code == 1 and "other-dictionary.csv" in result.output
    assert "internal error" not in result.output
    assert not (tmp_path / "s.sqlite").exists() or Store(tmp_path / "s.sqlite").read("measurements").empty


def test_a_projects_own_choice_codes_are_translated_through_its_dictionary(tmp_path):
    field = "Variable / Field Name"
    d = pd.read_csv(PREVIOUS_DICTIONARY, dtype=str, keep_default_na=False)
    d.loc[d[field] == "rom_side", "Choices, Calculations, OR Slider Labels"] = "1, Left | 2, Right"
    d.loc[d[field] == "involved_side", "Choices, Calculations, OR Slider Labels"] = "1, Left | 2, Right | 3, Both"
    d.to_csv(tmp_path / "coded.csv", index=False)
    export = pd.read_csv(REDCAP / "classic-repeating.csv", dtype=str, keep_default_na=False)
    export["rom_side"] = export["rom_side"].map({"left": "1", "right": "2", "": ""})
    export["involved_side"] = export["involved_side"].map({"left": "1", "right": "2", "both": "3", "": ""})
    export.to_csv(tmp_path / "coded-export.csv", index=False)
    result = _redcap_import(tmp_path, tmp_path / "coded-export.csv", tmp_path / "coded.csv")
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "s.sqlite")
    original = pd.read_csv(REDCAP / "classic-repeating.csv", dtype=str, keep_default_na=False)
    assert sorted(store.read("measurements")["side"]) == sorted(v for v in original["rom_side"] if v)
    assert sorted(store.read("patients")["involved_side"]) == sorted(v for v in original["involved_side"] if v)
