"""Normalising: each column's text to its value, only where the meaning is unambiguous.

``Lt`` -> ``left``, ``32,5°`` -> 32.5, ``25/03/2026`` -> 2026-03-25: every change is reported with
its row, the text as written and the rule. What is ambiguous or impossible is an error in its
cell: a date like 03/04/2026 without a declared order, 12/31/2025 when the file says day-first, a
file mixing day-first and month-first dates, a control character or an over-long text.

The work is done once per distinct value of a column (a million cells usually hold a few hundred
distinct texts) and reported back to every row holding it.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from .columns import DTYPES, FORMULA_TRIGGERS, ID_RULE, ColumnSpec, DateOrder, valid_id
from .report import Collector

__all__ = ["codes_of", "normalise_columns"]

_DEGREES = re.compile(r"^([+-]?\d+(?:[.,]\d+)?)\s*(?:°|º|deg|degs|degree|degrees)?$", re.IGNORECASE)
_INTEGER = re.compile(r"^[+-]?\d+(?:\.0+)?$")
_DATE_TIME = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2})[T ](\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3},\d{3}(?:\D|$)")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE_FORMATS = [  # (pattern, pandas format, ambiguous day/month order?)
    (re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), "%Y-%m-%d", False),
    (re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$"), "%Y/%m/%d", False),
    (re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$"), None, True),
    (re.compile(r"^\d{1,2} [A-Za-z]{3,9} \d{4}$"), "%d %B %Y", False),
    (re.compile(r"^[A-Za-z]{3,9} \d{1,2},? \d{4}$"), "%B %d %Y", False),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SAFETY_QUOTE = re.compile("^'(?=[" + re.escape("".join(FORMULA_TRIGGERS)) + "])")


def codes_of(values: pd.Series) -> tuple[np.ndarray, list]:
    """Factorize a column: integer codes per row (-1 for missing) and the distinct values.

    Arrow-backed text goes through Arrow's dictionary encoding, several times faster than the
    generic path on a million cells.
    """
    array = getattr(values.array, "_pa_array", None)
    if array is not None and (pyarrow.types.is_string(array.type) or pyarrow.types.is_large_string(array.type)):
        encoded = pc.dictionary_encode(array).combine_chunks()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64", copy=False)
        return codes, encoded.dictionary.to_pylist()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype("int64", copy=False), list(uniques)


class _PerUnique:
    """Lets a normaliser work on a column's distinct values and reports per row.

    Normalisers receive the distinct texts with their positions as "rows"; this adaptor turns
    every problem or change they report back into the spreadsheet rows holding that text.
    """

    def __init__(self, collect: Collector, codes: np.ndarray, rows: pd.Series, original: pd.Series):
        self.collect, self.codes, self._original = collect, codes, original
        self.rows = rows.to_numpy()

    def _hit(self, unique_positions) -> np.ndarray:
        positions = np.asarray(pd.Series(unique_positions), dtype="int64")
        lookup = np.full(int(self.codes.max()) + 1 if len(self.codes) else 0, -1)
        lookup[positions] = np.arange(len(positions))
        return lookup[self.codes]

    def _expand(self, unique_positions, *per_unique):
        where = self._hit(unique_positions)
        hit = where >= 0
        taken = [np.asarray(v, dtype=object)[where[hit]] if isinstance(v, (pd.Series, np.ndarray, list)) else v
                 for v in per_unique]
        return hit, taken

    def rows_of(self, unique_positions) -> np.ndarray:
        """The spreadsheet rows holding any of these distinct values."""
        return self.rows[self._hit(unique_positions) >= 0] if len(unique_positions) else self.rows[:0]

    def problem(self, severity, unique_positions, column, _values, rule, fix) -> None:
        if len(unique_positions) == 0:
            return
        hit, (rule, fix) = self._expand(unique_positions, rule, fix)
        self.collect.problem(severity, self.rows[hit], column, self._original[hit].to_numpy(dtype=object), rule, fix)

    def normalised(self, unique_positions, column, _original, new, rule) -> None:
        if len(unique_positions) == 0:
            return
        hit, (new, rule) = self._expand(unique_positions, new, rule)
        self.collect.normalised(self.rows[hit], column, self._original[hit].to_numpy(dtype=object), new, rule)


def _digit_table() -> dict[int, str]:
    table = {c: str(unicodedata.digit(chr(c))) for c in range(0x80, 0x110000)
             if unicodedata.category(chr(c)) == "Nd"}
    # the separators and signs that come with them: full-width forms, Arabic decimal and thousands marks
    table.update({0xFF0E: ".", 0xFF0C: ",", 0x066B: ".", 0x066C: ",", 0xFF0D: "-", 0x2212: "-", 0xFF0B: "+",
                  0xFF0F: "/", 0xFF1A: ":"})
    return table


_DIGITS: dict[int, str] | None = None


def ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of another script (full-width ``３２``, Arabic-Indic ``٣٢``,
    Devanagari ``३२``...) and the separators that come with them written in ASCII.

    Examples
    --------
    >>> ascii_digits("３２．５"), ascii_digits("٣٢٫٥"), ascii_digits("३२"), ascii_digits("32.5")
    ('32.5', '32.5', '32', '32.5')
    """
    global _DIGITS
    if text.isascii():
        return text
    if _DIGITS is None:
        _DIGITS = _digit_table()
    return text.translate(_DIGITS)


def _record_changes(collect, rows, column, before, after, changed, rule):
    if changed.any():
        collect.normalised(rows[changed], column, before[changed], after[changed], rule)


def _enum_fix(spec: ColumnSpec, value: str) -> str:
    if spec.name == "position" and value.strip().lower() == "supine":
        return ("say which supine test: supine_90 (hip and knee at 90 degrees) is supported; "
                "IR differs by position, so it cannot be assumed")
    hint = difflib.get_close_matches(value.lower(), list(spec.aliases), n=1, cutoff=0.5)
    guess = f" (did you mean {spec.aliases[hint[0]]!r}?)" if hint else ""
    return f"use one of {', '.join(spec.allowed)}{guess}"


def _normalise_enum(spec, text, rows, collect):
    key = text.str.lower().str.replace(r"[\s_]+", " ", regex=True).str.strip()
    aliases = {re.sub(r"[\s_]+", " ", k): v for k, v in spec.aliases.items()}
    mapped = key.map(aliases)
    present = text != ""
    unknown = present & mapped.isna()
    if unknown.any():
        values = text[unknown]
        collect.problem("error", rows[unknown], spec.name, values,
                        values.map(lambda v: f"unknown {spec.name.replace('_', ' ')} {v!r}"),
                        values.map(lambda v: _enum_fix(spec, v)))
    changed = present & mapped.notna() & (mapped != text)
    _record_changes(collect, rows, spec.name, text, mapped, changed, f"{spec.name} spelling standardised")
    return mapped.astype("str")


def _normalise_float(spec, text, rows, collect):
    match = text.str.extract(_DEGREES)[0]
    present = text != ""
    bad = present & match.isna()
    collect.problem("error", rows[bad], spec.name, text[bad], f"not a number of {spec.unit or 'units'}",
                    "write a plain number such as 32 or 32.5")
    thousands = present & ~bad & text.str.match(_THOUSANDS)  # 1,234: a thousands separator or a decimal comma?
    collect.problem("error", rows[thousands], spec.name, text[thousands],
                    text[thousands].map(lambda v: f"ambiguous: {v} could be {v.replace(',', '')} (a thousands separator) "
                                                  f"or {v.replace(',', '.')} (a decimal comma)"),
                    "write the number without a thousands separator, with a decimal point (e.g. 32.5)")
    bad = bad | thousands
    number = pd.to_numeric(match.where(~thousands).str.replace(",", ".", regex=False), errors="coerce")
    shown = number.map(lambda v: f"{v:g}", na_action="ignore")
    parsed = present & ~bad
    comma = parsed & text.str.contains(",", regex=False)
    unit = parsed & text.str.contains(r"[^\d.,+\-\s]", regex=True)  # "32.0" is just a number: not reported
    _record_changes(collect, rows, spec.name, text, shown, comma, "decimal comma read as a decimal point")
    _record_changes(collect, rows, spec.name, text, shown, unit, f"unit text removed; the value is in {spec.unit}")
    return number.astype("float64")


_MOST_DIGITS = 15
"""Whole numbers longer than this are refused as written (no column's range comes near; a 64-bit
integer holds 18 digits, a float 15 exactly)."""


def _normalise_int(spec, text, rows, collect):
    present = text != ""
    ok = text.str.match(_INTEGER)
    bad = present & ~ok
    span = f" from {spec.minimum:g} to {spec.maximum:g}" if spec.maximum else ""
    collect.problem("error", rows[bad], spec.name, text[bad], "not a whole number", f"write a whole number{span}")
    digits = text.str.replace(r"^[+-]?0*", "", regex=True).str.split(".").str[0].str.len()
    huge = present & ok & (digits > _MOST_DIGITS)
    if huge.any():  # beyond any column's range, and beyond what a 64-bit integer holds
        collect.problem("error", rows[huge], spec.name, text[huge],
                        digits[huge].map(lambda n: f"a whole number of {n} digits, far too large for {spec.name}"),
                        f"write the year with 4 digits (e.g. {spec.example})" if spec.kind == "year"
                        else f"write a whole number{span or ' of at most ' + str(_MOST_DIGITS) + ' digits'}")
        ok = ok & ~huge
    number = pd.to_numeric(text.where(ok & present), errors="coerce").astype("Int64")
    changed = present & ok & (number.astype("str") != text.str.lstrip("+"))
    _record_changes(collect, rows, spec.name, text, number.astype("str"), changed, "written as a whole number")
    return number


def _normalise_text(spec, text, rows, collect):
    """Text and id columns: the safety quote of our own exports removed; control characters, over-long
    text and (for ids a clinic gives) anything outside the id rule refused."""
    quoted = text.str.contains(_SAFETY_QUOTE)
    if quoted.any():
        unquoted = text.str.replace(_SAFETY_QUOTE, "", regex=True)
        _record_changes(collect, rows, spec.name, text, unquoted, quoted,
                        "spreadsheet-safety quote removed (exports put ' before a leading = + - @)")
        text = unquoted
    control = text.str.contains(_CONTROL)
    if control.any():
        found = text[control].map(lambda v: ", ".join(sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(v)})))
        collect.problem("error", rows[control], spec.name, text[control],
                        "control character(s) " + found + " in the text (invisible; often from a paste of binary data)",
                        "delete the character(s), or type the cell again")
    if spec.max_length:
        long = text.str.len() > spec.max_length
        collect.problem("error", rows[long], spec.name, text[long],
                        text[long].map(lambda v: f"{len(v):,} characters; {spec.name} holds at most {spec.max_length:,}"),
                        "shorten it (the limits are in docs/data-dictionary.md)")
    if spec.id_rule:
        bad = (text != "") & ~control & ~text.map(lambda v: valid_id(v, len(v)))
        collect.problem("error", rows[bad], spec.name, text[bad], f"not a valid id: ids use {ID_RULE}",
                        "change the id in the clinic's system or the file (the same id in every table)")
    return text


class DateEvidence:
    """Rows whose dates can only be day-first (25/03/2026) or only month-first (03/25/2026), over all
    date columns of a file: both in one file, with no order declared, make it inconsistent."""

    def __init__(self):
        self.rows: dict[str, list[tuple[int, str]]] = {"day-first": [], "month-first": []}

    def add(self, kind: str, rows: np.ndarray, text: str) -> None:
        self.rows[kind] += [(int(r), text) for r in rows]

    def check(self, collect: Collector) -> None:
        day, month = (sorted(set(self.rows[k])) for k in ("day-first", "month-first"))
        if day and month:
            def listed(pairs):
                return ", ".join(f"row {r} ({t!r})" for r, t in pairs[:5]) + (f" and {len(pairs) - 5} more"
                                                                              if len(pairs) > 5 else "")
            collect.problem("error", [None], None, [""],
                            f"the file mixes day-first dates ({listed(day)}) and month-first dates ({listed(month)}), "
                            "so no date of the form 03/04/2026 can be trusted",
                            "export the dates again in one order (best YYYY-MM-DD), then declare it with --dates")


def _to_clinic_time(spec, text, stamp, zoned, rows, collect, reported):
    """Date-times with a time-zone offset: converted to the clinic's time zone when one is set
    (:func:`hipanalytics.config.clinic_timezone`), reported; otherwise refused (the date itself may
    differ by a day between zones)."""
    from ..config import TIMEZONE_ENV, clinic_timezone

    zone = clinic_timezone()
    if zone is None:
        collect.problem("error", rows[zoned], spec.name, text[zoned],
                        stamp[3][zoned].map(lambda z: f"a time-zone offset ({z}): the clinic's date and time are not "
                                                      "known without its time zone"),
                        f"set the clinic's time zone ({TIMEZONE_ENV}=Europe/London, an IANA name) to convert it, "
                        "or write local dates and times without an offset")
        reported |= zoned
        return stamp
    local = pd.to_datetime(text[zoned].str.replace(" ", "T", n=1), utc=True, format="ISO8601").dt.tz_convert(zone)
    stamp = stamp.copy()
    stamp.loc[zoned, 0] = local.dt.strftime("%Y-%m-%d")
    stamp.loc[zoned, 1] = local.dt.strftime("%H")
    stamp.loc[zoned, 2] = local.dt.strftime("%M")
    collect.normalised(rows[zoned], spec.name, text[zoned], local.dt.strftime("%Y-%m-%d %H:%M"),
                       f"time-zone offset converted to the clinic's time zone {zone.key} ({TIMEZONE_ENV})")
    return stamp


def _normalise_time(spec, text, rows, collect):
    """A time of day, HH:MM from 00:00 to 23:59 (``8:15`` written ``08:15``, reported); anything else
    refused."""
    parts = text.str.extract(_TIME_OF_DAY)
    hour, minute = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
    present = text != ""
    ok = present & (hour <= 23) & (minute <= 59)
    bad = present & ~ok
    collect.problem("error", rows[bad], spec.name, text[bad], "not a time of day (HH:MM, 00:00 to 23:59)",
                    "write the time as HH:MM, e.g. 08:15 (24:00 is 00:00 of the next day)")
    written = parts[0].str.zfill(2) + ":" + parts[1]
    _record_changes(collect, rows, spec.name, text, written, ok & (written != text), "time written as HH:MM")
    return written.where(ok, text)


def _normalise_date(spec, text, rows, collect, order: DateOrder | None, evidence: DateEvidence):
    """Dates to midnight timestamps; returns them and the time of day of date-time values ('' if none)."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    times = pd.Series("", index=text.index, dtype="str")
    present = text != ""
    reported = pd.Series(False, index=text.index)
    stamp = text.str.extract(_DATE_TIME)
    with_time = present & stamp[0].notna()
    if with_time.any():
        hour, minute = pd.to_numeric(stamp[1], errors="coerce"), pd.to_numeric(stamp[2], errors="coerce")
        impossible = with_time & ((hour > 23) | (minute > 59))
        collect.problem("error", rows[impossible], spec.name, text[impossible], "impossible time of day (hours "
                        "run 00-23, minutes 00-59)", "correct the time, or give the date alone (YYYY-MM-DD)")
        reported |= impossible
        zoned = with_time & ~impossible & stamp[3].notna()
        if zoned.any():
            stamp = _to_clinic_time(spec, text, stamp, zoned, rows, collect, reported)
        with_time &= ~reported
        times[with_time] = stamp[1][with_time].str.zfill(2) + ":" + stamp[2][with_time]
    value = text.where(~with_time, stamp[0]).where(~reported, "")
    handled = ~present | reported
    for pattern, fmt, ambiguous in _DATE_FORMATS:
        mask = present & ~handled & value.str.match(pattern)
        if not mask.any():
            continue
        handled |= mask
        if not ambiguous:
            cleaned = value[mask].str.replace(",", "", regex=False)
            parsed = pd.to_datetime(cleaned, format=fmt, errors="coerce")
            if fmt.startswith("%d %B") or fmt.startswith("%B"):
                alt = pd.to_datetime(cleaned, format=fmt.replace("%B", "%b"), errors="coerce")
                parsed = parsed.fillna(alt)
            result[mask] = parsed
            continue
        parts = value[mask].str.split(r"[/.-]", expand=True, regex=True).astype("int64")
        first, second = parts[0], parts[1]
        if order is None:
            must_day_first = (first > 12) & (second <= 12)
            must_month_first = (second > 12) & (first <= 12)
            for kind, which in (("day-first", must_day_first), ("month-first", must_month_first)):
                for position in which[which].index:
                    evidence.add(kind, collect.rows_of([position]), value[position])
            unclear = ~must_day_first & ~must_month_first & (first != second) & (first <= 12) & (second <= 12)
            if unclear.any():
                idx = unclear[unclear].index
                reported[idx] = True
                hint = ""
                for kind, which in (("day-first", must_day_first), ("month-first", must_month_first)):
                    if which.any() and not hint:
                        hint = f"; other rows of this file are {kind} (e.g. {value[which[which].index[0]]!r})"
                collect.problem("error", rows[idx], spec.name, text[idx],
                                "ambiguous date: day and month could be either way round",
                                "declare the order (--dates day-first or --dates month-first) or use YYYY-MM-DD" + hint)
            day_first = must_day_first | (first == second)
            keep = ~unclear
        else:
            day_first = pd.Series(order == "day-first", index=first.index)
            month = second.where(day_first, first)
            impossible = month > 12
            if impossible.any():
                idx = impossible[impossible].index
                reported[idx] = True
                collect.problem("error", rows[idx], spec.name, text[idx],
                                month[idx].map(lambda m: f"impossible with --dates {order}: {m} is not a month"),
                                "check the date; if the file is in the other order, declare that order instead")
            keep = ~impossible
        day = first.where(day_first, second)
        month = second.where(day_first, first)
        parsed = pd.to_datetime(pd.DataFrame({"year": parts[2], "month": month, "day": day})[keep], errors="coerce")
        result[parsed.index] = parsed
    bad = present & result.isna() & ~reported
    collect.problem("error", rows[bad], spec.name, text[bad], "not a date",
                    "write dates as YYYY-MM-DD (e.g. 2026-01-05)")
    iso = result.dt.strftime("%Y-%m-%d")
    changed = present & result.notna() & (iso != text) & ~with_time
    _record_changes(collect, rows, spec.name, text, iso, changed, "date written as YYYY-MM-DD")
    timed = present & result.notna() & with_time
    _record_changes(collect, rows, spec.name, text, iso, timed, "date-time read as its date (the time of day is "
                    "not part of this column" + ("; it fills performed_at where that is empty)" if spec.name ==
                                                 "performed_on" else ")"))
    return result.astype("datetime64[s]"), times.where(result.notna(), "")


def normalise_columns(spec, raw, rows, data, collect, dates) -> dict[str, tuple[np.ndarray, list]]:
    """Normalise every column of ``raw`` (text, standardised names) into ``data``.

    Returns each column's codes and distinct normalised values (the ids step reuses them).
    """
    coded = {}
    evidence = DateEvidence()
    times = {}
    for col in spec:
        if col.name not in raw.columns:
            data[col.name] = pd.Series(pd.NA, index=raw.index, dtype=DTYPES[col.kind])
            continue
        original = raw[col.name].astype("str")
        codes, uniques = codes_of(original)
        distinct = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
        positions = pd.Series(np.arange(len(distinct)), dtype="int64")
        report = _PerUnique(collect, codes, rows, original)
        text = distinct.str.strip()
        trimmed = text != distinct
        if trimmed.any():
            report.normalised(positions[trimmed], col.name, distinct[trimmed], text[trimmed], "spaces trimmed")
        if col.kind in ("float", "int", "year", "date"):  # one policy for digits of other scripts: written in ASCII
            ascii_text = text.map(ascii_digits)
            changed = ascii_text != text
            if changed.any():
                report.normalised(positions[changed], col.name, text[changed], ascii_text[changed],
                                  "digits of another script (full-width, Arabic-Indic, Devanagari...) written as 0-9")
                text = ascii_text
        if col.kind == "enum":
            value = _normalise_enum(col, text, positions, report)
        elif col.kind == "float":
            value = _normalise_float(col, text, positions, report)
        elif col.kind in ("int", "year"):
            value = _normalise_int(col, text, positions, report)
        elif col.kind == "date":
            value, time_of_day = _normalise_date(col, text, positions, report, dates, evidence)
            times[col.name] = time_of_day.take(codes).set_axis(raw.index)
        else:
            value = _normalise_text(col, text, positions, report)
            if col.name == "performed_at":  # text, but a time of day: HH:MM
                value = _normalise_time(col, value, positions, report)
        value = value.where(text != "").astype(DTYPES[col.kind])
        data[col.name] = value.take(codes).set_axis(raw.index)
        merged, distinct_values = pd.factorize(value, use_na_sentinel=True)  # " P1" and "P1" are one value
        coded[col.name] = (merged[codes].astype("int64"), list(distinct_values))
    if dates is None:
        evidence.check(collect)
    if "performed_at" in data and "performed_on" in times:
        _time_from_date(data, rows, times["performed_on"], collect, coded)
    return coded


def _time_from_date(data, rows, time_of_day, collect, coded) -> None:
    """A session dated with a date-time keeps its time: in performed_at where that is empty."""
    has_time = time_of_day != ""
    fill = has_time & data["performed_at"].isna()
    if fill.any():
        data.loc[fill, "performed_at"] = time_of_day[fill]
        collect.normalised(rows[fill], "performed_at", [""] * int(fill.sum()), time_of_day[fill],
                           "time taken from the date-time in performed_on")
        coded.pop("performed_at", None)  # changed: the ids step codes it afresh
    differs = has_time & ~fill & (data["performed_at"].astype("object") != time_of_day)
    collect.problem("warning", rows[differs], "performed_at", data.loc[differs, "performed_at"],
                    "performed_on holds another time (" + time_of_day[differs] + ")",
                    "performed_at is kept; check which time is right")
