"""FHIR R4: Bundles out (validated with the fhir.resources models), hip ROM Observations back in."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from hipanalytics.cli import main
from hipanalytics.fhir import SYSTEMS, FhirError, code_systems, patient_bundle, read_fhir
from hipanalytics.records import table_spec
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store

FHIR = Path(__file__).resolve().parent / "data" / "fhir"
COLUMNS = {t: [s.name for s in table_spec(t)] for t in ("patients", "measurements", "sessions")}

# Codes of FHIR R4's required bindings (fhir.resources checks structure and types, not these).
REQUIRED = {
    "Bundle.type": {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                    "history", "searchset", "collection"},
    "Observation.status": {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                           "entered-in-error", "unknown"},
    "Patient.gender": {"male", "female", "other", "unknown"},
    "CarePlan.status": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
    "CarePlan.intent": {"proposal", "plan", "order", "option"},
    "CarePlan.activity.detail.status": {"not-started", "scheduled", "in-progress", "on-hold", "completed",
                                        "cancelled", "stopped", "unknown", "entered-in-error"},
    "Timing.repeat.dayOfWeek": {"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
    "Timing.repeat.periodUnit": {"s", "min", "h", "d", "wk", "mo", "a"},
    "Procedure.status": {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                         "entered-in-error", "unknown"},
    "EpisodeOfCare.status": {"planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error"},
}


def _validate(bundle: dict) -> None:
    """Every resource through its fhir.resources (R4B) model, and the required code bindings."""
    Bundle.model_validate(bundle)
    assert bundle["type"] in REQUIRED["Bundle.type"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        kind = resource["resourceType"]
        if kind == "Observation":
            assert resource["status"] in REQUIRED["Observation.status"]
        elif kind == "Patient":
            assert resource.get("gender", "unknown") in REQUIRED["Patient.gender"]
        elif kind == "Procedure":
            assert resource["status"] in REQUIRED["Procedure.status"]
        elif kind == "EpisodeOfCare":
            assert resource["status"] in REQUIRED["EpisodeOfCare.status"]
        elif kind == "CarePlan":
            assert resource["status"] in REQUIRED["CarePlan.status"]
            assert resource["intent"] in REQUIRED["CarePlan.intent"]
            for activity in resource["activity"]:
                assert activity["detail"]["status"] in REQUIRED["CarePlan.activity.detail.status"]
                repeat = activity["detail"]["scheduledTiming"]["repeat"]
                assert set(repeat.get("dayOfWeek", [])) <= REQUIRED["Timing.repeat.dayOfWeek"]
                assert repeat["periodUnit"] in REQUIRED["Timing.repeat.periodUnit"]


def _clinic(tmp_path, n=4, seed=8) -> Path:
    """A synthetic clinic in a store, with assessors, notes (quotes, accents, a new line) and names."""
    clinic = generate_clinic(n, seed=seed)
    m = clinic["measurements"]
    clinic["measurements"] = m.assign(assessor=["AB", "CD"] * (len(m) // 2) + ["AB"] * (len(m) % 2),
                                      notes=["", 'end feel "firm"; ré-test\nnext week'] * (len(m) // 2)
                                      + [""] * (len(m) % 2))
    clinic["patients"] = clinic["patients"].assign(display_name=[f"Zoë Example {i}" for i in range(n)])
    return clinic_store(clinic, tmp_path, "a.sqlite")


def _same(a: Path, b: Path, table: str, columns=None) -> None:
    columns = columns or COLUMNS[table]
    key = columns[0]
    left = Store(a).read(table)[columns].sort_values(key).reset_index(drop=True)
    right = Store(b).read(table)[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=True)


def test_the_round_trip_store_bundle_store_keeps_every_measurement(tmp_path):
    source = _clinic(tmp_path)
    runner = CliRunner()
    out = runner.invoke(main, ["fhir", "export", "--all", "--show-name", "--sessions", "--out", str(tmp_path / "fhir"),
                               "--store", str(source)])
    assert out.exit_code == 0, out.output
    files = sorted((tmp_path / "fhir").glob("*.json"))
    assert len(files) == 4 and "4 files for 4 patients (names included)" in out.output
    for file in files:
        _validate(json.loads(file.read_text(encoding="utf-8")))
    back = runner.invoke(main, ["fhir", "import", *map(str, files), "--store", str(tmp_path / "b.sqlite")])
    assert back.exit_code == 0, back.output
    for table in ("measurements", "patients", "sessions"):
        _same(source, tmp_path / "b.sqlite", table)
    n = len(Store(source).read("measurements"))
    assert n > 50 and back.output.count("0 quarantined") == 4  # the four Bundles are one import of four tables
    assert back.output.startswith(f"4 files ({files[0].name}, {files[1].name}, {files[2].name} and 1 more): Bundle of")
    assert Store(source).read("sessions")["pain_after"].notna().sum() > 20
    again = runner.invoke(main, ["fhir", "import", *map(str, files), "--store", str(tmp_path / "b.sqlite")])
    assert again.exit_code == 0 and again.output.count("already imported (same content); nothing added") == 3
    assert "4 patients already in the store" in again.output
    one = runner.invoke(main, ["fhir", "import", str(files[0]), "--store", str(tmp_path / "b.sqlite")])
    assert one.exit_code == 0 and ", 0 imported, 0 quarantined" in one.output  # one patient's rows: all stored
    unknown = runner.invoke(main, ["fhir", "export", "NOPE", "--out", str(tmp_path / "x"), "--store", str(source)])
    assert unknown.exit_code == 1 and "not in the store: NOPE" in unknown.output and not (tmp_path / "x").exists()


def test_ndjson_bulk_files_round_trip_whatever_order_they_are_given_in(tmp_path):
    source = _clinic(tmp_path, n=3, seed=4)
    runner = CliRunner()
    out = runner.invoke(main, ["fhir", "export", "--all", "--ndjson", "--sessions", "--out", str(tmp_path / "bulk"),
                               "--store", str(source)])
    assert out.exit_code == 0, out.output
    bulk = tmp_path / "bulk"
    observations = (bulk / "Observation.ndjson").read_text(encoding="utf-8").splitlines()
    pains = Store(source).read("sessions")[["pain_before", "pain_after", "pain_next_day"]].notna().sum().sum()
    assert len(observations) == len(Store(source).read("measurements")) + pains
    for line in (bulk / "Patient.ndjson").read_text().splitlines() + observations[:20]:
        resource = json.loads(line)
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert "name" not in resource  # pseudonymous by default
    # in any order: the files are read together (pain scores in Observation.ndjson belong to the
    # Procedures of Procedure.ndjson, every resource to the Patients of Patient.ndjson)
    files = [bulk / "CarePlan.ndjson", bulk / "Observation.ndjson", bulk / "Procedure.ndjson", bulk / "Patient.ndjson"]
    back = runner.invoke(main, ["fhir", "import", *map(str, files), "--store", str(tmp_path / "b.sqlite")])
    assert back.exit_code == 0, back.output
    plans = len(Store(source).read("programs"))
    assert f"not imported {plans:>6}  CarePlan (only Patients, range-of-motion Observations, our sessions" in back.output
    _same(source, tmp_path / "b.sqlite", "measurements")
    _same(source, tmp_path / "b.sqlite", "sessions")
    _same(source, tmp_path / "b.sqlite", "patients", [c for c in COLUMNS["patients"] if c != "display_name"])


def test_an_observation_carries_the_cited_codes_and_every_column():
    tables = {
        "patients": pd.DataFrame({"patient_id": ["P/1"], "birth_year": [1980], "sex": ["male"],
                                  "involved_side": ["both"], "display_name": ["Jo Bloggs"]}),
        "measurements": pd.DataFrame({
            "measurement_id": ["M1"], "patient_id": ["P/1"], "measured_on": [pd.Timestamp("2026-01-05")],
            "side": ["right"], "joint": ["hip"], "motion": ["internal_rotation"], "position": ["prone"],
            "mode": ["passive"], "instrument": ["goniometer"], "degrees": [-4.0], "trial": [2],
            "assessor": ["KM"], "notes": [None]}),
    }
    bundle = patient_bundle(tables, "P/1")
    _validate(bundle)
    patient, obs = (e["resource"] for e in bundle["entry"])
    assert patient["identifier"] == [{"system": SYSTEMS["patient"], "value": "P/1"}] and "name" not in patient
    assert patient["birthDate"] == "1980" and patient["gender"] == "male"
    assert "Jo Bloggs" not in json.dumps(bundle)
    assert patient_bundle(tables, "P/1", show_name=True)["entry"][0]["resource"]["name"] == [{"text": "Jo Bloggs"}]
    codes = {(c["system"], c["code"]) for c in obs["code"]["coding"]}
    assert codes == {(SYSTEMS["rom"], "hip-internal-rotation"), ("http://snomed.info/sct", "299238003")}
    assert obs["category"][0]["coding"][0]["code"] == "exam"
    assert obs["valueQuantity"] == {"value": -4, "unit": "degrees", "system": "http://unitsofmeasure.org",
                                    "code": "deg"}
    assert obs["bodySite"]["coding"][0]["code"] == "24136001"
    assert obs["bodySite"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "24028007"  # right
    assert obs["method"]["coding"][0]["code"] == "passive-prone-goniometer"
    assert obs["performer"] == [{"identifier": {"system": SYSTEMS["assessor"], "value": "KM"}, "display": "KM"}]
    assert obs["component"][0]["valueInteger"] == 2 and obs["effectiveDateTime"] == "2026-01-05"
    assert "note" not in obs
    with pytest.raises(FhirError, match="'P2' is not in the store"):
        patient_bundle(tables, "P2")


def test_a_transaction_bundle_updates_on_identifiers(tmp_path):
    source = _clinic(tmp_path, n=1, seed=3)
    store = Store(source)
    tables = {t: store.read(t) for t in ("patients", "programs", "measurements")}
    pid = tables["patients"]["patient_id"].iloc[0]
    bundle = patient_bundle(tables, pid, transaction=True)
    _validate(bundle)
    first, second = bundle["entry"][0]["request"], bundle["entry"][1]["request"]
    assert first == {"method": "PUT", "url": f"Patient?identifier=urn:hipanalytics:fhir:id:patient|{pid}"}
    assert second["method"] == "PUT" and second["url"].startswith("Observation?identifier=")
    assert "|" not in second["url"].split("|", 1)[1]  # the measurement id (M|P...|...) is percent-encoded
    assert patient_bundle(tables, pid)["entry"][1]["resource"]["id"] == bundle["entry"][1]["resource"]["id"]


def test_a_care_plan_holds_the_programs_exercises_on_the_schedules_days(tmp_path):
    tables = {
        "patients": pd.DataFrame({"patient_id": ["P1"], "birth_year": [1980], "involved_side": ["left"]}),
        "measurements": pd.DataFrame(columns=["patient_id"]),
        "programs": pd.DataFrame({
            "program_id": ["P1-a"], "patient_id": ["P1"], "protocol_id": ["hip-ir-breakouts"],
            "protocol_version": ["1.0.0"], "schedule": ["three-per-week"], "start_date": [pd.Timestamp("2026-01-05")],
            "end_date": [pd.Timestamp("2026-02-01")], "breakout_slot": [None],
            "choices": ["ninety-ninety=ninety-ninety-ir-pails"], "dose_overrides": [None], "omit": [None],
            "reason": ["pain after daily breakouts"]}),
    }
    bundle = patient_bundle(tables, "P1", today=date(2026, 1, 20))
    _validate(bundle)
    plan = bundle["entry"][1]["resource"]
    assert plan["status"] == "active" and plan["period"] == {"start": "2026-01-05", "end": "2026-02-01"}
    assert plan["note"] == [{"text": "pain after daily breakouts"}]
    timing = {(a["detail"]["code"]["coding"][0]["code"], tuple(a["detail"]["scheduledTiming"]["repeat"].get(
        "dayOfWeek", ())), tuple(a["detail"]["scheduledTiming"]["repeat"]["timeOfDay"])) for a in plan["activity"]}
    breakouts = ("mon", "wed", "fri")
    assert ("quadruped-band-ir", breakouts, ("08:00:00",)) in timing  # the protocol's breakout slot: morning
    assert ("ninety-ninety-ir-pails", breakouts, ("08:00:00",)) in timing  # the chosen variant
    assert not any(code == "ninety-ninety-ir-stretch" for code, _, _ in timing)
    # the Hip Movement Sequence twice a day: in the breakout session on breakout days, on its own otherwise
    sequence = {(days, times) for code, days, times in timing if code == "hip-movement-sequence"}
    assert sequence == {((), ("18:00:00",)), (breakouts, ("08:00:00",)), (("tue", "thu", "sat", "sun"), ("08:00:00",))}
    pails = next(a for a in plan["activity"] if a["detail"]["code"]["coding"][0]["code"] == "ninety-ninety-ir-pails")
    assert "3 rounds of a circuit" in pails["detail"]["description"]
    assert patient_bundle(tables, "P1", today=date(2026, 3, 1))["entry"][1]["resource"]["status"] == "completed"


def test_observations_a_fhir_server_returns_come_back_into_the_store(tmp_path):
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(main, ["fhir", "import", str(FHIR / "server-searchset.json"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "Bundle of 6 resources: 3 gave 1 patients, 2 measurements" in result.output
    for line in ("not imported      1  Observation not of joint range of motion or session pain (http://loinc.org|8867-4)",
                 "not imported      1  Observation with status entered-in-error",
                 "not imported      1  OperationOutcome", "in part           1  Patient.birthDate: the year kept",
                 "in part           1  Observation.effectiveDateTime: the date kept"):
        assert line in result.output
    m = Store(store).read("measurements").sort_values("side")
    assert m["patient_id"].tolist() == ["NC-17", "NC-17"]  # via Patient/1234 and the server's absolute URL
    assert m["degrees"].tolist() == [24.5, 31.0] and m["side"].tolist() == ["left", "right"]
    assert m["measured_on"].dt.strftime("%Y-%m-%d").tolist() == ["2026-10-05"] * 2  # the date as written
    assert m["assessor"].tolist()[0] == "KM" and m["notes"].tolist()[0] == 'end feel firm; "pinch" in the groin at end range'
    p = Store(store).read("patients")
    assert p[["patient_id", "birth_year", "sex", "involved_side"]].values.tolist() == [["NC-17", 1979, "female", "left"]]
    again = CliRunner().invoke(main, ["fhir", "import", str(FHIR / "server-searchset.json"), "--store", str(store)])
    assert "already imported" in again.output and len(Store(store).read("measurements")) == 2


def _broken(tmp_path) -> Path:
    bundle = json.loads((FHIR / "server-searchset.json").read_text())
    entries = bundle["entry"]
    entries[0]["resource"]["valueQuantity"] = {"value": 0.43, "unit": "rad", "system": "http://unitsofmeasure.org",
                                               "code": "rad"}
    del entries[1]["resource"]["method"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(bundle))
    return path


def test_bad_observations_are_refused_naming_the_entry_and_the_element(tmp_path):
    path = _broken(tmp_path)
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(store)])
    assert result.exit_code == 1
    assert ("degrees (FHIR entry 1, Observation.valueQuantity): '0.43 rad': not a number of degrees"
            in result.output)
    assert "position (FHIR entry 2, Observation.method): (empty): empty cell in a required column" in result.output
    assert "nothing was imported" in result.output
    assert Store(store).read("measurements").empty and Store(store).read("patients").empty  # all or nothing


def test_quarantine_keeps_the_good_rows_and_accounts_for_every_resource(tmp_path):
    path = _broken(tmp_path)
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--quarantine", "--store", str(store),
                                       "--report", str(tmp_path / "report.csv")])
    assert result.exit_code == 3, result.output
    rows = read_fhir(path)
    assert rows.resources_read == rows.used + rows.known + sum(rows.skipped.values()) == 6
    assert "measurements: 2 rows read, 0 imported, 2 quarantined" in result.output
    assert len(Store(store).read("patients")) == 1
    quarantine = next(tmp_path.glob("broken-measurements-quarantine-*.csv"))
    bad = pd.read_csv(quarantine, dtype=str, keep_default_na=False)
    assert bad["degrees"].tolist() == ["0.43 rad", "31"] and bad["problems"].str.len().gt(0).all()
    report = pd.read_csv(tmp_path / "report.csv", dtype=str)
    assert report["column"].str.contains("FHIR entry 2, Observation.method").any()


def test_one_bad_patient_is_set_aside_alone_and_a_missing_patient_is_named(tmp_path):
    store = _clinic(tmp_path)
    with Store(store) as s:
        tables = {t: s.read(t) for t in ("patients", "programs", "measurements", "sessions")}
    pid = tables["patients"]["patient_id"].iloc[0]
    bundle = patient_bundle(tables, pid)
    entries = bundle["entry"]
    patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    patient.pop("id", None)
    patient.pop("identifier", None)  # nothing says who this is
    observations = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Observation"]
    observations[0]["subject"] = {"reference": "Patient/nobody-here"}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    fresh = tmp_path / "fresh.sqlite"
    with Store(fresh) as s:  # the patient is known here, so the other observations import
        s.add_records("patients", tables["patients"].iloc[:1])
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--quarantine", "--store", str(fresh)])
    assert result.exit_code == 3, result.output
    assert "patient_id (FHIR entry 1, Patient.identifier): (empty): empty cell in a required column" in result.output
    entry = next(i for i, e in enumerate(entries, start=1) if e["resource"] is observations[0])
    assert (f"patient_id (FHIR entry {entry}, Observation.subject): 'Patient/nobody-here': refers to "
            "Patient/nobody-here, a Patient that is in no file read") in result.output
    imported = len(Store(fresh).read("measurements"))
    assert imported == len(observations) - 1 > 0  # every other resource imported


def test_strict_mode_is_all_or_nothing_across_the_tables_of_one_file(tmp_path):
    store = tmp_path / "s.sqlite"
    assert CliRunner().invoke(main, ["fhir", "import", str(FHIR / "server-searchset.json"), "--store",
                                     str(store)]).exit_code == 0
    bundle = json.loads((FHIR / "server-searchset.json").read_text())
    bundle["entry"][0]["resource"]["valueQuantity"]["value"] = 26  # a stored measurement, changed
    bundle["entry"].append({"resource": {  # a new patient, valid on its own
        "resourceType": "Patient", "id": "999", "identifier": [{"system": SYSTEMS["patient"], "value": "NC-18"}],
        "extension": [{"url": SYSTEMS["involved-side"], "valueCode": "right"}], "birthDate": "1990"}})
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(store)])
    assert result.exit_code == 1, result.output
    assert "'NC-17/visit-1/L1' is already stored with different values" in result.output
    assert Store(store).read("patients")["patient_id"].tolist() == ["NC-17"]  # NC-18 not stored either


def test_next_day_pain_is_an_observation_dated_the_morning_after_and_comes_back(tmp_path):
    tables = {
        "patients": pd.DataFrame({"patient_id": ["P1"], "birth_year": [1980], "involved_side": ["left"]}),
        "measurements": pd.DataFrame(columns=["patient_id"]),
        "sessions": pd.DataFrame({"session_id": ["S1"], "patient_id": "P1", "performed_on": pd.to_datetime(["2026-01-05"]),
                                  "session": ["breakouts"], "completion": ["full"], "pain_before": pd.array([2], "Int64"),
                                  "pain_after": pd.array([4], "Int64"), "pain_next_day": pd.array([5], "Int64")}),
    }
    bundle = patient_bundle(tables, "P1", sessions=True)
    _validate(bundle)
    pains = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert [(p["extension"][0]["valueCode"], p["effectiveDateTime"], p["valueInteger"]) for p in pains] == [
        ("before", "2026-01-05", 2), ("after", "2026-01-05", 4), ("next-day", "2026-01-06", 5)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0, result.output
    back = Store(tmp_path / "s.sqlite").read("sessions")
    assert back[["pain_before", "pain_after", "pain_next_day"]].iloc[0].tolist() == [2, 4, 5]


def test_episodes_of_care_go_out_as_episodeofcare_and_a_discharge_comes_back(tmp_path):
    programs = pd.DataFrame({"program_id": ["A", "B", "C"], "patient_id": "P1", "protocol_id": "hip-ir-breakouts",
                             "protocol_version": "1.0.0", "schedule": ["daily", "three-per-week", "daily"],
                             "start_date": pd.to_datetime(["2026-04-06", "2026-04-20", "2026-12-07"]),
                             "end_date": pd.to_datetime(["2026-04-19", "2026-07-12", "2027-01-17"])})
    episodes = pd.DataFrame({"episode_id": ["P1-E20260406"], "patient_id": ["P1"],
                             "start_date": pd.to_datetime(["2026-04-06"]), "end_date": pd.to_datetime(["2026-07-10"]),
                             "discharge_reason": ["goals_met"], "notes": [None]})
    tables = {"patients": pd.DataFrame({"patient_id": ["P1"], "birth_year": [1980], "involved_side": ["left"]}),
              "measurements": pd.DataFrame(columns=["patient_id"]), "programs": programs, "episodes": episodes}
    bundle = patient_bundle(tables, "P1", today=date(2026, 12, 20))
    _validate(bundle)
    care = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"]
    assert [(c["status"], c["period"]) for c in care] == [
        ("finished", {"start": "2026-04-06", "end": "2026-07-10"}), ("active", {"start": "2026-12-07"})]
    first = {e["url"].rsplit(":", 1)[1]: e for e in care[0]["extension"]}
    assert first["discharge-reason"]["valueCoding"]["code"] == "goals_met" and first["episode-end"]["valueCode"] == "discharged"
    plans = [e["valueReference"]["identifier"]["value"] for e in care[0]["extension"] if e["url"].endswith("episode-program")]
    assert plans == ["A", "B"]
    path = tmp_path / "p1.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0, result.output
    back = Store(tmp_path / "s.sqlite").read("episodes").sort_values("start_date")
    assert back["episode_id"].tolist() == ["P1-E20260406", "P1-E20261207"]
    assert back["end_date"].tolist()[0] == pd.Timestamp("2026-07-10") and pd.isna(back["end_date"].tolist()[1])
    assert back["discharge_reason"].tolist()[0] == "goals_met" and pd.isna(back["discharge_reason"].tolist()[1])
    # programs that ended without a discharge: an end on the EpisodeOfCare, but no discharge when read back
    ended = patient_bundle({**tables, "episodes": episodes.iloc[0:0]}, "P1", today=date(2027, 6, 1))
    last = [e["resource"] for e in ended["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"][-1]
    assert last["status"] == "finished" and last["period"]["end"] == "2027-01-17"
    path.write_text(json.dumps(ended))
    again = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(tmp_path / "t.sqlite")])
    assert again.exit_code == 0, again.output
    assert Store(tmp_path / "t.sqlite").read("episodes")["end_date"].isna().all()


def test_sessions_come_back_with_their_pain_scores_and_clashes_are_refused(tmp_path):
    tables = {
        "patients": pd.DataFrame({"patient_id": ["P1"], "birth_year": [1980], "involved_side": ["left"]}),
        "measurements": pd.DataFrame(columns=["patient_id"]),
        "sessions": pd.DataFrame({"session_id": ["S1", "S2"], "patient_id": "P1",
                                  "performed_on": pd.to_datetime(["2026-01-05", "2026-01-06"]),
                                  "performed_at": ["18:30", None], "session": ["breakouts", "sequence"],
                                  "completion": ["partial", "skipped"], "rounds_done": pd.array([2, None], "Int64"),
                                  "pain_before": pd.array([3, None], "Int64"), "pain_after": pd.array([5, None], "Int64"),
                                  "notes": ["stopped: groin pinch", None]}),
    }
    bundle = patient_bundle(tables, "P1", sessions=True)
    _validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Patient", "Procedure", "Observation", "Observation", "Procedure"]
    first, before, after, second = (e["resource"] for e in bundle["entry"][1:])
    assert first["status"] == "completed" and second["status"] == "not-done"
    assert before["valueInteger"] == 3 and after["valueInteger"] == 5
    assert before["partOf"][0]["reference"] == f"urn:uuid:{first['id']}"
    path = tmp_path / "sessions.json"
    bundle["entry"] = bundle["entry"][:1] + bundle["entry"][2:4][::-1] + bundle["entry"][1:2] + bundle["entry"][4:]
    path.write_text(json.dumps(bundle))  # pain scores before their Procedure: still theirs
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    back = Store(store).read("sessions").sort_values("session_id")
    assert back[["pain_before", "pain_after", "rounds_done"]].iloc[0].tolist() == [3, 5, 2]
    assert back["completion"].tolist() == ["partial", "skipped"] and back["performed_at"].tolist()[0] == "18:30"
    assert back["notes"].tolist()[0] == "stopped: groin pinch"
    twice = json.loads(path.read_text())
    extra = json.loads(json.dumps(twice["entry"][2]))  # a second "before" score for the same session
    extra["resource"]["valueInteger"] = 7
    twice["entry"].append(extra)
    orphan = json.loads(json.dumps(extra))
    orphan["resource"]["partOf"] = [{"reference": "Procedure/elsewhere"}]
    twice["entry"].append(orphan)
    path.write_text(json.dumps(twice))
    refused = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", str(tmp_path / "t.sqlite")])
    assert refused.exit_code == 1
    assert ("pain_before (FHIR entry 4, pain Observation (LOINC 72514-3, before) part of the Procedure): '3 / 7': "
            "not a whole number") in refused.output
    rows = read_fhir(path)
    assert rows.skipped["pain score (LOINC 72514-3) not part of a session in this file, or not said to be before, "
                        "after or the morning after it"] == 1
    assert rows.resources_read == rows.used + rows.known + sum(rows.skipped.values())


def test_files_that_are_not_fhir_are_refused_in_one_line(tmp_path):
    csv = tmp_path / "measurements.csv"
    csv.write_text("patient_id,degrees\nP1,30\n")
    result = CliRunner().invoke(main, ["fhir", "import", str(csv), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1 and "line 1: not JSON" in result.output and "Traceback" not in result.output
    ndjson = tmp_path / "Observation.ndjson"
    ndjson.write_text('{"resourceType": "Patient", "id": "a"}\n{"resourceType": "Observation", oops}\n')
    with pytest.raises(FhirError, match=r"line 2: not JSON"):
        read_fhir(ndjson)
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    with pytest.raises(FhirError, match="empty"):
        read_fhir(empty)
    # a JSON array is neither a Bundle nor NDJSON; JSON nested 200,000 deep is refused, not a RecursionError
    store = str(tmp_path / "s.sqlite")
    array = tmp_path / "array.json"
    array.write_text("[1, 2, 3]\n")
    for path, words in ((array, "the file is one JSON array, not a FHIR Bundle"),
                        (tmp_path / "deep.json", "nested more deeply than Python's parser allows")):
        if path.name == "deep.json":
            path.write_text('{"resourceType": "Bundle", "entry": ' + "[" * 200_000 + "]" * 200_000 + "}")
        result = CliRunner().invoke(main, ["fhir", "import", str(path), "--store", store, "--quarantine"])
        assert result.exit_code == 1 and words in result.output and "internal error" not in result.output, result.output
    lines = tmp_path / "lines.ndjson"
    lines.write_text('{"resourceType": "Patient", "id": "a"}\n[1, 2]\n')
    with pytest.raises(FhirError, match=r"line 2: a JSON array, not a resource"):
        read_fhir(lines)


def test_the_local_code_systems_are_valid_and_the_mapping_document_lists_the_codes():
    text = (Path(__file__).resolve().parents[1] / "docs" / "fhir.md").read_text()
    for system in code_systems():
        get_fhir_model_class("CodeSystem").model_validate(system)
        assert system["count"] == len(system["concept"]) and f"`{system['url']}`" in text
    for code in ("299238003", "24136001", "7771000", "24028007", "`deg`", "`exam`"):
        assert code in text
    methods = code_systems()[1]["concept"]
    assert len(methods) == 2 * 3 * 3 and len({c["code"] for c in methods}) == 18
