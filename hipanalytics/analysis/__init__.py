"""Analysis: pure functions, tidy DataFrame in, documented DataFrame out.

- :mod:`.rom`: visits, per-series ROM trends (slope with CI, MDC, plateau, asymmetry, target)
- :mod:`.adherence`: planned vs logged sessions, breakouts per week
- :mod:`.tolerance`: pain response and the repeated pain-rise flag
"""

from .adherence import adherence, adherence_summary, breakout_frequency
from .rom import MDC_DEFAULTS, SERIES_KEYS, mixed_series, rom_trends, visits
from .tolerance import PAIN_RISE_NPRS, pain_response, tolerance_flags

__all__ = [
    "MDC_DEFAULTS", "PAIN_RISE_NPRS", "SERIES_KEYS", "adherence", "adherence_summary", "breakout_frequency",
    "mixed_series", "pain_response", "rom_trends", "tolerance_flags", "visits",
]
