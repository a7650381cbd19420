"""Numbers as the reader sees them: one rounding rule everywhere, never a negative zero.

Reports, apps and tables round half away from zero (39.5 -> 40, -0.5 -> -1, as people round,
not Python's round-half-to-even), and a sentence that compares two numbers compares the rounded
numbers it prints (:func:`to_gain`), so what it says always matches what it shows.

Examples
--------
>>> whole(39.5), whole(-0.4), signed(-0.4), signed(3.2), fixed(2.345, 1)
('40', '0', '0', '+3', '2.3')
>>> to_gain(39.73, 39.5), to_gain(39.73, 39.4)
(0, 1)
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["rounded", "whole", "fixed", "signed", "difference", "to_gain", "p_value", "percent"]


def _missing(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def rounded(x: float, digits: int = 0) -> float:
    """``x`` rounded half away from zero to ``digits`` decimals, with -0.0 made 0.0.

    Examples
    --------
    >>> rounded(2.5), rounded(-2.5), rounded(0.125, 2), rounded(-0.2)
    (3.0, -3.0, 0.13, 0.0)
    """
    value = float(Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    return value + 0.0 if value != 0 else 0.0


def fixed(x, digits: int = 1, missing: str = "") -> str:
    """``x`` with ``digits`` decimals (half away from zero), never ``-0``; ``missing`` for NaN/None."""
    if _missing(x):
        return missing
    return f"{rounded(x, digits):.{digits}f}"


def whole(x, missing: str = "") -> str:
    """``x`` as a whole number (half away from zero), never ``-0``."""
    return fixed(x, 0, missing)


def signed(x, digits: int = 0, missing: str = "") -> str:
    """``x`` with its sign (``+3``, ``-2``); zero has none."""
    if _missing(x):
        return missing
    value = rounded(x, digits)
    return f"{value:+.{digits}f}" if value != 0 else f"{0:.{digits}f}"


def difference(a, b, digits: int = 1) -> float | None:
    """``a - b`` as a reader computes it from the two numbers printed with ``digits`` decimals, so
    "from 16.4 to 18.5 (+2.1)" always adds up; None when either is missing.

    Examples
    --------
    >>> difference(18.46, 16.44), difference(18.46, 16.44, 0), difference(None, 3)
    (2.1, 2.0, None)
    """
    if _missing(a) or _missing(b):
        return None
    return rounded(rounded(a, digits) - rounded(b, digits), digits)


def to_gain(target, latest, digits: int = 0) -> float | None:
    """Degrees still to gain to reach ``target`` from ``latest``, computed from the numbers a reader
    sees (rounded to ``digits`` decimals; 0 once reached); None when either is missing."""
    gap = difference(target, latest, digits)
    if gap is None:
        return None
    return max(gap, 0.0) if digits else int(max(gap, 0))


def p_value(p, missing: str = "") -> str:
    """A p-value to two significant digits; ``<0.001`` below that.

    Examples
    --------
    >>> p_value(0.0412), p_value(0.00012), p_value(0.5), p_value(0.0999)
    ('0.041', '<0.001', '0.50', '0.10')
    """
    if _missing(p):
        return missing
    if p < 0.001:
        return "<0.001"
    digits = max(2 - int(math.floor(math.log10(abs(p)))) - 1, 2)
    text = f"{rounded(p, digits):.{digits}f}"
    if len(text.replace("0.", "", 1).lstrip("0")) > 2 and digits > 2:  # 0.0999 -> 0.10
        text = f"{rounded(p, digits - 1):.{digits - 1}f}"
    return text


def percent(share, missing: str = "") -> str:
    """A share (0-1) as a whole percentage, e.g. ``73%``."""
    return missing if _missing(share) else f"{whole(100 * float(share))}%"
