"""The schedule comparison as a trial reports it: estimand, primary analysis, missing data, flow.

Estimand (ICH E9(R1)): in patients with hip pain prescribed the Hip IR Mobility Breakouts, the
difference in mean internal rotation of the involved hip (both hips averaged when both are
involved) at week N between assignment to daily and to 3x/week breakouts, adjusted for baseline
IR; a switch of schedule is part of the treatment assigned (treatment policy); for drop-out the
value the patient would have had under continued follow-up, assuming the missing values are
missing at random given the observed IR (hypothetical strategy, handled by the model).

Primary analysis (:func:`primary_analysis`): a constrained longitudinal data analysis (cLDA;
Liang & Zeger, Sankhya B 2000; Coffman et al., BMC Med Res Methodol 2016), the longitudinal form of
ANCOVA on baseline (Vickers & Altman, BMJ 2001;323:1123): every observed visit of every assigned
patient, one value per patient and 2-week analysis window up to week N (the involved hip's, or the
mean of both involved hips: the estimand's variable), a mean per window and arm with the baseline
mean common to both arms (randomisation), and a covariance over the windows (an MMRM; Mallinckrodt
et al., Drug Inf J 2008;42:303-319; :mod:`.mixed`): unstructured, or when that cannot be estimated
the next of the pre-specified order :data:`COVARIANCE_ORDER`, and the notes say which and why.
Valid under missing at random (White et al., BMJ 2011;342:d40); ``bench/bench_trial_simulation.py``
measures its bias and coverage against the alternatives. Sensitivity (:func:`sensitivity_analyses`):
ANCOVA at week N after multiple imputation under MAR (:mod:`.imputation`, Rubin's rules), after
jump-to-reference imputation and with a delta-adjusted tipping point (both missing not at random),
and complete-case ANCOVA.

Per protocol (:func:`per_protocol`): adherence to the *assigned* schedule's breakouts from time zero
to week N; patients who switched schedule, or have no week-N value, are excluded: a completers
analysis, biased when adherence or drop-out depend on prognosis (shown beside an as-treated one);
for randomised data the complier-average causal effect (:func:`complier_average`) compares the
randomised groups whole. Observational data (no allocation) are adjusted for confounding
(:func:`weighted_analysis`, :mod:`.weighting`). Secondary outcomes (:func:`secondary_outcomes`)
are model-based or imputed, valid under MAR, and gatekept behind the primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import HipAnalyticsError
from .mixed import LMMFit, fit_lmm, lmm_data

__all__ = ["WINDOW_WEEKS", "ESTIMAND_ATTRIBUTES", "estimand", "missing_data_text", "estimand_text", "analysis_windows",
           "window_of", "trial_patients", "COVARIANCE_ORDER", "covariance_words", "primary_analysis", "ancova", "Imputed", "impute_windows", "weighted_analysis",
           "WEIGHTED_METHODS", "multiple_imputation_ancova", "TIPPING_DELTAS", "tipping_point", "tipping_text",
           "sensitivity_analyses", "complier_average", "per_protocol", "consort_flow", "harms_by_arm", "time_to_first_rise",
           "missing_by_analysis", "secondary_outcomes", "TIME_SHAPE_RULE", "gain_per_week", "time_shape_comparison", "holm", "PrimaryResult"]

WINDOW_WEEKS = 2
"""Visits are grouped into analysis windows of this many weeks (the protocol's visit interval):
window 0 is the baseline (:data:`hipanalytics.analysis.cohort.BASELINE_WINDOW_DAYS`); window w
(2, 4, 6, ...) holds the visits from day 7w - 7 to day 7w + 6 after time zero (week 6: days 35-48),
the first one from the day after the baseline window (week 2: days 4-20). Whole days, each in
exactly one window: a visit on day 21 (week 3.0) is in window 4, one on day 35 (week 5.0) in
window 6."""

REFERENCE = "three-per-week"
TREATED = "daily"


ESTIMAND_ATTRIBUTES = ("Treatment conditions", "Population", "Variable", "Intercurrent events", "Population-level summary")
"""The five attributes of an estimand (ICH E9(R1), 2019, section A.3.1), in the order written."""


def estimand(week: int) -> dict[str, str]:
    """The estimand's five attributes in words (ICH E9(R1)); missing data are not among them (see
    :func:`missing_data_text`): drop-out is not an intercurrent event but an absence of data.

    Examples
    --------
    >>> list(estimand(6)) == list(ESTIMAND_ATTRIBUTES)
    True
    """
    return {
        "Treatment conditions": "Hip IR Mobility Breakouts daily (in one of the two daily Hip Movement Sequence "
                                "sessions) versus breakouts 3x/week with a recovery day between, each followed by the "
                                "Hip Movement Sequence twice a day, as prescribed at time zero (the allocation date, "
                                "else the program start).",
        "Population": "Patients with hip pain prescribed the breakouts on either schedule (every patient with a "
                      "program of either schedule; patients without one are not eligible).",
        "Variable": f"Internal rotation of the involved hip at week {week} after time zero (both hips averaged when "
                    "both are involved), seated 90/90, active, by inclinometer, the mean of a visit's trials.",
        "Intercurrent events": "A switch of schedule (treatment policy: the IR whatever the schedule followed after "
                               "it); stopping the breakouts while still measured (treatment policy: the IR whether or "
                               "not the breakouts went on); co-interventions, not recorded (treatment policy).",
        "Population-level summary": f"The difference in mean IR at week {week}, daily minus 3x/week, adjusted for "
                                    "baseline IR, with its 95% CI.",
    }


def missing_data_text(week: int) -> str:
    """How missing week-N values are handled, apart from the estimand: the assumption and the check."""
    return (f"Missing IR at week {week} (a patient not measured then: drop-out or a missed visit) is not an "
            "intercurrent event; the primary analysis assumes it is missing at random given the arm and the IR "
            "observed before (MAR). Two sensitivity analyses depart from MAR (missing not at random): jump to "
            "reference, and a tipping point that shifts the imputed values until the conclusion changes.")


def estimand_text(week: int) -> str:
    """The estimand in one paragraph: its five attributes (:func:`estimand`), each named."""
    return " ".join(f"{name}: {text}" for name, text in estimand(week).items())


def analysis_windows(visits: pd.DataFrame, week: int) -> pd.DataFrame:
    """Involved-hip visit values in analysis windows 0, 2, 4, ..., ``week``.

    Parameters
    ----------
    visits : DataFrame
        :func:`hipanalytics.analysis.cohort_visits` (``patient_id``, ``side``, ``weeks``,
        ``degrees``, ``schedule``).

    Returns
    -------
    DataFrame
        The visits of windows 0 to ``week`` with ``window`` (see :data:`WINDOW_WEEKS`: explicit day
        ranges); one value per patient, hip and window (the visit nearest the window's centre, the
        earlier of two as near).

    Examples
    --------
    >>> v = pd.DataFrame({"patient_id": "P1", "side": "left", "day": [0, 4, 20, 21, 34, 35, 48, 49],
    ...                   "baseline": [True] + [False] * 7, "degrees": 20.0, "schedule": "daily"})
    >>> v["weeks"] = v["day"] / 7
    >>> window_of(v["day"], v["baseline"]).tolist()
    [0, 2, 2, 4, 4, 6, 6, 8]
    >>> analysis_windows(v, 6)[["day", "window"]].values.tolist()
    [[0, 0], [20, 2], [34, 4], [48, 6]]
    """
    v = visits.copy()
    v["window"] = window_of(v["day"], v["baseline"])
    v = v[v["window"] <= week]
    v["distance"] = (v["day"] - 7 * v["window"]).abs()
    v = v.sort_values("distance", kind="stable").drop_duplicates(["patient_id", "side", "window"])
    return v.drop(columns="distance").sort_values(["patient_id", "side", "window"]).reset_index(drop=True)


def window_of(day, baseline) -> np.ndarray:
    """The analysis window (weeks) of visits on ``day`` after time zero: 0 for the baseline, else the
    window whose day range (:data:`WINDOW_WEEKS`) holds the day."""
    width = 7 * WINDOW_WEEKS
    after = WINDOW_WEEKS * np.floor((np.asarray(day, dtype=float) + width / 2) / width)
    return np.where(np.asarray(baseline, dtype=bool), 0, np.maximum(after, WINDOW_WEEKS)).astype(int)


def trial_patients(patients: pd.DataFrame, programs: pd.DataFrame, visits: pd.DataFrame, sessions: pd.DataFrame,
                   *, week: int, threshold: float) -> pd.DataFrame:
    """One row per assigned patient: arm, baseline, IR at week N, follow-up, switch, drop-out, per-protocol.

    Returns
    -------
    DataFrame
        ``patient_id``, ``arm`` (assigned), ``time_zero`` (the allocation date, else the first
        program's start: :func:`hipanalytics.analysis.cohort.time_zero`), ``baseline_deg``, ``week_deg`` (the window-N value,
        hips averaged), ``last_window``, ``switched``, ``switch_week``, ``dropped_out``,
        ``dropout_week`` (the last window with a value, when there is no week-N value: after week N
        when the patient only missed that visit),
        ``followed`` (the schedule followed on most days up to week N: the as-treated group),
        ``assigned_adherence`` (breakouts done / planned under the assigned schedule from time
        zero to week N), ``breakouts_planned_per_week`` (assigned schedule), ``breakouts_done_per_week``,
        ``per_protocol`` (bool), ``reason`` (why not per protocol, or empty).
    """
    from .cohort import assigned_schedule, time_zero

    w = analysis_windows(visits, week)
    hips = w.groupby(["patient_id", "window"])["degrees"].mean().unstack()
    out = pd.DataFrame({"patient_id": patients["patient_id"].to_numpy()})
    out["arm"] = out["patient_id"].map(assigned_schedule(patients, programs))
    out["time_zero"] = time_zero(patients, programs).to_numpy()
    out["baseline_deg"] = out["patient_id"].map(hips[0] if 0 in hips else pd.Series(dtype=float))
    out["week_deg"] = out["patient_id"].map(hips[week] if week in hips else pd.Series(dtype=float))
    seen = visits.assign(window=window_of(visits["day"], visits["baseline"]))  # every visit, after week N too
    out["last_window"] = out["patient_id"].map(seen.groupby("patient_id")["window"].max())
    p = programs.assign(start=pd.to_datetime(programs["start_date"]), end=pd.to_datetime(programs["end_date"]))
    first = p.sort_values("start").groupby("patient_id").first()
    zero = out.set_index("patient_id")["time_zero"]
    changed = p.groupby("patient_id")["schedule"].nunique() > 1
    switch_start = p.sort_values("start").groupby("patient_id").nth(1).set_index("patient_id")["start"] if len(p) else None
    out["switched"] = out["patient_id"].map(changed).fillna(False).astype(bool)
    weeks_to_switch = ((switch_start - zero.reindex(switch_start.index)).dt.days / 7).round(1)
    out["switch_week"] = out["patient_id"].map(weeks_to_switch).where(out["switched"])
    out["dropped_out"] = out["week_deg"].isna() & out["baseline_deg"].notna()
    out["dropout_week"] = out["last_window"].where(out["dropped_out"])
    out["followed"] = out["patient_id"].map(_followed_longest(p, zero, week)).fillna(out["arm"])
    adherence = _assigned_adherence(out, first, p, sessions, week)
    for column in adherence:
        out[column] = adherence[column].to_numpy()
    reason = np.where(out["switched"], "switched schedule", np.where(
        out["assigned_adherence"] < threshold, f"under {100 * threshold:.0f}% of the assigned breakouts done",
        np.where(out["week_deg"].isna(), f"no value at week {week}", "")))
    out["reason"] = reason
    out["per_protocol"] = out["reason"] == ""
    return out


def _followed_longest(programs: pd.DataFrame, start: pd.Series, week: int) -> pd.Series:
    """The schedule each patient followed on most of the days of weeks 1 to ``week`` (on a tie, the
    first program's): what they were treated with, whichever way they switched."""
    p = programs.assign(zero=programs["patient_id"].map(start))
    stop = p["zero"] + pd.Timedelta(days=7 * week - 1)
    days = (p["end"].clip(upper=stop) - p["start"].clip(lower=p["zero"])).dt.days + 1
    p = p.assign(days=days.clip(lower=0), first=p["start"] == p["zero"])
    totals = p.groupby(["patient_id", "schedule"], as_index=False).agg(days=("days", "sum"), first=("first", "max"))
    totals = totals.sort_values(["patient_id", "days", "first"], ascending=[True, False, False], kind="stable")
    return totals.drop_duplicates("patient_id").set_index("patient_id")["schedule"]


def _assigned_adherence(out: pd.DataFrame, first: pd.DataFrame, programs: pd.DataFrame,
                        sessions: pd.DataFrame, week: int) -> pd.DataFrame:
    """Breakouts done over breakouts the *assigned* schedule plans from time zero (``time_zero``:
    the allocation date, else the first program's start) to week ``week``
    (the outcome: what came after it cannot have caused it), and both per week."""
    from ..program import breakout_templates, plan_table

    span = programs.groupby("patient_id").agg(end=("end", "max"))
    span["start"] = out.set_index("patient_id")["time_zero"].reindex(span.index)
    span["end"] = span["end"].clip(upper=span["start"] + pd.Timedelta(days=7 * week - 1))
    assigned = pd.DataFrame({
        "program_id": out["patient_id"] + "-assigned", "patient_id": out["patient_id"],
        "protocol_id": out["patient_id"].map(first["protocol_id"]),
        "protocol_version": out["patient_id"].map(first["protocol_version"]), "schedule": out["arm"],
        "start_date": out["patient_id"].map(span["start"]), "end_date": out["patient_id"].map(span["end"])}).dropna()
    planned = plan_table(assigned).groupby("patient_id")["breakouts"].sum()
    templates = breakout_templates(programs)
    done = sessions[sessions["session"].isin(templates) & sessions["completion"].isin(["full", "partial"])]
    on = pd.to_datetime(done["performed_on"])
    done = done[(on >= done["patient_id"].map(span["start"])) & (on <= done["patient_id"].map(span["end"]))]
    done = out["patient_id"].map(done.groupby("patient_id").size()).fillna(0)
    weeks = out["patient_id"].map((span["end"] - span["start"]).dt.days + 1) / 7
    return pd.DataFrame({"assigned_adherence": done / out["patient_id"].map(planned),
                         "breakouts_planned_per_week": out["patient_id"].map(planned) / weeks,
                         "breakouts_done_per_week": done / weeks})


COVARIANCE_ORDER = ("unstructured", "heterogeneous toeplitz", "toeplitz", "heterogeneous ar1", "ar1",
                    "heterogeneous compound symmetry", "compound symmetry")
"""The primary analysis's covariance over the windows, in the pre-specified order of fallback: the
first whose REML fit converges to a positive definite covariance is used (from the most general to
the most constrained, each heterogeneous variant, a variance per window, before its homogeneous
one; Mallinckrodt et al., Drug Inf J 2008;42:303-319; Ashbeck & Bell, BMC Med Res Methodol
2016;16:106). Toeplitz and AR(1) lags count windows (they are equally spaced, 2 weeks)."""


def covariance_words(structure: str) -> str:
    """A covariance structure's name as a report writes it (``"heterogeneous ar1"``: ``"heterogeneous AR(1)"``)."""
    return structure.replace("toeplitz", "Toeplitz").replace("ar1", "AR(1)")


@dataclass
class PrimaryResult:
    """The primary analysis: the adjusted difference at week N, its inference, and the model.
    ``covariance`` is the structure used (:data:`COVARIANCE_ORDER`), ``rejected`` the structures
    tried before it, each with why it could not be used."""

    week: int
    estimate: float
    std_error: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    n_patients: int
    n_per_arm: dict
    n_observations: int
    fit: LMMFit
    notes: list[str]
    covariance: str = "unstructured"
    rejected: list = field(default_factory=list)
    adjusted_for: list = field(default_factory=list)

    def row(self) -> dict:
        """The primary analysis as a row of :func:`sensitivity_analyses`' table."""
        adjusted = "".join(f", adjusted for {a}" for a in self.adjusted_for)
        return {"analysis": f"primary: cLDA (MMRM, {covariance_words(self.covariance)} covariance{adjusted}), all visits",
                "n": self.n_patients,
                "estimate": self.estimate, "std_error": self.std_error, "df": self.df, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "p_value": self.p_value, "note": "; ".join(self.notes)}


def primary_analysis(visits: pd.DataFrame, week: int, *, sites: pd.Series | None = None) -> PrimaryResult:
    """The cLDA estimate of the difference at week ``week`` (daily minus 3x/week), see the module doc.

    The outcome is the patient's value per window: the involved hip's, or the mean of both hips
    when both are involved (the estimand's variable), so each patient is one series and every
    covariance parameter is identified by the patients' windows (a variance shared by the two hips
    was estimated only from the few patients with both involved, and often drifted to a covariance
    that is not positive definite). The covariance is the first of :data:`COVARIANCE_ORDER` that
    can be estimated.

    Parameters
    ----------
    visits : DataFrame
        :func:`hipanalytics.analysis.cohort_visits` of every assigned patient.
    sites : Series, optional
        Each patient's site (indexed by patient id). With two or more sites among the analysed
        patients, site is a covariate (a mean shift per site, common to every window: the
        adjustment for a stratification or centre factor that ICH E9 section 5.7 and EMA's
        guideline on baseline covariates, EMA/CHMP/295050/2013, expect); ``adjusted_for`` names it.
        A patient without a recorded site is a site "not recorded".

    Returns
    -------
    PrimaryResult
        With the fitted model and ``notes`` naming every warning and fallback.

    Raises
    ------
    HipAnalyticsError
        Without baseline or week-N visits, or when no structure of the order can be estimated.
    """
    w = analysis_windows(visits, week)
    w = w[w["schedule"].isin([TREATED, REFERENCE])]
    w = w.groupby(["patient_id", "window"], as_index=False).agg(degrees=("degrees", "mean"),
                                                                schedule=("schedule", "first"))
    windows = sorted(w["window"].unique())
    if 0 not in windows or week not in windows:
        raise HipAnalyticsError(f"the primary analysis needs baseline visits and visits at week {week}")
    later = [k for k in windows if k > 0]
    daily = (w["schedule"] == TREATED).to_numpy(dtype=float)
    columns = [np.ones(len(w))] + [(w["window"] == k).to_numpy(dtype=float) for k in later]
    columns += [daily * (w["window"] == k).to_numpy(dtype=float) for k in later]
    names = ["baseline mean"] + [f"week {k}" for k in later] + [f"daily x week {k}" for k in later]
    adjusted_for = []
    if sites is not None:
        site = w["patient_id"].map(sites).fillna("not recorded").astype(str)
        levels = sorted(site.unique())
        if len(levels) >= 2:
            columns += [(site == level).to_numpy(dtype=float) for level in levels[1:]]
            names += [f"site={level}" for level in levels[1:]]
            adjusted_for.append(f"site ({len(levels)} sites)")
    X = np.column_stack(columns)
    rejected = []
    for structure in COVARIANCE_ORDER:
        fit = fit_lmm(lmm_data(w, X, names, y="degrees", subject="patient_id", unstructured="window",
                               structure=structure))
        why = ([] if fit.converged else ["the fit did not converge"]) + fit.singular_reasons()
        if not why:
            break
        rejected.append((structure, "; ".join(why)))
    else:
        raise HipAnalyticsError("the primary analysis could not estimate any covariance structure of the "
                                "pre-specified order: " + "; ".join(f"{s}: {r}" for s, r in rejected))
    notes = [f"the {covariance_words(s)} covariance could not be used ({r})" for s, r in rejected]
    if rejected:
        notes.append(f"the {covariance_words(structure)} covariance was used instead (the pre-specified order)")
    L = np.zeros(fit.data.p)
    L[names.index(f"daily x week {week}")] = 1
    test = fit.test(L)
    if not np.isfinite(test["df"]):
        notes.append("Satterthwaite's degrees of freedom are undefined here (a variance parameter at its bound): "
                     "no p-value or CI is given")
    per_arm = w.drop_duplicates("patient_id")["schedule"].value_counts().to_dict()
    return PrimaryResult(week, test["estimate"], test["std_error"], test["df"], test["ci_low"], test["ci_high"],
                         test["p_value"], int(w["patient_id"].nunique()), per_arm, int(len(w)), fit, notes,
                         structure, rejected, adjusted_for)


def ancova(table: pd.DataFrame, *, y: str = "week_deg", baseline: str = "baseline_deg") -> dict:
    """ANCOVA: ``y ~ daily + baseline`` by OLS on the rows with both values (complete cases), with
    a t test and 95% CI on n - 3 degrees of freedom."""
    from scipy import stats

    d = table.dropna(subset=[y, baseline])
    d = d[d["arm"].isin([TREATED, REFERENCE])]
    if d["arm"].nunique() < 2 or len(d) < 4:
        return {"n": len(d), "estimate": np.nan, "std_error": np.nan, "df": np.nan, "ci_low": np.nan,
                "ci_high": np.nan, "p_value": np.nan}
    estimate, variance = _ols_ancova(d[y].to_numpy(dtype=float), (d["arm"] == TREATED).to_numpy(dtype=float),
                                     d[baseline].to_numpy(dtype=float))
    se, df = float(np.sqrt(variance)), float(len(d) - 3)
    half = stats.t.ppf(0.975, df) * se
    return {"n": len(d), "estimate": estimate, "std_error": se, "df": df, "ci_low": estimate - half,
            "ci_high": estimate + half, "p_value": float(2 * stats.t.sf(abs(estimate / se), df))}


def _ols_ancova(y: np.ndarray, arm: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """The arm coefficient of ``y ~ arm + baseline`` by least squares, and its variance."""
    X = np.column_stack([np.ones(len(y)), arm, baseline])
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ X.T @ y
    resid = y - X @ beta
    return float(beta[1]), float(resid @ resid / (len(y) - 3) * XtX_inv[1, 1])


@dataclass
class Imputed:
    """Completed copies of the window values of the patients an MI analysis keeps: ``values``
    (imputations, n, windows) with the week-N window last, ``missing`` (n, windows), ``daily`` (n,)
    1.0 for the daily arm, and the baseline window first."""

    week: int
    values: np.ndarray
    missing: np.ndarray
    daily: np.ndarray
    patient_ids: np.ndarray | None = None

    def ancova(self, delta_daily: float = 0.0, delta_three: float = 0.0) -> dict:
        """ANCOVA at week N on each completed copy, pooled by Rubin's rules; the *imputed* week-N
        values of the daily arm shifted by ``delta_daily`` degrees and those of the 3x/week arm by
        ``delta_three`` (delta adjustment: 0, 0 is missing at random)."""
        from .imputation import rubin

        shift = self.missing[:, -1] * np.where(self.daily == 1, delta_daily, delta_three)
        fits = [_ols_ancova(v[:, -1] + shift, self.daily, v[:, 0]) for v in self.values]
        n = len(self.daily)
        return {"n": n, **rubin([f[0] for f in fits], [f[1] for f in fits], n - 3),
                "imputations": len(self.values), "missing_at_week": int(self.missing[:, -1].sum())}


def impute_windows(visits: pd.DataFrame, table: pd.DataFrame, week: int, *, imputations: int = 20, seed: int = 0,
                   jump_to_reference: bool = False) -> Imputed:
    """Multiple imputation of the missing window values (:func:`hipanalytics.analysis.imputation.impute_mvn`:
    every window given every observed window of the patient, arm-specific means), for the assigned
    patients with at least one value in windows 0 to ``week``; a missing baseline is imputed too.
    ``jump_to_reference``: the daily patients' values after their last visit are imputed with the
    3x/week mean (reference-based imputation)."""
    from .imputation import impute_mvn

    w = analysis_windows(visits, week)
    wide = w.groupby(["patient_id", "window"])["degrees"].mean().unstack()
    arms = table.set_index("patient_id")["arm"]
    wide = wide[wide.index.isin(arms.index[arms.isin([TREATED, REFERENCE])])]
    if 0 not in wide or week not in wide:
        raise HipAnalyticsError(f"multiple imputation needs baseline visits and visits at week {week}")
    wide = wide[[k for k in sorted(wide.columns) if k <= week]]
    daily = (arms.reindex(wide.index) == TREATED).to_numpy(dtype=float)
    Y = wide.to_numpy(dtype=float)
    X = np.column_stack([np.ones(len(Y)), daily])
    values = impute_mvn(Y, X, imputations=imputations, seed=seed,
                        reference=daily == 1 if jump_to_reference else None,
                        X_reference=np.column_stack([np.ones(len(Y)), np.zeros(len(Y))]))
    return Imputed(week, values, np.isnan(Y), daily, wide.index.to_numpy())


WEIGHTED_METHODS = {"overlap": "adjusted: overlap weights", "stabilised": "adjusted: stabilised IPT weights",
                    "aipw": "adjusted: doubly robust (AIPW)"}
"""The confounding-adjusted estimates of an observational comparison (:func:`weighted_analysis`), by
key, with their label in the sensitivity table; the overlap-weighted one leads."""


def weighted_analysis(imputed: Imputed, covariates: pd.DataFrame) -> dict:
    """The confounding-adjusted difference at week N of an observational comparison
    (:mod:`.weighting`): on each completed copy, propensity scores on the baseline covariates (the
    copy's baseline IR among them), then the overlap-weighted ANCOVA (the overlap population), the
    ANCOVA weighted by stabilised inverse-probability weights and the doubly robust AIPW estimate
    (both the whole population); each pooled by Rubin's rules.

    Parameters
    ----------
    covariates : DataFrame
        Indexed by patient id: :data:`hipanalytics.analysis.weighting.COVARIATES` other than
        ``baseline_deg`` (see :func:`hipanalytics.analysis.weighting.baseline_covariates`).

    Returns
    -------
    dict
        The overlap-weighted ``estimate``, ``std_error``, ``df``, ``ci_low``, ``ci_high``, ``p_value``,
        ``n``; ``methods``: the same for each key of :data:`WEIGHTED_METHODS`; ``balance``
        (:func:`~hipanalytics.analysis.weighting.balance_table`, overlap weights), ``ess`` (overlap and
        ``ess_stabilised``), ``positivity`` and ``largest_stabilised_weight`` on the copies' mean
        baseline; ``overlap``: the overlap-weighted analysis as a function of the shifts
        ``(delta_daily, delta_three)`` of the imputed week-N values (for :func:`tipping_point`).
    """
    from . import weighting
    from .imputation import rubin

    other = covariates.reindex(imputed.patient_ids).reset_index(drop=True)
    X, names = weighting.covariate_matrix(other.assign(baseline_deg=imputed.values[:, :, 0].mean(axis=0)))
    dropped = weighting.one_arm_levels(X, names, imputed.daily)
    left_out = [f"{names[j]} occurs in one arm only (or in every patient of one arm): not adjusted for, no "
                "comparable patient on the other schedule" for j in dropped]
    keep = [j for j in range(len(names)) if j not in dropped]
    X, names = X[:, keep], [names[j] for j in keep]
    base = names.index("baseline_deg")
    daily = imputed.daily
    n, df = len(daily), len(daily) - 2 - X.shape[1]
    copies = []  # each copy: its own baseline IR, the other covariates as observed; the scores do not depend on y
    for v in imputed.values:
        Xv = X.copy()
        Xv[:, base] = v[:, 0]
        copies.append((v[:, -1], Xv, weighting.propensity_scores(Xv, daily)))

    def overlap(delta_daily: float = 0.0, delta_three: float = 0.0) -> dict:
        shift = imputed.missing[:, -1] * np.where(daily == 1, delta_daily, delta_three)
        fits = [weighting.weighted_ancova(y + shift, daily, Xv, weighting.overlap_weights(ps, daily))
                for y, Xv, ps in copies]
        return {"n": n, **rubin([f[0] for f in fits], [f[1] for f in fits], df)}

    fits = {"stabilised": [weighting.weighted_ancova(y, daily, Xv, weighting.stabilised_weights(ps, daily))
                           for y, Xv, ps in copies],
            "aipw": [weighting.aipw(y, daily, Xv, ps) for y, Xv, ps in copies]}
    methods = {"overlap": overlap(), **{key: {"n": n, **rubin([f[0] for f in found], [f[1] for f in found], df)}
                                        for key, found in fits.items()}}
    ps = weighting.propensity_scores(X, daily)
    w = weighting.overlap_weights(ps, daily)
    found = weighting.positivity(ps, daily)
    found["warnings"] = left_out + found["warnings"]
    return {**methods["overlap"], "methods": methods, "overlap": overlap,
            "balance": weighting.balance_table(X, names, daily, w),
            "ess": weighting.effective_sample_size(w, daily),
            "ess_stabilised": weighting.effective_sample_size(weighting.stabilised_weights(ps, daily), daily),
            "largest_stabilised_weight": float(weighting.stabilised_weights(ps, daily).max()),
            "positivity": found, "covariates": names}


def multiple_imputation_ancova(visits: pd.DataFrame, table: pd.DataFrame, week: int, *, imputations: int = 20,
                               seed: int = 0) -> dict:
    """ANCOVA at week ``week`` after multiple imputation under missing at random (:func:`impute_windows`),
    pooled by Rubin's rules with the Barnard-Rubin degrees of freedom."""
    return impute_windows(visits, table, week, imputations=imputations, seed=seed).ancova()


TIPPING_DELTAS = np.arange(-10.0, 10.5, 1.0)
"""The grid of shifts (degrees) of the tipping-point analysis: about two MDCs either way (5.4
degrees; Krause et al. 2015), wider than any plausible departure from missing at random."""


def tipping_point(imputed: Imputed, *, alpha: float = 0.05, deltas=TIPPING_DELTAS,
                  analysis=None) -> tuple[pd.DataFrame, dict]:
    """Delta-adjusted tipping-point analysis (Ratitch, O'Kelly & Tosiello, Pharm Stat 2013;12:337-347):
    the MAR-imputed week-N values of each arm shifted by a grid of deltas, the ANCOVA pooled at every
    pair, and the delta at which the conclusion (significant at ``alpha`` or not) changes when only
    the daily arm's, only the 3x/week arm's, or both arms' imputed values are shifted.
    ``analysis(delta_daily, delta_three)`` is the pooled analysis shifted (default
    :meth:`Imputed.ancova`; the overlap-weighted one of :func:`weighted_analysis` for an
    observational comparison).

    Returns
    -------
    grid : DataFrame
        ``delta_daily``, ``delta_three``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value``.
    tipping : dict
        ``{"daily": d, "three-per-week": d, "both": d}``: the shift smallest in size, either way (to 0.1
        degree), that changes the conclusion; NaN when no shift within the grid does.

    Examples
    --------
    A significant MAR result tips when the daily arm's missing values are assumed worse:

    >>> rng = np.random.default_rng(0)
    >>> daily = np.repeat([1.0, 0.0], 40)
    >>> base = rng.normal(20, 5, 80)
    >>> week = base + 5 + 3 * daily + rng.normal(0, 3, 80)
    >>> missing = np.zeros((80, 2), dtype=bool); missing[::4, 1] = True
    >>> values = np.stack([np.column_stack([base, np.where(missing[:, 1], week.mean(), week)])] * 2)
    >>> grid, tip = tipping_point(Imputed(6, values, missing, daily))
    >>> bool(tip["daily"] < 0 < tip["three-per-week"])
    True
    """
    analysis = analysis or imputed.ancova
    grid = pd.DataFrame([{"delta_daily": a, "delta_three": b, **analysis(a, b)}
                         for a in deltas for b in deltas])
    grid = grid[["delta_daily", "delta_three", "estimate", "ci_low", "ci_high", "p_value"]]
    significant = analysis(0.0, 0.0)["p_value"] < alpha

    def tips(d_daily: float, d_three: float) -> bool:
        return (analysis(d_daily, d_three)["p_value"] < alpha) != significant

    limit = float(np.abs(deltas).max())
    return grid, {name: _first_tip(tips, direction, limit)
                  for name, direction in (("daily", (1, 0)), ("three-per-week", (0, 1)), ("both", (1, 1)))}


def _first_tip(tips, direction, limit: float) -> float:
    """The shift ``d`` smallest in size, either way, with ``tips(d * direction)``: a 0.5-degree scan
    then bisection to 0.05 degree; NaN when none within ``limit``."""
    found = []
    for sign in (-1.0, 1.0):
        hit = next((d for d in np.arange(0.5, limit + 0.25, 0.5)
                    if tips(sign * d * direction[0], sign * d * direction[1])), None)
        if hit is None:
            continue
        low, high = hit - 0.5, hit
        while high - low > 0.05:
            mid = (low + high) / 2
            low, high = (low, mid) if tips(sign * mid * direction[0], sign * mid * direction[1]) else (mid, high)
        found.append(sign * np.ceil(round(high * 10, 6)) / 10)  # up to 0.1 degree: still tips
    return min(found, key=abs) if found else np.nan


def sensitivity_analyses(primary: PrimaryResult, visits: pd.DataFrame, table: pd.DataFrame, *,
                         imputations: int = 20, seed: int = 0, covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The primary estimate beside its sensitivity analyses: MI ANCOVA (MAR), jump to reference
    (missing not at random: the daily patients lose their arm's advantage after drop-out),
    complete-case ANCOVA, and the delta-adjusted tipping point (its shifts in ``note``; the grid in
    ``attrs["tipping_grid"]``; the MAR imputations in ``attrs["imputed"]``).

    With ``covariates`` (an observational comparison), first the confounding-adjusted estimates
    (:func:`weighted_analysis`; balance, effective sample size and positivity in
    ``attrs["weighting"]``; when they cannot be made, why in ``attrs["weighting_error"]``), and the
    departures from MAR are then made on the overlap-weighted estimate, the one the report leads
    with: jump to reference adjusted, and the tipping point of the adjusted conclusion
    (``attrs["tipping_of"]`` says which)."""
    week = primary.week
    imputed = impute_windows(visits, table, week, imputations=imputations, seed=seed)
    mi = imputed.ancova()
    jumped = impute_windows(visits, table, week, imputations=imputations, seed=seed, jump_to_reference=True)
    j2r = jumped.ancova()
    cc = ancova(table)
    keys = ("n", "estimate", "std_error", "df", "ci_low", "ci_high", "p_value")
    weighted, why_not = None, None
    try:
        weighted = weighted_analysis(imputed, covariates) if covariates is not None else None
    except HipAnalyticsError as exc:  # e.g. separation in a small cohort: said, not fatal
        why_not = str(exc)
    tipped = weighted["overlap"] if weighted is not None else imputed.ancova
    grid, tip = tipping_point(imputed, analysis=tipped)
    of = "the overlap-weighted estimate" if weighted is not None else "the MI ANCOVA"
    rows = [{**primary.row(), "label": "primary (cLDA, all visits)"},
            {"label": "multiple imputation (MAR)", "analysis": f"sensitivity: ANCOVA, multiple imputation ({mi['imputations']} imputations, MAR)",
             **{k: mi[k] for k in keys}, "note": f"{mi['missing_at_week']} missing at week {week} imputed"},
            {"label": "jump to reference (MNAR)", "analysis": f"sensitivity: ANCOVA, jump to reference ({j2r['imputations']} imputations, MNAR)",
             **{k: j2r[k] for k in keys},
             "note": "after their last visit, daily patients imputed with the 3x/week mean (their advantage lost)"},
            {"label": "complete cases", "analysis": "sensitivity: ANCOVA, complete cases", **cc,
             "note": "valid only if the missing are missing completely at random"},
            {"label": "tipping point", "analysis": f"sensitivity: tipping point of {of} (delta-adjusted MI, MNAR)",
             "n": mi["n"], "note": tipping_text(tip, significant=tipped()["p_value"] < 0.05)}]
    if weighted is not None:
        ess, stab = weighted["ess"], weighted["ess_stabilised"]
        notes = {"overlap": f"the overlap population; propensity score on {', '.join(weighted['covariates'])}; "
                            f"effective sample size {ess['daily']:.0f} daily, {ess['three-per-week']:.0f} 3x/week",
                 "stabilised": f"all patients; effective sample size {stab['daily']:.0f} daily, "
                               f"{stab['three-per-week']:.0f} 3x/week; largest weight {weighted['largest_stabilised_weight']:.1f}",
                 "aipw": "all patients; consistent if either the propensity or the outcome model is right"}
        analyses = {"overlap": "overlap-weighted ANCOVA", "stabilised": "ANCOVA weighted by stabilised IPT weights",
                    "aipw": "augmented IPW (doubly robust)"}
        rows[1:1] = [{"label": WEIGHTED_METHODS[key], **{k: weighted["methods"][key][k] for k in keys},
                      "analysis": f"confounding-adjusted: {analyses[key]} after MI (observational)", "note": notes[key]}
                     for key in WEIGHTED_METHODS]
        adjusted_j2r = weighted_analysis(jumped, covariates)
        rows.insert(rows.index(next(r for r in rows if r["label"] == "jump to reference (MNAR)")) + 1,
                    {"label": "adjusted: jump to reference (MNAR)", **{k: adjusted_j2r[k] for k in keys},
                     "analysis": "sensitivity: overlap-weighted ANCOVA, jump to reference (MNAR, observational)",
                     "note": "the confounding-adjusted estimate when daily patients lose their advantage after drop-out"})
    out = pd.DataFrame(rows)
    out.attrs["weighting"] = weighted
    out.attrs["weighting_error"] = why_not
    out.attrs["imputed"] = imputed
    out.attrs["tipping_grid"] = grid
    out.attrs["tipping"] = tip
    out.attrs["tipping_of"] = of
    return out


def tipping_text(tip: dict, *, significant: bool) -> str:
    """The tipping points in words."""
    change = "stops being significant" if significant else "becomes significant"

    def one(name: str, label: str) -> str:
        d = tip[name]
        return f"{label} {d:+.1f} degrees" if np.isfinite(d) else f"{label}: no shift within 10 degrees"

    return (f"the conclusion {change} when the imputed week-N values are shifted by: "
            + "; ".join([one("daily", "daily arm only"), one("three-per-week", "3x/week arm only"),
                         one("both", "both arms")]) + " (against MAR)")


def complier_average(imputed: Imputed, table: pd.DataFrame) -> dict:
    """The complier-average causal effect (CACE) of daily breakouts at week N, for randomised data:
    the effect in the patients who would follow the schedule they are assigned, estimated with the
    assignment as the instrument for the schedule followed (``followed`` of :func:`trial_patients`,
    the schedule on most days up to week N) by two-stage least squares with baseline IR as a
    covariate, on each MI copy (:func:`impute_windows`) with a robust (HC0) variance, pooled by
    Rubin's rules (Angrist, Imbens & Rubin, JASA 1996;91:444-455; Dunn, Maracy & Tomenson, Stat
    Methods Med Res 2005;14:369-395). It assumes that assignment moves IR only through the schedule
    followed (exclusion restriction) and that no patient follows daily *because* they were assigned
    3x/week (monotonicity). Unlike the per-protocol analysis it compares randomised groups whole.

    When every patient follows the schedule assigned, it is the ITT ANCOVA:

    >>> imp = Imputed(6, np.array([[[20.0, 30], [25, 33], [22, 27], [18, 24], [21, 26]]]), np.zeros((5, 2), bool),
    ...               np.array([1.0, 1, 0, 0, 0]), np.array(["A", "B", "C", "D", "E"]))
    >>> t = pd.DataFrame({"patient_id": list("ABCDE"), "followed": ["daily"] * 2 + ["three-per-week"] * 3})
    >>> round(complier_average(imp, t)["estimate"], 9) == round(imp.ancova()["estimate"], 9)
    True

    Raises
    ------
    HipAnalyticsError
        When assignment hardly changes the schedule followed (a difference in share under 0.1: a
        weak instrument, no estimate worth reporting).
    """
    from .imputation import rubin

    received = (table.set_index("patient_id")["followed"].reindex(imputed.patient_ids) == TREATED).to_numpy(dtype=float)
    z = imputed.daily
    share = received[z == 1].mean() - received[z == 0].mean()
    if not share >= 0.1:
        raise HipAnalyticsError(f"complier average: assignment changed the schedule followed in {100 * share:.0f}% "
                                "of patients (a weak instrument)")
    fits = []
    for v in imputed.values:
        instruments = np.column_stack([np.ones(len(z)), z, v[:, 0]])
        design = np.column_stack([np.ones(len(z)), received, v[:, 0]])
        bread = np.linalg.inv(instruments.T @ design)
        beta = bread @ instruments.T @ v[:, -1]
        score = instruments * (v[:, -1] - design @ beta)[:, None]
        fits.append((float(beta[1]), float((bread @ score.T @ score @ bread.T)[1, 1])))
    n = len(z)
    return {"n": n, **rubin([f[0] for f in fits], [f[1] for f in fits], n - 3),
            "share_daily_followed": float(received[z == 1].mean()), "share_three_followed": float(1 - received[z == 0].mean())}


def per_protocol(table: pd.DataFrame, imputed: Imputed | None = None) -> pd.DataFrame:
    """Per-protocol (assigned schedule, adherent, not switched) and as-treated ANCOVA at week N,
    with the group sizes and how the per-protocol groups differ at baseline; with ``imputed`` (a
    randomised comparison) the complier-average causal effect after them (:func:`complier_average`;
    when it cannot be estimated, its row says why)."""
    pp = table[table["per_protocol"]]
    rows = [{"label": "per protocol", "analysis": "per protocol: ANCOVA of completers adherent to the assigned schedule up to week N, "
                         "switchers excluded",
             **ancova(pp), "n_daily": int((pp["arm"] == TREATED).sum()),
             "n_three_per_week": int((pp["arm"] == REFERENCE).sum())}]
    treated = table.assign(arm=table["followed"])
    rows.append({"label": "as treated", "analysis": "as treated: each patient on the schedule followed longest up to week N",
                 **ancova(treated),
                 "n_daily": int((treated.dropna(subset=["week_deg"])["arm"] == TREATED).sum()),
                 "n_three_per_week": int((treated.dropna(subset=["week_deg"])["arm"] == REFERENCE).sum())})
    if imputed is not None:
        row = {"label": "complier average (CACE)", "n_daily": int(imputed.daily.sum()),
               "n_three_per_week": int(len(imputed.daily) - imputed.daily.sum())}
        try:
            cace = complier_average(imputed, table)
        except HipAnalyticsError as exc:
            row["analysis"] = f"complier average causal effect: not estimated ({exc})"
        else:
            row.update({k: cace[k] for k in ("n", "estimate", "std_error", "df", "ci_low", "ci_high", "p_value")})
            row["analysis"] = (f"complier average causal effect: assignment as the instrument for the schedule followed "
                               f"(2SLS after MI; {100 * cace['share_daily_followed']:.0f}% of daily and "
                               f"{100 * cace['share_three_followed']:.0f}% of 3x/week patients on their assigned schedule on "
                               "most days up to week N)")
        rows.append(row)
    out = pd.DataFrame(rows)
    base = pp.groupby("arm")["baseline_deg"].mean()
    out["baseline_difference"] = [base.get(TREATED, np.nan) - base.get(REFERENCE, np.nan)] + [np.nan] * (len(out) - 1)
    return out


def _weeks_text(weeks) -> str:
    """Weeks listed when few (``2, 4``), else summarised (``2-5, median 3``)."""
    weeks = sorted(float(w) for w in weeks)
    if not weeks:
        return ""
    if len(weeks) <= 5:
        return ", ".join(f"{w:g}" for w in weeks)
    return f"{weeks[0]:g}-{weeks[-1]:g}, median {np.median(weeks):g}"


def consort_flow(table: pd.DataFrame, primary: PrimaryResult) -> pd.DataFrame:
    """CONSORT 2010 counts per arm: assigned, switched (when), without an IR value at week N (last
    visit window), analysed in the primary analysis, as complete cases and per protocol.

    Returns
    -------
    DataFrame
        One row per arm: ``arm``, ``week``, ``assigned``, ``switched``, ``switch_weeks``,
        ``dropped_out`` (no value at week N), ``dropout_weeks``, ``no_baseline``,
        ``analysed_primary``, ``analysed_complete``, ``analysed_per_protocol``.
    """
    rows = []
    analysed = set(primary.fit.data.subjects)
    for arm in (TREATED, REFERENCE):
        t = table[table["arm"] == arm]
        rows.append({
            "arm": arm, "week": primary.week, "assigned": len(t),
            "switched": int(t["switched"].sum()),
            "switch_weeks": _weeks_text(t.loc[t["switched"], "switch_week"].dropna()),
            "dropped_out": int(t["dropped_out"].sum()),
            "dropout_weeks": _weeks_text(t.loc[t["dropped_out"], "dropout_week"].dropna()),
            "no_baseline": int(t["baseline_deg"].isna().sum()),
            "analysed_primary": int(t["patient_id"].isin(analysed).sum()),
            "analysed_complete": int((t["baseline_deg"].notna() & t["week_deg"].notna()).sum()),
            "analysed_per_protocol": int(t["per_protocol"].sum()),
        })
    return pd.DataFrame(rows)


def harms_by_arm(table: pd.DataFrame, sessions: pd.DataFrame, programs: pd.DataFrame) -> pd.DataFrame:
    """Tolerance, harms and adherence by assigned arm, one row per measure.

    Pain rises are breakout sessions whose pain after exceeds pain before by the tolerance rule's
    :data:`~hipanalytics.analysis.tolerance.PAIN_RISE_NPRS` NPRS points; a patient with repeated
    rises had two or more within six consecutive breakout sessions with pain recorded (the
    tolerance flag's rule, on any schedule and at any time). Daily breakouts log about twice the
    sessions of 3x/week, so counts of patients with rises favour 3x/week by exposure alone: the
    rate per 100 breakout sessions and the time to the first rise (Kaplan-Meier,
    :func:`time_to_first_rise`) compare like with like. Switches for pain are programs after the
    first whose reason mentions pain.

    Returns
    -------
    DataFrame
        ``measure`` and one column per arm (``daily``, ``three-per-week``), as text ready to print.
    """
    from ..numbers import fixed, percent
    from .tolerance import PAIN_RISE_NPRS

    b = _scored_breakouts(sessions, programs).sort_values(["patient_id", "performed_on"])
    rises = b.groupby("patient_id")["rise"].sum()
    told = b.groupby("patient_id").size()
    repeated = b.groupby("patient_id")["rise"].apply(lambda r: bool((r.astype(int).rolling(6, min_periods=1).sum() >= 2).any()))
    later = programs.assign(start=pd.to_datetime(programs["start_date"])).sort_values("start")
    later = later[later.duplicated("patient_id", keep="first")]
    pain_switch = set(later.loc[later["reason"].fillna("").str.contains("pain", case=False), "patient_id"]) \
        if "reason" in later else set()
    from .survival import kaplan_meier, median_time

    times = time_to_first_rise(table, sessions, programs)
    columns = {}
    for arm in (TREATED, REFERENCE):
        t = table[table["arm"] == arm]
        ids = t["patient_id"]
        n = len(t)
        n_rises, n_told = int(rises.reindex(ids).fillna(0).sum()), int(told.reindex(ids).fillna(0).sum())
        with_repeated = int(repeated.reindex(ids).fillna(False).astype(bool).sum())

        def share(k):
            return f"{k} ({percent(k / n)})" if n else "0"

        followed = times[times["arm"] == arm]
        curve = kaplan_meier(followed["days"], followed["event"])
        median = median_time(curve) if len(curve) else float("nan")
        columns[arm] = [
            str(n), str(n_told), str(n_rises), fixed(100 * n_rises / n_told, 1) if n_told else "",
            f"{int(followed['event'].sum())} of {len(followed)}; median "
            + (f"{median:g} days" if np.isfinite(median) else "not reached"),
            share(with_repeated), share(int(ids.isin(pain_switch).sum())), share(int(t["switched"].sum())),
            share(int(t["dropped_out"].sum())),
            fixed(t["breakouts_planned_per_week"].median(), 1), fixed(t["breakouts_done_per_week"].median(), 1),
            percent(t["assigned_adherence"].median()),
        ]
    measures = ["patients", "breakout sessions with pain recorded", f"pain rises of {PAIN_RISE_NPRS:g}+ NPRS points",
                "pain rises per 100 breakout sessions",
                "first pain rise: patients with one, of those with pain logged; median days from time zero "
                "(Kaplan-Meier)",
                "patients with repeated rises (2+ in 6 sessions), n (%)",
                "switched schedule for pain, n (%)", "switched schedule for any reason, n (%)",
                "no IR value at the comparison week, n (%)", "breakouts planned per week (assigned), median",
                "breakouts done per week, median", "assigned breakouts done, median share"]
    return pd.DataFrame({"measure": measures, **columns})


def _scored_breakouts(sessions: pd.DataFrame, programs: pd.DataFrame) -> pd.DataFrame:
    """The breakout sessions with pain before and after recorded, and ``rise``: pain after at least
    :data:`~hipanalytics.analysis.tolerance.PAIN_RISE_NPRS` points above pain before."""
    from ..program import breakout_templates
    from .tolerance import PAIN_RISE_NPRS

    b = sessions[sessions["session"].isin(breakout_templates(programs))
                 & sessions["pain_before"].notna() & sessions["pain_after"].notna()]
    return b.assign(rise=(b["pain_after"].astype(float) - b["pain_before"].astype(float)) >= PAIN_RISE_NPRS)


def time_to_first_rise(table: pd.DataFrame, sessions: pd.DataFrame, programs: pd.DataFrame) -> pd.DataFrame:
    """Days from time zero to each patient's first pain rise after a breakout session (pain after at
    least :data:`~hipanalytics.analysis.tolerance.PAIN_RISE_NPRS` points above pain before), or to
    their last breakout session with pain recorded when none rose (censored there). Patients who
    logged no such session are left out (no follow-up of pain).

    Returns
    -------
    DataFrame
        ``patient_id``, ``arm``, ``days``, ``event`` (bool); feed it to
        :func:`hipanalytics.analysis.survival.kaplan_meier` per arm.
    """
    b = _scored_breakouts(sessions, programs)
    b = b[b["patient_id"].isin(table["patient_id"])]
    zero = table.set_index("patient_id")["time_zero"]
    b = b.assign(day=(pd.to_datetime(b["performed_on"]) - b["patient_id"].map(zero)).dt.days)
    first = b[b["rise"]].groupby("patient_id")["day"].min()
    last = b.groupby("patient_id")["day"].max()
    out = pd.DataFrame({"patient_id": last.index})
    out["arm"] = out["patient_id"].map(table.set_index("patient_id")["arm"])
    out["event"] = out["patient_id"].isin(first.index)
    out["days"] = np.where(out["event"], out["patient_id"].map(first), out["patient_id"].map(last)).astype(float)
    return out[["patient_id", "arm", "days", "event"]]


def missing_by_analysis(table: pd.DataFrame, primary: PrimaryResult, week: int) -> pd.DataFrame:
    """Who is left out of each analysis, and why: one row per patient and analysis.

    The primary analysis leaves out only patients without a baseline visit on the primary method;
    the ANCOVAs at week N (complete-case, per protocol) leave out everyone without a value at
    week N; multiple imputation imputes those values and leaves out only patients without a
    baseline; per protocol also leaves out switchers and patients under the adherence threshold.

    Returns
    -------
    DataFrame
        ``analysis``, ``patient_id``, ``arm``, ``reason``; empty when every analysis includes everyone.
    """
    analysed = set(primary.fit.data.subjects)
    rows = []

    def why_no_value(r) -> str:
        if pd.isna(r.baseline_deg):
            return "no baseline visit on the primary method"
        if r.dropped_out and r.dropout_week > week:
            return f"missed the week-{week} visit (seen again at week {int(r.dropout_week)})"
        if r.dropped_out:
            return f"dropped out after week {int(r.dropout_week)} (last visit window)"
        return f"no visit within {WINDOW_WEEKS // 2} week(s) of week {week}"

    for r in table.itertuples():
        if r.patient_id not in analysed:
            rows.append(("primary (cLDA, all visits)", r.patient_id, r.arm, why_no_value(r) if pd.isna(r.baseline_deg)
                         else "no visit on the primary method in the analysis windows"))
        if pd.isna(r.baseline_deg):
            rows.append(("sensitivity: multiple imputation", r.patient_id, r.arm, "no baseline visit on the primary method"))
        if pd.isna(r.week_deg) or pd.isna(r.baseline_deg):
            rows.append(("sensitivity: complete cases", r.patient_id, r.arm, why_no_value(r)))
        if not r.per_protocol:
            rows.append(("per protocol", r.patient_id, r.arm, r.reason))
    return pd.DataFrame(rows, columns=["analysis", "patient_id", "arm", "reason"])


def secondary_outcomes(table: pd.DataFrame, visits: pd.DataFrame, week: int, *, mdc: float,
                       primary_p: float | None = None, alpha: float = 0.05,
                       imputed: Imputed | None = None, time_shape: pd.DataFrame | None = None) -> pd.DataFrame:
    """The secondary outcomes, daily minus 3x/week, with Holm-adjusted p-values over the family of
    the two that are valid under missing at random, behind the primary analysis as a gatekeeper:
    they are confirmatory only when the primary is significant at ``alpha`` (``primary_p``; serial
    gatekeeping, Dmitrienko et al., Stat Med 2003;22:2387-2400), else exploratory, which
    ``confirmatory`` and ``note`` say.

    1. IR gain per week to week N (:func:`gain_per_week`): the difference in the mixed model's mean
       change from time zero to week N, over N, with the time course chosen by
       :data:`TIME_SHAPE_RULE` from ``time_shape`` (:func:`time_shape_comparison`; computed when not
       given). Likelihood-based on every visit: valid under MAR.
    2. Reliable improvement at week N: the share of patients whose IR at week N exceeds baseline by
       at least the MDC, risk difference after multiple imputation under MAR (``imputed``, from
       :func:`impute_windows`; computed when not given): on each completed copy the difference and
       its binomial variance, pooled by Rubin's rules.
    3. Change at week N, distribution-free (Hodges-Lehmann shift, Mann-Whitney test): complete
       cases, so exploratory and outside the Holm family (valid only when missing completely at
       random; said in ``note``).

    Returns
    -------
    DataFrame
        ``outcome``, ``unit``, ``n``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value``,
        ``p_holm`` (NaN outside the family), ``confirmatory`` (bool), ``note``.
    """
    import warnings

    from ..errors import HipAnalyticsWarning
    from .cohort import compare_groups
    from .imputation import rubin

    time_shape = time_shape_comparison(visits) if time_shape is None else time_shape
    imputed = impute_windows(visits, table, week) if imputed is None else imputed
    rows = [gain_per_week(visits, week, time_shape)]
    fits = []
    for v in imputed.values:
        improved = (v[:, -1] - v[:, 0]) >= mdc
        p1, p0 = improved[imputed.daily == 1].mean(), improved[imputed.daily == 0].mean()
        n1, n0 = int(imputed.daily.sum()), int(len(imputed.daily) - imputed.daily.sum())
        fits.append((p1 - p0, p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
    pooled = rubin([f[0] for f in fits], [max(f[1], 1e-12) for f in fits], len(imputed.daily) - 2)
    observed = ~imputed.missing[:, 0] & ~imputed.missing[:, -1]
    seen = {k: int((observed & (imputed.daily == k)).sum()) for k in (1, 0)}
    rows.append({"outcome": f"reliable improvement at week {week} (gain >= MDC {mdc:g} degrees)",
                 "unit": "difference in proportion", "n": len(imputed.daily), "estimate": pooled["estimate"],
                 "ci_low": pooled["ci_low"], "ci_high": pooled["ci_high"], "p_value": pooled["p_value"],
                 "note": f"multiple imputation under MAR ({len(imputed.values)} imputations); baseline and week "
                         f"{week} observed for {seen[1]} daily and {seen[0]} 3x/week patients"})
    d = table.dropna(subset=["week_deg", "baseline_deg"])
    d = d[d["arm"].isin([TREATED, REFERENCE])]
    change = d.assign(change=d["week_deg"] - d["baseline_deg"], schedule=d["arm"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HipAnalyticsWarning)
        hl = compare_groups(change, "change", groups=(TREATED, REFERENCE))
    hl = hl[hl["statistic"] == "Mann-Whitney U"].iloc[0]
    rows.append({"outcome": f"change at week {week}, distribution-free (Hodges-Lehmann)", "unit": "degrees",
                 "n": int(hl["n_1"] + hl["n_2"]), "estimate": hl["estimate"], "ci_low": hl["ci_low"],
                 "ci_high": hl["ci_high"], "p_value": hl["p_value"],
                 "note": "; ".join(["exploratory, outside the Holm family: complete cases, valid only if missing "
                                    "completely at random", *([hl["note"]] if hl["note"] else [])])})
    out = pd.DataFrame(rows)
    family = out.index[:2][out["p_value"].iloc[:2].notna().to_numpy()]
    out["p_holm"] = np.nan
    out.loc[family, "p_holm"] = holm(out.loc[family, "p_value"])
    out["confirmatory"] = (primary_p is not None and bool(primary_p < alpha)) & (out.index < 2)
    if primary_p is not None and not primary_p < alpha:
        gate = f"exploratory: the primary analysis was not significant (p = {primary_p:.2g}), so not tested"
        out.loc[:1, "note"] = [gate if not isinstance(n, str) or not n else f"{gate}; {n}" for n in out.loc[:1, "note"]]
    return out


TIME_SHAPE_RULE = ("linear in weeks, unless the restricted cubic spline (3 knots) fits better by the likelihood-ratio "
                   "test at the 5% level; then the spline")
"""The pre-specified rule choosing the time course of the gain-per-week secondary outcome from
:func:`time_shape_comparison` (the log shape is shown, not nested, and never chosen)."""


def _time_basis(w: np.ndarray, knots: np.ndarray, shape: str) -> list[np.ndarray]:
    """The time terms of ``shape`` at weeks ``w`` (the spline's knots fixed by the data it was fitted to)."""
    if shape == "linear":
        return [w]
    if shape == "log(weeks + 1)":
        return [np.log1p(w)]
    k1, k2, k3 = knots

    def pos3(x):
        return np.clip(x, 0, None) ** 3

    return [w, (pos3(w - k1) - pos3(w - k2) * (k3 - k1) / (k3 - k2) + pos3(w - k3) * (k2 - k1) / (k3 - k2)) / (k3 - k1) ** 2]


def _shape_data(visits: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    d = visits[visits["schedule"].isin([TREATED, REFERENCE])].reset_index(drop=True)
    w = d["weeks"].to_numpy(dtype=float)
    return d, (d["schedule"] == TREATED).to_numpy(dtype=float), np.percentile(w, [10, 50, 90])


def _shape_design(d: pd.DataFrame, daily: np.ndarray, knots: np.ndarray, shape: str) -> tuple[np.ndarray, list[str]]:
    basis = _time_basis(d["weeks"].to_numpy(dtype=float), knots, shape)
    X = np.column_stack([np.ones(len(d)), daily, *basis, *[daily * b for b in basis]])
    return X, ["(Intercept)", "daily"] + [f"t{i}" for i in range(len(basis))] + [f"daily x t{i}" for i in range(len(basis))]


def gain_per_week(visits: pd.DataFrame, week: int, time_shape: pd.DataFrame) -> dict:
    """The difference, daily minus 3x/week, in the mean IR gain per week from time zero to week N:
    a REML mixed model of every visit on the time course chosen by :data:`TIME_SHAPE_RULE` (each
    arm its own curve; random intercept and slope per patient, an intercept per hip when some have
    both; a random intercept only when the slope's variance cannot be estimated, said), the
    difference in fitted change at week N over N. With the linear course it is the difference in
    slope. Returns a row of :func:`secondary_outcomes`."""
    spline = time_shape.set_index("time shape").loc["restricted cubic spline (3 knots)"]
    shape = "restricted cubic spline (3 knots)" if spline["LR p"] < 0.05 else "linear"
    d, daily, knots = _shape_data(visits)
    X, labels = _shape_design(d, daily, knots, shape)
    nested = "side" if "side" in d and d.groupby("patient_id")["side"].nunique().max() > 1 else None
    notes = [f"time course: {shape} (rule: {TIME_SHAPE_RULE}; spline LR p = {spline['LR p']:.2g})"]
    fit = fit_lmm(lmm_data(d, X, labels, y="degrees", subject="patient_id", random=["weeks"], side=nested))
    if fit.singular or not fit.converged:
        notes.append("random intercept only: the variation of the slope between patients could not be estimated, "
                     "so the CI is too narrow")
        fit = fit_lmm(lmm_data(d, X, labels, y="degrees", subject="patient_id", random=[], side=nested))
    change = [b[1] - b[0] for b in _time_basis(np.array([0.0, float(week)]), knots, shape)]
    L = np.zeros(len(labels))
    for i, c in enumerate(change):
        L[labels.index(f"daily x t{i}")] = c / week
    result = fit.test(L)
    return {"outcome": f"IR gain per week to week {week} (mixed model, all visits)", "unit": "degrees per week",
            "n": int(d["patient_id"].nunique()), **{k: result[k] for k in ("estimate", "ci_low", "ci_high", "p_value")},
            "note": "; ".join(notes + fit.notes)}


def time_shape_comparison(visits: pd.DataFrame) -> pd.DataFrame:
    """Linear against nonlinear time: ML fits of IR on time x arm (random intercept and slope), with
    AIC and the likelihood-ratio test of each nonlinear shape against the linear one.

    Shapes: linear (weeks), log(weeks + 1), and a restricted cubic spline with 3 knots at the 10th,
    50th and 90th percentiles of weeks (linear plus one nonlinear term; Harrell 2015), which nests
    the linear model (LR test on 2 df: the term and its interaction with the arm). ``chosen`` marks
    the shape :data:`TIME_SHAPE_RULE` picks for the gain-per-week secondary outcome.
    """
    from scipy import stats

    d, daily, knots = _shape_data(visits)
    fits = {}
    for name in ("linear", "log(weeks + 1)", "restricted cubic spline (3 knots)"):
        X, labels = _shape_design(d, daily, knots, name)
        fits[name] = fit_lmm(lmm_data(d, X, labels, y="degrees", subject="patient_id", random=["weeks"]), reml=False)
    linear = fits["linear"]
    rows = []
    for name, fit in fits.items():
        extra = fit.data.p - linear.data.p
        nested = name != "log(weeks + 1)" and extra > 0
        lr = 2 * (fit.loglik - linear.loglik) if nested else np.nan
        rows.append({"time shape": name, "parameters": fit.data.p + len(fit.theta) + 1,
                     "log-likelihood (ML)": fit.loglik, "AIC": fit.aic,
                     "LR vs linear": lr, "LR df": extra if nested else np.nan,
                     "LR p": stats.chi2.sf(lr, extra) if nested else np.nan})
    out = pd.DataFrame(rows)
    out["best AIC"] = out["AIC"] == out["AIC"].min()
    spline_wins = bool(out.loc[2, "LR p"] < 0.05)
    out["chosen"] = [not spline_wins, False, spline_wins]
    return out


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error over the family given).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        adjusted[i] = min(running, 1.0)
    return adjusted
