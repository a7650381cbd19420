"""Cohort comparison of breakout schedules: per-patient outcomes, group tests, a linear mixed model
of the weekly gain, dose-response and Table 1. The trial analysis (estimand, primary analysis,
missing data, per protocol, flow) is in :mod:`hipanalytics.analysis.trial`.

Examples
--------
>>> from hipanalytics.synthetic import generate_clinic
>>> c = generate_clinic(60, seed=5)
>>> out = patient_outcomes(c["measurements"], c["patients"], c["programs"], c["sessions"], week=6)
>>> sorted(out["schedule"].unique())
['daily', 'three-per-week']
>>> table = compare_groups(out, "change_deg")
>>> list(table["statistic"])[:3]
['mean difference (Welch)', 'Hedges g', 'Mann-Whitney U']
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import HipAnalyticsError, HipAnalyticsWarning
from ..records.columns import ALLOCATIONS
from .adherence import adherence_summary
from .rom import PRIMARY_METHOD, rom_trends, select_method, visits

__all__ = [
    "PRIMARY_METHOD", "ConvergenceWarning", "SmallCohortWarning", "patient_outcomes", "cohort_visits",
    "compare_groups", "mixed_model", "dose_response", "table_one", "assigned_schedule", "time_zero",
    "BASELINE_WINDOW_DAYS",
]

BASELINE_WINDOW_DAYS = (-14, 3)
"""Baseline: a hip's last measurement from 14 days before to 3 days after time zero (the evaluation
visit that led to the prescription or allocation, or the program's first days), as a trial pre-specifies a
baseline window: never a later visit, so a missing day-0 visit leaves the patient without a
baseline rather than making week 2 the baseline. The 14 days match
:data:`hipanalytics.analysis.episodes.BASELINE_LOOKBACK_DAYS`; the 3 days allow a visit in the
program's first half week."""



class SmallCohortWarning(HipAnalyticsWarning):
    """A group is too small for the requested statistic; the value is NaN with a reason."""


class ConvergenceWarning(HipAnalyticsWarning):
    """The mixed model with random slopes was singular or did not converge; a random-intercept
    model was fitted."""


def assigned_schedule(patients: pd.DataFrame, programs: pd.DataFrame) -> pd.Series:
    """The schedule each patient was assigned: their ``allocation`` (the randomised arm) when it
    names a schedule, else the schedule of their first program. ``cohort`` is a free label and is
    never read as an arm.

    Examples
    --------
    >>> p = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "cohort": ["daily", "daily", None],
    ...                   "allocation": ["three-per-week", None, "daily"]})
    >>> g = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "schedule": ["daily", "daily", "three-per-week"],
    ...                   "start_date": ["2026-01-05", "2026-01-05", "2026-01-05"]})
    >>> assigned_schedule(p, g).tolist()
    ['three-per-week', 'daily', 'daily']
    """
    first = (programs.assign(start=pd.to_datetime(programs["start_date"])).sort_values("start")
             .drop_duplicates("patient_id").set_index("patient_id")["schedule"])
    assigned = first.reindex(patients["patient_id"]).to_numpy()
    if "allocation" in patients:
        allocation = pd.Series(patients["allocation"].to_numpy(dtype=object))
        named = allocation.isin(set(ALLOCATIONS) | set(programs["schedule"])).to_numpy()
        assigned = np.where(named, allocation.to_numpy(), assigned)
    return pd.Series(assigned, index=patients["patient_id"].to_numpy(), name="schedule")


def time_zero(patients: pd.DataFrame, programs: pd.DataFrame) -> pd.Series:
    """Each patient's time zero: the allocation date (``allocated_on``) when given, else the start
    of their first program, when the compared strategies begin (NaT for a patient with neither).

    Examples
    --------
    >>> p = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "allocated_on": [None, None, "2026-01-29"]})
    >>> g = pd.DataFrame({"patient_id": ["P1", "P1", "P3"], "start_date": ["2026-03-02", "2026-02-02", "2026-02-02"]})
    >>> time_zero(p, g).tolist()
    [Timestamp('2026-02-02 00:00:00'), NaT, Timestamp('2026-01-29 00:00:00')]
    """
    first = pd.to_datetime(programs["start_date"]).groupby(programs["patient_id"].to_numpy()).min()
    zero = pd.to_datetime(patients["patient_id"].map(first))
    if "allocated_on" in patients:
        zero = pd.to_datetime(patients["allocated_on"]).fillna(zero)
    return pd.Series(zero.to_numpy(), index=patients["patient_id"].to_numpy(), name="time_zero")


def cohort_visits(measurements: pd.DataFrame, patients: pd.DataFrame, programs: pd.DataFrame, *,
                  method: dict | None = None) -> pd.DataFrame:
    """Visit values of the involved hip(s) on the primary method, timed from each patient's time
    zero (:func:`time_zero`: the allocation date, else the first program's start), with the assigned schedule: the long table
    a mixed model is fitted to.

    A hip's baseline is its last visit in :data:`BASELINE_WINDOW_DAYS` around time zero (at week 0);
    visits before the window, or in it before the baseline, are not follow-up and are left out, as
    are patients without a program. Every later visit keeps its own time: deleting a patient's
    baseline visit leaves them without a baseline, it never moves their other visits.

    Returns
    -------
    DataFrame
        ``patient_id``, ``side``, ``measured_on``, ``day`` (days since time zero), ``weeks``
        (``day`` / 7; 0 for the baseline), ``baseline`` (bool), ``degrees``, ``schedule``.

    Examples
    --------
    >>> m = pd.DataFrame({"patient_id": "P1", "side": "left", "joint": "hip", "motion": "internal_rotation",
    ...     "position": "seated_90", "mode": "active", "instrument": "inclinometer", "trial": 1,
    ...     "measured_on": ["2026-01-01", "2026-01-19", "2026-02-02"], "degrees": [20.0, 24.0, 27.0]})
    >>> p = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["left"]})
    >>> g = pd.DataFrame({"patient_id": ["P1"], "schedule": ["daily"], "start_date": ["2026-01-05"]})
    >>> cohort_visits(m, p, g)[["day", "weeks", "baseline"]].values.tolist()
    [[-4, 0.0, True], [14, 2.0, False], [28, 4.0, False]]
    """
    v = visits(select_method(measurements, method))
    v["measured_on"] = pd.to_datetime(v["measured_on"])
    involved = patients.set_index("patient_id")["involved_side"]
    side = v["patient_id"].map(involved)
    v = v[(side == v["side"]) | (side == "both")].copy()
    v["day"] = (v["measured_on"] - v["patient_id"].map(time_zero(patients, programs))).dt.days
    low, high = BASELINE_WINDOW_DAYS
    window = v[v["day"].between(low, high)]
    last = window.groupby(["patient_id", "side"])["day"].transform("max")
    v["baseline"] = False
    v.loc[last.index, "baseline"] = (window["day"] == last).to_numpy()
    v = v[v["baseline"] | (v["day"] > high)].copy()
    v["day"] = v["day"].astype("int64")
    v["weeks"] = np.where(v["baseline"], 0.0, v["day"] / 7.0)
    v["schedule"] = v["patient_id"].map(assigned_schedule(patients, programs))
    return v[["patient_id", "side", "measured_on", "day", "weeks", "baseline", "degrees", "schedule"]
             ].reset_index(drop=True)


def patient_outcomes(measurements: pd.DataFrame, patients: pd.DataFrame, programs: pd.DataFrame,
                     sessions: pd.DataFrame, *, week: int = 6, method: dict | None = None,
                     as_of=None) -> pd.DataFrame:
    """One row per patient: assigned schedule, change at week ``week``, slope, adherence, breakouts/week.

    The involved hip on the primary method is used (both hips averaged when both are involved).
    Time zero is the allocation date, else the first program's start (:func:`time_zero`), and the
    baseline the last visit in :data:`BASELINE_WINDOW_DAYS` around it (see :func:`cohort_visits`). The change at week N is the
    visit nearest to N weeks after time zero, within one week; without such a visit it is NaN and
    ``note`` says so.

    Returns
    -------
    DataFrame
        ``patient_id``, ``schedule`` (assigned, for intention-to-treat), ``baseline_deg``,
        ``change_deg`` (at week N), ``slope_deg_per_week``, ``followup_weeks`` (baseline to the last
        visit), ``adherence``, ``breakout_adherence``, ``breakouts_per_week_done`` (over the
        programs), ``breakouts_per_week_to_week`` (breakout sessions done from time zero to week N,
        per week: the dose that can have caused the week-N change; NaN without a week-N change, so
        weeks after a drop-out never count as no dose), ``note``.
    """
    v = cohort_visits(measurements, patients, programs, method=method)
    if as_of is not None:
        v = v[v["measured_on"] <= pd.Timestamp(as_of)]
    baseline = v[v["baseline"]].groupby("patient_id")["degrees"].mean()
    near = v[~v["baseline"]].assign(distance=(v["weeks"] - week).abs())
    near = near[near["distance"] <= 1].sort_values("distance").drop_duplicates(["patient_id", "side"])
    base_side = v[v["baseline"]].set_index(["patient_id", "side"])["degrees"]
    near["change"] = near["degrees"].to_numpy() - base_side.reindex(
        pd.MultiIndex.from_frame(near[["patient_id", "side"]])).to_numpy()
    change = near.groupby("patient_id")["change"].mean()
    trends = rom_trends(select_method(measurements, method), patients=patients, as_of=as_of)
    slope = trends[trends["involved"].fillna(False).astype(bool)].groupby("patient_id")["slope_deg_per_week"].mean()
    adh = adherence_summary(programs, sessions, as_of=as_of).set_index("patient_id")
    out = pd.DataFrame({"patient_id": patients["patient_id"].to_numpy()})
    out["schedule"] = out["patient_id"].map(assigned_schedule(patients, programs))
    out["baseline_deg"] = out["patient_id"].map(baseline)
    out["change_deg"] = out["patient_id"].map(change)
    out["slope_deg_per_week"] = out["patient_id"].map(slope)
    out["followup_weeks"] = out["patient_id"].map(v.groupby("patient_id")["weeks"].max())
    for column in ("adherence", "breakout_adherence", "breakouts_per_week_done"):
        out[column] = out["patient_id"].map(adh[column]) if column in adh else np.nan
    out["breakouts_per_week_to_week"] = (out["patient_id"].map(_breakouts_to_week(patients, programs, sessions, week))
                                         .fillna(0.0).where(out["change_deg"].notna()))
    out["note"] = np.where(out["baseline_deg"].isna(), f"no baseline on the primary method (a visit {-BASELINE_WINDOW_DAYS[0]} days before to "
                           f"{BASELINE_WINDOW_DAYS[1]} days after the allocation date, else the program's start)",
                           np.where(out["change_deg"].isna(), f"no visit within 1 week of week {week}", ""))
    return out


def _breakouts_to_week(patients: pd.DataFrame, programs: pd.DataFrame, sessions: pd.DataFrame, week: int) -> pd.Series:
    """Breakout sessions done (fully or partly) from time zero to the last day of week ``week``, per week."""
    from ..program import breakout_templates

    zero = pd.Series(time_zero(patients, programs).to_numpy(), index=patients["patient_id"].to_numpy())
    done = sessions[sessions["session"].isin(breakout_templates(programs))
                    & sessions["completion"].isin(["full", "partial"])]
    day = (pd.to_datetime(done["performed_on"]) - done["patient_id"].map(zero)).dt.days
    return done[day.between(0, 7 * week - 1)].groupby("patient_id").size() / week


def _hedges_g(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    n1, n2 = len(a), len(b)
    pooled = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    d = (a.mean() - b.mean()) / pooled if pooled > 0 else np.nan
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    g = j * d
    se = np.sqrt((n1 + n2) / (n1 * n2) + g ** 2 / (2 * (n1 + n2)))  # Hedges & Olkin (1985)
    return g, g - 1.96 * se, g + 1.96 * se


def _mann_whitney_counts(n1: int, n2: int) -> np.ndarray:
    """The number of arrangements giving each Mann-Whitney U = 0 .. n1 n2 (no ties): the exact null."""
    # c(i, j) holds the counts for samples of sizes i and j: c(i, j)[u] = c(i-1, j)[u - j] + c(i, j-1)[u]
    table = [[None] * (n2 + 1) for _ in range(n1 + 1)]
    for i in range(n1 + 1):
        for j in range(n2 + 1):
            if i == 0 or j == 0:
                table[i][j] = np.ones(1, dtype=float)
                continue
            counts = np.zeros(i * j + 1)
            left = table[i - 1][j]
            counts[j: j + len(left)] += left
            up = table[i][j - 1]
            counts[: len(up)] += up
            table[i][j] = counts
    return table[n1][n2]


EXACT_LIMIT = 2500
"""Mann-Whitney p-values and Hodges-Lehmann CIs are exact when there are no ties and n1 x n2 is at
most this; otherwise the normal approximation with tie and continuity corrections is used (both
as R's ``wilcox.test``)."""


def _hodges_lehmann(a: np.ndarray, b: np.ndarray, exact: bool) -> tuple[float, float, float]:
    """Median of all pairwise differences a - b, with its 95 % CI computed as R's
    ``wilcox.test(a, b, conf.int = TRUE)`` does: from the order statistics of the differences at
    the exact Mann-Whitney null's critical value when ``exact``; otherwise by inverting the
    tie-corrected normal approximation (Hollander, Wolfe & Chicken, Nonparametric Statistical
    Methods, 3rd ed., 2014, section 4.3), so the CI agrees with the p-value."""
    from scipy import optimize, stats

    n1, n2 = len(a), len(b)
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    estimate = float(np.median(diffs))
    if exact:
        cdf = np.cumsum(_mann_whitney_counts(n1, n2))
        cdf /= cdf[-1]
        k = max(int(np.searchsorted(cdf, 0.025 - 1e-12)), 1)  # R: qwilcox(alpha / 2), at least 1
        return estimate, float(diffs[k - 1]), float(diffs[n1 * n2 - k])

    def z(shift: float, target: float) -> float:
        pooled = np.concatenate([a - shift, b])
        ranks = stats.rankdata(pooled)
        u = ranks[:n1].sum() - n1 * (n1 + 1) / 2 - n1 * n2 / 2
        _, ties = np.unique(pooled, return_counts=True)
        sigma = np.sqrt(n1 * n2 / 12 * ((n1 + n2 + 1) - (ties ** 3 - ties).sum() / ((n1 + n2) * (n1 + n2 - 1))))
        if sigma == 0:  # every value tied at this shift: the statistic sits at its centre
            return -target
        return (u - np.sign(u) * 0.5) / sigma - target

    if len(np.unique(np.concatenate([a, b]))) == 1:  # no spread at all: no interval (R refuses too)
        return estimate, np.nan, np.nan

    low_end, high_end = a.min() - b.max(), a.max() - b.min()

    def root(target: float) -> float:
        f_low, f_high = z(low_end, target), z(high_end, target)
        if f_low <= 0:
            return float(low_end)
        if f_high >= 0:
            return float(high_end)
        return float(optimize.brentq(z, low_end, high_end, args=(target,), xtol=1e-8))

    quantile = stats.norm.ppf(0.975)
    return estimate, root(quantile), root(-quantile)


def compare_groups(outcomes: pd.DataFrame, value: str, *, group: str = "schedule",
                   groups: tuple[str, str] | None = None) -> pd.DataFrame:
    """Compare two groups on one outcome: Welch t, Hedges g and Mann-Whitney U, with 95 % CIs.

    Parameters
    ----------
    outcomes : DataFrame
        One row per patient (e.g. :func:`patient_outcomes`).
    value : str
        The outcome column.
    group : str, default "schedule"
    groups : (str, str), optional
        The two groups, first minus second; default ``("daily", "three-per-week")`` when present,
        else the two groups found.

    Returns
    -------
    DataFrame
        One row per statistic (``mean difference (Welch)``, ``Hedges g``, ``Mann-Whitney U``):
        ``outcome``, ``groups``, ``n_1``, ``n_2``, ``mean_1``, ``mean_2``, ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``note``.

    Warns
    -----
    SmallCohortWarning
        When a group has fewer than 3 patients with a value (statistics are then NaN).
    """
    from scipy import stats  # imported when needed: scipy.stats takes half a second to load

    data = outcomes[[group, value]].dropna()
    found = sorted(data[group].unique())
    if groups is None:
        groups = ("daily", "three-per-week") if {"daily", "three-per-week"} <= set(found) else tuple(found[:2])
    if len(groups) != 2 or len(found) < 2:
        raise HipAnalyticsError(
            f"comparing needs two groups in {group!r}; found {', '.join(map(str, found)) or 'none'} "
            f"with a {value!r} value")
    a = data.loc[data[group] == groups[0], value].to_numpy(dtype=float)
    b = data.loc[data[group] == groups[1], value].to_numpy(dtype=float)
    base = {"outcome": value, "groups": f"{groups[0]} - {groups[1]}", "n_1": len(a), "n_2": len(b),
            "mean_1": a.mean() if len(a) else np.nan, "mean_2": b.mean() if len(b) else np.nan}
    names = ["mean difference (Welch)", "Hedges g", "Mann-Whitney U"]
    if min(len(a), len(b)) < 3:
        reason = f"too few patients (n = {len(a)} and {len(b)}; at least 3 per group needed)"
        warnings.warn(f"{value}: {reason}", SmallCohortWarning, stacklevel=2)
        return pd.DataFrame([base | {"statistic": n, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                                     "p_value": np.nan, "note": reason} for n in names])
    welch = stats.ttest_ind(a, b, equal_var=False)
    ci = welch.confidence_interval(0.95)
    g, g_low, g_high = _hedges_g(a, b)
    exact = len(np.unique(np.concatenate([a, b]))) == len(a) + len(b) and len(a) * len(b) <= EXACT_LIMIT
    mw = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact" if exact else "asymptotic")
    shift, shift_low, shift_high = _hodges_lehmann(a, b, exact)
    rows = [
        {"statistic": names[0], "estimate": a.mean() - b.mean(), "ci_low": ci.low, "ci_high": ci.high,
         "p_value": welch.pvalue, "note": "degrees" if value.endswith("_deg") else ""},
        {"statistic": names[1], "estimate": g, "ci_low": g_low, "ci_high": g_high, "p_value": np.nan,
         "note": "standardised; CI by the Hedges & Olkin normal approximation"},
        {"statistic": names[2], "estimate": shift, "ci_low": shift_low, "ci_high": shift_high, "p_value": mw.pvalue,
         "note": "Hodges-Lehmann shift; p and 95% CI " + (
             "exact" if exact else "by the normal approximation, corrected for ties")},
    ]
    if np.all(a == a[0]) and np.all(b == b[0]):
        rows[1]["note"] = "all values identical within groups: no spread, g undefined"
    columns = ["statistic", "outcome", "groups", "n_1", "n_2", "mean_1", "mean_2", "estimate", "ci_low",
               "ci_high", "p_value", "note"]
    return pd.DataFrame([base | r for r in rows])[columns]


def mixed_model(data: pd.DataFrame, *, outcome: str = "degrees", time: str = "weeks",
                subject: str = "patient_id", group: str | None = "schedule", side: str | None = "side",
                random_slope: bool = True, reference: str | None = None) -> pd.DataFrame:
    """Linear mixed model ``outcome ~ time * group`` with a random intercept and slope per subject,
    and a random intercept per side within subject when some subjects have both hips measured.

    Fitted by REML (:mod:`hipanalytics.analysis.mixed`, checked against R's lme4 and lmerTest):
    standard errors from ``(X'V^-1 X)^-1``, t tests and 95 % CIs with Satterthwaite's degrees of
    freedom. When the random-slope model is singular (a variance at zero, a correlation at +/-1)
    or does not converge, a random-intercept model is fitted instead; :class:`ConvergenceWarning`
    and the ``note`` say so, and that the CI of the time trend is then too narrow.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per observation (e.g. :func:`cohort_visits`).
    group : str or None
        Between-subject factor (e.g. the schedule); None fits ``outcome ~ time``.
    side : str or None
        Column naming the hip; None (or a column with one side per subject) leaves it out. The two
        hips of a patient share the patient's intercept and slope and differ by their own intercept
        (lme4: ``(time | subject) + (1 | subject:side)``), so they count as correlated, not as two
        patients.
    reference : str, optional
        The reference level of ``group``; default ``three-per-week`` when present, else the first
        level in sort order.

    Returns
    -------
    DataFrame
        One row per fixed effect (``effect`` = "fixed": ``term``, ``estimate``, ``std_error``,
        ``df``, ``ci_low``, ``ci_high``, ``p_value``) and per variance component (``effect`` =
        "random": standard deviations and the random-effect correlation, ``estimate`` only); on
        every row ``random_effects``, ``converged``, ``singular``, ``n_subjects``, ``n_obs`` and
        ``note`` (every warning of the fit). With a group, ``time x group=level`` is the
        difference in weekly gain of that level against the reference.

    Examples
    --------
    >>> from hipanalytics.synthetic import generate_clinic
    >>> c = generate_clinic(30, seed=4)
    >>> m = mixed_model(cohort_visits(c["measurements"], c["patients"], c["programs"]))
    >>> m.loc[m["effect"] == "fixed", "term"].tolist()
    ['(Intercept)', 'schedule=daily', 'weeks', 'weeks x schedule=daily']
    """
    from .mixed import fit_lmm, lmm_data

    columns = [outcome, time, subject] + ([group] if group else []) + ([side] if side else [])
    d = data[columns].dropna().reset_index(drop=True)
    if d.empty:
        raise HipAnalyticsError("the mixed model has no observations to fit")
    if (d.groupby(subject).size() >= 2).mean() < 0.5:
        raise HipAnalyticsError("the mixed model cannot be fitted to these data: it needs several visits for most "
                                f"patients, and {(d.groupby(subject).size() < 2).sum()} of {d[subject].nunique()} "
                                "have one")
    design = [np.ones(len(d)), d[time].to_numpy(dtype=float)]
    names = ["(Intercept)", time]
    if group:
        levels = sorted(d[group].unique())
        if len(levels) < 2:
            raise HipAnalyticsError(f"the mixed model needs two or more {group} groups; found {len(levels)}")
        reference = reference or ("three-per-week" if "three-per-week" in levels else levels[0])
        others = [level for level in levels if level != reference]
        indicators = [(d[group] == level).to_numpy(dtype=float) for level in others]
        design = [design[0], *indicators, design[1], *[x * design[1] for x in indicators]]
        names = ["(Intercept)", *[f"{group}={level}" for level in others], time,
                 *[f"{time} x {group}={level}" for level in others]]
    X = np.column_stack(design)
    nested = side if side and d.groupby(subject)[side].nunique().max() > 1 else None

    def fit(slopes):
        return fit_lmm(lmm_data(d, X, names, y=outcome, subject=subject, random=slopes, side=nested))

    notes = []
    structure = "intercept + slope" if random_slope else "intercept"
    result = None
    if random_slope:
        try:
            result = fit([time])
        except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. one visit per patient: no slope to vary
            notes.append(f"the random-slope model could not be fitted ({exc})")
        if result is not None and (result.singular or not result.converged):
            notes += result.notes
            result = None
        if result is None:
            notes.append("fitted a random intercept only instead of a random intercept and slope: the variation "
                         "of the weekly gain between patients is then not modelled, so the CIs of the weekly gain "
                         "and of its difference between groups are too narrow")
            warnings.warn(f"the random-slope mixed model is singular or did not converge; {notes[-1]}",
                          ConvergenceWarning, stacklevel=2)
            structure = "intercept"
    if result is None:
        try:
            result = fit([])
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise HipAnalyticsError(
                f"the mixed model cannot be fitted to these data ({exc}); it needs several visits for "
                "most patients") from None
    if nested:
        structure += " per patient; intercept per hip within patient"
    fixed = result.fixed_effects().drop(columns="t").assign(effect="fixed")
    random = result.variance_components().assign(effect="random")
    out = pd.concat([fixed, random], ignore_index=True)
    out["random_effects"], out["converged"], out["singular"] = structure, result.converged, result.singular
    out["n_subjects"], out["n_obs"] = d[subject].nunique(), len(d)
    out["note"] = "; ".join(dict.fromkeys(notes + result.notes))
    return out[["effect", "term", "estimate", "std_error", "df", "ci_low", "ci_high", "p_value", "random_effects",
                "converged", "singular", "n_subjects", "n_obs", "note"]]


def dose_response(outcomes: pd.DataFrame, *, value: str = "change_deg",
                  dose: str = "breakouts_per_week_to_week", group: str | None = "schedule",
                  covariates: tuple[str, ...] = ("baseline_deg",)) -> pd.DataFrame:
    """OLS of the change at week N on the dose done up to week N (breakouts per week), adjusted for
    the assigned schedule and baseline IR, with 95 % CIs.

    Achieved dose is not randomised: patients who do more breakouts differ in other ways, and
    those assigned daily do more by design, so the dose term is adjusted for the arm (the dose
    effect within arms) and for baseline IR (less room to gain from a higher baseline). Outcome and
    dose cover the same weeks, time zero to week N, and only patients followed to week N have
    both, so no weeks after a drop-out count as no dose; the follow-up length is not adjusted for
    (it is decided by the drop-out the outcome drives: a collider). The result is an association,
    not a causal dose effect.

    Returns
    -------
    DataFrame
        One row per term (``intercept``, the dose, the arm, each covariate): ``estimate``,
        ``std_error``, ``ci_low``, ``ci_high``, ``p_value``, ``n``, ``r_squared``.

    Examples
    --------
    >>> from hipanalytics.synthetic import generate_clinic
    >>> c = generate_clinic(40, seed=5)
    >>> out = patient_outcomes(c["measurements"], c["patients"], c["programs"], c["sessions"])
    >>> dose_response(out)["term"].tolist()
    ['intercept', 'breakouts_per_week_to_week', 'schedule=daily', 'baseline_deg']
    """
    import statsmodels.api as sm

    needed = [dose] + ([group] if group else []) + list(covariates)
    d = outcomes[[value, *needed]].dropna()
    columns, names = [d[dose].to_numpy(dtype=float)], [dose]
    if group:
        levels = sorted(d[group].unique())
        reference = "three-per-week" if "three-per-week" in levels else (levels[0] if levels else None)
        for level in levels:
            if level != reference:
                columns.append((d[group] == level).to_numpy(dtype=float))
                names.append(f"{group}={level}")
    for c in covariates:
        columns.append(d[c].to_numpy(dtype=float))
        names.append(c)
    if len(d) < len(names) + 2:
        raise HipAnalyticsError(f"dose-response needs at least {len(names) + 2} patients with {value} and "
                                f"{', '.join(needed)}; found {len(d)}")
    fit = sm.OLS(d[value].to_numpy(dtype=float), sm.add_constant(np.column_stack(columns), has_constant="add")).fit()
    ci = fit.conf_int()
    return pd.DataFrame({"term": ["intercept", *names], "estimate": fit.params, "std_error": fit.bse,
                         "ci_low": ci[:, 0], "ci_high": ci[:, 1], "p_value": fit.pvalues, "n": len(d),
                         "r_squared": fit.rsquared})


def table_one(patients: pd.DataFrame, outcomes: pd.DataFrame, programs: pd.DataFrame, *,
              group: str = "schedule") -> pd.DataFrame:
    """Baseline characteristics by group: n, age at the program start, sex, involved side, baseline IR.

    Continuous variables as mean (SD), categorical as n (%); ``missing`` counts per variable.
    Age is the year of the patient's first program start minus the birth year (the store keeps
    the birth year only, so an age can be one year high before the birthday): the same data give
    the same Table 1 in any year.

    Returns
    -------
    DataFrame
        ``variable``, ``level``, one column per group and ``Overall``, and ``missing``.

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["A", "B"], "birth_year": [1980, 1990], "sex": ["female", "male"],
    ...                          "involved_side": ["left", "both"]})
    >>> programs = pd.DataFrame({"patient_id": ["A", "B"], "start_date": ["2026-03-02", "2025-12-29"]})
    >>> outcomes = pd.DataFrame({"patient_id": ["A", "B"], "schedule": ["daily", "daily"], "baseline_deg": [20.0, 24.0]})
    >>> table_one(patients, outcomes, programs).iloc[1]["daily"]
    '40.5 (7.8)'
    """
    d = patients.merge(outcomes[["patient_id", group, "baseline_deg"]], on="patient_id", how="left")
    d = d[d[group].notna()]  # a patient without a program of either schedule is not eligible: not in "Overall"
    start_year = pd.to_datetime(programs["start_date"]).groupby(programs["patient_id"]).min().dt.year
    if "birth_year" in d:
        d["age_years"] = d["patient_id"].map(start_year).astype("float64") - d["birth_year"].astype("float64")
    else:
        d["age_years"] = np.nan
    groups = sorted(d[group].dropna().unique())
    rows = [{"variable": "n", "level": "", **{g: str(int((d[group] == g).sum())) for g in groups},
             "Overall": str(len(d)), "missing": ""}]
    for variable, label in (("age_years", "age at program start, years, mean (SD)"),
                            ("baseline_deg", "baseline IR, degrees, mean (SD)")):
        cells = {g: _mean_sd(d.loc[d[group] == g, variable]) for g in groups}
        rows.append({"variable": label, "level": "", **cells, "Overall": _mean_sd(d[variable]),
                     "missing": str(int(d[variable].isna().sum()))})
    for variable in ("sex", "involved_side"):
        if variable not in d:
            continue
        for level in sorted(d[variable].dropna().unique()):
            cells = {g: _n_pct(d.loc[d[group] == g, variable], level) for g in groups}
            rows.append({"variable": f"{variable.replace('_', ' ')}, n (%)", "level": level, **cells,
                         "Overall": _n_pct(d[variable], level), "missing": str(int(d[variable].isna().sum()))})
    return pd.DataFrame(rows, columns=["variable", "level", *groups, "Overall", "missing"])


def _mean_sd(x: pd.Series) -> str:
    x = x.dropna().astype(float)
    return f"{x.mean():.1f} ({x.std(ddof=1):.1f})" if len(x) > 1 else (f"{x.mean():.1f}" if len(x) else "")


def _n_pct(x: pd.Series, level) -> str:
    x = x.dropna()
    n = int((x == level).sum())
    return f"{n} ({100 * n / len(x):.1f})" if len(x) else "0"

