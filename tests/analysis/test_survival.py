"""Kaplan-Meier against R's survival::survfit, and the time to a first pain rise on a hand-built log."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from hipanalytics.analysis.survival import kaplan_meier, median_time
from hipanalytics.analysis.trial import harms_by_arm, time_to_first_rise

from ..system import rscript

# ties, censoring at an event time, censoring after the last event, an event in the last subject
TIMES = [3, 5, 5, 5, 8, 8, 11, 12, 12, 15, 20, 22, 22, 30]
EVENTS = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0]


def test_kaplan_meier_matches_r_survfit_at_every_event_time():
    executable = rscript(("survival",))
    script = (f"library(survival); f <- survfit(Surv(c({','.join(map(str, TIMES))}), c({','.join(map(str, EVENTS))})) ~ 1); "
              "s <- summary(f); cat(paste(s$time, s$n.risk, s$n.event, s$surv, s$std.err, s$lower, s$upper, "
              "collapse = '\\n', sep = ','), '\\n'); cat('median', s$table[['median']], '\\n')")
    out = subprocess.run([executable, "-e", script], capture_output=True, text=True, check=True).stdout.split("\n")
    r = np.array([[float(x) for x in line.split(",")] for line in out if line.strip() and not line.startswith("median")])
    r_median = float(next(line for line in out if line.startswith("median")).split()[1])
    km = kaplan_meier(TIMES, np.array(EVENTS, dtype=bool))
    ours = km[["time", "at_risk", "events", "survival", "std_error", "ci_low", "ci_high"]].to_numpy()
    assert ours.shape == r.shape
    np.testing.assert_allclose(ours, r, rtol=1e-6, equal_nan=True)
    assert median_time(km) == r_median


def test_kaplan_meier_by_hand_with_a_curve_that_reaches_zero():
    km = kaplan_meier([1, 2, 3], [True, True, True])
    assert km["survival"].round(4).tolist() == [0.6667, 0.3333, 0.0]
    assert np.isnan(km["std_error"].iloc[-1]) and np.isnan(km["ci_low"].iloc[-1])  # as R: undefined at S = 0
    assert km["censored"].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="differ in length"):
        kaplan_meier([1, 2], [True])


def test_time_to_first_rise_counts_days_from_time_zero_and_censors_at_the_last_logged_session():
    programs = pd.DataFrame([{"program_id": f"{p}-1", "patient_id": p, "protocol_id": "hip-ir-breakouts",
                              "protocol_version": "1.0.0", "schedule": s, "start_date": pd.Timestamp("2026-01-05"),
                              "end_date": pd.Timestamp("2026-02-15")} for p, s in (("D", "daily"), ("T", "three-per-week"))])
    table = pd.DataFrame({"patient_id": ["D", "T", "N"], "arm": ["daily", "three-per-week", "daily"],
                          "switched": False, "dropped_out": False, "breakouts_planned_per_week": 7.0,
                          "breakouts_done_per_week": 7.0, "assigned_adherence": 1.0,
                          # time zero: D's program start; T was allocated 2 days before his program began
                          "time_zero": pd.to_datetime(["2026-01-05", "2026-01-03", "2026-01-05"])})

    def log(pid, rows):
        return [{"patient_id": pid, "performed_on": pd.Timestamp("2026-01-05") + pd.Timedelta(days=d),
                 "session": "breakouts", "completion": "full", "pain_before": b, "pain_after": a} for d, b, a in rows]

    sessions = pd.DataFrame(log("D", [(0, 2, 3), (1, 2, 3), (4, 2, 4), (6, 2, 5)])  # first rise of 2 on day 4
                            + log("T", [(0, 2, 3), (2, 3, 4), (9, 2, 3)]))  # none: censored on day 9 + 2
    times = time_to_first_rise(table, sessions, programs).set_index("patient_id")
    assert times.to_dict("index") == {"D": {"arm": "daily", "days": 4.0, "event": True},
                                      "T": {"arm": "three-per-week", "days": 11.0, "event": False}}
    # N logged no session: no follow-up of pain, left out (not censored at 0)
    harms = harms_by_arm(table[table["patient_id"] != "N"], sessions, programs).set_index("measure")
    row = harms.loc[[m for m in harms.index if m.startswith("first pain rise")][0]]
    assert row.to_dict() == {"daily": "1 of 1; median 4 days", "three-per-week": "0 of 1; median not reached"}
