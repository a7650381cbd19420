"""Cohort comparison: the mixed model against R, group statistics by hand, and recovery of the
synthetic clinic's truth."""

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
    itt_and_per_protocol,
    mixed_model,
    patient_outcomes,
    table_one,
)
from hipanalytics.errors import HipAnalyticsError
from hipanalytics.synthetic import generate_clinic

DIETOX = Path(__file__).resolve().parents[1] / "data" / "reference" / "dietox.csv"


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


def test_mixed_model_matches_lme4_on_dietox_to_three_significant_figures():
    # R: lmer(Weight ~ Time + (1 + Time | Pig), data = dietox)  (REML), as recorded by statsmodels' tests
    data = pd.read_csv(DIETOX, index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        table = mixed_model(data, outcome="Weight", time="Time", subject="Pig", group=None).set_index("term")
    assert table["random_effects"].iloc[0] == "intercept + slope" and table["converged"].all()
    assert [sig3(v) for v in table["estimate"]] == [sig3(15.738650), sig3(6.939014)]
    assert [sig3(v) for v in table["std_error"]] == [sig3(0.5501253), sig3(0.0798254)]
    assert table["n_subjects"].iloc[0] == 72 and table["n_obs"].iloc[0] == 861


def test_mixed_model_falls_back_to_a_random_intercept_with_a_warning():
    data = pd.read_csv(DIETOX, index_col=0)
    intercept_only = mixed_model(data, outcome="Weight", time="Time", subject="Pig", group=None, random_slope=False)
    assert intercept_only["random_effects"].iloc[0] == "intercept"
    # R: lmer(Weight ~ Time + (1 | Pig)): 15.723523, 6.942505
    assert [sig3(v) for v in intercept_only["estimate"]] == [sig3(15.723523), sig3(6.942505)]


def test_a_random_slope_fit_that_fails_falls_back_with_a_warning(monkeypatch):
    import statsmodels.formula.api as smf

    data = pd.read_csv(DIETOX, index_col=0)
    real = smf.mixedlm

    def slope_model_fails(formula, data, groups, re_formula):
        model = real(formula, data, groups=groups, re_formula=re_formula)
        if re_formula != "1":
            def failing_fit(*args, **kwargs):
                raise np.linalg.LinAlgError("Singular matrix")
            model.fit = failing_fit
        return model

    monkeypatch.setattr(smf, "mixedlm", slope_model_fails)
    with pytest.warns(ConvergenceWarning, match="could not be fitted .Singular matrix.; fitted a random intercept only"):
        table = mixed_model(data, outcome="Weight", time="Time", subject="Pig", group=None)
    assert table["random_effects"].iloc[0] == "intercept"
    assert [sig3(v) for v in table["estimate"]] == [sig3(15.723523), sig3(6.942505)]


def test_data_without_repeated_visits_is_refused_clearly():
    once = pd.read_csv(DIETOX, index_col=0).groupby("Pig").head(1)
    with pytest.warns(ConvergenceWarning):
        with pytest.raises(HipAnalyticsError, match="needs several visits for most patients"):
            mixed_model(once, outcome="Weight", time="Time", subject="Pig", group=None)


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
    # k = floor(16/2 - 1.96 * sqrt(16 * 9 / 12)) = floor(1.21) = 1: the CI spans the smallest and
    # largest of the 16 pairwise differences
    differences = sorted(x - y for x in (8, 10, 12, 10) for y in (6, 7, 8, 7))
    assert (mw["ci_low"], mw["ci_high"]) == (differences[0], differences[-1])


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
    dose = dose_response(outcomes).set_index("term").loc["breakouts_per_week_done"]
    assert dose["ci_low"] > 0  # more breakouts, faster gains, as generated


def test_mixed_model_on_the_cohort_shows_the_schedule_by_time_interaction(clinic):
    visits = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
    table = mixed_model(visits).set_index("term")
    interaction = table.loc["weeks x schedule=three-per-week"]
    assert interaction["ci_high"] < 0 and table["converged"].all()


def test_itt_and_per_protocol_and_table_one(clinic, outcomes):
    both = itt_and_per_protocol(outcomes, threshold=0.7)
    assert list(both["analysis"].unique()) == ["intention-to-treat", "per-protocol (breakout_adherence >= 0.7)"]
    itt_n = both.iloc[0][["n_1", "n_2"]].sum()
    pp_n = both.iloc[3][["n_1", "n_2"]].sum()
    assert pp_n < itt_n
    t1 = table_one(clinic["patients"], outcomes, as_of_year=2026)
    assert t1.iloc[0][["daily", "three-per-week", "Overall"]].tolist() == ["200", "200", "400"]
    assert set(t1["variable"]) >= {"age, years, mean (SD)", "baseline IR, degrees, mean (SD)", "sex, n (%)"}


def test_a_patient_with_no_program_or_no_visits_gets_nan_with_a_reason(clinic):
    patients = pd.concat([clinic["patients"].head(3),
                          pd.DataFrame({"patient_id": ["NEW"], "birth_year": [1980], "involved_side": ["left"]})])
    out = patient_outcomes(clinic["measurements"], patients, clinic["programs"], clinic["sessions"]).set_index("patient_id")
    assert pd.isna(out.loc["NEW", "change_deg"]) and pd.isna(out.loc["NEW", "adherence"])
    assert out.loc["NEW", "note"] == "no baseline on the primary method"


def test_inputs_are_not_modified(clinic):
    frames = {k: clinic[k].copy() for k in ("measurements", "patients", "programs", "sessions")}
    out = patient_outcomes(clinic["measurements"], clinic["patients"], clinic["programs"], clinic["sessions"])
    before = out.copy()
    compare_groups(out, "change_deg")
    itt_and_per_protocol(out)
    dose_response(out)
    table_one(clinic["patients"], out, as_of_year=2026)
    v = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
    v_before = v.copy()
    mixed_model(v.head(400))
    pd.testing.assert_frame_equal(v, v_before)
    for k, frame in frames.items():
        pd.testing.assert_frame_equal(clinic[k], frame)
    pd.testing.assert_frame_equal(out, before)
