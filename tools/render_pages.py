"""Render every page a clinician or researcher reads to PNG, in one folder, to look at them.

From the synthetic sample clinic (so nothing here is patient data): the clinic batch of three
progress reports (a patient with one involved hip, one with both, one whose schedule was
switched), with HTML and PDF, the clinic overview and the cohort comparison made into the
batch's folder (so its index page links them all), that index page, a power report (a small
simulation), and the program handouts: one hip on 3x/week, both hips on daily breakouts, the
PAILs variant (left hip), and a schedule switch as a draft with its recovery day and the hip left
for the clinician to tick. Each is printed to PDF as hipanalytics prints it (WeasyPrint) and every
PDF page is turned into a PNG with pdftoppm (Debian: poppler-utils). It also prints, per
document, how far any box reaches past the page's right edge (0 everywhere is right) and how full
each page is (a page under half full before the last is worth a look; before the handout's tick
sheet, a sheet of its own, it is expected).

Run: .venv/bin/python tools/render_pages.py [OUT_FOLDER]   (default: build/pages)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path


def main(out: Path) -> int:
    from hipanalytics.analysis.episodes import schedule_changes
    from hipanalytics.handout import handout_html
    from hipanalytics.pdf import html_to_pdf, layout_overflow, printed_pages
    from hipanalytics.program import Program, switch_schedule
    from hipanalytics.reports import render_clinic, render_cohort, render_overview, render_power
    from hipanalytics.store import Store
    from hipanalytics.synthetic import sample_store

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("pdftoppm is missing (Debian: apt-get install poppler-utils); PDFs are written, PNGs are not")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hipanalytics-pages-"))
    store = sample_store(work / "sample.sqlite")
    with Store(store, create=False) as opened:
        patients = opened.read("patients")
        programs = opened.read("programs")
        measured = set(opened.read("measurements")["patient_id"])
    sides = dict(zip(patients["patient_id"], patients["involved_side"]))
    one = next(p for p, s in sides.items() if s != "both" and p in measured)
    both = next(p for p, s in sides.items() if s == "both" and p in measured)
    switched = next(p for p in sorted(measured) if (schedule_changes(programs, p)["kind"] == "switch").any())
    shown = {one: f"patient-{one}-one-hip", both: f"patient-{both}-both-hips",
             switched: f"patient-{switched}-schedule-switch"}
    clinic = work / "clinic"
    batch = render_clinic(store, clinic, patients=list(shown), formats=("html", "pdf"), jobs=1, progress=False)
    documents: dict[str, str] = {name: Path(batch["done"][pid]["html"]).read_text() for pid, name in shown.items()}
    documents["cohort"] = render_cohort(store, clinic)["html"].read_text()
    documents["overview"] = render_overview(store, clinic)["html"].read_text()
    documents["clinic-index"] = batch["index"].read_text()  # written again by the two above: it links them
    documents["power"] = render_power(work, per_arm=(20, 30, 40, 60), trials=40)["html"].read_text()
    start = date(2026, 11, 30)
    pails = {"ninety-ninety": "ninety-ninety-ir-pails"}
    three = Program(patient_id="DEMO-001", protocol="hip-ir-breakouts", schedule="three-per-week", start_date=start,
                    weeks=6)
    daily = Program(patient_id="DEMO-002", protocol="hip-ir-breakouts", schedule="daily", start_date=start, weeks=6)
    variant = Program(patient_id="DEMO-003", protocol="hip-ir-breakouts", schedule="three-per-week", start_date=start,
                      weeks=6, choices=pails)
    after_switch = switch_schedule(daily.model_copy(update={"choices": pails}), "three-per-week", on=date(2026, 12, 14),
                                   reason="pain after daily breakouts")[1]
    documents["handout-three-per-week-right"] = handout_html(three, side="right", patient_name="Demo patient DEMO-001")
    documents["handout-daily-both"] = handout_html(daily, side="both", patient_name="Demo patient DEMO-002")
    documents["handout-pails-left"] = handout_html(variant, side="left", patient_name="Demo patient DEMO-003")
    documents["handout-switched-draft"] = handout_html(after_switch, patient_name="Demo patient DEMO-002", draft=True)
    for name, document in documents.items():
        pdf, pages = html_to_pdf(document)
        (out / f"{name}.pdf").write_bytes(pdf)
        worst = max(layout_overflow(document) + layout_overflow(document, font="DejaVu Sans"))
        full = " ".join(f"{page.filled:.0%}" for page in printed_pages(document))
        if pdftoppm:
            subprocess.run([pdftoppm, "-r", "70", "-png", str(out / f"{name}.pdf"), str(out / name)], check=True)
        print(f"{name:36} {pages:>2} pages ({full}), widest box past the right edge: {worst:.1f} px")
    shutil.rmtree(work, ignore_errors=True)
    print(f"pages in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/pages")))
