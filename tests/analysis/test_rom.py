"""ROM trends pinned on small hand-computed cases, and checked against a per-series loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hipanalytics.analysis.rom import SERIES_KEYS, mixed_series, rom_trends, visits

METHOD = {"joint": "hip", "motion": "internal_rotation", "position": "seated_90", "mode": "active",
          "instrument": "inclinometer"}


def series(patient="P1", side="right", days=(0, 14, 28, 42), values=(20, 23, 25, 30), **method):
    rows = [{"patient_id": patient, "side": side, **(METHOD | method),
             "measured_on": pd.Timestamp("2026-01-05") + pd.Timedelta(days=d), "degrees": float(v)}
            for d, v in zip(days, values)]
    return pd.DataFrame(rows)


def test_slope_and_its_95_ci_match_the_hand_computation():
    # weeks 0,2,4,6; degrees 20,23,25,30: Sxx=20, Sxy=32 -> slope 1.6; SSE=1.8, se=sqrt(0.9/20);
    # t(0.975, 2)=4.3027 -> CI 1.6 +/- 0.9127
    t = rom_trends(series()).iloc[0]
    assert t["slope_deg_per_week"] == pytest.approx(1.6)
    assert t["slope_ci_low"] == pytest.approx(0.687270, abs=1e-6)
    assert t["slope_ci_high"] == pytest.approx(2.512730, abs=1e-6)
    assert (t["baseline_deg"], t["latest_deg"], t["change_deg"], t["n_visits"]) == (20, 30, 10, 4)
    assert t["weeks_followed"] == 6


def test_trials_are_averaged_to_one_value_per_visit():
    m = pd.concat([series(values=(20, 23, 25, 30)), series(values=(22, 23, 27, 30))])
    v = visits(m)
    assert v["degrees"].tolist() == [21, 23, 26, 30] and v["n_trials"].tolist() == [2, 2, 2, 2]
    assert v["trial_sd"].iloc[0] == pytest.approx(np.sqrt(2))
    assert rom_trends(m)["baseline_deg"].iloc[0] == 21


def test_positions_and_instruments_are_never_mixed_in_one_series():
    m = pd.concat([series(), series(values=(30, 31, 33, 36), position="prone"),
                   series(values=(16, 18, 20, 24), instrument="goniometer")])
    t = rom_trends(m)
    assert len(t) == 3
    assert sorted(t["baseline_deg"]) == [16, 20, 30]
    mixed = mixed_series(m)
    assert mixed[["patient_id", "side", "methods"]].values.tolist() == [["P1", "right", 3]]
    assert "prone/active/inclinometer" in mixed["method_list"].iloc[0]


def test_mdc_is_cited_by_method_and_can_be_overridden():
    t = rom_trends(pd.concat([series(), series(position="prone")]))
    seated, prone = t.sort_values("position", ascending=False).itertuples()
    assert seated.mdc_deg == 5.4 and "Krause" in seated.mdc_source
    assert prone.mdc_deg == 8.6 and "Gradoz" in prone.mdc_source
    assert seated.beyond_mdc and seated.direction == "improved"
    assert prone.beyond_mdc and prone.direction == "improved"  # +10 > 8.6
    passive = rom_trends(series(mode="passive")).iloc[0]  # Krause's 5.4 degrees is for active IR only
    assert passive.mdc_deg == 8.6 and "Gradoz" in passive.mdc_source
    by_method = rom_trends(series(mode="passive"), mdc={("seated_90", "passive", "inclinometer"): 6.0}).iloc[0]
    assert by_method.mdc_deg == 6.0 and by_method.mdc_source == "set by the user"
    strict = rom_trends(series(), mdc=12).iloc[0]
    assert strict.mdc_deg == 12 and not strict.beyond_mdc and strict.direction == "no reliable change"
    worse = rom_trends(series(values=(30, 28, 25, 22))).iloc[0]
    assert worse.direction == "worse"


FORTNIGHTLY = (0, 14, 28, 42, 56)


@pytest.mark.parametrize(("values", "slope", "ci", "change", "trend"), [
    # weeks 0-8; the window is weeks 2-8 (the last 6 weeks); no noise: the CI has zero width
    ((20, 23, 26, 29, 32), 1.5, (1.5, 1.5), 9.0, "gaining"),     # steady 1.5 deg/week: 9 > MDC 5.4
    ((20, 22, 24, 26, 28), 1.0, (1.0, 1.0), 6.0, "gaining"),     # 1 deg/week still counts: 6 > 5.4
    ((20, 21.6, 23.2, 24.8, 26.4), 0.8, (0.8, 0.8), 4.8, "levelled off"),  # a precise change within the MDC
    ((40, 37, 34, 31, 28), -1.5, (-1.5, -1.5), -9.0, "worsening"),  # a loss of 12 over 8 weeks
])
def test_recent_trend_on_noise_free_series(values, slope, ci, change, trend):
    t = rom_trends(series(days=FORTNIGHTLY, values=values)).iloc[0]
    assert t["recent_slope"] == pytest.approx(slope) and t["recent_change_deg"] == pytest.approx(change)
    assert (t["recent_ci_low"], t["recent_ci_high"]) == pytest.approx(ci)
    assert t["recent_trend"] == trend and bool(t["plateau"]) is (trend == "levelled off")
    assert t["recent_visits"] == 4 and t["recent_weeks"] == 6


def test_a_levelled_series_is_levelled_off_and_a_noisy_one_that_never_gained_has_no_response_yet():
    # levelled: window weeks 4-10 = 30, 30.5, 29.8, 30.2: Sxx = 20, Sxy = -0.1 -> slope -0.005;
    # SSE = 0.2675 - 0.0005 = 0.267, se = sqrt(0.267 / 2 / 20) = 0.0817, t(0.975, 2) = 4.3027 -> CI -0.3565..0.3465,
    # times the 6-week span: the change's CI -2.14..2.08 lies within +/- the 5.4-degree MDC, after a gain of 10.2
    levelled = rom_trends(series(days=(0, 14, 28, 42, 56, 70), values=(20, 26, 30, 30.5, 29.8, 30.2))).iloc[0]
    assert levelled["recent_slope"] == pytest.approx(-0.005) and levelled["recent_trend"] == "levelled off"
    assert levelled["recent_ci_low"] == pytest.approx(-0.3565, abs=1e-3) and levelled["direction"] == "improved"
    assert (levelled["recent_change_low"], levelled["recent_change_high"]) == pytest.approx((-2.139, 2.079), abs=1e-3)
    assert bool(levelled["plateau"]) and levelled["to_decide"] == ""
    # noisy: window weeks 2-8 = 34, 27, 33, 28: slope -0.6 with a CI from -4.31 to 3.11; 30 -> 28 overall
    noisy = rom_trends(series(days=FORTNIGHTLY, values=(30, 34, 27, 33, 28))).iloc[0]
    assert noisy["recent_slope"] == pytest.approx(-0.6) and noisy["recent_trend"] == "no response yet"
    assert not noisy["plateau"]


def test_a_gain_whose_recent_ci_is_wide_is_uncertain_not_a_plateau():
    # 24.6 -> 31.4 with the highest value last (as SYN-00005): a gain of 6.8 beyond the MDC, but three visits
    # over 4 weeks give the slope a CI from below 0 to far above: nothing says it has levelled off
    t = rom_trends(series(days=(0, 14, 28), values=(24.6, 30.0, 31.4))).iloc[0]
    assert t["direction"] == "improved" and t["recent_ci_low"] < 0 < t["recent_ci_high"]
    assert t["recent_trend"] == "uncertain" and not t["plateau"]
    # residuals -0.67, 1.33, -0.67 about the fitted line: SD sqrt(2.667 / 1) = 1.63; seven visits evenly over six
    # weeks give the change a half-width of t(5) 2.571 x 1.63 x sqrt(12 x 6 / 56) = 4.76, under the MDC (six: 5.42)
    assert t["to_decide"] == ("about 7 visits in 6 weeks (one a week) at the scatter seen so far (SD 1.6 degrees "
                              "around the trend): 4 more")
    # two visits a week apart after a gain: one more visit, at least two weeks on, would tell
    short = rom_trends(series(days=(0, 7), values=(20, 27))).iloc[0]
    assert short["recent_trend"] == "uncertain"
    assert short["to_decide"] == "1 more visit, on or after 2026-01-26 (3 visits over at least 3 weeks tell)"


def test_a_series_that_never_gained_beyond_the_mdc_has_no_response_yet():
    # 26 -> 27 over 6 weeks (as SYN-00004): never a plateau
    t = rom_trends(series(values=(26, 29, 24, 27))).iloc[0]
    assert t["direction"] == "no reliable change" and t["recent_trend"] == "no response yet"
    assert not t["plateau"]


def test_a_value_below_the_baseline_by_more_than_the_mdc_is_worsening():
    t = rom_trends(series(values=(30, 31, 29, 23))).iloc[0]
    assert t["direction"] == "worse" and t["recent_trend"] == "worsening"


def test_two_visits_have_a_slope_without_a_ci_and_a_single_visit_no_trend():
    short = rom_trends(series(days=(0, 14), values=(20, 22))).iloc[0]
    assert short["note"] == "two visits: slope without a CI" and short["recent_trend"] == "no response yet"
    once = rom_trends(series(days=(0,), values=(20,))).iloc[0]
    assert pd.isna(once["recent_trend"]) and pd.isna(once["plateau"])


def test_asymmetry_compares_sides_at_the_same_visit_and_the_target_is_the_uninvolved_recent_mean():
    # the left side was last measured at week 4; the right side at week 6
    m = pd.concat([series(side="right", values=(20, 22, 24, 25)),
                   series(side="left", days=(0, 14, 28), values=(34, 36, 35))])
    patients = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})
    t = rom_trends(m, patients=patients).set_index("side")
    assert t.loc["right", "involved"] and not t.loc["left", "involved"]
    right = t.loc["right"]
    assert right["asymmetry_on"] == pd.Timestamp("2026-02-02")  # week 4: the last visit with both sides
    assert (right["asymmetry_deg"], right["other_side_deg"]) == (24 - 35, 35)
    assert right["target_deg"] == 35 and right["to_target_deg"] == 10  # mean of 34, 36, 35; latest 25
    assert right["target_source"] == ("uninvolved side, same method: mean of 3 visits (2026-01-05 to 2026-02-02) in "
                                      "the 6 weeks to its latest; not below the normal range's low end of 29")
    assert right["target_reference"] == "uninvolved side" and right["uninvolved_recent_deg"] == 35
    assert pd.isna(t.loc["left", "target_deg"]) and t.loc["left", "asymmetry_deg"] == 11


def test_no_asymmetry_when_the_sides_were_never_measured_at_one_visit():
    m = pd.concat([series(side="right", days=(0, 28), values=(20, 24)),
                   series(side="left", days=(14, 42), values=(34, 35))])
    t = rom_trends(m, patients=pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})).set_index("side")
    assert t["asymmetry_deg"].isna().all() and t["asymmetry_on"].isna().all()
    assert t.loc["right", "target_deg"] == 34.5  # the uninvolved visits of its last 6 weeks


def test_both_hips_involved_aim_for_the_normative_band():
    m = pd.concat([series(side="right", values=(20, 22, 24, 25)), series(side="left", values=(18, 20, 21, 22))])
    t = rom_trends(m, patients=pd.DataFrame({"patient_id": ["P1"], "involved_side": ["both"]}))
    assert (t["target_deg"] == 29).all() and t["target_source"].str.contains("J Athl Train").all()


def test_single_visit_gives_nan_slope_with_a_reason():
    t = rom_trends(series(days=(0,), values=(20,))).iloc[0]
    assert np.isnan(t["slope_deg_per_week"]) and t["change_deg"] == 0
    assert t["note"] == "single visit: no change or slope"


def test_identical_values_give_zero_slope_and_a_zero_width_ci():
    t = rom_trends(series(values=(25, 25, 25, 25))).iloc[0]
    assert t["slope_deg_per_week"] == 0 and t["slope_ci_low"] == 0 and t["slope_ci_high"] == 0


def test_as_of_ignores_later_measurements():
    t = rom_trends(series(), as_of="2026-01-20").iloc[0]
    assert t["n_visits"] == 2 and t["latest_deg"] == 23


def test_empty_input_gives_an_empty_table_with_the_columns():
    empty = rom_trends(series().iloc[0:0])
    assert empty.empty and "slope_deg_per_week" in empty.columns


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="measurements needs columns degrees"):
        rom_trends(series().drop(columns="degrees"))


def test_inputs_are_not_modified():
    m = series()
    p = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})
    before_m, before_p = m.copy(), p.copy()
    rom_trends(m, patients=p)
    visits(m)
    mixed_series(m)
    pd.testing.assert_frame_equal(m, before_m)
    pd.testing.assert_frame_equal(p, before_p)


def test_vectorised_table_equals_a_per_series_loop_on_a_synthetic_clinic():
    from hipanalytics.synthetic import generate_clinic

    m = generate_clinic(30, seed=3)["measurements"].assign(measured_on=lambda d: pd.to_datetime(d["measured_on"]))
    table = rom_trends(m).set_index(SERIES_KEYS)
    for key, one in m.groupby(SERIES_KEYS):
        row = table.loc[key]
        v = one.groupby("measured_on")["degrees"].mean()
        weeks = (v.index - v.index[0]).days / 7
        if len(v) >= 3:
            fit = stats.linregress(weeks, v.to_numpy())
            half = stats.t.ppf(0.975, len(v) - 2) * fit.stderr
            assert row["slope_deg_per_week"] == pytest.approx(fit.slope)
            assert row["slope_ci_low"] == pytest.approx(fit.slope - half)
        assert row["latest_deg"] == pytest.approx(v.iloc[-1])


def test_one_sided_measurements_leave_asymmetry_empty_and_aim_for_the_normal_range():
    t = rom_trends(series(side="right"), patients=pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})).iloc[0]
    assert pd.isna(t["asymmetry_deg"]) and t["target_deg"] == 29 and bool(t["involved"])
    assert t["target_source"].endswith("(low end): the uninvolved side not measured by this method")
    assert t["target_reference"] == "normal range"


def test_the_one_hip_target_is_never_below_the_normal_range():
    # as SYN-00021: the involved right hip at 22, the uninvolved left at 21-23: both under the normal range's 29
    m = pd.concat([series(side="right", values=(18, 20, 21, 22)), series(side="left", values=(21, 23, 22, 22))])
    t = rom_trends(m, patients=pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})).set_index("side")
    right = t.loc["right"]
    assert right["target_deg"] == 29 and right["to_target_deg"] == 7 and right["target_reference"] == "normal range"
    assert right["uninvolved_recent_deg"] == 22
    assert right["target_source"].endswith("(low end); the uninvolved side's recent mean, 22.0, is below it too")


def test_the_one_hip_target_follows_the_uninvolved_sides_recent_values_not_its_whole_history():
    # the uninvolved left side read 40 at week 0, then 31 and 31 at weeks 8 and 10: its recent mean is 31, not 34
    m = pd.concat([series(side="right", days=(0, 56, 70), values=(20, 26, 28)),
                   series(side="left", days=(0, 56, 70), values=(40, 31, 31))])
    t = rom_trends(m, patients=pd.DataFrame({"patient_id": ["P1"], "involved_side": ["right"]})).set_index("side")
    assert t.loc["right", "target_deg"] == 31 and t.loc["right", "to_target_deg"] == 3
