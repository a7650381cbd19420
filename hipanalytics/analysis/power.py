"""Power and sample size for the schedule trial, by simulation of the primary analysis itself.

Each simulated trial is a synthetic clinic (:func:`hipanalytics.synthetic.generate_clinic` with
``gain_model="arm"``): patients randomised 1:1, the schedule effect, spread, between-day noise,
drop-out and follow-up set by a :class:`Scenario`; the primary analysis
(:func:`hipanalytics.analysis.trial.primary_analysis`, with the generated patients' two sites as a
covariate, as the cohort report fits it) is fitted to it, and the power is the share
of trials whose two-sided p is below 0.05, with its Wilson 95 % CI. Trials are seeded one by one
(the same scenario and seed give the same table on any machine and any number of workers) and run
on worker processes.

The closed form beside it is the ANCOVA approximation (Borm et al., J Clin Epidemiol
2007;60:1234-1238): a two-sample t test (statsmodels ``TTestIndPower``) with the effect size
``d = effect / (sd_N sqrt(1 - rho^2))``, ``sd_N`` the SD of the week-N value within an arm and
``rho`` its correlation with baseline, both measured on a large generated sample of the scenario.
Without drop-out the primary analysis is asymptotically that ANCOVA (Liang & Zeger 2000), so the
two must agree there (``tests/analysis/test_power.py`` checks it); with drop-out the simulation
is the answer.

Examples
--------
>>> s = Scenario(effect=3.0, dropout=0.1)
>>> float(round(s.assumptions().true_effect(s.week), 6))
3.0
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from ..errors import HipAnalyticsError

__all__ = ["Scenario", "MECHANISMS", "mar_hazard", "closed_form_power", "simulate_power"]


@dataclass(frozen=True)
class Scenario:
    """What the trial is assumed to look like.

    Attributes
    ----------
    effect : float
        True difference in mean IR at week ``week``, daily minus 3x/week breakouts (degrees).
    sd : float
        Between-patient SD of baseline IR (degrees; 6 in the synthetic clinic).
    gain_sd : float
        Between-patient SD of the gain (degrees).
    day_sd : float
        Between-day (visit) measurement noise of one hip (degrees; 1.6 with the 2.0-degree trial
        error gives the 1.95-degree SEM of Krause et al. 2015).
    dropout : float
        Share of patients without a value at week ``week``.
    mechanism : {"MCAR", "MAR"}
        How patients drop out before week ``week``. ``"MCAR"``: at random visits, unrelated to the
        outcome (the power calculation's usual assumption). ``"MAR"``: after a visit whose observed
        gain is still under the MDC (no visible progress), with the same chance on either schedule,
        so more on the arm that gains less: missing at random given the observed IR, the
        assumption of the primary analysis. The chance per visit is calibrated on a generated
        sample so that ``dropout`` of the patients have no week-N value (:func:`mar_hazard`).
    week : int
        The week the primary analysis compares (even: visits are every 2 weeks).
    followup_weeks : int
        Program length.
    gain_three_per_week : float
        Plateau gain on 3x/week breakouts (degrees).
    both_hips : float
        Share of patients with both hips involved.
    """

    effect: float = 3.0
    sd: float = 6.0
    gain_sd: float = 4.0
    day_sd: float = 1.6
    dropout: float = 0.15
    mechanism: str = "MCAR"
    week: int = 6
    followup_weeks: int = 8
    gain_three_per_week: float = 7.0
    both_hips: float = 0.10

    def __post_init__(self):
        problems = []
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout {self.dropout} must be a share from 0 up to 1")
        if self.mechanism not in MECHANISMS:
            problems.append(f"mechanism {self.mechanism!r} must be one of {', '.join(MECHANISMS)}")
        if self.week < 2 or self.week % 2:
            problems.append(f"week {self.week} must be an even number of weeks, 2 or more (visits are 2-weekly)")
        if self.followup_weeks < self.week:
            problems.append(f"followup_weeks {self.followup_weeks} must be at least week {self.week}")
        if min(self.sd, self.gain_sd, self.day_sd) < 0:
            problems.append("standard deviations must not be negative")
        if not 0 <= self.both_hips <= 1:
            problems.append(f"both_hips {self.both_hips} must be a share from 0 to 1")
        if problems:
            raise HipAnalyticsError("power scenario: " + "; ".join(problems))

    def assumptions(self):
        """The generator's :class:`~hipanalytics.synthetic.Assumptions` for this scenario."""
        from ..synthetic import Assumptions

        base = Assumptions(gain_model="arm", gain_three_per_week=self.gain_three_per_week, baseline_sd=self.sd,
                           gain_sd=self.gain_sd, day_sd=self.day_sd, weeks_min=self.followup_weeks,
                           weeks_max=self.followup_weeks, both_share=self.both_hips,
                           dropout_pain=0.0, dropout_no_progress=0.0, dropout_no_progress_daily=0.0)
        # drop-out chances at the visits of weeks 2, 4, ..., week - 2 give the share without a week-N value
        chances = self.week // 2 - 1
        hazard = 1 - (1 - self.dropout) ** (1 / chances) if chances > 0 and self.dropout > 0 else 0.0
        if self.dropout > 0 and chances == 0:
            raise HipAnalyticsError(f"power scenario: no visit before week {self.week} at which to drop out; "
                                    "set dropout 0 or a later week")
        base = replace(base, dropout_base=hazard, arm_effect=self.effect / (1 - math.exp(-self.week / base.tau_weeks)))
        if self.mechanism == "MAR" and self.dropout > 0:
            h = mar_hazard(self)
            base = replace(base, dropout_base=0.0, dropout_no_progress=h, dropout_no_progress_daily=h,
                           no_progress_from_visit=1)
        return base


MECHANISMS = ("MCAR", "MAR")
"""The drop-out mechanisms a :class:`Scenario` can simulate."""


@functools.lru_cache(maxsize=32)
def mar_hazard(scenario: Scenario, patients: int = 1000, seed: int = 54321) -> float:
    """The chance of stopping after a visit without visible progress that leaves ``scenario.dropout``
    of the patients without a week-N value (bisection on a generated sample of ``patients``; seeded,
    within about 0.01 of the share).

    Raises
    ------
    HipAnalyticsError
        When even certain drop-out after every such visit leaves fewer patients without a week-N value.
    """
    from ..synthetic import generate_clinic
    from .cohort import cohort_visits
    from .trial import analysis_windows

    base = replace(scenario, mechanism="MCAR", dropout=0.0).assumptions()

    def share(h: float) -> float:
        a = replace(base, dropout_no_progress=h, dropout_no_progress_daily=h, no_progress_from_visit=1)
        clinic = generate_clinic(patients, seed=seed, assumptions=a)
        w = analysis_windows(cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"]), scenario.week)
        return 1 - w.loc[w["window"] == scenario.week, "patient_id"].nunique() / patients

    most = share(1.0)
    if most < scenario.dropout:
        raise HipAnalyticsError(f"power scenario: drop-out after visits without visible progress leaves at most "
                                f"{100 * most:.0f}% without a value at week {scenario.week}; give a dropout of at most "
                                f"{most:.2f} with mechanism MAR, or use MCAR")
    low, high = 0.0, 1.0
    for _ in range(8):
        mid = (low + high) / 2
        low, high = (mid, high) if share(mid) < scenario.dropout else (low, mid)
    return (low + high) / 2


def _trial(args) -> tuple[float, float, float, float, str, str]:
    """One simulated trial: the primary analysis's estimate, p, CI, a failure message and the
    covariance structure used."""
    import warnings

    from ..synthetic import generate_clinic
    from .cohort import cohort_visits
    from .trial import primary_analysis

    scenario, assumptions, per_arm, seed = args
    clinic = generate_clinic(2 * per_arm, seed=seed, assumptions=assumptions)
    visits = cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = primary_analysis(visits, scenario.week, sites=clinic["patients"].set_index("patient_id")["site"])
    except (HipAnalyticsError, np.linalg.LinAlgError) as exc:
        return np.nan, np.nan, np.nan, np.nan, str(exc), ""
    return result.estimate, result.p_value, result.ci_low, result.ci_high, "", result.covariance


def _wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return np.nan, np.nan
    z = 1.959964
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _ancova_inputs(scenario: Scenario, patients: int = 4000, seed: int = 12345) -> tuple[float, float]:
    """SD of the week-N value within arms and its correlation with baseline, from a large generated
    sample of the scenario without drop-out (patients' hips averaged, as the estimand does)."""
    from ..synthetic import generate_clinic
    from .cohort import cohort_visits
    from .trial import analysis_windows

    complete = replace(scenario, dropout=0.0).assumptions()
    clinic = generate_clinic(patients, seed=seed, assumptions=complete)
    w = analysis_windows(cohort_visits(clinic["measurements"], clinic["patients"], clinic["programs"]),
                         scenario.week)
    wide = w.groupby(["patient_id", "schedule", "window"])["degrees"].mean().unstack().dropna(subset=[0, scenario.week])
    centred = wide[[0, scenario.week]] - wide.groupby(level="schedule")[[0, scenario.week]].transform("mean")
    sd = float(centred[scenario.week].std(ddof=2))
    rho = float(np.corrcoef(centred[0], centred[scenario.week])[0, 1])
    return sd, rho


def closed_form_power(scenario: Scenario, per_arm, *, inputs: tuple[float, float] | None = None) -> np.ndarray:
    """Power of the baseline-adjusted comparison at week N by the ANCOVA approximation, without
    drop-out (see the module doc).

    Parameters
    ----------
    inputs : (sd_N, rho), optional
        Measured by a large generated sample of the scenario when not given.
    """
    from statsmodels.stats.power import TTestIndPower

    sd, rho = inputs or _ancova_inputs(scenario)
    d = scenario.effect / (sd * math.sqrt(1 - rho ** 2))
    solver = TTestIndPower()
    return np.array([solver.power(effect_size=d, nobs1=n, alpha=0.05, ratio=1.0) for n in np.atleast_1d(per_arm)])


def simulate_power(scenario: Scenario, per_arm, *, trials: int = 200, seed: int = 1, workers: int | None = None,
                   progress: bool = True, closed_form: bool = True) -> pd.DataFrame:
    """Power of the primary analysis for each number of patients per arm, by simulation.

    Parameters
    ----------
    scenario : Scenario
    per_arm : sequence of int
        Patients per arm to try.
    trials : int
        Simulated trials per sample size (200 gives the power within about +/- 0.06).
    seed : int
        Trials are seeded from (seed, per_arm, trial number): the same table on every machine.
    workers : int, optional
        Worker processes (default: every core); 1 runs in this process.
    progress : bool
        Show a progress bar (on stderr).
    closed_form : bool
        Add the closed form (ANCOVA approximation, ``closed_form`` column).

    Returns
    -------
    DataFrame
        One row per sample size: ``per_arm``, ``trials``, ``failed`` (trials whose primary analysis
        could not be fitted), ``power`` (significant trials over all trials: a failed analysis is a
        trial that showed nothing, as it would be in the study), ``ci_low``, ``ci_high`` (Wilson), ``mean_estimate``, ``coverage`` (share of CIs holding the true
        effect), ``covariance_used`` (how many trials' primary analysis used each covariance structure
        of the pre-specified order), ``closed_form``; ``attrs["scenario"]`` holds the scenario.
    """
    import os
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from .trial import covariance_words

    sizes = [int(n) for n in np.atleast_1d(per_arm)]
    if not sizes or min(sizes) < 4:
        raise HipAnalyticsError("power: give sample sizes of at least 4 patients per arm")
    if trials < 1:
        raise HipAnalyticsError("power: trials must be at least 1")
    assumptions = scenario.assumptions()  # once: a MAR scenario calibrates its drop-out here, not in every worker
    jobs = [(scenario, assumptions, n, int(np.random.SeedSequence([seed, n, k]).generate_state(1)[0]))
            for n in sizes for k in range(trials)]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="simulated trials", disable=not progress, unit="trial")
    results = []
    if workers == 1:
        for job in jobs:
            results.append(_trial(job))
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(_trial, jobs, chunksize=max(1, len(jobs) // (workers * 20))):
                results.append(result)
                bar.update()
    bar.close()
    frame = pd.DataFrame(results, columns=["estimate", "p_value", "ci_low", "ci_high", "error", "covariance"])
    frame["per_arm"] = [job[2] for job in jobs]
    rows = []
    for n, group in frame.groupby("per_arm", sort=True):
        ok = group[group["error"] == ""]
        significant = int((ok["p_value"] < 0.05).sum())  # a trial whose analysis failed showed no effect
        low, high = _wilson(significant, len(group))
        covered = ((ok["ci_low"] <= scenario.effect) & (scenario.effect <= ok["ci_high"])).mean() if len(ok) else np.nan
        rows.append({"per_arm": n, "trials": len(group), "failed": len(group) - len(ok),
                     "power": significant / len(group), "ci_low": low, "ci_high": high,
                     "mean_estimate": ok["estimate"].mean(), "coverage": covered,
                     "covariance_used": "; ".join(f"{covariance_words(k)} {v}"
                                                  for k, v in ok["covariance"].value_counts().items())})
    out = pd.DataFrame(rows)
    out["closed_form"] = closed_form_power(scenario, out["per_arm"]) if closed_form else np.nan
    out.attrs["scenario"] = asdict(scenario)
    return out
