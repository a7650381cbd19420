"""Ids and duplicates: ids derived where a file has none, repeated rows found, clashing ids refused.

A measurement or session without an id gets one from its natural key, stable across re-imports.
A row repeated exactly is imported once and reported; two rows with one id and different content
are errors (which is right cannot be known). Without trial numbers, identical measurements at one
visit are suspected duplicates (a file exported twice into one), not extra trials, unless the
user says the file holds repeated trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from .columns import ID_COLUMN, ORIGINAL_ROW, SOURCE_ROW
from .normalise import codes_of
from .report import Collector

__all__ = ["NATURAL_KEY", "derive_ids", "check_duplicates"]

NATURAL_KEY = {
    "measurements": ["patient_id", "measured_on", "side", "joint", "motion", "position", "mode",
                     "instrument", "trial"],
    "sessions": ["patient_id", "performed_on", "performed_at", "session"],
}
"""The columns that identify a measurement or a session when the file gives no id."""


def _key_text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _key_ids(prefix: str, coded: list[tuple[np.ndarray, list]], mask: np.ndarray) -> pd.Series:
    """``prefix`` + the key values joined by ``|`` for the rows in ``mask``: readable and stable.

    Built in Arrow from each column's distinct values and codes, without a Python string per row.
    """
    parts = []
    for codes, uniques in coded:
        texts = pyarrow.array([_key_text(v) for v in uniques] + [""], type=pyarrow.string())
        picked = np.where(codes[mask] < 0, len(uniques), codes[mask])  # missing -> ""
        parts.append(pc.take(texts, pyarrow.array(picked)))
    n = int(mask.sum())
    joined = pc.binary_join_element_wise(pyarrow.array(np.full(n, prefix, dtype=object), type=pyarrow.string()),
                                         *parts, "|")
    return pd.Series(pd.arrays.ArrowStringArray(joined)).astype("str")


def _group_codes(coded: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of several code columns (codes may be -1)."""
    combined = np.zeros(len(coded[0]) if coded else 0, dtype="int64")
    for codes in coded:
        size = int(codes.max()) + 2 if len(codes) else 1
        if combined.max(initial=0) > (np.iinfo("int64").max // size) - size:  # re-number before overflow
            combined = pd.factorize(combined)[0].astype("int64")
        combined = combined * size + (codes + 1)
    return combined


def _cumcount(groups: np.ndarray) -> np.ndarray:
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.array([], dtype=bool)
    position = np.arange(len(ordered))
    first = np.maximum.accumulate(np.where(starts, position, 0)) if len(ordered) else position
    out = np.empty(len(groups), dtype="int64")
    out[order] = position - first
    return out


def _occurrence(frame: pd.DataFrame) -> pd.Series:
    """0 for the first row of each combination of values, 1 for the second, ... (file order)."""
    return pd.Series(_cumcount(_group_codes([codes_of(frame[c])[0] for c in frame.columns])), index=frame.index)


def derive_ids(table: str, data: pd.DataFrame, rows: pd.Series, collect: Collector, coded_columns: dict, *,
               repeated_trials: bool = False) -> tuple[pd.Series | None, dict[int, int]]:
    """Fill absent measurement/session ids from the row's natural key (stable across re-imports).

    The id is the key itself, e.g. ``M|P001|2026-01-05|left|hip|internal_rotation|seated_90|active|
    inclinometer|1``: readable, and the same in every version of hipanalytics.
    Measurements: patient, date, side, joint, motion, position, mode, instrument, trial; rows
    without a trial number are numbered 1, 2, ... in file order within their visit, except a row
    identical to an earlier one (a suspected duplicate) unless ``repeated_trials``. Sessions:
    patient, date, time, template and the occurrence of that combination in the file, so two
    identical rows (a morning and an evening sequence) stay two sessions.

    Returns
    -------
    (Series of bool or None, dict)
        Which rows share their id with another row, when every id was derived (found from the
        key's integer codes, cheaper than comparing the id text), else None; and the suspected
        duplicates: row -> the spreadsheet row it repeats.
    """
    suspected: dict[int, int] = {}
    if table not in NATURAL_KEY:
        return None, suspected
    if table == "measurements":
        no_joint = data["joint"].isna()
        if no_joint.any():
            data.loc[no_joint, "joint"] = "hip"
            collect.normalised(rows[no_joint], "joint", [""] * int(no_joint.sum()), ["hip"] * int(no_joint.sum()),
                               "joint not given: hip assumed (the protocol's joint)")
        suspected = _number_trials(data, rows, collect, repeated_trials)
    columns = NATURAL_KEY[table]
    changed = {"joint", "trial"} if table == "measurements" else set()  # filled in above
    coded = [coded_columns[c] if c in coded_columns and c not in changed else codes_of(data[c]) for c in columns]
    groups = _group_codes([codes for codes, _ in coded])
    if table == "sessions":
        occurrence = _cumcount(groups)
        coded.append((occurrence, list(range(int(occurrence.max()) + 1 if len(occurrence) else 0))))
        repeated = pd.Series(False, index=data.index)  # the occurrence number makes every key unique
    else:
        repeated = pd.Series(pd.Series(groups).duplicated(keep=False).to_numpy(), index=data.index)
    id_col = ID_COLUMN[table]
    missing = data[id_col].isna().to_numpy()
    prefix = "M" if table == "measurements" else "S"
    if missing.all():
        data[id_col] = _key_ids(prefix, coded, missing).set_axis(data.index)
        return repeated, suspected
    if missing.any():
        data.loc[missing, id_col] = _key_ids(prefix, coded, missing).set_axis(data.index[missing])
    return None, suspected


def _number_trials(data, rows, collect, repeated_trials: bool) -> dict[int, int]:
    """Number measurements without a trial in file order within their visit; return the suspected
    duplicates (identical rows at one visit), which take the number of the row they repeat."""
    no_trial = data["trial"].isna() & ~rows.isin(collect.rows_with_error("trial"))  # refused is not "not given"
    if not no_trial.any():
        return {}
    visit = NATURAL_KEY["measurements"][:-1]
    content = [c for c in data.columns if c not in (SOURCE_ROW, ORIGINAL_ROW, "measurement_id", "trial")]
    candidates = data[no_trial]
    repeat = (candidates.duplicated(content, keep="first") if not repeated_trials
              else pd.Series(False, index=candidates.index))
    numbered = _occurrence(candidates.loc[~repeat, visit]) + 1
    data.loc[numbered.index, "trial"] = numbered.astype("Int64")
    collect.normalised(rows[numbered.index], "trial", [""] * len(numbered), numbered.astype("str"),
                       "trial not given: numbered in file order within the visit")
    if not repeat.any():
        return {}
    first = candidates.groupby(content, dropna=False, sort=False)[SOURCE_ROW].transform("min")[repeat]
    by_row = pd.Series(data.index, index=data[SOURCE_ROW].to_numpy())
    data.loc[first.index, "trial"] = data.loc[by_row[first.to_numpy()].to_numpy(), "trial"].to_numpy()
    return dict(zip(data.loc[first.index, SOURCE_ROW].astype(int), first.astype(int)))


def check_duplicates(table: str, data: pd.DataFrame, rows: pd.Series, collect: Collector,
                     repeated: pd.Series | None = None, suspected: dict[int, int] | None = None) -> None:
    """Report identical rows (imported once) and rows sharing an id with different content (errors).

    ``repeated`` marks rows whose id occurs more than once, when already known; ``suspected`` the
    rows without a trial number that repeat an earlier row of the same visit.
    """
    id_col = ID_COLUMN[table]
    suspected = suspected or {}
    if repeated is None:
        codes, _ = codes_of(data[id_col])
        repeated = pd.Series((codes >= 0) & pd.Series(codes).duplicated(keep=False).to_numpy(), index=data.index)
    if not repeated.any():  # identical rows share their id: with unique ids there is nothing to find
        return
    content = [c for c in data.columns if c not in (SOURCE_ROW, ORIGINAL_ROW)]
    exact = data.duplicated(content, keep="first") & repeated
    if exact.any():
        involved = data[data.duplicated(content, keep=False)]
        first_row = involved.groupby(content, dropna=False, sort=False)[SOURCE_ROW].transform("min")
        firsts = first_row[exact[involved.index]]
        plain = [r for r in firsts.index if int(data.loc[r, SOURCE_ROW]) not in suspected]
        collect.problem("duplicate", rows[plain], None, firsts[plain].map(lambda r: f"same as row {r}"),
                        "duplicate of an earlier row", "nothing to do: it is imported once")
        unsure = [r for r in firsts.index if int(data.loc[r, SOURCE_ROW]) in suspected]
        collect.problem("duplicate", rows[unsure], None, firsts[unsure].map(lambda r: f"same as row {r}"),
                        rows[unsure].map(lambda r: f"suspected duplicate: rows {suspected[r]} and {r} hold the "
                                                   "same values at the same visit and no trial number"),
                        "imported once; if the file holds repeated trials with equal values, import it with "
                        "--repeated-trials (or number the trials)")
    ids = data[id_col]
    clash = ids.notna() & ~exact & data[~exact].duplicated(id_col, keep=False).reindex(data.index, fill_value=False)
    if clash.any():
        listing = data[clash].groupby(id_col)[SOURCE_ROW].agg(lambda r: ", ".join(map(str, r)))
        collect.problem("error", rows[clash], id_col, ids[clash],
                        "the same id on rows with different content: " + ids[clash].map(lambda i: f"rows {listing[i]}"),
                        "keep the correct row, or give each row its own id")
