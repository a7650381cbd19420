"""Confounding adjustment for an observational schedule comparison: propensity-score overlap weights.

In routine care the clinician chooses the schedule from the patient in front of them, so the arms
differ at baseline. The comparison then emulates a target trial (Hernan & Robins, Am J Epidemiol
2016;183:758-764): eligibility (a program of either schedule), time zero (the program start), the
strategies (start daily or 3x/week breakouts), the outcome at week N; and the arms are made
comparable on the measured baseline covariates (IR, age, pain, sex, involved side, site) by weighting.

- The propensity score ``e(x)``, the chance of starting daily given the covariates, by logistic
  regression on their main effects (:func:`propensity_scores`).
- Overlap weights (Li, Morgan & Zaslavsky, JASA 2018;113:390-400): ``1 - e`` for daily patients, ``e``
  for 3x/week ones. They are bounded (no patient dominates), balance every covariate of the
  logistic model exactly, and target the patients who could have been given either schedule (the
  overlap population), which the report says.
- The estimate is the difference of the weighted ANCOVA (outcome on arm, baseline IR and the
  other covariates, weighted least squares), with a robust (HC0 sandwich) variance, which treats
  the weights as known.
- Two alternatives beside it, for the whole population rather than the overlap (the average
  treatment effect): the ANCOVA weighted by stabilised inverse-probability-of-treatment weights
  (Robins, Hernan & Brumback, Epidemiology 2000;11:550-560; ``P(daily) / e`` and
  ``P(3x/week) / (1 - e)``), and the augmented IPW estimator (AIPW; Robins, Rotnitzky & Zhao, JASA
  1994;89:846-866; Funk et al., Am J Epidemiol 2011;173:761-767), doubly robust: consistent if
  either the propensity model or the outcome model (least squares within each arm on the same
  covariates) is right, with the variance of its influence function (:func:`aipw`).
- Balance: standardised mean differences before and after weighting, with the denominator the
  unweighted groups' pooled SD (Austin, Stat Med 2009;28:3083-3107); above 0.1 is imbalance
  (Austin 2009). Effective sample size per arm (Kish): ``(sum w)^2 / sum w^2``. Positivity: the
  range of the score per arm and the share outside 0.1-0.9 (Crump et al., Biometrika 2009;96:187-199).

Missing week-N values are multiply imputed first (:func:`hipanalytics.analysis.trial.impute_windows`)
and the weighted analysis is repeated on each completed copy and pooled (Leyrat et al., Stat Methods
Med Res 2019;28:3-19, "MI then weighting, within").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import HipAnalyticsError

__all__ = ["COVARIATES", "baseline_covariates", "SMD_LIMIT", "covariate_matrix", "one_arm_levels", "propensity_scores", "overlap_weights",
           "stabilised_weights", "balance_table", "effective_sample_size", "positivity", "weighted_ancova", "aipw"]

COVARIATES = ("baseline_deg", "age", "pain", "sex", "involved_side", "site")
"""The baseline covariates adjusted for: numeric ``baseline_deg`` (IR at baseline), ``age``
(years at time zero), ``pain`` (NPRS at baseline); categorical ``sex``, ``involved_side``,
``site`` (dummy-coded, the first level the reference; a covariate with one level is left out)."""

SMD_LIMIT = 0.1
"""An absolute standardised mean difference above this is imbalance (Austin, Stat Med 2009;28:3083)."""


def covariate_matrix(frame: pd.DataFrame, covariates=COVARIATES) -> tuple[np.ndarray, list[str]]:
    """The covariates as a numeric matrix (no intercept) and a name per column. A numeric covariate
    missing for some patients is filled with its mean and joined by a 0/1 "not recorded" column
    (the missing-indicator method, valid for the propensity score when missingness is itself a
    confounder or uninformative; Blake et al., Stat Med 2020;39:2620-2636); one missing for all is
    left out.

    Examples
    --------
    >>> f = pd.DataFrame({"age": [30, 40, 50], "sex": ["female", "male", "female"], "site": "north"})
    >>> X, names = covariate_matrix(f, ["age", "sex", "site"])
    >>> names, X[:, 1].tolist()
    (['age', 'sex: male'], [0.0, 1.0, 0.0])
    """
    columns, names = [], []
    for c in covariates:
        if c not in frame:
            continue
        x = frame[c]
        if pd.api.types.is_numeric_dtype(x):
            if x.isna().all():
                continue
            missing = x.isna().to_numpy()
            columns.append(np.where(missing, x.mean(), x.to_numpy(dtype=float)))
            names.append(c)
            if missing.any():  # the missing-indicator method (Blake et al., Stat Med 2020;39:2620-2636)
                columns.append(missing.astype(float))
                names.append(f"{c}: not recorded")
            continue
        levels = sorted(x.dropna().astype(str).unique())
        for level in levels[1:]:
            columns.append((x.astype(str) == level).to_numpy(dtype=float))
            names.append(f"{c}: {level}")
    return (np.column_stack(columns) if columns else np.empty((len(frame), 0))), names


def one_arm_levels(X: np.ndarray, names: list[str], daily: np.ndarray) -> list[int]:
    """The columns of categorical levels (0/1) held by the patients of one arm only, or by every
    patient of one arm: no patient of the other arm is comparable on them (a positivity violation),
    and the logistic model cannot be estimated with them (separation)."""
    out = []
    for j, name in enumerate(names):
        x = X[:, j]
        if ":" in name and np.isin(x, (0.0, 1.0)).all():
            per_arm = [x[daily == k].mean() for k in (0, 1)]
            if min(per_arm) == 0.0 or max(per_arm) == 1.0:
                out.append(j)
    return out


def propensity_scores(X: np.ndarray, daily: np.ndarray) -> np.ndarray:
    """P(daily | covariates) by logistic regression (maximum likelihood, main effects).

    Raises
    ------
    HipAnalyticsError
        When the arms are perfectly separated by the covariates (some patients could only have
        been given one schedule: no comparison is possible for them).
    """
    import warnings

    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    design = sm.add_constant(X, has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            fit = sm.GLM(daily, design, family=sm.families.Binomial()).fit()
        except (PerfectSeparationError, PerfectSeparationWarning, np.linalg.LinAlgError) as exc:
            raise HipAnalyticsError("confounding adjustment: the covariates separate the schedules completely "
                                    f"(no overlap to compare; {exc})") from None
    ps = np.asarray(fit.predict(design))
    if (ps < 1e-8).any() or (ps > 1 - 1e-8).any():
        raise HipAnalyticsError("confounding adjustment: the covariates separate the schedules completely "
                                "(propensity scores of 0 or 1)")
    return ps


def overlap_weights(ps: np.ndarray, daily: np.ndarray) -> np.ndarray:
    """Overlap weights: 1 - e for daily patients, e for 3x/week ones."""
    return np.where(daily == 1, 1 - ps, ps)


def stabilised_weights(ps: np.ndarray, daily: np.ndarray) -> np.ndarray:
    """Stabilised inverse-probability-of-treatment weights: ``P(daily) / e`` for daily patients,
    ``P(3x/week) / (1 - e)`` for 3x/week ones (mean 1 in each arm when the model is right).

    Examples
    --------
    >>> stabilised_weights(np.array([0.5, 0.25, 0.5, 0.75]), np.array([1, 1, 0, 0])).tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    share = daily.mean()
    return np.where(daily == 1, share / ps, (1 - share) / (1 - ps))


def balance_table(X: np.ndarray, names: list[str], daily: np.ndarray, w: np.ndarray) -> pd.DataFrame:
    """Means by arm and standardised mean differences before and after weighting (denominator: the
    unweighted groups' pooled SD), and ``imbalanced`` when |SMD after| exceeds :data:`SMD_LIMIT`."""
    rows = []
    d, t = daily == 1, daily == 0
    for j, name in enumerate(names):
        x = X[:, j]
        sd = np.sqrt((x[d].var(ddof=1) + x[t].var(ddof=1)) / 2)
        before = (x[d].mean() - x[t].mean()) / sd if sd > 0 else 0.0
        m1, m0 = np.average(x[d], weights=w[d]), np.average(x[t], weights=w[t])
        after = (m1 - m0) / sd if sd > 0 else 0.0
        rows.append({"covariate": name, "mean_daily": x[d].mean(), "mean_three": x[t].mean(),
                     "weighted_mean_daily": m1, "weighted_mean_three": m0, "smd_before": before,
                     "smd_after": after, "imbalanced": bool(abs(after) > SMD_LIMIT)})
    return pd.DataFrame(rows)


def effective_sample_size(w: np.ndarray, daily: np.ndarray) -> dict:
    """Kish's effective sample size per arm, ``(sum w)^2 / sum w^2``.

    Examples
    --------
    >>> effective_sample_size(np.array([1.0, 1.0, 0.5, 0.5]), np.array([1, 1, 0, 0]))
    {'daily': 2.0, 'three-per-week': 2.0}
    """
    return {arm: float(w[daily == k].sum() ** 2 / (w[daily == k] ** 2).sum())
            for arm, k in (("daily", 1), ("three-per-week", 0))}


def positivity(ps: np.ndarray, daily: np.ndarray) -> dict:
    """The score's range per arm, the patients outside the other arm's range (no comparable
    patient there) and the share outside 0.1-0.9 (Crump et al. 2009), with warnings in words."""
    d, t = ps[daily == 1], ps[daily == 0]
    outside = int(((ps < max(d.min(), t.min())) | (ps > min(d.max(), t.max()))).sum())
    extreme = float(((ps < 0.1) | (ps > 0.9)).mean())
    warnings = []
    if outside:
        warnings.append(f"{outside} patient(s) outside the range of propensity scores shared by both arms "
                        "(no comparable patient on the other schedule)")
    if extreme > 0.1:
        warnings.append(f"{100 * extreme:.0f}% of patients have a propensity score outside 0.1-0.9: the schedule "
                        "was close to determined by their covariates")
    return {"range_daily": (float(d.min()), float(d.max())), "range_three": (float(t.min()), float(t.max())),
            "outside_common_support": outside, "share_outside_0.1_0.9": extreme, "warnings": warnings}


def weighted_ancova(y: np.ndarray, daily: np.ndarray, X: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The arm coefficient of the weighted least-squares regression ``y ~ daily + X`` and its robust
    (HC0 sandwich) variance."""
    design = np.column_stack([np.ones(len(y)), daily, X])
    bread = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = bread @ design.T @ (w * y)
    score = design * (w * (y - design @ beta))[:, None]
    cov = bread @ (score.T @ score) @ bread
    return float(beta[1]), float(cov[1, 1])


def aipw(y: np.ndarray, daily: np.ndarray, X: np.ndarray, ps: np.ndarray) -> tuple[float, float]:
    """The augmented inverse-probability-weighted (doubly robust) difference in mean outcome, daily
    minus 3x/week, over the whole population, and its variance.

    The outcome is regressed on the covariates by least squares within each arm, giving every
    patient's predicted outcome on either schedule, ``m1`` and ``m0``; each patient contributes
    ``psi = m1 - m0 + D (y - m1) / e - (1 - D) (y - m0) / (1 - e)``; the estimate is the mean of
    ``psi`` and its variance ``var(psi) / n`` (the influence function, Lunceford & Davidian, Stat
    Med 2004;23:2937-2960).

    Examples
    --------
    With the true propensity (a half) and no covariate, the difference in means:

    >>> est, var = aipw(np.array([3.0, 5.0, 1.0, 2.0]), np.array([1, 1, 0, 0]), np.empty((4, 0)), np.full(4, 0.5))
    >>> round(est, 6)
    2.5
    """
    design = np.column_stack([np.ones(len(y)), X])
    predicted = []
    for arm in (1, 0):
        rows = daily == arm
        if rows.sum() <= design.shape[1]:
            raise HipAnalyticsError("confounding adjustment: too few patients on one schedule for the outcome model "
                                    f"of the doubly robust estimate ({int(rows.sum())} for {design.shape[1]} terms)")
        beta = np.linalg.lstsq(design[rows], y[rows], rcond=None)[0]
        predicted.append(design @ beta)
    m1, m0 = predicted
    psi = m1 - m0 + daily * (y - m1) / ps - (1 - daily) * (y - m0) / (1 - ps)
    return float(psi.mean()), float(psi.var(ddof=1) / len(y))


def baseline_covariates(patients: pd.DataFrame, programs: pd.DataFrame,
                        sessions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The patients' baseline covariates other than IR, indexed by patient id: ``age`` (years at
    time zero, from the birth year), ``sex``, ``involved_side``, ``site`` (when recorded) and, with
    ``sessions``, ``pain``: the NPRS before the first session with a score in the baseline window
    (:data:`hipanalytics.analysis.cohort.BASELINE_WINDOW_DAYS` around time zero; NaN without one,
    adjusted for by a missing indicator, see :func:`covariate_matrix`).

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["P1", "P2"], "birth_year": [1980, 1990], "sex": ["female", None]})
    >>> programs = pd.DataFrame({"patient_id": ["P1", "P2"], "start_date": pd.to_datetime(["2026-01-05", "2026-02-02"])})
    >>> sessions = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "performed_on": pd.to_datetime(
    ...     ["2026-01-05", "2026-01-06", "2026-03-02"]), "pain_before": [4, 2, 3]})
    >>> baseline_covariates(patients, programs, sessions)
        age           sex  pain
    P1   46        female   4.0
    P2   36  not recorded   NaN
    """
    from .cohort import BASELINE_WINDOW_DAYS, time_zero

    zero = time_zero(patients, programs)
    out = pd.DataFrame(index=patients["patient_id"].to_numpy())
    out["age"] = zero.dt.year.to_numpy() - pd.to_numeric(patients["birth_year"], errors="coerce").to_numpy()
    for column in ("sex", "involved_side", "site"):
        if column in patients:
            out[column] = patients[column].fillna("not recorded").astype(str).to_numpy()
    if sessions is not None and "pain_before" in sessions:
        s = sessions.dropna(subset=["pain_before"])
        day = (pd.to_datetime(s["performed_on"]) - s["patient_id"].map(pd.Series(zero.to_numpy(), index=out.index))).dt.days
        s = s[day.between(*BASELINE_WINDOW_DAYS)].assign(day=day).sort_values(["patient_id", "day"])
        first = s.groupby("patient_id")["pain_before"].first()
        out["pain"] = first.reindex(out.index).to_numpy(dtype=float)
    return out
