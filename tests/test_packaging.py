"""The package as a user installs it: the sdist builds a wheel that carries its notebooks, its
protocol and its Voila template, and that wheel makes reports outside the checkout.

``.ci/run`` goes further (a fresh virtual environment with the wheel and its dependencies from
PyPI); this test needs nothing from the network: it builds with the pinned setuptools of the
test environment and runs the built package from a folder put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the unpacked sdist: what a user gets from either
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (built,) = out.glob("*.whl")
    return built


def test_the_checkout_notebooks_folder_is_the_shipped_one():
    from hipanalytics.config import notebooks_dir

    assert (ROOT / "notebooks").resolve() == notebooks_dir().resolve()
    assert (ROOT / "notebooks" / "reports" / "patient_progress.ipynb").is_file()


def test_the_wheel_carries_every_notebook_the_protocol_and_the_voila_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"hipanalytics/notebooks/{p.relative_to(ROOT / 'notebooks').as_posix()}"
               for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert len(shipped) >= 7 and shipped <= names, sorted(shipped - names)
    assert "hipanalytics/protocols/hip-ir-breakouts.yaml" in names
    assert {"hipanalytics/jupyter/voila/templates/hipanalytics/conf.json",
            "hipanalytics/jupyter/voila/templates/hipanalytics/index.html.j2",
            "hipanalytics/jupyter/voila/templates/hipanalytics/page.html"} <= names
    assert not [n for n in names if n.endswith((".sqlite", "figures.json"))]  # nothing a notebook run left behind


def test_the_installed_package_runs_the_demo_and_a_patient_report_in_an_empty_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("HIPANALYTICS_STORE", None)

    def hipanalytics(*args):
        return subprocess.run([sys.executable, "-m", "hipanalytics.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import hipanalytics; print(hipanalytics.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where  # the built package, not the checkout
    demo = hipanalytics("demo", "--reports", "2")
    assert demo.returncode == 0, demo.stderr
    assert "2 patient progress reports, 0 failed" in demo.stdout
    reports = work / "reports" / "demo" / "reports"
    assert (reports / "index.html").is_file() and (reports / "cohort-all.pdf").is_file()
    one = hipanalytics("report", "patient", "SYN-00004", "--store", "reports/demo/clinic.sqlite",
                       "--format", "html,pdf", "--out", "out")
    assert one.returncode == 0, one.stderr
    figures = json.loads((work / "out" / "progress-SYN-00004.json").read_text())
    assert figures["patient_id"] == "SYN-00004" and figures["synthetic_data"] is True
    assert (work / "out" / "progress-SYN-00004.pdf").read_bytes().startswith(b"%PDF-")
    assert "SYNTHETIC SAMPLE DATA" in (work / "out" / "progress-SYN-00004.html").read_text()
    fhir = hipanalytics("fhir", "export", "SYN-00004", "--store", "reports/demo/clinic.sqlite", "--out", "out/fhir")
    assert fhir.returncode == 0, fhir.stderr
    bundle = json.loads((work / "out" / "fhir" / "SYN-00004.json").read_text())
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Observation", "CarePlan",
                                                                          "EpisodeOfCare"}
    # a store made by the previous version is upgraded by the installed package's own migrations
    old = work / "out" / "store-schema3.sqlite"
    old.write_bytes((ROOT / "tests" / "data" / "stores" / "store-schema3.sqlite").read_bytes())
    before = hipanalytics("store", "status", "--store", str(old))
    assert before.returncode == 0 and "needs revision 0005" in before.stdout, before.stdout + before.stderr
    listed = hipanalytics("patients", "--store", str(old))  # opening a SQLite store upgrades it
    assert listed.returncode == 0 and listed.stdout.startswith("2 patients"), listed.stdout + listed.stderr
    after = hipanalytics("store", "status", "--store", str(old))
    assert "revision 0005, up to date" in after.stdout, after.stdout + after.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out", "reports"]  # nothing written elsewhere
