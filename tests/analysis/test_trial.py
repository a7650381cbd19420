"""The trial analysis on small cases built by hand: intention to treat keeps every assigned patient
and says who is missing where; per protocol uses the assigned schedule; flow, harms, secondary
outcomes with Holm, multiple imputation and the time shape, each against an independent computation."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hipanalytics.analysis.cohort import cohort_visits
from hipanalytics.analysis.trial import (
    Imputed,
    ancova,
    analysis_windows,
    complier_average,
    gain_per_week,
    window_of,
    consort_flow,
    harms_by_arm,
    holm,
    impute_windows,
    missing_by_analysis,
    multiple_imputation_ancova,
    per_protocol,
    primary_analysis,
    secondary_outcomes,
    sensitivity_analyses,
    time_shape_comparison,
    tipping_point,
    TIPPING_DELTAS,
    trial_patients,
)
from hipanalytics.errors import HipAnalyticsError
from hipanalytics.program import plan_table
from hipanalytics.synthetic import generate_clinic

from ..system import rscript

START = pd.Timestamp("2026-01-05")  # a Monday


def program(patient, schedule, start, end, reason):
    return {"program_id": f"{patient}-{schedule}-{start:%Y%m%d}", "patient_id": patient, "protocol_id": "hip-ir-breakouts",
            "protocol_version": "1.0.0", "schedule": schedule, "start_date": f"{start:%Y-%m-%d}",
            "end_date": f"{end:%Y-%m-%d}", "reason": reason}


@pytest.fixture(scope="module")
def small_trial():
    """12 patients, 6 per arm, 6-week programs, visits at weeks 0, 2, 4, 6, every planned session done
    (pain 2 before and 2 after); then by hand:
    - D3 (daily) drops out after week 4: no visit at week 6 and no session after day 29;
    - D2 (daily) switches to 3x/week from week 3 ("pain rise after daily breakouts"), pain rising
      by 3 points after each of his first four daily breakouts.
    """
    rng = np.random.default_rng(5)
    patients, programs, rows = [], [], []
    for i in range(12):
        pid = f"{'D' if i < 6 else 'T'}{i % 6 + 1}"
        arm = "daily" if i < 6 else "three-per-week"
        patients.append({"patient_id": pid, "birth_year": 1980, "sex": "female", "involved_side": "left", "cohort": arm})
        end = START + pd.Timedelta(days=41)
        if pid == "D2":
            switch = START + pd.Timedelta(days=21)
            programs += [program(pid, "daily", START, switch - pd.Timedelta(days=1), "assigned"),
                         program(pid, "three-per-week", switch, end, "pain rise after daily breakouts")]
        else:
            programs.append(program(pid, arm, START, end, "assigned"))
        base = 20 + rng.normal(0, 4)
        for week in (0, 2, 4, 6):
            if pid == "D3" and week == 6:
                continue
            gain = week * (1.0 if arm == "daily" else 0.6)
            for trial in (1, 2):
                rows.append({"patient_id": pid, "measured_on": f"{START + pd.Timedelta(weeks=week):%Y-%m-%d}",
                             "side": "left", "joint": "hip", "motion": "internal_rotation", "position": "seated_90",
                             "mode": "active", "instrument": "inclinometer",
                             "degrees": round(base + gain + rng.normal(0, 1.5), 1), "trial": trial})
    patients, programs, measurements = pd.DataFrame(patients), pd.DataFrame(programs), pd.DataFrame(rows)
    planned = plan_table(programs)
    planned = planned[~((planned["patient_id"] == "D3") & (planned["date"] > START + pd.Timedelta(days=29)))]
    sessions = pd.DataFrame({"patient_id": planned["patient_id"], "performed_on": planned["date"].dt.strftime("%Y-%m-%d"),
                             "session": planned["session"], "completion": "full", "pain_before": 2, "pain_after": 2})
    first_daily = sessions.index[(sessions["patient_id"] == "D2") & (sessions["session"] == "breakouts")][:4]
    sessions.loc[first_daily, "pain_after"] = 5
    visits = cohort_visits(measurements, patients, programs)
    table = trial_patients(patients, programs, visits, sessions, week=6, threshold=0.7)
    return {"patients": patients, "programs": programs, "measurements": measurements, "sessions": sessions,
            "visits": visits, "table": table.set_index("patient_id", drop=False)}


def test_itt_keeps_every_assigned_patient_and_lists_who_is_missing_where(small_trial):
    table, visits = small_trial["table"], small_trial["visits"]
    assert table.loc["D3", "dropped_out"] and table.loc["D3", "dropout_week"] == 4
    assert table["dropped_out"].sum() == 1
    primary = primary_analysis(visits, 6)
    assert primary.n_patients == 12 and primary.n_per_arm == {"daily": 6, "three-per-week": 6}
    assert "D3" in set(primary.fit.data.subjects)  # the drop-out's observed visits count
    missing = missing_by_analysis(table.reset_index(drop=True), primary, 6)
    complete_case = missing[missing["analysis"] == "sensitivity: complete cases"]
    assert complete_case[["patient_id", "reason"]].values.tolist() == [
        ["D3", "dropped out after week 4 (last visit window)"]]
    assert not missing["analysis"].str.startswith("primary").any()
    sensitivity = sensitivity_analyses(primary, visits, table.reset_index(drop=True), imputations=5)
    assert sensitivity["n"].tolist() == [12, 12, 12, 11, 12]  # primary, MI, J2R, tipping keep D3; complete cases not


def test_a_patient_without_a_baseline_is_no_baseline_in_the_flow_and_kept_by_the_primary_model(small_trial):
    m = small_trial["measurements"]
    start = pd.Timestamp(small_trial["programs"].set_index("patient_id").loc["D1", "start_date"])
    m = m[~((m["patient_id"] == "D1") & (pd.to_datetime(m["measured_on"]) == start))]  # D1's day-0 visit deleted
    visits = cohort_visits(m, small_trial["patients"], small_trial["programs"])
    assert sorted(set(visits.loc[visits["patient_id"] == "D1", "weeks"])) == [2.0, 4.0, 6.0]  # not moved to 0, 2, 4
    table = trial_patients(small_trial["patients"], small_trial["programs"], visits, small_trial["sessions"],
                           week=6, threshold=0.7)
    primary = primary_analysis(visits, 6)
    assert "D1" in set(primary.fit.data.subjects) and primary.n_patients == 12
    flow = consort_flow(table, primary).set_index("arm")
    assert flow.loc["daily", "no_baseline"] == 1


def test_as_treated_codes_the_schedule_followed_whichever_way_a_patient_switched():
    def prog(pid, schedule, start, end):
        return {"program_id": f"{pid}-{start}", "patient_id": pid, "protocol_id": "hip-ir-breakouts",
                "protocol_version": "1.0.0", "schedule": schedule, "start_date": pd.Timestamp(start),
                "end_date": pd.Timestamp(end)}
    programs = pd.DataFrame([prog("UP", "three-per-week", "2026-01-05", "2026-01-11"),  # 1 week, then daily
                             prog("UP", "daily", "2026-01-12", "2026-03-01"),
                             prog("DOWN", "daily", "2026-01-05", "2026-02-08"),  # 5 weeks, then 3x/week
                             prog("DOWN", "three-per-week", "2026-02-09", "2026-03-01"),
                             prog("STAY", "three-per-week", "2026-01-05", "2026-03-01")])
    patients = pd.DataFrame({"patient_id": ["UP", "DOWN", "STAY"], "involved_side": "left"})
    m = pd.DataFrame([{"patient_id": pid, "measured_on": pd.Timestamp("2026-01-05") + pd.Timedelta(weeks=w),
                       "side": "left", "joint": "hip", "motion": "internal_rotation", "position": "seated_90",
                       "mode": "active", "instrument": "inclinometer", "degrees": 20.0 + w, "trial": 1}
                      for pid in ("UP", "DOWN", "STAY") for w in (0, 2, 4, 6)])
    sessions = pd.DataFrame(columns=["patient_id", "performed_on", "session", "completion", "pain_before", "pain_after"])
    table = trial_patients(patients, programs, cohort_visits(m, patients, programs), sessions, week=6,
                           threshold=0.7).set_index("patient_id")
    assert table["arm"].to_dict() == {"UP": "three-per-week", "DOWN": "daily", "STAY": "three-per-week"}
    assert table["followed"].to_dict() == {"UP": "daily", "DOWN": "daily", "STAY": "three-per-week"}


def test_per_protocol_adherence_counts_the_breakouts_up_to_the_week_n_outcome_only():
    # a 12-week daily program, every breakout done for 6 weeks, none after: adherent up to week 6
    start = pd.Timestamp("2026-01-05")
    programs = pd.DataFrame([{"program_id": "A", "patient_id": "P1", "protocol_id": "hip-ir-breakouts",
                              "protocol_version": "1.0.0", "schedule": "daily", "start_date": start,
                              "end_date": start + pd.Timedelta(days=83)}])
    patients = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["left"], "cohort": ["daily"]})
    m = pd.DataFrame([{"patient_id": "P1", "measured_on": start + pd.Timedelta(weeks=w), "side": "left", "joint": "hip",
                       "motion": "internal_rotation", "position": "seated_90", "mode": "active",
                       "instrument": "inclinometer", "degrees": 20.0 + w, "trial": 1} for w in (0, 2, 4, 6)])
    days = pd.date_range(start, periods=42, freq="D")
    sessions = pd.DataFrame({"patient_id": "P1", "performed_on": days, "session": "breakouts", "completion": "full",
                             "pain_before": 2, "pain_after": 2})
    row = trial_patients(patients, programs, cohort_visits(m, patients, programs), sessions, week=6,
                         threshold=0.7).iloc[0]
    assert row["assigned_adherence"] == pytest.approx(1.0) and row["per_protocol"]  # over 12 weeks it read 50%
    assert row["breakouts_planned_per_week"] == pytest.approx(7.0)


def test_a_patient_who_only_missed_the_week_n_visit_is_not_said_to_have_dropped_out(small_trial):
    m, start = small_trial["measurements"], START
    t1 = m[m["patient_id"] == "T1"]
    later = t1[pd.to_datetime(t1["measured_on"]) == start + pd.Timedelta(weeks=6)].assign(
        measured_on=f"{start + pd.Timedelta(weeks=8):%Y-%m-%d}")  # T1 seen at week 8 instead of week 6
    m = pd.concat([m[~((m["patient_id"] == "T1") & (pd.to_datetime(m["measured_on"]) == start + pd.Timedelta(weeks=6)))],
                   later], ignore_index=True)
    visits = cohort_visits(m, small_trial["patients"], small_trial["programs"])
    table = trial_patients(small_trial["patients"], small_trial["programs"], visits, small_trial["sessions"], week=6,
                           threshold=0.7)
    primary = primary_analysis(visits, 6)
    reasons = missing_by_analysis(table, primary, 6).set_index(["analysis", "patient_id"])["reason"]
    assert reasons[("sensitivity: complete cases", "T1")] == "missed the week-6 visit (seen again at week 8)"
    assert reasons[("sensitivity: complete cases", "D3")] == "dropped out after week 4 (last visit window)"


def test_the_estimand_has_ich_e9_r1s_five_attributes_and_missing_data_stand_apart():
    from hipanalytics.analysis.trial import ESTIMAND_ATTRIBUTES, estimand, estimand_text, missing_data_text

    attributes = estimand(6)
    assert list(attributes) == list(ESTIMAND_ATTRIBUTES) == ["Treatment conditions", "Population", "Variable",
                                                             "Intercurrent events", "Population-level summary"]
    events = attributes["Intercurrent events"]
    assert "switch of schedule (treatment policy" in events and "stopping the breakouts while still measured" in events
    assert "co-interventions" in events
    assert not any(word in events.lower() for word in ("drop-out", "dropout", "missing", "hypothetical"))
    assert "analysis set" not in attributes["Population"] and "not eligible" in attributes["Population"]
    assert "week 6 after time zero" in attributes["Variable"]
    assert "missing at random" not in estimand_text(6)  # MAR is an assumption of the analysis, not the estimand
    assert "missing at random given the arm and the IR observed before (MAR)" in missing_data_text(6)


def test_per_protocol_measures_adherence_against_the_assigned_schedule(small_trial):
    table = small_trial["table"]
    # D2 was assigned daily (42 breakouts in 6 weeks), did 21 daily then 8 on 3x/week (Wed, Fri, Mon...: the
    # first 3x/week breakout keeps a recovery day after the last daily one): 29 of 42 = 69%, though every
    # session of the plan he switched to was done (100% against it)
    assert table.loc["D2", "switched"] and table.loc["D2", "switch_week"] == 3
    assert table.loc["D2", "assigned_adherence"] == pytest.approx(29 / 42)
    assert not table.loc["D2", "per_protocol"] and table.loc["D2", "reason"] == "switched schedule"
    # D3 did all 30 daily breakouts up to day 29 (71%) but has no week-6 value
    assert table.loc["D3", "assigned_adherence"] == pytest.approx(30 / 42)
    assert table.loc["D3", "reason"] == "no value at week 6"
    assert table.loc["T1", "assigned_adherence"] == pytest.approx(1.0) and table.loc["T1", "per_protocol"]
    pp = per_protocol(table.reset_index(drop=True)).set_index("analysis")
    first = pp.iloc[0]
    assert (first["n_daily"], first["n_three_per_week"]) == (4, 6)
    kept = table[table["per_protocol"]]
    base = kept.groupby("arm")["baseline_deg"].mean()
    assert first["baseline_difference"] == pytest.approx(base["daily"] - base["three-per-week"])
    as_treated = pp.iloc[1]  # D2 followed each schedule 21 of the 42 days: a tie, his first program's; D3 has no week 6
    assert table.loc["D2", "followed"] == "daily"
    assert (as_treated["n_daily"], as_treated["n_three_per_week"]) == (5, 6)


def noncompliance(n: int = 4000, seed: int = 3):
    """A randomised trial where 30% of the daily arm (the ones with the worse prognosis) follow 3x/week
    instead: the effect in compliers is 4 degrees, nothing for the others (they do not take it)."""
    rng = np.random.default_rng(seed)
    z = (np.arange(n) % 2).astype(float)
    frail = rng.random(n) < 0.3  # would not keep up daily breakouts, gain less whatever the schedule
    baseline = rng.normal(22, 6, n)
    followed = np.where((z == 1) & ~frail, "daily", "three-per-week")
    week = baseline + 7 - 4 * frail + 4 * (followed == "daily") + rng.normal(0, 3, n)
    ids = np.array([f"P{i}" for i in range(n)])
    values = np.column_stack([baseline, week])[None]
    imputed = Imputed(6, values, np.zeros((n, 2), bool), z, ids)
    table = pd.DataFrame({"patient_id": ids, "followed": followed, "arm": np.where(z == 1, "daily", "three-per-week"),
                          "baseline_deg": baseline, "week_deg": week, "per_protocol": (z == 0) | ~frail})
    return imputed, table


def test_complier_average_matches_r_ivreg_and_recovers_the_complier_effect(tmp_path):
    executable = rscript(("AER", "sandwich"))
    imputed, table = noncompliance()
    cace = complier_average(imputed, table)
    assert cace["share_daily_followed"] == pytest.approx(0.7, abs=0.03) and cace["share_three_followed"] == 1.0
    assert abs(cace["estimate"] - 4.0) < 2 * cace["std_error"] and cace["ci_low"] < 4.0 < cace["ci_high"]
    pp = per_protocol(table).set_index("label").loc["per protocol"]  # drops the frail daily patients only
    assert pp["estimate"] - 4.0 > 3 * pp["std_error"]  # biased: compares the robust daily with everyone on 3x/week
    table.assign(z=imputed.daily, d=(table["followed"] == "daily").astype(float)).to_csv(tmp_path / "d.csv", index=False)
    script = (f"library(AER); library(sandwich); d <- read.csv('{tmp_path / 'd.csv'}'); "
              "f <- ivreg(week_deg ~ d + baseline_deg | z + baseline_deg, data = d); "
              "cat(sprintf('%.12g', c(coef(f)[['d']], vcovHC(f, type = 'HC0')['d', 'd'])), sep = '\\n')")
    out = np.array(subprocess.run([executable, "-e", script], capture_output=True, text=True, check=True).stdout.split(),
                   dtype=float)
    assert cace["estimate"] == pytest.approx(out[0], rel=1e-8)
    assert cace["std_error"] ** 2 == pytest.approx(out[1], rel=1e-6)


def test_complier_average_is_refused_when_assignment_hardly_changes_the_schedule():
    imputed, table = noncompliance(200)
    table["followed"] = "three-per-week"
    with pytest.raises(HipAnalyticsError, match="weak instrument"):
        complier_average(imputed, table)
    row = per_protocol(table, imputed).set_index("label").loc["complier average (CACE)"]
    assert "not estimated" in row["analysis"] and np.isnan(row["estimate"])


def test_ancova_matches_least_squares_by_hand(small_trial):
    t = small_trial["table"].dropna(subset=["week_deg"])
    X = np.column_stack([np.ones(len(t)), (t["arm"] == "daily").astype(float), t["baseline_deg"]])
    beta, *_ = np.linalg.lstsq(X, t["week_deg"].to_numpy(), rcond=None)
    residual = t["week_deg"].to_numpy() - X @ beta
    se = np.sqrt(residual @ residual / (len(t) - 3) * np.linalg.inv(X.T @ X)[1, 1])
    result = ancova(small_trial["table"])
    assert result["estimate"] == pytest.approx(beta[1]) and result["std_error"] == pytest.approx(se)
    assert result["n"] == 11 and result["df"] == 8


def test_multiple_imputation_without_missing_values_is_the_complete_case_ancova():
    c = generate_clinic(30, seed=8)
    visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
    table = trial_patients(c["patients"], c["programs"], visits, c["sessions"], week=6, threshold=0.7)
    complete = set(table.loc[table["week_deg"].notna(), "patient_id"])
    visits = visits[visits["patient_id"].isin(complete)]
    table = table[table["patient_id"].isin(complete)]
    mi = multiple_imputation_ancova(visits, table, 6, imputations=5)
    cc = ancova(table)
    assert mi["missing_at_week"] == 0
    assert mi["estimate"] == pytest.approx(cc["estimate"]) and mi["std_error"] == pytest.approx(cc["std_error"])


def test_consort_flow_counts(small_trial):
    primary = primary_analysis(small_trial["visits"], 6)
    flow = consort_flow(small_trial["table"].reset_index(drop=True), primary).set_index("arm")
    daily = flow.loc["daily"]
    assert (daily["assigned"], daily["switched"], daily["switch_weeks"], daily["dropped_out"],
            daily["dropout_weeks"]) == (6, 1, "3", 1, "4")
    assert (daily["analysed_primary"], daily["analysed_complete"], daily["analysed_per_protocol"]) == (6, 5, 4)
    assert flow.loc["three-per-week", "analysed_per_protocol"] == 6


def test_harms_and_adherence_by_arm(small_trial):
    harms = harms_by_arm(small_trial["table"].reset_index(drop=True), small_trial["sessions"],
                         small_trial["programs"]).set_index("measure")
    daily = harms["daily"]
    assert daily["pain rises of 2+ NPRS points"] == "4" and harms["three-per-week"]["pain rises of 2+ NPRS points"] == "0"
    assert daily["patients with repeated rises (2+ in 6 sessions), n (%)"] == "1 (17%)"
    assert daily["switched schedule for pain, n (%)"] == "1 (17%)"
    assert daily["no IR value at the comparison week, n (%)"] == "1 (17%)"
    assert daily["breakouts planned per week (assigned), median"] == "7.0"
    assert harms["three-per-week"]["breakouts planned per week (assigned), median"] == "3.0"
    sessions = small_trial["sessions"]
    told = int(((sessions["session"] == "breakouts") & sessions["patient_id"].str.startswith("D")).sum())
    assert daily["breakout sessions with pain recorded"] == str(told)


def test_secondary_outcomes_are_holm_adjusted_over_their_mar_valid_family(small_trial):
    table = small_trial["table"].reset_index(drop=True)
    s = secondary_outcomes(table, small_trial["visits"], 6, mdc=5.4)
    assert len(s) == 3
    assert s["p_holm"].iloc[:2].to_numpy() == pytest.approx(holm(s["p_value"].iloc[:2]))
    assert np.isnan(s["p_holm"].iloc[2]) and not s["confirmatory"].iloc[2]  # complete cases: outside the family
    assert "outside the Holm family: complete cases" in s["note"].iloc[2]
    assert s["note"].iloc[1].startswith("multiple imputation under MAR (20 imputations)")
    # with nothing missing the imputed risk difference is the observed one, whatever is drawn
    t = table.dropna(subset=["week_deg", "baseline_deg"])
    complete = Imputed(6, t[["baseline_deg", "week_deg"]].to_numpy()[None], np.zeros((len(t), 2), bool),
                       (t["arm"] == "daily").to_numpy(dtype=float), t["patient_id"].to_numpy())
    improved = secondary_outcomes(table, small_trial["visits"], 6, mdc=5.4, imputed=complete).iloc[1]
    share = ((t["week_deg"] - t["baseline_deg"]) >= 5.4).groupby(t["arm"]).mean()
    assert improved["estimate"] == pytest.approx(share["daily"] - share["three-per-week"])
    assert improved["ci_low"] <= improved["estimate"] <= improved["ci_high"]


def test_gain_per_week_follows_the_prespecified_time_shape_and_matches_lmertest(tmp_path):
    executable = rscript()
    c = generate_clinic(80, seed=4)
    visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
    shapes = time_shape_comparison(visits)
    assert shapes.set_index("time shape")["chosen"].to_dict() == {
        "linear": False, "log(weeks + 1)": False, "restricted cubic spline (3 knots)": True}  # saturating gains
    gain = gain_per_week(visits, 6, shapes)
    assert gain["note"].startswith("time course: restricted cubic spline (3 knots) (rule: linear in weeks, unless")
    d = visits[visits["schedule"].isin(["daily", "three-per-week"])].reset_index(drop=True)
    w = d["weeks"].to_numpy()
    k1, k2, k3 = np.percentile(w, [10, 50, 90])

    def rcs(x):
        p3 = lambda v: np.clip(v, 0, None) ** 3  # noqa: E731
        return (p3(x - k1) - p3(x - k2) * (k3 - k1) / (k3 - k2) + p3(x - k3) * (k2 - k1) / (k3 - k2)) / (k3 - k1) ** 2

    d.assign(daily=(d["schedule"] == "daily").astype(float), t1=rcs(w)).to_csv(tmp_path / "v.csv", index=False)
    c6 = (rcs(np.array([6.0]))[0] - rcs(np.array([0.0]))[0]) / 6
    script = (f"suppressMessages(library(lmerTest)); d <- read.csv('{tmp_path / 'v.csv'}'); "
              "f <- lmer(degrees ~ daily * (weeks + t1) + (weeks | patient_id) + (1 | patient_id:side), data = d); "
              "b <- fixef(f); L <- setNames(rep(0, length(b)), names(b)); "
              f"L['daily:weeks'] <- 1; L['daily:t1'] <- {float(c6)!r}; r <- contest1D(f, L); "
              "cat(sprintf('%.12g', c(r$Estimate, r$`Std. Error`, r$df)), sep = '\\n')")
    out = np.array(subprocess.run([executable, "-e", script], capture_output=True, text=True, check=True).stdout.split(),
                   dtype=float)
    assert gain["estimate"] == pytest.approx(out[0], rel=1e-4)
    assert (gain["ci_high"] - gain["ci_low"]) / 2 == pytest.approx(out[1] * stats.t.ppf(0.975, out[2]), rel=1e-3)


def test_gain_per_week_is_the_slope_difference_when_the_shape_is_linear(small_trial):
    shapes = time_shape_comparison(small_trial["visits"])
    linear = shapes.assign(**{"LR p": 0.5})  # the rule keeps the linear course
    gain = gain_per_week(small_trial["visits"], 6, linear)
    assert gain["note"].startswith("time course: linear")
    from hipanalytics.analysis.cohort import mixed_model
    slope = mixed_model(small_trial["visits"][small_trial["visits"]["schedule"].isin(["daily", "three-per-week"])])
    slope = slope.set_index("term").loc["weeks x schedule=daily"]
    assert gain["estimate"] == pytest.approx(slope["estimate"], rel=1e-6)


def test_secondaries_are_confirmatory_only_behind_a_significant_primary(small_trial):
    args = (small_trial["table"].reset_index(drop=True), small_trial["visits"], 6)
    gated = secondary_outcomes(*args, mdc=5.4, primary_p=0.21)
    assert not gated["confirmatory"].any()
    assert gated["note"].iloc[:2].str.startswith("exploratory: the primary analysis was not significant (p = 0.21)").all()
    opened = secondary_outcomes(*args, mdc=5.4, primary_p=0.003)
    assert opened["confirmatory"].iloc[:2].all() and not opened["note"].iloc[:2].str.contains("exploratory").any()
    assert gated["p_holm"].iloc[:2].tolist() == opened["p_holm"].iloc[:2].tolist()  # the same numbers; only what they may claim differs


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])


def test_time_shape_prefers_a_saturating_curve_for_saturating_gains():
    c = generate_clinic(80, seed=4)
    visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
    shapes = time_shape_comparison(visits).set_index("time shape")
    assert shapes.loc["linear", "AIC"] > min(shapes.loc["log(weeks + 1)", "AIC"],
                                             shapes.loc["restricted cubic spline (3 knots)", "AIC"])
    spline = shapes.loc["restricted cubic spline (3 knots)"]
    assert spline["LR df"] == 2 and spline["LR p"] < 0.05
    assert spline["LR vs linear"] == pytest.approx(2 * (spline["log-likelihood (ML)"] - shapes.loc["linear", "log-likelihood (ML)"]))


def _days(days, baseline=None):
    baseline = [d == days[0] for d in days] if baseline is None else baseline
    return pd.DataFrame({"patient_id": "P", "side": "left", "day": days, "weeks": [d / 7 for d in days],
                         "baseline": baseline, "degrees": [10.0 + i for i in range(len(days))], "schedule": "daily"})


def test_analysis_windows_keep_the_visit_nearest_each_window():
    w = analysis_windows(_days([0, 12, 17, 43]), 6)
    assert w[["window", "degrees"]].values.tolist() == [[0, 10.0], [2, 11.0], [6, 13.0]]


def test_analysis_windows_are_explicit_day_ranges_with_every_boundary_in_one_window():
    # week 1.0 (day 7) is follow-up, not baseline; weeks 3.0 and 5.0 go up, as 7.0 does; nothing rounds half to even
    days = [0, 3, 4, 7, 20, 21, 34, 35, 48, 49]
    assert dict(zip(days, window_of(days, [True] + [False] * 9).tolist())) == {
        0: 0, 3: 2, 4: 2, 7: 2, 20: 2, 21: 4, 34: 4, 35: 6, 48: 6, 49: 8}
    assert window_of([-10], [True]).tolist() == [0]  # a baseline before time zero is window 0


def test_time_zero_is_the_program_start_and_a_missing_baseline_visit_moves_no_other_visit():
    start = pd.Timestamp("2026-01-05")
    rows = [{"patient_id": "P1", "measured_on": start + pd.Timedelta(days=d), "side": "left", "joint": "hip",
             "motion": "internal_rotation", "position": "seated_90", "mode": "active", "instrument": "inclinometer",
             "degrees": v, "trial": 1} for d, v in ((-3, 20.0), (14, 23.0), (28, 26.0), (42, 28.0))]
    patients = pd.DataFrame({"patient_id": ["P1"], "involved_side": ["left"]})
    programs = pd.DataFrame({"patient_id": ["P1"], "schedule": ["daily"], "start_date": [start]})
    full = cohort_visits(pd.DataFrame(rows), patients, programs)
    assert full[["day", "weeks", "baseline"]].values.tolist() == [[-3, 0.0, True], [14, 2.0, False],
                                                                  [28, 4.0, False], [42, 6.0, False]]
    without = cohort_visits(pd.DataFrame(rows[1:]), patients, programs)  # the baseline visit deleted
    assert without[["day", "weeks", "baseline"]].values.tolist() == [[14, 2.0, False], [28, 4.0, False],
                                                                     [42, 6.0, False]]
    assert analysis_windows(without, 6)["window"].tolist() == [2, 4, 6]  # week 2 never becomes the baseline
    early = cohort_visits(pd.DataFrame([{**rows[0], "measured_on": start - pd.Timedelta(days=30)}] + rows[1:]),
                          patients, programs)
    assert not early["baseline"].any() and len(early) == 3  # a visit a month before is not a baseline


def _intermittent_case(seed: int, n: int = 2000):
    """Windows 0, 2, 4, 6 of a multivariate normal cohort (weeks 4 and 6 correlated 0.9, the rest
    0.3), arm effect 3 at week 6; 40 % of week-4 values deleted completely at random, and daily
    patients with an *observed* low week 4 (< 29) drop out before week 6 with chance 0.8 (MAR).
    Returns the visits left, the patient table, and the ANCOVA of the full data before deletion."""
    rng = np.random.default_rng(seed)
    daily = np.repeat([1, 0], n // 2)
    C = 16 * np.array([[1, .3, .3, .3], [.3, 1, .3, .3], [.3, .3, 1, .9], [.3, .3, .9, 1]])
    y = rng.multivariate_normal(np.zeros(4), C, n) + np.array([20, 24, 27, 29]) + np.outer(daily, [0, 1, 2, 3])
    miss = np.zeros_like(y, dtype=bool)
    miss[:, 2] = rng.random(n) < 0.4
    miss[:, 3] = ~miss[:, 2] & (y[:, 2] < 29) & (daily == 1) & (rng.random(n) < 0.8)
    ids = [f"P{i:04d}" for i in range(n)]
    rows = [(ids[i], "left", 7 * w, w == 0, y[i, j], "daily" if daily[i] else "three-per-week", w)
            for i in range(n) for j, w in enumerate((0, 2, 4, 6)) if not miss[i, j]]
    visits = pd.DataFrame(rows, columns=["patient_id", "side", "day", "baseline", "degrees", "schedule", "weeks"])
    table = pd.DataFrame({"patient_id": ids, "arm": np.where(daily, "daily", "three-per-week"), "baseline_deg": y[:, 0]})
    return visits, table, ancova(table.assign(week_deg=y[:, 3]))["estimate"]


def test_multiple_imputation_is_proper_for_intermittent_missingness_and_agrees_with_the_mmrm():
    # a single sequential pass imputed week 4 without the observed week 6 and was +0.28 off the MMRM
    visits, table, full = _intermittent_case(0)
    primary = primary_analysis(visits, 6)
    assert primary.fit.data.unstructured and not primary.notes  # a large deviance is no reason to fall back
    mi = multiple_imputation_ancova(visits, table, 6, imputations=20, seed=1)
    assert abs(mi["estimate"] - primary.estimate) < 0.1 and abs(mi["estimate"] - full) < 0.15
    assert mi["std_error"] == pytest.approx(primary.std_error, rel=0.15)


def test_multiple_imputation_agrees_with_r_mice_on_intermittent_missingness(tmp_path):
    # an independent implementation of proper MI under the same model (every window regressed on the
    # others and the arm: a multivariate normal with arm-shifted means), by chained equations instead
    # of data augmentation; pooled by Rubin's rules, the two agree within their Monte Carlo error
    executable = rscript(("mice",))
    visits, table, _ = _intermittent_case(3, n=400)
    ours = multiple_imputation_ancova(visits, table, 6, imputations=100, seed=2)
    wide = visits.pivot_table(index="patient_id", columns="weeks", values="degrees").reindex(table["patient_id"])
    wide.columns = [f"w{int(c)}" for c in wide.columns]
    wide.assign(daily=(table.set_index("patient_id")["arm"] == "daily").astype(int)).to_csv(tmp_path / "w.csv",
                                                                                          index=False)
    script = (f"library(mice); d <- read.csv('{tmp_path / 'w.csv'}'); "
              "imp <- mice(d, m = 100, maxit = 20, method = 'norm', seed = 7, printFlag = FALSE); "
              "p <- summary(pool(with(imp, lm(w6 ~ daily + w0)))); r <- p[p$term == 'daily', ]; "
              "cat(sprintf('%.10g', c(r$estimate, r$std.error, r$df)), sep = '\\n')")
    est, se, df = np.array(subprocess.run([executable, "-e", script], capture_output=True, text=True,
                                          check=True).stdout.split(), dtype=float)
    assert ours["n"] == 400 and ours["missing_at_week"] == wide["w6"].isna().sum() > 20
    assert abs(ours["estimate"] - est) < 0.06 and ours["std_error"] == pytest.approx(se, rel=0.03)
    assert ours["df"] == pytest.approx(df, rel=0.25)  # Barnard-Rubin df from the between-imputation variance


def test_jump_to_reference_and_the_tipping_point_move_the_way_the_assumption_says():
    visits, table, _ = _intermittent_case(0, n=400)
    mar = impute_windows(visits, table, 6, imputations=10, seed=1)
    j2r = impute_windows(visits, table, 6, imputations=10, seed=1, jump_to_reference=True)
    # jump to reference removes the arm effect (3 degrees at week 6) from the daily drop-outs' imputed values:
    # the estimate falls by about 3 x the share of daily patients imputed at week 6 (the conditional part stays)
    share = mar.missing[mar.daily == 1, -1].mean()
    drop = mar.ancova()["estimate"] - j2r.ancova()["estimate"]
    assert 0.5 * 3 * share < drop < 1.5 * 3 * share
    # a shift of the daily imputed values by delta moves the pooled estimate by delta x that share (ANCOVA is linear)
    assert mar.ancova(-2.0, 0.0)["estimate"] - mar.ancova()["estimate"] == pytest.approx(-2.0 * share, rel=0.05)
    grid, tip = tipping_point(mar)
    assert len(grid) == len(TIPPING_DELTAS) ** 2
    assert mar.ancova()["p_value"] < 0.05 and tip["daily"] < 0  # significant under MAR, tipped by worse drop-outs
    assert mar.ancova(tip["daily"], 0)["p_value"] >= 0.05 > mar.ancova(tip["daily"] + 0.2, 0)["p_value"]
    assert np.isnan(tip["three-per-week"]) or tip["three-per-week"] > 0


def test_the_primary_analysis_adjusts_for_site_when_there_are_two_or_more():
    c = generate_clinic(60, seed=11)
    visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
    sites = c["patients"].set_index("patient_id")["site"]
    north = visits["patient_id"].map(sites) == "north"
    shifted = visits.assign(degrees=visits["degrees"] + np.where(north, 8.0, 0.0))  # a site that reads 8 degrees higher
    plain, adjusted = primary_analysis(shifted, 6), primary_analysis(shifted, 6, sites=sites)
    assert adjusted.adjusted_for == ["site (2 sites)"] and "adjusted for site (2 sites)" in adjusted.row()["analysis"]
    assert "site=south" in adjusted.fit.names and not plain.adjusted_for
    # a constant per site is absorbed exactly by the site term, not by the unadjusted model
    assert adjusted.estimate == pytest.approx(primary_analysis(visits, 6, sites=sites).estimate, abs=1e-5)
    assert plain.estimate != pytest.approx(primary_analysis(visits, 6).estimate, abs=1e-3)
    assert adjusted.std_error < plain.std_error
    assert not primary_analysis(visits, 6, sites=sites.map(lambda s: "one site")).adjusted_for


def test_adherence_and_switch_week_count_from_the_allocation_date():
    c = generate_clinic(20, seed=8)
    switcher = c["truth"].loc[c["truth"]["switched"], "patient_id"]
    pid = switcher.iloc[0]  # seed 8 has one daily patient who switches to 3x/week
    visits = cohort_visits(c["measurements"], c["patients"], c["programs"])
    before = trial_patients(c["patients"], c["programs"], visits, c["sessions"], week=6, threshold=0.7).set_index("patient_id")
    early = c["patients"].copy()
    early.loc[early["patient_id"] == pid, "allocated_on"] = pd.Timestamp(early.loc[early["patient_id"] == pid,
                                                                                   "allocated_on"].iloc[0]) - pd.Timedelta(days=7)
    after = trial_patients(early, c["programs"], cohort_visits(c["measurements"], early, c["programs"]), c["sessions"],
                           week=6, threshold=0.7).set_index("patient_id")
    assert after.loc[pid, "time_zero"] == before.loc[pid, "time_zero"] - pd.Timedelta(days=7)
    # the week before the program is a week of the assigned strategy with nothing done
    assert after.loc[pid, "breakouts_done_per_week"] < before.loc[pid, "breakouts_done_per_week"]
    assert before.loc[pid, "switched"] and after.loc[pid, "switch_week"] == pytest.approx(before.loc[pid, "switch_week"] + 1)
    others = before.index != pid
    pd.testing.assert_series_equal(after.loc[others, "assigned_adherence"], before.loc[others, "assigned_adherence"])
