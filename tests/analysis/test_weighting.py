"""Propensity-score overlap weighting against R (glm, lm with weights and sandwich's HC0), its
exact-balance property, and on a confounded clinic: the weighted estimate recovers the truth where
the unadjusted one is biased."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from hipanalytics.analysis import trial, weighting
from hipanalytics.analysis.cohort import cohort_visits
from hipanalytics.errors import HipAnalyticsError
from hipanalytics.synthetic import Assumptions, generate_clinic

from ..system import rscript


def confounded(n: int = 300, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 71, n).astype(float)
    site = rng.choice(["north", "south"], n)
    baseline = rng.normal(22, 6, n)
    daily = (rng.random(n) < 1 / (1 + np.exp(-(-0.4 - 0.08 * (age - 45) + 1.0 * (site == "north"))))).astype(float)
    week = baseline + 7 + 3 * daily - 0.15 * (age - 45) + 1.5 * (site == "north") + rng.normal(0, 4, n)
    return pd.DataFrame({"daily": daily, "week_deg": week, "baseline_deg": baseline, "age": age, "site": site})


def test_propensity_weights_and_robust_variance_match_r(tmp_path):
    executable = rscript(("sandwich",))
    d = confounded()
    d.to_csv(tmp_path / "d.csv", index=False)
    X, names = weighting.covariate_matrix(d, ["baseline_deg", "age", "site"])
    assert names == ["baseline_deg", "age", "site: south"]
    ps = weighting.propensity_scores(X, d["daily"].to_numpy())
    w = weighting.overlap_weights(ps, d["daily"].to_numpy())
    estimate, variance = weighting.weighted_ancova(d["week_deg"].to_numpy(), d["daily"].to_numpy(), X, w)
    script = (f"library(sandwich); d <- read.csv('{tmp_path / 'd.csv'}'); "
              "e <- fitted(glm(daily ~ baseline_deg + age + site, binomial, data = d)); "
              "d$w <- ifelse(d$daily == 1, 1 - e, e); "
              "f <- lm(week_deg ~ daily + baseline_deg + age + site, data = d, weights = w); "
              "sd1 <- sqrt((var(d$age[d$daily == 1]) + var(d$age[d$daily == 0])) / 2); "
              "smd <- (mean(d$age[d$daily == 1]) - mean(d$age[d$daily == 0])) / sd1; "
              "cat(sprintf('%.12g', c(coef(f)[['daily']], vcovHC(f, type = 'HC0')['daily', 'daily'], smd, e)), sep = '\\n')")
    out = np.array(subprocess.run([executable, "-e", script], capture_output=True, text=True, check=True).stdout.split(),
                   dtype=float)
    assert estimate == pytest.approx(out[0], rel=1e-8) and variance == pytest.approx(out[1], rel=1e-6)
    balance = weighting.balance_table(X, names, d["daily"].to_numpy(), w).set_index("covariate")
    assert balance.loc["age", "smd_before"] == pytest.approx(out[2], rel=1e-8)
    np.testing.assert_allclose(ps, out[3:], rtol=1e-6)
    # overlap weights balance every covariate of the logistic model exactly (Li et al. 2018)
    assert np.abs(balance["smd_after"]).max() < 1e-8 and not balance["imbalanced"].any()


def test_stabilised_weights_and_doubly_robust_estimate_match_r(tmp_path):
    executable = rscript(("sandwich",))
    d = confounded(seed=8)
    d.to_csv(tmp_path / "d.csv", index=False)
    X, _ = weighting.covariate_matrix(d, ["baseline_deg", "age", "site"])
    y, daily = d["week_deg"].to_numpy(), d["daily"].to_numpy()
    ps = weighting.propensity_scores(X, daily)
    stabilised = weighting.weighted_ancova(y, daily, X, weighting.stabilised_weights(ps, daily))
    dr = weighting.aipw(y, daily, X, ps)
    script = (f"library(sandwich); d <- read.csv('{tmp_path / 'd.csv'}'); "
              "e <- fitted(glm(daily ~ baseline_deg + age + site, binomial, data = d)); p <- mean(d$daily); "
              "d$sw <- ifelse(d$daily == 1, p / e, (1 - p) / (1 - e)); "
              "f <- lm(week_deg ~ daily + baseline_deg + age + site, data = d, weights = sw); "
              "m1 <- predict(lm(week_deg ~ baseline_deg + age + site, data = d[d$daily == 1, ]), d); "
              "m0 <- predict(lm(week_deg ~ baseline_deg + age + site, data = d[d$daily == 0, ]), d); "
              "psi <- m1 - m0 + d$daily * (d$week_deg - m1) / e - (1 - d$daily) * (d$week_deg - m0) / (1 - e); "
              "cat(sprintf('%.12g', c(coef(f)[['daily']], vcovHC(f, type = 'HC0')['daily', 'daily'], "
              "mean(psi), var(psi) / nrow(d))), sep = '\\n')")
    out = np.array(subprocess.run([executable, "-e", script], capture_output=True, text=True, check=True).stdout.split(),
                   dtype=float)
    assert stabilised[0] == pytest.approx(out[0], rel=1e-8) and stabilised[1] == pytest.approx(out[1], rel=1e-6)
    assert dr[0] == pytest.approx(out[2], rel=1e-8) and dr[1] == pytest.approx(out[3], rel=1e-6)


def test_doubly_robust_when_only_one_model_is_right():
    """AIPW stays unbiased when the outcome model is wrong (the propensity model right) and when the
    propensity model is wrong (the outcome model right); the estimate moves when both are wrong."""
    rng = np.random.default_rng(5)
    n = 20000
    x = rng.normal(0, 1, n)
    daily = (rng.random(n) < 1 / (1 + np.exp(-1.2 * x))).astype(float)
    y = 2.0 * daily + 3.0 * x + 1.5 * np.exp(x) + rng.normal(0, 1, n)  # truth: 2.0
    right = np.column_stack([x, np.exp(x)])
    e_right = weighting.propensity_scores(x[:, None], daily)
    e_wrong = np.full(n, daily.mean())
    for est, var in (weighting.aipw(y, daily, x[:, None], e_right),  # outcome model wrong
                     weighting.aipw(y, daily, right, e_wrong)):  # propensity model wrong
        assert abs(est - 2.0) < 2.5 * np.sqrt(var)
    est, var = weighting.aipw(y, daily, x[:, None], e_wrong)  # both wrong: biased
    assert abs(est - 2.0) > 3 * np.sqrt(var)


def test_missing_numeric_covariate_gets_a_missing_indicator():
    f = pd.DataFrame({"pain": [2.0, np.nan, 4.0, np.nan], "age": [30, 40, 50, 60]})
    X, names = weighting.covariate_matrix(f, ["age", "pain"])
    assert names == ["age", "pain", "pain: not recorded"]
    assert X[:, 1].tolist() == [2.0, 3.0, 4.0, 3.0] and X[:, 2].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert weighting.covariate_matrix(f.assign(pain=np.nan), ["age", "pain"])[1] == ["age"]


def test_effective_sample_size_positivity_and_separation():
    daily = np.array([1, 1, 1, 0, 0, 0])
    ps = np.array([0.95, 0.6, 0.5, 0.5, 0.4, 0.05])
    w = weighting.overlap_weights(ps, daily)
    ess = weighting.effective_sample_size(w, daily)
    assert ess["daily"] == pytest.approx((0.05 + 0.4 + 0.5) ** 2 / (0.05 ** 2 + 0.4 ** 2 + 0.5 ** 2))
    found = weighting.positivity(ps, daily)
    assert found["outside_common_support"] == 4 and found["share_outside_0.1_0.9"] == pytest.approx(2 / 6)
    assert len(found["warnings"]) == 2
    with pytest.raises(HipAnalyticsError, match="separate the schedules completely"):
        weighting.propensity_scores(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([0.0, 0.0, 1.0, 1.0]))


def test_weighting_removes_confounding_by_indication_that_biases_the_unadjusted_comparison():
    # older patients, the south site and patients who arrive in more pain get 3x/week more often, and gain less
    a = Assumptions(gain_model="arm", arm_effect=3.0, allocation="by indication", indication_intercept=-0.4,
                    indication_age=-0.08, indication_site=1.0, indication_pain=-0.5, age_gain=-0.15, site_gain=1.5,
                    pain_gain=-0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = generate_clinic(1500, seed=3, assumptions=a)
        visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
        table = trial.trial_patients(c["patients"], c["programs"], visits, c["sessions"], week=6, threshold=0.7)
        imputed = trial.impute_windows(visits, table, 6, imputations=5, seed=1)
    truth = a.true_effect(6)
    unadjusted = imputed.ancova()
    covariates = weighting.baseline_covariates(c["patients"], c["programs"], c["sessions"])
    arm = table.set_index("patient_id")["arm"].reindex(covariates.index)
    assert covariates["pain"][arm == "three-per-week"].mean() - covariates["pain"][arm == "daily"].mean() > 0.3
    adjusted = trial.weighted_analysis(imputed, covariates)
    assert unadjusted["estimate"] - truth > 1.0 and not unadjusted["ci_low"] < truth < unadjusted["ci_high"]
    for method in adjusted["methods"].values():
        assert abs(method["estimate"] - truth) < 0.6 and method["ci_low"] < truth < method["ci_high"]
    assert set(adjusted["covariates"]) >= {"baseline_deg", "age", "pain", "site: south"}
    # the overlap analysis shifted, as the tipping point uses it: unshifted it is the estimate; a shift of the
    # daily arm's imputed values moves it by the shift times the overlap weight of those values
    assert adjusted["overlap"](0.0, 0.0)["estimate"] == pytest.approx(adjusted["estimate"])
    lower = adjusted["overlap"](-5.0, 0.0)["estimate"]
    assert adjusted["estimate"] - 5.0 < lower < adjusted["estimate"]
    assert adjusted["balance"]["smd_after"].abs().max() < 1e-6 < adjusted["balance"]["smd_before"].abs().max()


def test_a_level_held_by_one_arm_only_is_left_out_and_said():
    daily = np.array([1.0] * 6 + [0.0] * 6)
    X = np.column_stack([np.arange(12.0) % 5, [1, 1, 0, 0, 0, 0] + [0] * 6, [0, 1] * 6])
    names = ["age", "site: east", "sex: male"]
    assert weighting.one_arm_levels(X, names, daily) == [1]  # only daily patients at the east site
