"""Simulation: bias and CI coverage of the primary analysis against its alternatives, by scenario.

Generated trials (``hipanalytics.synthetic``, ``gain_model="arm"``: a known schedule effect), three
scenarios:

- ``mar``: randomised, informative drop-out that depends only on what was observed (pain rises
  after daily breakouts; a visit that shows no progress, more often on daily): the primary
  analysis (cLDA/MMRM) and MI should be unbiased with 93-97 % coverage, complete cases biased.
- ``mnar``: as ``mar`` plus drop-out of daily patients whose *future* gain stays under the MDC
  (``dropout_future``; not observed): every MAR analysis is biased upward, jump to reference less
  so; the tipping point (daily arm) is printed beside the true departure from MAR of the missing
  week-6 values (their true mean minus the MAR-imputed mean), and the share of trials whose true
  departure reaches their tipping shift (where the MAR conclusion is overturned by the real drop-out:
  near 0 under MAR, more under MNAR, which is what the tipping point warns of).
- ``observational``: no allocation, the clinician chooses (older patients, patients who score more
  pain before the first session and the south site get 3x/week more often) and age, pain and site
  also move the gain (confounding by indication; the choice follows the recorded score, the gain
  the patient's pain level it measures with error): the
  unadjusted primary analysis is biased; the confounding-adjusted estimates after MI (adjusted for
  baseline IR, age, baseline pain, sex, side and site): the overlap-weighted ANCOVA, the ANCOVA
  weighted by stabilised IPT weights and the doubly robust AIPW, should not be. (Pain-rise
  responders then move from daily to 3x/week: a switch after time zero, part of the strategy
  "start daily" under the treatment policy, not a baseline confounder.)

For each method it prints, side by side: mean bias (with its Monte Carlo SE), empirical SE, mean
model SE, coverage of the 95 % CI (with its Monte Carlo SE). Seeded; uses every core.

Run: .venv/bin/python bench/bench_trial_simulation.py [TRIALS] [PATIENTS] [SCENARIO ...]
(default 300 trials of 120, every scenario)
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from hipanalytics.analysis.cohort import cohort_visits
from hipanalytics.analysis.trial import (ancova, impute_windows, primary_analysis, tipping_point, trial_patients,
                                         weighted_analysis)
from hipanalytics.analysis.weighting import baseline_covariates
from hipanalytics.errors import HipAnalyticsError
from hipanalytics.synthetic import Assumptions, generate_clinic

WEEK = 6
MAR = Assumptions(gain_model="arm", arm_effect=3.0, gain_sd=5.0, pain_responder_share=0.3, dropout_pain=0.3,
                  dropout_no_progress=0.1, dropout_no_progress_daily=0.6)
SCENARIOS = {
    "mar": MAR,
    "mnar": replace(MAR, dropout_future=0.25),
    "observational": replace(MAR, allocation="by indication", indication_intercept=-0.4, indication_age=-0.08,
                             indication_site=1.0, indication_pain=-0.5, age_gain=-0.15, site_gain=1.5,
                             pain_gain=-0.6),
}
METHODS = ["primary: cLDA (MMRM), all visits", "MI ANCOVA (MAR, 20 imputations)", "MI ANCOVA, jump to reference",
           "complete-case ANCOVA", "overlap-weighted ANCOVA after MI", "stabilised-IPTW ANCOVA after MI",
           "doubly robust AIPW after MI"]
ADJUSTED = ("overlap", "stabilised", "aipw")


def one_trial(args):
    name, seed, patients = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clinic = generate_clinic(patients, seed=seed, assumptions=SCENARIOS[name])
        visits = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
        primary = primary_analysis(visits, WEEK, sites=clinic["patients"].set_index("patient_id")["site"])
        table = trial_patients(clinic["patients"], clinic["programs"], visits, clinic["sessions"], week=WEEK,
                               threshold=0.7)
        imputed = impute_windows(visits, table, WEEK, imputations=20, seed=seed)
        mi = imputed.ancova()
        j2r = impute_windows(visits, table, WEEK, imputations=20, seed=seed, jump_to_reference=True).ancova()
        cc = ancova(table)
        tipped = imputed.ancova
        try:
            result = weighted_analysis(imputed, baseline_covariates(clinic["patients"], clinic["programs"],
                                                                    clinic["sessions"]))
            weighted = result["methods"]
            if SCENARIOS[name].allocation != "random":  # as the report: the adjusted conclusion is the one tipped
                tipped = result["overlap"]
        except HipAnalyticsError:  # counted as a failed trial
            weighted = {key: dict.fromkeys(("estimate", "std_error", "ci_low", "ci_high"), np.nan) for key in ADJUSTED}
        _, tip = tipping_point(imputed, deltas=np.array([-10.0, 10.0]), analysis=tipped)
    # the true departure from MAR: true week-6 IR of the daily patients missing then, minus their imputed mean
    true = clinic["true_ir"][clinic["true_ir"]["week"] == WEEK].groupby("patient_id")["true_deg"].mean()
    ids = table.set_index("patient_id").index[table.set_index("patient_id")["arm"].isin(["daily", "three-per-week"])]
    kept = [i for i in ids if i in set(visits["patient_id"])]
    gone = imputed.missing[:, -1] & (imputed.daily == 1)
    missing_ids = np.array(sorted(kept))[gone] if len(kept) == len(gone) else np.array([])
    departure = (float(true.reindex(missing_ids).mean() - imputed.values[:, gone, -1].mean())
                 if len(missing_ids) else np.nan)
    rows = [(primary.estimate, primary.std_error, primary.ci_low, primary.ci_high),
            (mi["estimate"], mi["std_error"], mi["ci_low"], mi["ci_high"]),
            (j2r["estimate"], j2r["std_error"], j2r["ci_low"], j2r["ci_high"]),
            (cc["estimate"], cc["std_error"], cc["ci_low"], cc["ci_high"]),
            *((weighted[k]["estimate"], weighted[k]["std_error"], weighted[k]["ci_low"], weighted[k]["ci_high"])
              for k in ADJUSTED)]
    return rows, float(table["week_deg"].isna().mean()), primary.covariance, tip["daily"], departure


def main(trials: int = 300, patients: int = 120, scenarios=tuple(SCENARIOS)) -> None:
    workers = os.cpu_count() or 1
    for name in scenarios:
        truth = SCENARIOS[name].true_effect(WEEK)
        print(f"\n== {name}: {trials} trials of {patients} patients, true effect at week {WEEK}: {truth:.3f} degrees; "
              f"{workers} worker processes")
        started = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(one_trial, [(name, 1000 + k, patients) for k in range(trials)], chunksize=4))
        elapsed = time.perf_counter() - started
        missing = np.mean([r[1] for r in results])
        used = {c: sum(r[2] == c for r in results) for c in dict.fromkeys(r[2] for r in results)}
        print(f"patients without a week-{WEEK} value: {100 * missing:.1f}% on average; {elapsed:.0f} s; "
              "primary covariance used: " + ", ".join(f"{c} {k}" for c, k in used.items()))
        print(f"{'method':36} {'bias':>7} {'(MC SE)':>8} {'emp SE':>7} {'model SE':>9} {'coverage':>9} {'(MC SE)':>8}")
        for k, method in enumerate(METHODS):
            e = np.array([r[0][k] for r in results], dtype=float)
            ok = ~np.isnan(e[:, 0])
            e = e[ok]
            bias = e[:, 0].mean() - truth
            coverage = ((e[:, 2] <= truth) & (truth <= e[:, 3])).mean()
            print(f"{method:36} {bias:+7.3f} {e[:, 0].std(ddof=1) / np.sqrt(len(e)):8.3f} {e[:, 0].std(ddof=1):7.3f} "
                  f"{e[:, 1].mean():9.3f} {100 * coverage:8.1f}% {100 * np.sqrt(coverage * (1 - coverage) / len(e)):7.1f}%"
                  + ("" if ok.all() else f"  ({(~ok).sum()} trials failed)"))
        tips = np.array([r[3] for r in results], dtype=float)
        departures = np.array([r[4] for r in results], dtype=float)
        both = np.isfinite(tips) & np.isfinite(departures)
        passed = (np.sign(departures[both]) == np.sign(tips[both])) & (np.abs(departures[both]) >= np.abs(tips[both]))
        print(f"tipping shift of the daily arm (median over trials that tip within 10 degrees; the "
              f"{'overlap-weighted' if SCENARIOS[name].allocation != 'random' else 'MI ANCOVA'} conclusion): "
              f"{np.nanmedian(tips):+.1f} degrees ({np.isfinite(tips).sum()} of {len(tips)} tip); true departure "
              f"from MAR of the daily arm's missing week-{WEEK} values: {np.nanmean(departures):+.2f} degrees "
              f"(median {np.nanmedian(departures):+.2f}); trials whose true departure reaches their tipping shift "
              f"(the MAR conclusion overturned by the real drop-out): {100 * passed.mean():.1f}% of {both.sum()}")
    print("Targets (issue 21): mar: primary and MI coverage 93-97% with bias near zero, complete cases biased; "
          "mnar: MAR methods biased, the departure negative; observational: the unadjusted primary biased, the adjusted ones unbiased with ~95% coverage.")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]), *([tuple(sys.argv[3:])] if sys.argv[3:] else []))
