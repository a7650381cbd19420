"""Analysis: pure functions, tidy DataFrame in, documented DataFrame out."""

from .rom import MDC_DEFAULTS, SERIES_KEYS, mixed_series, rom_trends, visits

__all__ = ["MDC_DEFAULTS", "SERIES_KEYS", "mixed_series", "rom_trends", "visits"]
