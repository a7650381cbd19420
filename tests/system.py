"""Optional system packages the tests use (chromium, a PostgreSQL server, R): found, or a loud skip.

Locally a missing package skips its tests with a loud reason; in CI (``CI=true``) it fails them,
because ``.ci/run`` installs it. With ``HIPANALYTICS_TEST_BARE=1`` the tests behave as on a
machine where ``.ci/run`` never ran: these packages count as absent even when installed (and even
under ``CI=true``), which is how ``.ci/run`` proves that ``make test`` passes without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

BARE_ENV = "HIPANALYTICS_TEST_BARE"


def require(found: str | None, what: str, how: str) -> str:
    """``found`` (a path or URL), or skip/fail loudly saying what is missing and how to get it."""
    if os.environ.get(BARE_ENV) == "1":
        pytest.skip(f"LOUD SKIP ({BARE_ENV}=1, as on a machine without optional system packages): {what}")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI: .ci/run must provide it ({how})")
    pytest.skip(f"LOUD SKIP: {what} is missing ({how})")


def chromium() -> str:
    """Debian's chromium, for the browser tests."""
    return require(shutil.which("chromium") or shutil.which("chromium-browser"), "chromium",
                   "apt-get install chromium")


POSTGRES_ENV = "HIPANALYTICS_TEST_POSTGRES"


def postgres_url() -> str:
    """The PostgreSQL server the store tests use."""
    return require(os.environ.get(POSTGRES_ENV), "a PostgreSQL server",
                   f"set {POSTGRES_ENV}=postgresql+psycopg://user@host:port/db; .ci/run starts one")


def rscript(packages: tuple[str, ...] = ("lme4", "lmerTest", "nlme")) -> str:
    """R's Rscript with ``packages`` (by default lme4, lmerTest and nlme, for the mixed-model
    cross-checks; survival for the Kaplan-Meier ones)."""
    found = shutil.which("Rscript")
    if found and subprocess.run([found, "-e", "; ".join(f"library({p})" for p in packages)],
                                capture_output=True).returncode != 0:
        found = None
    debian = " ".join(f"r-cran-{p.lower()}" for p in packages)
    return require(found, f"R with {', '.join(packages)}", f"apt-get install r-base-core {debian}")
