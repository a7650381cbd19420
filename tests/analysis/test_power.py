"""Power by simulation of the primary analysis, checked against the closed form where they must agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hipanalytics.analysis.power import Scenario, closed_form_power, simulate_power
from hipanalytics.errors import HipAnalyticsError


def test_without_drop_out_the_simulation_agrees_with_the_closed_form():
    # One hip per patient, no drop-out: the primary analysis is (asymptotically) the ANCOVA the closed
    # form describes. 160 trials give the power within about 0.035 (one Monte Carlo SE).
    scenario = Scenario(effect=3.0, dropout=0.0, both_hips=0.0)
    table = simulate_power(scenario, [25], trials=160, seed=3, progress=False)
    row = table.iloc[0]
    assert row["failed"] == 0 and 0.5 < row["closed_form"] < 0.9  # a size where power is informative
    mc_se = np.sqrt(row["closed_form"] * (1 - row["closed_form"]) / row["trials"])
    assert abs(row["power"] - row["closed_form"]) < 3 * mc_se
    assert row["ci_low"] <= row["power"] <= row["ci_high"]
    assert row["mean_estimate"] == pytest.approx(3.0, abs=0.3)  # unbiased for the set effect


def test_the_closed_form_is_statsmodels_ttestindpower_on_the_ancova_effect_size():
    from statsmodels.stats.power import TTestIndPower

    scenario = Scenario(effect=2.0)
    sd, rho = 5.0, 0.6
    d = 2.0 / (5.0 * np.sqrt(1 - 0.36))
    expected = [TTestIndPower().power(effect_size=d, nobs1=n, alpha=0.05) for n in (20, 50)]
    assert closed_form_power(scenario, [20, 50], inputs=(sd, rho)) == pytest.approx(expected)


def test_drop_out_lowers_power_and_the_same_seed_gives_the_same_table():
    low = Scenario(effect=3.0, dropout=0.0)
    high = Scenario(effect=3.0, dropout=0.4)
    a = simulate_power(high, [20], trials=30, seed=9, progress=False, closed_form=False, workers=1)
    b = simulate_power(high, [20], trials=30, seed=9, progress=False, closed_form=False, workers=2)
    pd.testing.assert_frame_equal(a, b)  # seeded per trial: workers do not change the result
    assert high.assumptions().dropout_base > low.assumptions().dropout_base == 0
    none = simulate_power(low, [20], trials=30, seed=9, progress=False, closed_form=False, workers=1)
    assert a.iloc[0]["power"] <= none.iloc[0]["power"] + 0.1


def test_the_scenario_drop_out_is_the_share_without_a_week_n_value():
    from hipanalytics.analysis.cohort import cohort_visits
    from hipanalytics.analysis.trial import trial_patients
    from hipanalytics.synthetic import generate_clinic

    scenario = Scenario(dropout=0.3)
    c = generate_clinic(1000, seed=2, assumptions=scenario.assumptions())
    v = cohort_visits(c["measurements"], c["patients"], c["programs"])
    t = trial_patients(c["patients"], c["programs"], v, c["sessions"], week=6, threshold=0.7)
    assert t["week_deg"].isna().mean() == pytest.approx(0.3, abs=0.04)


def test_a_mar_scenario_drops_out_after_no_visible_progress_to_the_share_asked():
    from hipanalytics.analysis.cohort import cohort_visits
    from hipanalytics.analysis.trial import trial_patients
    from hipanalytics.synthetic import generate_clinic

    scenario = Scenario(dropout=0.25, mechanism="MAR")
    a = scenario.assumptions()
    assert a.dropout_base == 0 and a.dropout_no_progress == a.dropout_no_progress_daily > 0
    c = generate_clinic(1500, seed=2, assumptions=a)
    v = cohort_visits(c["measurements"], c["patients"], c["programs"])
    t = trial_patients(c["patients"], c["programs"], v, c["sessions"], week=6, threshold=0.7).set_index("patient_id")
    assert t["week_deg"].isna().mean() == pytest.approx(0.25, abs=0.04)
    # missing at random given the observed IR: who stops is who had shown no progress at week 2 or 4
    seen = v[v["side"] == v["patient_id"].map(c["patients"].set_index("patient_id")["involved_side"])]
    gain2 = (seen[seen["weeks"].between(1.5, 2.5)].groupby("patient_id")["degrees"].mean()
             - seen[seen["baseline"]].groupby("patient_id")["degrees"].mean())
    stopped = t["week_deg"].isna().reindex(gain2.index)
    assert gain2[stopped].mean() < gain2[~stopped].mean() - 1.0
    with pytest.raises(HipAnalyticsError, match="leaves at most"):
        Scenario(dropout=0.95, mechanism="MAR").assumptions()


def test_power_under_mar_drop_out_says_so_and_the_primary_stays_unbiased():
    table = simulate_power(Scenario(effect=3.0, dropout=0.3, mechanism="MAR"), [40], trials=40, seed=4,
                           progress=False, closed_form=False, workers=2)
    row = table.iloc[0]
    assert table.attrs["scenario"]["mechanism"] == "MAR"
    assert row["mean_estimate"] == pytest.approx(3.0, abs=0.5) and row["coverage"] >= 0.85


@pytest.mark.parametrize("kwargs, message", [
    ({"mechanism": "MNAR"}, "mechanism 'MNAR' must be one of MCAR, MAR"),
    ({"dropout": 1.2}, "dropout 1.2 must be a share"),
    ({"week": 5}, "week 5 must be an even number"),
    ({"week": 10, "followup_weeks": 8}, "followup_weeks 8 must be at least week 10"),
])
def test_a_bad_scenario_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(HipAnalyticsError, match=message):
        Scenario(**kwargs)


def test_a_trial_whose_analysis_failed_counts_as_showing_nothing(monkeypatch):
    from hipanalytics.analysis import power

    # four trials: two significant, one not, one whose primary analysis could not be fitted
    outcomes = iter([(3.0, 0.01, 1.0, 5.0, "", "unstructured"), (3.0, 0.02, 1.0, 5.0, "", "unstructured"),
                     (1.0, 0.4, -1.0, 3.0, "", "heterogeneous toeplitz"),
                     (np.nan, np.nan, np.nan, np.nan, "the primary analysis needs baseline visits", "")])
    monkeypatch.setattr(power, "_trial", lambda job: next(outcomes))
    row = simulate_power(Scenario(effect=3.0), [10], trials=4, workers=1, progress=False, closed_form=False).iloc[0]
    assert (row["trials"], row["failed"]) == (4, 1)
    assert row["power"] == 0.5  # 2 of 4 trials, not 2 of the 3 that could be fitted
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(power._wilson(2, 4))
    assert row["coverage"] == pytest.approx(3 / 3)  # coverage is of the CIs there are
    assert row["covariance_used"] == "unstructured 2; heterogeneous Toeplitz 1"  # the fallback counted
