"""Confounding adjustment for an observational schedule comparison: propensity-score overlap weights.

In routine care the clinician chooses the schedule from the patient in front of them, so the arms
differ at baseline. The comparison then emulates a target trial (Hernan & Robins, Am J Epidemiol
2016;183:758-764): eligibility (a program of either schedule), time zero (the program start), the
strategies (start daily or 3x/week breakouts), the outcome at week N; and the arms are made
comparable on the measured baseline covariates (IR, age, sex, involved side, site) by weighting.

- The propensity score ``e(x)``, the chance of starting daily given the covariates, by logistic
  regression on their main effects (:func:`propensity_scores`).
- Overlap weights (Li, Morgan & Zaslavsky, JASA 2018;113:390-400): ``1 - e`` for daily patients, ``e``
  for 3x/week ones. They are bounded (no patient dominates), balance every covariate of the
  logistic model exactly, and target the patients who could have been given either schedule (the
  overlap population), which the report says.
- The estimate is the difference of the weighted ANCOVA (outcome on arm, baseline IR and the
  other covariates, weighted least squares): doubly robust in the sense that it is consistent if
  either the propensity model or the outcome model is right (Funk et al., Am J Epidemiol
  2011;173:761-767), with a robust (HC0 sandwich) variance, which treats the weights as known.
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
           "balance_table", "effective_sample_size", "positivity", "weighted_ancova"]

COVARIATES = ("baseline_deg", "age", "sex", "involved_side", "site")
"""The baseline covariates adjusted for: numeric ``baseline_deg`` (IR at baseline), ``age``
(years at time zero); categorical ``sex``, ``involved_side``, ``site`` (dummy-coded, the first
level the reference; a covariate with one level is left out)."""

SMD_LIMIT = 0.1
"""An absolute standardised mean difference above this is imbalance (Austin, Stat Med 2009;28:3083)."""


def covariate_matrix(frame: pd.DataFrame, covariates=COVARIATES) -> tuple[np.ndarray, list[str]]:
    """The covariates as a numeric matrix (no intercept) and a name per column.

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
            if x.isna().any():
                raise HipAnalyticsError(f"confounding adjustment: covariate {c} is missing for "
                                        f"{int(x.isna().sum())} patient(s)")
            columns.append(x.to_numpy(dtype=float))
            names.append(c)
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


def baseline_covariates(patients: pd.DataFrame, programs: pd.DataFrame) -> pd.DataFrame:
    """The patients' baseline covariates other than IR, indexed by patient id: ``age`` (years at
    time zero, from the birth year), ``sex``, ``involved_side``, ``site`` (when recorded)."""
    from .cohort import time_zero

    zero = time_zero(patients, programs)
    out = pd.DataFrame(index=patients["patient_id"].to_numpy())
    out["age"] = zero.dt.year.to_numpy() - pd.to_numeric(patients["birth_year"], errors="coerce").to_numpy()
    for column in ("sex", "involved_side", "site"):
        if column in patients:
            out[column] = patients[column].fillna("not recorded").astype(str).to_numpy()
    return out
