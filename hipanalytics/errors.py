"""Exceptions and warnings raised by hipanalytics.

Every error the package raises on purpose derives from :class:`HipAnalyticsError`, so a caller can
catch them all in one place. Errors about files carry structured fields (file, location, value,
expected, fix) as well as a readable message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DataValidationError",
    "EntryError",
    "HipAnalyticsError",
    "HipAnalyticsWarning",
    "MissingDependencyError",
    "ProgramError",
    "ProtocolError",
    "ProtocolProblem",
    "ReportError",
    "ScheduleWarning",
    "ServeError",
    "StoreError",
]


class HipAnalyticsError(Exception):
    """Base class of every error hipanalytics raises on purpose."""


class HipAnalyticsWarning(UserWarning):
    """Base class of hipanalytics warnings: caveats worth reading, not failures."""


@dataclass(frozen=True)
class ProtocolProblem:
    """One problem found in a protocol definition.

    Attributes
    ----------
    path : str
        Key path inside the file, e.g. ``sessions[0].blocks[1].circuit.rounds``.
    message : str
        What is wrong, including the value received and what was expected.
    line : int or None
        1-based line in the file where the key (or its nearest parent) stands.
    file : str or None
        The protocol file, when the protocol came from a file.
    """

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = self.file or "<protocol>"
        if self.line is not None:
            where = f"{where}, line {self.line}"
        path = self.path or "(top level)"
        return f"{where}: {path}: {self.message}"


class ProtocolError(HipAnalyticsError):
    """A protocol definition is invalid or cannot be found.

    Parameters
    ----------
    problems : list of ProtocolProblem or str
        Every problem found; the message lists them all.
    file : str or Path, optional
        The file the problems were found in; fills ``file`` on problems that lack it.
    """

    def __init__(self, problems: list[ProtocolProblem] | str, file: str | Path | None = None):
        if isinstance(problems, str):
            problems = [ProtocolProblem(path="", message=problems)]
        name = str(file) if file is not None else None
        self.file = name
        self.problems = [
            p if p.file or name is None else ProtocolProblem(p.path, p.message, p.line, name)
            for p in problems
        ]
        if len(self.problems) == 1:
            super().__init__(f"invalid protocol: {self.problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            super().__init__(f"invalid protocol: {len(self.problems)} problems\n{lines}")


class ProgramError(HipAnalyticsError):
    """A program (patient + protocol + schedule + dates) is refused."""


class ScheduleWarning(HipAnalyticsWarning):
    """A schedule is allowed but goes against its protocol's advice (e.g. no recovery day)."""


class DataValidationError(HipAnalyticsError):
    """A records file has errors; ``report`` (a ``records.ValidationReport``) lists every one."""

    def __init__(self, report):
        self.report = report
        super().__init__(str(report))


class EntryError(HipAnalyticsError):
    """A form entry is incomplete before it can even be validated (e.g. no trial typed in)."""


class StoreError(HipAnalyticsError):
    """The store cannot be opened, or a write to it is refused."""


class ReportError(HipAnalyticsError):
    """A report cannot be made (unknown patient, no data, a failing notebook); nothing is presented
    as complete. ``notebook`` names the executed notebook kept for diagnosis, when there is one."""

    def __init__(self, message: str, notebook: str | None = None):
        self.notebook = notebook
        super().__init__(message + (f" (executed notebook kept for diagnosis: {notebook})" if notebook else ""))


class MissingDependencyError(HipAnalyticsError):
    """Something needs a system library or program that is not installed (e.g. PDF output needs
    Pango); the message names what is missing and the packages that provide it."""


class ServeError(HipAnalyticsError):
    """An app or JupyterLab cannot be served (e.g. its port is already taken)."""
