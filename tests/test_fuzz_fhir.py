"""Property-based fuzzing of the FHIR import: Bundles of well-formed and mangled resources.

Hypothesis takes a Patient, an Observation, a session's Procedure and its pain score as we write
them and replaces elements with junk of
any JSON type (strings, numbers, lists, objects, null), drops elements, adds resources of other
kinds and entries without a resource. For every Bundle, `hipanalytics fhir import --quarantine`
must never end in a traceback (exit 0, 1 or 3, never 4) and must account for every resource:
resources read = gave a row + patients already stored + not imported, and the rows given =
imported + quarantined + duplicates + skipped.

``make test`` runs a fixed set of examples (derandomised); HIPANALYTICS_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipanalytics.cli import main
from hipanalytics.fhir import patient_bundle, read_fhir

EXAMPLES = int(os.environ.get("HIPANALYTICS_FUZZ_EXAMPLES", "40"))

TABLES = {
    "patients": pd.DataFrame({"patient_id": ["P001"], "birth_year": [1970], "sex": ["female"],
                              "involved_side": ["right"]}),
    "measurements": pd.DataFrame({
        "measurement_id": ["M1"], "patient_id": ["P001"], "measured_on": [pd.Timestamp("2026-01-05")],
        "side": ["right"], "joint": ["hip"], "motion": ["internal_rotation"], "position": ["seated_90"],
        "mode": ["active"], "instrument": ["inclinometer"], "degrees": [31.5], "trial": [1], "assessor": ["AB"],
        "notes": ["tight"]}),
    "sessions": pd.DataFrame({
        "session_id": ["S1"], "patient_id": ["P001"], "performed_on": [pd.Timestamp("2026-01-05")],
        "performed_at": ["08:00"], "session": ["breakouts"], "completion": ["partial"], "rounds_done": [2],
        "pain_before": [2], "pain_after": [4], "notes": ["pinch"]}),
}
PATIENT, OBSERVATION, PROCEDURE, PAIN, _ = (e["resource"] for e in patient_bundle(TABLES, "P001", sessions=True)["entry"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.integers(10**18, 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(["deg", "rad", "7771000", "24028007", "left", "", "2026-13-01",
                                              "urn:hipanalytics:fhir:id:patient", "Patient/1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["system", "code", "value", "coding", "reference", "identifier", "text", "url",
                         "valueCodeableConcept", "extension", "unit", "valueInteger", "valueCode", "partOf"]),
        children, max_size=4),
    max_leaves=12)


@st.composite
def mangled(draw, base: dict) -> dict:
    resource = json.loads(json.dumps(base))
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=4, unique=True)):
        if key == "resourceType":
            continue
        if draw(st.booleans()):
            del resource[key]
        else:
            resource[key] = draw(json_values)
    return resource


entries = st.lists(st.one_of(
    mangled(OBSERVATION).map(lambda r: {"resource": r}),
    mangled(PATIENT).map(lambda r: {"resource": r}),
    mangled(PROCEDURE).map(lambda r: {"resource": r}),
    mangled(PAIN).map(lambda r: {"resource": r}),
    st.just({"resource": OBSERVATION}),
    st.just({"resource": PROCEDURE}),
    st.just({"resource": {"resourceType": "CarePlan", "status": "active"}}),
    st.just({"fullUrl": "urn:uuid:x"}),
    json_values.map(lambda v: {"resource": v}),
), min_size=1, max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(entries)
def test_any_bundle_is_imported_or_refused_with_every_resource_accounted_for(bundle_entries):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundle.json"
        path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": bundle_entries}))
        rows = read_fhir(path)
        assert rows.resources_read == len(bundle_entries)
        assert rows.resources_read == rows.used + rows.known + sum(rows.skipped.values())
        result = CliRunner().invoke(main, ["fhir", "import", str(path), "--quarantine", "--store",
                                           str(Path(folder) / "s.sqlite")])
        assert result.exit_code in (0, 1, 3), result.output
        if result.exit_code == 1:
            return
        for line in result.output.splitlines():
            counts = re.search(r"-> (\w+): (\d+) rows read, (\d+) imported, (\d+) quarantined, (\d+) duplicates, "
                               r"(\d+) skipped", line)
            if counts:
                table, read, *parts = counts.groups()
                assert int(read) == len(rows.tables[table]) == sum(map(int, parts))


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, derandomize=EXAMPLES <= 40)
@given(depth=st.integers(1, 300_000), element=st.sampled_from(["entry", "valueQuantity", "subject", "code"]),
       array=st.booleans())
def test_json_nested_to_any_depth_is_imported_or_refused_never_a_crash(depth, element, array):
    opening, closing = ("[", "]") if array else ('{"a": ', "}")
    deep = opening * depth + ("1" if not array else "") + closing * depth
    observation = json.dumps(OBSERVATION)[:-1] + f', "{element}": DEEP}}'
    text = ('{"resourceType": "Bundle", "type": "collection", "entry": DEEP}' if element == "entry" else
            '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ' + observation + "}]}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundle.json"
        path.write_text(text.replace("DEEP", deep))
        result = CliRunner().invoke(main, ["fhir", "import", str(path), "--quarantine", "--store",
                                           str(Path(folder) / "s.sqlite")])
        assert result.exit_code in (0, 1, 3) and "internal error" not in result.output, result.output
