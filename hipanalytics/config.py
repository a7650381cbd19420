"""Paths and defaults, in one place.

Nothing here is evaluated from the clock or the environment at import time: functions read the
environment when called, so tests and long-running apps see changes.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from importlib import resources
from pathlib import Path

__all__ = [
    "PACKAGE_DIR",
    "notebooks_dir",
    "notebook_path",
    "package_folder",
    "SHIPPED_PROTOCOLS_DIR",
    "PROTOCOLS_ENV",
    "default_reports_dir",
    "default_store",
    "protocol_dirs",
    "safe_filename",
    "WINDOWS_RESERVED",
    "TIMEZONE_ENV",
    "clinic_timezone",
]

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_PROTOCOLS_DIR = PACKAGE_DIR / "protocols"
PROTOCOLS_ENV = "HIPANALYTICS_PROTOCOLS"
"""Environment variable naming extra protocol folders (separated like PATH)."""


@functools.lru_cache(maxsize=None)
def package_folder(name: str) -> Path:
    """A folder of package data (``notebooks``, ``jupyter``) as a real path.

    Found through :mod:`importlib.resources`, so an installed wheel has it as well as a source
    checkout. A package imported from a zip file is extracted once to a private temporary folder,
    because papermill, Voila and JupyterLab need real files.
    """
    root = resources.files("hipanalytics") / name
    if isinstance(root, Path):
        return root
    import tempfile

    target = Path(tempfile.mkdtemp(prefix=f"hipanalytics-{name}-"))
    _extract(root, target)
    return target


def _extract(node, target: Path) -> None:
    for child in node.iterdir():
        if child.is_dir():
            (target / child.name).mkdir()
            _extract(child, target / child.name)
        else:
            (target / child.name).write_bytes(child.read_bytes())


def notebooks_dir() -> Path:
    """The notebooks shipped inside the package (``reports/``, ``apps/``, ``tutorials/``).

    A source checkout's top-level ``notebooks/`` is a link to this folder: one copy of each.

    Examples
    --------
    >>> sorted(p.name for p in notebooks_dir().iterdir() if p.is_dir())
    ['apps', 'reports', 'tutorials']
    """
    return package_folder("notebooks")


def notebook_path(kind: str, name: str) -> Path:
    """One shipped notebook, e.g. ``notebook_path("reports", "patient_progress")``.

    Examples
    --------
    >>> notebook_path("reports", "patient_progress").name
    'patient_progress.ipynb'
    """
    path = notebooks_dir() / kind / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped notebook {kind}/{name}.ipynb in {notebooks_dir()}")
    return path


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

SAMPLE_ENV = "HIPANALYTICS_SAMPLE_STORE"
"""Environment variable naming a private copy of the synthetic sample store that an app serves
(``hipanalytics app ... --sample``), so the app says it runs on the sample."""


TIMEZONE_ENV = "HIPANALYTICS_TIMEZONE"


def clinic_timezone():
    """The clinic's time zone (``$HIPANALYTICS_TIMEZONE``, an IANA name such as ``Europe/London``) to
    which date-times with an offset are converted on import; None when not set (such values are then
    refused).

    Raises
    ------
    HipAnalyticsError
        When the name is not a time zone.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get(TIMEZONE_ENV, "").strip()
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        from .errors import HipAnalyticsError

        raise HipAnalyticsError(f"{TIMEZONE_ENV}={name!r} is not a time zone: use an IANA name such as "
                                "Europe/London or America/New_York") from None


def default_store() -> str:
    """The store used unless the caller names one: ``$HIPANALYTICS_STORE``, else ``./hipanalytics.sqlite``."""
    return os.environ.get(STORE_ENV) or str(Path.cwd() / "hipanalytics.sqlite")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})
"""Names Windows gives no file, in any letter case and whatever the extension (``NUL.txt``;
Microsoft, "Naming Files, Paths, and Namespaces"): ids with such a part are refused, and a file
name made from one is changed."""


def safe_filename(text: str, *, max_length: int = 80) -> str:
    """Turn an identifier (patient id, program id) into a safe file name part, unique per identifier.

    Accents are folded to ASCII, anything but letters, digits, ``.``, ``_`` and ``-`` becomes
    ``_``, and leading dots are removed, so the result can never climb out of a folder
    (``../``), hide a file, or name a device. Whenever that changed the text, a short hash of the
    original is appended, so two ids that clean up alike (``Q/1`` and ``Q_1``) never share a file;
    an id that needs no change is used as it is.

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
    >>> safe_filename("P001"), safe_filename("Q_1"), safe_filename("Q/1")
    ('P001', 'Q_1', 'Q_1-61593c')
    >>> safe_filename("../../etc/passwd")
    'etc_passwd-3754d6'
    >>> safe_filename("Zoë O'Neil / P-07")
    'Zoe_O_Neil_P-07-6be4ff'
    >>> safe_filename("CON").startswith("CON-"), safe_filename("nul.txt").startswith("nul.txt-")
    (True, True)
    """
    import hashlib

    text = str(text)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_text).strip("._-")
    cleaned = re.sub(r"_+", "_", cleaned)[:max_length].strip("._-") or "unnamed"
    if cleaned == text and cleaned.split(".")[0].casefold() not in WINDOWS_RESERVED:
        return cleaned
    suffix = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return f"{cleaned[:max_length - 7].rstrip('._-')}-{suffix}"
