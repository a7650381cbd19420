"""Simulation: bias and CI coverage of the primary analysis against its missing-data alternatives.

Generated trials (``hipanalytics.synthetic``, ``gain_model="arm"``: a known schedule effect) with
informative drop-out: pain-driven drop-out of patients whose pain rises after daily breakouts, and
drop-out after a visit that shows no progress (observed gain under the MDC), more often on daily
breakouts. Drop-out depends only on what was observed (missing at random), so the primary
analysis (cLDA/MMRM on every visit) should be unbiased with 93-97 % coverage, multiple imputation
too, and the complete-case ANCOVA biased: the daily patients who stay are the ones who improved.

For each method it prints, side by side: mean bias (with its Monte Carlo SE), empirical SE,
mean model SE, coverage of the 95 % CI (with its Monte Carlo SE). Seeded; uses every core.

Run: .venv/bin/python bench/bench_trial_simulation.py [TRIALS] [PATIENTS]   (default 300 trials of 120)
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from hipanalytics.analysis.cohort import cohort_visits
from hipanalytics.analysis.trial import ancova, multiple_imputation_ancova, primary_analysis, trial_patients
from hipanalytics.synthetic import Assumptions, generate_clinic

WEEK = 6
SCENARIO = Assumptions(gain_model="arm", arm_effect=3.0, gain_sd=5.0, pain_responder_share=0.3, dropout_pain=0.3,
                       dropout_no_progress=0.1, dropout_no_progress_daily=0.6)
METHODS = ["primary: cLDA (MMRM), all visits", "MI ANCOVA (20 imputations)", "complete-case ANCOVA"]


def one_trial(args):
    seed, patients = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clinic = generate_clinic(patients, seed=seed, assumptions=SCENARIO)
        visits = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
        primary = primary_analysis(visits, WEEK)
        table = trial_patients(clinic["patients"], clinic["programs"], visits, clinic["sessions"], week=WEEK,
                               threshold=0.7)
        mi = multiple_imputation_ancova(visits, table, WEEK, imputations=20, seed=seed)
        cc = ancova(table)
    rows = [(primary.estimate, primary.std_error, primary.ci_low, primary.ci_high),
            (mi["estimate"], mi["std_error"], mi["ci_low"], mi["ci_high"]),
            (cc["estimate"], cc["std_error"], cc["ci_low"], cc["ci_high"])]
    return rows, float(table["week_deg"].isna().mean())


def main(trials: int = 300, patients: int = 120) -> None:
    truth = SCENARIO.true_effect(WEEK)
    workers = os.cpu_count() or 1
    print(f"{trials} trials of {patients} patients, true effect at week {WEEK}: {truth:.3f} degrees; "
          f"{workers} worker processes")
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(one_trial, [(1000 + k, patients) for k in range(trials)], chunksize=4))
    elapsed = time.perf_counter() - started
    missing = np.mean([r[1] for r in results])
    print(f"patients without a week-{WEEK} value: {100 * missing:.1f}% on average; {elapsed:.0f} s")
    print(f"{'method':36} {'bias':>7} {'(MC SE)':>8} {'emp SE':>7} {'model SE':>9} {'coverage':>9} {'(MC SE)':>8}")
    for k, name in enumerate(METHODS):
        e = np.array([r[0][k] for r in results], dtype=float)
        ok = ~np.isnan(e[:, 0])
        e = e[ok]
        bias = e[:, 0].mean() - truth
        covered = (e[:, 2] <= truth) & (truth <= e[:, 3])
        coverage = covered.mean()
        print(f"{name:36} {bias:+7.3f} {e[:, 0].std(ddof=1) / np.sqrt(len(e)):8.3f} {e[:, 0].std(ddof=1):7.3f} "
              f"{e[:, 1].mean():9.3f} {100 * coverage:8.1f}% {100 * np.sqrt(coverage * (1 - coverage) / len(e)):7.1f}%"
              + ("" if ok.all() else f"  ({(~ok).sum()} trials failed)"))
    print("Targets (issue 13): primary coverage 93-97% with bias near zero; complete-case visibly biased.")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
