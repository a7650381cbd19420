"""The synthetic clinic: seeded, importable, and faithful to its stated assumptions."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest

from hipanalytics.program import Program, plan, plan_table
from hipanalytics.records import read_records
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic, write_clinic


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


def test_trial_noise_is_near_the_stated_sd(clinic):
    m = clinic["measurements"]
    spread = m.groupby(["patient_id", "measured_on", "side", "position"])["degrees"].std().dropna()
    assert 2.5 < spread.mean() < 4.5  # mean within-visit SD for trial noise SD 3.5


def test_measurement_values_pass_validation(clinic):
    buffer = io.StringIO(clinic["measurements"].to_csv(index=False))
    result = read_records(buffer, "measurements", today=date(2026, 11, 1))
    assert result.report.ok
