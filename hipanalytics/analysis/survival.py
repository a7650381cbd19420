"""Time to an event: the Kaplan-Meier estimate with Greenwood's variance, as R's ``survival``.

Used for the time to a patient's first pain rise after breakouts (:func:`hipanalytics.analysis.trial.time_to_first_rise`):
counts alone compare arms with different numbers of sessions; the time to the first event, with
patients censored at the end of their logged follow-up, does not.

Examples
--------
>>> km = kaplan_meier([2, 3, 3, 5, 8], [True, True, False, True, False])
>>> km[["time", "at_risk", "events", "survival"]].round(3).values.tolist()
[[2.0, 5.0, 1.0, 0.8], [3.0, 4.0, 1.0, 0.6], [5.0, 2.0, 1.0, 0.3]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["kaplan_meier", "median_time"]


def kaplan_meier(time, event, *, level: float = 0.95) -> pd.DataFrame:
    """The Kaplan-Meier survival curve at each event time.

    Parameters
    ----------
    time : array-like
        Follow-up times (any unit), one per subject.
    event : array-like of bool
        True when the event happened at ``time``, False when the subject was censored then.
    level : float
        Confidence level of the pointwise interval.

    Returns
    -------
    DataFrame
        ``time``, ``at_risk``, ``events``, ``censored`` (after the previous event time, up to
        this one), ``survival``, ``std_error`` (of the survival, Greenwood), ``ci_low``,
        ``ci_high`` (R's default ``conf.type = "log"``: a CI for log S, capped at 1). Empty when
        no event happened.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=bool)
    if len(t) != len(e):
        raise ValueError(f"time and event differ in length: {len(t)} and {len(e)}")
    times = np.unique(t[e])
    at_risk = np.array([(t >= s).sum() for s in times], dtype=float)
    events = np.array([(e & (t == s)).sum() for s in times], dtype=float)
    before = np.concatenate([[-np.inf], times[:-1]])
    censored = np.array([(~e & (t >= lo) & (t < s)).sum() for lo, s in zip(before, times)], dtype=float)
    survival = np.cumprod(1 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))  # var(log S)
    se_log = np.sqrt(greenwood)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore"):  # once every subject at risk had the event: S = 0, no SE or CI (as R)
        se = np.where(survival > 0, survival * se_log, np.nan)
        low = np.where(survival > 0, survival * np.exp(-z * se_log), np.nan)
        high = np.where(survival > 0, np.minimum(survival * np.exp(z * se_log), 1.0), np.nan)
    return pd.DataFrame({"time": times, "at_risk": at_risk, "events": events, "censored": censored,
                         "survival": survival, "std_error": se, "ci_low": low, "ci_high": high})


def median_time(curve: pd.DataFrame) -> float:
    """The median time to the event, as R's ``survfit`` prints it: the first time the survival is
    0.5 or less; when it is exactly 0.5 until a later event, the midpoint of that interval. NaN
    when the curve never falls that low.

    Examples
    --------
    >>> median_time(kaplan_meier([2, 3, 3, 5, 8], [True, True, False, True, False]))
    5.0
    >>> median_time(kaplan_meier([1, 2, 3, 4], [True, True, True, False]))  # 0.5 from 2 to 3
    2.5
    >>> median_time(kaplan_meier([2, 3, 9], [True, False, False]))
    nan
    """
    below = np.flatnonzero(curve["survival"].to_numpy() <= 0.5 + 1e-12)
    if not len(below):
        return float("nan")
    first, times = below[0], curve["time"].to_numpy()
    if abs(curve["survival"].iloc[first] - 0.5) < 1e-12 and first + 1 < len(times):
        return float((times[first] + times[first + 1]) / 2)
    return float(times[first])
