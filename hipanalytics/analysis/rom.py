"""ROM trends: one value per visit, one row per measurement series, vectorised over patients.

A *series* is one patient, side, joint, motion, position, mode and instrument: values measured in
different positions or with different instruments are never mixed (hip IR differs by 3-13 degrees
between seated, supine and prone: Simoneau et al., JOSPT 1998; Gradoz et al., J Sport Rehabil
2018; Kouyoumdjian et al., OTSR 2012; and an inclinometer reads about 4.5 degrees more than a
goniometer: Roach et al., IJSPT 2013).

Examples
--------
>>> m = pd.DataFrame({
...     "patient_id": "P1", "side": "right", "joint": "hip", "motion": "internal_rotation",
...     "position": "seated_90", "mode": "active", "instrument": "inclinometer",
...     "measured_on": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-01-19", "2026-02-02"]),
...     "degrees": [20.0, 22.0, 25.0, 29.0]})
>>> t = rom_trends(m)
>>> t[["baseline_deg", "latest_deg", "change_deg", "slope_deg_per_week"]].round(2).values.tolist()
[[21.0, 29.0, 8.0, 2.0]]
>>> bool(t["beyond_mdc"].iloc[0]), float(t["mdc_deg"].iloc[0])
(True, 5.4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SERIES_KEYS", "PRIMARY_METHOD", "METHOD_KEYS", "usual_methods", "usual_method", "MDC_DEFAULTS",
           "NORMATIVE_IR", "RECENT_WEEKS", "TRENDS", "method_in_words", "select_method", "visits", "rom_trends",
           "mixed_series", "visits_to_decide"]

SERIES_KEYS = ["patient_id", "side", "joint", "motion", "position", "mode", "instrument"]
"""Columns that define one measurement series."""

PRIMARY_METHOD = {"joint": "hip", "motion": "internal_rotation", "position": "seated_90", "mode": "active",
                  "instrument": "inclinometer"}
"""The measurement method reports and cohort comparisons use by default (methods are never mixed)."""


_POSITION_WORDS = {"seated_90": "seated 90/90", "supine_90": "supine 90/90", "prone": "prone"}


def method_in_words(method: dict) -> str:
    """A measurement method as a clinician says it.

    Examples
    --------
    >>> method_in_words(PRIMARY_METHOD)
    'seated 90/90, active, inclinometer'
    """
    position = _POSITION_WORDS.get(method["position"], str(method["position"]).replace("_", " "))
    return f"{position}, {method['mode']}, {method['instrument']}"


def select_method(measurements: pd.DataFrame, method: dict | None = None) -> pd.DataFrame:
    """The measurements taken by one method (default :data:`PRIMARY_METHOD`): every column of the
    ``method`` dict must match.

    Examples
    --------
    >>> m = pd.DataFrame({**PRIMARY_METHOD, "degrees": [30.0]}, index=[0])
    >>> len(select_method(m)), len(select_method(m, {"position": "prone"}))
    (1, 0)
    """
    mask = np.ones(len(measurements), dtype=bool)
    for column, value in (method or PRIMARY_METHOD).items():
        mask &= (measurements[column] == value).to_numpy()
    return measurements[mask]


METHOD_KEYS = ("position", "mode", "instrument")
"""How a hip IR value was taken, besides joint and motion: a series never mixes them."""


def usual_methods(measurements: pd.DataFrame) -> pd.DataFrame:
    """Each patient's usual hip IR method: the position, mode and instrument with the most visits.

    A clinic that measures prone with a goniometer is shown its patients' prone goniometer series,
    not an empty seated-inclinometer one; methods are still never mixed. Ties go to
    :data:`PRIMARY_METHOD`, then to the method measured first.

    Returns
    -------
    DataFrame
        ``patient_id``, ``joint``, ``motion``, ``position``, ``mode``, ``instrument``, ``visits``
        (days measured by it) and ``other_methods`` (how many other hip IR methods the patient has).

    Examples
    --------
    >>> m = pd.DataFrame({"patient_id": "P1", "joint": "hip", "motion": "internal_rotation",
    ...                   "position": ["prone", "prone", "seated_90"], "mode": "passive",
    ...                   "instrument": "goniometer", "degrees": [30.0, 32.0, 35.0],
    ...                   "measured_on": pd.to_datetime(["2026-01-05", "2026-01-19", "2026-01-19"])})
    >>> usual_methods(m)[["patient_id", "position", "visits", "other_methods"]].values.tolist()
    [['P1', 'prone', 2, 1]]
    """
    columns = ["patient_id", "joint", "motion", *METHOD_KEYS, "visits", "other_methods"]
    ir = measurements[(measurements["joint"] == PRIMARY_METHOD["joint"])
                      & (measurements["motion"] == PRIMARY_METHOD["motion"])]
    if ir.empty:
        return pd.DataFrame(columns=columns)
    keys = ["patient_id", *METHOD_KEYS]
    g = ir.groupby(keys, sort=False)["measured_on"]
    counts = pd.DataFrame({"visits": g.nunique(), "first": g.min()}).reset_index()
    counts["primary"] = np.logical_and.reduce([counts[k] == PRIMARY_METHOD[k] for k in METHOD_KEYS])
    counts = counts.sort_values(["patient_id", "visits", "primary", "first"], ascending=[True, False, False, True],
                                kind="stable")
    counts["other_methods"] = counts.groupby("patient_id")["visits"].transform("size") - 1
    best = counts.drop_duplicates("patient_id").assign(joint=PRIMARY_METHOD["joint"], motion=PRIMARY_METHOD["motion"])
    return best[columns].reset_index(drop=True)


def usual_method(measurements: pd.DataFrame, patient_id: str) -> dict:
    """A patient's usual hip IR method as a method dict (see :func:`usual_methods`), or
    :data:`PRIMARY_METHOD` for a patient not measured yet."""
    found = usual_methods(measurements[measurements["patient_id"] == patient_id])
    if found.empty:
        return dict(PRIMARY_METHOD)
    return {k: found.iloc[0][k] for k in ("joint", "motion", *METHOD_KEYS)}


MDC_DEFAULTS: dict[tuple[str, str, str], tuple[float, str]] = {
    ("seated_90", "active", "inclinometer"): (
        5.4, "MDC 5.4 degrees, seated single-leg active hip IR by digital inclinometer (Krause et al., "
        "Knee Surg Sports Traumatol Arthrosc 2015;23(9):2562-2567)"),
}
"""Minimal detectable change of hip IR by (position, mode, instrument), with the source. Krause et al.
report 5.4 degrees for single-leg active IR only; other methods take :data:`MDC_FALLBACK`."""

MDC_FALLBACK = (8.6, "MDC95 6.1-8.6 degrees across positions (Gradoz et al., J Sport Rehabil 2018): "
                     "upper value used where no method-specific MDC is known")
"""Used for methods without a specific MDC: the conservative end of the published range."""

NORMATIVE_IR = (29.0, 50.0, "normal adult hip IR means about 29-50 degrees (J Athl Train 2018;53(6):560, Table 1)")
"""Band of normal adult mean hip IR; its low end is the target when both hips are involved, and the
least a one-hip target can be (a side below the normal range is no model for the other)."""

RECENT_WEEKS = 6
"""The recent window of the plateau rule, in weeks before the latest visit: stretching gains come
mostly in the first 4-6 weeks and then level off (Bandy & Irion, Phys Ther 1994;74(9):845-850)."""

TRENDS = ("gaining", "levelled off", "no response yet", "worsening", "uncertain")
"""The recent trend's words (see :func:`rom_trends`)."""

MIN_RECENT_VISITS = 3
MIN_RECENT_SPAN_WEEKS = 3
"""The recent trend is judged on at least 3 visits spanning at least 3 weeks: fewer give a slope
whose CI says nothing."""

TREND_COLUMNS = SERIES_KEYS + [
    "n_visits", "first_visit", "last_visit", "weeks_followed", "baseline_deg", "latest_deg",
    "change_deg", "best_deg", "best_on", "slope_deg_per_week", "slope_ci_low", "slope_ci_high", "mdc_deg", "mdc_source",
    "beyond_mdc", "direction", "recent_weeks", "recent_visits", "recent_slope", "recent_ci_low",
    "recent_ci_high", "recent_change_deg", "recent_change_low", "recent_change_high", "recent_trend", "plateau",
    "to_decide", "involved", "other_side_deg", "asymmetry_deg", "asymmetry_on", "target_deg", "target_source",
    "target_reference", "uninvolved_recent_deg", "to_target_deg", "note",
]


def visits(measurements: pd.DataFrame) -> pd.DataFrame:
    """Aggregate trials to one value per visit and series.

    Parameters
    ----------
    measurements : DataFrame
        Long format with :data:`SERIES_KEYS`, ``measured_on`` and ``degrees``.

    Returns
    -------
    DataFrame
        :data:`SERIES_KEYS`, ``measured_on``, ``degrees`` (mean of the trials), ``n_trials``,
        ``trial_sd`` (NaN for a single trial), sorted by series and date.
    """
    _require(measurements, SERIES_KEYS + ["measured_on", "degrees"], "measurements")
    grouped = measurements.groupby(SERIES_KEYS + ["measured_on"], sort=True, dropna=False)["degrees"]
    out = grouped.agg(degrees="mean", n_trials="count", trial_sd="std").reset_index()
    return out


def mixed_series(measurements: pd.DataFrame) -> pd.DataFrame:
    """Patients and sides measured by more than one method (position, mode or instrument).

    Such values are kept in separate series; this table says where that happened so a reader is
    not surprised by two lines for one hip.

    Returns
    -------
    DataFrame
        ``patient_id``, ``side``, ``joint``, ``motion``, ``methods`` (count), ``method_list``.
    """
    _require(measurements, SERIES_KEYS, "measurements")
    methods = measurements[SERIES_KEYS].drop_duplicates()
    method = methods["position"] + "/" + methods["mode"] + "/" + methods["instrument"]
    grouped = methods.assign(method=method).groupby(["patient_id", "side", "joint", "motion"])["method"]
    out = grouped.agg(methods="nunique", method_list=lambda m: ", ".join(sorted(m))).reset_index()
    return out[out["methods"] > 1].reset_index(drop=True)


def rom_trends(
    measurements: pd.DataFrame,
    *,
    patients: pd.DataFrame | None = None,
    mdc: float | dict[tuple[str, str], float] | None = None,
    recent_weeks: int = RECENT_WEEKS,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """One row per measurement series: baseline, latest, change, slope with 95 % CI, MDC, recent trend.

    Parameters
    ----------
    measurements : DataFrame
        Long format: :data:`SERIES_KEYS`, ``measured_on``, ``degrees`` (several trials per
        visit allowed; they are averaged).
    patients : DataFrame, optional
        ``patient_id`` and ``involved_side`` (left | right | both); adds the involved flag,
        side-to-side asymmetry and the target.
    mdc : float or dict, optional
        MDC95 in degrees for every series, or by ``(position, mode, instrument)``; defaults to
        :data:`MDC_DEFAULTS` and :data:`MDC_FALLBACK` (cited in ``mdc_source``).
    recent_weeks : int, default :data:`RECENT_WEEKS`
        The window of the recent trend: the visits in the last ``recent_weeks`` weeks before the
        latest visit.
    as_of : date-like, optional
        Ignore measurements after this date.

    Returns
    -------
    DataFrame
        :data:`SERIES_KEYS` and

        - ``n_visits``, ``first_visit``, ``last_visit``, ``weeks_followed``
        - ``baseline_deg`` (first visit), ``latest_deg`` (last visit), ``change_deg``, ``best_deg``
          (the highest visit value) and ``best_on`` (its first visit)
        - ``slope_deg_per_week`` with ``slope_ci_low`` / ``slope_ci_high`` (OLS of visit values
          on weeks; t-based 95 % CI; NaN with a ``note`` when fewer than 2 or 3 visits)
        - ``mdc_deg``, ``mdc_source``, ``beyond_mdc`` (abs(change) > MDC), ``direction``
          (improved | worse | no reliable change, over the whole follow-up)
        - the recent trend: ``recent_weeks``, ``recent_visits``, ``recent_slope`` with
          ``recent_ci_low`` / ``recent_ci_high`` (OLS over the window), ``recent_change_deg``
          (the fitted change across the window, with ``recent_change_low`` / ``recent_change_high``,
          its 95 % CI) and ``recent_trend``, one of :data:`TRENDS`:

          * ``gaining``: the slope's CI is above 0 (a reliable gain; beyond the MDC or not yet);
          * ``levelled off``: a gain beyond the MDC since the baseline, and now a precise
            estimate near zero: the recent change's CI lies within plus or minus the MDC;
          * ``no response yet``: no gain beyond the MDC since the baseline (and none recently);
          * ``worsening``: a reliable recent loss (the CI below 0 and the loss beyond the MDC), the
            latest value below the baseline by more than the MDC, or a gain beyond the MDC lost
            again (the latest value more than the MDC below the best, ``best_deg`` on ``best_on``);
          * ``uncertain``: a gain since the baseline, but too few recent visits (fewer than 3, or
            spanning under 3 weeks) or visits too scattered to tell whether it goes on;
            ``to_decide`` says how many more visits, or by when, would tell;
          * missing for a single visit.

          ``plateau`` is ``recent_trend == "levelled off"`` (NA for a single visit). With the
          6-week window and a 5.4-degree MDC a steady gain of 1 degree a week is ``gaining``.
        - ``involved`` (bool or NA); ``asymmetry_deg`` (this side minus the other side, same
          method, measured at the same visit: the latest visit with both sides), ``asymmetry_on``
          (that visit) and ``other_side_deg``; missing when the sides were never measured together
        - ``target_deg``, ``target_source``: for one involved hip, the uninvolved side's recent
          values (same method: the mean of its visits in the last ``recent_weeks`` weeks before its
          latest one), but never below the low end of the normal band
          (:data:`NORMATIVE_IR`); with both hips involved, or the other side not measured, that
          low end; ``target_reference`` (``uninvolved side`` | ``normal range``),
          ``uninvolved_recent_deg`` (the uninvolved side's recent mean, or NaN);
          ``to_target_deg`` (target minus latest)
        - ``note``: why a value is missing.
    """
    _require(measurements, SERIES_KEYS + ["measured_on", "degrees"], "measurements")
    data = measurements
    if as_of is not None:
        data = data[pd.to_datetime(data["measured_on"]) <= pd.Timestamp(as_of)]
    if data.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TREND_COLUMNS})
    v = visits(data)
    v["measured_on"] = pd.to_datetime(v["measured_on"])
    g = v.groupby(SERIES_KEYS, sort=True, dropna=False)
    first = g["measured_on"].transform("min")
    v["weeks"] = (v["measured_on"] - first).dt.days / 7.0

    out = g.agg(
        n_visits=("degrees", "size"), first_visit=("measured_on", "min"), last_visit=("measured_on", "max"),
        baseline_deg=("degrees", "first"), latest_deg=("degrees", "last"), best_deg=("degrees", "max"),
    ).reset_index()
    best = v.loc[g["degrees"].idxmax().to_numpy()]  # the first visit with the best value
    out["best_on"] = best["measured_on"].to_numpy()
    out["weeks_followed"] = (out["last_visit"] - out["first_visit"]).dt.days / 7.0
    out["change_deg"] = out["latest_deg"] - out["baseline_deg"]

    slope, low, high = _ols_slopes(v)
    out["slope_deg_per_week"], out["slope_ci_low"], out["slope_ci_high"] = slope, low, high

    out["mdc_deg"], out["mdc_source"] = _mdc(out, mdc)
    out["beyond_mdc"] = out["change_deg"].abs() > out["mdc_deg"]
    out["direction"] = np.select(
        [out["beyond_mdc"] & (out["change_deg"] > 0), out["beyond_mdc"] & (out["change_deg"] < 0)],
        ["improved", "worse"], "no reliable change")

    out = _recent_trend(v, out, recent_weeks)
    out = _sides(v, out, patients, recent_weeks)
    note = pd.Series("", index=out.index, dtype="str")
    note = note.mask(out["n_visits"] < 3, "two visits: slope without a CI")
    note = note.mask(out["n_visits"] < 2, "single visit: no change or slope")
    unjudged = (out["recent_trend"].isna() & (out["n_visits"] >= 2)).to_numpy(dtype=bool)
    message = f"fewer than 3 visits over 3+ weeks in the last {recent_weeks} weeks: recent trend not judged"
    note = note.mask(unjudged & (note != ""), note + "; " + message).mask(unjudged & (note == ""), message)
    out["note"] = note
    return out[TREND_COLUMNS]


def _require(df: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} needs columns {', '.join(missing)} (has: {', '.join(map(str, df.columns))})")


def _ols_slopes(v: pd.DataFrame, *, with_sd: bool = False):
    """Per-series OLS slope of degrees on weeks with a t-based 95 % CI, from grouped sums (series
    in sorted order); with ``with_sd`` also the SD of the visit values around the line (NaN under
    3 visits)."""
    from scipy import stats  # imported when needed: scipy.stats takes half a second to load

    x, y = v["weeks"], v["degrees"]
    sums = pd.DataFrame({"n": 1, "x": x, "y": y, "xx": x * x, "xy": x * y, "yy": y * y}, index=v.index)
    s = sums.groupby([v[k] for k in SERIES_KEYS], sort=True, dropna=False).sum()
    n = s["n"].to_numpy(dtype=float)
    sxx = s["xx"].to_numpy() - s["x"].to_numpy() ** 2 / n
    sxy = s["xy"].to_numpy() - s["x"].to_numpy() * s["y"].to_numpy() / n
    syy = s["yy"].to_numpy() - s["y"].to_numpy() ** 2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where((n >= 2) & (sxx > 1e-12), sxy / sxx, np.nan)
        sse = np.clip(syy - slope * sxy, 0, None)
        se = np.sqrt(sse / (n - 2) / sxx)
        t = stats.t.ppf(0.975, np.where(n > 2, n - 2, np.nan))
        half = np.where(n > 2, t * se, np.nan)
        sd = np.where(n > 2, np.sqrt(sse / (n - 2)), np.nan)
    return (slope, slope - half, slope + half, sd) if with_sd else (slope, slope - half, slope + half)


def _recent_trend(v: pd.DataFrame, out: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """The recent window's slope, CI and fitted change against the MDC, and its trend in words
    (see :func:`rom_trends`)."""
    from scipy import stats

    last = v.groupby(SERIES_KEYS, sort=True, dropna=False)["measured_on"].transform("max")
    recent = v[v["measured_on"] >= last - pd.Timedelta(days=7 * weeks)]
    slope, low, high, residual_sd = _ols_slopes(recent, with_sd=True)
    g = recent.groupby(SERIES_KEYS, sort=True, dropna=False)
    span = g["weeks"].agg(lambda w: w.max() - w.min())
    window = pd.DataFrame({"recent_slope": slope, "recent_ci_low": low, "recent_ci_high": high,
                           "span": span.to_numpy(), "recent_visits": g.size().to_numpy(),
                           "last_visit_": g["measured_on"].max().to_numpy()}, index=span.index).reset_index()
    window["residual_sd"] = residual_sd
    out = out.merge(window, on=SERIES_KEYS, how="left")
    judged = ((out["recent_visits"] >= MIN_RECENT_VISITS) & (out["span"] >= MIN_RECENT_SPAN_WEEKS)
              & out["recent_ci_low"].notna())
    mdc = out["mdc_deg"]
    change, change_low, change_high = (out[c] * out["span"] for c in ("recent_slope", "recent_ci_low", "recent_ci_high"))
    gained = out["direction"] == "improved"
    reliable_gain = judged & (out["recent_ci_low"] > 0)
    lost = (out["best_deg"] - out["baseline_deg"] > mdc) & (out["best_deg"] - out["latest_deg"] > mdc)
    loss = (judged & (out["recent_ci_high"] < 0) & (change < -mdc)) | (out["direction"] == "worse") | lost
    flat = judged & (change_low > -mdc) & (change_high < mdc)
    several = out["n_visits"] >= 2
    trend = np.select(
        [~several, reliable_gain & (change > mdc), loss, gained & flat, reliable_gain, ~gained, gained],
        ["", "gaining", "worsening", "levelled off", "gaining", "no response yet", "uncertain"], "")
    out["recent_trend"] = pd.Series(trend, index=out.index).replace("", None)
    out["plateau"] = pd.array(np.where(several, trend == "levelled off", None), dtype="boolean")
    out["recent_weeks"] = weeks
    out["recent_change_deg"], out["recent_change_low"], out["recent_change_high"] = (
        change.where(judged), change_low.where(judged), change_high.where(judged))
    for column in ("recent_slope", "recent_ci_low", "recent_ci_high"):
        out[column] = out[column].where(judged)
    t = stats.t.ppf(0.975, np.arange(1, 40))  # for visits_to_decide, looked up once
    out["to_decide"] = [
        visits_to_decide(n, s_, w, m, weeks, last_day, t_table=t) if k == "uncertain" else ""
        for k, n, s_, w, m, last_day in zip(trend, out["recent_visits"], out["residual_sd"], out["span"], mdc,
                                             out["last_visit_"])]
    return out.drop(columns=["span", "residual_sd", "last_visit_"])


def visits_to_decide(visits: int, residual_sd: float, span_weeks: float, mdc: float, weeks: int = RECENT_WEEKS,
                     last_visit=None, *, t_table: np.ndarray | None = None) -> str:
    """What would settle an ``uncertain`` trend, in words.

    With too few recent visits: how many more, by when (3 visits over at least 3 weeks). With
    enough but scattered visits: how many visits in the ``weeks``-week window, spread evenly, give
    the window's change a 95 % CI half-width under the MDC at the scatter seen so far (then a
    change near zero shows as levelled off, and a gain of the MDC or more as a gain); when even
    twice-weekly visits would not, the scatter itself is the problem.

    Examples
    --------
    >>> visits_to_decide(2, float("nan"), 1.0, 5.4, last_visit=pd.Timestamp("2026-03-02"))
    '1 more visit, on or after 2026-03-16 (3 visits over at least 3 weeks tell)'
    >>> visits_to_decide(3, 1.0, 4.0, 5.4)
    'about 5 visits in 6 weeks (one a week) at the scatter seen so far (SD 1.0 degrees around the trend): 2 more'
    >>> visits_to_decide(3, 9.0, 4.0, 5.4)
    'the visits scatter too much (SD 9.0 degrees around the trend) for more visits to tell: check the method (same position, instrument and assessor; mean of 3 trials)'
    """
    from scipy import stats

    visits = int(visits) if pd.notna(visits) else 0
    if visits < MIN_RECENT_VISITS or not span_weeks >= MIN_RECENT_SPAN_WEEKS or pd.isna(residual_sd):
        more = max(MIN_RECENT_VISITS - visits, 1)
        wait = max(MIN_RECENT_SPAN_WEEKS - (span_weeks if pd.notna(span_weeks) else 0), 0)
        when = (f", {'the last ' if more > 1 else ''}on or after "
                f"{pd.Timestamp(last_visit) + pd.Timedelta(weeks=max(wait, 1)):%Y-%m-%d}"
                if last_visit is not None and pd.notna(last_visit) else "")
        return (f"{more} more visit{'s' if more != 1 else ''}{when} ({MIN_RECENT_VISITS} visits over at least "
                f"{MIN_RECENT_SPAN_WEEKS} weeks tell)")
    most = 2 * weeks + 1  # twice a week across the window
    for n in range(max(visits, MIN_RECENT_VISITS), most + 1):
        t = t_table[n - 3] if t_table is not None and n - 3 < len(t_table) else stats.t.ppf(0.975, n - 2)
        half = t * residual_sd * np.sqrt(12 * (n - 1) / (n * (n + 1)))  # n visits evenly over the window
        if half < mdc:
            more = max(n - visits, 1)
            pace = "one a week" if n <= weeks + 1 else "twice a week"
            return (f"about {n} visits in {weeks} weeks ({pace}) at the scatter seen so far (SD {residual_sd:.1f} "
                    f"degrees around the trend): {more} more")
    return (f"the visits scatter too much (SD {residual_sd:.1f} degrees around the trend) for more visits to "
            "tell: check the method (same position, instrument and assessor; mean of 3 trials)")


def _mdc(out: pd.DataFrame, mdc) -> tuple[np.ndarray, np.ndarray]:
    keys = list(zip(out["position"], out["mode"], out["instrument"]))
    if isinstance(mdc, (int, float)):
        return np.full(len(out), float(mdc)), np.full(len(out), "set by the user", dtype=object)
    table = {k: (v, src) for k, (v, src) in MDC_DEFAULTS.items()}
    if isinstance(mdc, dict):
        table.update({k: (float(val), "set by the user") for k, val in mdc.items()})
    values = [table.get(k, MDC_FALLBACK) for k in keys]
    return np.array([v for v, _ in values], dtype=float), np.array([s for _, s in values], dtype=object)


def _sides(v: pd.DataFrame, out: pd.DataFrame, patients: pd.DataFrame | None, weeks: int) -> pd.DataFrame:
    """Asymmetry from the latest visit at which both sides were measured (same method), and the target
    (the uninvolved side's recent mean, never below the normal range)."""
    method = ["patient_id", "joint", "motion", "position", "mode", "instrument"]
    both = v.pivot_table(index=method + ["measured_on"], columns="side", values="degrees", aggfunc="mean")
    for side in ("left", "right"):
        if side not in both:
            both[side] = np.nan
    both = both.dropna(subset=["left", "right"]).reset_index().sort_values("measured_on")
    latest_pair = both.groupby(method, sort=False).tail(1)
    rows = []
    for side, other in (("left", "right"), ("right", "left")):
        rows.append(latest_pair[method].assign(side=side, asymmetry_on=latest_pair["measured_on"],
                                               other_side_deg=latest_pair[other],
                                               asymmetry_deg=latest_pair[side] - latest_pair[other]))
    pairs = pd.concat(rows, ignore_index=True) if len(latest_pair) else pd.DataFrame(
        columns=method + ["side", "asymmetry_on", "other_side_deg", "asymmetry_deg"])
    out = out.merge(pairs, on=method + ["side"], how="left")
    out["asymmetry_on"] = pd.to_datetime(out["asymmetry_on"])
    low, _, source = NORMATIVE_IR
    out["uninvolved_recent_deg"] = np.nan
    if patients is None or "involved_side" not in patients:
        out["involved"] = pd.array([pd.NA] * len(out), dtype="boolean")
        out["target_deg"], out["target_source"], out["target_reference"] = np.nan, "no involved side given", None
    else:
        side = out["patient_id"].map(patients.drop_duplicates("patient_id").set_index("patient_id")["involved_side"])
        out["involved"] = pd.array(np.where(side.isna(), None, (side == out["side"]) | (side == "both")),
                                   dtype="boolean")
        other_side = out["side"].map({"left": "right", "right": "left"})
        latest = v.groupby(method + ["side"])["measured_on"].transform("max")
        recent = v[v["measured_on"] >= latest - pd.Timedelta(days=7 * weeks)]
        uninvolved = recent.groupby(method + ["side"])["degrees"].agg(["mean", "size"])
        dates = recent.groupby(method + ["side"])["measured_on"].agg(["min", "max"])
        key = pd.MultiIndex.from_arrays([out[c] for c in method] + [other_side])
        mean, count = uninvolved["mean"].reindex(key).to_numpy(), uninvolved["size"].reindex(key).to_numpy()
        first, last = dates["min"].reindex(key).to_numpy(), dates["max"].reindex(key).to_numpy()
        one_side = (side.isin(["left", "right"]) & (side == out["side"])).to_numpy()
        ir = (out["motion"] == "internal_rotation").to_numpy()
        has_other = one_side & pd.notna(mean)
        out["uninvolved_recent_deg"] = np.where(has_other, mean, np.nan)
        by_other = has_other & (np.nan_to_num(mean, nan=-np.inf) >= low)
        targeted = (one_side | (side == "both").to_numpy()) & ir
        out["target_deg"] = np.where(by_other, mean, np.where(targeted, low, np.nan))
        out["target_reference"] = np.where(by_other, "uninvolved side", np.where(targeted, "normal range", None))
        described = [f"uninvolved side, same method: mean of {int(n)} visit{'s' if n != 1 else ''} "
                     f"({pd.Timestamp(a):%Y-%m-%d}" + (f" to {pd.Timestamp(b):%Y-%m-%d})" if n != 1 else ")")
                     + f" in the {weeks} weeks to its latest; not below the normal range's low end of {low:g}"
                     if pd.notna(n) else "" for n, a, b in zip(count, first, last)]
        below = [f"{source} (low end); the uninvolved side's recent mean, {m:.1f}, is below it too"
                 if pd.notna(m) else "" for m in mean]
        out["target_source"] = np.select(
            [by_other, has_other & targeted, targeted & (side == "both").to_numpy(), targeted],
            [described, below, source + " (low end): both hips involved",
             source + " (low end): the uninvolved side not measured by this method"],
            "no target: uninvolved side, or not hip IR")
    out["to_target_deg"] = out["target_deg"] - out["latest_deg"]
    return out
