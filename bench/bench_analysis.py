"""Benchmark: clinic-wide trend, adherence and tolerance tables for the 10,000-patient synthetic
clinic, next to a naive per-patient loop over the same functions; and the mixed model on 2,000 patients.

The naive loop is timed on a random sample of patients (default 300) and scaled to the whole
clinic; the printed figure says so. Targets (issue 4): vectorised at least 20x faster than the
loop, and under 5 s.

Run: .venv/bin/python bench/bench_analysis.py [N_PATIENTS] [LOOP_SAMPLE]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from hipanalytics.analysis import adherence_summary, cohort_visits, mixed_model, rom_trends, tolerance_flags
from hipanalytics.synthetic import generate_clinic


def best_of(func, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        times.append(time.perf_counter() - start)
    return value, min(times)


def main(n_patients: int = 10_000, sample: int = 300) -> None:
    clinic = generate_clinic(n_patients, seed=1)
    m = clinic["measurements"].assign(measured_on=lambda d: pd.to_datetime(d["measured_on"]))
    s = clinic["sessions"].assign(performed_on=lambda d: pd.to_datetime(d["performed_on"]))
    patients, programs = clinic["patients"], clinic["programs"]
    print(f"synthetic clinic: {n_patients:,} patients, {len(m):,} measurement rows, {len(s):,} session rows")

    def vectorised():
        return rom_trends(m, patients=patients), adherence_summary(programs, s)

    (trends, adh), t_vec = best_of(vectorised)
    flags, t_flags = best_of(lambda: tolerance_flags(s, programs))

    ids = np.random.default_rng(0).choice(patients["patient_id"].to_numpy(), size=min(sample, n_patients), replace=False)
    by_m, by_s, by_p = (dict(tuple(df.groupby("patient_id"))) for df in (m, s, programs))
    empty_s = s.iloc[0:0]

    def loop():
        for pid in ids:
            rom_trends(by_m[pid], patients=patients[patients["patient_id"] == pid])
            adherence_summary(by_p[pid], by_s.get(pid, empty_s))

    def flags_loop():
        for pid in ids:
            tolerance_flags(by_s.get(pid, empty_s), by_p[pid])

    _, t_sample = best_of(loop, repeats=1)
    t_loop = t_sample * n_patients / len(ids)
    _, t_flags_sample = best_of(flags_loop, repeats=1)
    t_flags_loop = t_flags_sample * n_patients / len(ids)
    print(f"  vectorised trends + adherence, all patients      {t_vec:8.2f} s   target < 5 s")
    print(f"  naive per-patient loop (timed on {len(ids)}, scaled) {t_loop:8.2f} s")
    print(f"  speed-up                                          {t_loop / t_vec:8.1f}x   target >= 20x")
    print(f"  ({len(trends):,} series, {len(adh):,} patients)")
    print(f"  vectorised tolerance flags (episodes, 4 rules)    {t_flags:8.2f} s")
    print(f"  naive per-patient loop (timed on {len(ids)}, scaled) {t_flags_loop:8.2f} s   "
          f"{t_flags_loop / t_flags:.1f}x  ({(flags['status'] == 'flag').sum():,} of {len(flags):,} patients flagged)")

    mm_n = min(2000, n_patients)
    keep = set(patients["patient_id"].iloc[:mm_n])
    v = cohort_visits(m[m["patient_id"].isin(keep)], patients[patients["patient_id"].isin(keep)],
                      programs[programs["patient_id"].isin(keep)])
    table, t_mm = best_of(lambda: mixed_model(v), repeats=1)
    print(f"  mixed model, {mm_n:,} patients ({len(v):,} visits, random {table['random_effects'].iloc[0]})"
          f"   {t_mm:8.2f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
