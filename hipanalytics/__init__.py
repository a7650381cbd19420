"""hipanalytics: hip internal-rotation mobility programs, ROM logs and progress reports.

The public API is re-exported here::

    import hipanalytics as ha
    protocol = ha.load_protocol("hip-ir-breakouts")
    program = ha.Program(patient_id="P001", protocol=protocol, schedule="three-per-week",
                         start_date=date(2026, 1, 5), weeks=6)
    ha.plan(program)
"""

__version__ = "0.1.0"

from .analysis import adherence, adherence_summary, rom_trends, tolerance_flags
from .errors import (
    DataValidationError,
    EntryError,
    HipAnalyticsError,
    HipAnalyticsWarning,
    MissingDependencyError,
    ProgramError,
    ProtocolError,
    ProtocolProblem,
    ReportError,
    ScheduleWarning,
    ServeError,
    StoreError,
)
from .handout import calendar_ics, handout_html, write_calendar, write_handout
from .program import DoseOverride, Program, breakouts_per_week, plan, plan_table, prescription, switch_schedule
from .protocol import Protocol, Range, Schedule, list_protocols, load_protocol
from .records import read_records
from .store import Store

__all__ = [
    "__version__",
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
    "Protocol",
    "Range",
    "Schedule",
    "load_protocol",
    "list_protocols",
    "Program",
    "DoseOverride",
    "plan",
    "plan_table",
    "prescription",
    "breakouts_per_week",
    "switch_schedule",
    "handout_html",
    "write_handout",
    "calendar_ics",
    "write_calendar",
    "read_records",
    "Store",
    "rom_trends",
    "adherence",
    "adherence_summary",
    "tolerance_flags",
]
