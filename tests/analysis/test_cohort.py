"""Cohort statistics: the mixed model against lme4's published dietox fit, group statistics by hand
and against R's wilcox.test, Table 1, and recovery of the synthetic clinic's truth. (The mixed
models are cross-checked against R on generated cohorts in test_mixed.py.)"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hipanalytics.analysis.cohort import (
    ConvergenceWarning,
    SmallCohortWarning,
    cohort_visits,
    compare_groups,
    dose_response,
    mixed_model,
    patient_outcomes,
    table_one,
)
from hipanalytics.errors import HipAnalyticsError
from hipanalytics.synthetic import generate_clinic

DIETOX = Path(__file__).resolve().parents[1] / "data" / "reference" / "dietox.csv"


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


def dietox_model(**kwargs) -> pd.DataFrame:
    data = pd.read_csv(DIETOX, index_col=0)
    table = mixed_model(data, outcome="Weight", time="Time", subject="Pig", group=None, side=None, **kwargs)
    return table


def test_mixed_model_matches_lme4_on_dietox_to_three_significant_figures():
    # R: lmer(Weight ~ Time + (1 + Time | Pig), data = dietox)  (REML), as recorded by statsmodels' tests
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        table = dietox_model()
    fixed = table[table["effect"] == "fixed"].set_index("term")
    assert table["random_effects"].iloc[0] == "intercept + slope" and table["converged"].all()
    assert not table["singular"].any() and table["note"].iloc[0] == ""
    assert [sig3(v) for v in fixed["estimate"]] == [sig3(15.738650), sig3(6.939014)]
    assert [sig3(v) for v in fixed["std_error"]] == [sig3(0.5501253), sig3(0.0798254)]
    assert table["n_subjects"].iloc[0] == 72 and table["n_obs"].iloc[0] == 861
    random = table[table["effect"] == "random"].set_index("term")["estimate"]
    assert list(random.index) == ["sd((Intercept) | patient)", "sd(Time | patient)",
                                  "corr((Intercept), Time | patient)", "sd(residual)"]


def test_mixed_model_fits_a_random_intercept_on_request():
    intercept_only = dietox_model(random_slope=False)
    assert intercept_only["random_effects"].iloc[0] == "intercept"
    # R: lmer(Weight ~ Time + (1 | Pig)): 15.723523, 6.942505
    fixed = intercept_only[intercept_only["effect"] == "fixed"]
    assert [sig3(v) for v in fixed["estimate"]] == [sig3(15.723523), sig3(6.942505)]


def test_a_random_slope_fit_that_fails_falls_back_with_a_warning(monkeypatch):
    from hipanalytics.analysis import mixed

    real = mixed.fit_lmm

    def slope_model_fails(data, **kwargs):
        if data.Z.shape[2] > 1:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(data, **kwargs)

    monkeypatch.setattr(mixed, "fit_lmm", slope_model_fails)
    with pytest.warns(ConvergenceWarning, match="fitted a random intercept only"):
        table = dietox_model()
    assert table["random_effects"].iloc[0] == "intercept"
    assert "could not be fitted (Singular matrix)" in table["note"].iloc[0]
    assert "too narrow" in table["note"].iloc[0]
    fixed = table[table["effect"] == "fixed"]
    assert [sig3(v) for v in fixed["estimate"]] == [sig3(15.723523), sig3(6.942505)]


def test_data_without_repeated_visits_is_refused_clearly():
    once = pd.read_csv(DIETOX, index_col=0).groupby("Pig").head(1)
    with pytest.raises(HipAnalyticsError, match="needs several visits for most patients"):
        mixed_model(once, outcome="Weight", time="Time", subject="Pig", group=None, side=None)


def test_group_statistics_match_the_hand_computation():
    outcomes = pd.DataFrame({"schedule": ["daily"] * 4 + ["three-per-week"] * 4,
                             "change_deg": [8.0, 10.0, 12.0, 10.0, 6.0, 7.0, 8.0, 7.0]})
    t = compare_groups(outcomes, "change_deg").set_index("statistic")
    welch = t.loc["mean difference (Welch)"]
    assert welch["estimate"] == 3.0 and (welch["n_1"], welch["n_2"]) == (4, 4)
    # Welch: var 8/3 and 2/3 -> se = sqrt((8/3 + 2/3)/4) = sqrt(5/6); df = (5/6)^2 / ((2/3)^2/3 + (1/6)^2/3)
    se = np.sqrt(5 / 6)
    df = (5 / 6) ** 2 / ((2 / 3) ** 2 / 3 + (1 / 6) ** 2 / 3)
    half = stats.t.ppf(0.975, df) * se
    assert welch["ci_low"] == pytest.approx(3 - half) and welch["ci_high"] == pytest.approx(3 + half)
    # Hedges g: pooled SD sqrt((8 + 2)/6), d = 3 / pooled, J = 1 - 3/(4*8 - 9)
    g = (1 - 3 / 23) * 3 / np.sqrt(10 / 6)
    assert t.loc["Hedges g", "estimate"] == pytest.approx(g)
    mw = t.loc["Mann-Whitney U"]
    assert mw["estimate"] == 3.0
    # tied values: normal approximation with tie and continuity corrections, the CI by inverting it.
    # R 4.2: wilcox.test(c(8,10,12,10), c(6,7,8,7), conf.int = TRUE): p 0.03960870, CI 8.5895e-05 to
    # 5.999914 (R's uniroot stops at tol 1e-4; the roots are 0 and 6)
    assert mw["p_value"] == pytest.approx(0.03960870464, rel=1e-8)
    assert (mw["ci_low"], mw["ci_high"]) == (pytest.approx(0, abs=1e-4), pytest.approx(6, abs=1e-4))
    assert "normal approximation, corrected for ties" in mw["note"]


def test_hodges_lehmann_ci_is_exact_without_ties_and_agrees_with_the_exact_p():
    # 9 vs 7 without ties: exact Mann-Whitney p 0.042; the normal-approximation CI of the old code,
    # (-0.1, 7.2), touched 0 while p < 0.05. R 4.2: wilcox.test(a, b, conf.int = TRUE, exact = TRUE):
    # p 0.04178321678, CI 0.2 to 7.2
    a = [4.0, 2.9, 2.4, 0.5, 3.2, 4.6, 1.9, 1.1, 7.9]
    b = [-4.4, 4.1, 0.7, -3.2, -1.2, -3.7, 2.7]
    outcomes = pd.DataFrame({"schedule": ["daily"] * 9 + ["three-per-week"] * 7, "change_deg": a + b})
    mw = compare_groups(outcomes, "change_deg").set_index("statistic").loc["Mann-Whitney U"]
    assert mw["p_value"] == pytest.approx(0.04178321678, rel=1e-9)
    assert (mw["ci_low"], mw["ci_high"]) == (pytest.approx(0.2), pytest.approx(7.2))
    assert mw["estimate"] == pytest.approx(np.median(np.subtract.outer(a, b)))
    assert mw["note"].endswith("exact")


def test_small_groups_warn_and_give_nan_with_a_reason():
    outcomes = pd.DataFrame({"schedule": ["daily", "daily", "three-per-week", "three-per-week", "three-per-week"],
                             "change_deg": [8.0, 9.0, 6.0, 7.0, 8.0]})
    with pytest.warns(SmallCohortWarning, match="too few patients"):
        t = compare_groups(outcomes, "change_deg")
    assert t["estimate"].isna().all() and t["note"].str.contains("n = 2 and 3").all()


def test_one_schedule_only_is_a_clear_error():
    with pytest.raises(HipAnalyticsError, match="comparing needs two groups in 'schedule'; found daily"):
        compare_groups(pd.DataFrame({"schedule": ["daily"] * 5, "change_deg": range(5)}), "change_deg")


def test_identical_values_are_explained_not_crashed():
    outcomes = pd.DataFrame({"schedule": ["daily"] * 3 + ["three-per-week"] * 3, "change_deg": [5.0] * 6})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on zero variance
        t = compare_groups(outcomes, "change_deg").set_index("statistic")
    assert t.loc["mean difference (Welch)", "estimate"] == 0
    assert "no spread" in t.loc["Hedges g", "note"]


@pytest.fixture(scope="module")
def clinic():
    return generate_clinic(400, seed=11)


@pytest.fixture(scope="module")
def outcomes(clinic):
    return patient_outcomes(clinic["measurements"], clinic["patients"], clinic["programs"], clinic["sessions"], week=6)


def test_analysis_recovers_the_true_schedule_difference_and_gains(clinic, outcomes):
    truth = clinic["truth"]
    true_change = truth["true_gain"] * (1 - np.exp(-6 / truth["tau_weeks"]))
    by_arm = true_change.groupby(truth["assigned_schedule"]).mean()
    itt = compare_groups(outcomes, "change_deg").set_index("statistic").loc["mean difference (Welch)"]
    assert itt["ci_low"] <= by_arm["daily"] - by_arm["three-per-week"] <= itt["ci_high"]
    for arm in ("daily", "three-per-week"):
        observed = outcomes.loc[outcomes["schedule"] == arm, "change_deg"].dropna()
        half = stats.t.ppf(0.975, len(observed) - 1) * observed.std(ddof=1) / np.sqrt(len(observed))
        assert abs(observed.mean() - by_arm[arm]) <= half
    big = generate_clinic(2000, seed=3)  # the dose effect within arms is small: 400 patients cannot show it
    done = patient_outcomes(big["measurements"], big["patients"], big["programs"], big["sessions"], week=6)
    dose = dose_response(done).set_index("term").loc["breakouts_per_week_to_week"]
    assert dose["ci_low"] > 0  # more breakouts, bigger gains, as generated


def test_mixed_model_on_the_cohort_shows_the_schedule_by_time_interaction(clinic):
    visits = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
    table = mixed_model(visits).set_index("term")
    interaction = table.loc["weeks x schedule=daily"]  # daily breakouts: more sessions, faster gains, as generated
    assert interaction["ci_low"] > 0 and table["converged"].all()
    assert interaction["df"] < visits["patient_id"].nunique()  # between-patient df, not the number of visits


def test_table_one_gives_age_at_the_program_start(clinic, outcomes):
    t1 = table_one(clinic["patients"], outcomes, clinic["programs"])
    assert t1.iloc[0][["daily", "three-per-week", "Overall"]].tolist() == ["200", "200", "400"]
    assert set(t1["variable"]) >= {"age at program start, years, mean (SD)", "baseline IR, degrees, mean (SD)",
                                   "sex, n (%)"}
    start = pd.to_datetime(clinic["programs"].groupby("patient_id")["start_date"].min()).dt.year
    age = start.reindex(clinic["patients"]["patient_id"]).to_numpy() - clinic["patients"]["birth_year"].to_numpy()
    row = t1.set_index("variable").loc["age at program start, years, mean (SD)"]
    assert row["Overall"] == f"{age.mean():.1f} ({age.std(ddof=1):.1f})"
    assert age.min() >= 20 and age.max() <= 70  # the generator's ages at enrolment, whatever today's date


def test_table_one_leaves_out_patients_who_are_not_eligible(clinic, outcomes):
    extra = pd.DataFrame({"patient_id": ["NOPROG"], "birth_year": [1980], "sex": ["female"], "involved_side": ["left"]})
    patients = pd.concat([clinic["patients"], extra], ignore_index=True)
    out = patient_outcomes(clinic["measurements"], patients, clinic["programs"], clinic["sessions"], week=6)
    t1 = table_one(patients, out, clinic["programs"])
    assert t1.iloc[0][["daily", "three-per-week", "Overall"]].tolist() == ["200", "200", "400"]  # not 401


def test_a_patient_with_no_program_or_no_visits_gets_nan_with_a_reason(clinic):
    patients = pd.concat([clinic["patients"].head(3),
                          pd.DataFrame({"patient_id": ["NEW"], "birth_year": [1980], "involved_side": ["left"]})])
    out = patient_outcomes(clinic["measurements"], patients, clinic["programs"], clinic["sessions"]).set_index("patient_id")
    assert pd.isna(out.loc["NEW", "change_deg"]) and pd.isna(out.loc["NEW", "adherence"])
    assert out.loc["NEW", "note"] == ("no baseline on the primary method (a visit 14 days before to 3 days after the "
                                      "allocation date, else the program's start)")


def test_inputs_are_not_modified(clinic):
    frames = {k: clinic[k].copy() for k in ("measurements", "patients", "programs", "sessions")}
    out = patient_outcomes(clinic["measurements"], clinic["patients"], clinic["programs"], clinic["sessions"])
    before = out.copy()
    compare_groups(out, "change_deg")
    dose_response(out)
    table_one(clinic["patients"], out, clinic["programs"])
    v = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
    v_before = v.copy()
    mixed_model(v.head(400))
    pd.testing.assert_frame_equal(v, v_before)
    for k, frame in frames.items():
        pd.testing.assert_frame_equal(clinic[k], frame)
    pd.testing.assert_frame_equal(out, before)


def test_the_allocation_not_the_cohort_is_the_arm_and_the_allocation_date_is_time_zero():
    m = pd.DataFrame({"patient_id": "P1", "side": "left", "joint": "hip", "motion": "internal_rotation",
                      "position": "seated_90", "mode": "active", "instrument": "inclinometer", "trial": 1,
                      "measured_on": ["2025-12-22", "2026-01-01", "2026-01-15"], "degrees": [18.0, 20.0, 24.0]})
    g = pd.DataFrame({"patient_id": ["P1"], "schedule": ["daily"], "start_date": ["2026-01-08"]})
    p = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["left"], "cohort": ["daily"],
                      "allocation": ["three-per-week"], "allocated_on": [pd.Timestamp("2025-12-31")]})
    v = cohort_visits(m, p, g)
    assert v[["day", "baseline", "schedule"]].values.tolist() == [[1, True, "three-per-week"],
                                                                  [15, False, "three-per-week"]]
    # without the allocation date, time zero is the program start; without the allocation, the
    # program's schedule is the arm, whatever the cohort label says
    v = cohort_visits(m, p.drop(columns=["allocation", "allocated_on"]).assign(cohort="three-per-week"), g)
    assert v[["day", "baseline", "schedule"]].values.tolist() == [[-7, True, "daily"], [7, False, "daily"]]


def test_dose_covers_time_zero_to_week_n_and_is_missing_not_zero_after_a_drop_out(clinic, outcomes):
    out = outcomes.set_index("patient_id")
    gone = out.index[out["change_deg"].isna()]
    assert len(gone) and out.loc[gone, "breakouts_per_week_to_week"].isna().all()  # not "no dose"
    followed = out.index[out["change_deg"].notna()][0]
    zero = pd.Timestamp(clinic["programs"].loc[clinic["programs"]["patient_id"] == followed, "start_date"].min())
    s = clinic["sessions"]
    s = s[(s["patient_id"] == followed) & (s["session"] == "breakouts") & s["completion"].isin(["full", "partial"])]
    days = (pd.to_datetime(s["performed_on"]) - zero).dt.days
    assert out.loc[followed, "breakouts_per_week_to_week"] == pytest.approx(days.between(0, 41).sum() / 6)
    terms = dose_response(outcomes)["term"].tolist()
    assert "followup_weeks" not in terms and "baseline_deg" in terms  # follow-up length is a collider
