"""The cohort study report: do daily breakouts beat 3x/week?

:func:`cohort_comparison` runs the trial analysis (:mod:`hipanalytics.analysis.trial`) and the
cohort statistics (:mod:`hipanalytics.analysis.cohort`) on a store and returns a
:class:`CohortComparison`: every table in words and sensible precision (estimates to 0.1 degree,
p to two significant figures, "<0.001"), the figures, a methods paragraph that names the
estimand, the primary analysis, the handling of missing data and the software with versions, and
:meth:`CohortComparison.export`, which writes every table as CSV and LaTeX (booktabs) and every
figure as SVG and PDF for the manuscript.

Examples
--------
>>> from hipanalytics.synthetic import generate_clinic
>>> c = cohort_comparison(generate_clinic(40, seed=3))
>>> c.primary.week, sorted(c.primary.n_per_arm)
(6, ['daily', 'three-per-week'])
>>> list(c.main_table().columns)
['analysis', 'patients', 'difference (degrees)', '95% CI', 'p']
"""

from __future__ import annotations

import html
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .errors import HipAnalyticsWarning, ReportError
from .numbers import fixed, p_value

__all__ = ["CohortComparison", "cohort_comparison", "latex_table", "power_files", "power_table"]

MDC_DEG = 5.4
"""MDC95 of seated active hip IR by inclinometer, degrees (Krause et al., KSSTA 2015;23(9):2562-2567),
the threshold of a reliable improvement (secondary outcome)."""


def _p_words(p: float) -> str:
    """``= 0.21`` or ``< 0.001``: a p value after the letter p."""
    shown = p_value(p)
    return f"< {shown[1:]}" if shown.startswith("<") else f"= {shown}"


def _ci(low, high, digits: int = 1) -> str:
    """A CI as "-0.6 to 4.5", with no-break spaces: it never wraps inside a table cell."""
    return "" if pd.isna(low) or pd.isna(high) else f"{fixed(low, digits)}\u00a0to\u00a0{fixed(high, digits)}"


@dataclass
class CohortComparison:
    """Everything the cohort report shows; tables for print come from the ``*_table`` methods."""

    week: int
    threshold: float
    patients: pd.DataFrame
    outcomes: pd.DataFrame
    visits: pd.DataFrame
    primary: Any
    sensitivity: pd.DataFrame
    per_protocol: pd.DataFrame
    secondary: pd.DataFrame
    flow: pd.DataFrame
    missing: pd.DataFrame
    harms: pd.DataFrame
    weekly_gain: pd.DataFrame
    time_shape: pd.DataFrame
    dose: pd.DataFrame
    table1: pd.DataFrame
    first_rise: pd.DataFrame
    caveats: list[str] = field(default_factory=list)
    key_figures: dict[str, Any] = field(default_factory=dict)
    allocated: bool = False
    """Whether every patient's arm comes from an allocation (the patients' ``allocation`` column, filled
    in for every patient) rather than from the schedule first chosen in care."""

    contrast = "daily minus 3x/week"

    # -- words ---------------------------------------------------------------------------------

    @property
    def estimand(self) -> str:
        from .analysis.trial import estimand_text

        return estimand_text(self.week)

    def plain_language(self) -> str:
        """The result in a paragraph a clinician can read: the difference at week N with its CI, set
        against the MDC, and what kind of comparison it is."""
        from types import SimpleNamespace

        from .analysis.trial import WEIGHTED_METHODS

        observational = self.weighting is not None
        if observational:
            p = SimpleNamespace(**self.sensitivity[self.sensitivity["label"] == WEIGHTED_METHODS["overlap"]].iloc[0])
            dr = SimpleNamespace(**self.weighting["methods"]["aipw"])
            ess = self.weighting["ess"]
            text = ("No allocation is recorded: the schedules were chosen in routine care, so this is an "
                    f"observational comparison. Adjusted for {self.adjusted_for()} by "
                    f"propensity-score overlap weights, at week {self.week} patients who started daily breakouts had "
                    f"{fixed(abs(p.estimate))} degrees {'more' if p.estimate >= 0 else 'less'} hip IR than those who "
                    f"started 3x/week (95% CI {fixed(p.ci_low)} to {fixed(p.ci_high)} degrees, daily minus 3x/week; "
                    f"p {_p_words(p.p_value)}; effective sample size {ess['daily']:.0f} daily and "
                    f"{ess['three-per-week']:.0f} 3x/week), in the patients who could have been given either "
                    f"schedule (doubly robust estimate over all patients: {fixed(dr.estimate)} degrees, 95% CI "
                    f"{fixed(dr.ci_low)} to {fixed(dr.ci_high)}; unadjusted: {fixed(self.primary.estimate)} degrees). ")
        else:
            p = self.primary
            text = (f"At week {self.week}, patients assigned to daily breakouts had {fixed(abs(p.estimate))} degrees "
                    f"{'more' if p.estimate >= 0 else 'less'} hip IR than those assigned to breakouts 3x/week (95% CI "
                    f"{fixed(p.ci_low)} to {fixed(p.ci_high)} degrees, daily minus 3x/week; p {_p_words(p.p_value)}), "
                    "adjusted for baseline IR" + (" and site" if p.adjusted_for else "") + ". ")
        if -MDC_DEG < p.ci_low and p.ci_high < MDC_DEG:
            text += (f"The confidence interval rules out a difference as large as the {MDC_DEG:g}-degree MDC in "
                     "either direction: whichever schedule is better, the difference is smaller than a change one "
                     "measurement can detect in a patient. ")
        elif abs(p.estimate) < MDC_DEG:
            text += (f"The estimate is smaller than the {MDC_DEG:g}-degree MDC, but the confidence interval does not "
                     "rule out a difference of that size: the data cannot tell yet. ")
        else:
            text += f"The estimate is at least the {MDC_DEG:g}-degree MDC, a difference a clinician could measure. "
        if observational:
            text += ("Confounders that were not measured (for example how well a patient tolerated the first "
                     "sessions) are not adjusted for: the estimate is the schedule's effect only if there are none.")
        elif not self.allocated:
            why = self.sensitivity.attrs.get("weighting_error")
            text += ("No allocation is recorded: the schedules were chosen in routine care, so this is an "
                     "observational comparison, and the adjustment for confounding could not be made"
                     + (f" ({why})" if why else "") + ": read it as a description, not as the effect of the schedule.")
        else:
            text += ("Every patient's schedule was allocated (the patients' allocation column): if the allocation was "
                     "random, a randomised comparison.")
        return text

    def methods_sections(self) -> list[tuple[str, str]]:
        """The methods, section by section: estimand, outcome, primary analysis, missing data, other
        analyses, software (each a heading and a paragraph)."""
        from .analysis.trial import COVARIANCE_ORDER, TIME_SHAPE_RULE, covariance_words, missing_data_text

        p = self.primary
        covariance = (f"a covariance over the visit windows chosen by a pre-specified order, the first that can be "
                      f"estimated (converges to a positive definite matrix): {', '.join(map(covariance_words, COVARIANCE_ORDER))}; "
                      f"here {covariance_words(p.covariance)}"
                      + (f" ({'; '.join(f'{covariance_words(s)}: {r}' for s, r in p.rejected)})" if p.rejected else ""))
        return [
            ("Estimand", self.estimand),
            ("Outcome", "Hip IR of the involved side, seated with the hip at 90 degrees, active, by inclinometer, "
                        "averaged over the trials of a visit. Time zero is the patient's allocation date, or the start "
                        "of their first program when no allocation date is given; "
                        "the baseline is the hip's last visit from 14 days before to 3 days after it (a patient "
                        "without one has no baseline: it is never a later visit). Follow-up visits are grouped into "
                        "2-week windows by explicit day ranges from time zero (week 2: days 4-20; week w: days 7w-7 "
                        "to 7w+6), the visit nearest the window's centre."),
            ("Primary analysis",
             "A constrained longitudinal data analysis (cLDA: the longitudinal form of ANCOVA on baseline; Vickers & "
             "Altman, BMJ 2001;323:1123; Coffman et al., BMC Med Res Methodol 2016;16:113) of every observed visit of "
             f"every assigned patient up to week {self.week}, by assigned schedule (intention to treat), one value per "
             "patient and window (the involved hip's, or the mean of both hips when both are involved: the estimand's "
             "variable): a mean per window and arm, the baseline mean common to both arms (which randomisation "
             "ensures; in observational data an assumption), "
             + ("a mean shift per site common to every window (site as a covariate; ICH E9 section 5.7), "
                if p.adjusted_for else "")
             + f"and {covariance}, fitted by REML (an MMRM). The "
             f"estimate is the difference between arms at week {self.week}, with a t test and 95% CI on "
             "Satterthwaite's degrees of freedom from the REML fit (checked against R: the same formula applied to "
             "nlme's gls; undefined, and then said, when a variance parameter is at its bound)."),
            ("Missing data",
             missing_data_text(self.week) + " The likelihood of all observed visits is valid when values are "
             "missing at random given the observed IR and arm (White et al., BMJ 2011;342:d40), so no patient with "
             "an observed visit is left out of the primary analysis, with or without a baseline (the baseline is one "
             f"more outcome under cLDA). Sensitivity analyses, each an ANCOVA of IR at week {self.week} on arm and "
             "baseline: after multiple imputation under MAR (20 imputations by multivariate normal data augmentation, "
             "every window imputed given every observed window of the patient; Schafer 1997; Rubin's rules); after "
             "jump-to-reference imputation, daily patients' values after their last visit imputed with the 3x/week "
             "mean (missing not at random; Carpenter et al., J Biopharm Stat 2013); a delta-adjusted tipping point, "
             "the imputed week-N values of one arm or both shifted until the conclusion changes (Ratitch et al., "
             "Pharm Stat 2013); and on complete cases (valid only if missing completely at random). "
             + ("In this observational comparison jump to reference is also made on the overlap-weighted estimate, "
                "the one the plain words lead with, and the tipping point is that estimate's. "
                if self.weighting is not None else "")
             + "The patients missing from each analysis are listed with the reason."),
            *([("Observational comparison",
                "No allocation is recorded, so the comparison emulates a target trial (Hernan & Robins, Am J "
                "Epidemiol 2016;183:758-764): eligibility, a program of either schedule; time zero, the program "
                "start; the strategies, starting daily or 3x/week breakouts; the outcome, IR at week "
                f"{self.week}. Confounding by indication is adjusted for by propensity-score overlap weights (Li, "
                f"Morgan & Zaslavsky, JASA 2018;113:390-400): a logistic model of starting daily on {self.adjusted_for()} "
                "(baseline pain: the NPRS before the first session in the baseline window; a covariate missing "
                "for some patients by a missing indicator), each daily patient weighted 1 - e and each "
                "3x/week patient e; the estimate is the weighted ANCOVA of week-N IR on arm and the same covariates "
                "with a robust (HC0) variance, after multiple imputation of the missing values, on each imputation "
                "and pooled by Rubin's rules. Its target is the difference in the patients who could have been "
                "given either schedule (the overlap population). Beside it, for all patients: the ANCOVA weighted by "
                "stabilised inverse-probability weights (Robins et al., Epidemiology 2000;11:550-560) and the "
                "augmented IPW estimate (Funk et al., Am J Epidemiol 2011;173:761-767), doubly robust: consistent "
                "if either the propensity model or the outcome model is right. Balance is shown as standardised mean differences before and after weighting "
                "(|SMD| above 0.1 is imbalance; Austin, Stat Med 2009), with Kish's effective sample size and the "
                "patients outside the common range of propensity scores (positivity). The unadjusted analyses "
                "above assume no confounding.")] if self.weighting is not None else []),
            ("Other analyses",
             f"Per protocol: patients who did at least {100 * self.threshold:.0f}% of the breakouts their assigned "
             f"schedule planned up to week {self.week}, did not switch schedule and have a week-{self.week} value "
             "(a completers analysis, biased when adherence or drop-out depend on prognosis); as treated: each "
             f"patient on the schedule they followed on most days up to week {self.week}, whichever way they "
             "switched"
             + (f"; the complier-average causal effect (assignment as the instrument for the schedule followed up to "
                f"week {self.week}, two-stage least squares on baseline IR after the MAR imputations, robust variance; "
                "Angrist, Imbens & Rubin, JASA 1996), the principled alternative to per protocol in randomised "
                "data: it assumes assignment acts only through the schedule followed" if self.allocated else "")
             + ". Secondary outcomes, both valid under MAR: the IR gain per week to week "
             f"{self.week} (a REML mixed model of every visit, each arm its own time course, random intercept and "
             "slope per patient and an intercept per hip; the difference in fitted change at week "
             f"{self.week} over {self.week}), with the time course chosen by a pre-specified rule: {TIME_SHAPE_RULE}; "
             f"and reliable improvement of at least the MDC of {MDC_DEG:g} degrees at week {self.week} (risk "
             "difference after the MAR imputations, Rubin's rules). They are tested with Holm's correction over the "
             "two, and only if the primary analysis is significant at 5% (serial gatekeeping; otherwise they are "
             "exploratory). Exploratory, without correction: the Hodges-Lehmann shift of the change (complete "
             "cases), per protocol, as treated, harms, dose-response (OLS of each "
             f"patient's IR change at week {self.week} on the breakouts done per week up to it, adjusted for arm and "
             "baseline IR; patients followed to that week, so no week after a drop-out counts as no dose, and "
             "not adjusted for the length of follow-up, which drop-out decides) and the shape of the "
             "time course (linear, log(weeks + 1) and a restricted cubic spline, ML fits compared by AIC and "
             "likelihood ratio)."),
            ("Software", f"{self.software}."),
        ]

    @property
    def methods(self) -> str:
        """The methods as one paragraph (see :meth:`methods_sections`)."""
        return " ".join(f"{title}. {text}" for title, text in self.methods_sections())

    def methods_html(self) -> str:
        """The methods, a paragraph per section with its heading in bold, escaped."""
        return "".join(f"<p><strong>{html.escape(title)}.</strong> {html.escape(text)}</p>"
                       for title, text in self.methods_sections())

    @property
    def software(self) -> str:
        import scipy
        import statsmodels

        return (f"hipanalytics {__version__} (mixed models cross-checked against R lme4, lmerTest and nlme; Kaplan-Meier "
                "against R survival; propensity weighting and AIPW against R glm, lm and sandwich; the complier average "
                "against R AER's ivreg; multiple imputation against R mice), "
                f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
                f"statsmodels {statsmodels.__version__}, pandas {pd.__version__}")

    def caveats_html(self) -> str:
        """Warnings raised while analysing and every note of the models, escaped."""
        if not self.caveats:
            return "<p>No caveats: every model converged as specified and no fit was singular.</p>"
        return "".join(f"<p class='flag'>{html.escape(c)}</p>" for c in self.caveats)

    # -- tables --------------------------------------------------------------------------------

    def main_table(self) -> pd.DataFrame:
        """The primary analysis beside its sensitivity analyses (difference at week N, degrees)."""
        s = self.sensitivity.dropna(subset=["estimate"])  # the tipping point is a sentence and a chart
        return pd.DataFrame({
            "analysis": s["analysis"], "patients": s["n"].astype(int).astype(str),
            "difference (degrees)": s["estimate"].map(fixed), "95% CI": [_ci(a, b) for a, b in zip(s["ci_low"], s["ci_high"])],
            "p": s["p_value"].map(p_value)})

    def per_protocol_table(self) -> pd.DataFrame:
        """Per protocol and as treated, with group sizes and the per-protocol baseline imbalance."""
        p = self.per_protocol
        return pd.DataFrame({
            "analysis": p["analysis"], "daily / 3x/week": p["n_daily"].astype(str) + " / " + p["n_three_per_week"].astype(str),
            "difference (degrees)": p["estimate"].map(fixed), "95% CI": [_ci(a, b) for a, b in zip(p["ci_low"], p["ci_high"])],
            "p": p["p_value"].map(p_value),
            "baseline difference (degrees)": p["baseline_difference"].map(lambda x: fixed(x, missing="")),
        })

    def secondary_table(self) -> pd.DataFrame:
        s = self.secondary
        digits = [2 if "per week" in u or "proportion" in u else 1 for u in s["unit"]]
        return pd.DataFrame({
            "secondary outcome": s["outcome"], "unit": s["unit"], "patients": s["n"].astype(str),
            "difference": [fixed(e, d) for e, d in zip(s["estimate"], digits)],
            "95% CI": [_ci(a, b, d) for a, b, d in zip(s["ci_low"], s["ci_high"], digits)],
            "p": s["p_value"].map(p_value),
            "p (Holm)": ["outside the family (exploratory)" if pd.isna(h) else p_value(h) if c else f"{p_value(h)} (exploratory)"
                         for h, c in zip(s["p_holm"], s["confirmatory"])]})

    def flow_table(self) -> pd.DataFrame:
        """The CONSORT counts, one row per step, one column per arm."""
        f = self.flow.set_index("arm")
        steps = [("assigned", "assigned"), ("switched schedule", "switched"), ("switch week(s)", "switch_weeks"),
                 (f"no IR value at week {self.week}", "dropped_out"), ("their last visit window (week)", "dropout_weeks"),
                 ("no baseline visit", "no_baseline"), ("analysed: primary (all visits)", "analysed_primary"),
                 (f"analysed: complete cases at week {self.week}", "analysed_complete"),
                 ("analysed: per protocol", "analysed_per_protocol")]
        return pd.DataFrame({"step": [label for label, _ in steps],
                             **{arm: [str(f.loc[arm, column]) for _, column in steps] for arm in f.index}})

    def missing_table(self) -> pd.DataFrame:
        """Who is missing from which analysis, and why (one row per patient and analysis)."""
        return self.missing.rename(columns={"patient_id": "patient"})

    def weekly_gain_table(self) -> pd.DataFrame:
        """The weekly-gain mixed model: fixed effects, then variance components."""
        m = self.weekly_gain
        fixed_rows = m[m["effect"] == "fixed"]
        random_rows = m[m["effect"] == "random"]
        digits = [2 if "weeks" in t else 1 for t in fixed_rows["term"]]
        top = pd.DataFrame({
            "term": fixed_rows["term"], "estimate": [fixed(e, d) for e, d in zip(fixed_rows["estimate"], digits)],
            "95% CI": [_ci(a, b, d) for a, b, d in zip(fixed_rows["ci_low"], fixed_rows["ci_high"], digits)],
            "df": fixed_rows["df"].map(lambda x: fixed(x, 1)), "p": fixed_rows["p_value"].map(p_value)})
        bottom = pd.DataFrame({"term": random_rows["term"],
                               "estimate": [fixed(e, 2 if "corr" in t or "weeks" in t else 1)
                                            for t, e in zip(random_rows["term"], random_rows["estimate"])],
                               "95% CI": "", "df": "", "p": ""})
        return pd.concat([top, bottom], ignore_index=True)

    def time_shape_table(self) -> pd.DataFrame:
        t = self.time_shape
        return pd.DataFrame({
            "time shape": t["time shape"], "parameters": t["parameters"].astype(str),
            "log-likelihood (ML)": t["log-likelihood (ML)"].map(lambda x: fixed(x, 1)),
            "AIC": t["AIC"].map(lambda x: fixed(x, 1)),
            "LR vs linear": [("" if pd.isna(lr) else f"{fixed(lr, 2)} on {int(df)} df, p {p_value(p)}")
                             for lr, df, p in zip(t["LR vs linear"], t["LR df"], t["LR p"])],
            "best AIC": np.where(t["best AIC"], "yes", ""),
            "chosen (pre-specified rule)": np.where(t["chosen"], "yes", "")})

    def dose_table(self) -> pd.DataFrame:
        d = self.dose
        names = {"intercept": "intercept", "breakouts_per_week_to_week": "per breakout done per week",
                 "schedule=daily": "assigned daily (vs 3x/week)", "baseline_deg": "per degree of baseline IR"}
        return pd.DataFrame({
            "term": d["term"].map(lambda t: names.get(t, t)),
            f"IR change at week {self.week}, degrees": d["estimate"].map(lambda x: fixed(x, 2)),
            "95% CI": [_ci(a, b, 2) for a, b in zip(d["ci_low"], d["ci_high"])], "p": d["p_value"].map(p_value)})

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        """Every analysis table: file stem -> (caption, table as printed)."""
        w = self.week
        return {
            "table1-baseline": ("Baseline characteristics by assigned schedule", self.table1),
            "flow": ("Flow of patients (CONSORT 2010)", self.flow_table()),
            "primary-and-sensitivity": (f"IR at week {w}, {self.contrast}: primary analysis and sensitivity "
                                        "analyses for missing data", self.main_table()),
            "missing-by-analysis": ("Patients missing from each analysis, and why", self.missing_table()),
            "per-protocol": ("Per protocol and as treated (exploratory)", self.per_protocol_table()),
            "secondary": ("Secondary outcomes, Holm-adjusted", self.secondary_table()),
            "harms-and-adherence": ("Tolerance, harms and adherence by assigned schedule", self.harms),
            "weekly-gain-model": ("Linear mixed model of the weekly gain (exploratory)", self.weekly_gain_table()),
            "time-shape": ("Shape of the time course (exploratory)", self.time_shape_table()),
            "dose-response": ("Dose-response, adjusted for arm and baseline IR (exploratory)", self.dose_table()),
            **({"balance": ("Balance of the baseline covariates before and after overlap weighting "
                            "(standardised mean differences)", self.balance_table())}
               if self.weighting is not None else {}),
        }

    def adjusted_for(self) -> str:
        """The covariates of the confounding adjustment in words (each once)."""
        words = {"baseline_deg": "baseline IR", "age": "age", "pain": "baseline pain", "sex": "sex",
                 "involved_side": "involved side", "site": "site"}
        found = list(dict.fromkeys(words[n.split(":")[0]] for n in self.weighting["covariates"]))
        return ", ".join(found[:-1]) + " and " + found[-1] if len(found) > 1 else found[0]

    @property
    def weighting(self) -> dict | None:
        """The confounding adjustment of an observational comparison (None when allocated)."""
        return self.sensitivity.attrs.get("weighting")

    def balance_table(self) -> pd.DataFrame:
        """Covariate means by arm and standardised mean differences, before and after weighting."""
        b = self.weighting["balance"]

        def two(x):  # never "-0.00": a zero after weighting prints as zero
            return fixed(round(float(x), 2) + 0.0, 2)

        return pd.DataFrame({
            "covariate": b["covariate"].replace({"baseline_deg": "baseline IR (degrees)", "age": "age (years)",
                                                 "pain": "baseline pain (NPRS)"})
                                       .str.replace("_", " "), "daily": b["mean_daily"].map(two), "3x/week": b["mean_three"].map(two),
            "SMD before": b["smd_before"].map(two), "SMD after weighting": b["smd_after"].map(two),
            "imbalanced (|SMD| > 0.1)": b["imbalanced"].map({True: "yes", False: "no"})})

    # -- figures -------------------------------------------------------------------------------

    def forest_table(self) -> pd.DataFrame:
        """Every estimate of the difference at week N (degrees): primary, sensitivity, per protocol."""
        columns = ["label", "estimate", "ci_low", "ci_high"]
        rows = pd.concat([self.sensitivity[columns], self.per_protocol[columns]], ignore_index=True)
        return rows.dropna(subset=["estimate"]).reset_index(drop=True)

    def tipping_sentence(self) -> str:
        """The tipping point in words (:func:`hipanalytics.analysis.trial.tipping_text`), with how to read it."""
        row = self.sensitivity[self.sensitivity["label"] == "tipping point"].iloc[0]
        tips = [abs(d) for d in self.sensitivity.attrs["tipping"].values() if np.isfinite(d)]
        verdict = (f"The conclusion depends on the missing-at-random assumption: a departure smaller than the "
                   f"{MDC_DEG:g}-degree MDC changes it." if tips and min(tips) < MDC_DEG else
                   f"Only departures from missing at random larger than the {MDC_DEG:g}-degree MDC change the "
                   "conclusion.")
        of = self.sensitivity.attrs.get("tipping_of", "the MI ANCOVA")
        return (f"Tipping point (missing not at random), of {of}: {row['note']}. A shift is how much worse (negative) or "
                f"better (positive) than MAR predicts the patients without a week-{self.week} value are assumed "
                f"to be. {verdict}")

    def figures(self) -> dict[str, tuple[Any, str]]:
        """Every figure: file stem -> (Figure, alt text)."""
        from . import charts

        return {
            "consort-flow": (charts.consort_flow(self.flow), self.consort_alt()),
            "trajectories": (charts.cohort_trajectories(self.visits), self.trajectories_alt()),
            "forest": (charts.forest_plot(self.forest_table(), unit=f"degrees at week {self.week}, {self.contrast}",
                                          favours=("3x/week", "daily")),
                       self.forest_alt()),
            "dose-response": (charts.dose_response_chart(self.outcomes), self.dose_alt()),
            "time-to-first-rise": (charts.time_to_event_chart(self.first_rise), self.first_rise_alt()),
            "tipping-point": (charts.tipping_point_chart(self.sensitivity.attrs["tipping_grid"],
                                                         self.sensitivity.attrs["tipping"], week=self.week),
                              self.tipping_sentence()),
        }

    def consort_alt(self) -> str:
        return "Flow of patients: " + "; ".join(
            f"{r.arm}: {r.assigned} assigned, {r.switched} switched, {r.dropped_out} without IR at week {self.week}, "
            f"{r.analysed_primary} in the primary analysis, {r.analysed_per_protocol} per protocol"
            for r in self.flow.itertuples()) + "."

    def trajectories_alt(self) -> str:
        n = self.visits.groupby("schedule")["patient_id"].nunique()
        return ("Hip IR of the involved side over the weeks, each patient a thin line, the weekly mean with its 95% CI "
                "by schedule: " + ", ".join(f"{k} n = {v}" for k, v in n.items()) + ".")

    def forest_alt(self) -> str:
        rows = self.forest_table()
        return f"Difference in IR at week {self.week} ({self.contrast}), degrees, with 95% CIs: " + "; ".join(
            f"{r.label} {fixed(r.estimate)} ({_ci(r.ci_low, r.ci_high)})" for r in rows.itertuples()) + "."

    def dose_alt(self) -> str:
        slope = self.dose[self.dose["term"] == "breakouts_per_week_to_week"].iloc[0]
        return (f"Each patient's IR change at week {self.week} against breakout sessions done per week up to it; "
                f"adjusted for arm and baseline IR, the change differs by {fixed(slope['estimate'], 2)} degrees per "
                f"extra breakout a week (95% CI {_ci(slope['ci_low'], slope['ci_high'], 2)}).")

    def first_rise_alt(self) -> str:
        from .analysis.survival import kaplan_meier, median_time

        parts = []
        for arm, group in self.first_rise.groupby("arm"):
            median = median_time(kaplan_meier(group["days"], group["event"]))
            parts.append(f"{arm}: {int(group['event'].sum())} of {len(group)} patients had a pain rise, median "
                         + (f"{median:g} days" if np.isfinite(median) else "not reached"))
        return ("Kaplan-Meier curves of the share of patients without a pain rise of 2 or more after a breakout "
                "session, by days since time zero; " + "; ".join(parts) + ".")

    # -- export --------------------------------------------------------------------------------

    def export(self, folder: str | Path) -> list[str]:
        """Write every table as CSV and LaTeX (booktabs) and every figure as SVG and PDF into
        ``folder``; return the file names written (relative to ``folder``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for stem, (caption, table) in self.tables().items():
            table.to_csv(folder / f"{stem}.csv", index=False)
            (folder / f"{stem}.tex").write_text(latex_table(table, caption, f"tab:{stem}"), encoding="utf-8")
            written += [f"{stem}.csv", f"{stem}.tex"]
        for stem, (figure, _) in self.figures().items():
            for suffix in ("svg", "pdf"):
                figure.savefig(folder / f"{stem}.{suffix}", format=suffix, metadata=_figure_metadata(suffix))
                written.append(f"{stem}.{suffix}")
        return written


def _figure_metadata(suffix: str) -> dict:
    """No creation date or software stamp in exported figures: the same data give the same bytes."""
    return {"Date": None} if suffix == "svg" else {"CreationDate": None, "ModDate": None}


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
                  ">": r"\textgreater{}"}


def _latex_escape(value) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    r"""A booktabs LaTeX table (``\toprule``, ``\midrule``, ``\bottomrule``) with every cell escaped.

    Examples
    --------
    >>> print(latex_table(pd.DataFrame({"a_b": ["50%"], "n": [3]}), "Caption & more", "tab:x"))
    \begin{table}[ht]
    \centering
    \caption{Caption \& more}
    \label{tab:x}
    \begin{tabular}{lr}
    \toprule
    a\_b & n \\
    \midrule
    50\% & 3 \\
    \bottomrule
    \end{tabular}
    \end{table}
    <BLANKLINE>
    """
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table.columns)
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{_latex_escape(caption)}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(_latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(v) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def cohort_comparison(source, *, cohort: str | None = None, week: int = 6, threshold: float = 0.7,
                      imputations: int = 20, seed: int = 0) -> CohortComparison:
    """Compare breakout schedules across a cohort (or the patients whose ``cohort`` equals ``cohort``).

    Parameters
    ----------
    source : Store or dict of DataFrame
        The record tables (``patients``, ``programs``, ``measurements``, ``sessions``).
    week : int
        The comparison week (even: visits are 2-weekly).
    threshold : float
        Share of the assigned breakouts needed for the per-protocol analysis.
    imputations, seed
        Multiple imputation's number of imputations and seed (the same seed, the same report).

    Raises
    ------
    ReportError
        For an empty cohort, or data the primary analysis cannot use (no visits at week N).
    """
    from .analysis import cohort_visits, dose_response, mixed_model, patient_outcomes, table_one
    from .analysis import trial
    from .analysis.weighting import baseline_covariates
    from .errors import HipAnalyticsError
    from .progress import _number, _tables
    from .synthetic import is_synthetic

    t = _tables(source)
    if cohort:
        keep = set(t["patients"].loc[t["patients"]["cohort"] == cohort, "patient_id"])
        t = {k: v[v["patient_id"].isin(keep)] for k, v in t.items()}
    if t["patients"].empty:
        raise ReportError(f"empty cohort: no patients{' in cohort ' + repr(cohort) if cohort else ''}")
    if week < 2 or week % 2:
        raise ReportError(f"week {week}: the comparison week must be even (visits are every 2 weeks), e.g. 6")
    check_arms(t["patients"], t["programs"], cohort)
    outcomes = patient_outcomes(t["measurements"], t["patients"], t["programs"], t["sessions"], week=week)
    visits = cohort_visits(t["measurements"], t["patients"], t["programs"])
    with warnings.catch_warnings(record=True) as caught:  # caveats belong in the report, not on stderr
        warnings.simplefilter("always", HipAnalyticsWarning)
        try:
            table = trial.trial_patients(t["patients"], t["programs"], visits, t["sessions"], week=week,
                                         threshold=threshold)
            primary = trial.primary_analysis(
                visits, week, sites=t["patients"].set_index("patient_id")["site"] if "site" in t["patients"] else None)
            allocated = "allocation" in t["patients"] and bool(t["patients"]["allocation"].notna().all())
            covariates = None if allocated else baseline_covariates(t["patients"], t["programs"], t["sessions"])
            sensitivity = trial.sensitivity_analyses(primary, visits, table, imputations=imputations, seed=seed,
                                                     covariates=covariates)
            weekly_gain = mixed_model(visits[visits["schedule"].isin(["daily", "three-per-week"])])
            dose = dose_response(outcomes)
        except ReportError:
            raise
        except HipAnalyticsError as exc:
            raise ReportError(f"the schedule comparison cannot be made: {exc}") from None
        per_protocol = trial.per_protocol(table, sensitivity.attrs["imputed"] if allocated else None)
        time_shape = trial.time_shape_comparison(visits)
        secondary = trial.secondary_outcomes(table, visits, week, mdc=MDC_DEG, primary_p=primary.p_value,
                                             imputed=sensitivity.attrs["imputed"], time_shape=time_shape)
    caveats = [str(w.message) for w in caught if issubclass(w.category, HipAnalyticsWarning)]
    outside = sorted(set(t["patients"]["patient_id"]) - set(table.loc[table["arm"].notna(), "patient_id"]))
    if outside:
        caveats.append(f"{len(outside)} patient{'s' if len(outside) != 1 else ''} not eligible (no program of either "
                       f"schedule), in no analysis and not in Table 1: {', '.join(outside)}")
    caveats += [f"primary analysis: {n}" for n in primary.notes]
    weighted = sensitivity.attrs["weighting"]
    if sensitivity.attrs["weighting_error"]:
        caveats.append(f"confounding adjustment not made: {sensitivity.attrs['weighting_error']}")
    if weighted is not None:
        caveats += [f"confounding adjustment: {n}" for n in weighted["positivity"]["warnings"]]
        caveats += [f"confounding adjustment: {c} still differs between the arms after weighting (|SMD| > 0.1)"
                    for c in weighted["balance"].loc[weighted["balance"]["imbalanced"], "covariate"]]
    caveats += [f"weekly-gain model: {n}" for n in weekly_gain["note"].iloc[:1] if n]
    missing = trial.missing_by_analysis(table, primary, week)
    result = CohortComparison(
        allocated=allocated,
        week=week, threshold=threshold, patients=table, outcomes=outcomes, visits=visits, primary=primary,
        sensitivity=sensitivity, per_protocol=per_protocol, secondary=secondary,
        flow=trial.consort_flow(table, primary), missing=missing,
        harms=trial.harms_by_arm(table, t["sessions"], t["programs"]), weekly_gain=weekly_gain,
        first_rise=trial.time_to_first_rise(table, t["sessions"], t["programs"]),
        time_shape=time_shape, dose=dose, table1=table_one(t["patients"], outcomes, t["programs"]),
        caveats=list(dict.fromkeys(caveats)))
    gain = weekly_gain[weekly_gain["term"] == "weeks x schedule=daily"].iloc[0]
    result.key_figures = {
        "n_patients": int(len(t["patients"])), "week": week, "threshold": threshold, "contrast": result.contrast,
        "n_per_arm": {k: int(v) for k, v in table["arm"].value_counts().items()},
        "primary": {"method": f"cLDA (MMRM, {trial.covariance_words(primary.covariance)} covariance)",
                    "estimate_deg": _number(primary.estimate), "ci": [_number(primary.ci_low), _number(primary.ci_high)],
                    "p": _number(primary.p_value), "df": _number(primary.df), "n": primary.n_patients},
        "sensitivity": {r.analysis: {"estimate_deg": _number(r.estimate), "ci": [_number(r.ci_low), _number(r.ci_high)],
                                     "n": int(r.n)} for r in sensitivity.itertuples()},
        "per_protocol_n": {"daily": int(per_protocol.iloc[0]["n_daily"]),
                           "three-per-week": int(per_protocol.iloc[0]["n_three_per_week"])},
        "missing_at_week": int(table["week_deg"].isna().sum()),
        "tipping_point_deg": {arm: _number(d) for arm, d in sensitivity.attrs["tipping"].items()},
        "weekly_gain_difference_deg_per_week": _number(gain["estimate"]),
        "weekly_gain_random_effects": gain["random_effects"],
        "secondary_p_holm": {r.outcome: _number(r.p_holm) for r in secondary.itertuples()},
        "caveats": result.caveats, "hipanalytics_version": __version__, "software": result.software,
        "synthetic_data": is_synthetic(t["patients"]["patient_id"]),
    }
    return result


MIN_PER_ARM = 3
"""Patients each schedule needs before :func:`cohort_comparison` compares them: with fewer, an arm
has no spread to speak of and the mixed models and the dose-response cannot be estimated."""


def check_arms(patients: pd.DataFrame, programs: pd.DataFrame, cohort: str | None = None) -> None:
    """Refuse, naming what the cohort holds, when a schedule has fewer than :data:`MIN_PER_ARM`
    assigned patients (a cohort of one schedule only is the usual case). Cheap: the report checks
    it before starting a kernel.

    Raises
    ------
    ReportError
    """
    from .analysis.cohort import assigned_schedule
    from .analysis.trial import REFERENCE, TREATED

    if cohort:
        patients = patients[patients["cohort"] == cohort]
    counts = assigned_schedule(patients, programs).value_counts()
    held = {arm: int(counts.get(arm, 0)) for arm in (TREATED, REFERENCE)}
    if min(held.values()) >= MIN_PER_ARM:
        return
    where = f"cohort {cohort!r}" if cohort else "the store"
    other = sorted(set(counts.index) - set(held))
    extra = f" (and {', '.join(f'{int(counts[a])} on {a}' for a in other)}, not compared)" if other else ""
    raise ReportError(f"the schedule comparison needs at least {MIN_PER_ARM} patients assigned to each schedule; "
                      f"{where} has " + " and ".join(f"{n} on {arm}" for arm, n in held.items()) + extra +
                      " (assigned: the patient's allocation when given, else the first program's): "
                      "choose a cohort with both schedules (--cohort) or add patients")


def power_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`hipanalytics.analysis.power.simulate_power` output in words, for print."""
    return pd.DataFrame({
        "patients per arm": table["per_arm"].astype(str), "simulated trials": table["trials"].astype(str),
        "power (simulation)": table["power"].map(lambda x: fixed(100 * x, 0, missing="") + "%"),
        "95% CI": [_ci(100 * a, 100 * b, 0) + "%" for a, b in zip(table["ci_low"], table["ci_high"])],
        "power (closed form, no drop-out)": table["closed_form"].map(
            lambda x: "" if pd.isna(x) else fixed(100 * x, 0) + "%"),
        "mean estimate (degrees)": table["mean_estimate"].map(fixed),
        "CI coverage": table["coverage"].map(lambda x: fixed(100 * x, 0, missing="") + "%"),
        "failed fits (counted as not significant)": table["failed"].astype(str),
        "covariance used (trials)": table["covariance_used"]})


def power_files(table: pd.DataFrame, folder: str | Path) -> list[str]:
    """Write the power table (CSV, LaTeX) and the power curve (SVG, PDF) into ``folder``."""
    from . import charts

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "power.csv", index=False)
    scenario = table.attrs.get("scenario", {})
    caption = "Power of the primary analysis by simulation" + (
        f" (effect {scenario['effect']:g} degrees at week {scenario['week']}, drop-out {100 * scenario['dropout']:.0f}%"
        f"{', ' + scenario.get('mechanism', 'MCAR') if scenario['dropout'] else ''})"
        if scenario else "")
    (folder / "power.tex").write_text(latex_table(power_table(table), caption, "tab:power"), encoding="utf-8")
    figure = charts.power_curve(table)
    written = ["power.csv", "power.tex"]
    for suffix in ("svg", "pdf"):
        figure.savefig(folder / f"power-curve.{suffix}", format=suffix, metadata=_figure_metadata(suffix))
        written.append(f"power-curve.{suffix}")
    return written
