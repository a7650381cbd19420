"""The synthetic clinic: seeded, importable, and faithful to its stated assumptions."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pytest

from hipanalytics.program import Program, plan, plan_table
from hipanalytics.records import read_records
from hipanalytics.store import Store
from hipanalytics.synthetic import Assumptions, generate_clinic, write_clinic


@pytest.fixture(scope="module")
def clinic():
    return generate_clinic(60, seed=7)


def test_same_seed_same_clinic_other_seed_other_clinic(clinic):
    again = generate_clinic(60, seed=7)
    for name in clinic:
        pd.testing.assert_frame_equal(clinic[name], again[name])
    assert not generate_clinic(60, seed=8)["measurements"].equals(clinic["measurements"])


def test_every_table_imports_cleanly_into_a_store(clinic, tmp_path):
    paths = write_clinic(clinic, tmp_path)
    store = Store(tmp_path / "s.sqlite")
    for table in ("patients", "programs", "measurements", "sessions"):
        summary = store.import_file(paths[table], table, today=date(2026, 11, 1))
        assert summary.imported == len(clinic[table]) and summary.quarantined == 0


def test_arms_are_balanced_and_switches_are_new_programs_from_a_date(clinic):
    arms = clinic["patients"]["cohort"].value_counts()
    assert arms["daily"] == arms["three-per-week"] == 30
    programs = clinic["programs"]
    switched = programs.groupby("patient_id").filter(lambda g: len(g) == 2)
    for _, g in switched.groupby("patient_id"):
        first, second = g.sort_values("start_date").itertuples()
        assert (first.schedule, second.schedule) == ("daily", "three-per-week")
        assert pd.Timestamp(second.start_date) - pd.Timestamp(first.end_date) == pd.Timedelta(days=1)


def test_by_indication_the_patients_in_more_pain_get_three_per_week_and_the_rest_of_the_clinic_stays():
    plain = Assumptions(allocation="by indication")
    painful = Assumptions(allocation="by indication", indication_pain=-1.5)
    before, after = generate_clinic(400, seed=5, assumptions=plain), generate_clinic(400, seed=5, assumptions=painful)
    first = after["sessions"].dropna(subset=["pain_before"]).groupby("patient_id")["pain_before"].first()
    arm = after["truth"].set_index("patient_id")["assigned_schedule"]
    assert first[arm == "three-per-week"].mean() - first[arm == "daily"].mean() > 1.0
    assert (before["truth"]["assigned_schedule"] != after["truth"]["assigned_schedule"]).any()
    pd.testing.assert_frame_equal(before["patients"], after["patients"])  # who they are does not move
    # randomised, the clinician's view of the pain plays no part: the same clinic to the last value
    randomised = generate_clinic(60, seed=7, assumptions=Assumptions(indication_pain=-1.5))
    for name in ("patients", "programs", "measurements", "sessions"):
        pd.testing.assert_frame_equal(randomised[name], generate_clinic(60, seed=7)[name])


def test_vectorised_plan_table_matches_the_program_planner(clinic):
    programs = clinic["programs"].head(6)
    fast = plan_table(programs)
    slow = plan([Program(patient_id=r.patient_id, program_id=r.program_id, protocol="hip-ir-breakouts", schedule=r.schedule,
                         start_date=date.fromisoformat(r.start_date), end_date=date.fromisoformat(r.end_date))
                 for r in programs.itertuples()])
    key = ["patient_id", "program_id", "schedule", "date", "weekday", "slot", "slot_time", "session", "breakouts"]
    pd.testing.assert_frame_equal(fast[key].reset_index(drop=True), slow[key].reset_index(drop=True))


def test_daily_arm_does_more_breakouts_and_gains_more_as_assumed(clinic):
    truth = clinic["truth"].groupby("assigned_schedule")
    assert truth["breakouts_per_week"].mean()["daily"] > 1.5 * truth["breakouts_per_week"].mean()["three-per-week"]
    assert truth["true_gain"].mean()["daily"] > truth["true_gain"].mean()["three-per-week"]


def test_trial_and_between_day_noise_match_the_stated_sem(clinic):
    from hipanalytics.synthetic import Assumptions

    a = Assumptions()
    m = clinic["measurements"]
    visits = m.groupby(["patient_id", "measured_on", "side", "position"])["degrees"]
    pooled = np.sqrt(visits.var().dropna().mean())  # the mean of within-visit variances estimates trial_sd^2
    assert pooled == pytest.approx(a.trial_sd, rel=0.1)
    # a baseline visit's mean errs by the between-day error plus the trial error averaged over 2-3 trials:
    # sqrt(1.6^2 + 2.0^2 (1/2 + 1/3) / 2) = 2.06 degrees, near the 1.95-degree SEM of Krause et al. 2015
    means = m[m["position"] == "seated_90"].groupby(["patient_id", "measured_on", "side"])["degrees"].mean().reset_index()
    first = means.sort_values("measured_on").drop_duplicates(["patient_id", "side"])
    true0 = clinic["true_ir"][clinic["true_ir"]["week"] == 0]
    error = first.merge(true0, on=["patient_id", "side"])
    assert len(error) >= 60  # every involved hip of the 60 patients
    expected = np.sqrt(a.day_sd ** 2 + a.trial_sd ** 2 * (1 / 2 + 1 / 3) / 2)
    assert (error["degrees"] - error["true_deg"]).std() == pytest.approx(expected, rel=0.12)


def test_measurement_values_pass_validation(clinic):
    buffer = io.StringIO(clinic["measurements"].to_csv(index=False))
    result = read_records(buffer, "measurements", today=date(2026, 11, 1))
    assert result.report.ok


def test_the_sample_readme_counts_the_rows_its_files_hold():
    """data/sample/README.md's table says how many rows each file has; where it gives a number it
    is the file's (for the workbook, its ROM sheet's), so the two never drift apart."""
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "data" / "sample"
    counted = dict(re.findall(r"^\| `([^`]+)` \| ([\d,]+) \|", (folder / "README.md").read_text(encoding="utf-8"),
                              flags=re.M))
    assert {"patients.csv", "clinic-export.xlsx", "truth.csv"} <= set(counted)
    for name, said in counted.items():
        path = folder / name
        frame = pd.read_excel(path, sheet_name="ROM") if path.suffix == ".xlsx" else pd.read_csv(path)
        assert len(frame) == int(said.replace(",", "")), f"data/sample/README.md says {name} has {said} rows"
