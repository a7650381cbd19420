"""Interactive apps (ipywidgets) for clinicians: program builder, data entry, patient dashboard.

Each app is a widget class that only wires controls to plain, tested functions, so the logic
runs the same in a test, in JupyterLab and served by Voilà (``hipanalytics app builder``).
Importing this package needs ``ipywidgets``.
"""

from .builder import ProgramBuilder, build_program
from .dashboard import Dashboard, patient_panels
from .entry import EntryForm, measurement_rows, session_row

__all__ = ["ProgramBuilder", "EntryForm", "Dashboard", "build_program", "measurement_rows", "session_row",
           "patient_panels", "open_app_store"]


def open_app_store():
    """The store an app works on: ``$HIPANALYTICS_STORE`` (set by ``hipanalytics app``), else the
    synthetic sample store, so the app notebooks open with example data in JupyterLab.

    Apps on the sample store show a banner saying the data are synthetic.
    """
    import os

    from ..config import STORE_ENV
    from ..reports import open_store

    return open_store(os.environ.get(STORE_ENV) or None)
