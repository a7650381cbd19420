"""The data dictionary (``docs/data-dictionary.md``) and the empty import templates, generated from
the column definitions so that what the docs say is what the reader does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .columns import (ALLOCATIONS, HIP_IR_ERROR_RANGE, HIP_IR_WARNING_RANGE, ID_RULE, RESEARCH_EXPORT, TABLES,
                      table_spec)

__all__ = ["data_dictionary", "write_templates"]

_KIND_TEXT = {"id": "text (identifier)", "text": "text", "date": "date (YYYY-MM-DD preferred)",
              "int": "whole number", "year": "year (4 digits)", "float": "number", "enum": "one of a list"}


def data_dictionary() -> str:
    """The data dictionary (Markdown) of every table, generated from the column definitions."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `hipanalytics/records/columns.py` (`hipanalytics.records.data_dictionary()`); a test",
        "keeps this file in step with the code. Column names are matched case-insensitively, spaces read as `_`.",
        "Row numbers in error messages are spreadsheet rows: the header is row 1.",
        "",
        "## Reading files",
        "",
        "- Formats: CSV/TSV/TXT (comma, semicolon, tab or pipe separated), Excel `.xlsx` (`--sheet`), Parquet.",
        "  Workbooks: the first visible sheet is read by default (hidden sheets are named, not read); hidden rows",
        "  and columns are read and named; a merged cell below its first row and a formula whose value was never",
        "  computed and saved are errors in their cells (they would read as empty); a workbook that unpacks to",
        "  more than 1 GiB, or a part over 50 MB more than 200 times its compressed size, is refused unread.",
        "  The format is told from the content: a workbook or any binary file renamed `.csv` is refused with",
        "  what it looks like, never misread.",
        "- Encodings: UTF-8 (with or without byte-order mark), UTF-16 and UTF-32 with a byte-order mark (Excel's",
        "  \"Unicode text\" export is tab-separated UTF-16), Windows-1252 and Latin-1 (reported). UTF-16 without a",
        "  byte-order mark is refused with the `--encoding utf-16-le` (or `-be`) to give; `--encoding` names any",
        "  other encoding.",
        "- Every row keeps its spreadsheet number: blank lines and quoted line breaks do not shift it. A row with",
        "  more or fewer fields than the header is an error naming both counts (set aside with `--quarantine`);",
        "  empty fields beyond the header are dropped and reported only when no number column looks split by a",
        "  decimal comma (`...,32,5,` under `degrees,trial` is refused, never read as 32 degrees, trial 5) and the",
        "  row's other values pass their columns.",
        "- A header cell longer than 200 characters is not a column name: the file is refused. Whole numbers of",
        "  more than 15 digits are refused in their cell.",
        "- A column name given twice (also `Degrees` and `degrees`) refuses the file, naming both columns: their",
        "  values may differ. Columns not in the table are listed in one warning and not imported.",
        "- Fully blank rows and a trailing summary row (no patient id; Total, Sum, Mean, Average, Median or Count",
        "  in its first cells) are skipped and reported: rows read = imported + quarantined + duplicates + skipped.",
        "  Blank rows after the last filled row are not rows. A file with a header and no data rows is refused.",
        "- A quarantine file written by `import --quarantine`, once corrected, imports directly: its `problems`",
        "  column is ignored and its `source_row` (the row in the file first imported) is kept for the audit.",
        "",
        "## Values",
        "",
        "Accepted spellings are normalised and every normalisation is listed in the validation report",
        "(`--report FILE` writes every change with its row, column, value before and after, and rule):",
        "sides `L`/`Lt`/`left` -> `left`; `32°`, `32 deg`, `32,5` -> 32 / 32.5 degrees; spaces trimmed;",
        "digits of other scripts in number and date columns (full-width `３２`, Arabic-Indic `٣٢`) -> `32`",
        "(ids keep to the id rule, so such digits are refused there);",
        "dates `2026-01-05`, `2026/01/05`, `5 Jan 2026`, `January 5, 2026`, and `25/03/2026` (unambiguous);",
        "date-times `2026-03-04T10:00:00` (with or without seconds) are read as their date, and in",
        "`performed_on` the time fills an empty `performed_at` (`HH:MM`, `8:15` written `08:15`).",
        "Values that could be read two ways are refused, never guessed: `1,234` (a thousands separator or a",
        "decimal comma?), an impossible time (`25:00`, `24:00`, `18:61`), and a date-time with a time-zone offset",
        "(`+01:00`, `Z`) unless the clinic's time zone is set (`HIPANALYTICS_TIMEZONE=Europe/London`, an IANA",
        "name): then it is converted to the clinic's date and time, and reported.",
        "A date like `03/04/2026` is refused unless the order is declared (`--dates day-first|month-first`);",
        "a declared order is enforced (`12/31/2025` is refused with `--dates day-first`), and a file that mixes",
        "day-first and month-first dates is refused as inconsistent, naming the rows.",
        "Measurements without a trial number are numbered in file order within their visit; a row identical",
        "to an earlier one at the same visit is a suspected duplicate (imported once) unless `--repeated-trials`.",
        "",
        f"**Patient and program ids** use {ID_RULE}; the longest allowed is in the `max length` column (they",
        "name report and handout files, so nothing that could climb out of a folder is accepted). A patient id",
        "may not repeat a stored or earlier one in another letter case (`p001` beside `P001`): Windows and macOS",
        "treat such file names as one file, and it is usually the same patient typed twice. Patient ids of",
        "the form `SYN-nnnnn` are reserved for synthetic patients (the sample clinic): every report and app page",
        "that shows one says the data are invented.",
        "",
        "**Text** cells may hold any printable characters, tabs and line breaks; other control characters",
        "(U+0000-U+001F, U+007F-U+009F) are errors in their cell. Each text column has a maximum length.",
        "",
        "**Exports are spreadsheet-safe** (OWASP CSV injection): in CSV and Excel files written by hipanalytics",
        "(exports, quarantine files, reports of problems), a text cell starting with `=`, `+`, `-`, `@`, a tab or a",
        "carriage return gets a leading `'`, so a spreadsheet shows it as text instead of running it as a formula.",
        "Numbers are not touched, the stored value is unchanged, and an import removes that quote again (reported).",
        "",
        "**Allocation** (patients): a randomised patient's arm is declared in `allocation` (one of "
        f"{', '.join(f'`{a}`' for a in ALLOCATIONS)}),",
        "with the allocation date in `allocated_on`. The cohort report's assigned schedule is the `allocation` when",
        "given, else the schedule of the patient's first program; time zero is `allocated_on` when given, else the",
        "first program's start (so an allocation without a date is accepted). An `allocated_on` without an",
        "`allocation` is an error. The report calls the comparison randomised only when every patient it analyses",
        "has an allocation. `cohort` is a free research label (`report cohort --cohort` selects patients by it) and",
        "is never read as an arm; hipanalytics before store revision 0005 read a cohort of exactly `daily` or `three-per-week`",
        "as the arm, so upgrading a store copies such a cohort into `allocation` (with no `allocated_on`).",
        "",
        "**Research export** (`export --deidentify`): the last column of each table says what the de-identified",
        "export does with the column: *kept*, *pseudonymised* (keyed hash), *shifted* (dates: one shift per",
        "patient), *generalised*, *recoded* (a value outside the named vocabulary becomes a keyed code: free text",
        "that could carry a name never leaves) or *dropped*. The list is an allow-list: a column it does not name",
        "is dropped. The method is in the export's README and in `docs/store.md`.",
        "",
        "Templates to fill in: `data/templates/<table>.csv` and `data/templates/hipanalytics-templates.xlsx`.",
        "",
    ]
    for table in TABLES:
        lines += [f"## {table}", "",
                  "| column | required | empty allowed | type | unit | allowed values / range | max length | meaning | example "
                  "| research export |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in table_spec(table):
            allowed = ", ".join(f"`{v}`" for v in c.allowed)
            if c.aliases:
                extra = sorted({k for k, v in c.aliases.items() if k != v})
                allowed += f" (also read: {', '.join(extra)})" if extra else ""
            if c.minimum is not None or c.maximum is not None:
                allowed += f"{c.minimum:g}" if c.minimum is not None else ""
                allowed += f" to {c.maximum:g}" if c.maximum is not None else " or more"
            if c.id_rule:
                allowed += "the id rule above"
            meaning = c.description + (f". Source: {c.source}" if c.source else "")
            length = f"{c.max_length:,}" if c.max_length else ""
            lines.append(f"| `{c.name}` | {'yes' if c.required else 'no'} | {'yes' if c.nullable else 'no'} | "
                         f"{_KIND_TEXT[c.kind]} | {c.unit} | {allowed} | {length} | {meaning} | {c.example} | "
                         f"{_research(table, c.name)} |")
        example = ",".join(c.example for c in table_spec(table))
        lines += ["", "Example row:", "", "```csv", ",".join(c.name for c in table_spec(table)), example, "```", ""]
    lines += [
        "## Plausibility rules",
        "",
        f"- Hip internal rotation outside {HIP_IR_ERROR_RANGE[0]:g}..{HIP_IR_ERROR_RANGE[1]:g} degrees is an error; "
        f"outside {HIP_IR_WARNING_RANGE[0]:g}..{HIP_IR_WARNING_RANGE[1]:g} a warning (normal adult means about 29-50, "
        "SD 5-11: J Athl Train 2018;53(6):560, Table 1).",
        "- Visit and session dates in the future are errors (a program may start or end in the future); so are",
        "  measurements or sessions dated before the patient's birth year, and records for a patient who is not",
        "  in the store.",
        "- Each program row must be a valid program of its protocol: a known schedule or weekday set, slot,",
        "  choices, dose overrides and left-out exercises (a recovery schedule with consecutive breakout days is",
        "  a warning unless the row's reason says why).",
        "- Measurement position and instrument are kept exactly: IR differs by 3-13 degrees between seated, supine",
        "  and prone (Simoneau 1998; Gradoz 2018; Kouyoumdjian 2012) and by about 4.5 degrees between inclinometer",
        "  and goniometer (Roach 2013), so a plain `supine` is refused rather than guessed.",
        "- Two rows with the same id but different content are errors; identical rows are reported duplicates",
        "  and imported once. Without `measurement_id`/`session_id` the id is derived from the row's natural key.",
        "",
    ]
    return "\n".join(lines)


def _research(table: str, column: str) -> str:
    treatment, how = RESEARCH_EXPORT[table].get(column, ("dropped", ""))
    return f"{treatment}: {how}" if how else treatment


def write_templates(folder: str | Path) -> list[Path]:
    """Write a header-only CSV per table and one Excel workbook with a sheet per table.

    The templates hold no example row, so a filled-in template never imports made-up data;
    example rows are in the data dictionary.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    frames = {}
    for table in TABLES:
        spec = table_spec(table)
        frames[table] = pd.DataFrame(columns=[c.name for c in spec])
        path = folder / f"{table}.csv"
        frames[table].to_csv(path, index=False)
        written.append(path)
    workbook = folder / "hipanalytics-templates.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        for table, frame in frames.items():
            frame.to_excel(writer, sheet_name=table, index=False)
    written.append(workbook)
    return written
