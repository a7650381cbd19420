"""Cohort comparison of breakout schedules: per-patient outcomes, group tests, a linear mixed model,
intention-to-treat against per-protocol, dose-response and Table 1.

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
from .adherence import adherence_summary
from .rom import PRIMARY_METHOD, rom_trends, select_method, visits

__all__ = [
    "PRIMARY_METHOD", "ConvergenceWarning", "SmallCohortWarning", "patient_outcomes", "cohort_visits",
    "compare_groups", "mixed_model", "itt_and_per_protocol", "dose_response", "table_one",
]



class SmallCohortWarning(HipAnalyticsWarning):
    """A group is too small for the requested statistic; the value is NaN with a reason."""


class ConvergenceWarning(HipAnalyticsWarning):
    """The mixed model with random slopes did not converge; a random-intercept model was fitted."""


def _assigned(patients: pd.DataFrame, programs: pd.DataFrame) -> pd.Series:
    """The schedule each patient was assigned: the randomised arm (``cohort``) if it names a schedule,
    else the schedule of the patient's first program."""
    first = (programs.assign(start=pd.to_datetime(programs["start_date"])).sort_values("start")
             .drop_duplicates("patient_id").set_index("patient_id")["schedule"])
    assigned = first.reindex(patients["patient_id"]).to_numpy()
    if "cohort" in patients:
        schedules = set(programs["schedule"])
        cohort = patients["cohort"].to_numpy()
        assigned = np.where(pd.Series(cohort).isin(schedules).to_numpy(), cohort, assigned)
    return pd.Series(assigned, index=patients["patient_id"].to_numpy(), name="schedule")


def cohort_visits(measurements: pd.DataFrame, patients: pd.DataFrame, programs: pd.DataFrame, *,
                  method: dict | None = None) -> pd.DataFrame:
    """Visit values of the involved hip(s) on the primary method, with weeks since baseline and the
    assigned schedule: the long table a mixed model is fitted to.

    Returns
    -------
    DataFrame
        ``patient_id``, ``side``, ``measured_on``, ``weeks``, ``degrees``, ``schedule``.
    """
    v = visits(select_method(measurements, method))
    v["measured_on"] = pd.to_datetime(v["measured_on"])
    involved = patients.set_index("patient_id")["involved_side"]
    side = v["patient_id"].map(involved)
    v = v[(side == v["side"]) | (side == "both")].copy()
    first = v.groupby(["patient_id", "side"])["measured_on"].transform("min")
    v["weeks"] = (v["measured_on"] - first).dt.days / 7.0
    v["schedule"] = v["patient_id"].map(_assigned(patients, programs))
    return v[["patient_id", "side", "measured_on", "weeks", "degrees", "schedule"]].reset_index(drop=True)


def patient_outcomes(measurements: pd.DataFrame, patients: pd.DataFrame, programs: pd.DataFrame,
                     sessions: pd.DataFrame, *, week: int = 6, method: dict | None = None,
                     as_of=None) -> pd.DataFrame:
    """One row per patient: assigned schedule, change at week ``week``, slope, adherence, breakouts/week.

    The involved hip on the primary method is used (both hips averaged when both are involved).
    The change at week N is the visit nearest to N weeks after baseline, within one week; without
    such a visit it is NaN and ``note`` says so.

    Returns
    -------
    DataFrame
        ``patient_id``, ``schedule`` (assigned, for intention-to-treat), ``baseline_deg``,
        ``change_deg`` (at week N), ``slope_deg_per_week``, ``adherence``, ``breakout_adherence``,
        ``breakouts_per_week_done``, ``note``.
    """
    v = cohort_visits(measurements, patients, programs, method=method)
    if as_of is not None:
        v = v[v["measured_on"] <= pd.Timestamp(as_of)]
    baseline = v[v["weeks"] == 0].groupby("patient_id")["degrees"].mean()
    near = v.assign(distance=(v["weeks"] - week).abs())
    near = near[near["distance"] <= 1].sort_values("distance").drop_duplicates(["patient_id", "side"])
    base_side = v[v["weeks"] == 0].set_index(["patient_id", "side"])["degrees"]
    near["change"] = near["degrees"].to_numpy() - base_side.reindex(
        pd.MultiIndex.from_frame(near[["patient_id", "side"]])).to_numpy()
    change = near.groupby("patient_id")["change"].mean()
    trends = rom_trends(select_method(measurements, method), patients=patients, as_of=as_of)
    slope = trends[trends["involved"].fillna(False).astype(bool)].groupby("patient_id")["slope_deg_per_week"].mean()
    adh = adherence_summary(programs, sessions, as_of=as_of).set_index("patient_id")
    out = pd.DataFrame({"patient_id": patients["patient_id"].to_numpy()})
    out["schedule"] = out["patient_id"].map(_assigned(patients, programs))
    out["baseline_deg"] = out["patient_id"].map(baseline)
    out["change_deg"] = out["patient_id"].map(change)
    out["slope_deg_per_week"] = out["patient_id"].map(slope)
    for column in ("adherence", "breakout_adherence", "breakouts_per_week_done"):
        out[column] = out["patient_id"].map(adh[column]) if column in adh else np.nan
    out["note"] = np.where(out["baseline_deg"].isna(), "no baseline on the primary method",
                           np.where(out["change_deg"].isna(), f"no visit within 1 week of week {week}", ""))
    return out


def _hedges_g(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    n1, n2 = len(a), len(b)
    pooled = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    d = (a.mean() - b.mean()) / pooled if pooled > 0 else np.nan
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    g = j * d
    se = np.sqrt((n1 + n2) / (n1 * n2) + g ** 2 / (2 * (n1 + n2)))  # Hedges & Olkin (1985)
    return g, g - 1.96 * se, g + 1.96 * se


def _hodges_lehmann(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Median of all pairwise differences a - b, with the distribution-free 95 % CI from their order
    statistics (normal approximation to the Mann-Whitney null; Hollander & Wolfe)."""
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    n1, n2 = len(a), len(b)
    k = int(np.floor(n1 * n2 / 2 - 1.959964 * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))
    if k < 1:
        return float(np.median(diffs)), np.nan, np.nan
    return float(np.median(diffs)), float(diffs[k - 1]), float(diffs[len(diffs) - k])


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
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    shift, shift_low, shift_high = _hodges_lehmann(a, b)
    rows = [
        {"statistic": names[0], "estimate": a.mean() - b.mean(), "ci_low": ci.low, "ci_high": ci.high,
         "p_value": welch.pvalue, "note": "degrees" if value.endswith("_deg") else ""},
        {"statistic": names[1], "estimate": g, "ci_low": g_low, "ci_high": g_high, "p_value": np.nan,
         "note": "standardised; CI by the Hedges & Olkin normal approximation"},
        {"statistic": names[2], "estimate": shift, "ci_low": shift_low, "ci_high": shift_high, "p_value": mw.pvalue,
         "note": "estimate: Hodges-Lehmann shift with its distribution-free 95% CI"},
    ]
    if np.all(a == a[0]) and np.all(b == b[0]):
        rows[1]["note"] = "all values identical within groups: no spread, g undefined"
    columns = ["statistic", "outcome", "groups", "n_1", "n_2", "mean_1", "mean_2", "estimate", "ci_low",
               "ci_high", "p_value", "note"]
    return pd.DataFrame([base | r for r in rows])[columns]


def mixed_model(data: pd.DataFrame, *, outcome: str = "degrees", time: str = "weeks",
                subject: str = "patient_id", group: str | None = "schedule",
                random_slope: bool = True) -> pd.DataFrame:
    """Linear mixed model ``outcome ~ time * group`` with a random intercept and slope per subject.

    Fitted by REML with statsmodels MixedLM. When the random-slope model does not converge, a
    random-intercept model is fitted instead and :class:`ConvergenceWarning` says so.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per observation (e.g. :func:`cohort_visits`).
    group : str or None
        Between-subject factor (e.g. the schedule); None fits ``outcome ~ time``.

    Returns
    -------
    DataFrame
        One row per fixed effect: ``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
        ``p_value``; and, repeated on every row, ``random_effects`` (``intercept + slope`` or
        ``intercept``), ``converged``, ``n_subjects``, ``n_obs``, ``note``. With a group, the
        ``time x group`` term is the difference in weekly gain between groups.
    """
    import statsmodels.formula.api as smf  # imported here: it takes a second, and most callers never fit
    from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsConvergenceWarning

    columns = [outcome, time, subject] + ([group] if group else [])
    d = data[columns].dropna()
    formula = f"{outcome} ~ {time}" + (f" * C({group})" if group else "")
    if group and d[group].nunique() < 2:
        raise HipAnalyticsError(f"the mixed model needs two or more {group} groups; found {d[group].nunique()}")

    def fit(re_formula):
        model = smf.mixedlm(formula, d, groups=d[subject], re_formula=re_formula)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(reml=True, method=["lbfgs", "cg", "powell"])  # tried in turn
        boundary = any(issubclass(w.category, StatsmodelsConvergenceWarning) and "boundary" in str(w.message)
                       for w in caught)
        return result, bool(result.converged), boundary

    structure = "intercept + slope"
    converged, reason = False, ""
    if random_slope:
        try:
            result, converged, boundary = fit(f"~{time}")
            reason = "did not converge"
        except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. one visit per patient: no slope to vary
            reason = f"could not be fitted ({exc})"
    if not converged:
        if random_slope:
            warnings.warn(f"the random-slope mixed model {reason}; fitted a random intercept only",
                          ConvergenceWarning, stacklevel=2)
        structure = "intercept"
        try:
            result, converged, boundary = fit("1")
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise HipAnalyticsError(
                f"the mixed model cannot be fitted to these data ({exc}); it needs several visits for "
                "most patients") from None
    fe = result.fe_params
    with warnings.catch_warnings(record=True) as caught:  # e.g. a covariance that is not positive definite
        warnings.simplefilter("always")
        ci = result.conf_int().loc[fe.index]
        se, p = result.bse_fe.to_numpy(), result.pvalues.loc[fe.index].to_numpy()
    out = pd.DataFrame({
        "term": [_term_name(t, time, group) for t in fe.index], "estimate": fe.to_numpy(),
        "std_error": se, "ci_low": ci[0].to_numpy(), "ci_high": ci[1].to_numpy(), "p_value": p,
    })
    out["random_effects"], out["converged"] = structure, converged
    out["n_subjects"], out["n_obs"] = d[subject].nunique(), len(d)
    notes = ["a variance component is at the boundary (near zero)"] if boundary else []
    notes += [f"{w.category.__name__}: {w.message}" for w in caught]
    out["note"] = "; ".join(dict.fromkeys(notes))
    return out


def _term_name(term: str, time: str, group: str | None) -> str:
    if group:
        term = term.replace(f"C({group})[T.", f"{group}=").replace("]", "")
    return term.replace(":", " x ")


def itt_and_per_protocol(outcomes: pd.DataFrame, value: str = "change_deg", *,
                         threshold: float = 0.7, adherence_column: str = "breakout_adherence") -> pd.DataFrame:
    """The schedule comparison by intention-to-treat (everyone, by assigned schedule) and
    per-protocol (only patients whose breakout adherence reached ``threshold``)."""
    itt = compare_groups(outcomes, value).assign(analysis="intention-to-treat")
    kept = outcomes[outcomes[adherence_column] >= threshold]
    pp = compare_groups(kept, value).assign(analysis=f"per-protocol ({adherence_column} >= {threshold:g})")
    return pd.concat([itt, pp], ignore_index=True)


def dose_response(outcomes: pd.DataFrame, *, value: str = "slope_deg_per_week",
                  dose: str = "breakouts_per_week_done") -> pd.DataFrame:
    """OLS of the outcome on the achieved dose (breakouts per week), with a 95 % CI.

    Returns
    -------
    DataFrame
        ``term`` (intercept, dose), ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
        ``p_value``, ``n``, ``r_squared``.
    """
    import statsmodels.formula.api as smf

    d = outcomes[[value, dose]].dropna()
    if len(d) < 3:
        raise HipAnalyticsError(f"dose-response needs at least 3 patients with {value} and {dose}; found {len(d)}")
    fit = smf.ols(f"{value} ~ {dose}", d).fit()
    ci = fit.conf_int()
    return pd.DataFrame({"term": ["intercept", dose], "estimate": fit.params.to_numpy(),
                         "std_error": fit.bse.to_numpy(), "ci_low": ci[0].to_numpy(), "ci_high": ci[1].to_numpy(),
                         "p_value": fit.pvalues.to_numpy(), "n": len(d), "r_squared": fit.rsquared})


def table_one(patients: pd.DataFrame, outcomes: pd.DataFrame, *, group: str = "schedule",
              as_of_year: int | None = None) -> pd.DataFrame:
    """Baseline characteristics by group: n, age, sex, involved side, baseline IR.

    Continuous variables as mean (SD), categorical as n (%); ``missing`` counts per variable.
    Age is computed for ``as_of_year`` (default: the current year).

    Returns
    -------
    DataFrame
        ``variable``, ``level``, one column per group and ``Overall``, and ``missing``.
    """
    d = patients.merge(outcomes[["patient_id", group, "baseline_deg"]], on="patient_id", how="left")
    year = as_of_year or pd.Timestamp.today().year
    d["age_years"] = year - d["birth_year"].astype("float64") if "birth_year" in d else np.nan
    groups = sorted(d[group].dropna().unique())
    rows = [{"variable": "n", "level": "", **{g: str(int((d[group] == g).sum())) for g in groups},
             "Overall": str(len(d)), "missing": ""}]
    for variable, label in (("age_years", "age, years, mean (SD)"), ("baseline_deg", "baseline IR, degrees, mean (SD)")):
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

