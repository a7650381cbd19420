"""HL7 FHIR R4: a patient's ROM measurements, programs and sessions out as a Bundle, and back in.

:func:`patient_bundle` turns one patient's records into a FHIR R4 (4.0.1) Bundle: the Patient
(pseudonymous: the clinic's id, never the name unless asked), one Observation per measurement
(each trial its own Observation, so nothing is averaged away and the round trip is exact) and one
CarePlan per program (its exercises as activities, each with the days and times of the schedule)
and, when asked, each logged session as a Procedure with its NPRS pain scores (LOINC 72514-3).
:func:`read_fhir` reads Bundles (JSON) or NDJSON (the bulk-data format: one resource per line)
back into our tables, and :func:`import_fhir` imports them through the same validation,
quarantine and row accounting as any file.

Codes. Standard codes are used where one was found and verified; the field-by-field mapping and
the sources are in ``docs/fhir.md``:

- Observation.code: SNOMED CT 299238003 "Hip joint - range of movement (observable entity)"
  (DESIGN.md section 10; UMLS C0576002), with our own code naming the motion, because no standard
  code for hip *internal rotation* range could be verified here (LOINC has per-motion range codes
  for the shoulder, e.g. 41316-1, but its release is not reachable from this project's machines,
  and we do not guess codes).
- Observation.category: ``exam`` of HL7's observation-category code system (FHIR R4).
- valueQuantity: UCUM ``deg`` (degree of plane angle).
- bodySite: SNOMED CT 24136001 "Hip joint structure"; laterality SNOMED CT 7771000 "Left" and
  24028007 "Right" (HL7 FHIR value set bodystructure-laterality), in an extension of ours since R4
  has no laterality element.
- Session pain scores: LOINC 72514-3 "Pain severity - 0-10 verbal numeric rating [Score] -
  Reported", category ``survey``.
- Everything else (motion, the method = mode + test position + instrument, the trial number,
  exercises, session templates) is in local code systems named ``urn:hipanalytics:fhir:CodeSystem:...``,
  published as CodeSystem resources by :func:`code_systems`.

Examples
--------
>>> import pandas as pd
>>> tables = {"patients": pd.DataFrame({"patient_id": ["P1"], "birth_year": [1980], "sex": ["female"],
...                                     "involved_side": ["left"]}),
...           "measurements": pd.DataFrame({"measurement_id": ["M1"], "patient_id": ["P1"],
...               "measured_on": [pd.Timestamp("2026-01-05")], "side": ["left"], "joint": ["hip"],
...               "motion": ["internal_rotation"], "position": ["seated_90"], "mode": ["active"],
...               "instrument": ["inclinometer"], "degrees": [31.5], "trial": [1], "assessor": ["AB"]})}
>>> bundle = patient_bundle(tables, "P1")
>>> [e["resource"]["resourceType"] for e in bundle["entry"]]
['Patient', 'Observation']
>>> obs = bundle["entry"][1]["resource"]
>>> obs["valueQuantity"]
{'value': 31.5, 'unit': 'degrees', 'system': 'http://unitsofmeasure.org', 'code': 'deg'}
>>> obs["method"]["coding"][0]["code"]
'active-seated_90-inclinometer'
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from .config import safe_filename
from .errors import HipAnalyticsError
from .records import ValidationReport, table_spec

__all__ = ["FHIR_VERSION", "SYSTEMS", "FhirError", "FhirRows", "code_systems", "patient_bundle", "write_fhir",
           "read_fhir", "import_fhir"]

FHIR_VERSION = "4.0.1"
"""The FHIR release written (R4). Our resources are also valid R4B (4.3.0): Patient, Observation, Procedure,
CarePlan and Bundle did not change between the two."""

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_LOCAL = "urn:hipanalytics:fhir"

SYSTEMS = {
    # identifiers (the clinic's own ids, as in the store)
    "patient": f"{_LOCAL}:id:patient",
    "measurement": f"{_LOCAL}:id:measurement",
    "program": f"{_LOCAL}:id:program",
    "assessor": f"{_LOCAL}:id:assessor",
    "session": f"{_LOCAL}:id:session",
    "pain": f"{_LOCAL}:id:pain-score",
    "episode": f"{_LOCAL}:id:episode",
    # local code systems (published by code_systems())
    "rom": f"{_LOCAL}:CodeSystem:rom",
    "method": f"{_LOCAL}:CodeSystem:rom-method",
    "component": f"{_LOCAL}:CodeSystem:rom-component",
    "exercise": f"{_LOCAL}:CodeSystem:exercise",
    "session-template": f"{_LOCAL}:CodeSystem:session",
    "discharge-reason": f"{_LOCAL}:CodeSystem:discharge-reason",
    # local extensions
    "laterality": f"{_LOCAL}:StructureDefinition:laterality",
    "involved-side": f"{_LOCAL}:StructureDefinition:involved-side",
    "site": f"{_LOCAL}:StructureDefinition:site",
    "cohort": f"{_LOCAL}:StructureDefinition:cohort",
    "allocation": f"{_LOCAL}:StructureDefinition:allocation",
    "allocated-on": f"{_LOCAL}:StructureDefinition:allocated-on",
    "completion": f"{_LOCAL}:StructureDefinition:completion",
    "rounds-done": f"{_LOCAL}:StructureDefinition:rounds-done",
    "performed-at": f"{_LOCAL}:StructureDefinition:performed-at",
    "pain-timing": f"{_LOCAL}:StructureDefinition:pain-timing",
    "episode-end": f"{_LOCAL}:StructureDefinition:episode-end",
    "episode-program": f"{_LOCAL}:StructureDefinition:episode-program",
    "protocol": f"{_LOCAL}:protocol",
}
"""The URIs of our identifiers, local code systems and extensions. They are names, not
addresses: nothing is fetched from them."""

# Verified standard codes (sources in docs/fhir.md).
_HIP_ROM = {"system": SNOMED, "code": "299238003", "display": "Hip joint - range of movement"}
_HIP_JOINT = {"system": SNOMED, "code": "24136001", "display": "Hip joint structure"}
_LATERALITY = {"left": {"system": SNOMED, "code": "7771000", "display": "Left"},
               "right": {"system": SNOMED, "code": "24028007", "display": "Right"}}
_EXAM = {"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}
_SURVEY = {"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}
_NPRS = {"system": LOINC, "code": "72514-3", "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}
_GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}

_POSITION_TEXT = {"seated_90": "seated, hip at 90 degrees", "supine_90": "supine, hip at 90 degrees",
                  "prone": "prone, hip extended"}
_NAMESPACE = uuid.UUID("1b7c5b4e-2f0a-5d0e-9a53-6c1f1d3f6a20")  # fixed: the same record keeps its id


class FhirError(HipAnalyticsError):
    """A file that is not FHIR JSON/NDJSON we can read, or a patient to export who is not in the
    store (the message says which and why)."""


def _uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}|{key}"))


def _text(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _json_text(value) -> str:
    """A JSON value as text, as written: a string as it is, null as empty, anything else (a number, a
    list, an object) as its JSON, which validation then shows where a text was expected."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _day(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _number(value):
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _words(code: str) -> str:
    return code.replace("_", " ")


def _rom_code(joint: str, motion: str) -> dict:
    return {"system": SYSTEMS["rom"], "code": f"{joint}-{motion}".replace("_", "-"),
            "display": f"{joint.capitalize()} {_words(motion)} range of motion"}


def _method_code(mode: str, position: str, instrument: str) -> dict:
    return {"system": SYSTEMS["method"], "code": f"{mode}-{position}-{instrument}",
            "display": f"{mode.capitalize()} range, {_POSITION_TEXT.get(position, _words(position))}, {instrument}"}


def _enum(table: str, column: str) -> tuple[str, ...]:
    return next(s.allowed for s in table_spec(table) if s.name == column)


def code_systems() -> list[dict]:
    """Our local code systems as FHIR CodeSystem resources (for a terminology server or the docs).

    Returns
    -------
    list of dict
        ``rom`` (joint and motion), ``rom-method`` (mode, test position and instrument: one code
        per combination, the three as properties), ``rom-component`` (the trial number),
        ``exercise`` (the exercises of the shipped protocols), ``session`` (their session
        templates) and ``discharge-reason``.

    Examples
    --------
    >>> [cs["name"] for cs in code_systems()]  # doctest: +NORMALIZE_WHITESPACE
    ['HipanalyticsRom', 'HipanalyticsRomMethod', 'HipanalyticsRomComponent', 'HipanalyticsExercise',
     'HipanalyticsSession', 'HipanalyticsDischargeReason']
    >>> code_systems()[1]["concept"][0]["code"]
    'active-seated_90-goniometer'
    """
    from .protocol import list_protocols, load_protocol

    def system(key, name, title, description, concepts, **extra):
        return {"resourceType": "CodeSystem", "id": f"hipanalytics-{key}", "url": SYSTEMS[key], "name": name,
                "title": title, "status": "active", "experimental": False, "publisher": "hipanalytics",
                "description": description, "caseSensitive": True, "content": "complete",
                "count": len(concepts), **extra, "concept": concepts}

    rom = [{k: v for k, v in _rom_code("hip", m).items() if k != "system"} for m in _enum("measurements", "motion")]
    methods = []
    for mode in _enum("measurements", "mode"):
        for position in _enum("measurements", "position"):
            for instrument in _enum("measurements", "instrument"):
                code = _method_code(mode, position, instrument)
                methods.append({"code": code["code"], "display": code["display"], "property": [
                    {"code": "mode", "valueCode": mode}, {"code": "position", "valueCode": position},
                    {"code": "instrument", "valueCode": instrument}]})
    exercises, sessions = {}, {}
    for listed in list_protocols().itertuples():
        if listed.problem:
            continue
        protocol = load_protocol(Path(listed.path))
        for exercise in protocol.exercises:
            exercises.setdefault(exercise.id, {"code": exercise.id, "display": exercise.name})
        for template in protocol.sessions:
            sessions.setdefault(template.id, {"code": template.id, "display": template.title})
    facets = [{"code": c, "type": "code", "description": d} for c, d in (
        ("mode", "active or passive range"), ("position", "test position (hip IR differs by 3-13 degrees "
                                                          "between positions: never mixed in one series)"),
        ("instrument", "measuring instrument (an inclinometer reads ~4.5 degrees more hip IR than a "
                       "goniometer: never mixed in one series)"))]
    return [
        system("rom", "HipanalyticsRom", "Joint range of motion by motion",
               "A joint's range of motion in one direction, measured in degrees. Used with SNOMED CT "
               "299238003 (hip joint - range of movement), which does not name the motion.", rom),
        system("method", "HipanalyticsRomMethod", "How a range of motion was measured",
               "Active or passive range, the test position and the instrument, as one method.", methods,
               property=facets),
        system("component", "HipanalyticsRomComponent", "Parts of a range-of-motion observation",
               "Observation components.", [{"code": "trial", "display": "Trial number within the visit"}]),
        system("exercise", "HipanalyticsExercise", "Exercises of the shipped protocols",
               "Exercise ids of hipanalytics' protocols (protocol files in the package).", list(exercises.values())),
        system("session-template", "HipanalyticsSession", "Session templates of the shipped protocols",
               "Session template ids of hipanalytics' protocols; a clinic's own templates (e.g. custom) add codes.",
               list(sessions.values()), content="fragment"),
        system("discharge-reason", "HipanalyticsDischargeReason", "Why an episode of care ended",
               "The discharge reasons of hipanalytics' episodes table.",
               [{"code": c, "display": c.replace("_", " ")} for c in _enum("episodes", "discharge_reason")]),
    ]


# ----------------------------------------------------------------------------------------------
# Out: one Bundle per patient
# ----------------------------------------------------------------------------------------------

def _identifier(kind: str, value: str) -> dict:
    return {"system": SYSTEMS[kind], "value": value}


def _patient(row, show_name: bool) -> dict:
    pid = row["patient_id"]
    extension = [{"url": SYSTEMS["involved-side"], "valueCode": row["involved_side"]}]
    extension += [{"url": SYSTEMS[k], "valueString": _text(row.get(k))} for k in ("site", "cohort") if _text(row.get(k))]
    if _text(row.get("allocation")):  # the randomised arm (a ResearchSubject would need a ResearchStudy)
        extension.append({"url": SYSTEMS["allocation"], "valueCode": row["allocation"]})
    if pd.notna(row.get("allocated_on")):
        extension.append({"url": SYSTEMS["allocated-on"], "valueDate": _day(row["allocated_on"])})
    resource = {"resourceType": "Patient", "id": _uuid("Patient", pid), "extension": extension,
                "identifier": [_identifier("patient", pid)]}
    if show_name and _text(row.get("display_name")):
        resource["name"] = [{"text": row["display_name"]}]
    if _text(row.get("sex")):
        resource["gender"] = _GENDER[row["sex"]]
    if _text(row.get("birth_year")):
        resource["birthDate"] = f"{int(row['birth_year']):04d}"
    return resource


def _subject(pid: str) -> dict:
    return {"reference": f"urn:uuid:{_uuid('Patient', pid)}", "identifier": _identifier("patient", pid)}


def _observation(row) -> dict:
    side, joint = row["side"], _text(row.get("joint")) or "hip"
    codes = [_rom_code(joint, row["motion"])] + ([_HIP_ROM] if joint == "hip" else [])
    site = {"text": f"{side} {joint} joint"}
    if joint == "hip":
        site = {"extension": [{"url": SYSTEMS["laterality"], "valueCodeableConcept": {"coding": [_LATERALITY[side]]}}],
                "coding": [_HIP_JOINT], **site}
    method = _method_code(row["mode"], row["position"], row["instrument"])
    resource = {
        "resourceType": "Observation", "id": _uuid("Observation", row["measurement_id"]),
        "identifier": [_identifier("measurement", row["measurement_id"])],
        "status": "final",
        "category": [{"coding": [_EXAM]}],
        "code": {"coding": codes, "text": codes[0]["display"]},
        "subject": _subject(row["patient_id"]),
        "effectiveDateTime": _day(row["measured_on"]),
    }
    if _text(row.get("assessor")):
        resource["performer"] = [{"identifier": _identifier("assessor", row["assessor"]), "display": row["assessor"]}]
    resource |= {
        "valueQuantity": {"value": _number(row["degrees"]), "unit": "degrees", "system": UCUM, "code": "deg"},
        "bodySite": site,
        "method": {"coding": [method], "text": method["display"]},
    }
    if _text(row.get("notes")):
        resource["note"] = [{"text": row["notes"]}]
    if _text(row.get("trial")):
        resource["component"] = [{"code": {"coding": [{"system": SYSTEMS["component"], "code": "trial",
                                                       "display": "Trial number within the visit"}]},
                                  "valueInteger": int(row["trial"])}]
    return resource


def _timings(program) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """``(session template, weekdays, times)`` of a program's schedule: slots doing the same template
    on the same days share one timing."""
    from .protocol import WEEKDAYS

    schedule = program.resolved_schedule
    slot_id = program.breakout_slot or schedule.breakout_slot
    days: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for slot in schedule.slots:
        if slot.id == slot_id:
            breakout = tuple(d for d in WEEKDAYS if d in schedule.breakout_days)
            other = tuple(d for d in WEEKDAYS if d not in schedule.breakout_days)
            parts = [(schedule.breakout_session, breakout), (slot.session, other)]
        else:
            parts = [(slot.session, WEEKDAYS)]
        for session, weekdays in parts:
            if weekdays:
                days.setdefault((session, weekdays), []).append(slot.time.strftime("%H:%M:%S"))
    return [(session, weekdays, tuple(times)) for (session, weekdays), times in days.items()]


_PLAN_KEY = ("protocol_id", "protocol_version", "schedule", "breakout_slot", "choices", "dose_overrides", "omit")
"""The program columns a CarePlan's activities depend on (programs that share them share activities)."""


def _plan_parts(row) -> dict:
    """What a CarePlan takes from the program's protocol and schedule: its activities (timing
    without dates) and texts."""
    from .program import prescription, program_from_record

    program = program_from_record(row)
    rx = prescription(program)
    activities = []
    for session, weekdays, times in _timings(program):
        title = program.protocol.session(session).title
        for item in rx[rx["session"] == session].itertuples():
            rounds = f"{item.rounds} rounds of a circuit; " if item.in_circuit else ""
            repeat = {"frequency": len(times), "period": 1, "periodUnit": "d", "timeOfDay": list(times)}
            if len(weekdays) < 7:
                repeat["dayOfWeek"] = list(weekdays)
            activities.append((
                {"coding": [{"system": SYSTEMS["exercise"], "code": item.exercise_id, "display": item.exercise_name}],
                 "text": item.exercise_name},
                repeat, f"{title}: {rounds}{item.dose or 'as the clinic defines it'}"))
    schedule = program.resolved_schedule
    return {"activities": activities,
            "instantiatesUri": [f"{SYSTEMS['protocol']}:{program.protocol.id}:{program.protocol.version}"],
            "title": f"{program.protocol.title}: {schedule.title}",
            "description": f"{schedule.title} (breakouts on {schedule.days_label}). {schedule.description}".strip()}


def _care_plan(row, today: date, cache: dict) -> dict:
    key = tuple(_text(row.get(k)) for k in _PLAN_KEY)
    if key not in cache:
        cache[key] = _plan_parts(row)
    parts = cache[key]
    start, end = pd.Timestamp(row["start_date"]).date(), pd.Timestamp(row["end_date"]).date()
    status = "completed" if end < today else "active"
    activity_status = "completed" if end < today else ("in-progress" if start <= today else "not-started")
    bounds = {"start": start.isoformat(), "end": end.isoformat()}
    resource = {
        "resourceType": "CarePlan", "id": _uuid("CarePlan", row["program_id"]),
        "identifier": [_identifier("program", row["program_id"])],
        "instantiatesUri": parts["instantiatesUri"],
        "status": status, "intent": "plan", "title": parts["title"], "description": parts["description"],
        "subject": _subject(row["patient_id"]),
        "period": bounds,
        "activity": [{"detail": {"code": code, "status": activity_status,
                                 "scheduledTiming": {"repeat": {"boundsPeriod": bounds, **repeat}},
                                 "description": description}}
                     for code, repeat, description in parts["activities"]],
    }
    if _text(row.get("reason")):
        resource["note"] = [{"text": row["reason"]}]
    return resource


_EPISODE_STATUS = {"planned": "planned", "active": "active", "ended": "finished", "discharged": "finished"}


def _episode_of_care(row) -> dict:
    """An episode of care (see :func:`hipanalytics.analysis.episodes.episodes_of_care`) as an
    EpisodeOfCare: its period runs to the discharge, or to the last program day of an episode that
    ended without one (said by the ``episode-end`` extension); its programs' CarePlans listed."""
    discharged = pd.notna(row["end_date"])
    end = row["end_date"] if discharged else (row["last_day"] if row["status"] == "ended" else None)
    extension = [{"url": SYSTEMS["episode-program"],
                  "valueReference": {"reference": f"urn:uuid:{_uuid('CarePlan', pid)}",
                                     "identifier": _identifier("program", pid)}}
                 for pid in filter(None, (p.strip() for p in _text(row["programs"]).split(",")))]
    if end is not None:
        extension.append({"url": SYSTEMS["episode-end"], "valueCode": "discharged" if discharged else "programs-ended"})
    if _text(row.get("discharge_reason")):
        extension.append({"url": SYSTEMS["discharge-reason"], "valueCoding": {
            "system": SYSTEMS["discharge-reason"], "code": row["discharge_reason"],
            "display": row["discharge_reason"].replace("_", " ")}})
    period = {"start": _day(row["start_date"]), **({"end": _day(end)} if end is not None else {})}
    return {"resourceType": "EpisodeOfCare", "id": _uuid("EpisodeOfCare", row["episode_id"]), "extension": extension,
            "identifier": [_identifier("episode", row["episode_id"])], "status": _EPISODE_STATUS[row["status"]],
            "patient": _subject(row["patient_id"]), "period": period}


def _procedure(row, plans: list[dict]) -> dict:
    """A logged session as a Procedure: done (full or partial) or not done (skipped), on the day,
    based on the CarePlan of the program in force that day."""
    day = pd.Timestamp(row["performed_on"])
    extension = [{"url": SYSTEMS["completion"], "valueCode": row["completion"]}]
    if _text(row.get("rounds_done")):
        extension.append({"url": SYSTEMS["rounds-done"], "valueInteger": int(row["rounds_done"])})
    if _text(row.get("performed_at")):  # a time of day without a time zone: FHIR's dateTime needs one
        extension.append({"url": SYSTEMS["performed-at"], "valueTime": f"{row['performed_at']}:00"[:8]})
    resource = {
        "resourceType": "Procedure", "id": _uuid("Procedure", row["session_id"]), "extension": extension,
        "identifier": [_identifier("session", row["session_id"])],
        "basedOn": [{"reference": f"urn:uuid:{_uuid('CarePlan', p['program_id'])}",
                     "identifier": _identifier("program", p["program_id"])}
                    for p in plans if pd.Timestamp(p["start_date"]) <= day <= pd.Timestamp(p["end_date"])],
        "status": "not-done" if row["completion"] == "skipped" else "completed",
        "code": {"coding": [{"system": SYSTEMS["session-template"], "code": row["session"]}], "text": row["session"]},
        "subject": _subject(row["patient_id"]),
        "performedDateTime": _day(day),
    }
    if not resource["basedOn"]:
        del resource["basedOn"]
    if _text(row.get("notes")):
        resource["note"] = [{"text": row["notes"]}]
    return resource


PAIN_TIMINGS = {"before": "pain_before", "after": "pain_after", "next-day": "pain_next_day"}
"""The ``pain-timing`` extension's codes and the session column each fills."""

_PAIN_WORDS = {"before": "before the session", "after": "after the session", "next-day": "the morning after the session"}


def _pain(row, timing: str) -> dict | None:
    """A session's NPRS pain score before or after it, or the next morning (LOINC 72514-3), part
    of its Procedure; the next-day score is dated the day after the session."""
    value = row.get(PAIN_TIMINGS[timing])
    if not _text(value):
        return None
    key = f"{row['session_id']}|{timing}"
    day = pd.Timestamp(row["performed_on"]) + pd.Timedelta(days=1 if timing == "next-day" else 0)
    return {
        "resourceType": "Observation", "id": _uuid("Observation", f"pain|{key}"),
        "extension": [{"url": SYSTEMS["pain-timing"], "valueCode": timing}],
        "identifier": [_identifier("pain", key)],
        "partOf": [{"reference": f"urn:uuid:{_uuid('Procedure', row['session_id'])}",
                    "identifier": _identifier("session", row["session_id"])}],
        "status": "final", "category": [{"coding": [_SURVEY]}],
        "code": {"coding": [_NPRS], "text": f"Pain (NPRS 0-10) {_PAIN_WORDS[timing]}"},
        "subject": _subject(row["patient_id"]),
        "effectiveDateTime": _day(day),
        "valueInteger": int(value),
    }


def _entry(resource: dict, transaction: bool) -> dict:
    entry = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
    if transaction:  # conditional update: loading the same Bundle twice creates nothing twice
        ident = resource["identifier"][0]
        entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}?identifier="
                            f"{quote(ident['system'], safe=':')}|{quote(ident['value'], safe='')}"}
    return entry


def patient_bundle(tables: dict[str, pd.DataFrame], patient_id: str, *, show_name: bool = False,
                   transaction: bool = False, sessions: bool = False, today: date | None = None) -> dict:
    """One patient's records as a FHIR R4 Bundle (a dict ready for ``json.dump``).

    Parameters
    ----------
    tables : dict of DataFrame
        The store's tables (``patients``, ``measurements``, optionally ``programs``), current state.
    patient_id : str
    show_name : bool
        Put the patient's display name in ``Patient.name``; by default the Patient carries only the
        clinic's id (pseudonymous).
    transaction : bool
        A ``transaction`` Bundle whose entries are conditional updates on their identifiers (a FHIR
        server stores each record once however often it is sent); by default a ``collection``.
    sessions : bool
        Also the session log (``tables["sessions"]``): each session a Procedure (completed, or
        not-done when skipped) based on the program's CarePlan, its NPRS pain scores before,
        after and the next morning as Observations (LOINC 72514-3) part of it.
    today : date, optional
        Decides whether a program is active or completed (default: today).

    Raises
    ------
    FhirError
        When the patient is not in ``tables``.
    """
    patients = tables["patients"]
    found = patients[patients["patient_id"] == patient_id]
    if found.empty:
        raise FhirError(f"patient {patient_id!r} is not in the store")
    mine = {t: _records(tables[t][tables[t]["patient_id"] == patient_id], t) if t in tables else []
            for t in ("measurements", "programs", "sessions")}
    day = today or date.today()
    episodes = _episodes(tables, day)
    return _bundle(found.iloc[0].to_dict(), mine["measurements"], mine["programs"],
                   mine["sessions"] if sessions else [], episodes.get(patient_id, []), show_name=show_name,
                   transaction=transaction, today=day, cache={})


def _episodes(tables: dict[str, pd.DataFrame], today: date) -> dict[str, list[dict]]:
    """Each patient's episodes of care (stored, or found from the programs), as records."""
    from .analysis.episodes import episodes_of_care

    if "programs" not in tables:
        return {}
    found = episodes_of_care(tables["programs"], tables.get("episodes"), as_of=today)
    by_patient: dict[str, list[dict]] = {}
    for record in found.to_dict("records"):
        by_patient.setdefault(record["patient_id"], []).append(record)
    return by_patient


_ORDER = {"measurements": ["patient_id", "measured_on", "side", "trial", "measurement_id"],
          "programs": ["patient_id", "start_date", "program_id"],
          "sessions": ["patient_id", "performed_on", "performed_at", "session_id"]}


def _records(frame: pd.DataFrame, table: str) -> list[dict]:
    """Rows as dicts in the order resources are written (by patient, then date)."""
    return frame.sort_values([c for c in _ORDER[table] if c in frame], kind="stable").to_dict("records")


def _bundle(patient: dict, measurements: list[dict], programs: list[dict], sessions: list[dict], episodes: list[dict],
            *, show_name: bool, transaction: bool, today: date, cache: dict) -> dict:
    resources = ([_patient(patient, show_name)] + [_observation(r) for r in measurements]
                 + [_care_plan(r, today, cache) for r in programs] + [_episode_of_care(r) for r in episodes])
    for row in sessions:
        resources += [_procedure(row, programs), *filter(None, (_pain(row, t) for t in PAIN_TIMINGS))]
    kind = "transaction" if transaction else "collection"
    return {"resourceType": "Bundle", "id": _uuid("Bundle", patient["patient_id"]), "meta": {"tag": [
        {"system": f"{_LOCAL}:tag", "code": "hipanalytics", "display": f"FHIR {FHIR_VERSION} from hipanalytics"}]},
            "type": kind, "timestamp": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "entry": [_entry(r, transaction) for r in resources]}


def write_fhir(tables: dict[str, pd.DataFrame], out: str | Path, patient_ids: list[str] | None = None, *,
               show_name: bool = False, transaction: bool = False, ndjson: bool = False, sessions: bool = False,
               today: date | None = None) -> list[Path]:
    """Write Bundles (one JSON file per patient, named by the sanitised id) or, with ``ndjson``,
    the bulk-data layout (``Patient.ndjson``, ``Observation.ndjson``, ``CarePlan.ndjson``, and
    ``Procedure.ndjson`` with ``sessions``).

    Parameters
    ----------
    tables : dict of DataFrame
    out : path
        The folder (created).
    patient_ids : list of str, optional
        Default: every patient.
    show_name, transaction, sessions, today
        See :func:`patient_bundle` (``transaction`` does not apply to NDJSON).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FhirError
        When a patient id is not in ``tables`` (nothing is written).
    """
    if sessions and "sessions" not in tables:
        raise FhirError("sessions=True needs the sessions table in tables")
    patients = tables["patients"]
    if patient_ids is not None:
        unknown = sorted(set(patient_ids) - set(patients["patient_id"]))
        if unknown:
            raise FhirError(f"not in the store: {', '.join(unknown)}")
        patients = patients.set_index("patient_id", drop=False).loc[list(patient_ids)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # every table read into records once (not a scan per patient: a registry has 10,000 patients),
    # and each Bundle written as it is made (never all of them in memory)
    rows: dict[str, dict[str, list[dict]]] = {}
    for table in ("measurements", "programs", "sessions"):
        rows[table] = {}
        if table == "sessions" and not sessions:
            continue
        for record in _records(tables[table], table) if table in tables else []:
            rows[table].setdefault(record["patient_id"], []).append(record)
    cache: dict = {}
    ids = list(patients["patient_id"])
    day = today or date.today()
    episodes = _episodes(tables, day)
    bundles = (_bundle(p, *(rows[t].get(p["patient_id"], []) for t in ("measurements", "programs", "sessions")),
                       episodes.get(p["patient_id"], []), show_name=show_name, transaction=transaction and not ndjson,
                       today=day, cache=cache) for p in patients.to_dict("records"))
    if not ndjson:
        written = []
        for pid, bundle in zip(ids, bundles):
            path = out / f"{safe_filename(pid)}.json"
            path.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(path)
        return written
    kinds = ("Patient", "Observation", "CarePlan", "EpisodeOfCare") + (("Procedure",) if sessions else ())
    written = [out / f"{kind}.ndjson" for kind in kinds]
    with contextlib.ExitStack() as stack:
        files = {p.stem: stack.enter_context(p.open("w", encoding="utf-8")) for p in written}
        for bundle in bundles:
            for entry in bundle["entry"]:
                files[entry["resource"]["resourceType"]].write(json.dumps(entry["resource"], ensure_ascii=False) + "\n")
    return written


# ----------------------------------------------------------------------------------------------
# In: hip ROM Observations, session Procedures and their Patients into our tables
# ----------------------------------------------------------------------------------------------

# Where each of our columns comes from, for the messages.
_PATHS = {
    ("patients", "patient_id"): "Patient.identifier",
    ("patients", "birth_year"): "Patient.birthDate",
    ("patients", "sex"): "Patient.gender",
    ("patients", "involved_side"): "Patient.extension(involved-side)",
    ("patients", "site"): "Patient.extension(site)",
    ("patients", "cohort"): "Patient.extension(cohort)",
    ("patients", "allocation"): "Patient.extension(allocation)",
    ("patients", "allocated_on"): "Patient.extension(allocated-on)",
    ("patients", "display_name"): "Patient.name",
    ("measurements", "measurement_id"): "Observation.identifier",
    ("measurements", "patient_id"): "Observation.subject",
    ("measurements", "measured_on"): "Observation.effectiveDateTime",
    ("measurements", "side"): "Observation.bodySite laterality",
    ("measurements", "joint"): "Observation.code",
    ("measurements", "motion"): "Observation.code",
    ("measurements", "position"): "Observation.method",
    ("measurements", "mode"): "Observation.method",
    ("measurements", "instrument"): "Observation.method",
    ("measurements", "degrees"): "Observation.valueQuantity",
    ("measurements", "trial"): "Observation.component(trial)",
    ("measurements", "assessor"): "Observation.performer",
    ("measurements", "notes"): "Observation.note",
    ("sessions", "session_id"): "Procedure.identifier",
    ("sessions", "patient_id"): "Procedure.subject",
    ("sessions", "performed_on"): "Procedure.performedDateTime",
    ("sessions", "performed_at"): "Procedure.extension(performed-at)",
    ("sessions", "session"): "Procedure.code",
    ("sessions", "completion"): "Procedure.extension(completion) or status",
    ("sessions", "rounds_done"): "Procedure.extension(rounds-done)",
    ("sessions", "pain_before"): "pain Observation (LOINC 72514-3, before) part of the Procedure",
    ("sessions", "pain_after"): "pain Observation (LOINC 72514-3, after) part of the Procedure",
    ("sessions", "pain_next_day"): "pain Observation (LOINC 72514-3, next-day, dated the day after) part of the Procedure",
    ("sessions", "notes"): "Procedure.note",
    ("episodes", "episode_id"): "EpisodeOfCare.identifier",
    ("episodes", "patient_id"): "EpisodeOfCare.patient",
    ("episodes", "start_date"): "EpisodeOfCare.period.start",
    ("episodes", "end_date"): "EpisodeOfCare.period.end (discharged)",
    ("episodes", "discharge_reason"): "EpisodeOfCare.extension(discharge-reason)",
}


@dataclass
class FhirRows:
    """A FHIR file read into our tables, before validation.

    Attributes
    ----------
    file : str
        The file, or ``N files (names)`` for several read together (a bulk export's NDJSON files;
        the first three names).
    kind : str
        ``Bundle``, ``NDJSON``, or both joined.
    tables : dict of DataFrame
        ``patients``, ``measurements``, ``sessions`` and ``episodes`` as text, one row per resource
        used (a session's pain scores fill its row).
    resources_read : int
        ``resources_read == used + known + sum(skipped.values())``.
    used : int
        Resources that gave a row or part of one (Patients new to the store, hip ROM Observations,
        session Procedures and their pain Observations, EpisodesOfCare).
    known : int
        Patients already in the store (matched on the id, not changed).
    skipped : Counter
        Resources not imported, by reason (other resource types, other observations, records
        entered in error).
    """

    file: str
    kind: str
    tables: dict[str, pd.DataFrame]
    resources_read: int
    used: int
    known: int
    skipped: Counter = field(default_factory=Counter)
    locators: dict[str, list[str]] = field(default_factory=dict)
    """Per table, where each row's resource is: ``entry 3`` of a Bundle, ``line 7`` of an NDJSON
    file (both from 1), preceded by the file's name when several files are read together."""
    reduced: Counter = field(default_factory=Counter)
    """Values kept in part, by what was kept (a birth date's year, a date-time's date)."""
    dates: dict[str, str] = field(default_factory=dict)
    dangling: dict[str, dict[int, str]] = field(default_factory=dict)
    """Per table, rows whose resource refers to a Patient found neither in the files nor by our
    patient-id identifier: row number -> the reference."""

    def __str__(self) -> str:
        made = ", ".join(f"{len(f)} {t}" for t, f in self.tables.items() if len(f))
        text = (f"{self.file}: {self.kind} of {self.resources_read} resources: {self.used} gave {made or 'nothing'}; "
                f"{self.known} patients already in the store (matched on the id, not changed)")
        for reason, count in sorted(self.skipped.items()):
            text += f"\n  not imported {count:>6}  {reason}"
        for what, count in sorted(self.reduced.items()):
            text += f"\n  in part      {count:>6}  {what}"
        return text

    def translate(self, report, table: str):
        """``report`` (of this table's rows) with each row's entry or line in the file and the FHIR
        element a column comes from. The row numbers stay those of the table read (header = row 1),
        which a quarantine file keeps."""
        where = dict(zip(range(2, len(self.tables[table]) + 2), self.locators.get(table, [])))

        def translated(part: pd.DataFrame) -> pd.DataFrame:
            def column(value, at):
                path = _PATHS.get((table, value)) if isinstance(value, str) else None
                if not path:
                    return value
                locator = where.get(int(at)) if not pd.isna(at) else None
                return f"{value} (FHIR {locator}, {path})" if locator else f"{value} (FHIR {path})"

            columns = [column(c, r) for c, r in zip(part["column"], part["row"])]
            part = part.assign(file=self.file, column=columns)
            dangling = self.dangling.get(table, {})
            if dangling and "rule" in part:  # the patient is missing, not the cell: say which reference
                refs = [dangling.get(int(r)) if not pd.isna(r) and str(c).startswith("patient_id") else None
                        for c, r in zip(part["column"], part["row"])]
                hit = pd.Series([x is not None for x in refs], index=part.index) & part["rule"].str.startswith("empty cell")
                if hit.any():
                    part = part.copy()
                    part.loc[hit, "value"] = [refs[i] for i, h in enumerate(hit) if h]
                    part.loc[hit, "rule"] = [f"refers to {refs[i]}, a Patient that is in no file read and not named "
                                             "by our patient-id identifier" for i, h in enumerate(hit) if h]
                    part.loc[hit, "fix"] = ("put the Patient in the Bundle (or import it first and refer to it by "
                                            "its identifier), or correct the reference")
            return part

        return ValidationReport(self.file, table, report.rows_read, translated(report.problems),
                                translated(report.normalisations))


def _load(path: Path) -> tuple[str, list[tuple[int, Any, str]]]:
    """``(kind, [(entry or line number, resource, fullUrl)])`` of a Bundle or NDJSON file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FhirError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); FHIR JSON is UTF-8") from None
    stripped = text.strip()
    if not stripped:
        raise FhirError(f"{path}: the file is empty")
    deep = (f"{path}: the JSON is nested more deeply than Python's parser allows (about 1,000 levels): no FHIR "
            "resource is; check that this is the file meant")
    try:
        whole = json.loads(stripped, parse_float=str, parse_int=str)
    except json.JSONDecodeError:
        whole = None
    except RecursionError:
        raise FhirError(deep) from None
    if isinstance(whole, list) or (whole is not None and not isinstance(whole, dict)):
        raise FhirError(f"{path}: the file is one JSON {type(whole).__name__ if not isinstance(whole, list) else 'array'}, "
                        "not a FHIR Bundle (an object with resourceType 'Bundle') or NDJSON (one resource object "
                        "per line)")
    if isinstance(whole, dict) and whole.get("resourceType") == "Bundle":
        entries = whole.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError(f"{path}: Bundle.entry is not a list")
        return "Bundle", [(i, e.get("resource"), _json_text(e.get("fullUrl"))) if isinstance(e, dict) else (i, None, "")
                          for i, e in enumerate(entries, start=1)]
    if isinstance(whole, dict) and "resourceType" in whole:
        return "NDJSON", [(1, whole, "")]  # a single resource
    resources = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = json.loads(line, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            raise FhirError(f"{path}, line {number}: not JSON ({exc.msg} at column {exc.colno}); expected a "
                            "FHIR Bundle or NDJSON (one resource per line)") from None
        except RecursionError:
            raise FhirError(f"{deep} (line {number})") from None
        if not isinstance(resource, dict):
            raise FhirError(f"{path}, line {number}: a JSON {'array' if isinstance(resource, list) else 'value'}, "
                            "not a resource; NDJSON holds one resource object per line")
        resources.append((number, resource, ""))
    return "NDJSON", resources


def _items(element, key: str) -> list[dict]:
    """The objects of an array element (a file from elsewhere may hold anything there: only objects
    count, and a lone object counts as a list of one)."""
    value = element.get(key) if isinstance(element, dict) else None
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, dict)]


def _object(element, key: str) -> dict:
    value = element.get(key) if isinstance(element, dict) else None
    return value if isinstance(value, dict) else {}


def _find(concept, system: str) -> str:
    return next((_json_text(c.get("code")) for c in _items(concept, "coding") if c.get("system") == system), "")


def _our_id(resource: dict, kind: str) -> str:
    return next((_json_text(i.get("value")) for i in _items(resource, "identifier") if i.get("system") == SYSTEMS[kind]),
                "")


def _extension(element, key: str) -> Any:
    for ext in _items(element, "extension"):
        if ext.get("url") == SYSTEMS[key]:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def _note_dangling(dangling: dict, table: str, rows: dict, resource: dict, element: str) -> None:
    """A row whose patient could not be found though its resource refers to one: the reference, by
    the row's number (header = row 1), for :meth:`FhirRows.translate`."""
    row = rows[table][-1]
    reference = _json_text(_object(resource, element).get("reference"))
    if not row.get("patient_id") and reference:
        dangling.setdefault(table, {})[len(rows[table]) + 1] = reference


def _subject_id(resource: dict, patients: dict[str, str]) -> str:
    """The patient id of a resource's subject: its identifier in our system, else the Patient of
    the files it references (``patients``: reference -> id)."""
    subject = _object(resource, "subject")
    ident = _object(subject, "identifier")
    ours = _json_text(ident.get("value")) if ident.get("system") == SYSTEMS["patient"] else ""
    return ours or patients.get(_json_text(subject.get("reference")), "")


def _episode_row(resource: dict, patients: dict[str, str]) -> dict:
    """An EpisodeOfCare as an episodes row: its end is a discharge date only when it says so (our
    ``episode-end`` extension) or, from another system, when it is ``finished`` with an end."""
    patient = {"subject": _object(resource, "patient")}
    period = _object(resource, "period")
    end = _json_text(period.get("end"))[:10]
    said = _json_text(_extension(resource, "episode-end"))
    discharged = said == "discharged" or (not said and _json_text(resource.get("status")) == "finished")
    reason = _extension(resource, "discharge-reason")
    return {"episode_id": _our_id(resource, "episode") or _json_text(resource.get("id")),
            "patient_id": _subject_id(patient, patients), "start_date": _json_text(period.get("start"))[:10],
            "end_date": end if discharged else "",
            "discharge_reason": _json_text(reason.get("code")) if isinstance(reason, dict) else _json_text(reason),
            "notes": ""}


def _patient_row(resource: dict) -> dict:
    birth = _json_text(resource.get("birthDate"))
    names = _items(resource, "name")
    given = names[0].get("given") if names else None
    given = [_json_text(g) for g in given] if isinstance(given, list) else [_json_text(given)]
    name = (_json_text(names[0].get("text")) or " ".join([*given, _json_text(names[0].get("family"))]).strip()
            if names else "")
    return {"patient_id": _our_id(resource, "patient") or _json_text(resource.get("id")),
            "birth_year": birth[:4] if len(birth) >= 4 and birth[:4].isdigit() else birth,
            "sex": _json_text(resource.get("gender")),
            "involved_side": _json_text(_extension(resource, "involved-side")),
            "site": _json_text(_extension(resource, "site")), "cohort": _json_text(_extension(resource, "cohort")),
            "allocation": _json_text(_extension(resource, "allocation")),
            "allocated_on": _json_text(_extension(resource, "allocated-on")), "display_name": name}


def _side(site) -> str:
    code = _find(_extension(site, "laterality"), SNOMED)
    if code:
        return next((s for s, c in _LATERALITY.items() if c["code"] == code), f"SNOMED CT {code}")
    return _json_text(site.get("text")).split(" ")[0] if isinstance(site, dict) else ""


def _quantity(value) -> str:
    if not isinstance(value, dict):
        return ""
    number = _json_text(value.get("value"))
    if value.get("system") == UCUM and value.get("code") == "deg":
        return number
    return f"{number} {_json_text(value.get('code') or value.get('unit'))}".strip()  # refused: not in degrees


def _observation_row(resource: dict, patients: dict[str, str]) -> dict:
    ours = _find(resource.get("code"), SYSTEMS["rom"])
    joint, _, motion = ours.partition("-")
    method = _find(resource.get("method"), SYSTEMS["method"]).split("-")
    mode, position, instrument = method if len(method) == 3 else ("", "", "")
    trial = next((_json_text(c.get("valueInteger")) for c in _items(resource, "component")
                  if _find(c.get("code"), SYSTEMS["component"]) == "trial"), "")
    performer = next(iter(_items(resource, "performer")), {})
    assessor = _json_text(_object(performer, "identifier").get("value")) or _json_text(performer.get("display"))
    effective = _json_text(resource.get("effectiveDateTime"))
    return {"measurement_id": _our_id(resource, "measurement"), "patient_id": _subject_id(resource, patients),
            "measured_on": effective[:10], "side": _side(resource.get("bodySite")),
            "joint": joint or ("hip" if _find(resource.get("code"), SNOMED) == _HIP_ROM["code"] else ""),
            "motion": motion.replace("-", "_"), "position": position, "mode": mode, "instrument": instrument,
            "degrees": _quantity(resource.get("valueQuantity")), "trial": trial, "assessor": assessor,
            "notes": "\n".join(_json_text(n.get("text")) for n in _items(resource, "note"))}


def _is_rom(resource: dict) -> bool:
    return bool(_find(resource.get("code"), SYSTEMS["rom"])) or _find(resource.get("code"), SNOMED) == _HIP_ROM["code"]


def _is_pain(resource: dict) -> bool:
    return _find(resource.get("code"), LOINC) == _NPRS["code"]


def _references(resource: dict, full_url: str) -> list[str]:
    """How other resources of the file may refer to ``resource``."""
    rid, kind = _json_text(resource.get("id")), _json_text(resource.get("resourceType"))
    return [r for r in (rid and f"{kind}/{rid}", rid and f"urn:uuid:{rid}", full_url) if r]


def _session_row(resource: dict, patients: dict[str, str], reduced: Counter) -> dict:
    completion = _json_text(_extension(resource, "completion"))
    if not completion:  # another system's Procedure: what its status says, and the import says so
        status = _json_text(resource.get("status"))
        completion = {"completed": "full", "not-done": "skipped"}.get(status, status)
        reduced[f"Procedure.status {status or '(none)'}: read as completion {completion or '(none)'} "
                "(no completion extension)"] += 1
    performed = _json_text(resource.get("performedDateTime"))
    at = _json_text(_extension(resource, "performed-at")) or performed[11:16]
    return {"session_id": _our_id(resource, "session"), "patient_id": _subject_id(resource, patients),
            "performed_on": performed[:10], "performed_at": at[:5] if len(at) >= 5 and at[2] == ":" else at,
            "session": _find(resource.get("code"), SYSTEMS["session-template"]), "completion": completion,
            "rounds_done": _json_text(_extension(resource, "rounds-done")), **dict.fromkeys(PAIN_TIMINGS.values(), ""),
            "notes": "\n".join(_json_text(n.get("text")) for n in _items(resource, "note"))}


def read_fhir(path: str | Path | list, *, known_patients: set[str] | None = None) -> FhirRows:
    """Read a FHIR Bundle (JSON) or NDJSON file, or several read together (a bulk export's
    ``Patient.ndjson``, ``Observation.ndjson``, ``Procedure.ndjson``: references cross files), into
    our ``patients``, ``measurements`` and ``sessions`` tables.

    Observations of joint range of motion (our code, or SNOMED CT 299238003) become measurements;
    Procedures of our session templates become sessions, with the NPRS pain Observations (LOINC
    72514-3) that are part of them as their pain before, after and the next morning; Patients become patients unless
    ``known_patients`` (the store's) already has them. Every other resource is counted by reason,
    never silently dropped; Observations marked ``entered-in-error`` or ``cancelled`` are counted
    and not imported. Values are taken as written: a quantity not in UCUM ``deg``, a missing
    laterality or method, two pain scores for one session reach validation, which names the entry
    and the FHIR element.

    Parameters
    ----------
    path : path
    known_patients : set of str, optional
        Patient ids already in the store.

    Raises
    ------
    FhirError
        When the file is not FHIR JSON or NDJSON.
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    resources, kinds = [], []
    for one in paths:
        kind, items = _load(one)
        kinds.append(kind)
        prefix = f"{one.name} " if len(paths) > 1 else ""
        unit = "entry" if kind == "Bundle" else "line"
        resources += [(f"{prefix}{unit} {number}", resource, url) for number, resource, url in items]
    names = [p.name for p in paths]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    label = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files ({shown})"  # a bulk export may be 100s
    known = known_patients or set()
    patients: dict[str, str] = {}  # references (Patient/id, urn:uuid:id, the entry's fullUrl) -> our patient id
    for _, resource, full_url in resources:
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            pid = _patient_row(resource)["patient_id"]
            patients.update(dict.fromkeys(_references(resource, full_url), pid))
    rows: dict[str, list[dict]] = {"patients": [], "measurements": [], "sessions": [], "episodes": []}
    at: dict[str, list[str]] = {t: [] for t in rows}
    dangling: dict[str, dict[int, str]] = {}
    skipped: Counter = Counter()
    reduced: Counter = Counter()
    sessions: dict[str, dict] = {}  # references and session ids -> the session's row
    pains = []
    n_known = 0
    for number, resource, full_url in resources:
        kind_of = resource.get("resourceType") if isinstance(resource, dict) else None
        status = _json_text(resource.get("status")) if isinstance(resource, dict) else ""
        if kind_of in ("Observation", "Procedure") and status in ("entered-in-error", "cancelled"):
            skipped[f"{kind_of} with status {status}"] += 1
        elif kind_of == "Patient":
            row = _patient_row(resource)
            if row["patient_id"] in known:
                n_known += 1
            else:
                rows["patients"].append(row)
                at["patients"].append(number)
                if len(_json_text(resource.get("birthDate"))) > 4:
                    reduced["Patient.birthDate: the year kept (the store holds years of birth only)"] += 1
        elif kind_of == "Observation" and _is_rom(resource):
            rows["measurements"].append(_observation_row(resource, patients))
            at["measurements"].append(number)
            _note_dangling(dangling, "measurements", rows, resource, "subject")
            if len(_json_text(resource.get("effectiveDateTime"))) > 10:
                reduced["Observation.effectiveDateTime: the date kept, as written (the store holds visit dates)"] += 1
        elif kind_of == "Procedure" and _find(resource.get("code"), SYSTEMS["session-template"]):
            row = _session_row(resource, patients, reduced)
            rows["sessions"].append(row)
            at["sessions"].append(number)
            _note_dangling(dangling, "sessions", rows, resource, "subject")
            for key in _references(resource, full_url) + [f"id:{row['session_id']}"] * bool(row["session_id"]):
                sessions[key] = row
        elif kind_of == "Observation" and _is_pain(resource):
            pains.append(resource)
        elif kind_of == "EpisodeOfCare" and status in ("entered-in-error", "cancelled"):
            skipped[f"EpisodeOfCare with status {status}"] += 1
        elif kind_of == "EpisodeOfCare":
            rows["episodes"].append(_episode_row(resource, patients))
            at["episodes"].append(number)
            _note_dangling(dangling, "episodes", rows, resource, "patient")
        elif kind_of == "Observation":
            codes = ", ".join(f"{_json_text(c.get('system')) or '?'}|{_json_text(c.get('code')) or '?'}"
                              for c in _items(resource.get("code"), "coding"))
            skipped[f"Observation not of joint range of motion or session pain ({codes or 'no code'})"] += 1
        elif kind_of:
            skipped[f"{kind_of} (only Patients, range-of-motion Observations, our sessions and episodes of care "
                    "are imported)"] += 1
        else:
            skipped["entry without a resource"] += 1
    attached = 0
    for resource in pains:  # after every session is read: a pain score may come before its session
        timing = _json_text(_extension(resource, "pain-timing"))
        parts = _items(resource, "partOf")
        row = next((sessions[k] for p in parts for k in (_json_text(p.get("reference")),
                    f"id:{_json_text(_object(p, 'identifier').get('value'))}") if k in sessions), None)
        if row is None or timing not in PAIN_TIMINGS:
            skipped["pain score (LOINC 72514-3) not part of a session in this file, or not said to be before, "
                    "after or the morning after it"] += 1
            continue
        value = _json_text(resource.get("valueInteger") if "valueInteger" in resource else resource.get("valueQuantity"))
        cell = PAIN_TIMINGS[timing]
        row[cell] = f"{row[cell]} / {value}" if row[cell] else value  # two scores for one: refused by validation
        attached += 1
    tables = {t: pd.DataFrame(r, columns=[s.name for s in table_spec(t)]).astype("object").fillna("")
              for t, r in rows.items()}
    used = sum(len(r) for r in rows.values()) + attached
    return FhirRows(label, ", ".join(dict.fromkeys(kinds)), tables, len(resources), used, n_known, skipped, at,
                    reduced, dangling=dangling)


def import_fhir(store, path: str | Path | list, *, mode: str = "strict", quarantine_dir: str | Path | None = None,
                who: str | None = None) -> tuple[FhirRows, dict[str, Any]]:
    """Import a FHIR Bundle or NDJSON file, or several together (see :func:`read_fhir`), into
    ``store``: patients, measurements and sessions in one transaction, through the same validation,
    quarantine and row accounting as any file.

    Returns
    -------
    (FhirRows, dict)
        What was read, and ``table -> ImportSummary`` with its report naming the files' entries or lines.
    """
    from .store.imports import import_derived

    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    rows = read_fhir(paths, known_patients=set(store.read("patients")["patient_id"]))
    name = paths[0].name if len(paths) == 1 else f"{paths[0].stem}-and-{len(paths) - 1}-more"
    labels = {t: f"{name} [FHIR {t}]" for t in rows.tables}
    folder = quarantine_dir if quarantine_dir is not None else paths[0].resolve().parent
    return rows, import_derived(store, rows, labels, mode=mode, quarantine_dir=folder, who=who)
