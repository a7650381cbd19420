"""Progress reports: run a parameterised notebook and export it, self-contained.

The HTML has no code cells, no prompts, images embedded as data URIs and no external scripts or
styles, so it opens on an offline machine; the PDF is made from it by WeasyPrint (no TeX). Each
report is stamped with the data snapshot (store fingerprint), the package version, the parameters
and the generation time, and comes with a JSON of its key figures. A notebook that fails leaves
its executed copy for diagnosis and no report.

The steps, one module each: :mod:`~hipanalytics.reports.cells` (what the notebooks call),
:mod:`~hipanalytics.reports.kernel` (a long-lived kernel that runs notebook after notebook),
:mod:`~hipanalytics.reports.render` (one report, executed and exported),
:mod:`~hipanalytics.reports.batch` (the clinic batch on this machine) and
:mod:`~hipanalytics.reports.cluster` (the same batch on Dask distributed workers).
"""

from .batch import active_patients, render_clinic
from .cells import (check_parameters, history_html, open_patient, open_store, overview_heading, paragraph, references_html,
                    report_day, show, source_banner, table_html, write_key_figures)
from .render import (TEMPLATES_DIR, render_cohort, render_notebook, render_overview, render_patient, render_power,
                     store_label)

__all__ = ["TEMPLATES_DIR", "check_parameters", "source_banner", "open_patient", "show", "paragraph", "table_html",
           "references_html", "store_label", "write_key_figures", "report_day", "overview_heading", "history_html", "render_notebook", "render_patient", "active_patients",
           "render_clinic", "open_store", "render_cohort", "render_overview", "render_power"]
