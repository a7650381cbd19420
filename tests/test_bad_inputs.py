"""Every bad-input file in tests/data/bad, tried through the command line as a clinic would.

For each file: `validate` reports what it should, a strict `import` either imports everything or
nothing, and a `--quarantine` import keeps the row accounting: rows read = imported + quarantined
+ duplicates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.store import Store

BAD = Path(__file__).parent / "data" / "bad"
PATIENTS = Path(__file__).parent / "data" / "patients.csv"

# file: (extra args, validate exit code, texts validate prints, (imported, quarantined, duplicates)
#        or None when the file cannot be read as a table and is refused whole even with --quarantine)
CASES = {
    "missing_column.csv": ([], 1, ["row      1  degrees: '': missing required column 'degrees'"], None),
    "wrong_types.csv": ([], 1, ["row      2  degrees: 'abc': not a number of degrees",
                                "row      3  trial: 'two': not a whole number"], (1, 2, 0)),
    "degrees_with_units.csv": ([], 0, ["3 values normalised", "unit text removed; the value is in degrees"], (3, 0, 0)),
    "comma_decimals.csv": ([], 0, ["decimal comma read as a decimal point"], (2, 0, 0)),
    "impossible_angles.csv": ([], 1, ["row      2  degrees: '-45': hip IR outside -20..90 degrees is not plausible",
                                      "row      3  degrees: '120': hip IR outside -20..90",
                                      "warning   row      4  degrees: '65': hip IR outside the usual 0..60",
                                      "warning   row      5  degrees: '-5': hip IR outside the usual 0..60"], (2, 2, 0)),
    "position_typos.csv": ([], 1, ["row      2  position: '90/9': unknown position '90/9'",
                                   "row      3  position: 'seated 9O': unknown position",
                                   "row      4  position: 'supine': unknown position 'supine'; fix: say which supine test"],
                           (1, 3, 0)),
    "sides_many_ways.csv": ([], 0, ["5 values normalised", "5  side spelling standardised"], (6, 0, 0)),
    "dates_three_formats.csv": ([], 1, ["row      5  measured_on: '03/04/2026': ambiguous date",
                                        "other rows of this file are day-first (e.g. '25/03/2026')"], (3, 1, 0)),
    "future_date.csv": ([], 1, ["measured_on: '2099-01-05': date in the future"], (0, 1, 0)),
    "empty.csv": ([], 1, ["the file is empty"], None),
    "header_only.csv": ([], 0, ["0 rows read", "the file has a header but no data rows"], (0, 0, 0)),
    "latin1.csv": ([], 0, ["the file is not UTF-8; read it as cp1252"], (1, 0, 0)),
    "semicolon.csv": ([], 0, ["columns are separated by semicolons", "decimal comma read as a decimal point"], (2, 0, 0)),
    "second_sheet.xlsx": ([], 1, ["the first sheet 'Read me' is empty", "pass --sheet 'ROM'"], None),
    "conflicting_ids.csv": ([], 1, ["the same id on rows with different content: rows 2, 3"], (1, 2, 0)),
    "duplicate_rows.csv": ([], 0, ["duplicate row      3  -: 'same as row 2': duplicate of an earlier row"], (2, 0, 1)),
    "unknown_patient_and_before_birth.csv": ([], 1, ["patient_id: 'P404': unknown patient",
                                                     "measured_on: '1970-01-05': date before the patient's birth year"],
                                             (1, 2, 0)),
}


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def store_path(tmp_path) -> Path:
    path = tmp_path / "clinic.sqlite"
    assert run("import", PATIENTS, "--table", "patients", "--store", path).exit_code == 0
    return path


def test_every_bad_file_has_a_case():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_through_the_cli(name, store_path, tmp_path):
    args, validate_code, texts, counts = CASES[name]
    path = BAD / name
    checked = run("validate", path, "--table", "measurements", "--store", store_path, *args)
    assert checked.exit_code == validate_code, checked.output
    for text in texts:
        assert text in checked.output, checked.output

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
    partial = run("import", path, "--table", "measurements", "--store", fresh, "--quarantine",
                  "--quarantine-dir", tmp_path / "q", *args)
    assert partial.exit_code in (0, 1, 3), partial.output
    summary = Store(fresh).imports()
    rows = summary[summary["table_name"] == "measurements"]
    if counts is None:
        assert partial.exit_code == 1 and rows.empty and Store(fresh).read("measurements").empty
        return
    imported, quarantined, duplicates = counts
    got = rows.iloc[0]
    assert (got["imported"], got["quarantined"], got["duplicates"]) == (imported, quarantined, duplicates)
    assert got["rows_read"] == got["imported"] + got["quarantined"] + got["duplicates"]
    assert len(Store(fresh).read("measurements")) == imported


def test_the_second_sheet_imports_when_named(store_path):
    result = run("import", BAD / "second_sheet.xlsx", "--table", "measurements", "--sheet", "ROM", "--store", store_path)
    assert result.exit_code == 0 and "2 imported" in result.output


def test_ambiguous_dates_import_once_the_order_is_declared(store_path):
    result = run("import", BAD / "dates_three_formats.csv", "--table", "measurements", "--dates", "day-first",
                 "--store", store_path)
    assert result.exit_code == 0 and "4 imported" in result.output
    dates = sorted(Store(store_path).read("measurements")["measured_on"].dt.strftime("%Y-%m-%d"))
    assert dates == ["2026-01-05", "2026-01-05", "2026-03-25", "2026-04-03"]


def test_the_same_file_twice_adds_nothing(store_path):
    first = run("import", BAD / "sides_many_ways.csv", "--table", "measurements", "--store", store_path)
    again = run("import", BAD / "sides_many_ways.csv", "--table", "measurements", "--store", store_path)
    assert "6 imported" in first.output and "already imported" in again.output
    assert len(Store(store_path).read("measurements")) == 6


def test_100000_rows_with_one_bad_row_at_the_end(store_path, tmp_path):
    header = (BAD / "sides_many_ways.csv").read_text().splitlines()[0]
    day = [str(d.date()) for d in pd.date_range("2024-01-01", periods=900)]
    positions = ("seated_90", "prone", "supine_90")
    rows = [f"P001,{day[i // 120]},{('left', 'right')[i // 20 % 2]},hip,internal_rotation,{positions[i // 40 % 3]},"
            f"active,inclinometer,30,{1 + i % 20}" for i in range(99_999)]
    rows.append("P001,2026-10-01,right,hip,internal_rotation,seated_90,active,inclinometer,3O,1")
    path = tmp_path / "big.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    checked = run("validate", path, "--table", "measurements", "--store", store_path)
    assert checked.exit_code == 1 and "row 100001  degrees: '3O': not a number of degrees" in checked.output
    partial = run("import", path, "--table", "measurements", "--store", store_path, "--quarantine",
                  "--quarantine-dir", tmp_path / "q")
    assert partial.exit_code == 3 and "99999 imported, 1 quarantined, 0 duplicates" in partial.output
