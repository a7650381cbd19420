"""Reading clinic files: encodings, delimiters, Excel, normalisation and the validation report."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest

from hipanalytics.errors import DataValidationError
from hipanalytics.records import SOURCE_ROW, read_records, schema, table_spec

TODAY = date(2026, 11, 1)
HEADER = "patient_id,measured_on,side,joint,motion,position,mode,instrument,degrees,trial"
GOOD = "P001,2026-01-05,left,hip,internal_rotation,seated_90,active,inclinometer,32,1"


def read(text: str, table: str = "measurements", **kwargs):
    kwargs.setdefault("today", TODAY)
    return read_records(io.StringIO(text), table, **kwargs)


def problems(result) -> list[tuple]:
    p = result.report.problems
    return list(zip(p["severity"], p["row"], p["column"], p["value"], p["rule"]))


def test_clean_file_reads_with_no_problems_and_typed_columns():
    result = read(f"{HEADER}\n{GOOD}\n")
    assert result.report.ok and result.report.problems.empty and result.report.normalisations.empty
    row = result.data.iloc[0]
    assert row["degrees"] == 32.0 and row["trial"] == 1 and row[SOURCE_ROW] == 2
    assert row["measured_on"] == pd.Timestamp("2026-01-05")
    schema("measurements").validate(result.data)


@pytest.mark.parametrize(("raw", "value", "rule"), [
    ("32°", 32.0, "unit text removed; the value is in degrees"),
    ("32 deg", 32.0, "unit text removed; the value is in degrees"),
    ("32 degrees", 32.0, "unit text removed; the value is in degrees"),
    ('"32,5"', 32.5, "decimal comma read as a decimal point"),
])
def test_degrees_written_with_units_or_a_decimal_comma_are_normalised_and_reported(raw, value, rule):
    result = read(f"{HEADER}\n{GOOD.replace(',32,', f',{raw},')}\n")
    assert result.report.ok
    assert result.data["degrees"].iloc[0] == value
    change = result.report.normalisations.iloc[0]
    assert (change["row"], change["column"], change["original"], change["rule"]) == (2, "degrees", raw.strip('"'), rule)


@pytest.mark.parametrize("spelling", ["L", "Lt", "left", "LEFT", " Left "])
def test_left_spelled_many_ways_becomes_left(spelling):
    result = read(f"{HEADER}\n{GOOD.replace(',left,', f',{spelling},')}\n")
    assert result.report.ok and result.data["side"].iloc[0] == "left"
    if spelling != "left":
        assert result.report.normalisations["column"].eq("side").any()


def test_every_problem_is_reported_at_once_with_row_column_value_and_fix():
    text = "\n".join([
        HEADER,
        GOOD,
        "P001,2026-01-06,rihgt,hip,IR,90/9,active,inclinometer,abc,x",
        "P001,2026-01-07,left,hip,IR,seated_90,active,inclinometer,95,1",
        "P001,2026-01-08,left,hip,IR,seated_90,active,inclinometer,-25,2",
        "P001,2026-01-09,left,hip,IR,seated_90,active,inclinometer,65,3",
        "P001,2027-01-09,left,hip,IR,seated_90,active,inclinometer,30,1",
    ])
    result = read(text)
    got = problems(result)
    assert ("error", 3, "side", "rihgt", "unknown side 'rihgt'") in got
    assert ("error", 3, "position", "90/9", "unknown position '90/9'") in got
    assert ("error", 3, "degrees", "abc", "not a number of degrees") in got
    assert ("error", 3, "trial", "x", "not a whole number") in got
    assert ("error", 4, "degrees", "95", "hip IR outside -20..90 degrees is not plausible") in got
    assert ("error", 5, "degrees", "-25", "hip IR outside -20..90 degrees is not plausible") in got
    assert ("warning", 6, "degrees", "65", "hip IR outside the usual 0..60 degrees") in got
    assert ("error", 7, "measured_on", "2027-01-09", "date in the future (after 2026-11-01)") in got
    fixes = result.report.problems.set_index(["row", "column"])["fix"]
    assert "did you mean 'right'?" in fixes[(3, "side")]
    assert fixes[(4, "degrees")] == "check for a typing slip or a different motion/side"
    assert result.report.rows_with("error") == {3, 4, 5, 7}
    assert len(result.data) == 6  # nothing dropped
    assert result.valid()[SOURCE_ROW].tolist() == [2, 6]
    assert result.invalid()[SOURCE_ROW].tolist() == [3, 4, 5, 7]
    with pytest.raises(DataValidationError, match="6 rows read, 7 errors, 1 warnings"):
        result.raise_for_errors()


def test_plain_supine_is_refused_because_the_position_changes_ir():
    result = read(f"{HEADER}\n{GOOD.replace('seated_90', 'supine')}\n")
    fix = result.report.problems["fix"].iloc[0]
    assert "supine_90 (hip and knee at 90 degrees)" in fix


@pytest.mark.parametrize(("raw", "iso"), [("2026-01-05", "2026-01-05"), ("2026/01/05", "2026-01-05"),
                                          ("25/03/2026", "2026-03-25"), ("5 Jan 2026", "2026-01-05"),
                                          ('"January 5, 2026"', "2026-01-05"), ("05.01.2026", None)])
def test_unambiguous_dates_in_several_formats_are_read(raw, iso):
    result = read(f"{HEADER}\n{GOOD.replace('2026-01-05', raw)}\n")
    if iso is None:  # 05.01.2026: day and month could swap
        assert result.report.problems["rule"].iloc[0] == "ambiguous date: day and month could be either way round"
        return
    assert result.report.ok, result.report
    assert result.data["measured_on"].iloc[0] == pd.Timestamp(iso)


def test_ambiguous_dates_are_refused_unless_the_order_is_declared():
    text = f"{HEADER}\n{GOOD.replace('2026-01-05', '03/04/2026')}\n{GOOD.replace('2026-01-05', '25/03/2026').replace(',1', ',2')}\n"
    refused = read(text)
    assert refused.report.rows_with("error") == {2}
    assert "other rows of this file are day-first (e.g. '25/03/2026')" in refused.report.problems["fix"].iloc[0]
    day_first = read(text, dates="day-first")
    assert day_first.report.ok and day_first.data["measured_on"].iloc[0] == pd.Timestamp("2026-04-03")
    month_first = read(f"{HEADER}\n{GOOD.replace('2026-01-05', '03/04/2026')}\n", dates="month-first")
    assert month_first.data["measured_on"].iloc[0] == pd.Timestamp("2026-03-04")


def test_missing_required_column_is_an_error_on_the_header_row():
    result = read(HEADER.replace(",degrees", "") + "\n" + GOOD.replace(",32,", ","))
    assert problems(result) == [("error", 1, "degrees", "", "missing required column 'degrees'")]
    assert "e.g. 32.5" in result.report.problems["fix"].iloc[0]


def test_unknown_column_is_a_warning_saying_it_will_not_be_imported():
    result = read(f"{HEADER},colour\n{GOOD},blue\n")
    assert problems(result) == [("warning", 1, "colour", "colour", "column 'colour' is not part of the measurements table")]


def test_empty_file_and_header_only_file():
    empty = read("")
    assert problems(empty)[0][4] == "the file is empty" and empty.report.rows_read == 0
    header_only = read(HEADER + "\n")
    assert not header_only.report.ok and header_only.report.whole_file and header_only.report.rows_read == 0
    assert problems(header_only)[0][4] == "the file has a header but no data rows: nothing to import"


def test_latin1_semicolon_file_with_bom_less_header_is_read_and_reported(tmp_path):
    path = tmp_path / "export.csv"
    text = f"{HEADER};assessor\n".replace(",", ";") + GOOD.replace(",", ";").replace(";32;", ";32,5;") + ";Zoë\n"
    path.write_bytes(text.encode("latin-1"))
    result = read_records(path, "measurements", today=TODAY)
    assert result.report.ok, result.report
    assert result.data["assessor"].iloc[0] == "Zoë" and result.data["degrees"].iloc[0] == 32.5
    rules = result.report.normalisations["rule"].tolist()
    assert ("the file is not UTF-8; read it as cp1252 (Windows/Latin-1 text); give --encoding if it was saved in "
            "another encoding") in rules
    assert "columns are separated by semicolons" in rules


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n".encode("utf-8-sig"))
    result = read_records(path, "measurements", today=TODAY)
    assert result.report.ok and "patient_id" in result.data


def test_excel_with_the_data_on_a_second_sheet(tmp_path):
    path = tmp_path / "clinic.xlsx"
    frame = pd.DataFrame([GOOD.split(",")], columns=HEADER.split(","))
    frame["measured_on"] = pd.to_datetime(frame["measured_on"])
    frame["degrees"] = 32.5
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame().to_excel(writer, sheet_name="Notes", index=False)
        frame.to_excel(writer, sheet_name="ROM", index=False)
    first = read_records(path, "measurements", today=TODAY)
    assert not first.report.ok
    assert "pass --sheet 'ROM'" in first.report.problems["fix"].iloc[0]
    named = read_records(path, "measurements", sheet="ROM", today=TODAY)
    assert named.report.ok, named.report
    assert named.data["measured_on"].iloc[0] == pd.Timestamp("2026-01-05") and named.data["degrees"].iloc[0] == 32.5


def test_parquet_is_read(tmp_path):
    path = tmp_path / "m.parquet"
    frame = pd.DataFrame([GOOD.split(",")], columns=HEADER.split(","))
    frame["degrees"] = 31.5
    frame.to_parquet(path)
    result = read_records(path, "measurements", today=TODAY)
    assert result.report.ok and result.data["degrees"].iloc[0] == 31.5


def test_exact_duplicates_are_reported_and_conflicting_ids_are_errors():
    text = "\n".join([
        "measurement_id," + HEADER,
        "M1," + GOOD,
        "M1," + GOOD,
        "M2," + GOOD.replace(",32,", ",33,"),
        "M2," + GOOD.replace(",32,", ",35,"),
    ])
    result = read(text)
    got = problems(result)
    assert ("duplicate", 3, None, "same as row 2", "duplicate of an earlier row") in got
    conflicts = [g for g in got if g[0] == "error"]
    assert [g[1] for g in conflicts] == [4, 5]
    assert conflicts[0][4] == "the same id on rows with different content: rows 4, 5"
    assert result.valid()[SOURCE_ROW].tolist() == [2]


def test_unknown_patient_and_measurement_before_birth_year():
    patients = pd.DataFrame({"patient_id": ["P001"], "birth_year": [2026]})
    text = f"{HEADER}\n{GOOD.replace('2026-01-05', '2025-12-30')}\n{GOOD.replace('P001', 'P999')}\n"
    got = problems(read(text, patients=patients))
    assert ("error", 2, "measured_on", "2025-12-30", "date before the patient's birth year") in got
    assert ("error", 3, "patient_id", "P999", "unknown patient") in got


P_HEADER = "patient_id,birth_year,involved_side,cohort,allocation,allocated_on"


def test_a_patients_allocation_is_a_schedule_with_an_optional_date():
    text = (f"{P_HEADER}\nP1,1970,left,trial-A,daily,2026-01-05\nP2,1970,left,,Three per week,\n"
            "P3,1970,left,daily,,\nP4,1970,left,,three-per-week,5 Jan 2026\n")
    result = read(text, "patients")
    assert result.report.ok and result.report.problems.empty
    data = result.data.set_index("patient_id")
    assert data["allocation"].fillna("").to_dict() == {"P1": "daily", "P2": "three-per-week", "P3": "", "P4": "three-per-week"}
    assert data["allocated_on"].tolist()[::3] == [pd.Timestamp("2026-01-05")] * 2 and data["allocated_on"].isna().sum() == 2
    assert data.loc["P3", "cohort"] == "daily"  # a label: it says nothing about the allocation
    changes = result.report.normalisations
    assert list(zip(changes["row"], changes["column"], changes["original"], changes["normalised"], changes["rule"])) == [
        (3, "allocation", "Three per week", "three-per-week", "allocation spelling standardised"),
        (5, "allocated_on", "5 Jan 2026", "2026-01-05", "date written as YYYY-MM-DD")]


@pytest.mark.parametrize(("cells", "column", "value", "rule", "fix"), [
    ("weekly,2026-01-05", "allocation", "weekly", "unknown allocation 'weekly'", "use one of daily, three-per-week"),
    ("dialy,", "allocation", "dialy", "unknown allocation 'dialy'",
     "use one of daily, three-per-week (did you mean 'daily'?)"),
    (",2026-01-05", "allocated_on", "2026-01-05", "allocation date without an allocation",
     "fill in allocation (daily or three-per-week), or leave allocated_on empty if the patient was not allocated"),
    ("daily,2026-13-05", "allocated_on", "2026-13-05", "not a date", "write dates as YYYY-MM-DD (e.g. 2026-01-05)"),
    ("daily,03/04/2026", "allocated_on", "03/04/2026", "ambiguous date: day and month could be either way round",
     "declare the order (--dates day-first or --dates month-first) or use YYYY-MM-DD"),
    ("daily,2027-01-04", "allocated_on", "2027-01-04", "date in the future (after 2026-11-01)", "check the year and month"),
])
def test_a_wrong_allocation_is_an_error_in_its_cell_naming_the_file_row_value_and_fix(cells, column, value, rule, fix):
    result = read(f"{P_HEADER}\nP1,1970,left,,daily,2026-01-05\nP2,1970,left,trial-A,{cells}\n", "patients")
    p = result.report.problems
    assert list(zip(p["severity"], p["file"], p["row"], p["column"], p["value"], p["rule"], p["fix"])) == [
        ("error", "<data>", 3, column, value, rule, fix)]
    assert result.valid()["patient_id"].tolist() == ["P1"] and result.invalid()["patient_id"].tolist() == ["P2"]
    assert f"row      3  {column}: '{value}': {rule}; fix: {fix}" in str(result.report)


def test_an_allocation_in_a_workbook_names_the_sheets_row(tmp_path):
    path = tmp_path / "patients.xlsx"
    pd.DataFrame({"patient_id": ["P1", "P2"], "birth_year": [1970, 1980], "involved_side": ["left", "right"],
                  "allocation": ["daily", None], "allocated_on": [pd.Timestamp("2026-01-05")] * 2}).to_excel(path, index=False)
    result = read_records(path, "patients", today=TODAY)
    p = result.report.problems
    assert list(zip(p["file"], p["row"], p["column"], p["value"], p["rule"])) == [
        (str(path), 3, "allocated_on", "2026-01-05", "allocation date without an allocation")]
    assert result.data["allocated_on"].iloc[0] == pd.Timestamp("2026-01-05")


def test_sessions_pain_must_be_whole_nprs_points_from_0_to_10():
    header = "patient_id,performed_on,session,completion,rounds_done,pain_before,pain_after"
    text = f"{header}\nP001,2026-01-05,breakouts,done,3,2,11\nP001,2026-01-06,breakouts,partial,2,4.5,3\n"
    got = problems(read(text, "sessions"))
    assert ("error", 2, "completion", "done", "unknown completion 'done'") in got
    assert ("error", 2, "pain_after", "11", "must be at most 10") in got
    assert ("error", 3, "pain_before", "4.5", "not a whole number") in got


def test_every_table_has_a_spec_and_a_schema():
    for table in ("patients", "programs", "measurements", "sessions"):
        assert table_spec(table) and schema(table).columns
    with pytest.raises(ValueError, match="unknown table 'visits'"):
        table_spec("visits")


def test_report_exports_as_csv(tmp_path):
    result = read(f"{HEADER}\n{GOOD.replace('left', 'sideways')}\n")
    path = result.report.to_csv(tmp_path / "problems.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == ["kind", "file", "row", "column", "value", "normalised", "rule", "fix"]
    assert back.iloc[0][["kind", "value"]].tolist() == ["error", "sideways"]
    spelled = read(f"{HEADER}\n{GOOD.replace('left', 'Lt')}\n").report.to_csv(tmp_path / "changes.csv")
    assert pd.read_csv(spelled)[["kind", "row", "column", "value", "normalised"]].values.tolist() == [
        ["normalised", 2, "side", "Lt", "left"]]


def test_one_bad_row_at_the_end_of_100000_rows_is_found_by_its_spreadsheet_row(tmp_path):
    path = tmp_path / "big.csv"
    rows = [GOOD.replace(",1", f",{1 + i % 3}").replace("2026-01-05", f"2026-0{1 + i % 9}-1{i % 10}")
            .replace("P001", f"P{i // 3:05d}") for i in range(99_999)]
    rows.append(GOOD.replace(",32,", ",3O,"))  # letter O typed for a zero
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    result = read_records(path, "measurements", today=TODAY)
    assert result.report.rows_read == 100_000
    assert problems(result) == [("error", 100_001, "degrees", "3O", "not a number of degrees")]
    assert len(result.valid()) == 99_999


def test_absent_ids_are_derived_from_the_natural_key_and_stable_across_reads():
    text = f"{HEADER}\n{GOOD}\n{GOOD.replace(',32,1', ',34,2')}\n"
    first, again = read(text).data, read(text).data
    assert first["measurement_id"].tolist() == again["measurement_id"].tolist()
    assert first["measurement_id"].iloc[0] == "M|P001|2026-01-05|left|hip|internal_rotation|seated_90|active|inclinometer|1"
    assert first["measurement_id"].nunique() == 2


def test_two_values_for_the_same_trial_conflict():
    result = read(f"{HEADER}\n{GOOD}\n{GOOD.replace(',32,', ',36,')}\n")
    errors = result.report.errors
    assert errors["row"].tolist() == [2, 3]
    assert errors["rule"].iloc[0] == "the same id on rows with different content: rows 2, 3"


def test_trials_without_numbers_are_numbered_in_file_order_within_the_visit():
    header = HEADER.replace(",trial", "")
    body = "\n".join(GOOD.rsplit(",", 1)[0].replace(",32", f",{d}") for d in (30, 31, 29))
    result = read(f"{header}\n{body}\n")
    assert result.report.ok and result.data["trial"].tolist() == [1, 2, 3]
    notes = result.report.normalisations
    assert notes.loc[notes["column"] == "trial", "rule"].eq(
        "trial not given: numbered in file order within the visit").all()


def test_identical_session_rows_stay_separate_sessions():
    header = "patient_id,performed_on,session,completion"
    result = read(f"{header}\nP001,2026-01-05,sequence,full\nP001,2026-01-05,sequence,full\n", "sessions")
    assert result.report.problems.empty
    assert result.data["session_id"].nunique() == 2 and len(result.valid()) == 2


def test_data_dictionary_and_templates_are_in_step_with_the_code(tmp_path):
    from pathlib import Path

    from hipanalytics.records import TABLES, data_dictionary, write_templates

    root = Path(__file__).resolve().parents[1]
    committed = (root / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == data_dictionary(), "regenerate docs/data-dictionary.md with records.data_dictionary()"
    write_templates(tmp_path)
    for table in TABLES:
        assert (root / "data" / "templates" / f"{table}.csv").read_text() == (tmp_path / f"{table}.csv").read_text()
        columns = [c.name for c in table_spec(table)]
        sheet = pd.read_excel(root / "data" / "templates" / "hipanalytics-templates.xlsx", sheet_name=table)
        assert list(sheet.columns) == columns and sheet.empty
        for column in columns:
            assert f"| `{column}` |" in committed


def test_a_filled_in_template_imports(tmp_path):
    from pathlib import Path

    template = Path(__file__).resolve().parents[1] / "data" / "templates" / "measurements.csv"
    path = tmp_path / "measurements.csv"
    path.write_text(template.read_text() + "M1,P001,2026-01-05,left,hip,internal_rotation,seated_90,active,"
                    "inclinometer,31.5,1,AB,\n")
    result = read_records(path, "measurements", today=TODAY)
    assert result.report.ok and result.report.problems.empty, result.report


def test_a_plain_number_written_with_decimals_is_not_reported_as_changed():
    result = read(f"{HEADER}\n{GOOD.replace(',32,', ',32.0,')}\n")
    assert result.report.normalisations.empty and result.data["degrees"].iloc[0] == 32.0


def test_a_sheet_that_does_not_exist_is_a_clear_problem(tmp_path):
    path = tmp_path / "book.xlsx"
    pd.DataFrame({"a": [1]}).to_excel(path, sheet_name="ROM", index=False)
    result = read_records(path, "measurements", sheet="Visits", today=TODAY)
    assert problems(result)[0][4] == "the workbook has no sheet 'Visits'"
    assert result.report.problems["fix"].iloc[0] == "name one of its sheets: 'ROM'"


def test_a_source_row_column_is_read_as_a_quarantine_files_original_row_never_as_this_files_row():
    result = read(f"{HEADER},source_row\n{GOOD},99\n{GOOD.replace(',32,1', ',33,2')},x\n")
    assert result.data["source_row"].tolist() == [2, 3]  # the spreadsheet rows of this file
    assert result.data["original_row"].tolist()[0] == 99
    assert problems(result) == [("error", 3, "source_row", "x", "not a row number of the original file (this "
                                 "column comes from the quarantine file)")]


def test_program_rows_are_checked_against_their_protocol(tmp_path):
    from hipanalytics.records import read_records

    path = tmp_path / "programs.csv"
    path.write_text(
        "program_id,patient_id,protocol_id,protocol_version,schedule,start_date,end_date,breakout_slot,choices\n"
        "A,P1,hip-ir-breakouts,1.0.0,daily,2026-01-05,2026-02-01,,ninety-ninety=ninety-ninety-ir-pails\n"
        "B,P2,hip-ir-breakouts,1.0.0,daily,2026-01-05,2026-02-01,noon,\n"
        "C,P3,hip-ir-breakouts,1.0.0,\"mon,tue\",2026-01-05,2026-02-01,,\n", encoding="utf-8")
    report = read_records(path, "programs", today=date(2026, 11, 1)).report
    assert report.errors[["row", "column"]].values.tolist() == [[3, "program_id"]]
    assert "breakout_slot 'noon' is not a slot" in report.errors["rule"].iloc[0]
    assert report.warnings[["row", "column"]].values.tolist() == [[4, "schedule"]]
    assert "mon and tue are consecutive" in report.warnings["rule"].iloc[0]
