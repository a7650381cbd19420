"""Paths and defaults, in one place.

Nothing here is evaluated from the clock or the environment at import time: functions read the
environment when called, so tests and long-running apps see changes.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

__all__ = [
    "PACKAGE_DIR",
    "SHIPPED_PROTOCOLS_DIR",
    "PROTOCOLS_ENV",
    "default_reports_dir",
    "default_store",
    "protocol_dirs",
    "safe_filename",
]

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_PROTOCOLS_DIR = PACKAGE_DIR / "protocols"
PROTOCOLS_ENV = "HIPANALYTICS_PROTOCOLS"
"""Environment variable naming extra protocol folders (separated like PATH)."""


def protocol_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """Folders searched for protocol files, most specific first.

    Parameters
    ----------
    extra : list of str or Path, optional
        Folders given by the caller; searched first.

    Returns
    -------
    list of Path
        ``extra``, then the folders in ``$HIPANALYTICS_PROTOCOLS``, then the shipped protocols.

    Examples
    --------
    >>> protocol_dirs()[-1].name
    'protocols'
    """
    dirs = [Path(d) for d in (extra or [])]
    env = os.environ.get(PROTOCOLS_ENV, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d.strip()]
    dirs.append(SHIPPED_PROTOCOLS_DIR)
    return dirs


def default_reports_dir() -> Path:
    """Where generated output goes unless the caller says otherwise: ``./reports``."""
    return Path.cwd() / "reports"


STORE_ENV = "HIPANALYTICS_STORE"
"""Environment variable naming the default store (a SQLite path or a database URL)."""


def default_store() -> str:
    """The store used unless the caller names one: ``$HIPANALYTICS_STORE``, else ``./hipanalytics.sqlite``."""
    return os.environ.get(STORE_ENV) or str(Path.cwd() / "hipanalytics.sqlite")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(text: str, *, max_length: int = 80) -> str:
    """Turn an identifier (patient id, program id) into a safe file name part.

    Accents are folded to ASCII, anything but letters, digits, ``.``, ``_`` and ``-`` becomes
    ``_``, and leading dots are removed, so the result can never climb out of a folder
    (``../``), hide a file, or name a device.

    Parameters
    ----------
    text : str
        The identifier.
    max_length : int, default 80
        Longest result.

    Returns
    -------
    str
        A non-empty file name part.

    Examples
    --------
    >>> safe_filename("../../etc/passwd")
    'etc_passwd'
    >>> safe_filename("Zoë O'Neil / P-07")
    'Zoe_O_Neil_P-07'
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_text).strip("._-")
    cleaned = re.sub(r"_+", "_", cleaned)[:max_length].strip("._-")
    return cleaned or "unnamed"
