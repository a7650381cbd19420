"""Progress reports through papermill: figures match the package, output is self-contained, and
failures are clear and never leave a report that looks complete."""

from __future__ import annotations

import json
import re
from html import unescape as html_unescape
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pandas as pd
import papermill
import pytest
from click.testing import CliRunner

import hipanalytics
from hipanalytics.cli import main
from hipanalytics.config import safe_filename
from hipanalytics.errors import ReportError
from hipanalytics.progress import latest_date, patient_progress
from hipanalytics.reports import TEMPLATES_DIR, render_notebook, render_patient
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"  # the checkout's link to the shipped notebooks


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("clinic")
    clinic = generate_clinic(12, seed=4)
    clinic["patients"].loc[0, "display_name"] = "<script>alert('x')</script> Jo Zebrafinch"
    return str(clinic_store(clinic, folder))


def test_patient_report_figures_match_the_package_and_the_outputs_are_self_contained(store_path, tmp_path):
    result = render_patient(store_path, "SYN-00002", tmp_path, formats=("html", "pdf"))
    expected = patient_progress(Store(store_path), "SYN-00002").key_figures
    assert result["figures"] == json.loads(json.dumps(expected, default=str))
    document = result["html"].read_text()
    assert document.count("data:image/png;base64") == 3  # headline, calendar, pain
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", document)
    assert "<script" not in document.lower() and "In&nbsp;[" not in document and "reports.show(" not in document
    assert "Summary" in document and "References for thresholds" in document
    stamp = json.loads(result["json"].read_text())["stamp"]
    assert stamp["data snapshot"] == Store(store_path).fingerprint() and stamp["hipanalytics"]
    assert stamp["store"] == "clinic.sqlite" and str(Path(store_path).parent) not in result["html"].read_text()
    assert result["pdf"].read_bytes().startswith(b"%PDF") and result["pdf_pages"] >= 2


def test_display_names_are_escaped_and_only_shown_when_asked(store_path, tmp_path):
    hidden = render_patient(store_path, "SYN-00001", tmp_path / "a")["html"].read_text()
    assert "Zebrafinch" not in hidden
    shown = render_patient(store_path, "SYN-00001", tmp_path / "b", show_name=True)["html"].read_text()
    assert "&lt;script&gt;alert(" in shown and "&lt;/script&gt; Jo Zebrafinch" in shown
    assert "<script" not in shown.lower()


def test_unknown_patient_missing_store_and_no_measurements_are_clear(store_path, tmp_path):
    with pytest.raises(ReportError, match="unknown patient 'NOPE'"):
        render_patient(store_path, "NOPE", tmp_path)
    with pytest.raises(ReportError, match="no store at"):
        render_patient(tmp_path / "missing.sqlite", "SYN-00001", tmp_path)
    store = Store(store_path)
    import io
    store.import_file(io.StringIO("patient_id,birth_year,involved_side\nNEW-1,1980,left\n"), "patients")
    with pytest.raises(ReportError, match="patient 'NEW-1' has no measurements yet"):
        render_patient(store_path, "NEW-1", tmp_path)
    assert not any(tmp_path.glob("*.html"))


def test_a_failing_notebook_keeps_its_executed_copy_and_writes_no_report(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\nfigures_json = 'f.json'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError('boom in the report')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    template = tmp_path / "broken.ipynb"
    nbformat.write(nb, template)
    with pytest.raises(ReportError, match="report 'broken' failed: boom in the report") as info:
        render_notebook(template, {"x": 2}, tmp_path / "out", "broken")
    assert info.value.notebook and Path(info.value.notebook).exists()
    assert not list((tmp_path / "out").glob("broken.*"))


def test_code_cells_that_show_nothing_leave_no_empty_block_in_the_report(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("figures_json = 'f.json'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('shown')"),
        nbformat.v4.new_markdown_cell("The last words of the report."),
        nbformat.v4.new_code_cell("import json; json.dump({'ok': 1}, open(figures_json, 'w'))"),  # shows nothing
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "t.ipynb")
    document = render_notebook(tmp_path / "t.ipynb", {}, tmp_path / "out", "t")["html"].read_text()
    # one code cell shows something; the parameters cells and the last cell are not there at all
    assert document.count("code_cell") == 1 and "shown" in document
    assert re.search(r"The last words of the report\.</p>(\s*</div>)*\s*<footer>", document)


def test_file_names_from_ids_are_sanitised(store_path, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("figures_json = 'f.json'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import json; json.dump({'ok': 1}, open(figures_json, 'w'))"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "t.ipynb")
    result = render_notebook(tmp_path / "t.ipynb", {}, tmp_path / "out", "../../etc/passwd")
    assert result["html"].parent == tmp_path / "out" and result["html"].name == f"{safe_filename('../../etc/passwd')}.html"
    assert result["html"].name.startswith("etc_passwd-")


def test_report_templates_have_one_parameters_cell_of_literals():
    params = papermill.inspect_notebook(str(TEMPLATES_DIR / "patient_progress.ipynb"))
    assert set(params) == {"store", "patient_id", "as_of", "show_name", "position", "mode", "instrument", "figures_json"}


def test_committed_notebooks_hold_no_outputs():
    for path in NOTEBOOKS.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path} has outputs: strip them"


def test_cli_report_patient(store_path, tmp_path):
    result = CliRunner().invoke(main, ["report", "patient", "SYN-00003", "--store", store_path, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "progress-SYN-00003.html").exists()
    refused = CliRunner().invoke(main, ["report", "patient", "NOPE", "--store", store_path, "--out", str(tmp_path)])
    assert refused.exit_code == 1 and "unknown patient 'NOPE'" in refused.output


def test_clinic_batch_isolates_failures_and_links_every_report(store_path, tmp_path):
    from hipanalytics.reports import active_patients, render_clinic

    result = render_clinic(store_path, tmp_path, patients=["SYN-00004", "SYN-00005", "GHOST"], jobs=2, progress=False)
    assert sorted(result["done"]) == ["SYN-00004", "SYN-00005"]
    assert list(result["failed"]) == ["GHOST"] and "unknown patient 'GHOST'" in result["failed"]["GHOST"]
    index = result["index"].read_text()
    assert 'href="progress-SYN-00004.html"' in index and 'href="progress-SYN-00005.html"' in index
    assert "GHOST: unknown patient" in index and "2 reports made, 1 failed" in index
    assert (tmp_path / "progress-SYN-00004.html").exists()
    # every report as of one day, the store's latest entry, though SYN-00004's own entries end months before
    store = Store(store_path)
    latest = latest_date({t: store.read(t) for t in ("measurements", "sessions")})
    own = latest_date({t: store.read(t, patient_id="SYN-00004") for t in ("measurements", "sessions")})
    assert own < latest == pd.Timestamp("2026-08-21")
    assert patient_progress(store, "SYN-00004").as_of == latest  # a report made alone: the same day as the batch
    assert {made["figures"]["as_of"] for made in result["done"].values()} == {"2026-08-21"}
    assert result["as_of"] == "2026-08-21"
    assert result["active"] == len(active_patients(store, as_of="2026-08-21"))
    active = active_patients(Store(store_path), as_of="2026-04-01")
    programs = Store(store_path).read("programs")
    live = programs[(programs["start_date"] <= "2026-04-01") & (programs["end_date"] >= "2026-03-04")]
    assert active == sorted(live["patient_id"].unique())


def test_the_clinic_index_states_its_date_and_links_each_pdf_the_overview_and_the_cohort_reports(store_path, tmp_path):
    from hipanalytics.reports import active_patients, batch, render_clinic, render_overview

    (tmp_path / "cohort-R&D <2026>.html").write_text("<html>made before the batch</html>")
    result = render_clinic(store_path, tmp_path, patients=["SYN-00004"], formats=("html", "pdf"), jobs=1,
                           progress=False)
    index = result["index"].read_text()
    active = len(active_patients(Store(store_path), as_of="2026-08-21"))
    assert "<h1>Clinic progress reports, as of 2026-08-21</h1>" in index
    assert f"<p>{active} patients active on 2026-08-21 (a program in force, or ended at most 28 days before)." in index
    assert "1 reports made, 0 failed (of the patients asked for)." in index
    assert '<a href="progress-SYN-00004.html">SYN-00004</a> &middot; <a href="progress-SYN-00004.pdf">PDF</a>' in index
    assert '<a href="cohort-R%26D%20%3C2026%3E.html">' in index and "cohort R&amp;D &lt;2026&gt;" in index
    assert "clinic-overview" not in index  # not made yet
    render_overview(store_path, tmp_path, formats=("html", "pdf"))  # made after the batch: the index links it
    index = result["index"].read_text()
    assert ('<a href="clinic-overview.html">Clinic overview: who needs attention first</a> &middot; '
            '<a href="clinic-overview.pdf">PDF</a> (made ') in index
    assert "another data snapshot" not in index
    (tmp_path / "cohort-all.pdf").write_bytes(b"%PDF-")  # a PDF only, of other data
    (tmp_path / "cohort-all.json").write_text(json.dumps({"stamp": {"data snapshot": "0123456789abcdef"}}))
    index = batch.write_index(tmp_path).read_text()
    assert ('<a href="cohort-all.pdf">Cohort comparison, daily vs 3x/week breakouts: all patients</a> '
            "<strong>from another data snapshot than the patient reports</strong>") in index
    links = re.findall(r'href="([^"]*)"', index)
    assert set(links) == {"progress-SYN-00004.html", "progress-SYN-00004.pdf", "clinic-overview.html",
                          "clinic-overview.pdf", "cohort-R%26D%20%3C2026%3E.html", "cohort-all.pdf"}
    assert all((tmp_path / unquote(html_unescape(link))).is_file() for link in links)
    assert not any(link.startswith("/") or ":" in link or ".." in link for link in links)  # relative, beside it


def test_the_clinic_index_repeats_its_header_row_on_every_printed_page(tmp_path):
    from hipanalytics.pdf import printed_pages
    from hipanalytics.reports.batch import INDEX_JSON, write_index

    figures = {"involved": {"left": {"latest_deg": 30.0, "change_deg": 4.0, "direction": "improved",
                                     "recent_trend": "gaining", "to_gain_deg": 5}},
               "breakout_adherence": 0.8, "flagged": False}
    reports = {f"P{i:03d}": {"html": f"progress-P{i:03d}.html", "figures": figures} for i in range(90)}
    (tmp_path / INDEX_JSON).write_text(json.dumps({"as_of": "2026-07-01", "active": 90, "chosen": False,
                                                   "data snapshot": "abc", "reports": reports, "failed": {}}))
    pages = printed_pages(write_index(tmp_path).read_text())
    assert len(pages) >= 3
    for page in pages[1:]:
        assert [b["tag"] for b in page.blocks[:2]] == ["table", "thead"], [b["tag"] for b in page.blocks]
        assert page.blocks[1]["text"].startswith("patient hip latest IR")


def test_cli_report_clinic_exits_non_zero_when_a_report_fails(store_path, tmp_path):
    result = CliRunner().invoke(main, ["report", "clinic", "--store", store_path, "--out", str(tmp_path),
                                       "--patients", "SYN-00006,GHOST", "--jobs", "2"])
    assert result.exit_code == 1 and "1 report made, 1 failed" in result.output
    assert "the latest measurement or session in the store; --as-of DATE for another day): 2 patients named" in result.output
    assert "FAILED GHOST" in result.output


def test_cohort_and_overview_reports_match_the_package(store_path, tmp_path):
    from hipanalytics.progress import clinic_overview, cohort_comparison, latest_date
    from hipanalytics.reports import render_cohort, render_overview

    cohort = render_cohort(store_path, tmp_path, week=6)
    expected = cohort_comparison(Store(store_path), week=6)
    files = cohort["figures"].pop("files")
    assert cohort["figures"] == json.loads(json.dumps(expected.key_figures))
    document = cohort["html"].read_text()
    assert document.count("data:image/png;base64") == 6 and "Table 1" in document and "Estimand." in document
    of = expected.sensitivity.attrs.get("tipping_of", "the MI ANCOVA")
    assert f"Tipping point (missing not at random), of {of}: the conclusion" in document
    # every table as CSV and LaTeX, every figure as SVG and PDF, beside the report and listed in its JSON
    stems = [*expected.tables(), *expected.figures()]
    listed = {Path(f).name for f in files}
    assert listed == {f"{s}.{x}" for s in expected.tables() for x in ("csv", "tex")} | {
        f"{s}.{x}" for s in expected.figures() for x in ("svg", "pdf")}
    assert all((tmp_path / f).is_file() and (tmp_path / f).stat().st_size > 0 for f in files) and len(stems) == 16
    primary = pd.read_csv(tmp_path / "cohort-all-files" / "primary-and-sensitivity.csv")
    assert primary["analysis"].iloc[0].startswith("primary: cLDA")
    tex = (tmp_path / "cohort-all-files" / "primary-and-sensitivity.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert (tmp_path / "cohort-all-files" / "forest.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "cohort-all-files" / "forest.pdf").read_bytes().startswith(b"%PDF-")
    overview = render_overview(store_path, tmp_path)
    table = clinic_overview(Store(store_path))
    attention = table[table["attention"] != ""]["patient_id"].nunique()
    day = latest_date({t: Store(store_path).read(t) for t in ("measurements", "sessions")})
    assert overview["figures"] == {"patients": table["patient_id"].nunique(), "hips": len(table),
                                   "need_attention": attention, "flagged": table[table["flagged"]]["patient_id"].nunique(),
                                   "as_of": f"{day:%Y-%m-%d}", "synthetic_data": True,
                                   "hipanalytics_version": hipanalytics.__version__}
    assert f"<title>Clinic overview, {day:%Y-%m-%d}" in overview["html"].read_text()
    everyone = clinic_overview(Store(store_path), everyone=True)
    assert len(everyone) > everyone["patient_id"].nunique()  # the fixture has patients with both hips involved
    both = everyone[everyone["patient_id"].duplicated(keep=False)]
    assert set(both["side"]) == {"left", "right"}
    assert not re.search(r"(?<![\w-])-0(?![\d.])", overview["html"].read_text())  # never a negative zero
    from hipanalytics.pdf import printed_pages

    for number, page in enumerate(printed_pages(overview["html"].read_text()), 1):  # landscape, as printed
        assert not page.broken_words and not page.hyphenated, (number, page.broken_words, page.hyphenated)
    with pytest.raises(ReportError, match="empty cohort: no patients in cohort 'nobody'"):
        render_cohort(store_path, tmp_path, cohort="nobody")


def test_the_cohort_result_in_plain_words_sets_the_ci_against_the_mdc_and_names_the_design():
    from dataclasses import replace
    from types import SimpleNamespace

    from hipanalytics.progress import cohort_comparison

    clinic = generate_clinic(16, seed=7)
    tables = {k: clinic[k] for k in ("patients", "programs", "measurements", "sessions")}
    allocated = cohort_comparison(tables, week=6, imputations=2)
    assert allocated.allocated  # every synthetic patient has an allocation
    text = allocated.plain_language()
    p = allocated.primary
    assert text.startswith(f"At week 6, patients assigned to daily breakouts had {abs(p.estimate):.1f} degrees "
                           f"{'more' if p.estimate >= 0 else 'less'} hip IR than those assigned to breakouts 3x/week")
    assert text.endswith("if the allocation was random, a randomised comparison.")

    def said(estimate, low, high):
        primary = SimpleNamespace(estimate=estimate, ci_low=low, ci_high=high, p_value=0.2, adjusted_for=[])
        return replace(allocated, primary=primary, allocated=False).plain_language()

    assert "rules out a difference as large as the 5.4-degree MDC" in said(1.2, -1.0, 3.4)
    assert "does not rule out a difference of that size: the data cannot tell yet" in said(1.2, -3.0, 6.1)
    assert "at least the 5.4-degree MDC" in said(-6.0, -9.0, -3.0) and "6.0 degrees less" in said(-6.0, -9.0, -3.0)
    outsider = pd.DataFrame({"patient_id": ["NOPROG"], "birth_year": [1980], "sex": ["male"],
                             "involved_side": ["left"]})
    unrecorded = tables["patients"].drop(columns=["allocation", "allocated_on"])  # a cohort naming a schedule is a label
    unallocated = cohort_comparison({**tables, "patients": pd.concat([unrecorded, outsider], ignore_index=True)},
                                    week=6, imputations=2)
    assert ("1 patient not eligible (no program of either schedule), in no analysis and not in Table 1: NOPROG"
            in unallocated.caveats)
    assert unallocated.table1.iloc[0]["Overall"] == "16"
    assert not unallocated.allocated and "observational comparison, and the adjustment for confounding could not be " \
        "made (confounding adjustment: the covariates separate the schedules completely" in unallocated.plain_language()
    assert any(c.startswith("confounding adjustment not made: ") for c in unallocated.caveats)


def test_an_observational_cohort_is_adjusted_for_confounding_and_the_report_says_how():
    from hipanalytics.progress import cohort_comparison
    from hipanalytics.synthetic import Assumptions

    confounded = Assumptions(gain_model="arm", arm_effect=3.0, allocation="by indication", indication_intercept=-0.4,
                             indication_age=-0.08, indication_site=1.0, age_gain=-0.15, site_gain=1.5)
    clinic = generate_clinic(120, seed=5, assumptions=confounded)
    result = cohort_comparison(clinic, week=6, imputations=5)
    assert not result.allocated and result.weighting is not None
    adjusted = result.sensitivity.set_index("label").loc["adjusted: overlap weights"]
    assert adjusted["estimate"] < result.primary.estimate  # older, south-site patients (who gain less) got 3x/week
    words = result.plain_language()
    assert words.startswith("No allocation is recorded") and "propensity-score overlap weights" in words
    assert f"{adjusted['estimate']:.1f} degrees more" in words and "unadjusted: " in words
    dr = result.sensitivity.set_index("label").loc["adjusted: doubly robust (AIPW)"]
    assert f"doubly robust estimate over all patients: {dr['estimate']:.1f} degrees" in words
    assert {"adjusted: stabilised IPT weights", "adjusted: jump to reference (MNAR)"} <= set(result.sensitivity["label"])
    assert result.sensitivity.attrs["tipping_of"] == "the overlap-weighted estimate"
    assert result.tipping_sentence().startswith("Tipping point (missing not at random), of the overlap-weighted estimate")
    assert "baseline IR, age, baseline pain, sex, involved side and site" in words
    balance = result.tables()["balance"][1].set_index("covariate")
    assert "baseline pain (NPRS)" in balance.index
    assert float(balance.loc["age (years)", "SMD before"]) < -0.5 and balance.loc["age (years)", "SMD after weighting"] == "0.00"
    assert "involved side: right" in balance.index
    assert "Observational comparison" in dict(result.methods_sections())
    assert "target trial" in dict(result.methods_sections())["Observational comparison"]


def test_a_cohort_without_both_schedules_is_refused_saying_what_it_holds():
    from hipanalytics.progress import cohort_comparison

    clinic = generate_clinic(16, seed=7)
    tables = {k: clinic[k] for k in ("patients", "programs", "measurements", "sessions")}
    daily = set(clinic["patients"].loc[clinic["patients"]["cohort"] == "daily", "patient_id"])
    two = set(sorted(set(clinic["patients"]["patient_id"]) - daily)[:2])
    for keep, held in ((daily, f"{len(daily)} on daily and 0 on three-per-week"),
                       (daily | two, f"{len(daily)} on daily and 2 on three-per-week")):
        part = {k: v[v["patient_id"].isin(keep)] for k, v in tables.items()}
        with pytest.raises(ReportError, match=f"needs at least 3 patients assigned to each schedule; the store has {held}"):
            cohort_comparison(part, week=6, imputations=2)


def test_the_cohort_report_refuses_a_one_schedule_store_before_starting_a_kernel(tmp_path):
    from hipanalytics.reports import render_cohort

    clinic = generate_clinic(8, seed=7)
    daily = set(clinic["patients"].loc[clinic["patients"]["cohort"] == "daily", "patient_id"])
    one = clinic_store({k: v[v["patient_id"].isin(daily)] if "patient_id" in v else v for k, v in clinic.items()},
                       tmp_path, "one.sqlite")
    with pytest.raises(ReportError, match=f"has {len(daily)} on daily and 0 on three-per-week"):
        render_cohort(one, tmp_path / "out")
    assert not (tmp_path / "out" / "failed").exists()  # refused before a notebook ran


def test_overview_puts_the_most_urgent_first_and_keeps_a_patients_hips_together():
    from hipanalytics.progress import _ATTENTION, clinic_overview

    clinic = generate_clinic(40, seed=2026)
    table = clinic_overview({k: clinic[k] for k in ("patients", "programs", "measurements", "sessions")}, everyone=True)
    order = [reason for reason, _ in _ATTENTION]
    first = table.groupby("patient_id", sort=False)["attention"].first().map(
        lambda a: order.index(a.split("; ")[0]) if a else len(order))
    assert first.is_monotonic_increasing and (first == order.index("pain flag")).any()
    position = table.reset_index().groupby("patient_id")["index"].agg(lambda i: i.max() - i.min() + 1)
    assert (position == table.groupby("patient_id").size()).all()  # each patient's rows together


# nbclient keeps one event loop per thread for its synchronous calls; it is left for the garbage
# collector at the end, once per process (the batch workers are separate processes).
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_patient_measured_by_another_method_is_shown_on_it_never_mixed():
    from hipanalytics.progress import clinic_overview, overview_table

    clinic = generate_clinic(4, seed=3)
    m = clinic["measurements"]
    other = m["patient_id"] == "SYN-00002"  # this clinic measures SYN-00002 prone, passive, with a goniometer
    m = m.assign(position=m["position"].where(~other, "prone"), mode=m["mode"].where(~other, "passive"),
                 instrument=m["instrument"].where(~other, "goniometer"))
    first = m[other].sort_values("measured_on").iloc[0]
    extra = first.to_frame().T.assign(position="seated_90", mode="active", instrument="inclinometer", degrees=55.0,
                                      measurement_id="extra")
    tables = {"patients": clinic["patients"], "programs": clinic["programs"], "sessions": clinic["sessions"],
              "measurements": pd.concat([m, extra], ignore_index=True)}  # one stray seated visit: not the usual method
    progress = patient_progress(tables, "SYN-00002")
    assert progress.method == {"joint": "hip", "motion": "internal_rotation", "position": "prone", "mode": "passive",
                               "instrument": "goniometer"}
    assert "prone, passive, goniometer (also measured seated 90/90, active, inclinometer" in progress.header_html()
    assert "55.0" not in progress.measurement_table()["IR, mean of trials (deg)"].tolist()
    assert progress.trends["mdc_deg"].iloc[0] == 8.6  # no method-specific MDC for prone goniometer: the cited fallback
    chosen = patient_progress(tables, "SYN-00002", method={"joint": "hip", "motion": "internal_rotation",
                                                           "position": "seated_90", "mode": "active",
                                                           "instrument": "inclinometer"})
    assert chosen.measurement_table()["IR, mean of trials (deg)"].tolist() == ["55.0"]  # asked for: that series
    overview = clinic_overview(tables, everyone=True)
    rows = overview.set_index("patient_id")
    assert rows.loc["SYN-00002", "method"] == "prone, passive, goniometer"
    assert set(overview["patient_id"]) == set(clinic["patients"]["patient_id"])
    assert "measured" in overview_table(overview).columns
    usual = clinic_overview({k: v for k, v in clinic.items() if k in tables}, everyone=True)
    assert "measured" not in overview_table(usual).columns  # everyone on the usual method: no column


def test_a_report_that_runs_too_long_on_a_warm_kernel_is_stopped(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("figures_json = 'f.json'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(2)"),
        nbformat.v4.new_code_cell("time.sleep(2)"),  # each cell within the limit, the report not
        nbformat.v4.new_code_cell("import json; json.dump({'ok': 1}, open(figures_json, 'w'))"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "slow.ipynb")
    with pytest.raises(ReportError, match="took longer than 3 s and was stopped"):
        render_notebook(tmp_path / "slow.ipynb", {}, tmp_path / "out", "slow", timeout=3, warm=True)
    again = render_notebook(tmp_path / "slow.ipynb", {}, tmp_path / "out", "slow", timeout=10, warm=True)
    assert again["figures"] == {"ok": 1}  # the same warm kernel serves the next report


def test_a_misspelt_parameter_or_an_ambiguous_date_stops_a_direct_papermill_run(store_path, tmp_path, caplog):
    template = str(TEMPLATES_DIR / "patient_progress.ipynb")
    with pytest.raises(papermill.PapermillExecutionError) as misspelt:
        papermill.execute_notebook(template, str(tmp_path / "a.ipynb"), parameters={"stor": store_path},
                                   progress_bar=False, cwd=str(tmp_path))
    assert "Passed unknown parameter: stor" in caplog.text  # papermill itself only logs a warning
    assert "unknown parameter 'stor' (did you mean 'store'?)" in misspelt.value.evalue
    with pytest.raises(papermill.PapermillExecutionError) as ambiguous:
        papermill.execute_notebook(template, str(tmp_path / "b.ipynb"), progress_bar=False, cwd=str(tmp_path),
                                   parameters={"store": store_path, "as_of": "07/01/2026"})
    assert "as_of must be an ISO date YYYY-MM-DD (e.g. 2026-07-01), got '07/01/2026'" in ambiguous.value.evalue


def test_check_parameters_names_each_problem_and_ignores_imports_and_private_names():
    from hipanalytics.reports import check_parameters

    namespace = {"store": "c.sqlite", "cohort": None, "week": 0, "threshold": 0.7, "figures_json": "f.json",
                 "treshold": 0.5, "json": json, "_i1": "x"}
    with pytest.raises(ReportError) as info:
        check_parameters(namespace, "cohort_comparison")
    assert str(info.value) == ("cohort_comparison: unknown parameter 'treshold' (did you mean 'threshold'?); "
                               "parameter week=0: expected a whole number of weeks >= 1. "
                               "Declared parameters: store, cohort, week, threshold, figures_json, files_dir")
    ok = {"store": None, "patient_id": "P1", "as_of": "2026-07-01", "show_name": False, "position": "prone",
          "mode": "passive", "instrument": "goniometer", "figures_json": "f.json", "HTML": object, "reports": json}
    check_parameters(ok, "patient_progress")
    with pytest.raises(ReportError, match="parameter position='sitting': expected one of seated_90"):
        check_parameters({**ok, "position": "sitting"}, "patient_progress")


def test_a_report_without_a_store_shows_the_sample_under_an_unmissable_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = render_notebook(TEMPLATES_DIR / "patient_progress.ipynb", {"store": None, "patient_id": "SYN-00004"},
                             tmp_path / "out", "sample")
    document = result["html"].read_text()
    banner = document.index("SYNTHETIC SAMPLE DATA")
    assert banner < document.index("Report date") and "No store was given" in document
    assert result["figures"]["synthetic_data"] is True


@pytest.fixture(scope="module")
def patient_reports(store_path, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """The progress report of the first patient with one involved hip and of the first with both:
    ``{"one hip": (patient_id, html), "both hips": (patient_id, html)}``."""
    out = tmp_path_factory.mktemp("patient-reports")
    patients = Store(store_path).read("patients")
    patients = patients[patients["patient_id"].isin(Store(store_path).read("measurements")["patient_id"])]
    one = patients.loc[patients["involved_side"] != "both", "patient_id"].iloc[0]
    both = patients.loc[patients["involved_side"] == "both", "patient_id"].iloc[0]
    return {name: (pid, render_patient(store_path, pid, out)["html"].read_text())
            for name, pid in (("one hip", one), ("both hips", both))}


def _page_of(pages: list[dict], tag: str, text: str) -> int:
    """The page number (1 first) where the block of that tag whose text starts with ``text`` starts."""
    return next(n for n, page in enumerate(pages, 1) for b in page.blocks if b["tag"] == tag
                and b["text"].startswith(text))


def test_the_progress_pdf_keeps_charts_with_their_headings_and_leaves_no_page_half_empty(patient_reports):
    from hipanalytics.pdf import printed_pages

    for name, (_, document) in patient_reports.items():
        pages = printed_pages(document)
        for heading, alt in (("Hip IR and breakout sessions", "above the breakout sessions planned and done"),
                             ("Sessions done", "Calendar of the program's days")):
            chart = next(n for n, page in enumerate(pages, 1) for b in page.blocks if b["tag"] == "img"
                         and alt in b["text"])
            assert _page_of(pages, "h2", heading) == chart, (name, heading)
            sections = [b for b in pages[chart - 1].blocks if b["tag"] == "h2"]
            assert len(sections) >= 2, (name, heading)  # not on a page of its own
        for number, page in enumerate(pages[:-1], 1):
            assert page.blocks[-1]["tag"] not in {"h1", "h2", "h3"}, (name, number, page.blocks[-1]["text"])
            assert page.filled >= 0.5, (name, number, round(page.filled, 2))
        appendix = _page_of(pages, "h2", "Appendix: every trial")
        assert appendix <= 3, name  # the report before the appendix: three pages at most
        for page in pages[appendix:]:  # the trials run on: their header row again at the top
            if page.blocks[0]["tag"] == "table":
                assert page.blocks[1]["tag"] == "thead" and page.blocks[1]["text"].startswith("date side method")


def test_the_charts_legends_and_tick_labels_print_at_8_points_or_more(store_path, patient_reports):
    import base64
    import io

    from matplotlib.text import Text
    from PIL import Image

    from hipanalytics import charts
    from hipanalytics.pdf import printed_pages

    for name, (patient_id, document) in patient_reports.items():
        printed = {b["text"]: b for page in printed_pages(document) for b in page.blocks if b["tag"] == "img"}
        p = patient_progress(Store(store_path), patient_id)  # the charts as the report draws them
        figures = {p.chart_alt(): charts.rom_progress(p.measurements, p.programs, p.sessions, patient_id,
                                                       patients=p.patient.to_frame().T, method=p.method,
                                                       as_of=p.as_of, trends=p.trends),
                   p.calendar_alt(): charts.adherence_calendar(p.programs, p.sessions, patient_id, as_of=p.as_of)}
        for alt, figure in figures.items():
            charts.png(figure)  # drawn: the tick labels exist
            image = Image.open(io.BytesIO(base64.b64decode(printed[alt]["src"].split(",", 1)[1])))
            drawn_in = image.width / image.info["dpi"][0]  # the PNG's pixels at its dpi: the figure's width
            assert drawn_in == pytest.approx(figure.get_figwidth(), abs=0.02)
            printed_in = printed[alt]["width"] / 96  # CSS px on paper
            assert printed_in == pytest.approx(min(drawn_in, 182 / 25.4), abs=0.02)  # as drawn, or the A4 text width
            smallest = min(t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip())
            assert smallest * printed_in / drawn_in >= 8, (name, alt[:30], smallest, printed_in, drawn_in)


def test_every_report_fits_the_page_width_and_every_chart_says_what_it_shows(store_path, patient_reports, tmp_path):
    from hipanalytics.pdf import layout_overflow
    from hipanalytics.reports import render_clinic, render_cohort, render_overview

    (one, _), (both, _) = patient_reports["one hip"], patient_reports["both hips"]
    documents = {pid: document for pid, document in patient_reports.values()}
    documents["cohort"] = render_cohort(store_path, tmp_path)["html"].read_text()
    documents["overview"] = render_overview(store_path, tmp_path)["html"].read_text()
    documents["index"] = render_clinic(store_path, tmp_path / "batch", patients=[one, both], jobs=1,
                                       progress=False)["index"].read_text()
    for name, document in documents.items():
        for font in (None, "DejaVu Sans"):
            assert max(layout_overflow(document, font=font)) <= 0.5, (name, font)
        images = re.findall(r"<img [^>]*>", document)
        assert all(re.search(r'alt="[^"]{20,}"', img) for img in images), name  # a sentence, not a placeholder
    assert re.search(r'alt="(Left|Right) hip IR (rose|fell|stayed)', documents[one])
    assert documents[both].count("hip (involved)") == 0  # legends live in the chart; the text names each side
    assert "Left hip IR" in documents[both] and "Right hip IR" in documents[both]
    assert 'class="id"' in documents["index"] and ">none<" in documents["index"]
