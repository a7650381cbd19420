"""REDCap: the data dictionary generated from our tables, and our records in REDCap's import format."""

from __future__ import annotations

import re

import pandas as pd
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.records import table_spec
from hipanalytics.redcap import DICTIONARY_COLUMNS, field_map, redcap_dictionary, redcap_records
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic, write_clinic

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
    assert list(d["Form Name"].unique()) == ["patient", "program", "rom_visit", "session_log"]
    expected = sum(len(table_spec(t)) for t in ("patients", "programs", "measurements", "sessions")) - 3
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
    assert set(d.index[d["Identifier?"] == "y"]) == {"display_name", "rom_notes", "ses_notes"}
    assert d.loc["rom_measured_on", "Required Field?"] == "y" and d.loc["rom_trial", "Required Field?"] == ""


def test_records_out_are_one_row_per_patient_and_an_instance_per_record():
    clinic = generate_clinic(3, seed=5)
    out = redcap_records(clinic)
    fields = set(field_map()["field"])
    assert list(out.columns[:3]) == ["patient_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    assert set(out.columns[3:]) == (fields - {"patient_id"}) | {
        "patient_complete", "program_complete", "rom_visit_complete", "session_log_complete"}
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
    assert result.exit_code == 0 and "39 fields on 4 instruments" in result.output, result.output
    assert pd.read_csv(tmp_path / "dict.csv", dtype=str).columns.tolist() == list(DICTIONARY_COLUMNS)
    paths = write_clinic(generate_clinic(2, seed=3), tmp_path / "data")
    store = Store(tmp_path / "s.sqlite")
    for table in ("patients", "programs", "measurements", "sessions"):
        store.import_file(paths[table], table)
    result = runner.invoke(main, ["export", "--to-redcap", "--out", str(tmp_path / "records.csv"),
                                  "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0 and "(2 patients and their repeating instruments)" in result.output, result.output
    written = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    assert len(written) == 2 + sum(len(store.read(t)) for t in ("programs", "measurements", "sessions"))
    refused = runner.invoke(main, ["export", "measurements", "--to-redcap", "--out", str(tmp_path / "x.csv"),
                                   "--store", str(tmp_path / "s.sqlite")])
    assert refused.exit_code == 2 and "--to-redcap exports every table" in refused.output


def test_the_mapping_document_lists_every_field_as_the_code_makes_it():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "redcap.md").read_text()
    d = redcap_dictionary().set_index("Variable / Field Name")
    for item in field_map().itertuples():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{item.field}` |"))
        assert f"`{item.table}.{item.column}`" in row and f"| {item.form} |" in row
        assert row.split("|")[4].strip().startswith(d.loc[item.field, "Field Type"])
