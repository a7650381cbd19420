"""The de-identified research export: nothing planted leaves, every date moves, one shift per patient,
a key that can be guessed is refused, small cells are flagged."""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hipanalytics.cli import main
from hipanalytics.errors import StoreError
from hipanalytics.records import TABLES, table_spec
from hipanalytics.records.columns import RESEARCH_EXPORT
from hipanalytics.store import Store, check_key, deidentify, export_research, small_cells
from hipanalytics.store.deidentify import SHIFT_WEEKS, date_shift_weeks
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store

KEY = hashlib.sha256(b"hipanalytics test key").hexdigest().encode()  # 64 hex digits: 256 bits
AS_OF = date(2026, 11, 1)
PLANTED = ("JohnSmith", "MRN5551234", "555-1234", "jo@example.org")
DROPPED = {"patients": {"display_name"}, "programs": {"reason"}, "measurements": {"assessor", "notes"},
           "sessions": {"notes"}, "episodes": {"notes"}}


def planted(i: int) -> str:
    return f"{PLANTED[i % len(PLANTED)]} {PLANTED[(i + 1) % len(PLANTED)]}"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A generated clinic as the store reads it, with an identifier planted in every free-text and
    category column (some rows keep their real values)."""
    folder = tmp_path_factory.mktemp("deid")
    with Store(clinic_store(generate_clinic(60, seed=4), folder)) as store:
        tables = {t: store.read(t) for t in TABLES}
    tables["episodes"] = pd.DataFrame({
        "episode_id": ["SYN-00001-E20260105"], "patient_id": ["SYN-00001"],
        "start_date": pd.to_datetime(["2026-01-05"]).astype("datetime64[s]"),
        "end_date": pd.to_datetime(["2026-03-01"]).astype("datetime64[s]"), "discharge_reason": ["goals_met"],
        "notes": [planted(0)]})
    for name, frame in tables.items():
        for spec in table_spec(name):
            treatment = RESEARCH_EXPORT[name].get(spec.name, ("dropped", ""))[0]
            if spec.kind in ("text", "id") and treatment in ("recoded", "dropped") or spec.name == "site":
                values = frame[spec.name].astype("object").copy()
                values.iloc[::3] = [planted(i) for i in range(len(values.iloc[::3]))]
                frame[spec.name] = values
    tables["sessions"].loc[1, "performed_at"] = "08:15 " + planted(1)
    return tables


def files_text(paths) -> str:
    return "\n".join(Path(p).read_text(encoding="utf-8") for p in paths)


def test_the_allow_list_names_every_exported_column_and_drops_the_rest(source):
    for name in TABLES:
        listed = set(RESEARCH_EXPORT[name])
        columns = {s.name for s in table_spec(name)}
        assert listed | DROPPED[name] == columns and not listed & DROPPED[name], name  # a new column must be decided
        assert {t for t, _ in RESEARCH_EXPORT[name].values()} <= {"kept", "pseudonymised", "shifted", "generalised",
                                                                  "recoded"}
    source = {**source, "patients": source["patients"].assign(nhs_number="943 476 5919")}  # a column no one listed
    out = deidentify(source, KEY, as_of=AS_OF)
    assert "nhs_number" not in out["patients"] and "display_name" not in out["patients"]
    for name in TABLES:
        expected = [c for c in source[name].columns if c in RESEARCH_EXPORT[name]]
        assert out[name].columns.tolist() == [("age_band" if c == "birth_year" else c) for c in expected]


def test_no_planted_identifier_reaches_any_exported_file(source, tmp_path):
    class Fake:
        def read(self, table):
            return source[table]

    for fmt in ("csv", "parquet"):
        result = export_research(Fake(), tmp_path / fmt, KEY, fmt=fmt, as_of=AS_OF)
        for name, path in result.paths.items():
            text = (path.read_text(encoding="utf-8") if path.suffix != ".parquet"
                    else pd.read_parquet(path).astype(str).to_csv(index=False))
            for secret in PLANTED:
                assert secret not in text, (fmt, name, secret)
    out = deidentify(source, KEY, as_of=AS_OF)
    # the vocabulary survives: real schedules and sessions kept, a planted one coded the same way every time
    assert set(out["programs"]["schedule"].dropna()) >= {"daily", "three-per-week"}
    assert set(out["sessions"]["session"].dropna()) >= {"breakouts", "sequence"}
    coded = out["sessions"]["session"][~out["sessions"]["session"].isin(["breakouts", "sequence"])].dropna()
    assert len(coded) and coded.str.fullmatch(r"session-[0-9a-f]{8}").all()
    assert coded.nunique() <= len(PLANTED)  # one code per distinct value, linkable within the export
    assert out["sessions"]["performed_at"].dropna().str.fullmatch(r"\d\d:00").all()
    assert out["sessions"].loc[1, "performed_at"] == "08:00"


def test_every_date_moves_by_one_shift_per_patient_never_zero(source):
    out = deidentify(source, KEY, as_of=AS_OF)
    shifts = []
    for name in TABLES:
        for column, (treatment, _) in RESEARCH_EXPORT[name].items():
            if treatment != "shifted" or column not in source[name]:
                continue
            before, after = pd.to_datetime(source[name][column]), pd.to_datetime(out[name][column])
            known = before.notna()
            assert (after[known] != before[known]).all(), (name, column)  # no exported date equals its source
            assert after.notna().tolist() == known.tolist()
            shifts.append(pd.DataFrame({"patient": source[name]["patient_id"][known],
                                        "days": (after[known] - before[known]).dt.days}))
    shifts = pd.concat(shifts)
    per_patient = shifts.groupby("patient")["days"].nunique()
    assert (per_patient == 1).all() and len(per_patient) == 60  # the same shift in every table and column
    days = shifts.groupby("patient")["days"].first()
    assert (days % 7 == 0).all() and days.abs().between(7, 7 * SHIFT_WEEKS).all()
    assert (days < 0).any() and (days > 0).any()
    # weekdays kept
    m, mo = source["measurements"], out["measurements"]
    assert (pd.to_datetime(m["measured_on"]).dt.day_of_week == pd.to_datetime(mo["measured_on"]).dt.day_of_week).all()


def test_no_exported_date_after_the_export_day_gives_the_shift_away(source):
    as_of = max(pd.to_datetime(source[t][c]).max() for t, c in (("measurements", "measured_on"),
                                                                ("sessions", "performed_on")))
    out = deidentify(source, KEY, as_of=as_of.date())
    flipped = 0
    for pid in source["patients"]["patient_id"]:
        drawn = date_shift_weeks(KEY, pid)
        m = source["measurements"]["patient_id"] == pid
        used = (pd.to_datetime(out["measurements"]["measured_on"][m]) - pd.to_datetime(
            source["measurements"]["measured_on"][m])).dt.days.iloc[0] // 7
        assert abs(used) == abs(drawn)
        flipped += used != drawn
    assert flipped > 0  # patients seen near the export day would otherwise have been moved past it
    for t, c in (("measurements", "measured_on"), ("sessions", "performed_on")):
        assert pd.to_datetime(out[t][c]).max() <= as_of


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=32, max_size=64), patient=st.text(min_size=1, max_size=20))
def test_the_drawn_shift_is_never_zero_and_within_26_weeks(key, patient):
    weeks = date_shift_weeks(key, patient)
    assert weeks != 0 and -SHIFT_WEEKS <= weeks <= SHIFT_WEEKS


def test_the_drawn_shift_is_uniform_over_52_weeks():
    counts = pd.Series([date_shift_weeks(KEY, f"P{i}") for i in range(52_000)]).value_counts()
    assert len(counts) == 52 and 0 not in counts.index
    assert counts.between(850, 1150).all()  # 1000 each expected (binomial SD 31)


@pytest.mark.parametrize("key, words", [
    (b"short", "too short"),
    (b"a-secret-key-of-some-length", "too short"),
    (secrets.token_hex(16).encode(), "too short"),  # 32 hex digits: only 128 bits
    (b"0123456789abcdef" * 4, "far from random"),
    (b"a" * 64, "far from random"),
    (b"password" * 8, "far from random"),
])
def test_a_key_that_can_be_guessed_is_refused(key, words):
    with pytest.raises(StoreError, match=words):
        check_key(key)


@pytest.mark.parametrize("key", [secrets.token_hex(32).encode(), secrets.token_bytes(32),
                                 secrets.token_urlsafe(32).encode()])
def test_random_keys_of_32_bytes_are_accepted(key):
    check_key(key)


def _small_clinic(births):
    n = len(births)
    patients = pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(n)], "birth_year": births, "sex": ["female"] * n,
        "involved_side": ["right"] * n, "site": ["north"] * n, "cohort": [None] * n})
    programs = pd.DataFrame({"program_id": [f"A{i}" for i in range(n)], "patient_id": patients["patient_id"],
                             "start_date": pd.to_datetime(["2026-01-05"] * n).astype("datetime64[s]")})

    class Fake:
        def read(self, table):
            return {"patients": patients, "programs": programs}.get(table, pd.DataFrame(columns=["patient_id"]))

    return {"patients": patients, "programs": programs}, Fake()


def test_small_cells_are_flagged_and_generalising_removes_them(tmp_path):
    tables, store = _small_clinic([1980] * 20 + [1983] * 3)  # ages 46 (20 patients) and 43 (3)
    out = deidentify(tables, KEY, as_of=AS_OF)
    cells = small_cells(out["patients"])
    assert cells.drop(columns="cohort").to_dict("records") == [
        {"age_band": "40-44", "sex": "female", "involved_side": "right", "site": out["patients"]["site"][0],
         "patients": 3}] and cells["cohort"].isna().all()  # an empty value is a value of its own
    assert small_cells(out["patients"], k=3).empty
    plain = export_research(store, tmp_path / "plain", KEY, as_of=AS_OF)
    assert "3 patient(s) in 1 group(s) of fewer than 5" in plain.warning() and "--generalise" in plain.warning()
    assert "Warning: 3 patient(s)" in plain.paths["README"].read_text()
    widened = export_research(store, tmp_path / "wide", KEY, as_of=AS_OF, generalise=True)
    assert widened.generalised == ["age in 10-year bands"] and widened.small_cells.empty and widened.warning() is None
    assert pd.read_csv(widened.paths["patients"])["age_band"].tolist() == ["40-49"] * 23
    assert "Generalised: age in 10-year bands" in widened.paths["README"].read_text()
    # an 85-year-old stays alone whatever is generalised: said, not hidden
    tables, store = _small_clinic([1980] * 20 + [1983] * 3 + [1941])
    last = export_research(store, tmp_path / "last", KEY, as_of=AS_OF, generalise=True)
    assert len(last.generalised) == 5 and last.small_cells["patients"].tolist() == [1]
    assert "did not remove them" in last.warning()
    exported = pd.read_csv(last.paths["patients"])
    assert exported["site"].isna().all() and set(exported["involved_side"]) == {"one"}


def test_cli_research_export_refuses_a_weak_key_and_warns_of_small_cells(tmp_path):
    store = clinic_store(generate_clinic(12, seed=2), tmp_path)
    with Store(store) as s:  # an identifier typed into every free-text field a clinic can fill
        s.import_file(io.StringIO("patient_id,birth_year,involved_side,cohort,site,display_name\n"
                                  "Q1,1970,left,JohnSmith MRN5551234,555-1234 north,JohnSmith\n"), "patients")
    weak = tmp_path / "weak.key"
    weak.write_text("a-secret-key-of-some-length\n")
    runner = CliRunner()
    refused = runner.invoke(main, ["export", "--deidentify", "--key-file", str(weak), "--out", str(tmp_path / "r"),
                                   "--store", str(store)])
    assert refused.exit_code == 1 and "too short" in refused.output and "hipanalytics key FILE" in refused.output
    assert not (tmp_path / "r").exists()
    key = tmp_path / "good.key"
    assert runner.invoke(main, ["key", str(key)]).exit_code == 0
    done = runner.invoke(main, ["export", "--deidentify", "--key-file", str(key), "--out", str(tmp_path / "r"),
                                "--store", str(store)])
    assert done.exit_code == 0, done.output
    assert "warning:" in done.output and "fewer than 5" in done.output
    text = files_text(p for p in (tmp_path / "r").iterdir())
    assert not any(secret in text for secret in PLANTED) and "columns.csv" in done.output
    listed = pd.read_csv(tmp_path / "r" / "columns.csv")
    assert listed.set_index(["table", "column"]).loc[("patients", "display_name"), "treatment"] == "dropped"
    generalised = runner.invoke(main, ["export", "--deidentify", "--key-file", str(key), "--generalise", "--out",
                                       str(tmp_path / "g"), "--store", str(store)])
    assert generalised.exit_code == 0 and "generalised: age in 10-year bands" in generalised.output
    assert runner.invoke(main, ["export", "patients", "--generalise", "--out", str(tmp_path / "p.csv"),
                                "--store", str(store)]).exit_code == 2
    np.testing.assert_array_equal(sorted(pd.read_csv(tmp_path / "r" / "patients.csv")["patient_id"].str[:2].unique()),
                                  ["R-"])
