"""Analysis: pure functions, tidy DataFrame in, documented DataFrame out.

- :mod:`.rom`: visits, per-series ROM trends (slope with CI, MDC, recent trend in words,
  asymmetry, target)
- :mod:`.adherence`: planned vs logged sessions, breakouts per week
- :mod:`.episodes`: episodes of care (programs grouped by gaps and discharges)
- :mod:`.tolerance`: pain response and the tolerance flags (large rise, high pain, repeated rises,
  pain not settled by the next morning)
- :mod:`.cohort`: per-patient outcomes, group comparison, mixed model of the weekly gain,
  dose-response, Table 1
- :mod:`.trial`: the trial analysis: estimand, primary analysis (cLDA/MMRM), sensitivity analyses
  for missing data, per protocol, as treated and the complier average, secondary outcomes,
  CONSORT flow, harms
- :mod:`.imputation`: multiple imputation of repeated measures (data augmentation, jump to
  reference) and Rubin's rules (used by the trial analysis)
- :mod:`.weighting`: propensity scores, overlap and stabilised weights, the doubly robust AIPW
  estimate, balance, effective sample size and positivity for an observational comparison
- :mod:`.survival`: Kaplan-Meier (time to the first pain rise)
- :mod:`.mixed`: linear mixed models with lme4/lmerTest inference and MMRM covariance structures
  (used by the trial and cohort analyses)
- :mod:`.power`: power and sample size by simulation of the primary analysis
"""

from .cohort import (
    compare_groups,
    cohort_visits,
    dose_response,
    mixed_model,
    patient_outcomes,
    table_one,
)
from .adherence import adherence, adherence_summary, breakout_frequency
from .episodes import EPISODE_GAP_DAYS, episodes_of_care, program_episodes
from .rom import MDC_DEFAULTS, PRIMARY_METHOD, SERIES_KEYS, mixed_series, rom_trends, select_method, visits
from .tolerance import PAIN_RISE_NPRS, pain_response, tolerance_flags

__all__ = [
    "EPISODE_GAP_DAYS", "episodes_of_care", "program_episodes", "MDC_DEFAULTS", "PAIN_RISE_NPRS", "PRIMARY_METHOD", "select_method", "SERIES_KEYS", "adherence", "adherence_summary", "breakout_frequency",
    "mixed_series", "pain_response", "rom_trends", "tolerance_flags", "visits", "compare_groups", "cohort_visits",
    "dose_response", "mixed_model", "patient_outcomes", "table_one",
]
